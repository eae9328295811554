"""Trainable per-neuron card parameters: an unconstrained tensor mapped onto the valid range.

A parameter declared trainable (``NetworkRunner(spec, trainable={"hidden": ["tau_m"]})``) is
stored as an ``nn.Parameter`` ``raw`` that an optimiser may move anywhere; the dynamics read
``value = ParameterMap.value(raw)``, which lies in the parameter's valid range:

* **positive** parameters train in log space,
  ``value = unit * exp(LOG_SPAN * tanh(raw / LOG_SPAN))`` with ``unit`` the card's default:
  near the default a step on ``raw`` is a relative change of the value (the same for a 2 ms
  and a 200 ms time constant), and however far an optimiser pushes ``raw`` the value stays
  within a factor ``exp(LOG_SPAN)`` (about 148) of the default, so it is positive and the
  exact solutions of the cards stay finite (``exp(dt/tau)`` fits float32 for
  ``dt < 88 tau``).
* every other parameter trains linearly, ``value = unit * raw`` (``unit`` = the card
  default's magnitude, so ``raw`` is of order one).

A parameter is positive if its dimension is a time, capacitance, resistance, conductance or
frequency, or if the card's heterogeneity distribution for it has no negative support
(``gamma``, ``lognormal``, or ``low >= 0``). Parameters of the refractory period cannot be
trained (the period is a whole number of steps: no gradient reaches it).

>>> from neurocode.cards import load_card
>>> m = parameter_map(load_card("alif"), "tau_m")
>>> m.positive, m.unit
(True, 0.02)
>>> import torch
>>> raw = m.raw(torch.tensor([0.01, 0.02]))
>>> [round(float(x), 6) for x in m.value(raw)]
[0.01, 0.02]
>>> parameter_map(load_card("alif"), "beta").positive
False
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from brian2 import farad, hertz, ohm, second, siemens
from brian2.utils.stringtools import get_identifiers

from neurocode.errors import ConfigError, NetworkSpecError

#: Positive parameters train within a factor ``exp(LOG_SPAN)`` of their unit, either way.
LOG_SPAN = 5.0
#: Dimensions whose values are positive by nature.
POSITIVE_DIMS = tuple(u.dim for u in (second, farad, ohm, siemens, hertz))


@dataclass(frozen=True)
class ParameterMap:
    """How one trainable parameter's unconstrained tensor maps to its value (SI).

    Attributes
    ----------
    name : str
    positive : bool
        Log space (``value = unit * exp(LOG_SPAN * tanh(raw / LOG_SPAN))``) if True, else
        ``value = unit * raw``.
    unit : float
        SI value of ``raw = 0`` (positive) or of ``raw = 1`` (linear): the card default's magnitude.
    """

    name: str
    positive: bool
    unit: float

    def value(self, raw):
        """The parameter (SI) from the unconstrained tensor ``raw``."""
        if self.positive:
            return self.unit * torch.exp(LOG_SPAN * torch.tanh(raw / LOG_SPAN))
        return self.unit * raw

    def raw(self, value):
        """The unconstrained tensor that gives ``value`` (SI); :class:`NetworkSpecError` out of range."""
        value = torch.as_tensor(value)
        if not torch.isfinite(value).all():
            raise NetworkSpecError(f"trainable parameter '{self.name}' has non-finite values")
        if not self.positive:
            return value / self.unit
        low, high = self.unit * math.exp(-LOG_SPAN), self.unit * math.exp(LOG_SPAN)
        bad = ~((value > low) & (value < high))
        if bad.any():
            raise NetworkSpecError(f"trainable parameter '{self.name}' is positive and trains within "
                             f"({low:.3g}, {high:.3g}) (SI); got {float(value[bad][0]):.6g}")
        return LOG_SPAN * torch.atanh(torch.log(value / self.unit) / LOG_SPAN)


def parameter_map(card, name):
    """The :class:`ParameterMap` of parameter ``name`` of ``card`` (see the module docstring).

    Raises :class:`~neurocode.errors.ConfigError` for a parameter that cannot be trained.
    """
    if name not in card.defaults:
        raise ConfigError(f"card '{card.name}' has no parameter '{name}' to train; it has {card.parameters}")
    if card.refractory and name in get_identifiers(card.refractory):
        raise ConfigError(f"card '{card.name}': '{name}' sets the refractory period ('{card.refractory}'), "
                         "a whole number of steps that no gradient reaches; it cannot be trained")
    default = abs(float(card.defaults[name]))
    if default == 0:
        raise ConfigError(f"card '{card.name}': parameter '{name}' defaults to 0, which gives no unit to "
                         "train it in; give the card a nonzero default of the right magnitude")
    het = card.heterogeneity.get(name)
    positive = card.defaults[name].dim in POSITIVE_DIMS or (het is not None and het.support_low >= 0)
    return ParameterMap(name, positive, default)
