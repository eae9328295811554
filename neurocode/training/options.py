"""Typed, range-checked settings: every value of a training config or run option is checked here.

>>> EPOCHS = Option(int, low=1)
>>> EPOCHS.check(3, "train.epochs")
3
>>> EPOCHS.check(-3, "train.epochs")
Traceback (most recent call last):
...
neurocode.errors.ConfigError: train.epochs = -3: must be an integer >= 1
>>> Option(float, low=0, inclusive=False).check("fast", "train.lr")
Traceback (most recent call last):
...
neurocode.errors.ConfigError: train.lr = 'fast': must be a number > 0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from neurocode.errors import ConfigError


@dataclass(frozen=True)
class Option:
    """One setting: its type, optional bounds and choices.

    Attributes
    ----------
    kind : type
        ``int``, ``float`` (ints accepted), ``str``, ``bool`` or ``list`` (of ints, see ``item_low``).
    low, high : float, optional
        Bounds, inclusive unless ``inclusive`` / ``high_inclusive`` is False.
    choices : tuple, optional
        Allowed values.
    nullable : bool
        Whether ``None`` is allowed (JSON ``null`` on a command line).
    min_length, item_low : int
        For lists of ints: at least ``min_length`` items, each ``>= item_low``.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    inclusive: bool = True
    high_inclusive: bool = True
    choices: tuple | None = None
    nullable: bool = False
    min_length: int = 0
    item_low: int = 1

    def describe(self):
        """What a value must be, in words."""
        if self.choices is not None:
            return f"one of {list(self.choices)}"
        if self.kind is list:
            return f"a list of at least {self.min_length} integers >= {self.item_low}"
        words = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[self.kind]
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>=' if self.inclusive else '>'} {self.low:g}")
        if self.high is not None:
            bounds.append(f"{'<=' if self.high_inclusive else '<'} {self.high:g}")
        return " ".join([words, " and ".join(bounds)]).strip()

    def check(self, value, name):
        """``value`` if it fits, else :class:`ConfigError` naming ``name``."""
        if value is None and self.nullable:
            return value
        if not self._fits(value):
            raise ConfigError(f"{name} = {value!r}: must be {self.describe()}")
        return value

    def _fits(self, value):
        if self.choices is not None:
            return isinstance(value, (str, int, float)) and value in self.choices
        if self.kind is list:
            return (isinstance(value, list) and len(value) >= self.min_length
                    and all(_is_int(v) and v >= self.item_low for v in value))
        if self.kind is bool:
            return isinstance(value, bool)
        if self.kind is str:
            return isinstance(value, str)
        if self.kind is int and not _is_int(value):
            return False
        if self.kind is float and not (_is_number(value) and math.isfinite(value)):
            return False
        if self.low is not None and not (value >= self.low if self.inclusive else value > self.low):
            return False
        return self.high is None or (value <= self.high if self.high_inclusive else value < self.high)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_table(values, schema, where):
    """Check a dict against ``schema`` (name -> :class:`Option`); unknown keys are an error.

    ``where`` prefixes names in messages (``"train."``).
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{where.rstrip('.') or 'config'} must be a table, got {values!r}")
    unknown = sorted(set(values) - set(schema))
    if unknown:
        raise ConfigError(f"unknown key '{where}{unknown[0]}'; known: {sorted(where + k for k in schema)}")
    return {key: schema[key].check(value, where + key) for key, value in values.items()}
