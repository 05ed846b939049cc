"""NIR in and out (`snncomp.nir_io`): our own round trip, the round trips through snnTorch, SpikingJelly and
Norse, the known traps with their numbers, and `snncomp compress --nir`.

Spikes are compared layer by layer and step by step, exactly (`torch.equal`). The peers run step by step
with their own state; our models run on the whole sequence `[T, B, ...]`.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from snncomp import models, nir_io
from snncomp.compress import bake
from snncomp.neurons import LIF, SpikingNeuron
from snncomp.quantization.quantizers import FixedPointQuantize, add_quantizer

nir = pytest.importorskip("nir")

T, B = 6, 32


def _inputs(shape=(64,), seed=0, p=0.3) -> torch.Tensor:
    """Binary input spikes `[T, B, *shape]` (rate-coded), so weighted sums land on a weight grid."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((T, B, *shape), generator=g) < p).float()


def _ours(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Spikes `[T, B, ...]` of every spiking neuron of our model, in order."""
    out: list[torch.Tensor] = []
    hs = [m.register_forward_hook(lambda m, i, o: out.append(o.detach().clone()))
          for m in model.modules() if isinstance(m, SpikingNeuron)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hs:
            h.remove()
    return out


def _stepwise(model: nn.Module, x: torch.Tensor, kinds: tuple, step, pick=lambda o: o) -> list[torch.Tensor]:
    """Spikes of the peer's neuron modules (`kinds`), one step at a time through `step(model, x_t, state)`,
    stacked over time into `[T, B, ...]`."""
    per: dict[int, list[torch.Tensor]] = {}
    mods = [m for m in model.modules() if isinstance(m, kinds)]
    hs = [m.register_forward_hook(lambda m, i, o, k=k: per.setdefault(k, []).append(pick(o).detach().clone()))
          for k, m in enumerate(mods)]
    state = None
    try:
        with torch.no_grad():
            for t in range(x.shape[0]):
                state = step(model, x[t], state)
    finally:
        for h in hs:
            h.remove()
    return [torch.stack(per[k]) for k in range(len(mods))]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b), (len(a), len(b))
    for i, (u, v) in enumerate(zip(a, b)):
        assert u.shape == v.shape, (i, u.shape, v.shape)
        assert torch.equal(u, v), f"layer {i}: {int((u != v).sum())} of {u.numel()} spikes differ"


def _count(spikes: list[torch.Tensor]) -> int:
    return int(sum(s.sum() for s in spikes))


def _mlp(neuron="lif", hidden=(32, 16), scale=4.0, seed=0, **kw) -> nn.Module:
    m = models.mlp_snn(64, hidden, 10, neuron=neuron, seed=seed, **kw)
    with torch.no_grad():
        for layer in m.modules():
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(scale)  # enough drive to spike on sparse binary inputs
    return m.eval()


def _grid(model: nn.Module, bits=4, fraction_bits=2, sparsity=0.5) -> nn.Module:
    """Magnitude-prune every weight layer to `sparsity` and put the weights (and biases) on a signed fixed-point
    grid (step 2^-fraction_bits): a pruned, 4-bit model whose sums hit the threshold exactly."""
    from snncomp.pruning.masks import global_masks, prunable_layers, set_masks

    net = copy.deepcopy(model)
    layers = prunable_layers(net)
    set_masks(layers, global_masks({n: m.weight.detach().abs() for n, m in layers.items()}, sparsity))
    step = 2.0 ** -fraction_bits
    for n, m in layers.items():
        add_quantizer(m, FixedPointQuantize(m.weight, bits, fraction_bits, where=n))
        if m.bias is not None:
            with torch.no_grad():  # integer hardware adds the bias on the same grid
                m.bias.copy_(torch.round(m.bias / step) * step)
    return net


# ----------------------------------------------------------------------------- our own round trip


@pytest.mark.parametrize("build", [
    lambda: models.conv_snn((1, 8, 8), (4, 8), seed=1),
    lambda: models.conv_snn((1, 8, 8), (4,), hidden=(16,), neuron="plif", seed=2),
    lambda: _mlp("if"),
    lambda: _mlp("lif", tau=4.0),
], ids=["conv-lif-maxpool", "conv-plif-dense", "mlp-if-soft", "mlp-lif-tau4"])
def test_round_trip_through_a_file_gives_the_same_spikes(build, tmp_path):
    from snncomp.data import encoding

    model = build().eval()
    g = torch.Generator().manual_seed(0)  # seeded: the test must not depend on the global generator
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding matters
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(1.0, 3.0, generator=g)
    shape = (1, 8, 8) if isinstance(model, models.ConvNet) else (64,)
    x = _inputs(shape, p=0.5) if shape != (64,) else _inputs()
    path = tmp_path / "m.nir"
    graph = nir_io.export(model, encoding.Rate(T), path=path)
    assert isinstance(graph, nir.NIRGraph) and path.stat().st_size > 0
    back, encoder = nir_io.load(path)
    assert encoder == encoding.Rate(T)
    assert type(back) is type(model)
    ref = nir_io.fold_batchnorm(model).eval()
    _same(_ours(ref, x), _ours(back, x))
    with torch.no_grad():
        assert torch.equal(ref(x), back(x))
    assert _count(_ours(back, x)) > 0


def test_pruned_4bit_model_keeps_its_zeros_grid_and_bits(tmp_path):
    from snncomp import evaluation

    model = _grid(_mlp("lif"))
    x = _inputs()
    nir_io.export(model, path=tmp_path / "q.nir")
    back, _ = nir_io.load(tmp_path / "q.nir")
    _same(_ours(model, x), _ours(back, x))
    baked = bake(model)
    for (n, a), (_, b) in zip(models_weights(baked), models_weights(back)):
        assert torch.equal(a, b), n
        assert torch.equal(b * 4, torch.round(b * 4)), n  # still on the 1/4 grid
    assert evaluation.weight_bits(back) == 4.0  # the width travelled in the node metadata
    assert evaluation.weight_bits(model) == 4.0


def models_weights(model: nn.Module):
    return [(n, m.weight.detach()) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def test_export_metadata_and_nodes():
    from snncomp.data import encoding

    g = nir_io.export(models.conv_snn((1, 8, 8), (4,)).eval(), encoding.Direct(4), dt=1e-3)
    kinds = [type(n).__name__ for n in g.nodes.values()]
    assert kinds == ["Input", "Conv2d", "LIF", "SumPool2d", "Threshold", "Flatten", "Affine", "Output"]
    meta = g.metadata["snncomp"]
    assert meta["dt"] == 1e-3 and meta["encoder"] == "Direct" and meta["encoder_fields"] == {"T": 4}
    lif = g.nodes["neuron0"]
    assert lif.tau.shape == (4, 8, 8)  # per neuron, the layer's full shape
    np.testing.assert_allclose(lif.tau, 2e-3)  # tau = tau_steps dt
    np.testing.assert_allclose(lif.r * 1e-3 / lif.tau, 1.0)  # unit gain
    assert np.all(lif.v_threshold < 1.0) and np.all(np.nextafter(lif.v_threshold, np.float32(2)) == 1.0)
    assert g.nodes["conv0"].metadata["snncomp"]["batchnorm_folded"]


def test_bad_inputs_are_named():
    from snncomp.quantization.quantizers import MembraneQuantizer

    with pytest.raises(TypeError, match="ConvNet or MLP"):
        nir_io.export(nn.Linear(3, 2))
    with pytest.raises(TypeError, match="spiking neurons"):
        nir_io.export(models.mlp_ann(64, (8,)))
    m = _mlp()
    m.blocks[0].neuron.membrane_quantizer = MembraneQuantizer(0.125, 4)
    with pytest.raises(ValueError, match="blocks.0.neuron has a membrane quantizer"):
        nir_io.export(m)
    with pytest.raises(ValueError, match="dt must be"):
        nir_io.export(_mlp(), dt=0)
    with pytest.raises(FileNotFoundError, match="no NIR file"):
        nir_io.load("/nonexistent/x.nir")
    g = nir_io.export(_mlp())
    with pytest.raises(ValueError, match="tau / dt = 0.002 steps is below 1"):
        nir_io.load(g, dt=1000.0)
    g2 = nir_io.export(models.conv_snn((1, 8, 8), (4,)).eval())
    g2.nodes["neuron0"].v_threshold[0, 0, 0] = 3.0
    with pytest.raises(ValueError, match="'neuron0': v_threshold differs within channel 0"):
        nir_io.load(g2)
    cuba = nir.NIRGraph.from_list(nir.Affine(np.ones((3, 2), np.float32), np.zeros(3, np.float32)),
                                  nir.CubaLIF(tau_syn=np.ones(3), tau_mem=np.ones(3), r=np.ones(3), v_leak=np.zeros(3),
                                              v_threshold=np.ones(3)))
    with pytest.raises(ValueError, match="is a NIR CubaLIF"):
        nir_io.load(cuba)


# ----------------------------------------------------------------------------- snnTorch


def _snntorch_step(model, x_t, state):
    model(x_t)


def _snntorch_reset(model):
    snn = pytest.importorskip("snntorch")
    for m in model.modules():
        if isinstance(m, snn.SpikingNeuron) and hasattr(m, "mem"):
            m.reset_mem()


def _snntorch_imported_step(model, x_t, state):
    out, state = model(x_t, state)
    return state


def _leaky(n, beta=0.5, shape=None, **kw):
    snn = pytest.importorskip("snntorch")
    shape = shape or (n,)
    # snnTorch's exporter needs beta and threshold as per-neuron tensors (see test_trap_scalar_beta)
    return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.ones(shape), init_hidden=True, **kw)


def test_snntorch_network_imports_with_identical_spikes():
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32), _leaky(32, reset_mechanism="zero"), nn.Linear(32, 16),
                        _leaky(16, beta=0.75, reset_mechanism="zero"), nn.Linear(16, 10))
    with torch.no_grad():
        net[0].weight.mul_(4)
        net[2].weight.mul_(4)
    x = _inputs()
    _snntorch_reset(net)
    theirs = _stepwise(net, x, (snn.Leaky,), _snntorch_step)
    graph = export_to_nir(net, torch.zeros(1, 64), ignore_dims=[0])
    ours, _ = nir_io.load(graph, dt=1e-4)  # snnTorch writes its time constants for dt = 1e-4
    _same(theirs, _ours(ours, x))
    assert _count(theirs) > 100


def test_snntorch_conv_network_imports_with_identical_spikes():
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), _leaky(4, shape=(4, 8, 8), reset_mechanism="zero"),
                        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 10))
    with torch.no_grad():
        net[0].weight.mul_(3)
    x = _inputs((1, 8, 8), p=0.5)
    _snntorch_reset(net)
    theirs = _stepwise(net, x, (snn.Leaky,), _snntorch_step)
    ours, _ = nir_io.load(export_to_nir(net, torch.zeros(1, 1, 8, 8), ignore_dims=[0]), dt=1e-4)
    assert isinstance(ours, models.ConvNet) and isinstance(ours.blocks[0].pool, nn.AvgPool2d)
    _same(theirs, _ours(ours, x))
    assert _count(theirs) > 100


@pytest.mark.parametrize("compressed", [False, True], ids=["float", "pruned-4bit"])
def test_snncomp_model_runs_in_snntorch_with_identical_spikes(compressed):
    snn = pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    model = _mlp("lif", scale=6.0)
    model = _grid(model) if compressed else model
    x = _inputs()
    theirs_net = import_from_nir(nir_io.export(model, dt=1e-4))
    _snntorch_reset(theirs_net)
    theirs = _stepwise(theirs_net, x, (snn.Leaky,), _snntorch_imported_step)
    _same(_ours(model, x), theirs)
    assert _count(theirs) > 100


# ----------------------------------------------------------------------------- SpikingJelly


def _sj():
    pytest.importorskip("spikingjelly")
    try:
        from spikingjelly.activation_based import functional, layer, neuron
        from spikingjelly.activation_based.nir_exchange import export_to_nir, import_from_nir
    except ImportError as exc:  # its NIR exchange needs nir and nirtorch
        pytest.skip(f"SpikingJelly's NIR exchange does not import: {exc}")
    return functional, layer, neuron, export_to_nir, import_from_nir


def test_spikingjelly_network_imports_with_identical_spikes():
    functional, layer, neuron, export_to_nir, _ = _sj()
    torch.manual_seed(0)
    net = nn.Sequential(layer.Linear(64, 32), neuron.LIFNode(tau=2.0, decay_input=False),
                        layer.Linear(32, 16), neuron.IFNode(), layer.Linear(16, 10))
    functional.set_step_mode(net, "m")
    with torch.no_grad():
        net[0].weight.mul_(4)
        net[2].weight.mul_(4)
    x = _inputs()
    functional.reset_net(net)
    theirs: list[torch.Tensor] = []
    hs = [m.register_forward_hook(lambda m, i, o: theirs.append(o.detach().clone()))
          for m in net.modules() if isinstance(m, neuron.BaseNode)]
    with torch.no_grad():
        net(x)
    for h in hs:
        h.remove()
    functional.reset_net(net)
    graph = export_to_nir(net, x)
    ours, _ = nir_io.load(graph, dt=1e-4)  # SpikingJelly's default dt
    _same(theirs, _ours(ours, x))
    assert _count(theirs) > 100


@pytest.mark.parametrize("compressed", [False, True], ids=["float", "pruned-4bit"])
def test_snncomp_model_runs_in_spikingjelly_with_identical_spikes(compressed):
    _, _, _, _, import_from_nir = _sj()
    model = _mlp("lif", scale=6.0, tau=2.0)
    model.blocks[1].neuron = models.make_neuron("if", 16)
    model.blocks[1].neuron.reset = "hard"  # SpikingJelly's NIR reader has no reset by subtraction
    model = (_grid(model) if compressed else model).eval()
    x = _inputs()
    gm = import_from_nir(nir_io.export(model, dt=1e-4), dt=1e-4, step_mode="m")
    theirs: list[torch.Tensor] = []
    mods = [m for m in gm.modules() if type(m).__name__ == "_NIRStatefulModule"]
    hs = [m.register_forward_hook(lambda m, i, o: theirs.append(o[0].detach().clone())) for m in mods]
    with torch.no_grad():
        gm(x, None)
    for h in hs:
        h.remove()
    # SpikingJelly fires on v >= v_threshold where NIR says v > v_threshold; our export writes the float32 just
    # below our threshold, which no sum of grid values (multiples of 1/4) equals, so the spikes still agree
    _same(_ours(model, x), theirs)
    assert _count(theirs) > 100


# ----------------------------------------------------------------------------- Norse


def _norse():
    pytest.importorskip("norse")
    import norse.torch as norse_torch

    return norse_torch


def _norse_step(model, x_t, state):
    out, state = model(x_t, state)
    return state


def test_snncomp_if_model_runs_in_norse_with_identical_spikes():
    nt = _norse()
    model = _grid(_mlp("if"))
    for m in model.modules():
        if isinstance(m, SpikingNeuron):
            m.reset = "hard"  # Norse's IAF resets to zero
    x = _inputs()
    theirs_net = nt.from_nir(nir_io.export(model, dt=1e-3), dt=1e-3)
    theirs = _stepwise(theirs_net, x, (nt.IAFCell,), _norse_step, pick=lambda o: o[0])
    _same(_ours(model, x), theirs)
    assert _count(theirs) > 100


# ----------------------------------------------------------------------------- traps, with their numbers


def test_trap_soft_reset_becomes_reset_to_zero_in_snntorch():
    """Reset by subtraction is metadata only; snnTorch's reader resets to zero and loses spikes."""
    snn = pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    model = _mlp("lif", scale=6.0)
    for m in model.modules():
        if isinstance(m, LIF):
            m.reset = "soft"
    x = _inputs()
    net = import_from_nir(nir_io.export(model, dt=1e-4))
    _snntorch_reset(net)
    theirs = _stepwise(net, x, (snn.Leaky,), _snntorch_imported_step)
    ours = _ours(model, x)
    print(f"soft reset: snncomp {_count(ours)} spikes, snnTorch after NIR {_count(theirs)}")
    assert _count(theirs) < _count(ours)
    back, _ = nir_io.load(nir_io.export(model))  # our own reader keeps it
    _same(ours, _ours(back, x))


def test_trap_scalar_beta_fails_nir_type_check():
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    net = nn.Sequential(nn.Linear(64, 32), snn.Leaky(beta=0.5, init_hidden=True))
    with pytest.raises(ValueError, match="type mismatch"):
        export_to_nir(net, torch.zeros(1, 64), ignore_dims=[0])


def test_trap_dt_convention():
    """snnTorch reads every graph for dt = 1e-4; a graph written for dt = 1 then barely leaks."""
    snn = pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    model = _mlp("lif", scale=6.0)
    x = _inputs()
    ours = _ours(model, x)
    runs = {}
    for dt in (1.0, 1e-4):
        net = import_from_nir(nir_io.export(model, dt=dt))
        _snntorch_reset(net)
        runs[dt] = _stepwise(net, x, (snn.Leaky,), _snntorch_imported_step)
    print(f"dt: snncomp {_count(ours)} spikes; snnTorch {_count(runs[1.0])} for a graph written with dt=1, "
          f"{_count(runs[1e-4])} with dt=1e-4")
    _same(ours, runs[1e-4])
    assert _count(runs[1.0]) != _count(ours)


def test_trap_norse_assumes_unit_resistance():
    """Norse's LIF ignores r: our unit-gain LIF (r = tau / dt) then integrates X / tau_steps in Norse."""
    nt = _norse()
    model = _mlp("lif", scale=6.0)
    x = _inputs()
    ours = _ours(model, x)
    theirs = _stepwise(nt.from_nir(nir_io.export(model, dt=1e-3), dt=1e-3), x, (nt.LIFBoxCell,), _norse_step,
                       pick=lambda o: o[0])
    print(f"r: snncomp {_count(ours)} spikes, Norse {_count(theirs)}")
    assert _count(theirs) < _count(ours)


def test_trap_strict_threshold_on_a_weight_grid():
    """Weights on a 1/4 grid put potentials exactly on the threshold; a graph holding theta itself loses
    those spikes in a reader that follows NIR's v > v_threshold (snnTorch)."""
    snn = pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    model = _grid(_mlp("lif", scale=6.0))
    x = _inputs()
    ours = _ours(model, x)
    runs = {}
    for exact in (True, False):
        net = import_from_nir(nir_io.export(model, dt=1e-4, exact_threshold=exact))
        _snntorch_reset(net)
        runs[exact] = _stepwise(net, x, (snn.Leaky,), _snntorch_imported_step)
    print(f"threshold: snncomp {_count(ours)} spikes; snnTorch {_count(runs[True])} with the float32 below theta, "
          f"{_count(runs[False])} with theta itself")
    _same(ours, runs[True])
    assert _count(runs[False]) < _count(ours)
    back, _ = nir_io.load(nir_io.export(model, exact_threshold=False))  # our metadata says: theta itself
    _same(ours, _ours(back, x))


def test_trap_order_of_leak_and_reset_in_snntorch_subtract():
    """snnTorch's default Leaky subtracts the threshold one step later, after the leak:
    U[t] = beta U[t-1] + X[t] - theta S[t-1]; ours leaks the reset potential, H[t] = beta (H[t-1] - theta S[t-1]) + X[t].
    The two agree for the IF (beta = 1) and differ for a leaky neuron."""
    snn = pytest.importorskip("snntorch")
    x = _inputs()
    counts = {}
    for beta in (1.0, 0.5):
        torch.manual_seed(0)
        fc = nn.Linear(64, 32)
        with torch.no_grad():
            fc.weight.mul_(6)
        net = nn.Sequential(fc, _leaky(32, beta=beta))  # reset_mechanism="subtract", snnTorch's default
        _snntorch_reset(net)
        theirs = _stepwise(net, x, (snn.Leaky,), _snntorch_step)
        neuron = LIF(32, tau=1.0 / (1.0 - beta) if beta < 1 else float("inf"), reset="soft")
        ours = neuron(torch.stack([fc(x[t]) for t in range(T)]).detach())
        counts[beta] = (int(ours.sum()), _count(theirs), int((ours != theirs[0]).sum()))
    print(f"leak/reset order: beta=1 {counts[1.0]}, beta=0.5 {counts[0.5]} (ours, snnTorch, differing)")
    assert counts[1.0][2] == 0
    assert counts[0.5][2] > 0


def test_trap_spikingjelly_fires_on_equal():
    """SpikingJelly fires on v >= v_threshold and writes theta as it is; read as NIR says (v > v_threshold),
    a SpikingJelly network whose potentials land on theta loses those spikes in snncomp."""
    functional, layer, neuron, export_to_nir, _ = _sj()
    torch.manual_seed(0)
    net = nn.Sequential(layer.Linear(64, 32), neuron.IFNode(), layer.Linear(32, 10))
    functional.set_step_mode(net, "m")
    with torch.no_grad():  # weights and biases on a 1/4 grid
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.round(m.weight * 24) / 4)
                m.bias.copy_(torch.round(m.bias * 4) / 4)
    x = _inputs()
    functional.reset_net(net)
    theirs: list[torch.Tensor] = []
    h = net[1].register_forward_hook(lambda m, i, o: theirs.append(o.detach().clone()))
    with torch.no_grad():
        net(x)
    h.remove()
    functional.reset_net(net)
    ours, _ = nir_io.load(export_to_nir(net, x), dt=1e-4)
    got = _ours(ours, x)
    print(f"SpikingJelly >=: SpikingJelly {_count(theirs)} spikes, snncomp after NIR {_count(got)}")
    assert _count(got) < _count(theirs)


# ----------------------------------------------------------------------------- snncomp compress --nir


RECIPE = '''name = "nir-quick"
baseline = "digits-conv-direct4"

[[step]]
method = "magnitude"
sparsity = 0.5
finetune = { epochs = 0 }

[[step]]
method = "uniform-ptq"
bits = 4
label = "4-bit"
'''


def test_cli_compress_reads_and_writes_nir(tmp_path, capsys):
    from snncomp import evaluation
    from snncomp.data import encoding
    from snncomp.kb import cli

    recipe = tmp_path / "quick.toml"
    recipe.write_text(RECIPE)
    src, out = tmp_path / "in.nir", tmp_path / "small.nir"
    nir_io.export(_mlp("lif"), encoding.Direct(2), path=src)  # 64 inputs: the 8x8 digits, flattened
    code = cli.main(["compress", str(recipe), "--nir", str(src), "--out", str(out), "--threads", "1", "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert f"{src} with the data of digits-conv-direct4" in text and f"wrote {out}" in text
    small, encoder = nir_io.load(out)
    assert encoder == encoding.Direct(2)  # the file's encoder, not the baseline's
    assert evaluation.weight_bits(small) == 4.0
    zeros = sum(int((m.weight == 0).sum()) for m in small.modules() if isinstance(m, nn.Linear))
    total = sum(m.weight.numel() for m in small.modules() if isinstance(m, nn.Linear))
    assert zeros / total == pytest.approx(0.5, abs=0.01)


def test_cli_compress_nir_that_does_not_fit_the_data(tmp_path, capsys):
    from snncomp.kb import cli

    recipe = tmp_path / "quick.toml"
    recipe.write_text(RECIPE)
    src = tmp_path / "wide.nir"
    nir_io.export(models.mlp_snn(100, (8,)), path=src)
    assert cli.main(["compress", str(recipe), "--nir", str(src), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--nir {src}: the model does not fit the data of baseline digits-conv-direct4" in err
    assert "expected 100 input features per step, got 64" in err
    assert cli.main(["compress", str(recipe), "--nir", str(tmp_path / "missing.nir"), "--no-progress"]) == 2
    assert "no NIR file at" in capsys.readouterr().err
