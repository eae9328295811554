"""Regenerate the SSR docs figures (docs/figures/ssr_*) and the tables in docs/ssr.md.

    python studies/ssr/make_docs.py --sweep RUN_DIR [--runs RUN ...]

``--sweep`` is an output folder of ``studies/ssr/run.py`` (its ``sweep.csv`` and run
folders): the trade-off and raster figures are redrawn from them and, for a full (not
``--quick``) sweep, the per-epoch comparison against the no-SSR run. ``--runs`` are
``neurocode train`` run folders (e.g. the full Fashion-MNIST runs) whose last epoch goes into
the results table. Tables are written between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``
markers in ``docs/ssr.md``.
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
    table = pd.read_csv(sweep_dir / "sweep.csv")
    layer_cols = sorted(c for c in table.columns if c.startswith("spikes_layer"))
    out = table[["regulariser", "gamma", "accuracy", "spikes_per_hidden_neuron"] + layer_cols].copy()
    base = out.loc[out["regulariser"] == "none", "spikes_per_hidden_neuron"]
    if len(base):
        out["spikes vs no SSR"] = out["spikes_per_hidden_neuron"] / float(base.iloc[0])
    return out


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
    args = parser.parse_args(argv)
    import run as study

    table = pd.read_csv(args.sweep / "sweep.csv")
    FIGS.mkdir(parents=True, exist_ok=True)
    overrides = study.QUICK["overrides"] if args.quick else {}
    tmp = FIGS / "_ssr"
    tmp.mkdir(exist_ok=True)
    study.figures(tmp, table, args.config, overrides)
    for path in tmp.iterdir():
        path.replace(FIGS / f"ssr_{path.name}")
    tmp.rmdir()
    text = DOC.read_text()
    text = replace_block(text, "ssr-sweep", _markdown(sweep_table(args.sweep)))
    if not args.quick:
        text = replace_block(text, "ssr-epochs", _markdown(epochs_table(args.sweep)))
    if args.runs:
        text = replace_block(text, "ssr-runs", _markdown(runs_table(args.runs)))
    from neurocode.io import write_text
    write_text(DOC, text)
    print(f"updated {DOC} and {FIGS}/ssr_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
