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


def heterogeneity_raster(result, path, population, tau_m, n_exc, max_neurons=250, window_s=0.5):
    """Two rasters of the same spikes: coloured by excitatory / inhibitory, and by ``tau_m``.

    Rows are ``max_neurons`` neurons in the network's E/I proportion (the first of each type),
    excitatory above inhibitory, each group sorted by its membrane time constant; only the
    first ``window_s`` seconds are drawn.

    Parameters
    ----------
    result : SimResult
    path : str or Path
        Output path (PNG + CSV of the plotted spikes with ``row``, ``type`` and ``tau_m_ms``).
    population : str
    tau_m : array-like, shape (size,)
        Membrane time constant of each neuron (s).
    n_exc : int
        The first ``n_exc`` neurons are excitatory.
    """
    import matplotlib.pyplot as plt

    use_style()
    tau_m = np.asarray(tau_m, dtype=float)
    size = result.sizes[population]
    n = min(size, max_neurons)
    n_show_exc = min(n_exc, int(round(n * n_exc / size)))
    exc, inh = np.arange(n_show_exc), np.arange(n_exc, n_exc + n - n_show_exc)
    order = np.concatenate([exc[np.argsort(tau_m[exc])], inh[np.argsort(tau_m[inh])]])
    row = np.full(size, -1)
    row[order] = np.arange(n)[::-1]
    idx, times = result.spikes[population]
    keep = (row[idx] >= 0) & (times < window_s)
    data = pd.DataFrame({"neuron": idx[keep], "row": row[idx[keep]], "time_s": times[keep],
                         "type": np.where(idx[keep] < n_exc, "excitatory", "inhibitory"),
                         "tau_m_ms": 1e3 * tau_m[idx[keep]]})
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.8), sharey=True)
    colors = {"excitatory": "#c0392b", "inhibitory": "#2471a3"}
    for kind, d in data.groupby("type"):
        axes[0].scatter(1e3 * d["time_s"], d["row"], s=3, marker="|", lw=0.7, color=colors[kind], label=kind,
                        rasterized=True)
    axes[0].legend(loc="upper right", markerscale=5, frameon=True, fontsize=8)
    axes[0].set(xlabel="time (ms)", ylabel="neuron (E above I, each by τ_m)", title="excitatory / inhibitory")
    sc = axes[1].scatter(1e3 * data["time_s"], data["row"], s=3, marker="|", lw=0.7, c=data["tau_m_ms"],
                         cmap="viridis", rasterized=True, vmin=1e3 * tau_m[order].min(), vmax=1e3 * tau_m[order].max())
    fig.colorbar(sc, ax=axes[1], label="τ_m (ms)")
    axes[1].set(xlabel="time (ms)", title="membrane time constant")
    for ax in axes:
        ax.set_xlim(0, 1e3 * min(window_s, result.duration))
        ax.set_ylim(-0.5, n - 0.5)
    return save_figure(fig, path, data)


def rates_by_type(result, path, population, tau_m, n_exc):
    """Firing-rate histogram of excitatory and inhibitory neurons, and rate against ``tau_m``.

    The CSV holds each neuron's ``rate_hz``, ``type`` and ``tau_m_ms``.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    use_style()
    size = result.sizes[population]
    data = pd.DataFrame({"neuron": np.arange(size), "rate_hz": result.rates(population),
                         "type": np.where(np.arange(size) < n_exc, "excitatory", "inhibitory"),
                         "tau_m_ms": 1e3 * np.asarray(tau_m, dtype=float)})
    palette = {"excitatory": "#c0392b", "inhibitory": "#2471a3"}
    fig, (ax, ax_tau) = plt.subplots(1, 2, figsize=(8.0, 3.0))
    sns.histplot(data, x="rate_hz", hue="type", palette=palette, bins=30, element="step", stat="density",
                 common_norm=False, ax=ax)
    ax.set(xlabel="firing rate (Hz)", ylabel="density")
    sns.scatterplot(data, x="tau_m_ms", y="rate_hz", hue="type", palette=palette, s=10, alpha=0.7, ax=ax_tau,
                    legend=False)
    ax_tau.set(xlabel="τ_m (ms)", ylabel="firing rate (Hz)")
    return save_figure(fig, path, data)
