"""Figures in the neuroscience idiom (seaborn/matplotlib), one module per workflow.

Every figure is saved with the data behind it: ``save_figure(fig, path, data)`` writes
``path.png`` and ``path.csv`` atomically.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from neurocode.io import atomic_path  # noqa: E402


def use_style():
    """The house style: seaborn 'ticks', paper context, no top/right spines."""
    sns.set_theme(context="paper", style="ticks", font_scale=1.1)
    plt.rcParams.update({"axes.spines.top": False, "axes.spines.right": False,
                         "figure.dpi": 120, "savefig.dpi": 150, "savefig.bbox": "tight"})


def save_figure(fig, path, data=None):
    """Save ``fig`` as ``<path>.png`` and ``data`` (a pandas DataFrame) as ``<path>.csv``.

    Returns the PNG path. ``path`` may be given with or without the ``.png`` suffix.
    """
    path = Path(path).with_suffix("")
    png = path.with_suffix(".png")
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    if data is not None:
        with atomic_path(path.with_suffix(".csv")) as tmp:
            data.to_csv(tmp, index=False)
    return png
