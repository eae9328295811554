"""C++ standalone: same spikes as the runtime device; re-runs with new data never recompile."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurocode.errors import DeviceError, NetworkSpecError
from neurocode.spec import InputPopulation
from neurocode.presets import default_network, poisson_spike_trains
from neurocode.brian import StandaloneSession, simulate

pytestmark = pytest.mark.slow

DURATION = 0.2


def make_spec():
    return default_network("lif", size=100, duration=DURATION, seed=1)


def assert_same_spikes(a, b, name="net"):
    np.testing.assert_array_equal(a.spikes[name][0], b.spikes[name][0])
    np.testing.assert_allclose(a.spikes[name][1], b.spikes[name][1], rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def session(standalone_cache):
    return StandaloneSession(make_spec(), DURATION, "cpp_standalone", record={"net": ["v"]},
                             directory=standalone_cache / "lif100", input_capacity={"input": 1024})


def test_runtime_and_cpp_standalone_give_identical_spikes(session):
    spec = make_spec()
    runtime = simulate(spec, DURATION, record={"net": ["v"]}, progress=False)
    cpp = session.run()
    assert runtime.spikes["net"][0].size > 100            # the default network fires
    assert_same_spikes(runtime, cpp)
    assert_same_spikes(runtime, cpp, "input")
    np.testing.assert_allclose(runtime.states["net"]["v"], cpp.states["net"]["v"], rtol=0, atol=1e-12)
    assert cpp.device == "cpp_standalone" and cpp.timings["run"] > 0


def test_rerun_with_new_data_does_not_recompile(session, standalone_cache):
    binary = session.build_info["binary"]
    mtime = os.stat(binary).st_mtime_ns
    # new input spikes, new weights and a new parameter: compare with a fresh runtime run
    spec = make_spec()
    idx, times = poisson_spike_trains(100, 30.0, DURATION, spec.dt, seed=7)
    spec.inputs["input"] = InputPopulation("input", 100, idx, times)
    rec = spec.projection("recurrent")
    rec.weights = rec.weights * 1.5
    spec.populations["net"].params["v_th"] = np.full(100, -52e-3)
    spec.populations["net"].params["v_rest"] = np.full(100, -66e-3)
    expected = simulate(spec, DURATION, record={"net": ["v"]}, progress=False)
    runs_before = session.runs
    got = session.run(inputs={"input": (idx, times)}, weights={"recurrent": rec.weights},
                      params={"net": {"v_th": -52e-3, "v_rest": -66e-3}})
    assert_same_spikes(expected, got)
    assert_same_spikes(expected, got, "input")
    np.testing.assert_allclose(got.states["net"]["v"][0], -66e-3)   # initial v = new v_rest
    # and back to the compiled defaults: the first result again
    again = session.run()
    assert_same_spikes(simulate(make_spec(), DURATION, progress=False), again)
    assert session.runs == runs_before + 2
    assert session.compile_count <= 1
    assert os.stat(binary).st_mtime_ns == mtime
    # a new process with the same structure reuses the compiled project. Brian2 names its
    # code objects after the objects alive in a process, and this pytest process may still
    # hold objects of earlier tests (garbage not yet collected), so its generated names can
    # differ from a fresh process's: one fresh process may rebuild, the next must not.
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            f"from test_sim_standalone import make_spec, DURATION\n"
            f"from neurocode.brian import StandaloneSession\n"
            f"s = StandaloneSession(make_spec(), DURATION, 'cpp_standalone', record={{'net': ['v']}}, "
            f"directory={str(session.directory)!r}, input_capacity={{'input': 1024}})\n"
            f"r = s.run()\n"
            f"print(s.compile_count, r.spikes['net'][0].size)\n")
    def fresh_process():
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parents[1])
        return tuple(map(int, out.stdout.split()[-2:]))

    first_compiles, first_spikes = fresh_process()
    compiles, n_spikes = fresh_process()
    assert compiles == 0
    assert first_spikes == n_spikes == again.spikes["net"][0].size
    if first_compiles == 0:
        assert os.stat(binary).st_mtime_ns == mtime


def test_simulate_reuses_the_session_of_a_known_structure(standalone_cache):
    folder = standalone_cache / "lif100"       # same code, other capacity: main.cpp recompiles
    first = simulate(make_spec(), DURATION, device="cpp_standalone", directory=folder, progress=False)
    spec = make_spec()
    spec.populations["net"].params["v_th"] = np.full(100, -45e-3)
    second = simulate(spec, DURATION, device="cpp_standalone", directory=folder, progress=False)
    assert first.metadata["directory"] == second.metadata["directory"]
    assert second.metadata["run"] == 2 and second.timings["compile"] == 0.0
    assert second.spikes["net"][0].size < first.spikes["net"][0].size     # higher threshold


def test_rerun_errors_name_the_problem(session):
    cap = session.built.input_capacity["input"]
    idx, times = np.zeros(cap + 1, np.int64), np.arange(cap + 1) * 1e-3
    with pytest.raises(NetworkSpecError, match=f"compiled capacity is {cap}"):
        session.run(inputs={"input": (idx, times)})
    with pytest.raises(NetworkSpecError, match="twice in one time step"):
        session.run(inputs={"input": ([3, 3], [1e-3, 1.00001e-3])})
    with pytest.raises(NetworkSpecError, match="needs .* values"):
        session.run(weights={"recurrent": [1.0, 2.0]})
    with pytest.raises(NetworkSpecError, match="no parameter"):
        session.run(params={"net": {"tau_x": 1.0}})
    with pytest.raises(DeviceError, match="StandaloneSession needs device"):
        StandaloneSession(make_spec(), DURATION, "runtime")
