"""Rank-coding objective: first-crossing decision, real truncation, gradients, training."""

import numpy as np
import pytest
import torch

from neurocode.data.toy import noise_vs_signal
from neurocode.objectives.rank_coding import (
    activate,
    early_exit,
    evaluate,
    last_step_loss,
    rank_coding_loss,
    rc_loss_terms,
    train_epoch,
)
from neurocode.torch.classifiers import LSTMClassifier


class Counting(torch.nn.Module):
    """Wraps a step-protocol model and records the batch size of every step it runs."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.rows = []

    def initial_state(self, b):
        return self.inner.initial_state(b)

    def step(self, x, state):
        self.rows.append(x.shape[0])
        return self.inner.step(x, state)

    def forward(self, x):
        return self.inner(x)


class Integrator(torch.nn.Module):
    """Logits are a running sum of projected inputs: crossings happen at varied steps."""

    def __init__(self, n_in=3, n_classes=4):
        super().__init__()
        self.n_in = n_in
        self.w = torch.nn.Parameter(torch.randn(n_in, n_classes))
        self.b = torch.nn.Parameter(torch.full((n_classes,), -1.0))

    def initial_state(self, batch):
        return (torch.zeros(batch, self.w.shape[1]),)

    def step(self, x, state):
        if x.shape[-1] != self.n_in:
            raise ValueError(f"expects {self.n_in} input features, got {x.shape[-1]}")
        s = state[0] + x @ self.w
        return s + self.b, (s,)

    def forward(self, x):
        return torch.cumsum(x @ self.w, 1) + self.b


def _model(seed=0):
    torch.manual_seed(seed)
    return Integrator()


def _reference_decision(model, x, theta, activation):
    """Brute force: full-length forward, first step where any output exceeds theta."""
    with torch.no_grad():
        p = activate(model(x), activation)          # [B, T, C]
    hit = (p > theta).any(-1).numpy()
    T = x.shape[1]
    return np.where(hit.any(1), hit.argmax(1), T - 1), hit.any(1)


@pytest.mark.parametrize("activation,theta", [("sigmoid", 0.95), ("softmax", 0.9)])
def test_decision_step_matches_brute_force(activation, theta):
    model = _model()
    x = torch.randn(64, 12, 3)
    step, crossed = _reference_decision(model, x, theta, activation)
    assert 0 < crossed.sum() < 64                   # a mixture of early and no crossings
    res = early_exit(model, x, theta=theta, activation=activation)
    np.testing.assert_array_equal(res.decision_step.numpy(), step)
    np.testing.assert_array_equal(res.crossed.numpy(), crossed)
    with torch.no_grad():
        full = model(x)[torch.arange(64), torch.as_tensor(step)]
    torch.testing.assert_close(res.logits, full)
    assert torch.equal(res.prediction, activate(full, activation).argmax(-1))


def test_compute_stops_at_decision_step():
    model = Counting(_model())
    x = torch.randn(50, 15, 3)
    res = rank_coding_loss(model, x, torch.randint(0, 4, (50,)), theta=0.9)
    dec = res.decision_step.numpy()
    assert dec.min() < dec.max()
    # rows actually stepped at time t = examples still undecided at t
    expected = [(dec >= t).sum() for t in range(dec.max() + 1)]
    assert model.rows == expected
    assert res.steps_computed == sum(model.rows) == int((dec + 1).sum())
    assert res.steps_saved == 50 * 15 - res.steps_computed > 0


def test_full_pass_runs_every_step():
    model = Counting(_model())
    x = torch.randn(10, 7, 3)
    res = last_step_loss(model, x, torch.zeros(10, dtype=torch.long))
    assert model.rows == [10] * 7
    assert res.steps_computed == res.steps_total == 70
    assert (res.decision_step == 6).all()


def test_gradients_flow_only_from_decision_step():
    model = _model(seed=1)
    x = torch.randn(40, 10, 3, requires_grad=True)
    y = torch.randint(0, 4, (40,))
    res = rank_coding_loss(model, x, y, theta=0.9, beta=0.1)
    res.loss.backward()
    dec = res.decision_step
    after = torch.arange(10)[None, :] > dec[:, None]
    assert after.any()
    assert (x.grad.abs().sum(-1)[after] == 0).all()
    assert (x.grad.abs().sum(-1)[~after] > 0).all()
    # independent check: full-length forward, gather logits at the decision step, same loss
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    logits = model(x)[torch.arange(40), dec]
    rc_loss_terms(logits, y, "sigmoid", 0.1).mean().backward()
    for g, p in zip(grads, model.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=1e-4, atol=1e-6)


def test_entropy_term_is_documented_formula():
    z = torch.tensor([[2.0, -1.0, 0.5]])
    y = torch.tensor([2])
    p = torch.sigmoid(z)
    ce = -(torch.log(1 - p).sum() - torch.log(1 - p[0, 2]) + torch.log(p[0, 2]))
    h = -(p * p.log() + (1 - p) * (1 - p).log()).sum()
    torch.testing.assert_close(rc_loss_terms(z, y, "sigmoid", 0.3)[0], ce - 0.3 * h)
    q = torch.softmax(z, -1)
    torch.testing.assert_close(rc_loss_terms(z, y, "softmax", 0.3)[0],
                               -q[0, 2].log() + 0.3 * (q * q.log()).sum())


def test_bad_arguments():
    model = _model()
    x, y = torch.randn(2, 5, 3), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="theta must lie in"):
        rank_coding_loss(model, x, y, theta=1.5)
    with pytest.raises(ValueError, match="activation must be one of"):
        rank_coding_loss(model, x, y, activation="relu")
    with pytest.raises(ValueError, match="beta must be >= 0"):
        rank_coding_loss(model, x, y, beta=-1)
    with pytest.raises(ValueError, match=r"shape \[batch, steps, features\]"):
        rank_coding_loss(model, x[0], y)
    with pytest.raises(ValueError, match="labels must have shape"):
        rank_coding_loss(model, x, y[:1])
    with pytest.raises(ValueError, match="expects 3 input features"):
        early_exit(LSTMClassifier(3, 2, 4), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="mode must be 'rc' or 'full'"):
        train_epoch(model, None, [], mode="bptt")
    with pytest.raises(ValueError, match=r"input_dropout must lie in \[0, 1\)"):
        LSTMClassifier(3, 2, 4, input_dropout=1.0)


def test_input_dropout_acts_in_training_only():
    torch.manual_seed(0)
    model = LSTMClassifier(50, 2, 4, input_dropout=0.5)
    x = torch.ones(3, 50)
    model.eval()
    a, _ = model.step(x, model.initial_state(3))
    b, _ = model.step(x, model.initial_state(3))
    torch.testing.assert_close(a, b)
    model.train()
    c, _ = model.step(x, model.initial_state(3))
    assert not torch.allclose(a, c)


def test_tiny_training_reduces_loss_and_decides_early():
    torch.manual_seed(0)
    x, y = noise_vs_signal(256, seed=3).tensors()
    model = LSTMClassifier(1, 2, hidden=16)
    opt = torch.optim.Adam(model.parameters(), 2e-2)
    batches = lambda: ((x[k:k + 64], y[k:k + 64]) for k in range(0, 256, 64))  # noqa: E731
    first = train_epoch(model, opt, batches(), mode="rc", theta=0.9)
    for _ in range(7):
        last = train_epoch(model, opt, batches(), mode="rc", theta=0.9)
    assert last["loss"] < 0.7 * first["loss"]
    xt, yt = noise_vs_signal(256, seed=4).tensors()
    ev = evaluate(model, [(xt, yt)], theta=0.9)
    assert ev["accuracy"] > 0.7
    assert ev["steps_saved_frac"] > 0


def test_speed_accuracy_front_and_matched_comparison():
    from neurocode.objectives.rank_coding import (
        compare_at_matched_steps,
        speed_accuracy_front,
    )
    s, a = speed_accuracy_front([3, 1, 2, 2, 5], [0.7, 0.5, 0.4, 0.6, 0.65])
    assert s.tolist() == [1, 2, 3] and a.tolist() == [0.5, 0.6, 0.7]
    rows = compare_at_matched_steps((s, a), ([2.5, 6], [0.5, 0.9]), n=3)
    assert [r["step"] for r in rows] == [2.5, 4.25, 6.0]
    assert rows[0]["difference"] == pytest.approx(0.65 - 0.5)
    assert rows[1]["accuracy_a"] == pytest.approx(0.7)            # flat after its last point
    assert rows[2]["difference"] == pytest.approx(0.7 - 0.9)
    rows = compare_at_matched_steps(([1, 2], [0.5, 0.6]), ([3, 4], [0.5, 0.7]), n=2)
    assert [(r["step"], r["accuracy_a"]) for r in rows] == [(3.0, 0.6), (4.0, 0.6)]
    with pytest.raises(ValueError, match="non-empty 1-d arrays of one length"):
        speed_accuracy_front([1, 2], [0.5])


def test_train_run_checkpoints_resumes_and_rejects_other_config(tmp_path):
    from neurocode.training.rank_coding import train_run
    kw = {"epochs": 1, "lr": 1e-2, "batch_size": 100, "hidden": 8, "n_train": 200, "thetas": [0.6]}
    m = train_run("noise", "lstm", "rc", 0.9, **kw, out=tmp_path)
    assert {"config.toml", "checkpoint.pt", "metrics.json", "summary.json", "model.pt"} <= \
        {p.name for p in tmp_path.iterdir()}
    assert [c["theta"] for c in m["curve"]] == [0.6, 0.9] and len(m["history"]) == 1
    again = train_run("noise", "lstm", "rc", 0.9, **kw, out=tmp_path)    # read back, no training
    assert again["history"] == m["history"] and again["accuracy"] == m["accuracy"]
    more = train_run("noise", "lstm", "rc", 0.9, **{**kw, "epochs": 2}, out=tmp_path)
    assert len(more["history"]) == 2 and more["history"][0] == m["history"][0]
    with pytest.raises(ValueError, match="different config"):
        train_run("noise", "lstm", "full", 0.9, **kw, out=tmp_path)
    with pytest.raises(ValueError, match=r"mode = 'bptt': must be one of \['rc', 'full'\]"):
        train_run("noise", "lstm", "bptt", 0.9, **kw, out=tmp_path / "x")


def test_fit_on_a_fresh_stream_resumes_exactly(tmp_path):
    from neurocode.data.toy import FreshBatches
    from neurocode.objectives.rank_coding import last_step_loss
    from neurocode.training.loop import fit

    def loss_fn(m, x, y):
        return last_step_loss(m, x, y).loss, {}

    def train(folder, stop=None):
        torch.manual_seed(0)
        model = LSTMClassifier(1, 2, hidden=6)
        opt = torch.optim.Adam(model.parameters(), 1e-2)
        stream = FreshBatches("spotting", batch_size=8, steps_per_epoch=3, seed=2)
        fit(model, loss_fn, stream, None, folder, 2, opt, seed=2, progress=False, stop_after_steps=stop)
        return model, opt, stream

    whole, _, _ = train(tmp_path / "a")
    train(tmp_path / "b", stop=4)                       # killed in epoch 2 at step 1
    torch.manual_seed(123)                              # the resumed model starts elsewhere
    resumed, _, _ = train(tmp_path / "b")
    for p, q in zip(whole.parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    import json
    rows = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert len(rows) == 2 and rows[0]["train_loss"] > 0


def test_train_run_on_fresh_spotting_reports_the_score(tmp_path):
    from neurocode.training.rank_coding import train_run
    m = train_run("spotting", "lstm", "rc", 0.9, epochs=1, lr=1e-2, batch_size=32, hidden=8,
                  data="fresh", epoch_sequences=100, n_test=300, thetas=[0.6], out=tmp_path)
    assert m["data"] == "fresh" and m["epoch_sequences"] == 128 and m["n_train"] is None
    assert m["n_test"] == 300 and m["curve"][0]["n"] == 300
    assert 0 <= m["score"] <= 1 and {"wrong_frac", "premature_frac", "mean_delay"} <= set(m["curve"][0])
    assert m["last_step"]["mean_decision_step"] == 24 and "score" in m["last_step"]
    assert m["score_costs"] == {"wrong": 1.0, "premature": 1.0, "late": 0.04}
    with pytest.raises(ValueError, match="fresh training data exists for the toy tasks only"):
        train_run("mnist", "lstm", "rc", 0.9, epochs=1, data="fresh", out=tmp_path / "m")


def test_evaluate_last_step_and_front_at():
    from neurocode.objectives.rank_coding import evaluate_last_step, front_at
    from neurocode.objectives.spotting import SpottingScore
    torch.manual_seed(0)
    model = LSTMClassifier(1, 3, hidden=5)
    x, y = torch.randn(40, 9, 1), torch.randint(0, 3, (40,))
    with torch.no_grad():
        ref = float((model(x)[:, -1].argmax(-1) == y).float().mean())
    ev = evaluate_last_step(model, [(x[:25], y[:25]), (x[25:], y[25:])])
    assert ev["accuracy"] == pytest.approx(ref) and ev["mean_decision_step"] == 8 and ev["n"] == 40
    ideal = torch.randint(0, 9, (40,))
    with torch.no_grad():
        pred = model(x)[:, -1].argmax(-1)
    scored = evaluate_last_step(model, [(x, y, ideal)], score=SpottingScore())
    assert scored["score"] == pytest.approx(SpottingScore()(pred.numpy(), np.full(40, 8), y.numpy(),
                                                            ideal.numpy())["score"])
    np.testing.assert_allclose(front_at(([1.0, 3.0], [0.5, 0.9]), [0.5, 1.0, 2.5, 9.0]),
                               [np.nan, 0.5, 0.8, 0.9])
