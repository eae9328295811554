"""Spiking rank-coding classifier: first output spike is the decision, spec round trip."""

import numpy as np
import pytest
import torch

from neurocode.data.toy import noise_vs_signal
from neurocode.spec import NetworkSpec
from neurocode.objectives.rank_coding import early_exit, rank_coding_loss, train_epoch
from neurocode.torch.classifiers import SpikingRCClassifier
from neurocode.torch.runner import NetworkRunner


def _spiking(seed=0, card="alif"):
    return SpikingRCClassifier(20, 3, hidden=24, dt=1e-3, hidden_card=card, input_scale=15.0, out_scale=8.0, seed=seed)


@pytest.mark.parametrize("card", ["lif", "alif"])
def test_decision_is_first_output_spike_of_the_spec(card):
    torch.manual_seed(1)
    model = _spiking(card=card)
    x = (torch.rand(16, 30, 20) < 0.15).float()
    res = early_exit(model, x, theta=0.5)
    # independent engine: the generic NetworkRunner on the saved spec, same input spikes
    spec = model.to_spec(steps=30)
    runner = NetworkRunner(spec)
    with torch.no_grad():
        out = runner(inputs={"in": x.transpose(0, 1)}).spikes["out"]   # (T, B, C)
    fired = out.sum(-1) > 0
    first = np.where(fired.any(0), fired.float().argmax(0).numpy(), 29)
    assert 4 <= fired.any(0).sum() < 16
    np.testing.assert_array_equal(res.decision_step.numpy(), first)
    np.testing.assert_array_equal(res.crossed.numpy(), fired.any(0).numpy())
    spiked = fired.any(0).numpy()
    who = out[torch.as_tensor(first), torch.arange(16)]                 # (B, C) at decision
    for b in np.flatnonzero(spiked):
        assert who[b, res.prediction[b]] == 1


def test_spec_records_readout_and_round_trips(tmp_path):
    model = _spiking()
    spec = model.to_spec(steps=30, task_name="toy")
    spec.save(tmp_path / "rc.npz")
    back = NetworkSpec.load(tmp_path / "rc.npz")
    assert back.readout == model.to_spec(steps=30).readout and back.readout.population == "out"
    assert back.readout.rule == "first_spike" and back.readout.theta == 0.5
    assert back.encoding.kind == "spike_steps" and back.encoding.steps == 30 and back.metadata["dt"] == 1e-3
    assert back.metadata["task_name"] == "toy"
    w = back.projections[2].dense((24, 3))
    np.testing.assert_allclose(w, model.runner.weight("hidden_to_out").detach().double().numpy().reshape(24, 3),
                               rtol=1e-6)
    tau = back.populations["hidden"].params["tau_m"]
    assert tau.std() > 0                                    # heterogeneous time constants


def test_surrogate_training_reduces_loss():
    torch.manual_seed(0)
    x, y = noise_vs_signal(128, steps=30, seed=1).tensors()
    x = x * 20.0
    model = SpikingRCClassifier(1, 2, hidden=16, dt=1e-3, input_encoding="current",
                                input_scale=20.0, seed=2)
    res = rank_coding_loss(model, x, y, theta=0.5)
    res.loss.backward()
    grads = {name: p.grad for name, p in model.runner.weights.items()}
    assert grads["n_in_to_hidden"].abs().sum() > 0 and grads["n_hidden_to_hidden"].abs().sum() > 0
    opt = torch.optim.Adam(model.parameters(), 0.05)
    batches = lambda: ((x[k:k + 64], y[k:k + 64]) for k in (0, 64))  # noqa: E731
    first = train_epoch(model, opt, batches(), theta=0.5)
    for _ in range(3):
        last = train_epoch(model, opt, batches(), theta=0.5)
    assert last["loss"] < first["loss"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="input_encoding must be"):
        SpikingRCClassifier(2, 2, input_encoding="rate")
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        SpikingRCClassifier(2, 2, hidden=0)
    with pytest.raises(ValueError, match="expects 2 input features"):
        SpikingRCClassifier(2, 2, hidden=3).step(torch.zeros(1, 5), SpikingRCClassifier(2, 2, 3).initial_state(1))
