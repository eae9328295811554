"""Figures of Brian2 validation: robustness curves and torch-vs-Brian2 spike rasters.

Each function draws one figure in the house style and saves ``<path>.png`` with the data
behind it as ``<path>.csv`` (:func:`neurocode.figures.save_figure`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neurocode.figures import save_figure, use_style


def robustness_curves(table, path, metric="accuracy_brian2", reference=None):
    """Accuracy (or ``metric``) vs variant strength, one panel per variant.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``network``, ``variant``, ``strength`` and ``metric``.
    path : str or Path
    metric : str
    reference : dict of str -> float, optional
        Per network, the torch accuracy drawn as a dashed line.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    use_style()
    variants = list(dict.fromkeys(table["variant"]))
    fig, axes = plt.subplots(1, len(variants), figsize=(2.6 * len(variants), 2.6), sharey=True, squeeze=False)
    for ax, variant in zip(axes[0], variants):
        sub = table[table["variant"] == variant]
        sns.lineplot(data=sub, x="strength", y=metric, hue="network", marker="o", ax=ax,
                     legend=ax is axes[0][-1])
        for k, acc in enumerate((reference or {}).values()):
            ax.axhline(acc, ls="--", lw=0.8, color=sns.color_palette()[k])
        ax.set_title(variant)
        ax.set_xlabel("strength")
    axes[0][0].set_ylabel(metric.replace("_", " "))
    if axes[0][-1].get_legend() is not None:
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1, 1), frameon=False)
    return save_figure(fig, path, table)


def raster_pair(torch_spikes, brian_spikes, path, sizes, title=""):
    """Spike rasters of the same sample in torch (left) and Brian2 (right), layers stacked.

    Parameters
    ----------
    torch_spikes, brian_spikes : dict of str -> ndarray
        Per layer, first spike time of each neuron (s); ``inf`` where silent.
    sizes : dict of str -> int
        Layer sizes, in drawing order (bottom to top).
    """
    import matplotlib.pyplot as plt

    use_style()
    rows = []
    for engine, spikes in (("torch", torch_spikes), ("brian2", brian_spikes)):
        offset = 0
        for layer, n in sizes.items():
            t = np.asarray(spikes[layer], dtype=np.float64)
            fired = np.flatnonzero(np.isfinite(t))
            rows.append(pd.DataFrame({"engine": engine, "layer": layer, "neuron": fired,
                                      "row": fired + offset, "time_ms": t[fired] * 1e3}))
            offset += n
    data = pd.concat(rows, ignore_index=True)
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.2), sharey=True, sharex=True)
    colors = dict(zip(sizes, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, engine in zip(axes, ("torch", "brian2")):
        sub = data[data["engine"] == engine]
        for layer in sizes:
            d = sub[sub["layer"] == layer]
            ax.scatter(d["time_ms"], d["row"], s=4, color=colors[layer], label=layer, marker="|")
        ax.set_title(f"{engine}{' - ' + title if title else ''}", fontsize=9)
        ax.set_xlabel("time in trial (ms)")
    axes[0].set_ylabel("neuron (layers stacked)")
    axes[1].legend(frameon=False, loc="upper left", bbox_to_anchor=(1, 1), markerscale=3)
    return save_figure(fig, path, data)


def engine_agreement(table, path):
    """Torch against Brian2 for each trained network: accuracies, answer agreement, hidden spikes.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per network: ``network``, ``accuracy_torch``, ``accuracy_brian2``,
        ``agreement`` (fractions), ``hidden_spikes_torch`` and ``hidden_spikes_brian2``
        (spikes per hidden neuron per trial, late spikes after the window included).
    path : str or Path
        Output path (PNG + CSV of ``table``).
    """
    import matplotlib.pyplot as plt

    use_style()
    networks = list(table["network"])
    x = np.arange(len(networks))
    fig, (ax, ax_sp) = plt.subplots(1, 2, figsize=(8.0, 3.2))
    for k, (col, label, color) in enumerate((("accuracy_torch", "torch accuracy", "#7f8c8d"),
                                             ("accuracy_brian2", "Brian2 accuracy", "#2c3e50"),
                                             ("agreement", "same answer", "#c0392b"))):
        bars = ax.bar(x + (k - 1) * 0.27, 100 * table[col], 0.27, label=label, color=color)
        for bar, value in zip(bars, table[col]):
            ax.annotate(f"{100 * value:.1f}", (bar.get_x() + bar.get_width() / 2, 100 * value), ha="center",
                        va="bottom", fontsize=7)
    ax.set_xticks(x, networks)
    ax.set(ylabel="% of test images", ylim=(0, 105))
    ax.legend(frameon=False, fontsize=8, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    for k, (col, label, color) in enumerate((("hidden_spikes_torch", "torch", "#7f8c8d"),
                                             ("hidden_spikes_brian2", "Brian2", "#2c3e50"))):
        ax_sp.bar(x + (k - 0.5) * 0.4, table[col], 0.4, label=label, color=color)
    ax_sp.set_xticks(x, networks)
    ax_sp.set(ylabel="hidden spikes per neuron per trial")
    ax_sp.legend(frameon=False, fontsize=8, ncol=2, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return save_figure(fig, path, table)
