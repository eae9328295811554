"""Exact TTFS layers of the constant-slope neuron (Stanojevic et al. 2024): a ReLU network in spike times.

The neuron is the ``ttfs_slope`` model card (``equations/ttfs_slope.toml``). With times in
units of ``tau_s``, a neuron of a layer whose threshold opens at ``a`` integrates, in its
input window, the step currents of the inputs that arrived and a bias current, so that
when the threshold opens its potential is

    V_i = sum_j w_ij (a - t_j)_+ + b_i,

(``b_i`` is the potential the bias current adds over the input window). From ``a`` on the
inputs no longer count and ``v`` rises with the constant slope ``rho``: the neuron fires at

    t_i = a + (V_th - V_i) / rho       (at ``a`` if ``V_i >= V_th``),

and is silent if that is at or after its window's end ``T = a + W``. With
``rho = V_th / W`` the activation ``x_i = T - t_i`` is ``clip(V_i / rho, 0, W)``, and the
next layer's threshold opens at ``T``, so it sees ``a' - t_i = x_i``: the network is a
rectified linear network (ceiling ``W``) of its inputs ``x_j = t_input - t_j``. Here
``rho = 1`` (times and potentials share units), so ``V_th = W`` and the weights and biases
are the ReLU network's: spike-time gradients are the ReLU network's gradients, and training
the spiking network follows the ReLU network's trajectory -- the point of the "constant
slope at threshold" mapping (with a slope that varies between neurons, gradients are
rescaled per neuron and the trajectories part).

**Silent neurons** get ``T`` as spike time (a ReLU zero; no gradient, as ReLU). The output
layer's window is ``out_margin`` longer, so that outputs with ``V_i > -out_margin`` fire;
an output neuron that is silent still passes to the loss the gradient of its crossing
extrapolated past the window, which with a constant slope is the exact continuation (the
ReLU twin's logit). ``silent_grad > 0`` does the same for hidden layers (training only).

>>> import torch
>>> t_in = torch.tensor([[0.0, 0.5]])                 # x = (1, 0.5) with t_input = 1
>>> w = torch.tensor([[2.0], [-1.0]]); b = torch.tensor([0.5])
>>> slope_layer(t_in, w, b, t_open=1.0, v_th=4.0, t_end=5.0)   # V = 2 - 0.5 + 0.5 = 2: fires at 1 + 2
tensor([[3.]])
"""

from __future__ import annotations

import math

import numpy as np
import torch

from neurocode.torch.ttfs import feedforward_spec

#: The model name written into a NetworkSpec's metadata.
MODEL = "ConstantSlopeNetwork"


def open_potential(t_in, w, b, t_open):
    """``V_i = sum_j w_ij (t_open - t_j)_+ + b_i``: the potential when the threshold opens, (batch, n_out)."""
    return (t_open - t_in).clamp(min=0) @ w + b


def slope_layer(t_in, w, b, t_open, v_th, t_end, rho=1.0, silent_grad=0.0):
    """Spike times of a constant-slope TTFS layer, differentiable in ``t_in``, ``w`` and ``b``.

    Parameters
    ----------
    t_in : Tensor, shape (batch, n_in)
        Input spike times (units of ``tau_s``); inputs at or after ``t_open`` do not count.
    w : Tensor, shape (n_in, n_out)
        Weights (potential per ``tau_s`` of input current).
    b : Tensor, shape (n_out,)
        Bias: the potential the bias current adds by ``t_open``.
    t_open, t_end : float
        When the threshold opens and the window's end (units of ``tau_s``).
    v_th : float
        Threshold (potential).
    rho : float
        Slope of the potential after ``t_open`` (potential per ``tau_s``, > 0).
    silent_grad : float
        0: silent neurons (spike time ``t_end``) pass no gradient; ``k > 0``: they pass ``k``
        times the gradient of their extrapolated crossing.

    Returns
    -------
    Tensor, shape (batch, n_out)
        Spike times; ``t_end`` for silent neurons.
    """
    if not (rho > 0 and t_end > t_open):
        raise ValueError(f"slope_layer: need rho > 0 and t_end > t_open, got rho = {rho}, "
                         f"t_open = {t_open}, t_end = {t_end}")
    cross = t_open + (v_th - open_potential(t_in, w, b, t_open)) / rho
    cross = cross.clamp(min=t_open)
    fired = cross < t_end
    t = torch.where(fired, cross, torch.full_like(cross, t_end))
    if silent_grad:
        t = t + torch.where(fired, torch.zeros_like(cross), silent_grad * (cross - cross.detach()))
    return t


class ConstantSlopeNetwork(torch.nn.Module):
    """A feed-forward TTFS network of constant-slope neurons (e.g. 784-400-10), exact gradients.

    Times are in units of ``tau_s``; ``rho = 1`` and each layer's threshold is its window
    length ``W`` (so ``rho = V_th / W``, see the module docstring). Inputs spike in
    ``[0, t_input]`` (``t = t_input (1 - x)``); hidden layer ``l`` (1-based) opens its
    threshold at ``t_input + (l - 1) W`` and closes it ``W`` later; the output layer's window
    is ``W + out_margin``.

    Parameters
    ----------
    sizes : sequence of int
        Layer sizes, input first: ``(784, 400, 10)``.
    t_input : float
        Length of the input window (units of ``tau_s``).
    window : float
        ``W``: each layer's window, the activation's ceiling (units of ``tau_s``).
    out_margin : float
        Extra window of the output layer (units of ``tau_s``).
    seed : int
        Seed of the initial weights: ``U(-1/sqrt(n_in), 1/sqrt(n_in))`` for weights and
        biases, as ``torch.nn.Linear``.
    silent_grad : float
        Training-only gradient of silent *hidden* neurons (see :func:`slope_layer`); 0 is the
        exact (ReLU) gradient.

    >>> net = ConstantSlopeNetwork((4, 3, 2), seed=0)
    >>> [tuple(t.shape) for t in net(torch.zeros(5, 4))], net.opens, net.windows
    ([(5, 3), (5, 2)], [1.0, 9.0], [9.0, 25.0])
    """

    neuron = "constant_slope"

    def __init__(self, sizes, t_input=1.0, window=8.0, out_margin=8.0, seed=0, silent_grad=0.0):
        super().__init__()
        sizes = [int(n) for n in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must list at least an input and an output layer of >= 1 neuron, got {sizes}")
        if not (t_input > 0 and window > 0 and out_margin >= 0 and silent_grad >= 0):
            raise ValueError(f"need t_input > 0, window > 0, out_margin >= 0 and silent_grad >= 0, got "
                             f"{t_input}, {window}, {out_margin}, {silent_grad}")
        self.sizes, self.silent_grad = sizes, float(silent_grad)
        self.t_input, self.window, self.out_margin = float(t_input), float(window), float(out_margin)
        gen = torch.Generator().manual_seed(int(seed))
        self.weights, self.biases = torch.nn.ParameterList(), torch.nn.ParameterList()
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            bound = 1 / math.sqrt(n_in)
            self.weights.append(torch.nn.Parameter((torch.rand(n_in, n_out, generator=gen) * 2 - 1) * bound))
            self.biases.append(torch.nn.Parameter((torch.rand(n_out, generator=gen) * 2 - 1) * bound))

    @property
    def v_th(self):
        """Threshold of every layer (potential): the window ``W``, as ``rho = 1``."""
        return self.window

    @property
    def opens(self):
        """When each layer's threshold opens (units of ``tau_s``)."""
        return [self.t_input + k * self.window for k in range(len(self.weights))]

    @property
    def windows(self):
        """End of each layer's window (units of ``tau_s``)."""
        ends = [a + self.window for a in self.opens]
        ends[-1] += self.out_margin
        return ends

    def forward(self, t_in):
        """Spike times of every layer (list of (batch, n) tensors) for input times ``t_in``."""
        if t_in.ndim != 2 or t_in.shape[1] != self.sizes[0]:
            raise ValueError(f"input times must be (batch, {self.sizes[0]}), got {tuple(t_in.shape)}")
        times, t = [], t_in.to(self.weights[0].dtype)
        last = len(self.weights) - 1
        for k, (w, b, a, t_end) in enumerate(zip(self.weights, self.biases, self.opens, self.windows)):
            t = slope_layer(t, w, b, a, self.v_th, t_end, silent_grad=1.0 if k == last else self.silent_grad)
            times.append(t)
        return times

    def open_potentials(self, t_in, times):
        """Each layer's potential when its threshold opens, from the input times and ``forward``'s times."""
        inputs = [t_in] + list(times[:-1])
        return [open_potential(x, w, b, a) for x, w, b, a in zip(inputs, self.weights, self.biases, self.opens)]

    def first_layer_potential(self, grid, t_in):
        """No-reset potential of the first layer on a time grid: (batch, n_t, n_out).

        Ramps of the inputs and the bias until the threshold opens at ``a``, slope 1 after.
        """
        a = self.opens[0]
        before = grid.clamp(max=a).view(1, -1, 1)
        v = (before - t_in.unsqueeze(1)).clamp(min=0) @ self.weights[0] + self.biases[0] * (before / a)
        return v + (grid - a).clamp(min=0).view(1, -1, 1)

    def to_spec(self, tau_s=1e-3, dt=0.01e-3, seed=0, names=None):
        """The network as a :class:`~neurocode.spec.NetworkSpec` of ``ttfs_slope`` neurons (SI units).

        Populations ``hidden1 ... hiddenN`` and ``out`` are fed by an input population ``in``;
        each neuron's ``t_open``, ``t_end`` (seconds after the trial's start) and input window
        ``t_in`` are its layer's, and its bias is the current ``i_bias = b tau_s / t_in``.
        """
        starts = [0.0] + self.opens[:-1]
        layers = []
        for k, n in enumerate(self.sizes[1:]):
            length = self.opens[k] - starts[k]
            layers.append({"v_th": np.full(n, self.v_th), "rho": np.ones(n), "tau_s": np.full(n, tau_s),
                           "i_bias": self.biases[k].detach().cpu().double().numpy() / length,
                           "t_in": np.full(n, length * tau_s), "t_open": np.full(n, self.opens[k] * tau_s),
                           "t_end": np.full(n, self.windows[k] * tau_s)})
        return feedforward_spec("ttfs_slope", self.sizes, self.weights, layers, self.t_input, tau_s, dt, seed,
                                {"model": MODEL, "window": self.window * tau_s, "out_margin": self.out_margin * tau_s,
                                 "windows": [t * tau_s for t in self.windows],
                                 "opens": [a * tau_s for a in self.opens]}, names)

    @classmethod
    def from_spec(cls, spec):
        """Rebuild a network written by :meth:`to_spec`."""
        meta = spec.metadata
        if meta.get("model") != MODEL:
            raise ValueError(f"this NetworkSpec was not written by {MODEL}.to_spec (metadata 'model')")
        tau_s = meta["tau_s"]
        net = cls(meta["sizes"], t_input=meta["t_input"] / tau_s, window=meta["window"] / tau_s,
                  out_margin=meta["out_margin"] / tau_s)
        starts = [0.0] + net.opens[:-1]
        with torch.no_grad():
            for k, (w, b, proj, pop) in enumerate(zip(net.weights, net.biases, spec.projections,
                                                      spec.populations.values())):
                w.copy_(torch.from_numpy(proj.dense(tuple(w.shape))))
                bias = np.asarray(pop.params["i_bias"], dtype=np.float64) * (net.opens[k] - starts[k])
                b.copy_(torch.from_numpy(bias))
        return net
