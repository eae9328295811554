"""Figure of the heterogeneity study: time-constant distributions before and after learning,
and test accuracy per seed with fixed and learned time constants.

``tau_figure(runs, taus, path)`` is called by ``run.py``; on its own it redraws the figure
from the CSV files the study wrote::

    .venv/bin/python studies/heterogeneity/figure.py
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from neurocode.figures import save_figure, use_style

FIGURES = Path(__file__).resolve().parents[2] / "docs" / "figures"
LABELS = {"tau_m": "τ_m (ms)", "tau_syn": "τ_syn (ms)", "tau_a": "τ_a (ms)"}


def tau_figure(runs, taus, path):
    """Histograms (log axis) of each time constant, initial vs learned, and accuracy by seed."""
    use_style()
    fig, axes = plt.subplots(1, len(LABELS) + 1, figsize=(3.2 * (len(LABELS) + 1), 2.8))
    for ax, (name, label) in zip(axes, LABELS.items()):
        t = taus[taus["parameter"] == name]
        bins = np.geomspace(t["value_ms"].min() * 0.9, t["value_ms"].max() * 1.1, 30)
        for stage, color in (("initial", "0.6"), ("learned", "C3")):
            v = t[t["stage"] == stage]["value_ms"]
            ax.hist(v, bins=bins, color=color, alpha=0.7, label=stage)
        ax.set_xscale("log")
        ax.set_xlabel(label)
    axes[0].set_ylabel("hidden neurons (all seeds)")
    axes[0].legend(frameon=False)
    ax = axes[-1]
    wide = runs.pivot(index="seed", columns="condition", values="accuracy") * 100
    for _, row in wide.iterrows():
        ax.plot([0, 1], [row["fixed"], row["learned"]], color="0.5", marker="o")
    ax.set_xticks([0, 1], ["fixed τ", "learned τ"])
    ax.set_xlim(-0.4, 1.4)
    ax.set_ylabel("test accuracy (%)")
    sns.despine(fig)
    fig.tight_layout()
    return save_figure(fig, path, taus)


if __name__ == "__main__":
    tau_figure(pd.read_csv(FIGURES / "heterogeneity_runs.csv"), pd.read_csv(FIGURES / "heterogeneity_tau.csv"),
               FIGURES / "heterogeneity_tau")
