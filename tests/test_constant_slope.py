"""The constant-slope TTFS neuron (ttfs_slope card): exact layer, ReLU equivalence, Brian2, regularisers."""

import numpy as np
import pytest
import torch

from neurocode.errors import ConfigError
from neurocode.objectives import ssr_slope
from neurocode.objectives.ssr import SSRLoss
from neurocode.torch.constant_slope import ConstantSlopeNetwork, open_potential, slope_layer


def _trajectory_spike(t_in, w, b, t_open, v_th, t_end, rho=1.0, dt=1e-5):
    """Integrate the card's equation on a fine grid (independent of the closed form)."""
    t = np.arange(0, t_end + dt, dt)
    current = ((t[:, None] >= t_in[None, :]) * w[None, :]).sum(1) + b / t_open   # bias over [0, t_open)
    slope = np.where(t < t_open, current, rho)
    v = np.concatenate([[0.0], np.cumsum(slope[:-1]) * dt])
    above = (v >= v_th) & (t >= t_open) & (t < t_end)
    return t[above.argmax()] if above.any() else t_end


def test_layer_matches_integrated_trajectory():
    rng = np.random.default_rng(0)
    t_in = rng.random((6, 5))
    w, b = rng.normal(0, 1.5, (5, 3)), rng.normal(0, 0.5, 3)
    t = slope_layer(torch.from_numpy(t_in), torch.from_numpy(w), torch.from_numpy(b), 1.0, 2.0, 3.0).numpy()
    for s in range(6):
        for i in range(3):
            ref = _trajectory_spike(t_in[s], w[:, i], b[i], 1.0, 2.0, 3.0)
            assert abs(t[s, i] - ref) < 1e-4, (s, i, t[s, i], ref)


def test_network_is_its_relu_twin_forward_and_gradient():
    """Activations T - t are the ReLU twin's, and so are the gradients of the loss (the point of
    a constant slope at threshold); a varying slope would rescale them per neuron."""
    net = ConstantSlopeNetwork((20, 16, 5), window=50.0, out_margin=50.0, seed=1).double()
    twin = torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.ReLU(), torch.nn.Linear(16, 5)).double()
    with torch.no_grad():
        for k, layer in enumerate((twin[0], twin[2])):
            layer.weight.copy_(net.weights[k].T)
            layer.bias.copy_(net.biases[k])
    x = torch.rand(32, 20, dtype=torch.float64)
    y = torch.randint(0, 5, (32,))
    times = net(1.0 - x)
    hidden = twin[1](twin[0](x))
    torch.testing.assert_close(net.windows[0] - times[0], hidden)
    assert 0 < (hidden == 0).float().mean() < 1, "some hidden neurons silent, some firing"
    loss = SSRLoss(tau_soft=1.0, gamma_temporal=0.0)(net, 1.0 - x, times, y)[0]
    ref = torch.nn.functional.cross_entropy(twin(x), y)
    torch.testing.assert_close(loss, ref)
    loss.backward()
    ref.backward()
    torch.testing.assert_close(net.weights[0].grad, twin[0].weight.grad.T)
    torch.testing.assert_close(net.biases[1].grad, twin[2].bias.grad)


def test_silent_output_passes_extrapolated_gradient_and_hidden_does_not():
    t_in = torch.zeros(1, 1)
    w = torch.tensor([[-1.0]], requires_grad=True)
    t = slope_layer(t_in, w, torch.zeros(1), 1.0, 1.0, 2.0, silent_grad=1.0)   # V = -1: crossing at 3 > 2
    assert float(t) == 2.0
    t.sum().backward()
    assert float(w.grad) == -1.0          # dt/dw = -(t_open - t_j) / rho
    w.grad = None
    slope_layer(t_in, w, torch.zeros(1), 1.0, 1.0, 2.0).sum().backward()
    assert float(w.grad) == 0.0


def _area_numeric(v_open, level, length, rho=1.0, n=200001):
    s = np.linspace(0, length, n)
    return np.trapezoid(np.clip(v_open + rho * s - level, 0, None), s)


@pytest.mark.parametrize("v_open", [-7.0, -1.5, 0.0, 2.5, 9.0])
def test_regularisers_against_their_integrals(v_open):
    v = torch.tensor([v_open], dtype=torch.float64)
    assert float(ssr_slope.m_ssr(v, 4.0, 5.0)) == pytest.approx(_area_numeric(v_open, 4.0, 5.0), abs=1e-6)
    assert float(ssr_slope.membrane_area(v, 2.0, 5.0, rho=0.5)) == pytest.approx(
        _area_numeric(v_open, 2.0, 5.0, rho=0.5), abs=1e-6)
    assert float(ssr_slope.f_ssr(v, 5.0)) == pytest.approx(max(v_open + 5.0, 0.0))


def test_m_ssr_is_half_the_squared_activation():
    """A neuron that fired at t_i has M-SSR = (T - t_i)^2 / 2 (rho = 1)."""
    net = ConstantSlopeNetwork((8, 6, 3), window=10.0, seed=2).double()
    t_in = torch.rand(4, 8, dtype=torch.float64)
    times = net(t_in)
    v = net.open_potentials(t_in, times)[0]
    x = net.windows[0] - times[0]
    torch.testing.assert_close(ssr_slope.m_ssr(v, net.v_th, net.window), x ** 2 / 2)
    torch.testing.assert_close(v, open_potential(t_in, net.weights[0], net.biases[0], net.opens[0]))


def test_spec_round_trip():
    net = ConstantSlopeNetwork((5, 4, 3), t_input=2.0, window=3.0, out_margin=1.0, seed=4).double()
    back = ConstantSlopeNetwork.from_spec(net.to_spec(tau_s=2e-3)).double()
    t_in = torch.rand(3, 5, dtype=torch.float64) * 2
    for a, b in zip(net(t_in), back(t_in)):
        torch.testing.assert_close(a, b)


def test_config_refuses_ramp_settings_for_the_constant_slope_neuron():
    from neurocode.training.ttfs import build_ttfs, load_config
    cfg = load_config({"network": {"neuron": "constant_slope", "sizes": [4, 3, 2], "init_std": 3.0}})
    with pytest.raises(ConfigError, match="network.init_std = 3.0 applies to neuron = 'ramp' only"):
        build_ttfs(cfg)
    cfg = load_config({"network": {"neuron": "constant_slope", "sizes": [4, 3, 2]}, "loss": {"gamma_silent": 0.1}})
    with pytest.raises(ConfigError, match="gamma_silent"):
        build_ttfs(cfg)
    net, _, _ = build_ttfs(load_config({"network": {"neuron": "constant_slope", "sizes": [4, 3, 2]}}))
    assert isinstance(net, ConstantSlopeNetwork)


def test_three_views_exact_layer_runner_and_brian2_agree():
    """The ttfs_slope card is the exact layer's network: the runner and Brian2 give identical
    spikes, each within a step of the closed-form times, and the same silent neurons."""
    from neurocode.brian import simulate
    from neurocode.torch import NetworkRunner

    net = ConstantSlopeNetwork((12, 10, 4), t_input=1.0, window=2.0, out_margin=2.0, seed=3).double()
    dt = 0.01e-3
    t_in = np.round(np.random.default_rng(4).random((1, 12)) * 100) * 0.01     # on the grid (tau_s = 1 ms)
    with torch.no_grad():
        exact = [t.numpy()[0] for t in net(torch.from_numpy(t_in))]
    spec = net.to_spec(tau_s=1e-3, dt=dt)
    spec.inputs["in"].indices, spec.inputs["in"].times = np.arange(12), t_in[0] * 1e-3 - dt   # inputs act a step later
    steps = int(round((net.windows[-1] + 0.5) * 1e-3 / dt))
    with torch.no_grad():
        out = NetworkRunner(spec, dtype=torch.float64)(steps=steps)
    result = simulate(spec, steps * dt, progress=False)
    for k, name in enumerate(["hidden1", "out"]):
        spikes = out.spikes[name][:, 0, :].numpy()
        assert spikes.sum(0).max() <= 1, "at most one spike per neuron"
        t_runner = np.where(spikes.sum(0) > 0, spikes.argmax(0) * dt * 1e3, np.inf)
        idx, tb = result.spikes[name]
        t_brian = np.full(spikes.shape[1], np.inf)
        t_brian[idx] = tb * 1e3
        np.testing.assert_allclose(t_brian, t_runner, atol=1e-9)
        silent = exact[k] >= net.windows[k]
        assert np.array_equal(np.isinf(t_runner), silent)
        if k == 0:
            assert 0 < silent.sum() < 10, "the test network should have silent and firing hidden neurons"
        # Brian2 stamps a spike with the start of the step whose update crossed threshold
        assert np.all(np.abs(t_runner[~silent] - exact[k][~silent]) <= dt * 1e3 + 1e-9)


def test_first_layer_potential_reaches_threshold_at_the_spike():
    net = ConstantSlopeNetwork((6, 5, 2), window=4.0, seed=5).double()
    t_in = torch.rand(1, 6, dtype=torch.float64)
    t_hidden = net(t_in)[0][0]
    fired = t_hidden < net.windows[0]
    assert fired.any()
    v = net.first_layer_potential(t_hidden[fired], t_in)[0]        # (n_fired, n): v of each neuron at each spike
    torch.testing.assert_close(torch.diagonal(v[:, fired]), torch.full((int(fired.sum()),), net.v_th,
                                                                       dtype=torch.float64))
