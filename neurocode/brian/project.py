"""Build here, run there: a standalone project folder that runs anywhere, and its results read back.

:func:`build_project` generates and compiles a ``cpp_standalone`` or ``cuda_standalone``
project for a NetworkSpec into one folder (CUDA compiles without a GPU, see
:mod:`neurocode.brian.devices`). The folder holds the binary and its sources, the spec
(``spec.npz``), a manifest (``neurocode-project.json``: what each result file holds and
which compiled arrays take new data), ``run.sh`` and a ``README.md``. Copy the folder
anywhere (a GPU machine), run ``sh run.sh`` there, and :func:`collect_project` reads what
the binary wrote into the :class:`~neurocode.brian.SimResult` that
:func:`~neurocode.brian.simulate` returns.

Every path is relative: Brian2's binary reads ``static_arrays/`` and writes ``results/``
relative to its working folder, and ``run.sh`` changes into its own folder first.
:func:`set_run_data` gives the compiled project a new spec's inputs, weights and
parameters (same structure) as files named on the binary's command line, Brian2's
``run_args``: nothing is regenerated or recompiled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from neurocode import __version__
from neurocode.errors import DeviceError, NetworkSpecError
from neurocode.io import write_json, write_text
from neurocode.brian.builder import monitor_spikes
from neurocode.brian.devices import connectivity_key, curand_dirs, structure_key
from neurocode.brian.result import SimResult
from neurocode.brian.standalone import StandaloneSession, default_capacity, run_values

logger = logging.getLogger(__name__)

MANIFEST = "neurocode-project.json"
FORMAT_VERSION = 1
RUN_ARGS = "run_args.txt"

RUN_SCRIPT = """#!/bin/sh
# Runs this neurocode project from wherever the folder lies (results go to results/).
# Read them back with: neurocode collect <this folder>
set -e
cd "$(dirname "$0")"
if [ -d lib ]; then
    LD_LIBRARY_PATH="$PWD/lib${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"
    export LD_LIBRARY_PATH
fi
mkdir -p results
rm -f results/last_run_info.txt
set -- $(cat {run_args}) "$@"
exec ./{binary} "$@"
"""

README = """# neurocode {device} project

Built by neurocode {version} from `spec.npz` ({duration:g} s simulated, dt = {dt:g} s).
{needs}
Run it (the folder may be copied anywhere first): `sh run.sh`
Read the results back: `neurocode collect .` (Python: `neurocode.brian.collect_project(".")`)
New inputs, weights or parameters without recompiling (same structure):
`neurocode build NEW_SPEC.npz --out . --data-only`
"""


def _file(var, dev):
    return [dev.get_array_filename(var), np.dtype(var.dtype).str]


def _manifest(session, device, duration, record, capacity, threads):
    spec, built, dev = session.spec, session.built, session.dev
    spikes = {}
    for name, mon in built.spike_monitors.items():
        exact = built.spike_time.get(name)
        spikes[name] = {"i": _file(mon.variables["i"], dev), "t": _file(mon.variables["t"], dev),
                        "exact": _file(mon.variables[exact], dev) if exact else None}
    states = {pop: {"t": _file(mon.variables["t"], dev), "size": spec.size(pop),
                    "vars": {var: _file(mon.variables[var], dev) for var in built.record[pop]}}
              for pop, mon in built.state_monitors.items()}
    variables = {}
    candidates = [("inputs", name, var) for name in built.input_capacity for var in ("_timebins", "neuron_index")]
    for pop in spec.populations.values():
        names = set(pop.card.defaults) | set(pop.card.initial) | set(pop.card.equations.diff_eq_names)
        candidates += [("groups", pop.name, var) for var in sorted(names)]
    candidates += [("synapses", p.name, spec.populations[p.target].card.weight) for p in spec.projections]
    for key in candidates:
        view = built.view(*key)
        variables["/".join(key)] = {"arg": f"{view.group_name}.{view.name}", "dtype": np.dtype(view.dtype).str}
    return {"format_version": FORMAT_VERSION, "neurocode": __version__, "device": device, "duration": duration,
            "dt": spec.dt, "threads": threads, "record": record, "capacity": capacity,
            "structure": structure_key(spec, duration, record, device, threads),
            "connectivity": connectivity_key(spec),
            "sizes": {name: spec.size(name) for name in spikes}, "binary": Path(session.build_info["binary"]).name,
            "spikes": spikes, "states": states, "variables": variables}


def _bundle_curand(out):
    dirs = curand_dirs()
    if dirs is None:
        logger.info("cuRAND comes from the system's CUDA; the GPU machine needs it on its library path")
        return
    lib = out / "lib"
    lib.mkdir(exist_ok=True)
    for path in sorted(dirs[1].glob("libcurand.so*")):
        shutil.copyfile(path, lib / path.name)


def build_project(spec, device, out, duration, record=None, threads=1, input_capacity=None, bundle_libraries=True):
    """Generate and compile a standalone project for ``spec`` into ``out``; nothing is run.

    Parameters
    ----------
    spec : NetworkSpec
    device : {"cpp_standalone", "cuda_standalone"}
        ``cuda_standalone`` compiles without a GPU (for the GPU it is carried to).
    out : str or Path
        Project folder (created; an existing project of the same structure is updated).
    duration : float
        Simulated time (s).
    record : dict of str -> list of str, optional
        State variables to record per population.
    threads : int
        OpenMP threads (``cpp_standalone``).
    input_capacity : dict of str -> int, optional
        Spike slots per input, room for :func:`set_run_data` with more spikes than the
        spec has (default: the spec's spike count rounded up to a power of two).
    bundle_libraries : bool
        ``cuda_standalone``: copy the ``nvidia-curand`` wheel's ``libcurand.so*`` into
        ``out/lib`` (about 100 MB), which ``run.sh`` puts on the library path.

    Returns
    -------
    pathlib.Path
        The project folder.
    """
    if device not in ("cpp_standalone", "cuda_standalone"):
        raise DeviceError(f"build_project: device must be 'cpp_standalone' or 'cuda_standalone', got {device!r}")
    out = Path(out).resolve()
    capacity = {name: default_capacity(inp.indices.size) for name, inp in spec.inputs.items()}
    capacity.update(input_capacity or {})
    session = StandaloneSession(spec, duration, device, record, threads, directory=out, input_capacity=capacity)
    record = {pop: list(names) for pop, names in session.built.record.items()}
    manifest = _manifest(session, device, session.duration, record, capacity, threads)
    spec.save(out / "spec.npz")
    if device == "cuda_standalone" and bundle_libraries:
        _bundle_curand(out)
    write_text(out / RUN_ARGS, "")
    script = write_text(out / "run.sh", RUN_SCRIPT.format(run_args=RUN_ARGS, binary=manifest["binary"]))
    script.chmod(0o755)
    needs = "It needs a CUDA GPU of the compute capability it was compiled for (`-arch` in `makefile`).\n" \
        if device == "cuda_standalone" else ""
    write_text(out / "README.md", README.format(device=device, version=__version__, duration=session.duration,
                                                dt=spec.dt, needs=needs))
    write_json(out / MANIFEST, manifest)
    logger.info("%s project in %s: run it with 'sh %s', then 'neurocode collect %s'", device, out,
                out / "run.sh", out)
    return out


def read_manifest(directory):
    """The manifest of the project in ``directory`` (raises if there is none or it is newer)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a neurocode project (no {MANIFEST}); "
                                "make one with 'neurocode build'")
    manifest = json.loads(path.read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise NetworkSpecError(f"{path}: format version {manifest.get('format_version')} is not supported "
                               f"(this neurocode reads version {FORMAT_VERSION})")
    return manifest


def set_run_data(directory, spec):
    """Let the next ``run.sh`` use ``spec``'s inputs, weights and parameters; no recompilation.

    ``spec`` must have the compiled structure (cards, sizes, connectivity, delays) and at
    most the compiled number of input spikes. The values are written as binary files into
    ``static_arrays/`` and named in ``run_args.txt``, which ``run.sh`` passes to the binary.
    Initial values that depend on parameters are recomputed.

    Returns
    -------
    list of str
        The binary's command-line arguments.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    key = structure_key(spec, manifest["duration"], manifest["record"], manifest["device"], manifest["threads"])
    if key != manifest["structure"] or connectivity_key(spec) != manifest["connectivity"]:
        raise NetworkSpecError(f"{directory}: the spec's structure (cards, sizes, connectivity, delays or dt) "
                               "differs from the compiled project's; build a new project")
    values = run_values(spec, manifest["capacity"],
                        inputs={name: (inp.indices, inp.times) for name, inp in spec.inputs.items()},
                        params={name: pop.params for name, pop in spec.populations.items()},
                        weights={proj.name: proj.weights for proj in spec.projections})
    for old in _read_args(directory):
        Path(directory, old.partition("=")[2]).unlink(missing_ok=True)
    args = []
    for (kind, name, var), value in sorted(values.items()):
        target = manifest["variables"][f"{kind}/{name}/{var}"]
        data = np.ascontiguousarray(value, dtype=np.dtype(target["dtype"]))
        fname = f"static_arrays/run_{target['arg']}_{hashlib.md5(data.tobytes()).hexdigest()}.dat"
        data.tofile(directory / fname)
        args.append(f"{target['arg']}={fname}")
    write_text(directory / RUN_ARGS, "".join(a + "\n" for a in args))
    return args


def _read_args(directory):
    path = Path(directory) / RUN_ARGS
    return path.read_text().split() if path.is_file() else []


def _load(results, entry):
    fname, dtype = entry
    path = results / fname
    return np.fromfile(path, dtype=np.dtype(dtype)) if path.is_file() else np.zeros(0, dtype=np.dtype(dtype))


def collect_project(directory):
    """Read what the project's binary wrote in ``directory/results`` into a :class:`SimResult`.

    Raises
    ------
    DeviceError
        If the binary has not run there, or its run stopped early.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    results = directory / "results"
    info = results / "last_run_info.txt"
    if not info.is_file():
        raise DeviceError(f"{directory}: no results (results/last_run_info.txt is missing); run "
                          f"'sh {directory / 'run.sh'}' first")
    run_time, completed = (float(v) for v in info.read_text().split())
    if completed < 1.0:
        raise DeviceError(f"{directory}: the run stopped at {100 * completed:.1f} % of the simulated time")
    duration, dt = manifest["duration"], manifest["dt"]
    spikes = {}
    for name, files in manifest["spikes"].items():
        exact = _load(results, files["exact"]) if files["exact"] else None
        spikes[name] = monitor_spikes(_load(results, files["i"]), _load(results, files["t"]), duration, dt, exact)
    states, t = {}, np.zeros(0)
    for pop, files in manifest["states"].items():
        t = _load(results, files["t"]).astype(np.float64)
        states[pop] = {var: _load(results, entry).astype(np.float64).reshape(-1, files["size"])
                       for var, entry in files["vars"].items()}
    return SimResult(spikes, states, t, duration, manifest["device"], {"run": run_time}, dict(manifest["sizes"]),
                     metadata={"directory": str(directory), "run_args": _read_args(directory)})
