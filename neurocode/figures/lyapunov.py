"""Lyapunov figures: one spectrum with error bars, and the LNP study (performance vs sparsity,
spectra, timescales).

Each function saves a PNG with the data behind it as CSV (:func:`neurocode.figures.save_figure`);
the LNP ones take the long tables written by ``studies/lnp/run.py``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from neurocode.figures import save_figure, use_style

PALETTE = {"dense": "#2c3e50", "lnp": "#c0392b", "lnp-unscaled": "#e67e22", "random": "#7f8c8d",
           "activity": "#2980b9"}


def performance(metrics, path):
    """Lorenz NRMSE and keyword accuracy (%) against synapse sparsity (%), one line per method.

    Parameters
    ----------
    metrics : pandas.DataFrame
        One row per network: ``method``, ``seed``, ``target_sparsity`` (0-1),
        ``lorenz_nrmse``, ``keyword_accuracy`` (fraction). Dense networks (sparsity 0) are
        drawn as a band (mean +- sd over seeds).
    path : str or Path
        Output path (PNG + CSV).
    """
    use_style()
    d = metrics.assign(sparsity_pct=100 * metrics["target_sparsity"],
                       accuracy_pct=100 * metrics["keyword_accuracy"])
    fig, axes = plt.subplots(1, 2, figsize=(7.4, 3.0))
    for ax, col, label in ((axes[0], "lorenz_nrmse", "Lorenz NRMSE (lower is better)"),
                           (axes[1], "accuracy_pct", "keyword accuracy (%)")):
        dense = d[d["method"] == "dense"][col]
        ax.axhspan(dense.mean() - dense.std(), dense.mean() + dense.std(), color=PALETTE["dense"], alpha=0.15, lw=0)
        ax.axhline(dense.mean(), color=PALETTE["dense"], lw=1, ls="--", label="dense")
        sns.lineplot(data=d[d["method"] != "dense"], x="sparsity_pct", y=col, hue="method", palette=PALETTE,
                     marker="o", errorbar="sd", ax=ax, legend=ax is axes[1])
        ax.set(xlabel="synapse sparsity (%)", ylabel=label)
    axes[1].legend(frameon=False, fontsize=8)
    return save_figure(fig, path, d)


def spectra(spec_df, path, sparsity=0.9):
    """Largest Lyapunov exponents (1/s) of the dense network and of each method at ``sparsity``.

    ``spec_df``: ``seed``, ``method``, ``target_sparsity``, ``index``, ``exponent_per_s``.
    """
    use_style()
    d = spec_df[(spec_df["method"] == "dense") | ((spec_df["target_sparsity"] - sparsity).abs() < 1e-9)]
    fig, ax = plt.subplots(figsize=(3.8, 3.0))
    sns.lineplot(data=d, x="index", y="exponent_per_s", hue="method", palette=PALETTE, marker="o",
                 errorbar="sd", ax=ax)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set(xlabel="exponent index", ylabel="Lyapunov exponent (1/s)",
           title=f"dense vs {100 * sparsity:.0f} % synapse sparsity")
    ax.legend(frameon=False, fontsize=8)
    return save_figure(fig, path, d)


def timescales(tau_df, path, sparsity=0.9):
    """Distribution of ``tau_m`` (ms) before (dense) and after pruning at ``sparsity``.

    ``tau_df``: ``method``, ``target_sparsity``, ``tau_m_ms``.
    """
    use_style()
    d = tau_df[(tau_df["method"] == "dense") | ((tau_df["target_sparsity"] - sparsity).abs() < 1e-9)]
    fig, ax = plt.subplots(figsize=(3.8, 3.0))
    sns.kdeplot(data=d, x="tau_m_ms", hue="method", palette=PALETTE, common_norm=False, clip=(0, None), ax=ax)
    ax.set(xlabel="membrane time constant τ_m (ms)", ylabel="density",
           title=f"dense vs {100 * sparsity:.0f} % synapse sparsity")
    return save_figure(fig, path, pd.DataFrame(d))


def spectrum_errorbars(result, path, label=None):
    """One spectrum (1/s) against exponent index with ± 1 standard error bars.

    Parameters
    ----------
    result : neurocode.lyapunov.LyapunovResult
        Its ``stderr`` gives the bars (over initial conditions, or over blocks for one).
    path : str or Path
        Output path (PNG + CSV with ``index``, ``exponent_per_s``, ``stderr_per_s``).
    label : str, optional
        Title; default: the result's card (if any), conditions, averaging time and whether
        the convergence test passed.
    """
    use_style()
    d = pd.DataFrame({"index": range(result.k), "exponent_per_s": result.exponents,
                      "stderr_per_s": result.stderr})
    fig, ax = plt.subplots(figsize=(3.8, 3.0))
    ax.errorbar(d["index"], d["exponent_per_s"], yerr=d["stderr_per_s"], fmt="o", ms=4, capsize=3,
                color=PALETTE["dense"], ecolor=PALETTE["lnp"], lw=1)
    ax.axhline(0, color="0.6", lw=0.8)
    status = {True: "converged", False: "not converged (cap)", None: "fixed length"}[result.converged]
    title = label or (f"{result.metadata.get('card', '')} {result.per_condition.shape[0]} conditions, "
                      f"T = {result.t_sim:g} s, {status}").strip()
    ax.set(xlabel="exponent index", ylabel="Lyapunov exponent (1/s) ± s.e.", title=title)
    return save_figure(fig, path, d)
