import pytest
import torch
from torch import nn

from snncomp import energy, metrics, models
from snncomp.data import encoding


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
    # real connections only: 4 corner outputs see 4 in-bounds taps, 4 edge outputs 6, the centre 9 -> 49
    # (not 9 outputs x 9 taps = 81: the other 32 taps fall on zero padding and connect to nothing)
    assert ops.dense == 4 * 4 + 4 * 6 + 9 == 49
    # the centre pixel reaches all 9 outputs, through every kernel position but the zero one -> 8
    assert ops.macs == 8 and ops.acs == 0


def test_effective_equals_dense_when_nothing_is_zero():
    # all inputs and weights non-zero: every real connection is effective, so effective == dense
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(0.5)
    ops = metrics.synops(conv, torch.full((1, 1, 3, 3), 0.7))[""]
    assert ops.macs == ops.dense == 49


@pytest.mark.parametrize("kw", [dict(padding=1), dict(padding=2, stride=2), dict(padding=1, groups=2),
                                dict(padding=2, dilation=2), dict(padding=1, padding_mode="reflect")])
def test_dense_conv_counts_real_taps(kw):
    # dense = every effective connection when inputs and weights are all non-zero, for any stride, groups,
    # dilation; with reflect padding the padded taps copy real inputs, so they are connections too
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, bias=False, **kw)
    with torch.no_grad():
        conv.weight.copy_(torch.rand_like(conv.weight) + 0.1)
    x = torch.rand(2, 4, 7, 6) + 0.1
    ops = metrics.synops(conv, x)[""]
    out = conv(x)
    fan_in = conv.weight[0].numel()
    assert ops.macs == ops.dense
    if kw.get("padding_mode") == "reflect":
        assert ops.dense == out.numel() * fan_in
    else:
        assert ops.dense < out.numel() * fan_in  # some taps fall on the zero padding


def test_ternary_inputs_are_accumulates():
    # inputs in {-1, 0, 1} need only additions and subtractions: ACs (as in NeuroBench)
    fc = nn.Linear(3, 2, bias=False)
    ops = metrics.synops(fc, torch.tensor([[1.0, -1.0, 0.0]]))[""]
    assert ops.acs == 4 and ops.macs == 0


def test_baseline_dense_counts():
    # conv SNN, direct input, T = 4: conv1 once (28x28, 3x3, padding 1: 82^2 = 6724 real taps, not 784 x 9),
    # conv2 at every step (14x14: 40^2 = 1600 real taps, not 196 x 9), head at every step
    r = metrics.measure(models.conv_snn(seed=0), torch.rand(2, 1, 28, 28), encoding.Direct(4))
    assert r.layers["blocks.0.conv"].dense == 6724 * 1 * 16
    assert r.layers["blocks.1.conv"].dense == 4 * 1600 * 16 * 32
    assert r.layers["head"].dense == 4 * 32 * 7 * 7 * 10
    assert r.dense_synops == 3_447_104
    assert r.neuron_updates == 4 * (16 * 28 * 28 + 32 * 14 * 14)


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
    assert r.neuron_updates == 3 * 2  # 3 neurons x 2 steps, per sample


def test_ann_activation_sparsity_counts_relu_zeros():
    m = models.mlp_ann(4, (3,), 2, seed=0)
    with torch.no_grad():
        m.blocks[0].fc.weight.copy_(torch.tensor([[1.0, 1.0, 0.0, 0.0], [-1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]))
        m.blocks[0].fc.bias.zero_()
    x = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.8, 0.0]])
    r = metrics.measure(m, x, encoding.Direct(1))
    # hidden ReLU outputs: sample 0 -> [1, 0, 0], sample 1 -> [0, 0, 0.8]: 4 zeros of 6
    assert r.activation_sparsity == pytest.approx(4 / 6)
    assert r.spikes_per_sample == 0 and r.firing_rates == {} and r.neuron_updates == 0
    # the head then sees non-binary inputs: one non-zero input per sample x 2 outputs = 2 effective MACs
    assert r.layers["head"].macs == pytest.approx(2.0)
    # the baseline conv ANN reports its ReLU zeros too (it reported 0 before)
    torch.manual_seed(0)
    r = metrics.measure(models.conv_ann(seed=0), torch.rand(4, 1, 28, 28), encoding.Direct(1))
    assert 0.2 < r.activation_sparsity < 0.9


def test_deployed_bits_override():
    m = nn.Linear(10, 10)
    m.weight_bits = 4
    assert metrics.deployed_bits(m) == 100 * 4 + 10 * 32


def _report(**kw):
    base = dict(params=0, footprint_bytes=0, deployed_bits=0, connection_sparsity=0, activation_sparsity=0,
                dense_synops=0.0, effective_macs=0.0, effective_acs=0.0, spikes_per_sample=0)
    return metrics.Report(**{**base, **kw})


def test_energy_arithmetic():
    r = _report(dense_synops=1000.0, effective_macs=100.0, effective_acs=500.0)
    e = energy.estimate(r, "fp32")
    assert e.mac_pj == pytest.approx(460.0) and e.ac_pj == pytest.approx(450.0) and e.total_pj == pytest.approx(910.0)
    assert energy.ann_energy(r, "fp32").total_pj == pytest.approx(4600.0)
    assert energy.ann_energy(r, "int8", skip_zeros=True).total_pj == pytest.approx(600 * 0.23)
    assert energy.estimate(r, "int8").total_pj == pytest.approx(100 * 0.23 + 500 * 0.03)
    with pytest.raises(KeyError, match="unknown energy regime"):
        energy.estimate(r, "fp8")


def test_energy_neuron_updates_and_comparison():
    snn = _report(dense_synops=1000.0, effective_macs=100.0, effective_acs=500.0, neuron_updates=50.0)
    ann = _report(dense_synops=1000.0, effective_macs=400.0)
    e = energy.estimate(snn, "fp32")
    assert e.total_pj == pytest.approx(910.0)  # synaptic estimate unchanged by the updates
    assert e.neuron_updates == 50.0
    assert e.update_mac_pj == pytest.approx(50 * 4.6) and e.update_ac_pj == pytest.approx(50 * 0.9)
    assert e.with_updates_pj("mac") == pytest.approx(910 + 230) and e.with_updates_pj("ac") == pytest.approx(955)
    assert energy.ann_energy(ann, "fp32").update_mac_pj == 0.0
    c = energy.compare(snn, ann, "fp32")
    assert c.ann_pj("dense") == pytest.approx(4600.0) and c.ann_pj("zero_skipping") == pytest.approx(1840.0)
    expected = {("none", "dense"): 910 / 4600, ("none", "zero_skipping"): 910 / 1840,
                ("mac", "dense"): 1140 / 4600, ("mac", "zero_skipping"): 1140 / 1840,
                ("ac", "dense"): 955 / 4600, ("ac", "zero_skipping"): 955 / 1840}
    assert c.ratios() == pytest.approx(expected)
    with pytest.raises(ValueError, match="'mac' or 'ac'"):
        e.with_updates_pj("shift")
    with pytest.raises(ValueError, match="accounting"):
        c.ratio(None, "sparse")


# ----------------------------------------------------------------------------- chip energy profiles


def test_chip_profiles_load_and_carry_their_sources():
    from snncomp.energy import chips

    ps = chips.profiles()
    assert {"loihi", "truenorth", "odin", "darwin3"} <= set(ps)
    assert ps["truenorth"].scope == "all-in" and ps["truenorth"].e_synop == 26.0
    assert ps["loihi"].evidence == "simulated" and ps["truenorth"].evidence == "measured"
    for p in ps.values():
        assert p.source.get("key") or p.source.get("note")
        if p.published:
            assert p.source["key"] and p.source["where"] and p.e_synop > 0
    assert not ps["loihi2"].published and chips.price(_report(effective_acs=10.0), "loihi2") is None
    with pytest.raises(ValueError, match="publishes no per-operation energy"):
        energy.price(_report(effective_acs=10.0), "loihi2")


def test_one_table_of_horowitz_figures():
    """The 45 nm figures are written once: the compute regimes, the memory model's integer add and
    multiply and `energy.price(.., "45nm-...")` all read `HOROWITZ_45NM`; no chip profile repeats them."""
    from snncomp.energy import chips, compute, memory

    for regime, (add, mul) in energy.HOROWITZ_45NM.items():
        assert energy.REGIMES[regime].ac_pj == add and energy.REGIMES[regime].mac_pj == pytest.approx(add + mul)
    assert (memory.E_ADD_PJ, memory.E_MUL_PJ) == energy.HOROWITZ_45NM["int32"]
    assert all(p.source.get("key") != "horowitz2014computings" for p in chips.profiles().values())
    assert compute.EVIDENCE.startswith("estimated")
    r = _report(effective_macs=1000.0, effective_acs=5000.0, neuron_updates=300.0, spikes_per_sample=40.0)
    priced = energy.price(r, "45nm-fp32")
    assert priced.total_pj == pytest.approx(energy.estimate(r, "fp32").total_pj)
    assert priced.evidence == compute.EVIDENCE and not priced.macs_as_synops
    assert any("neuron state updates" in t for t in priced.not_priced)
    assert energy.price(r, "45nm-int8").total_pj == pytest.approx(energy.estimate(r, "int8").total_pj)


def test_loihi_prices_its_published_neuron_update_and_spike_terms():
    """Loihi's Table 2 gives 81 pJ per active and 52 pJ per idle neuron update and 1.7 pJ per spike within
    a tile: all three are priced (they were left out before, so Loihi totals were 35-53% low)."""
    r = _report(effective_macs=0.0, effective_acs=1000.0, neuron_updates=50.0, active_neuron_updates=20.0,
                spikes_per_sample=7.0)
    lo = energy.price(r, "loihi")
    assert lo.terms == pytest.approx({"synaptic": 23.6 * 1000, "neuron_updates_active": 81.0 * 20,
                                      "neuron_updates_idle": 52.0 * 30, "spikes": 1.7 * 7})
    assert lo.total_pj == pytest.approx(23600 + 1620 + 1560 + 11.9)
    assert any("hops" in t for t in lo.not_priced) and any("static" in t for t in lo.not_priced)
    assert any("neuron updates" in t for t in lo.priced) and lo.scope == "per-term"


def test_chip_pricing_per_term_and_all_in():
    from snncomp.energy import chips

    r = _report(effective_macs=100.0, effective_acs=1000.0, neuron_updates=50.0, spikes_per_sample=7.0)
    tn = energy.price(r, "truenorth")  # all-in: one term, MACs priced as synaptic events, nothing added
    assert tn.terms == {"synaptic": pytest.approx(1100 * 26.0)} and tn.not_priced == () and tn.macs_as_synops
    assert tn.scope == "all-in" and "inside the figure" in tn.priced[0]
    p = chips.Profile("toy", "toy", "1 nm", "per-term", "derived", "primary", {"key": "k", "where": "p. 1"},
                      e_synop=2.0, e_neuron_update=3.0, e_spike=5.0)
    toy = chips.price(r, p)  # one update figure: every update priced at it
    assert toy.terms == {"synaptic": 2.0 * 1100, "neuron_updates": 3.0 * 50, "spikes": 5.0 * 7}
    assert toy.total_pj == 2200 + 150 + 35
    od = energy.price(r, "odin")
    assert set(od.terms) == {"synaptic"} and any("neuron updates" in t for t in od.not_priced)
    assert set(energy.price_all(r)) == {"45nm-fp32"} | {n for n, q in chips.profiles().items() if q.published}
    with pytest.raises(TypeError, match="metrics.Report"):
        energy.price({"effective_acs": 1.0}, "loihi")


def test_measure_splits_active_and_idle_neuron_updates():
    """An update is active when the neuron's input current is non-zero or it spikes in that step."""
    from snncomp import neurons

    fc = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 0.3], [0.0, 0.0]]))
    model = nn.Sequential(fc, neurons.IF())
    x = torch.tensor([[1.0, 0.0]])  # one sample; Direct(3): the same input at 3 steps
    r = metrics.measure(model, x, encoding.Direct(3))
    assert r.neuron_updates == 3 * 3
    assert r.active_neuron_updates == 3  # only neuron 0 gets current (2.0); neurons 1, 2 get exactly 0
    x = torch.tensor([[1.0, 1.0]])
    assert metrics.measure(model, x, encoding.Direct(3)).active_neuron_updates == 6  # neuron 1 gets 0.3 too


@pytest.mark.parametrize("body, message", [
    ('[bad]\nlabel = "x"\nnode = "n"\nscope = "per-term"\nevidence = "measured"\nconfirmed = "primary"\n'
     'e_synop = 1.0\n', "profile 'bad', field 'source'"),
    ('[neg]\nlabel = "x"\nnode = "n"\nscope = "per-term"\nevidence = "measured"\nconfirmed = "primary"\n'
     'e_synop = -1.0\nsource = { key = "k", where = "p. 1" }\n', "profile 'neg', field 'e_synop'"),
    ('[odd]\nlabel = "x"\nnode = "n"\nscope = "most"\nevidence = "measured"\nconfirmed = "primary"\n'
     'source = { note = "none" }\n', "profile 'odd', field 'scope'"),
    ('[typo]\nlabel = "x"\nnode = "n"\nscope = "per-term"\nevidence = "measured"\nconfirmed = "primary"\n'
     'e_synapse = 1.0\nsource = { note = "none" }\n', "profile 'typo', field 'e_synapse'"),
    ('[allin]\nlabel = "x"\nnode = "n"\nscope = "all-in"\nevidence = "measured"\nconfirmed = "primary"\n'
     'e_synop = 1.0\ne_spike = 2.0\nsource = { key = "k", where = "p. 1" }\n', "profile 'allin', field 'scope'"),
])
def test_bad_profiles_are_rejected_at_load_time(tmp_path, body, message):
    from snncomp.energy import chips

    f = tmp_path / "profiles.toml"
    f.write_text(body)
    with pytest.raises(chips.ProfileError, match=message) as e:
        chips.load(f)
    assert str(f) in str(e.value)


def test_unknown_profile_lists_the_known_ones():
    from snncomp.energy import chips

    with pytest.raises(KeyError, match="known profiles: loihi, truenorth"):
        chips.get("loihi3")
    with pytest.raises(KeyError, match="known models: 45nm-fp32.*loihi.*memory"):
        energy.price(_report(), "loihi3")


def test_profile_sources_are_in_the_bibliography():
    from snncomp.energy import chips
    from snncomp.kb import bib

    from pathlib import Path

    keys = set(bib.load(Path(__file__).resolve().parents[1] / "references.bib"))
    for p in chips.profiles().values():
        if p.source.get("key"):
            assert p.source["key"] in keys, p.name
