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
        assert torch.allclose(k, torch.round(k), atol=1e-4) and k.round().min() >= -8 and k.round().max() <= 7, name
        assert q.bits == 4


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
    assert metrics.deployed_bits(model) - bits == n_w * 31 - 32 * 3


def test_binary_ste_is_clipped():
    w = torch.tensor([0.5, -0.2, 1.5, -3.0], requires_grad=True)
    B.Binarize(w, where="x")(w).sum().backward()
    alpha_grad = torch.sign(w.detach()) * torch.sign(w.detach()).sum() / 4  # d alpha/dw * sum(sign)
    assert torch.allclose(w.grad, torch.tensor([1.0, 1.0, 0.0, 0.0]) * w.detach().abs().mean() + alpha_grad)


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


def test_admm_quantization_ends_on_the_grid(tiny):
    model, split, enc = tiny
    out = W.admm_quantization(model, split, enc, bits=2, train=ONE)
    for name, q in Q.quantizers_of(out.model).items():
        w = out.model.get_submodule(name.rsplit(".", 1)[0]).weight.detach()
        assert (w / q.scale).round().unique().numel() <= 4, name
    with pytest.raises(ValueError, match="admm_quantization: bits must be >= 2"):
        W.admm_quantization(model, split, enc, bits=1)


def test_admm_projection_is_a_local_least_squares_fit():
    from snncomp.quantization.sharing import project_to_levels

    torch.manual_seed(0)
    v = torch.randn(1000)
    z, alpha = project_to_levels(v, 2)  # ternary levels {-alpha, 0, alpha}
    assert set(torch.round(z / alpha).unique().tolist()) == {-1.0, 0.0, 1.0}
    assert (z != 0).float().mean() > 0.3  # not collapsed onto a few large weights
    q = torch.round(z / alpha)
    assert torch.allclose(alpha, (v * q).sum() / (q * q).sum(), rtol=1e-4) or ((v - z) ** 2).sum() <= ((v - 1.01 * z) ** 2).sum()
