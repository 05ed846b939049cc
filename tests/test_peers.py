"""Cross-checks against peer libraries, each skipped when the peer is not installed: bit-identical LIF
spikes against snnTorch and SpikingJelly (survey brief, section 3), PLIF against SpikingJelly, metrics
against NeuroBench (section 4), magnitude masks against torch.nn.utils.prune."""

import pytest
import torch

from snncomp import metrics, models, neurons
from snncomp.data import encoding
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


# ----------------------------------------------------------------------------- PLIF against SpikingJelly


@pytest.mark.parametrize("tau", [2.0, 3.0])
@pytest.mark.parametrize("v_reset", [0.0, -0.5, None])
@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("decay_input", [True, False])
def test_plif_matches_spikingjelly(tau, v_reset, detach_reset, decay_input):
    # SpikingJelly's ParametricLIFNode (Fang et al.'s own library): H = V + (X - (V - V_reset)) / tau with
    # decay_input, fires on H >= theta, V[-1] = V_reset; v_reset=None is its soft reset (leak towards 0).
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import functional, neuron
    from spikingjelly.activation_based import surrogate as sj_surrogate

    torch.manual_seed(0)
    x = (torch.randn(25, 16, 64) * 0.8 + 0.6).double()
    node = neuron.ParametricLIFNode(init_tau=tau, decay_input=decay_input, v_threshold=1.0, v_reset=v_reset,
                                    detach_reset=detach_reset, surrogate_function=sj_surrogate.ATan(alpha=2.0),
                                    step_mode="m", store_v_seq=True).double()
    functional.reset_net(node)
    x_theirs = x.clone().requires_grad_(True)
    s_theirs = node(x_theirs)
    v_theirs = node.v_seq
    ours = neurons.PLIF(tau_init=tau, threshold=1.0, reset="soft" if v_reset is None else "hard",
                        v_reset=v_reset or 0.0, decay_input=decay_input, detach_reset=detach_reset,
                        surrogate=ATan(alpha=2.0)).double()
    x_ours = x.clone().requires_grad_(True)
    out = ours.run(x_ours)
    assert torch.equal(out.spikes, s_theirs)
    assert 0 < out.spikes.mean() < 0.9
    assert torch.allclose(out.membrane, v_theirs, atol=1e-12)
    # gradients of the same loss, with respect to the input and to w
    w1, w2 = torch.randn_like(x), torch.randn_like(x)
    g_theirs = torch.autograd.grad((s_theirs * w1).sum() + (v_theirs * w2).sum(), [x_theirs, node.w])
    g_ours = torch.autograd.grad((out.spikes * w1).sum() + (out.membrane * w2).sum(), [x_ours, ours.w])
    assert torch.allclose(g_ours[0], g_theirs[0], atol=1e-10)
    assert torch.allclose(g_ours[1], g_theirs[1], rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------------------- metrics against NeuroBench

SAMPLES, BATCH = 32, 16


@pytest.fixture(scope="module")
def images():
    pytest.importorskip("neurobench")
    from snncomp import data

    split = data.mnist5k()
    return split.test_x[:SAMPLES], split.test_y[:SAMPLES]


def _thin(model, fraction=0.3, seed=0):
    """Zero a random `fraction` of every conv/linear weight, so sparsity and skipped weights are exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.mul_((torch.rand(m.weight.shape, generator=g) >= fraction).to(m.weight.dtype))
    return model


def _neurobench(model, encoder, x, y, seed=1234):
    """Run NeuroBench's metrics on one of our models. NeuroBench wraps a model in a `NeuroBenchModel`
    whose `__call__` maps a batch to predictions; ours encodes the batch `[B, ...]` into `[T, B, ...]` with
    the same generator as `metrics.measure`, so both see the same rate-coded spikes. Our spiking neurons
    are registered as activation modules (NeuroBench knows nn.ReLU, nn.Sigmoid and snnTorch's neurons)."""
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint, ParameterCount
    from neurobench.metrics.workload import ActivationSparsity, MembraneUpdates, SynapticOperations
    from neurobench.models import NeuroBenchModel
    from torch.utils.data import DataLoader, TensorDataset

    from snncomp.neurons import SpikingNeuron

    class Wrapped(NeuroBenchModel):
        def __init__(self, net):
            super().__init__()
            self.net = net.eval()
            self.generator = torch.Generator().manual_seed(seed)
            self.add_activation_module(SpikingNeuron)

        def __call__(self, batch):
            return self.net(encoder(batch, self.generator))

        def __net__(self):
            return self.net

    bench = Benchmark(Wrapped(model), DataLoader(TensorDataset(x, y), batch_size=BATCH), [], [],
                      [[Footprint, ConnectionSparsity, ParameterCount],
                       [SynapticOperations, ActivationSparsity, MembraneUpdates]])
    with torch.no_grad():
        return bench.run(quiet=True)


CASES = {
    "conv SNN, direct": ("conv_snn", lambda: encoding.Direct(4)),
    "conv SNN, rate": ("conv_snn", lambda: encoding.Rate(4)),
    "conv ANN, direct": ("conv_ann", lambda: encoding.Direct(1)),
    "conv ANN, rate": ("conv_ann", lambda: encoding.Rate(1)),
    "MLP SNN, direct": ("mlp_snn", lambda: encoding.Direct(4)),
    "MLP SNN, rate": ("mlp_snn", lambda: encoding.Rate(4)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_metrics_equal_neurobench(images, case):
    pytest.importorskip("neurobench")
    build, make_encoder = CASES[case]
    model = _thin(getattr(models, build)(seed=0))
    enc = make_encoder()
    x, y = images
    ours = metrics.measure(model, x, enc, y, batch_size=BATCH)
    theirs = _neurobench(model, enc, x, y)
    ops = theirs["SynapticOperations"]
    # operation counts: exact integers on both sides (per sample, so multiples of 1/32)
    assert ours.dense_synops == ops["Dense"]
    assert ours.effective_macs == ops["Effective_MACs"]
    assert ours.effective_acs == ops["Effective_ACs"]
    assert ours.effective_macs + ours.effective_acs <= ours.dense_synops
    assert ours.effective_macs + ours.effective_acs > 0
    # NeuroBench averages the activation sparsity of each batch weighted by its size; with a constant
    # number of activations per sample that is our pooled fraction, up to rounding
    assert ours.activation_sparsity == pytest.approx(theirs["ActivationSparsity"], rel=1e-12)
    assert 0 < ours.activation_sparsity < 1
    assert ours.params == theirs["ParameterCount"]
    assert ours.footprint_bytes == theirs["Footprint"]
    # NeuroBench rounds connection sparsity to 4 decimals; we keep the exact fraction
    assert theirs["ConnectionSparsity"] == round(ours.connection_sparsity, 4)
    assert ours.connection_sparsity == pytest.approx(0.3, abs=0.01)
    # NeuroBench's MembraneUpdates reads snnTorch's `mem` attribute, so it sees no state in our neurons
    # (nor in ReLU) and reports 0; we count one update per neuron per step (an upper bound on its count,
    # which skips neurons whose potential did not change)
    assert theirs["MembraneUpdates"] == 0
    n_neurons = {"conv_snn": 16 * 28 * 28 + 32 * 14 * 14, "conv_ann": 0, "mlp_snn": 256}[build]
    assert ours.neuron_updates == n_neurons * enc.T


def test_magnitude_masks_equal_torch_prune():
    # our global magnitude masks against torch.nn.utils.prune.global_unstructured with L1Unstructured
    import copy

    from torch.nn.utils import prune

    from snncomp import pruning  # imported here: the pruning package is being reorganised

    model = models.conv_snn(seed=0)
    layers = pruning.prunable_layers(model)
    for sparsity in (0.3, 0.75, 0.9):
        ours = pruning.global_masks(pruning.magnitude_scores(layers), sparsity)
        reference = copy.deepcopy(model)
        ref_layers = pruning.prunable_layers(reference)
        prune.global_unstructured([(m, "weight") for m in ref_layers.values()],
                                  pruning_method=prune.L1Unstructured, amount=sparsity)
        assert ours.keys() == ref_layers.keys()
        for name, m in ref_layers.items():
            assert torch.equal(ours[name].bool(), m.weight_mask.bool()), (sparsity, name)
        total = sum(mask.numel() for mask in ours.values())
        assert sum(int((mask == 0).sum()) for mask in ours.values()) == round(sparsity * total)
