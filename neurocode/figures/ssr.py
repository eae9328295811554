"""Figures of the SSR study: the accuracy / firing trade-off and a raster with membrane traces.

Both are saved with :func:`neurocode.figures.save_figure` (PNG + the CSV behind them).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from neurocode.figures import save_figure, use_style

LABELS = {"none": "no SSR", "m_ssr": "M-SSR", "f_ssr": "F-SSR", "membrane": "membrane (v̂ < V_th)"}


def method_label(regulariser, v_hat=None):
    """How a run's regulariser is named in figures and tables (the membrane one with its v̂)."""
    label = LABELS.get(regulariser, regulariser)
    if regulariser == "membrane" and v_hat is not None and not pd.isna(v_hat):
        label = f"membrane v̂ = {v_hat:g} V_th"
    return label


def tradeoff_figure(sweep, path):
    """Accuracy vs spikes per hidden neuron, per hidden layer and averaged, one line per method.

    Parameters
    ----------
    sweep : pandas.DataFrame
        One row per run with ``regulariser``, ``gamma``, ``accuracy``,
        ``spikes_per_hidden_neuron`` and ``spikes_layer<k>`` columns (and ``v_hat`` for
        membrane runs at several reference potentials).
    path : str or Path
        Output path (``.png``; the long-form data goes to ``.csv``).
    """
    use_style()
    layers = sorted(c for c in sweep.columns if c.startswith("spikes_layer"))
    long = []
    for col, name in [(c, f"layer {c.removeprefix('spikes_layer')}") for c in layers] + \
                     [("spikes_per_hidden_neuron", "average")]:
        part = sweep.reindex(columns=["regulariser", "v_hat", "gamma", "accuracy", col])
        long.append(part.rename(columns={col: "spikes_per_neuron"}).assign(layer=name))
    data = pd.concat(long, ignore_index=True)
    data["method"] = [method_label(reg, v_hat) for reg, v_hat in zip(data["regulariser"], data["v_hat"])]
    panels = list(dict.fromkeys(data["layer"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.2), sharey=True, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        sub = data[data["layer"] == panel].sort_values(["method", "gamma"])
        sns.lineplot(data=sub, x="spikes_per_neuron", y="accuracy", hue="method", style="method",
                     markers=True, dashes=False, sort=False, ax=ax, legend=panel == panels[-1])
        ax.set_title(panel)
        ax.set_xlabel("spikes per hidden neuron")
    axes[0][0].set_ylabel("test accuracy")
    if len(panels):
        handles = axes[0][-1].get_legend()
        if handles is not None:
            sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.0, 1.0), title=None, frameon=False)
    return save_figure(fig, path, data)


def raster_figure(net, t_in, path, sample=0, n_traces=4, steps=400, title=""):
    """Raster of every layer's spikes for one sample, and no-reset membrane traces (Fig. 2 style).

    Parameters
    ----------
    net : TTFSNetwork or ConstantSlopeNetwork
    t_in : Tensor, shape (batch, 784)
        Input spike times (units of ``tau_s``).
    path : str or Path
    sample : int
        Which sample of the batch to show.
    n_traces : int
        Hidden neurons (of the first hidden layer) whose potential is drawn: the earliest to fire.
    steps : int
        Time points of the traces.
    """
    use_style()
    with torch.no_grad():
        x = t_in[sample:sample + 1].to(net.weights[0].dtype)
        times = net(x)
        layer_in = [x] + times[:-1]
        rows = [{"layer": "input", "neuron": j, "t": float(t)} for j, t in enumerate(x[0])]
        for k, (t, t_end) in enumerate(zip(times, net.windows)):
            name = "output" if k == len(times) - 1 else f"hidden {k + 1}"
            rows += [{"layer": name, "neuron": i, "t": float(s)} for i, s in enumerate(t[0]) if s < t_end]
        spikes = pd.DataFrame(rows)
        grid = torch.linspace(0, net.windows[0], steps, dtype=x.dtype)
        v = net.first_layer_potential(grid, layer_in[0])[0]                # (steps, n_hidden)
        order = torch.argsort(times[0][0])[:n_traces]
    traces = pd.DataFrame({"t": np.repeat(grid.numpy(), len(order)),
                           "neuron": np.tile(order.numpy(), steps),
                           "v": v[:, order].reshape(-1).numpy()})
    layers = list(dict.fromkeys(spikes["layer"]))
    fig, axes = plt.subplots(len(layers) + 1, 1, figsize=(5.5, 1.4 * (len(layers) + 1) + 0.6), sharex=True)
    for ax, name in zip(axes, layers):
        sub = spikes[spikes["layer"] == name]
        is_input = name == "input"
        ax.scatter(sub["t"], sub["neuron"], s=1.5 if is_input else 4, color="k", marker="." if is_input else "|")
        ax.set_ylabel(f"{name}\n({len(sub)} spikes)", fontsize=8)
    ax = axes[-1]
    for neuron, sub in traces.groupby("neuron"):
        line, = ax.plot(sub["t"], sub["v"], lw=1)
        t_spike = float(times[0][0, neuron])
        if t_spike < net.windows[0]:
            ax.plot([t_spike], [net.v_th], "o", color=line.get_color(), ms=3)
    ax.axhline(net.v_th, color="0.5", ls="--", lw=0.8)
    ax.set_ylim(-0.5, 2.5 * net.v_th)
    ax.set_ylabel("v (hidden 1)", fontsize=8)
    ax.set_xlabel("time (τ_s)")
    if title:
        axes[0].set_title(title)
    spikes["kind"] = "spike"
    data = pd.concat([spikes, traces.assign(layer="hidden 1 trace", kind="trace")], ignore_index=True)
    return save_figure(fig, path, data)


def training_tradeoff(epochs, path):
    """Test accuracy against spikes per hidden neuron along training, one trajectory per method.

    Each epoch is a small numbered dot; the last epoch is a large marker with ± 1 standard
    error of the accuracy (binomial, over the ``n_test`` test images). A second panel shows
    the last epoch's spikes per hidden neuron, labelled with the ratio to the first method.

    Parameters
    ----------
    epochs : pandas.DataFrame
        One row per (method, epoch): ``method``, ``epoch``, ``accuracy`` (fraction),
        ``spikes_per_hidden_neuron`` and ``n_test``.
    path : str or Path
        Output path (PNG + the table with ``accuracy_se`` as CSV).
    """
    use_style()
    d = epochs.assign(accuracy_se=np.sqrt(epochs["accuracy"] * (1 - epochs["accuracy"]) / epochs["n_test"]))
    methods = list(dict.fromkeys(d["method"]))
    colors = dict(zip(methods, ["#2c3e50", "#c0392b", "#27ae60", "#8e44ad"]))
    fig, (ax, ax_bar) = plt.subplots(1, 2, figsize=(8.0, 3.3), gridspec_kw={"width_ratios": [2.2, 1]})
    last = d.sort_values("epoch").groupby("method", sort=False).tail(1).set_index("method").loc[methods]
    for method in methods:
        g = d[d["method"] == method].sort_values("epoch")
        ax.plot(g["spikes_per_hidden_neuron"], 100 * g["accuracy"], "-o", ms=3, lw=1, alpha=0.6,
                color=colors[method])
        for _, r in g.iloc[:-1].iterrows():
            ax.annotate(str(int(r["epoch"])), (r["spikes_per_hidden_neuron"], 100 * r["accuracy"]), fontsize=7,
                        color=colors[method], xytext=(3, -8), textcoords="offset points")
        r = last.loc[method]
        ax.errorbar(r["spikes_per_hidden_neuron"], 100 * r["accuracy"], yerr=100 * r["accuracy_se"], fmt="o",
                    ms=8, capsize=4, color=colors[method], label=f"{method} (epoch {int(r['epoch'])})")
    ax.set(xlabel="spikes per hidden neuron per image", ylabel="test accuracy (%) ± s.e.")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    base = last["spikes_per_hidden_neuron"].iloc[0]
    bars = ax_bar.bar(range(len(methods)), last["spikes_per_hidden_neuron"], color=[colors[m] for m in methods])
    for bar, value in zip(bars, last["spikes_per_hidden_neuron"]):
        ax_bar.annotate(f"{value / base:.2f} ×" if base > 0 else f"{value:.2f}",
                        (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom", fontsize=8)
    ax_bar.set_xticks(range(len(methods)), methods)
    ax_bar.set(ylabel="spikes per hidden neuron", title="after training")
    return save_figure(fig, path, d)
