"""Validation in Brian2: trial presentation, parity with the exact torch TTFS layer, variants, bad input."""

import json

import numpy as np
import pytest

from neurocode.errors import NetworkSpecError
from neurocode.cards import card_from_string, load_card
from neurocode.spec import NetworkSpec, Population
from neurocode.brian import simulate
from neurocode.torch.ttfs import TTFSNetwork
from neurocode.cards.stale import choose_cards
from neurocode.validate import (TrialInputs, VariantError, apply_variants, parse_variant, present,
                                validate_spec)
from neurocode.validate.run import TTFSTask
from neurocode.validate.timing import grid_times
from neurocode.validate.variants import window_end_rule

DT = 0.01e-3


@pytest.fixture(scope="module")
def ttfs():
    """A 20-8-3 TTFS network with its initial (hand-set, seeded) weights and 24 random samples."""
    net = TTFSNetwork((20, 8, 3), seed=1)
    spec = net.to_spec(dt=DT)
    rng = np.random.default_rng(0)
    return spec, rng.random((24, 20)), rng.integers(0, 3, 24)


def first_times(spec, x, variants=(), device="runtime", chunk=None, timing="grid"):
    """Brian2 first-spike times per layer (s, inf if silent or forced) for samples x."""
    task = TTFSTask(spec)
    brian = task.brian_spec(apply_variants(spec, variants, seed=3), timing)
    spikes = present(brian, task.trials(x, brian), task.period(brian), device=device, chunk=chunk or len(x))
    return task.brian_reference(spikes, brian)


def test_runtime_matches_exact_torch(ttfs):
    spec, x, y = ttfs
    report = validate_spec(spec, x, y, device="runtime", chunk=12)
    assert report["agreement"] >= 0.95
    assert abs(report["accuracy_brian2"] - report["accuracy_torch"]) <= 0.05
    for layer in report["layers"].values():
        err = layer["spike_time"]
        assert err["rmse"] < DT                          # spike-time RMSE below one step
        assert err["fired_mismatch"] <= 0.02
        assert layer["spikes_per_neuron_brian2"] == pytest.approx(layer["spikes_per_neuron_torch"], abs=0.02)
    assert report["layers"]["hidden1"]["spike_time"]["within_dt"] == 1.0


@pytest.mark.slow
def test_interpolated_timing_reproduces_the_closed_form(ttfs):
    # inputs on the time grid: the Brian2 potentials equal the closed form on the grid, so the
    # hidden spike times are exact; output times are exact unless a hidden spike arrives in the
    # crossing's step (linear interpolation over an input's arrival)
    import torch

    spec, x, _ = ttfs
    task = TTFSTask(spec)
    brian = task.brian_spec(spec)
    assert brian.metadata["timing"] == "interpolated"
    first, _ = task.brian_reference(present(brian, task.trials(x, brian), task.period(brian), device="runtime"),
                                    brian)
    t_in = grid_times(task.encode(x), DT) / task.tau_s
    with torch.no_grad():
        exact = [t.numpy() * task.tau_s for t in TTFSNetwork.from_spec(spec).double()(torch.from_numpy(t_in))]
    for name, ref, end in zip(task.layers, exact, task.windows):
        ref = np.where(ref < end - 1e-12, ref, np.inf)
        np.testing.assert_array_equal(np.isfinite(first[name]), np.isfinite(ref))
        both = np.isfinite(ref)
        err = np.abs(first[name][both] - ref[both]) / DT
        if name == "hidden1":
            assert err.max() < 1e-6
        else:
            assert np.mean(err < 1e-6) > 0.9 and err.max() < 0.2


def test_timing_choice_and_errors(ttfs):
    spec, x, y = ttfs
    grid = validate_spec(spec, x[:8], y[:8], device="runtime", timing="grid")
    interp = validate_spec(spec, x[:8], y[:8], device="runtime")
    assert (grid["timing"], interp["timing"]) == ("grid", "interpolated")
    for name in spec.populations:       # input rounding (< dt / 2) is all that is left
        assert interp["layers"][name]["spike_time"]["rmse_dt"] < grid["layers"][name]["spike_time"]["rmse_dt"]
        assert interp["layers"][name]["spike_time"]["rmse_dt"] < 0.35
    leaky = TTFSTask(spec).brian_spec(apply_variants(spec, ["leak=0.2"]))
    assert "timing" not in leaky.metadata                             # auto falls back to the grid
    with pytest.raises(VariantError, match="needs 'dv/dt = X/tau'"):
        TTFSTask(spec).brian_spec(apply_variants(spec, ["leak=0.2"]), "interpolated")
    with pytest.raises(NetworkSpecError, match="does not handle synaptic delays"):
        TTFSTask(spec).brian_spec(apply_variants(spec, ["delays=0.1"]), "interpolated")
    with pytest.raises(NetworkSpecError, match="timing must be one of"):
        validate_spec(spec, x, y, device="runtime", timing="exact")


def test_cpp_standalone_matches_runtime_and_torch(ttfs, standalone_cache, monkeypatch):
    monkeypatch.setenv("NEUROCODE_CACHE", str(standalone_cache))
    spec, x, y = ttfs
    first_rt, ans_rt = first_times(spec, x, timing="interpolated")
    first_cpp, ans_cpp = first_times(spec, x, device="cpp_standalone", chunk=8, timing="interpolated")
    np.testing.assert_array_equal(ans_cpp, ans_rt)
    for name in first_rt:
        np.testing.assert_allclose(first_cpp[name], first_rt[name], atol=1e-12)
    report = validate_spec(spec, x, y, device="cpp_standalone", chunk=8)   # same project: 3 more runs
    assert report["presentation"]["runs"] == 3 and report["agreement"] >= 0.95


def test_trial_reset_makes_trials_independent(ttfs):
    spec, x, _ = ttfs
    task = TTFSTask(spec)
    brian = spec                         # the ttfs card carries the window-end rule
    alone = present(brian, task.trials(x[5:6], brian), task.period(brian), device="runtime")
    after = present(brian, task.trials(x[4:6], brian), task.period(brian), device="runtime")
    for name in spec.populations:
        np.testing.assert_allclose(after.first_spike_times(name)[1], alone.first_spike_times(name)[0], atol=1e-12)
        np.testing.assert_array_equal(after.counts(name)[1], alone.counts(name)[0])


def test_trial_inputs_window_and_checks():
    trials = TrialInputs("in", 4, trial=[1, 0, 1], index=[3, 0, 1], time=[1e-3, 0.0, 2e-3])
    idx, t = trials.window(0, 2, period=5e-3)
    np.testing.assert_array_equal(idx, [0, 3, 1])
    np.testing.assert_allclose(t, [0.0, 6e-3, 7e-3])
    with pytest.raises(NetworkSpecError, match=r"indices must lie in \[0, 4\)"):
        TrialInputs("in", 4, trial=[0], index=[4], time=[0.0])


def test_variants_change_dynamics_in_the_expected_direction(ttfs):
    spec, x, _ = ttfs
    x = x[:6]
    base, ans = first_times(spec, x)
    hid = "hidden1"
    fired = np.isfinite(base[hid])

    leaky, _ = first_times(spec, x, ["leak=0.3"])
    both = fired & np.isfinite(leaky[hid])
    assert np.all(leaky[hid][both] >= base[hid][both]) and np.mean(leaky[hid][both] > base[hid][both]) > 0.5
    assert np.isfinite(leaky[hid]).sum() <= fired.sum()           # a leak never makes a neuron fire

    fine, fine_ans = first_times(spec, x, ["quantize=24"])          # many bits: nothing changes
    np.testing.assert_array_equal(fine_ans, ans)
    np.testing.assert_allclose(fine[hid][fired], base[hid][fired], atol=1e-12)

    delayed, _ = first_times(spec, x, ["delays=0.2"])
    both = fired & np.isfinite(delayed[hid])
    assert np.all(delayed[hid][both] >= base[hid][both] - 1e-12) and np.any(delayed[hid][both] > base[hid][both])

    noisy, _ = first_times(spec, x, ["noise=0.05"])
    both = fired & np.isfinite(noisy[hid])
    assert np.any(np.abs(noisy[hid][both] - base[hid][both]) > DT)


def test_conductance_variant_scales_drive_at_threshold():
    # one neuron, one excitatory input of weight 2: v = 2 t crosses v_th = 1 at t = 0.5 ms;
    # with conductance strength s the drive falls linearly to (1 - s) at threshold: later spike
    spec = NetworkSpec(dt=DT)
    spec.add_input("in", 1, indices=[0], times=[0.0])
    spec.add_population("out", "ttfs", 1)
    spec.connect("in", "out", weight=2.0)
    spec.metadata.update(windows=[3e-3])
    cond = apply_variants(spec, ["conductance=0.5"])
    card = cond.populations["out"].card
    assert "I_syn_e" in card.text and float(cond.populations["out"].params["E_exc"][0]) == pytest.approx(2.0)
    assert apply_variants(spec, ["conductance=0.2"]).populations["out"].card.sha256 == card.sha256
    lif = NetworkSpec(dt=1e-4)
    lif.add_population("exc", "lif", 2)
    lif_cond = apply_variants(lif, ["conductance=0.5"])
    eqs = lif_cond.populations["exc"].card.equations
    assert {"I_syn_e", "I_syn_i", "I_syn"} <= set(eqs.names) and "dI_syn_e/dt" in str(eqs)
    # Brian2's exact solver cannot take the drive that now depends on v: the card switches method
    assert lif_cond.populations["exc"].card.method == "exponential_euler"
    simulate(lif_cond, 1e-3, device="runtime", progress=False)
    trials = TrialInputs.from_times("in", np.zeros((1, 1)))
    t_base = present(spec, trials, 3.1e-3, device="runtime").first_spike_times("out")[0, 0]
    t_cond = present(cond, trials, 3.1e-3, device="runtime").first_spike_times("out")[0, 0]
    # dv/dt = 2 (E - v)/E / tau_s with E = 2: v = 2 (1 - exp(-t)) reaches 1 at t = ln 2 tau_s
    assert t_base == pytest.approx(0.5e-3, abs=1.5 * DT)
    assert t_cond == pytest.approx(np.log(2) * 1e-3, abs=1.5 * DT)


def test_heterogeneity_and_dt_variants(ttfs):
    spec, _, _ = ttfs
    het = apply_variants(spec, ["heterogeneity=0.3"], seed=1)
    tau = het.populations["hidden1"].params["tau_s"]
    assert 0.1 < tau.std() / tau.mean() < 0.6 and spec.populations["hidden1"].params["tau_s"].std() == 0
    assert apply_variants(spec, ["dt=0.5"]).dt == pytest.approx(DT / 2)
    assert apply_variants(spec, ["leak=0"]) is spec
    assert apply_variants(spec, ["leak=0.5", "noise=0.1"]).populations["out"].card.name == "ttfs+leak+noise"


def test_bad_variants():
    with pytest.raises(VariantError, match="unknown variant 'wobble'; choose from leak"):
        parse_variant("wobble=1")
    with pytest.raises(VariantError, match="strength must be a number"):
        parse_variant("leak=strong")
    with pytest.raises(VariantError, match="integer number of bits"):
        apply_variants(NetworkSpec(), ["quantize=2.5"])
    spec = NetworkSpec(dt=1e-4)
    spec.add_population("exc", "lif", 3)
    with pytest.raises(VariantError, match=r"does not apply to card 'lif'.*already depends on v"):
        apply_variants(spec, ["leak=0.5"])
    spec.metadata["windows"] = [2e-3]
    with pytest.raises(VariantError, match=r"'window_end' does not apply to card 'lif'.*not 'FLAG = 1'"):
        window_end_rule(spec)


def test_stale_or_missing_card_is_reported_and_chosen(ttfs, caplog):
    spec, x, y = ttfs
    assert choose_cards(spec).populations == spec.populations          # the library card is the trained one
    assert not caplog.records
    changed = NetworkSpec(dt=DT, metadata=dict(spec.metadata))
    changed.inputs = spec.inputs
    card = card_from_string(load_card("ttfs").text.replace('v_th = "1"', 'v_th = "1.5"'), name="ttfs")
    for name, pop in spec.populations.items():
        changed.populations[name] = Population(name, card, pop.size, pop.params)
    changed.projections = spec.projections
    stored = choose_cards(changed)
    assert stored.populations["out"].card.defaults["v_th"] == 1.5
    assert "equations/ttfs.toml has changed since the spec was saved; using the text stored" in caplog.text
    current = choose_cards(changed, "current")
    assert current.populations["out"].card.defaults["v_th"] == 1.0
    assert "using the file as it is now" in caplog.text
    missing = card_from_string(load_card("ttfs").text, name="ttfs_gone")
    changed.populations = {n: Population(n, missing, p.size, p.params) for n, p in spec.populations.items()}
    with pytest.raises(NetworkSpecError, match=r"card 'ttfs_gone' .*ttfs_gone.toml no longer exists; use the text "
                                               r"stored in the spec \(--card-source stored\)"):
        validate_spec(changed, x, y, device="runtime", card_source="current")


def test_bad_shapes_and_unknown_networks(ttfs):
    spec, x, y = ttfs
    with pytest.raises(NetworkSpecError, match=r"samples must be \(n, 20\) for input 'in'"):
        validate_spec(spec, x[:, :10], y, device="runtime")
    with pytest.raises(NetworkSpecError, match=r"labels must be \(24,\)"):
        validate_spec(spec, x, y[:3], device="runtime")
    plain = NetworkSpec(dt=1e-4)
    plain.add_population("exc", "lif", 2)
    with pytest.raises(NetworkSpecError, match="cannot tell how to present and decode"):
        validate_spec(plain, x, y)
    task = TTFSTask(spec)
    with pytest.raises(NetworkSpecError, match="trials have 3 input neurons, but input 'in' has 20"):
        present(spec, TrialInputs.from_times("in", np.zeros((1, 3))), task.period(spec), device="runtime")


def test_cli_writes_report(tmp_path, capsys):
    from neurocode.cli import main

    run = tmp_path / "run"
    TTFSNetwork((784, 6, 10), seed=2).to_spec(dt=0.05e-3).save(run / "network.npz")
    code = main(["validate", str(run), "--device", "runtime", "--samples", "4", "--data", "mnist5k",
                 "--no-progress", "--variant", "quantize=12"])
    assert code == 0
    report = json.loads((run / "validation-runtime-quantize12.json").read_text())
    assert report["n_samples"] == 4 and report["variants"] == [["quantize", 12.0]]
    assert "agreement" in capsys.readouterr().out
    assert main(["validate", str(run), "--variant", "wobble"]) == 2
    assert "unknown variant 'wobble'" in capsys.readouterr().err


def test_docs_example_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    page = Path(__file__).resolve().parent.parent / "docs" / "validate.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "validate.md", "exec"), {})
