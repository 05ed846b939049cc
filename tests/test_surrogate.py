import pytest
import torch

from snncomp import surrogate


@pytest.mark.parametrize("name", list(surrogate.SURROGATES))
def test_derivative_matches_autograd_of_primitive(name):
    sg = surrogate.get(name)
    torch.manual_seed(0)
    x = (torch.rand(2000, dtype=torch.float64) - 0.5) * 6
    # stay away from the kinks of the piecewise surrogates, where the derivative is not defined
    kinks = torch.tensor([0.0, 0.5 / sg.alpha, -0.5 / sg.alpha, 1 / sg.alpha, -1 / sg.alpha], dtype=torch.float64)
    x = x[(x.unsqueeze(1) - kinks).abs().min(1).values > 1e-3].requires_grad_(True)
    (auto,) = torch.autograd.grad(sg.primitive(x).sum(), x)
    assert torch.allclose(sg.derivative(x.detach()), auto, atol=1e-10)


@pytest.mark.parametrize("name", list(surrogate.SURROGATES))
def test_forward_is_heaviside_and_backward_is_derivative(name):
    sg = surrogate.get(name)
    x = torch.tensor([-1.0, -0.1, 0.0, 0.1, 1.0], requires_grad=True)
    s = sg(x)
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    s.sum().backward()
    assert torch.allclose(x.grad, sg.derivative(x.detach()))


@pytest.mark.parametrize("name", list(surrogate.SURROGATES))
def test_primitive_is_a_step_with_unit_area(name):
    sg = surrogate.get(name)
    big = torch.tensor([-1e4, 1e4], dtype=torch.float64)
    assert torch.allclose(sg.primitive(big), torch.tensor([0.0, 1.0], dtype=torch.float64), atol=1e-3)


def test_hand_values():
    # ATan derivative at 0 is alpha / 2; sigmoid's is alpha / 4; rectangle's is alpha inside the window
    z = torch.zeros(1)
    assert surrogate.ATan(2.0).derivative(z).item() == pytest.approx(1.0)
    assert surrogate.Sigmoid(4.0).derivative(z).item() == pytest.approx(1.0)
    assert surrogate.FastSigmoid(10.0).derivative(z).item() == pytest.approx(5.0)
    assert surrogate.Rectangular(1.0).derivative(torch.tensor([0.49, 0.51])).tolist() == [1.0, 0.0]
    assert surrogate.Triangular(1.0).derivative(torch.tensor([0.5])).item() == pytest.approx(0.5)


def test_unknown_name_lists_closest():
    with pytest.raises(KeyError, match="closest: atan"):
        surrogate.get("atann")


def test_bad_alpha():
    with pytest.raises(ValueError, match="alpha must be a positive"):
        surrogate.ATan(alpha=0.0)
