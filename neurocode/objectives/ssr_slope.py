"""Sparse-firing regularisers of the constant-slope TTFS neuron, in closed form.

The neuron is the ``ttfs_slope`` card (:mod:`neurocode.torch.constant_slope`): its threshold
is open on ``[a, T]``, where its no-reset potential rises from ``V`` (the potential when the
threshold opens) with the constant slope ``rho``: ``v(a + s) = V + rho s``. Each
regulariser is a function of ``V`` alone, hence of the spike time and the weights:

* M-SSR, the area above threshold (``v_hat -> V_th``): ``R_M = int_a^T (v - V_th)_+ dt``. A
  neuron that fired at ``t_i`` has ``R_M = rho (T - t_i)^2 / 2``; ``v`` does not fall back
  below threshold, so the signed and the rectified readings of M-SSR coincide.
* the membrane regulariser with ``v_hat < V_th``: ``int_a^T (v - v_hat)_+ dt``, which also
  reaches silent neurons whose potential comes within ``V_th - v_hat`` of firing.
* F-SSR, the no-reset potential at the window's end: ``R_F = [V + rho (T - a)]_+``.

Only the window where the threshold is open counts: before ``a`` the neuron cannot fire.

>>> import torch
>>> area_above(torch.tensor([2.0]), level=4.0, length=4.0)     # v from 2 to 6, above 4 on [2, 4]
tensor([2.])
"""

from __future__ import annotations

import torch


def area_above(v_open, level, length, rho=1.0):
    """``int_0^length (v_open + rho s - level)_+ ds`` element-wise (potential x ``tau_s``)."""
    u0 = v_open - level
    u1 = u0 + rho * length
    partial = u1.clamp(min=0) ** 2 / (2 * rho)                 # crosses the level inside the window
    whole = length * (u0 + u1) / 2                             # above the level all the window
    return torch.where(u0 >= 0, whole, partial)


def m_ssr(v_open, v_th, length, rho=1.0):
    """M-SSR of constant-slope neurons: area above threshold while it is open, (batch, n)."""
    return area_above(v_open, v_th, length, rho)


def membrane_area(v_open, v_hat, length, rho=1.0):
    """The membrane regulariser: area above ``v_hat`` while the threshold is open, (batch, n)."""
    return area_above(v_open, v_hat, length, rho)


def f_ssr(v_open, length, rho=1.0):
    """F-SSR of constant-slope neurons: ``[V + rho length]_+``, the potential at the window's end, (batch, n)."""
    return torch.relu(v_open + rho * length)


def regulariser(kind, v_open, v_th, length, v_hat=None, rho=1.0):
    """The per-neuron regulariser ``kind`` (``m_ssr``, ``f_ssr`` or ``membrane``) of a layer."""
    if kind == "m_ssr":
        return m_ssr(v_open, v_th, length, rho)
    if kind == "f_ssr":
        return f_ssr(v_open, length, rho)
    if kind == "membrane":
        return membrane_area(v_open, v_hat, length, rho)
    raise ValueError(f"unknown regulariser '{kind}'")
