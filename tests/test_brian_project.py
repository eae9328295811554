"""Build here, run there: a compiled project folder is copied, run by its script, and collected."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from neurocode.errors import DeviceError, NetworkSpecError
from neurocode.presets import default_network
from neurocode.spec import NetworkSpec
from neurocode.brian import build_project, collect_project, gpu_present, set_run_data, simulate
from neurocode.brian.project import MANIFEST

DURATION = 0.2


def make_spec():
    return default_network("lif", size=100, duration=DURATION, seed=1)


def assert_same_spikes(a, b):
    assert a.spikes.keys() == b.spikes.keys()
    for name in a.spikes:
        np.testing.assert_array_equal(a.spikes[name][0], b.spikes[name][0])
        np.testing.assert_array_equal(a.spikes[name][1], b.spikes[name][1])


def run_script(directory):
    out = subprocess.run(["sh", str(directory / "run.sh")], cwd="/", capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """A cpp_standalone project built in one folder and copied to another (the original is removed)."""
    built = build_project(make_spec(), "cpp_standalone", tmp_path_factory.mktemp("here") / "project", DURATION,
                          record={"net": ["v"]})
    there = tmp_path_factory.mktemp("there") / "copy"
    shutil.copytree(built, there)
    shutil.rmtree(built)
    return there


@pytest.mark.slow
def test_copied_project_runs_and_collects_the_simulate_result(moved):
    with pytest.raises(DeviceError, match="no results.*run.sh"):
        collect_project(moved)
    run_script(moved)
    got = collect_project(moved)
    expected = simulate(make_spec(), DURATION, record={"net": ["v"]}, progress=False)
    assert expected.spikes["net"][0].size > 100
    assert_same_spikes(expected, got)
    np.testing.assert_allclose(got.states["net"]["v"], expected.states["net"]["v"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got.t, expected.t)
    assert got.device == "cpp_standalone" and got.duration == DURATION and got.sizes == expected.sizes


@pytest.mark.slow
def test_new_data_through_run_args_without_recompiling(moved):
    binary = moved / "main"
    mtime = binary.stat().st_mtime_ns
    spec = make_spec()
    rec = spec.projection("recurrent")
    rec.weights = rec.weights * 1.5
    spec.populations["net"].params["v_th"] = np.full(100, -52e-3)
    args = set_run_data(moved, spec)
    assert any(a.startswith("syn_recurrent.w=static_arrays/") for a in args)
    run_script(moved)
    got = collect_project(moved)
    assert_same_spikes(simulate(spec, DURATION, progress=False), got)
    assert got.metadata["run_args"] == args
    assert binary.stat().st_mtime_ns == mtime
    other = make_spec()
    other.connect("net", "net", p=0.01, weight="10*pA", name="extra")
    with pytest.raises(NetworkSpecError, match="structure .* differs from the compiled project"):
        set_run_data(moved, other)


def test_collect_needs_a_project(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a neurocode project"):
        collect_project(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"format_version": 99}))
    with pytest.raises(NetworkSpecError, match="format version 99"):
        collect_project(tmp_path)
    with pytest.raises(DeviceError, match="cpp_standalone' or 'cuda_standalone'"):
        build_project(make_spec(), "runtime", tmp_path, DURATION)


@pytest.mark.slow
def test_cli_build_and_collect(tmp_path, capsys):
    from neurocode.cli import main

    out = tmp_path / "proj"
    assert main(["build", "lif", "--size", "30", "--duration", "50*ms", "--out", str(out)]) == 0
    assert "sh " + str(out / "run.sh") in capsys.readouterr().out
    assert "sh run.sh" in (out / "README.md").read_text()
    run_script(out)
    assert main(["collect", str(out), "--out", str(tmp_path / "res")]) == 0
    summary = json.loads((tmp_path / "res" / "summary.json").read_text())
    assert summary["device"] == "cpp_standalone" and summary["populations"]["net"]["n_neurons"] == 30
    # new weights for the compiled project, then a spec of another size: refused in one line
    spec = NetworkSpec.load(out / "spec.npz")
    spec.projection("recurrent").weights *= 2.0
    spec.save(tmp_path / "stronger.npz")
    assert main(["build", str(tmp_path / "stronger.npz"), "--out", str(out), "--data-only"]) == 0
    assert "syn_recurrent.w=static_arrays/" in (out / "run_args.txt").read_text()
    run_script(out)
    assert_same_spikes(simulate(spec, 0.05, progress=False), collect_project(out))
    assert main(["build", "lif", "--size", "31", "--out", str(out), "--data-only"]) == 2
    assert "differs from the compiled project" in capsys.readouterr().err


# -- CUDA: compiled here without a GPU; run where one is ----------------------------------------

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (CUDA toolkit) is not on PATH")


def cuda_spec():
    """Few code objects (one group, one input, one projection): CUDA compiles are slow."""
    from neurocode.presets import poisson_spike_trains
    from neurocode.spec import NetworkSpec

    spec = NetworkSpec(dt=1e-4, seed=3)
    spec.add_population("net", "lif", 50)
    idx, times = poisson_spike_trains(40, 40.0, 0.1, spec.dt, seed=3)
    spec.add_input("input", 40, idx, times)
    spec.connect("input", "net", p=0.5, weight="100*pA")
    return spec


@pytest.fixture(scope="module")
def cuda_project(standalone_cache):
    """The project of ``tests/test_sim_cuda.py`` (same spec, capacity and folder): compiled once per session."""
    return build_project(cuda_spec(), "cuda_standalone", standalone_cache / "cuda_lif50", 0.1,
                         input_capacity={"input": 1024})


@pytest.mark.slow
@needs_nvcc
def test_cuda_project_is_compiled_here_with_its_script(cuda_project):
    manifest = json.loads((cuda_project / MANIFEST).read_text())
    assert manifest["device"] == "cuda_standalone"
    binary = cuda_project / manifest["binary"]
    assert binary.is_file() and binary.stat().st_size > 0
    assert "./main" in (cuda_project / "run.sh").read_text()
    assert list((cuda_project / "lib").glob("libcurand.so*"))          # bundled for the GPU machine
    assert (cuda_project / "spec.npz").is_file() and "CUDA GPU" in (cuda_project / "README.md").read_text()


@pytest.mark.slow
@pytest.mark.gpu
@needs_nvcc
@pytest.mark.skipif(not gpu_present(), reason="no CUDA GPU (nvidia-smi -L lists none)")
def test_cuda_project_runs_on_a_gpu_after_moving(cuda_project, tmp_path):
    there = tmp_path / "copy"
    shutil.copytree(cuda_project, there)
    run_script(there)
    got = collect_project(there)
    expected = simulate(cuda_spec(), 0.1, progress=False)
    np.testing.assert_array_equal(got.spikes["input"][0], expected.spikes["input"][0])
    # float64 on both sides; -use_fast_math may move a rare threshold crossing by a step
    n_rt, n_cu = expected.spikes["net"][0].size, got.spikes["net"][0].size
    assert n_rt > 50 and abs(n_rt - n_cu) <= 0.02 * n_rt
