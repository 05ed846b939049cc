"""Tests of snncomp.pruning: exact sparsity, masks through training, untouched inputs, structured
removal equal to masking, time-step reduction, and the error messages."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from snncomp import data, metrics, models, pruning
from snncomp.data import encoding
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


def test_normalised_masks_ignore_a_layer_scale():
    g = torch.Generator().manual_seed(1)
    scores = {"a": torch.rand(40, generator=g), "b": torch.rand(60, generator=g)}
    shrunk = {"a": scores["a"] * 0.01, "b": scores["b"]}  # layer a's weights rescaled (BatchNorm undoes it)
    norm, norm_shrunk = pruning.normalised_masks(scores, 0.5), pruning.normalised_masks(shrunk, 0.5)
    assert all(torch.equal(norm[k], norm_shrunk[k]) for k in scores)
    assert sum(int((m == 0).sum()) for m in norm.values()) == 50
    # a plain global pool follows the scale: it now cuts every weight of layer a
    assert int(pruning.global_masks(shrunk, 0.4)["a"].sum()) == 0
    # entries a prior mask cut (score -1) still go first and stay cut
    prior = {"a": (torch.arange(40) >= 10).float(), "b": torch.ones(60)}
    masks = pruning.prune_masks(scores, 0.2, "normalised", prior)
    assert torch.equal(masks["a"][:10], torch.zeros(10)) and sum(int((m == 0).sum()) for m in masks.values()) == 20
    with pytest.raises(ValueError, match="scope must be one of 'global', 'layer', 'normalised', 'lamp'"):
        pruning.scoped_masks(scores, 0.5, "per-layer")


def test_lamp_scores_hand_worked_and_keep_every_layer():
    # layer a: |w| = 1, 2, 3 -> squares 1, 4, 9 -> LAMP 1/14, 4/13, 9/9; layer b: 0.5 -> 1
    scores = {"a": torch.tensor([3.0, 1.0, 2.0]), "b": torch.tensor([0.5])}
    assert torch.equal(pruning.lamp_masks(scores, 0.25)["a"], torch.tensor([1.0, 0.0, 1.0]))  # 1/14 goes first
    assert torch.equal(pruning.lamp_masks(scores, 0.5)["a"], torch.tensor([1.0, 0.0, 0.0]))  # then 4/13
    assert int(pruning.lamp_masks(scores, 0.5)["b"].sum()) == 1  # b's only weight scores 1: kept
    g = torch.Generator().manual_seed(2)
    big = {"small": torch.rand(20, generator=g), "huge": torch.randn(5000, generator=g).abs()}
    masks = pruning.lamp_masks(big, 0.99)
    assert masks["small"].sum() >= 1 and sum(int((m == 0).sum()) for m in masks.values()) == round(0.99 * 5020)
    shrunk = {"small": big["small"] * 1e-3, "huge": big["huge"]}
    assert all(torch.equal(masks[k], pruning.lamp_masks(shrunk, 0.99)[k]) for k in big)


def test_normalised_scope_is_invariant_to_a_bn_conv_weight_scale(trained, split):
    net = copy.deepcopy(trained)
    with torch.no_grad():
        net.blocks[1].conv.weight.mul_(0.05)  # the BN-followed conv computes the same (train-mode BN)
    ft0 = TrainConfig(epochs=0)
    a = pruning.magnitude(trained, split, ENC, sparsity=0.6, finetune=ft0, scope="normalised")
    b = pruning.magnitude(net, split, ENC, sparsity=0.6, finetune=ft0, scope="normalised")
    masks_a, masks_b = (pruning.masks_of(pruning.prunable_layers(r.model)) for r in (a, b))
    assert all(torch.equal(masks_a[k], masks_b[k]) for k in masks_a)
    g = pruning.magnitude(net, split, ENC, sparsity=0.6, finetune=ft0, scope="global")
    assert float(pruning.masks_of(pruning.prunable_layers(g.model))["blocks.1.conv"].mean()) < 0.01


def test_schedules():
    assert pruning.cubic_sparsity(0, 0.9, 100) == 0.0
    assert pruning.cubic_sparsity(100, 0.9, 100) == pytest.approx(0.9)
    assert pruning.cubic_sparsity(50, 0.9, 100) == pytest.approx(0.9 * (1 - 0.5**3))
    s = pruning.iterative_sparsity(0.96, 2)
    assert s == pytest.approx([0.8, 0.96])


@pytest.mark.parametrize("method", ["magnitude", "gradual-magnitude", "lottery-ticket", "lr-rewinding", "rigl",
                                    "sparse-evolutionary", "deep-r", "admm", "grad-rewiring", "soft-threshold"])
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


def _active(model):
    masks = pruning.masks_of(pruning.prunable_layers(model))
    return sum(int(m.sum()) for m in masks.values()), sum(m.numel() for m in masks.values())


@pytest.mark.parametrize("method", ["rigl", "sparse-evolutionary"])
def test_rigl_and_set_keep_density_and_rewire(method, trained, split):
    from snncomp import registry

    res = registry.get(method).fn(trained, split, ENC, sparsity=0.6, every=2, fraction=0.3,
                                  train=TrainConfig(epochs=2, batch_size=32, progress=False))
    active, total = _active(res.model)
    assert active == total - round(0.6 * total) and res.info["rewired"] > 0


def _masked_linear(theta, mask):
    layer = nn.Linear(1, len(theta), bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(theta).view(-1, 1))
    layers = {"fc": layer}
    masks = {"fc": torch.tensor(mask, dtype=torch.float32).view(-1, 1)}
    pruning.set_masks(layers, masks)
    return layers, masks


def test_rigl_drops_smallest_and_grows_largest_gradient_at_zero():
    """Hand-worked RigL update: of 3 active weights (f = 0.34: k = 1) drop the smallest |w| (index 1)
    and grow the candidate with the largest |dL/dw| (index 4) at zero; a dropped weight that wins the
    regrowth keeps its value."""
    layers, masks = _masked_linear([0.5, -0.1, 0.3, 0.0, 0.0, 0.0], [1, 1, 1, 0, 0, 0])
    hook = pruning.RegrowHook(layers, masks, fraction=0.34, every=1, stop=10, grow="gradient", anneal="constant", seed=0)
    hook.params["fc"].grad = torch.tensor([0.0, 0.01, 0.0, 0.2, -0.9, 0.05]).view(-1, 1)
    hook._rewire("fc", 0.34)
    assert hook.params["fc"].mask.flatten().tolist() == [1, 0, 1, 0, 1, 0]
    assert layers["fc"].weight.flatten().tolist() == pytest.approx([0.5, 0.0, 0.3, 0.0, 0.0, 0.0])
    layers, masks = _masked_linear([0.5, -0.1, 0.3, 0.0, 0.0, 0.0], [1, 1, 1, 0, 0, 0])
    hook = pruning.RegrowHook(layers, masks, fraction=0.34, every=1, stop=10, grow="gradient", anneal="constant", seed=0)
    hook.params["fc"].grad = torch.tensor([0.0, 5.0, 0.0, 0.2, -0.9, 0.05]).view(-1, 1)
    hook._rewire("fc", 0.34)
    assert hook.params["fc"].mask.flatten().tolist() == [1, 1, 1, 0, 0, 0]
    assert layers["fc"].weight.flatten().tolist() == pytest.approx([0.5, -0.1, 0.3, 0.0, 0.0, 0.0])


def test_deep_r_update_rule_hand_worked():
    """Active theta take the SGD step with the L1 term, dormant ones do not move, a theta that reaches
    0 turns dormant, and a random dormant connection is reactivated so K = 2 stay active."""
    theta = torch.tensor([0.3, -0.1, 0.02], requires_grad=True)
    theta.grad = torch.tensor([0.1, 0.5, 0.1])
    hook = pruning.DeepRHook({"a": theta}, [["a"]], [2], lr=0.1, lr_scale=[1.0], l1=0.1, temperature=0.0, seed=0)
    hook.after_backward(None, type("S", (), {"index": 0})())
    assert theta.grad is None  # Adam skips the theta
    t = theta.detach()
    assert float(t[0]) == pytest.approx(0.3 - 0.1 * (0.1 + 0.1))  # 0.28
    # theta[2] = 0.02 - 0.1 * 0.2 = 0 turned dormant, theta[1] = -0.1 stayed put; one of them is back at EPS
    assert int((t > 0).sum()) == 2 and hook.reactivated == 1
    rest = sorted(t[1:].tolist())
    assert rest[1] == pytest.approx(hook.EPS, abs=1e-15) and (rest[0] == pytest.approx(-0.1) or rest[0] == 0.0)


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_deep_r_keeps_exactly_k_active(scope, trained, split):
    """With a strong L1 term many connections turn dormant; after every step exactly K are active
    (per layer with scope='layer'), and the result has exactly K non-zero weights."""
    from snncomp.train import Hook

    counts: list[list[int]] = []

    class Count(Hook):
        def after_step(self, model, step):
            layers = pruning.prunable_layers(model)
            thetas = {n: m.parametrizations.weight.original for n, m in layers.items()}
            per = {n: int((t > 0).sum()) for n, t in thetas.items()}
            counts.append([sum(per.values())] if scope == "global" else list(per.values()))

    res = pruning.deep_r(trained, split, ENC, sparsity=0.7, lr=0.5, l1=0.05, scope=scope, hooks=[Count()],
                         train=TrainConfig(epochs=2, batch_size=64, progress=False))
    sizes = [m.weight.numel() for m in pruning.prunable_layers(trained).values()]
    K = [sum(sizes) - round(0.7 * sum(sizes))] if scope == "global" else [n - round(0.7 * n) for n in sizes]
    assert len(counts) == 12 and all(c == K for c in counts)
    assert res.info["reactivated"] > 0
    zeros, total = _zeros(res.model)
    assert total - zeros == sum(K)


def test_grad_rewiring_gradient_reaches_pruned_theta():
    theta = torch.tensor([-0.5, 0.3, -0.1], requires_grad=True)
    sign = torch.tensor([1.0, -1.0, -1.0])
    w = pruning.rewiring._SignedReLU.apply(theta, sign)
    assert torch.equal(w, torch.tensor([0.0, -0.3, 0.0]))
    w.sum().backward()
    assert torch.equal(theta.grad, sign)  # dL/dtheta = s dL/dw even where theta <= 0


def test_grad_rewiring_prior_step_outside_adam(split):
    """One training step with and without the prior: theta differs by exactly
    -alpha * lr / (1 - beta1) * sign(theta_0 - mu), the authors' prior step at Adam's first step
    (their optimiser scales the prior by Adam's step size lr / (1 - beta1^t)); the Adam step is the same."""
    from torch.nn.utils import parametrize

    one = data.Split(split.train_x[:16], split.train_y[:16], split.test_x[:16], split.test_y[:16], "one-batch")
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-2, progress=False)
    alpha, mu = 0.5, -0.05
    thetas = {}
    for a in (0.0, alpha):
        net = models.mlp_snn(64, hidden=(8,), seed=0)
        layers = pruning.prunable_layers(net)
        for m in layers.values():
            parametrize.register_parametrization(m, "weight", pruning.GradRWeight(m.weight.detach()))
        th = [m.parametrizations.weight.original for m in layers.values()]
        start = [t.detach().clone() for t in th]
        fit(net, one, ENC, cfg, hooks=[pruning.GradRPrior(th, a, mu, pruning.step_learning_rates(cfg, 16))],
            evaluate_test=False)
        thetas[a] = [t.detach().clone() for t in th]
    for t0, plain, with_prior in zip(start, thetas[0.0], thetas[alpha]):
        expected = -alpha * 1e-2 / (1 - 0.9) * torch.sign(t0 - mu)
        assert torch.allclose(with_prior - plain, expected, atol=1e-6)


def test_grad_rewiring_centre_and_reach(trained, split):
    res = pruning.grad_rewiring(trained, split, ENC, sparsity=0.8, alpha=0.5, train=CFG)
    assert res.info["mu"] == pytest.approx(math.log(2 * (1 - 0.8)) / 0.5)
    # measured before the top-up, which cuts the rest
    assert res.info["sparsity_reached_by_training"] < 0.8 and res.info["topped_up"] > 0
    with pytest.raises(ValueError, match="sparsity must be >= 0.5"):
        pruning.grad_rewiring(trained, split, ENC, sparsity=0.3, train=CFG)


def test_soft_threshold_offsets_survivors_by_the_current_threshold_only():
    """w = sign(theta) relu(|theta| - d) with the current d: after d = 0.1 and then d = 0.2 a survivor
    theta = 0.5 is 0.3 (not 0.5 - 0.1 - 0.2), and theta never shrinks; the gradient passes straight through."""
    p = pruning.SoftThresholdWeight()
    theta = torch.tensor([0.5, -0.3, 0.05, -0.02], requires_grad=True)
    p.d.fill_(0.1)
    assert p(theta).tolist() == pytest.approx([0.4, -0.2, 0.0, 0.0])
    p.d.fill_(0.2)
    w = p(theta)
    assert w.tolist() == pytest.approx([0.3, -0.1, 0.0, 0.0])
    assert theta.tolist() == pytest.approx([0.5, -0.3, 0.05, -0.02])
    w.sum().backward()
    assert torch.equal(theta.grad, torch.ones(4))
    sched = pruning.ThresholdSchedule([p], 0.4, [1.0, 1.0, 2.0])  # d_t = D * cumulative lr / total lr
    for i, d in enumerate([0.1, 0.2, 0.4]):
        sched.after_step(None, type("S", (), {"index": i})())
        assert float(p.d) == pytest.approx(d)


def test_soft_threshold_does_not_collapse_where_the_cumulative_shrink_did():
    """One epoch at 70 % sparsity on a small MLP: the old rule (shrink the weights in place by the full
    scheduled threshold after every step, so survivors lose the sum of all thresholds) falls to near
    chance; the reparameterisation keeps most of the accuracy."""
    from snncomp.train import Hook, evaluate

    s = data.digits()
    net = models.mlp_snn(64, hidden=(64,), seed=0)
    fit(net, s, ENC, TrainConfig(epochs=3, batch_size=64, progress=False), evaluate_test=False)
    one = TrainConfig(epochs=1, batch_size=16, progress=False)

    class CumulativeShrink(Hook):  # the old SoftThresholdHook
        @torch.no_grad()
        def after_step(self, model, step):
            layers = pruning.prunable_layers(model)
            s_t = pruning.cubic_sparsity(step.index, 0.7, 0.75 * one.steps(s.train_x.shape[0]))
            flat = torch.cat([m.weight.abs().flatten() for m in layers.values()])
            d = torch.kthvalue(flat, max(1, round(s_t * flat.numel()))).values
            for m in layers.values():
                m.weight.copy_(m.weight.sign() * (m.weight.abs() - d).clamp_min(0))

    old = copy.deepcopy(net)
    fit(old, s, ENC, one, hooks=[CumulativeShrink()], evaluate_test=False)
    new = pruning.soft_threshold(net, s, ENC, sparsity=0.7, train=one, finetune=TrainConfig(epochs=0))
    assert evaluate(old, s.test_x, s.test_y, ENC) < 0.3
    assert evaluate(new.model, s.test_x, s.test_y, ENC) > 0.45
    assert new.info["sparsity_reached_by_training"] < 0.7 and new.info["topped_up"] > 0  # measured before the cut


def test_lottery_ticket_rewinds_to_an_early_dense_step(split):
    """The survivors restart from the state after k = round(rewind * dense steps) steps of the method's
    own dense training of the untrained input (replayed here with the same seed)."""
    model = models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)
    dense = TrainConfig(epochs=2, batch_size=64, progress=False)  # 12 steps
    res = pruning.lottery_ticket(model, split, ENC, sparsity=0.5, rounds=1, rewind=0.25, dense=dense,
                                 train=TrainConfig(epochs=0))
    assert res.info["rewind_step"] == 3
    replay, snap = copy.deepcopy(model), pruning.unstructured._Snapshot(3)
    fit(replay, split, ENC, dense, hooks=[snap], evaluate_test=False)
    for (n, m), ref in zip(pruning.prunable_layers(res.model).items(), pruning.prunable_layers(snap.model).values()):
        kept = m.weight != 0
        assert torch.equal(m.weight[kept], ref.weight[kept]), n
    with pytest.raises(ValueError, match="lr-rewinding"):
        pruning.lottery_ticket(model, split, ENC, dense=TrainConfig(epochs=0))


def test_lr_rewinding_keeps_the_trained_survivors(trained, split):
    res = pruning.lr_rewinding(trained, split, ENC, sparsity=0.5, rounds=1, train=TrainConfig(epochs=0))
    for m, ref in zip(pruning.prunable_layers(res.model).values(), pruning.prunable_layers(trained).values()):
        kept = m.weight != 0
        assert torch.equal(m.weight[kept], ref.weight[kept])


def test_step_learning_rates():
    cfg = TrainConfig(epochs=2, batch_size=10, lr=0.1)
    lrs = pruning.step_learning_rates(cfg, 20)
    assert len(lrs) == 4 and lrs[0] == pytest.approx(0.1) and lrs[2] == pytest.approx(0.05)
    assert pruning.step_learning_rates(TrainConfig(epochs=1, batch_size=10, lr=0.1, schedule="constant"), 20) == [0.1, 0.1]


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


@pytest.fixture(scope="module")
def trained_convfc(split):
    """A tiny conv SNN with two spiking dense blocks after the convolutions (conv -> dense -> dense -> head)."""
    model = models.conv_snn((1, 8, 8), channels=(4, 8), hidden=(12, 10), seed=0)
    fit(model, split, ENC, TrainConfig(epochs=2, batch_size=64, progress=False), evaluate_test=False)
    return model


def test_remove_units_equals_masked_conv_then_dense(trained_convfc, split):
    net = copy.deepcopy(trained_convfc)
    layers = pruning.prunable_layers(net)
    pruning.set_masks(layers, pruning.global_masks(pruning.magnitude_scores(layers), 0.5))  # masks ride along
    keep = {0: torch.tensor([0, 3]), 1: torch.tensor([1, 4, 6]), 2: torch.tensor([0, 2, 5, 7, 11]),
            3: torch.tensor([2, 3, 9])}
    small = pruning.remove_units(net, keep)
    masked = pruning.mask_units(net, keep)
    x = ENC(split.test_x[:64])
    small.eval(), masked.eval()
    with torch.no_grad():
        assert torch.allclose(small(x), masked(x), atol=1e-5)
    # channel c of the last conv block owned the H*W = 4 input columns 4c .. 4c+3 of the first dense layer
    w = net.blocks[2].fc.weight.detach()
    cols = torch.cat([torch.arange(4 * c, 4 * c + 4) for c in (1, 4, 6)])
    assert torch.equal(small.blocks[2].fc.weight.detach(), w[keep[2]][:, cols])
    assert small.blocks[2].fc.in_features == 3 * 2 * 2 and small.blocks[2].fc.out_features == 5
    assert small.blocks[3].fc.in_features == 5 and small.blocks[3].fc.out_features == 3
    assert small.head.in_features == 3 and small.blocks[3].neuron.threshold.shape == (3,)
    # the masks were cut with the weights and stay in force
    assert torch.equal(small.blocks[2].fc.parametrizations.weight[0].mask,
                       net.blocks[2].fc.parametrizations.weight[0].mask[keep[2]][:, cols])
    assert metrics.count_params(small) < metrics.count_params(net)


def test_structured_methods_on_conv_then_dense(trained_convfc, split):
    slim = pruning.channel_slimming(trained_convfc, split, ENC, sparsity=0.5, train=CFG, finetune=CFG)
    assert slim.info["units_after"] == [2, 4, 12, 10]  # BatchNorm scores: the dense blocks stay whole
    act = pruning.activity_pruning(trained_convfc, split, ENC, sparsity=0.5, finetune=CFG)
    assert act.info["units_after"] == [2, 4, 6, 5]
    for res in (slim, act):
        assert res.model(ENC(split.test_x[:4])).shape == (4, 10)


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
