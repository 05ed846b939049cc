"""The memory-inclusive model (`snncomp.energy.memory`) against SpikingJelly's `LemaireEnergyProfiler`
on the baseline architecture (conv SNN) and its ANN, term by term. Counting needs no training: the
networks are seeded and untrained, so no test waits for a baseline to train on a cold cache."""

import copy
import warnings

import pytest
import torch

from snncomp import data, energy, metrics, models, neurons
from snncomp.data import encoding
from snncomp.energy import memory as memory_energy
from snncomp.energy.memory import memory_pj_per_byte

N = 3  # images; SpikingJelly sizes its buffers for the whole batch it sees, so it runs one image at a time


@pytest.fixture(scope="module")
def images():
    return data.mnist5k().test_x[:N]


def _spikingjelly(model, encoder, x):
    """SpikingJelly's Lemaire report summed over images fed one by one, with our LIF neurons swapped for
    its `LIFNode` (hard reset to 0, input not decayed: the same neuron, checked on the logits)."""
    sj = pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import functional, neuron
    from spikingjelly.activation_based.op_counter import LemaireEnergyConfig, LemaireEnergyProfiler

    twin = copy.deepcopy(model).eval()
    for parent in list(twin.modules()):
        for name, child in parent.named_children():
            if isinstance(child, neurons.LIF):
                tau = child.tau.flatten()
                assert child.reset == "hard" and child.v_reset == 0.0 and bool((tau == tau[0]).all())
                setattr(parent, name, neuron.LIFNode(tau=float(child.tau.flatten()[0]), decay_input=False,
                                                     v_threshold=float(child.threshold.flatten()[0]), v_reset=0.0,
                                                     detach_reset=True, step_mode="m"))
    assert sj is not None
    totals, breakdown = {}, {}
    gen = torch.Generator().manual_seed(1234)
    for i in range(x.shape[0]):
        xb = encoder(x[i:i + 1], gen)
        functional.reset_net(twin)
        prof = LemaireEnergyProfiler(config=LemaireEnergyConfig(strict=False))  # BN and pooling lie outside the model
        prof.bind_model(twin)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            with prof:
                assert torch.allclose(twin(xb), model.eval()(xb), atol=1e-5)
        rep = prof.get_report()
        for k, v in rep.counts.items():
            totals[k] = totals.get(k, 0) + v
        for k, v in rep.breakdown_pj.items():
            breakdown[k] = breakdown.get(k, 0.0) + v
    return totals, breakdown


def _seeded(name):
    """The baseline's architecture and encoder, seeded, untrained."""
    if name == "conv-ann":
        return models.conv_ann(seed=0), encoding.Direct(1)
    return models.conv_snn(seed=0), encoding.Direct(4)


@pytest.mark.parametrize("name", ["conv-direct4", "conv-ann"])
def test_terms_match_spikingjelly(images, name):
    model, encoder = _seeded(name)
    ours = memory_energy.measure(model, images, encoder, batch_size=1)
    counts, pj = _spikingjelly(model, encoder, images)
    # operation and addressing counts: equal
    for key in ("mac", "ac", "acc_addr", "mac_addr"):
        assert ours.ops[key] == counts[key], key
    # bytes moved, per access kind: equal
    for kind in memory_energy.ACCESSES:
        assert ours.bytes(kind) == counts[f"{kind}_bytes"], kind
    mine = ours.breakdown_pj()
    for key in ("ops", "addressing", "params"):
        assert mine[key] == pytest.approx(pj[f"{key}_pj"], rel=1e-9), key
    assert mine["inout"] == pytest.approx(pj["inout_pj"], rel=1e-9)
    # potentials: SpikingJelly sizes the potential buffer of a spike-fed conv or linear layer for all T steps
    # it sees folded into the batch (nn.Conv2d has no step_mode); we size it for one step. Priced at T times
    # our capacity, our accesses give its energy exactly.
    T = encoder(images[:1]).shape[0]
    theirs_like = sum(b * memory_pj_per_byte(c * (T if by == "synapse" else 1))
                      for k, b, c, by in ours.accesses if k in ("read_potential", "write_potential"))
    assert theirs_like == pytest.approx(pj["potential_pj"], rel=1e-9)
    # the paper's count theta_in C_out k^2 includes taps on the zero padding: at least metrics' real connections
    r = metrics.measure(model, images, encoder)
    assert counts["synop"] >= r.effective_acs * N
    if name == "conv-ann":  # no spike-fed layers: nothing to explain
        assert mine["potential"] == pytest.approx(pj["potential_pj"], rel=1e-9)
    else:  # a larger buffer costs more per byte: ours is the lower
        assert mine["potential"] < pj["potential_pj"]


def test_baseline_prices_every_term(images):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the thread count keys the cached weights: one thread loads the notebooks' baselines
    try:
        got = memory_energy.baseline(images)
    finally:
        torch.set_num_threads(before)
    for name, terms in got.items():
        assert set(terms) == {"ops", "addressing", "inout", "params", "potential", "total"}
        assert all(v >= 0 for v in terms.values()), name
        assert terms["total"] == pytest.approx(sum(v for k, v in terms.items() if k != "total"))
    assert got["conv-ann"]["addressing"] > 0 and got["conv-direct4"]["potential"] > 0


def test_memory_price_interpolates():
    assert memory_pj_per_byte(0) == 0
    assert memory_pj_per_byte(8 * 1024) == pytest.approx(2.5)
    assert memory_pj_per_byte(20 * 1024) == pytest.approx(3.75)
    assert memory_pj_per_byte(1e9) == pytest.approx(25.0)


def test_leak_multiply_follows_the_neuron_not_its_class():
    """A neuron is charged the leak multiply only when it leaks: S4NN's first-spike IF neuron (a
    non-leaky neuron that is not an `IF`) pays none, a LIF pays one per neuron per step."""
    from torch import nn

    from snncomp.data.encoding import Direct
    from snncomp.spike_reduction.temporal_coding import FirstSpikeIF

    assert neurons.LIF.leaky and not neurons.IF.leaky and not FirstSpikeIF.leaky
    x = torch.rand(3, 1, 4, 4)
    macs = {}
    for name, neuron in (("lif", neurons.LIF()), ("if", neurons.IF()), ("first-spike-if", FirstSpikeIF(0.5))):
        model = nn.Sequential(nn.Flatten(2), nn.Linear(16, 5, bias=False), neuron)
        counts = memory_energy.measure(model, x, Direct(4), batch_size=3)
        macs[name] = counts.ops["mac"]
    assert macs["if"] == macs["first-spike-if"] and macs["lif"] - macs["if"] == 3 * 4 * 5


def test_memory_model_priced_through_the_one_call():
    model, encoder = _seeded("conv-direct4")
    images = data.mnist5k().test_x[:4]
    counts = memory_energy.measure(model, images, encoder)
    priced = energy.price(counts, "memory")
    assert priced.total_pj == pytest.approx(counts.per_sample_pj()["total"])
    assert set(priced.terms) == {"ops", "addressing", "inout", "params", "potential"}
    assert priced.priced and priced.not_priced and priced.scope == "per-term"
    with pytest.raises(TypeError, match="energy.memory.measure"):
        energy.price(metrics.Report(0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), "memory")
