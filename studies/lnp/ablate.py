"""Which LNP step or weight rule decides the comparison? LNP variants at the counts of full LNP.

Variants at one seed and sparsity, all with full LNP's neuron and synapse counts (the
LNP variants within ~5 %, as in the study; the random networks exactly):
``lnp`` (all five steps, the study's weight rule), ``no-step5`` (original ``tau_m``),
``step5-keep-mean`` (step 5 searching the cv of ``tau_m`` only; ``step5-free-mean`` when the
study's config already keeps the mean), ``random-nodes`` (step 3 keeps uniformly random
neurons instead of those of highest betweenness),
``inverse-p`` (kept weights divided by their keep probability, no global gain),
``no-rescale`` (original weights), and ``random`` / ``random-no-rescale`` at the same
counts. Scores are on a **validation split** (the last 30 % of the training clips and of
the Lorenz training part), never on the test data. Writes ``DIR/ablation.csv``::

    nice -n 5 .venv/bin/python studies/lnp/ablate.py --network hrsnn --out results/lnp/ablation-hrsnn --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def validation(cfg, data):
    """Config and keyword data whose held-out parts are validation splits of the training data."""
    x_tr, y_tr, _, _ = data
    n_fit = int(0.7 * len(y_tr))
    return {**cfg, "lorenz_samples": int(0.7 * cfg["lorenz_samples"])}, (x_tr[:n_fit], y_tr[:n_fit],
                                                                        x_tr[n_fit:], y_tr[n_fit:])


def variants(spec, cfg, seed, sparsity, exps):
    """The networks compared (dict name -> spec)."""
    import copy

    from run import baselines, keep_neuron_fraction, lnp_matched
    n_syn = spec.projection("recurrent").i.size
    keep_n = int(round(keep_neuron_fraction(sparsity) * cfg["n_dense"]))
    target = int(round((1 - sparsity) * n_syn))
    lnp, _ = lnp_matched(spec, target, keep_n, exps, cfg, seed)
    no5, _ = lnp_matched(spec, target, keep_n, exps, cfg, seed, optimise=False)
    mean5, _ = lnp_matched(spec, target, keep_n, exps, {**cfg, "step5_keep_mean": not cfg["step5_keep_mean"]}, seed)
    inv, _ = lnp_matched(spec, target, keep_n, exps, {**cfg, "rescale": "inverse-p"}, seed, optimise=False)
    raw, _ = lnp_matched(spec, target, keep_n, exps, {**cfg, "rescale": "none"}, seed, optimise=False)
    rnodes, _ = lnp_matched(spec, target, keep_n, exps, cfg, seed, nodes="random")
    count = lnp.projection("recurrent").i.size
    rates = np.ones(cfg["n_dense"])
    nets = {"lnp": lnp, "no-step5": no5, "step5-keep-mean" if not cfg["step5_keep_mean"] else "step5-free-mean": mean5,
            "random-nodes": rnodes, "inverse-p": inv, "no-rescale": raw,
            "random": baselines(spec, keep_n, count, rates, cfg, seed)["random"],
            "random-no-rescale": baselines(spec, keep_n, count, rates, {**cfg, "rescale": "none"}, seed)["random"]}
    return {k: copy.deepcopy(v) for k, v in nets.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="results folder (keywords.npz is cached there)")
    ap.add_argument("--network", default="hrsnn", help="dense network kind (run.KINDS)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--sparsity", type=float, default=0.9)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import pandas as pd
    import torch

    from neurocode.io import write_text
    from neurocode.lyapunov.prune import neuron_exponents
    from run import COMMON, PRESETS, build, evaluate
    from tasks import keyword_data
    torch.set_num_threads(1)
    out = Path(args.out)
    cfg = {**COMMON, **PRESETS["full"], "network": args.network}
    vcfg, vdata = validation(cfg, keyword_data(cfg, out / "keywords.npz"))
    rows = []
    for seed in args.seeds:
        spec = build(cfg, seed, cfg["network"])
        exps = neuron_exponents(spec, drive_rate=cfg["drive_rate"], drive_weight=cfg["drive_weight"],
                                treatment=cfg["treatment"], seed=seed)
        for name, net in variants(spec, cfg, seed, args.sparsity, exps).items():
            m, _, _ = evaluate(net, vcfg, seed, vdata)
            w = net.projection("recurrent").weights
            rows.append({"variant": name, "seed": seed, "target_sparsity": args.sparsity, **m,
                         "mean_abs_weight_nA": 1e9 * float(np.abs(w).mean()),
                         "max_abs_weight_nA": 1e9 * float(np.abs(w).max())})
            print({k: rows[-1][k] for k in ("variant", "seed", "lorenz_nrmse", "keyword_accuracy",
                                            "keyword_rate_hz", "max_abs_weight_nA")}, flush=True)
    write_text(out / "ablation.csv", pd.DataFrame(rows).to_csv(index=False))


if __name__ == "__main__":
    main()
