"""M-SSR, F-SSR and the membrane baseline against their numerical definitions."""

import numpy as np
import pytest
import torch

from neurocode.objectives.ssr import SSRLoss, f_ssr, hidden_spike_rates, m_ssr, m_ssr_rectified, membrane_area
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


def _numerical_rectified_area(t_in, w, level, t_end, steps=400_001):
    """int_0^T (v - level)_+ dt on a fine grid (trapezoid)."""
    grid = torch.linspace(0, t_end, steps, dtype=torch.float64)
    return torch.trapezoid(torch.relu(membrane_potential(grid, t_in, w) - level), grid, dim=1)


def _mixed_problem(seed, batch=3, n_out=40):
    """Excitation early, strong inhibition in the middle, excitation late: potentials cross
    threshold, fall back below it and some rise above it again."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(*shape):
        return torch.rand(*shape, generator=gen, dtype=torch.float64)

    t_in = torch.cat([uniform(batch, 4) * 0.8, 0.8 + uniform(batch, 4), 1.8 + uniform(batch, 4) * 0.8], 1)
    w = torch.cat([0.3 + 1.2 * uniform(4, n_out), -(0.5 + 2.5 * uniform(4, n_out)), 0.1 + 2.0 * uniform(4, n_out)])
    return t_in, w


@pytest.mark.parametrize("seed", [0, 1])
def test_both_m_ssr_readings_match_quadrature_of_the_membrane(seed):
    t_in, w = _mixed_problem(seed)
    closed = m_ssr_rectified(t_in, w, T_END)
    np.testing.assert_allclose(closed, _numerical_rectified_area(t_in, w, 1.0, T_END), rtol=0, atol=1e-8)
    # the two readings differ exactly where the potential falls back below threshold
    t_out = ttfs_layer(t_in, w, 1.0, T_END)
    signed = m_ssr(t_in, t_out, w, T_END)
    np.testing.assert_allclose(signed, _numerical_area(t_in, w, 1.0, T_END), rtol=0, atol=1e-4)
    v_end = (T_END - t_in).clamp(min=0) @ w
    grid = torch.linspace(0, T_END, 30_001, dtype=torch.float64)
    above = membrane_potential(grid, t_in, w) > 1.0
    segments = (above[:, 1:] & ~above[:, :-1]).sum(1)                      # rises above threshold
    fell_back = (t_out < T_END) & (v_end < 1.0)
    assert fell_back.sum() > 20 and (segments >= 2).sum() > 5 and (signed < 0).any()
    assert (closed >= 0).all() and (closed[t_out == T_END] == 0).all()
    assert (closed[fell_back] > signed[fell_back] + 1e-6).all()
    never_below = (t_out < T_END) & (segments == 1) & (v_end >= 1.0)
    np.testing.assert_allclose(closed[never_below], signed[never_below], rtol=1e-9, atol=1e-12)


def test_rectified_m_ssr_is_the_limit_of_the_rectified_area_below_threshold():
    t_in, w = _mixed_problem(2, batch=2, n_out=10)
    closed = m_ssr_rectified(t_in, w, T_END)
    errors = [float((_numerical_rectified_area(t_in, w, 1.0 - eps, T_END) - closed).abs().max())
              for eps in (1e-1, 1e-2, 1e-3)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-2


def test_m_ssr_gradients_match_finite_differences_where_potentials_fall_back():
    t_in, w = _mixed_problem(3, batch=2, n_out=6)
    t_in.requires_grad_(True)
    w.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: m_ssr_rectified(a, b, T_END), (t_in, w), eps=1e-6, atol=1e-6)
    assert torch.autograd.gradcheck(lambda a, b: m_ssr(a, ttfs_layer(a, b, 1.0, T_END), b, T_END), (t_in, w),
                                    eps=1e-6, atol=1e-6)
    # duplicate input times and inputs after the window's end
    t_dup = torch.tensor([[0.25, 0.25, 0.5, 1.0, 1.0, 3.5, 0.5, 2.0, 1.0, 2.0, 2.5, 0.25]], dtype=torch.float64,
                         requires_grad=True)
    assert torch.autograd.gradcheck(lambda b: m_ssr_rectified(t_dup.detach(), b, T_END), (w,), eps=1e-6, atol=1e-6)
    m_ssr_rectified(t_dup, w, T_END).sum().backward()
    assert float(t_dup.grad[0, 5]) == 0.0                  # arrives after T: no effect


def test_rectified_m_ssr_by_hand():
    # v = t, an inhibitory input at 2 turns it to 4 - t: above 1 on [1, 3], a triangle of area 1;
    # the signed reading to T = 4 also subtracts the triangle below threshold on [3, 4]
    t_in = torch.tensor([[0.0, 2.0]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[1.0], [-2.0]], dtype=torch.float64, requires_grad=True)
    area = m_ssr_rectified(t_in, w, 4.0)
    assert float(area.detach()) == pytest.approx(1.0)
    assert float(m_ssr(t_in, ttfs_layer(t_in, w, 1.0, 4.0), w, 4.0).detach()) == pytest.approx(0.5)
    area.backward()
    # dR/dw_0 = int_1^3 t dt = 4, dR/dw_1 = int_2^3 (t - 2) dt = 1/2; dR/dt_0 = -1 * 2, dR/dt_1 = 2 * 1
    np.testing.assert_allclose(w.grad[:, 0], [4.0, 0.5])
    np.testing.assert_allclose(t_in.grad[0], [-2.0, 2.0])


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
    for reg, mssr in (("none", "signed"), ("m_ssr", "signed"), ("m_ssr", "rectified"), ("f_ssr", "signed"),
                      ("membrane", "signed")):
        loss = SSRLoss(regulariser=reg, gamma=0.0 if reg == "none" else 0.1, mssr=mssr)
        total, parts = loss(net, x, times, labels)
        assert set(parts) == {"ce", "temporal", "l2", "ssr", "silent"}
        assert (parts["ssr"] > 0) == (reg != "none")
        total.backward(retain_graph=True)
    rectified = SSRLoss(regulariser="m_ssr", gamma=1.0, mssr="rectified").regularisation(net, x, times)
    assert float(rectified) == pytest.approx(float(m_ssr_rectified(x, net.weights[0], net.windows[0]).sum(1).mean()))
    rates = hidden_spike_rates(net, times)
    assert len(rates) == 1 and 0 < rates[0] <= 1


def test_loss_settings_are_checked():
    with pytest.raises(ValueError, match="unknown regulariser 'l1'"):
        SSRLoss(regulariser="l1")
    with pytest.raises(ValueError, match="unknown loss setting"):
        SSRLoss.from_config({"gama": 1.0})
    with pytest.raises(ValueError, match="unknown M-SSR reading mssr = 'literal'"):
        SSRLoss.from_config({"regulariser": "m_ssr", "mssr": "literal"})
    assert SSRLoss().mssr == "signed"
    with pytest.raises(ValueError, match="v_hat must be > 0"):
        membrane_area(torch.zeros(1, 2), torch.ones(2, 1), 0.0, 1.0)
    with pytest.raises(ValueError, match=r"needs 0 < v_hat < 1 \(a fraction of V_th\)"):
        SSRLoss(regulariser="membrane", gamma=1.0, v_hat=1.0)


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
