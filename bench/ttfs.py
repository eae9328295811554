"""Training throughput of the exact TTFS layer vs a clock-driven surrogate-gradient network.

Both train the same 784-400-10 network of ``ttfs`` neurons (same weights, same inputs)
for one step (forward + backward + Adam) per batch:

* exact: :class:`neurocode.torch.ttfs.TTFSNetwork` (closed-form spike times);
* clock-driven: :class:`neurocode.torch.NetworkRunner` on the same NetworkSpec at
  ``dt = 0.1 ms`` over the same window (3 ms = 30 steps), with a SuperSpike surrogate and a
  loss on output spike counts (time to first spike needs no other read-out for timing).

Prints samples/s of each on CPU (and CUDA when present) and their ratio, measured in one run.

    python bench/ttfs.py [--batch 128] [--repeats 3] [--out results.json]
"""

from __future__ import annotations

import argparse
import time

import torch

from neurocode.io import write_json
from neurocode.torch import NetworkRunner
from neurocode.torch.ttfs import TTFSNetwork


def _time(fn, repeats):
    fn()                                   # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def bench(device, batch, repeats, dt=0.1e-3, tau_s=1e-3):
    net = TTFSNetwork((784, 400, 10), seed=0).to(device)
    gen = torch.Generator().manual_seed(0)
    t_in = torch.rand(batch, 784, generator=gen).to(device)           # units of tau_s
    labels = torch.randint(0, 10, (batch,), generator=gen).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def exact_step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(-net(t_in)[-1] / 0.1, labels)
        loss.backward()
        opt.step()

    spec = net.to_spec(tau_s=tau_s, dt=dt)
    runner = NetworkRunner(spec, device=device, sparse=False)
    steps = int(round(net.windows[-1] * tau_s / dt))                   # the same window
    spikes = torch.zeros(steps, batch, 784, device=device)
    bins = (t_in * tau_s / dt + 1e-3).long().clamp(max=steps - 1)
    spikes.scatter_(0, bins.unsqueeze(0), 1.0)
    opt2 = torch.optim.Adam(runner.parameters(), lr=1e-3)

    def clock_step():
        opt2.zero_grad()
        out = runner(inputs={"in": spikes}, steps=steps)
        counts = out.spikes["out"].sum(0)                              # (batch, 10)
        loss = torch.nn.functional.cross_entropy(counts, labels)
        loss.backward()
        opt2.step()

    t_exact = _time(exact_step, repeats)
    t_clock = _time(clock_step, repeats)
    return batch / t_exact, batch / t_clock, steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="write the numbers as JSON here")
    args = parser.parse_args(argv)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"784-400-10 ttfs network, batch {args.batch}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    rows = {}
    for device in devices:
        exact, clock, steps = bench(device, args.batch, args.repeats)
        rows[device] = {"exact_samples_per_s": exact, "clock_samples_per_s": clock, "steps": steps,
                        "ratio": exact / clock}
        print(f"{device:5s} exact closed form: {exact:9.1f} samples/s | clock-driven surrogate "
              f"(dt = 0.1 ms, {steps} steps): {clock:9.1f} samples/s | ratio {exact / clock:.2f}x")
    if args.out:
        write_json(args.out, {"batch": args.batch, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
