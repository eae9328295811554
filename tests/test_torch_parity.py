"""One model, two engines: the torch runner against Brian2 (numpy target, float64).

Same NetworkSpec, same input spikes, 1 s of simulated time: identical spike trains (same
neuron, same step) and state traces equal to 1e-9 relative.
"""

import numpy as np
import pytest
import torch
from brian2 import mV, nA, nS, ms

from neurocode.cards import card_from_string
from neurocode.spec import NetworkSpec
from neurocode.brian import simulate
from neurocode.torch import NetworkRunner

DT = 1e-4
DURATION = 1.0
STEPS = int(round(DURATION / DT))

# card name -> (input weight, recurrent weight, recorded variables)
CASES = {
    "lif": (0.9 * nA, 0.1 * nA, ["v", "I_syn"]),
    "alif": (1.0 * nA, 0.1 * nA, ["v", "theta"]),
    "coba_lif": (12 * nS, -5 * nS, ["v", "g_e", "g_i"]),
    "izhikevich": (60 * mV / ms, 5 * mV / ms, ["v", "u"]),
}


def make_spec(card, w_in, w_rec, n=40, n_in=30, rate=40.0, seed=3, duration=DURATION):
    """Heterogeneous population with Poisson input, a recurrent projection with delays."""
    spec = NetworkSpec(dt=DT, seed=seed)
    rng = np.random.default_rng(seed)
    n_spikes = rng.poisson(rate * n_in * duration)
    times = np.round(rng.uniform(0, duration - DT, n_spikes) / DT) * DT
    idx = rng.integers(0, n_in, n_spikes)
    keys = np.unique(np.stack([np.round(times / DT).astype(int), idx]), axis=1)  # one spike per bin
    spec.add_input("in", n_in, indices=keys[1], times=keys[0] * DT + 0.3 * DT)
    spec.add_population("pop", card, n)
    spec.connect("in", "pop", p=0.3, weight=w_in)
    spec.connect("pop", "pop", p=0.2, weight=w_rec, delay=0.0 * ms)
    proj = spec.projections[-1]
    proj.delays = rng.integers(0, 4, proj.i.size) * DT   # 0..3 steps: the ring buffer
    return spec


def torch_run(spec, record, steps=STEPS):
    runner = NetworkRunner(spec, dtype=torch.float64)
    with torch.no_grad():
        out = runner(steps=steps, record=record)
    return out


def compare(spec, record, res, out, rtol=1e-9):
    for pop in spec.populations:
        idx, times = res.spikes[pop]
        b_spikes = sorted(zip(np.round(times / DT).astype(int).tolist(), idx.tolist()))
        t_steps, t_idx = torch.nonzero(out.spikes[pop][:, 0, :], as_tuple=True)
        t_spikes = sorted(zip(t_steps.tolist(), t_idx.tolist()))
        assert len(b_spikes) > 20, "the test network should fire"
        assert t_spikes == b_spikes
    for pop, names in record.items():
        for var in names:
            b = res.states[pop][var]
            t = out.states[pop][var][:, 0, :].numpy()
            assert t.shape == b.shape
            scale = np.abs(b).max()
            np.testing.assert_allclose(t, b, rtol=rtol, atol=rtol * scale, err_msg=f"{pop}.{var}")


@pytest.mark.parametrize("card", [pytest.param(c, marks=pytest.mark.slow) if c in ("alif", "coba_lif") else c
                                  for c in sorted(CASES)])
def test_parity_with_brian2(card):
    w_in, w_rec, names = CASES[card]
    spec = make_spec(card, w_in, w_rec)
    record = {"pop": names}
    res = simulate(spec, DURATION, device="runtime", target="numpy", record=record, progress=False)
    compare(spec, record, res, torch_run(spec, record))


QIF = """
description = "Exponential integrate-and-fire, written for this test only"
[neuron]
equations = '''
dv/dt = (g_L*(E_L - v) + g_L*DeltaT*exp((v - V_T)/DeltaT) + I_syn)/C : volt (unless refractory)
dI_syn/dt = -I_syn/tau_s : amp
'''
threshold = "v > V_cut"
reset = "v = V_r"
refractory = "2*ms"
method = "{method}"
[neuron.initial]
v = "E_L"
[parameters]
C = "200*pF"
g_L = "10*nS"
E_L = "-70*mV"
V_T = "-50*mV"
DeltaT = "2*mV"
V_cut = "-40*mV"
V_r = "-58*mV"
tau_s = "5*ms"
[heterogeneity.tau_s]
distribution = "uniform"
low = "3*ms"
high = "8*ms"
[synapse]
model = "w : amp"
on_pre = "I_syn_post += w"
"""


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_new_card_from_toml_runs_in_both_engines(method):
    card = card_from_string(QIF.replace("{method}", method), name=f"eif_{method}")
    spec = make_spec(card, 1.5 * nA, 0.2 * nA, n=20, duration=0.3)
    record = {"pop": ["v", "I_syn"]}
    res = simulate(spec, 0.3, device="runtime", target="numpy", record=record, progress=False)
    out = torch_run(spec, record, steps=3000)
    compare(spec, record, res, out, rtol=1e-9)


LORENZ = """
kind = "rate"
description = "Lorenz-63 as Brian2 equations (a rate card: no threshold)"
[neuron]
equations = '''
dx/dt = sigma*(y - x)/tau : 1
dy/dt = (x*(rho - z) - y)/tau : 1
dz/dt = (x*y - beta*z)/tau : 1
'''
method = "rk4"
[neuron.initial]
x = "1 + 0.1*i"
y = "1"
z = "1"
[parameters]
sigma = "10"
rho = "28"
beta = "2.6666666666666665"
tau = "1*second"
"""


def test_rate_card_lorenz_matches_brian2():
    card = card_from_string(LORENZ, name="lorenz")
    spec = NetworkSpec(dt=1e-3)
    spec.add_population("l", card, 3)
    record = {"l": ["x", "y", "z"]}
    res = simulate(spec, 0.5, device="runtime", target="numpy", record=record, progress=False)
    out = torch_run(spec, record, steps=500)
    assert out.spikes == {}
    for var in "xyz":
        np.testing.assert_allclose(out.states["l"][var][:, 0].numpy(), res.states["l"][var], rtol=1e-9, atol=1e-9)
    # and the chaotic attractor is reached (|x| of order 10)
    assert np.abs(res.states["l"]["x"]).max() > 5


BRUNEL = """
description = "Brunel (2000) model A: delta synapses onto a membrane clamped while refractory"
[neuron]
equations = "dv/dt = -v/tau : volt (unless refractory)"
threshold = "v > theta"
reset = "v = V_r"
refractory = "t_ref"
method = "exact"
[parameters]
tau = "20*ms"
theta = "20*mV"
V_r = "10*mV"
t_ref = "2*ms"
[synapse]
model = "w : volt"
on_pre = "v_post += w"
"""


def test_synaptic_writes_to_an_unless_refractory_variable_wait_for_the_refractory_period():
    """Brian2 drops an on_pre write to ``v (unless refractory)`` while the target is refractory."""
    spec = NetworkSpec(dt=DT, seed=0)
    # 1.0 ms: a 25 mV kick makes it fire at 1.1 ms; 1.5 ms: a kick inside the 2 ms refractory
    # period (dropped); 3.5 ms: a kick after it (applied)
    spec.add_input("in", 1, indices=[0, 0, 0], times=[1.0e-3, 1.5e-3, 3.5e-3])
    spec.add_population("pop", card_from_string(BRUNEL, name="brunel"), 1)
    spec.connect("in", "pop", weight=25 * mV)
    spec.connect("in", "pop", weight=1 * mV, name="small")
    record = {"pop": ["v"]}
    res = simulate(spec, 5e-3, device="runtime", target="numpy", record=record, progress=False)
    out = torch_run(spec, record, steps=50)
    v_brian, v_torch = res.states["pop"]["v"][:, 0], out.states["pop"]["v"][:, 0, 0].numpy()
    assert v_brian[16] == pytest.approx(10e-3)           # the 1.5 ms kick was dropped ...
    assert v_brian[36] > 25e-3                            # ... the 3.5 ms one was not
    np.testing.assert_allclose(v_torch, v_brian, rtol=1e-12, atol=1e-15)


@pytest.mark.slow
def test_brunel_network_with_15_step_delays_matches_brian2():
    """400 neurons, 80 % excitatory, 1.5 ms delays (15 steps), external Poisson drive: 1 s."""
    card = card_from_string(BRUNEL, name="brunel")
    spec = NetworkSpec(dt=DT, seed=11)
    rng = np.random.default_rng(11)
    n, n_exc, n_ext, rate = 400, 320, 400, 30.0
    n_spikes = rng.poisson(rate * n_ext * DURATION)
    keys = np.unique(np.stack([rng.integers(0, STEPS, n_spikes), rng.integers(0, n_ext, n_spikes)]), axis=1)
    spec.add_input("ext", n_ext, indices=keys[1], times=keys[0] * DT + 0.3 * DT)
    spec.add_population("pop", card, n)
    spec.connect("ext", "pop", p=0.1, weight=0.9 * mV)
    for name, rows, w in (("exc", slice(0, n_exc), 0.2 * mV), ("inh", slice(n_exc, n), -1.0 * mV)):
        proj = spec.connect("pop", "pop", p=0.1, weight=w, delay=1.5 * ms, name=name)
        keep = (proj.i >= rows.start) & (proj.i < rows.stop)
        for key in ("i", "j", "weights", "delays"):
            setattr(proj, key, getattr(proj, key)[keep])
    record = {"pop": ["v"]}
    res = simulate(spec, DURATION, device="runtime", target="numpy", record=record, progress=False)
    out = torch_run(spec, record)
    compare(spec, record, res, out)
    assert res.spikes["pop"][0].size > 2000              # a network that fires, not a quiet one


def test_random_initial_values_are_drawn_once_and_shared_by_both_engines(tmp_path):
    """``v = V_r + rand()*(theta - V_r)`` (Brunel's card with random starts): the spec draws the
    values from its seed, stores them, and Brian2 and torch start from them: identical spikes."""
    card = card_from_string(BRUNEL.replace('method = "exact"', 'method = "exact"\n[neuron.initial]\n'
                                           'v = "V_r + rand()*(theta - V_r)"'), name="brunel_rand")
    spec = NetworkSpec(dt=DT, seed=5)
    rng = np.random.default_rng(5)
    n_spikes = rng.poisson(300 * 50 * 0.2)
    keys = np.unique(np.stack([rng.integers(0, 2000, n_spikes), rng.integers(0, 50, n_spikes)]), axis=1)
    spec.add_input("ext", 50, indices=keys[1], times=keys[0] * DT + 0.3 * DT)
    pop = spec.add_population("pop", card, 60)
    v0 = pop.initial["v"]
    assert 10e-3 <= v0.min() and v0.max() < 20e-3 and v0.std() > 1e-3
    spec.connect("ext", "pop", p=0.2, weight=1.0 * mV)
    spec.connect("pop", "pop", p=0.1, weight=0.5 * mV, delay=1.5 * ms)
    spec = NetworkSpec.load(spec.save(tmp_path / "net.npz"))          # the draws travel with the file
    np.testing.assert_array_equal(spec.populations["pop"].initial["v"], v0)
    record = {"pop": ["v"]}
    res = simulate(spec, 0.2, device="runtime", target="numpy", record=record, progress=False)
    out = torch_run(spec, record, steps=2000)
    np.testing.assert_array_equal(res.states["pop"]["v"][0], v0)
    compare(spec, record, res, out)
