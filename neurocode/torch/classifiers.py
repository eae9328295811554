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

import numpy as np
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
    input_dropout : float
        Probability of zeroing each input at each step during training (a regulariser
        for small training sets: on spike inputs it deletes input spikes); 0 disables it.
    """

    def __init__(self, n_in, n_classes, hidden=125, input_dropout=0.0):
        super().__init__()
        for name, value in (("n_in", n_in), ("n_classes", n_classes), ("hidden", hidden)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if not 0.0 <= input_dropout < 1.0:
            raise ValueError(f"input_dropout must lie in [0, 1), got {input_dropout}")
        self.n_in, self.n_classes, self.hidden = int(n_in), int(n_classes), int(hidden)
        self.input_dropout = nn.Dropout(float(input_dropout))
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
        h, c = self.cell(self.input_dropout(x), state)
        return self.readout(h), (h, c)

    def forward(self, x):
        """Logits at every step, ``[B, T, n_classes]`` (full-length pass)."""
        state = self.initial_state(x.shape[0])
        out = []
        for t in range(x.shape[1]):
            logits, state = self.step(x[:, t], state)
            out.append(logits)
        return torch.stack(out, 1)


class SpikingRCClassifier(nn.Module):
    """Recurrent spiking classifier from model cards; its answer is the first output spike.

    A :class:`~neurocode.torch.runner.NetworkRunner` over a NetworkSpec plus a read-out:
    ``n_in`` inputs drive a recurrent hidden population (card ``hidden_card``, heterogeneous
    parameters sampled from the card, e.g. ``lif`` or ``alif``), which drives ``n_classes``
    output neurons (card ``output_card``). Each step is the runner's step (Brian2's schedule,
    refractoriness and the cards' ``on_pre`` included); hidden spikes use the surrogate
    gradient. The recurrent projection has no autapses.

    The read-out logits are ``gain * d`` with ``d`` the output neurons'
    :meth:`~neurocode.torch.runner.NetworkRunner.threshold_distance` after the state update
    (``d = 0`` at threshold, ``-1`` at rest), so with sigmoid outputs and ``theta = 0.5`` the
    rank-coding decision step *is* the first output spike and its class the first neuron to
    fire (rank-order read-out). The loss at that step acts on ``sigmoid(gain * d)``.

    Parameters
    ----------
    n_in, n_classes, hidden : int
        Input, output and hidden sizes.
    dt : float
        Time step in seconds: one input frame per step.
    hidden_card, output_card : str or ModelCard
    input_scale, rec_scale, out_scale : float
        Standard deviation of the initial weights times ``sqrt(fan_in)``, in nA.
    gain : float
        Slope of the read-out sigmoid per unit normalised distance.
    input_encoding : str
        Recorded in the spec: ``"spikes"`` (binary inputs fire input neurons at ``step*dt``)
        or ``"current"`` (analog inputs scale the input weights' effect, added to the
        synaptic variable each step).
    seed : int
        Seeds the heterogeneous parameters and the initial weights.
    spike_fn : SpikeFunction, optional
        Surrogate spike function of the runner.
    trainable : dict of str -> sequence of str, optional
        Card parameters trained per neuron, by population (``"hidden"``, ``"out"``), e.g.
        ``{"hidden": ["tau_m"]}``; see :class:`~neurocode.torch.runner.NetworkRunner`.
    """

    #: Trainable weights are in nA (the lif/alif cards' weight unit is amp).
    WEIGHT_UNIT = 1e-9

    def __init__(self, n_in, n_classes, hidden=128, dt=1e-3, hidden_card="alif", output_card="lif",
                 input_scale=6.0, rec_scale=2.0, out_scale=1.0, gain=5.0, input_encoding="spikes",
                 seed=0, spike_fn=None, trainable=None):
        super().__init__()
        from neurocode.spec import NetworkSpec, Projection
        from neurocode.torch.runner import NetworkRunner
        if input_encoding not in ("spikes", "current"):
            raise ValueError(f"input_encoding must be 'spikes' or 'current', got {input_encoding!r}")
        for name, value in (("n_in", n_in), ("n_classes", n_classes), ("hidden", hidden)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        self.n_in, self.n_classes, self.hidden = int(n_in), int(n_classes), int(hidden)
        self.dt, self.gain, self.input_encoding = float(dt), float(gain), input_encoding
        spec = NetworkSpec(dt=self.dt, seed=seed)
        spec.add_input("in", self.n_in)
        spec.add_population("hidden", hidden_card, self.hidden)
        spec.add_population("out", output_card, self.n_classes)
        gen = torch.Generator().manual_seed(int(seed))

        def init(n_src, n_tgt, scale):
            return (torch.randn(n_src, n_tgt, generator=gen) * scale / n_src ** 0.5).double().numpy()

        unit = self.WEIGHT_UNIT
        spec.add_projection(Projection.from_dense("in", "hidden", init(self.n_in, self.hidden, input_scale) * unit))
        w_rec = init(self.hidden, self.hidden, rec_scale) * unit
        i, j = np.nonzero(~np.eye(self.hidden, dtype=bool))
        spec.add_projection(Projection("hidden", "hidden", i, j, w_rec[i, j]))
        spec.add_projection(Projection.from_dense("hidden", "out", init(self.hidden, self.n_classes, out_scale) * unit))
        self.runner = NetworkRunner(spec, spike_fn=spike_fn, propagation="matrix", weight_unit=unit,
                                    trainable=trainable)
        self._ctx = None

    def initial_state(self, batch):
        """Step counter and the runner's packed state, each batch first.

        Also prepares the runner's per-forward constants for the current weights: call it at
        the start of every forward pass (the rank-coding objectives do).
        """
        self._ctx = self.runner.prepare()
        state, pending = self.runner.initial_state(batch), self.runner.initial_pending(batch)
        step = torch.zeros(batch, dtype=torch.long, device=self.runner.device)
        return (step,) + self.runner.pack(state, pending)

    def step(self, x, flat):
        """One ``dt``: inputs ``[B, n_in]`` -> ``(logits [B, n_classes], state)``."""
        if x.shape[-1] != self.n_in:
            raise ValueError(f"SpikingRCClassifier expects {self.n_in} input features, got {x.shape[-1]}")
        step, state = flat[0], flat[1:]
        state, pending = self.runner.unpack(state)
        t = float(step[0]) * self.dt if step.numel() else 0.0
        state, pending, _, _, dist = self.runner.step(state, pending, t, {"in": x.to(self.runner.dtype)},
                                                      self._ctx, observe=("out",))
        return self.gain * dist["out"], (step + 1,) + self.runner.pack(state, pending)

    def forward(self, x):
        """Logits at every step, ``[B, T, n_classes]``."""
        state = self.initial_state(x.shape[0])
        outs = []
        for k in range(x.shape[1]):
            logits, state = self.step(x[:, k], state)
            outs.append(logits)
        return torch.stack(outs, 1)

    def to_spec(self, steps=None, theta=0.5, activation="sigmoid", **metadata):
        """The trained network as a :class:`~neurocode.spec.NetworkSpec` (weights in amps,
        trained parameters in ``params``).

        The spec's typed fields record the input encoding (``steps`` frames of ``dt``) and the
        read-out (first output spike; gain, ``theta`` and activation of the logits), so a
        Brian2 run reproduces the decision; ``metadata`` keeps ``steps``, ``dt`` and the
        keyword arguments.
        """
        from neurocode.spec import Encoding, Readout
        spec = self.runner.to_spec()
        spec.encoding = Encoding("spike_steps" if self.input_encoding == "spikes" else "current", "in",
                                 steps=int(steps or 0))
        spec.readout = Readout("first_spike", "out", self.gain, float(theta), activation)
        spec.metadata = {"task": "rank_coding", "dt": self.dt, "steps": steps, **metadata}
        return spec
