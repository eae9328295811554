"""Rank-coding figures: speed-accuracy curves (accuracy vs mean decision step)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns

from neurocode.figures import save_figure, use_style


def speed_accuracy(df, path):
    """Accuracy (%) against mean decision step, one panel per task; RC vs non-RC, per model.

    ``df`` has columns ``task``, ``model``, ``training`` ("RC" / "non-RC"),
    ``mean_decision_step`` (1-based steps) and ``accuracy`` (fraction). Writes PNG + CSV.
    """
    use_style()
    tasks = list(dict.fromkeys(df["task"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.4 * len(tasks), 3.0), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        d = df[df["task"] == task].sort_values("mean_decision_step").assign(
            acc=lambda f: 100 * f["accuracy"])
        sns.lineplot(data=d, x="mean_decision_step", y="acc", hue="training", style="model",
                     markers=True, dashes=False, ax=ax, hue_order=["RC", "non-RC"])
        ax.set(title=task, xlabel="mean decision step", ylabel="accuracy (%)")
        if ax is not axes[0][-1] and ax.get_legend():
            ax.get_legend().remove()
    return save_figure(fig, path, df)
