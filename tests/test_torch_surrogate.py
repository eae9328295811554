"""Surrogate spike functions: forward step, backward and forward-mode derivatives vs their formulas."""

import math

import pytest
import torch

from neurocode.torch import surrogate

FORMULAS = {  # the formula each factory's docstring states
    "superspike": lambda x, k: 1.0 / (1.0 + k * x.abs()) ** 2,
    "arctan": lambda x, k: (k / 2) / (1 + (math.pi / 2 * k * x) ** 2),
    "triangle": lambda x, k: k * torch.clamp(1 - k * x.abs(), min=0),
}
DOC_FORMULAS = {
    "superspike": "dS/dx = 1 / (1 + slope*|x|)**2",
    "arctan": "dS/dx = (slope/2) / (1 + (pi/2 * slope * x)**2)",
    "triangle": "dS/dx = slope * max(0, 1 - slope*|x|)",
}


@pytest.mark.parametrize("kind", sorted(FORMULAS))
@pytest.mark.parametrize("slope", [0.5, 2.0, 25.0])
def test_backward_matches_docstring_formula(kind, slope):
    fn = getattr(surrogate, kind)(slope=slope)
    x = torch.linspace(-2, 2, 101, dtype=torch.float64, requires_grad=True)
    y = fn(x)
    assert torch.equal(y, (x > 0).double())
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, FORMULAS[kind](x.detach(), slope), rtol=1e-12, atol=1e-15)
    assert DOC_FORMULAS[kind] in getattr(surrogate, kind).__doc__


@pytest.mark.parametrize("kind", sorted(FORMULAS))
def test_forward_mode_jvp_uses_the_same_derivative(kind):
    fn = getattr(surrogate, kind)(slope=3.0)
    x = torch.linspace(-1, 1, 11, dtype=torch.float64)
    tangent = torch.rand(11, dtype=torch.float64)
    _, jvp = torch.func.jvp(fn, (x,), (tangent,))
    torch.testing.assert_close(jvp, tangent * FORMULAS[kind](x, 3.0))


def test_triangle_and_arctan_have_unit_area():
    x = torch.linspace(-50, 50, 2_000_001, dtype=torch.float64)
    for fn in (surrogate.triangle(slope=2.0), surrogate.arctan(slope=2.0)):
        area = torch.trapezoid(fn.derivative(x), x).item()
        assert area == pytest.approx(1.0, abs=0.02)


def test_exact_condition_decides_the_forward_value():
    fn = surrogate.superspike(slope=25)
    x = torch.zeros(3, requires_grad=True)
    cond = torch.tensor([True, False, True])   # e.g. 'v >= v_th' at equality
    assert fn(x, cond).tolist() == [1.0, 0.0, 1.0]
    assert fn(x).tolist() == [0.0, 0.0, 0.0]   # x > 0 is strict


def test_sigmoid_is_smooth_and_gradcheck_passes():
    fn = surrogate.sigmoid(slope=4.0)
    assert fn.smooth
    x = torch.randn(7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (x,))


def test_factories_read_well_and_reject_bad_slopes():
    assert repr(surrogate.superspike(slope=25)) == "surrogate.superspike(slope=25)"
    assert surrogate.fast_sigmoid is surrogate.superspike
    with pytest.raises(ValueError, match="slope must be a positive"):
        surrogate.arctan(slope=-1)
    with pytest.raises(ValueError, match="unknown surrogate 'box'"):
        surrogate.SpikeFunction("box", 1.0)
