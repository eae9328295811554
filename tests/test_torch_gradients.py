"""Gradients through the generated dynamics: gradcheck, a training run, forward-mode Jacobians."""

import numpy as np
import pytest
import torch
from brian2 import nA

from neurocode.spec import NetworkSpec
from neurocode.torch import NetworkRunner, PopulationDynamics, flat_map, surrogate

DT = 1e-4


def small_spec(seed=0, t_ref="0*ms"):
    spec = NetworkSpec(dt=DT, seed=seed)
    spec.add_input("in", 3)
    spec.add_population("p", "lif", 4, t_ref=t_ref)
    spec.connect("in", "p", p=1.0, weight=3 * nA)
    spec.connect("p", "p", p=1.0, weight=0.5 * nA, autapses=False)
    return spec


def test_gradcheck_through_a_small_network_with_a_smooth_surrogate():
    spec = small_spec()
    runner = NetworkRunner(spec, spike_fn=surrogate.sigmoid(slope=3.0), dtype=torch.float64)
    x = torch.zeros(30, 2, 3, dtype=torch.float64)
    x[[2, 5, 9, 14], 0, [0, 1, 2, 0]] = 1.0
    x[[3, 8], 1, [2, 1]] = 1.0
    names = [name for name, _ in runner.named_parameters()]

    def f(w_in, w_rec):   # weights in nA, so that gradcheck's eps is meaningful
        params = dict(zip(names, (w_in * 1e-9, w_rec * 1e-9)))
        out = torch.func.functional_call(runner, params, kwargs={"inputs": {"in": x}, "record": {"p": ["v"]}})
        return out.states["p"]["v"].sum(0) * 1e3, out.spikes["p"].sum(0)

    w_in = torch.full((12,), 3.0, dtype=torch.float64, requires_grad=True)
    w_rec = torch.full((12,), 0.5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (w_in, w_rec), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("detach_reset", [False, True])
def test_training_reduces_the_loss(detach_reset):
    """Fit the spike counts of 4 LIF neurons to targets with the SuperSpike surrogate."""
    spec = small_spec(seed=1, t_ref="2*ms")
    runner = NetworkRunner(spec, spike_fn=surrogate.superspike(slope=10), detach_reset=detach_reset,
                           dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(200, 4, 3, generator=gen) < 0.05).float()
    target = torch.tensor([1.0, 3.0, 0.0, 2.0])
    opt = torch.optim.Adam(runner.parameters(), lr=0.3e-9)
    losses = []
    for _ in range(15):
        out = runner(inputs={"in": x})
        loss = ((out.spikes["p"].sum(0) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert min(losses[-3:]) < 0.5 * losses[0]
    trained = runner.to_spec()
    np.testing.assert_allclose(trained.projections[0].weights, runner.weights["n_in_to_p"].detach().numpy(),
                               rtol=1e-6)
    assert not np.allclose(trained.projections[0].weights, spec.projections[0].weights, rtol=1e-3, atol=0)
    assert np.all(spec.projections[0].weights == float(3 * nA))     # the spec itself is untouched


def test_flat_map_jvp_matches_finite_differences():
    spec = small_spec(seed=2)
    runner = NetworkRunner(spec, spike_fn=surrogate.sigmoid(slope=3.0), dtype=torch.float64)
    fmap = flat_map(runner)
    state = runner.initial_state(2)
    state["p"]["v"] = state["p"]["v"] + torch.linspace(0.0, 0.016, 4, dtype=torch.float64)
    state["p"]["I_syn"] = state["p"]["I_syn"] + 1e-9
    x = fmap.pack(state)
    assert [name for name, _ in fmap.layout] == ["p.I_syn", "p.v"]
    v = torch.randn_like(x) * torch.cat([torch.full((4,), 1e-10), torch.full((4,), 1e-3)]).double()
    _, jv = torch.func.jvp(fmap, (x,), (v,))
    eps = 1e-4
    fd = (fmap(x + eps * v) - fmap(x - eps * v)) / (2 * eps)
    torch.testing.assert_close(jv, fd, rtol=1e-6, atol=1e-12)


def test_population_flat_map_with_heaviside_uses_the_surrogate_derivative():
    dyn = PopulationDynamics("lif", n=3, dt=DT, dtype=torch.float64)
    fmap = flat_map(dyn)
    x = fmap.pack(dyn.initial_state(1))
    jac = torch.func.jacfwd(fmap)(x)[0, :, 0, :]
    assert torch.isfinite(jac).all() and jac.shape == (6, 6)
    # dv'/dv away from threshold: exp(-dt/tau_m) (exact method, no spike gradient at rest ~ 1/26**2)
    decay = torch.exp(-DT / dyn.param_tensor("tau_m"))
    torch.testing.assert_close(torch.diagonal(jac)[3:], decay, rtol=1e-12, atol=1e-12)
