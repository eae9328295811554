"""The one evaluator of expressions read from a card, a spec, a config or a command line.

An expression is parsed with :mod:`ast` and walked here; nothing is handed to ``eval``.
Allowed: numbers, names from an explicit namespace (units, parameters), ``+ - * / ** %``,
unary ``+ -``, comparisons, ``and``/``or``/``not`` and calls of :data:`FUNCTIONS`
(``rand()``/``randn()`` only where a random generator is given). Anything else --
attributes, subscripts, comprehensions, lambdas, keywords, starred arguments, strings,
unknown names or functions -- raises :class:`ExpressionError` naming the expression and
the construct. Numbers are evaluated as floats, so ``9**9**9`` overflows instead of
running for hours.

>>> from brian2 import ms
>>> float(evaluate("2*tau + 1*ms", {"tau": 10 * ms, "ms": ms}))
0.021
>>> evaluate("().__class__", {})
Traceback (most recent call last):
...
neurocode.cards.expressions.ExpressionError: '().__class__': attribute access ('.__class__') is not allowed
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass

import numpy as np
from brian2.units.fundamentalunits import DimensionMismatchError

from neurocode.errors import NeurocodeError

#: Longest expression read (characters): deeper nesting is not a model, it is an attack.
MAX_LENGTH = 2000


def _exprel(x):
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) < 1e-8
    safe = np.where(small, 1.0, x)
    return np.where(small, 1.0 + x / 2.0, np.expm1(safe) / safe)


def _int(x):
    return np.trunc(np.asarray(x, dtype=np.float64))


#: Functions an expression may call, with their number of arguments (Brian2's names).
FUNCTIONS = {
    "exp": (np.exp, 1), "log": (np.log, 1), "log10": (np.log10, 1), "expm1": (np.expm1, 1),
    "log1p": (np.log1p, 1), "exprel": (_exprel, 1), "sqrt": (np.sqrt, 1),
    "sin": (np.sin, 1), "cos": (np.cos, 1), "tan": (np.tan, 1), "sinh": (np.sinh, 1),
    "cosh": (np.cosh, 1), "tanh": (np.tanh, 1), "arcsin": (np.arcsin, 1), "arccos": (np.arccos, 1),
    "arctan": (np.arctan, 1), "abs": (np.abs, 1), "floor": (np.floor, 1), "ceil": (np.ceil, 1),
    "sign": (np.sign, 1), "clip": (np.clip, 3), "int": (_int, 1),
}
#: Random functions: allowed only with a generator (``rand()`` uniform in [0, 1), ``randn()`` normal).
RANDOM = ("rand", "randn")
#: Names every expression may use (Brian2's constants).
CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf, "True": True, "False": False}

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow, ast.Mod: operator.mod}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Not: np.logical_not}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
_BOOL = {ast.And: np.logical_and, ast.Or: np.logical_or}
_NAMES = {ast.Attribute: "attribute access", ast.Subscript: "indexing with [...]",
          ast.Lambda: "lambda", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
          ast.DictComp: "a comprehension", ast.GeneratorExp: "a comprehension", ast.JoinedStr: "an f-string",
          ast.Starred: "starred arguments", ast.NamedExpr: "assignment (:=)", ast.IfExp: "'... if ... else ...'",
          ast.Tuple: "a tuple", ast.List: "a list", ast.Dict: "a dict", ast.Set: "a set",
          ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield"}


class ExpressionError(NeurocodeError, ValueError):
    """An expression uses something outside the allowed grammar, or cannot be evaluated."""


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, syntax tree, and the names and functions it uses."""

    text: str
    tree: ast.expr
    names: frozenset
    calls: frozenset

    @property
    def random(self):
        """Whether the expression calls ``rand()`` or ``randn()``."""
        return bool(self.calls & set(RANDOM))

    def evaluate(self, namespace, rng=None, size=None):
        """The value over ``namespace`` (names -> numbers, arrays or Brian2 quantities).

        ``rng`` (a ``numpy.random.Generator``) and ``size`` serve ``rand()``/``randn()``.
        """
        missing = sorted(self.names - set(namespace) - set(CONSTANTS))
        if missing:
            raise ExpressionError(f"{self.text!r}: unknown name(s) {missing}")
        if self.random and rng is None:
            raise ExpressionError(f"{self.text!r}: random numbers (rand(), randn()) are not available here")
        try:
            return _Evaluator(namespace, rng, size).visit(self.tree)
        except OverflowError:
            raise ExpressionError(f"{self.text!r}: a value too large for a float (overflow)") from None
        except (ArithmeticError, ValueError, TypeError, DimensionMismatchError) as exc:
            raise ExpressionError(f"{self.text!r}: {exc}") from None


def parse_expression(text, names=None, random=True):
    """Parse and check ``text``; returns an :class:`Expression`.

    Parameters
    ----------
    text : str
        The expression.
    names : collection of str, optional
        Names it may use besides :data:`CONSTANTS`; ``None`` leaves names to evaluation.
    random : bool
        Whether ``rand()`` and ``randn()`` may be called.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expected an expression as a string, got {text!r}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression of {len(text)} characters: longer than {MAX_LENGTH} is not allowed")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        problem = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        raise ExpressionError(f"{text!r}: not an expression ({problem})") from None
    found, calls = set(), set()
    callees = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if id(node) not in callees:
            _check_node(node, text, random, found, calls)
    if names is not None:
        unknown = sorted(found - set(names) - set(CONSTANTS))
        if unknown:
            raise ExpressionError(f"{text!r}: unknown name(s) {unknown}")
    return Expression(text, tree, frozenset(found), frozenset(calls))


def evaluate(text, namespace, rng=None, size=None):
    """Parse, check and evaluate ``text`` over ``namespace`` in one call."""
    return parse_expression(text, namespace, random=rng is not None).evaluate(namespace, rng, size)


def _check_node(node, text, random, names, calls):
    if isinstance(node, (ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.expr_context)):
        if isinstance(node, (ast.operator, ast.unaryop)) and type(node) not in _BINARY and type(node) not in _UNARY:
            raise ExpressionError(f"{text!r}: the operator {type(node).__name__} is not allowed; "
                                  "use + - * / ** % and comparisons")
        return
    if isinstance(node, ast.Attribute):
        raise ExpressionError(f"{text!r}: attribute access ('.{node.attr}') is not allowed")
    if isinstance(node, ast.Name):
        if node.id.startswith("__"):
            raise ExpressionError(f"{text!r}: the name '{node.id}' is not allowed")
        names.add(node.id)
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or isinstance(node.value, (int, float)):
            return
        raise ExpressionError(f"{text!r}: the constant {node.value!r} is not allowed; only numbers are")
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute):
            raise ExpressionError(f"{text!r}: attribute access ('.{node.func.attr}') is not allowed")
        if not isinstance(node.func, ast.Name):
            raise ExpressionError(f"{text!r}: only calls of named functions are allowed")
        name = node.func.id
        if node.keywords:
            raise ExpressionError(f"{text!r}: keyword arguments in '{name}(...)' are not allowed")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise ExpressionError(f"{text!r}: starred arguments in '{name}(...)' are not allowed")
        if name in RANDOM and not random:
            raise ExpressionError(f"{text!r}: random numbers ({name}()) are not allowed here")
        if name not in FUNCTIONS and name not in RANDOM:
            raise ExpressionError(f"{text!r}: the function '{name}' is not allowed; allowed: "
                                  f"{', '.join(sorted([*FUNCTIONS, *RANDOM]))}")
        arity = 0 if name in RANDOM else FUNCTIONS[name][1]
        if len(node.args) != arity:
            raise ExpressionError(f"{text!r}: '{name}' takes {arity} argument(s), got {len(node.args)}")
        calls.add(name)
        return
    if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp)):
        return
    what = _NAMES.get(type(node), f"the construct {type(node).__name__}")
    raise ExpressionError(f"{text!r}: {what} is not allowed")


class _Evaluator:
    """Walks a checked tree; numbers become floats."""

    def __init__(self, namespace, rng, size):
        self.namespace, self.rng, self.size = namespace, rng, size

    def visit(self, node):
        if isinstance(node, ast.Constant):
            return node.value if isinstance(node.value, bool) else float(node.value)
        if isinstance(node, ast.Name):
            return self.namespace[node.id] if node.id in self.namespace else CONSTANTS[node.id]
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self.visit(node.left), self.visit(node.right))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self.visit(node.operand))
        if isinstance(node, ast.Compare):
            left, result = self.visit(node.left), True
            for op, right in zip(node.ops, node.comparators):
                right = self.visit(right)
                result = np.logical_and(result, _COMPARE[type(op)](left, right))
                left = right
            return result
        if isinstance(node, ast.BoolOp):
            values = [self.visit(v) for v in node.values]
            out = values[0]
            for value in values[1:]:
                out = _BOOL[type(node.op)](out, value)
            return out
        # ast.Call: checked to be a known function
        name = node.func.id
        if name == "rand":
            return self.rng.random(self.size)
        if name == "randn":
            return self.rng.standard_normal(self.size)
        return FUNCTIONS[name][0](*(self.visit(arg) for arg in node.args))
