"""The ReLU twin of the TTFS network: same sizes, data and optimiser recipe, no spikes.

Trains on the config's images (its subsets included). An anchor for the TTFS accuracy
(Stanojevic et al. 2024 show a well-parametrised TTFS network can match its ReLU twin).
Prints train and test accuracy per epoch and writes them to ``--out`` as JSON.

    python studies/ssr/relu_baseline.py --config studies/ssr/fmnist_784-400-10.toml --out relu.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from neurocode.io import write_json
from neurocode.training.ttfs import config_images, load_config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path(__file__).resolve().parent / "fmnist_784-400-10.toml")
    parser.add_argument("--out", type=Path, required=True, help="JSON file of per-epoch accuracies")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    torch.manual_seed(cfg["seed"])
    (x, y), (xt, yt) = (map(torch.from_numpy, config_images(cfg, split)) for split in ("train", "test"))
    sizes, train = cfg["network"]["sizes"], cfg["train"]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.Adam(net.parameters(), train["lr"])
    schedule = torch.optim.lr_scheduler.ExponentialLR(opt, train["lr_decay"])
    history = []
    for epoch in range(train["epochs"]):
        order = torch.randperm(len(x))
        for s in range(0, len(x), train["batch_size"]):
            idx = order[s:s + train["batch_size"]]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
        schedule.step()
        with torch.no_grad():
            row = {"epoch": epoch + 1, "train_accuracy": float((net(x).argmax(1) == y).float().mean()),
                   "accuracy": float((net(xt).argmax(1) == yt).float().mean())}
        history.append(row)
        print(row, flush=True)
    write_json(args.out, history)
    return 0


if __name__ == "__main__":
    sys.exit(main())
