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
