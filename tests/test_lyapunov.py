"""Lyapunov spectra: Benettin/QR engine against known spectra, cards and spike treatments."""

import numpy as np
import pytest
import torch

from neurocode.lyapunov import Convergence, LyapunovError, spectrum
from neurocode.lyapunov.spiking import PACEMAKER_CARD, SpikingMap, spiking_spectrum
from neurocode.cards import card_from_string

F64 = torch.float64
LORENZ = np.array([0.9056, 0.0, -14.5723])   # Sprott (2003), sigma=10, rho=28, beta=8/3


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: these maps are small, and on a shared 2-core machine two threads per
    tiny op cost about 10x the wall time (measured on the rate-network test)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


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


def attractor_ensemble(step, batch, t_relax, dt, seed=0):
    """``batch`` independent points spread over the Lorenz attractor: a wide Gaussian cloud
    run for ``t_relax`` time units with the plain map (no tangents: cheap)."""
    x = torch.tensor([0.0, 0.0, 25.0], dtype=F64) + 8 * initial(batch, 3, seed)
    with torch.no_grad():
        for n in range(int(round(t_relax / dt))):
            x = step(x, n)
    return x


def test_lorenz_torch_reference():
    """An independent torch RK4 Lorenz: many short runs from points spread over the attractor
    (batch is cheap, steps are not). Started near (1, 1, 1) instead, the runs leave along the
    unstable manifold of the origin together and the batch mean comes out 2-8 % low."""
    dt = 0.02
    step = lorenz_rk4(dt)
    res = spectrum(step, attractor_ensemble(step, 1024, 20.0, dt), dt, t_sim=10, t_transient=5, qr_every=5,
                   jvp="central")
    assert res.units == "1/s" and res.exponents.shape == (3,)
    assert res.stderr[0] < 0.008
    assert res.exponents[0] == pytest.approx(LORENZ[0], rel=0.03)
    assert abs(res.exponents[1]) < 0.02
    assert res.exponents[2] == pytest.approx(LORENZ[2], rel=0.02)
    # sum of exponents = mean trace of the Jacobian = -(sigma + 1 + beta)
    assert res.exponents.sum() == pytest.approx(-(10 + 1 + 8 / 3), rel=1e-3)


def test_lorenz_converges_by_itself_with_error_bars(caplog):
    """Convergence mode: blocks of 2 time units until drift and standard error of every exponent
    are within max(atol, 2 % of it) (atol = 2 % of lambda_1), capped at 60 units. The estimate
    and its error bar bracket the published lambda_1 = 0.906."""
    dt = 0.02
    step = lorenz_rk4(dt)
    x0 = attractor_ensemble(step, 256, 20.0, dt)
    with caplog.at_level("WARNING"):
        res = spectrum(step, x0, dt, t_sim=60, t_transient=5, qr_every=5, jvp="central",
                       converge=Convergence(rtol=0.02, t_block=2.0))
    assert res.converged is True and res.t_sim < 60 and "NOT converged" not in caplog.text
    bounds = Convergence(rtol=0.02).bounds(res.exponents)
    assert np.all(res.stderr <= bounds) and np.all(np.abs(res.drift_last_block) <= bounds)
    assert abs(res.exponents[0] - LORENZ[0]) < max(3 * res.stderr[0], 0.03 * LORENZ[0])
    assert res.exponents[2] == pytest.approx(LORENZ[2], rel=0.01)
    d = res.to_dict()
    assert d["converged"] is True and len(d["stderr"]) == 3 and "converged after" in res.summary()


def test_cap_before_convergence_warns(caplog):
    """Four conditions started together near the origin's unstable manifold, a 1 % tolerance and
    a cap of 4 time units: the cap stops the run, the result says so and a warning is logged."""
    dt = 0.02
    step = lorenz_rk4(dt)
    x0 = torch.ones(4, 3, dtype=F64) + 1e-3 * initial(4, 3)
    with caplog.at_level("WARNING", logger="neurocode.lyapunov.spectrum"):
        res = spectrum(step, x0, dt, t_sim=4.0, qr_every=5, jvp="central", converge=Convergence(rtol=0.01, t_block=1.0))
    assert res.converged is False and res.t_sim == pytest.approx(4.0)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "NOT converged: the cap t_sim = 4 s stopped the run" in caplog.text
    assert "NOT converged: stopped at the cap of 4 s" in res.summary()


def test_one_condition_gets_error_bars_from_blocks():
    dt = 0.02
    step = lorenz_rk4(dt)
    res = spectrum(step, attractor_ensemble(step, 1, 20.0, dt), dt, t_sim=20, qr_every=5, jvp="central", n_records=10)
    assert np.isnan(res.spread).all() and np.isfinite(res.stderr).all() and (res.stderr > 0).all()


def test_cli_converges_prints_error_bars_and_draws_them(tmp_path, capsys):
    import json
    from neurocode.cli import main
    code = main(["lyapunov", "lorenz", "--dt", "0.02", "--batch", "64", "--t-relax", "20", "--t-transient", "2",
                 "--t-sim", "30", "--t-block", "2", "--qr-every", "5", "--rtol", "0.05",
                 "-o", str(tmp_path / "l.json"), "--figure", str(tmp_path / "spectrum")])
    out = capsys.readouterr().out
    assert code == 0 and "± s.e." in out and "converged after" in out
    saved = json.loads((tmp_path / "l.json").read_text())
    assert saved["converged"] is True and len(saved["stderr"]) == 3
    assert (tmp_path / "spectrum.png").stat().st_size > 0
    assert list(np.genfromtxt(tmp_path / "spectrum.csv", delimiter=",", names=True).dtype.names) == \
        ["index", "exponent_per_s", "stderr_per_s"]


def test_bad_convergence_settings_are_refused():
    with pytest.raises(LyapunovError, match="convergence needs rtol >= 0, atol >= 0 and t_block > 0 s"):
        Convergence(rtol=0.02, t_block=0.0)
    with pytest.raises(LyapunovError, match="convergence needs rtol > 0 or atol > 0"):
        Convergence(rtol=0.0)


@pytest.mark.slow
def test_lorenz_card_within_two_percent():
    """The Lorenz card through the surrogate package (Brian2's rk4 updater) gives the
    published spectrum within 2 %: 2,048 conditions relaxed onto the attractor for 30 time
    units, 5 units of tangent transient, 10 units averaged (standard error of the largest
    exponent about 0.004, a fifth of the 2 % bound)."""
    net = SpikingMap("lorenz", n=1, dt=0.02)
    x0 = torch.tensor([0.0, 0.0, 25.0], dtype=F64) + 8 * initial(2048, 3, seed=1)
    res = spiking_spectrum(net, x0=x0, t_relax=30, t_sim=10, t_transient=5, qr_every=5, seed=1)
    assert res.treatment == "smooth" and res.metadata["t_relax"] == pytest.approx(30)
    assert res.stderr[0] < 0.006
    assert res.exponents[0] == pytest.approx(LORENZ[0], rel=0.02)
    assert abs(res.exponents[1]) < 0.02 * LORENZ[0]
    assert res.exponents[2] == pytest.approx(LORENZ[2], rel=0.02)
    assert np.all(np.abs(res.drift) < 0.05)


def test_linear_system_gives_real_parts_of_eigenvalues():
    # eigenvalues -1 +- 2i and -3 (1/s); the exact one-step propagator expm(A dt) of x' = A x
    A = torch.tensor([[-1.0, 2.0, 0.3], [-2.0, -1.0, 0.0], [0.0, 0.0, -3.0]], dtype=F64)
    dt = 0.05
    P = torch.linalg.matrix_exp(A * dt)
    res = spectrum(lambda x, n: x @ P.T, initial(4, 3), dt, t_sim=20, t_transient=2, qr_every=2,
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
    kw = dict(t_sim=0.4, t_transient=0.1, qr_every=5)
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
    0 analytically. For a one-dimensional linear membrane the exact treatment is exact: a
    phase perturbation is ``dv = f(v) dphi`` with ``f(v) = (v_inf - v)/tau_m``, so over any
    window the finite-time exponent is the boundary term ``ln|f(v_end)/f(v_start)| / T``
    (bounded by ``ln((v_inf - v_reset)/(v_inf - v_th)) / T = ln 4 / T``, hence -> 0 as 1/T).
    The test pins that identity per initial condition to 1e-6; a wrong saltation factor
    would add ``ln(error)`` at each of the ~10 spikes. The discrete-map Jacobian (reset erases
    the perturbation) and the surrogate contract at least as fast as ``-1/tau_m``."""
    card = card_from_string(PACEMAKER_CARD, name="pacemaker")
    dt, t_sim, t_tr = 5e-4, 0.3, 0.02
    net = SpikingMap(card, n=1, dt=dt)
    kw = dict(batch=3, t_sim=t_sim, t_transient=t_tr, seed=4)
    exact = spiking_spectrum(net, treatment="exact", **kw)
    x_start, _ = net.run(net.initial(3, 4), int(round(t_tr / dt)), record=False)
    x_end, _ = net.run(x_start, int(round(t_sim / dt)), n0=int(round(t_tr / dt)), record=False)
    v_inf, tau_m = -65e-3 + 100e6 * 0.2e-9, 0.02
    boundary = np.log(np.abs((v_inf - x_end[:, 0].numpy()) / (v_inf - x_start[:, 0].numpy()))) / exact.t_sim
    np.testing.assert_allclose(exact.per_condition[:, 0], boundary, rtol=1e-6, atol=1e-9)
    assert np.all(np.abs(exact.per_condition[:, 0]) <= np.log(4.0) / exact.t_sim + 1e-9)
    discrete = spiking_spectrum(net, treatment="discrete", **kw).exponents[0]
    surrogate = spiking_spectrum(net, treatment="surrogate", **kw).exponents[0]
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
    with pytest.raises(LyapunovError, match="t_relax must be >= 0 s"):
        spiking_spectrum(net, t_relax=-1.0)
    with pytest.raises(LyapunovError, match="weights must be \\(1, 1\\)"):
        SpikingMap(card_from_string(PACEMAKER_CARD, name="pacemaker"), n=1, weights=np.zeros((2, 2)))


def test_spiking_map_steps_are_the_runner_steps():
    """The map's plain steps give the spikes and states of NetworkRunner on the map's spec."""
    from neurocode.lyapunov.hrsnn import hrsnn
    from neurocode.lyapunov.prune import dense_weights
    from neurocode.torch import NetworkRunner
    spec = hrsnn(n=60, p=0.2, w_exc=0.6e-9, seed=1)
    pop = spec.populations["hrsnn"]
    drive = {"rate": 800.0, "weight": 0.5e-9, "seed": 4}
    net = SpikingMap(pop.card, pop.params, dt=spec.dt, weights=dense_weights(spec), drive=drive)
    x0 = net.initial(2, seed=3)
    steps = 400
    x, spikes = net.run(x0, steps)
    assert int(spikes.sum()) > 50
    runner = NetworkRunner(net.spec, dtype=F64)
    hits = torch.cat([net.drive_spikes(n)["drive"] for n in range(steps)])[:, None, :]     # (steps, 1, n)
    state = runner.initial_state(2)
    state["net"].update(net.unpack(x0))
    with torch.no_grad():
        out = runner(inputs={"drive": hits.expand(steps, 2, net.n)}, state=state)
    assert torch.equal(out.spikes["net"] > 0, spikes)
    torch.testing.assert_close(net.pack(out.final_state["net"]), x, rtol=1e-12, atol=1e-20)


def test_lnp_reservoir_runs_the_runner():
    """The LNP study's reservoir loop equals one NetworkRunner forward pass over its spec."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "studies" / "lnp"))
    from tasks import input_weights, reservoir_spec, run_reservoir

    from neurocode.lyapunov.hrsnn import hrsnn
    from neurocode.lyapunov.spiking import spread_initial
    from neurocode.torch import NetworkRunner
    spec = hrsnn(n=50, p=0.2, w_exc=0.3e-9, seed=2)
    cfg = {"in_gain": 0.4e-9, "in_bias": 0.03e-9}
    frames = np.random.default_rng(0).normal(size=(12, 3, 2))
    w_in = input_weights(50, 2, seed=2)
    counts, _ = run_reservoir(spec, frames, w_in, hold=5, cfg=cfg, seed=7)
    assert counts.sum() > 20
    runner = NetworkRunner(reservoir_spec(spec, w_in, cfg), dtype=F64)
    u = np.concatenate([frames, np.ones((12, 3, 1))], axis=2).repeat(5, axis=0)
    state = runner.initial_state(3)
    state["hrsnn"] = spread_initial(runner.populations["hrsnn"], state["hrsnn"], seed=7)
    with torch.no_grad():
        out = runner(inputs={"u": torch.as_tensor(u)}, state=state)
    np.testing.assert_array_equal(counts, out.spikes["hrsnn"].reshape(12, 5, 3, 50).sum(1).numpy())
