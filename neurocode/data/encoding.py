"""Pixel intensities to time-to-first-spike input times.

Brighter pixels fire earlier, linearly over the input window: ``t = t_max (1 - x)``.
A black pixel (x = 0) fires at the end of the input window, a white one (x = 1) at 0,
so every input neuron fires exactly once (Sakemi et al. 2021; times in units of the
synaptic time constant ``tau_s``).

>>> import numpy as np
>>> latency_encode(np.array([[1.0, 0.5, 0.0]]), t_max=1.0)
array([[0. , 0.5, 1. ]])
"""

from __future__ import annotations

from neurocode.errors import DatasetError


def latency_encode(x, t_max=1.0):
    """Spike time of each pixel: ``t_max * (1 - x)``.

    Parameters
    ----------
    x : array_like or torch.Tensor
        Intensities in [0, 1], any shape.
    t_max : float
        Length of the input window (units of ``tau_s``; > 0).

    Returns
    -------
    Same type and shape as ``x``: spike times in [0, t_max].
    """
    if not t_max > 0:
        raise ValueError(f"t_max must be > 0, got {t_max}")
    lo, hi = float(x.min()), float(x.max())
    if not (lo >= 0 and hi <= 1):             # NaN fails too
        raise DatasetError(f"pixel intensities must lie in [0, 1], got [{lo}, {hi}]")
    return t_max * (1 - x)
