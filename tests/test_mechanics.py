"""Shared mechanics: the one forward-hook context manager, the one spike-tensor test, the one home of
the training budget presets, and `fit` leaving torch's global generator alone."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import snncomp
from snncomp import data, metrics, models, pruning, spike_reduction, spikes, train
from snncomp.data import encoding
from snncomp.energy import memory
from snncomp.spike_reduction import synops as synops_mod
from snncomp.train import TrainConfig, fit

PACKAGE = Path(snncomp.__file__).parent


# ------------------------------------------------------------------------------------------ hooks
def test_hooked_names_calls_and_removes_hooks():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    seen: list[tuple] = []
    layers = {"first": net[0], "last": net[2]}
    with spikes.hooked(layers, lambda name, m, i, o: seen.append((name, m, tuple(o.shape)))) as handles:
        assert len(handles) == 2 and all(len(m._forward_hooks) == 1 for m in layers.values())
        net(torch.zeros(5, 3))
    assert seen == [("first", net[0], (5, 4)), ("last", net[2], (5, 2))]
    assert all(not m._forward_hooks for m in net)
    net(torch.zeros(1, 3))  # no hook left: nothing more recorded
    assert len(seen) == 2


def test_hooked_iterable_uses_pytorch_signature_and_cleans_up_on_error():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    outs: list[torch.Tensor] = []
    with pytest.raises(RuntimeError, match="boom"):
        with spikes.hooked([net[0], net[1]], lambda m, i, o: outs.append(o)):
            net(torch.ones(2, 3))
            raise RuntimeError("boom")
    assert len(outs) == 2 and torch.equal(outs[1], outs[0].relu())
    assert all(not m._forward_hooks for m in net)


def test_no_module_registers_forward_hooks_by_hand():
    """Every site goes through `spikes.hooked`, the one place that registers and removes them."""
    own = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if path.name != "spikes.py" and ("register_forward_hook" in text or "register_forward_pre_hook" in text):
            own.append(str(path.relative_to(PACKAGE)))
    assert not own, f"register forward hooks through snncomp.spikes.hooked: {own}"


# ------------------------------------------------------------------------------------ spike test
def test_is_spike_tensor_semantics():
    binary = torch.tensor([0.0, 1.0, 1.0, 0.0])
    ternary = torch.tensor([0.0, 1.0, -1.0])
    analog = torch.tensor([0.0, 0.5, 1.0])
    assert spikes.is_spike_tensor(binary, signed=False) and spikes.is_spike_tensor(binary, signed=True)
    assert spikes.is_spike_tensor(ternary, signed=True) and not spikes.is_spike_tensor(ternary, signed=False)
    assert not spikes.is_spike_tensor(analog, signed=True) and not spikes.is_spike_tensor(analog, signed=False)
    assert not spikes.is_spike_tensor(torch.tensor([2.0, 0.0]), signed=True)
    assert spikes.is_spike_tensor(torch.tensor([True, False]), signed=False)
    with pytest.raises(TypeError):
        spikes.is_spike_tensor(binary)  # each caller says which test it means


def _linear() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(4, 3)


@pytest.mark.parametrize("values, spike_ops", [((0.0, 1.0), True), ((-1.0, 0.0, 1.0), True), ((0.0, 0.5), False)])
def test_operation_counts_use_the_signed_test(values, spike_ops):
    """`metrics` and the synops objective count ternary inputs as accumulates, as NeuroBench does."""
    x = torch.tensor(values)[torch.arange(2 * 5 * 4) % len(values)].view(2, 5, 4)  # [T, B, F]
    layer = _linear()
    ops = metrics.synops(layer, x)[""]
    assert (ops.acs > 0 and ops.macs == 0) if spike_ops else (ops.macs > 0 and ops.acs == 0)
    assert synops_mod.layer_synops(layer, x.flatten(0, 1))[1] is spike_ops


@pytest.mark.parametrize("values, spike_fed", [((0.0, 1.0), True), ((-1.0, 0.0, 1.0), False)])
def test_memory_model_uses_the_unsigned_test(values, spike_fed):
    """The memory-inclusive model treats only {0, 1} inputs as spikes, as SpikingJelly's profiler does;
    a ternary input is priced as an analog layer (dense MACs)."""
    x = torch.tensor(values)[torch.arange(6 * 4) % len(values)].view(6, 4)
    counts = memory.measure(_linear(), x, encoding.Direct(1))
    dense = 6 * 3 * 4
    assert counts.ops["mac"] == (0 if spike_fed else dense)


# ----------------------------------------------------------------------------------------- presets
def _presets() -> dict[str, dict[str, TrainConfig]]:
    """{name: {module: preset}} over every module-level `TrainConfig` of the package."""
    out: dict[str, dict[str, TrainConfig]] = {}
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or not (mod_name == "snncomp" or mod_name.startswith("snncomp.")):
            continue
        for name, value in vars(mod).items():
            if isinstance(value, TrainConfig):
                out.setdefault(name, {})[mod_name] = value
    return out


def test_budget_presets_have_one_home_and_one_meaning():
    presets = _presets()
    # a skipped phase is `train.NONE` everywhere
    zero = [(name, mod) for name, where in presets.items() for mod, v in where.items() if v.epochs == 0]
    assert all(presets[name][mod] is train.NONE for name, mod in zero), zero
    assert train.NONE == TrainConfig(epochs=0)
    # one name, one preset: a name bound in several modules is the same object (an import)
    clashes = {name: sorted(where) for name, where in presets.items() if len({id(v) for v in where.values()}) > 1}
    assert not clashes, clashes


def test_named_budgets_keep_their_values():
    assert pruning.PRUNE_FINETUNE == TrainConfig(epochs=4, lr=2e-3)
    assert pruning.PRUNE_TRAIN == TrainConfig(epochs=8, lr=2e-3)
    assert spike_reduction.RATE_FINETUNE == TrainConfig(epochs=2, lr=1e-3)
    assert spike_reduction.TTFS_TRAIN == TrainConfig(epochs=4, lr=2e-3)
    from snncomp import distillation

    assert distillation.DISTIL_TRAIN == TrainConfig(epochs=8, lr=2e-3)


# ------------------------------------------------------------------------------------------ fit RNG
@pytest.fixture(scope="module")
def digits_tiny() -> data.Split:
    s = data.digits()
    return data.Split(s.train_x[:128], s.train_y[:128], s.test_x[:32], s.test_y[:32], "digits-tiny")


def test_fit_leaves_the_global_generator_alone_and_is_deterministic(digits_tiny):
    base = models.mlp_snn(64, hidden=(16,), seed=0)
    enc = encoding.Rate(3)  # draws spikes: the randomness fit must take from its own generator
    config = TrainConfig(epochs=1, batch_size=32, seed=5, progress=False)
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a = copy.deepcopy(base)
    fit(a, digits_tiny, enc, config, evaluate_test=False)
    assert torch.equal(torch.random.get_rng_state(), state)  # not reseeded behind the caller's back
    torch.manual_seed(999)
    torch.rand(7)  # another global state: the result must not depend on it
    b = copy.deepcopy(base)
    fit(b, digits_tiny, enc, config, evaluate_test=False)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = copy.deepcopy(base)
    fit(c, digits_tiny, enc, TrainConfig(epochs=1, batch_size=32, seed=6, progress=False), evaluate_test=False)
    assert any(not torch.equal(sa[k], c.state_dict()[k]) for k in sa)  # the config's seed is what matters
