"""Operating point of the dense networks of the LNP study, chosen without a task score.

The dense HRSNN of the first study fired at ~125 Hz (saturated), so pruning "helped" simply
by lowering rates. This script sweeps the recurrent weight scale ``w_exc`` and the input
gain ``in_gain`` of the dense HRSNN and CHRSNN under the keyword input (training clips only,
no labels: 8 streams of 8 clips, 2 s each) and reports per setting the mean rate (Hz), the
median coefficient of variation of the inter-spike intervals (CV, irregularity) and the
synchrony ``chi`` (std of the population count over the mean std of single-neuron counts,
5 ms bins; 1 for full synchrony, ~0 asynchronous). Rule (task-free): among the settings whose
dense networks are asynchronous irregular (rate 5-40 Hz, CV >= 0.8, chi <= 0.3) for every
network kind and seed, take the strongest recurrence, then the strongest input. Writes
``DIR/operating_point.csv``::

    nice -n 5 .venv/bin/python studies/lnp/operating_point.py --out results/lnp/full
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

GRID = {"w_exc": [0.025e-9, 0.05e-9, 0.075e-9, 0.1e-9, 0.15e-9], "in_gain": [0.02e-9, 0.04e-9]}
AI = {"rate_hz": (5.0, 40.0), "cv_isi": 0.8, "chi": 0.3}


def irregularity(spikes):
    """Median CV of the inter-spike intervals over (stream, neuron) trains with >= 5 spikes.

    ``spikes``: (T, batch, n) counts per step (0/1)."""
    T, batch, n = spikes.shape
    train, t = np.nonzero(spikes.reshape(T, batch * n).T)            # sorted by train, then time
    same = train[1:] == train[:-1]
    isi, owner = np.diff(t)[same].astype(float), train[1:][same]
    count = np.bincount(owner, minlength=batch * n)
    mean = np.bincount(owner, isi, minlength=batch * n) / np.maximum(count, 1)
    var = np.bincount(owner, isi ** 2, minlength=batch * n) / np.maximum(count, 1) - mean ** 2
    ok = count >= 4
    return float(np.median(np.sqrt(np.maximum(var[ok], 0)) / mean[ok])) if ok.any() else float("nan")


def synchrony(spikes, bin_steps=5):
    """``chi``: std of the population-mean count over the rms std of single-neuron counts."""
    T = spikes.shape[0] // bin_steps * bin_steps
    c = spikes[:T].reshape(T // bin_steps, bin_steps, *spikes.shape[1:]).sum(1)
    return float(np.sqrt(c.mean(2).var(0).mean() / max(c.var(0).mean(), 1e-12)))


def measure(spec, frames, cfg, seed, t_skip=100):
    """Rate (Hz), CV of ISIs and chi of ``spec`` driven by ``frames`` (T, batch, d) at one step per frame."""
    from tasks import input_weights, run_reservoir
    spikes, _ = run_reservoir(spec, frames, input_weights(cfg["n_dense"], frames.shape[2], seed), 1, cfg, seed)
    spikes = spikes[t_skip:]
    return {"rate_hz": float(spikes.mean() / spec.dt), "cv_isi": irregularity(spikes), "chi": synchrony(spikes)}


def keyword_stream(data, cfg, streams=8, clips=8):
    """Training clips concatenated into ``streams`` streams, each frame repeated per step: (T, streams, d)."""
    x = data[0][: streams * clips]
    x = x.reshape(streams, clips * x.shape[1], x.shape[2]).transpose(1, 0, 2)
    return np.repeat(x, cfg["steps_per_frame"], axis=0)


def is_ai(row):
    return AI["rate_hz"][0] <= row["rate_hz"] <= AI["rate_hz"][1] and row["cv_isi"] >= AI["cv_isi"] \
        and row["chi"] <= AI["chi"]


def choose(table):
    """The AI setting (for every kind and seed) of strongest recurrence, then strongest input."""
    ok = table.assign(ai=table.apply(is_ai, axis=1)).groupby(["w_exc", "in_gain"])["ai"].all()
    ok = ok[ok]
    if ok.empty:
        raise RuntimeError("no setting of the grid is asynchronous irregular for every network and seed")
    return dict(zip(("w_exc", "in_gain"), max(ok.index)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="results folder (keywords.npz is cached there)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args()
    import pandas as pd
    import torch

    from neurocode.io import write_text
    from run import COMMON, KINDS, PRESETS, build
    from tasks import keyword_data
    torch.set_num_threads(1)
    out = Path(args.out)
    base = {**COMMON, **PRESETS["full"]}
    frames = keyword_stream(keyword_data(base, out / "keywords.npz"), base)
    rows = []
    for kind, seed, w, g in itertools.product(KINDS, args.seeds, GRID["w_exc"], GRID["in_gain"]):
        cfg = {**base, "w_exc": w, "in_gain": g}
        rows.append({"network": kind, "seed": seed, "w_exc": w, "in_gain": g,
                     **measure(build(cfg, seed, kind), frames, cfg, seed)})
        print(f"{kind} seed {seed}: w_exc {1e9 * w:.3f} nA, in_gain {1e9 * g:.2f} nA: {rows[-1]['rate_hz']:.1f} Hz, "
              f"CV {rows[-1]['cv_isi']:.2f}, chi {rows[-1]['chi']:.3f}", flush=True)
    table = pd.DataFrame(rows)
    write_text(out / "operating_point.csv", table.to_csv(index=False))
    print("chosen:", choose(table), "(the study's COMMON:", {k: base[k] for k in ("w_exc", "in_gain")}, ")")


if __name__ == "__main__":
    main()
