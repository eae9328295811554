"""Spotting score: costs of wrong, premature and late answers, checked by hand."""

import numpy as np
import pytest
import torch

from neurocode.objectives.spotting import SpottingScore


def test_costs_by_hand():
    score = SpottingScore(wrong=1.0, premature=0.5, late=0.1)
    pred = np.array([1, 1, 0, 0, 1, 0])
    label = np.array([1, 1, 0, 1, 1, 0])
    ideal = np.array([7, 7, 22, 9, 12, 24])
    step = np.array([7, 10, 24, 3, 4, 24])
    # on time; 3 late; 2 late; wrong (even though early); premature; on time at the last step
    np.testing.assert_allclose(score.costs(pred, step, label, ideal), [0, 0.3, 0.2, 1.0, 0.5, 0])
    out = score(pred, step, label, ideal)
    assert out["score"] == pytest.approx(1 - 2.0 / 6)
    assert out["wrong_frac"] == pytest.approx(1 / 6)
    assert out["premature_frac"] == pytest.approx(1 / 6)
    assert out["mean_delay"] == pytest.approx((0 + 3 + 2 + 0) / 4)


def test_defaults_rank_a_late_right_answer_above_a_wrong_one():
    s = SpottingScore()
    assert (s.wrong, s.premature, s.late) == (1.0, 1.0, 0.04)
    latest = s.costs([1], [24], [1], [0])[0]         # right, 24 steps late
    assert latest == pytest.approx(0.96) and latest < s.costs([0], [24], [1], [0])[0]
    perfect = s(np.array([0, 1]), np.array([21, 4]), np.array([0, 1]), np.array([21, 4]))
    assert perfect == {"score": 1.0, "wrong_frac": 0.0, "premature_frac": 0.0, "mean_delay": 0.0}


def test_evaluate_adds_the_score_of_early_exit_answers():
    from neurocode.objectives.rank_coding import early_exit, evaluate
    from neurocode.torch.classifiers import LSTMClassifier
    torch.manual_seed(0)
    model = LSTMClassifier(1, 2, hidden=6)
    x, y = torch.randn(30, 25, 1), torch.randint(0, 2, (30,))
    ideal = torch.randint(0, 25, (30,))
    ev = evaluate(model, [(x, y, ideal)], theta=0.52, score=SpottingScore())
    res = early_exit(model, x, theta=0.52)
    ref = SpottingScore()(res.prediction.numpy(), res.decision_step.numpy(), y.numpy(), ideal.numpy())
    assert ev["score"] == pytest.approx(ref["score"]) and ev["premature_frac"] == ref["premature_frac"]
    with pytest.raises(ValueError, match=r"needs \(x, y, ideal_step\) batches"):
        evaluate(model, [(x, y)], score=SpottingScore())


def test_bad_costs_and_shapes():
    with pytest.raises(ValueError, match="cost 'late' must be a finite number >= 0"):
        SpottingScore(late=-0.1)
    with pytest.raises(ValueError, match="1-d arrays of one length"):
        SpottingScore().costs([1, 0], [3], [1, 0], [2, 2])
