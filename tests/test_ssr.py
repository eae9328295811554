"""M-SSR, F-SSR and the membrane baseline against their numerical definitions."""

import numpy as np
import pytest
import torch

from neurocode.objectives.ssr import SSRLoss, f_ssr, hidden_spike_rates, m_ssr, membrane_area
from neurocode.torch.ttfs import TTFSNetwork, membrane_potential, ttfs_layer

T_END = 3.0


def _problem(seed, batch=2, n_in=8, n_out=5, positive=True):
    gen = torch.Generator().manual_seed(seed)
    t_in = torch.rand(batch, n_in, generator=gen, dtype=torch.float64) * 2
    w = torch.rand(n_in, n_out, generator=gen, dtype=torch.float64) * 0.4
    if not positive:
        w = w - 0.1
    return t_in, w


def _numerical_area(t_in, w, v_hat, t_end, steps=400_001):
    """int over [first crossing of v_hat, T] of (v - v_hat), on a fine grid (trapezoid)."""
    grid = torch.linspace(0, t_end, steps, dtype=torch.float64)
    v = membrane_potential(grid, t_in, w)                                 # (b, n_t, n_out)
    after = torch.cumsum((v >= v_hat).to(torch.int64), 1) > 0            # from the first crossing on
    integrand = torch.where(after, v - v_hat, torch.zeros_like(v))
    return torch.trapezoid(integrand, grid, dim=1)


def test_m_ssr_is_the_limit_of_the_membrane_area():
    t_in, w = _problem(0)
    t_out = ttfs_layer(t_in, w, 1.0, T_END)
    assert (t_out < T_END).all()
    closed = m_ssr(t_in, t_out, w, T_END, v_th=1.0)
    errors = []
    for eps in (1e-1, 1e-2, 1e-3):
        numeric = _numerical_area(t_in, w, 1.0 - eps, T_END)
        errors.append(float((numeric - closed).abs().max()))
    # converges to the closed form as v_hat -> V_th (linearly in eps) ...
    assert errors[0] > errors[1] > errors[2]
    # ... and at v_hat = V_th the grid integral equals it to the grid's accuracy
    np.testing.assert_allclose(_numerical_area(t_in, w, 1.0, T_END), closed, atol=1e-4)


def test_membrane_area_matches_its_integral_below_threshold():
    t_in, w = _problem(1)
    for v_hat in (0.3, 0.7):
        np.testing.assert_allclose(membrane_area(t_in, w, v_hat, T_END),
                                   _numerical_area(t_in, w, v_hat, T_END), atol=1e-4)


def test_m_ssr_is_zero_for_silent_neurons():
    t_in = torch.zeros(1, 2, dtype=torch.float64)
    w = torch.full((2, 1), 0.1, dtype=torch.float64)       # v(3) = 0.6 < 1
    t_out = ttfs_layer(t_in, w, 1.0, T_END)
    assert float(m_ssr(t_in, t_out, w, T_END)) == 0.0


def test_f_ssr_equals_the_no_reset_potential_at_the_window_end():
    t_in, w = _problem(2, positive=False)
    # direct simulation of the card's ODE (Euler on the step current) to T, no reset
    dt = 1e-4
    steps = int(round(T_END / dt))
    v = torch.zeros(t_in.shape[0], w.shape[1], dtype=torch.float64)
    current = torch.zeros_like(v)
    arrive = torch.round(t_in / dt).long()
    for k in range(steps):
        current += (arrive == k).to(w.dtype) @ w
        v += current * dt
    np.testing.assert_allclose(f_ssr(t_in, w, T_END), torch.relu(v), atol=1e-3)


def test_regulariser_gradients_match_finite_differences():
    t_in, w = _problem(3, batch=2, n_in=6, n_out=4)
    t_in.requires_grad_(True)
    w.requires_grad_(True)
    check = torch.autograd.gradcheck
    assert check(lambda a, b: m_ssr(a, ttfs_layer(a, b, 1.0, T_END), b, T_END), (t_in, w), eps=1e-6, atol=1e-5)
    assert check(lambda a, b: membrane_area(a, b, 0.6, T_END), (t_in, w), eps=1e-6, atol=1e-5)
    assert check(lambda a, b: f_ssr(a, b, T_END), (t_in, w), eps=1e-6, atol=1e-5)


def test_ssr_loss_parts_and_spike_rates():
    net = TTFSNetwork((20, 15, 3), init_mean=3.0, seed=0)
    x = torch.rand(8, 20)
    labels = torch.randint(0, 3, (8,))
    times = net(x)
    for reg in ("none", "m_ssr", "f_ssr", "membrane"):
        loss = SSRLoss(regulariser=reg, gamma=0.0 if reg == "none" else 0.1)
        total, parts = loss(net, x, times, labels)
        assert set(parts) == {"ce", "temporal", "l2", "ssr", "silent"}
        assert (parts["ssr"] > 0) == (reg != "none")
        total.backward(retain_graph=True)
    rates = hidden_spike_rates(net, times)
    assert len(rates) == 1 and 0 < rates[0] <= 1


def test_loss_settings_are_checked():
    with pytest.raises(ValueError, match="unknown regulariser 'l1'"):
        SSRLoss(regulariser="l1")
    with pytest.raises(ValueError, match="unknown loss setting"):
        SSRLoss.from_config({"gama": 1.0})
    with pytest.raises(ValueError, match="v_hat must be > 0"):
        membrane_area(torch.zeros(1, 2), torch.ones(2, 1), 0.0, 1.0)
    net = TTFSNetwork((4, 3, 2))
    with pytest.raises(ValueError, match="needs v_hat < v_th"):
        SSRLoss(regulariser="membrane", gamma=1.0, v_hat=1.0)(net, torch.zeros(1, 4), net(torch.zeros(1, 4)),
                                                                 torch.zeros(1, dtype=torch.long))


def test_the_docs_example_runs():
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parent.parent / "docs" / "ssr.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(page), "exec"), {})


def test_silent_penalty_revives_a_silent_output_layer():
    from neurocode.objectives.ssr import silent_penalty

    t_in = torch.zeros(1, 3, dtype=torch.float64)
    w = torch.full((3, 2), -0.1, dtype=torch.float64, requires_grad=True)     # both outputs silent
    t_out = ttfs_layer(t_in, w, 1.0, 2.0)
    assert (t_out == 2.0).all()
    penalty = silent_penalty(t_in, t_out, w, 2.0)
    assert float(penalty) == pytest.approx(2 * (1 - 3 * -0.1 * 2))
    penalty.backward()
    assert (w.grad < 0).all()                      # descent raises the weights
