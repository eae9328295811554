"""The shipped ttfs card, simulated by Brian2, fires at the closed-form TTFS time."""

import numpy as np

from neurocode import NetworkSpec
from neurocode.brian import simulate


def test_ttfs_card_fires_at_closed_form_time():
    # v(t) = sum_j w_j (t - t_j)/tau_s; with w = (0.8, 0.6), t = (0.1, 0.2) ms, tau_s = 1 ms:
    # t* = (1 ms + 0.8*0.1 ms + 0.6*0.2 ms) / 1.4 = 0.857142... ms; Brian2 reports the next step.
    spec = NetworkSpec(dt=0.01e-3, seed=0)
    spec.add_input("in", 2, indices=[0, 1], times=[0.1e-3, 0.2e-3])
    spec.add_population("out", "ttfs", 1)
    from neurocode.spec import Projection
    spec.add_projection(Projection("in", "out", [0, 1], [0, 0], [0.8, 0.6]))
    result = simulate(spec, 3e-3, progress=False)
    idx, times = result.spikes["out"]
    exact = (1e-3 + 0.8 * 0.1e-3 + 0.6 * 0.2e-3) / 1.4
    assert idx.tolist() == [0], "fires exactly once"
    assert exact <= times[0] < exact + spec.dt + 1e-12
    np.testing.assert_allclose(times[0], np.ceil(exact / spec.dt - 1e-9) * spec.dt)


def _three_views_network():
    """A 12-10-4 TTFS network with inputs on the time grid and a hidden layer partly silent."""
    import torch

    from neurocode.torch.ttfs import TTFSNetwork
    net = TTFSNetwork((12, 10, 4), t_input=1.0, window=1.0, seed=3).double()
    with torch.no_grad():
        net.weights[0].mul_(0.6)                      # some hidden neurons stay silent
    dt = 0.01e-3
    rng = np.random.default_rng(4)
    t_in = np.round(rng.random((1, 12)) * 100) * 0.01   # input times in tau_s = 1 ms, on the dt grid
    return net, dt, t_in


def test_ttfs_three_views_exact_layer_runner_and_brian2_agree():
    """The ttfs card carries the exact layer's window and silent rule: the exact layer, the
    clock-driven runner on the exported spec and Brian2 on it are one network."""
    import torch

    from neurocode.torch import NetworkRunner
    net, dt, t_in = _three_views_network()
    with torch.no_grad():
        exact = [t.numpy()[0] * 1e-3 for t in net(torch.from_numpy(t_in))]         # seconds
    spec = net.to_spec(tau_s=1e-3, dt=dt)
    spec.inputs["in"].indices, spec.inputs["in"].times = np.arange(12), t_in[0] * 1e-3 - dt
    steps = int(round(4e-3 / dt))
    runner = NetworkRunner(spec, dtype=torch.float64)
    with torch.no_grad():
        out = runner(steps=steps)
    result = simulate(spec, steps * dt, progress=False)
    windows = [w * 1e-3 for w in net.windows]
    silent = exact[0] >= windows[0]
    assert 0 < silent.sum() < 10, "the test network should have silent and firing hidden neurons"
    for k, name in enumerate(["hidden1", "out"]):
        spikes = out.spikes[name][:, 0, :].numpy()
        assert (spikes.sum(0) == 1).all(), "every neuron fires exactly once (forced at the window's end if silent)"
        t_runner = spikes.argmax(0) * dt
        idx, t_brian = result.spikes[name]
        np.testing.assert_allclose(np.sort(t_brian), np.sort(t_runner), atol=1e-12)   # runner == Brian2
        np.testing.assert_array_equal(idx[np.argsort(t_brian, kind="stable")].size, 4 if k else 10)
        # inputs enter a step ahead, so the clock-driven views cross within a step of the exact
        # time (layer k: within k + 1 steps), silent neurons exactly at the window's end
        assert np.abs(t_runner - exact[k]).max() < (k + 1) * dt, t_runner - exact[k]
    np.testing.assert_allclose(out.spikes["hidden1"][:, 0, :].numpy().argmax(0)[silent] * dt,
                               windows[0], atol=1e-12)


def test_spec_saved_with_the_older_card_still_validates():
    """A spec whose stored ttfs card predates the window rule gets it from window_end_rule."""
    from neurocode.cards import card_from_string, load_card
    from neurocode.validate.run import TTFSTask
    net, dt, _ = _three_views_network()
    spec = net.to_spec(tau_s=1e-3, dt=dt)
    text = load_card("ttfs").text
    old = text.replace('threshold = "(v >= v_th or t - t_start >= t_end - 0.5*dt) and fired == 0"',
                       'threshold = "v >= v_th and fired == 0"').replace("t_start : second\n", "")
    old = old.split("[neuron.initial]")[0] + "[parameters]" + old.split("[parameters]")[1]
    old = old.replace('t_end = "1*second"', "").replace("# window end", "# (old card)")
    card = card_from_string(old, name="ttfs")
    for pop in spec.populations.values():
        pop.card = card
        pop.params.pop("t_end")
    brian = TTFSTask(spec).brian_spec(spec, timing="grid")
    assert all("t_end" in pop.card.defaults for pop in brian.populations.values())


def test_ttfs_card_fires_when_v_touches_threshold_at_an_input_time():
    # v = t / tau_s reaches 1 at t = tau_s, when an inhibitory input (w = -2) arrives. With
    # dt / tau_s = 1/8 (exact in binary) Brian2's v is exactly 1 there; it tests the threshold
    # before it propagates the input spike, so v >= v_th fires, and so does the exact layer.
    import torch

    from neurocode.spec import Projection
    from neurocode.torch.ttfs import ttfs_layer

    tau_s, dt = 2.0 ** -10, 2.0 ** -13
    spec = NetworkSpec(dt=dt, seed=0)
    spec.add_input("in", 2, indices=[0, 1], times=[0.0, tau_s])
    spec.add_population("out", "ttfs", 1, tau_s=np.full(1, tau_s))
    spec.add_projection(Projection("in", "out", [0, 1], [0, 0], [1.0, -2.0]))
    idx, times = simulate(spec, 4 * tau_s, progress=False).spikes["out"]
    t_layer = ttfs_layer(torch.tensor([[0.0, 1.0]], dtype=torch.float64),
                         torch.tensor([[1.0], [-2.0]], dtype=torch.float64), 1.0, 4.0)
    assert idx.tolist() == [0] and times[0] == tau_s
    assert float(t_layer) * tau_s == times[0]
