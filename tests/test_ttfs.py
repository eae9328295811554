"""The exact TTFS layer against a direct simulation and finite differences."""

import numpy as np
import pytest
import torch

from neurocode.cards import load_card
from neurocode.spec import NetworkSpec
from neurocode.torch.ttfs import TTFSNetwork, first_crossing, membrane_potential, ttfs_layer


def _problem(seed, batch=3, n_in=10, n_out=6, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    t_in = torch.rand(batch, n_in, generator=gen, dtype=dtype)
    w = torch.randn(n_in, n_out, generator=gen, dtype=dtype) * 0.6 + 0.3
    return t_in, w


def _simulated_first_crossing(t_in, w, v_th, t_end, steps=200_001):
    """First grid time with v >= v_th on a fine grid (independent of the closed form)."""
    grid = torch.linspace(0, t_end, steps, dtype=torch.float64)
    above = membrane_potential(grid, t_in, w) >= v_th                 # (b, n_t, n_out)
    first = above.to(torch.uint8).argmax(1)
    return torch.where(above.any(1), grid[first], torch.full_like(grid[first], t_end)), t_end / (steps - 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spike_times_match_a_fine_time_grid_simulation(seed):
    t_in, w = _problem(seed)
    t_out = ttfs_layer(t_in, w, v_th=1.0, t_end=2.5)
    t_sim, dt = _simulated_first_crossing(t_in, w, 1.0, 2.5)
    assert (t_out < 2.5).any() and (t_out == 2.5).any()     # both cases are exercised
    np.testing.assert_allclose(t_out, t_sim, atol=2 * dt)


def test_the_card_potential_is_the_closed_form_potential():
    # the ttfs card: dv/dt = I_syn / tau_s, I_syn += w per input; exact solution is the ramp sum
    card = load_card("ttfs")
    assert "I_syn_post += w" in card.on_pre and float(card.defaults["tau_s"]) == pytest.approx(1e-3)
    t_in, w = _problem(5, batch=1, n_in=4, n_out=1)
    t = torch.linspace(0, 2, 2001, dtype=torch.float64)
    dt = float(t[1] - t[0])
    v, current, trace = 0.0, 0.0, []
    for tk in t.tolist():                                   # Euler on the card's ODE (exact for steps)
        trace.append(v)
        current += float(((t_in[0] >= tk) & (t_in[0] < tk + dt)).to(w.dtype) @ w[:, 0])
        v += current * dt
    np.testing.assert_allclose(trace, membrane_potential(t, t_in, w)[0, :, 0], atol=5 * dt)


def test_gradients_match_finite_differences_in_float64():
    t_in, w = _problem(3, batch=4, n_in=12, n_out=5)
    t_in.requires_grad_(True)
    w.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: ttfs_layer(a, b, 1.0, 3.0), (t_in, w), eps=1e-6, atol=1e-6)


def test_two_layers_gradients_match_finite_differences():
    net = TTFSNetwork((8, 6, 3), init_mean=3.0, seed=4).double()
    t_in = torch.rand(5, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    w1, w2 = (p.detach().clone().requires_grad_(True) for p in net.weights)

    def run(a, b):
        h = ttfs_layer(t_in, a, 1.0, net.windows[0])
        return ttfs_layer(h, b, 1.0, net.windows[1])

    assert torch.autograd.gradcheck(run, (w1, w2), eps=1e-6, atol=1e-6)


def test_silent_neurons_get_the_window_end_and_no_gradient():
    t_in = torch.tensor([[0.0, 0.5]], dtype=torch.float64)
    w = torch.tensor([[0.1, -1.0], [0.1, 3.0]], dtype=torch.float64, requires_grad=True)
    t_out = ttfs_layer(t_in, w, 1.0, t_end=2.0)
    assert float(t_out[0, 0]) == 2.0                         # v(2) = 0.35 < 1: silent
    assert float(t_out[0, 1]) == pytest.approx(1.25)         # v = 2 t - 1.5 after the dip
    t_out[0, 0].backward()
    assert torch.all(w.grad == 0)


def test_silent_gradient_is_the_derivative_of_the_extrapolated_crossing():
    # silent neuron: v(T) = 0.1 (2 - 0) + 0.1 (2 - 0.5) = 0.35; with k the pseudo time is
    # T + k (V_th - v(T)), whose derivatives are -k (T - t_j) in w_j and k w_j in t_j
    t_in = torch.tensor([[0.0, 0.5]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[0.1, -1.0], [0.1, 3.0]], dtype=torch.float64, requires_grad=True)
    k = 0.7
    t_out = ttfs_layer(t_in, w, 1.0, t_end=2.0, silent_grad=k)
    assert float(t_out[0, 0]) == 2.0                         # the forward pass is unchanged
    t_out[0, 0].backward()

    def extrapolated(t_in, w):
        return 2.0 + k * (1.0 - ((2.0 - t_in) @ w)[0, 0])
    g_t, g_w = torch.autograd.grad(extrapolated(t_in, w), (t_in, w))
    torch.testing.assert_close(w.grad, g_w)
    torch.testing.assert_close(t_in.grad, g_t)
    assert torch.all(w.grad[:, 1] == 0)                      # the fired neuron is untouched


def test_closed_form_example_by_hand():
    # v = 0.5 t until t = 1 (v = 0.5), then slope 1.5: crosses at 1 + 0.5 / 1.5
    t_out = ttfs_layer(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5], [1.0]]), 1.0, 5.0)
    assert float(t_out) == pytest.approx(4 / 3, rel=1e-6)


def test_float32_agrees_with_float64_on_mnist_sized_layer():
    gen = torch.Generator().manual_seed(0)
    t_in = torch.rand(16, 784, generator=gen)
    w = torch.randn(784, 50, generator=gen) / 28 + 2.0 / 784
    t32, _ = first_crossing(t_in, w, 1.0, 2.0)
    t64, _ = first_crossing(t_in.double(), w.double(), 1.0, 2.0)
    agree = (t32.double() - t64).abs() < 1e-4
    assert agree.float().mean() > 0.99


def test_network_round_trips_through_networkspec(tmp_path):
    net = TTFSNetwork((6, 4, 2), seed=3)
    spec = net.to_spec()
    path = spec.save(tmp_path / "net.npz")
    back = TTFSNetwork.from_spec(NetworkSpec.load(path))
    for a, b in zip(net.weights, back.weights):
        np.testing.assert_allclose(a.detach(), b.detach(), rtol=1e-6)
    assert spec.populations["hidden1"].card.name == "ttfs"
    assert spec.metadata["windows"] == pytest.approx([2e-3, 3e-3])
    x = torch.rand(4, 6)
    np.testing.assert_allclose(net(x)[-1].detach(), back(x)[-1].detach(), rtol=1e-5)


def test_bad_shapes_and_settings_raise():
    with pytest.raises(ValueError, match="t_in must be"):
        ttfs_layer(torch.zeros(3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="must share dtype"):
        ttfs_layer(torch.zeros(1, 3), torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="sizes must list"):
        TTFSNetwork((784,))
    with pytest.raises(ValueError, match="input times must be"):
        TTFSNetwork((4, 2))(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="must be > 0"):
        TTFSNetwork((4, 2), window=-1.0)
    with pytest.raises(ValueError, match="silent_grad must be >= 0"):
        ttfs_layer(torch.zeros(1, 3), torch.zeros(3, 2), silent_grad=-1.0)
