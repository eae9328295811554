"""The one conversion boundary between Brian2 quantities and SI floats.

Card values are strings such as ``"20*ms"`` or ``"-65*mV"``; they are read by the one
safe evaluator (:mod:`neurocode.cards.expressions`) over Brian2's unit names only, and
must be finite.

>>> q = parse_quantity("20*ms")
>>> bool(parse_quantity("1.5 s") == parse_quantity("1500*ms") == parse_quantity("1500ms"))
True
>>> float(q), dimension_name(q.dim)
(0.02, 'second')
>>> parse_unit("mV").dim is parse_unit("volt").dim
True
"""

from __future__ import annotations

import numbers
import re

import numpy as np
from brian2 import Quantity, get_unit
from brian2.core.namespace import DEFAULT_UNITS
from brian2.units.fundamentalunits import DIMENSIONLESS, get_dimensions

from neurocode.errors import NeurocodeError


#: A number directly followed by a unit name, as typed on a command line: "200ms", "1.5 s".
_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z_]\w*)\s*$")


#: Brian2's unit names, plus ``s`` for seconds as people type it.
_NAMESPACE = dict(DEFAULT_UNITS, s=DEFAULT_UNITS["second"])


class UnitParseError(NeurocodeError, ValueError):
    """A value or unit string cannot be read; the caller adds card and field."""


def parse_quantity(value, names=None):
    """Evaluate ``value`` (number, Quantity or string like ``"20*ms"``) to a finite Quantity.

    ``names`` maps further names (e.g. a card's other parameters) to Quantities the string may use.

    >>> parse_quantity("().__class__")
    Traceback (most recent call last):
    ...
    neurocode.units.UnitParseError: cannot read '().__class__': attribute access ('.__class__') is not allowed
    >>> parse_quantity("1e999*ms")
    Traceback (most recent call last):
    ...
    neurocode.units.UnitParseError: '1e999*ms' is not finite
    """
    from neurocode.cards.expressions import ExpressionError, parse_expression

    text = value
    if isinstance(value, bool):
        raise UnitParseError(f"expected a number with units, got the boolean {value!r}")
    if isinstance(value, numbers.Number):
        value = Quantity(float(value))
    elif isinstance(value, str):
        match = _NUMBER_UNIT.match(value)
        expr = f"{match.group(1)}*{match.group(2)}" if match else value
        try:
            namespace = dict(_NAMESPACE, **(names or {}))
            parsed = parse_expression(expr, random=False)
            unknown = sorted(parsed.names - set(namespace))
            if unknown:
                raise UnitParseError(f"cannot read {value!r}: {', '.join(map(repr, unknown))} "
                                     "is not a Brian2 unit" + (" nor a parameter" if names is not None else ""))
            value = parsed.evaluate(namespace)
        except ExpressionError as exc:
            raise UnitParseError(f"cannot read {str(exc).replace(repr(expr), repr(value), 1)}") from None
        if isinstance(value, (numbers.Number, np.number)) and not isinstance(value, (bool, np.bool_)):
            value = Quantity(float(value))
        if not isinstance(value, Quantity) or np.ndim(value) != 0:
            raise UnitParseError(f"{text!r} is not a number with units")
    elif not isinstance(value, Quantity):
        raise UnitParseError(f"expected a string such as '20*ms', got {value!r}")
    if not np.all(np.isfinite(np.asarray(value))):
        raise UnitParseError(f"{text!r} is not finite")
    return value


def parse_time(text, option, bare="second"):
    """Seconds from a command-line time: a Brian2 quantity (``"500*ms"``) or a bare number in ``bare``.

    >>> parse_time("500*ms", "--duration"), parse_time("0.01", "--dt", bare="ms")
    (0.5, 1e-05)
    """
    try:
        q = parse_quantity(text)
    except UnitParseError as exc:
        raise UnitParseError(f"{option}: {exc}") from None
    if q.is_dimensionless:
        return float(q) * float(_NAMESPACE[bare])
    if q.dim is not DEFAULT_UNITS["second"].dim:
        raise UnitParseError(f"{option} {text!r} is not a time; give {bare} or e.g. '500*ms'")
    return float(q)


def parse_unit(text):
    """Read a unit name (``"mV"``, ``"amp"``, ``"1"``) into a Brian2 Unit."""
    if text in ("1", "", None):
        return Quantity(1.0)
    q = parse_quantity(text)
    if float(q) == 0:
        raise UnitParseError(f"{text!r} is not a unit")
    return get_unit(q.dim)


def dimension_name(dim):
    """Readable name of a dimension: ``'volt'``, ``'second'``, ``'dimensionless'``."""
    dim = get_dimensions(dim)
    if dim is DIMENSIONLESS:
        return "dimensionless"
    return repr(get_unit(dim))
