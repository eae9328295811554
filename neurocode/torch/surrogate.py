"""Spike functions: a Heaviside step forward, a surrogate derivative backward.

The argument ``x`` is the *normalised* signed distance to threshold (see
:mod:`neurocode.torch.dynamics`): ``x > 0`` means the threshold condition holds, and
``x = -1`` is the distance from the initial state to threshold. Every factory returns a
:class:`SpikeFunction`, a callable ``spike_fn(x, cond=None)``: the forward pass is
``(x > 0)`` (or the exact boolean ``cond`` when given, so that ``>=`` and ``>`` thresholds
match Brian2 to the last bit), the backward and forward-mode (``torch.func.jvp``) passes
use the surrogate derivative stated in each factory's docstring.

>>> import torch
>>> fn = superspike(slope=25)
>>> x = torch.tensor([-0.1, 0.0, 0.2], requires_grad=True)
>>> fn(x).tolist()
[0.0, 0.0, 1.0]
>>> fn(x).sum().backward()
>>> [round(g, 4) for g in x.grad.tolist()]
[0.0816, 1.0, 0.0278]

:func:`sigmoid` is the exception: a *smooth* spike whose forward pass is a logistic
function and whose backward pass is its exact derivative (for ``gradcheck`` and for
smooth approximations of the network map).
"""

from __future__ import annotations

import math

import torch

__all__ = ["SpikeFunction", "superspike", "fast_sigmoid", "arctan", "triangle", "sigmoid", "heaviside"]


def _superspike_grad(x, slope):
    return 1.0 / (1.0 + slope * x.abs()) ** 2


def _arctan_grad(x, slope):
    return (slope / 2.0) / (1.0 + (math.pi / 2.0 * slope * x) ** 2)


def _triangle_grad(x, slope):
    return slope * torch.clamp(1.0 - slope * x.abs(), min=0.0)


def _sigmoid_grad(x, slope):
    s = torch.sigmoid(slope * x)
    return slope * s * (1.0 - s)


_GRADS = {"superspike": _superspike_grad, "arctan": _arctan_grad,
          "triangle": _triangle_grad, "sigmoid": _sigmoid_grad}


class _Heaviside(torch.autograd.Function):
    """Heaviside forward, surrogate derivative backward (reverse and forward mode)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, cond, kind, slope):
        if cond is None:
            return (x > 0).to(x.dtype)
        return cond.to(x.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, _, kind, slope = inputs
        ctx.kind, ctx.slope = kind, slope
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)

    @staticmethod
    def backward(ctx, grad_output):
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        (x,) = ctx.saved_tensors
        return grad_output * _GRADS[ctx.kind](x, ctx.slope), None, None, None

    @staticmethod
    def jvp(ctx, x_t, cond_t, kind_t, slope_t):
        (x,) = ctx.saved_tensors
        return x_t * _GRADS[ctx.kind](x, ctx.slope)


class SpikeFunction:
    """A spike nonlinearity ``spike_fn(x, cond=None) -> spikes`` (same shape as ``x``).

    Parameters
    ----------
    kind : {"superspike", "arctan", "triangle", "sigmoid"}
        Which surrogate derivative (see the factories).
    slope : float
        Steepness (dimensionless, in units of the normalised distance ``x``).
    """

    def __init__(self, kind, slope):
        if kind not in _GRADS:
            raise ValueError(f"unknown surrogate {kind!r}; choose one of {sorted(_GRADS)}")
        slope = float(slope)
        if not slope > 0 or not math.isfinite(slope):
            raise ValueError(f"surrogate slope must be a positive finite number, got {slope}")
        self.kind, self.slope = kind, slope

    @property
    def smooth(self):
        """True when the forward pass itself is smooth (no exact Heaviside)."""
        return self.kind == "sigmoid"

    def derivative(self, x):
        """The surrogate derivative at ``x`` (the formula in the factory's docstring)."""
        return _GRADS[self.kind](x, self.slope)

    def __call__(self, x, cond=None):
        if self.smooth:
            return torch.sigmoid(self.slope * x)
        if not torch.is_grad_enabled():  # inference: no autograd.Function overhead
            return (x > 0).to(x.dtype) if cond is None else cond.to(x.dtype)
        return _Heaviside.apply(x, cond, self.kind, self.slope)

    def __repr__(self):
        return f"surrogate.{self.kind}(slope={self.slope:g})"


def superspike(slope=25.0):
    """Fast-sigmoid (SuperSpike) surrogate: ``dS/dx = 1 / (1 + slope*|x|)**2``.

    Zenke & Ganguli (2018), Neural Comput. 30:1514. The default surrogate.

    >>> superspike(slope=25)
    surrogate.superspike(slope=25)
    """
    return SpikeFunction("superspike", slope)


fast_sigmoid = superspike


def arctan(slope=2.0):
    """Arctangent surrogate: ``dS/dx = (slope/2) / (1 + (pi/2 * slope * x)**2)`` (unit area).

    Fang et al. (2021), ICCV; as ``snntorch.surrogate.atan(alpha=slope)``.
    """
    return SpikeFunction("arctan", slope)


def triangle(slope=1.0):
    """Triangle (piecewise-linear) surrogate: ``dS/dx = slope * max(0, 1 - slope*|x|)`` (unit area).

    Bellec et al. (2018), NeurIPS (their pseudo-derivative with dampening ``1``).
    """
    return SpikeFunction("triangle", slope)


def sigmoid(slope=5.0):
    """Smooth spike: forward ``S = 1 / (1 + exp(-slope*x))``, backward its exact derivative
    ``dS/dx = slope * S * (1 - S)``.

    Not a Heaviside: spikes are fractional. Use it for ``torch.autograd.gradcheck`` and for
    smooth approximations of a network's map; the threshold crossing, refractoriness and
    ``lastspike`` still follow the exact condition.
    """
    return SpikeFunction("sigmoid", slope)


def heaviside():
    """Exact step with a SuperSpike derivative of slope 25 (alias of :func:`superspike`)."""
    return superspike(25.0)
