"""Training epoch time of rank coding vs full BPTT on the same LSTM (temporal MNIST-5k).

Both models start from the same weights and see the same batches; the RC model is first
trained briefly with RC so that it decides early (an untrained network never crosses and
RC then costs as much as full BPTT). Prints the per-epoch times and their ratio.

    .venv/bin/python bench/rank_coding.py [--warm 3] [--n-train 2000]
"""

import argparse
import copy
import time

import torch

from neurocode.cli.rank_coding import batches, load_task
from neurocode.objectives.rank_coding import train_epoch
from neurocode.surrogate.rnn import LSTMClassifier


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warm", type=int, default=3, help="RC epochs before timing")
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--theta", type=float, default=0.95)
    args = ap.parse_args()
    torch.manual_seed(0)
    tr, _, n_in, n_classes, _ = load_task("mnist", n_train=args.n_train)
    net = LSTMClassifier(n_in, n_classes, 125)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(args.warm):
        w = train_epoch(net, opt, batches(tr, 64, True), mode="rc", theta=args.theta)
    print(f"after {args.warm} RC warm-up epochs: example-steps computed {w['steps_computed_frac']:.3f}")
    times = {}
    for mode in ("full", "rc"):
        m = copy.deepcopy(net)
        o = torch.optim.Adam(m.parameters(), 1e-3)
        gen = torch.Generator().manual_seed(1)
        t = time.perf_counter()
        r = train_epoch(m, o, batches(tr, 64, True, gen), mode=mode, theta=args.theta)
        times[mode] = time.perf_counter() - t
        print(f"{mode:4s}: epoch {times[mode]:.2f} s, example-steps computed {r['steps_computed_frac']:.3f}")
    print(f"RC / full-BPTT epoch time: {times['rc'] / times['full']:.3f}")


if __name__ == "__main__":
    main()
