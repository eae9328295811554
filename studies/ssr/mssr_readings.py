"""The two readings of M-SSR side by side: signed (area to the window's end) and rectified
(area above threshold only), each at the same strengths, against no SSR.

Each run is ``neurocode.training.ttfs.train_ttfs`` on ``--config`` with ``--epochs`` and
``loss.regulariser = "m_ssr"``, ``loss.mssr = signed | rectified``, ``loss.gamma = G``; runs
resume from their folders, so re-running after a kill finishes what is missing. Each
trained network is then measured on the test set: accuracy, spikes per hidden neuron, the
share of firing hidden neurons whose potential falls back below threshold before the
window's end (rectified area > signed area), the two areas per firing neuron, and the
summed inhibitory weight of the first layer.

Outputs in ``--out``: ``runs/<name>/`` (each run's folder) and ``readings.csv``; the table
is also logged as Markdown.

Examples::

    python studies/ssr/mssr_readings.py --out runs/mssr_readings                  # MNIST-5k, 4 epochs
    python studies/ssr/mssr_readings.py --out /tmp/r --networks studies/ssr/trained/*.npz --test-subset 2000
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
log = logging.getLogger("mssr-readings")


def readings(net, t_in, batch=500):
    """Fall-back share and areas of the first hidden layer of ``net`` on input times ``t_in``."""
    from neurocode.objectives.ssr import m_ssr, m_ssr_rectified

    fired = fell_back = 0
    signed = rectified = 0.0
    w, t_end = net.weights[0].detach().double(), net.windows[0]
    with torch.no_grad():
        for s in range(0, len(t_in), batch):
            t = t_in[s:s + batch].double()
            t_out = net.double()(t)[0]
            on = t_out < t_end
            a_signed = m_ssr(t, t_out, w, t_end, net.v_th)
            a_rect = m_ssr_rectified(t, w, t_end, net.v_th)
            fired += int(on.sum())
            fell_back += int((on & (a_rect > a_signed + 1e-9 * (1 + a_rect.abs()))).sum())
            signed += float(a_signed[on].sum())
            rectified += float(a_rect[on].sum())
    return {"fell_back": fell_back / max(fired, 1), "signed_area": signed / max(fired, 1),
            "rectified_area": rectified / max(fired, 1),
            "inhibitory_weight": float(-w.clamp(max=0).sum())}


def run_all(config, out, epochs, gammas):
    """Train no SSR and both readings at each strength; returns the table (also CSV)."""
    from neurocode.io import atomic_path
    from neurocode.spec import NetworkSpec
    from neurocode.torch.ttfs import TTFSNetwork
    from neurocode.training.ttfs import config_dataset, load_config, train_ttfs

    jobs = [("none", {"loss.regulariser": "none", "loss.gamma": 0.0})]
    jobs += [(f"{mssr}_g{g:g}", {"loss.regulariser": "m_ssr", "loss.mssr": mssr, "loss.gamma": g})
             for g in gammas for mssr in ("signed", "rectified")]
    cfg = load_config(config)
    t_test, _ = config_dataset(cfg, "test")
    rows = []
    for name, overrides in jobs:
        overrides = {**overrides, "train.epochs": epochs}
        log.info("run %s", name)
        history = train_ttfs(config, out / "runs" / name, progress=False, overrides=overrides)
        net = TTFSNetwork.from_spec(NetworkSpec.load(out / "runs" / name / "network.npz"))
        rows.append({"run": name, "mssr": overrides.get("loss.mssr", ""), "gamma": overrides["loss.gamma"],
                     "accuracy": history[-1]["accuracy"],
                     "spikes_per_hidden_neuron": history[-1]["spikes_per_hidden_neuron"],
                     **readings(net, t_test)})
    table = pd.DataFrame(rows)
    with atomic_path(out / "readings.csv") as tmp:
        table.to_csv(tmp, index=False)
    return table


def measure(paths, out, test_subset=0):
    """Readings of trained networks (``network.npz`` files) on their dataset's test set
    (``test_subset`` images of it, 0: all)."""
    from neurocode.io import atomic_path
    from neurocode.spec import NetworkSpec
    from neurocode.torch.ttfs import TTFSNetwork
    from neurocode.training.ttfs import config_dataset, load_config

    rows = []
    for path in paths:
        spec = NetworkSpec.load(path)
        net = TTFSNetwork.from_spec(spec)
        cfg = load_config({"data": {"name": spec.metadata.get("dataset", "fashion_mnist"),
                                    "test_subset": test_subset}})
        t_test, _ = config_dataset(cfg, "test")
        rows.append({"network": Path(path).name, **readings(net, t_test)})
    table = pd.DataFrame(rows)
    with atomic_path(out / "networks.csv") as tmp:
        table.to_csv(tmp, index=False)
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--config", type=Path, default=HERE / "mnist5k_784-400-10.toml")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--gammas", type=float, nargs="+", default=[2e-4, 1e-3])
    parser.add_argument("--networks", nargs="+", type=Path, help="only measure these trained networks")
    parser.add_argument("--test-subset", type=int, default=0, help="with --networks: test images (0: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.networks:
        table = measure(args.networks, args.out, args.test_subset)
    else:
        table = run_all(args.config, args.out, args.epochs, args.gammas)
    log.info("\n%s", table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
