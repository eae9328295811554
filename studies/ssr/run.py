"""SSR study: sweep the regulariser strength gamma for none / M-SSR / F-SSR / membrane baseline.

Each (regulariser, gamma) is one training run (``neurocode.training.ttfs.train_ttfs``) executed by a
Dask cluster (:mod:`neurocode.cluster`): a ``LocalCluster`` by default, or a running scheduler
(``--scheduler tcp://host:8786``, see ``docs/cluster.md``) to scale out. Finished runs keep their
row in ``rows/`` and unfinished ones resume from their checkpoints, so re-running the command
after a kill only finishes what is missing.

Outputs in ``--out``:
* ``runs/<regulariser>_g<gamma>/`` -- each run's folder (config, metrics, network.npz);
* ``sweep.csv`` -- one row per run (accuracy, spikes per hidden neuron per layer and mean);
* ``tradeoff.png|csv`` -- accuracy vs spikes per hidden neuron (per layer and averaged);
* ``raster_<regulariser>.png|csv`` -- Fig.-2-style raster and membrane traces.

Examples::

    python studies/ssr/run.py --quick --out /tmp/ssr_quick          # a few minutes on 2 cores
    python studies/ssr/run.py --config studies/ssr/fmnist_784-400-10.toml --out runs/ssr_fmnist
    python studies/ssr/run.py --out runs/ssr_fmnist --regularisers none m_ssr   # a part of the grid
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
log = logging.getLogger("ssr-study")

#: The full study's grid per neuron (the config's ``network.neuron``): regulariser -> gamma values, and
#: for the membrane baseline v_hat (a fraction of V_th) -> gamma values. The scale of each term
#: differs (see docs/ssr.md); the ramp neuron's membrane runs use the config's v_hat.
GRIDS = {
    "ramp": {"none": [0.0], "m_ssr": [5e-5, 2e-4], "f_ssr": [3e-5, 1e-4, 3e-4, 1e-3],
             "membrane": [1e-4, 3e-4, 1e-3, 3e-3]},
    "constant_slope": {"none": [0.0], "m_ssr": [1e-3, 3e-3, 1e-2, 3e-2], "f_ssr": [1e-4, 3e-4, 1e-3],
                       "membrane": {0.25: [1e-5, 3e-5, 1e-4], 0.5: [3e-5, 1e-4, 3e-4], 0.75: [1e-4, 3e-4, 1e-3]}},
}
#: the quick mode: Fashion-MNIST subset, a 784-100-10 network, 2 epochs, 2 strengths each
QUICK = {"overrides": {"data.train_subset": 3000, "data.test_subset": 1000, "network.sizes": [784, 100, 10],
                       "train.epochs": 2, "train.batch_size": 64, "train.lr": 3e-3, "train.checkpoint_every": 0},
         "gammas": {"none": [0.0], "m_ssr": [3e-3, 3e-2], "f_ssr": [3e-4, 3e-3], "membrane": [3e-3, 3e-2]}}


def grid_jobs(grid):
    """``(regulariser, v_hat or None, gamma)`` of every run of a grid (see :data:`GRIDS`)."""
    jobs = []
    for reg, values in grid.items():
        by_v_hat = values if isinstance(values, dict) else {None: values}
        jobs += [(reg, v_hat, gamma) for v_hat, gammas in by_v_hat.items() for gamma in gammas]
    return jobs


def run_one(job):
    """Train one run (in a Dask worker) and return its summary row; a finished run is not retrained."""
    import torch

    from neurocode.training.ttfs import train_ttfs

    torch.set_num_threads(1)
    overrides = job["overrides"]
    history = train_ttfs(job["config"], Path(job["run"]), progress=False, overrides=overrides)
    last = history[-1]
    return {"regulariser": overrides["loss.regulariser"], "v_hat": overrides.get("loss.v_hat"),
            "gamma": overrides["loss.gamma"],
            "run": job["run"], **{k: v for k, v in last.items() if not k.startswith("train_")},
            "train_ce": last.get("train_ce")}


def sweep(config, out, grid, overrides=None, scheduler=None, workers=2):
    """Run every (regulariser, v_hat, gamma) of ``grid`` through Dask; returns the sweep DataFrame (also CSV).

    Rows are keyed by their job (``out/rows/<key>.json``, :func:`neurocode.cluster.sweep`), so a
    job that runs twice (a lost worker, a restarted sweep) gives one row.
    """
    from neurocode import cluster
    from neurocode.io import atomic_path

    jobs = []
    for reg, v_hat, gamma in grid_jobs(grid):
        o = dict(overrides or {})
        o.update({"loss.regulariser": reg, "loss.gamma": gamma})
        name = f"{reg}_g{gamma:g}"
        if v_hat is not None:
            o["loss.v_hat"] = v_hat
            name = f"{reg}_v{v_hat:g}_g{gamma:g}"
        jobs.append({"config": str(config), "run": str(out / "runs" / name), "overrides": o})
    with cluster.client(scheduler, workers) as c:
        rows = cluster.sweep(c, run_one, jobs, out / "rows", name="ssr")
    table = pd.DataFrame(rows).drop(columns="key").sort_values(["regulariser", "v_hat", "gamma"])
    with atomic_path(out / "sweep.csv") as tmp:
        table.to_csv(tmp, index=False)
    return table


def figures(out, table, config, overrides=None):
    """Trade-off figure and one raster per regulariser (its strongest gamma)."""
    from neurocode.figures.ssr import raster_figure, tradeoff_figure
    from neurocode.spec import NetworkSpec
    from neurocode.torch.ttfs_models import network_from_spec
    from neurocode.training.ttfs import config_dataset, load_config

    tradeoff_figure(table, out / "tradeoff")
    cfg = load_config(config, overrides)
    cfg["data"]["test_subset"] = 16
    t, _ = config_dataset(cfg, "test")
    for reg in ("none", "m_ssr"):
        sub = table[table["regulariser"] == reg]
        if sub.empty:
            continue
        row = sub.sort_values("gamma").iloc[-1]
        net = network_from_spec(NetworkSpec.load(Path(row["run"]) / "network.npz"))
        title = "no SSR" if reg == "none" else f"M-SSR, γ = {row['gamma']:g}"
        raster_figure(net, t, out / f"raster_{reg}", title=title)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--config", type=Path, default=HERE / "fmnist_784-400-10.toml")
    parser.add_argument("--quick", action="store_true", help="small subset, small network, 2 epochs")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler (default: a LocalCluster)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers (default: %(default)s)")
    parser.add_argument("--regularisers", nargs="+", choices=list(GRIDS["ramp"]), default=list(GRIDS["ramp"]),
                        help="sweep only these regularisers (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from neurocode.training.ttfs import load_config

    neuron = load_config(args.config)["network"]["neuron"]
    overrides, grid = (QUICK["overrides"], QUICK["gammas"]) if args.quick else ({}, GRIDS[neuron])
    grid = {reg: values for reg, values in grid.items() if reg in args.regularisers}
    args.out.mkdir(parents=True, exist_ok=True)
    table = sweep(args.config, args.out, grid, overrides, args.scheduler, args.workers)
    figures(args.out, table, args.config, overrides)
    cols = ["regulariser", "v_hat", "gamma", "accuracy", "spikes_per_hidden_neuron"]
    print(table[cols].to_string(index=False))
    print(f"wrote {args.out / 'sweep.csv'}, {args.out / 'tradeoff.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
