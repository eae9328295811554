"""``neurocode doctor``: what is installed here and what works."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
from pathlib import Path

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def register(sub):
    parser = sub.add_parser("doctor", help="report installed packages, compilers, GPU and datasets",
                            description="Report what is installed (brian2, brian2cuda, torch, nvcc, cuRAND, "
                                        "GPU, datasets, espeak-ng) and which Brian2 devices can compile or run.")
    parser.add_argument("--check-compile", action="store_true",
                        help="also compile a one-neuron C++ standalone project (about 10 s)")
    parser.set_defaults(func=run)


def version(package):
    """Installed version of ``package`` or ``None``."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def command_output(cmd):
    """First line of a command's output, or ``None`` if it is missing or fails."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    return (lines[-1] if cmd[0] == "nvcc" else lines[0]) if out.returncode == 0 and lines else None


def checks(compile_check=False):
    """List of ``(name, ok, detail)`` rows."""
    from neurocode.brian.devices import curand_dirs, gpu_present

    rows = []
    for pkg in ("brian2", "brian2cuda", "torch", "numpy", "cython"):
        v = version(pkg)
        rows.append((pkg, v is not None, v or "not installed"))
    nvcc = command_output(["nvcc", "--version"])
    rows.append(("nvcc", nvcc is not None, nvcc or "not on PATH"))
    rows.append(("c++ compiler", shutil.which("g++") is not None, shutil.which("g++") or "g++ not found"))
    dirs = curand_dirs()
    rows.append(("curand", dirs is not None, str(dirs[1]) if dirs else "pip install nvidia-curand"))
    gpu = gpu_present()
    rows.append(("GPU", gpu, command_output(["nvidia-smi", "-L"]) if gpu
                 else "none (CUDA projects compile, do not run)"))
    files = sorted(p.name for p in FASHION_MNIST.glob("*")) if FASHION_MNIST.is_dir() else []
    rows.append(("fashion-mnist", bool(files), f"{FASHION_MNIST} ({len(files)} files)" if files
                 else "missing: apt-get install dataset-fashion-mnist"))
    espeak = command_output(["espeak-ng", "--version"])
    rows.append(("espeak-ng", espeak is not None, espeak or "missing: apt-get install espeak-ng"))
    rows.append(("device runtime", version("brian2") is not None, "numpy and cython targets"))
    rows.append(("device cpp_standalone", shutil.which("g++") is not None and shutil.which("make") is not None,
                 "compiles and runs" if shutil.which("make") else "needs make and g++"))
    cuda_ok = version("brian2cuda") is not None and nvcc is not None and dirs is not None
    rows.append(("device cuda_standalone", cuda_ok,
                 ("compiles and runs" if gpu else "compiles only (no GPU)") if cuda_ok
                 else "needs brian2cuda, nvcc and nvidia-curand"))
    if compile_check:
        rows.append(compile_row())
    return rows


def compile_row():
    """Compile and run a one-neuron C++ standalone project."""
    import tempfile

    from neurocode.spec import NetworkSpec
    from neurocode.brian import StandaloneSession

    spec = NetworkSpec(dt=1e-4)
    spec.add_population("n", "lif", 1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            session = StandaloneSession(spec, 0.01, "cpp_standalone", directory=tmp)
            session.run()
        return ("compile check", True, f"cpp_standalone compiled in {session.build_info['compile_s']:.1f} s and ran")
    except Exception as exc:  # report, do not crash: this is a diagnostic
        return ("compile check", False, f"{type(exc).__name__}: {exc}")


def run(args):
    import logging
    logging.getLogger("brian2").setLevel(logging.WARNING)
    rows = checks(args.check_compile)
    width = max(len(name) for name, _, _ in rows)
    for name, ok, detail in rows:
        print(f"{'ok ' if ok else '-- '} {name:<{width}}  {detail}")
    return 0
