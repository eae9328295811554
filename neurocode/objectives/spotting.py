"""The spotting score: what an answer costs for being wrong, premature or late.

Rank coding is judged on *when* a network answers as well as *what*. For an example with label
``y`` and ideal decision step ``s`` (0-based: the earliest step at which the label is decidable
from the inputs, e.g. :func:`neurocode.data.toy.sequence_spotting`'s ``ideal_step``), an answer
``a`` given at decision step ``t`` (the network has then read inputs ``0..t``) costs

* ``wrong`` if ``a != y``;
* ``premature`` if ``a == y`` but ``t < s``: the answer came before the class-revealing
  evidence (the run of five) could have been read -- a lucky guess;
* ``late * (t - s)`` if ``a == y`` and ``t >= s``: linear in the steps of delay.

The score is ``1 - mean cost``: 1 for every answer right at its ideal step. The authors'
exact constants could not be read; ours are named options: ``wrong = premature = 1`` (a guess
is worth no more than a wrong answer) and ``late = 1 / 25`` per step (spotting's sequence
length), so a right answer at the last step of a 25-step sequence, however late, still costs
less than a wrong one.

>>> import numpy as np
>>> score = SpottingScore()
>>> c = score.costs(prediction=np.array([1, 0, 1, 1]), decision_step=np.array([10, 24, 3, 7]),
...                 label=np.array([1, 0, 1, 0]), ideal_step=np.array([8, 21, 6, 22]))
>>> c.round(2).tolist()          # late by 2, late by 3, premature, wrong
[0.08, 0.12, 1.0, 1.0]
>>> round(score(np.array([1, 0, 1, 1]), np.array([10, 24, 3, 7]), np.array([1, 0, 1, 0]),
...             np.array([8, 21, 6, 22]))["score"], 4)
0.45
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SpottingScore:
    """Costs of a wrong, a premature and a late answer (see module docstring).

    Attributes
    ----------
    wrong : float
        Cost of a wrong answer (1).
    premature : float
        Cost of a right answer given before the ideal step (1).
    late : float
        Cost per step of delay after the ideal step, for a right answer (1/25).
    """

    wrong: float = 1.0
    premature: float = 1.0
    late: float = 1.0 / 25

    def __post_init__(self):
        for name in ("wrong", "premature", "late"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"spotting score: cost '{name}' must be a finite number >= 0, got {value}")

    def costs(self, prediction, decision_step, label, ideal_step):
        """Per-example cost (float array) of answers ``prediction`` given at ``decision_step``."""
        arrays = [np.asarray(a) for a in (prediction, decision_step, label, ideal_step)]
        if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1:
            raise ValueError("spotting score: prediction, decision_step, label and ideal_step must be 1-d "
                             f"arrays of one length, got shapes {[a.shape for a in arrays]}")
        pred, step, label, ideal = arrays
        right = pred == label
        return np.where(~right, self.wrong,
                        np.where(step < ideal, self.premature, self.late * (step - ideal))).astype(float)

    def __call__(self, prediction, decision_step, label, ideal_step):
        """``score`` (1 - mean cost), ``wrong_frac``, ``premature_frac`` (right but early) and
        ``mean_delay`` (steps after the ideal one, over right answers in time; NaN if none)."""
        cost = self.costs(prediction, decision_step, label, ideal_step)
        pred, step, label, ideal = (np.asarray(a) for a in (prediction, decision_step, label, ideal_step))
        right = pred == label
        timely = right & (step >= ideal)
        return {"score": float(1.0 - cost.mean()) if cost.size else float("nan"),
                "wrong_frac": float((~right).mean()) if cost.size else float("nan"),
                "premature_frac": float((right & (step < ideal)).mean()) if cost.size else float("nan"),
                "mean_delay": float((step - ideal)[timely].mean()) if timely.any() else float("nan")}
