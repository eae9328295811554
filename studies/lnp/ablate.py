"""Which LNP step costs accuracy? One seed, one sparsity, LNP with steps switched off.

Variants (same neurons and synapses as full LNP): ``lnp`` (all five steps), ``no-step5``
(original ``tau_m``), ``no-step5-unscaled`` (also the original weights instead of
``w / p_ij``), and ``random`` at the same counts. Writes ``DIR/ablation.csv``::

    nice -n 5 .venv/bin/python studies/lnp/ablate.py --out results/lnp/full --seed 0 --sparsity 0.9
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="results folder of run.py (config.json, keywords.npz)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sparsity", type=float, default=0.9)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import pandas as pd
    import torch

    from neurocode.io import write_text
    from neurocode.lyapunov.prune import dense_weights, neuron_exponents, random_prune
    from run import build, drive_weight, evaluate, keep_neuron_fraction, lnp_matched
    from tasks import keyword_data
    torch.set_num_threads(1)
    out = Path(args.out)
    cfg = json.loads((out / "config.json").read_text())
    data = keyword_data(cfg, out / "keywords.npz")
    spec = build(cfg, args.seed)
    w_drive = drive_weight(spec)
    W = dense_weights(spec)
    exps = neuron_exponents(spec, drive_rate=cfg["drive_rate"], drive_weight=w_drive, treatment=cfg["treatment"],
                            seed=args.seed)
    n_syn = spec.projection("recurrent").i.size
    keep_n = int(round(keep_neuron_fraction(args.sparsity) * cfg["n_dense"]))
    lnp, _ = lnp_matched(spec, int(round((1 - args.sparsity) * n_syn)), keep_n, exps, cfg, args.seed)
    no5 = copy.deepcopy(lnp)
    no5.populations["hrsnn"].params["tau_m"] = spec.populations["hrsnn"].params["tau_m"][lnp.metadata["kept_neurons"]]
    unscaled = copy.deepcopy(no5)
    proj, kept = unscaled.projection("recurrent"), np.asarray(lnp.metadata["kept_neurons"])
    orig = W[kept[proj.i], kept[proj.j]]
    proj.weights[:] = np.where(orig != 0, orig, proj.weights)
    nets = {"lnp": lnp, "no-step5": no5, "no-step5-unscaled": unscaled,
            "random": random_prune(spec, keep_n, lnp.projection("recurrent").i.size, seed=args.seed)}
    rows = []
    for name, net in nets.items():
        m, _, _ = evaluate(net, cfg, args.seed, data, w_drive)
        w = net.projection("recurrent").weights
        rows.append({"variant": name, "seed": args.seed, "target_sparsity": args.sparsity, **m,
                     "mean_abs_weight_nA": 1e9 * float(np.abs(w).mean())})
        print(rows[-1], flush=True)
    write_text(out / "ablation.csv", pd.DataFrame(rows).to_csv(index=False))


if __name__ == "__main__":
    main()
