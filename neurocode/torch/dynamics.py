"""One population's dynamics in torch, generated from its model card.

:class:`PopulationDynamics` asks Brian2's own state updater for the card's method
(``exact``, ``euler``, ``rk2``, ``rk4``, ``exponential_euler``...) to produce abstract code
for ``card.full_equations``, renders every statement to torch with
:class:`~neurocode.torch.codegen.TorchNodeRenderer`, and does the same for the
threshold, reset and refractoriness. Nothing is written per model: a new card works as
soon as its TOML file exists.

Within one step it follows Brian2's schedule: the state update (``(unless refractory)``
variables frozen while ``timestep(t - lastspike, dt) < timestep(refractory, dt)``), then the
threshold (``(threshold) and not_refractory``; spiking neurons get ``lastspike = t``),
then (in a network) synaptic propagation, then the reset statements.

The spike nonlinearity acts on a signed, normalised *distance to threshold* derived from
the threshold expression: ``v > v_th + theta`` gives ``x = (v - (v_th + theta)) / scale``,
where ``scale`` (per neuron) is ``|v - (v_th + theta)|`` at the initial state, so ``x = -1``
at rest and ``x = 0`` at threshold. In ``a >= b and c == 0`` the first ordering comparison
on a state variable gives the distance; the other terms are a mask (no gradient).

>>> import torch
>>> from neurocode.cards import load_card
>>> card = load_card("lif")
>>> dyn = PopulationDynamics(card, {"tau_m": [0.01, 0.02]}, dt=1e-4, dtype=torch.float64)
>>> state = dyn.initial_state(batch=3)
>>> sorted(state), tuple(state["v"].shape)
(['I_syn', 'lastspike', 'v'], (3, 2))
>>> state["I_syn"] = state["I_syn"] + 2e-10        # 0.2 nA
>>> spikes, state = dyn.step(state, t=0.0)
>>> tuple(spikes.shape), bool(spikes.sum() == 0)
((3, 2), True)
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from brian2 import second
from brian2.core.variables import Variable
from brian2.equations.equations import DIFFERENTIAL_EQUATION, PARAMETER, SUBEXPRESSION
from brian2.equations.refractory import add_refractoriness
from brian2.parsing.expressions import parse_expression_dimensions
from brian2.stateupdaters.base import StateUpdateMethod
from brian2.units.fundamentalunits import DIMENSIONLESS
from brian2.utils.stringtools import get_identifiers

from neurocode.cards import ModelCard, base_variables, load_card
from neurocode.cards.meaning import CardMeaningError, split_threshold
from neurocode.torch import surrogate as _surrogate
from brian2.core.functions import DEFAULT_CONSTANTS
from brian2.core.namespace import DEFAULT_UNITS

from neurocode.torch.codegen import (TranslationError, compile_block, fold_true, hoist_invariants,
                                         make_namespace, parse_statements)
from neurocode.torch.trainable import parameter_map

logger = logging.getLogger(__name__)

#: Brian2's ``lastspike`` of a neuron that never spiked (seconds).
NEVER = -1e4


class _DtVariable(Variable):
    """``dt`` for Brian2's state updaters (the ``exact`` updater reads its value)."""

    def __init__(self, dt):
        super().__init__("dt", dimensions=second.dim, scalar=True, constant=True, read_only=True)
        self._dt = dt

    def get_value(self):
        return np.array([self._dt])


def brian_variables(equations, dt):
    """The variables dict Brian2's state updaters and unit checks expect."""
    variables = base_variables()
    variables["dt"] = _DtVariable(dt)
    for eq in equations.ordered:
        flags = eq.flags or []
        variables[eq.varname] = Variable(eq.varname, dimensions=eq.dim,
                                         constant="constant" in flags,
                                         dtype=bool if eq.var_type == "boolean" else np.float64)
    return variables


_CODE_CACHE = {}


def state_update_code(card, dt):
    """Brian2's abstract state-update code for ``card`` (with refractoriness applied).

    Cached per (equations, refractoriness, method, dt): sympy's solution of an ``exact``
    system can take seconds.
    """
    key = (str(card.full_equations), bool(card.refractory), card.method, float(dt))
    if key not in _CODE_CACHE:
        _CODE_CACHE[key] = _state_update_code(card, dt)
    return _CODE_CACHE[key]


def _state_update_code(card, dt):
    equations = card.full_equations
    if card.refractory:
        equations = add_refractoriness(equations)
    if not equations.diff_eq_names:
        return ""
    variables = brian_variables(equations, dt)
    try:
        return StateUpdateMethod.apply_stateupdater(equations, variables, card.method,
                                                    group_name=card.name)
    except Exception as exc:  # Brian2 raises UnsupportedEquationsException, ValueError...
        raise TranslationError(f"card '{card.name}': Brian2's '{card.method}' state updater cannot "
                               f"integrate these equations: {type(exc).__name__}: {exc}") from None


class PopulationDynamics(torch.nn.Module):
    """Torch dynamics of ``n`` neurons of one model card, advanced by ``dt`` per step.

    Parameters
    ----------
    card : ModelCard or str
        The model card (or a card name).
    params : dict of str -> array-like, optional
        Per-neuron parameter values in SI units, shape ``(n,)`` or scalar; missing
        parameters take the card's default.
    dt : float
        Time step (seconds).
    spike_fn : SpikeFunction, optional
        Spike nonlinearity (default ``surrogate.superspike(slope=25)``).
    detach_reset : bool
        If True no gradient flows through the spike into the reset
        (``v <- where(spike, v_reset, v)``); otherwise the reset is
        ``v + spike*(v_reset - v)`` for the gradient (its forward value stays exact).
    dtype : torch.dtype
        Float type of states and parameters (``lastspike`` is always float64).
    device : str or torch.device
    n : int, optional
        Number of neurons when every parameter is a scalar.
    generator : torch.Generator, optional
        Random source for stochastic terms (``xi``) and random initial values.
    initial : dict of str -> array-like, optional
        Per-neuron initial values (SI, shape ``(n,)`` or scalar) of state variables, as a
        :class:`~neurocode.spec.Population` stores them; variables not given take the card's
        ``[neuron.initial]`` (0 where it has none).
    trainable : sequence of str
        Parameters trained per neuron: each is an ``nn.Parameter`` ``raw_<name>`` mapped onto
        its valid range (:mod:`neurocode.torch.trainable`); the others are buffers
        ``param_<name>``. ``threshold_scale`` stays as computed from the initial values.
    """

    def __init__(self, card, params=None, dt=1e-4, spike_fn=None, detach_reset=False,
                 dtype=torch.float32, device="cpu", n=None, generator=None, initial=None, trainable=()):
        super().__init__()
        card = card if isinstance(card, ModelCard) else load_card(card)
        self.card, self.dt, self.dtype = card, float(dt), dtype
        if not self.dt > 0:
            raise ValueError(f"dt must be > 0 s, got {dt}")
        self.spike_fn = spike_fn if spike_fn is not None else _surrogate.superspike(25.0)
        self.detach_reset = bool(detach_reset)
        self.generator = generator
        self.n = self._init_params(params or {}, n, device, trainable)
        eqs = card.full_equations
        self.state_names = [eq.varname for eq in eqs.ordered
                            if eq.type == DIFFERENTIAL_EQUATION or
                            (eq.type == PARAMETER and "constant" not in (eq.flags or [])
                             and eq.varname not in card.defaults)]
        self.subexpressions = [(eq.varname, "=", eq.expr.code) for eq in eqs.ordered if eq.type == SUBEXPRESSION]
        self._shape = None
        ns = make_namespace(dtype, lambda: (self._shape, self.param_tensor(card.parameters[0]).device
                                            if card.parameters else "cpu", self.generator))
        ns.update({"dt": self.dt, "N": self.n, "_nc_mix": self._mix})
        self._namespace = ns
        self._args = self.state_names + list(card.defaults) + ["i", "t", "not_refractory"]
        self._build_update(card)
        self._build_refractory(card)
        self._build_threshold_reset(card)
        init = [(name, "=", expr) for name, expr in card.initial.items()]
        self._initial_fn, _ = compile_block("initial", init, list(card.defaults) + ["i", "t"],
                                            list(card.initial), ns, f"card '{card.name}' [neuron.initial]")
        self._init_given(initial or {})
        if self.spiking:
            self._init_scale()
        self._random = self.stochastic
        self.to(device)

    # -- construction ------------------------------------------------------------------------
    def _init_params(self, params, n, device, trainable):
        card = self.card
        unknown = set(params) - set(card.defaults)
        if unknown:
            raise ValueError(f"card '{card.name}' has no parameter(s) {sorted(unknown)}; it has {card.parameters}")
        sizes = {np.size(v) for v in params.values() if np.ndim(v) > 0}
        if n is not None:
            sizes.add(int(n))
        if len(sizes) != 1:
            raise ValueError(f"cannot tell the population size from parameters of sizes {sorted(sizes)}"
                             + ("" if sizes else "; pass n="))
        size = sizes.pop()
        #: name -> ParameterMap of the trainable parameters
        names = (trainable,) if isinstance(trainable, str) else trainable
        self.trainable = {name: parameter_map(card, name) for name in dict.fromkeys(names)}
        self._param_names = [name for name in card.defaults if name not in self.trainable]
        for name, default in card.defaults.items():
            value = params.get(name, float(default))
            value = np.broadcast_to(np.asarray(value, dtype=np.float64), (size,)).copy()
            if name in self.trainable:
                raw = self.trainable[name].raw(torch.as_tensor(value)).to(self.dtype)
                self.register_parameter(f"raw_{name}", torch.nn.Parameter(raw))
            else:
                self.register_buffer(f"param_{name}", torch.as_tensor(value, dtype=self.dtype))
        self.register_buffer("index", torch.arange(size, dtype=self.dtype))
        return size

    def _init_given(self, initial):
        unknown = set(initial) - set(self.state_names)
        if unknown:
            raise ValueError(f"card '{self.card.name}': initial values for {sorted(unknown)}, which are not "
                             f"state variables ({self.state_names})")
        self._initial_names = sorted(initial)
        for name in self._initial_names:
            value = np.broadcast_to(np.asarray(initial[name], dtype=np.float64), (self.n,)).copy()
            self.register_buffer(f"initial_{name}", torch.as_tensor(value, dtype=self.dtype))

    def param_tensor(self, name):
        """The per-neuron tensor (n,) of parameter ``name`` (SI units; trainable ones carry gradients)."""
        if name in self.trainable:
            return self.trainable[name].value(getattr(self, f"raw_{name}"))
        return getattr(self, f"param_{name}")

    @property
    def params(self):
        """Parameters as a dict name -> tensor (n,).

        The fixed ones are cached (refreshed by ``.to()``); trainable ones are mapped from
        their current ``raw_<name>`` at every call, so gradients reach them.
        """
        cache = self.__dict__.get("_param_cache")
        if cache is None:
            cache = {name: self.param_tensor(name) for name in self._param_names}
            self.__dict__["_param_cache"] = cache
        if not self.trainable:
            return cache
        return {**cache, **{name: self.param_tensor(name) for name in self.trainable}}

    @property
    def spiking(self):
        """False for rate cards (no threshold)."""
        return self.card.kind == "spiking" and bool(self.card.threshold)

    def _build_update(self, card):
        code = state_update_code(card, self.dt)
        statements = parse_statements(code, f"card '{card.name}' state update")
        self.update_code = code
        # Brian2 multiplies the right-hand side of '(unless refractory)' equations by
        # int(not_refractory) *and* writes them only where not_refractory holds. We evaluate
        # with not_refractory = True (folded away exactly: x*1 == x), which avoids 0/0 such
        # as exponential Euler's in refractory neurons (it would poison gradients), and keep
        # the old value where refractory. Only if another variable's update depends on
        # not_refractory (coupled systems) is the original code evaluated as well, for those.
        self.frozen = [eq.varname for eq in card.equations.ordered if card.refractory and
                       eq.type == DIFFERENTIAL_EQUATION and "unless refractory" in (eq.flags or [])]
        deps = {}
        for target, _, expr in statements:
            ids = get_identifiers(expr)
            deps[target] = set().union(ids, *(deps.get(name, set()) for name in ids))
        self._update_split = any("not_refractory" in deps.get(name, set())
                                 for name in self.state_names if name not in self.frozen)
        free = fold_true(statements, "not_refractory") if card.refractory else statements
        invariant = set(card.defaults) | {"dt"} | set(DEFAULT_UNITS) | set(DEFAULT_CONSTANTS)
        constants, free = hoist_invariants(free, invariant)
        where = f"card '{card.name}' state update ({card.method})"
        self._const_names = [name for name, _, _ in constants]
        self._const_fn, self.constants_source = compile_block(
            "constants", constants, list(card.defaults), self._const_names, self._namespace, where)
        self._update_fn, self.update_source = compile_block(
            "state_update", free, self._args + self._const_names, self.state_names, self._namespace, where)
        if self._update_split:
            self._update_full_fn, _ = compile_block(
                "state_update_full", statements, self._args, self.state_names, self._namespace, where)

    def constants(self):
        """Loop-invariant parts of the update (functions of parameters and ``dt`` only)."""
        return self._const_fn(**self.params)

    def _build_refractory(self, card):
        self.refractory_kind = None
        self.static_refractory = False
        if not card.refractory:
            return
        eqs = add_refractoriness(card.full_equations)
        variables = brian_variables(eqs, self.dt)
        dim = parse_expression_dimensions(card.refractory, variables)
        #: True when the refractory period depends on parameters only (computed once per forward)
        self.static_refractory = get_identifiers(card.refractory) <= (set(card.defaults) | set(DEFAULT_UNITS))
        if dim is second.dim:
            self.refractory_kind = "time"
            stmts = [("_nc_ref", "=", card.refractory)]
            self._ref_fn, _ = compile_block("refractory", self.subexpressions + stmts, self._args, ["_nc_ref"],
                                            self._namespace, f"card '{card.name}' [neuron.refractory]")
        elif dim is DIMENSIONLESS:
            self.refractory_kind = "condition"
            stmts = [("_nc_ref", "=", f"not ({card.refractory})")]
            self._ref_fn, _ = compile_block("refractory", self.subexpressions + stmts, self._args, ["_nc_ref"],
                                            self._namespace, f"card '{card.name}' [neuron.refractory]")

    def _build_threshold_reset(self, card):
        if not self.spiking:
            return
        where = f"card '{card.name}' [neuron.threshold]"
        try:
            distance, mask = split_threshold(card.threshold, set(self.state_names))
        except CardMeaningError as exc:
            raise TranslationError(f"card '{card.name}' [neuron.threshold]: {exc}") from None
        stmts = self.subexpressions + [("_nc_cond", "=", card.threshold), ("_nc_dist", "=", distance)]
        outputs = ["_nc_cond", "_nc_dist"]
        if mask:
            stmts.append(("_nc_mask", "=", mask))
            outputs.append("_nc_mask")
        self.distance_code, self.threshold_mask = distance, mask
        self._threshold_fn, self.threshold_source = compile_block(
            "threshold", stmts, self._args, outputs, self._namespace, where)
        reset = parse_statements(card.reset or "", f"card '{card.name}' [neuron.reset]")
        stmts, targets = list(self.subexpressions), []
        for k, (target, op, expr) in enumerate(reset):
            if target not in self.state_names:
                raise TranslationError(f"card '{card.name}' [neuron.reset]: '{target} {op} {expr}' assigns "
                                       f"'{target}', which is not a state variable ({self.state_names})")
            rhs = expr if op == "=" else f"{target} {op[0]} ({expr})"
            stmts += [(f"_nc_rhs{k}", "=", rhs),
                      (target, "=", f"_nc_mix(_nc_cond, _nc_spikes, _nc_rhs{k}, {target})")]
            targets.append(target)
        self.reset_targets = sorted(set(targets))
        self._reset_fn, self.reset_source = compile_block(
            "reset", stmts, self._args + ["_nc_cond", "_nc_spikes"], self.state_names, self._namespace,
            f"card '{card.name}' [neuron.reset]")

    def _init_scale(self):
        state = self.initial_state(1)
        with torch.no_grad():
            out = self._threshold_fn(**self._env(state, 0.0, None))
        dist = torch.as_tensor(out["_nc_dist"], dtype=self.dtype).expand(1, self.n)[0].abs()
        scale = torch.where(torch.isfinite(dist) & (dist > 0), dist, torch.ones_like(dist))
        self.register_buffer("threshold_scale", scale)

    # -- one step ----------------------------------------------------------------------------
    def _mix(self, cond, spikes, new, old):
        if self.spike_fn.smooth:
            return old + spikes * (new - old)
        out = torch.where(cond, new, old)
        if self.detach_reset or not spikes.requires_grad:
            return out
        return out + (spikes - spikes.detach()) * (new - old)

    def _env(self, state, t, not_refractory):
        env = {name: state[name] for name in self.state_names}
        env.update(self.params)
        # t stays a tensor when given as one (a 0-d float64 tensor lets torch.compile trace
        # one graph for every step instead of specialising on each Python float)
        env.update(i=self.index, t=t if isinstance(t, torch.Tensor) else float(t), not_refractory=not_refractory)
        return env

    @property
    def stochastic(self):
        """True if the generated code draws random numbers (``randn()``, ``rand()``)."""
        sources = [self.update_source, getattr(self, "threshold_source", ""), getattr(self, "reset_source", "")]
        return any("_nc_randn(" in src or "_nc_rand(" in src for src in sources)

    def refractory_steps(self, state, t=0.0):
        """Refractory period in steps, (n,) or (batch, n) float64, when it is a time; else None.

        Brian2's ``timestep(refractory, dt)``. Constant for a card whose refractory period
        depends on parameters only (cached); otherwise computed from ``state``.
        """
        if self.refractory_kind != "time":
            return None
        ref_steps = self.__dict__.get("_ref_steps") if self.static_refractory else None
        if ref_steps is None:
            ref = self._ref_fn(**self._env(state, t, None))["_nc_ref"]
            ref_steps = torch.trunc((torch.as_tensor(ref, dtype=torch.float64) + 1e-3 * self.dt) / self.dt)
            ref_steps = ref_steps.to(state["lastspike"].device)
            if self.static_refractory:
                self.__dict__["_ref_steps"] = ref_steps
        return ref_steps

    def _apply(self, fn, *args, **kwargs):
        self.__dict__["_param_cache"] = None
        self.__dict__["_ref_steps"] = None
        return super()._apply(fn, *args, **kwargs)

    def initial_state(self, batch=1):
        """State dict: each state variable as a (batch, n) tensor, plus ``lastspike`` (float64, s).

        Values come from the card's ``[neuron.initial]`` (0 where not given).
        """
        device = self.index.device
        self._shape = (self.n,)            # rand()/randn() in an initial value: one draw per neuron
        values = self._initial_fn(**self.params, i=self.index, t=0.0)
        values.update({name: getattr(self, f"initial_{name}") for name in self._initial_names})
        state = {}
        for name in self.state_names:
            value = values.get(name, 0.0)
            state[name] = torch.zeros(batch, self.n, dtype=self.dtype, device=device) + value
        if self.spiking or self.refractory_kind:
            state["lastspike"] = torch.full((batch, self.n), NEVER, dtype=torch.float64, device=device)
        if self.refractory_kind == "condition":
            state["not_refractory"] = torch.ones(batch, self.n, dtype=torch.bool, device=device)
        return state

    def not_refractory(self, state, t, ref_steps=None):
        """Boolean (batch, n): True where neurons integrate (Brian2's ``not_refractory``).

        ``ref_steps`` (from :meth:`refractory_steps`) may be passed to skip recomputing it.
        """
        if self.refractory_kind is None:
            return None
        if self.refractory_kind == "condition":
            return state["not_refractory"] | self._ref_fn(**self._env(state, t, state["not_refractory"]))["_nc_ref"]
        if ref_steps is None:
            ref_steps = self.refractory_steps(state, t)
        elapsed = torch.trunc((t - state["lastspike"] + 1e-3 * self.dt) / self.dt)
        return elapsed >= ref_steps

    def update(self, state, t, constants=None, ref_steps=None):
        """Brian2's state update for one step; returns ``(state, not_refractory)``.

        ``constants`` (from :meth:`constants`) and ``ref_steps`` (from
        :meth:`refractory_steps`) may be passed to skip recomputing them.
        """
        nr = self.not_refractory(state, t, ref_steps)
        if self._random:  # randn()/rand() draw samples of the block's shape
            self._shape = state[self.state_names[0]].shape if self.state_names else None
        constants = self.constants() if constants is None else constants
        new = dict(state)
        if nr is None:
            new.update(self._update_fn(**self._env(state, t, None), **constants))
            return new, nr
        free = self._update_fn(**self._env(state, t, True), **constants)
        if self._update_split:
            new.update(self._update_full_fn(**self._env(state, t, nr)))
        else:
            new.update(free)
        for name in self.frozen:
            new[name] = torch.where(nr, free[name], state[name])
        if self.refractory_kind == "condition":
            new["not_refractory"] = nr
        return new, nr

    def threshold(self, state, t, not_refractory=None):
        """Spikes (batch, n) through ``spike_fn`` and the exact boolean condition; sets ``lastspike``."""
        out = self._threshold_fn(**self._env(state, t, not_refractory))
        cond = torch.as_tensor(out["_nc_cond"]).expand(state[self.state_names[0]].shape)
        if not_refractory is not None:
            cond = cond & not_refractory
        if not torch.is_grad_enabled() and not self.spike_fn.smooth:
            spikes = cond.to(self.dtype)  # the exact forward value (cond implies the mask)
        else:
            x = out["_nc_dist"] / self.threshold_scale
            mask = out.get("_nc_mask")
            if not_refractory is not None:
                mask = not_refractory if mask is None else mask & not_refractory
            spikes = self.spike_fn(x, cond)
            if mask is not None:
                spikes = spikes * mask.to(self.dtype)
        new = dict(state)
        new["lastspike"] = torch.where(cond, t, state["lastspike"])
        if self.refractory_kind == "condition":
            new["not_refractory"] = state["not_refractory"] & ~cond
        return spikes, cond, new

    def writable(self, state, not_refractory, cond=None):
        """Where synaptic writes to ``(unless refractory)`` variables take effect (bool (batch, n)).

        Brian2 makes every write to such a variable but the reset conditional on
        ``not_refractory``, which the threshold has just cleared for neurons spiking now.
        None when the card has no such variable (every write takes effect).
        """
        if not self.frozen or not_refractory is None:
            return None
        if self.refractory_kind == "condition":
            return state["not_refractory"]
        return not_refractory if cond is None else not_refractory & ~cond

    def threshold_distance(self, state, t, not_refractory=None):
        """Normalised distance (batch, n) to threshold: 0 at threshold, -1 at the initial state.

        Refractory neurons (``not_refractory`` False), which cannot fire, are held at most
        at -1e-3.
        """
        out = self._threshold_fn(**self._env(state, t, not_refractory))
        dist = (out["_nc_dist"] / self.threshold_scale).expand(state[self.state_names[0]].shape)
        if not_refractory is not None:
            dist = torch.where(not_refractory, dist, torch.clamp(dist, max=-1e-3))
        return dist

    def reset(self, state, spikes, cond, t=0.0):
        """Apply the card's reset statements to the neurons where ``cond`` holds."""
        env = self._env(state, t, None)
        env.update(_nc_cond=cond, _nc_spikes=spikes)
        new = dict(state)
        new.update(self._reset_fn(**env))
        return new

    def step(self, state, t, constants=None):
        """Advance by one ``dt`` at time ``t`` (s): update, threshold, reset.

        Returns ``(spikes, state)``; ``spikes`` is None for rate cards.
        """
        state, nr = self.update(state, t, constants)
        if not self.spiking:
            return None, state
        spikes, cond, state = self.threshold(state, t, nr)
        return spikes, self.reset(state, spikes, cond, t)

    forward = step

    def extra_repr(self):
        return f"card={self.card.name!r}, n={self.n}, method={self.card.method!r}, dt={self.dt:g}, " \
               f"spike_fn={self.spike_fn!r}, detach_reset={self.detach_reset}"
