"""Figures of network activity: spike raster, firing-rate distribution, ISI and CV.

Each function takes a :class:`~neurocode.brian.SimResult`, draws one figure in the house
style and saves ``<path>.png`` with the data behind it as ``<path>.csv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neurocode.figures import save_figure, use_style


def spikes_frame(result, populations=None):
    """All spikes as a DataFrame: ``population``, ``neuron``, ``time_s``."""
    frames = []
    for name in populations or list(result.spikes):
        idx, times = result.spikes[name]
        frames.append(pd.DataFrame({"population": name, "neuron": idx, "time_s": times}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["population", "neuron", "time_s"])


def raster(result, path, populations=None, max_neurons=200, bin_s=5e-3):
    """Spike raster (up to ``max_neurons`` per population) above the population rate.

    Returns the PNG path; the CSV holds every plotted spike.
    """
    import matplotlib.pyplot as plt

    use_style()
    populations = populations or [n for n in result.spikes if result.sizes.get(n)]
    fig, (ax, ax_rate) = plt.subplots(2, 1, figsize=(7, 4.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    offset, shown = 0, []
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    edges = np.arange(0, result.duration + bin_s, bin_s)
    for k, name in enumerate(populations):
        idx, times = result.spikes[name]
        n = min(result.sizes[name], max_neurons)
        keep = idx < n
        color = palette[k % len(palette)]
        ax.scatter(times[keep] * 1e3, idx[keep] + offset, s=1.5, color=color, marker="|", lw=0.6,
                   label=name, rasterized=True)
        shown.append(pd.DataFrame({"population": name, "neuron": idx[keep], "row": idx[keep] + offset,
                                   "time_s": times[keep]}))
        counts, _ = np.histogram(times, edges)
        rate = counts / bin_s / max(result.sizes[name], 1)
        ax_rate.step(edges[:-1] * 1e3, rate, where="post", color=color, lw=1)
        offset += n
    ax.set_ylabel("neuron")
    ax.set_ylim(-0.5, max(offset, 1) - 0.5)
    if len(populations) > 1:
        ax.legend(loc="upper right", markerscale=6, frameon=False)
    ax_rate.set_xlabel("time (ms)")
    ax_rate.set_ylabel("rate (Hz)")
    ax_rate.set_xlim(0, result.duration * 1e3)
    ax.set_title(f"{result.device} simulation, {result.duration * 1e3:g} ms")
    data = pd.concat(shown, ignore_index=True) if shown else spikes_frame(result, [])
    return save_figure(fig, path, data)


def rate_distribution(result, path, populations=None):
    """Histogram of per-neuron firing rates (Hz); the CSV holds each neuron's rate."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    use_style()
    populations = populations or [n for n in result.spikes if result.sizes.get(n)]
    data = pd.concat([pd.DataFrame({"population": name, "neuron": np.arange(result.sizes[name]),
                                    "rate_hz": result.rates(name)}) for name in populations],
                     ignore_index=True)
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    sns.histplot(data, x="rate_hz", hue="population" if len(populations) > 1 else None, bins=30,
                 element="step", ax=ax)
    ax.set_xlabel("firing rate (Hz)")
    ax.set_ylabel("neurons")
    return save_figure(fig, path, data)


def isi_distribution(result, path, population, max_isi_s=None):
    """ISI histogram (log time axis) and the distribution of per-neuron CV of ISI.

    The CSV holds every ISI (``isi_s``, ``neuron``); the CV panel uses neurons with at
    least three spikes.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    use_style()
    trains = result.spike_trains(population)
    isi = [np.diff(t) for t in trains]
    owner = np.repeat(np.arange(len(isi)), [x.size for x in isi])
    isi = np.concatenate(isi) if isi else np.zeros(0)
    data = pd.DataFrame({"neuron": owner, "isi_s": isi})
    cv = result.cv_isi(population)
    fig, (ax, ax_cv) = plt.subplots(1, 2, figsize=(7, 3.0))
    if isi.size:
        bins = np.logspace(np.log10(max(isi.min(), 1e-4)), np.log10(max_isi_s or isi.max() * 1.01), 40)
        ax.hist(isi * 1e3, bins=bins * 1e3, color="0.3", histtype="stepfilled", alpha=0.8)
        ax.set_xscale("log")
    ax.set_xlabel("inter-spike interval (ms)")
    ax.set_ylabel("count")
    finite = cv[np.isfinite(cv)]
    if finite.size:
        sns.histplot(finite, bins=25, ax=ax_cv, color="C1", element="step")
        ax_cv.axvline(1.0, color="0.5", ls="--", lw=1)
        ax_cv.text(1.0, ax_cv.get_ylim()[1] * 0.95, " Poisson", color="0.4", va="top", fontsize=8)
    ax_cv.set_xlabel("CV of ISI")
    ax_cv.set_ylabel("neurons")
    fig.suptitle(f"{population}: mean CV = {np.nanmean(cv) if finite.size else float('nan'):.2f}")
    return save_figure(fig, path, data)
