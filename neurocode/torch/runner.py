"""A whole :class:`~neurocode.spec.NetworkSpec` in torch, step by step as Brian2 runs it.

Within one time step ``n`` (``t = n*dt``) the runner follows Brian2's schedule:

1. state update of every population (``groups`` slot);
2. threshold of every population, and input spikes emitted in this step (``thresholds``);
3. synaptic propagation (``synapses``): a spike at step ``n`` through a synapse with delay
   ``d = round(delay/dt)`` steps changes the target at step ``n + d``, after thresholding,
   so it is first seen by the state update of step ``n + d + 1``;
4. reset of every population (``resets``) - a reset overrides synaptic input to the same
   variable in the same step, as in Brian2.

Brian2's rule for ``(unless refractory)`` variables holds for every write but the reset:
a synaptic increment to such a variable (``on_pre`` or a delayed effect arriving) is dropped
for a neuron that is refractory in that step, including one that has just spiked.

States are recorded at the start of each step (before the update), like Brian2's
``StateMonitor``. Synaptic ``on_pre`` code is generated from the card: each statement must
read ``X_post += f(w)`` or ``X_post -= f(w)``; ``f`` is evaluated on the weight vector once
per forward call and applied as a (sparse or dense) matrix product with the presynaptic
spikes (sparse: a per-synapse gather and ``index_add``, whose backward pass is also sparse).
Without gradients, large projections may propagate event-driven from a padded per-source table
(only the synapses of sources that spiked): chosen per chunk of steps by the measured spike
density. The effects of input spikes, known before the run, are computed for a whole chunk
in one matrix product (or one event pass), with or without gradients. Input spike times are binned as Brian2's
``SpikeGeneratorGroup`` does: step ``int((t + 1e-3*dt)/dt)``.

This is the one torch engine: classifiers, Lyapunov maps and reservoirs are built on its
public step API (``docs/torch-dynamics.md``, "The engine API"):

* :meth:`NetworkRunner.prepare` - per-forward constants (synaptic operators from the current
  weights, loop-invariant parts of the neuron updates, refractory periods);
* :meth:`NetworkRunner.initial_state` and :meth:`NetworkRunner.initial_pending` - the state
  and the synaptic ring buffers (effects still in flight along delays);
* :meth:`NetworkRunner.step` - one time step, a pure function of its arguments, composed of
  the four phases :meth:`~NetworkRunner.update`, :meth:`~NetworkRunner.threshold`,
  :meth:`~NetworkRunner.propagate` and :meth:`~NetworkRunner.reset`;
* :meth:`NetworkRunner.threshold_distance` - a population's normalised distance to threshold
  (0 at threshold, -1 at rest), the read-out of rank-coding classifiers.

``NetworkRunner(spec, compile=True)`` runs the step through ``torch.compile`` (runs without
gradients; see ``docs/torch-dynamics.md``).

>>> import numpy as np, torch
>>> from brian2 import nA
>>> from neurocode.spec import NetworkSpec
>>> spec = NetworkSpec(dt=1e-4, seed=0)
>>> spec.add_input("in", 2, indices=[0, 1], times=[0.0, 1e-3])
>>> pop = spec.add_population("exc", "lif", 3)
>>> proj = spec.connect("in", "exc", p=1.0, weight=5 * nA)
>>> runner = NetworkRunner(spec, dtype=torch.float64)
>>> out = runner(steps=50, record={"exc": ["v"]})
>>> tuple(out.spikes["exc"].shape), tuple(out.states["exc"]["v"].shape)
((50, 1, 3), (50, 1, 3))
"""

from __future__ import annotations

import copy
import logging
import types
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from brian2.utils.stringtools import get_identifiers

from neurocode.errors import NetworkSpecError
from neurocode.torch import surrogate as _surrogate
from neurocode.cards.meaning import CardMeaningError, synaptic_statements
from neurocode.torch.codegen import TranslationError, compile_block, make_namespace
from neurocode.torch.dynamics import PopulationDynamics

logger = logging.getLogger(__name__)

#: Without gradients, projections with more than this many source x target pairs may
#: propagate event-driven (chosen per chunk by spike density); smaller ones always use matrices.
EVENT_DRIVEN_MIN = 2 ** 18
#: An event-driven synaptic update (gather + scatter-add) costs about as much as this many
#: multiply-adds of a dense matrix product (measured on CPU); it sets the spike density below
#: which events win: ``1 / EVENT_COST`` for a dense matrix, about 1 for a sparse one.
EVENT_COST = 64
#: The compiled step handles a fixed number of spiking sources per event-driven projection
#: and step (a static shape): this fraction of ``batch * n_src`` (at least the minimum),
#: rounded up to a power of two. A step in which more sources spike is redone with room for
#: all of them (one more compiled variant per power of two).
EVENT_CAPACITY_FRACTION = 1 / 128
EVENT_CAPACITY_MIN = 8
#: Steps per chunk: the effects of input spikes are computed for a chunk at once, and the
#: propagation of each projection (events or matrices) is chosen per chunk.
INPUT_CHUNK = 256
#: Steps of the previous chunk whose spikes are counted for a population's spike density.
DENSITY_SAMPLES = 16
#: Elements of the per-synapse product held at once when a sparse matrix propagates a chunk.
SPARSE_CHUNK_ELEMENTS = 2 ** 24
#: Below this fraction of nonzero input values, a chunk of inputs goes through a dense weight
#: matrix as a sparse (CSR) x dense product, forward and backward (break-even about 10 % on CPU).
SPARSE_INPUT_DENSITY = 1 / 16
#: Ways spikes reach their targets (see :class:`NetworkRunner`).
PROPAGATION = ("auto", "matrix", "events")


def _batch_of(state):
    """The batch size of a state dict pop -> var -> (batch, n)."""
    for variables in state.values():
        for value in variables.values():
            return value.shape[0]
    raise NetworkSpecError("the network has no population state to step")


def _next_capacity(count):
    """The smallest power of two >= ``count`` (at least 1)."""
    return 1 << max(0, int(count) - 1).bit_length()


@dataclass
class RunOutput:
    """What :meth:`NetworkRunner.forward` returns.

    Attributes
    ----------
    spikes : dict of str -> tensor (T, batch, n)
    states : dict of str -> dict of str -> tensor (T, batch, n), recorded at step starts
    final_state : dict of str -> dict of str -> tensor (batch, n)
    """

    spikes: dict
    states: dict = field(default_factory=dict)
    final_state: dict = field(default_factory=dict)


def synaptic_effects(card, dtype):
    """Analyse ``card.on_pre`` into ``[(target_var, sign, f)]`` with ``f(w) -> effect``.

    Raises :class:`TranslationError` naming any statement that is not ``X_post += f(w)``
    or ``X_post -= f(w)`` with ``f`` depending on the weight only.

    >>> import torch
    >>> from neurocode.cards import load_card
    >>> [(v, s) for v, s, _ in synaptic_effects(load_card("coba_lif"), torch.float64)]
    [('g_e', 1.0), ('g_i', -1.0)]
    """
    effects = []
    where = f"card '{card.name}' [synapse.on_pre]"
    ns = make_namespace(dtype)
    try:
        statements = synaptic_statements(card)
    except CardMeaningError as exc:
        raise TranslationError(str(exc)) from None
    for var, op, expr in statements:
        stmt = f"{var}_post {op} {expr}"
        if op not in ("+=", "-="):
            raise TranslationError(f"{where}: cannot express '{stmt}' as a weight matrix product; "
                                   "on_pre statements must read 'X_post += f(w)' or 'X_post -= f(w)'")
        others = get_identifiers(expr) - {card.weight}
        bad = sorted(name for name in others if name.endswith(("_pre", "_post")) or name in card.defaults
                     or name in card.equations.names or name in ("t", "lastupdate", "i", "j"))
        if bad:
            raise TranslationError(f"{where}: in '{stmt}' the increment depends on {bad}; only "
                                   f"functions of the weight '{card.weight}' can be applied as a matrix product")
        fn, _ = compile_block("effect", [("_nc_out", "=", expr)], [card.weight], ["_nc_out"], ns,
                              f"{where} '{stmt}'")
        effects.append((var, 1.0 if op == "+=" else -1.0,
                        lambda w, fn=fn, name=card.weight: fn(**{name: w})["_nc_out"]))
    return effects


def input_tensor(inp, steps, dt, dtype=torch.float32, device="cpu"):
    """Spike tensor (steps, 1, n) of an :class:`~neurocode.spec.InputPopulation`.

    A spike at time ``t`` falls in step ``int((t + 1e-3*dt)/dt)``, as in Brian2's
    ``SpikeGeneratorGroup``; spikes after the last step are dropped.
    """
    bins = np.asarray((inp.times + 1e-3 * dt) / dt, dtype=np.int64)
    keep = bins < steps
    out = torch.zeros(steps, 1, inp.size, dtype=dtype, device=device)
    out[torch.as_tensor(bins[keep]), 0, torch.as_tensor(inp.indices[keep])] = 1.0
    return out


def _csr(rows, cols, values, shape):
    """A CSR matrix from entries sorted by row."""
    crow = torch.zeros(shape[0] + 1, dtype=torch.int64, device=values.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=shape[0]), 0)
    with warnings.catch_warnings():  # "sparse CSR tensor support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, cols, values, size=shape)


class _SparseInputProduct(torch.autograd.Function):
    """``x @ m.t()`` for a mostly-zero ``x`` of ``shape`` (rows, n_src), given by its entries.

    Derivatives (reverse and forward mode) reach ``m`` only: ``x`` holds input values, which
    need none. The backward pass builds the transposed CSR matrix for ``x.t() @ grad``.
    """

    @staticmethod
    def forward(rows, cols, values, shape, m):
        return _csr(rows, cols, values, shape) @ m.t()

    @staticmethod
    def setup_context(ctx, inputs, output):
        rows, cols, values, shape, _ = inputs
        ctx.save_for_backward(rows, cols, values)
        ctx.save_for_forward(rows, cols, values)
        ctx.shape = shape

    @staticmethod
    def backward(ctx, grad):
        if not ctx.needs_input_grad[4]:
            return None, None, None, None, None
        rows, cols, values = ctx.saved_tensors
        order = torch.argsort(cols, stable=True)
        x_t = _csr(cols[order], rows[order], values[order], ctx.shape[::-1])
        return None, None, None, None, (x_t @ grad).t()

    @staticmethod
    def jvp(ctx, *tangents):
        rows, cols, values = ctx.saved_tensors
        return _csr(rows, cols, values, ctx.shape) @ tangents[4].t()


class _Projection:
    """Index structures of one projection (no parameters; the runner owns the weights)."""

    def __init__(self, proj, n_src, n_tgt, effects, dt, device, sparse):
        self.name, self.source, self.target = proj.name, proj.source, proj.target
        self.n_src, self.n_tgt, self.effects = n_src, n_tgt, effects
        steps = np.zeros(proj.i.size, dtype=np.int64) if proj.delays is None else \
            np.round(proj.delays / dt).astype(np.int64)
        self.groups = []  # (delay steps, synapse index tensor)
        for d in np.unique(steps):
            self.groups.append((int(d), torch.as_tensor(np.nonzero(steps == d)[0], device=device)))
        self.max_delay = int(steps.max()) if steps.size else 0
        #: (var, delay steps) per channel of an effect tensor: delay groups outer, effects inner
        self.channels = tuple((var, d) for d, _ in self.groups for var, _, _ in effects)
        self.synapses = int(proj.i.size)
        pairs = proj.i.astype(np.int64) * n_tgt + proj.j
        #: every (source, target) pair once, in source-major order: the weights are the matrix
        self.grid = len(self.groups) == 1 and np.array_equal(pairs, np.arange(n_src * n_tgt))
        #: no pair carries two synapses (a dense matrix is written, not accumulated)
        self.unique_pairs = np.unique(pairs).size == pairs.size
        self.i = torch.as_tensor(proj.i, device=device)
        self.j = torch.as_tensor(proj.j, device=device)
        density = proj.i.size / max(1, n_src * n_tgt)
        self.sparse = density < 0.1 if sparse == "auto" else bool(sparse)


class NetworkRunner(torch.nn.Module):
    """All populations and projections of a NetworkSpec; weights are ``nn.Parameter`` s.

    Parameters
    ----------
    spec : NetworkSpec
    spike_fn : SpikeFunction, optional
        Default ``surrogate.superspike(slope=25)``.
    detach_reset : bool
        See :class:`PopulationDynamics`.
    dtype : torch.dtype
    device : str or torch.device
    sparse : {"auto", True, False}
        Sparse (per-synapse gather and ``index_add``) or dense weight matrices when gradients
        are needed; ``"auto"`` picks sparse below 10 % connectivity.
    propagation : {"auto", "matrix", "events"}
        How spikes reach their targets. ``"matrix"``: a (dense or sparse) matrix product per
        step, always (needed for tangent propagation, whose spike tensors carry derivatives
        where no spike happened). ``"events"``: only the synapses of sources that spiked
        (event-driven; runs without gradients). ``"auto"``: matrices with gradients; without, a
        projection above :data:`EVENT_DRIVEN_MIN` pairs goes event-driven in the chunks of
        :data:`INPUT_CHUNK` steps whose spike density is below its break-even point (see
        :data:`EVENT_COST`), otherwise matrices.
    weight_unit : float
        Trainable weights are stored as multiples of this SI value (e.g. ``1e-9`` for weights in
        amp trained as nA), so optimisers see numbers of order one; the effective weight is
        ``parameter * weight_unit``.
    generator : torch.Generator, optional
        Random source for stochastic equations.
    compile : bool
        Run each time step through ``torch.compile`` (default False: eager). Applies to runs
        without gradients; the first run pays the compilation (seconds), later runs with the
        same batch size reuse it. Spike trains equal the eager ones (float rounding of
        ``exp`` may differ in the last bit). Stochastic cards always run eagerly.
    compile_options : dict, optional
        Extra keyword arguments for ``torch.compile`` (e.g. ``{"mode": "max-autotune"}``).
    compile_steps : int
        With ``compile=True``: time steps per compiled call (default 1). More steps per call
        save per-call overhead; the graph is unrolled, so compilation takes about this many
        times longer. Runs that record states go step by step.
    trainable : dict of str -> sequence of str, optional
        Card parameters trained per neuron, by population (``{"hidden": ["tau_m"]}``): each
        becomes an ``nn.Parameter`` kept in its valid range (:mod:`neurocode.torch.trainable`);
        :meth:`to_spec` writes the trained values into the populations' ``params``.
    """

    def __init__(self, spec, spike_fn=None, detach_reset=False, dtype=torch.float32, device="cpu",
                 sparse="auto", propagation="auto", weight_unit=1.0, generator=None, compile=False,
                 compile_options=None, compile_steps=1, trainable=None):
        super().__init__()
        if propagation not in PROPAGATION:
            raise ValueError(f"propagation must be one of {PROPAGATION}, got {propagation!r}")
        if not (np.isfinite(weight_unit) and weight_unit > 0):
            raise ValueError(f"weight_unit must be a finite number > 0, got {weight_unit}")
        self.compile = bool(compile)
        self.compile_steps = int(compile_steps)
        if self.compile_steps < 1:
            raise ValueError(f"compile_steps must be >= 1, got {compile_steps}")
        self._compile_options = dict(compile_options or {})
        self.spec, self.dt, self.dtype = spec, float(spec.dt), dtype
        self.propagation, self.weight_unit = propagation, float(weight_unit)
        self.spike_fn = spike_fn if spike_fn is not None else _surrogate.superspike(25.0)
        trainable = dict(trainable or {})
        unknown = set(trainable) - set(spec.populations)
        if unknown:
            raise NetworkSpecError(f"trainable parameters for {sorted(unknown)}, which are not populations "
                                   f"of the spec ({sorted(spec.populations)})")
        self.dynamics = torch.nn.ModuleDict({
            self._key(name): PopulationDynamics(pop.card, pop.params, self.dt, spike_fn=self.spike_fn,
                                                detach_reset=detach_reset, dtype=dtype, device=device,
                                                generator=generator, initial=pop.initial,
                                                trainable=trainable.get(name, ()))
            for name, pop in spec.populations.items()})
        self.weights = torch.nn.ParameterDict()
        self.projections = []
        effects = {}
        for proj in spec.projections:
            target = spec.populations[proj.target]
            if target.card.kind != "spiking" or not target.card.on_pre:
                raise NetworkSpecError(f"projection {proj.name}: target '{proj.target}' (card "
                                       f"'{target.card.name}') has no synapse on_pre code")
            if proj.source in spec.populations and not self.populations[proj.source].spiking:
                raise NetworkSpecError(f"projection {proj.name}: source '{proj.source}' is a rate "
                                       "population and emits no spikes")
            if target.card.name not in effects:
                effects[target.card.name] = synaptic_effects(target.card, dtype)
            for var, _, _ in effects[target.card.name]:
                if var not in self.populations[proj.target].state_names:
                    names = self.populations[proj.target].state_names
                    raise TranslationError(f"card '{target.card.name}' [synapse.on_pre]: '{var}_post' is not a "
                                           f"state variable of the target ({names})")
            self.projections.append(_Projection(proj, spec.size(proj.source), spec.size(proj.target),
                                                effects[target.card.name], self.dt, device, sparse))
            self.weights[self._key(proj.name)] = torch.nn.Parameter(  # a copy: the spec stays as given
                torch.tensor(proj.weights / self.weight_unit, dtype=dtype, device=device))
        self.device = torch.device(device)

    @staticmethod
    def _key(name):
        return "n_" + name.replace(".", "_")

    @property
    def populations(self):
        """Population name -> :class:`PopulationDynamics`."""
        return {name: self.dynamics[self._key(name)] for name in self.spec.populations}

    def weight(self, name):
        """Effective weights (SI, one per synapse) of projection ``name``; carries gradients."""
        w = self.weights[self._key(name)]
        return w if self.weight_unit == 1.0 else w * self.weight_unit

    # -- synapses ----------------------------------------------------------------------------
    def _matrices(self, skip):
        """Per projection, per effect, per delay group: a (n_tgt, n_src) operator for ``W @ s``."""
        ops = []
        for proj, skipped in zip(self.projections, skip):
            if skipped:
                ops.append(None)
                continue
            w = self.weight(proj.name)
            per_effect = []
            for var, sign, fn in proj.effects:
                eff = sign * torch.as_tensor(fn(w), dtype=self.dtype, device=w.device).expand_as(w)
                groups = []
                for d, idx in proj.groups:
                    if proj.sparse:  # gather + index_add: O(synapses) forward and backward
                        mat = (proj.i[idx], proj.j[idx], eff[idx])
                    elif proj.grid:  # the weights in source-major order are the matrix
                        mat = eff.reshape(proj.n_src, proj.n_tgt).t()
                    else:
                        mat = torch.zeros(proj.n_tgt, proj.n_src, dtype=self.dtype, device=w.device)
                        mat = mat.index_put((proj.j[idx], proj.i[idx]), eff[idx], accumulate=not proj.unique_pairs)
                    groups.append((d, mat))
                per_effect.append((var, eff, groups))
            ops.append(per_effect)
        return ops

    def _event_table(self, proj):
        """Padded per-source table of one projection for event-driven propagation (no gradient).

        Every synapse with a nonzero effect gives one entry ``(column, value)`` in the row of
        its source; the column ``c*(n_tgt + 1) + j`` addresses target ``j`` in *channel*
        ``c`` (one per effect and delay group). Padding entries point at the unused column
        ``n_tgt`` with value 0. Cached until the weights change.

        Returns ``(columns (n_src, width), values (n_src, width), channels)`` with
        ``channels[c] = (var, delay steps)``.
        """
        param = self.weights[self._key(proj.name)]
        key = (param._version, param.data_ptr(), self.dtype, param.device, self.weight_unit)
        cached = proj.__dict__.get("_table")
        if cached is not None and cached[0] == key:
            return cached[1]
        width, n_eff = proj.n_tgt + 1, len(proj.effects)
        srcs, cols, vals, channels = [], [], [], []
        with torch.no_grad():
            w = self.weight(proj.name)
            effects = [sign * torch.as_tensor(fn(w), dtype=self.dtype, device=w.device).expand(proj.i.shape)
                       for _, sign, fn in proj.effects]
            for g, (d, idx) in enumerate(proj.groups):
                for e, (var, _, _) in enumerate(proj.effects):
                    c = g * n_eff + e
                    channels.append((var, d))
                    value = effects[e][idx]
                    keep = value != 0
                    srcs.append(proj.i[idx][keep])
                    cols.append(proj.j[idx][keep] + c * width)
                    vals.append(value[keep])
            src, col, val = torch.cat(srcs), torch.cat(cols), torch.cat(vals)
            order = torch.argsort(src, stable=True)
            src, col, val = src[order], col[order], val[order]
            counts = torch.bincount(src, minlength=proj.n_src)
            size = max(1, int(counts.max())) if src.numel() else 1
            pos = torch.arange(src.numel(), device=src.device) - (torch.cumsum(counts, 0) - counts)[src]
            tab_col = torch.full((proj.n_src, size), proj.n_tgt, dtype=torch.int64, device=w.device)
            tab_val = torch.zeros(proj.n_src, size, dtype=self.dtype, device=w.device)
            tab_col[src, pos] = col
            tab_val[src, pos] = val
        table = (tab_col, tab_val, tuple(channels))
        proj.__dict__["_table"] = (key, table)
        return table

    @staticmethod
    def _product(mat, source, n_tgt):
        """Effect (rows, n_tgt) of ``source`` (rows, n_src) through one operator of :meth:`_matrices`.

        A sparse operator goes through at most :data:`SPARSE_CHUNK_ELEMENTS` per-synapse
        products at a time.
        """
        if not isinstance(mat, tuple):
            return source @ mat.t()
        src, tgt, values = mat
        parts = []
        for part in source.split(max(1, SPARSE_CHUNK_ELEMENTS // max(1, src.numel()))):
            out = torch.zeros(part.shape[0], n_tgt, dtype=values.dtype, device=source.device)
            parts.append(out.index_add(1, tgt, part[:, src] * values))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    @staticmethod
    def _propagate_events(table, spikes, n_tgt, capacity=None):
        """Effects (batch, channels, n_tgt) of ``spikes`` (batch, n_src): only spiking rows.

        ``capacity=None`` takes the exact set of spiking sources (``nonzero``, a dynamic
        size); an integer takes the first ``capacity`` of them (``nonzero_static``, a fixed
        size, for ``torch.compile``) - the caller checks that none was left out.
        """
        tab_col, tab_val, channels = table
        batch, n_src = spikes.shape
        flat = spikes.reshape(-1)
        if capacity is None:
            b, src = spikes.nonzero(as_tuple=True)
            value, rows = spikes[b, src], batch
        else:  # padding entries (index batch*n_src) land in an extra batch row, dropped below
            idx = torch.nonzero_static(flat, size=capacity, fill_value=flat.numel()).squeeze(1)
            b = torch.div(idx, n_src, rounding_mode="floor")
            src = idx - b * n_src
            value, rows = flat[idx.clamp(max=flat.numel() - 1)], batch + 1
        size = len(channels) * (n_tgt + 1)
        pos = (b * size).unsqueeze(1) + tab_col[src]
        contrib = tab_val[src] * value.unsqueeze(1)
        out = torch.zeros(rows * size, dtype=tab_val.dtype, device=spikes.device)
        out = out.index_add_(0, pos.reshape(-1), contrib.reshape(-1))
        return out.view(rows, len(channels), n_tgt + 1)[:batch, :, :n_tgt]

    # -- the engine API ----------------------------------------------------------------------
    def initial_state(self, batch=1):
        """Initial state of every population: dict pop -> dict var -> (batch, n)."""
        return {name: dyn.initial_state(batch) for name, dyn in self.populations.items()}

    def initial_pending(self, batch=1):
        """Empty synaptic ring buffers: (pop, var) -> list of (batch, n) slots.

        Slot ``d`` holds what reaches the target ``d`` steps from now; one slot per step of the
        longest delay onto that variable, plus one.
        """
        return {key: [torch.zeros(batch, self.spec.size(key[0]), dtype=self.dtype, device=self.device)
                      for _ in range(d)] for key, d in self._depths().items()}

    def prepare(self, state=None, t0=0.0, grad=None):
        """Per-forward constants of :meth:`step` for the current weights and parameters.

        Parameters
        ----------
        state : dict, optional
            The start state (only for refractory periods that depend on it).
        t0 : float
            Time (s) of the first step.
        grad : bool, optional
            Whether gradients will flow (default: grad mode is on and a weight requires
            grad); without gradients large projections propagate event-driven.

        Returns
        -------
        dict
            ``ops`` (matrix operators), ``tables`` (event tables: a projection with a table
            propagates event-driven), ``constants`` and ``ref_steps`` per population; rebuild
            it after the weights change. :meth:`forward` switches each projection with a table
            between events and matrices per chunk of steps, by spike density.
        """
        if grad is None:
            grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        event = [self._event_capable(p, grad) for p in self.projections]
        populations = self.populations
        state = self.initial_state(1) if state is None else state
        return {"ops": self._matrices([self.propagation == "events"] * len(event)),
                "tables": [self._event_table(p) if e else None for p, e in zip(self.projections, event)],
                "constants": {name: dyn.constants() for name, dyn in populations.items()},
                "ref_steps": {name: dyn.refractory_steps(state[name], t0) if dyn.static_refractory else None
                              for name, dyn in populations.items()}}

    def _event_capable(self, proj, grad):
        """Whether ``proj`` may propagate event-driven (events carry no weight gradients)."""
        if self.propagation != "auto":
            return self.propagation == "events"
        return not grad and proj.n_src * proj.n_tgt > EVENT_DRIVEN_MIN

    def _events_win(self, proj, density):
        """Whether events beat the matrix product at this spike density (fraction of sources)."""
        if self.propagation != "auto":
            return self.propagation == "events"
        matrix = proj.synapses * EVENT_COST if proj.sparse else proj.n_src * proj.n_tgt
        return density * proj.synapses * EVENT_COST < matrix

    def update(self, state, t, ctx):
        """Phase 1, Brian2's ``groups`` slot: every population's state update.

        Returns ``(state, not_refractory)``; ``not_refractory[pop]`` is a bool (batch, n) or None.
        """
        state, nrs = dict(state), {}
        for name, dyn in self.populations.items():
            state[name], nrs[name] = dyn.update(state[name], t, ctx["constants"][name], ctx["ref_steps"][name])
        return state, nrs

    def threshold(self, state, t, not_refractory):
        """Phase 2, Brian2's ``thresholds`` slot: spikes of every spiking population.

        Returns ``(state, spikes, conditions, writable)``: ``spikes[pop]`` (batch, n) through
        the surrogate, ``conditions[pop]`` the exact bool spikes, and ``writable[pop]``
        where synaptic writes to ``(unless refractory)`` variables take effect in this step
        (not refractory and not spiking now; None when the card has no such variable).
        """
        state, spikes, conds, writable = dict(state), {}, {}, {}
        for name, dyn in self.populations.items():
            if dyn.spiking:
                spikes[name], conds[name], state[name] = dyn.threshold(state[name], t, not_refractory[name])
            writable[name] = dyn.writable(state[name], not_refractory[name], conds.get(name))
        return state, spikes, conds, writable

    def propagate(self, state, pending, spikes, ctx, writable, capacity=None, effects=None):
        """Phase 3, Brian2's ``synapses`` slot: spikes of sources and inputs reach their targets.

        ``spikes`` maps every spiking population and input to (batch or 1, n_src) values
        (input values may be analog: they scale the synaptic effect). Effects with delay ``d``
        enter slot ``d`` of ``pending``; slot 0 is applied now, masked by ``writable`` for
        ``(unless refractory)`` variables. ``capacity`` and ``effects`` as for :meth:`step`.

        Returns ``(state, pending, counts)``; ``pending`` has advanced by one step.
        """
        batch = _batch_of(state)
        pending = {key: list(slots) for key, slots in pending.items()}
        counts = []
        for k, proj in enumerate(self.projections):
            if effects is not None and k in effects:  # computed beforehand (inputs)
                for c, (var, d) in enumerate(proj.channels):
                    slots = pending[(proj.target, var)]
                    slots[d] = slots[d] + effects[k][:, c]
                continue
            source = spikes[proj.source]
            if source.shape[0] != batch:
                source = source.expand(batch, -1)
            table = ctx["tables"][k]
            if table is not None:  # event-driven: only the synapses of sources that spiked
                cap = None if capacity is None else capacity[k]
                out = self._propagate_events(table, source, proj.n_tgt, cap)
                if cap is not None:
                    counts.append(torch.count_nonzero(source))
                for c, (var, d) in enumerate(table[2]):
                    slots = pending[(proj.target, var)]
                    slots[d] = slots[d] + out[:, c]
                continue
            for var, _, groups in ctx["ops"][k]:
                slots = pending[(proj.target, var)]
                for d, mat in groups:
                    slots[d] = slots[d] + self._product(mat, source, proj.n_tgt)
        state = dict(state)
        for (pop, var), slots in pending.items():
            arriving = slots[0]
            mask = writable.get(pop)
            if mask is not None and var in self.populations[pop].frozen:
                arriving = torch.where(mask, arriving, torch.zeros_like(arriving))
            state[pop] = dict(state[pop])
            state[pop][var] = state[pop][var] + arriving
        pending = {key: slots[1:] + [torch.zeros_like(slots[0])] for key, slots in pending.items()}
        return state, pending, (torch.stack(counts) if counts else None)

    def reset(self, state, spikes, conditions, t):
        """Phase 4, Brian2's ``resets`` slot: reset statements of the neurons that spiked."""
        state = dict(state)
        for name, dyn in self.populations.items():
            if dyn.spiking:
                state[name] = dyn.reset(state[name], spikes[name], conditions[name], t)
        return state

    def step(self, state, pending, t, drive, ctx, capacity=None, effects=None, observe=()):
        """One time step in Brian2's order; a pure function of its arguments.

        Parameters
        ----------
        state : dict pop -> var -> (batch, n)
        pending : dict (pop, var) -> list of (batch, n)
            Ring buffers from :meth:`initial_pending` or the previous step.
        t : float or 0-d float64 tensor
            Time of this step (s).
        drive : dict input -> (batch or 1, n_in)
            Input spikes (or analog values) emitted in this step.
        ctx : dict
            From :meth:`prepare`.
        capacity : tuple, optional
            Per projection, the number of spiking sources an event-driven projection handles
            (None: all, eagerly).
        effects : dict, optional
            Projection index -> (batch, channels, n_tgt) effects of this step computed
            beforehand (projections from inputs, whose spikes are known for a whole chunk).
        observe : tuple of str
            Populations whose :meth:`threshold_distance` after the state update is returned.

        Returns
        -------
        tuple
            ``(state, pending, spikes, counts, distances)``: ``spikes`` of every spiking
            population; ``counts`` (spiking sources per event-driven projection) only when
            ``capacity`` is given; ``distances`` maps each observed population to (batch, n).
        """
        state, nrs = self.update(state, t, ctx)
        distances = {name: self.threshold_distance(name, state[name], t, nrs[name]) for name in observe}
        state, spikes, conds, writable = self.threshold(state, t, nrs)
        emitted = dict(spikes)
        spikes.update(drive)
        state, pending, counts = self.propagate(state, pending, spikes, ctx, writable, capacity, effects)
        state = self.reset(state, emitted, conds, t)
        return state, pending, emitted, counts, distances

    def threshold_distance(self, name, state, t, not_refractory=None):
        """Normalised distance (batch, n) of population ``name`` to its threshold.

        0 at threshold, -1 at the initial state (per neuron), positive above. Refractory
        neurons, which cannot fire, are held strictly below threshold (at most -1e-3).
        """
        return self.populations[name].threshold_distance(state, t, not_refractory)

    def pack(self, state, pending):
        """A flat tuple of batch-first tensors holding ``state`` and ``pending`` (see :meth:`unpack`)."""
        flat = [state[name][var] for name, names in self._layout() for var in names]
        flat += [slot for key in sorted(pending) for slot in pending[key]]
        return tuple(flat)

    def unpack(self, flat):
        """``(state, pending)`` from :meth:`pack`'s tuple (e.g. after selecting batch rows)."""
        state, k = {}, 0
        for name, names in self._layout():
            state[name] = dict(zip(names, flat[k:k + len(names)]))
            k += len(names)
        pending = {}
        for key, depth in sorted(self._depths().items()):
            pending[key] = list(flat[k:k + depth])
            k += depth
        return state, pending

    def _layout(self):
        """State variables per population, in packing order (computed once: the cards fix them)."""
        layout = self.__dict__.get("_state_layout")
        if layout is None:
            layout = [(name, list(dyn.initial_state(1))) for name, dyn in self.populations.items()]
            self.__dict__["_state_layout"] = layout
        return layout

    def _depths(self):
        """Ring-buffer depth per (pop, var): fixed by the projections' delays (computed once)."""
        depths = self.__dict__.get("_pending_depths")
        if depths is None:
            depths = {}
            for proj in self.projections:
                for var, _, _ in proj.effects:
                    key = (proj.target, var)
                    depths[key] = max(depths.get(key, 0), proj.max_delay + 1)
            self.__dict__["_pending_depths"] = depths
        return depths

    # -- running -----------------------------------------------------------------------------
    def _inputs(self, inputs, steps, batch):
        out = {}
        for name, inp in self.spec.inputs.items():
            if name in inputs:
                x = torch.as_tensor(inputs[name], device=self.device)
                if x.dim() != 3 or x.shape[2] != inp.size or x.shape[0] < steps:
                    raise ValueError(f"input '{name}' must be a (time >= {steps}, batch, {inp.size}) tensor, "
                                     f"got shape {tuple(x.shape)}")
                out[name] = x.to(self.dtype)
            else:
                out[name] = input_tensor(inp, steps, self.dt, self.dtype, self.device)
        unknown = set(inputs) - set(self.spec.inputs)
        if unknown:
            raise ValueError(f"unknown input(s) {sorted(unknown)}; the spec has {sorted(self.spec.inputs)}")
        return out

    def forward(self, inputs=None, steps=None, record=None, batch=None, state=None, t0=0.0):
        """Run ``steps`` time steps.

        Parameters
        ----------
        inputs : dict of str -> tensor (T, batch, n_in), optional
            Input spikes per step; inputs not given come from the spec's spike times.
        steps : int, optional
            Number of steps (default: the length of the given inputs).
        record : dict of str -> list of str, optional
            State variables to record per population.
        batch : int, optional
            Batch size when no input tensor gives it (default 1).
        state : dict, optional
            Start state (from :meth:`initial_state` or a previous ``final_state``).
        t0 : float
            Time of the first step (s).

        Returns
        -------
        RunOutput
        """
        inputs, record = dict(inputs or {}), dict(record or {})
        if steps is None:
            if not inputs:
                raise ValueError("give steps= or input tensors (their first dimension is the number of steps)")
            steps = min(int(torch.as_tensor(x).shape[0]) for x in inputs.values())
        if batch is None:
            batch = int(torch.as_tensor(next(iter(inputs.values()))).shape[1]) if inputs else 1
        for pop, names in record.items():
            if pop not in self.populations:
                raise ValueError(f"cannot record '{pop}': no such population ({sorted(self.populations)})")
            unknown = set(names) - set(self.populations[pop].state_names) - {"lastspike"}
            if unknown:
                raise ValueError(f"cannot record {sorted(unknown)} of '{pop}': state variables are "
                                 f"{self.populations[pop].state_names}")
        drive = self._inputs(inputs, steps, batch)
        state = self.initial_state(batch) if state is None else dict(state)
        grad = torch.is_grad_enabled() and (
            any(p.requires_grad for p in self.parameters()) or any(x.requires_grad for x in drive.values()))
        prepared = self.prepare(state, t0, grad)
        pending = self.initial_pending(batch)
        # input spikes are known before the run: the effects of projections from inputs are
        # computed for a chunk of steps at once (one matrix product or one event pass)
        known = [k for k, p in enumerate(self.projections) if p.source in drive]
        compiled = self._use_compiled(not grad)
        step, capacity, times = self.step, None, None
        if compiled:
            step = self._compiled("step")
            times = t0 + torch.arange(steps, dtype=torch.float64, device=self.device) * self.dt
        spikes_out = {name: [] for name, dyn in self.populations.items() if dyn.spiking}
        traces = {pop: {var: [] for var in names} for pop, names in record.items()}
        n = 0
        many = self.compile_steps if compiled and not record else 1
        while n < steps:
            if n % INPUT_CHUNK == 0:
                stop = min(steps, n + INPUT_CHUNK)
                ctx = self._chunk_context(prepared, drive, spikes_out, n, stop, batch)
                chunk = {k: self._input_effects(k, drive[self.projections[k].source][n:stop], batch, ctx)
                         for k in known}
                per_step = {k: x.unbind(0) for k, x in chunk.items()}  # one backward node per chunk
                if compiled:
                    capacity = tuple(self._capacity(k, batch) if table is not None and k not in chunk else None
                                     for k, table in enumerate(ctx["tables"]))
            if many > 1 and n % many == 0 and n + many <= steps and n % INPUT_CHUNK + many <= INPUT_CHUNK:
                done = self._run_many(state, pending, times[n:n + many], n, drive, ctx, capacity, chunk, spikes_out)
                if done is not None:  # else a burst: these steps go one by one
                    state, pending = done
                    n += many
                    continue
            for pop, names in record.items():
                for var in names:
                    traces[pop][var].append(state[pop][var])
            t = t0 + n * self.dt if times is None else times[n]
            now = {name: x[n] for name, x in drive.items()}
            effects = {k: x[n % INPUT_CHUNK] for k, x in per_step.items()}
            new_state, new_pending, spikes, counts, _ = step(state, pending, t, now, ctx, capacity, effects)
            if counts is not None:
                counts = counts.tolist()
                if any(c > cap for c, cap in zip(counts, (c for c in capacity if c is not None))):
                    # more sources spiked than the compiled step handles (a burst): redo this
                    # step with room for all of them (a variant compiled once per power of two)
                    it = iter(counts)
                    burst = tuple(None if cap is None else max(cap, _next_capacity(next(it))) for cap in capacity)
                    new_state, new_pending, spikes, counts, _ = step(state, pending, t, now, ctx, burst, effects)
            state, pending = new_state, new_pending
            for name in spikes_out:
                spikes_out[name].append(spikes[name])
            n += 1
        return RunOutput(spikes={k: torch.stack(v) for k, v in spikes_out.items()},
                         states={pop: {var: torch.stack(v) for var, v in d.items()} for pop, d in traces.items()},
                         final_state=state)

    def _steps(self, state, pending, times, drive, ctx, capacity, effects):
        """``len(times)`` steps of :meth:`step` in one call (unrolled when compiled)."""
        spikes, counts = {}, []
        for s in range(times.shape[0]):
            state, pending, out, c, _ = self.step(state, pending, times[s], {name: x[s] for name, x in drive.items()},
                                                  ctx, capacity, {k: x[s] for k, x in effects.items()})
            for name, x in out.items():
                spikes.setdefault(name, []).append(x)
            if c is not None:
                counts.append(c)
        return (state, pending, {name: torch.stack(x) for name, x in spikes.items()},
                torch.stack(counts) if counts else None)

    def _run_many(self, state, pending, times, n, drive, ctx, capacity, chunk, spikes_out):
        """Steps ``n .. n + len(times)`` in one compiled call; None if a burst exceeded the capacity."""
        many, first = times.shape[0], n % INPUT_CHUNK
        state, pending, spikes, counts = self._compiled("_steps")(
            state, pending, times, {name: x[n:n + many] for name, x in drive.items()}, ctx, capacity,
            {k: x[first:first + many] for k, x in chunk.items()})
        if counts is not None:
            peak = counts.amax(0).tolist()
            if any(c > cap for c, cap in zip(peak, (c for c in capacity if c is not None))):
                return None
        for name, x in spikes.items():
            spikes_out[name].extend(x.unbind(0))
        return state, pending

    def _chunk_context(self, ctx, drive, spikes_out, start, stop, batch):
        """``ctx`` keeping the event tables of the projections where events win in steps ``start..stop``.

        The spike density of an input is that of the chunk itself; a population's is that of
        :data:`DENSITY_SAMPLES` steps spread over the previous chunk (the first chunk keeps events).
        """
        tables = list(ctx["tables"])
        for k, proj in enumerate(self.projections):
            if tables[k] is None:
                continue
            if proj.source in drive:
                x = drive[proj.source][start:stop]
                density = int(torch.count_nonzero(x)) / x.numel()
            elif start > 0:
                stride = max(1, INPUT_CHUNK // DENSITY_SAMPLES)
                recent = spikes_out[proj.source][max(0, start - INPUT_CHUNK):start:stride]
                density = sum(int(torch.count_nonzero(s)) for s in recent) / (len(recent) * batch * proj.n_src)
            else:
                continue
            if not self._events_win(proj, density):
                tables[k] = None
        return dict(ctx, tables=tables)

    def _input_effects(self, k, x, batch, ctx):
        """Effects (steps, batch, channels, n_tgt) of projection ``k`` for its input's values ``x`` (steps, b, n)."""
        proj = self.projections[k]
        steps, rows = x.shape[0], x.shape[0] * x.shape[1]
        flat = x.reshape(rows, x.shape[2])
        table = ctx["tables"][k]
        if table is not None:
            out = self._propagate_events(table, flat, proj.n_tgt)
        else:
            ops = ctx["ops"][k]
            mats = [ops[e][2][g][1] for g in range(len(proj.groups)) for e in range(len(ops))]
            nonzero = None
            if not proj.sparse and not flat.requires_grad:
                nonzero = flat.reshape(-1).ne(0).nonzero().squeeze(1)
            if nonzero is not None and nonzero.numel() < SPARSE_INPUT_DENSITY * flat.numel():
                rows, cols = nonzero.div(flat.shape[1], rounding_mode="floor"), nonzero.remainder(flat.shape[1])
                values = flat.reshape(-1)[nonzero]
                outs = [_SparseInputProduct.apply(rows, cols, values, tuple(flat.shape), mat) for mat in mats]
            else:
                outs = [self._product(mat, flat, proj.n_tgt) for mat in mats]
            out = outs[0].unsqueeze(1) if len(outs) == 1 else torch.stack(outs, 1)
        out = out.reshape(steps, x.shape[1], *out.shape[1:])
        return out.expand(steps, batch, *out.shape[2:])

    # -- compilation -------------------------------------------------------------------------
    def _use_compiled(self, no_grad):
        if not self.compile:
            return False
        reason = None if no_grad else "it applies to runs without gradients"
        if any(dyn.stochastic for dyn in self.populations.values()):
            reason = "a card draws random numbers"
        if reason is not None and not self.__dict__.get("_warned_eager"):
            logger.warning("compile=True: this run is eager, %s", reason)
            self.__dict__["_warned_eager"] = True
        return reason is None

    def _compiled(self, name):
        """Method ``name`` compiled with ``torch.compile`` (cached per runner)."""
        cache = self.__dict__.setdefault("_compiled_fns", {})
        if name not in cache:
            # a code object of its own per runner: torch.compile caches graphs per code
            # object, so runners do not share (and exhaust) one cache
            method = getattr(NetworkRunner, name)
            code = method.__code__.replace(co_name=f"{name}_{id(self):x}")
            fn = types.FunctionType(code, method.__globals__, code.co_name, method.__defaults__)
            cache[name] = torch.compile(types.MethodType(fn, self), dynamic=False, **self._compile_options)
        return cache[name]

    def _capacity(self, k, batch):
        """Spiking sources the compiled step handles per step for projection ``k`` (bursts aside)."""
        proj = self.projections[k]
        cap = _next_capacity(max(EVENT_CAPACITY_MIN, int(EVENT_CAPACITY_FRACTION * batch * proj.n_src)))
        return min(cap, batch * proj.n_src)

    def to_spec(self):
        """A copy of the spec with the current (trained) weights and trainable parameters (SI)."""
        spec = copy.copy(self.spec)
        spec.populations = dict(spec.populations)
        for name, dyn in self.populations.items():
            if dyn.trainable:
                pop = spec.populations[name] = copy.copy(spec.populations[name])
                pop.params = {**pop.params, **{key: dyn.param_tensor(key).detach().cpu().double().numpy().copy()
                                               for key in dyn.trainable}}
        spec.projections = []
        for proj in self.spec.projections:
            new = copy.copy(proj)
            new.weights = self.weight(proj.name).detach().cpu().double().numpy().copy()
            spec.projections.append(new)
        return spec
