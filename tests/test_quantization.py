"""Quantization: the fake quantizer against torch's, STE and LSQ gradients, masks under QAT, bad input,
deployed bits, membrane quantization, binary weights, integer-only inference and weight sharing."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from snncomp import data, encoding, metrics, models, pruning
from snncomp.quantization import quantizers as Q
from snncomp.quantization import weights as W
from snncomp.train import TrainConfig, fit

ONE = TrainConfig(epochs=1, batch_size=128, progress=False)


@pytest.fixture(scope="module")
def tiny():
    s = data.digits()
    split = data.Split(s.train_x[:256], s.train_y[:256], s.test_x[:64], s.test_y[:64], "digits-tiny")
    return models.conv_snn((1, 8, 8), channels=(4, 8), seed=0), split, encoding.Direct(2)


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
