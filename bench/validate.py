"""Benchmark: validating a TTFS network's test set in Brian2, cpp_standalone vs runtime.

Prints the time to present N test samples with one compiled project (compile and run
separately), and the runtime/cpp_standalone ratio measured on the same subset in one run.

    .venv/bin/python bench/validate.py RUN_DIR [--samples 10000] [--subset 200] [--dt 0.01]
"""

import argparse
import logging
import time

from neurocode.spec import NetworkSpec
from neurocode.validate.run import load_samples, validate_spec


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--samples", type=int, default=10000, help="samples validated on cpp_standalone")
    parser.add_argument("--subset", type=int, default=200, help="samples for the runtime/cpp ratio")
    parser.add_argument("--dt", type=float, default=0.01, help="time step (ms)")
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--data", default="fashion_mnist")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    spec = NetworkSpec.load(f"{args.run_dir}/network.npz")
    x, y = load_samples(args.data, args.samples)
    dt = args.dt * 1e-3
    t0 = time.perf_counter()
    full = validate_spec(spec, x, y, device="cpp_standalone", dt=dt, chunk=args.chunk)
    wall = time.perf_counter() - t0
    t = full["timings_s"]
    print(f"cpp_standalone, {len(y)} samples, dt {args.dt} ms, chunk {full['presentation']['chunk']} "
          f"({full['presentation']['n_chunks']} runs): wall {wall:.1f} s = build {t['build']:.1f} + compile "
          f"{t['compile']:.1f} + run {t['run']:.1f} s (+ torch {t['torch']:.1f} s); "
          f"accuracy brian2 {100 * full['accuracy_brian2']:.2f} % torch {100 * full['accuracy_torch']:.2f} %, "
          f"agreement {100 * full['agreement']:.2f} %")
    xs, ys = x[:args.subset], y[:args.subset]
    cpp = validate_spec(spec, xs, ys, device="cpp_standalone", dt=dt, chunk=args.chunk)
    rt = validate_spec(spec, xs, ys, device="runtime", dt=dt, chunk=args.chunk)
    run_cpp, run_rt = cpp["timings_s"]["run"], rt["timings_s"]["run"] + rt["timings_s"]["build"]
    print(f"subset of {len(ys)}: runtime (numpy) {run_rt:.1f} s, cpp_standalone run {run_cpp:.2f} s "
          f"(compile excluded: {cpp['timings_s']['compile']:.1f} s): ratio runtime/cpp {run_rt / run_cpp:.1f}x; "
          f"accuracy runtime {100 * rt['accuracy_brian2']:.2f} %, cpp {100 * cpp['accuracy_brian2']:.2f} %")


if __name__ == "__main__":
    main()
