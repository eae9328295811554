"""Rank-coding study: speed-accuracy curves of RC vs non-RC early inference, and a table.

For every task and model, networks are trained with RC (loss at the first crossing) for
each (theta, beta) in the sweep, and once with the loss at the last step (non-RC); every
trained LSTM is read out with early exit at the thresholds in ``READOUT_THETAS`` (the
spiking model decides at its first output spike). Jobs run on a Dask LocalCluster.
Writes ``docs/figures/rank_coding_speed_accuracy.{png,csv}``,
``docs/figures/rank_coding_table.csv`` and the table section of ``docs/rank-coding.md``.

    .venv/bin/python studies/rank_coding/run.py --preset quick   # minutes on 2 cores
    .venv/bin/python studies/rank_coding/run.py --preset full    # hours on 2 cores
"""

import argparse
import logging
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
#: Choices that the paper does not state (or that could not be read), named here.
PRESETS = {
    "quick": dict(tasks=["spotting", "noise", "mnist", "keywords"], models=["lstm"],
                  thetas=[0.9], betas=[0.0], epochs=4, hidden=64, n_train=2000, lr=3e-3),
    "full": dict(tasks=["spotting", "noise", "mnist", "fashion_mnist", "keywords"],
                 models=["lstm", "spiking"], thetas=[0.8, 0.9, 0.95, 0.99], betas=[0.0, 0.1, 0.3],
                 epochs=30, hidden=125, n_train=None, lr=1e-3),
}
READOUT_THETAS = [0.6, 0.7, 0.8, 0.9, 0.95, 0.99]


def markdown(df):
    """A pipe table of ``df`` (no extra dependency)."""
    rows = [list(df.columns)] + df.astype(str).values.tolist()
    lines = ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join([lines[0], "|" + "---|" * len(df.columns)] + lines[1:])


def job(task, model, mode, theta, beta, cfg):
    from neurocode.cli.rank_coding import train_run
    m = train_run(task, model, mode, theta, beta, cfg["epochs"], cfg["lr"], 64, cfg["hidden"],
                  n_train=cfg["n_train"], thetas=READOUT_THETAS if model == "lstm" else None)
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    cfg = PRESETS[args.preset]
    from dask.distributed import Client, LocalCluster
    jobs = []
    for task in cfg["tasks"]:
        for model in cfg["models"]:
            jobs.append((task, model, "full", 0.95 if model == "lstm" else 0.5, 0.0))
            for theta in cfg["thetas"]:
                for beta in cfg["betas"]:
                    jobs.append((task, model, "rc", theta, beta))
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True) as cluster, \
            Client(cluster) as client:
        futures = [client.submit(job, *j, cfg, pure=False) for j in jobs]
        results = client.gather(futures)
    curves, table = [], []
    for m in results:
        training = "RC" if m["mode"] == "rc" else "non-RC"
        for c in m["curve"]:
            curves.append({"task": m["task"], "model": m["model"], "training": training,
                           "train_theta": m["theta"], "beta": m["beta"], "readout_theta": c["theta"],
                           "accuracy": c["accuracy"], "mean_decision_step": c["mean_decision_step"] + 1})
        table.append({"task": m["task"], "model": m["model"], "training": training,
                      "theta": m["theta"], "beta": m["beta"],
                      "accuracy (%)": round(100 * m["accuracy"], 2),
                      "mean decision step": round(m["mean_decision_step"] + 1, 2),
                      "steps": m["steps"], "epoch time (s)": round(m["epoch_seconds"], 2)})
    from neurocode.figures.rank_coding import speed_accuracy
    figs = ROOT / "docs" / "figures"
    df = pd.DataFrame(curves)
    # one point per (network, read-out threshold); curves follow the read-out threshold
    speed_accuracy(df, figs / "rank_coding_speed_accuracy")
    tab = pd.DataFrame(table)
    from neurocode.io import write_text
    write_text(figs / "rank_coding_table.csv", tab.to_csv(index=False))
    doc = ROOT / "docs" / "rank-coding.md"
    text = doc.read_text() if doc.exists() else ""
    start, end = "<!-- table:start -->", "<!-- table:end -->"
    block = f"{start}\nPreset `{args.preset}`: {cfg}\n\n{markdown(tab)}\n{end}"
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text += "\n" + block + "\n"
    write_text(doc, text)


if __name__ == "__main__":
    main()
