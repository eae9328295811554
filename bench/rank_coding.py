"""Training epoch time of rank coding vs full BPTT on the same LSTM (temporal MNIST-5k).

The LSTM must already decide early (an untrained network never crosses threshold, and RC
then costs as much as full BPTT): its weights are read from the rank-coding study's trained
MNIST-5k RC network when that run exists (``--weights``), otherwise it is first trained with
RC for ``--warm`` epochs (slow to reach early decisions). From those weights, one
epoch of full BPTT and one epoch of RC are timed on the same batches, interleaved
``--repeats`` times (the minimum of each is kept, so that load from other processes on a
shared machine biases neither). Prints the per-epoch times, the fraction of example-steps
each computed, and the ratio RC / full BPTT.

    .venv/bin/python bench/rank_coding.py [--weights PATH] [--n-train 1000] [--repeats 3]
"""

import argparse
import copy
import time
from pathlib import Path

import torch

from neurocode.training.rank_coding import batches, load_task
from neurocode.objectives.rank_coding import train_epoch
from neurocode.torch.classifiers import LSTMClassifier

STUDY_RUN = (Path(__file__).resolve().parents[1] / "results" / "rank_coding" / "paper"
             / "mnist-lstm-rc-th0.95-b0.0-do0.4" / "model.pt")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=str(STUDY_RUN),
                    help="trained LSTM state dict (784 inputs, 10 classes); if missing, warm up")
    ap.add_argument("--warm", type=int, default=6, help="RC epochs before timing (without --weights)")
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=125)
    ap.add_argument("--theta", type=float, default=0.95)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: fair on a shared machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tr, _, n_in, n_classes, _ = load_task("mnist", n_train=args.n_train)
    net = LSTMClassifier(n_in, n_classes, args.hidden)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    t0 = time.perf_counter()
    weights = Path(args.weights) if args.weights else None
    if weights is not None and weights.is_file():
        net.load_state_dict(torch.load(weights, map_location="cpu"))
        print(f"weights from {weights}", flush=True)
    for k in range(0 if weights is not None and weights.is_file() else args.warm):
        w = train_epoch(net, opt, batches(tr, 64, True), mode="rc", theta=args.theta)
        print(f"warm-up RC epoch {k + 1}/{args.warm}: accuracy {w['accuracy']:.3f}, "
              f"example-steps computed {w['steps_computed_frac']:.3f}", flush=True)
    print(f"warm-up {time.perf_counter() - t0:.1f} s", flush=True)
    times = {"full": [], "rc": []}
    fracs = {}
    for rep in range(args.repeats):
        for mode in ("full", "rc"):
            m = copy.deepcopy(net)
            o = torch.optim.Adam(m.parameters(), 1e-3)
            gen = torch.Generator().manual_seed(1)
            t = time.perf_counter()
            r = train_epoch(m, o, batches(tr, 64, True, gen), mode=mode, theta=args.theta)
            times[mode].append(time.perf_counter() - t)
            fracs[mode] = r["steps_computed_frac"]
            print(f"repeat {rep + 1}, {mode:4s}: epoch {times[mode][-1]:.2f} s, "
                  f"example-steps computed {fracs[mode]:.3f}", flush=True)
    full, rc = min(times["full"]), min(times["rc"])
    print(f"full BPTT epoch {full:.2f} s, RC epoch {rc:.2f} s (min of {args.repeats}; "
          f"RC computed {fracs['rc']:.3f} of the example-steps)", flush=True)
    print(f"RC / full-BPTT epoch time: {rc / full:.3f}", flush=True)


if __name__ == "__main__":
    main()
