"""Biologically detailed variants of a trained network: transformations of its spec and cards.

Each variant takes a :class:`~neurocode.spec.NetworkSpec` and a *strength* and returns a
new spec; variants combine by applying them in turn. Variants that change the dynamics
rewrite the model card: the card's TOML is parsed, edited, written back as TOML text and
loaded with :func:`neurocode.cards.card_from_string`, so every card check (identifiers,
units) applies to the result and the new card's hash names it in the spec.

=================  =========================================================  ============
variant            what changes                                               strength
=================  =========================================================  ============
``leak``           ``dv/dt`` gains ``-(v - v_r)/tau_leak`` (non-leaky cards)   ``tau_ref / tau_leak``
``conductance``    synaptic drive ``X`` becomes ``X_e (E_e - v)/(E_e - v_r)    ``s``: drive at threshold
                   + X_i (E_i - v)/(E_i - v_r)`` with reversal potentials     x (1 - s) exc., (1 + s) inh.
                   ``E_e = v_r + (v_th - v_r)/s``, ``E_i = v_r - (v_th - v_r)/s``
``delays``         every synapse gets an axonal delay ~ U(0, strength) ms,     max delay (ms)
                   rounded to the time step
``noise``          ``dv/dt`` gains ``sigma xi / sqrt(tau_ref)`` (Euler)        ``sigma / (v_th - v_r)``
``heterogeneity``  every ``tau*`` parameter x Gamma(mean 1, CV = strength)     CV
``quantize``       weights rounded to ``k`` bits (symmetric, per projection)   ``k``
``dt``             the time step is multiplied by the strength                 factor
=================  =========================================================  ============

Here ``v`` is the card's thresholded state variable, ``v_r`` its initial (rest) value,
``v_th`` the parameter it is compared with and ``tau_ref`` the first time constant in
``dv/dt``. Strength 0 (or, for ``quantize``, no variant) leaves the network unchanged.

>>> parse_variant("leak=0.5"), parse_variant("quantize")
(('leak', 0.5), ('quantize', 8.0))
"""

from __future__ import annotations

import copy
import logging
import math
import re
import tomllib

import numpy as np
from brian2.core.namespace import DEFAULT_UNITS
from brian2.units.fundamentalunits import DIMENSIONLESS

from neurocode.checks import check_values, on_grid
from neurocode.errors import ModelCardError, NetworkSpecError, NeurocodeError
from neurocode.cards.meaning import (CardMeaningError, synaptic_statements, threshold_parameter,
                                     threshold_variable, time_constant)
from neurocode.cards import card_from_string
from neurocode.cards.expressions import ExpressionError, evaluate
from neurocode.spec import Population, Projection
from neurocode.io import to_toml
from neurocode.units import dimension_name

logger = logging.getLogger(__name__)

#: Strength used when a variant is named without ``=STRENGTH``.
DEFAULT_STRENGTH = {"leak": 0.5, "conductance": 0.5, "delays": 0.5, "noise": 0.05,
                    "heterogeneity": 0.2, "quantize": 8.0, "dt": 2.0}


class VariantError(NeurocodeError, ValueError):
    """A variant is unknown, has a bad strength, or does not apply to a card."""




def _si(expr, params, where):
    """Evaluate a card expression (units, parameters) to SI per-neuron values."""
    namespace = {name: float(unit) for name, unit in DEFAULT_UNITS.items()}
    namespace.update(params)
    try:
        value = evaluate(expr, namespace)
    except ExpressionError as exc:
        raise VariantError(f"{where}: {exc}") from None
    return check_values(value, where, error=VariantError)


def _unit_text(dim):
    return "1" if dim is DIMENSIONLESS else dimension_name(dim)


def _quantity_text(value, dim):
    return repr(float(value)) if dim is DIMENSIONLESS else f"{float(value)!r}*{dimension_name(dim)}"


class _CardEdit:
    """A card's TOML data being edited, with new per-neuron parameter values."""

    def __init__(self, pop, variant):
        self.pop, self.card, self.variant = pop, pop.card, variant
        self.data = tomllib.loads(pop.card.text)
        self.neuron = self.data["neuron"]
        self.params = dict(pop.params)

    def fail(self, problem):
        raise VariantError(f"variant '{self.variant}' does not apply to card '{self.card.name}' "
                           f"(population '{self.pop.name}'): {problem}")

    # the thresholded variable, its threshold parameter, rest value and time constant
    # (neurocode.cards.meaning answers for the card)
    def meaning(self, question, *args):
        try:
            return question(self.card, *args)
        except CardMeaningError as exc:
            self.fail(str(exc))

    @property
    def v(self):
        return self.meaning(threshold_variable)

    @property
    def v_th(self):
        return self.meaning(threshold_parameter)

    @property
    def v_rest(self):
        dim = self.card.dimension(self.v)
        return self.card.initial.get(self.v, "0" if dim is DIMENSIONLESS else f"0*{dimension_name(dim)}")

    def v_range(self):
        """``v_th - v_r`` per neuron (SI)."""
        rest = _si(self.v_rest, self.params, self.where(f"initial value of '{self.v}'"))
        return self.params[self.v_th] - np.broadcast_to(rest, (self.pop.size,))

    def where(self, what):
        return f"variant '{self.variant}', card '{self.card.name}' (population '{self.pop.name}'), {what}"

    def line_pattern(self, var):
        return re.compile(rf"^(\s*d{var}/dt\s*=)([^:]*)(:.*)$", re.M)

    def rhs(self, var):
        match = self.line_pattern(var).search(self.neuron["equations"])
        if match is None:
            self.fail(f"no 'd{var}/dt = ...' line in its equations")
        return match.group(2).strip()

    def set_rhs(self, var, expr):
        self.neuron["equations"] = self.line_pattern(var).sub(
            lambda m: f"{m.group(1)} {expr} {m.group(3)}", self.neuron["equations"], count=1)

    @property
    def tau_ref(self):
        return self.meaning(time_constant, self.v)

    def add_parameter(self, name, values, dim):
        if name in self.card.defaults or name in self.card.equations.names:
            self.fail(f"it already has a variable named '{name}' (variant applied twice?)")
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), (self.pop.size,)).copy()
        # the card default is a placeholder (the spec carries every neuron's value): a sweep over
        # strengths keeps the card text, hence one compiled standalone project per variant
        self.data.setdefault("parameters", {})[name] = _quantity_text(1.0, dim)
        self.params[name] = values

    def population(self):
        self.data["name"] = f"{self.card.name}+{self.variant}"
        self.neuron["method"] = _integrator_method(self.neuron["equations"], self.neuron.get("method", "exact"))
        text = to_toml(self.data)
        try:
            card = card_from_string(text, name=self.data["name"], source=f"{self.card.source}+{self.variant}")
        except ModelCardError as exc:
            raise VariantError(f"variant '{self.variant}' made an invalid card from '{self.card.name}': "
                               f"{exc}") from exc
        return Population(self.pop.name, card, self.pop.size, self.params)


def rewrite_cards(spec, variant, edit):
    """A copy of ``spec`` whose populations went through ``edit(_CardEdit)``."""
    out = copy.copy(spec)
    out.populations, out.metadata = {}, copy.deepcopy(spec.metadata)
    for name, pop in spec.populations.items():
        e = _CardEdit(pop, variant)
        edit(e)
        out.populations[name] = e.population()
    out.projections = list(spec.projections)
    return out


# -- the variants ----------------------------------------------------------------------------
def leak(spec, strength, rng):
    """Finite membrane time constant ``tau_leak = tau_ref / strength`` (non-leaky cards only)."""
    def edit(e):
        v, rhs = e.v, e.rhs(e.v)
        if re.search(rf"\b{v}\b", rhs):
            e.fail(f"d{v}/dt already depends on {v} (the card is leaky); 'leak' adds a leak to non-leaky cards")
        tau = e.tau_ref
        e.add_parameter("tau_leak", e.params[tau] / strength, DEFAULT_UNITS["second"].dim)
        e.set_rhs(v, f"{rhs} - ({v} - ({e.v_rest}))/tau_leak")
    return rewrite_cards(spec, "leak", edit)


def conductance(spec, strength, rng):
    """Conductance-based synapses with reversal potentials set by ``strength`` (see table)."""
    if not 0 < strength:
        raise VariantError(f"variant 'conductance' needs a strength > 0, got {strength}")

    def edit(e):
        statements = e.meaning(synaptic_statements)
        if len(statements) != 1 or statements[0][1] != "+=":
            e.fail(f"its on_pre '{e.card.on_pre}' is not one statement 'X_post += f(w)'")
        x, _, f = statements[0]
        v, dim_v = e.v, e.card.dimension(e.v)
        if x not in e.card.equations.names:
            e.fail(f"on_pre targets '{x}', which is not a variable of its equations")
        dim_x = e.card.dimension(x)
        lines = e.neuron["equations"].splitlines()
        pattern = re.compile(rf"^\s*(d{x}/dt\s*=|{x}\s*:)")
        new = []
        for line in lines:
            if pattern.match(line):
                new += [re.sub(rf"\b{x}\b", f"{x}_{k}", line.replace(f"d{x}/dt", f"d{x}_{k}/dt")) for k in "ei"]
            else:
                new.append(line)
        rest = e.v_rest
        new.append(f"{x} = {x}_e*(E_exc - {v})/(E_exc - ({rest})) + {x}_i*(E_inh - {v})/(E_inh - ({rest})) "
                   f": {_unit_text(dim_x)}")
        e.neuron["equations"] = "\n".join(new) + "\n"
        v_r = np.broadcast_to(_si(rest, e.params, e.where(f"initial value of '{v}'")), (e.pop.size,))
        span = e.v_range()
        e.add_parameter("E_exc", v_r + span / strength, dim_v)
        e.add_parameter("E_inh", v_r - span / strength, dim_v)
        zero = "0" if dim_x is DIMENSIONLESS else f"0*{dimension_name(dim_x)}"
        e.data["synapse"]["on_pre"] = (f"{x}_e_post += ({f})*int(({f}) > {zero})\n"
                                       f"{x}_i_post += ({f})*int(({f}) < {zero})")
        if e.neuron.get("method", "exact") in ("exact", "linear"):   # v now multiplies the drive
            e.neuron["method"] = "exponential_euler"
    return rewrite_cards(spec, "conductance", edit)


def noise(spec, strength, rng):
    """Membrane noise: ``dv/dt += sigma xi / sqrt(tau_ref)``, ``sigma = strength (v_th - v_r)``."""
    def edit(e):
        v = e.v
        tau = e.tau_ref
        e.add_parameter("sigma_noise", strength * e.v_range(), e.card.dimension(v))
        e.set_rhs(v, f"{e.rhs(v)} + sigma_noise*xi/sqrt({tau})")
        e.neuron["method"] = "euler"
    return rewrite_cards(spec, "noise", edit)


def heterogeneity(spec, strength, rng):
    """Every ``tau*`` parameter multiplied per neuron by Gamma(mean 1, CV = strength)."""
    out = copy.copy(spec)
    out.populations = {}
    shape = 1.0 / strength ** 2
    for name, pop in spec.populations.items():
        taus = [k for k, q in pop.card.defaults.items()
                if k.startswith("tau") and q.dim is DEFAULT_UNITS["second"].dim]
        if not taus:
            raise VariantError(f"variant 'heterogeneity' does not apply to card '{pop.card.name}' "
                               f"(population '{name}'): it has no time constant named tau*")
        params = dict(pop.params)
        for k in taus:
            params[k] = params[k] * rng.gamma(shape, 1.0 / shape, pop.size)
        out.populations[name] = Population(name, pop.card, pop.size, params)
    return out


def quantize(spec, strength, rng):
    """Weights rounded to ``k = strength`` bits: ``2^(k-1) - 1`` levels each side of 0."""
    bits = int(round(strength))
    if bits != strength or bits < 2:
        raise VariantError(f"variant 'quantize' needs an integer number of bits >= 2, got {strength}")
    out = copy.copy(spec)
    out.projections = []
    levels = 2 ** (bits - 1) - 1
    for p in spec.projections:
        scale = np.abs(p.weights).max() / levels if p.weights.size else 0.0
        w = np.round(p.weights / scale) * scale if scale > 0 else p.weights.copy()
        out.projections.append(Projection(p.source, p.target, p.i, p.j, w, p.delays, p.name))
    return out


def delays(spec, strength, rng):
    """Heterogeneous axonal delays ~ U(0, strength ms), added to existing ones, rounded to the time step."""
    out = copy.copy(spec)
    out.projections = []
    for p in spec.projections:
        d = rng.uniform(0.0, strength * 1e-3, p.i.size)
        d = on_grid(d if p.delays is None else p.delays + d, spec.dt, f"projection '{p.name}', delays", rounding=True)
        out.projections.append(Projection(p.source, p.target, p.i, p.j, p.weights, d, p.name))
    return out


def time_step(spec, strength, rng):
    """Time step multiplied by ``strength``; delays rounded to the new time step."""
    out = copy.copy(spec)
    out.dt = spec.dt * strength
    out.projections = [p if p.delays is None else
                       Projection(p.source, p.target, p.i, p.j, p.weights,
                                  on_grid(p.delays, out.dt, f"projection '{p.name}', delays", rounding=True), p.name)
                       for p in spec.projections]
    return out


VARIANTS = {"leak": leak, "conductance": conductance, "delays": delays, "noise": noise,
            "heterogeneity": heterogeneity, "quantize": quantize, "dt": time_step}


def parse_variant(text):
    """``"NAME[=STRENGTH]"`` -> ``(name, strength)``; unknown names raise :class:`VariantError`."""
    name, _, value = str(text).partition("=")
    name = name.strip()
    if name not in VARIANTS:
        raise VariantError(f"unknown variant '{name}'; choose from {', '.join(VARIANTS)}")
    if not value.strip():
        return name, DEFAULT_STRENGTH[name]
    try:
        strength = float(value)
    except ValueError:
        raise VariantError(f"variant '{name}': strength must be a number, got {value!r}") from None
    if not math.isfinite(strength) or strength < 0:
        raise VariantError(f"variant '{name}': strength must be a finite number >= 0, got {strength}")
    if name == "dt" and strength <= 0:
        raise VariantError("variant 'dt': the factor must be > 0")
    return name, strength


def apply_variants(spec, variants, seed=0):
    """Apply variants (``"name=strength"`` strings or ``(name, strength)`` pairs) in order.

    Returns a new spec; ``spec`` is not changed. ``metadata["variants"]`` lists what was
    applied. Strength 0 skips a variant (except ``dt`` and ``quantize``, where it is invalid).
    """
    rng = np.random.default_rng([int(seed), 7919])
    out = spec
    applied = []
    for item in variants or ():
        name, strength = parse_variant(item) if isinstance(item, str) else parse_variant(f"{item[0]}={item[1]}")
        if strength == 0 and name not in ("dt", "quantize"):
            continue
        out = VARIANTS[name](out, strength, rng)
        applied.append([name, strength])
    if applied:
        out = copy.copy(out)
        out.metadata = dict(copy.deepcopy(spec.metadata), variants=applied)
    return out


def _integrator_method(equations, method):
    """``"euler"`` for exact pure integrators (Brian2's ``exact`` cannot solve them), else ``method``.

    Brian2's linear solver fails on ``dv/dt = I_syn/tau_s`` (a singular, nilpotent system);
    when no differential right-hand side depends on a differential variable, forward Euler
    integrates a drive that is constant within each step exactly.

    >>> _integrator_method("dv/dt = I/tau : 1\\nI : 1", "exact"), _integrator_method("dv/dt = -v/tau : 1", "exact")
    ('euler', 'exact')
    """
    if method not in ("exact", "linear"):
        return method
    lines = re.findall(r"^\s*d(\w+)/dt\s*=([^:]*):", equations, re.M)
    names = {name for name, _ in lines}
    used = set(re.findall(r"[A-Za-z_]\w*", " ".join(rhs for _, rhs in lines)))
    return method if names & used else "euler"


# -- the TTFS window-end rule ------------------------------------------------------------------
def window_end_rule(spec):
    """Give a TTFS spec saved with an older ``ttfs`` card (no ``t_end``) the window-end rule the card has now.

    The torch layer gives a neuron that has not crossed threshold by the end of its window
    the spike time ``t_end`` (``metadata["non_firing"] == "window_end"``); as an input it then
    drives the next layer from ``t_end``. Here each neuron gets a parameter ``t_end`` (its
    layer's window end) and a variable ``t_start`` (its trial's start, set with the state);
    the threshold becomes ``(CROSSING or t - t_start >= t_end - dt/2) and FLAG == 0``. The
    dynamics are not changed. Needs a card that fires at most once through a reset ``FLAG = 1``.
    """
    windows = spec.metadata.get("windows")
    pops = list(spec.populations)
    if windows is None or len(windows) != len(pops):
        raise NetworkSpecError(f"window_end_rule: spec metadata 'windows' must list one window end per "
                               f"population ({len(pops)}), got {windows}")
    ends = dict(zip(pops, windows))

    def edit(e):
        match = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*=\s*1\s*", e.card.reset or "")
        if match is None:
            e.fail(f"its reset '{e.card.reset}' is not 'FLAG = 1' (a neuron that fires at most once)")
        flag = match.group(1)
        cond = re.sub(rf"\band\s+{flag}\s*==\s*0\b|\b{flag}\s*==\s*0\s+and\b", "", e.card.threshold).strip()
        e.neuron["threshold"] = f"(({cond}) or t - t_start >= t_end - 0.5*dt) and {flag} == 0"
        e.neuron["equations"] = e.neuron["equations"].rstrip("\n") + "\nt_start : second\n"
        e.neuron.setdefault("initial", {})["t_start"] = "t"
        e.add_parameter("t_end", np.full(e.pop.size, ends[e.pop.name]), DEFAULT_UNITS["second"].dim)
    return rewrite_cards(spec, "window_end", edit)
