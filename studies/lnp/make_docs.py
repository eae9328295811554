"""Figures and tables of the LNP study from a results folder of ``studies/lnp/run.py``.

Writes ``docs/figures/lnp_performance.{png,csv}``, ``lnp_spectra.{png,csv}``,
``lnp_timescales.{png,csv}``, ``lnp_table.csv``, ``lnp_paired.csv`` (and ``lnp_ablation.csv``
when ``studies/lnp/ablate.py`` has run) and the blocks between the ``lnp-*`` markers of
``docs/lyapunov.md``::

    .venv/bin/python studies/lnp/make_docs.py results/lnp/full [--unscaled results/lnp/full-unscaled]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from neurocode.reporting import markdown_table, replace_block

ROOT = Path(__file__).resolve().parents[2]
ORDER = {"dense": 0, "lnp": 1, "lnp-unscaled": 2, "random": 3, "activity": 4}




def pm(x, digits):
    return f"{x.mean():.{digits}f} ± {x.std(ddof=1) if len(x) > 1 else 0:.{digits}f}"


def summary(m):
    """One row per (method, target sparsity): counts, sparsities, task scores (mean ± sd over seeds)."""
    rows = []
    for (method, sp), g in m.groupby(["method", "target_sparsity"]):
        rows.append({"method": method, "target synapse sparsity (%)": round(100 * sp),
                     "neurons": round(g["neurons"].mean()), "synapses": round(g["synapses"].mean()),
                     "neuron sparsity (%)": round(100 * g["neuron_sparsity"].mean(), 1),
                     "synapse sparsity (%)": round(100 * g["synapse_sparsity"].mean(), 1),
                     "Lorenz NRMSE": pm(g["lorenz_nrmse"], 3),
                     "keyword accuracy (%)": pm(100 * g["keyword_accuracy"], 1),
                     "λ_max (1/s)": pm(g["lambda_max_per_s"], 1),
                     "rate (Hz)": round(g["keyword_rate_hz"].mean(), 1),
                     "τ_m mean (ms)": round(g["tau_m_mean_ms"].mean(), 1),
                     "seeds": len(g)})
    out = pd.DataFrame(rows)
    return out.sort_values(["target synapse sparsity (%)", "method"],
                           key=lambda c: c.map(ORDER) if c.name == "method" else c).reset_index(drop=True)


def paired(m, extra=None):
    """LNP minus each baseline, paired by seed, per sparsity (negative NRMSE / positive accuracy: LNP better).

    ``extra``: all rows of a ``--no-rescale`` run (its LNP renamed 'lnp-unscaled'), paired with
    its own baselines (matched to its own counts)."""
    rows = _paired(m, "lnp")
    if extra is not None:
        rows += _paired(extra, "lnp-unscaled")
    return pd.DataFrame(rows)


def _paired(m, variant):
    rows = []
    lnp = m[m["method"] == variant].set_index(["target_sparsity", "seed"])
    for base in ("random", "activity"):
        b = m[m["method"] == base].set_index(["target_sparsity", "seed"])
        for sp in sorted(lnp.index.get_level_values(0).unique()):
            dn = (lnp.loc[sp, "lorenz_nrmse"] - b.loc[sp, "lorenz_nrmse"]).to_numpy()
            da = 100 * (lnp.loc[sp, "keyword_accuracy"] - b.loc[sp, "keyword_accuracy"]).to_numpy()
            rows.append({"LNP": variant, "baseline": base, "synapse sparsity (%)": round(100 * sp),
                         "ΔNRMSE (LNP − base)": f"{dn.mean():+.3f} ± {dn.std(ddof=1) if dn.size > 1 else 0:.3f}",
                         "seeds LNP ≤ base NRMSE": f"{int((dn <= 0).sum())}/{dn.size}",
                         "Δaccuracy (points)": f"{da.mean():+.1f} ± {da.std(ddof=1) if da.size > 1 else 0:.1f}",
                         "seeds LNP ≥ base accuracy": f"{int((da >= 0).sum())}/{da.size}"})
    return rows


def verdict(m, extra=None):
    """Sentences, computed from the numbers: LNP vs random at >= 90 % synapse sparsity, and the
    sparsest LNP network that matches the dense one (within one sd of the dense seeds)."""
    lines = []
    n_dense = m.loc[m["method"] == "dense", "neurons"].mean()
    frames = {"lnp": m, "lnp-unscaled": extra}
    for variant, sp in [(v, x) for v in ("lnp", "lnp-unscaled") if frames[v] is not None
                        for x in sorted(frames[v]["target_sparsity"].unique()) if x >= 0.9]:
        d = frames[variant][frames[variant]["target_sparsity"] == sp]
        lnp, rnd = d[d["method"] == variant].set_index("seed"), d[d["method"] == "random"].set_index("seed")
        if lnp.empty:
            continue
        dn = (lnp["lorenz_nrmse"] - rnd["lorenz_nrmse"]).dropna()
        da = 100 * (lnp["keyword_accuracy"] - rnd["keyword_accuracy"]).dropna()
        parts = []
        for name, diff, better in (("Lorenz NRMSE", dn, dn.mean() <= 0), ("keyword accuracy", da, da.mean() >= 0)):
            se = diff.std(ddof=1) / np.sqrt(diff.size) if diff.size > 1 else np.inf
            clear = abs(diff.mean()) > 2 * se
            parts.append(f"{name}: {variant} {'better than or equal to' if better else 'worse than'} random by "
                         f"{abs(diff.mean()):.3g}{' points' if 'accuracy' in name else ''} on average "
                         f"({'more' if clear else 'less'} than two standard errors of the paired difference)")
        lines.append(f"* {100 * sp:.0f} % synapse sparsity ({100 * lnp['neurons'].mean() / n_dense:.0f} % of neurons "
                     f"kept): " + "; ".join(parts) + ".")
    dense = m[m["method"] == "dense"]
    tol_n = dense["lorenz_nrmse"].mean() + dense["lorenz_nrmse"].std(ddof=1)
    tol_a = dense["keyword_accuracy"].mean() - dense["keyword_accuracy"].std(ddof=1)
    for variant in [v for v in ("lnp", "lnp-unscaled") if (m["method"] == v).any()]:
        g = m[m["method"] == variant].groupby("target_sparsity").agg(
            nrmse=("lorenz_nrmse", "mean"), acc=("keyword_accuracy", "mean"), ns=("neuron_sparsity", "mean"),
            ss=("synapse_sparsity", "mean"))
        ok = g[(g["nrmse"] <= tol_n) & (g["acc"] >= tol_a)]
        if len(ok):
            r = ok.iloc[-1]
            lines.append(f"* Sparsest {variant} network matching the dense one on both tasks (mean within one sd "
                         f"of the dense seeds, or better): {100 * r['ss']:.0f} % synapse and {100 * r['ns']:.0f} % "
                         f"neuron sparsity (NRMSE {r['nrmse']:.3f}, accuracy {100 * r['acc']:.1f} %).")
        else:
            lines.append(f"* No {variant} network matches the dense one on both tasks (mean within one sd of the "
                         "dense seeds) at the sparsities run.")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", help="folder written by studies/lnp/run.py")
    ap.add_argument("--unscaled", help="folder of a run with --no-rescale: its LNP rows join as 'lnp-unscaled'")
    args = ap.parse_args()
    from neurocode.figures.lyapunov import performance, spectra, timescales
    from neurocode.io import write_text
    res = Path(args.results)
    m = pd.read_csv(res / "metrics.csv")
    spec_df = pd.read_csv(res / "spectra.csv")
    tau_df = pd.read_csv(res / "timescales.csv")
    extra = None
    if args.unscaled:
        u = Path(args.unscaled)
        extra = pd.read_csv(u / "metrics.csv").replace({"method": {"lnp": "lnp-unscaled"}})
        m = pd.concat([m, extra.query("method == 'lnp-unscaled'")], ignore_index=True)
        spec_df = pd.concat([spec_df, pd.read_csv(u / "spectra.csv").query("method == 'lnp'")
                             .assign(method="lnp-unscaled")], ignore_index=True)
        tau_df = pd.concat([tau_df, pd.read_csv(u / "timescales.csv").query("method == 'lnp'")
                            .assign(method="lnp-unscaled")], ignore_index=True)
    cfg = json.loads((res / "config.json").read_text())
    figs = ROOT / "docs" / "figures"
    performance(m, figs / "lnp_performance")
    spectra(spec_df, figs / "lnp_spectra")
    timescales(tau_df, figs / "lnp_timescales")
    tab, pair = summary(m), paired(m, extra)
    write_text(figs / "lnp_table.csv", tab.to_csv(index=False))
    write_text(figs / "lnp_paired.csv", pair.to_csv(index=False))
    doc = ROOT / "docs" / "lyapunov.md"
    text = doc.read_text()
    head = (f"Preset `{cfg['preset']}`: HRSNN of {cfg['n_dense']} LIF neurons (p = {cfg['p']}), seeds "
            f"{cfg['seeds']}, dt = {1e3 * cfg['dt']:g} ms; mean ± sd over seeds.\n\n")
    text = replace_block(text, "lnp-table", head + markdown_table(tab))
    text = replace_block(text, "lnp-paired", markdown_table(pair))
    text = replace_block(text, "lnp-verdict", "Computed from the table by `make_docs.py`:\n\n" + verdict(m, extra))
    if (res / "ablation.csv").exists():
        ab = pd.read_csv(res / "ablation.csv")
        ab = pd.DataFrame({"variant": ab["variant"], "seed": ab["seed"],
                           "synapse sparsity (%)": (100 * ab["target_sparsity"]).round().astype(int),
                           "Lorenz NRMSE": ab["lorenz_nrmse"].round(3),
                           "keyword accuracy (%)": (100 * ab["keyword_accuracy"]).round(1),
                           "rate (Hz)": ab["keyword_rate_hz"].round(1),
                           "mean abs(w) (nA)": ab["mean_abs_weight_nA"].round(3),
                           "τ_m mean (ms)": ab["tau_m_mean_ms"].round(1)})
        write_text(figs / "lnp_ablation.csv", ab.to_csv(index=False))
        text = replace_block(text, "lnp-ablation", markdown_table(ab))
    write_text(doc, text)
    print(tab.to_string(), pair.to_string(), verdict(m, extra), sep="\n\n")


if __name__ == "__main__":
    main()
