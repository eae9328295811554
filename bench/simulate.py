"""Benchmark: the COBA network of Brette et al. (2007) on Brian2's devices, side by side.

4,000 ``coba_lif`` neurons (80 % excitatory, 2 % connectivity, 6 nS / 67 nS), 1 s of
biological time, run on runtime (cython), cpp_standalone with 1 and 2 OpenMP threads
and, where a GPU is present, cuda_standalone. Run time excludes code generation and
compilation (for standalone devices: the network loop inside the binary). Prints
absolute times and ratios from this one run.

    .venv/bin/python bench/simulate.py [--neurons 4000] [--duration 1.0] [--out results.json]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurocode.io import write_json  # noqa: E402
from neurocode.presets import coba_network  # noqa: E402
from neurocode.brian import gpu_present, simulate  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=4000)
    parser.add_argument("--duration", type=float, default=1.0, help="biological seconds (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the numbers as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    spec = coba_network(n_neurons=args.neurons, seed=args.seed)
    n_syn = sum(p.i.size for p in spec.projections)
    print(f"COBA: {args.neurons} neurons, {n_syn} synapses, {args.duration:g} s biological time, "
          f"dt = {spec.dt * 1e3:g} ms")
    configs = [("runtime (cython)", dict(device="runtime", target="cython")),
               ("cpp_standalone, 1 thread", dict(device="cpp_standalone", threads=1)),
               ("cpp_standalone, 2 threads", dict(device="cpp_standalone", threads=2))]
    if gpu_present():
        configs.append(("cuda_standalone", dict(device="cuda_standalone")))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (label, kwargs) in enumerate(configs):
            directory = None if kwargs["device"] == "runtime" else Path(tmp) / f"project{k}"
            res = simulate(spec, args.duration, directory=directory, progress=False, **kwargs)
            pop = res.summary()["populations"]["coba"]
            rows.append((label, res.timings["compile"], res.timings["run"], pop["mean_rate_hz"], pop["spike_count"]))
    base = rows[0][2]
    print(f"{'device':28s} {'compile s':>10s} {'run s':>8s} {'speed-up':>9s} {'rate Hz':>8s} {'spikes':>8s}")
    for label, compile_s, run_s, rate, count in rows:
        print(f"{label:28s} {compile_s:10.2f} {run_s:8.3f} {base / run_s:8.2f}x {rate:8.2f} {count:8d}")
    print("speed-up = runtime (cython) run time / this run time, measured in this one process")
    if args.out:
        write_json(args.out, {"neurons": args.neurons, "duration": args.duration, "rows": [
            {"device": label, "compile_s": c, "run_s": r, "speedup": base / r, "rate_hz": rate, "spikes": n}
            for label, c, r, rate, n in rows]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
