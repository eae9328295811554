"""Recurrent classifiers for rank coding: an LSTM and a spiking recurrent network.

Both follow the step protocol of :mod:`neurocode.objectives.rank_coding`:
``initial_state(batch)`` returns a tuple of batch-first tensors and ``step(x_t, state)``
returns ``(logits [B, C], state)``, so the RC objective can drop examples from the active
batch as soon as they decide.

>>> import torch
>>> m = LSTMClassifier(4, 3, hidden=6)
>>> logits, state = m.step(torch.zeros(2, 4), m.initial_state(2))
>>> logits.shape, len(state)
(torch.Size([2, 3]), 2)
"""

from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger(__name__)


class LSTMClassifier(nn.Module):
    """LSTM reading one input vector per step, with a linear class read-out at every step.

    Parameters
    ----------
    n_in : int
        Input features per step.
    n_classes : int
        Number of classes (outputs).
    hidden : int
        LSTM hidden units (125 in the authors' sample code).
    """

    def __init__(self, n_in, n_classes, hidden=125):
        super().__init__()
        for name, value in (("n_in", n_in), ("n_classes", n_classes), ("hidden", hidden)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        self.n_in, self.n_classes, self.hidden = int(n_in), int(n_classes), int(hidden)
        self.cell = nn.LSTMCell(self.n_in, self.hidden)
        self.readout = nn.Linear(self.hidden, self.n_classes)

    def initial_state(self, batch):
        """Zero hidden and cell state ``(h, c)``, each ``[batch, hidden]``."""
        w = self.readout.weight
        zeros = torch.zeros(batch, self.hidden, dtype=w.dtype, device=w.device)
        return zeros, zeros.clone()

    def step(self, x, state):
        """One step: inputs ``[B, n_in]`` -> ``(logits [B, n_classes], (h, c))``."""
        if x.shape[-1] != self.n_in:
            raise ValueError(f"LSTMClassifier expects {self.n_in} input features, got {x.shape[-1]}")
        h, c = self.cell(x, state)
        return self.readout(h), (h, c)

    def forward(self, x):
        """Logits at every step, ``[B, T, n_classes]`` (full-length pass)."""
        state = self.initial_state(x.shape[0])
        out = []
        for t in range(x.shape[1]):
            logits, state = self.step(x[:, t], state)
            out.append(logits)
        return torch.stack(out, 1)
