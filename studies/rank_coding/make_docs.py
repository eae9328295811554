"""Turn the round-2 rank-coding runs into the tables and figure of docs/rank-coding.md.

    python studies/rank_coding/make_docs.py [--runs results/rank_coding/round2]

Two stages. If the run folder exists, every run's ``summary.json`` (written by
:func:`neurocode.training.rank_coding.train_run` through ``studies/rank_coding/run.py
--preset round2``) is condensed into ``studies/rank_coding/round2_summary.json`` (committed:
configuration, results, read-out curve, per-epoch test metrics). The docs are then built from
that file alone, so they can be regenerated without the run folders:

* tables between the ``round2-*`` markers of ``docs/rank-coding.md``: targets beside our numbers
  and the paper's / the authors' sample's; the toy tasks (accuracy, decision step, spotting
  score); RC against the non-RC front at the RC runs' mean decision steps; Fashion-MNIST;
  the spiking networks;
* ``docs/figures/rank_coding_round2.{png,csv}``: accuracy against mean decision step, all
  read-outs and the fronts.

Decision steps in the tables are 1-based (1 = after the first input step).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from neurocode.io import write_json, write_text
from neurocode.objectives.rank_coding import front_at, speed_accuracy_front
from neurocode.reporting import markdown_table, replace_block

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "rank-coding.md"
SUMMARY = ROOT / "studies" / "rank_coding" / "round2_summary.json"
FIGURE = ROOT / "docs" / "figures" / "rank_coding_round2"
#: Numbers to stand beside ours.
PAPER_MNIST = 99.19          # % temporally encoded full MNIST after the first input step (the paper)
SAMPLE_SPOTTING = 100.0      # % last-step accuracy of the authors' sample's last-step-trained LSTM
TARGET_SPOTTING = 99.0       # % the goal for our non-RC LSTM on spotting
KEEP = ("task", "model", "mode", "theta", "beta", "epochs", "lr", "batch_size", "hidden", "seed", "data",
        "epoch_sequences", "n_train", "steps", "accuracy", "mean_decision_step", "last_step_accuracy",
        "steps_saved_frac", "score", "score_costs", "epoch_seconds", "card", "last_step")
CURVE = ("theta", "accuracy", "mean_decision_step", "score", "premature_frac", "wrong_frac", "mean_delay")
HISTORY = ("epoch", "train_accuracy", "train_steps_computed_frac", "accuracy", "mean_decision_step", "score",
           "wall_s")


def condense(runs):
    """The runs' ``summary.json`` files as a list of compact dicts (sorted by folder name)."""
    out = []
    for path in sorted(Path(runs).glob("*/summary.json")):
        m = json.loads(path.read_text())
        row = {"run": path.parent.name, **{k: m[k] for k in KEEP if k in m}}
        row["curve"] = [{k: c[k] for k in CURVE if k in c} for c in m["curve"]]
        row["history"] = [{k: h[k] for k in HISTORY if k in h} for h in m["history"]]
        out.append(row)
    return out


def _pct(v):
    return None if v is None or not np.isfinite(v) else round(100 * v, 2)


def _num(v, nd=2):
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def _label(r):
    return "RC" if r["mode"] == "rc" else "non-RC"


def _sequences(r):
    return r["epochs"] * r["epoch_sequences"] if r.get("data") == "fresh" else None


def lstm_table(runs, task):
    rows = []
    for r in runs:
        if r["task"] != task or r["model"] != "lstm":
            continue
        rows.append({"training": _label(r), "θ": r["theta"], "β": r["beta"], "epochs": r["epochs"],
                     "sequences": _sequences(r),
                     "last-step accuracy (%)": _pct(r.get("last_step_accuracy")),
                     "last-step score": _num(r.get("last_step", {}).get("score", np.nan), 4),
                     "early-exit accuracy (%)": _pct(r["accuracy"]),
                     "mean decision step": _num(r["mean_decision_step"] + 1),
                     "score": _num(r.get("score"), 4),
                     "premature (%)": _pct(next(c for c in r["curve"] if c["theta"] == r["theta"])
                                           .get("premature_frac")),
                     "epoch time (s)": _num(r["epoch_seconds"], 0)})
    df = pd.DataFrame(rows)
    if len(df):
        df = df.sort_values(["training", "β", "θ"], ascending=[False, True, True])
        df = df.dropna(axis=1, how="all")
    return df


def readouts(runs):
    """Every LSTM read-out as a row: task, training, train θ, β, read-out θ, accuracy, 1-based step,
    score. The read-out of the whole sequence (no early exit) has read-out θ 1.0 (never crossed)."""
    rows = []
    for r in runs:
        if r["model"] != "lstm":
            continue
        last = [{**r["last_step"], "theta": 1.0}] if "last_step" in r else []
        for c in r["curve"] + last:
            rows.append({"task": r["task"], "model": "lstm", "training": _label(r), "train_theta": r["theta"],
                         "beta": r["beta"], "readout_theta": c["theta"], "accuracy": c["accuracy"],
                         "mean_decision_step": c["mean_decision_step"] + 1, "score": c.get("score", np.nan),
                         "steps": r["steps"]})
    return pd.DataFrame(rows)


def matched(points, task):
    """The RC front's read-outs against the non-RC front read at the same mean decision step.

    Every RC read-out on the RC front (the upper envelope of all RC networks' read-outs) is a
    row; the non-RC front is linear between its read-outs, flat after the last and not
    extrapolated before its fastest one.
    """
    d = points[points["task"] == task]
    rc, non = d[d["training"] == "RC"], d[d["training"] == "non-RC"]
    if not len(rc) or not len(non):
        return pd.DataFrame()
    front = speed_accuracy_front(non["mean_decision_step"], non["accuracy"])
    steps, _ = speed_accuracy_front(rc["mean_decision_step"], rc["accuracy"])
    rows = []
    for step in steps:
        p = rc[rc["mean_decision_step"] == step].sort_values("accuracy").iloc[-1]
        other = float(front_at(front, [step])[0])
        rows.append({"RC θ (train / read-out)": f"{p['train_theta']} / {p['readout_theta']}", "β": p["beta"],
                     "mean decision step": _num(step), "RC accuracy (%)": _pct(p["accuracy"]),
                     "non-RC front (%)": _pct(other),
                     "RC − non-RC (points)": _num(100 * (p["accuracy"] - other))})
    return pd.DataFrame(rows)


def best_scores(points, task):
    """The best spotting score of each scheme over all its read-outs, and where it is reached."""
    d = points[(points["task"] == task)].dropna(subset=["score"])
    rows = []
    for training, g in d.groupby("training", sort=False):
        b = g.loc[g["score"].idxmax()]
        rows.append({"training": training, "best score": _num(b["score"], 4), "train θ": b["train_theta"],
                     "β": b["beta"], "read-out θ": b["readout_theta"], "accuracy (%)": _pct(b["accuracy"]),
                     "mean decision step": _num(b["mean_decision_step"])})
    return pd.DataFrame(rows)


def spiking_table(runs):
    rows = []
    for r in runs:
        if r["model"] != "spiking":
            continue
        rows.append({"task": r["task"], "training": _label(r), "hidden": r["hidden"], "card": r.get("card"),
                     "epochs": r["epochs"], "accuracy (%)": _pct(r["accuracy"]),
                     "mean first-spike step": _num(r["mean_decision_step"] + 1), "steps": r["steps"],
                     "last-step accuracy (%)": _pct(r.get("last_step_accuracy")),
                     "epoch time (s)": _num(r["epoch_seconds"], 0)})
    return pd.DataFrame(rows)


def _find(runs, **kw):
    return next((r for r in runs if all(r.get(k) == v for k, v in kw.items())), None)


def targets(runs):
    """The issue's targets with the paper's / the sample's numbers beside ours."""
    rows = []
    spot = _find(runs, task="spotting", model="lstm", mode="full")
    if spot:
        ours = 100 * spot["last_step_accuracy"]
        rows.append({"target": f"spotting, non-RC LSTM last-step accuracy ≥ {TARGET_SPOTTING:g} %",
                     "paper / sample": f"sample: {SAMPLE_SPOTTING:.1f} % (1,000,000 sequences)",
                     "ours": f"{ours:.2f} % ({_sequences(spot):,} sequences)",
                     "met": "yes" if ours >= TARGET_SPOTTING else "no"})
    best = best_scores(readouts(runs), "spotting") if spot else pd.DataFrame()
    if len(best) == 2:
        b = best.set_index("training")["best score"]
        rows.append({"target": "spotting score: RC against non-RC (best over networks and read-outs)",
                     "paper / sample": "the paper's score could not be read here",
                     "ours": f"RC {b['RC']:.3f}, non-RC {b['non-RC']:.3f}",
                     "met": "yes" if b["RC"] > b["non-RC"] else "no"})
    fm = [r for r in runs if r["task"] == "fashion_mnist" and r["model"] == "lstm"]
    for r in fm:
        rows.append({"target": f"temporal Fashion-MNIST (60,000 train), LSTM {_label(r)} θ = {r['theta']}",
                     "paper / sample": f"paper: {PAPER_MNIST} % on temporal MNIST (another data set)",
                     "ours": f"{100 * r['accuracy']:.2f} % at step {r['mean_decision_step'] + 1:.2f} of {r['steps']}"
                             f" ({r['epochs']} epochs)",
                     "met": "n/a"})
    for r in runs:
        if r["model"] == "spiking":
            rows.append({"target": f"spiking RC network ≥ 256 hidden, {r['task']} ({_label(r)})",
                         "paper / sample": "—",
                         "ours": f"{r['hidden']} hidden: {100 * r['accuracy']:.2f} % at first-spike step "
                                 f"{r['mean_decision_step'] + 1:.2f} of {r['steps']}",
                         "met": "yes" if r["hidden"] >= 256 else "no"})
    return pd.DataFrame(rows)


def _md(df, empty="(no runs yet)"):
    return markdown_table(df) if len(df) else empty


def write_docs(runs):
    points = readouts(runs)
    text = DOC.read_text()
    blocks = {"round2-targets": _md(targets(runs)),
              "round2-spotting": _md(lstm_table(runs, "spotting")),
              "round2-spotting-matched": _md(matched(points, "spotting") if len(points) else pd.DataFrame()),
              "round2-spotting-best": _md(best_scores(points, "spotting") if len(points) else pd.DataFrame()),
              "round2-noise": _md(lstm_table(runs, "noise")),
              "round2-noise-matched": _md(matched(points, "noise") if len(points) else pd.DataFrame()),
              "round2-fashion": _md(lstm_table(runs, "fashion_mnist")),
              "round2-fashion-matched": _md(matched(points, "fashion_mnist") if len(points) else pd.DataFrame()),
              "round2-spiking": _md(spiking_table(runs))}
    for name, body in blocks.items():
        text = replace_block(text, name, body)
    write_text(DOC, text)
    if len(points):
        from neurocode.figures.rank_coding import speed_accuracy
        fronts = []
        for (task, training), d in points.groupby(["task", "training"], sort=False):
            s, a = speed_accuracy_front(d["mean_decision_step"], d["accuracy"])
            fronts += [{"task": task, "model": "lstm", "training": training, "mean_decision_step": x,
                        "accuracy": y} for x, y in zip(s, a)]
        speed_accuracy(points, pd.DataFrame(fronts), FIGURE)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, default=ROOT / "results" / "rank_coding" / "round2",
                    help="run folders of `studies/rank_coding/run.py --preset round2`")
    args = ap.parse_args()
    if args.runs.is_dir():
        write_json(SUMMARY, condense(args.runs))
    if not SUMMARY.is_file():
        ap.error(f"neither {args.runs} nor {SUMMARY} exists: run studies/rank_coding/run.py --preset round2")
    write_docs(json.loads(SUMMARY.read_text()))


if __name__ == "__main__":
    main()
