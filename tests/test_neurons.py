import math

import pytest
import torch

from snncomp import biology, neurons
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


def test_plif_scales_the_input_by_one_over_tau_by_hand():
    # Fang et al.: H = V + (X - (V - V_reset)) / tau. tau = 2, V_reset = 0, theta = 1, X = 1.2 at every step:
    # H0 = 0.6; H1 = 0.6 + (1.2 - 0.6)/2 = 0.9; H2 = 0.9 + 0.15 = 1.05 -> spike, V = 0; H3 = 0.6
    x = torch.full((4, 1), 1.2)
    out = neurons.PLIF(tau_init=2.0).run(x)
    assert out.spikes.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    assert torch.allclose(out.membrane.flatten(), torch.tensor([0.6, 0.9, 0.0, 0.6]))


def test_plif_decay_input_false_is_the_lif():
    # without input scaling (and V_reset = 0) the PLIF is our LIF with beta = 1 - sigmoid(w)
    torch.manual_seed(0)
    x = torch.randn(9, 3, 5) + 0.5
    for tau in (2.0, 3.0):
        out = neurons.PLIF(tau_init=tau, decay_input=False).run(x)
        ref = neurons.lif(x, tau)
        assert torch.equal(out.spikes, ref.spikes)
        assert torch.allclose(out.membrane, ref.membrane, atol=1e-6)
    # while the paper's form differs: tau = 2 halves the input
    scaled = neurons.PLIF(tau_init=2.0).run(x)
    assert torch.equal(scaled.spikes, neurons.lif(x / 2, 2.0).spikes)


def test_plif_leaks_towards_v_reset():
    # no input: V stays at V_reset = -0.5 (Fang et al. leak towards V_reset, not towards 0)
    for decay_input in (True, False):
        out = neurons.PLIF(tau_init=3.0, v_reset=-0.5, decay_input=decay_input).run(torch.zeros(6, 2))
        assert torch.allclose(out.membrane, torch.full((6, 2), -0.5))


@pytest.mark.parametrize("channels", [None, 4])
def test_plif_gradient_reaches_w_through_both_paths(channels):
    # w sets both the leak and the input scale; compare with a plain autograd loop of the paper's equation
    torch.manual_seed(2)
    x = torch.randn(6, 3, 4, dtype=torch.float64) + 0.8
    n = neurons.PLIF(channels, tau_init=3.0, v_reset=-0.2).double()
    out = n.run(x)
    (out.spikes.sum() + out.membrane.pow(2).sum()).backward()
    w = n.w.detach().clone().requires_grad_(True)
    q = torch.sigmoid(w)
    v = torch.full_like(x[0], -0.2)
    spikes, membrane = [], []
    for t in range(x.shape[0]):
        h = v + (x[t] - (v + 0.2)) * q  # H = V + (X - (V - V_reset)) / tau
        s = ATan()(h - 1.0)
        v = h * (1 - s.detach()) - 0.2 * s.detach()
        spikes.append(s)
        membrane.append(v)
    spikes, membrane = torch.stack(spikes), torch.stack(membrane)
    assert torch.equal(out.spikes, spikes)
    assert torch.allclose(out.membrane, membrane)
    (g,) = torch.autograd.grad(spikes.sum() + membrane.pow(2).sum(), w)
    assert torch.allclose(n.w.grad, g)


def test_adaptive_threshold_reduces_firing():
    x = torch.full((50, 1), 0.8)
    plain = neurons.lif(x, tau=2.0, reset="soft").spikes.sum()
    adaptive = neurons.adaptive_lif(x, tau=2.0, adapt_strength=1.0).spikes.sum()
    assert adaptive < plain


def test_adaptive_lif_by_hand():
    # Bellec et al. (LSNN): a[t] = rho a[t-1] + (1 - rho) S[t-1], theta[t] = theta0 + gamma a[t].
    # tau = 2 (beta = 0.5), tau_a = 2 (rho = 0.5), gamma = 1, theta0 = 1, soft reset by theta[t]:
    # t0: a = 0,      theta = 1,      H = 1.2                 -> spike, V = 0.2
    # t1: a = 0.5,    theta = 1.5,    H = 0.1 + 0.6 = 0.7     -> no spike, V = 0.7
    # t2: a = 0.25,   theta = 1.25,   H = 0.35 + 1.2 = 1.55   -> spike, V = 0.3
    # t3: a = 0.625,  theta = 1.625,  H = 0.15 + 1.5 = 1.65   -> spike, V = 0.025
    # t4: a = 0.8125, theta = 1.8125, H = 0.0125 + 1.5 = 1.5125 -> no spike, V = 1.5125
    # (the former a[t] = rho a[t-1] + S[t-1] gives theta[1] = 2, theta[2] = 1.5 and V[2] = 0.05)
    x = torch.tensor([1.2, 0.6, 1.2, 1.5, 1.5]).view(5, 1)
    out = neurons.adaptive_lif(x, tau=2.0, threshold=1.0, tau_adapt=2.0, adapt_strength=1.0)
    assert out.spikes.flatten().tolist() == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert torch.allclose(out.membrane.flatten(), torch.tensor([0.2, 0.7, 0.3, 0.025, 1.5125]))


def test_adaptive_lif_gradient_flows_through_the_adaptation():
    # tau = 1 makes beta = 0: H[t] = X[t], so X[0] reaches step 2 only through a (S[0] -> a[1] -> a[2] -> theta[2]).
    # X = [1, 0, 1.5], rho = 0.5, gamma = 1: S = [1, 0, 1], theta[2] = 1 + 0.25, V[2] = 1.5 - 1.25.
    # dV[2]/dX[0] = -S[2] gamma rho (1 - rho) g'(X[0] - 1) = -0.25 with the rectangular surrogate (g'(0) = 1,
    # and g'(X[1] - theta[1]) = g'(-1.5) = 0, so no second path through S[1]).
    x = torch.tensor([1.0, 0.0, 1.5]).view(3, 1).requires_grad_(True)
    kw = dict(tau=1.0, threshold=1.0, tau_adapt=2.0, adapt_strength=1.0, surrogate=Rectangular(1.0))
    out = neurons.adaptive_lif(x, **kw)
    assert out.spikes.flatten().tolist() == [1.0, 0.0, 1.0]
    assert out.membrane[2].item() == pytest.approx(0.25)
    (g,) = torch.autograd.grad(out.membrane[2].sum(), x)
    assert g.flatten().tolist() == pytest.approx([-0.25, 0.0, 1.0])
    # the spike at step 2 depends on X[0] through theta[2] too: dS[2]/dX[0] = -g'(0.25) * 0.25
    (gs,) = torch.autograd.grad(neurons.adaptive_lif(x, **kw).spikes[2].sum(), x)
    assert gs.flatten().tolist() == pytest.approx([-0.25, 0.0, 1.0])
    # cutting the adaptation path (not LSNN) removes that gradient
    cut = neurons.adaptive_lif(x, **kw, detach_adaptation=True)
    (g_cut,) = torch.autograd.grad(cut.membrane[2].sum(), x)
    assert g_cut[0].item() == 0.0


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
    out = biology.izhikevich(torch.full((1000, 1), 10.0), *biology.IZHIKEVICH_PATTERNS["regular spiking"])
    assert 5 < out.spikes.sum() < 100
    assert out.membrane.max() <= 30.0


def test_izhikevich_starts_at_minus_65_with_u_equal_b_v():
    # v(0) = -65 mV and u(0) = b v(0) = -13 for b = 0.2, whatever c is (Izhikevich's own code).
    # First Euler step with no input: dv = 0.04 * 65^2 - 5 * 65 + 140 + 13 = -3, so v = -65 - 0.5 * 3
    a, b, c, d = biology.IZHIKEVICH_PATTERNS["chattering"]
    out = biology.izhikevich(torch.zeros(1, 1, dtype=torch.float64), a, b, c, d, dt=0.5)
    assert out.membrane.item() == pytest.approx(-66.5)


@pytest.mark.parametrize("pattern", sorted(biology.IZHIKEVICH_PATTERNS))
def test_izhikevich_rests_without_input(pattern):
    # With no input every pattern settles at its stable rest and never fires. For chattering (b = 0.2,
    # c = -50) the rest is v = -70 mV; started at v = c, u = b c (an unstable fixed point) it would sit at -50 mV.
    a, b, c, d = biology.IZHIKEVICH_PATTERNS[pattern]
    out = biology.izhikevich(torch.zeros(1500, 1, dtype=torch.float64), a, b, c, d)  # 750 ms
    assert out.spikes.sum() == 0
    # rest: 0.04 v^2 + (5 - b) v + 140 = 0, the lower root
    rest = (-(5 - b) - math.sqrt((5 - b) ** 2 - 4 * 0.04 * 140)) / (2 * 0.04)
    assert out.membrane[-1].item() == pytest.approx(rest, abs=0.05)
    assert out.membrane.max() < -60.0


def test_hodgkin_huxley_rest_and_spike():
    rest = biology.hodgkin_huxley(torch.zeros(2000, 1))
    assert abs(rest.membrane[-1].item() + 65.0) < 1.0 and rest.spikes.sum() == 0
    driven = biology.hodgkin_huxley(torch.full((3000, 1), 10.0))
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
