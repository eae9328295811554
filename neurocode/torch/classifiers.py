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

    ``n_in`` inputs drive a recurrent hidden population (card ``hidden_card``, heterogeneous
    parameters sampled from the card, e.g. ``lif`` or ``alif``), which drives ``n_classes``
    output neurons (card ``output_card``). Dynamics are :class:`~neurocode.torch.dynamics.
    PopulationDynamics` (Brian2's own state updater of each card); hidden spikes use the
    surrogate gradient. Within one step the Brian2 schedule is followed: state update,
    threshold, synaptic propagation (input ``x_t`` and this step's spikes, through the card's
    ``on_pre``), reset.

    The read-out logits are ``gain * d`` with ``d`` the output neurons' normalised distance to
    threshold after the state update (``d = 0`` at threshold, ``-1`` at rest), so with sigmoid
    outputs and ``theta = 0.5`` the rank-coding decision step *is* the first output spike and
    its class the first neuron to fire (rank-order read-out). The loss at that step acts on
    ``sigmoid(gain * d)``.

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
        or ``"current"`` (analog inputs, scaled by the input weights, are added to the
        synaptic variable each step).
    seed : int
        Seeds the heterogeneous parameters and the initial weights.
    """

    def __init__(self, n_in, n_classes, hidden=128, dt=1e-3, hidden_card="alif", output_card="lif",
                 input_scale=6.0, rec_scale=2.0, out_scale=1.0, gain=5.0, input_encoding="spikes",
                 seed=0, spike_fn=None):
        super().__init__()
        from neurocode.spec import NetworkSpec
        from neurocode.torch.dynamics import PopulationDynamics
        from neurocode.torch.runner import synaptic_effects
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
        self._spec = spec
        self.pops = nn.ModuleDict({
            name: PopulationDynamics(pop.card, pop.params, dt=self.dt, spike_fn=spike_fn)
            for name, pop in spec.populations.items()})
        self.effects = {name: synaptic_effects(dyn.card, torch.float32) for name, dyn in self.pops.items()}
        gen = torch.Generator().manual_seed(int(seed))
        def init(n_src, n_tgt, scale):
            return nn.Parameter(torch.randn(n_src, n_tgt, generator=gen) * scale / n_src ** 0.5)
        # weights in nA (the lif/alif cards' weight unit is amp); SI = 1e-9 * value
        self.w_in = init(self.n_in, self.hidden, input_scale)
        self.w_rec = init(self.hidden, self.hidden, rec_scale)
        with torch.no_grad():
            self.w_rec.fill_diagonal_(0.0)
        self.w_out = init(self.hidden, self.n_classes, out_scale)
        self.weight_unit = 1e-9
        self._names = {name: dyn.state_names + (["lastspike"] if "lastspike" in dyn.initial_state(1) else [])
                       for name, dyn in self.pops.items()}

    # -- state packing: the RC objective index_selects a flat tuple of batch-first tensors ----
    def initial_state(self, batch):
        flat = [torch.zeros(batch, dtype=torch.long, device=self.w_in.device)]   # step counter
        for name, dyn in self.pops.items():
            st = dyn.initial_state(batch)
            flat += [st[k] for k in self._names[name]]
        return tuple(flat)

    def _unpack(self, flat):
        out, k = {}, 1
        for name in self.pops:
            keys = self._names[name]
            out[name] = dict(zip(keys, flat[k:k + len(keys)]))
            k += len(keys)
        return flat[0], out

    def _pack(self, step, states):
        flat = [step]
        for name in self.pops:
            flat += [states[name][k] for k in self._names[name]]
        return tuple(flat)

    def _propagate(self, state, target, presyn, w):
        for var, sign, fn in self.effects[target]:
            state[var] = state[var] + sign * (presyn @ fn(w * self.weight_unit))
        return state

    def step(self, x, flat):
        """One ``dt``: inputs ``[B, n_in]`` -> ``(logits [B, n_classes], state)``."""
        if x.shape[-1] != self.n_in:
            raise ValueError(f"SpikingRCClassifier expects {self.n_in} input features, got {x.shape[-1]}")
        step, st = self._unpack(flat)
        t = float(step[0]) * self.dt if step.numel() else 0.0
        hid, out = self.pops["hidden"], self.pops["out"]
        sh, nrh = hid.update(st["hidden"], t)
        so, nro = out.update(st["out"], t)
        dist = out._threshold_fn(**out._env(so, t, nro))["_nc_dist"] / out.threshold_scale
        if nro is not None:    # refractory output neurons cannot fire: keep them below threshold
            dist = torch.where(nro, dist, torch.clamp(dist, max=-1e-3))
        logits = self.gain * dist
        spk_h, cond_h, sh = hid.threshold(sh, t, nrh)
        spk_o, cond_o, so = out.threshold(so, t, nro)
        sh = self._propagate(dict(sh), "hidden", x.to(self.w_in.dtype), self.w_in)
        sh = self._propagate(sh, "hidden", spk_h, self.w_rec)
        so = self._propagate(dict(so), "out", spk_h, self.w_out)
        sh = hid.reset(sh, spk_h, cond_h, t)
        so = out.reset(so, spk_o, cond_o, t)
        return logits, self._pack(step + 1, {"hidden": sh, "out": so})

    def forward(self, x):
        """Logits at every step, ``[B, T, n_classes]``."""
        state = self.initial_state(x.shape[0])
        outs = []
        for k in range(x.shape[1]):
            logits, state = self.step(x[:, k], state)
            outs.append(logits)
        return torch.stack(outs, 1)

    def to_spec(self, steps=None, theta=0.5, activation="sigmoid", **metadata):
        """The trained network as a :class:`~neurocode.spec.NetworkSpec` (weights in amps).

        ``spec.metadata`` records the input encoding, ``dt``, the number of steps and the
        decision rule, so a Brian2 run can reproduce the read-out.
        """
        import copy

        from neurocode.spec import Projection
        spec = copy.copy(self._spec)
        spec.projections = []
        with torch.no_grad():
            w_rec = self.w_rec.clone()
            w_rec.fill_diagonal_(0.0)
            for src, tgt, w in (("in", "hidden", self.w_in), ("hidden", "hidden", w_rec),
                                ("hidden", "out", self.w_out)):
                spec.add_projection(Projection.from_dense(src, tgt, (w * self.weight_unit).double().numpy()))
        spec.metadata = {
            "task": "rank_coding", "dt": self.dt, "steps": steps,
            "input": {"population": "in", "encoding": self.input_encoding,
                      "rule": ("input k spikes at step s*dt when x[s, k] = 1" if self.input_encoding == "spikes"
                               else "x[s] @ W_in is added to the synaptic variable at step s")},
            "decision": {"rule": "first output spike; its neuron is the class; if none, the output "
                                 "closest to threshold at the last step",
                         "population": "out", "readout_gain": self.gain, "theta": theta,
                         "activation": activation},
            **metadata}
        return spec
