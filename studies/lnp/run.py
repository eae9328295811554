"""LNP study: LNP vs random vs activity pruning of an HRSNN or a CHRSNN, at equal neuron and synapse counts.

For each seed a dense network (``--network hrsnn`` or ``chrsnn``; LIF card, gamma-distributed
``tau_m``) is built, evaluated and pruned to each synapse sparsity by LNP, random and
activity pruning (the baselines get exactly LNP's final neuron and synapse counts, and all
three the same weight rescaling rule, ``"rescale"`` of the config: by default one gain that
restores the dense network's spectral radius, and the same E/I rule, ``"ei"``: by default
``"separate"``, excitatory and inhibitory neurons and synapses kept at their dense shares).
Only a ridge readout is trained, on (a) Lorenz-63 prediction (NRMSE, held-out last 30 %)
and (b) spoken keywords (accuracy, held-out speakers); see ``studies/lnp/tasks.py``. For
every network the study also records the 10 largest Lyapunov exponents under frozen
Poisson noise and the ``tau_m`` values.

Choices the paper does not state (or that could not be read) are in ``PRESETS`` and
``COMMON``, notably: the operating point of the dense networks (``w_exc``, ``in_gain``),
chosen without a task score by ``studies/lnp/operating_point.py`` (asynchronous irregular,
5-40 Hz) at 200 neurons and in-degree ~20, which the ``large`` preset (1,000 neurons) keeps
by keeping the in-degree (``p = 0.02``); neuron keep fraction ``sqrt(1 - s) + 0.2`` at
synapse sparsity ``s`` (so 90 % synapse sparsity goes with ~48 % neuron sparsity); LNP
steps 1 and 5 and the spectra use the *surrogate* spike treatment at the 1 ms step (the
exact treatment is first order in dt and at 1 ms gives exponents of +170 1/s against +8 1/s
at 0.1 ms, where it costs 10x the steps).

**Checkpoints.** Every job, one per (network, seed, method, sparsity) plus the dense network
of each seed, writes its row to ``DIR/rows/<key>.json`` (atomic; ``key``: a hash of the job's
configuration, :func:`neurocode.cluster.run_keyed`) and a job whose row exists is not run
again. A killed run is resumed by the same command; more seeds or sparsities can be added
later to the same folder, and ``metrics.csv`` etc. are rewritten after every finished job
from all rows of the requested grid found so far.

Jobs run on a Dask LocalCluster (one worker by default: the machine's 2 cores are shared) or on a
running scheduler (``--scheduler tcp://HOST:PORT``; workers started in this folder, see
``docs/cluster.md``)::

    nice -n 5 .venv/bin/python studies/lnp/run.py --quick --out results/lnp/quick
    nice -n 10 .venv/bin/python studies/lnp/run.py --preset large --network hrsnn --sparsities 0.9 \
        --out results/lnp/large-hrsnn
    .venv/bin/python studies/lnp/make_docs.py results/lnp/large-hrsnn results/lnp/large-chrsnn

Writes ``DIR/metrics.csv`` (one row per network), ``DIR/spectra.csv``, ``DIR/timescales.csv``,
``DIR/lnp_info.json`` and ``DIR/config.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
log = logging.getLogger("lnp_study")

PRESETS = {
    "quick": {"n_dense": 100, "seeds": [0, 1], "sparsities": [0.75, 0.9], "kw_train": 300, "kw_test": 150,
              "lorenz_samples": 1200},
    "full": {"n_dense": 200, "seeds": list(range(10)), "sparsities": [0.75, 0.9, 0.95], "kw_train": 600,
             "kw_test": 300, "lorenz_samples": 1200},
    # 1,000 neurons at the in-degree (~20) of the 200-neuron networks, so the operating point still holds:
    # HRSNN p = 0.02; CHRSNN 4 clusters of 250, 0.06 x 249 inside + 0.01 x 500 from the two linked clusters
    "large": {"n_dense": 1000, "p": 0.02, "p_in": 0.06, "p_out": 0.01, "seeds": list(range(5)),
              "sparsities": [0.9, 0.75, 0.95], "kw_train": 600, "kw_test": 300, "lorenz_samples": 1200},
}
COMMON = {
    "p": 0.1, "dt": 1e-3, "tau_mean": 20e-3, "tau_cv": 0.5, "g_inh": 4.0,
    # operating point (studies/lnp/operating_point.py, task-free): the strongest recurrence of the grid whose
    # dense HRSNN and CHRSNN stay asynchronous irregular (5-40 Hz, CV of ISIs >= 0.8, chi <= 0.3)
    "w_exc": 0.05e-9, "in_gain": 0.04e-9,
    "in_bias": 0.02e-9,                       # A per step into I_syn (alone: ~10 mV, below threshold)
    # CHRSNN: 4 clusters (tau_m means 10-40 ms), in-degree ~20 as in the HRSNN (0.3 x 49 + 0.05 x 100)
    "n_clusters": 4, "p_in": 0.3, "p_out": 0.05, "tau_means": [10e-3, 40e-3],
    "rescale": "radius",                      # weight rule of all three methods (neurocode.lyapunov.prune)
    "ei": "separate",                         # E/I rule of all three methods (neurocode.lyapunov.prune)
    "treatment": "surrogate",                 # LNP steps 1 and 5, and the spectra
    # step 5 searches the cv of tau_m only: on the validation split (studies/lnp/ablate.py, HRSNN, 90 %, 5 seeds)
    # a free mean picked slow laws (~35 ms) and cost 4 points of keyword accuracy and 0.15 of Lorenz NRMSE
    "step5_keep_mean": True,
    "steps_per_frame": 5, "steps_per_sample": 5,
    "lorenz_dt": 0.02, "horizon": 10, "washout": 50, "segments": 16, "filter_tau": 0.02,
    # frozen Poisson noise of steps 1, 5 and the spectra: the task input's mean (0.5 x 0.04 nA = in_bias per step)
    "drive_rate": 500.0, "drive_weight": 0.04e-9,
    "spectrum_k": 10, "spectrum_t": 0.1, "spectrum_transient": 0.05,
}
KINDS = ("hrsnn", "chrsnn")
METHODS = ("lnp", "random", "activity")


def keep_neuron_fraction(sparsity):
    """Neurons kept at a synapse sparsity (the induced subgraph must hold the synapses)."""
    return float(min(1.0, np.sqrt(1.0 - sparsity) + 0.2))


def build(cfg, seed, kind="hrsnn"):
    """The dense network of one seed: ``kind`` ``"hrsnn"`` or ``"chrsnn"`` of ``cfg["n_dense"]`` neurons."""
    from neurocode.lyapunov.hrsnn import chrsnn, hrsnn
    common = {"w_exc": cfg["w_exc"], "g_inh": cfg["g_inh"], "tau_cv": cfg["tau_cv"], "dt": cfg["dt"], "seed": seed}
    if kind == "hrsnn":
        return hrsnn(n=cfg["n_dense"], p=cfg["p"], tau_mean=cfg["tau_mean"], **common)
    if kind == "chrsnn":
        return chrsnn(n_clusters=cfg["n_clusters"], cluster_size=cfg["n_dense"] // cfg["n_clusters"],
                      p_in=cfg["p_in"], p_out=cfg["p_out"], tau_means=tuple(cfg["tau_means"]), **common)
    raise ValueError(f"unknown network kind {kind!r}; choose one of {list(KINDS)}")


def lyapunov(spec, cfg, seed):
    from neurocode.lyapunov.prune import dense_weights
    from neurocode.lyapunov.spiking import SpikingMap, spiking_spectrum
    pop = spec.populations["hrsnn"]
    net = SpikingMap(pop.card, pop.params, dt=spec.dt, weights=dense_weights(spec),
                     drive={"rate": cfg["drive_rate"], "weight": cfg["drive_weight"], "seed": seed})
    res = spiking_spectrum(net, batch=1, k=min(cfg["spectrum_k"], 2 * pop.size), t_sim=cfg["spectrum_t"],
                           t_transient=cfg["spectrum_transient"], treatment=cfg["treatment"], seed=seed)
    return res.exponents


def evaluate(spec, cfg, seed, data):
    """Both tasks and the spectrum of one network; returns (metrics, rates, exponents).

    The metrics hold the seconds of each stage (``lorenz_seconds``, ``keyword_seconds``,
    ``spectrum_seconds``) and the inhibitory shares of the neurons and synapses.
    """
    from neurocode.lyapunov.prune import excitatory_neurons, spectral_radius
    from tasks import keyword_task, lorenz_task
    t0 = time.perf_counter()
    m = dict(lorenz_task(spec, cfg, seed))
    t1 = time.perf_counter()
    kw, rates = keyword_task(spec, data, cfg, seed)
    m.update(kw)
    t2 = time.perf_counter()
    lam = lyapunov(spec, cfg, seed)
    t3 = time.perf_counter()
    pop, w = spec.populations["hrsnn"], spec.projection("recurrent").weights
    m.update({"network": cfg["network"], "neurons": int(pop.size), "synapses": int(w.size),
              "inhibitory_fraction": float((w < 0).mean()),
              "inhibitory_neuron_fraction": float((~excitatory_neurons(spec)).mean()),
              "weight_gain": spec.metadata.get("weight_gain", 1.0),
              "spectral_radius_nA": 1e9 * spectral_radius(spec),
              "lambda_max_per_s": float(lam[0]), "tau_m_mean_ms": 1e3 * float(np.mean(pop.params["tau_m"])),
              "tau_m_cv": float(np.std(pop.params["tau_m"]) / np.mean(pop.params["tau_m"])),
              "lorenz_seconds": t1 - t0, "keyword_seconds": t2 - t1, "spectrum_seconds": t3 - t2,
              "seconds": t3 - t0})
    return m, rates, lam


def _start():
    import torch
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO)


def _row(spec, cfg, m, lam, **extra):
    m.update({"seed": cfg["seed"], "method": cfg["method"], "target_sparsity": cfg["sparsity"]})
    return {"metrics": m, "spectrum": np.asarray(lam).tolist(),
            "tau_m": spec.populations["hrsnn"].params["tau_m"].tolist(), **extra}


def dense_job(cfg, data):
    """The dense network of ``cfg["seed"]``: its row, with per-neuron rates and LNP step-1 exponents."""
    from neurocode.lyapunov.prune import neuron_exponents
    _start()
    spec = build(cfg, cfg["seed"], cfg["network"])
    m, rates, lam = evaluate(spec, cfg, cfg["seed"], data)
    t0 = time.perf_counter()
    exps = neuron_exponents(spec, drive_rate=cfg["drive_rate"], drive_weight=cfg["drive_weight"],
                            treatment=cfg["treatment"], seed=cfg["seed"])
    m["step1_seconds"] = time.perf_counter() - t0
    return _row(spec, cfg, m, lam, rates=np.asarray(rates).tolist(), exponents=np.asarray(exps).tolist())


def lnp_matched(spec, target_syn, keep_n, exponents, cfg, seed, optimise=True, nodes="betweenness"):
    """LNP whose *final* synapse count (after node pruning and delocalisation) is near the
    target: the count kept by noise pruning is rescaled twice; then step 5 (``optimise``).
    ``nodes``: step 3's rule (:func:`~neurocode.lyapunov.prune.lnp_prune`)."""
    from neurocode.lyapunov.prune import lnp_prune, optimise_timescales
    n_syn = spec.projection("recurrent").i.size
    guess = target_syn
    for _ in range(3):
        out, info = lnp_prune(spec, min(guess, n_syn), keep_n, exponents=exponents, optimise=False, seed=seed,
                              rescale=cfg["rescale"], nodes=nodes, ei=cfg["ei"])
        got = out.projection("recurrent").i.size
        if abs(got - target_syn) <= 0.03 * target_syn or guess >= n_syn:
            break
        guess = int(round(guess * target_syn / max(got, 1)))
    if optimise:
        tau, info["timescale_search"] = optimise_timescales(out, seed=seed, drive_rate=cfg["drive_rate"],
                                                            drive_weight=cfg["drive_weight"],
                                                            treatment=cfg["treatment"],
                                                            keep_mean=cfg["step5_keep_mean"])
        out.populations["hrsnn"].params["tau_m"] = tau
    return out, info


def baselines(spec, keep_n, n_syn, rates, cfg, seed):
    """Random and activity pruning at the given counts, with the study's weight and E/I rules."""
    from neurocode.lyapunov.prune import activity_prune, random_prune
    rule = "none" if cfg["rescale"] == "inverse-p" else cfg["rescale"]
    return {"random": random_prune(spec, keep_n, n_syn, seed=seed, rescale=rule, ei=cfg["ei"]),
            "activity": activity_prune(spec, keep_n, n_syn, rates, rescale=rule, ei=cfg["ei"])}


def lnp_job(cfg, data, dense):
    """LNP of ``cfg["seed"]`` at synapse sparsity ``cfg["sparsity"]``, evaluated."""
    _start()
    seed, sparsity = cfg["seed"], cfg["sparsity"]
    spec = build(cfg, seed, cfg["network"])
    n_syn = spec.projection("recurrent").i.size
    keep_n = int(round(keep_neuron_fraction(sparsity) * cfg["n_dense"]))
    t0 = time.perf_counter()
    lnp, info = lnp_matched(spec, int(round((1 - sparsity) * n_syn)), keep_n, dense["exponents"], cfg, seed)
    seconds = time.perf_counter() - t0
    m, _, lam = evaluate(lnp, cfg, seed, data)
    m["prune_seconds"] = seconds
    return _row(lnp, cfg, m, lam, timescale_search=info["timescale_search"])


def baseline_job(cfg, data, dense, lnp):
    """Random or activity pruning (``cfg["method"]``) at the final counts of LNP's row ``lnp``, evaluated."""
    _start()
    seed = cfg["seed"]
    spec = build(cfg, seed, cfg["network"])
    t0 = time.perf_counter()
    out = baselines(spec, lnp["metrics"]["neurons"], lnp["metrics"]["synapses"], np.asarray(dense["rates"]),
                    cfg, seed)[cfg["method"]]
    seconds = time.perf_counter() - t0
    m, _, lam = evaluate(out, cfg, seed, data)
    m["prune_seconds"] = seconds
    return _row(out, cfg, m, lam)


JOBS = {"dense": dense_job, "lnp": lnp_job, "random": baseline_job, "activity": baseline_job}
#: config entries that list the grid, not a job: left out of a job's key
GRID_KEYS = ("seeds", "sparsities", "preset")


def job_config(cfg, seed, method, sparsity):
    """The configuration (and so the checkpoint key) of one job: the study's config without the grid lists."""
    return {**{k: v for k, v in cfg.items() if k not in GRID_KEYS}, "seed": seed, "method": method,
            "sparsity": sparsity}


def job(cfg, rows, data, *deps):
    """One job's row: computed by ``JOBS[cfg["method"]]`` or read back from ``rows`` (:func:`run_keyed`)."""
    from neurocode.cluster import run_keyed
    return run_keyed(lambda c: JOBS[c["method"]](c, data, *deps), cfg, rows)


def tables(results, cfg):
    """``metrics``, ``spectra`` and ``timescales`` frames and the LNP infos from the rows found so far."""
    import pandas as pd
    rows, spectra, taus, infos = [], [], [], {}
    for r in results:
        m = r["metrics"]
        seed, method, sparsity = m["seed"], m["method"], m["target_sparsity"]
        rows.append(m)
        spectra.extend({"network": cfg["network"], "seed": seed, "method": method, "target_sparsity": sparsity,
                        "index": i, "exponent_per_s": float(v)} for i, v in enumerate(r["spectrum"]))
        if seed == cfg["seeds"][0]:
            taus.extend({"network": cfg["network"], "method": method, "target_sparsity": sparsity,
                         "tau_m_ms": 1e3 * float(v)} for v in r["tau_m"])
        if method == "lnp":
            infos[f"{sparsity}-{seed}"] = {"timescale_search": r["timescale_search"]}
    df = pd.DataFrame(rows)
    dense = df[df["method"] == "dense"].set_index("seed")
    df["synapse_sparsity"] = 1 - df["synapses"] / df["seed"].map(dense["synapses"])
    df["neuron_sparsity"] = 1 - df["neurons"] / df["seed"].map(dense["neurons"])
    return df, pd.DataFrame(spectra), pd.DataFrame(taus), infos


def write_tables(out, results, cfg):
    from neurocode.io import write_json, write_text
    df, spectra, taus, infos = tables(results, cfg)
    write_text(out / "metrics.csv", df.to_csv(index=False))
    write_text(out / "spectra.csv", spectra.to_csv(index=False))
    write_text(out / "timescales.csv", taus.to_csv(index=False))
    write_json(out / "lnp_info.json", infos)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small preset (a few minutes on 2 busy cores)")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="network size and grid (default: full; --quick: quick)")
    ap.add_argument("--out", required=True, help="results folder (a run killed there is resumed by the same command)")
    ap.add_argument("--network", choices=KINDS, default="hrsnn", help="dense network kind")
    ap.add_argument("--workers", type=int, default=1, help="LocalCluster workers (at most 2)")
    ap.add_argument("--scheduler", help="address of a running Dask scheduler (default: a LocalCluster)")
    ap.add_argument("--sparsities", type=float, nargs="+", help="override the preset's synapse sparsities")
    ap.add_argument("--seeds", type=int, nargs="+", help="override the preset's seeds")
    ap.add_argument("--rescale", choices=["radius", "none", "inverse-p"], default=COMMON["rescale"],
                    help="weight rule after pruning (inverse-p: LNP divides by the keep probability, the "
                         "baselines keep their weights)")
    ap.add_argument("--ei", choices=["separate", "mixed"], default=COMMON["ei"],
                    help="E/I rule of all three methods: 'separate' keeps excitatory and inhibitory neurons and "
                         "synapses at their dense shares, 'mixed' ranks them together")
    args = ap.parse_args()
    if not args.scheduler and not 1 <= args.workers <= 2:
        ap.error("--workers must be 1 or 2 (the machine has 2 shared cores)")
    if args.quick and args.preset not in (None, "quick"):
        ap.error("--quick is --preset quick")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from dask.distributed import as_completed

    from neurocode.cluster import client, config_key
    from neurocode.io import write_json
    from tasks import keyword_data
    preset = "quick" if args.quick else args.preset or "full"
    cfg = {**COMMON, **PRESETS[preset], "preset": preset, "network": args.network, "rescale": args.rescale,
           "ei": args.ei}
    if args.sparsities:
        cfg["sparsities"] = list(args.sparsities)
    if args.seeds:
        cfg["seeds"] = args.seeds
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", cfg)
    t0 = time.perf_counter()
    data = keyword_data(cfg, out / "keywords.npz")
    log.info("keywords: %d train / %d test clips, %s frames x %d bands (%.0f s)", len(data[1]), len(data[3]),
             data[0].shape[1], data[0].shape[2], time.perf_counter() - t0)
    rows = str(out / "rows")
    results = []
    with client(args.scheduler, args.workers) as c:
        data_f = c.scatter(data, broadcast=True)
        futures = []

        def submit(method, seed, sp, *deps):
            """A finished job's row, read here (so the tables are whole from the start), or a future."""
            conf = job_config(cfg, seed, method, sp)
            done = Path(rows) / f"{config_key(conf)}.json"
            if done.is_file():
                results.append(json.loads(done.read_text()))
                return results[-1]
            futures.append(c.submit(job, conf, rows, data_f, *deps, key=f"{method}-{sp}-{seed}", pure=False))
            return futures[-1]

        # per seed: dense, then per sparsity LNP and the baselines at its counts (submission order = priority)
        for seed in cfg["seeds"]:
            dense = submit("dense", seed, 0.0)
            for sp in cfg["sparsities"]:
                lnp = submit("lnp", seed, sp, dense)
                for m in ("random", "activity"):
                    submit(m, seed, sp, dense, lnp)
        log.info("%d jobs finished before, %d to run", len(results), len(futures))
        if any(x["metrics"]["method"] == "dense" for x in results):
            write_tables(out, results, cfg)
        for fut in as_completed(futures):
            r = fut.result()
            results.append(r)
            m = r["metrics"]
            log.info("%s: NRMSE %.3f, accuracy %.3f, %d neurons, %d synapses (%.0f %% inhibitory), "
                     "lambda_max %.1f 1/s, %.0f s", fut.key, m["lorenz_nrmse"], m["keyword_accuracy"], m["neurons"],
                     m["synapses"], 100 * m["inhibitory_fraction"], m["lambda_max_per_s"], m["seconds"])
            if any(x["metrics"]["method"] == "dense" for x in results):
                write_tables(out, results, cfg)
    log.info("done in %.0f s: %s", time.perf_counter() - t0, out)


if __name__ == "__main__":
    main()
