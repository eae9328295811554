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
    with pytest.raises(ValueError, match="v_th must be > 0"):
        ttfs_layer(torch.zeros(1, 3), torch.zeros(3, 2), v_th=0.0)
    with pytest.raises(ValueError, match="needs a finite t_end"):
        ttfs_layer(torch.zeros(1, 3), torch.zeros(3, 2), silent_grad=1.0)


# --- an independent reference: an interval walk per neuron in NumPy (float64) -------------

def _reference(t_in, w, v_th=1.0, t_end=np.inf):
    """First crossing by walking the sorted inputs of each neuron, one linear piece at a time.

    On ``[t_(k), t_(k+1))`` the potential rises with slope ``W`` (the weights of the inputs
    so far) from ``v``; the first piece whose end has ``v >= v_th`` holds the spike, at
    ``t_(k) + (v_th - v) / W``. Returns spike times, slopes and the causal sets (b, n_in, n_out).
    """
    t_in, w = np.asarray(t_in, dtype=np.float64), np.asarray(w, dtype=np.float64)
    (b, n_in), n_out = t_in.shape, w.shape[1]
    t_out, slope = np.full((b, n_out), t_end), np.ones((b, n_out))
    causal = np.zeros((b, n_in, n_out), dtype=bool)
    for s in range(b):
        order = np.argsort(t_in[s], kind="stable")
        ts = t_in[s, order]
        ends = np.minimum(np.append(ts[1:], t_end), t_end)
        for i in range(n_out):
            v = big_w = 0.0
            for k in range(n_in):
                if not ts[k] < t_end:
                    break
                big_w += w[order[k], i]
                v_end = v + big_w * (ends[k] - ts[k]) if ends[k] > ts[k] else v
                if v_end >= v_th:
                    t = ts[k] + (v_th - v) / big_w
                    if t < t_end:
                        t_out[s, i], slope[s, i] = t, big_w
                        causal[s, order[:k + 1], i] = True
                    break
                v = v_end
    return t_out, slope, causal


def _reference_grads(t_in, w, t_out, slope, causal, cotangent):
    """Gradients of ``sum(cotangent * t_out)``: dt_i/dw_ji = (t_j - t_i)/W_i, dt_i/dt_j = w_ji/W_i on C_i."""
    g = cotangent / slope                                               # (b, n_out); 0 where silent
    g = np.where(np.isfinite(t_out) & causal.any(1), g, 0.0)
    lag = np.where(causal, t_in[:, :, None] - np.where(causal.any(1), t_out, 0.0)[:, None, :], 0.0)
    grad_w = np.einsum("bji,bi->ji", lag, g)
    grad_t = np.einsum("bji,ji,bi->bj", causal.astype(float), w, g)
    return grad_t, grad_w


def _compare_with_reference(t_in, w, t_end=np.inf, seed=0, atol=1e-12):
    """Forward and gradients of ``ttfs_layer`` against the reference; returns the reference."""
    ref = _reference(t_in, w, 1.0, t_end)
    cot = np.random.default_rng(seed).standard_normal(ref[0].shape)
    a = torch.tensor(t_in, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    t_out = ttfs_layer(a, b, 1.0, t_end)
    np.testing.assert_allclose(t_out.detach().numpy(), ref[0], rtol=0, atol=atol)
    (t_out * torch.from_numpy(cot)).sum().backward()
    grad_t, grad_w = _reference_grads(np.asarray(t_in), np.asarray(w), *ref, cot)
    np.testing.assert_allclose(a.grad.numpy(), grad_t, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(b.grad.numpy(), grad_w, rtol=1e-9, atol=1e-9)
    return ref


def _on_input_time(t_in, t_out):
    """Neurons (b, n_out) whose spike time equals one of their inputs' times exactly."""
    return (t_out[:, None, :] == np.asarray(t_in)[:, :, None]).any(1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_reported_crossings_on_an_input_time_fire(dtype):
    # v = 5 t reaches 1 at 0.2, when the second input arrives
    t_out = ttfs_layer(torch.tensor([[0.0, 0.2]], dtype=dtype), torch.tensor([[5.0], [1.0]], dtype=dtype))
    assert float(t_out) == pytest.approx(0.2, rel=1e-6)
    # v = t touches 1 at t = 1, where an inhibitory input turns it down: v >= v_th fires
    t_out = ttfs_layer(torch.tensor([[0.0, 1.0]], dtype=dtype), torch.tensor([[1.0], [-2.0]], dtype=dtype))
    assert float(t_out) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_layer_agrees_with_the_interval_walk_on_random_layers(seed):
    rng = np.random.default_rng(seed)
    t_in = rng.uniform(0, 1, (6, 30))
    w = rng.normal(0.05, 0.15, (30, 40))
    ref = _compare_with_reference(t_in, w, t_end=2.0, seed=seed)
    fired = ref[0] < 2.0
    assert 0.2 < fired.mean() < 0.9                          # both cases are exercised


def test_exact_ties_on_a_dyadic_grid():
    # times k/4 and weights k/2 are exact in float64, so v hits 1 exactly at many input times,
    # also where an inhibitory input arriving then turns it down (a touch: v >= v_th fires)
    rng = np.random.default_rng(3)
    t_in = rng.integers(0, 5, (8, 8)) / 4
    w = rng.integers(-8, 6, (8, 200)) / 2
    t_ref, slope, _ = _compare_with_reference(t_in, w, t_end=2.0, atol=1e-15)
    arriving = t_in[:, :, None] == t_ref[:, None, :]                      # inputs at the spike time
    on_input = arriving.any(1) & (t_ref < 2.0)
    touch = on_input & (slope + np.einsum("bji,ji->bi", arriving, w) <= 0)
    assert on_input.sum() > 40 and touch.sum() > 20
    t_out = ttfs_layer(torch.from_numpy(t_in), torch.from_numpy(w), 1.0, 2.0).numpy()
    np.testing.assert_array_equal(t_out[on_input], t_ref[on_input])


def test_quantised_input_times_with_duplicates():
    # pixel grid: 784 inputs on 256 levels t = k / 255, so most times repeat
    rng = np.random.default_rng(4)
    t_in = rng.integers(0, 256, (3, 784)) / 255
    w = rng.normal(2.0 / 784, 3.0 / 28, (784, 12))
    assert len(np.unique(t_in[0])) < 784
    ref = _compare_with_reference(t_in, w, t_end=2.0, atol=1e-11)
    assert (ref[0] < 2.0).any() and (ref[0] == 2.0).any()


def test_crossings_exactly_at_quantised_input_times():
    # scale each neuron's weights so that v reaches 1 at one of its input times (to rounding)
    # while the slope after it stays positive: the spike time is continuous there, and its
    # gradient is one of the two one-sided ones (the input at the crossing causal or not)
    rng = np.random.default_rng(5)
    t_in = rng.integers(0, 256, (1, 40)) / 255
    w = rng.uniform(0.0, 1.0, (40, 200))
    target = np.sort(t_in[0])[rng.integers(5, 35, 200)]                 # one input time per neuron
    w = w / (np.clip(target[None, :] - t_in[0][:, None], 0, None) * w).sum(0)
    t_ref = _reference(t_in, w)[0][0]
    np.testing.assert_allclose(t_ref, target, rtol=0, atol=1e-12)
    b = torch.tensor(w, requires_grad=True)
    t_out = ttfs_layer(torch.from_numpy(t_in), b)
    np.testing.assert_allclose(t_out.detach()[0], t_ref, rtol=0, atol=1e-12)
    t_out.sum().backward()                                    # column i: dt_i / dw_ji
    lag = np.clip(t_in[0][:, None] - target[None, :], None, 0)           # t_j - t_i on t_j <= t_i
    one_sided = [lag / ((t_in[0][:, None] < target) * w).sum(0), lag / ((t_in[0][:, None] <= target) * w).sum(0)]
    assert all(any(np.allclose(b.grad[:, i], side[:, i], rtol=1e-9, atol=1e-12) for side in one_sided)
               for i in range(200))


def test_a_silent_neuron_with_an_open_window_has_a_finite_gradient():
    rng = np.random.default_rng(6)
    t_in = rng.uniform(0, 1, (5, 20))
    w = rng.normal(0.0, 0.2, (20, 30))
    ref = _compare_with_reference(t_in, w, t_end=np.inf)
    assert np.isinf(ref[0]).any() and np.isfinite(ref[0]).any()
    a = torch.tensor(t_in, requires_grad=True)
    b = torch.tensor(w, requires_grad=True)
    ttfs_layer(a, b).masked_fill(torch.isinf(torch.from_numpy(ref[0])), 0.0).sum().backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_duplicate_input_times_act_as_one_input():
    t_out = ttfs_layer(torch.full((1, 4), 0.5, dtype=torch.float64),
                       torch.tensor([[0.5], [1.0], [-0.5], [1.0]], dtype=torch.float64))
    assert float(t_out) == pytest.approx(0.5 + 1 / 2.0)


def test_gradients_on_quantised_times_match_finite_differences():
    rng = np.random.default_rng(7)
    t_in = torch.tensor(rng.integers(0, 256, (3, 50)) / 255, requires_grad=True)
    w = torch.tensor(rng.normal(0.06, 0.2, (50, 8)), requires_grad=True)
    ref_t = _reference(t_in.detach(), w.detach(), 1.0, 2.0)[0]
    gaps = np.abs(ref_t[:, None, :] - t_in.detach().numpy()[:, :, None]).min(1)
    assert gaps.min() > 1e-4                               # no tie within the step of the differences
    assert torch.autograd.gradcheck(lambda a, b: ttfs_layer(a, b, 1.0, 2.0), (t_in, w), eps=1e-7, atol=1e-6)


def test_gradient_at_a_crossing_on_an_input_time_is_the_one_sided_derivative():
    # t = [0, 0.2], w = [5, 1]: the crossing at 0.2 belongs to the first input only (slope 5);
    # its gradient is the derivative in the directions that keep it there: w_0 up, t_0 down,
    # t_1 later (which does not move it)
    def spike(t0=0.0, t1=0.2, w0=5.0):
        return float(ttfs_layer(torch.tensor([[t0, t1]], dtype=torch.float64),
                                torch.tensor([[w0], [1.0]], dtype=torch.float64)))

    t_in = torch.tensor([[0.0, 0.2]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[5.0], [1.0]], dtype=torch.float64, requires_grad=True)
    ttfs_layer(t_in, w).sum().backward()
    eps = 1e-7
    assert float(w.grad[0, 0]) == pytest.approx((spike(w0=5 + eps) - spike()) / eps, rel=1e-5)
    assert float(t_in.grad[0, 0]) == pytest.approx((spike(t0=-eps) - spike()) / -eps, rel=1e-5)
    assert float(t_in.grad[0, 1]) == 0.0 == spike(t1=0.2 + eps) - spike()
    assert float(w.grad[1, 0]) == 0.0
