"""Fast paths of the torch runner give the spikes of the reference path.

Event-driven propagation (padded per-source tables) against the matrix product, and the
``torch.compile`` step (``NetworkRunner(compile=True)``) against the eager step, on a small
COBA network with synaptic delays and bursts of activity; the choice between them by spike
density; sparse input chunks (CSR product) against the dense product, forward and backward.
"""

import logging

import numpy as np
import pytest
import torch
from brian2 import nA

from neurocode.presets import coba_network
from neurocode.spec import NetworkSpec
from neurocode.torch import NetworkRunner
from neurocode.torch import runner as runner_module

STEPS = 400


def delayed_coba(n=400, seed=3):
    """COBA network with 0..3-step delays on the recurrent projection (all ring-buffer slots)."""
    spec = coba_network(n_neurons=n, seed=seed)
    proj = spec.projection("recurrent")
    proj.delays = np.random.default_rng(seed).integers(0, 4, proj.i.size) * spec.dt
    return spec


def run(spec, monkeypatch, event, compile=False, compile_steps=1, record=True, **kwargs):
    monkeypatch.setattr(runner_module, "EVENT_DRIVEN_MIN", 0 if event else 10 ** 12)
    runner = NetworkRunner(spec, dtype=torch.float64, compile=compile, compile_steps=compile_steps)
    with torch.no_grad():
        return runner(steps=STEPS, record={"coba": ["v", "g_e", "g_i"]} if record else None, **kwargs)


def test_event_driven_propagation_matches_the_matrix_product(monkeypatch):
    spec = delayed_coba()
    event, matrix = run(spec, monkeypatch, True), run(spec, monkeypatch, False)
    assert event.spikes["coba"].sum() > 100
    assert torch.equal(event.spikes["coba"], matrix.spikes["coba"])
    for var in ("v", "g_e", "g_i"):
        torch.testing.assert_close(event.states["coba"][var], matrix.states["coba"][var], rtol=1e-12, atol=1e-18)


@pytest.mark.slow
def test_compiled_step_gives_the_eager_spikes(monkeypatch):
    """Compiles the step (seconds); a low event capacity forces burst steps to be redone."""
    monkeypatch.setattr(runner_module, "EVENT_CAPACITY_FRACTION", 0.0)
    monkeypatch.setattr(runner_module, "EVENT_CAPACITY_MIN", 8)
    spec = delayed_coba()
    eager = run(spec, monkeypatch, True, batch=2)
    compiled = run(spec, monkeypatch, True, compile=True, batch=2)
    counts = eager.spikes["coba"].sum(2).amax()
    assert counts > 8, "the test should contain burst steps beyond the event capacity"
    assert torch.equal(compiled.spikes["coba"], eager.spikes["coba"])
    torch.testing.assert_close(compiled.states["coba"]["v"], eager.states["coba"]["v"], rtol=1e-9, atol=1e-12)
    # several steps per compiled call (no recording): chunks with a burst go step by step
    many = run(spec, monkeypatch, True, compile=True, compile_steps=2, record=False, batch=2)
    assert torch.equal(many.spikes["coba"], eager.spikes["coba"])
    torch.testing.assert_close(many.final_state["coba"]["v"], eager.final_state["coba"]["v"], rtol=1e-9, atol=1e-12)


def test_compile_is_refused_with_gradients_and_says_so(monkeypatch, caplog):
    spec = coba_network(n_neurons=40, seed=0)
    runner = NetworkRunner(spec, compile=True)
    with caplog.at_level(logging.WARNING, logger="neurocode.torch.runner"):
        out = runner(steps=5)                  # weights require grad: eager, with a warning
    assert out.spikes["coba"].requires_grad
    assert "runs without gradients" in caplog.text


def dense_input_spec(n_in=600, n=500):
    """An input projection above EVENT_DRIVEN_MIN pairs, every pair once (a full matrix)."""
    spec = NetworkSpec(dt=1e-4, seed=0)
    spec.add_input("in", n_in)
    spec.add_population("p", "lif", n)
    spec.connect("in", "p", p=1.0, weight=0.05 * nA)
    return spec


def test_propagation_is_chosen_by_the_spike_density_of_each_chunk():
    runner = NetworkRunner(dense_input_spec())
    assert runner.projections[0].n_src * runner.projections[0].n_tgt > runner_module.EVENT_DRIVEN_MIN
    ctx = runner.prepare(grad=False)
    gen = torch.Generator().manual_seed(0)
    for density, events in ((0.002, True), (0.2, False)):
        drive = {"in": (torch.rand(100, 4, 600, generator=gen) < density).double()}
        chosen = runner._chunk_context(ctx, drive, {}, 0, 100, 4)
        assert (chosen["tables"][0] is not None) is events, density


@pytest.mark.parametrize("grad", [False, True])
def test_sparse_input_product_gives_the_dense_product(monkeypatch, grad):
    spec = dense_input_spec(n_in=40, n=30)
    gen = torch.Generator().manual_seed(1)
    # analog values: the CSR entries carry them
    x = (torch.rand(200, 3, 40, generator=gen, dtype=torch.float64) < 0.03).double() * 0.5
    results = []
    for density in (0.0, 1.0):     # never / always the sparse (CSR) product
        monkeypatch.setattr(runner_module, "SPARSE_INPUT_DENSITY", density)
        runner = NetworkRunner(spec, dtype=torch.float64, sparse=False)
        with torch.set_grad_enabled(grad):
            out = runner(inputs={"in": x}, record={"p": ["v"]})
            if grad:
                (out.states["p"]["v"].sum() * 1e3 + out.spikes["p"].sum()).backward()
        results.append((out, runner.weights["n_in_to_p"].grad))
    (dense, g_dense), (sparse, g_sparse) = results
    assert dense.spikes["p"].sum() > 10
    assert torch.equal(dense.spikes["p"], sparse.spikes["p"])
    torch.testing.assert_close(sparse.states["p"]["v"], dense.states["p"]["v"], rtol=1e-12, atol=1e-15)
    if grad:
        assert g_dense.abs().sum() > 0
        torch.testing.assert_close(g_sparse, g_dense, rtol=1e-9, atol=1e-12)
