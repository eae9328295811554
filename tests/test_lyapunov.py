"""Lyapunov spectra: Benettin/QR engine against known spectra, cards and spike treatments."""

import numpy as np
import pytest
import torch

from neurocode.lyapunov import LyapunovError, spectrum
from neurocode.lyapunov.spiking import PACEMAKER_CARD, SpikingMap, spiking_spectrum
from neurocode.models import card_from_string

F64 = torch.float64
LORENZ = np.array([0.9056, 0.0, -14.5723])   # Sprott (2003), sigma=10, rho=28, beta=8/3


def lorenz_rk4(dt):
    """Independent torch Lorenz-63 RK4 step (constants as tensors: fast forward-mode AD)."""
    s, r, b, h = (torch.tensor(v, dtype=F64) for v in (10.0, 28.0, 8.0 / 3.0, dt))

    def f(u):
        x, y, z = u[:, 0], u[:, 1], u[:, 2]
        return torch.stack([s * (y - x), x * (r - z) - y, x * y - b * z], dim=1)

    def step(u, n):
        k1 = f(u)
        k2 = f(u + h / 2 * k1)
        k3 = f(u + h / 2 * k2)
        k4 = f(u + h * k3)
        return u + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return step


def initial(batch, n, seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(batch, n, generator=gen, dtype=F64)


def test_lorenz_torch_reference():
    res = spectrum(lorenz_rk4(0.01), initial(16, 3) + 5, 0.01, t_sim=60, t_transient=5, qr_every=5,
                   jvp="central")
    assert res.units == "1/s" and res.exponents.shape == (3,)
    assert res.exponents[0] == pytest.approx(LORENZ[0], rel=0.03)
    assert abs(res.exponents[1]) < 0.03
    assert res.exponents[2] == pytest.approx(LORENZ[2], rel=0.02)
    # sum of exponents = mean trace of the Jacobian = -(sigma + 1 + beta)
    assert res.exponents.sum() == pytest.approx(-(10 + 1 + 8 / 3), rel=1e-3)


@pytest.mark.slow
def test_lorenz_card_within_two_percent():
    """The Lorenz card through the surrogate package (Brian2's rk4 updater) gives the
    published spectrum within 2 %."""
    net = SpikingMap("lorenz", n=1, dt=0.01)
    res = spiking_spectrum(net, batch=48, t_sim=80, t_transient=5, qr_every=5, seed=1)
    assert res.treatment == "smooth"
    assert res.exponents[0] == pytest.approx(LORENZ[0], rel=0.02)
    assert abs(res.exponents[1]) < 0.02 * LORENZ[0]
    assert res.exponents[2] == pytest.approx(LORENZ[2], rel=0.02)
    assert res.spread[0] < 0.1 and np.all(np.abs(res.drift) < 0.05)


def test_linear_system_gives_real_parts_of_eigenvalues():
    # eigenvalues -1 +- 2i and -3 (1/s); Euler step of x' = A x with a small dt
    A = torch.tensor([[-1.0, 2.0, 0.3], [-2.0, -1.0, 0.0], [0.0, 0.0, -3.0]], dtype=F64)
    dt = 1e-3
    res = spectrum(lambda x, n: x + dt * x @ A.T, initial(4, 3), dt, t_sim=6, t_transient=1, qr_every=10,
                   jvp="central")
    expected = np.sort(np.linalg.eigvals(A.numpy()).real)[::-1]
    np.testing.assert_allclose(res.exponents, expected, atol=0.02)


def rate_network(n, g, dt, seed=0):
    gen = torch.Generator().manual_seed(seed)
    J = g * torch.randn(n, n, generator=gen, dtype=F64) / np.sqrt(n)
    step = lambda x, k: x + dt * (-x + torch.tanh(x) @ J.T)  # noqa: E731
    return J, step


@pytest.mark.parametrize("g, sign", [(0.5, -1), (3.0, 1)])
def test_random_rate_network_stability(g, sign):
    _, step = rate_network(100, g, 0.05)
    res = spectrum(step, initial(2, 100, scale=2), 0.05, k=3, t_sim=20, t_transient=10, qr_every=2,
                   jvp="central")
    if sign < 0:
        # stable fixed point at 0: the largest exponent is the largest Re eig(-1 + J)
        J = rate_network(100, g, 0.05)[0].numpy()
        assert res.exponents[0] < -0.2
        assert res.exponents[0] == pytest.approx(-1 + np.linalg.eigvals(J).real.max(), abs=0.05)
    else:
        assert res.exponents[0] > 0.1


def test_sum_matches_mean_jacobian_trace():
    n, dt = 12, 0.02
    J, step = rate_network(n, 2.5, dt, seed=3)
    x0 = initial(3, n, scale=2)
    res = spectrum(step, x0, dt, t_sim=40, t_transient=10, qr_every=2, jvp="central")
    # mean trace of the flow's Jacobian along the same trajectories: -n + sum_i J_ii sech^2(x_i)
    x, traces = x0.clone(), []
    with torch.no_grad():
        for k in range(int(round(50 / dt))):
            x = step(x, k)
            if k >= int(round(10 / dt)):
                traces.append((-n + (torch.diagonal(J) / torch.cosh(x) ** 2).sum(1)).mean().item())
    assert res.exponents.sum() == pytest.approx(np.mean(traces), rel=0.02)


def test_vmap_and_central_agree_with_forward_ad():
    step = lorenz_rk4(0.01)
    kw = dict(t_sim=1.0, t_transient=0.2, qr_every=5)
    ref = spectrum(step, initial(2, 3) + 5, 0.01, **kw).exponents
    for method in ("vmap", "central"):
        np.testing.assert_allclose(spectrum(step, initial(2, 3) + 5, 0.01, jvp=method, **kw).exponents,
                                   ref, rtol=1e-6, atol=1e-8)


def test_result_diagnostics_and_frame():
    res = spectrum(lorenz_rk4(0.01), initial(3, 3) + 5, 0.01, t_sim=2, qr_every=5, n_records=10)
    assert res.running.shape == (10, 3, 3) and res.times[-1] == pytest.approx(2.0)
    frame = res.to_frame()
    assert list(frame.columns) == ["time_s", "condition", "index", "exponent_per_s"] and len(frame) == 90
    assert "Kaplan-Yorke" in res.summary() and "1/s" in res.summary()
    assert set(res.to_dict()) >= {"exponents", "spread", "drift", "units"}


def test_pacemaker_exact_treatment_gives_zero_phase_exponent():
    """A LIF neuron under constant drive fires periodically; its only exponent (phase) is
    0 analytically. The exact spike-time correction finds it; the discrete-map Jacobian
    (reset erases the perturbation) and the surrogate do not."""
    card = card_from_string(PACEMAKER_CARD, name="pacemaker")
    net = SpikingMap(card, n=1, dt=2e-4)
    kw = dict(batch=1, t_sim=0.15, t_transient=0.03)
    exact = spiking_spectrum(net, treatment="exact", **kw).exponents[0]
    discrete = spiking_spectrum(net, treatment="discrete", **kw).exponents[0]
    surrogate = spiking_spectrum(net, treatment="surrogate", **kw).exponents[0]
    tau_m = 0.02
    assert abs(exact) < 0.1 / tau_m
    assert discrete < -1 / tau_m and surrogate < -1 / tau_m


def test_errors_name_the_problem():
    step = lorenz_rk4(0.01)
    with pytest.raises(LyapunovError, match="shape \\(batch, n_state\\)"):
        spectrum(step, torch.zeros(3, dtype=F64), 0.01, t_sim=1)
    with pytest.raises(LyapunovError, match="k must lie in \\[1, 3\\]"):
        spectrum(step, initial(1, 3), 0.01, k=4, t_sim=1)
    with pytest.raises(LyapunovError, match="shorter than one QR interval"):
        spectrum(step, initial(1, 3), 0.01, t_sim=0.01, qr_every=5)
    with pytest.raises(LyapunovError, match="unknown JVP method"):
        spectrum(step, initial(1, 3), 0.01, t_sim=1, jvp="magic")
    net = SpikingMap(card_from_string(PACEMAKER_CARD, name="pacemaker"), n=1, dt=2e-4)
    with pytest.raises(LyapunovError, match="unknown spike treatment 'smooth'"):
        net.propagator("smooth")
    with pytest.raises(LyapunovError, match="weights must be \\(1, 1\\)"):
        SpikingMap(card_from_string(PACEMAKER_CARD, name="pacemaker"), n=1, weights=np.zeros((2, 2)))
