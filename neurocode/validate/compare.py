"""Metrics comparing Brian2 answers and spike times with the torch engine's.

Answers come from the one decision rule, :func:`neurocode.objectives.decision.first_spike_decision`.

>>> import numpy as np
>>> e = spike_time_error(np.array([[1.0, np.inf]]), np.array([[1.05, 2.0]]), dt=0.1)
>>> round(e["rmse"], 3), e["within_dt"], e["fired_mismatch"]
(0.05, 1.0, 0.5)
"""

from __future__ import annotations

import numpy as np


def accuracy(answers, labels):
    """Fraction of answers equal to the labels."""
    answers, labels = np.asarray(answers), np.asarray(labels)
    if answers.shape != labels.shape:
        raise ValueError(f"answers {answers.shape} and labels {labels.shape} must have one shape")
    return float(np.mean(answers == labels)) if answers.size else float("nan")


def agreement(a, b):
    """Fraction of trials where two engines give the same answer."""
    return accuracy(a, b)


def spike_time_error(brian, torch_times, dt):
    """Spike-time error of Brian2 vs torch over neurons that fire in both.

    Parameters
    ----------
    brian, torch_times : ndarray, shape (n_trials, n)
        First spike times (s, or any common unit); ``inf`` (or NaN) where a neuron is silent.
    dt : float
        Time step (same unit).

    Returns
    -------
    dict
        ``rmse`` and ``mean_abs`` (same unit), ``rmse_dt`` (in steps), ``within_dt`` (fraction
        of common spikes with ``|error| <= dt``), ``n_common`` and ``fired_mismatch`` (fraction
        of neuron-trials that fire in exactly one engine).
    """
    brian = np.asarray(brian, dtype=np.float64)
    torch_times = np.asarray(torch_times, dtype=np.float64)
    if brian.shape != torch_times.shape:
        raise ValueError(f"spike-time arrays differ in shape: {brian.shape} vs {torch_times.shape}")
    fb, ft = np.isfinite(brian), np.isfinite(torch_times)
    both = fb & ft
    err = brian[both] - torch_times[both]
    n = int(both.sum())
    rmse = float(np.sqrt(np.mean(err ** 2))) if n else float("nan")
    return {"rmse": rmse, "mean_abs": float(np.mean(np.abs(err))) if n else float("nan"),
            "rmse_dt": rmse / dt if n else float("nan"),
            "within_dt": float(np.mean(np.abs(err) <= dt * (1 + 1e-9))) if n else float("nan"),
            "n_common": n, "fired_mismatch": float(np.mean(fb != ft)) if brian.size else float("nan")}


def spikes_per_neuron(counts):
    """Mean number of spikes per neuron per trial, from ``(n_trials, n)`` counts."""
    counts = np.asarray(counts)
    return float(counts.mean()) if counts.size else 0.0
