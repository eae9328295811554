"""Per-neuron parameter distributions (heterogeneity) with units.

A distribution is given in a model card as a table, for example::

    [heterogeneity.tau_m]
    distribution = "gamma"
    mean = "20*ms"
    cv = 0.5

Supported: ``gamma`` and ``lognormal`` (``mean``, ``cv``), ``normal`` truncated to
``[low, high]`` (``mean``, ``cv`` or ``std``, optional ``low``/``high``) and ``uniform``
(``low``, ``high``). Values are Brian2 quantities; sampling returns SI floats.
Every value must be finite, and a parameter that must be positive refuses a
distribution whose samples can be zero or negative, also by rounding: a gamma
distribution with ``cv = 1e3`` gives exact zeros in float64.

>>> from brian2 import ms
>>> d = Distribution.from_table("tau_m", {"distribution": "gamma", "mean": "20*ms", "cv": 0.5})
>>> x = d.sample(100_000, seed=1)
>>> round(float(x.mean()) * 1000), round(float(x.std() / x.mean()), 2)
(20, 0.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from neurocode.errors import NeurocodeError
from neurocode.units import parse_quantity, dimension_name

KINDS = {
    "gamma": {"required": {"mean", "cv"}, "optional": set()},
    "lognormal": {"required": {"mean", "cv"}, "optional": set()},
    "normal": {"required": {"mean"}, "optional": {"cv", "std", "low", "high"}},
    "uniform": {"required": {"low", "high"}, "optional": set()},
}


#: Tail probability at which :meth:`Distribution.check_bound` looks.
QUANTILE = 1e-12


class DistributionError(NeurocodeError, ValueError):
    """A distribution's parameters are impossible; the caller adds card and field."""


@dataclass(frozen=True)
class Distribution:
    """A per-neuron parameter distribution; values in SI units of ``unit``.

    Attributes
    ----------
    kind : str
        One of ``gamma``, ``lognormal``, ``normal``, ``uniform``.
    params : dict
        SI float values of ``mean``, ``cv``, ``std``, ``low``, ``high`` as given.
    dim : brian2 Dimension
        Physical dimension of the sampled values.
    """

    kind: str
    params: dict
    dim: object

    @classmethod
    def from_table(cls, name, table):
        """Build from a card table; raises :class:`DistributionError` naming the problem."""
        if not isinstance(table, dict):
            raise DistributionError(f"must be a table with a 'distribution' key, got {table!r}")
        kind = table.get("distribution")
        if not isinstance(kind, str) or kind not in KINDS:
            raise DistributionError(
                f"unknown distribution {kind!r}; choose one of {sorted(KINDS)}")
        allowed = KINDS[kind]["required"] | KINDS[kind]["optional"] | {"distribution"}
        unknown = set(table) - allowed
        if unknown:
            raise DistributionError(
                f"unknown key(s) {sorted(unknown)} for a {kind} distribution; "
                f"allowed: {sorted(allowed - {'distribution'})}")
        missing = KINDS[kind]["required"] - set(table)
        if missing:
            raise DistributionError(f"a {kind} distribution needs {sorted(missing)}")
        params, dim = {}, None
        for key, raw in table.items():
            if key == "distribution":
                continue
            q = parse_quantity(raw)
            if key == "cv":
                if q.dim is not dimensionless_dim():
                    raise DistributionError(f"'cv' must be dimensionless, got {raw!r}")
            else:
                if dim is None:
                    dim = q.dim
                elif q.dim is not dim:
                    raise DistributionError(
                        f"'{key}' = {raw!r} has units of {dimension_name(q.dim)}, but other "
                        f"values have units of {dimension_name(dim)}")
            params[key] = float(q)
        dist = cls(kind, params, dim)
        dist._check()
        return dist

    def _check(self):
        p = self.params
        for key, value in p.items():
            if not math.isfinite(value):
                raise DistributionError(f"'{key}' must be finite, got {value}")
        if "cv" in p and p["cv"] <= 0:
            raise DistributionError(f"cv must be > 0, got {p['cv']}")
        if self.kind in ("gamma", "lognormal") and p["mean"] <= 0:
            raise DistributionError(
                f"a {self.kind} distribution needs a positive mean, got {p['mean']}")
        if self.kind == "normal":
            if "cv" in p and "std" in p:
                raise DistributionError("give either 'cv' or 'std', not both")
            if "cv" not in p and "std" not in p:
                raise DistributionError("a normal distribution needs 'cv' or 'std'")
            if p.get("std", 1.0) <= 0:
                raise DistributionError(f"std must be > 0, got {p['std']}")
        low, high = p.get("low", -math.inf), p.get("high", math.inf)
        if not low < high:
            raise DistributionError(f"'low' ({low}) must be below 'high' ({high})")
        if self.kind == "normal" and not low <= p["mean"] <= high:
            raise DistributionError(f"mean {p['mean']} lies outside [low, high] = [{low}, {high}]")

    def check_bound(self, low=0.0, inclusive=False, what="the parameter must be positive"):
        """Raise unless samples stay finite and above ``low`` (``>= low`` if ``inclusive``).

        Checked on the float64 quantiles at ``1e-12`` and ``1 - 1e-12``, so values that round
        to the bound count as reaching it.

        >>> wide = Distribution.from_table("tau", {"distribution": "gamma", "mean": "20*ms", "cv": 1e3})
        >>> wide.check_bound()
        Traceback (most recent call last):
        ...
        neurocode.cards.heterogeneity.DistributionError: ... values equal to or below 0 (as low as 0 in float64); ...
        """
        dist = self.scipy()
        lo, hi = float(dist.ppf(QUANTILE)), float(dist.ppf(1 - QUANTILE))
        if self.kind in ("normal", "uniform"):         # samples can hit 'low' itself
            lo = min(lo, self.params.get("low", -math.inf))
        if not (lo >= low if inclusive else lo > low):
            values = "values below" if inclusive else "values equal to or below"
            raise DistributionError(f"{what}, but this {self.kind} distribution can give {values} {low:g} "
                                    f"(as low as {lo:g} in float64); "
                                    + ("lower its spread" if self.kind in ("gamma", "lognormal")
                                       else f"set 'low' {'to' if inclusive else 'above'} {low:g}"))
        if not math.isfinite(hi):
            raise DistributionError(f"this {self.kind} distribution gives values too large for float64")

    def scipy(self):
        """The equivalent frozen ``scipy.stats`` distribution (SI units)."""
        p = self.params
        if self.kind == "gamma":
            shape = 1.0 / p["cv"] ** 2
            return stats.gamma(a=shape, scale=p["mean"] / shape)
        if self.kind == "lognormal":
            sigma2 = math.log1p(p["cv"] ** 2)
            return stats.lognorm(s=math.sqrt(sigma2), scale=p["mean"] * math.exp(-sigma2 / 2))
        if self.kind == "uniform":
            return stats.uniform(loc=p["low"], scale=p["high"] - p["low"])
        std = p["std"] if "std" in p else p["cv"] * abs(p["mean"])
        low, high = p.get("low", -math.inf), p.get("high", math.inf)
        return stats.truncnorm((low - p["mean"]) / std, (high - p["mean"]) / std,
                               loc=p["mean"], scale=std)

    def sample(self, n, seed=None):
        """Draw ``n`` values (SI floats, float64) with a ``numpy`` generator or seed."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return np.asarray(self.scipy().rvs(size=n, random_state=rng), dtype=np.float64)

    def to_table(self):
        """Plain dict (SI floats) for saving inside a NetworkSpec."""
        return {"distribution": self.kind, **self.params}


def dimensionless_dim():
    from brian2.units.fundamentalunits import DIMENSIONLESS
    return DIMENSIONLESS
