"""The result of one simulation: spikes, recorded states and timings, as SI numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SimResult:
    """Spikes and state traces of one run.

    Attributes
    ----------
    spikes : dict of str -> (numpy.ndarray, numpy.ndarray)
        Per population or input: ``(indices int64, times float64 in s)``, sorted by time.
    states : dict of str -> dict of str -> numpy.ndarray
        ``states[pop][var]`` has shape ``(n_steps, n_neurons)``, SI units, float64.
    t : numpy.ndarray
        Sample times of ``states`` (s), shape ``(n_steps,)``; empty if nothing was recorded.
    duration : float
        Simulated time (s).
    device : str
        ``"runtime"``, ``"cpp_standalone"`` or ``"cuda_standalone"``.
    timings : dict of str -> float
        Wall-clock seconds: ``build`` (objects and code generation), ``compile`` and
        ``run`` (the simulation alone).
    sizes : dict of str -> int
        Number of neurons per population or input (for rates and rasters).
    """

    spikes: dict
    states: dict
    t: np.ndarray
    duration: float
    device: str
    timings: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    target: str = ""
    metadata: dict = field(default_factory=dict)

    def rates(self, name):
        """Firing rate of each neuron of ``name`` (Hz), shape ``(size,)``."""
        idx, _ = self.spikes[name]
        return np.bincount(idx, minlength=self.sizes[name]) / self.duration

    def spike_trains(self, name):
        """List of spike-time arrays (s), one per neuron of ``name``."""
        idx, times = self.spikes[name]
        order = np.argsort(idx, kind="stable")
        counts = np.bincount(idx, minlength=self.sizes[name])
        return np.split(times[order], np.cumsum(counts)[:-1])

    def cv_isi(self, name, min_spikes=3):
        """Coefficient of variation of the inter-spike intervals per neuron (NaN below ``min_spikes``)."""
        idx, times = self.spikes[name]
        n = self.sizes[name]
        out = np.full(n, np.nan)
        if idx.size < 2:
            return out
        order = np.lexsort((times, idx))
        idx, times = idx[order], times[order]
        same = idx[1:] == idx[:-1]
        isi, owner = np.diff(times)[same], idx[1:][same]
        count = np.bincount(owner, minlength=n)
        mean = np.bincount(owner, isi, minlength=n) / np.maximum(count, 1)
        var = np.bincount(owner, (isi - mean[owner]) ** 2, minlength=n) / np.maximum(count, 1)
        ok = count >= max(min_spikes - 1, 1)
        out[ok] = np.sqrt(var[ok]) / mean[ok]
        return out

    def summary(self):
        """Per population: spike count, mean rate (Hz), mean CV of ISI, plus run facts."""
        pops = {}
        for name in self.spikes:
            cv = self.cv_isi(name)
            pops[name] = {"n_neurons": int(self.sizes[name]), "spike_count": int(self.spikes[name][0].size),
                          "mean_rate_hz": float(self.rates(name).mean()) if self.sizes[name] else 0.0,
                          "mean_cv_isi": float(np.nanmean(cv)) if np.isfinite(cv).any() else None}
        return {"duration_s": self.duration, "device": self.device, "target": self.target,
                "timings_s": dict(self.timings), "populations": pops}
