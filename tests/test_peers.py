"""Bit-identical spikes against snnTorch and SpikingJelly (survey brief, section 3), when installed."""

import pytest
import torch

from snncomp import neurons
from snncomp.surrogate import ATan


@pytest.fixture
def x():
    torch.manual_seed(0)
    return torch.randn(25, 16, 64) * 0.8 + 0.3  # [T, B, N]


@pytest.mark.parametrize("tau", [2.0, 4.0])
def test_identical_to_snntorch(x, tau):
    snn = pytest.importorskip("snntorch")
    leaky = snn.Leaky(beta=1 - 1 / tau, threshold=1.0, reset_mechanism="zero")
    mem = torch.zeros_like(x[0])
    spikes = []
    for t in range(x.shape[0]):
        s, mem = leaky(x[t], mem)
        spikes.append(s)
    ours = neurons.lif(x, tau, 1.0, reset="hard", surrogate=ATan()).spikes
    assert torch.equal(torch.stack(spikes), ours)
    assert ours.sum() > 0


@pytest.mark.parametrize("tau", [2.0, 4.0])
def test_identical_to_spikingjelly(x, tau):
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import functional, neuron

    node = neuron.LIFNode(tau=tau, decay_input=False, v_threshold=1.0, v_reset=0.0, detach_reset=True, step_mode="m")
    functional.reset_net(node)
    theirs = node(x)
    ours = neurons.lif(x, tau, 1.0, reset="hard").spikes
    assert torch.equal(theirs, ours)
    # membrane after reset agrees too
    assert torch.allclose(node.v, neurons.lif(x, tau).membrane[-1])
