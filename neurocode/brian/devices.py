"""Brian2 devices: set-up, restoring Brian2's global state, CUDA without a GPU, project cache.

Brian2 keeps its device and preferences in module globals. :func:`device_context`
sets what one build needs and restores the previous device, ``defaultclock`` and all
preferences afterwards, so callers never see a changed global state.

CUDA standalone (brian2cuda) is configured so that it never probes for a GPU
(``devices.cuda_standalone.cuda_backend.detect_gpus = False`` with an explicit
``gpu_id`` and ``compute_capability``), compiles with ``-std=c++17`` (CUDA 13's Thrust
needs it; brian2cuda's makefile says c++11 and a later flag wins; the host-compiler
flags passed through ``-Xcompiler`` are changed the same way) and links cuRAND from the
``nvidia-curand`` wheel (``site-packages/nvidia/cu13/``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from neurocode.errors import DeviceError

logger = logging.getLogger(__name__)

DEVICES = ("runtime", "cpp_standalone", "cuda_standalone")
TARGETS = ("numpy", "cython")
#: Compute capability used when compiling CUDA projects without a GPU (H100/H200: 9.0).
#: Override with the environment variable ``NEUROCODE_CUDA_COMPUTE_CAPABILITY``.
DEFAULT_COMPUTE_CAPABILITY = 9.0


def check_device(device, target="numpy"):
    """Raise :class:`DeviceError` for an unknown device or runtime target."""
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "runtime" and target not in TARGETS:
        raise DeviceError(f"unknown runtime target {target!r}; choose one of {', '.join(TARGETS)}")


def cache_root():
    """Folder for compiled standalone projects (``$NEUROCODE_CACHE`` or ``~/.cache/neurocode``)."""
    root = os.environ.get("NEUROCODE_CACHE") or Path.home() / ".cache" / "neurocode"
    return Path(root)


def gpu_present():
    """Whether a CUDA GPU is visible (``nvidia-smi -L`` lists one)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def curand_dirs():
    """``(include_dir, lib_dir)`` of the ``nvidia-curand`` wheel, or ``None`` if not installed."""
    for base in map(Path, sys.path):
        for sub in ("cu13", "curand"):
            root = base / "nvidia" / sub
            if (root / "include" / "curand.h").is_file() and list((root / "lib").glob("libcurand.so*")):
                return root / "include", root / "lib"
    return None


def _curand_link_dir(lib_dir):
    """A folder holding ``libcurand.so`` (a link to the wheel's ``libcurand.so.10``) for the linker."""
    if (lib_dir / "libcurand.so").exists():
        return lib_dir
    target = sorted(lib_dir.glob("libcurand.so.*"))[0]
    link_dir = cache_root() / "lib"
    link_dir.mkdir(parents=True, exist_ok=True)
    link = link_dir / "libcurand.so"
    if not link.exists() or link.resolve() != target.resolve():
        tmp = link_dir / f".libcurand.so.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        os.replace(tmp, link)
    return link_dir


def configure_cuda(prefs, gpu=None):
    """Set brian2cuda preferences for compiling (and, with a GPU, running) here.

    Returns whether a GPU is present. Raises :class:`DeviceError` when brian2cuda,
    ``nvcc`` or cuRAND is missing, naming what to install or set.
    """
    try:
        import brian2cuda  # noqa: F401  (registers the device and its preferences)
    except ImportError as exc:
        raise DeviceError(f"device 'cuda_standalone' needs brian2cuda (pip install "
                          f"'neurocode[cuda]'): {exc}") from None
    if shutil.which("nvcc") is None and not os.environ.get("CUDA_PATH"):
        raise DeviceError("device 'cuda_standalone' needs nvcc: put it on PATH or set CUDA_PATH "
                          "(or prefs.devices.cuda_standalone.cuda_backend.cuda_path)")
    gpu = gpu_present() if gpu is None else gpu
    backend = prefs.devices.cuda_standalone.cuda_backend
    if not gpu:
        backend.detect_gpus = False
        backend.gpu_id = 0
        backend.compute_capability = float(os.environ.get("NEUROCODE_CUDA_COMPUTE_CAPABILITY",
                                                          DEFAULT_COMPUTE_CAPABILITY))
    flags = list(backend.extra_compile_args_nvcc)
    if "-std=c++17" not in flags:
        flags.append("-std=c++17")
    backend.extra_compile_args_nvcc = flags
    # the host compiler gets Brian2's C++ flags through -Xcompiler; they say c++11 too
    cpp = prefs.codegen.cpp
    cpp.extra_compile_args_gcc = [f for f in cpp.extra_compile_args_gcc if not f.startswith("-std=")] + ["-std=c++17"]
    dirs = curand_dirs()
    if dirs is None:
        if not any(Path(p, "curand.h").is_file() for p in ("/usr/local/cuda/include", "/usr/include")):
            raise DeviceError("device 'cuda_standalone' needs cuRAND: pip install nvidia-curand "
                              "(or add its include/lib folders to prefs.codegen.cpp.include_dirs "
                              "and library_dirs)")
        return gpu
    include_dir, lib_dir = dirs
    link_dir = _curand_link_dir(lib_dir)
    cpp.include_dirs = list(cpp.include_dirs) + [str(include_dir)]
    cpp.library_dirs = list(cpp.library_dirs) + sorted({str(lib_dir), str(link_dir)})
    cpp.runtime_library_dirs = list(cpp.runtime_library_dirs) + [str(lib_dir)]
    return gpu


@contextlib.contextmanager
def device_context(device="runtime", target="numpy", threads=1, dt=None, make_jobs=None):
    """Set Brian2's device and preferences for one build; restore everything afterwards.

    Yields the (fresh, for standalone devices) Brian2 device object. Objects created
    inside keep a reference to it, so a standalone project can be run again later
    without the device being active.
    """
    import brian2
    from brian2 import prefs, second
    from brian2.devices.device import get_device, reset_device, set_device

    check_device(device, target)
    if threads < 1:
        raise DeviceError(f"threads must be >= 1, got {threads}")
    saved_prefs = dict(prefs.prefs)
    previous = get_device()
    previous_dt = previous.defaultclock.dt if previous.defaultclock is not None else None
    try:
        if device == "runtime":
            prefs.codegen.target = target
            dev = brian2.all_devices["runtime"]
            set_device(dev)
        else:
            prefs.devices.cpp_standalone.openmp_threads = threads if threads > 1 else 0
            prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{make_jobs or os.cpu_count() or 1}"]
            if device == "cpp_standalone":
                from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
                dev = CPPStandaloneDevice()
            else:
                configure_cuda(prefs)
                from brian2cuda.device import CUDAStandaloneDevice
                dev = CUDAStandaloneDevice()
            set_device(dev, build_on_run=False)
        if dt is not None:
            dev.defaultclock.dt = dt * second
        yield dev
    finally:
        if get_device() is not previous:
            reset_device(previous)
        if previous_dt is not None and previous.defaultclock is not None:
            previous.defaultclock.dt = previous_dt
        prefs.prefs.update(saved_prefs)


def structure_key(spec, duration, record, device, threads, extra=None):
    """Hash of what the generated code depends on: cards, sizes, wiring kind, dt, duration.

    Weights, parameter values and input spikes are data (changed through ``run_args``);
    connectivity and spike counts only change a few data-size lines, so projects with the
    same key share a folder and ``make`` recompiles only what changed.
    """
    h = hashlib.sha256()
    parts = {
        "dt": spec.dt, "duration": float(duration), "device": device, "threads": int(threads),
        "record": {k: sorted(v) for k, v in sorted(record.items())},
        "pops": [(p.name, p.size, p.card.sha256) for p in spec.populations.values()],
        "inputs": [(i.name, i.size) for i in spec.inputs.values()],
        "projs": [(p.name, p.source, p.target, p.delays is not None) for p in spec.projections],
        "extra": extra or {},
    }
    h.update(json.dumps(parts, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def connectivity_key(spec):
    """Hash of connectivity and delays (compiled data: a change needs a rebuild)."""
    h = hashlib.sha256()
    for p in spec.projections:
        for arr in (p.i, p.j) + (() if p.delays is None else (p.delays,)):
            h.update(np.ascontiguousarray(arr).tobytes())
            h.update(b"|")
    return h.hexdigest()[:16]
