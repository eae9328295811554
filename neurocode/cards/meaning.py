"""What a model card means, answered once for every package.

The torch engine (distance to threshold, synaptic effects), the Brian2 variants of
:mod:`neurocode.validate.variants` (the thresholded variable, its threshold parameter and time
constant, the synaptic target) and spike-time interpolation all ask the same questions of a
card's text; they are answered here, from Python's syntax tree of the expressions (no
regular expressions), so a card that one part understands means the same to the others.

>>> from neurocode.cards import load_card
>>> card = load_card("alif")
>>> threshold_variable(card), threshold_parameter(card), time_constant(card, "v")
('v', 'v_th', 'tau_m')
>>> synaptic_statements(load_card("coba_lif"))
[('g_e', '+=', 'w * int(w > 0 * siemens)'), ('g_i', '-=', 'w * int(w < 0 * siemens)')]
"""

from __future__ import annotations

import ast

from brian2.core.namespace import DEFAULT_UNITS
from brian2.parsing.rendering import NodeRenderer
from brian2.utils.stringtools import get_identifiers

from neurocode.errors import NeurocodeError

_ORDERING = {ast.Gt: 1, ast.GtE: 1, ast.Lt: -1, ast.LtE: -1}


class CardMeaningError(NeurocodeError, ValueError):
    """A card's text does not have the form a question about it needs (the message says which)."""


def _ordering(node, state_names):
    return (isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _ORDERING
            and bool(get_identifiers(ast.unparse(node)) & set(state_names)))


def _threshold_comparison(code, state_names):
    """``(comparison, the top-level term holding it, all top-level terms)`` of a threshold."""
    try:
        tree = ast.parse(code.strip(), mode="eval").body
    except SyntaxError as exc:
        raise CardMeaningError(f"cannot parse the threshold '{code}': {exc.msg}") from None
    terms = tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And) else [tree]
    for term in terms:
        if _ordering(term, state_names):
            return term, term, terms
        if isinstance(term, ast.BoolOp) and isinstance(term.op, ast.Or):
            chosen = next((alt for alt in term.values if _ordering(alt, state_names)), None)
            if chosen is not None:
                return chosen, term, terms
    raise CardMeaningError(f"cannot derive a distance to threshold from '{code}': it needs a comparison "
                           "'a > b', 'a >= b', 'a < b' or 'a <= b' on a state variable (optionally joined by "
                           "'and' with other conditions, or one of the alternatives of an 'or')")


def split_threshold(code, state_names):
    """Split a threshold into ``(distance, mask)`` expressions.

    ``distance`` is positive where the comparison holds; ``mask`` is the conjunction of the
    remaining terms (``None`` if there are none). In a term ``a or b`` the first ordering
    comparison on a state variable gives the distance (the other alternatives, e.g. a forced
    spike at a window's end, fire through the exact condition only).

    >>> split_threshold("v > v_th + theta", {"v", "theta"})
    ('(v) - (v_th + theta)', None)
    >>> split_threshold("v >= v_th and fired == 0", {"v", "fired"})
    ('(v) - (v_th)', 'fired == 0')
    >>> split_threshold("x < -1", {"x"})
    ('(-1) - (x)', None)
    >>> split_threshold("(v >= v_th or t >= t_end) and fired == 0", {"v", "fired"})
    ('(v) - (v_th)', 'fired == 0')
    """
    chosen, owner, terms = _threshold_comparison(code, state_names)
    left, right = ast.unparse(chosen.left), ast.unparse(chosen.comparators[0])
    distance = f"({left}) - ({right})" if _ORDERING[type(chosen.ops[0])] > 0 else f"({right}) - ({left})"
    rest = [ast.unparse(term) for term in terms if term is not owner]
    return distance, (" and ".join(f"({r})" if len(rest) > 1 else r for r in rest) or None)


def threshold_variable(card):
    """The differential state variable the threshold compares (``v`` in ``v > v_th``)."""
    if not card.threshold:
        raise CardMeaningError(f"card '{card.name}' has no threshold")
    chosen, _, _ = _threshold_comparison(card.threshold, card.state_variables)
    sides = [chosen.left, chosen.comparators[0]]
    for side in sides:
        names = [n.id for n in ast.walk(side) if isinstance(n, ast.Name) and n.id in card.state_variables]
        if names:
            return names[0]
    raise CardMeaningError(f"card '{card.name}': its threshold '{card.threshold}' compares no differential "
                           "state variable")


def threshold_parameter(card):
    """The first parameter on the other side of the threshold comparison (``v_th``)."""
    v = threshold_variable(card)
    chosen, _, _ = _threshold_comparison(card.threshold, card.state_variables)
    for side in (chosen.comparators[0], chosen.left):
        if v in {n.id for n in ast.walk(side) if isinstance(n, ast.Name)}:
            continue
        names = [n.id for n in ast.walk(side) if isinstance(n, ast.Name) and n.id in card.defaults]
        if names:
            return names[0]
    raise CardMeaningError(f"card '{card.name}': cannot find the threshold parameter in '{card.threshold}' "
                           f"(expected '{v} > PARAMETER')")


def equation_rhs(card, var):
    """The right-hand side of ``d var/dt`` (Brian2's text of it)."""
    eq = card.equations.get(var)
    if eq is None or eq.type != "differential equation":
        raise CardMeaningError(f"card '{card.name}' has no equation 'd{var}/dt = ...'")
    return eq.expr.code


def time_constant(card, var):
    """The first parameter with units of time in ``d var/dt`` (``tau_m``)."""
    second = DEFAULT_UNITS["second"].dim
    rhs = equation_rhs(card, var)
    for node in ast.walk(ast.parse(rhs, mode="eval")):
        if isinstance(node, ast.Name) and node.id in card.defaults and card.defaults[node.id].dim is second:
            return node.id
    raise CardMeaningError(f"card '{card.name}': d{var}/dt = {rhs} uses no time-constant parameter")


def parse_statements(code, where):
    """Split Brian2 code into ``(target, op, expression)`` triples (``op`` is ``=``, ``+=``...).

    >>> parse_statements("v = v_reset\\ntheta += beta", "reset")
    [('v', '=', 'v_reset'), ('theta', '+=', 'beta')]
    """
    out = []
    for line in (code or "").splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        try:
            node = ast.parse(line).body[0]
        except SyntaxError as exc:
            raise CardMeaningError(f"{where}: cannot parse '{line}': {exc.msg}") from None
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out.append((node.targets[0].id, "=", ast.unparse(node.value)))
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            out.append((node.target.id, NodeRenderer.expression_ops[f"Aug{node.op.__class__.__name__}"],
                        ast.unparse(node.value)))
        else:
            raise CardMeaningError(f"{where}: statement '{line}' is not of the form 'x = expr' or 'x += expr'")
    return out


def synaptic_statements(card):
    """``on_pre`` as ``[(target variable, op, expression)]`` for statements ``X_post op expr``.

    Every statement must assign to a postsynaptic variable with ``=``, ``+=`` or ``-=``.
    """
    where = f"card '{card.name}' [synapse.on_pre]"
    out = []
    for target, op, expr in parse_statements(card.on_pre, where):
        if not target.endswith("_post") or op not in ("=", "+=", "-="):
            raise CardMeaningError(f"{where}: '{target} {op} {expr}' is not 'X_post += f(w)', "
                                   "'X_post -= f(w)' or 'X_post = f(w)'")
        out.append((target[:-len("_post")], op, expr))
    return out
