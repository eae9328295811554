"""Brian2 abstract code -> Python source over torch tensors.

Brian2 turns equations into *abstract code* (statements such as
``_v = v*exp(-dt/tau_m) + ...``) and renders it for a target with a node renderer
(``brian2.parsing.rendering.NumpyNodeRenderer``). :class:`TorchNodeRenderer` is the
torch sibling of that renderer; :func:`compile_block` wraps rendered statements into a
Python function, exactly as Brian2's numpy target does, so the generated step is plain
torch code (``torch.compile`` can trace it). Before anything is rendered, every
expression is checked by :func:`check_code`: only names, numbers, operators and the
functions of :data:`FUNCTIONS` reach the generated source.

>>> r = TorchNodeRenderer(variables={"v", "tau"})
>>> r.render_expr("v*exp(-dt/tau) + 2*mV")
'(v * _nc_exp((- dt) / tau)) + (2 * 0.001)'
"""

from __future__ import annotations

import ast
import math

import torch
from brian2.core.functions import DEFAULT_CONSTANTS
from brian2.core.namespace import DEFAULT_UNITS
from brian2.parsing.rendering import NodeRenderer

from neurocode.cards import meaning
from neurocode.errors import NeurocodeError


class TranslationError(NeurocodeError, ValueError):
    """Brian2 code that cannot be translated to torch; the message names the construct."""


def _unary(torch_fn, math_fn):
    def fn(x):
        if isinstance(x, torch.Tensor):
            return torch_fn(x)
        return math_fn(x)
    return fn


def _exprel(x):
    if isinstance(x, torch.Tensor):
        small = x.abs() < 1e-8
        safe = torch.where(small, torch.ones_like(x), x)
        return torch.where(small, 1.0 + x / 2.0, torch.expm1(safe) / safe)
    return 1.0 + x / 2.0 if abs(x) < 1e-8 else math.expm1(x) / x


def _clip(x, low, high):
    if isinstance(x, torch.Tensor):
        low = low if isinstance(low, torch.Tensor) else torch.tensor(low, dtype=x.dtype, device=x.device)
        high = high if isinstance(high, torch.Tensor) else torch.tensor(high, dtype=x.dtype, device=x.device)
        return torch.minimum(torch.maximum(x, low), high)
    return min(max(x, low), high)


def _not(x):
    return torch.logical_not(x) if isinstance(x, torch.Tensor) else not x


def _sign(x):
    return torch.sign(x) if isinstance(x, torch.Tensor) else float((x > 0) - (x < 0))


#: Brian2 default function name -> helper name in the generated namespace.
FUNCTIONS = {
    "exp": _unary(torch.exp, math.exp), "log": _unary(torch.log, math.log),
    "log10": _unary(torch.log10, math.log10), "expm1": _unary(torch.expm1, math.expm1),
    "log1p": _unary(torch.log1p, math.log1p), "exprel": _exprel,
    "sqrt": _unary(torch.sqrt, math.sqrt),
    "sin": _unary(torch.sin, math.sin), "cos": _unary(torch.cos, math.cos),
    "tan": _unary(torch.tan, math.tan), "sinh": _unary(torch.sinh, math.sinh),
    "cosh": _unary(torch.cosh, math.cosh), "tanh": _unary(torch.tanh, math.tanh),
    "arcsin": _unary(torch.asin, math.asin), "arccos": _unary(torch.acos, math.acos),
    "arctan": _unary(torch.atan, math.atan), "abs": _unary(torch.abs, abs),
    "floor": _unary(torch.floor, math.floor), "ceil": _unary(torch.ceil, math.ceil),
    "sign": _sign, "clip": _clip,
}
#: Random functions: rendered with the block's shape and generator.
RANDOM = {"randn", "rand"}


class TorchNodeRenderer(NodeRenderer):
    """Render Brian2 expressions as Python over torch tensors.

    Known ``variables`` keep their names; Brian2 units and constants become floats;
    functions become helpers (``_nc_exp``...) that accept tensors and Python floats;
    ``and``/``or``/``not`` become element-wise ``&``/``|``/``logical_not``; ``int(x)``
    becomes a cast to the block's float dtype (0/1 for booleans, truncation otherwise).
    """

    expression_ops = NodeRenderer.expression_ops.copy()
    expression_ops.update({"And": "&", "Or": "|"})

    def __init__(self, variables=()):
        super().__init__()
        self.variables = set(variables)

    def render_Name(self, node):
        name = node.id
        if name in self.variables or name in ("t", "dt", "True", "False"):
            return name
        if name in DEFAULT_CONSTANTS:
            return repr(float(DEFAULT_CONSTANTS[name].value))
        if name in DEFAULT_UNITS:
            return repr(float(DEFAULT_UNITS[name]))
        raise TranslationError(f"unknown identifier '{name}' (not a state variable, parameter, "
                               "Brian2 unit or constant)")

    def render_Constant(self, node):
        if isinstance(node.value, bool):
            return repr(node.value)
        return f"({node.value!r})" if node.value < 0 else repr(node.value)

    def render_Call(self, node):
        if node.keywords:
            raise TranslationError("keyword arguments are not supported in Brian2 code")
        name = node.func.id
        args = [self.render_node(arg) for arg in node.args]
        if name.startswith("_nc_"):  # helpers of the generated code itself
            return f"{name}({', '.join(args)})"
        if name == "int":
            return f"_nc_int({args[0]})"
        if name in RANDOM:
            return f"_nc_{name}()"
        if name in FUNCTIONS:
            return f"_nc_{name}({', '.join(args)})"
        raise TranslationError(f"function '{name}' has no torch translation; supported: "
                               f"{sorted(set(FUNCTIONS) | RANDOM | {'int'})}")

    def render_UnaryOp(self, node):
        if node.op.__class__.__name__ == "Not":
            return f"_nc_not({self.render_node(node.operand)})"
        return NodeRenderer.render_UnaryOp(self, node)

    def render_BinOp(self, node):
        return f"{NodeRenderer.render_BinOp(self, node)}" if node.op.__class__.__name__ != "Pow" else \
            f"({self.render_element_parentheses(node.left)} ** {self.render_element_parentheses(node.right)})"

    def render_element_parentheses(self, node):
        if node.__class__.__name__ == "Constant" and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool) and node.value >= 0:
            return self.render_node(node)
        if node.__class__.__name__ in ("Name", "Call"):
            return self.render_node(node)
        return f"({self.render_node(node)})"


def parse_statements(code, where):
    """:func:`neurocode.cards.meaning.parse_statements`, failing with :class:`TranslationError`."""
    try:
        return meaning.parse_statements(code, where)
    except meaning.CardMeaningError as exc:
        raise TranslationError(str(exc)) from None


def make_namespace(dtype, shape_fn=None):
    """Globals of generated code: function helpers bound to a float ``dtype``.

    ``shape_fn()`` returns ``(shape, device, generator)`` for ``randn()``/``rand()``.
    """
    ns = {f"_nc_{name}": fn for name, fn in FUNCTIONS.items()}
    ns["_nc_not"] = _not
    ns["torch"] = torch

    def _int(x):
        if isinstance(x, torch.Tensor):
            return x.to(dtype) if x.dtype == torch.bool else torch.trunc(x)
        return float(int(x))

    def _random(kind):
        def fn():
            if shape_fn is None:
                raise TranslationError(f"{kind}() is not available in this code block")
            shape, device, generator = shape_fn()
            sample = torch.randn if kind == "randn" else torch.rand
            return sample(shape, dtype=dtype, device=device, generator=generator)
        return fn

    ns["_nc_int"] = _int
    ns["_nc_randn"] = _random("randn")
    ns["_nc_rand"] = _random("rand")
    return ns


_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Call, ast.Name,
                  ast.Constant, ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context)


def _dunder(name):
    return name.startswith("__") and name.endswith("__")


def check_code(expr, where, helpers=()):
    """Refuse anything in ``expr`` but names, numbers, operators and calls of known functions.

    ``helpers`` are names of the generated code's own functions (``_nc_mix``...) that may be
    called too. Dunder names, attributes, subscripts, strings and unknown functions raise
    :class:`TranslationError` naming ``where``.

    >>> check_code("().__class__.__base__.__subclasses__()", "card 'x', neuron.reset")
    Traceback (most recent call last):
    ...
    neurocode.torch.codegen.TranslationError: card 'x', neuron.reset: '().__cl...' uses attribute access, ...
    """
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise TranslationError(f"{where}: cannot parse '{expr}': {exc.msg}") from None
    allowed = set(FUNCTIONS) | RANDOM | {"int"} | set(helpers)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            node = node.func
        if not isinstance(node, _ALLOWED_NODES):
            what = "attribute access" if isinstance(node, ast.Attribute) else f"the construct {type(node).__name__}"
            raise TranslationError(f"{where}: '{expr}' uses {what}, which Brian2 code cannot contain")
        if isinstance(node, ast.Name) and _dunder(node.id):
            raise TranslationError(f"{where}: '{expr}' uses the reserved name '{node.id}'")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (bool, int, float)):
            raise TranslationError(f"{where}: '{expr}' holds the constant {node.value!r}; only numbers are allowed")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in allowed:
                name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise TranslationError(f"{where}: '{expr}': function '{name}' has no torch translation; "
                                       f"supported: {sorted(set(FUNCTIONS) | RANDOM | {'int'})}")
            if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
                raise TranslationError(f"{where}: '{expr}': keyword or starred arguments are not supported")


def compile_block(name, statements, inputs, outputs, namespace, where):
    """Compile statements into ``fn(**inputs) -> dict of outputs``; returns ``(fn, source)``.

    Parameters
    ----------
    name : str
        Python name of the generated function.
    statements : list of (target, op, expression)
        Brian2 statements, executed in order.
    inputs : list of str
        Argument names (every identifier the statements read).
    outputs : list of str
        Names returned in a dict.
    namespace : dict
        Globals (from :func:`make_namespace`).
    where : str
        Context for error messages (card and field).
    """
    known = set(inputs) | {target for target, _, _ in statements}
    bad = sorted(n for n in known | set(outputs) | {name} if not n.isidentifier() or _dunder(n))
    if bad:
        raise TranslationError(f"{where}: {bad} cannot be variable names in generated code")
    helpers = [h for h in namespace if h.startswith("_nc_")]
    renderer = TorchNodeRenderer(known)
    lines = [f"def {name}({', '.join(inputs)}):"]
    for target, op, expr in statements:
        if op not in ("=", "+=", "-=", "*=", "/=", "**=", "%="):
            raise TranslationError(f"{where}: unknown assignment '{op}' in '{target} {op} {expr}'")
        check_code(expr, f"{where}: in '{target} {op} {expr}'", helpers)
        try:
            rendered = renderer.render_expr(expr)
        except TranslationError as exc:
            raise TranslationError(f"{where}: in '{target} {op} {expr}': {exc}") from None
        except SyntaxError as exc:
            raise TranslationError(f"{where}: in '{target} {op} {expr}': {exc}") from None
        if op == "=":
            lines.append(f"    {target} = {rendered}")
        else:  # out of place, so that autograd sees every version
            lines.append(f"    {target} = {target} {op[0]} ({rendered})")
    lines.append("    return {" + ", ".join(f"{o!r}: {o}" for o in outputs) + "}")
    source = "\n".join(lines) + "\n"
    ns = dict(namespace)
    exec(compile(source, f"<neurocode {where}>", "exec"), ns)  # noqa: S102 - generated from parsed Brian2 code
    return ns[name], source


def render(expr, variables):
    """Render one Brian2 expression (used for thresholds and synaptic weights)."""
    return TorchNodeRenderer(variables).render_expr(expr)


class _Fold(ast.NodeTransformer):
    """Replace ``int(name)`` (and ``name``) by ``1`` and drop exact ``*1`` and ``/1``.

    ``x*1.0 == x`` and ``x/1.0 == x`` exactly in IEEE arithmetic, so the result is
    bitwise identical to evaluating the original code with ``name = True``.
    """

    def __init__(self, name):
        self.name = name

    @staticmethod
    def _one(node):
        return isinstance(node, ast.Constant) and not isinstance(node.value, bool) and node.value == 1

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "int" and len(node.args) == 1 \
                and isinstance(node.args[0], ast.Constant) and node.args[0].value is True:
            return ast.Constant(1)
        return node

    def visit_Name(self, node):
        return ast.Constant(True) if node.id == self.name else node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.Mult) and self._one(node.right):
            return node.left
        if isinstance(node.op, ast.Mult) and self._one(node.left):
            return node.right
        if isinstance(node.op, ast.Div) and self._one(node.right):
            return node.left
        return node


def fold_true(statements, name):
    """Statements with the boolean ``name`` fixed to True, exactly simplified.

    >>> fold_true([("_v", "=", "v*exp(-dt*int(not_refractory)/tau)")], "not_refractory")
    [('_v', '=', 'v * exp(-dt / tau)')]
    """
    out = []
    for target, op, expr in statements:
        tree = _Fold(name).visit(ast.parse(expr, mode="eval"))
        out.append((target, op, ast.unparse(ast.fix_missing_locations(tree))))
    return out


def hoist_invariants(statements, invariant, prefix="_nc_k"):
    """Pull out maximal subexpressions built only from ``invariant`` names (and numbers).

    Returns ``(constants, statements)``: ``constants`` are ``(name, "=", expr)`` to evaluate
    once (per forward pass), ``statements`` use their names. Names and numbers alone are
    left in place.

    >>> c, s = hoist_invariants([("_x", "=", "x*exp(-dt/tau) + y")], {"dt", "tau"})
    >>> c, s
    ([('_nc_k0', '=', 'exp(-dt / tau)')], [('_x', '=', 'x * _nc_k0 + y')])
    """
    constants, seen = [], {}

    def is_invariant(node):
        ids = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        funcs = {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        if funcs & (RANDOM | {"int"}):
            return False
        return (ids - funcs) <= invariant

    class _Hoist(ast.NodeTransformer):
        def generic_visit(self, node):
            if isinstance(node, ast.expr) and not isinstance(node, (ast.Name, ast.Constant)) \
                    and is_invariant(node):
                if isinstance(node, ast.UnaryOp) and isinstance(node.operand, (ast.Name, ast.Constant)):
                    return node
                code = ast.unparse(node)
                if code not in seen:
                    seen[code] = f"{prefix}{len(constants)}"
                    constants.append((seen[code], "=", code))
                return ast.Name(seen[code], ast.Load())
            return super().generic_visit(node)

    out = []
    for target, op, expr in statements:
        tree = _Hoist().visit(ast.parse(expr, mode="eval"))
        out.append((target, op, ast.unparse(ast.fix_missing_locations(tree))))
    return constants, out
