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
