"""Exact time-to-first-spike (TTFS) layers: spike times in closed form, exact gradients.

The neuron is the ``ttfs`` model card (``equations/ttfs.toml``): non-leaky, with a step
synaptic current, firing at most once and keeping its no-reset trajectory. With times in
units of ``tau_s`` its membrane potential is a sum of ramps,

    v_i(t) = sum_j w_ij (t - t_j) H(t - t_j),

and the first threshold crossing has the closed form over the *causal set* ``C_i`` of
inputs that arrived before it (Sakemi et al. 2021, Mostafa 2017):

    t_i = (V_th + sum_{j in C_i} w_ij t_j) / sum_{j in C_i} w_ij.

:func:`ttfs_layer` finds it for a whole batch at once by an interval walk: the inputs of
each sample are sorted once, so time splits into intervals ``[t_(k), t_(k+1))`` on which
``v`` is linear with slope ``W_k`` (the cumulative sum of ``w`` along the sorted inputs);
with the cumulative sum of ``w t`` this gives ``v`` at each interval's end. The spike lies in
the first interval (of length > 0, starting before the window's end) whose end has
``v >= V_th`` -- the card's threshold test -- at the closed form over that interval's
inputs, clipped to the interval against rounding. So a crossing that lands exactly on an
input time ``t_(k+1)`` fires there, before that input's current starts (Brian2 tests the
threshold before it propagates the input spike of the same step), also when that input is
inhibitory and ``v`` only touches ``V_th``; duplicate input times act as one input.
Gradients are exact (a custom backward of the closed form):

    dt_i/dw_ij = (t_j - t_i) / W_i,   dt_i/dt_j = w_ij / W_i,   for j in C_i,

with ``W_i = sum_{j in C_i} w_ij`` the slope of v at the crossing. ``C_i`` is the set of
inputs up to the start of the crossing's interval: at a crossing exactly on an input time,
that input is not in it, and the gradient is the one-sided derivative in the directions
that keep the crossing in its interval (``t_i`` is not differentiable there).

**Non-firing neurons and window edges.** Each layer ``l`` has a window ending at
``t_end``; a neuron whose potential does not reach threshold before ``t_end`` is *silent*
and is given the spike time ``t_end`` (it is forced to fire at the window's end, as in
Sakemi et al. 2021). That time is a constant: a silent neuron receives no gradient
itself, but as an input it still passes gradient to the next layer's weights. Silent
neurons are not counted as spikes (:func:`spike_counts`).

Optionally (``silent_grad = k > 0``) a silent neuron passes gradient as if it had crossed
at ``T`` with slope ``1 / k``: ``dt_i/dw_ij = -k (T - t_j)_+`` and ``dt_i/dt_j = k w_ij``,
the derivative of the extrapolated crossing ``T + k (V_th - v_i(T))``. The forward pass
(and so the network Brian2 validates) is unchanged; only training sees the difference: a
neuron silent on an input is pulled towards firing wherever the loss depends on its time.
(A neuron whose window-end time comes after every downstream spike still gets nothing.)

>>> import torch
>>> t_in = torch.tensor([[0.0, 1.0]])
>>> w = torch.tensor([[0.5], [1.0]])
>>> ttfs_layer(t_in, w, t_end=5.0)       # v = 0.5 t -> 1 at 2, but input 2 arrives at 1
tensor([[1.3333]])
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

log = logging.getLogger(__name__)

#: How silent neurons are handled; the only choice implemented (see module docstring).
NON_FIRING = "window_end"


def first_crossing(t_in, w, v_th=1.0, t_end=math.inf, chunk=None):
    """First threshold crossing of every neuron, without gradient.

    Parameters
    ----------
    t_in : Tensor, shape (batch, n_in)
        Input spike times (units of ``tau_s``).
    w : Tensor, shape (n_in, n_out)
        Weights (dimensionless: each input adds ``w`` to the current ``I_syn``).
    v_th : float
        Threshold (dimensionless, > 0).
    t_end : float
        End of the window; no crossing at or after it counts.
    chunk : int, optional
        Samples per block (bounds memory at ``chunk * n_in * n_out`` floats).

    Returns
    -------
    t_out : Tensor, shape (batch, n_out)
        Spike times; ``t_end`` for silent neurons.
    slope : Tensor, shape (batch, n_out)
        ``sum_{j in C_i} w_ij`` at the crossing (1 for silent neurons).
    """
    t_out, slope, _ = _crossings(t_in, w, v_th, t_end, chunk)
    return t_out, slope


def _crossings(t_in, w, v_th, t_end, chunk):
    """:func:`first_crossing` plus the time of the last causal input (``t_end`` if silent)."""
    batch, n_in = t_in.shape
    n_out = w.shape[1]
    chunk = chunk or _default_chunk(n_in, n_out)
    out = [torch.empty(batch, n_out, dtype=w.dtype, device=w.device) for _ in range(3)]
    with torch.no_grad():
        for start in range(0, batch, chunk):
            block = _crossing_block(t_in[start:start + chunk], w, v_th, t_end)
            for full, part in zip(out, block):
                full[start:start + chunk] = part
    return tuple(out)


def _crossing_block(t_in, w, v_th, t_end):
    # the interval walk of the module docstring, over the pieces of membrane_pieces
    start, end, _, slope, offset = membrane_pieces(t_in, w, t_end)
    reach = torch.mul(slope, end).sub_(offset) >= v_th               # v(end of piece) >= v_th
    reach &= end > start                                             # pieces of length > 0
    first = reach.to(torch.uint8).argmax(2, keepdim=True)            # the first such piece
    shape = slope.shape
    t_last = start.expand(shape).gather(2, first).squeeze(2)
    t_right = end.expand(shape).gather(2, first).squeeze(2)
    slope = slope.gather(2, first).squeeze(2)
    cand = (offset.gather(2, first).squeeze(2) + v_th) / slope       # the closed form on that piece
    cand = torch.minimum(torch.maximum(cand, t_last), t_right)       # rounding cannot leave it
    fired = reach.any(2) & (cand < t_end)
    full = torch.full_like(cand, t_end)
    return (torch.where(fired, cand, full), torch.where(fired, slope, torch.ones_like(slope)),
            torch.where(fired, t_last, full))


def membrane_pieces(t_in, w, t_end=math.inf):
    """The no-reset potential of every neuron as linear pieces between sorted input times.

    Piece ``k`` runs from ``start_k``, the ``k``-th earliest input time, to
    ``end_k = min(start_(k+1), t_end)`` (empty if ``end_k <= start_k``: duplicate times and
    pieces after the window); on it ``v(t) = slope_k t - offset_k`` with
    ``slope_k = sum_{m <= k} w_(m)`` and ``offset_k = sum_{m <= k} w_(m) t_(m)``. Before
    ``start_0`` the potential is 0.

    Parameters
    ----------
    t_in : Tensor, shape (batch, n_in)
        Input spike times (units of ``tau_s``).
    w : Tensor, shape (n_in, n_out)
        Weights.
    t_end : float
        End of the window.

    Returns
    -------
    start, end : Tensor, shape (batch, 1, n_in)
        Piece bounds (units of ``tau_s``).
    order : Tensor, shape (batch, n_in)
        Input index of each piece's first input (the sort order).
    slope, offset : Tensor, shape (batch, n_out, n_in)
        ``v`` on the piece is ``slope * t - offset`` (per ``tau_s``; potential).

    >>> import torch
    >>> start, end, order, slope, offset = membrane_pieces(torch.tensor([[1.0, 0.0]]),
    ...                                                    torch.tensor([[2.0], [1.0]]), t_end=3.0)
    >>> end.tolist(), slope.tolist(), offset.tolist()      # v = t on [0, 1), then 3 t - 2
    ([[[1.0, 3.0]]], [[[1.0, 3.0]]], [[[0.0, 2.0]]])
    """
    # layout (b, n_out, n_in): prefix sums run along the contiguous last axis (3x faster on CPU)
    ts, order = torch.sort(t_in, dim=1)                                # (b, n_in)
    b, n_in = ts.shape
    n_out = w.shape[1]
    ws = torch.gather(w.T.unsqueeze(0).expand(b, n_out, n_in), 2,
                      order.unsqueeze(1).expand(b, n_out, n_in))       # w[order].T per sample
    slope = ws.cumsum(2)
    offset = ws.mul_(ts.unsqueeze(1)).cumsum_(2)                       # reuses ws' memory
    end = torch.cat([ts[:, 1:], ts.new_full((b, 1), t_end)], 1).clamp_(max=t_end)
    return ts.unsqueeze(1), end.unsqueeze(1), order, slope, offset


def _default_chunk(n_in, n_out):
    # blocks of about 2 M elements stay in cache: 2-3x faster than one big block on CPU
    return max(1, int(2 ** 21 // max(1, n_in * n_out)))


class _TTFSFunction(torch.autograd.Function):
    """Closed-form spike times with the exact gradient of the closed form."""

    @staticmethod
    def forward(t_in, w, v_th, t_end, chunk, silent_grad):
        return _crossings(t_in, w, v_th, t_end, chunk)

    @staticmethod
    def setup_context(ctx, inputs, output):
        t_in, w, v_th, t_end, chunk, silent_grad = inputs
        t_out, slope, t_last = output
        ctx.save_for_backward(t_in, w, t_out, slope, t_last)
        ctx.t_end, ctx.chunk, ctx.silent_grad = t_end, chunk, silent_grad
        ctx.mark_non_differentiable(slope, t_last)

    @staticmethod
    def backward(ctx, grad_t, _grad_slope, _grad_last):
        t_in, w, t_out, slope, t_last = ctx.saved_tensors
        fired = t_out < ctx.t_end
        g = torch.where(fired, grad_t / slope, ctx.silent_grad * grad_t)   # (b, n_out)
        # the causal set is t_j <= t_last (the start of the crossing's interval): an input
        # arriving exactly at the crossing is not in it. A neuron without gradient (silent,
        # silent_grad = 0) has none: its anchor -inf keeps inf - inf out of t_end = inf.
        if not ctx.silent_grad:
            t_last = torch.where(fired, t_last, -math.inf)
            t_out = torch.where(fired, t_out, -math.inf)
        need_t, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_in = torch.zeros_like(t_in) if need_t else None
        grad_w = torch.zeros_like(w) if need_w else None
        n_in, n_out = w.shape
        chunk = ctx.chunk or _default_chunk(n_in, n_out)
        for s in range(0, t_in.shape[0], chunk):
            ti, gb = t_in[s:s + chunk], g[s:s + chunk]
            if need_w:   # (t_j - t_i) on the causal set and 0 elsewhere is min(t_j - t_i, 0)
                lag = (ti.unsqueeze(2) - t_out[s:s + chunk].unsqueeze(1)).clamp_(max=0)   # (b, n_in, n_out)
                grad_w += lag.mul_(gb.unsqueeze(1)).sum(0)
            if need_t:
                causal = (ti.unsqueeze(2) <= t_last[s:s + chunk].unsqueeze(1)).to(w.dtype)
                grad_in[s:s + chunk] = causal.mul_(w).bmm(gb.unsqueeze(2)).squeeze(2)
        return grad_in, grad_w, None, None, None, None


def ttfs_layer(t_in, w, v_th=1.0, t_end=math.inf, chunk=None, return_slope=False, silent_grad=0.0):
    """Spike times of a TTFS layer, differentiable in ``t_in`` and ``w``.

    Parameters
    ----------
    t_in : Tensor, shape (batch, n_in)
        Input spike times (units of ``tau_s``).
    w : Tensor, shape (n_in, n_out)
        Weights.
    v_th : float
        Threshold.
    t_end : float
        End of this layer's window: silent neurons get ``t_end`` (see module docstring);
        with ``inf`` they get ``inf`` and no gradient.
    chunk : int, optional
        Samples per block in the forward and backward passes.
    return_slope : bool
        Also return the slope ``sum_{j in C_i} w_ij`` at each crossing (no gradient).
    silent_grad : float
        Gradient of silent neurons: 0 (exact, none) or ``k > 0`` (the extrapolated
        crossing ``T + k (V_th - v(T))``, see module docstring; ``k`` in units of
        ``tau_s`` per unit potential).

    Returns
    -------
    Tensor, shape (batch, n_out)
        Spike times; ``(t_out, slope)`` if ``return_slope``.
    """
    if t_in.ndim != 2 or w.ndim != 2 or t_in.shape[1] != w.shape[0]:
        raise ValueError(f"ttfs_layer: t_in must be (batch, n_in) and w (n_in, n_out); "
                         f"got {tuple(t_in.shape)} and {tuple(w.shape)}")
    if t_in.dtype != w.dtype or t_in.device != w.device:
        raise ValueError(f"ttfs_layer: t_in ({t_in.dtype}, {t_in.device}) and w ({w.dtype}, "
                         f"{w.device}) must share dtype and device")
    if math.isnan(t_end):
        raise ValueError(f"ttfs_layer: t_end must be a number, got {t_end}")
    if not v_th > 0:
        raise ValueError(f"ttfs_layer: v_th must be > 0 (v starts at 0), got {v_th}")
    if not silent_grad >= 0:
        raise ValueError(f"ttfs_layer: silent_grad must be >= 0, got {silent_grad}")
    if silent_grad and math.isinf(t_end):
        raise ValueError("ttfs_layer: silent_grad > 0 extrapolates from the window's end and needs a finite t_end")
    t_out, slope, _ = _TTFSFunction.apply(t_in, w, float(v_th), float(t_end), chunk, float(silent_grad))
    return (t_out, slope) if return_slope else t_out


def membrane_potential(t, t_in, w):
    """No-reset membrane potential ``v(t) = sum_j w_j (t - t_j)_+`` on a time grid.

    Parameters
    ----------
    t : Tensor, shape (n_t,)
        Times (units of ``tau_s``).
    t_in : Tensor, shape (batch, n_in)
        Input spike times.
    w : Tensor, shape (n_in, n_out)
        Weights.

    Returns
    -------
    Tensor, shape (batch, n_t, n_out)

    >>> import torch
    >>> membrane_potential(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([[0.5]]), torch.tensor([[2.0]]))
    tensor([[[0.],
             [1.],
             [3.]]])
    """
    ramps = (t.view(1, -1, 1) - t_in.unsqueeze(1)).clamp(min=0)          # (batch, n_t, n_in)
    return ramps @ w


def spike_counts(t_out, t_end):
    """Which neurons really fired (crossed threshold before the window's end): bool tensor."""
    return t_out < t_end


def feedforward_spec(card, sizes, weights, layer_params, t_input, tau_s, dt, seed, metadata, names=None):
    """The :class:`~neurocode.spec.NetworkSpec` of a feed-forward TTFS network (SI units).

    An input population ``in`` (latency-encoded, ``t = t_input (1 - x)``) feeds populations
    ``hidden1 ... hiddenN`` and ``out`` of ``card``, each with its ``layer_params`` (arrays
    per neuron), through dense projections of ``weights``; the answer is the first output
    spike. ``t_input`` is in units of ``tau_s`` (s); ``metadata`` is added to the spec's.
    """
    from neurocode.spec import Encoding, NetworkSpec, Projection, Readout

    names = names or (["in"] + [f"hidden{k + 1}" for k in range(len(sizes) - 2)] + ["out"])
    spec = NetworkSpec(dt=dt, seed=seed)
    spec.add_input(names[0], sizes[0])
    for name, size, params in zip(names[1:], sizes[1:], layer_params):
        spec.add_population(name, card, size, **params)
    for k, w in enumerate(weights):
        spec.add_projection(Projection.from_dense(names[k], names[k + 1], w.detach().cpu().double().numpy()))
    spec.metadata.update({**metadata, "sizes": list(sizes), "tau_s": tau_s, "t_input": t_input * tau_s,
                          "encoding": "t = t_input * (1 - x)"})
    spec.encoding = Encoding("latency", names[0], t_input=t_input * tau_s)
    spec.readout = Readout("first_spike", names[-1])
    return spec


class TTFSNetwork(torch.nn.Module):
    """A feed-forward TTFS network (e.g. 784-400-10) with exact spike-time gradients.

    Times are in units of ``tau_s``. Inputs spike in ``[0, t_input]``; layer ``l``
    (1-based) has the window ``[.., t_input + l * window)`` and its silent neurons get
    that window's end as spike time.

    Parameters
    ----------
    sizes : sequence of int
        Layer sizes, input first: ``(784, 400, 10)``.
    t_input : float
        Length of the input window (units of ``tau_s``).
    window : float
        Extra window per layer (units of ``tau_s``).
    v_th : float
        Threshold.
    init_mean, init_std : float
        Weights start as ``N(init_mean / (n_in * window), (init_std / (sqrt(n_in) window))^2)``
        so that a neuron's no-reset potential at its window's end is about ``init_mean``
        times the threshold scale, independent of the layer width.
    seed : int
        Seed of the initial weights.
    silent_grad : float
        Training-only gradient of silent neurons in every layer (see :func:`ttfs_layer`);
        0 keeps the exact gradient.

    >>> net = TTFSNetwork((4, 3, 2), seed=0)
    >>> times = net(torch.zeros(5, 4))
    >>> [tuple(t.shape) for t in times], net.windows
    ([(5, 3), (5, 2)], [2.0, 3.0])
    """

    neuron = "ramp"

    def __init__(self, sizes, t_input=1.0, window=1.0, v_th=1.0, init_mean=2.0, init_std=1.0,
                 seed=0, chunk=None, silent_grad=0.0):
        super().__init__()
        sizes = [int(n) for n in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must list at least an input and an output layer of >= 1 neuron, got {sizes}")
        if not (t_input > 0 and window > 0 and v_th > 0):
            raise ValueError(f"t_input, window and v_th must be > 0, got {t_input}, {window}, {v_th}")
        self.sizes, self.chunk, self.silent_grad = sizes, chunk, float(silent_grad)
        self.t_input, self.window, self.v_th = float(t_input), float(window), float(v_th)
        gen = torch.Generator().manual_seed(int(seed))
        self.weights = torch.nn.ParameterList()
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            w = (torch.randn(n_in, n_out, generator=gen, dtype=torch.float64) * init_std / math.sqrt(n_in)
                 + init_mean / n_in) * v_th / window
            self.weights.append(torch.nn.Parameter(w.float()))

    @property
    def windows(self):
        """End of each layer's window (units of ``tau_s``)."""
        return [self.t_input + (k + 1) * self.window for k in range(len(self.weights))]

    def forward(self, t_in):
        """Spike times of every layer (list of (batch, n) tensors) for input times ``t_in``."""
        if t_in.ndim != 2 or t_in.shape[1] != self.sizes[0]:
            raise ValueError(f"input times must be (batch, {self.sizes[0]}), got {tuple(t_in.shape)}")
        times, t = [], t_in.to(self.weights[0].dtype)
        for w, t_end in zip(self.weights, self.windows):
            t = ttfs_layer(t, w, self.v_th, t_end, self.chunk, silent_grad=self.silent_grad)
            times.append(t)
        return times

    def first_layer_potential(self, grid, t_in):
        """No-reset potential of the first layer on a time grid: (batch, n_t, n_out)."""
        return membrane_potential(grid, t_in, self.weights[0])

    def to_spec(self, tau_s=1e-3, dt=0.1e-3, seed=0, names=None):
        """The trained network as a :class:`~neurocode.spec.NetworkSpec` (SI units).

        Populations are ``hidden1 ... hiddenN`` and ``out`` of the ``ttfs`` card, fed by an
        input population ``in``. Each layer's window end (seconds) is its neurons' ``t_end``
        parameter, so the card fires silent neurons there as this layer does; the windows
        and the silent-neuron rule are also recorded in ``metadata``.
        """
        layers = [{"v_th": np.full(n, self.v_th), "tau_s": np.full(n, tau_s), "t_end": np.full(n, t_end * tau_s)}
                  for n, t_end in zip(self.sizes[1:], self.windows)]
        return feedforward_spec("ttfs", self.sizes, self.weights, layers, self.t_input, tau_s, dt, seed,
                                {"model": "TTFSNetwork", "window": self.window * tau_s,
                                 "windows": [t * tau_s for t in self.windows], "non_firing": NON_FIRING}, names)

    @classmethod
    def from_spec(cls, spec):
        """Rebuild a network written by :meth:`to_spec`."""
        meta = spec.metadata
        if meta.get("model") != "TTFSNetwork":
            raise ValueError("this NetworkSpec was not written by TTFSNetwork.to_spec (metadata 'model')")
        tau_s = meta["tau_s"]
        pops = [p for p in spec.populations.values()]
        net = cls(meta["sizes"], t_input=meta["t_input"] / tau_s, window=meta["window"] / tau_s,
                  v_th=float(pops[0].params["v_th"][0]))
        with torch.no_grad():
            for w, proj in zip(net.weights, spec.projections):
                w.copy_(torch.from_numpy(proj.dense(tuple(w.shape))))
        return net
