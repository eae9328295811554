"""Present many trials to a Brian2 network with one compilation.

Trials are concatenated in time: trial ``k`` occupies ``[k T, (k + 1) T)`` with ``T`` the
trial period (a whole number of time steps). At the start of each trial every population's
state is set back to its initial values (Brian2 ``run_regularly(..., when="start")``, see
:func:`neurocode.brian.builder.build_network`), so trial ``k`` does not depend on trial
``k - 1``. The trials are cut into *chunks* of equal length; on a standalone device one
project is generated and compiled for a chunk (:class:`~neurocode.brian.StandaloneSession`,
input spike table of fixed capacity) and the binary is re-run once per chunk with that
chunk's input spikes through ``run_args``. A chunk of a few hundred trials amortises the
binary's start-up and file I/O (tens of ms) while keeping the spike table and monitors
small; see ``docs/validate.md`` for the measured trade-off. :func:`present_on_cluster` hands
the chunks to the workers of a Dask cluster instead, one task each.

>>> import numpy as np
>>> trials = TrialInputs("in", 3, trial=[0, 0, 1], index=[0, 2, 1], time=[0.0, 1e-3, 5e-4])
>>> trials.n_trials, trials.window(0, 2, period=2e-3)
(2, (array([0, 2, 1]), array([0.    , 0.001 , 0.0025])))
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from neurocode.errors import DeviceError, NetworkSpecError
from neurocode.spec import InputPopulation
from neurocode.brian.builder import build_network, collect
from neurocode.brian.devices import cache_root, check_device, device_context, gpu_present
from neurocode.brian.standalone import StandaloneSession, default_capacity

logger = logging.getLogger(__name__)

#: Trials per chunk (one binary run each) unless the caller says otherwise.
DEFAULT_CHUNK = 500


@dataclass
class TrialInputs:
    """Input spikes of many trials for one input population (times within the trial, s)."""

    population: str
    size: int
    trial: np.ndarray
    index: np.ndarray
    time: np.ndarray
    n_trials: int = 0

    def __post_init__(self):
        self.trial = np.asarray(self.trial, dtype=np.int64)
        self.index = np.asarray(self.index, dtype=np.int64)
        self.time = np.asarray(self.time, dtype=np.float64)
        if not self.trial.shape == self.index.shape == self.time.shape or self.trial.ndim != 1:
            raise NetworkSpecError("TrialInputs: trial, index and time must be 1-D arrays of one length")
        if self.index.size and (self.index.min() < 0 or self.index.max() >= self.size):
            raise NetworkSpecError(f"TrialInputs: neuron indices must lie in [0, {self.size})")
        if self.time.size and self.time.min() < 0:
            raise NetworkSpecError("TrialInputs: spike times must be >= 0 s")
        self.n_trials = max(int(self.n_trials), int(self.trial.max()) + 1 if self.trial.size else 0)
        order = np.argsort(self.trial, kind="stable")
        self.trial, self.index, self.time = self.trial[order], self.index[order], self.time[order]

    @classmethod
    def from_times(cls, population, times):
        """One spike per input neuron and trial: ``times`` (n_trials, size) in s; NaN = no spike."""
        times = np.asarray(times, dtype=np.float64)
        trial, index = np.nonzero(np.isfinite(times))
        return cls(population, times.shape[1], trial, index, times[trial, index], n_trials=times.shape[0])

    def window(self, start, stop, period):
        """Spikes of trials ``start .. stop - 1`` concatenated in time: ``(indices, times)``."""
        lo, hi = np.searchsorted(self.trial, [start, stop])
        return self.index[lo:hi], self.time[lo:hi] + (self.trial[lo:hi] - start) * period

    def max_spikes(self, chunk):
        """Largest number of spikes in any ``chunk`` consecutive trials starting at a multiple of ``chunk``."""
        counts = np.bincount(self.trial // chunk, minlength=max(1, math.ceil(self.n_trials / chunk)))
        return int(counts.max()) if counts.size else 0


@dataclass
class TrialSpikes:
    """Spikes per population, split by trial: ``spikes[pop] = (trial, index, time_in_trial)``."""

    spikes: dict
    sizes: dict
    n_trials: int
    period: float
    device: str
    timings: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def first_spike_times(self, pop):
        """First spike time of every neuron in every trial, ``(n_trials, size)`` s; ``inf`` if none."""
        trial, index, t = self.spikes[pop]
        out = np.full((self.n_trials, self.sizes[pop]), np.inf)
        np.minimum.at(out, (trial, index), t)
        return out

    def counts(self, pop):
        """Spike count of every neuron in every trial, ``(n_trials, size)``."""
        trial, index, _ = self.spikes[pop]
        out = np.zeros((self.n_trials, self.sizes[pop]), dtype=np.int64)
        np.add.at(out, (trial, index), 1)
        return out


def trial_period(duration, dt):
    """A trial period of at least ``duration`` that is a whole number of steps ``dt`` (s)."""
    return math.ceil(duration / dt - 1e-6) * dt


def _split(spikes, period, dt, offset):
    idx, t = spikes
    trial = np.floor((t + 0.25 * dt) / period).astype(np.int64)
    return trial + offset, idx, t - trial * period


def present(spec, trials, period, device="cpp_standalone", chunk=DEFAULT_CHUNK, threads=1, directory=None,
            progress=False, compile_only=False):
    """Run every trial of ``trials`` through ``spec`` in Brian2 and return their spikes.

    Parameters
    ----------
    spec : NetworkSpec
        The network (its input named ``trials.population`` is replaced by the trials).
    trials : TrialInputs
    period : float
        Trial period (s); rounded up to a whole number of steps.
    device : {"cpp_standalone", "runtime", "cuda_standalone"}
    chunk : int
        Trials per run (per binary run on standalone devices).
    threads : int
        OpenMP threads of ``cpp_standalone``.
    directory : str or Path, optional
        Standalone project folder (default: the cache folder of the structure).
    progress : bool
        Show a progress bar over chunks.
    compile_only : bool
        Standalone devices: generate and compile, run nothing; returns ``None`` after
        recording the build in the log. ``cuda_standalone`` without a GPU needs it.

    Returns
    -------
    TrialSpikes or None
    """
    from tqdm.auto import tqdm

    check_device(device)
    if trials.population not in spec.inputs:
        raise NetworkSpecError(f"trials are for input '{trials.population}', but the spec has inputs "
                               f"{sorted(spec.inputs)}")
    if trials.size != spec.inputs[trials.population].size:
        raise NetworkSpecError(f"trials have {trials.size} input neurons, but input '{trials.population}' "
                               f"has {spec.inputs[trials.population].size}")
    if device == "cuda_standalone" and not compile_only and not gpu_present():
        raise DeviceError("cuda_standalone: no CUDA GPU here (nvidia-smi -L lists none); use "
                          "compile_only=True to generate and compile the project, and run it on a GPU machine")
    if chunk < 1:
        raise NetworkSpecError(f"chunk must be >= 1 trial, got {chunk}")
    dt = spec.dt
    period = trial_period(period, dt)
    n = max(trials.n_trials, 1)
    n_chunks = math.ceil(n / chunk)
    chunk = math.ceil(n / n_chunks)
    duration = chunk * period
    sizes = {name: spec.size(name) for name in list(spec.populations) + list(spec.inputs)}
    parts = {name: [] for name in sizes}
    timings = {"build": 0.0, "compile": 0.0, "run": 0.0}
    info = {"chunk": chunk, "n_chunks": n_chunks, "period": period}

    def chunk_spec(k):
        idx, t = trials.window(k * chunk, (k + 1) * chunk, period)
        out = copy.copy(spec)
        out.inputs = dict(spec.inputs)
        out.inputs[trials.population] = InputPopulation(trials.population, trials.size, idx, t)
        return out, idx, t

    bar = tqdm(total=trials.n_trials, unit="trial", desc=f"brian2 {device}", disable=not progress, leave=False)
    if device == "runtime":
        rng_state = np.random.get_state()
        try:
            for k in range(n_chunks):
                spec_k, _, _ = chunk_spec(k)
                from brian2 import second
                t0 = time.perf_counter()
                with device_context("runtime", dt=dt) as dev:
                    built = build_network(spec_k, trial_period=period)
                    dev.seed(spec.seed + k)
                    built.network.run(0 * second, namespace={})
                    t1 = time.perf_counter()
                    built.network.run(duration * second, namespace={})
                    t2 = time.perf_counter()
                    spikes, _, _ = collect(built, spec_k, duration)
                timings["build"] += t1 - t0
                timings["run"] += t2 - t1
                for name, value in spikes.items():
                    parts[name].append(_split(value, period, dt, k * chunk))
                bar.update(min(chunk, trials.n_trials - k * chunk))
        finally:
            np.random.set_state(rng_state)
    else:
        capacity = default_capacity(max(trials.max_spikes(chunk), 1))
        spec_0, _, _ = chunk_spec(0)
        session = StandaloneSession(spec_0, duration, device=device, threads=threads, directory=directory,
                                    input_capacity={trials.population: capacity}, trial_period=period)
        timings["build"] = session.build_info["build_s"]
        timings["compile"] = session.build_info["compile_s"]
        info.update(directory=str(session.directory), recompiled=session.build_info["recompiled"],
                    capacity=capacity)
        if compile_only:
            logger.info("%s: compiled %s (compile only, nothing run)", device, session.directory)
            bar.close()
            return None
        for k in range(n_chunks):
            _, idx, t = chunk_spec(k)
            res = session.run(inputs={trials.population: (idx, t)})
            timings["run"] += res.timings["run_wall"]
            for name, value in res.spikes.items():
                parts[name].append(_split(value, period, dt, k * chunk))
            bar.update(min(chunk, trials.n_trials - k * chunk))
        info["runs"] = session.runs
    bar.close()
    spikes = {}
    for name, chunks in parts.items():
        if chunks:
            trial, idx, t = (np.concatenate(a) for a in zip(*chunks))
            keep = trial < trials.n_trials
            spikes[name] = (trial[keep], idx[keep], t[keep])
        else:
            spikes[name] = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    logger.info("%s: %d trials in %d chunk(s) of %d; build %.1f s, compile %.1f s, run %.1f s", device,
                trials.n_trials, n_chunks, chunk, timings["build"], timings["compile"], timings["run"])
    return TrialSpikes(spikes, sizes, trials.n_trials, period, device, timings, info)


def _present_chunk(spec, trials, period, device, threads):
    """One chunk of trials in a Dask worker; standalone projects in a folder of the worker's own."""
    from distributed import get_worker

    directory = None
    if device != "runtime":
        worker = hashlib.sha256(get_worker().address.encode()).hexdigest()[:8]
        directory = cache_root() / "projects" / f"{device}-worker-{worker}"
    return present(spec, trials, period, device=device, chunk=max(trials.n_trials, 1), threads=threads,
                   directory=directory)


def present_on_cluster(client, spec, trials, period, device="cpp_standalone", chunk=DEFAULT_CHUNK, threads=1):
    """:func:`present` with each chunk of ``chunk`` trials one task on the Dask cluster of ``client``.

    Every worker compiles (standalone devices) into a project folder of its own and re-runs
    it for the later chunks it gets. Trials are independent (state reset at each trial
    start), so the spikes equal those of :func:`present`.

    Returns
    -------
    TrialSpikes
        ``timings`` are summed over the tasks; ``info`` has ``chunk`` and ``n_chunks``.
    """
    if chunk < 1:
        raise NetworkSpecError(f"chunk must be >= 1 trial, got {chunk}")
    n_chunks = max(1, math.ceil(trials.n_trials / chunk))
    futures = []
    for k in range(n_chunks):
        lo, hi = k * chunk, min((k + 1) * chunk, trials.n_trials)
        sel = (trials.trial >= lo) & (trials.trial < hi)
        part = TrialInputs(trials.population, trials.size, trials.trial[sel] - lo, trials.index[sel],
                           trials.time[sel], n_trials=hi - lo)
        futures.append(client.submit(_present_chunk, spec, part, period, device, threads))
    parts = client.gather(futures)
    spikes = {}
    for name in parts[0].spikes:
        trial, idx, t = (np.concatenate(a) for a in zip(*[
            (p.spikes[name][0] + k * chunk, p.spikes[name][1], p.spikes[name][2]) for k, p in enumerate(parts)]))
        spikes[name] = (trial, idx, t)
    timings = {key: sum(p.timings[key] for p in parts) for key in parts[0].timings}
    logger.info("%s on a Dask cluster: %d trials in %d task(s)", device, trials.n_trials, n_chunks)
    return TrialSpikes(spikes, parts[0].sizes, trials.n_trials, parts[0].period, device, timings,
                       {"chunk": chunk, "n_chunks": n_chunks, "period": parts[0].period})
