"""Regenerate the SSR docs figures (docs/figures/ssr_*) and the tables in docs/ssr.md.

    python studies/ssr/make_docs.py --sweep RUN_DIR [--runs RUN ...]
    python studies/ssr/make_docs.py --prefix ssr-slope --sweep RUN_DIR --config CONFIG \
        --relu-accuracy 0.895 --validations RUN_DIR/runs/*/validation-cpp_standalone.json

``--sweep`` is an output folder of ``studies/ssr/run.py`` (its ``sweep.csv`` and run
folders): the trade-off and raster figures are redrawn from them and, for a full (not
``--quick``) sweep, the per-epoch comparison against the no-SSR run. ``--runs`` are
``neurocode train`` run folders (e.g. the full Fashion-MNIST runs) whose last epoch goes into
the results table. Tables are written between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``
markers in ``docs/ssr.md``; ``--prefix`` names the blocks (``PREFIX-sweep``, ``PREFIX-epochs``,
``PREFIX-targets``, ``PREFIX-validation``) and the figures (``docs/figures/PREFIX_*``), so a second
study (the constant-slope neuron) has its own. ``--relu-accuracy`` adds the targets table: for each
method, the run with the fewest spikes within ``--max-loss`` pp of the no-SSR run, against the
ReLU twin's accuracy and the ``--max-ratio`` spike target. ``--validations`` are
``neurocode validate`` reports (JSON) of runs of the sweep: Brian2 against torch.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import pandas as pd

from neurocode.reporting import markdown_table, replace_block

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ssr.md"
FIGS = ROOT / "docs" / "figures"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _markdown(table):
    """A Markdown table, floats to 4 significant digits."""
    return markdown_table(table.map(lambda v: f"{v:.4g}" if isinstance(v, float) else v))


def sweep_table(sweep_dir):
    from neurocode.figures.ssr import method_label

    table = pd.read_csv(sweep_dir / "sweep.csv")
    layer_cols = sorted(c for c in table.columns if c.startswith("spikes_layer"))
    out = table[["regulariser", "gamma", "accuracy", "spikes_per_hidden_neuron"] + layer_cols].copy()
    if "v_hat" in table and table["v_hat"].notna().any():
        out.insert(0, "method", [method_label(r, v) for r, v in zip(table["regulariser"], table["v_hat"])])
        out = out.drop(columns="regulariser")
    base = table.loc[table["regulariser"] == "none", "spikes_per_hidden_neuron"]
    if len(base):
        out["spikes vs no SSR"] = out["spikes_per_hidden_neuron"] / float(base.iloc[0])
    return out


def targets_table(sweep_dir, relu_accuracy, max_loss_pp=0.5, max_ratio=0.4):
    """Per method, the sparsest run within ``max_loss_pp`` of no SSR, against the targets."""
    from neurocode.figures.ssr import method_label

    table = pd.read_csv(sweep_dir / "sweep.csv")
    v_hats = table["v_hat"] if "v_hat" in table else [None] * len(table)
    table["method"] = [method_label(r, v) for r, v in zip(table["regulariser"], v_hats)]
    base = table[table["regulariser"] == "none"].iloc[0]
    rows = [{"method": "no SSR", "gamma": 0.0, "accuracy": base["accuracy"],
             "Δ accuracy (pp)": f"{100 * (base['accuracy'] - relu_accuracy):+.2f} vs ReLU twin",
             "spikes_per_hidden_neuron": base["spikes_per_hidden_neuron"], "spikes vs no SSR": 1.0,
             "target": f"≥ ReLU twin ({100 * relu_accuracy:.2f} %)",
             "met": "yes" if base["accuracy"] >= relu_accuracy else "no"}]
    for method, runs in table[table["regulariser"] != "none"].groupby("method", sort=False):
        runs = runs.assign(loss_pp=100 * (base["accuracy"] - runs["accuracy"]))
        ok = runs[runs["loss_pp"] <= max_loss_pp]
        best = (ok if len(ok) else runs).sort_values("spikes_per_hidden_neuron").iloc[0]
        ratio = best["spikes_per_hidden_neuron"] / base["spikes_per_hidden_neuron"]
        rows.append({"method": method, "gamma": best["gamma"], "accuracy": best["accuracy"],
                     "Δ accuracy (pp)": f"{-best['loss_pp']:+.2f} vs no SSR",
                     "spikes_per_hidden_neuron": best["spikes_per_hidden_neuron"], "spikes vs no SSR": ratio,
                     "target": f"≤ {max_ratio:g} × at ≥ −{max_loss_pp:g} pp",
                     "met": "yes" if best["loss_pp"] <= max_loss_pp and ratio <= max_ratio else "no"})
    return pd.DataFrame(rows)


def validation_table(reports):
    """One row per ``neurocode validate`` report: Brian2 against the exact layer."""
    rows = []
    for path in reports:
        r = json.loads(Path(path).read_text())
        hidden = [k for k in r["layers"] if k != "out"]
        rows.append({"run": Path(r["run"]).parent.name, "samples": r["n_samples"], "dt (ms)": 1e3 * r["dt"],
                     "accuracy Brian2": r["accuracy_brian2"], "accuracy torch": r["accuracy_torch"],
                     "agreement": r["agreement"],
                     "hidden spikes/neuron Brian2": sum(r["layers"][k]["spikes_per_neuron_brian2"] for k in hidden)
                     / max(1, len(hidden)),
                     "hidden spike-time RMSE (dt)": max(r["layers"][k]["spike_time"]["rmse_dt"] for k in hidden)})
    return pd.DataFrame(rows)


def epochs_table(sweep_dir):
    """Per epoch, each run of the sweep against the no-SSR run at the same epoch.

    Cells read ``accuracy %, spikes per hidden neuron`` and, for regularised runs,
    ``(accuracy change in pp, spikes ratio)``.
    """
    table = pd.read_csv(sweep_dir / "sweep.csv")
    table = table.assign(first=table["regulariser"] != "none").sort_values(["first", "regulariser", "gamma"])
    histories = {}
    for _, row in table.iterrows():
        label = "no SSR" if row["regulariser"] == "none" else f"{row['regulariser']} {row['gamma']:g}"
        histories[label] = {r["epoch"]: r for r in json.loads((Path(row["run"]) / "metrics.json").read_text())}
    base = histories.get("no SSR", {})
    rows = []
    for epoch in sorted(base):
        cells = {"epoch": epoch}
        b = base[epoch]
        for label, history in histories.items():
            r = history.get(epoch)
            if r is None:
                continue
            cell = f"{100 * r['accuracy']:.1f} %, {r['spikes_per_hidden_neuron']:.3f}"
            if label != "no SSR":
                cell += (f" ({100 * (r['accuracy'] - b['accuracy']):+.1f} pp, "
                         f"{r['spikes_per_hidden_neuron'] / b['spikes_per_hidden_neuron']:.2f} x)")
            cells[label] = cell
        rows.append(cells)
    return pd.DataFrame(rows)


def runs_table(run_dirs):
    rows = []
    for run in run_dirs:
        run = Path(run)
        history = json.loads((run / "metrics.json").read_text())
        with open(run / "config.toml", "rb") as fh:
            cfg = tomllib.load(fh)
        last = history[-1]
        layers = sorted(k for k in last if k.startswith("spikes_layer"))
        rows.append({"run": run.name, "data": cfg["data"]["name"],
                     "network": "-".join(map(str, cfg["network"]["sizes"])),
                     "regulariser": cfg["loss"]["regulariser"], "gamma": float(cfg["loss"]["gamma"]),
                     "epochs": int(last["epoch"]), "accuracy": last["accuracy"],
                     "spikes_per_hidden_neuron": last["spikes_per_hidden_neuron"],
                     "per layer": " / ".join(f"{last[k]:.3f}" for k in layers)})
    return pd.DataFrame(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweep", type=Path, required=True, help="output folder of studies/ssr/run.py")
    parser.add_argument("--runs", type=Path, nargs="*", default=[], help="neurocode train run folders")
    parser.add_argument("--config", type=Path, default=Path(__file__).resolve().parent / "fmnist_784-400-10.toml")
    parser.add_argument("--quick", action="store_true", help="the sweep was made with --quick")
    parser.add_argument("--prefix", default="ssr", help="names of the docs blocks and figures (default: ssr)")
    parser.add_argument("--no-epochs", action="store_true", help="leave out the per-epoch table")
    parser.add_argument("--relu-accuracy", type=float, help="the ReLU twin's test accuracy: adds the targets table")
    parser.add_argument("--max-loss", type=float, default=0.5, help="accuracy loss allowed, pp (default: 0.5)")
    parser.add_argument("--max-ratio", type=float, default=0.4, help="spike ratio to reach (default: 0.4)")
    parser.add_argument("--validations", type=Path, nargs="*", default=[], help="neurocode validate reports (JSON)")
    args = parser.parse_args(argv)
    import run as study

    table = pd.read_csv(args.sweep / "sweep.csv")
    FIGS.mkdir(parents=True, exist_ok=True)
    overrides = study.QUICK["overrides"] if args.quick else {}
    tmp = FIGS / f"_{args.prefix}"
    tmp.mkdir(exist_ok=True)
    study.figures(tmp, table, args.config, overrides)
    stem = args.prefix.replace("-", "_")
    for path in tmp.iterdir():
        path.replace(FIGS / f"{stem}_{path.name}")
    tmp.rmdir()
    text = DOC.read_text()
    text = replace_block(text, f"{args.prefix}-sweep", _markdown(sweep_table(args.sweep)))
    if not (args.quick or args.no_epochs):
        text = replace_block(text, f"{args.prefix}-epochs", _markdown(epochs_table(args.sweep)))
    if args.relu_accuracy is not None:
        targets = targets_table(args.sweep, args.relu_accuracy, args.max_loss, args.max_ratio)
        text = replace_block(text, f"{args.prefix}-targets", _markdown(targets))
    if args.validations:
        text = replace_block(text, f"{args.prefix}-validation", _markdown(validation_table(args.validations)))
    if args.runs:
        text = replace_block(text, f"{args.prefix}-runs", _markdown(runs_table(args.runs)))
    from neurocode.io import write_text
    write_text(DOC, text)
    print(f"updated {DOC} and {FIGS}/{stem}_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
