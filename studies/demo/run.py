"""The demo: neurocode's mission in four stages, told in one self-contained HTML report.

1. ``network``: a heterogeneous recurrent network from the ``lif`` card (gamma-distributed
   tau_m, 80 % excitatory) simulated by Brian2 in cpp_standalone: raster coloured by E/I
   and by tau_m, firing rates.
2. ``training``: a time-to-first-spike network trained in torch on a Fashion-MNIST subset,
   without and with M-SSR (sparse-firing regularisation): accuracy against hidden spikes.
3. ``brian2``: both trained networks back in Brian2 (cpp_standalone) on test images:
   accuracy in each engine and how often they give the same answer.
4. ``lyapunov``: the Lyapunov spectrum (with error bars) of the stage-1 network under
   the same Poisson drive, run until it converges (or stops at a cap, with a warning).

Every stage writes into ``--out/<stage>/`` (PNG + CSV per figure, ``stage.json``) and is
reused when it finished with the same settings; training resumes from its checkpoints.
``--out/summary.json`` holds every headline number and ``--out/report.html`` tells the story
(figures embedded, opens from disk).

    .venv/bin/python studies/demo/run.py --out results/demo            # about 5 min on 2 cores
    .venv/bin/python studies/demo/run.py --out /tmp/demo_quick --quick # about 2 minutes, mostly compiling
    .venv/bin/python studies/demo/run.py --docs docs/figures           # and the figures of README.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from narrative import report_sections  # noqa: E402

HERE = Path(__file__).resolve().parent
TTFS_CONFIG = HERE.parent / "ssr" / "fmnist_784-400-10.toml"
log = logging.getLogger("demo")

#: Settings of each stage; ``--quick`` shrinks every stage (the slow test's mode).
SETTINGS = {
    "full": {
        "network": {"card": "lif", "size": 500, "duration_s": 1.0, "seed": 0},
        "training": {"train_subset": 15000, "test_subset": 2000, "hidden": 400, "epochs": 3, "mssr_gamma": 2e-4,
                     "seed": 0},
        "brian2": {"samples": 300},
        "lyapunov": {"k": 8, "batch": 4, "t_transient_s": 0.05, "t_cap_s": 0.25, "t_block_s": 0.05, "rtol": 0.1,
                     "atol_per_s": 2.0, "outlier_mads": 20.0},
    },
    "quick": {
        "network": {"card": "lif", "size": 200, "duration_s": 0.5, "seed": 0},
        "training": {"train_subset": 2000, "test_subset": 500, "hidden": 100, "epochs": 1, "mssr_gamma": 2e-3,
                     "seed": 0},
        "brian2": {"samples": 40},
        "lyapunov": {"k": 4, "batch": 2, "t_transient_s": 0.02, "t_cap_s": 0.06, "t_block_s": 0.02, "rtol": 0.2,
                     "atol_per_s": 5.0, "outlier_mads": 20.0},
    },
}
METHODS = {"no SSR": ("none", 0.0), "M-SSR": ("m_ssr", None)}


def _key(settings):
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


def _cpu_s():
    """CPU seconds used by this process and its finished children (workers, compilers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def staged(folder, settings, work):
    """Result of ``work(folder)``, reused from ``folder/stage.json`` when it ran with ``settings``."""
    from neurocode.io import write_json

    record = folder / "stage.json"
    if record.is_file():
        saved = json.loads(record.read_text())
        if saved.get("settings") == settings:
            log.info("%s: reusing the finished stage in %s", folder.name, folder)
            return saved["result"]
    folder.mkdir(parents=True, exist_ok=True)
    start, cpu = time.perf_counter(), _cpu_s()
    result = work(folder)
    result.update(wall_s=time.perf_counter() - start, cpu_s=_cpu_s() - cpu, load_average=os.getloadavg()[0])
    write_json(record, {"settings": settings, "result": result})
    return json.loads(record.read_text())["result"]


def network_stage(folder, s):
    """Stage 1: the card network in Brian2 cpp_standalone; rasters, rates, the spec."""
    import numpy as np

    from neurocode.brian import simulate
    from neurocode.figures.activity import heterogeneity_raster, rates_by_type
    from neurocode.presets import default_network

    spec = default_network(s["card"], size=s["size"], duration=s["duration_s"], seed=s["seed"])
    spec.save(folder / "network.npz")
    result = simulate(spec, s["duration_s"], device="cpp_standalone", directory=folder / "brian_project",
                      progress=False)
    tau_m, n_exc = spec.populations["net"].params["tau_m"], spec.metadata["n_exc"]
    rates = result.rates("net")
    cv = result.cv_isi("net")
    return {"n_neurons": s["size"], "n_exc": n_exc, "n_synapses": int(spec.projection("recurrent").weights.size),
            "tau_m_ms": {"mean": 1e3 * float(tau_m.mean()), "cv": float(tau_m.std() / tau_m.mean()),
                         "min": 1e3 * float(tau_m.min()), "max": 1e3 * float(tau_m.max())},
            "rate_hz": {"all": float(rates.mean()), "excitatory": float(rates[:n_exc].mean()),
                        "inhibitory": float(rates[n_exc:].mean())},
            "spikes": int(result.spikes["net"][0].size), "mean_cv_isi": float(np.nanmean(cv)),
            "corr_rate_tau_m": float(np.corrcoef(rates, tau_m)[0, 1]) if rates.std() > 0 else float("nan"),
            "timings_s": result.timings,
            "figures": {"raster": str(heterogeneity_raster(result, folder / "raster", "net", tau_m, n_exc)),
                        "rates": str(rates_by_type(result, folder / "rates", "net", tau_m, n_exc))}}


def _train(job):
    """Train one TTFS run in a worker process (one torch thread); returns its per-epoch metrics."""
    import torch

    from neurocode.training.ttfs import train_ttfs

    torch.set_num_threads(1)
    return train_ttfs(TTFS_CONFIG, job["run"], progress=False, overrides=job["overrides"])


def _methods(s):
    return {name: (reg, s["mssr_gamma"] if gamma is None else gamma) for name, (reg, gamma) in METHODS.items()}


def training_stage(folder, s, workers):
    """Stage 2: a TTFS network trained without and with M-SSR, in parallel processes."""
    import pandas as pd

    from neurocode.figures.ssr import training_tradeoff

    jobs = []
    for name, (reg, gamma) in _methods(s).items():
        overrides = {"seed": s["seed"], "data.train_subset": s["train_subset"], "data.test_subset": s["test_subset"],
                     "network.sizes": [784, s["hidden"], 10], "train.epochs": s["epochs"],
                     "train.checkpoint_every": 50, "loss.regulariser": reg, "loss.gamma": gamma}
        jobs.append({"name": name, "run": str(folder / "runs" / f"{reg}-{_key(s)}"), "overrides": overrides})
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
        histories = list(pool.map(_train, jobs))
    rows = [{"method": job["name"], "epoch": k + 1, "n_test": s["test_subset"], **{
        key: h[key] for key in ("accuracy", "spikes_per_hidden_neuron")}}
        for job, history in zip(jobs, histories) for k, h in enumerate(history)]
    epochs = pd.DataFrame(rows)
    figure = training_tradeoff(epochs, folder / "tradeoff")
    final = {job["name"]: {"run": job["run"], "regulariser": job["overrides"]["loss.regulariser"],
                           "gamma": job["overrides"]["loss.gamma"], **{
                               k: history[-1][k] for k in ("accuracy", "spikes_per_hidden_neuron")}}
             for job, history in zip(jobs, histories)}
    return {"networks": final, "epochs": rows, "figures": {"tradeoff": str(figure)},
            "spike_ratio": final["M-SSR"]["spikes_per_hidden_neuron"] / final["no SSR"]["spikes_per_hidden_neuron"]}


def _validate(job):
    """Validate one trained network in Brian2 cpp_standalone (worker process); returns the report."""
    from neurocode.spec import NetworkSpec
    from neurocode.validate import validate_spec
    from neurocode.validate.run import load_samples

    x, y = load_samples("fashion_mnist", job["samples"])
    report = validate_spec(NetworkSpec.load(Path(job["run"]) / "network.npz"), x, y, device="cpp_standalone",
                           directory=job["project"])
    report.pop("_answers")
    return report


def brian2_stage(folder, s, networks, workers):
    """Stage 3: both trained networks back in Brian2, compared with torch on the same images."""
    import pandas as pd

    from neurocode.figures.validation import engine_agreement

    jobs = [{"run": net["run"], "samples": s["samples"], "project": str(folder / f"project_{net['regulariser']}")}
            for net in networks.values()]
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
        reports = list(pool.map(_validate, jobs))
    rows = []
    for name, report in zip(networks, reports):
        hidden = [v for k, v in report["layers"].items() if k != "output"]
        rows.append({"network": name, "accuracy_torch": report["accuracy_torch"],
                     "accuracy_brian2": report["accuracy_brian2"], "agreement": report["agreement"],
                     "hidden_spikes_torch": sum(v["spikes_per_neuron_torch"] for v in hidden) / len(hidden),
                     "hidden_spikes_brian2": sum(v["spikes_per_neuron_brian2"] for v in hidden) / len(hidden),
                     "spike_time_within_dt": min(v["spike_time"]["within_dt"] for v in report["layers"].values()),
                     "spike_time_rmse_steps": max(v["spike_time"]["rmse_dt"] for v in report["layers"].values()),
                     "compile_s": report["timings_s"]["compile"], "run_s": report["timings_s"]["run"]})
    figure = engine_agreement(pd.DataFrame(rows), folder / "agreement")
    return {"samples": s["samples"], "networks": rows, "figures": {"agreement": str(figure)}}


def without_blown_up(res, converge, mads):
    """The spectrum over the initial conditions whose largest exponent stays within ``mads``
    median absolute deviations (at least ``converge``'s tolerance) of the median, and the
    largest exponents of the conditions left out.

    The exact (saltation) treatment can multiply the tangent vectors by a huge factor at a
    threshold crossing that grazes the threshold (a near-zero denominator); such a condition
    reports every exponent in the thousands per second and would swamp the mean.
    """
    import dataclasses

    import numpy as np

    lam1 = res.per_condition[:, 0]
    median = np.median(lam1)
    spread = max(np.median(np.abs(lam1 - median)), converge.bounds(res.exponents)[0] / 10)
    keep = np.abs(lam1 - median) <= mads * spread
    if keep.all() or keep.sum() < 2:
        return res, []
    kept = dataclasses.replace(res, exponents=res.per_condition[keep].mean(axis=0),
                               per_condition=res.per_condition[keep], running=res.running[:, keep])
    bounds = converge.bounds(kept.exponents)
    kept.converged = bool(np.all(np.abs(kept.drift_last_block) <= bounds) and np.all(kept.stderr <= bounds))
    log.warning("Lyapunov: %d of %d initial conditions left out (largest exponents %s 1/s against a median of "
                "%.3g 1/s: a tangent blow-up at a grazing threshold crossing)", (~keep).sum(), keep.size,
                np.round(lam1[~keep], 1).tolist(), median)
    return kept, lam1[~keep].tolist()


def lyapunov_stage(folder, s, network_folder, seed):
    """Stage 4: Lyapunov spectrum of the stage-1 network driven by Poisson spikes like its input."""
    from neurocode.figures.lyapunov import spectrum_errorbars
    from neurocode.lyapunov import Convergence
    from neurocode.lyapunov.spiking import SpikingMap, spiking_spectrum
    from neurocode.spec import NetworkSpec

    spec = NetworkSpec.load(network_folder / "network.npz")
    pop, rec, inp = spec.populations["net"], spec.projection("recurrent"), spec.projection("input")
    n_sources = spec.inputs["input"].size
    drive_rate = spec.metadata["input_rate_hz"] * inp.weights.size / pop.size   # mean input spikes per neuron
    drive = {"rate": drive_rate, "weight": float(inp.weights.mean()), "seed": seed}
    net = SpikingMap(pop.card, pop.params, dt=spec.dt, weights=rec.dense((pop.size, pop.size)), drive=drive)
    converge = Convergence(rtol=s["rtol"], atol=s["atol_per_s"], t_block=s["t_block_s"])
    res = spiking_spectrum(net, batch=s["batch"], k=s["k"], t_sim=s["t_cap_s"], t_transient=s["t_transient_s"],
                           seed=seed, converge=converge)
    res, excluded = without_blown_up(res, converge, s["outlier_mads"])
    title = (f"{pop.size} LIF neurons, {res.per_condition.shape[0]} conditions, T = {res.t_sim:g} s, "
             f"{'converged' if res.converged else 'not converged (cap)'}")
    figure = spectrum_errorbars(res, folder / "spectrum", label=title)
    return {"exponents_per_s": res.exponents.tolist(), "stderr_per_s": res.stderr.tolist(),
            "converged": res.converged, "t_averaged_s": res.t_sim, "n_conditions": int(res.per_condition.shape[0]),
            "excluded_conditions": excluded,
            "drive": {"rate_hz": drive_rate, "weight_A": drive["weight"], "from_sources": n_sources},
            "figures": {"spectrum": str(figure)}}


def copy_figures(results, folder):
    """Copy each stage's figures (PNG and the CSV beside it) into ``folder`` as ``demo_<name>.*``."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for result in results.values():
        for name, png in result["figures"].items():
            for source in (Path(png), Path(png).with_suffix(".csv")):
                shutil.copyfile(source, folder / f"demo_{name}{source.suffix}")
    log.info("copied the figures into %s", folder)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/demo"), help="output folder (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="every stage shrunk: a smoke run")
    parser.add_argument("--workers", type=int, default=2, help="processes for training and Brian2 (default: 2)")
    parser.add_argument("--docs", type=Path, help="also copy every figure (PNG + CSV) here as demo_<name>.*")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("brian2").setLevel(logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from neurocode.figures.report import write_report
    from neurocode.io import write_json

    settings = SETTINGS["quick" if args.quick else "full"]
    out, start = args.out, time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    training_key = settings["training"]
    results = {}
    results["network"] = staged(out / "network", settings["network"],
                                lambda f: network_stage(f, settings["network"]))
    r = results["network"]
    print(f"[1/4] Brian2 cpp_standalone: {r['n_neurons']} LIF neurons, tau_m {r['tau_m_ms']['mean']:.1f} ms "
          f"(CV {r['tau_m_ms']['cv']:.2f}); rates E {r['rate_hz']['excitatory']:.1f} Hz, "
          f"I {r['rate_hz']['inhibitory']:.1f} Hz, CV(ISI) {r['mean_cv_isi']:.2f}", flush=True)
    results["training"] = staged(out / "training", training_key,
                                 lambda f: training_stage(f, settings["training"], args.workers))
    r = results["training"]
    a, b = r["networks"]["no SSR"], r["networks"]["M-SSR"]
    print(f"[2/4] torch TTFS on Fashion-MNIST: no SSR {100 * a['accuracy']:.1f} % at "
          f"{a['spikes_per_hidden_neuron']:.3f} spikes/hidden neuron; M-SSR {100 * b['accuracy']:.1f} % at "
          f"{b['spikes_per_hidden_neuron']:.3f} ({r['spike_ratio']:.2f} x the spikes)", flush=True)
    results["brian2"] = staged(out / "brian2", {**settings["brian2"], "training": training_key},
                               lambda f: brian2_stage(f, settings["brian2"], r["networks"], args.workers))
    for row in results["brian2"]["networks"]:
        print(f"[3/4] Brian2 vs torch, {row['network']}: Brian2 {100 * row['accuracy_brian2']:.1f} %, torch "
              f"{100 * row['accuracy_torch']:.1f} %, same answer {100 * row['agreement']:.1f} % of "
              f"{results['brian2']['samples']} images", flush=True)
    results["lyapunov"] = staged(out / "lyapunov", {**settings["lyapunov"], "network": settings["network"]},
                                 lambda f: lyapunov_stage(f, settings["lyapunov"], out / "network",
                                                          settings["network"]["seed"]))
    r = results["lyapunov"]
    print(f"[4/4] Lyapunov spectrum: lambda_1 = {r['exponents_per_s'][0]:.2f} +- {r['stderr_per_s'][0]:.2f} 1/s, "
          f"{'converged' if r['converged'] else 'NOT converged'} after {r['t_averaged_s']:g} s", flush=True)
    wall = time.perf_counter() - start
    write_json(out / "summary.json", {"mode": "quick" if args.quick else "full", "settings": settings,
                                      "wall_s": wall, "load_average": os.getloadavg(), **results})
    title, intro, sections = report_sections(results, settings)
    stages = sum(r["wall_s"] for r in results.values())
    footer = (f"Made by studies/demo/run.py{' --quick' if args.quick else ''}: the stages took {stages:.0f} s "
              f"when they ran (load average about {max(r['load_average'] for r in results.values()):.1f}), this "
              f"run {wall:.0f} s. Numbers in summary.json, each figure's data in the CSV beside its PNG.")
    page = write_report(out / "report.html", title, sections, intro, footer)
    print(f"wrote {page} ({wall:.0f} s)")
    if args.docs:
        copy_figures(results, args.docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
