"""Builder and runtime simulation: checked against analytic solutions and the spec's own data."""

import math

import numpy as np
import pytest

from neurocode.errors import DeviceError, NetworkSpecError
from neurocode.spec import NetworkSpec, Projection
from neurocode.brian import SimResult, simulate

DT = 1e-4


def single_lif(current, tau_m="20*ms"):
    """One LIF neuron under a constant current (synaptic decay made negligible)."""
    spec = NetworkSpec(dt=DT, seed=0)
    spec.add_population("n", "lif", 1, tau_m=tau_m, tau_syn="1e6*second")
    return spec, {"n": {"I_syn": current}}


@pytest.mark.parametrize("current, tau_m", [(0.2e-9, 20e-3), (0.5e-9, 10e-3)])
def test_constant_drive_fires_at_the_analytic_period(current, tau_m):
    spec, initial = single_lif(current, f"{tau_m}*second")
    res = simulate(spec, 0.3, initial=initial, progress=False)
    p = spec.populations["n"].params
    drive = p["R_m"][0] * current
    gap = p["v_th"][0] - p["v_rest"][0]
    period = p["t_ref"][0] + tau_m * math.log(drive / (drive - gap))
    times = res.spikes["n"][1]
    assert times.size >= 5
    isi = np.diff(times)
    assert np.all(np.abs(isi - period) <= DT + 1e-12), (isi, period)
    # first spike: no refractory period before it, starts from v_rest = v_reset
    assert abs(times[0] - (period - p["t_ref"][0])) <= DT + 1e-12
    assert np.nanmax(res.cv_isi("n", min_spikes=3)) < DT / period * 2


def test_subthreshold_drive_never_fires():
    spec, initial = single_lif(0.1e-9)          # R I = 10 mV < 15 mV to threshold
    res = simulate(spec, 0.2, initial=initial, record={"n": ["v"]}, progress=False)
    assert res.spikes["n"][0].size == 0
    v = res.states["n"]["v"][:, 0]
    # exact relaxation towards v_rest + R I with time constant tau_m (20 ms)
    expected = -65e-3 + 10e-3 * (1 - np.exp(-res.t / 20e-3))
    np.testing.assert_allclose(v, expected, atol=1e-9)


def input_spec(delay=None, times=(1e-3, 3.05e-3)):
    spec = NetworkSpec(dt=DT, seed=0)
    spec.add_population("n", "lif", 2, tau_m="20*ms")
    spec.add_input("in", 2, indices=[0, 1], times=list(times))
    delays = None if delay is None else [delay, delay]
    spec.add_projection(Projection("in", "n", [0, 1], [0, 1], [1e-9, 2e-9], delays))
    return spec


def arrival_steps(res):
    """Index of the first recorded sample (taken at the start of a step) with current."""
    current = res.states["n"]["I_syn"]
    return [int(np.argmax(current[:, k] > 0)) for k in range(current.shape[1])]


def test_input_spikes_arrive_in_their_time_step():
    res = simulate(input_spec(), 0.01, record={"n": ["I_syn"]}, progress=False)
    # spikes at 1.0 ms and 3.05 ms fall in steps 10 and 30; the effect is applied during
    # that step, so the monitor (start of a step) first sees it at steps 11 and 31
    assert arrival_steps(res) == [11, 31]
    np.testing.assert_allclose(res.states["n"]["I_syn"][11, 0], 1e-9)
    np.testing.assert_array_equal(res.spikes["in"][0], [0, 1])
    np.testing.assert_allclose(res.spikes["in"][1], [1e-3, 3.0e-3])


def test_delays_shift_arrival_by_whole_steps():
    res = simulate(input_spec(delay=2.5e-3), 0.01, record={"n": ["I_syn"]}, progress=False)
    assert arrival_steps(res) == [11 + 25, 31 + 25]


def test_heterogeneous_parameters_reach_each_neuron():
    spec = NetworkSpec(dt=DT, seed=3)
    pop = spec.add_population("exc", "lif", 50)
    res = simulate(spec, 0.001, record={"exc": ["tau_m", "v"]}, progress=False)
    np.testing.assert_array_equal(res.states["exc"]["tau_m"][0], pop.params["tau_m"])
    np.testing.assert_allclose(res.states["exc"]["v"][0], pop.params["v_rest"])
    assert res.t.shape == (10,) and res.states["exc"]["v"].shape == (10, 50)


def test_result_api_and_summary():
    spec, initial = single_lif(0.3e-9)
    res = simulate(spec, 0.2, initial=initial, progress=False)
    assert isinstance(res, SimResult) and res.device == "runtime" and res.duration == 0.2
    idx, times = res.spikes["n"]
    assert idx.dtype == np.int64 and times.dtype == np.float64
    assert set(res.timings) >= {"build", "compile", "run"}
    summary = res.summary()["populations"]["n"]
    assert summary["spike_count"] == idx.size
    assert summary["mean_rate_hz"] == pytest.approx(idx.size / 0.2)
    assert len(res.spike_trains("n")) == 1


def test_brian2_global_state_is_restored():
    from brian2 import defaultclock, prefs
    from brian2.devices.device import get_device

    prefs.codegen.target = "auto"
    device = get_device()
    spec = NetworkSpec(dt=0.05e-3)
    spec.add_population("n", "lif", 1)
    simulate(spec, 0.001, progress=False)
    assert prefs.codegen.target == "auto"
    assert get_device() is device
    assert float(defaultclock.dt) == pytest.approx(0.1e-3)


def test_bad_requests_name_the_problem():
    spec = NetworkSpec(dt=DT)
    spec.add_population("n", "lif", 1)
    with pytest.raises(NetworkSpecError, match="no variable.*'u'"):
        simulate(spec, 0.01, record={"n": ["u"]}, progress=False)
    with pytest.raises(NetworkSpecError, match="no population named 'x'"):
        simulate(spec, 0.01, record={"x": ["v"]}, progress=False)
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        simulate(spec, 0.01, device="gpu")
    with pytest.raises(DeviceError, match="unknown runtime target 'c'"):
        simulate(spec, 0.01, target="c")
    with pytest.raises(NetworkSpecError, match="duration must be > 0"):
        simulate(spec, 0.0)
    with pytest.raises(NetworkSpecError, match="no such state variable"):
        simulate(spec, 0.01, initial={"n": {"w": 1.0}}, progress=False)
