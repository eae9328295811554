"""Tangent dynamics of spiking networks: how the Jacobian treats threshold crossings.

A spiking network is a *hybrid* system: smooth flow between spikes, a hard threshold,
and jumps (reset, synaptic increments) at spikes. Its Jacobian is not the derivative
of the time-stepped map, whose spike times are locked to the ``dt`` grid. Three
treatments are offered (``treatment=``):

``"exact"`` (default for spiking cards)
    Spike-time (saltation) correction at every threshold crossing, as in the
    event-based Jacobians of Engelken, Wolf & Abbott (2023) and the saltation matrix of
    hybrid systems (Müller 1995). Between spikes the tangent vectors follow the Jacobian
    of Brian2's state update. When neuron ``i`` crosses ``g_i(x) = 0`` (the threshold
    distance) in a step, a perturbation ``dx`` shifts its spike time by
    ``-c_i = -(grad g_i . dx) / (grad g_i . f^-)``; the tangent after the event is::

        dx+ = DR dx- + (f^+ - DR f^-)|own variables of i * c_i + J_f(x+) B(c)

    where ``DR`` is the derivative of the reset, ``f^-``/``f^+`` the vector field before
    and after the event, and ``B(c)`` the synaptic increments (``on_pre``) scaled by the
    spike-time shifts (the postsynaptic part of the saltation: an earlier spike means an
    earlier jump of the postsynaptic variables). The vector field is the secant of the
    card's own one-step map, ``f(x) = (Phi_dt(x) - x)/dt`` (evaluated non-refractory),
    which is exact in ratio for a linear one-dimensional membrane and first order in
    ``dt`` otherwise. Refractoriness: the spike-time shift is applied to the membrane
    immediately and carried through the refractory period unchanged (the card's
    ``(unless refractory)`` freezes it), which is exact when the vector field at the
    end of refractoriness equals the one at the reset (first order otherwise).
    Simultaneous spikes in one step are treated independently (first order in ``dt``).

``"surrogate"``
    The Jacobian of the time-stepped map with the surrogate derivative of the spike
    function (SuperSpike, ``slope``) in place of the Heaviside's delta: a smooth
    *approximation*, not the spectrum of the spiking network. Useful for comparison and
    for the rate-like regime.

``"discrete"``
    The true Jacobian of the time-stepped map (spike times locked to the grid): the reset
    erases the membrane perturbation, so phase directions contract spuriously. Given
    as the naive reference only.

Exponents are in 1/s. Noise drive is *frozen*: the input in step ``n`` depends on the
seed and ``n`` only, so the spectrum is that of the driven (non-autonomous) system.

>>> from neurocode.cards import card_from_string
>>> card = card_from_string(PACEMAKER_CARD, name="pacemaker")
>>> net = SpikingMap(card, n=1, dt=5e-4)
>>> res = spiking_spectrum(net, batch=1, t_sim=0.15, t_transient=0.01, treatment="exact")
>>> abs(float(res.exponents[0])) < 10.0    # phase of a periodic orbit: 0 up to ln(4)/T (vs -1/tau_m = -50 1/s)
True
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD

from neurocode.cards import ModelCard, load_card
from neurocode.lyapunov.spectrum import LyapunovError, spectrum  # noqa: F401 (doctest)
from neurocode.torch.dynamics import NEVER

log = logging.getLogger(__name__)

TREATMENTS = ("exact", "surrogate", "discrete")

#: A perfectly periodic LIF under constant drive (for tests and the doctest): one state
#: variable, no refractoriness; its largest exponent is 0 (phase), analytically.
PACEMAKER_CARD = """
kind = "spiking"
[neuron]
equations = "dv/dt = (v_rest - v + R_m*I_e)/tau_m : volt"
threshold = "v > v_th"
reset = "v = v_reset"
method = "exact"
[parameters]
tau_m = "20*ms"
v_rest = "-65*mV"
v_th = "-50*mV"
v_reset = "-65*mV"
R_m = "100*Mohm"
I_e = "0.2*nA"
[synapse]
model = "w : volt"
on_pre = "v_post += w"
"""


def _dual(x, v):
    return fwAD.make_dual(x, v)


def _split(out, like):
    p, t = fwAD.unpack_dual(out)
    return p, (torch.zeros_like(p) if t is None else t)


def spread_initial(dyn, state, seed=0):
    """Independent initial conditions: ``state`` (from ``dyn.initial_state(batch)``) with the
    reset variable of a spiking card drawn uniformly between its initial value and 95 % of the
    way to threshold (seeded), or every variable of a rate card shifted by N(0, 1)."""
    state = dict(state)
    batch, n = state[dyn.state_names[0]].shape
    gen = torch.Generator().manual_seed(int(seed))
    if dyn.spiking and dyn.reset_targets:
        name = dyn.reset_targets[0]
        u = torch.rand(batch, n, generator=gen, dtype=dyn.dtype).to(state[name].device)
        # threshold_scale: |distance to threshold| at the initial state, per neuron
        state[name] = state[name] + 0.95 * u * dyn.threshold_scale
    elif not dyn.spiking:
        for name in dyn.state_names:
            state[name] = state[name] + torch.randn(batch, n, generator=gen, dtype=dyn.dtype).to(state[name].device)
    return state


class SpikingMap:
    """One population of a card with recurrent weights and frozen noise drive, as a map.

    The network is a :class:`~neurocode.spec.NetworkSpec` (population ``"net"``, recurrent
    projection ``"recurrent"``, Poisson input ``"drive"`` with one-to-one weights) run by
    :class:`~neurocode.torch.runner.NetworkRunner`: a plain step *is* the runner's step, and the
    tangent treatments differentiate the runner's phases. The flat state is the card's state
    variables concatenated, ``(batch, n_vars * n)``; ``lastspike`` (refractoriness) is kept
    inside the map, one row per trajectory.

    Parameters
    ----------
    card : ModelCard or str
        A spiking card (or a rate card: then only the smooth treatment applies).
    params : dict, optional
        Per-neuron parameters (SI, (n,) or scalar); missing ones take the card's default.
    n : int, optional
        Number of neurons when all parameters are scalars.
    dt : float
        Time step (s).
    weights : array-like (n, n), optional
        Recurrent weights ``W[i, j]`` from neuron ``i`` to ``j`` (SI units of the card's
        weight; zeros are absent synapses); zero delays.
    drive : dict, optional
        Frozen Poisson noise: ``{"rate": Hz, "weight": SI value or (n,) array, "seed": int}``;
        each neuron receives independent Poisson spikes through the card's ``on_pre``.
    slope : float
        SuperSpike slope of the ``"surrogate"`` treatment.
    dtype, device
        Torch float type and device.
    initial : dict, optional
        Per-neuron initial values (SI) of state variables, as a Population stores them.
    """

    def __init__(self, card, params=None, n=None, dt=1e-4, weights=None, drive=None, slope=25.0,
                 dtype=torch.float64, device="cpu", initial=None):
        from neurocode.spec import NetworkSpec, Population, Projection
        from neurocode.torch import NetworkRunner, surrogate
        card = card if isinstance(card, ModelCard) else load_card(card)
        self.card, self.dt, self.dtype, self.device = card, float(dt), dtype, torch.device(device)
        params = dict(params or {})
        unknown = set(params) - set(card.defaults)
        if unknown:
            raise LyapunovError(f"card '{card.name}' has no parameter(s) {sorted(unknown)}; it has {card.parameters}")
        sizes = {np.size(v) for v in params.values() if np.ndim(v) > 0} | ({int(n)} if n is not None else set())
        if len(sizes) != 1:
            raise LyapunovError(f"cannot tell the number of neurons from parameters of sizes {sorted(sizes)}"
                                + ("" if sizes else "; pass n="))
        size = sizes.pop()
        full = {key: np.broadcast_to(np.asarray(params.get(key, float(default)), dtype=np.float64), (size,)).copy()
                for key, default in card.defaults.items()}
        spec = NetworkSpec(dt=self.dt)
        spec.populations["net"] = Population("net", card, size, full, dict(initial or {}))
        spiking = card.kind == "spiking" and bool(card.threshold)
        if weights is not None:
            if not spiking:
                raise LyapunovError(f"card '{card.name}' is a rate card: recurrent spiking weights need a "
                                    "spiking card")
            W = np.asarray(weights, dtype=np.float64)
            if W.shape != (size, size):
                raise LyapunovError(f"weights must be ({size}, {size}), got {W.shape}")
            i, j = np.nonzero(W)
            spec.add_projection(Projection("net", "net", i, j, W[i, j], name="recurrent"))
        self.drive = None
        if drive is not None:
            unknown = set(drive) - {"rate", "weight", "seed"}
            if unknown or "rate" not in drive or "weight" not in drive:
                raise LyapunovError(f"drive needs keys 'rate' (Hz) and 'weight' (and optional 'seed'); "
                                    f"got {sorted(drive)}")
            w_in = np.broadcast_to(np.asarray(drive["weight"], dtype=np.float64), (size,)).copy()
            spec.add_input("drive", size)
            spec.add_projection(Projection("drive", "net", np.arange(size), np.arange(size), w_in, name="drive"))
            self.drive = {"p": float(drive["rate"]) * self.dt, "seed": int(drive.get("seed", 0))}
        self.spec = spec
        self.runner = NetworkRunner(spec, spike_fn=surrogate.superspike(slope), dtype=dtype, device=device,
                                    propagation="matrix")
        self.runner.requires_grad_(False)
        self.dyn = self.runner.populations["net"]
        self.n = size
        self.names = list(self.dyn.state_names)
        self.n_state = len(self.names) * self.n
        self.spiking = self.dyn.spiking
        with torch.no_grad():
            self._ctx = self.runner.prepare(grad=False)
        self._lastspike = None

    # -- state -----------------------------------------------------------------------------
    def pack(self, state):
        """Flat (batch, n_state) tensor from a state dict."""
        return torch.cat([state[name] for name in self.names], dim=-1)

    def unpack(self, x, lastspike=None):
        """State dict from a flat tensor (``lastspike`` added when given)."""
        state = dict(zip(self.names, torch.split(x, self.n, dim=-1)))
        if lastspike is not None:
            state["lastspike"] = lastspike
        return state

    def initial(self, batch=1, seed=0):
        """Independent initial conditions (batch, n_state) from :func:`spread_initial`."""
        self._lastspike = None
        return self.pack(spread_initial(self.dyn, self.dyn.initial_state(batch), seed))

    def _ls(self, batch):
        if self._lastspike is None or self._lastspike.shape[0] != batch:
            self._lastspike = torch.full((batch, self.n), NEVER, dtype=torch.float64, device=self.device)
        return self._lastspike

    def drive_spikes(self, n):
        """Frozen Poisson drive of step ``n``: ``{"drive": (1, n) spikes}``, or {}."""
        if self.drive is None:
            return {}
        gen = torch.Generator().manual_seed(self.drive["seed"] * 1_000_003 + int(n))
        hits = (torch.rand(1, self.n, generator=gen, dtype=torch.float64) < self.drive["p"])
        return {"drive": hits.to(dtype=self.dtype, device=self.device)}

    def _net(self, x, lastspike):
        return {"net": self.unpack(x, lastspike)}

    # -- plain simulation ----------------------------------------------------------------------
    def step(self, x, n, return_spikes=False):
        """One step of the network: the runner's step; ``x`` (batch, n_state).

        The spikes carry the surrogate derivative when grad mode is on (the ``"surrogate"``
        treatment); their forward values are exact either way.
        """
        batch = x.shape[0]
        ls = self._ls(batch)
        state, _, spikes, _, _ = self.runner.step(self._net(x, ls), self.runner.initial_pending(batch),
                                                  n * self.dt, self.drive_spikes(n), self._ctx)
        net = state["net"]
        self._lastspike = net["lastspike"].detach() if "lastspike" in net else ls
        out = self.pack(net)
        if not return_spikes:
            return out
        return out, (spikes["net"] > 0.5) if self.spiking else None

    def run(self, x, steps, n0=0, record=True):
        """Run ``steps`` steps from ``x`` (step indices ``n0 ...``).

        Returns ``(x_final, spikes)``: spikes ``(steps, batch, n)`` bool, or None when
        ``record`` is False.
        """
        spikes = []
        with torch.no_grad():
            for n in range(n0, n0 + steps):
                x, s = self.step(x, n, return_spikes=True)
                if record:
                    spikes.append(s if s is not None else torch.zeros(x.shape[0], self.n, dtype=torch.bool))
        return x, (torch.stack(spikes) if record and spikes else None)

    # -- tangent propagation ------------------------------------------------------------------
    def propagator(self, treatment="exact"):
        """``propagate(x, V, n) -> (x_next, V_next)`` for :func:`~neurocode.lyapunov.spectrum`.

        ``treatment`` is ``"exact"``, ``"surrogate"`` or ``"discrete"`` (see the module
        docstring). Call :meth:`initial` (or :meth:`reset_memory`) before each new run.
        """
        if treatment not in TREATMENTS:
            raise LyapunovError(f"unknown spike treatment {treatment!r}; choose one of {list(TREATMENTS)}")
        if not self.spiking:      # rate card: a smooth map
            from neurocode.lyapunov.spectrum import jvp_propagator
            return jvp_propagator(self.step, "central")
        if treatment == "exact":
            return self._exact
        surrogate = treatment == "surrogate"

        def propagate(x, V, n):
            batch, S, k = V.shape
            ls = self._ls(batch)
            self._lastspike = ls.repeat(k, 1)
            xr = x.repeat(k, 1)
            vr = V.permute(2, 0, 1).reshape(k * batch, S)
            # grad mode routes the surrogate derivative of the spikes into reset and synapses;
            # without it the spikes are exact (the discrete map's Jacobian)
            with torch.set_grad_enabled(surrogate), fwAD.dual_level():
                if surrogate:
                    xr = xr.detach().requires_grad_()
                out = self.step(_dual(xr, vr), n)
                p, tan = _split(out, xr)
                p, tan = p.detach(), tan.detach()
            self._lastspike = self._lastspike[:batch]
            return p[:batch], tan.reshape(k, batch, S).permute(1, 2, 0)
        return propagate

    def reset_memory(self):
        """Forget ``lastspike`` (start of a new run)."""
        self._lastspike = None

    def _flow(self, x, t, ls):
        """Phase 1 of the runner's step (the state update) on a flat state."""
        state, nrs = self.runner.update(self._net(x, ls), t, self._ctx)
        return self.pack(state["net"]), nrs

    def _field(self, x, t):
        """Secant vector field (1/s units of the state), evaluated non-refractory."""
        ls = torch.full((x.shape[0], self.n), NEVER, dtype=torch.float64, device=self.device)
        return (self._flow(x, t, ls)[0] - x) / self.dt

    def _jvp(self, fn, x, V):
        """JVPs of ``fn`` at ``x`` (batch, S) along V (batch, S, k) -> (fn(x), (batch, S', k))."""
        batch, S, k = V.shape
        xr = x.repeat(k, 1)
        vr = V.permute(2, 0, 1).reshape(k * batch, S)
        with fwAD.dual_level():
            p, tan = _split(fn(_dual(xr, vr), k), xr)
        return p[:batch], tan.reshape(k, batch, -1).permute(1, 2, 0)

    def _exact(self, x, V, n):
        runner, t, batch = self.runner, n * self.dt, x.shape[0]
        ls = self._ls(batch)
        drive = self.drive_spikes(n)
        # 1. smooth flow (phase 1, Brian2's state update) and its tangent
        x1, V1 = self._jvp(lambda y, k: self._flow(y, t, ls.repeat(k, 1))[0], x, V)
        with torch.no_grad():
            nrs = {"net": self.dyn.not_refractory(self.unpack(x, ls), t)}
            state1, _, conds, writable = runner.threshold(self._net(x1, ls), t, nrs)    # phase 2
        cond, mask = conds["net"], writable["net"]
        ls_new = state1["net"]["lastspike"]
        s = cond.to(self.dtype)

        def event(y, k=1):
            """Phases 3 and 4 (synapses, reset) with this step's spikes held fixed."""
            def rep(a):
                return a if a is None else a.repeat(k, 1)
            state = self._net(y, ls_new.repeat(k, 1))
            state, _, _ = runner.propagate(state, runner.initial_pending(y.shape[0]),
                                           {"net": rep(s), **drive}, self._ctx, {"net": rep(mask)})
            return self.pack(runner.reset(state, {"net": rep(s)}, {"net": rep(cond)}, t)["net"])

        x2, DRV1 = self._jvp(event, x1, V1)
        if not bool(cond.any()):
            self._lastspike = ls_new
            return x2, DRV1
        # 2. spike-time shifts c_i = (grad g . dx) / (grad g . f-), g the distance to threshold

        def dist(y, k=1):
            return runner.threshold_distance("net", self.unpack(y), t)

        F1 = self._field(x1, t + self.dt)
        _, dG = self._jvp(dist, x1, V1)
        _, gF = self._jvp(dist, x1, F1[..., None])
        gF = gF[..., 0]
        gF = torch.where(gF > 0, gF, torch.full_like(gF, torch.finfo(self.dtype).tiny))
        c = torch.where(cond[..., None], dG / gF[..., None], torch.zeros_like(dG))   # (batch, n, k)
        # 3. own saltation term: (f+ - DR f-) on the spiking neuron's own variables
        _, DRF1 = self._jvp(event, x1, F1[..., None])
        F2 = self._field(x2, t + self.dt)
        n_vars = len(self.names)
        own_mask = cond.repeat(1, n_vars)[..., None].to(self.dtype)
        V2 = DRV1 + own_mask * (F2 - DRF1[..., 0])[..., None] * c.repeat(1, n_vars, 1)
        # 4. postsynaptic saltation term: J_f(x2) B(c), J_f = (J_Phi - 1)/dt, with B(c) the
        #    synaptic increments of the recurrent projection (phase 3) for spike values c
        if runner.projections and any(p.source == "net" for p in runner.projections):
            k = c.shape[2]
            shifts = c.permute(2, 0, 1).reshape(k * batch, self.n)
            zero = {"net": {name: torch.zeros_like(shifts) for name in self.names}}
            inc, _, _ = runner.propagate(zero, runner.initial_pending(k * batch), {"net": shifts, "drive":
                                         torch.zeros(1, self.n, dtype=self.dtype, device=self.device)},
                                         self._ctx, {"net": mask.repeat(k, 1)})
            B = self.pack(inc["net"]).reshape(k, batch, -1).permute(1, 2, 0)
            _, JB = self._jvp(lambda y, k: self._flow(y, t + self.dt, ls_new.repeat(k, 1))[0], x2, B)
            V2 = V2 + (JB - B) / self.dt
        self._lastspike = ls_new
        return x2, V2


def spiking_spectrum(net, *, batch=4, k=None, t_sim=1.0, t_transient=0.2, t_relax=0.0, x0=None,
                     treatment="exact", qr_every=1, seed=0, progress=False, converge=None):
    """Lyapunov spectrum (1/s) of a :class:`SpikingMap` with a given spike treatment.

    Parameters
    ----------
    net : SpikingMap
    batch : int
        Independent initial conditions (ignored when ``x0`` is given).
    k : int, optional
        Number of exponents (default all).
    t_sim, t_transient : float
        Averaging time and discarded transient (s); during the transient states and tangent
        vectors both relax.
    t_relax : float
        Time (s) run first with the plain map (no tangent vectors, so about three times
        cheaper per step than the transient), to spread the initial conditions over the
        attractor. An ensemble that is not yet distributed like the attractor biases the
        batch mean: Lorenz-63 started near its initial (1, 1, 1) follows the unstable
        manifold of the origin, and its conditions stay correlated for tens of time units.
    x0 : torch.Tensor, optional
        Initial conditions ``(batch, n_state)`` (default :meth:`SpikingMap.initial`).
    treatment : {"exact", "surrogate", "discrete"}
    qr_every, seed, progress, converge
        As for :func:`~neurocode.lyapunov.spectrum` (``converge``: run until converged, at
        most ``t_sim``).

    Returns
    -------
    LyapunovResult
        Step ``n`` of the transient and averaging window is step ``n + round(t_relax/dt)``
        of the (frozen) drive.
    """
    if t_relax < 0:
        raise LyapunovError(f"t_relax must be >= 0 s, got {t_relax}")
    if x0 is None:
        x0 = net.initial(batch, seed)
    else:
        net.reset_memory()
    n_relax = int(round(t_relax / net.dt))
    if n_relax:
        x0, _ = net.run(x0, n_relax, record=False)
    base = net.propagator(treatment)
    propagate = base if not n_relax else (lambda x, V, n: base(x, V, n + n_relax))
    res = spectrum(None, x0, net.dt, k=k, t_sim=t_sim, t_transient=t_transient, qr_every=qr_every,
                   propagator=propagate, treatment=treatment if net.spiking else "smooth",
                   seed=seed, progress=progress, converge=converge)
    res.metadata.update({"card": net.card.name, "n_neurons": net.n, "layout": net.names,
                         "t_relax": n_relax * net.dt})
    return res
