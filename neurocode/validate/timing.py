"""Spike times within the time step for pure-integrator cards (exact TTFS validation).

On a clock, Brian2 detects a threshold crossing at the end of the step it happened in and
a spike acts on its targets from the next step on, so every layer of a time-to-first-spike
network adds up to one step of timing error. For a card whose thresholded variable is a
pure integrator of a synaptic drive that is constant between events,

    dv/dt = X / tau,     on_pre: X_post += w,

both errors can be removed without changing the dynamics (the interpolation scheme of
Hansel et al. 1998, Neural Comput. 10:467, which is exact here because ``v`` is piecewise
linear):

* **one step behind.** An input spike in the step starting at ``t`` is delivered after the
  targets' update of that step, so it acts from ``t + dt``. The Brian2 network therefore
  runs exactly one step behind torch's clock: an input at ``tau`` (on the grid) drives its
  targets from ``tau + dt`` with ``on_pre`` unchanged, window ends move one step later,
  and spike times are reported on torch's clock.
* **crossing time.** A subexpression ``t_lag = (v - v_th) tau / X`` is how long before the
  step's end the line through ``v`` with slope ``X / tau`` met threshold (clipped to the two
  steps the crossing can lie in), and ``t_spike = t + dt - t_lag`` on Brian2's clock, ``t - t_lag`` on torch's. A
  neuron forced to fire at its window's end (:func:`~neurocode.validate.variants.window_end_rule`,
  ``v < v_th``) has ``t_lag = dt``: its ``t_spike`` is the window end. The card declares
  ``spike_time = "t_spike"``; the spike monitor reads it when the threshold is tested.
* **late delivery.** A population's spike reaches its targets after their update of the
  step; ``on_pre`` adds the ramp they missed up to the step's end,
  ``v_post += w t_lag_pre / tau_post``. For this ``on_pre`` must read ``t_lag_pre`` before
  that step's incoming spikes change the presynaptic ``v`` and ``X``: the builder runs
  projections from deeper populations first (:func:`~neurocode.brian.builder.build_network`).

With inputs on the time grid, the Brian2 potentials on the grid then equal the closed form
and spike times differ from it only where a population's spike arrives in the step of a
crossing (the threshold is tested before that step's spikes are delivered).
Input times off the grid are rounded to the nearest step (:func:`grid_times`).
"""

from __future__ import annotations

import ast

import numpy as np
from brian2.core.namespace import DEFAULT_UNITS

from neurocode.cards.meaning import synaptic_statements
from neurocode.errors import NetworkSpecError

#: Name of the subexpression that holds the exact spike time, on torch's clock (s).
SPIKE_TIME = "t_spike"
#: Name of the subexpression: time from the crossing to the end of the step (s).
LAG = "t_lag"


def grid_times(times, dt):
    """Times (s) rounded to the nearest multiple of ``dt`` (NaN stays NaN)."""
    return np.round(np.asarray(times, dtype=np.float64) / dt) * dt


def _integrator(e):
    """``(X, tau)`` of a card with ``dv/dt = X / tau`` and ``on_pre: X_post += w``; else fail."""
    rhs = e.rhs(e.v)
    tree = ast.parse(rhs, mode="eval").body
    if not (isinstance(tree, ast.BinOp) and isinstance(tree.op, ast.Div)
            and isinstance(tree.left, ast.Name) and isinstance(tree.right, ast.Name)):
        e.fail(f"spike-time interpolation needs 'd{e.v}/dt = X/tau' (a pure integrator), got '{rhs}'")
    drive, tau = tree.left.id, tree.right.id
    if drive not in e.card.equations.names or tau not in e.card.defaults:
        e.fail(f"in 'd{e.v}/dt = {rhs}', '{drive}' must be a variable and '{tau}' a parameter")
    if e.card.defaults[tau].dim is not DEFAULT_UNITS["second"].dim:
        e.fail(f"'{tau}' in 'd{e.v}/dt = {rhs}' must be a time")
    if e.meaning(synaptic_statements) != [(drive, "+=", e.card.weight)]:
        e.fail(f"spike-time interpolation needs on_pre '{drive}_post += {e.card.weight}', got '{e.card.on_pre}'")
    return drive, tau


def interpolated_timing(spec):
    """A copy of ``spec`` whose cards report and deliver spikes at their interpolated times.

    Needs every population's card to be a pure integrator (see module docstring), no
    synaptic delays, and each population fed either by inputs only or by populations only
    (only the latter get the ``on_pre`` correction). Apply it after
    :func:`~neurocode.validate.variants.window_end_rule`, whose window ends it moves.
    Raises ``VariantError`` (or ``NetworkSpecError``) naming what does not fit.
    """
    from neurocode.validate.variants import rewrite_cards

    if any(p.delays is not None for p in spec.projections):
        raise NetworkSpecError("spike-time interpolation does not handle synaptic delays; use timing='grid'")
    sources = {name: set() for name in spec.populations}
    for p in spec.projections:
        sources[p.target].add("input" if p.source in spec.inputs else "population")
    mixed = [name for name, kinds in sources.items() if len(kinds) > 1]
    if mixed:
        raise NetworkSpecError(f"spike-time interpolation: population(s) {mixed} receive both input and "
                               "population spikes; use timing='grid'")

    def edit(e):
        drive, tau = _integrator(e)
        v, v_th, w = e.v, e.v_th, e.card.weight
        crossed = f"int({v} >= {v_th} and {drive} > 0)"
        lag = f"clip(({v} - {v_th})*{tau}/({drive} + int({drive} <= 0)), 0*second, 2*dt)"
        e.neuron["equations"] = (e.neuron["equations"].rstrip("\n")
                                 + f"\n{LAG} = {crossed}*{lag} + (1 - {crossed})*dt : second"
                                 + f"\n{SPIKE_TIME} = t - {LAG} : second\n")    # one step behind: see above
        e.neuron["spike_time"] = SPIKE_TIME
        if sources[e.pop.name] == {"population"}:
            e.data["synapse"]["on_pre"] = f"{e.card.on_pre.strip()}\n{v}_post += {w}*{LAG}_pre/{tau}_post"
        if "t_end" in e.params:                                   # window_end_rule's window ends
            e.params["t_end"] = e.params["t_end"] + spec.dt

    out = rewrite_cards(spec, "interpolated_timing", edit)
    out.metadata["timing"] = "interpolated"
    return out
