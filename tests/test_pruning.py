"""Tests of snncomp.pruning: exact sparsity, masks through training, untouched inputs, structured
removal equal to masking, time-step reduction, and the error messages."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from snncomp import data, encoding, metrics, models, pruning
from snncomp.train import TrainConfig, fit

ENC = encoding.Direct(2)
CFG = TrainConfig(epochs=1, batch_size=128, progress=False)


@pytest.fixture(scope="module")
def split():
    s = data.digits()
    return data.Split(s.train_x[:384], s.train_y[:384], s.test_x[:128], s.test_y[:128], "digits-small")


@pytest.fixture(scope="module")
def trained(split):
    """A tiny conv SNN trained a little, so spikes flow and BN statistics are non-trivial."""
    model = models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)
    fit(model, split, ENC, TrainConfig(epochs=2, batch_size=64, progress=False), evaluate_test=False)
    return model


@pytest.fixture(scope="module")
def trained_mlp(split):
    model = models.mlp_snn(64, hidden=(32, 16), seed=0)
    fit(model, split, ENC, TrainConfig(epochs=2, batch_size=64, progress=False), evaluate_test=False)
    return model


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _zeros(model):
    layers = pruning.prunable_layers(model)
    return sum(int((m.weight == 0).sum()) for m in layers.values()), sum(m.weight.numel() for m in layers.values())


# ----------------------------------------------------------------------------- masks


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.9, 0.987])
def test_global_masks_exact_count(sparsity):
    g = torch.Generator().manual_seed(0)
    scores = {"a": torch.rand(7, 5, generator=g), "b": torch.rand(13, generator=g), "c": torch.zeros(9)}  # ties
    masks = pruning.global_masks(scores, sparsity)
    n = sum(s.numel() for s in scores.values())
    assert sum(int((m == 0).sum()) for m in masks.values()) == round(sparsity * n)
    assert all(masks[k].shape == scores[k].shape for k in scores)


def test_layer_masks_exact_per_layer():
    scores = {"a": torch.rand(10, 10), "b": torch.rand(33)}
    masks = pruning.layer_masks(scores, 0.5)
    assert int((masks["a"] == 0).sum()) == 50 and int((masks["b"] == 0).sum()) == round(0.5 * 33)


def test_schedules():
    assert pruning.cubic_sparsity(0, 0.9, 100) == 0.0
    assert pruning.cubic_sparsity(100, 0.9, 100) == pytest.approx(0.9)
    assert pruning.cubic_sparsity(50, 0.9, 100) == pytest.approx(0.9 * (1 - 0.5**3))
    s = pruning.iterative_sparsity(0.96, 2)
    assert s == pytest.approx([0.8, 0.96])


@pytest.mark.parametrize("method", ["magnitude", "gradual-magnitude", "lottery-ticket", "prune-regrow", "admm",
                                    "grad-rewiring", "soft-threshold"])
def test_unstructured_exact_sparsity_and_input_untouched(method, trained, split):
    from snncomp import registry

    before = _state(trained)
    res = registry.get(method).fn(trained, split, ENC, sparsity=0.8, train=CFG, finetune=CFG)
    assert _same(before, _state(trained))
    assert res.model is not trained
    zeros, total = _zeros(res.model)
    assert zeros == round(0.8 * total)
    assert res.info["sparsity"] == pytest.approx(zeros / total)


def test_masks_survive_plain_training(trained, split):
    """A mask is a parametrization: a plain `fit` with no hook keeps the cut weights at zero, and the
    stored parameter behind them gets no gradient."""
    net = copy.deepcopy(trained)
    layers = pruning.prunable_layers(net)
    masks = pruning.global_masks(pruning.magnitude_scores(layers), 0.7)
    pruning.set_masks(layers, masks)
    fit(net, split, ENC, TrainConfig(epochs=2, batch_size=64, lr=1e-2, progress=False), evaluate_test=False)
    for n, m in masks.items():
        assert (layers[n].weight[m == 0] == 0).all()
        assert (layers[n].weight[m == 1] != 0).float().mean() > 0.99  # survivors kept training
        assert (layers[n].parametrizations.weight.original.grad[m == 0] == 0).all()
    assert pruning.masks_of(layers).keys() == masks.keys()


def test_mask_equals_torch_prune_custom_mask(trained):
    """Our mask parametrization computes what `torch.nn.utils.prune.custom_from_mask` computes."""
    from torch.nn.utils import prune

    a, b = copy.deepcopy(trained), copy.deepcopy(trained)
    masks = pruning.global_masks(pruning.magnitude_scores(pruning.prunable_layers(a)), 0.6)
    pruning.set_masks(pruning.prunable_layers(a), masks)
    for n, m in pruning.prunable_layers(b).items():
        prune.custom_from_mask(m, "weight", masks[n])
    for n in masks:
        assert torch.equal(pruning.prunable_layers(a)[n].weight, pruning.prunable_layers(b)[n].weight)


def test_bake_leaves_plain_tensors(trained):
    from snncomp.compress import bake

    net = copy.deepcopy(trained)
    layers = pruning.prunable_layers(net)
    pruning.set_masks(layers, pruning.global_masks(pruning.magnitude_scores(layers), 0.5))
    plain = bake(net)
    assert pruning.masks_of(pruning.prunable_layers(plain)) is None
    assert not any("parametrizations" in k for k in plain.state_dict())
    x = ENC(torch.rand(3, 1, 8, 8))
    net.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(net(x), plain(x))


def test_remove_units_keeps_masks(trained, split):
    net = copy.deepcopy(trained)
    layers = pruning.prunable_layers(net)
    masks = pruning.global_masks(pruning.magnitude_scores(layers), 0.5)
    pruning.set_masks(layers, masks)
    small = pruning.remove_units(net, {0: torch.tensor([0, 2]), 1: torch.tensor([1, 3, 5])})
    small_layers = pruning.prunable_layers(small)
    assert torch.equal(pruning.masks_of(small_layers)["blocks.0.conv"], masks["blocks.0.conv"][[0, 2]])
    assert torch.equal(pruning.masks_of(small_layers)["blocks.1.conv"], masks["blocks.1.conv"][[1, 3, 5]][:, [0, 2]])
    zeros_before = _zeros(small)[0]
    fit(small, split, ENC, CFG, evaluate_test=False)
    assert _zeros(small)[0] >= zeros_before


def test_layer_scope(trained, split):
    res = pruning.magnitude(trained, split, ENC, sparsity=0.5, finetune=TrainConfig(epochs=0), scope="layer")
    for m in pruning.prunable_layers(res.model).values():
        assert int((m.weight == 0).sum()) == round(0.5 * m.weight.numel())


def test_prune_regrow_keeps_density_and_rewires(trained, split):
    res = pruning.prune_regrow(trained, split, ENC, sparsity=0.6, every=2, fraction=0.3,
                               train=TrainConfig(epochs=2, batch_size=32, progress=False))
    zeros, total = _zeros(res.model)
    assert zeros == round(0.6 * total) and res.info["rewired"] > 0


def test_grad_rewiring_gradient_reaches_pruned_theta():
    theta = torch.tensor([-0.5, 0.3, -0.1], requires_grad=True)
    sign = torch.tensor([1.0, -1.0, -1.0])
    w = pruning.hooks._SignedReLU.apply(theta, sign)
    assert torch.equal(w, torch.tensor([0.0, -0.3, 0.0]))
    w.sum().backward()
    assert torch.equal(theta.grad, sign)  # dL/dtheta = s dL/dw even where theta <= 0


# ----------------------------------------------------------------------------- structured


def test_remove_units_equals_masked_convnet(trained, split):
    keep = {0: torch.tensor([0, 2, 3]), 1: torch.tensor([1, 4, 5, 7])}
    small = pruning.remove_units(trained, keep)
    masked = pruning.mask_units(trained, keep)
    x = ENC(split.test_x[:64])
    small.eval(), masked.eval()
    with torch.no_grad():
        assert torch.allclose(small(x), masked(x), atol=1e-5)
    # the removed channels never spike in the masked model
    from snncomp import spikes

    with torch.no_grad(), spikes.record(masked) as rec:
        masked(x)
    assert rec["blocks.0.neuron"][0][:, :, 1].sum() == 0
    assert [b.conv.out_channels for b in small.blocks] == [3, 4]
    assert small.blocks[1].neuron.tau.shape == (4,) and small.blocks[1].neuron.threshold.shape == (4,)
    assert small.blocks[1].bn.running_var.shape == (4,)
    assert small.head.in_features == 4 * 2 * 2
    a = metrics.measure(trained, split.test_x, ENC)
    b = metrics.measure(small, split.test_x, ENC)
    assert b.params < a.params and b.dense_synops < a.dense_synops and b.footprint_bytes < a.footprint_bytes


def test_remove_units_equals_masked_mlp(trained_mlp, split):
    keep = {0: torch.arange(0, 32, 2), 1: torch.tensor([0, 1, 5, 9, 15])}
    small = pruning.remove_units(trained_mlp, keep)
    masked = pruning.mask_units(trained_mlp, keep)
    x = ENC(split.test_x[:64])
    with torch.no_grad():
        assert torch.allclose(small(x), masked(x), atol=1e-5)
    assert small.blocks[0].fc.out_features == 16 and small.blocks[1].fc.in_features == 16
    assert small.head.in_features == 5
    assert metrics.count_params(small) < metrics.count_params(trained_mlp)


def test_per_channel_neuron_state_follows_the_channel(trained):
    net = copy.deepcopy(trained)
    net.blocks[0].neuron.threshold.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    net.blocks[0].neuron.tau.copy_(torch.tensor([2.0, 3.0, 4.0, 5.0]))
    small = pruning.remove_units(net, {0: torch.tensor([3, 1])})
    assert torch.equal(small.blocks[0].neuron.threshold, torch.tensor([2.0, 4.0]))
    assert torch.equal(small.blocks[0].neuron.tau, torch.tensor([3.0, 5.0]))


@pytest.mark.parametrize("method", ["channel-slimming", "activity-pruning"])
def test_structured_methods_shrink(method, trained, split):
    from snncomp import registry

    before = _state(trained)
    res = registry.get(method).fn(trained, split, ENC, sparsity=0.5, train=CFG, finetune=CFG)
    assert _same(before, _state(trained))
    assert [b.conv.out_channels for b in res.model.blocks] == [2, 4] or \
        sum(b.conv.out_channels for b in res.model.blocks) == 6
    assert metrics.count_params(res.model) < metrics.count_params(trained)
    assert res.model(ENC(split.test_x[:4])).shape == (4, 10)


def test_activity_pruning_mlp(trained_mlp, split):
    res = pruning.activity_pruning(trained_mlp, split, ENC, sparsity=0.5, finetune=CFG)
    assert res.info["units_after"] == [16, 8]
    rates = pruning.firing_rate_scores(trained_mlp, split.train_x[:100], ENC)
    kept = set(res.info["kept"][0])
    dropped = set(range(32)) - kept
    assert min(rates[0][list(kept)]) >= max(rates[0][list(dropped)])


def test_bn_scores_are_threshold_aware(trained):
    net = copy.deepcopy(trained)
    s1 = pruning.bn_scale_scores(net)[0]
    net.blocks[0].neuron.threshold.mul_(2)
    assert torch.allclose(pruning.bn_scale_scores(net)[0], s1 / 2)


# ----------------------------------------------------------------------------- time steps


def test_timestep_reduction(split):
    model = models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)
    enc = encoding.Rate(4)
    before = _state(model)
    res = pruning.timestep_reduction(model, split, enc, train=CFG, keep_models=True)
    assert _same(before, _state(model))
    assert res.info["T"] == 1 and list(res.info["accuracy"]) == [4, 2, 1]
    assert set(res.info["models"]) == {4, 2, 1}
    with pytest.raises(ValueError, match="strictly decreasing"):
        pruning.timestep_reduction(model, split, enc, steps=(2, 3), train=CFG)


# ----------------------------------------------------------------------------- errors and measure


@pytest.mark.parametrize("bad", [1.2, -0.1, 1.0])
def test_bad_sparsity(bad, trained, split):
    with pytest.raises(ValueError, match=rf"sparsity must lie in \[0, 1\), got {bad}"):
        pruning.magnitude(trained, split, ENC, sparsity=bad, finetune=CFG)


def test_unsupported_model_types(trained_mlp, split):
    with pytest.raises(TypeError, match="LSTM"):
        pruning.magnitude(nn.LSTM(3, 4), split, ENC, finetune=CFG)
    with pytest.raises(TypeError, match="MLP"):
        pruning.channel_slimming(trained_mlp, split, ENC, train=CFG)
    with pytest.raises(TypeError, match="Sequential"):
        pruning.remove_units(nn.Sequential(nn.Linear(2, 2)), {0: torch.tensor([0])})


def test_removing_every_channel_is_an_error(trained):
    with pytest.raises(ValueError, match="would remove all 4 channels of blocks.0"):
        pruning.remove_units(trained, {0: torch.tensor([], dtype=torch.long)})
    with pytest.raises(ValueError, match="would remove all 4 channels of blocks.0"):
        pruning.remove_units(trained, pruning.select_units({0: torch.rand(4), 1: torch.rand(8)}, 0.9, "layer"))


def test_sparsity_report(trained):
    net = copy.deepcopy(trained)
    with torch.no_grad():
        net.head.weight[:, :3] = 0
    rep = pruning.sparsity_report(net)
    assert rep["layers"]["head"]["zeros"] == 30
    assert rep["units"] == [4, 8] and rep["weights"] == sum(r["weights"] for r in rep["layers"].values())


def test_baking_or_cutting_a_copy_leaves_the_original_masked(trained):
    """torch shares the generated class between a parametrized module and its deep copy; removing the
    copy's parametrization must not strip the original's."""
    from snncomp.compress import bake

    net = copy.deepcopy(trained)
    layers = pruning.prunable_layers(net)
    pruning.set_masks(layers, pruning.global_masks(pruning.magnitude_scores(layers), 0.5))
    bake(net)
    pruning.remove_units(net, {0: torch.tensor([0, 1])})
    assert pruning.masks_of(pruning.prunable_layers(net)) is not None
    with torch.no_grad():
        net(ENC(torch.rand(2, 1, 8, 8)))


def test_size_metrics_count_a_masked_weight_once(trained):
    """The mask buffer and the stored parameter behind it are training machinery: parameters and
    footprint of a masked model equal the dense model's, as the notebook asserts."""
    net = copy.deepcopy(trained)
    layers = pruning.prunable_layers(net)
    pruning.set_masks(layers, pruning.global_masks(pruning.magnitude_scores(layers), 0.5))
    assert metrics.count_params(net) == metrics.count_params(trained)
    assert metrics.footprint_bytes(net) == metrics.footprint_bytes(trained)
    assert metrics.deployed_bits(net) == metrics.deployed_bits(trained)
    assert metrics.connection_sparsity(net) == pytest.approx(0.5, abs=1e-3)
