"""CUDA standalone: the project is generated and compiled without a GPU; it runs where one is."""

import shutil

import numpy as np
import pytest

from neurocode.errors import DeviceError
from neurocode.spec import NetworkSpec
from neurocode.presets import poisson_spike_trains
from neurocode.brian import StandaloneSession, gpu_present, simulate

DURATION = 0.1
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (CUDA toolkit) is not on PATH")


def make_spec():
    """Few code objects (one group, one input, one projection): CUDA compiles are slow."""
    spec = NetworkSpec(dt=1e-4, seed=3)
    spec.add_population("net", "lif", 50)
    idx, times = poisson_spike_trains(40, 40.0, DURATION, spec.dt, seed=3)
    spec.add_input("input", 40, idx, times)
    spec.connect("input", "net", p=0.5, weight="100*pA")
    return spec


@pytest.fixture(scope="module")
def cuda_session(standalone_cache):
    return StandaloneSession(make_spec(), DURATION, "cuda_standalone", directory=standalone_cache / "cuda_lif50",
                             input_capacity={"input": 1024})


@pytest.mark.slow
@needs_nvcc
def test_cuda_project_compiles_without_probing_a_gpu(cuda_session):
    from pathlib import Path

    binary = Path(cuda_session.build_info["binary"])
    assert binary.is_file() and binary.stat().st_size > 0
    makefile = (cuda_session.directory / "makefile").read_text()
    assert "-std=c++17" in makefile and "-lcurand" in makefile
    if not gpu_present():
        with pytest.raises(DeviceError, match="needs a CUDA GPU.*detect_gpus=False"):
            cuda_session.run()


@pytest.mark.slow
@pytest.mark.gpu
@needs_nvcc
@pytest.mark.skipif(not gpu_present(), reason="no CUDA GPU (nvidia-smi -L lists none)")
def test_cuda_run_matches_runtime(cuda_session):
    runtime = simulate(make_spec(), DURATION, progress=False)
    cuda = cuda_session.run()
    assert cuda.device == "cuda_standalone"
    # float64 on both sides; -use_fast_math may move a rare threshold crossing by a step
    n_rt, n_cu = runtime.spikes["net"][0].size, cuda.spikes["net"][0].size
    assert n_rt > 50 and abs(n_rt - n_cu) <= 0.02 * n_rt
    np.testing.assert_array_equal(runtime.spikes["input"][0], cuda.spikes["input"][0])
    # a second run with new input spikes: no recompilation, the new input arrives
    idx, times = poisson_spike_trains(40, 80.0, DURATION, 1e-4, seed=9)
    again = cuda_session.run(inputs={"input": (idx, times)})
    np.testing.assert_array_equal(np.sort(again.spikes["input"][1]), np.sort(times))
    assert again.spikes["net"][0].size > n_cu
