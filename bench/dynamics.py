"""Time steps per second of the COBA benchmark network: torch runner vs Brian2, in one run.

The network is ``neurocode.presets.coba_network`` (Vogels & Abbott 2005 / Brette et al.
2007: 4,000 ``coba_lif`` neurons, 80/20 E/I, 2 % connectivity, signed conductance weights).
Measured side by side in this process:

* torch, no gradient (event-driven propagation), CPU (and CUDA where present), eager and
  with ``compile=True`` (``torch.compile`` of the step; its first run, which compiles, is
  reported apart from the timed run);
* torch, with gradient (sparse matrix products; forward + backward over fewer steps);
* Brian2 runtime (numpy target) and cpp_standalone (run time only, compilation reported
  apart); cuda_standalone where a GPU is present.

Usage::

    python bench/dynamics.py --duration 1.0 [--grad-duration 0.1] [--threads 1] [--compile-steps 4]
                             [--skip-runtime] [--skip-float64] [--out results.json]
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

from neurocode.io import write_json
from neurocode.presets import coba_network
from neurocode.brian import gpu_present, simulate
from neurocode.torch import NetworkRunner

logger = logging.getLogger("bench.dynamics")


def torch_rate(spec, steps, device="cpu", dtype=torch.float32, grad=False, compile=False, compile_steps=1):
    """Steps per second of the torch runner, spikes (a sanity check), first-run seconds.

    The first run (warm-up; with ``compile=True`` it compiles the step and its burst
    variants) has the same length as the timed run; its extra time is the compilation.
    """
    runner = NetworkRunner(spec, dtype=dtype, device=device, compile=compile, compile_steps=compile_steps)
    start = time.perf_counter()
    with torch.no_grad():
        runner(steps=steps if compile else 10)       # warm-up (allocations, caches, compilation)
    first = time.perf_counter() - start
    if device != "cpu":
        torch.cuda.synchronize()
    start = time.perf_counter()
    if grad:
        out = runner(steps=steps)
        loss = out.spikes["coba"].sum()
        loss.backward()
    else:
        with torch.no_grad():
            out = runner(steps=steps)
    if device != "cpu":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return steps / elapsed, int(out.spikes["coba"].sum().item()), first


def brian_rate(spec, duration, device, **kwargs):
    res = simulate(spec, duration, device=device, progress=False, **kwargs)
    steps = int(round(duration / spec.dt))
    return steps / res.timings["run"], int(res.spikes["coba"][0].size), res.timings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="neurons (default 4000)")
    parser.add_argument("--duration", type=float, default=1.0, help="simulated time in s (default 1)")
    parser.add_argument("--grad-duration", type=float, default=0.1, help="simulated time with gradients (s)")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenMP threads (default 1)")
    parser.add_argument("--skip-runtime", action="store_true", help="skip Brian2's numpy runtime")
    parser.add_argument("--skip-float64", action="store_true", help="skip the float64 torch rows")
    parser.add_argument("--compile-steps", type=int, default=4,
                        help="also time compile_steps=N steps per compiled call (default 4; 1: skip)")
    parser.add_argument("--out", help="write the numbers as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    spec = coba_network(n_neurons=args.n, seed=0)
    steps = int(round(args.duration / spec.dt))
    rows = {}
    rate, spikes, _ = torch_rate(spec, steps)
    rows["torch_cpu_nograd"] = {"steps_per_s": rate, "spikes": spikes}
    rate, spikes, first = torch_rate(spec, steps, compile=True)
    rows["torch_cpu_nograd_compiled"] = {"steps_per_s": rate, "spikes": spikes,
                                         "compile_s": max(0.0, first - steps / rate)}
    if args.compile_steps > 1:
        rate, spikes, first = torch_rate(spec, steps, compile=True, compile_steps=args.compile_steps)
        rows[f"torch_cpu_nograd_compiled_{args.compile_steps}steps"] = {
            "steps_per_s": rate, "spikes": spikes, "compile_s": max(0.0, first - steps / rate)}
    if not args.skip_float64:
        rate, spikes, _ = torch_rate(spec, steps, dtype=torch.float64)
        rows["torch_cpu_nograd_float64"] = {"steps_per_s": rate, "spikes": spikes}
        rate, spikes, first = torch_rate(spec, steps, dtype=torch.float64, compile=True)
        rows["torch_cpu_nograd_compiled_float64"] = {"steps_per_s": rate, "spikes": spikes,
                                                     "compile_s": max(0.0, first - steps / rate)}
    grad_steps = int(round(args.grad_duration / spec.dt))
    rate, spikes, _ = torch_rate(spec, grad_steps, grad=True)
    rows["torch_cpu_grad"] = {"steps_per_s": rate, "spikes": spikes, "steps": grad_steps}
    if not args.skip_runtime:
        rate, spikes, timings = brian_rate(spec, args.duration, "runtime", target="numpy")
        rows["brian2_runtime_numpy"] = {"steps_per_s": rate, "spikes": spikes, "timings": timings}
    rate, spikes, timings = brian_rate(spec, args.duration, "cpp_standalone", threads=args.threads)
    rows["brian2_cpp_standalone"] = {"steps_per_s": rate, "spikes": spikes, "timings": timings}
    if torch.cuda.is_available():
        rate, spikes, _ = torch_rate(spec, steps, device="cuda")
        rows["torch_cuda_nograd"] = {"steps_per_s": rate, "spikes": spikes}
        if gpu_present():
            rate, spikes, timings = brian_rate(spec, args.duration, "cuda_standalone")
            rows["brian2_cuda_standalone"] = {"steps_per_s": rate, "spikes": spikes, "timings": timings}
    ref = rows["brian2_cpp_standalone"]["steps_per_s"]
    print(f"COBA network, {args.n} neurons, dt = {spec.dt * 1e3:g} ms, {args.duration:g} s simulated, "
          f"{args.threads} thread(s)")
    print(f"{'engine':34s} {'steps/s':>10s} {'vs cpp_standalone':>18s} {'spikes':>8s} {'compile s':>10s}")
    for name, row in rows.items():
        compile_s = row.get("compile_s", row.get("timings", {}).get("compile"))
        compile_s = "" if compile_s is None else f"{compile_s:10.1f}"
        print(f"{name:34s} {row['steps_per_s']:10.0f} {row['steps_per_s'] / ref:18.2f} {row['spikes']:8d} "
              f"{compile_s:>10s}")
    eager, compiled = rows["torch_cpu_nograd"], rows["torch_cpu_nograd_compiled"]
    print(f"torch compiled vs eager (no gradient, float32): "
          f"{compiled['steps_per_s'] / eager['steps_per_s']:.2f}")
    if "torch_cuda_nograd" in rows and "brian2_cuda_standalone" in rows:
        ratio = rows["torch_cuda_nograd"]["steps_per_s"] / rows["brian2_cuda_standalone"]["steps_per_s"]
        print(f"torch CUDA vs cuda_standalone: {ratio:.2f}")
    if args.out:
        write_json(args.out, {"n": args.n, "duration": args.duration, "threads": args.threads, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
