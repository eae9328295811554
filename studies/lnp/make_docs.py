"""Figures and tables of the LNP study from the results folders of ``studies/lnp/run.py``.

Writes, per network kind ``NET`` (``hrsnn``, ``chrsnn``), ``docs/figures/lnp_performance_NET``,
``lnp_spectra_NET`` and ``lnp_timescales_NET`` (PNG + CSV), and ``lnp_table.csv``,
``lnp_paired.csv``, ``lnp_operating_point.csv`` and ``lnp_ablation.csv`` (when the
folders of ``operating_point.py`` and ``ablate.py`` are given), and the blocks between
the ``lnp-*`` markers of ``docs/lyapunov.md``::

    .venv/bin/python studies/lnp/make_docs.py results/lnp/hrsnn results/lnp/chrsnn \\
        --operating-point results/lnp/op --ablation results/lnp/ablation-hrsnn results/lnp/ablation-chrsnn
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from neurocode.reporting import markdown_table, replace_block

ROOT = Path(__file__).resolve().parents[2]
ORDER = {"dense": 0, "lnp": 1, "random": 2, "activity": 3, "hrsnn": 0, "chrsnn": 1}
#: (column, label, scale, sign: +1 when larger is better, digits)
SCORES = (("lorenz_nrmse", "NRMSE", 1.0, -1, 3), ("keyword_accuracy", "accuracy", 100.0, 1, 1))


def pm(x, digits):
    return f"{x.mean():.{digits}f} ± {x.std(ddof=1) if len(x) > 1 else 0:.{digits}f}"


def summary(m):
    """One row per (network, method, target sparsity): counts, task scores (mean ± sd over seeds), dynamics."""
    rows = []
    for (net, method, sp), g in m.groupby(["network", "method", "target_sparsity"]):
        rows.append({"network": net, "method": method, "target synapse sparsity (%)": round(100 * sp),
                     "neurons": round(g["neurons"].mean()), "synapses": round(g["synapses"].mean()),
                     "Lorenz NRMSE": pm(g["lorenz_nrmse"], 3),
                     "keyword accuracy (%)": pm(100 * g["keyword_accuracy"], 1),
                     "rate (Hz)": pm(g["keyword_rate_hz"], 1),
                     "inhibitory synapses (%)": round(100 * g["inhibitory_fraction"].mean()),
                     "inhibitory neurons (%)": (round(100 * g["inhibitory_neuron_fraction"].mean())
                                                if "inhibitory_neuron_fraction" in g else "–"),
                     "weight gain": round(g["weight_gain"].mean(), 2),
                     "λ_max (1/s)": pm(g["lambda_max_per_s"], 1),
                     "τ_m mean (ms)": round(g["tau_m_mean_ms"].mean(), 1),
                     "seeds": len(g)})
    out = pd.DataFrame(rows)
    return out.sort_values(["network", "target synapse sparsity (%)", "method"],
                           key=lambda c: c.map(ORDER) if c.name in ("network", "method") else c).reset_index(drop=True)


def differences(m, base):
    """Per (network, sparsity): paired differences LNP − ``base`` by seed, for both scores."""
    idx = ["network", "target_sparsity", "seed"]
    lnp = m[m["method"] == "lnp"].set_index(idx)
    b = m[m["method"] == base].set_index(idx)
    d = pd.DataFrame({col: scale * (lnp[col] - b[col]) for col, _, scale, _, _ in SCORES}).dropna()
    return d.reset_index()


def judge(diff, sign):
    """'better' / 'worse' when the two-sided paired t-test (LNP − base against 0) gives p < 0.05, else 'matches'."""
    if not tests(diff)["t_p"] < 0.05:            # nan (undefined) counts as no evidence
        return "matches"
    return "better" if sign * diff.mean() > 0 else "worse"


def tests(diff):
    """Paired tests of the per-seed differences ``diff`` against 0: two-sided paired t-test and
    Wilcoxon signed-rank test (exact for small samples; with 5 seeds its smallest two-sided p
    is 2/32 = 0.0625), and the effect size Cohen's d_z = mean / sd of the differences."""
    from scipy.stats import ttest_1samp, wilcoxon
    x = np.round(np.asarray(diff, dtype=np.float64), 12)        # equal differences have sd 0, not 1e-15
    sd = x.std(ddof=1) if x.size > 1 else 0.0
    if sd == 0:             # one seed, or every seed the same difference: neither test is defined
        return {"t_p": float("nan"), "w_p": float("nan"), "d_z": float("nan")}
    return {"t_p": float(ttest_1samp(x, 0.0).pvalue), "w_p": float(wilcoxon(x).pvalue), "d_z": float(x.mean() / sd)}


def paired(m):
    """LNP minus each baseline, paired by seed (negative ΔNRMSE / positive Δaccuracy in points: LNP better),
    with the paired t-test's and the Wilcoxon signed-rank test's p-values, the effect size d_z (signed so that
    positive favours LNP) and the verdict of :func:`judge`."""
    rows = []
    for base in ("random", "activity"):
        for (net, sp), d in differences(m, base).groupby(["network", "target_sparsity"]):
            row = {"network": net, "baseline": base, "synapse sparsity (%)": round(100 * sp)}
            for col, label, _, sign, digits in SCORES:
                x = d[col]
                t = tests(x)
                row[f"Δ{label} (LNP − base)"] = f"{x.mean():+.{digits}f} ± {x.std(ddof=1):.{digits}f}"
                row[f"{label}: seeds LNP better"] = f"{int((sign * x > 0).sum())}/{x.size}"
                row[f"{label}: t p"] = f"{t['t_p']:.2g}"
                row[f"{label}: Wilcoxon p"] = f"{t['w_p']:.2g}"
                row[f"{label}: d_z"] = f"{sign * t['d_z']:+.2f}"
                row[f"{label}: LNP"] = judge(x, sign)
            rows.append(row)
    return pd.DataFrame(rows).sort_values(["baseline", "network", "synapse sparsity (%)"], key=lambda c: c.map(
        {"random": 0, "activity": 1, **ORDER}) if c.name in ("baseline", "network") else c).reset_index(drop=True)


def cost(m):
    """Mean seconds per stage and job (network, method): the tasks, the spectrum, LNP step 1 and pruning."""
    cols = {"lorenz_seconds": "Lorenz (s)", "keyword_seconds": "keywords (s)", "spectrum_seconds": "spectrum (s)",
            "step1_seconds": "LNP step 1 (s)", "prune_seconds": "pruning (s)", "seconds": "evaluation total (s)"}
    rows = []
    for (net, method), g in m.groupby(["network", "method"]):
        row = {"network": net, "method": method, "neurons": round(g["neurons"].mean())}
        row.update({label: round(g[c].mean(), 1) if c in g and g[c].notna().any() else "–"
                    for c, label in cols.items()})
        row["jobs"] = len(g)
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["network", "method"], key=lambda c: c.map(ORDER)).reset_index(drop=True)


def verdict(m):
    """Sentences computed from the numbers: LNP vs random and vs activity at >= 90 % synapse sparsity, per network."""
    lines = []
    for base in ("random", "activity"):
        d_all = differences(m, base).sort_values(["network", "target_sparsity"],
                                                 key=lambda c: c.map(ORDER) if c.name == "network" else c)
        for (net, sp), d in d_all.groupby(["network", "target_sparsity"], sort=False):
            if sp < 0.9:
                continue
            parts = []
            for (col, _, _, sign, _), name, unit in zip(SCORES, ("Lorenz NRMSE", "keyword accuracy"), ("", " points")):
                t = tests(d[col])
                parts.append(f"{name}: {judge(d[col], sign)} (LNP − {base} {d[col].mean():+.3g}{unit} ± "
                             f"{d[col].std(ddof=1):.2g}, {int((sign * d[col] > 0).sum())}/{len(d)} seeds favour LNP, "
                             f"t p = {t['t_p']:.2g}, Wilcoxon p = {t['w_p']:.2g}, d_z = {sign * t['d_z']:+.2f})")
            verdicts = [judge(d[col], sign) for col, _, _, sign, _ in SCORES]
            lines.append(f"* {net.upper()} vs {base}, {100 * sp:.0f} % synapse sparsity, {len(d)} seeds: "
                         + "; ".join(parts) + f". {conclusion(verdicts, base)}")
    return ("'better'/'worse': two-sided paired t-test p < 0.05; 'matches': p ≥ 0.05. d_z: mean over sd of the "
            "paired differences, positive when LNP is better.\n\n" + "\n".join(lines))


def conclusion(verdicts, base="random"):
    """One sentence from the verdicts of (Lorenz, keywords) against baseline ``base``."""
    tasks = ("Lorenz", "keywords")
    worse = [t for t, v in zip(tasks, verdicts) if v == "worse"]
    better = [t for t, v in zip(tasks, verdicts) if v == "better"]
    if worse:
        return f"LNP trails {base} on {' and '.join(worse)}."
    if better:
        return f"LNP beats {base} on {' and '.join(better)} and matches it on the rest."
    return f"LNP matches {base} on both tasks: no difference beyond the noise, and it does not beat it."


def operating_point(folder):
    """Mean over seeds of the sweep of ``operating_point.py``, one row per (network, w_exc, in_gain)."""
    op = pd.read_csv(Path(folder) / "operating_point.csv")
    g = op.groupby(["network", "w_exc", "in_gain"]).agg(rate=("rate_hz", "mean"), rate_max=("rate_hz", "max"),
                                                         cv=("cv_isi", "min"), chi=("chi", "max")).reset_index()
    return pd.DataFrame({"network": g["network"], "w_exc (nA)": (1e9 * g["w_exc"]).round(3),
                         "in_gain (nA)": (1e9 * g["in_gain"]).round(3), "rate (Hz, mean)": g["rate"].round(1),
                         "rate (Hz, max over seeds)": g["rate_max"].round(1),
                         "CV of ISIs (min)": g["cv"].round(2), "χ (max)": g["chi"].round(3)})


def ablation(folders):
    """Validation scores of the LNP variants of ``ablate.py`` (mean ± sd over seeds)."""
    ab = pd.concat([pd.read_csv(Path(f) / "ablation.csv") for f in folders], ignore_index=True)
    rows = [{"network": net, "variant": v, "synapse sparsity (%)": round(100 * g["target_sparsity"].iloc[0]),
             "validation NRMSE": pm(g["lorenz_nrmse"], 3),
             "validation accuracy (%)": pm(100 * g["keyword_accuracy"], 1),
             "rate (Hz)": round(g["keyword_rate_hz"].mean(), 1),
             "max abs(w) (nA)": round(g["max_abs_weight_nA"].mean(), 3),
             "τ_m mean (ms)": round(g["tau_m_mean_ms"].mean(), 1), "seeds": len(g)}
            for (net, v), g in ab.groupby(["network", "variant"], sort=False)]
    return pd.DataFrame(rows)


def header(cfgs):
    """One line on the runs behind the table (folders of one network kind are merged)."""
    nets = {}
    for c in cfgs:
        nets.setdefault(c["network"], {**c, "seeds": []})["seeds"] += c["seeds"]
    runs = "; ".join(f"{net.upper()}: {c['n_dense']} LIF neurons, {len(c['seeds'])} seeds "
                     f"({min(c['seeds'])}-{max(c['seeds'])})" for net, c in nets.items())
    c = cfgs[0]
    return (f"{runs}; preset `{c['preset']}`, weight rule `{c['rescale']}`, E/I rule `{c.get('ei', 'mixed')}`, "
            f"dt = {1e3 * c['dt']:g} ms. Mean ± sd over "
            "seeds; rate: mean rate under the keyword input; weight gain: the factor of the weight rule.\n\n")


def figures(m, spec_df, tau_df, figs):
    from neurocode.figures.lyapunov import performance, spectra, timescales
    for net in sorted(m["network"].unique()):
        performance(m[m["network"] == net], figs / f"lnp_performance_{net}")
        spectra(spec_df[spec_df["network"] == net], figs / f"lnp_spectra_{net}")
        timescales(tau_df[tau_df["network"] == net], figs / f"lnp_timescales_{net}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="folders written by studies/lnp/run.py (one per network kind)")
    ap.add_argument("--operating-point", help="folder of studies/lnp/operating_point.py")
    ap.add_argument("--ablation", nargs="+", help="folders of studies/lnp/ablate.py")
    ap.add_argument("--sparsities", type=float, nargs="+",
                    help="only these synapse sparsities (and the dense rows): leave out a grid still running")
    args = ap.parse_args()
    from neurocode.io import write_text
    folders = [Path(r) for r in args.results]
    m = pd.concat([pd.read_csv(f / "metrics.csv") for f in folders], ignore_index=True)
    spec_df = pd.concat([pd.read_csv(f / "spectra.csv") for f in folders], ignore_index=True)
    tau_df = pd.concat([pd.read_csv(f / "timescales.csv") for f in folders], ignore_index=True)
    cfgs = [json.loads((f / "config.json").read_text()) for f in folders]
    if args.sparsities:
        keep = [0.0, *args.sparsities]
        m, spec_df, tau_df = (d[d["target_sparsity"].round(6).isin(keep)] for d in (m, spec_df, tau_df))
    figs = ROOT / "docs" / "figures"
    figures(m, spec_df, tau_df, figs)
    tab, pair, costs = summary(m), paired(m), cost(m)
    write_text(figs / "lnp_table.csv", tab.to_csv(index=False))
    write_text(figs / "lnp_paired.csv", pair.to_csv(index=False))
    write_text(figs / "lnp_cost.csv", costs.to_csv(index=False))
    doc = ROOT / "docs" / "lyapunov.md"
    text = doc.read_text()
    text = replace_block(text, "lnp-table", header(cfgs) + markdown_table(tab))
    text = replace_block(text, "lnp-paired", markdown_table(pair))
    text = replace_block(text, "lnp-cost", markdown_table(costs))
    text = replace_block(text, "lnp-verdict", "Computed from the table by `make_docs.py`:\n\n" + verdict(m))
    if args.operating_point:
        op = operating_point(args.operating_point)
        write_text(figs / "lnp_operating_point.csv", op.to_csv(index=False))
        text = replace_block(text, "lnp-operating-point", markdown_table(op))
    if args.ablation:
        ab = ablation(args.ablation)
        write_text(figs / "lnp_ablation.csv", ab.to_csv(index=False))
        text = replace_block(text, "lnp-ablation", markdown_table(ab))
    write_text(doc, text)
    print(tab.to_string(), pair.to_string(), costs.to_string(), verdict(m), sep="\n\n")


if __name__ == "__main__":
    main()
