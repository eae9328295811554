"""``simulate``: run a NetworkSpec in Brian2 on one device and return a :class:`SimResult`."""

from __future__ import annotations

import logging
import time

import numpy as np

from neurocode.errors import NetworkSpecError
from neurocode.brian.builder import build_network, check_record, collect
from neurocode.brian.devices import check_device, connectivity_key, device_context, structure_key
from neurocode.brian.result import SimResult
from neurocode.brian.standalone import StandaloneSession, default_capacity

logger = logging.getLogger(__name__)

#: Longest run accepted, in time steps (1000 s at dt = 0.5 us).
MAX_STEPS = 2e9
#: Standalone sessions of this process, by structure and connectivity: a spec with the
#: same structure is run again through ``run_args`` instead of being rebuilt.
_SESSIONS = {}


def _seconds(duration, spec):
    """The run's duration (s), checked against the spec before Brian2 sees anything.

    Input spikes after the end are reported (a warning), since a run shorter than its input is common.
    """
    from brian2 import second
    value = float(duration / second) if hasattr(duration, "dim") else float(duration)
    if not 0 < value < np.inf:
        raise NetworkSpecError(f"duration must be > 0 s and finite, got {duration}")
    if value < spec.dt:
        raise NetworkSpecError(f"duration {value:g} s is shorter than the time step dt = {spec.dt:g} s: "
                               "no step would run")
    if value / spec.dt > MAX_STEPS:
        raise NetworkSpecError(f"duration {value:g} s at dt = {spec.dt:g} s is {value / spec.dt:.3g} steps, more than "
                               f"{MAX_STEPS:.3g}; use a larger dt or a shorter duration")
    for inp in spec.inputs.values():
        late = inp.times >= value
        if late.any():
            logger.warning("input '%s': %d of %d spikes lie at or after the end of the run (%g s), first %g s at "
                           "index %d; they are not delivered", inp.name, int(late.sum()), late.size, value,
                           inp.times[int(np.argmax(late))], int(np.argmax(late)))
    return value


class _Progress:
    """Brian2 ``report`` callable drawing a tqdm bar (runtime device)."""

    def __init__(self, duration):
        from tqdm.auto import tqdm
        self.bar = tqdm(total=round(duration, 6), unit="s(bio)", desc="simulating", leave=False)

    def __call__(self, elapsed, completed, start, duration):
        self.bar.n = round(float(completed) * self.bar.total, 6)
        self.bar.refresh()
        if completed >= 1.0:
            self.bar.close()


def simulate(spec, duration, device="runtime", target="numpy", record=None, threads=1, directory=None,
             progress=True, initial=None):
    """Simulate ``spec`` for ``duration`` with Brian2.

    Parameters
    ----------
    spec : NetworkSpec
    duration : float or brian2.Quantity
        Simulated time (s if a float).
    device : {"runtime", "cpp_standalone", "cuda_standalone"}
    target : {"numpy", "cython"}
        Code-generation target of the runtime device.
    record : dict of str -> list of str, optional
        State variables to record per population, e.g. ``{"exc": ["v", "I_syn"]}``.
    threads : int
        OpenMP threads for ``cpp_standalone``.
    directory : str or Path, optional
        Standalone project folder (default: a cache folder named by the structure hash).
    progress : bool
        Show progress (tqdm for runtime, the binary's report for standalone).
    initial : dict, optional
        Initial-value overrides per population: ``{"exc": {"v": values_SI_or_expression}}``.

    Returns
    -------
    SimResult

    Examples
    --------
    >>> from neurocode.spec import NetworkSpec
    >>> spec = NetworkSpec(dt=1e-4)
    >>> _ = spec.add_population("n", "lif", 1, tau_m="10*ms")
    >>> spec.add_input("in", 1, indices=[0], times=[1e-3])
    >>> _ = spec.connect("in", "n", p=1.0, weight="2*nA")
    >>> res = simulate(spec, 0.01, record={"n": ["I_syn"]}, progress=False)
    >>> res.states["n"]["I_syn"].shape, res.device
    ((100, 1), 'runtime')
    >>> float(res.states["n"]["I_syn"][11, 0])   # arrives in step 10, recorded at step 11's start
    2e-09
    """
    check_device(device, target)
    duration = _seconds(duration, spec)
    record = check_record(spec, record)
    if device != "runtime":
        return _simulate_standalone(spec, duration, device, record, threads, directory, progress, initial)
    from brian2 import second
    t0 = time.perf_counter()
    rng_state = np.random.get_state()  # Brian2's runtime seed() reseeds numpy's global generator
    try:
        with device_context("runtime", target=target, dt=spec.dt) as dev:
            built = build_network(spec, record, initial)
            dev.seed(spec.seed)
            t1 = time.perf_counter()
            built.network.run(0 * second, namespace={})      # code generation and compilation
            t2 = time.perf_counter()
            report = _Progress(duration) if progress else None
            built.network.run(duration * second, namespace={}, report=report, report_period=1 * second)
            t3 = time.perf_counter()
            spikes, states, t = collect(built, spec, duration)
    finally:
        np.random.set_state(rng_state)
    sizes = {name: spec.size(name) for name in spikes}
    return SimResult(spikes, states, t, duration, "runtime", {"build": t1 - t0, "compile": t2 - t1, "run": t3 - t2},
                     sizes, target=target)


def _simulate_standalone(spec, duration, device, record, threads, directory, progress, initial):
    capacity = {name: default_capacity(inp.indices.size) for name, inp in spec.inputs.items()}
    key = (structure_key(spec, duration, record, device, threads), connectivity_key(spec),
           tuple(sorted(capacity.items())), str(directory), repr(initial))
    session = _SESSIONS.get(key)
    if session is None:
        session = StandaloneSession(spec, duration, device, record, threads, directory, capacity, initial)
        _SESSIONS[key] = session
        return session.run(progress=progress)
    logger.info("%s: same structure as an earlier run in this process; re-running %s with new data",
                device, session.directory)
    inputs = {name: (inp.indices, inp.times) for name, inp in spec.inputs.items()}
    params = {name: pop.params for name, pop in spec.populations.items()}
    weights = {proj.name: proj.weights for proj in spec.projections}
    return session.run(inputs=inputs, params=params, weights=weights, progress=progress)
