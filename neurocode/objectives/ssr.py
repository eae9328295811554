"""Losses for TTFS networks: classification on spike times and sparse-firing regularisers.

Times are in units of ``tau_s``; the neuron is the ``ttfs`` card, whose no-reset
membrane potential is ``v_i(t) = sum_j w_ij (t - t_j)_+`` (see
:mod:`neurocode.torch.ttfs`). ``T`` is the end of the neuron's layer window.

* :func:`classification_loss` -- cross-entropy of ``softmax(-t_out / tau_soft)``.
* :func:`temporal_penalty` -- ``sum_i (t_i - t_ref)^2`` on output times, keeps them in range.
* :func:`weight_penalty` -- ``sum w^2``.
* :func:`membrane_area` -- the membrane-potential regulariser: the area of the no-reset
  potential above a reference ``v_hat`` from its crossing of ``v_hat`` to ``T``,
  ``R(v_hat) = int_{t_hat}^{T} (v(t) - v_hat) dt``, in closed form. The baseline uses
  ``v_hat < V_th``.
* :func:`m_ssr` -- M-SSR, the limit ``v_hat -> V_th`` of ``R``: with the crossing at the
  spike time ``t_i``, a function of firing times and weights only,
  ``R_M = sum_j w_ij [(T - t_j)_+^2 - (t_i - t_j)_+^2] / 2 - V_th (T - t_i)`` for neurons
  that fired (0 for silent ones).
* :func:`m_ssr_rectified` -- M-SSR read literally, the area above threshold only,
  ``R_M+ = int_0^T (v(t) - V_th)_+ dt``, in closed form over the linear pieces of ``v``;
  it differs from ``R_M`` where the potential falls back below threshold after the spike
  (``R_M`` subtracts that area, so it is unbounded below in late inhibitory weights).
* :func:`f_ssr` -- F-SSR, the no-reset upper bound of the potential at the window's end,
  ``R_F = [sum_j w_ij (T - t_j)_+]_+``.

Derivations are in ``docs/ssr.md``. Each regulariser is summed over neurons, averaged over
the batch and summed over the hidden layers it is applied to (:class:`SSRLoss`).

>>> import torch
>>> t_in = torch.tensor([[0.0]]); w = torch.tensor([[1.0]])     # v = t, threshold 1 at t = 1
>>> m_ssr(t_in, torch.tensor([[1.0]]), w, t_end=3.0)           # int_1^3 (t - 1) dt = 2
tensor([[2.]])
>>> f_ssr(t_in, w, t_end=3.0)                                  # v(3) without reset
tensor([[3.]])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F

from neurocode.torch.ttfs import first_crossing, membrane_pieces

#: Regularisers :class:`SSRLoss` knows.
REGULARISERS = ("none", "m_ssr", "f_ssr", "membrane")
#: The two readings of M-SSR: :func:`m_ssr` (signed) and :func:`m_ssr_rectified`.
MSSR_READINGS = ("signed", "rectified")


def classification_loss(t_out, labels, tau_soft=0.1):
    """Cross-entropy of ``softmax(-t_out / tau_soft)`` against ``labels`` (batch mean)."""
    if not tau_soft > 0:
        raise ValueError(f"tau_soft must be > 0, got {tau_soft}")
    return F.cross_entropy(-t_out / tau_soft, labels)


def temporal_penalty(t_out, t_ref):
    """``sum_i (t_i - t_ref)^2`` over output neurons, averaged over the batch."""
    return ((t_out - t_ref) ** 2).sum(1).mean()


def silent_penalty(t_in, t_out, w, t_end, v_th=1.0):
    """``sum_i [V_th - v_i(T)]_+`` over the *silent* neurons of a layer (batch mean).

    A silent neuron gets the constant time ``T`` and no gradient; if every output neuron
    falls silent the classification loss is stuck at ``log(n_classes)``. This term raises
    the no-reset potential at the window's end of silent neurons towards threshold, the
    role the weight terms of Sakemi et al. (2021) play. Used on the output layer only.
    """
    silent = (t_out >= t_end).to(w.dtype)
    return (silent * torch.relu(v_th - (t_end - t_in).clamp(min=0) @ w)).sum(1).mean()


def weight_penalty(weights):
    """``sum w^2`` over all weight matrices."""
    return sum((w ** 2).sum() for w in weights)


class _AreaAbove(torch.autograd.Function):
    """``A_i = sum_j w_ij [(T - t_j)_+^2 - (c_i - t_j)_+^2] / 2 - level (T - c_i)`` if c_i < T.

    ``c_i`` is the crossing of ``level``; ``dA/dc_i = level - v(c_i) = 0`` there, so the
    gradient flows through ``w`` and ``t_in`` only and ``c`` is a constant.
    """

    @staticmethod
    def forward(t_in, w, cross, level, t_end):
        before = (t_end - t_in).clamp(min=0)                             # (b, n_in)
        area = (before ** 2) @ w / 2 - level * (t_end - cross)
        area -= _causal_sum(t_in, cross, w, power=2) / 2
        return torch.where(cross < t_end, area, torch.zeros_like(area))

    @staticmethod
    def setup_context(ctx, inputs, output):
        t_in, w, cross, level, t_end = inputs
        ctx.save_for_backward(t_in, w, cross)
        ctx.t_end = t_end

    @staticmethod
    def backward(ctx, grad):
        t_in, w, cross = ctx.saved_tensors
        g = torch.where(cross < ctx.t_end, grad, torch.zeros_like(grad))
        before = (ctx.t_end - t_in).clamp(min=0)
        grad_w = grad_t = None
        if ctx.needs_input_grad[1]:
            grad_w = (before ** 2).T @ g / 2 - _causal_weight_grad(t_in, cross, g) / 2
        if ctx.needs_input_grad[0]:
            # dA/dt_j = -w_ij [(T - t_j)_+ - (c_i - t_j)_+]
            grad_t = -before * (g @ w.T) + _causal_sum_t(t_in, cross, w, g)
        return grad_t, grad_w, None, None, None


def _blocks(batch, n_in, n_out):
    chunk = max(1, int(2 ** 21 // max(1, n_in * n_out)))
    return range(0, batch, chunk), chunk


def _causal_sum(t_in, cross, w, power):
    """``sum_j w_ij (c_i - t_j)_+^power`` per sample and neuron."""
    out = torch.empty(t_in.shape[0], w.shape[1], dtype=w.dtype, device=w.device)
    starts, chunk = _blocks(*t_in.shape, w.shape[1])
    for s in starts:
        lag = (cross[s:s + chunk].unsqueeze(1) - t_in[s:s + chunk].unsqueeze(2)).clamp_(min=0)
        out[s:s + chunk] = lag.pow_(power).mul_(w).sum(1)
    return out


def _causal_weight_grad(t_in, cross, g):
    """``sum_b g_bi (c_bi - t_bj)_+^2``: shape (n_in, n_out)."""
    out = torch.zeros(t_in.shape[1], g.shape[1], dtype=g.dtype, device=g.device)
    starts, chunk = _blocks(*t_in.shape, g.shape[1])
    for s in starts:
        lag = (cross[s:s + chunk].unsqueeze(1) - t_in[s:s + chunk].unsqueeze(2)).clamp_(min=0)
        out += lag.pow_(2).mul_(g[s:s + chunk].unsqueeze(1)).sum(0)
    return out


def _causal_sum_t(t_in, cross, w, g):
    """``sum_i g_bi w_ji (c_bi - t_bj)_+``: shape (batch, n_in)."""
    out = torch.empty_like(t_in)
    starts, chunk = _blocks(*t_in.shape, w.shape[1])
    for s in starts:
        lag = (cross[s:s + chunk].unsqueeze(1) - t_in[s:s + chunk].unsqueeze(2)).clamp_(min=0)
        out[s:s + chunk] = lag.mul_(w).bmm(g[s:s + chunk].unsqueeze(2)).squeeze(2)
    return out


def membrane_area(t_in, w, v_hat, t_end):
    """Area of the no-reset potential above ``v_hat``, from its first crossing to ``t_end``.

    ``R_i = int_{t_hat_i}^{T} (v_i(t) - v_hat) dt`` with ``t_hat_i`` the first crossing
    of ``v_hat`` (0 if the neuron never reaches ``v_hat`` before ``T``). For ``v_hat < V_th``
    this is the membrane-potential regulariser the paper compares against.

    Parameters
    ----------
    t_in : Tensor, shape (batch, n_in)
        Input spike times (units of ``tau_s``).
    w : Tensor, shape (n_in, n_out)
        Weights.
    v_hat : float
        Reference potential (> 0).
    t_end : float
        End of the window ``T``.

    Returns
    -------
    Tensor, shape (batch, n_out), units of ``tau_s`` (potential x time).
    """
    if not v_hat > 0:
        raise ValueError(f"v_hat must be > 0 (a crossing from v = 0), got {v_hat}")
    cross, _ = first_crossing(t_in.detach(), w.detach(), v_hat, t_end)
    return _AreaAbove.apply(t_in, w, cross, float(v_hat), float(t_end))


def m_ssr(t_in, t_out, w, t_end, v_th=1.0):
    """M-SSR: the limit ``v_hat -> V_th`` of :func:`membrane_area`, per neuron.

    ``R_M,i = sum_j w_ij [(T - t_j)_+^2 - (t_i - t_j)_+^2] / 2 - V_th (T - t_i)`` for a
    neuron that fired at ``t_i < T``; 0 for a silent one. Uses only firing times and
    weights. Its derivative in ``t_i`` is ``V_th - v(t_i) = 0``, so ``t_out`` enters as a
    constant and the gradient flows to ``w`` and ``t_in``.

    Parameters
    ----------
    t_in : Tensor, shape (batch, n_in)
        Input spike times of the layer.
    t_out : Tensor, shape (batch, n_out)
        The layer's spike times (``t_end`` for silent neurons).
    w : Tensor, shape (n_in, n_out)
        Weights.
    t_end : float
        End of the layer's window.
    v_th : float
        Threshold.

    Returns
    -------
    Tensor, shape (batch, n_out)
    """
    return _AreaAbove.apply(t_in, w, t_out.detach(), float(v_th), float(t_end))


class _RectifiedArea(torch.autograd.Function):
    """``R_i = int_0^T (v_i(t) - level)_+ dt`` over the linear pieces of ``v`` (see :func:`m_ssr_rectified`)."""

    @staticmethod
    def forward(t_in, w, level, t_end):
        out = torch.empty(t_in.shape[0], w.shape[1], dtype=w.dtype, device=w.device)
        starts, chunk = _blocks(*t_in.shape, w.shape[1])
        for s in starts:
            above, height = _above_level(t_in[s:s + chunk], w, level, t_end)
            out[s:s + chunk] = above.mul_(height).sum(2).mul_(0.5)       # trapezoids |S| (u_a + u_b) / 2
        return out

    @staticmethod
    def setup_context(ctx, inputs, output):
        t_in, w, level, t_end = inputs
        ctx.save_for_backward(t_in, w)
        ctx.level, ctx.t_end = level, t_end

    @staticmethod
    def backward(ctx, grad):
        t_in, w = ctx.saved_tensors
        need_t, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_t = torch.empty_like(t_in) if need_t else None
        grad_w = torch.zeros_like(w) if need_w else None
        starts, chunk = _blocks(*t_in.shape, w.shape[1])
        for s in starts:
            above, start, order, middle = _above_level(t_in[s:s + chunk], w, ctx.level, ctx.t_end, middle=True)
            g = grad[s:s + chunk].unsqueeze(2)                                  # (b, n_out, 1)
            index = order.unsqueeze(1).expand_as(above)
            m0 = above.flip(2).cumsum(2).flip(2)           # time above the level after each input
            if need_w:   # dR/dw_j = int_{S, t > t_j} (t - t_j) dt = sum_{m >= j} |S_m| (middle_m - t_j)
                lag = middle.mul_(above).flip(2).cumsum(2).flip(2).sub_(m0 * start)
                grad_w += torch.empty_like(lag).scatter_(2, index, lag.mul_(g)).sum(0).T
            if need_t:   # dR/dt_j = -w_j |S after t_j|
                grad_t[s:s + chunk] = -(torch.empty_like(m0).scatter_(2, index, m0.mul_(g)) * w.T).sum(1)
        return grad_t, grad_w, None, None


def _above_level(t_in, w, level, t_end, middle=False):
    """Per linear piece of ``v`` (b, n_out, n_in): the time ``|S|`` it spends above ``level``
    and the sum ``u_a+ + u_b+`` of its excesses ``u = v - level`` at its ends; with
    ``middle``, instead of the latter, the pieces' starts, the sort order and the middle of
    each part above.

    On a piece of length ``L`` with excesses ``u_a``, ``u_b`` at its ends, the part above
    the level is ``|S| = L (u_a+ + u_b+) / (|u_a| + |u_b|)`` long (all of it, a part ending
    at the crossing, or nothing) and is a trapezoid in ``v`` of area ``|S| (u_a+ + u_b+) / 2``.
    """
    start, end, order, slope, offset = membrane_pieces(t_in, w, t_end)
    start = start.clamp(max=t_end)                                       # pieces after T are empty
    length = (end - start).clamp_(min=0)
    u_end = torch.addcmul(offset.add_(level), slope, end, value=-1).neg_()   # v(end) - level
    u_start = torch.cat([u_end.new_full(u_end[..., :1].shape, -level), u_end[..., :-1]], 2)
    height = u_start.clamp(min=0).add_(u_end.clamp(min=0))
    rising = u_end > u_start if middle else None
    above = u_start.abs_().add_(u_end.abs_()).clamp_(min=torch.finfo(w.dtype).tiny)
    above = torch.div(height, above).mul_(length)
    if not middle:
        return above, height
    # the part above is the whole piece or touches the end that is above: its middle is
    # start + |S| / 2, moved by L - |S| (0 for a whole piece) where the piece rises
    centre = (length - above).mul_(rising).add_(start).add_(above, alpha=0.5)
    return above, start, order, centre


def m_ssr_rectified(t_in, w, t_end, v_th=1.0):
    """M-SSR, rectified reading: ``R_i = int_0^T (v_i(t) - V_th)_+ dt`` per neuron.

    The area of the no-reset potential above threshold, counting only where it is above
    (the literal limit ``v_hat -> V_th`` of ``int (v - v_hat)_+ dt``); 0 for silent
    neurons, and never negative, unlike the signed :func:`m_ssr`, which also subtracts the
    area below threshold after the spike. ``v`` is linear on each piece between sorted input
    times (:func:`~neurocode.torch.ttfs.membrane_pieces`), so each piece
    ``[a, b]`` contributes ``int_alpha^beta (v - V_th) dt`` over the part
    ``[alpha, beta]`` where it is above (the trapezoid ``(beta - alpha) (u_alpha + u_beta) / 2``
    with ``u = v - V_th``; ``alpha``, ``beta`` are ``a``, ``b`` or the piece's crossing of
    ``V_th``). With ``S_i`` the set where ``v_i > V_th``, the gradient is

        dR_i/dw_ij = int_{S_i} (t - t_j)_+ dt,    dR_i/dt_j = -w_ij |S_i cap [t_j, T]|,

    (the integrand vanishes at the ends of ``S_i``), suffix sums over the pieces after
    ``t_j``. Derivation in ``docs/ssr.md``.

    Parameters
    ----------
    t_in : Tensor, shape (batch, n_in)
        Input spike times of the layer (units of ``tau_s``).
    w : Tensor, shape (n_in, n_out)
        Weights.
    t_end : float
        End of the layer's window ``T``.
    v_th : float
        Threshold.

    Returns
    -------
    Tensor, shape (batch, n_out), units of ``tau_s`` (potential x time).

    >>> import torch
    >>> t_in = torch.tensor([[0.0, 2.0]]); w = torch.tensor([[1.0], [-2.0]])   # v = t, then 4 - t
    >>> m_ssr_rectified(t_in, w, t_end=4.0)                # triangle over [1, 3], height 1
    tensor([[1.]])
    >>> m_ssr(t_in, torch.tensor([[1.0]]), w, t_end=4.0)   # signed: minus the triangle over [3, 4]
    tensor([[0.5000]])
    """
    return _RectifiedArea.apply(t_in, w, float(v_th), float(t_end))


def f_ssr(t_in, w, t_end):
    """F-SSR: ``[sum_j w_ij (T - t_j)_+]_+``, the no-reset potential at the window's end.

    A neuron fires if and only if its potential reaches threshold before ``T``; without
    reset and leak, ``v_i(T)`` bounds from above what it reaches with positive net input,
    and penalising it pushes neurons away from the firing condition. Returns (batch, n_out).
    """
    return torch.relu((t_end - t_in).clamp(min=0) @ w)


@dataclass
class SSRLoss:
    """Classification loss plus auxiliary terms and one sparse-firing regulariser.

    ``total = CE(softmax(-t_out / tau_soft)) + gamma_temporal * sum_i (t_out_i - t_ref)^2
    + gamma_l2 * sum w^2 + gamma_silent * silent_penalty(output) + gamma * sum_hidden R`` where ``R`` is ``regulariser``
    (``"none"``, ``"m_ssr"``, ``"f_ssr"`` or ``"membrane"`` with ``v_hat``, a fraction of
    ``V_th``), in the closed form of the network's neuron (``net.neuron``: the ramp forms
    here, the constant-slope ones in :mod:`neurocode.objectives.ssr_slope`). ``t_ref``
    is relative to the start of the output window (``None``: its middle). ``mssr`` picks
    the reading of M-SSR: ``"signed"`` (:func:`m_ssr`, the area to the window's end) or
    ``"rectified"`` (:func:`m_ssr_rectified`, the area above threshold only).
    """

    tau_soft: float = 0.1
    gamma_temporal: float = 1e-3
    t_ref: float | None = None
    gamma_l2: float = 0.0
    gamma_silent: float = 0.0
    regulariser: str = "none"
    gamma: float = 0.0
    v_hat: float = 0.5
    mssr: str = "signed"

    def __post_init__(self):
        if self.regulariser not in REGULARISERS:
            raise ValueError(f"unknown regulariser '{self.regulariser}'; choose one of {list(REGULARISERS)}")
        if self.mssr not in MSSR_READINGS:
            raise ValueError(f"unknown M-SSR reading mssr = '{self.mssr}'; choose one of {list(MSSR_READINGS)}")
        if min(self.gamma, self.gamma_temporal, self.gamma_l2, self.gamma_silent) < 0:
            raise ValueError("gamma, gamma_temporal, gamma_l2 and gamma_silent must be >= 0")
        if not self.tau_soft > 0:
            raise ValueError(f"tau_soft must be > 0, got {self.tau_soft}")
        if self.regulariser == "membrane" and not 0 < self.v_hat < 1:
            raise ValueError(f"the membrane baseline needs 0 < v_hat < 1 (a fraction of V_th), got {self.v_hat}")

    @classmethod
    def from_config(cls, config):
        """Build from a dict (a config's ``[loss]`` table); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"unknown loss setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**config)

    def as_dict(self):
        return asdict(self)

    def regularisation(self, net, t_in, times):
        """Sum over hidden layers of the regulariser (batch mean of the sum over neurons)."""
        if self.regulariser == "none":
            return times[-1].new_zeros(())
        if getattr(net, "neuron", "ramp") == "constant_slope":
            terms = self._slope_terms(net, t_in, times)
        else:
            terms = self._ramp_terms(net, t_in, times)
        return sum((r.sum(1).mean() for r in terms), times[-1].new_zeros(()))

    def _slope_terms(self, net, t_in, times):
        from neurocode.objectives import ssr_slope

        potentials = net.open_potentials(t_in, times)[:-1]          # hidden layers only
        lengths = [t_end - a for a, t_end in zip(net.opens, net.windows)]
        return [ssr_slope.regulariser(self.regulariser, v, net.v_th, length, self.v_hat * net.v_th)
                for v, length in zip(potentials, lengths)]

    def _ramp_terms(self, net, t_in, times):
        inputs = [t_in] + list(times[:-1])
        for k in range(len(times) - 1):                     # hidden layers only
            w, t_end = net.weights[k], net.windows[k]
            if self.regulariser == "m_ssr" and self.mssr == "rectified":
                yield m_ssr_rectified(inputs[k], w, t_end, net.v_th)
            elif self.regulariser == "m_ssr":
                yield m_ssr(inputs[k], times[k], w, t_end, net.v_th)
            elif self.regulariser == "f_ssr":
                yield f_ssr(inputs[k], w, t_end)
            else:
                yield membrane_area(inputs[k], w, self.v_hat * net.v_th, t_end)

    def __call__(self, net, t_in, times, labels):
        """Total loss and a dict of its parts (floats) for ``net``'s ``times`` on ``t_in``."""
        t_out = times[-1]
        t_ref = self.t_ref if self.t_ref is not None else net.window / 2
        parts = {"ce": classification_loss(t_out, labels, self.tau_soft)}
        parts["temporal"] = temporal_penalty(t_out, net.windows[-2] + t_ref if len(net.windows) > 1
                                             else net.t_input + t_ref)
        parts["l2"] = weight_penalty(net.weights) if self.gamma_l2 else t_out.new_zeros(())
        parts["ssr"] = self.regularisation(net, t_in, times) if self.gamma else t_out.new_zeros(())
        last_in = times[-2] if len(times) > 1 else t_in
        parts["silent"] = (silent_penalty(last_in, t_out, net.weights[-1], net.windows[-1], net.v_th)
                           if self.gamma_silent else t_out.new_zeros(()))
        total = (parts["ce"] + self.gamma_temporal * parts["temporal"] + self.gamma_l2 * parts["l2"]
                 + self.gamma * parts["ssr"] + self.gamma_silent * parts["silent"])
        return total, {k: float(v.detach()) for k, v in parts.items()}


def hidden_spike_rates(net, times):
    """Spikes per neuron (fraction that fired before the window's end) of each hidden layer."""
    return [float((t < t_end).float().mean()) for t, t_end in zip(times[:-1], net.windows[:-1])]


__all__ = ["MSSR_READINGS", "REGULARISERS", "SSRLoss", "classification_loss", "f_ssr", "hidden_spike_rates",
           "m_ssr", "m_ssr_rectified", "membrane_area", "silent_penalty", "temporal_penalty", "weight_penalty"]
