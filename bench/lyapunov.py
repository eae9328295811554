"""Benchmark: 100 Lyapunov exponents of a 1,000-neuron rate network x' = -x + J tanh(x).

Prints wall time per simulated second and the largest exponent, on CPU and (when present)
CUDA, for forward-mode and central-difference JVPs. Usage::

    python bench/lyapunov.py [--n 1000] [--k 100] [--t-sim 2.0] [--out results.json]
"""

import argparse
import time

import numpy as np
import torch

from neurocode.io import write_json
from neurocode.lyapunov import spectrum


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--g", type=float, default=2.0)
    parser.add_argument("--dt", type=float, default=0.05)
    parser.add_argument("--t-sim", type=float, default=2.0)
    parser.add_argument("--out", help="write the numbers as JSON here")
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    gen = torch.Generator().manual_seed(0)
    J0 = args.g * torch.randn(args.n, args.n, generator=gen, dtype=torch.float64) / np.sqrt(args.n)
    rows = []
    for device in devices:
        J = J0.to(device)
        dt = torch.tensor(args.dt, dtype=torch.float64, device=device)
        def step(x, n, dt=dt, J=J):
            return x + dt * (torch.tanh(x) @ J.T - x)
        x0 = torch.randn(1, args.n, generator=gen, dtype=torch.float64).to(device)
        for jvp in ("forward_ad", "central"):
            t0 = time.perf_counter()
            res = spectrum(step, x0, args.dt, k=args.k, t_sim=args.t_sim, t_transient=0.0, qr_every=1, jvp=jvp)
            if device == "cuda":
                torch.cuda.synchronize()
            wall = time.perf_counter() - t0
            steps = int(round(args.t_sim / args.dt))
            print(f"{device:5s} {jvp:10s} N={args.n} k={args.k} steps={steps}: {wall:.2f} s "
                  f"({1e3 * wall / steps:.1f} ms/step), largest {res.exponents[0]:.3f} 1/s")
            rows.append({"device": device, "jvp": jvp, "seconds": wall, "ms_per_step": 1e3 * wall / steps,
                         "largest": float(res.exponents[0])})
    if args.out:
        write_json(args.out, {"n": args.n, "k": args.k, "t_sim": args.t_sim, "rows": rows})


if __name__ == "__main__":
    main()
