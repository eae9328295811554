"""Rank-coding figures: speed-accuracy curves (accuracy vs mean decision step) and sweeps."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from neurocode.figures import save_figure, use_style

PALETTE = {"RC": "#c0392b", "non-RC": "#2c3e50"}


def speed_accuracy(points, fronts, path):
    """Accuracy (%) against mean decision step, one panel per task; RC vs non-RC.

    Parameters
    ----------
    points : pandas.DataFrame
        One row per read-out: ``task``, ``model``, ``training`` ("RC" / "non-RC"),
        ``mean_decision_step`` (1-based) and ``accuracy`` (fraction). Drawn as dots
        (LSTM) or crosses (spiking model).
    fronts : pandas.DataFrame
        The speed-accuracy fronts (same columns, ``model`` "lstm"): drawn as lines.
    path : str or Path
        Output path; writes PNG and a CSV of points and fronts (column ``kind``).
    """
    use_style()
    tasks = list(dict.fromkeys(points["task"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.3 * len(tasks), 3.0), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        d = points[points["task"] == task]
        for (model, training), g in d.groupby(["model", "training"]):
            ax.scatter(g["mean_decision_step"], 100 * g["accuracy"], s=12 if model == "lstm" else 40,
                       marker="o" if model == "lstm" else "X", color=PALETTE[training],
                       alpha=0.35 if model == "lstm" else 0.9,
                       label=f"{training} ({'spiking' if model == 'spiking' else 'LSTM'})")
        steps = int(d["steps"].max())
        f = fronts[fronts["task"] == task] if len(fronts) else fronts
        for training, g in (f.groupby("training") if len(f) else []):
            # linear between front points (mixing two read-outs), flat after the last one
            x = list(g["mean_decision_step"]) + [steps]
            y = list(100 * g["accuracy"]) + [100 * g["accuracy"].iloc[-1]]
            ax.plot(x, y, color=PALETTE[training], lw=1.6)
        ax.set(title=task, xlabel="mean decision step", ylabel="accuracy (%)", xlim=(0, steps + 0.5))
    handles, labels = axes[0][0].get_legend_handles_labels()
    by_label = dict(zip(labels, handles))
    for ax in axes[0][1:]:
        h, lab = ax.get_legend_handles_labels()
        by_label.update(zip(lab, h))
    fig.legend(by_label.values(), by_label.keys(), loc="lower center", ncol=len(by_label),
               frameon=False, bbox_to_anchor=(0.5, 1.0))
    data = pd.concat([points.assign(kind="readout"), fronts.assign(kind="front")], ignore_index=True)
    return save_figure(fig, path, data)


def sweep(rc, path):
    """RC networks read out at their training threshold: accuracy and decision step vs theta.

    ``rc`` has columns ``task``, ``train_theta``, ``beta``, ``accuracy`` and
    ``mean_decision_step``; one column of panels per task, hue = ``beta``. Writes PNG + CSV.
    """
    use_style()
    counts = rc.groupby("task", sort=False).size()
    tasks = [t for t in dict.fromkeys(rc["task"]) if counts[t] > 1] or list(dict.fromkeys(rc["task"]))
    fig, axes = plt.subplots(2, len(tasks), figsize=(3.0 * len(tasks), 4.6), squeeze=False, sharex=True)
    d = rc.assign(acc=lambda f: 100 * f["accuracy"], beta=lambda f: f["beta"].astype(str))
    betas = sorted(d["beta"].unique(), key=float)
    colors = dict(zip(betas, sns.color_palette("viridis", len(betas))))
    for k, task in enumerate(tasks):
        g = d[d["task"] == task]
        for row, (col, label) in enumerate((("acc", "accuracy (%)"), ("mean_decision_step", "mean decision step"))):
            ax = axes[row][k]
            for beta, gb in g.groupby("beta"):
                ax.scatter(gb["train_theta"], gb[col], color=colors[beta], s=30, label=f"β = {beta}")
            sub = g[g["beta"] == "0.0"].sort_values("train_theta")
            ax.plot(sub["train_theta"], sub[col], color="0.5", lw=0.8, zorder=0)
            ax.set(xlabel="training threshold θ", ylabel=label)
            if row == 0:
                ax.set_title(task)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colors[b], label=f"β = {b}") for b in betas]
    fig.legend(handles=handles, loc="lower center", ncol=len(betas), frameon=False, bbox_to_anchor=(0.5, 1.0))
    return save_figure(fig, path, rc[rc["task"].isin(tasks)])
