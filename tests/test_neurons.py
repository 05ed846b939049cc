import math

import pytest
import torch

from snncomp import neurons
from snncomp.surrogate import ATan, Rectangular


def test_lif_hard_reset_by_hand():
    # tau = 2 -> beta = 0.5; theta = 1. H: 0.6, 0.9, 1.05 (spike, V=0), 1.5 (spike, V=0)
    x = torch.tensor([0.6, 0.6, 0.6, 1.5]).view(4, 1)
    out = neurons.lif(x, tau=2.0, threshold=1.0, reset="hard")
    assert out.spikes.flatten().tolist() == [0.0, 0.0, 1.0, 1.0]
    assert torch.allclose(out.membrane.flatten(), torch.tensor([0.6, 0.9, 0.0, 0.0]))


def test_lif_soft_reset_by_hand():
    # soft: V = H - theta S. H2 = 1.05 -> V2 = 0.05; H3 = 0.025 + 1.5 = 1.525 -> V3 = 0.525
    x = torch.tensor([0.6, 0.6, 0.6, 1.5]).view(4, 1)
    out = neurons.lif(x, tau=2.0, threshold=1.0, reset="soft")
    assert out.spikes.flatten().tolist() == [0.0, 0.0, 1.0, 1.0]
    assert torch.allclose(out.membrane.flatten(), torch.tensor([0.6, 0.9, 0.05, 0.525]))


def test_lif_nonzero_reset_value():
    x = torch.tensor([1.5, 0.0]).view(2, 1)
    out = neurons.lif(x, tau=2.0, reset="hard", v_reset=-0.5)
    # V starts at V_reset: H0 = 0.5 * -0.5 + 1.5 = 1.25 spikes, V = -0.5; step 1: H = 0.5 * -0.5 = -0.25
    assert torch.allclose(out.membrane.flatten(), torch.tensor([-0.5, -0.25]))


def test_integrate_and_fire_counts():
    # IF with soft reset fires floor(sum x / theta) times for constant positive input
    x = torch.full((10, 1), 0.35)
    out = neurons.integrate_and_fire(x, 1.0)
    assert out.spikes.sum().item() == math.floor(10 * 0.35)


@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("beta_kind", ["float", "scalar", "channel"])
def test_fused_lif_matches_reference(reset, beta_kind):
    torch.manual_seed(0)
    x = torch.randn(7, 3, 4, 2, dtype=torch.float64, requires_grad=True)  # [T, B, C, F]
    beta = {"float": 0.6, "scalar": torch.tensor(0.7, dtype=torch.float64, requires_grad=True),
            "channel": torch.rand(4, dtype=torch.float64, requires_grad=True)}[beta_kind]
    thr = torch.tensor([1.0, 0.8, 1.2, 0.9], dtype=torch.float64)
    fused = neurons._lif_beta(x, beta, thr, reset=reset, v_reset=0.0, surrogate=ATan(), detach_reset=True)
    ref = neurons.lif_reference(x, beta, thr, reset=reset, surrogate=ATan())
    assert torch.equal(fused.spikes, ref.spikes)
    assert torch.allclose(fused.membrane, ref.membrane)
    w1, w2 = torch.randn_like(x), torch.randn_like(x)
    inputs = [x] + ([beta] if isinstance(beta, torch.Tensor) else [])
    g_f = torch.autograd.grad((fused.spikes * w1).sum() + (fused.membrane * w2).sum(), inputs)
    g_r = torch.autograd.grad((ref.spikes * w1).sum() + (ref.membrane * w2).sum(), inputs)
    for a, b in zip(g_f, g_r):
        assert torch.allclose(a, b)


def test_attached_reset_differs_in_gradient_only():
    torch.manual_seed(1)
    x = torch.randn(6, 2, 5, requires_grad=True)
    a = neurons.lif(x, 2.0, detach_reset=True, surrogate=Rectangular())
    b = neurons.lif(x, 2.0, detach_reset=False, surrogate=Rectangular())
    assert torch.equal(a.spikes, b.spikes)
    ga = torch.autograd.grad(a.spikes.sum(), x)[0]
    gb = torch.autograd.grad(b.spikes.sum(), x)[0]
    assert not torch.allclose(ga, gb)


def test_plif_learns_tau():
    torch.manual_seed(0)
    n = neurons.PLIF(3, tau_init=2.0)
    assert torch.allclose(n.tau, torch.full((3,), 2.0))
    x = torch.rand(5, 4, 3) * 2
    n(x).sum().backward()
    assert n.w.grad is not None and n.w.grad.abs().sum() > 0


def test_adaptive_threshold_reduces_firing():
    x = torch.full((50, 1), 0.8)
    plain = neurons.lif(x, tau=2.0, reset="soft").spikes.sum()
    adaptive = neurons.adaptive_lif(x, tau=2.0, adapt_strength=1.0).spikes.sum()
    assert adaptive < plain


def test_modules_return_spikes_and_run_returns_trace():
    x = torch.rand(4, 2, 3)
    for m in (neurons.LIF(3), neurons.IF(), neurons.PLIF(), neurons.AdaptiveLIF()):
        out = m.run(x)
        assert isinstance(out, neurons.NeuronOutput)
        assert torch.equal(m(x), out.spikes)
        assert out.membrane.shape == x.shape


def test_keep_channels_slices_state():
    n = neurons.LIF(4, tau=3.0)
    n.threshold.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    n.keep_channels(torch.tensor([0, 2]))
    assert n.threshold.tolist() == [1.0, 3.0] and n.tau.shape == (2,)


def test_izhikevich_regular_spiking_fires():
    out = neurons.izhikevich(torch.full((1000, 1), 10.0), *neurons.IZHIKEVICH_PATTERNS["regular spiking"])
    assert 5 < out.spikes.sum() < 100
    assert out.membrane.max() <= 30.0


def test_hodgkin_huxley_rest_and_spike():
    rest = neurons.hodgkin_huxley(torch.zeros(2000, 1))
    assert abs(rest.membrane[-1].item() + 65.0) < 1.0 and rest.spikes.sum() == 0
    driven = neurons.hodgkin_huxley(torch.full((3000, 1), 10.0))
    assert driven.spikes.sum() >= 1 and driven.membrane.max() > 20


@pytest.mark.parametrize("bad", [torch.zeros(5), torch.tensor(1.0)])
def test_wrong_rank_is_rejected(bad):
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        neurons.lif(bad)


@pytest.mark.parametrize("tau", [0.0, -2.0, 0.5])
def test_bad_time_constant(tau):
    with pytest.raises(ValueError, match="tau"):
        neurons.lif(torch.zeros(3, 2), tau=tau)
    with pytest.raises(ValueError, match="tau"):
        neurons.LIF(tau=tau)


@pytest.mark.parametrize("thr", [0.0, -1.0])
def test_bad_threshold(thr):
    with pytest.raises(ValueError, match="threshold must be positive"):
        neurons.lif(torch.zeros(3, 2), threshold=thr)
    with pytest.raises(ValueError, match="threshold must be positive"):
        neurons.IF(threshold=thr)


def test_bad_reset():
    with pytest.raises(ValueError, match="reset must be 'hard' or 'soft'"):
        neurons.lif(torch.zeros(3, 2), reset="zero")
