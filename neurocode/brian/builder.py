"""Build a ``brian2.Network`` from a :class:`~neurocode.spec.NetworkSpec`.

Each population becomes a ``NeuronGroup`` of its card's ``full_equations`` (every card
parameter a per-neuron constant, set from ``pop.params``), each input a
``SpikeGeneratorGroup``, each projection a ``Synapses`` object with the *target*
card's synapse model, connected by ``i, j``; weights (and delays, if any) are set per
synapse. Within a step's synapse slot, projections from deeper populations (longer path
from an input) run first, so ``on_pre`` code that reads presynaptic state sees it as the
threshold did, before that step's incoming spikes change it. Every spiking group gets a
``SpikeMonitor`` (which also records the card's ``spike_time`` variable, if it has one,
and reports it as the spike time); requested state variables a
``StateMonitor``. Brian2's default schedule applies (state update, thresholds,
synapses, resets). The builder must run inside :func:`neurocode.brian.devices.device_context`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np
from brian2 import (Network, NeuronGroup, Quantity, SpikeGeneratorGroup, SpikeMonitor,
                    StateMonitor, Synapses, second)
from brian2.core.namespace import DEFAULT_UNITS
from brian2.core.variables import VariableView

from neurocode.cards.card import IMPLICIT
from neurocode.cards.expressions import ExpressionError, parse_expression
from neurocode.checks import check_values
from neurocode.errors import NetworkSpecError

logger = logging.getLogger(__name__)

#: Timebin given to unused slots of a fixed-capacity input (never reached: int32 max).
NEVER = np.iinfo(np.int32).max


def brian_name(prefix, name):
    """A valid, deterministic Brian2 object name for a spec name."""
    return f"{prefix}_{re.sub(r'[^0-9A-Za-z_]', '_', name)}"


def check_record(spec, record):
    """Validate ``record`` (population -> list of variable names); returns a clean dict."""
    record = dict(record or {})
    clean = {}
    for pop, names in record.items():
        if pop not in spec.populations:
            raise NetworkSpecError(f"record: no population named '{pop}'; have {sorted(spec.populations)}")
        names = [names] if isinstance(names, str) else list(names)
        card = spec.populations[pop].card
        known = set(card.equations.names) | set(card.defaults)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise NetworkSpecError(f"record: population '{pop}' (card '{card.name}') has no variable(s) "
                                   f"{unknown}; it has {sorted(known)}")
        if names:
            clean[pop] = names
    return clean


def initial_values(pop, overrides=None):
    """Initial values of ``pop``'s variables as SI arrays where they can be computed here.

    The population's stored values (``pop.initial``: random draws made from the spec's seed)
    come first. Card expressions are read by :mod:`neurocode.cards.expressions`: those that
    use only parameters, units and functions are evaluated here; those with other variables of
    the group are left to Brian2 (value ``str``). Values must be finite. ``overrides`` maps
    variable names to SI arrays/scalars or Brian2 expressions.
    """
    namespace = {name: float(unit) for name, unit in DEFAULT_UNITS.items()}
    namespace.update(pop.params)
    namespace["t"] = 0.0      # a network starts at t = 0 (Brian2's clock may still hold a past run's t)
    group_names = set(namespace) | set(pop.card.equations.names) | set(IMPLICIT)
    out = {}
    exprs = dict(pop.card.initial)
    exprs.update(pop.initial)           # stored per-neuron values (random draws) win over the card
    exprs.update(overrides or {})
    for var, expr in exprs.items():
        if var not in pop.card.equations.names:
            raise NetworkSpecError(f"initial value for '{var}': population '{pop.name}' (card "
                                   f"'{pop.card.name}') has no such state variable")
        where = f"population '{pop.name}', initial value of '{var}'"
        if not isinstance(expr, str):
            value = expr
        else:
            try:
                parsed = parse_expression(expr, group_names)
                if parsed.random or not parsed.names <= set(namespace):
                    out[var] = expr          # evaluated by Brian2 inside the group
                    continue
                value = parsed.evaluate(namespace)
            except ExpressionError as exc:
                raise NetworkSpecError(f"{where}: {exc}") from None
        try:
            value = np.broadcast_to(np.asarray(value, dtype=np.float64), (pop.size,)).copy()
        except (TypeError, ValueError) as exc:
            raise NetworkSpecError(f"{where}: {exc}") from None
        out[var] = check_values(value, where)
    return out


@dataclass
class BuiltNetwork:
    """Brian2 objects built from a spec, by spec name."""

    network: Network
    groups: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    synapses: dict = field(default_factory=dict)
    spike_monitors: dict = field(default_factory=dict)
    state_monitors: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)
    input_capacity: dict = field(default_factory=dict)
    spike_time: dict = field(default_factory=dict)

    def view(self, kind, name, var):
        """A ``VariableView`` for ``run_args`` (also of read-only internals).

        ``kind`` is ``"groups"``, ``"inputs"`` or ``"synapses"`` (names may repeat across kinds).
        """
        group = getattr(self, kind)[name]
        variable = group.variables[var]
        return VariableView(var, variable, group, dimensions=variable.dim)


def source_depth(spec):
    """Length of the shortest path from an input to every input and population (0 if none).

    >>> from neurocode.spec import NetworkSpec
    >>> spec = NetworkSpec(dt=1e-4)
    >>> spec.add_input("in", 2)
    >>> for name in ("a", "b"):
    ...     _ = spec.add_population(name, "ttfs", 2)
    >>> for source, target in [("in", "a"), ("a", "b"), ("b", "b")]:
    ...     _ = spec.connect(source, target, weight=1.0)
    >>> sorted(source_depth(spec).items())
    [('a', 1), ('b', 2), ('in', 0)]
    """
    depth = {name: 0 for name in spec.inputs}
    frontier = list(spec.inputs)
    while frontier:
        nxt = []
        for p in spec.projections:
            if p.source in frontier and p.target not in depth:
                depth[p.target] = depth[p.source] + 1
                nxt.append(p.target)
        frontier = nxt
    return {**{name: 0 for name in spec.populations}, **depth}


def trial_reset_code(pop, group, overrides=None):
    """Brian2 statements setting ``pop``'s state back to its initial values (trial resets).

    Variables with a card ``initial`` expression get it again; the others get zero;
    refractoriness is cleared. Parameters (``(constant)`` variables) are left alone.
    """
    from brian2.equations.equations import SUBEXPRESSION
    from brian2.units.fundamentalunits import DIMENSIONLESS

    from neurocode.units import dimension_name

    lines, exprs = [], dict(pop.card.initial, **(overrides or {}))
    for eq in pop.card.equations.ordered:
        if eq.type == SUBEXPRESSION:
            continue
        zero = "0" if eq.dim is DIMENSIONLESS else f"0*{dimension_name(eq.dim)}"
        lines.append(f"{eq.varname} = {exprs.get(eq.varname, zero)}")
    if "lastspike" in group.variables:
        lines += ["lastspike = -1e4*second", "not_refractory = True"]
    return "\n".join(lines)


def build_network(spec, record=None, initial=None, input_capacity=None, duration=None, trial_period=None):
    """Create the Brian2 objects for ``spec`` on the active device.

    Parameters
    ----------
    spec : NetworkSpec
    record : dict of str -> list of str, optional
        State variables to record per population (every neuron, every step).
    initial : dict of str -> dict, optional
        Per population, initial values overriding the card's (SI arrays or expressions).
    input_capacity : dict of str -> int, optional
        Standalone re-runs: spike slots per input. Unused slots are padded with spikes
        that never fire, so later runs may bring up to that many spikes via ``run_args``.
    duration : float, optional
        Simulated time (s); needed with ``input_capacity`` to place the padding.
    trial_period : float, optional
        Trials concatenated in time (s): at ``t = k * trial_period`` (``when="start"``, before
        anything else of the step) every population's state variables are set back to their
        card's initial values, so trial ``k`` does not depend on trial ``k - 1``. Spikes still
        in flight on delayed synapses are not cleared: make the period longer than the delays.

    Returns
    -------
    BuiltNetwork
    """
    record = check_record(spec, record)
    initial = initial or {}
    unknown = set(initial) - set(spec.populations)
    if unknown:
        raise NetworkSpecError(f"initial: no population(s) {sorted(unknown)}; have {sorted(spec.populations)}")
    built = BuiltNetwork(network=Network(name="neurocode_network"), record=record)
    objects = []
    for pop in spec.populations.values():
        card = pop.card
        group = NeuronGroup(pop.size, card.full_equations, threshold=card.threshold, reset=card.reset,
                            refractory=card.refractory or False, method=card.method,
                            name=brian_name("pop", pop.name), namespace={})
        for key, value in pop.params.items():
            setattr(group, key + "_", value)
        for var, value in initial_values(pop, initial.get(pop.name)).items():
            if isinstance(value, str):       # evaluated by Brian2 inside the group
                setattr(group, var, value)
            else:
                setattr(group, var + "_", value)
        built.groups[pop.name] = group
        objects.append(group)
        if trial_period is not None:
            if any(not isinstance(v, str) for v in (initial.get(pop.name) or {}).values()):
                raise NetworkSpecError(f"population '{pop.name}': trial resets use the card's initial "
                                       "expressions; give initial overrides as Brian2 expressions")
            reset_code = trial_reset_code(pop, group, initial.get(pop.name))
            objects.append(group.run_regularly(reset_code, dt=trial_period * second,
                                               when="start", name=brian_name("trial_reset", pop.name)))
        if card.threshold:
            exact = [card.spike_time] if card.spike_time else []
            mon = SpikeMonitor(group, variables=exact, name=brian_name("spikes", pop.name))
            if card.spike_time:
                built.spike_time[pop.name] = card.spike_time
            built.spike_monitors[pop.name] = mon
            objects.append(mon)
    capacity = dict(input_capacity or {})
    for inp in spec.inputs.values():
        indices, times = inp.indices, inp.times
        cap = capacity.get(inp.name)
        if cap is not None:
            if cap < max(indices.size, 1):
                raise NetworkSpecError(f"input '{inp.name}': capacity {cap} is below its {indices.size} spikes")
            if duration is None:
                raise NetworkSpecError("build_network: input_capacity needs the duration")
            pad = cap - indices.size
            indices = np.concatenate([indices, np.zeros(pad, np.int64)])
            times = np.concatenate([times, duration + spec.dt * (2 + np.arange(pad))])
            built.input_capacity[inp.name] = cap
        gen = SpikeGeneratorGroup(inp.size, indices, times * second, name=brian_name("input", inp.name))
        if cap is not None:      # allow run_args to replace the spike table (same size)
            gen.variables["neuron_index"].read_only = False
            gen.variables["_timebins"].read_only = False
        built.inputs[inp.name] = gen
        mon = SpikeMonitor(gen, name=brian_name("spikes", inp.name))
        built.spike_monitors[inp.name] = mon
        objects += [gen, mon]
    depth = source_depth(spec)
    for proj in spec.projections:
        source = built.groups.get(proj.source) or built.inputs[proj.source]
        target = built.groups[proj.target]
        card = spec.populations[proj.target].card
        if not card.synapse_model:
            raise NetworkSpecError(f"projection {proj.name}: card '{card.name}' of target '{proj.target}' "
                                   "has no synapse model")
        syn = Synapses(source, target, model=card.synapse_model, on_pre=card.on_pre,
                       name=brian_name("syn", proj.name), namespace={})
        syn.pre.order = -1 - depth[proj.source]        # Brian2's default -1 for projections from inputs
        if proj.i.size:
            syn.connect(i=proj.i, j=proj.j)
            setattr(syn, card.weight + "_", proj.weights)
            if proj.delays is not None:
                syn.delay_ = proj.delays
        built.synapses[proj.name] = syn
        objects.append(syn)
    for pop, names in record.items():
        mon = StateMonitor(built.groups[pop], names, record=True, name=brian_name("states", pop))
        built.state_monitors[pop] = mon
        objects.append(mon)
    built.network.add(*objects)
    logger.debug("built %d groups, %d inputs, %d projections", len(built.groups), len(built.inputs),
                 len(built.synapses))
    return built


def monitor_spikes(indices, times, duration, dt, exact=None):
    """A SpikeMonitor's arrays as ``(indices int64, times float64)`` sorted by time.

    Spikes at or after ``duration - dt / 2`` are dropped; ``exact`` (a card's
    ``spike_time`` values, s) replaces the step times where given.
    """
    idx = np.asarray(indices, dtype=np.int64)
    t = np.asarray(times, dtype=np.float64)
    keep = t < duration - 0.5 * dt
    if exact is not None:
        t = np.asarray(exact, dtype=np.float64)
    order = np.argsort(t[keep], kind="stable")
    return idx[keep][order], t[keep][order]


def collect(built, spec, duration):
    """Read spikes and states from the monitors into SI numpy arrays.

    Spike times are the step times, or a card's ``spike_time`` variable where it has one.
    A state variable that ends the run non-finite (overflow, a singular equation) raises
    :class:`~neurocode.errors.NetworkSpecError` rather than returning a silent NaN result.
    """
    for name, group in built.groups.items():
        for var in spec.populations[name].card.state_variables:
            values = np.asarray(getattr(group, var + "_")[:], dtype=np.float64)
            bad = ~np.isfinite(values)
            if bad.any():
                k = int(np.argmax(bad))
                raise NetworkSpecError(f"population '{name}': '{var}' is {values[k]} in neuron {k} at the end of the "
                                       f"run ({int(bad.sum())} of {values.size} neurons): the dynamics overflowed; "
                                       "check the weights and parameters")
    spikes, states = {}, {}
    for name, mon in built.spike_monitors.items():
        exact = getattr(mon, built.spike_time[name] + "_")[:] if name in built.spike_time else None
        spikes[name] = monitor_spikes(mon.i[:], mon.t_[:], duration, spec.dt, exact)
    t = np.zeros(0)
    for pop, mon in built.state_monitors.items():
        t = np.asarray(mon.t_[:], dtype=np.float64)
        states[pop] = {var: np.ascontiguousarray(np.asarray(getattr(mon, var + "_")[:], dtype=np.float64).T)
                       for var in built.record[pop]}
    return spikes, states, t


def as_quantity(view, values):
    """SI values as a Quantity with the dimensions of ``view`` (for ``run_args``)."""
    from brian2.units.fundamentalunits import DIMENSIONLESS
    if view.dim is DIMENSIONLESS:
        return np.ascontiguousarray(values, dtype=view.dtype)
    return Quantity(np.ascontiguousarray(values, dtype=np.float64), dim=view.dim)
