"""Quantization: the fake quantizer against torch's, STE and LSQ gradients, masks under QAT, bad input,
deployed bits, membrane quantization, binary weights, integer-only inference and weight sharing."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from snncomp import metrics, pruning
from snncomp.quantization import quantizers as Q
from snncomp.quantization import weights as W
from snncomp.train import TrainConfig, fit

ONE = TrainConfig(epochs=1, batch_size=128, progress=False)


def _zp(n=None):
    return torch.zeros((), dtype=torch.int32) if n is None else torch.zeros(n, dtype=torch.int32)


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_fake_quantize_equals_torch_per_tensor(bits):
    torch.manual_seed(bits)
    x = torch.randn(32, 4, 3, 3) * 0.5
    qmin, qmax = Q.qrange(bits)
    for s in (Q.minmax_scale(x, bits, False), torch.tensor(0.037), torch.tensor(0.25)):  # some clip
        x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
        a = Q.fake_quantize(x1, s, _zp(), qmin, qmax)
        b = torch.fake_quantize_per_tensor_affine(x2, float(s), 0, qmin, qmax)
        assert torch.equal(a, b)
        g = torch.randn_like(x)
        a.backward(g)
        b.backward(g)
        assert torch.equal(x1.grad, x2.grad)  # the STE passes and stops where torch's does


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_fake_quantize_equals_torch_per_channel(bits):
    torch.manual_seed(bits)
    x = torch.randn(16, 8) * torch.linspace(0.1, 2, 16)[:, None]
    qmin, qmax = Q.qrange(bits)
    s = Q.minmax_scale(x, bits, True)
    a = Q.fake_quantize(x, s, _zp(16), qmin, qmax, axis=0)
    b = torch.fake_quantize_per_channel_affine(x, s, _zp(16), 0, qmin, qmax)
    assert torch.equal(a, b)
    # every value lies on its channel's grid, within the range
    k = a / s[:, None]
    assert torch.allclose(k, torch.round(k), atol=1e-4) and k.round().min() >= qmin and k.round().max() <= qmax


def test_ste_gradient_passes_inside_and_stops_outside():
    s = torch.tensor(0.1)
    x = torch.tensor([0.05, 0.3, 0.69, 5.0, -5.0], requires_grad=True)  # 4-bit range is [-0.8, 0.7]
    Q.fake_quantize(x, s, _zp(), -8, 7).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_lsq_step_gradient_init_and_scale():
    torch.manual_seed(0)
    w = torch.randn(8, 16)
    q = Q.LSQQuantizer(w, 4)
    assert torch.allclose(q.scale, 2 * w.abs().mean() / math.sqrt(7))  # s0 = 2<|v|>/sqrt(Q_P)
    v = torch.tensor([0.12, 10.0, -10.0])
    q2 = Q.LSQQuantizer(v, 4)
    with torch.no_grad():
        q2.scale.fill_(0.1)
    q2(v).sum().backward()
    # d v_hat / d s = -v/s + round(v/s) inside, Q_P above, -Q_N below; times g = 1/sqrt(N_W Q_P)
    expected = (-1.2 + 1.0) + 7 - 8
    assert q2.scale.grad.item() == pytest.approx(expected / math.sqrt(3 * 7), rel=1e-5)


@pytest.mark.parametrize("bad", [0, 33, -1, 2.5, True])
def test_bad_bits_name_the_layer(bad):
    with pytest.raises(ValueError, match="conv1: bits must be an integer in \\[1, 32\\]"):
        Q.FakeQuantize(torch.tensor(0.1), bad, where="conv1")


@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_scale_names_the_layer(bad):
    with pytest.raises(ValueError, match="blocks.0.conv: scale must be finite and positive"):
        Q.FakeQuantize(torch.tensor(bad), 4, where="blocks.0.conv")


def test_empty_tensor_names_the_layer():
    with pytest.raises(ValueError, match="head: cannot quantize an empty tensor"):
        Q.FakeQuantize(torch.tensor(0.1), 4, where="head")(torch.empty(0, 3))
    with pytest.raises(ValueError, match="head: cannot quantize an empty tensor"):
        Q.LSQQuantizer(torch.empty(0), 4, where="head")


def test_transform_bad_bits(tiny):
    model, split, enc = tiny
    with pytest.raises(ValueError, match="uniform_ptq: bits must be"):
        W.uniform_ptq(model, split, enc, bits=0)


@pytest.mark.parametrize("method", [W.uniform_ptq, W.uniform_qat, W.lsq])
def test_weights_lie_on_the_grid_and_input_untouched(method, tiny):
    model, split, enc = tiny
    before = copy.deepcopy(model.state_dict())
    out = method(model, split, enc, bits=4, train=ONE if method is not W.uniform_ptq else None)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    for name, q in Q.quantizers_of(out.model).items():
        layer = out.model.get_submodule(name.rsplit(".", 1)[0])
        w = layer.weight.detach()
        s = q.scale.detach()
        k = w / (s.view(-1, *[1] * (w.dim() - 1)) if s.dim() else s)
        qmin, qmax = Q.qrange(q.bits)
        assert torch.allclose(k, torch.round(k), atol=1e-4) and k.round().min() >= qmin and k.round().max() <= qmax, name
    bits = {n: q.bits for n, q in Q.quantizers_of(out.model).items()}
    names = list(bits)
    if method is W.lsq:  # the paper's first and last layers at 8 bits, the rest at 4
        assert bits[names[0]] == bits[names[-1]] == 8 and all(bits[n] == 4 for n in names[1:-1])
    else:
        assert set(bits.values()) == {4}


def test_mask_survives_quantization_aware_training(tiny):
    model, split, enc = tiny
    pruned = pruning.magnitude(model, split, enc, sparsity=0.7, finetune=TrainConfig(epochs=0)).model
    masks = pruning.masks_of(pruning.prunable_layers(pruned))
    out = W.uniform_qat(pruned, split, enc, bits=4, train=ONE)
    layers = pruning.prunable_layers(out.model)
    fit(out.model, split, out.encoder, ONE, evaluate_test=False)  # a plain fit keeps mask and quantizer
    for n, m in masks.items():
        assert (layers[n].weight[m == 0] == 0).all(), n
        plist = layers[n].parametrizations.weight
        assert isinstance(plist[0], pruning.Mask) and isinstance(plist[1], Q.FakeQuantize)


def test_sparse_bits_formats_count_their_overhead():
    t = torch.zeros(40)
    t[[0, 3, 20, 39]] = 1.0  # gaps before the non-zeros: 0, 2, 16, 18
    assert metrics.sparse_bits(t, 4, "dense") == 160
    assert metrics.sparse_bits(t, 4, "bitmap") == 40 + 4 * 4
    assert metrics.sparse_bits(t, 4, "index") == 4 * (4 + 6)  # ceil(log2 40) = 6
    assert metrics.sparse_bits(t, 4, "relative", index_bits=4) == (4 + 2) * 8  # two fillers (16 // 16, 18 // 16)
    assert metrics.sparse_bits(t, 4, "auto") == 40
    with pytest.raises(ValueError, match="sparse format must be one of"):
        metrics.sparse_bits(t, 4, "csr")


def test_deployed_bits_follow_the_quantizers(tiny):
    model, split, enc = tiny
    fp = metrics.deployed_bits(model)
    out = W.uniform_ptq(model, split, enc, bits=4, per_channel=False).model
    layers = metrics.weight_layers(out)
    n_w = sum(m.weight.numel() for m in layers.values())
    assert fp - metrics.deployed_bits(out) == n_w * (32 - 4) - 32 * len(layers)  # one FP32 scale per layer
    pruned = pruning.magnitude(model, split, enc, sparsity=0.9, finetune=TrainConfig(epochs=0)).model
    both = W.uniform_ptq(pruned, split, enc, bits=4).model
    bitmap = metrics.deployed_bits(both, "bitmap")
    dense = metrics.deployed_bits(both)
    nnz = sum(int((m.weight != 0).sum()) for m in metrics.weight_layers(both).values())
    assert dense - bitmap == n_w * 4 - (n_w + nnz * 4)


# ----------------------------------------------------------------------------- membrane, binary, integer

from snncomp import spikes  # noqa: E402
from snncomp.quantization import binary as B  # noqa: E402
from snncomp.quantization import integer as I  # noqa: E402
from snncomp.quantization import membrane_potential as M  # noqa: E402
from snncomp.neurons import AdaptiveLIF, lif  # noqa: E402


def test_membrane_quantizer_keeps_state_on_the_grid_and_passes_gradient():
    mq = Q.MembraneQuantizer(0.25, 3)
    x = (torch.rand(6, 2, 5) * 2).requires_grad_()
    out = lif(x, 2.0, 1.0, quantize=mq)
    kept = 0.5 * out.membrane[:-1]  # beta V[t-1], which the neuron stores quantized
    k = mq(kept) / 0.25
    assert torch.equal(k, torch.round(k)) and k.min() >= -4 and k.max() <= 3
    out.spikes.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="blocks.0.neuron: scale must be finite and positive"):
        Q.MembraneQuantizer(0.0, 4, where="blocks.0.neuron")


def test_full_precision_grid_changes_nothing():
    """A membrane quantizer fine enough to hold every value leaves the neuron as it was."""
    torch.manual_seed(0)
    x = torch.round(torch.rand(5, 3, 4) * 64) / 64  # values on the 2^-6 grid
    a = lif(x, 2.0, 1.0)
    b = lif(x, 2.0, 1.0, quantize=Q.MembraneQuantizer(2.0**-16, 24))
    assert torch.equal(a.spikes, b.spikes) and torch.equal(a.membrane, b.membrane)


def test_membrane_quantization_rejects_other_neurons():
    with pytest.raises(TypeError, match="blocks.1: membrane quantization needs a LIF, IF or PLIF neuron"):
        M.set_membrane_quantizer("blocks.1", AdaptiveLIF(), Q.MembraneQuantizer(0.1, 4))


def test_q_spinn_sets_quantizers_on_a_copy(tiny):
    model, split, enc = tiny
    out = M.q_spinn(model, split, enc, bits=2, weight_bits=4)
    assert all(b.neuron.quantizer is None for b in model.blocks)
    assert all(isinstance(b.neuron.quantizer, Q.MembraneQuantizer) for b in out.model.blocks)
    assert out.model.blocks[0].neuron.quantizer.scale.item() == 0.5  # theta / 2^(b-1)
    with torch.no_grad():
        assert out.model(enc(split.test_x[:4])).shape == (4, 10)


def test_fold_batchnorm_keeps_the_function(tiny):
    model, split, enc = tiny
    net = copy.deepcopy(model)
    fit(net, split, enc, ONE, evaluate_test=False)  # non-trivial running statistics
    net.eval()
    folded = M.fold_batchnorm(copy.deepcopy(net)).eval()
    x = enc(split.test_x[:16])
    with torch.no_grad():
        assert torch.allclose(net(x), folded(x), atol=1e-4)


@pytest.mark.parametrize("bits", [(8, 8), (4, 4), (2, 2)])
def test_integer_inference_equals_fake_quantization(bits, tiny):
    model, split, enc = tiny
    pruned = pruning.magnitude(model, split, enc, sparsity=0.5, finetune=TrainConfig(epochs=0)).model
    out = M.mint(pruned, split, enc, bits=bits[0], membrane_bits=bits[1], train=ONE)
    net = out.model.eval()
    ints = I.export(net, out.encoder)
    x = split.test_x[:64]
    with torch.no_grad(), spikes.record(net) as rec:
        logits = net(out.encoder(x))
    got = ints.run(x)
    assert set(got.spikes) == set(rec)
    for name, s in got.spikes.items():
        assert s.dtype == torch.int64 and torch.equal(rec[name][0], s.float()), name
    assert torch.equal(logits, got.logits)
    assert all(t.dtype == torch.int64 for _, layer, _, _ in ints.blocks for t in (layer.weight, layer.bias))


def test_integer_export_needs_a_mint_model(tiny):
    model, split, enc = tiny
    ptq = W.uniform_ptq(model, split, enc, bits=4)
    with pytest.raises(ValueError, match="analog input must come on an integer grid"):
        I.export(ptq.model, enc)
    with pytest.raises(ValueError, match="blocks.0: integer export needs a per-tensor FakeQuantize"):
        I.export(ptq.model, Q.GridInput(enc.T, inner=enc))


def test_round_shift_is_round_half_even():
    a = torch.arange(-40, 41)
    for n in (1, 2, 3):
        assert torch.equal(I.round_shift(a, n), torch.round(a / 2**n).long())


def test_binary_weights_are_signs_times_alpha_and_keep_masks(tiny):
    model, split, enc = tiny
    pruned = pruning.magnitude(model, split, enc, sparsity=0.5, finetune=TrainConfig(epochs=0)).model
    masks = pruning.masks_of(pruning.prunable_layers(pruned))
    out = B.binary_weights(pruned, split, enc, train=ONE)
    for n, layer in pruning.prunable_layers(out.model).items():
        w = layer.weight.detach()
        values = w[masks[n] == 1].abs().unique()
        assert values.numel() == 1 and (w[masks[n] == 0] == 0).all(), n  # {-alpha, 0, alpha}
    theta = out.model.head.parametrizations.weight.original
    assert not torch.equal(theta.abs(), theta.abs().max().expand_as(theta))  # real-valued shadow weights
    bits = metrics.deployed_bits(out.model)
    n_w = sum(m.weight.numel() for m in metrics.weight_layers(out.model).values())
    # under a 50% mask the binary layer is ternary: 2 bits a weight dense (3 symbols), 1 bit a kept one sparse
    assert metrics.deployed_bits(model) - bits == n_w * 30 - 32 * 3
    nnz = sum(int((m.weight != 0).sum()) for m in metrics.weight_layers(out.model).values())
    assert bits - metrics.deployed_bits(out.model, "bitmap") == n_w * 2 - (n_w + nnz)


def test_binary_ste_passes_straight_through():
    """BinaryConnect passes the sign's gradient unchanged, also where |w| > 1 (the clip keeps w in range)."""
    w = torch.tensor([0.5, -0.2, 1.5, -3.0], requires_grad=True)
    B.Binarize(w, where="x")(w).sum().backward()
    alpha_grad = torch.sign(w.detach()) * torch.sign(w.detach()).sum() / 4  # d alpha/dw * sum(sign)
    assert torch.allclose(w.grad, torch.ones(4) * w.detach().abs().mean() + alpha_grad)


def test_binary_shadow_weights_are_clipped_after_every_step(tiny):
    model, split, enc = tiny
    big = copy.deepcopy(model)
    with torch.no_grad():
        big.head.weight.mul_(50)  # many shadow weights start past 1
    assert big.head.weight.abs().max() > 1
    seen = []

    from snncomp.train import Hook

    class Watch(Hook):
        def after_step(self, m, step):
            seen.append(float(m.head.parametrizations.weight.original.detach().abs().max()))

    out = B.binary_weights(big, split, enc, train=ONE, hooks=[Watch()])
    assert seen and max(seen) <= 1.0  # the clip ran before the caller's hook, at every step
    theta = out.model.head.parametrizations.weight.original
    assert theta.abs().max() <= 1.0 and (theta.abs() == 1.0).any()
    # a clipped weight still learns: its gradient is not zeroed
    x = enc(split.train_x[:8])
    out.model.zero_grad()
    torch.nn.functional.cross_entropy(out.model(x), split.train_y[:8]).backward()
    g = out.model.head.parametrizations.weight.original.grad
    assert (g[theta.abs() == 1.0] != 0).any()
    with pytest.raises(ValueError, match="clip must be > 0"):
        B.ClipShadowWeights({}, 0.0)


def test_kmeans_sharing_uses_at_most_2_to_the_b_values_and_trains_centroids(tiny):
    model, split, enc = tiny
    pruned = pruning.magnitude(model, split, enc, sparsity=0.5, finetune=TrainConfig(epochs=0)).model
    masks = pruning.masks_of(pruning.prunable_layers(pruned))
    out = W.kmeans_sharing(pruned, split, enc, bits=2, finetune=ONE)
    for n, layer in pruning.prunable_layers(out.model).items():
        w = layer.weight.detach()
        assert w[masks[n] == 1].unique().numel() <= 4 and (w[masks[n] == 0] == 0).all(), n
    code = Q.quantizer_of(out.model.head)
    fresh = Q.quantizer_of(W.kmeans_sharing(pruned, split, enc, bits=2, finetune=TrainConfig(epochs=0)).model.head)
    assert not torch.equal(code.centroids, fresh.centroids)  # fine-tuning moved the centroids
    c, idx = __import__("snncomp.quantization.sharing", fromlist=["x"]).kmeans_codebook(
        torch.tensor([0.0, 1.0, 1.1, 5.0, 5.2]), 2)
    assert torch.allclose(c, torch.tensor([1.05, 5.1])) and idx.tolist() == [0, 0, 0, 1, 1]  # zeros not clustered


def test_power_of_two_levels_follow_leng_et_al():
    from snncomp.quantization.sharing import power_of_two_levels

    assert power_of_two_levels(2).tolist() == [0.0, 1.0]  # ternary
    assert power_of_two_levels(3).tolist() == [0.0, 1.0, 2.0, 4.0]  # 7 values in 3 bits
    assert power_of_two_levels(3, max_exponent=1).tolist() == [0.0, 1.0, 2.0]  # the paper's {-2, +2}
    assert power_of_two_levels(4)[-1] == 64.0 and power_of_two_levels(4).numel() == 8  # 15 values in 4 bits
    with pytest.raises(ValueError, match="max_exponent must be an integer in \\[0, 0\\]"):
        power_of_two_levels(2, max_exponent=1)


def _on_set(w, alpha, levels):
    k = w / alpha
    allowed = torch.cat([-levels, levels]).unique()
    return bool(torch.isclose(k.reshape(-1, 1), allowed.reshape(1, -1), atol=1e-5).any(1).all())


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_admm_projection_lands_on_the_power_of_two_set(bits):
    from snncomp.quantization.sharing import power_of_two_levels, project_to_levels

    torch.manual_seed(0)
    v = torch.randn(1000)
    z, alpha = project_to_levels(v, bits)
    assert _on_set(z, alpha, power_of_two_levels(bits))
    assert (z != 0).float().mean() > 0.3  # not collapsed onto a few large weights
    q = z / alpha  # a fixed point of the alternation: alpha is the least-squares scale of its own levels
    assert torch.allclose(alpha, (v * q).sum() / (q * q).sum(), rtol=1e-4)
    if bits == 2:
        assert set(torch.round(q).unique().tolist()) == {-1.0, 0.0, 1.0}


@pytest.mark.parametrize("bits", [2, 3])
def test_admm_quantization_final_weights_lie_on_the_set(bits, tiny):
    from snncomp.quantization.sharing import PowerOfTwoQuantize, power_of_two_levels

    model, split, enc = tiny
    out = W.admm_quantization(model, split, enc, bits=bits, train=ONE, finetune=ONE)
    qs = Q.quantizers_of(out.model)
    assert qs and all(isinstance(q, PowerOfTwoQuantize) for q in qs.values())
    for name, q in qs.items():
        w = out.model.get_submodule(name.rsplit(".", 1)[0]).weight.detach()
        assert _on_set(w, q.alpha, power_of_two_levels(bits)), name
        assert q.alpha == pytest.approx(out.info["alpha"][name.rsplit(".", 1)[0]])
    with pytest.raises(ValueError, match="admm_quantization: bits must be >= 2"):
        W.admm_quantization(model, split, enc, bits=1)


# ----------------------------------------------------------------------------- issue 18: fidelity to the papers


def test_uniform_qat_takes_the_range_from_the_current_weights_at_every_step(tiny):
    """Jacob et al.: the min-max range comes from the weights of the step; the deployed grid is the same rule."""
    from snncomp.train import Hook

    model, split, enc = tiny
    checked = []

    class Check(Hook):
        def after_backward(self, m, step):  # the forward of this step has just used the quantizer
            for layer in metrics.weight_layers(m).values():
                q = Q.quantizer_of(layer)
                raw = layer.parametrizations.weight.original.detach()
                assert torch.equal(q.scale, Q.minmax_scale(raw, 2, True))
            checked.append(step.index)

    start = Q.minmax_scale(model.head.weight.detach(), 2, True)
    out = W.uniform_qat(model, split, enc, bits=2, train=ONE, hooks=[Check()])
    assert len(checked) == ONE.steps(split.train_x.shape[0])
    for name, layer in metrics.weight_layers(out.model).items():
        q, raw = Q.quantizer_of(layer), layer.parametrizations.weight.original.detach()
        w = layer.weight.detach()  # the deployed weights
        s = Q.minmax_scale(raw, 2, True)
        assert torch.equal(q.scale, s), name  # the buffer holds the grid the deployed integers use
        assert torch.equal(w, Q.fake_quantize(raw, s, torch.zeros(s.shape, dtype=torch.int32), -2, 1, axis=0)), name
        assert torch.equal(q.integers(raw).float() * s.view(-1, *[1] * (w.dim() - 1)), w), name
    assert not torch.equal(Q.quantizer_of(out.model.head).scale, start)  # the range moved with training


@pytest.mark.parametrize("per_channel", [False, True])
def test_lsq_equals_torch_learnable_fake_quantize(per_channel):
    """Values and gradients (input and step) against torch's LSQ kernels, grad_factor = g, away from the
    half-step band beyond the range where torch rounds before it clips and the paper clips before it rounds."""
    torch.manual_seed(3)
    w = torch.randn(6, 20) * torch.linspace(0.2, 2, 6)[:, None]
    q = Q.LSQQuantizer(w, 3, per_channel=per_channel)
    s = q.scale.detach()
    sv = s.view(-1, 1) if per_channel else s
    k = w / sv
    band = ((k > q.qp) & (k < q.qp + 0.5)) | ((k < -q.qn) & (k > -q.qn - 0.5))
    w = torch.where(band, w * 2, w)  # move any entry out of the band, deep into the clipped zone
    x1, x2 = w.clone().requires_grad_(), w.clone().requires_grad_()
    s2 = s.clone().requires_grad_()
    ours = q(x1)
    if per_channel:
        theirs = torch._fake_quantize_learnable_per_channel_affine(x2, s2, torch.zeros(6), 0, -q.qn, q.qp, q.grad_scale)
    else:
        theirs = torch._fake_quantize_learnable_per_tensor_affine(x2, s2.view(1), torch.zeros(1), -q.qn, q.qp,
                                                                  q.grad_scale)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert ((w / sv).abs() > q.qp).any()  # some entries are clipped
    g = torch.randn_like(w)
    ours.backward(g)
    theirs.backward(g)
    assert torch.allclose(x1.grad, x2.grad, rtol=1e-6, atol=0) and torch.equal(x1.grad == 0, x2.grad == 0)
    assert torch.allclose(q.scale.grad.reshape(-1), s2.grad.reshape(-1), rtol=1e-4, atol=1e-6)


def test_fit_sgd_momentum_and_lsq_trains_with_it(tiny):
    model, split, enc = tiny
    with pytest.raises(ValueError, match="momentum is an SGD setting"):
        fit(copy.deepcopy(model), split, enc, ONE, optimizer="adam", momentum=0.9)
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    cfg = TrainConfig(epochs=1, batch_size=128, lr=0.05, progress=False)
    fit(a, split, enc, cfg, evaluate_test=False, optimizer="sgd")
    fit(b, split, enc, cfg, evaluate_test=False, optimizer="sgd", momentum=0.9)
    assert not torch.equal(a.head.weight, b.head.weight)  # momentum changes the second step on
    out = W.lsq(model, split, enc, bits=2, train=ONE)
    assert out.info["optimizer"] == "sgd" and out.info["momentum"] == 0.9
    flat = W.lsq(model, split, enc, bits=2, first_last_bits=None, train=TrainConfig(epochs=0))
    assert {q.bits for q in Q.quantizers_of(flat.model).values()} == {2}


def test_fake_quantize_at_clip_boundaries_and_with_a_zero_point():
    s, qmin, qmax = torch.tensor(0.1), -8, 7
    for zp in (0, 3, -2):
        edges = torch.tensor([(qmin - zp) * 0.1, (qmax - zp) * 0.1, (qmin - zp - 0.5) * 0.1, (qmax - zp + 0.5) * 0.1,
                              (qmin - zp - 0.51) * 0.1, (qmax - zp + 0.51) * 0.1, 0.0, 0.049, 0.05, 0.051])
        x1, x2 = edges.clone().requires_grad_(), edges.clone().requires_grad_()
        a = Q.fake_quantize(x1, s, torch.tensor(zp, dtype=torch.int32), qmin, qmax)
        b = torch.fake_quantize_per_tensor_affine(x2, 0.1, zp, qmin, qmax)
        assert torch.equal(a, b), zp
        a.sum().backward()
        b.sum().backward()
        assert torch.equal(x1.grad, x2.grad), zp
        assert x1.grad[0] == 1 and x1.grad[1] == 1 and x1.grad[4] == 0 and x1.grad[5] == 0  # edges in, beyond out


def test_fake_quantize_per_channel_gradients_and_zero_points():
    torch.manual_seed(1)
    x = torch.randn(5, 12) * 2
    s = torch.tensor([0.05, 0.1, 0.2, 0.3, 0.5])
    zp = torch.tensor([0, 1, -3, 2, 0], dtype=torch.int32)
    for axis, xx in ((0, x), (1, x.t().contiguous())):
        x1, x2 = xx.clone().requires_grad_(), xx.clone().requires_grad_()
        a = Q.fake_quantize(x1, s, zp, -8, 7, axis=axis)
        b = torch.fake_quantize_per_channel_affine(x2, s, zp, axis, -8, 7)
        assert torch.equal(a, b)
        g = torch.randn_like(xx)
        a.backward(g)
        b.backward(g)
        assert torch.equal(x1.grad, x2.grad) and (x1.grad == 0).any() and (x1.grad != 0).any()


def test_stochastic_rounding_is_unbiased_and_seeded():
    k = torch.full((200_000,), 0.3) + torch.arange(200_000) % 5  # fractions 0.3 on several integers
    r1 = Q.round_to_grid(k, "stochastic", torch.Generator().manual_seed(7))
    r2 = Q.round_to_grid(k, "stochastic", torch.Generator().manual_seed(7))
    r3 = Q.round_to_grid(k, "stochastic", torch.Generator().manual_seed(8))
    assert torch.equal(r1, r2) and not torch.equal(r1, r3)
    assert torch.equal(r1, torch.round(r1)) and ((r1 - torch.floor(k)) >= 0).all() and ((r1 - torch.floor(k)) <= 1).all()
    assert (r1 - k).mean().abs() < 0.005  # E[r(k)] = k
    assert Q.round_to_grid(torch.tensor([1.7, -1.2]), "truncate").tolist() == [1.0, -2.0]
    mq = Q.MembraneQuantizer(0.25, 8, rounding="stochastic", seed=3)
    v = torch.full((100_000,), 0.3)  # 1.2 steps
    assert abs(float(mq(v).mean()) - 0.3) < 0.003
    assert torch.equal(Q.MembraneQuantizer(0.25, 8, rounding="stochastic", seed=3)(v), mq.__class__(
        0.25, 8, rounding="stochastic", seed=3)(v))
    with pytest.raises(ValueError, match="rounding must be one of"):
        Q.MembraneQuantizer(0.25, 4, rounding="up")


def test_fixed_point_weights_and_q_spinn_formats(tiny):
    torch.manual_seed(0)
    w = torch.randn(4, 50) * 0.3
    for rounding in ("nearest", "truncate", "stochastic"):
        q = Q.FixedPointQuantize(w, 6, 4, rounding=rounding, seed=1)
        k = q(w) * 16  # fraction bits 4: step 1/16
        assert torch.equal(k, torch.round(k)) and k.min() >= -32 and k.max() <= 31
    many = torch.stack([Q.FixedPointQuantize(w, 8, 3, rounding="stochastic", seed=i)(w) for i in range(400)])
    assert (many.mean(0) - w).abs().max() < 0.02  # unbiased over the seeds
    model, split, enc = tiny
    out = M.q_spinn(model, split, enc, bits=6, fraction_bits=3, weight_bits=8, weight_fraction_bits=5,
                    rounding="stochastic", seed=2)
    mq = out.model.blocks[0].neuron.quantizer
    assert mq.scale.item() == 0.125 and mq.rounding == "stochastic"
    assert all(isinstance(q, Q.FixedPointQuantize) for q in Q.quantizers_of(out.model).values())
    with pytest.raises(ValueError, match="need the fixed-point format"):
        M.q_spinn(model, split, enc, bits=4, weight_bits=4, rounding="truncate")


def test_mint_matches_the_authors_ranges_threshold_and_clamp_gradient(tiny):
    model, split, enc = tiny
    out = M.mint(model, split, enc, bits=4, membrane_bits=3, train=TrainConfig(epochs=0))
    for name, (layer, neuron) in M.spiking_blocks(out.model).items():
        q, s = Q.quantizer_of(layer), float(Q.quantizer_of(layer).scale)
        assert (q.qmin, q.qmax) == (-7, 7) and (neuron.quantizer.qmin, neuron.quantizer.qmax) == (-3, 3)
        theta = model.get_submodule(name).neuron.threshold
        assert torch.equal(neuron.threshold, torch.ceil(theta / s).clamp(min=1) * s), name
    mq = Q.MembraneQuantizer(0.5, 3, symmetric=True, saturate_grad=False)
    v = torch.tensor([0.4, 1.4, 1.6, -1.8, 5.0], requires_grad=True)
    mq(v).sum().backward()
    assert v.grad.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]  # v/s = 3.2 is clamped to 3 before rounding: no gradient


def test_kmeans_layer_under_a_mask_counts_a_symbol_for_zero(tiny):
    model, split, enc = tiny
    pruned = pruning.magnitude(model, split, enc, sparsity=0.5, finetune=TrainConfig(epochs=0)).model
    shared = W.kmeans_sharing(pruned, split, enc, bits=2, finetune=TrainConfig(epochs=0)).model
    dense_shared = W.kmeans_sharing(model, split, enc, bits=2, finetune=TrainConfig(epochs=0)).model
    n_w = sum(m.weight.numel() for m in metrics.weight_layers(model).values())
    # 2^2 centroids + the zero = 5 symbols: ceil(log2 5) = 3 bits a weight under the mask, 2 bits without one
    assert metrics.deployed_bits(shared) - metrics.deployed_bits(dense_shared) == n_w * (3 - 2)
    nnz = sum(int((m.weight != 0).sum()) for m in metrics.weight_layers(shared).values())
    layers = len(metrics.weight_layers(model))
    assert metrics.deployed_bits(shared, "bitmap") == metrics.deployed_bits(shared) - n_w * 3 + n_w + nnz * 2
    assert layers > 0
