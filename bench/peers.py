"""neurocode against snnTorch, Norse and SpikingJelly (and COBA against Brian2), in one process.

The same networks, with the same weights and input spikes, in every framework installed here;
runs are interleaved (one of each framework per round) and the best of ``--repeats`` rounds
counts. Printed per row: samples/s, the ratio to the best peer and the fraction of the dense-BLAS
bound (the row's multiply-adds at the single-precision GEMM rate measured in this run).

(a) ``classifier``: 784-400-10 current-based LIF, dt = 1 ms, T = 50, batch 128, dense weights,
    surrogate gradients, 5 % input spike density; training (forward + backward) and inference.
(b) ``recurrent``: 700-256(recurrent)-20 LIF, T = 100, batch 64, training (the shapes of the
    Spiking Heidelberg Digits task), 5 % input density.
(c) ``coba``: the COBA network (``neurocode.presets.coba_network``, 4,000 neurons) without
    gradients at batch 1 and 64 (identical samples), eager and compiled, against Brian2's
    ``cpp_standalone`` (compiled once, run time only) per sample.

Rows ``neurocode compiled`` run the step through ``torch.compile`` (runs without gradients:
inference and COBA); their first run, which compiles, is not timed. ``--device cuda`` runs the
torch rows on a GPU (``make gpu-check``).

Every framework integrates the same current-based LIF (tau_mem = 10 ms, tau_syn = 5 ms,
threshold 1, reset to 0) by forward Euler: neurocode with the ``nir_cubalif`` card, Norse with
``LIF``/``LIFRecurrent``, snnTorch with ``Synaptic``/``RSynaptic`` and SpikingJelly with
``CUBALIFNode`` (their decay-factor form, weights scaled by dt/tau_mem). Each peer is written at
its fastest: a layer's input is one matrix product for all time steps (SpikingJelly's
multi-step mode; the same for the other peers' time loops), except Norse's recurrent cell,
which owns its input weights. The hidden spikes per sample are printed as a check that the
networks do the same work.

Usage::

    python bench/peers.py [--quick] [--repeats 5] [--threads 1] [--only classifier,recurrent,coba]
                          [--reference cpp_standalone|cuda_standalone|runtime] [--device cpu|cuda]
                          [--out results.json]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import logging
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from neurocode.io import write_json
from neurocode.presets import coba_network
from neurocode.spec import NetworkSpec, Projection
from neurocode.torch import NetworkRunner

logger = logging.getLogger("bench.peers")

DT = 1e-3
TAU_MEM, TAU_SYN = 10e-3, 5e-3
DENSITY = 0.05
PEERS = {"snntorch": "snntorch", "norse": "norse", "spikingjelly": "spikingjelly"}


@dataclass
class Case:
    """One network shape: sizes (input, hidden, output), recurrent hidden layer, T, batch, training."""

    name: str
    sizes: tuple
    recurrent: bool
    steps: int
    batch: int
    train: bool

    def flops(self):
        """Multiply-adds x 2 per sample: forward, plus weight and hidden-input gradients when training."""
        n_in, n_hid, n_out = self.sizes
        layers = [n_in * n_hid] + ([n_hid * n_hid] if self.recurrent else []) + [n_hid * n_out]
        forward = 2 * self.steps * sum(layers)
        if not self.train:
            return forward
        return forward + 2 * self.steps * sum(layers) + 2 * self.steps * sum(layers[1:])


def sgemm_gflops(n=512, device="cpu"):
    """Single-precision GEMM rate (GFLOP/s) of one ``n x n`` product, best of three."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(3))
    return 2 * n ** 3 / best / 1e9


def _timed(fn):
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def make_data(case, seed=0, device="cpu"):
    """Input spikes (T, batch, n_in), labels and the shared weights (float32, SI = dimensionless)."""
    gen = torch.Generator().manual_seed(seed)
    n_in, n_hid, n_out = case.sizes
    x = (torch.rand(case.steps, case.batch, n_in, generator=gen) < DENSITY).float()
    labels = torch.randint(0, n_out, (case.batch,), generator=gen)
    # about 8 % of the hidden neurons spike per step
    w_in = (torch.randn(n_hid, n_in, generator=gen) * 0.5 + 0.05) / (DENSITY * n_in) ** 0.5
    w_rec = torch.randn(n_hid, n_hid, generator=gen) * 0.5 / n_hid ** 0.5 if case.recurrent else None
    w_out = (torch.randn(n_out, n_hid, generator=gen) * 0.5 + 0.05) / (0.08 * n_hid) ** 0.5
    weights = {"in": w_in, "rec": w_rec, "out": w_out}
    return x.to(device), labels.to(device), {k: None if w is None else w.to(device) for k, w in weights.items()}


# -- the networks, one per framework: forward(x) -> (output spikes (T, B, n_out), hidden spikes) --
def _dense(source, target, w):
    n_tgt, n_src = w.shape
    i = np.repeat(np.arange(n_src), n_tgt)
    j = np.tile(np.arange(n_tgt), n_src)
    return Projection(source, target, i, j, w.t().reshape(-1).double().numpy(), name=f"{source}_to_{target}")


def neurocode_net(case, weights, compile=False):
    n_in, n_hid, n_out = case.sizes
    spec = NetworkSpec(dt=DT, seed=0)
    spec.add_input("in", n_in)
    params = {"tau_mem": f"{TAU_MEM * 1e3:g}*ms", "tau_syn": f"{TAU_SYN * 1e3:g}*ms", "r": "1"}
    spec.add_population("hid", "nir_cubalif", n_hid, **params)
    spec.add_population("out", "nir_cubalif", n_out, **params)
    spec.add_projection(_dense("in", "hid", weights["in"]))
    if case.recurrent:
        spec.add_projection(_dense("hid", "hid", weights["rec"]))
    spec.add_projection(_dense("hid", "out", weights["out"]))
    runner = NetworkRunner(spec, sparse=False, compile=compile, device=weights["in"].device)

    def forward(x):
        out = runner(inputs={"in": x})
        return out.spikes["out"], out.spikes["hid"]
    return runner, forward


def snntorch_net(case, weights):
    import snntorch as snn

    scale = DT / TAU_MEM
    alpha, beta = 1 - DT / TAU_SYN, 1 - DT / TAU_MEM
    n_in, n_hid, n_out = case.sizes
    fc_in = torch.nn.Linear(n_in, n_hid, bias=False)
    fc_out = torch.nn.Linear(n_hid, n_out, bias=False)
    fc_in.weight.data = weights["in"] * scale
    fc_out.weight.data = weights["out"] * scale
    if case.recurrent:
        hid = snn.RSynaptic(alpha, beta, linear_features=n_hid, reset_mechanism="zero")
        hid.recurrent.weight.data = weights["rec"] * scale
        hid.recurrent.bias.data.zero_()
    else:
        hid = snn.Synaptic(alpha, beta, reset_mechanism="zero")
    out = snn.Synaptic(alpha, beta, reset_mechanism="zero")
    module = torch.nn.ModuleList([fc_in, hid, fc_out, out]).to(weights["in"].device)

    def forward(x):
        cur, spikes = fc_in(x), []
        if case.recurrent:
            spk, syn, mem = hid.init_rsynaptic()
            for t in range(x.shape[0]):
                spk, syn, mem = hid(cur[t], spk, syn, mem)
                spikes.append(spk)
        else:
            syn, mem = hid.init_synaptic()
            for t in range(x.shape[0]):
                spk, syn, mem = hid(cur[t], syn, mem)
                spikes.append(spk)
        hidden = torch.stack(spikes)
        cur, spikes = fc_out(hidden), []
        syn, mem = out.init_synaptic()
        for t in range(x.shape[0]):
            spk, syn, mem = out(cur[t], syn, mem)
            spikes.append(spk)
        return torch.stack(spikes), hidden
    return module, forward


def norse_net(case, weights):
    import norse.torch as norse

    n_in, n_hid, n_out = case.sizes
    fc_out = torch.nn.Linear(n_hid, n_out, bias=False)
    fc_out.weight.data = weights["out"].clone()
    out = norse.LIF(dt=DT)
    if case.recurrent:
        hid = norse.LIFRecurrent(n_in, n_hid, dt=DT)
        hid.input_weights.data = weights["in"].clone()
        hid.recurrent_weights.data = weights["rec"].clone()
        module = torch.nn.ModuleList([hid, fc_out, out]).to(weights["in"].device)

        def layer_one(x):
            return hid(x)[0]
    else:
        fc_in = torch.nn.Linear(n_in, n_hid, bias=False)
        fc_in.weight.data = weights["in"].clone()
        hid = norse.LIF(dt=DT)
        module = torch.nn.ModuleList([fc_in, hid, fc_out, out]).to(weights["in"].device)

        def layer_one(x):
            return hid(fc_in(x))[0]

    def forward(x):
        hidden = layer_one(x)
        return out(fc_out(hidden))[0], hidden
    return module, forward


def spikingjelly_net(case, weights):
    from spikingjelly.activation_based import functional, layer, neuron

    scale = DT / TAU_MEM
    n_in, n_hid, n_out = case.sizes

    def lif():
        node = neuron.CUBALIFNode(c_decay=1 - DT / TAU_SYN, v_decay=1 - DT / TAU_MEM, v_threshold=1.0, v_reset=0.0)
        node.step_mode = "m"
        return node
    fc_in = layer.Linear(n_in, n_hid, bias=False, step_mode="m")
    fc_out = layer.Linear(n_hid, n_out, bias=False, step_mode="m")
    fc_in.weight.data = weights["in"] * scale
    fc_out.weight.data = weights["out"] * scale
    hid, out = lif(), lif()
    module = torch.nn.ModuleList([fc_in, hid, fc_out, out])
    if case.recurrent:
        fc_rec = layer.Linear(n_hid, n_hid, bias=False)
        fc_rec.weight.data = weights["rec"] * scale
        hid.step_mode = "s"
        module.append(fc_rec)
    module.to(weights["in"].device)

    def forward(x):
        functional.reset_net(module)
        cur = fc_in(x)
        if case.recurrent:
            spk, spikes = torch.zeros_like(cur[0]), []
            for t in range(x.shape[0]):
                spk = hid(cur[t] + fc_rec(spk))
                spikes.append(spk)
            hidden = torch.stack(spikes)
        else:
            hidden = hid(cur)
        return out(fc_out(hidden)), hidden
    return module, forward


BUILDERS = {"neurocode": neurocode_net, "neurocode compiled": functools.partial(neurocode_net, compile=True),
            "snntorch": snntorch_net, "norse": norse_net, "spikingjelly": spikingjelly_net}


def installed_peers():
    """Peers importable here; the others are reported as skipped."""
    found = [name for name, module in PEERS.items() if importlib.util.find_spec(module) is not None]
    for name in sorted(set(PEERS) - set(found)):
        print(f"skipped {name}: not installed (make bench-peers installs it)")
    return found


def one_batch(case, module, forward, x, labels):
    """A closure running one batch (forward + backward when training); returns hidden spikes."""
    def run():
        if case.train:
            out, hidden = forward(x)
            loss = torch.nn.functional.cross_entropy(out.sum(0), labels)
            loss.backward()
            for p in module.parameters():
                p.grad = None
        else:
            with torch.no_grad():
                out, hidden = forward(x)
        return float(hidden.detach().sum())
    return run


def bench_case(case, frameworks, repeats, device):
    """``(gflops, rows)`` of one case: runs interleaved (one GEMM timing per round too), best of ``repeats``.

    ``rows`` maps each framework to its samples/s and hidden spike rate; ``gflops`` is the best
    GEMM rate of these rounds.
    """
    x, labels, weights = make_data(case, device=device)
    runs = {}
    for name in frameworks:
        if name == "neurocode compiled" and case.train:  # torch.compile applies to runs without gradients
            continue
        module, forward = BUILDERS[name](case, weights)
        runs[name] = one_batch(case, module, forward, x, labels)
    hidden = {name: run() for name, run in runs.items()}        # warm-up
    best = {name: float("inf") for name in runs}
    gflops = 0.0
    for _ in range(repeats):
        for name, run in runs.items():
            best[name] = min(best[name], _timed(run))
        gflops = max(gflops, sgemm_gflops(2048 if device == "cuda" else 512, device))
    return gflops, {name: {"samples_per_s": case.batch / best[name], "seconds": best[name],
                           "hidden_rate": hidden[name] / (case.batch * case.steps * case.sizes[1])}
                    for name in runs}


def add_ratios(case, rows, gflops):
    """Each row's ratio to the best peer and fraction of the dense-BLAS bound at ``gflops``."""
    peers = [r["samples_per_s"] for name, r in rows.items() if not name.startswith("neurocode")]
    bound = gflops * 1e9 / case.flops()
    for row in rows.values():
        row["vs_best_peer"] = row["samples_per_s"] / max(peers) if peers else float("nan")
        row["bound_samples_per_s"] = bound
        row["bound_fraction"] = row["samples_per_s"] / bound


def print_case(title, rows):
    print(title)
    print(f"  {'framework':14s} {'samples/s':>10s} {'vs best peer':>13s} {'of BLAS bound':>14s} {'hidden rate':>12s}")
    for name, row in rows.items():
        print(f"  {name:14s} {row['samples_per_s']:10.1f} {row['vs_best_peer']:12.2f}x {row['bound_fraction']:13.0%} "
              f"{row['hidden_rate']:12.3f}")


# -- COBA: torch runner (batch 1 and 64, eager and compiled) vs Brian2 ---------------------------
def coba_rows(n, duration, batches, repeats, reference, compile, device):
    """Sample-steps per second of the COBA network; the reference is Brian2 (batch 1)."""
    from neurocode.brian import StandaloneSession, simulate

    spec = coba_network(n_neurons=n, seed=0)
    steps = int(round(duration / spec.dt))
    runs = {}
    for batch in batches:
        for compiled in ([False, True] if compile else [False]):
            runner = NetworkRunner(spec, compile=compiled, device=device)

            def run(runner=runner, batch=batch):
                with torch.no_grad():
                    return int(runner(steps=steps, batch=batch).spikes["coba"].sum())
            runs[f"neurocode B={batch}" + (" compiled" if compiled else "")] = (run, batch)
    if reference in ("cpp_standalone", "cuda_standalone"):
        session = StandaloneSession(spec, duration, reference, threads=1)

        def brian():
            res = session.run()
            return res.spikes["coba"][0].size, res.timings["run"]
    else:
        def brian():
            res = simulate(spec, duration, device="runtime", target="numpy", progress=False)
            return res.spikes["coba"][0].size, res.timings["run"]
    spikes = {name: run() for name, (run, _) in runs.items()}  # warm-up (compiles)
    best = {name: float("inf") for name in runs}
    best_ref = float("inf")
    for _ in range(repeats):
        for name, (run, _) in runs.items():
            best[name] = min(best[name], _timed(run))
        ref_spikes, seconds = brian()
        best_ref = min(best_ref, seconds)
    ref_rate = steps / best_ref
    rows = {f"brian2 {reference}": {"sample_steps_per_s": ref_rate, "batch": 1, "spikes_per_sample": ref_spikes,
                                    "vs_reference": 1.0}}
    for name, (_, batch) in runs.items():
        rate = steps * batch / best[name]
        rows[name] = {"sample_steps_per_s": rate, "batch": batch, "spikes_per_sample": spikes[name] / batch,
                      "vs_reference": rate / ref_rate}
    return rows


def print_coba(title, rows, reference):
    print(title)
    print(f"  {'engine':28s} {'sample-steps/s':>15s} {'vs ' + reference:>20s} {'spikes/sample':>14s}")
    for name, row in rows.items():
        print(f"  {name:28s} {row['sample_steps_per_s']:15.0f} {row['vs_reference']:19.2f}x "
              f"{row['spikes_per_sample']:14.0f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one round, no compiled rows, Brian2 runtime as the COBA reference "
                             "(seconds; for tests)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds; the best counts (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--only", default="classifier,recurrent,coba", help="comma-separated parts to run")
    parser.add_argument("--reference", choices=["cpp_standalone", "cuda_standalone", "runtime"],
                        help="Brian2 device for COBA (default cpp_standalone; runtime with --quick)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="torch device (default cpu)")
    parser.add_argument("--coba-duration", type=float, default=0.1, help="simulated s per COBA run (default 0.1)")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled neurocode rows (torch.compile)")
    parser.add_argument("--out", help="write the numbers as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    parts = set(args.only.split(","))
    reference = args.reference or ("runtime" if args.quick else "cpp_standalone")
    repeats = 1 if args.quick else args.repeats
    load = os.getloadavg()
    compile = not (args.quick or args.no_compile)
    frameworks = ["neurocode"] + (["neurocode compiled"] if compile else []) + installed_peers()
    gflops = sgemm_gflops(2048 if args.device == "cuda" else 512, args.device)
    print(f"torch {torch.__version__} on {args.device}, {args.threads} thread(s), sgemm {gflops:.1f} GFLOP/s, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, best of {repeats} interleaved rounds")
    cases = []
    if "classifier" in parts:
        sizes, steps, batch = ((784, 40, 10), 10, 16) if args.quick else ((784, 400, 10), 50, 128)
        cases += [Case("classifier train", sizes, False, steps, batch, True),
                  Case("classifier inference", sizes, False, steps, batch, False)]
    if "recurrent" in parts:
        sizes, steps, batch = ((700, 32, 20), 10, 8) if args.quick else ((700, 256, 20), 100, 64)
        cases.append(Case("recurrent train", sizes, True, steps, batch, True))
    results = {"torch": torch.__version__, "device": args.device, "threads": args.threads, "sgemm_gflops": gflops,
               "load_average": list(load), "repeats": repeats, "quick": args.quick, "cases": {}}
    measured = {}
    for case in cases:
        best, rows = bench_case(case, frameworks, repeats, args.device)
        gflops = max(gflops, best)
        measured[case.name] = (case, rows)
    print(f"BLAS bound at the best sgemm rate of the run: {gflops:.1f} GFLOP/s")
    for case, rows in measured.values():
        add_ratios(case, rows, gflops)
        n_in, n_hid, n_out = case.sizes
        print_case(f"{case.name}: {n_in}-{n_hid}{'(rec)' if case.recurrent else ''}-{n_out}, T = {case.steps}, "
                   f"batch {case.batch}, {DENSITY:.0%} input density", rows)
        results["cases"][case.name] = {"sizes": case.sizes, "steps": case.steps, "batch": case.batch,
                                       "flops_per_sample": case.flops(), "rows": rows}
    if "coba" in parts:
        n, duration = (200, 0.01) if args.quick else (4000, args.coba_duration)
        batches = (1, 4) if args.quick else (1, 64)
        rows = coba_rows(n, duration, batches, repeats, reference, compile, args.device)
        print_coba(f"coba: {n} neurons, {duration:g} s simulated, no gradients, per sample", rows, reference)
        results["coba"] = {"n": n, "duration": duration, "reference": reference, "rows": rows}
    results["sgemm_gflops"] = gflops
    results["load_average_end"] = list(os.getloadavg())
    if args.out:
        write_json(args.out, results)
    return results


if __name__ == "__main__":
    main()
