import pytest
import torch
from torch import nn

from snncomp import encoding, energy, metrics, models


def test_synops_on_a_hand_worked_linear_layer():
    # 3 inputs -> 2 outputs, one zero weight. Input spikes [1, 0, 1] at T=2, B=1.
    fc = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]]))
    x = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]])  # [T*B, 3]
    ops = metrics.synops(fc, x)[""]
    assert ops.dense == 2 * 2 * 3  # steps x outputs x inputs
    # active inputs 0 and 2: output 0 uses w00 (w02 = 0) -> 1; output 1 uses w10, w12 -> 2; per step 3
    assert ops.acs == 2 * 3 and ops.macs == 0


def test_synops_on_a_hand_worked_conv_layer():
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.weight[0, 0, 0, 0] = 0.0
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 0.5  # one analog, non-binary input in the centre
    ops = metrics.synops(conv, x)[""]
    assert ops.dense == 9 * 9  # 9 outputs x fan-in 9
    # the centre pixel reaches all 9 outputs, through every kernel position but the zero one -> 8
    assert ops.macs == 8 and ops.acs == 0


def test_measure_counts_spikes_and_sparsity():
    m = models.mlp_snn(4, (3,), 2, seed=0)
    with torch.no_grad():
        m.blocks[0].fc.weight.fill_(1.0)
        m.blocks[0].fc.bias.zero_()
        m.head.weight[0, 0] = 0.0
    x = torch.tensor([[0.9, 0.9, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])  # analog; sample 0 drives all neurons to spike
    r = metrics.measure(m, x, encoding.Direct(2))
    # sample 0: H = 1.8 >= 1 at both steps for 3 neurons -> 6 spikes; sample 1: none. Per sample: 3
    assert r.spikes_per_sample == 3.0
    assert r.firing_rates["blocks.0.neuron"] == pytest.approx(6 / 12)
    assert r.activation_sparsity == pytest.approx(0.5)
    assert r.connection_sparsity == pytest.approx(1 / (12 + 6))
    # first layer: analog input, computed once (direct input shortcut) -> 2 active inputs x 3 = 6 MACs / 2 samples
    assert r.effective_macs == pytest.approx(3.0)
    # head: 2 steps x 3 spiking inputs x 2 outputs minus the zero weight (2 steps) = 10 ACs for sample 0 -> 5
    assert r.effective_acs == pytest.approx(5.0)
    assert r.params == 4 * 3 + 3 + 3 * 2 + 2
    assert r.footprint_bytes == 4 * (r.params + 2 * 3)  # + tau and threshold buffers
    assert r.deployed_bits == 8 * r.footprint_bytes


def test_deployed_bits_override():
    m = nn.Linear(10, 10)
    m.weight_bits = 4
    assert metrics.deployed_bits(m) == 100 * 4 + 10 * 32


def test_energy_arithmetic():
    r = metrics.Report(params=0, footprint_bytes=0, deployed_bits=0, connection_sparsity=0, activation_sparsity=0,
                       dense_synops=1000.0, effective_macs=100.0, effective_acs=500.0, spikes_per_sample=0)
    e = energy.estimate(r, "fp32")
    assert e.mac_pj == pytest.approx(460.0) and e.ac_pj == pytest.approx(450.0) and e.total_pj == pytest.approx(910.0)
    assert energy.ann_energy(r, "fp32").total_pj == pytest.approx(4600.0)
    assert energy.ann_energy(r, "int8", skip_zeros=True).total_pj == pytest.approx(600 * 0.23)
    assert energy.estimate(r, "int8").total_pj == pytest.approx(100 * 0.23 + 500 * 0.03)
    with pytest.raises(KeyError, match="unknown energy regime"):
        energy.estimate(r, "fp8")
