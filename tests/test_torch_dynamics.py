"""PopulationDynamics and NetworkRunner: analytic solutions, Brian2 timing rules, clear errors."""

import math

import numpy as np
import pytest
import torch
from brian2 import nA

from neurocode.cards import card_from_string, load_card
from neurocode.spec import NetworkSpec
from neurocode.torch import NetworkRunner, PopulationDynamics, TranslationError, synaptic_effects
from neurocode.cards.meaning import CardMeaningError, split_threshold

DT = 1e-4


def test_lif_exact_update_matches_the_analytic_solution():
    tau_m = np.array([0.01, 0.02, 0.03])
    dyn = PopulationDynamics("lif", {"tau_m": tau_m}, dt=DT, dtype=torch.float64)
    state = dyn.initial_state(2)
    i0, r, tau_s, v_rest = 0.1e-9, 100e6, 5e-3, -0.065
    state["I_syn"] = state["I_syn"] + i0
    for n in range(100):
        spikes, state = dyn.step(state, n * DT)
        assert spikes.sum() == 0
    t = 100 * DT
    expected = v_rest + r * i0 * tau_s / (tau_s - tau_m) * (np.exp(-t / tau_s) - np.exp(-t / tau_m))
    np.testing.assert_allclose(state["v"][0].numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(state["I_syn"][1].numpy(), i0 * math.exp(-t / tau_s), rtol=1e-12)


def test_refractory_variables_frozen_and_threshold_blocked():
    dyn = PopulationDynamics("lif", {"t_ref": 2e-3}, n=1, dt=DT, dtype=torch.float64)
    state = dyn.initial_state(1)
    state["v"] = state["v"] + 0.02            # above threshold: spikes at step 0
    spikes, state = dyn.step(state, 0.0)
    assert spikes.item() == 1.0 and state["lastspike"].item() == 0.0 and state["v"].item() == -0.065
    state["I_syn"] = state["I_syn"] + 10e-9   # strong input, but v is frozen for 20 steps
    for n in range(1, 20):
        spikes, state = dyn.step(state, n * DT)
        assert spikes.item() == 0.0 and state["v"].item() == -0.065
    _, state = dyn.step(state, 20 * DT)
    assert state["v"].item() > -0.065


def test_input_and_delay_timing_follow_brian2():
    """A spike at t is emitted in step int((t + 1e-3 dt)/dt), delivered after thresholding."""
    spec = NetworkSpec(dt=DT)
    spec.add_input("in", 1, indices=[0], times=[1e-3])       # step 10
    spec.add_population("n", "lif", 2)
    spec.connect("in", "n", p=1.0, weight=2 * nA)
    spec.projections[0].delays = np.array([0.0, 2 * DT])
    out = NetworkRunner(spec, dtype=torch.float64)(steps=20, record={"n": ["I_syn"]})
    i_syn = out.states["n"]["I_syn"][:, 0].detach().numpy()   # recorded at step starts
    assert np.nonzero(i_syn[:, 0])[0][0] == 11    # zero delay: seen at the start of step 11
    assert np.nonzero(i_syn[:, 1])[0][0] == 13    # two steps later
    assert i_syn[11, 0] == pytest.approx(2e-9)


def test_float32_and_float64_agree_and_batches_are_independent():
    spec = NetworkSpec(dt=DT, seed=2)
    spec.add_input("in", 10)
    spec.add_population("p", "alif", 8)
    spec.connect("in", "p", p=0.5, weight=1.5 * nA)
    spec.connect("p", "p", p=0.3, weight=0.2 * nA)
    x = (torch.rand(300, 3, 10, generator=torch.Generator().manual_seed(0)) < 0.05).float()
    outs = [NetworkRunner(spec, dtype=dt)(inputs={"in": x}, record={"p": ["v"]})
            for dt in (torch.float32, torch.float64)]
    assert outs[1].spikes["p"].sum() > 5
    torch.testing.assert_close(outs[0].states["p"]["v"].double(), outs[1].states["p"]["v"], rtol=1e-4, atol=1e-4)
    single = NetworkRunner(spec, dtype=torch.float64)(inputs={"in": x[:, 1:2]})
    assert torch.equal(single.spikes["p"][:, 0], outs[1].spikes["p"][:, 1])


def test_stochastic_term_has_brian2_sqrt_dt_scaling():
    card = card_from_string("""
kind = "rate"
[neuron]
equations = "dv/dt = -v/tau + sigma*sqrt(2/tau)*xi : 1"
method = "euler"
[parameters]
tau = "10*ms"
sigma = "0.5"
""", name="ou")
    dyn = PopulationDynamics(card, n=1, dt=DT, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert "xi = dt**.5 * randn()" in dyn.update_code    # Brian2's own code
    state = dyn.initial_state(4000)
    for n in range(500):                        # 5 time constants: stationary
        _, state = dyn.step(state, n * DT)
    assert state["v"].var().item() == pytest.approx(0.25, rel=0.08)   # sigma**2


def test_threshold_split_and_normalisation():
    assert split_threshold("v >= v_th and fired == 0", {"v", "fired"}) == ("(v) - (v_th)", "fired == 0")
    dyn = PopulationDynamics("alif", n=2, dt=DT, dtype=torch.float64)
    torch.testing.assert_close(dyn.threshold_scale, torch.full((2,), 0.015, dtype=torch.float64))
    with pytest.raises(CardMeaningError, match="cannot derive a distance to threshold from .fired == 0."):
        split_threshold("fired == 0", {"v", "fired"})


def _card(equations="dv/dt = -v/tau : 1", on_pre="v_post += w", threshold="v > 1", method="euler"):
    return card_from_string(f"""
[neuron]
equations = "{equations}"
threshold = "{threshold}"
reset = "v = 0"
method = "{method}"
[parameters]
tau = "10*ms"
[synapse]
model = "w : 1"
on_pre = "{on_pre}"
""", name="bad")


def test_untranslatable_function_is_named():
    with pytest.raises(TranslationError, match="function 'poisson' has no torch translation"):
        PopulationDynamics(_card("dv/dt = poisson(v)/tau : 1"), n=1, dt=DT)


def test_stochastic_exact_is_rejected_naming_the_method():
    with pytest.raises(TranslationError, match="'exact' state updater cannot integrate"):
        PopulationDynamics(_card("dv/dt = -v/tau + xi/sqrt(tau) : 1", method="exact"), n=1, dt=DT)


@pytest.mark.parametrize("on_pre, message", [
    ("v_post = w", "cannot express 'v_post = w'"),
    ("v_post += w*v_post", r"depends on \['v_post'\]"),
])
def test_on_pre_that_is_not_a_weight_product_is_rejected(on_pre, message):
    with pytest.raises(TranslationError, match=message):
        synaptic_effects(_card(on_pre=on_pre), torch.float64)


def test_coba_on_pre_is_generated_from_the_card():
    effects = synaptic_effects(load_card("coba_lif"), torch.float64)
    w = torch.tensor([2e-9, -3e-9, 0.0], dtype=torch.float64)
    assert [(var, sign, (sign * fn(w)).tolist()) for var, sign, fn in effects] == [
        ("g_e", 1.0, [2e-9, 0.0, 0.0]), ("g_i", -1.0, [0.0, 3e-9, 0.0])]


def test_bad_inputs_are_reported():
    with pytest.raises(ValueError, match="has no parameter"):
        PopulationDynamics("lif", {"tau": 0.01}, dt=DT)
    with pytest.raises(ValueError, match="cannot tell the population size"):
        PopulationDynamics("lif", dt=DT)
    spec = NetworkSpec(dt=DT)
    spec.add_input("in", 3)
    spec.add_population("p", "lif", 2)
    runner = NetworkRunner(spec)
    with pytest.raises(ValueError, match=r"input 'in' must be a \(time >= 5, batch, 3\) tensor"):
        runner(inputs={"in": torch.zeros(5, 1, 4)})
    with pytest.raises(ValueError, match=r"cannot record \['w'\] of 'p'"):
        runner(steps=2, record={"p": ["w"]})
