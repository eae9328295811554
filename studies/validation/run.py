"""Validation study: robustness of trained networks to detailed Brian2 dynamics.

For each trained run given, every variant is swept over its strengths on the first
``--samples`` test samples (Brian2 ``cpp_standalone``; one compiled project per variant,
strengths re-run it with new parameter values; with ``--scheduler tcp://HOST:PORT`` each chunk
of samples is one task on a Dask cluster, see ``docs/cluster.md``), and the first sample is drawn as a spike
raster in torch and in Brian2 side by side. Writes into ``--out``:

* ``robustness.csv`` (one row per network, variant, strength) and ``robustness.png|csv``;
* ``raster_<network>.png|csv``.

With ``--docs`` the figures are also copied to ``docs/figures/`` (how the docs figures are made)::

    neurocode train studies/ssr/fmnist_784-400-10.toml --out runs/fmnist_none
    neurocode train studies/ssr/fmnist_784-400-10_mssr.toml --out runs/fmnist_mssr --set loss.gamma=7e-5 \
        --set train.epochs=6
    .venv/bin/python studies/validation/run.py --run ttfs=runs/fmnist_none --run ttfs_mssr=runs/fmnist_mssr \
        --run rc=RC_RUN --samples 500 --dt 0.01 --docs

(``RC_RUN``: a folder holding ``network.npz``, e.g. ``studies/rank_coding/trained/spiking_mnist5k.npz``
copied there, and ``config.toml`` with ``task = "mnist"``.)
"""

import argparse
import logging
import shutil
from pathlib import Path

import pandas as pd

from neurocode.figures.validation import raster_pair, robustness_curves
from neurocode.spec import NetworkSpec
from neurocode.validate.run import TTFSTask, run_dataset, load_samples, task_for, validate_spec
from neurocode.validate.present import present
from neurocode.validate.variants import apply_variants

SWEEPS = {"leak": [0.1, 0.3, 1.0], "conductance": [0.2, 0.5, 0.8], "noise": [0.02, 0.05, 0.1],
          "heterogeneity": [0.1, 0.3, 0.5], "quantize": [8, 4, 3, 2], "delays": [0.05, 0.2, 0.5],
          "dt": [2.0, 5.0, 10.0]}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "figures"


def sweep(name, spec, x, y, dt, device, variants, scheduler=None):
    """Accuracy and agreement per variant strength; spike times on the grid throughout, so that a
    curve changes only the variant (interpolation does not apply to leak, conductance, noise, delays)."""
    rows = []
    base = validate_spec(spec, x, y, device=device, dt=dt, timing="grid", scheduler=scheduler)
    for variant in variants:
        zero = 1.0 if variant == "dt" else (24 if variant == "quantize" else 0.0)
        rows.append({"network": name, "variant": variant, "strength": zero,
                     "accuracy_brian2": base["accuracy_brian2"], "accuracy_torch": base["accuracy_torch"],
                     "agreement": base["agreement"]})
        for strength in SWEEPS[variant]:
            r = validate_spec(spec, x, y, device=device, dt=dt, variants=[(variant, strength)], timing="grid",
                              scheduler=scheduler)
            logging.info("%s %s=%g: accuracy %.4f agreement %.4f", name, variant, strength,
                         r["accuracy_brian2"], r["agreement"])
            rows.append({"network": name, "variant": variant, "strength": strength,
                         "accuracy_brian2": r["accuracy_brian2"], "accuracy_torch": r["accuracy_torch"],
                         "agreement": r["agreement"]})
    return rows, base


def raster(name, spec, x, dt, out):
    task = task_for(spec)
    ref, _ = task.torch_reference(spec, x[:1])
    brian = spec if dt is None else apply_variants(spec, [("dt", dt / spec.dt)])
    brian = task.brian_spec(brian)
    spikes = present(brian, task.trials(x[:1], brian), task.period(brian), device="runtime")
    got, _ = task.brian_reference(spikes, brian)
    sizes = {layer: spec.size(layer) for layer in task.layers}
    return raster_pair({k: v[0] for k, v in ref.items()}, {k: v[0] for k, v in got.items()},
                       out / f"raster_{name}", sizes, title=f"{name}, sample 0")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, metavar="NAME=RUN_DIR")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--dt", type=float, default=0.025, help="Brian2 dt for TTFS networks (ms)")
    parser.add_argument("--device", default="cpp_standalone")
    parser.add_argument("--variants", default=",".join(SWEEPS))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--docs", action="store_true", help="copy the figures to docs/figures/")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler (default: this process)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("brian2").setLevel(logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, reference, figures = [], {}, []
    for item in args.run:
        name, _, run_dir = item.partition("=")
        run_dir = Path(run_dir)
        spec = NetworkSpec.load(run_dir / "network.npz")
        data, root = run_dataset(Path(run_dir), spec)
        x, y = load_samples(data, args.samples, root)
        dt = args.dt * 1e-3 if isinstance(task_for(spec), TTFSTask) else None
        variants = [v for v in args.variants.split(",") if v]
        applicable = []
        for v in variants:
            try:
                apply_variants(spec, [(v, SWEEPS[v][0])])
                applicable.append(v)
            except ValueError as exc:
                logging.warning("%s: skipping %s (%s)", name, v, exc)
        net_rows, base = sweep(name, spec, x, y, dt, args.device, applicable, args.scheduler)
        rows += net_rows
        reference[name] = base["accuracy_torch"]
        figures.append(raster(name, spec, x, dt, out))
    table = pd.DataFrame(rows)
    table.to_csv(out / "robustness.csv", index=False)
    figures.append(robustness_curves(table, out / "robustness", reference=reference))
    print(table.to_string(index=False))
    if args.docs:
        DOCS.mkdir(parents=True, exist_ok=True)
        for png in figures:
            for suffix in (".png", ".csv"):
                shutil.copyfile(png.with_suffix(suffix), DOCS / f"validation_{png.stem}{suffix}")


if __name__ == "__main__":
    main()
