"""Lyapunov spectra by the Benettin / QR method on a torch map.

The engine works on any one-step map ``step(x, n) -> x_next`` on a flat state
``x`` of shape ``(batch, n_state)`` (``n`` is the integer step index, for driven
systems; autonomous maps ignore it). ``k`` orthonormal tangent vectors per initial
condition are pushed forward with Jacobian-vector products (:func:`torch.func.jvp`,
vectorised over the tangent vectors with :func:`torch.func.vmap`; no dense Jacobian
is formed) and re-orthonormalised by a QR decomposition every ``qr_every`` steps. The
logarithms of the diagonal of ``R`` accumulate into the exponents.

Exponents are returned in **1/s** when ``dt`` is the time step in seconds (for a
discrete map use ``dt=1`` to get exponents per iteration).

>>> import torch
>>> A = torch.tensor([[-1.0, 0.5], [0.0, -3.0]], dtype=torch.float64)
>>> step = lambda x, n: x + 1e-2 * x @ A.T          # Euler step of x' = A x
>>> res = spectrum(step, torch.ones(4, 2, dtype=torch.float64), dt=1e-2, t_sim=4.0,
...                t_transient=0.5, qr_every=5)
>>> [round(float(v), 1) for v in res.exponents]      # eigenvalues of A (to O(dt)), in 1/s
[-1.0, -3.0]
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD
from torch.func import jvp, vmap

from neurocode.errors import NeurocodeError

log = logging.getLogger(__name__)


class LyapunovError(NeurocodeError, ValueError):
    """Bad input to a Lyapunov computation (shapes, times, counts); the message names it."""


@dataclass(frozen=True)
class Convergence:
    """When a spectrum has converged: run in blocks until, for every exponent ``i``, both the
    change of the running estimate over the last block and its standard error are at most
    ``max(atol, rtol * |lambda_i|)``.

    Attributes
    ----------
    rtol : float
        Relative tolerance (default 0.02).
    atol : float, optional
        Absolute tolerance (1/s); default ``rtol * |lambda_1|`` (the largest exponent), which
        keeps exponents near 0 (a flow's zero exponent) from needing a relative precision they
        cannot have. Give it when ``lambda_1`` itself is near 0.
    t_block : float
        Averaging time per block (s); the test runs at the end of each block, from the
        second one on.

    The standard error is over the batch of initial conditions when there are several, else
    over the blocks' own exponents (which are correlated, so it is a lower bound).
    """

    rtol: float = 0.02
    atol: float | None = None
    t_block: float = 1.0

    def __post_init__(self):
        if not self.rtol >= 0 or (self.atol is not None and not self.atol >= 0) or not self.t_block > 0:
            raise LyapunovError(f"convergence needs rtol >= 0, atol >= 0 and t_block > 0 s; got rtol={self.rtol}, "
                                f"atol={self.atol}, t_block={self.t_block}")
        if self.rtol == 0 and not self.atol:
            raise LyapunovError("convergence needs rtol > 0 or atol > 0")

    def bounds(self, exponents):
        """Allowed drift and standard error per exponent (1/s)."""
        atol = self.rtol * abs(exponents[0]) if self.atol is None else self.atol
        return np.maximum(atol, self.rtol * np.abs(exponents))


@dataclass
class LyapunovResult:
    """Lyapunov exponents with convergence diagnostics.

    Attributes
    ----------
    exponents : numpy.ndarray, shape (k,)
        Mean over initial conditions, largest first, in 1/s (per iteration if ``dt=1``).
    per_condition : numpy.ndarray, shape (batch, k)
        Exponents of each independent initial condition (1/s).
    times : numpy.ndarray, shape (n_records,)
        Averaging time (s, after the transient) of each running estimate.
    running : numpy.ndarray, shape (n_records, batch, k)
        Running estimates of the exponents (1/s) at ``times``.
    dt, t_sim, t_transient : float
        Time step, averaging time and discarded transient (s).
    qr_every : int
        Steps between QR re-orthonormalisations.
    converged : bool or None
        With a :class:`Convergence` test: whether it passed before the cap on the averaging
        time (``t_sim``); None for a run of fixed length.
    treatment : str
        How the Jacobian was obtained (``"smooth"`` for a differentiable map, or the
        spike treatment of :mod:`neurocode.lyapunov.spiking`).
    units : str
        ``"1/s"``.
    """

    exponents: np.ndarray
    per_condition: np.ndarray
    times: np.ndarray
    running: np.ndarray
    dt: float
    t_sim: float
    t_transient: float
    qr_every: int
    treatment: str = "smooth"
    units: str = "1/s"
    converged: bool | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def k(self):
        """Number of exponents."""
        return int(self.exponents.size)

    @property
    def spread(self):
        """Standard deviation over initial conditions of each exponent (1/s)."""
        if self.per_condition.shape[0] < 2:
            return np.full(self.k, np.nan)
        return self.per_condition.std(axis=0, ddof=1)

    @property
    def stderr(self):
        """Standard error of each exponent (1/s): of the mean over initial conditions, or, with
        one condition, over the exponents of the intervals between records (correlated: a
        lower bound); NaN when neither exists."""
        batch = self.per_condition.shape[0]
        if batch >= 2:
            return self.spread / math.sqrt(batch)
        if self.times.size < 3:
            return np.full(self.k, np.nan)
        total = self.running[:, 0] * self.times[:, None]
        blocks = np.diff(np.vstack([np.zeros(self.k), total]), axis=0) / np.diff(self.times, prepend=0.0)[:, None]
        return blocks.std(axis=0, ddof=1) / math.sqrt(blocks.shape[0])

    @property
    def drift(self):
        """Change of the batch-mean running estimate over the last half of the run (1/s)."""
        if self.times.size < 2:
            return np.full(self.k, np.nan)
        half = self.running[self.times.size // 2].mean(axis=0)
        return self.exponents - half

    @property
    def drift_last_block(self):
        """Change of the batch-mean running estimate between the last two records (1/s)."""
        if self.times.size < 2:
            return np.full(self.k, np.nan)
        return self.running[-1].mean(axis=0) - self.running[-2].mean(axis=0)

    def kaplan_yorke(self):
        """Kaplan-Yorke (Lyapunov) dimension of the computed part of the spectrum."""
        lam = np.sort(self.exponents)[::-1]
        c = np.cumsum(lam)
        if c[0] < 0:
            return 0.0
        j = int(np.nonzero(c >= 0)[0].max())
        if j + 1 >= lam.size:
            return float(lam.size)
        return float(j + 1 + c[j] / abs(lam[j + 1]))

    def to_frame(self):
        """Running estimates as a long pandas DataFrame (time_s, condition, index, exponent)."""
        import pandas as pd
        n_rec, batch, k = self.running.shape
        t, b, i = np.meshgrid(self.times, np.arange(batch), np.arange(k), indexing="ij")
        return pd.DataFrame({"time_s": t.ravel(), "condition": b.ravel(), "index": i.ravel(),
                             "exponent_per_s": self.running.ravel()})

    def summary(self):
        """A short text report: exponents with standard errors, spread, drift, convergence."""
        lines = [f"{self.k} Lyapunov exponents ({self.units}), {self.per_condition.shape[0]} initial "
                 f"condition(s), T = {self.t_sim:g} s after {self.t_transient:g} s transient, "
                 f"dt = {self.dt:g} s, QR every {self.qr_every} step(s), treatment: {self.treatment}",
                 f"{'i':>4} {'exponent':>12} {'± s.e.':>10} {'spread':>10} {'drift':>10}"]
        for i, (lam, e, s, d) in enumerate(zip(self.exponents, self.stderr, self.spread, self.drift)):
            lines.append(f"{i:4d} {lam:12.5g} {e:10.3g} {s:10.3g} {d:10.3g}")
        lines.append(f"sum = {self.exponents.sum():.5g} {self.units}; "
                     f"Kaplan-Yorke dimension = {self.kaplan_yorke():.3g}")
        if self.converged is not None:
            lines.append(f"converged after {self.t_sim:g} s" if self.converged else
                         f"NOT converged: stopped at the cap of {self.t_sim:g} s")
        return "\n".join(lines)

    def to_dict(self):
        """Plain dict (for JSON)."""
        return {"exponents": self.exponents.tolist(), "stderr": self.stderr.tolist(),
                "spread": self.spread.tolist(), "drift": self.drift.tolist(), "converged": self.converged,
                "per_condition": self.per_condition.tolist(),
                "dt": self.dt, "t_sim": self.t_sim, "t_transient": self.t_transient,
                "qr_every": self.qr_every, "treatment": self.treatment, "units": self.units,
                "kaplan_yorke": self.kaplan_yorke(), "metadata": self.metadata}


def jvp_propagator(step, method="forward_ad", eps=1e-6):
    """Tangent propagator of a differentiable map, by Jacobian-vector products.

    Parameters
    ----------
    step : callable
        ``step(x, n) -> x_next`` on tensors of shape ``(batch, n_state)``; rows must be
        independent (each row is one trajectory).
    method : {"forward_ad", "vmap"}
        ``"forward_ad"`` (default, fastest on CPU): the ``k`` tangent vectors are folded
        into the batch, ``(k * batch, n_state)`` with row ``r`` belonging to initial
        condition ``r % batch``, and one dual-number pass of ``step`` gives all JVPs (a
        driven ``step`` with per-condition input should tile it with
        ``inp.repeat(x.shape[0] // batch, 1)``). ``"vmap"``: :func:`torch.func.jvp`
        vectorised over tangent vectors with :func:`torch.func.vmap`. ``"central"``:
        central differences ``(f(x + h v) - f(x - h v)) / 2h`` with ``h = eps (1 + max|x|)``
        (error ~ eps^2 + 1e-16/eps, about 1e-10 in float64) -- for smooth maps whose
        dual-number pass is slow (torch 2.13's forward-mode AD of tensor-by-Python-scalar
        products, which generated card code is full of, runs ~100x slower than the
        primal); never for maps with hard thresholds.
    eps : float
        Relative step of ``"central"``.

    Returns
    -------
    callable
        ``propagate(x, V, n) -> (x_next, V_next)`` with tangent vectors ``V`` of shape
        ``(batch, n_state, k)``.
    """
    if method == "vmap":
        def propagate(x, V, n):
            f = lambda y: step(y, n)  # noqa: E731
            x_next = f(x)
            V_next = vmap(lambda v: jvp(f, (x,), (v,))[1], in_dims=2, out_dims=2)(V)
            return x_next, V_next
        return propagate
    if method == "central":
        def propagate(x, V, n):
            batch, n_state, k = V.shape
            norm = V.norm(dim=1, keepdim=True).clamp_min(torch.finfo(V.dtype).tiny)   # (batch, 1, k)
            scale = eps * (1.0 + x.abs().amax(dim=1, keepdim=True))[..., None]       # (batch, 1, 1)
            h = (V / norm * scale).permute(2, 0, 1).reshape(k * batch, n_state)
            xr = x.repeat(k, 1)
            diff = (step(xr + h, n) - step(xr - h, n)).reshape(k, batch, n_state).permute(1, 2, 0)
            return step(x, n), diff / (2 * scale) * norm
        return propagate
    if method != "forward_ad":
        raise LyapunovError(f"unknown JVP method {method!r}; choose 'forward_ad', 'vmap' or 'central'")

    def propagate(x, V, n):
        batch, n_state, k = V.shape
        xr = x.repeat(k, 1)
        vr = V.permute(2, 0, 1).reshape(k * batch, n_state)
        with fwAD.dual_level():
            out = step(fwAD.make_dual(xr, vr), n)
            primal, tangent = fwAD.unpack_dual(out)
        if tangent is None:  # the map does not depend on x
            tangent = torch.zeros_like(primal)
        return primal[:batch], tangent.reshape(k, batch, n_state).permute(1, 2, 0)
    return propagate


def orthonormal_tangents(batch, n_state, k, dtype=torch.float64, device="cpu", seed=0):
    """Random orthonormal tangent vectors, shape ``(batch, n_state, k)``."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    V = torch.randn(batch, n_state, k, generator=gen, dtype=dtype)
    Q, _ = torch.linalg.qr(V)
    return Q.to(device)


def _qr(V):
    """QR with log|diag R| (sign-free), for a batch of (n, k) matrices."""
    Q, R = torch.linalg.qr(V)
    d = torch.diagonal(R, dim1=-2, dim2=-1)
    return Q, torch.log(torch.abs(d).clamp_min(torch.finfo(d.dtype).tiny))


def spectrum(step, x0, dt, *, k=None, t_sim, t_transient=0.0, qr_every=1, n_records=50,
             propagator=None, jvp="forward_ad", treatment="smooth", seed=0, progress=False, converge=None):
    """The ``k`` largest Lyapunov exponents of a map by the Benettin / QR method.

    Parameters
    ----------
    step : callable
        One-step map ``step(x, n) -> x_next`` on ``(batch, n_state)`` tensors; ``n`` is the
        step index (counted from 0 at the start of the transient). Must be differentiable
        by :func:`torch.func.jvp` unless ``propagator`` is given.
    x0 : torch.Tensor, shape (batch, n_state)
        Independent initial conditions (their spread is a convergence diagnostic).
    dt : float
        Time step of the map in seconds (exponents come out in 1/s).
    k : int, optional
        Number of exponents (default: all, ``n_state``).
    t_sim : float
        Averaging time in seconds (after the transient); with ``converge``, its cap.
    t_transient : float
        Time (s) run first and discarded; states and tangent vectors both relax.
    qr_every : int
        Steps between re-orthonormalisations (1 is safest; larger is faster but can lose
        the smallest exponents when they are far apart).
    n_records : int
        Number of running estimates kept (with ``converge``: one per block instead).
    propagator : callable, optional
        ``propagate(x, V, n) -> (x_next, V_next)``; default :func:`jvp_propagator` of
        ``step`` (the spike treatments of :mod:`neurocode.lyapunov.spiking` give their own).
    jvp : {"forward_ad", "vmap", "central"}
        How the default propagator computes JVPs (see :func:`jvp_propagator`).
    treatment : str
        Recorded in the result (how the Jacobian treats spikes).
    seed : int
        Seed of the random initial tangent vectors.
    progress : bool
        Show a tqdm progress bar.
    converge : Convergence, optional
        Run in blocks until the estimate has converged (see :class:`Convergence`), at most
        ``t_sim``; a run stopped by that cap logs a warning and has ``converged = False``.

    Returns
    -------
    LyapunovResult
    """
    if not isinstance(x0, torch.Tensor) or x0.ndim != 2:
        raise LyapunovError(f"x0 must be a tensor of shape (batch, n_state), got "
                            f"{getattr(x0, 'shape', type(x0).__name__)}")
    batch, n_state = x0.shape
    k = n_state if k is None else int(k)
    if not 1 <= k <= n_state:
        raise LyapunovError(f"k must lie in [1, {n_state}] (the state dimension), got {k}")
    if not dt > 0:
        raise LyapunovError(f"dt must be > 0 s, got {dt}")
    if qr_every < 1:
        raise LyapunovError(f"qr_every must be >= 1, got {qr_every}")
    n_transient = int(round(t_transient / dt))
    n_qr = int(round(t_sim / dt)) // qr_every
    if n_qr < 1:
        raise LyapunovError(f"t_sim = {t_sim} s is shorter than one QR interval "
                            f"({qr_every} x dt = {qr_every * dt} s)")
    if converge is None:
        record_at = set(np.unique(np.linspace(1, n_qr, min(n_records, n_qr)).round().astype(int)))
    else:
        block = max(1, int(round(converge.t_block / (qr_every * dt))))
        t_block = block * qr_every * dt
        record_at = set(range(block, n_qr + 1, block))
    propagate = propagator or jvp_propagator(step, jvp)
    x = x0.detach().clone()
    V = orthonormal_tangents(batch, n_state, k, x.dtype, x.device, seed)
    acc = torch.zeros(batch, k, dtype=torch.float64, device=x.device)
    times, running, converged, n = [], [], None, 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n_transient + n_qr * qr_every, desc="lyapunov", unit="step")

    def advance(steps):
        nonlocal x, V, n
        for _ in range(steps):
            x, V = propagate(x, V, n)
            n += 1
        if bar is not None:
            bar.update(steps)
        if not torch.isfinite(x).all():
            raise LyapunovError(f"the state became non-finite at step {n}; reduce dt or check the dynamics")
        V, logd = _qr(V)
        return logd

    with torch.no_grad():
        for start in range(0, n_transient, qr_every):          # states and tangents relax
            advance(min(qr_every, n_transient - start))
        for q in range(1, n_qr + 1):
            acc += advance(qr_every).to(torch.float64)
            if q not in record_at:
                continue
            times.append(q * qr_every * dt)
            running.append((acc / times[-1]).cpu().numpy())
            if converge is not None and len(running) >= 2:
                converged = _has_converged(running, times, converge)
                if converged:
                    break
    if bar is not None:
        bar.close()
    t_avg = q * qr_every * dt
    per = (acc / t_avg).cpu().numpy()
    order = np.argsort(-per.mean(axis=0), kind="stable")
    # QR keeps the exponents ordered; the sort only guards against ties at the end.
    per = per[:, order]
    running = np.asarray(running)[:, :, order]
    result = LyapunovResult(exponents=per.mean(axis=0), per_condition=per, times=np.asarray(times),
                            running=running, dt=float(dt), t_sim=t_avg, t_transient=n_transient * dt,
                            qr_every=int(qr_every), treatment=treatment, converged=converged)
    if converge is not None:
        result.metadata["convergence"] = {"rtol": converge.rtol, "atol": converge.atol,
                                          "t_block": t_block}
        if not converged:
            log.warning("Lyapunov spectrum NOT converged: the cap t_sim = %g s stopped the run; drift %s and "
                        "standard error %s (1/s) against bounds %s. Raise t_sim, the batch or the tolerance.",
                        t_avg, np.array2string(np.abs(result.drift_last_block), precision=3),
                        np.array2string(result.stderr, precision=3),
                        np.array2string(converge.bounds(result.exponents), precision=3))
    log.info("Lyapunov spectrum: largest %.4g 1/s, sum %.4g 1/s (k=%d, batch=%d)",
             result.exponents[0], result.exponents.sum(), k, batch)
    return result


def _has_converged(running, times, converge):
    """The :class:`Convergence` test on the running estimates so far."""
    res = LyapunovResult(exponents=running[-1].mean(axis=0), per_condition=running[-1], times=np.asarray(times),
                         running=np.asarray(running), dt=0.0, t_sim=times[-1], t_transient=0.0, qr_every=1)
    bounds = converge.bounds(res.exponents)
    err = res.stderr
    return bool(np.all(np.abs(res.drift_last_block) <= bounds) and np.all(np.isfinite(err)) and np.all(err <= bounds))
