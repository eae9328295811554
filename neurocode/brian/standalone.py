"""Standalone (C++/CUDA) projects compiled once and run many times with new data.

A :class:`StandaloneSession` generates and compiles the project for a spec's
*structure* once; :meth:`StandaloneSession.run` then starts the compiled binary with
new input spikes, parameter values, weights or initial values passed through Brian2's
``run_args`` (values written to files the binary reads before the network runs), so no
code is generated or compiled again.

Inputs use a fixed-capacity trick: a ``SpikeGeneratorGroup``'s spike table is compiled
with ``capacity`` slots; a run fills the first slots with its spikes (time bins and
neuron indices) and parks the rest at a time bin never reached. Brian2 marks these
arrays read-only, so the builder unlocks exactly those two (``neuron_index`` and
``_timebins``) for ``run_args``. Connectivity and delays are compiled data: changing
them needs a new session (the project folder is shared, so only a few files recompile).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from neurocode.errors import DeviceError, NetworkSpecError
from neurocode.spec import InputPopulation
from neurocode.brian.builder import NEVER, as_quantity, build_network, collect, initial_values
from neurocode.brian.devices import cache_root, check_device, device_context, gpu_present, structure_key
from neurocode.brian.result import SimResult

logger = logging.getLogger(__name__)


def default_capacity(n_spikes):
    """Spike slots for an input with ``n_spikes`` spikes: the next power of two, at least 16."""
    return int(max(16, 2 ** int(np.ceil(np.log2(max(n_spikes, 1))))))


def _binary(directory):
    for name in ("main", "main.exe"):
        path = Path(directory) / name
        if path.exists():
            return path
    return None


def _input_values(spec, capacity, name, value, out):
    if name not in capacity:
        raise NetworkSpecError(f"inputs: no input named '{name}'; have {sorted(capacity)}")
    size, cap = spec.inputs[name].size, capacity[name]
    if isinstance(value, InputPopulation):
        value = (value.indices, value.times)
    indices, times = (np.asarray(v) for v in value)
    inp = InputPopulation(name, size, indices, times)  # validates shapes and ranges
    if inp.indices.size > cap:
        raise NetworkSpecError(f"inputs: '{name}' has {inp.indices.size} spikes but the compiled "
                               f"capacity is {cap}; compile with a larger input_capacity")
    dt = spec.dt
    bins = np.asarray((inp.times + 1e-3 * dt) / dt, dtype=np.int32)
    order = np.lexsort((inp.indices, bins))
    bins, idx = bins[order], inp.indices[order]
    if np.any((np.diff(bins) == 0) & (np.diff(idx) == 0)):
        raise NetworkSpecError(f"inputs: '{name}' has a source spiking twice in one time step (dt = {dt} s)")
    pad = cap - idx.size
    out[("inputs", name, "_timebins")] = np.concatenate([bins, np.full(pad, NEVER, np.int32)])
    out[("inputs", name, "neuron_index")] = np.concatenate([idx, np.zeros(pad, np.int64)]).astype(np.int32)


def run_values(spec, capacity, inputs=None, params=None, weights=None, initial=None, compiled_initial=None):
    """New data for a compiled structure, as ``{(kind, name, variable): SI array}``.

    ``kind`` is ``"inputs"``, ``"groups"`` or ``"synapses"`` (as in
    :meth:`~neurocode.brian.builder.BuiltNetwork.view`); ``capacity`` maps each input to its
    compiled spike slots; ``compiled_initial`` holds the initial-value overrides the project
    was built with. Initial values that depend on changed parameters are recomputed.
    Arguments as in :meth:`StandaloneSession.run`.
    """
    out = {}
    for name, value in (inputs or {}).items():
        _input_values(spec, capacity, name, value, out)
    changed = {}
    for pop, values in (params or {}).items():
        if pop not in spec.populations:
            raise NetworkSpecError(f"params: no population named '{pop}'; have {sorted(spec.populations)}")
        p = spec.populations[pop]
        unknown = set(values) - set(p.card.defaults)
        if unknown:
            raise NetworkSpecError(f"params: card '{p.card.name}' has no parameter(s) {sorted(unknown)}")
        for key, val in values.items():
            val = np.broadcast_to(np.asarray(val, dtype=np.float64), (p.size,))
            out[("groups", pop, key)] = val
            changed.setdefault(pop, {})[key] = val
    projections = {proj.name: proj for proj in spec.projections}
    for name, val in (weights or {}).items():
        if name not in projections:
            raise NetworkSpecError(f"weights: no projection named '{name}'; have {sorted(projections)}")
        proj = projections[name]
        val = np.asarray(val, dtype=np.float64)
        if val.shape != proj.i.shape:
            raise NetworkSpecError(f"weights: '{name}' needs {proj.i.size} values (one per synapse), "
                                   f"got shape {val.shape}")
        if val.size:
            out[("synapses", name, spec.populations[proj.target].card.weight)] = val
    compiled_initial = compiled_initial or {}
    for pop in set(changed) | set(initial or {}):
        p = spec.populations[pop]
        params_now = dict(p.params, **changed.get(pop, {}))
        shadow = type(p)(p.name, p.card, p.size, {k: np.array(v) for k, v in params_now.items()})
        overrides = dict(compiled_initial.get(pop, {}), **(initial or {}).get(pop, {}))
        for var, value in initial_values(shadow, overrides).items():
            if isinstance(value, str):
                if var in (initial or {}).get(pop, {}):
                    raise NetworkSpecError(f"initial: '{pop}.{var}' = {value!r} cannot be evaluated "
                                           "outside Brian2; give SI values")
                continue
            out[("groups", pop, var)] = value
    return out


class StandaloneSession:
    """A compiled standalone project for one network structure, run many times.

    Parameters
    ----------
    spec : NetworkSpec
        Structure (cards, sizes, connectivity, delays) and the default data.
    duration : float or brian2.Quantity
        Simulated time per run (s).
    device : {"cpp_standalone", "cuda_standalone"}
    record : dict of str -> list of str, optional
        State variables to record per population.
    threads : int
        OpenMP threads (``cpp_standalone``).
    directory : str or Path, optional
        Project folder; by default ``<cache>/projects/<device>-<structure hash>``, so a
        structure seen before (in any process) reuses its compiled objects.
    input_capacity : dict of str -> int, optional
        Spike slots per input (default :func:`default_capacity` of the spec's spikes).
    initial : dict, optional
        Initial-value overrides per population (see :func:`~neurocode.brian.builder.build_network`).
    trial_period : float, optional
        Reset every population's state to its initial values every ``trial_period`` seconds
        (trials concatenated in time; see :func:`~neurocode.brian.builder.build_network`).

    Attributes
    ----------
    compile_count : int
        How many times this session ran the compiler and got a new binary (0 or 1).
    build_info : dict
        ``directory``, ``binary``, ``binary_mtime_ns`` (after the build) and timings.
    runs : int
        Number of completed :meth:`run` calls.
    """

    def __init__(self, spec, duration, device="cpp_standalone", record=None, threads=1, directory=None,
                 input_capacity=None, initial=None, trial_period=None):
        from brian2 import second

        check_device(device)
        if device == "runtime":
            raise DeviceError("StandaloneSession needs device 'cpp_standalone' or 'cuda_standalone'; "
                              "use neurocode.brian.simulate for the runtime device")
        self.spec, self.device, self.threads = spec, device, threads
        self.duration = float(duration / second) if hasattr(duration, "dim") else float(duration)
        if not self.duration > 0:
            raise NetworkSpecError(f"duration must be > 0 s, got {self.duration}")
        capacity = {name: default_capacity(inp.indices.size) for name, inp in spec.inputs.items()}
        capacity.update(input_capacity or {})
        extra = None if trial_period is None else {"trial_period": float(trial_period)}
        key = structure_key(spec, self.duration, record or {}, device, threads, extra)
        self.directory = Path(directory) if directory else cache_root() / "projects" / f"{device}-{key}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.runs, self.compile_count = 0, 0
        self._initial = initial or {}
        t0 = time.perf_counter()
        with device_context(device, threads=threads, dt=spec.dt) as dev:
            built = build_network(spec, record, initial, input_capacity=capacity, duration=self.duration,
                                  trial_period=trial_period)
            dev.seed(spec.seed)
            built.network.run(self.duration * second, namespace={}, report="text",
                              report_period=2 * second)
            t1 = time.perf_counter()
            before = _binary(self.directory)
            before = before.stat().st_mtime_ns if before else None
            try:
                dev.build(directory=str(self.directory), compile=True, run=False, with_output=False)
            except RuntimeError as exc:
                raise DeviceError(f"{device}: building the project in {self.directory} failed: {exc}") from exc
            t2 = time.perf_counter()
        binary = _binary(self.directory)
        if binary is None:
            raise DeviceError(f"{device}: no binary in {self.directory} after compiling; see its make output")
        mtime = binary.stat().st_mtime_ns
        self.compile_count = int(mtime != before)
        self.dev, self.built = dev, built
        self.build_info = {"directory": str(self.directory), "binary": str(binary), "binary_mtime_ns": mtime,
                           "build_s": t1 - t0, "compile_s": t2 - t1, "recompiled": bool(self.compile_count)}
        logger.info("%s project %s: generated in %.1f s, compiled in %.1f s (%s)", device, self.directory,
                    t1 - t0, t2 - t1, "new binary" if self.compile_count else "up to date, not recompiled")

    def _run_args(self, inputs, params, weights, initial):
        values = run_values(self.spec, self.built.input_capacity, inputs, params, weights, initial, self._initial)
        views = {key: self.built.view(*key) for key in values}
        return {views[key]: as_quantity(views[key], val) for key, val in values.items()}

    def run(self, inputs=None, params=None, weights=None, initial=None, progress=False):
        """Run the compiled project with new data; nothing is regenerated or recompiled.

        Parameters
        ----------
        inputs : dict of str -> (indices, times) or InputPopulation, optional
            New spike trains per input (times in s); at most the compiled capacity.
        params : dict of str -> dict of str -> array or float, optional
            New per-neuron parameter values (SI) per population.
        weights : dict of str -> array, optional
            New weights (SI) per projection, one per synapse (same connectivity).
        initial : dict of str -> dict of str -> array or float, optional
            New initial values (SI) per population.
        progress : bool
            Show the binary's progress report.

        Returns
        -------
        SimResult
        """
        if self.device == "cuda_standalone" and not gpu_present():
            raise DeviceError(
                f"cuda_standalone: the project in {self.directory} is compiled, but running it needs a "
                "CUDA GPU and none was found (nvidia-smi -L lists none). It was compiled without probing "
                "(devices.cuda_standalone.cuda_backend.detect_gpus=False, compute_capability="
                f"{os.environ.get('NEUROCODE_CUDA_COMPUTE_CAPABILITY', '9.0')}); run it on a GPU machine")
        run_args = self._run_args(inputs, params, weights, initial)
        t0 = time.perf_counter()
        try:
            self.dev.run(directory=str(self.directory), with_output=progress, run_args=run_args)
        except RuntimeError as exc:
            raise DeviceError(f"{self.device}: running {self.directory} failed: {exc}") from exc
        finally:
            for name in self.dev.run_args_arrays:
                Path(self.directory, "static_arrays", name).unlink(missing_ok=True)
                Path(self.directory, "static_arrays", name + ".lock").unlink(missing_ok=True)
        wall = time.perf_counter() - t0
        spikes, states, t = collect(self.built, self.spec, self.duration)
        self.runs += 1
        sizes = {name: self.spec.size(name) for name in spikes}
        timings = {"build": self.build_info["build_s"] if self.runs == 1 else 0.0,
                   "compile": self.build_info["compile_s"] if self.runs == 1 else 0.0,
                   "run": float(getattr(self.dev, "_last_run_time", wall) or wall), "run_wall": wall}
        return SimResult(spikes, states, t, self.duration, self.device, timings, sizes,
                         metadata={"directory": str(self.directory), "run": self.runs})
