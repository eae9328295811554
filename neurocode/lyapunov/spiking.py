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

from neurocode.lyapunov.spectrum import LyapunovError, spectrum  # noqa: F401 (doctest)
from neurocode.cards import ModelCard, load_card

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


class SpikingMap:
    """One population of a card with recurrent weights and frozen noise drive.

    The flat state is the card's state variables concatenated, ``(batch, n_vars * n)``;
    ``lastspike`` (refractoriness) is kept inside the map, one row per trajectory.

    Parameters
    ----------
    card : ModelCard or str
        A spiking card (or a rate card: then only the smooth treatment applies).
    params : dict, optional
        Per-neuron parameters (SI), as for :class:`~neurocode.torch.PopulationDynamics`.
    n : int, optional
        Number of neurons when all parameters are scalars.
    dt : float
        Time step (s).
    weights : array-like (n, n), optional
        Recurrent weights ``W[i, j]`` from neuron ``i`` to ``j`` (SI units of the card's
        weight); zero delays.
    drive : dict, optional
        Frozen Poisson noise: ``{"rate": Hz, "weight": SI value or (n,) array, "seed": int}``;
        each neuron receives independent Poisson spikes through the card's ``on_pre``.
    slope : float
        SuperSpike slope of the ``"surrogate"`` treatment.
    dtype, device
        Torch float type and device.
    """

    def __init__(self, card, params=None, n=None, dt=1e-4, weights=None, drive=None, slope=25.0,
                 dtype=torch.float64, device="cpu"):
        from neurocode.torch import PopulationDynamics, surrogate
        from neurocode.torch.runner import synaptic_effects
        card = card if isinstance(card, ModelCard) else load_card(card)
        self.card, self.dt, self.dtype, self.device = card, float(dt), dtype, torch.device(device)
        self.dyn = PopulationDynamics(card, params, dt, spike_fn=surrogate.superspike(slope),
                                      dtype=dtype, device=device, n=n)
        self.n = self.dyn.n
        self.names = list(self.dyn.state_names)
        self.n_state = len(self.names) * self.n
        self.spiking = self.dyn.spiking
        self.effects = []
        self.W = None
        if weights is not None:
            if not self.spiking:
                raise LyapunovError(f"card '{card.name}' is a rate card: recurrent spiking weights need a "
                                    "spiking card")
            W = torch.as_tensor(np.asarray(weights, dtype=np.float64), dtype=dtype, device=device)
            if W.shape != (self.n, self.n):
                raise LyapunovError(f"weights must be ({self.n}, {self.n}), got {tuple(W.shape)}")
            self.W = W
            self.effects = [(var, sign * torch.as_tensor(fn(W), dtype=dtype, device=device).expand_as(W))
                            for var, sign, fn in synaptic_effects(card, dtype)]
        self.drive = None
        if drive is not None:
            unknown = set(drive) - {"rate", "weight", "seed"}
            if unknown or "rate" not in drive or "weight" not in drive:
                raise LyapunovError(f"drive needs keys 'rate' (Hz) and 'weight' (and optional 'seed'); "
                                    f"got {sorted(drive)}")
            from neurocode.torch.runner import synaptic_effects
            w_in = torch.as_tensor(np.broadcast_to(np.asarray(drive["weight"], dtype=np.float64), (self.n,)).copy(),
                                   dtype=dtype, device=device)
            self.drive = {"p": float(drive["rate"]) * self.dt, "seed": int(drive.get("seed", 0)),
                          "effects": [(var, sign * torch.as_tensor(fn(w_in), dtype=dtype, device=device)
                                       .expand_as(w_in)) for var, sign, fn in synaptic_effects(card, dtype)]}
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
        """Independent initial conditions (batch, n_state): the card's initial state with the
        reset variable drawn uniformly between its initial value and the threshold."""
        state = self.dyn.initial_state(batch)
        if self.spiking and self.dyn.reset_targets:
            name = self.dyn.reset_targets[0]
            gen = torch.Generator().manual_seed(int(seed))
            u = torch.rand(batch, self.n, generator=gen, dtype=self.dtype).to(self.device)
            # threshold_scale: |distance to threshold| at the initial state, per neuron
            state[name] = state[name] + 0.95 * u * self.dyn.threshold_scale
        elif not self.spiking:
            gen = torch.Generator().manual_seed(int(seed))
            for name in self.names:
                state[name] = state[name] + torch.randn(batch, self.n, generator=gen, dtype=self.dtype)
        self._lastspike = None
        return self.pack(state)

    def _ls(self, batch):
        if self._lastspike is None or self._lastspike.shape[0] != batch:
            from neurocode.torch.dynamics import NEVER
            self._lastspike = torch.full((batch, self.n), NEVER, dtype=torch.float64, device=self.device)
        return self._lastspike

    def _noise(self, n, batch):
        """Frozen Poisson drive of step ``n``: dict var -> (1, n) increment, or {}."""
        if self.drive is None:
            return {}
        gen = torch.Generator().manual_seed(self.drive["seed"] * 1_000_003 + int(n))
        hits = (torch.rand(1, self.n, generator=gen, dtype=torch.float64) < self.drive["p"])
        hits = hits.to(dtype=self.dtype, device=self.device)
        return {var: hits * eff for var, eff in self.drive["effects"]}

    def _synaptic(self, state, s, n=None, inputs=None):
        """Add synaptic increments of spikes ``s`` (batch, n), the noise of step n and
        external ``inputs`` (dict var -> (batch, n) increment, SI units of the variable)."""
        state = dict(state)
        for var, eff in self.effects:
            state[var] = state[var] + s @ eff
        if n is not None:
            for var, inc in self._noise(n, s.shape[0]).items():
                state[var] = state[var] + inc
        for var, inc in (inputs or {}).items():
            state[var] = state[var] + inc
        return state

    # -- plain simulation ----------------------------------------------------------------------
    def step(self, x, n, return_spikes=False, surrogate=False, inputs=None):
        """One step of the network (Brian2's schedule); ``x`` (batch, n_state).

        With ``surrogate=True`` the spikes carry the surrogate derivative (for the
        ``"surrogate"`` treatment); the forward values are identical. ``inputs`` (dict
        state variable -> (batch, n) tensor, SI units of the variable) is added in the
        synaptic slot, like the increments of ``on_pre`` (an external drive; plain
        simulation only).
        """
        batch = x.shape[0]
        ls = self._ls(batch)
        t = n * self.dt
        state, nr = self.dyn.update(self.unpack(x, ls), t)
        if not self.spiking:
            self._lastspike = ls
            out = self.pack(state)
            return (out, None) if return_spikes else out
        spikes, cond, state = self.dyn.threshold(state, t, nr)
        if not surrogate:
            spikes = cond.to(self.dtype)
        state = self._synaptic(state, spikes, n, inputs)
        state = self.dyn.reset(state, spikes, cond, t)
        self._lastspike = state["lastspike"].detach()
        out = self.pack(state)
        return (out, cond) if return_spikes else out

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
            # the surrogate package routes the spike derivative into the reset only when
            # the spikes require grad, so grad mode is switched on for that treatment
            with torch.set_grad_enabled(surrogate), fwAD.dual_level():
                if surrogate:
                    xr = xr.detach().requires_grad_()
                out = self.step(_dual(xr, vr), n, surrogate=surrogate)
                p, tan = _split(out, xr)
                p, tan = p.detach(), tan.detach()
            self._lastspike = self._lastspike[:batch]
            return p[:batch], tan.reshape(k, batch, S).permute(1, 2, 0)
        return propagate

    def reset_memory(self):
        """Forget ``lastspike`` (start of a new run)."""
        self._lastspike = None

    def _flow(self, x, t, ls):
        state, nr = self.dyn.update(self.unpack(x, ls), t)
        return self.pack(state), nr

    def _field(self, x, t):
        """Secant vector field (1/s units of the state), evaluated non-refractory."""
        from neurocode.torch.dynamics import NEVER
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
        dyn, t, batch = self.dyn, n * self.dt, x.shape[0]
        ls = self._ls(batch)
        # 1. smooth flow (Brian2's state update) and its tangent
        x1, V1 = self._jvp(lambda y, k: self._flow(y, t, ls.repeat(k, 1))[0], x, V)
        with torch.no_grad():
            nr = dyn.not_refractory(self.unpack(x, ls), t)
            _, cond, state1 = dyn.threshold(self.unpack(x1, ls), t, nr)
        ls_new = state1["lastspike"]
        s = cond.to(self.dtype)

        def event(y, k=1):
            st = self._synaptic(self.unpack(y, ls_new.repeat(k, 1)), s.repeat(k, 1), n)
            return self.pack(dyn.reset(st, s.repeat(k, 1), cond.repeat(k, 1), t))

        x2, DRV1 = self._jvp(event, x1, V1)
        if not bool(cond.any()):
            self._lastspike = ls_new
            return x2, DRV1
        # 2. spike-time shifts c_i = (grad g . dx) / (grad g . f-)
        dist = lambda y, k=1: dyn._threshold_fn(**dyn._env(self.unpack(y), t, None))["_nc_dist"]  # noqa: E731
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
        # 4. postsynaptic saltation term: J_f(x2) B(c), J_f = (J_Phi - 1)/dt
        if self.effects:
            B = torch.zeros_like(V2)
            for var, eff in self.effects:
                j = self.names.index(var)
                B[:, j * self.n:(j + 1) * self.n, :] += torch.einsum("bik,ij->bjk", c, eff)
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
