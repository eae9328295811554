"""Trainable per-neuron card parameters: gradients, valid range, export to the spec, Brian2."""

import math
import tomllib

import numpy as np
import pytest
import torch
from brian2 import nA, us

from neurocode.brian import simulate
from neurocode.cards import load_card
from neurocode.errors import ConfigError, NetworkSpecError
from neurocode.objectives.rank_coding import rank_coding_loss
from neurocode.spec import NetworkSpec
from neurocode.torch import NetworkRunner, surrogate
from neurocode.torch.classifiers import SpikingRCClassifier
from neurocode.torch.trainable import LOG_SPAN, parameter_map
from neurocode.training.rank_coding import build_model, trainable_populations

DT = 1e-4


def small_spec(card="lif", n=4, seed=0, **overrides):
    spec = NetworkSpec(dt=DT, seed=seed)
    spec.add_input("in", 3)
    spec.add_population("p", card, n, **overrides)
    spec.connect("in", "p", p=1.0, weight=3 * nA)
    spec.connect("p", "p", p=1.0, weight=0.5 * nA, autapses=False)
    return spec


def poisson_spec(card, n=30, n_in=20, rate=40.0, duration=0.3, seed=4):
    """Heterogeneous population, Poisson input, recurrent projection with 0-3-step delays."""
    spec = NetworkSpec(dt=DT, seed=seed)
    rng = np.random.default_rng(seed)
    times = np.round(rng.uniform(0, duration, rng.poisson(rate * n_in * duration)) / DT)
    idx = rng.integers(0, n_in, times.size)
    keys = np.unique(np.stack([times.astype(int), idx]), axis=1)
    spec.add_input("in", n_in, indices=keys[1], times=keys[0] * DT + 0.3 * DT)
    spec.add_population("p", card, n)
    spec.connect("in", "p", p=0.3, weight=1.0 * nA)
    spec.connect("p", "p", p=0.2, weight=0.1 * nA)
    spec.projections[-1].delays = rng.integers(0, 4, spec.projections[-1].i.size) * DT
    return spec


def test_parameter_map_ranges_from_units_and_heterogeneity():
    alif = load_card("alif")
    assert parameter_map(alif, "tau_a").positive            # a time (and lognormal)
    assert parameter_map(alif, "R_m").positive              # a resistance
    assert not parameter_map(alif, "v_th").positive         # a voltage: linear, in units of 50 mV
    assert parameter_map(alif, "v_th").unit == pytest.approx(0.05)
    m = parameter_map(alif, "tau_m")
    raw = m.raw(torch.tensor([0.02 * math.exp(-4.9), 0.02, 0.02 * math.exp(4.9)], dtype=torch.float64))
    torch.testing.assert_close(m.value(raw), torch.tensor([0.02 * math.exp(-4.9), 0.02, 0.02 * math.exp(4.9)],
                                                          dtype=torch.float64))


def test_gradient_wrt_trainable_tau_matches_finite_differences():
    runner = NetworkRunner(small_spec(t_ref="0*ms"), spike_fn=surrogate.sigmoid(slope=3.0), dtype=torch.float64,
                           trainable={"p": ["tau_m", "tau_syn"]})
    dyn = runner.populations["p"]
    assert {name for name, _ in runner.named_parameters()} >= {"dynamics.n_p.raw_tau_m", "dynamics.n_p.raw_tau_syn"}
    x = torch.zeros(30, 2, 3, dtype=torch.float64)
    x[[2, 5, 9, 14], 0, [0, 1, 2, 0]] = 1.0
    x[[3, 8], 1, [2, 1]] = 1.0

    def f(tau_m, tau_syn):   # in ms, so that gradcheck's eps is meaningful
        raw = {"dynamics.n_p.raw_tau_m": dyn.trainable["tau_m"].raw(tau_m * 1e-3),
               "dynamics.n_p.raw_tau_syn": dyn.trainable["tau_syn"].raw(tau_syn * 1e-3)}
        out = torch.func.functional_call(runner, raw, kwargs={"inputs": {"in": x}, "record": {"p": ["v"]}})
        return out.states["p"]["v"].sum(0) * 1e3, out.spikes["p"].sum(0)

    tau_m = torch.tensor([8.0, 15.0, 20.0, 35.0], dtype=torch.float64, requires_grad=True)
    tau_syn = torch.tensor([3.0, 5.0, 6.0, 9.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (tau_m, tau_syn), eps=1e-6, atol=1e-5, rtol=1e-4)
    out = runner(inputs={"in": x})
    out.spikes["p"].sum().backward()
    assert dyn.raw_tau_m.grad.abs().min() > 0 and dyn.raw_tau_syn.grad.abs().min() > 0


def test_an_untrained_trainable_parameter_changes_nothing():
    spec = poisson_spec("alif", duration=0.1)
    with torch.no_grad():
        fixed = NetworkRunner(spec, dtype=torch.float64)(steps=1000, record={"p": ["v"]})
        runner = NetworkRunner(spec, dtype=torch.float64, trainable={"p": ["tau_m", "tau_a", "v_th"]})
        learned = runner(steps=1000, record={"p": ["v"]})
    assert fixed.spikes["p"].sum() > 20
    assert torch.equal(fixed.spikes["p"], learned.spikes["p"])
    torch.testing.assert_close(learned.states["p"]["v"], fixed.states["p"]["v"], rtol=1e-12, atol=1e-15)
    assert [name for name, _ in NetworkRunner(spec).named_parameters()] == ["weights.n_in_to_p", "weights.n_p_to_p"]


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_values_stay_in_range_after_aggressive_optimiser_steps(sign):
    runner = NetworkRunner(small_spec(n=4, t_ref="2*ms"), trainable={"p": ["tau_m", "tau_syn"]})
    dyn = runner.populations["p"]
    opt = torch.optim.Adam([dyn.raw_tau_m, dyn.raw_tau_syn], lr=10.0)
    for _ in range(40):
        loss = sign * (dyn.param_tensor("tau_m").sum() / 0.02 + dyn.param_tensor("tau_syn").sum() / 0.005)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for name, default in (("tau_m", 0.02), ("tau_syn", 0.005)):
        value = dyn.param_tensor(name).detach()
        assert torch.isfinite(value).all() and (value > 0).all()
        assert (value >= default * math.exp(-LOG_SPAN) * (1 - 1e-5)).all()
        assert (value <= default * math.exp(LOG_SPAN) * (1 + 1e-5)).all()
        assert (value / default).log().abs().min() > LOG_SPAN - 0.5      # pushed to the edge
    x = (torch.rand(300, 2, 3, generator=torch.Generator().manual_seed(0)) < 0.2).float()
    out = runner(inputs={"in": x}, record={"p": ["v", "I_syn"]})
    assert all(torch.isfinite(v).all() for v in out.states["p"].values())


def test_trained_values_are_exported_and_round_trip(tmp_path):
    spec = small_spec(card="alif")
    runner = NetworkRunner(spec, dtype=torch.float64, trainable={"p": ["tau_m", "beta"]})
    dyn = runner.populations["p"]
    with torch.no_grad():
        dyn.raw_tau_m += torch.tensor([0.3, -0.2, 0.1, 0.0], dtype=torch.float64)
        dyn.raw_beta *= 2.0
    trained = runner.to_spec()
    trained.save(tmp_path / "net.npz")
    back = NetworkSpec.load(tmp_path / "net.npz")
    for name in ("tau_m", "beta"):
        np.testing.assert_array_equal(back.populations["p"].params[name], dyn.param_tensor(name).detach().numpy())
    np.testing.assert_allclose(back.populations["p"].params["beta"], 2 * spec.populations["p"].params["beta"])
    np.testing.assert_array_equal(back.populations["p"].params["tau_a"], spec.populations["p"].params["tau_a"])
    assert not np.allclose(trained.populations["p"].params["tau_m"], spec.populations["p"].params["tau_m"])
    assert spec.populations["p"].params["tau_m"] is not trained.populations["p"].params["tau_m"]


def _train(runner, x, steps=3):
    opt = torch.optim.Adam([p for name, p in runner.named_parameters() if "raw_" in name], lr=0.2)
    for _ in range(steps):
        count = runner(inputs={"in": x}).spikes["p"].sum(0).mean(0)
        loss = ((count - 3.0) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("card", ["lif", pytest.param("alif", marks=pytest.mark.slow)])
def test_brian2_runs_the_exported_spec_with_the_torch_result(card):
    """Train tau in torch, run the trained runner and Brian2 on the exported spec: same spikes."""
    spec = poisson_spec(card)
    names = ["tau_m", "tau_syn"] + (["tau_a"] if card == "alif" else [])
    runner = NetworkRunner(spec, dtype=torch.float64, trainable={"p": names})
    steps = int(round(0.3 / DT))
    drive = runner._inputs({}, steps, 1)["in"]
    _train(runner, drive[:1000])
    trained = runner.to_spec()
    assert not np.allclose(trained.populations["p"].params["tau_m"], spec.populations["p"].params["tau_m"])
    record = {"p": ["v", "I_syn"]}
    with torch.no_grad():
        out = runner(steps=steps, record=record)
    res = simulate(trained, 0.3, device="runtime", target="numpy", record=record, progress=False)
    idx, times = res.spikes["p"]
    b_spikes = sorted(zip(np.round(times / DT).astype(int).tolist(), idx.tolist()))
    t_steps, t_idx = torch.nonzero(out.spikes["p"][:, 0, :], as_tuple=True)
    assert len(b_spikes) > 50
    assert sorted(zip(t_steps.tolist(), t_idx.tolist())) == b_spikes
    for var in record["p"]:
        b, t = res.states["p"][var], out.states["p"][var][:, 0, :].numpy()
        np.testing.assert_allclose(t, b, rtol=1e-9, atol=1e-9 * np.abs(b).max(), err_msg=var)


def test_rc_classifier_trains_and_exports_time_constants(tmp_path):
    torch.manual_seed(0)
    model = SpikingRCClassifier(4, 2, hidden=8, dt=1e-3, input_encoding="current", input_scale=20.0, seed=1,
                                trainable=trainable_populations(["tau_m", "out.tau_m"]))
    x, y = torch.rand(6, 20, 4) * 3.0, torch.tensor([0, 1, 0, 1, 0, 1])
    rank_coding_loss(model, x, y, theta=0.5).loss.backward()
    hidden = model.runner.populations["hidden"]
    assert hidden.raw_tau_m.grad.abs().sum() > 0
    with torch.no_grad():
        hidden.raw_tau_m -= 0.5
    spec = model.to_spec(steps=20)
    np.testing.assert_allclose(spec.populations["hidden"].params["tau_m"],
                               hidden.param_tensor("tau_m").detach().double().numpy())
    assert "raw_tau_m" in dict(model.runner.populations["out"].named_parameters())


def test_train_run_trains_time_constants_and_saves_them(tmp_path):
    from neurocode.training.rank_coding import train_run
    kw = {"epochs": 1, "lr": 1e-2, "batch_size": 100, "hidden": 8, "n_train": 200, "card": "alif"}
    train_run("noise", "spiking", "rc", **kw, out=tmp_path, train_params=["tau_m", "out.tau_m"], param_lr=0.1)
    config = tomllib.loads((tmp_path / "config.toml").read_text())
    assert config["train_params"] == ["tau_m", "out.tau_m"] and config["param_lr"] == 0.1
    trained = NetworkSpec.load(tmp_path / "network.npz")
    initial = build_model("spiking", 1, 2, 8, "current", seed=0, card="alif").to_spec()
    for pop in ("hidden", "out"):
        change = np.log(trained.populations[pop].params["tau_m"] / initial.populations[pop].params["tau_m"])
        assert np.abs(change).max() > 0.05          # moved by more than 5 % (two steps at lr 0.1)
    np.testing.assert_array_equal(trained.populations["hidden"].params["tau_a"],
                                  initial.populations["hidden"].params["tau_a"])


def test_bad_trainable_parameters():
    spec = small_spec()
    with pytest.raises(NetworkSpecError, match=r"trainable parameters for \['q'\], which are not populations"):
        NetworkRunner(spec, trainable={"q": ["tau_m"]})
    with pytest.raises(ConfigError, match="card 'lif' has no parameter 'tau_x' to train"):
        NetworkRunner(spec, trainable={"p": ["tau_x"]})
    with pytest.raises(ConfigError, match="'t_ref' sets the refractory period"):
        NetworkRunner(spec, trainable={"p": "t_ref"})
    with pytest.raises(NetworkSpecError, match=r"'tau_m' is positive and trains within \(0.000135, 2.97\)"):
        NetworkRunner(small_spec(tau_m=1 * us), trainable={"p": ["tau_m"]})
    with pytest.raises(ConfigError, match="write 'NAME' \\(hidden population\\) or 'hidden.NAME'"):
        trainable_populations(["input.tau_m"])
    with pytest.raises(ConfigError, match="need the spiking model, not the LSTM"):
        build_model("lstm", 2, 2, 4, "current", trainable=["tau_m"])
    from neurocode.training.rank_coding import train_run
    with pytest.raises(ConfigError, match=r"param_lr = -1.0: must be a number > 0"):
        train_run("noise", "spiking", param_lr=-1.0, train_params=["tau_m"])
