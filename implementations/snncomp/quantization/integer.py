r"""Integer-only inference: export a MINT-quantized model to integer tensors and run it on integers.

`export(model, encoder)` takes a model from `membrane_potential.mint` (every layer's weights, bias,
stored potential and threshold on one power-of-two grid $s_l$) and returns an `IntegerSNN` holding only
integers: weights $k_w$, biases $k_b$, thresholds $k_\theta$, the leak $\beta = n_\beta / 2^{m}$ as an
integer and a shift, and the membrane range. `IntegerSNN.run` computes with `int64` tensors only
(integer matrix products, shifts, comparisons). In units of $s_l 2^{-e}$, with $e$ the input's
fraction bits (8 for the 8-bit image grid of the first layer, 0 for spikes), each step is

$$A[t] = \sum k_w x[t] + 2^e k_b, \qquad q[t] = \mathrm{clamp}\big(\mathrm{rshift}(n_\beta V[t-1],\, m + e),\,
  q_{min}, q_{max}\big), \qquad H[t] = 2^e q[t] + A[t]$$

$$S[t] = [H[t] \ge 2^e k_\theta], \qquad V[t] = H[t](1 - S[t]) \ \text{(hard)} \quad\text{or}\quad
  H[t] - 2^e k_\theta S[t] \ \text{(soft)}$$

with $\mathrm{rshift}$ a right shift that rounds half to even, the rounding `MembraneQuantizer` does.
The readout sums $\sum_t (k_w S[t] + k_b)$; the logits are that sum times $s_{head}/T$. Because every
step is a power of two and every value is a small integer times it, the fake-quantized FP32 model
computes the same numbers exactly, so the spikes of both are equal (a test checks it). For $\beta = 1/2$
(the baselines' $\tau = 2$) the leak is a shift: the neuron update needs no multiplier, MINT's point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..data.encoding import Encoder
from ..neurons import IF, LIF
from .membrane_potential import spiking_blocks
from .quantizers import FakeQuantize, GridInput, MembraneQuantizer, quantizer_of

__all__ = ["IntLayer", "IntNeuron", "IntegerSNN", "IntegerRun", "export", "round_shift"]


def round_shift(a: Tensor, n: int) -> Tensor:
    r"""$a / 2^n$ rounded half to even, on integers only."""
    if n == 0:
        return a
    q = a >> n  # floor
    r = a - (q << n)  # remainder in [0, 2^n)
    half = 1 << (n - 1)
    return q + ((r > half) | ((r == half) & ((q & 1) == 1))).long()


@dataclass
class IntLayer:
    """A conv or linear layer as integers on its grid `step`."""

    weight: Tensor  # int64 k_w
    bias: Tensor | None  # int64 k_b
    step: float  # s_l (a power of two)
    stride: int = 1
    padding: int = 0

    def __call__(self, x: Tensor) -> Tensor:
        """Integer synaptic sums of `x: [N, C, H, W]` or `[N, F]` (int64)."""
        if self.weight.dim() == 2:
            return x @ self.weight.t()
        k = self.weight.shape[-1]
        x = nn.functional.pad(x, (self.padding,) * 4)
        patches = x.unfold(2, k, self.stride).unfold(3, k, self.stride)  # [N, C, H', W', k, k]
        patches = patches.permute(0, 2, 3, 1, 4, 5).flatten(3)  # [N, H', W', C k k]
        return (patches @ self.weight.flatten(1).t()).permute(0, 3, 1, 2)  # [N, C_out, H', W']


@dataclass
class IntNeuron:
    """A LIF/IF neuron's integer constants."""

    threshold: Tensor  # int64 k_theta, per channel
    beta_num: int  # beta = beta_num / 2^beta_shift
    beta_shift: int
    qmin: int
    qmax: int
    soft: bool


@dataclass
class IntegerRun:
    """What `IntegerSNN.run` computed: every spiking layer's spikes `[T, B, ...]` (int64) and the readout."""

    spikes: dict[str, Tensor] = field(default_factory=dict)
    readout: Tensor | None = None  # sum over t of k_w S[t] + k_b, int64 [B, classes]
    logits: Tensor | None = None  # readout * s_head / T, for comparison with the FP32 model


@dataclass
class IntegerSNN:
    """An integer-only SNN: `blocks` of (name, layer, neuron, pool), a readout `head`, `T` steps."""

    blocks: list[tuple[str, IntLayer, IntNeuron, int]]
    head: IntLayer
    T: int
    input_bits: int | None  # fraction bits of the integer image (None: the encoder gives spikes)
    encoder: Encoder

    def run(self, images: Tensor) -> IntegerRun:
        if self.input_bits is not None:
            x = self.encoder.integers(images)  # [B, ...] integer pixels, the same at every step
            x = x.unsqueeze(0).expand(self.T, *x.shape)
            e = self.input_bits
        else:
            x, e = self.encoder(images).long(), 0  # spikes [T, B, ...]
        out = IntegerRun()
        for name, layer, neuron, pool in self.blocks:
            if x.dim() == 3 or (x.dim() == 5 and layer.weight.dim() == 2):
                x = x.flatten(2)
            acc = torch.stack([layer(x[t]) for t in range(self.T)])  # [T, B, ...]
            if layer.bias is not None:
                acc = acc + (_channel(layer.bias, acc[0]) << e)
            x = _lif(acc, neuron, e)
            out.spikes[f"{name}.neuron"] = x
            if pool > 1:
                x = x.unfold(3, pool, pool).unfold(4, pool, pool).amax((-1, -2))
            e = 0  # later layers are fed spikes
        x = x.flatten(2)
        bias = self.head.bias if self.head.bias is not None else 0
        readout = sum(self.head(x[t]) + bias for t in range(self.T))
        out.readout = readout
        out.logits = readout.double().mul(self.head.step / self.T).float()
        return out


def _channel(p: Tensor, like: Tensor) -> Tensor:
    return p.view(-1, *[1] * (like.dim() - 2)) if like.dim() > 2 else p


def _lif(acc: Tensor, n: IntNeuron, e: int) -> Tensor:
    """The integer neuron over `acc: [T, B, C, ...]` in units of s 2^-e; spikes as int64."""
    theta = _channel(n.threshold, acc[0]) << e
    v = torch.zeros_like(acc[0])  # V[-1] = 0
    spikes = []
    for t in range(acc.shape[0]):
        q = round_shift(n.beta_num * v, n.beta_shift + e).clamp(n.qmin, n.qmax)  # Q(beta V[t-1]) in units of s
        h = (q << e) + acc[t]  # H[t]
        s = (h >= theta).long()  # S[t]
        v = h - theta * s if n.soft else h * (1 - s)  # V[t]
        spikes.append(s)
    return torch.stack(spikes)


def _int_step(layer: nn.Module, name: str) -> tuple[FakeQuantize, float]:
    q = quantizer_of(layer)
    if not isinstance(q, FakeQuantize) or q.per_channel:
        raise ValueError(f"{name}: integer export needs a per-tensor FakeQuantize on the weight (use mint)")
    s = float(q.scale)
    if s != 2.0 ** round(math.log2(s)):
        raise ValueError(f"{name}: integer export needs a power-of-two step, got {s}")
    return q, s


def _int_layer(layer: nn.Module, name: str) -> IntLayer:
    q, s = _int_step(layer, name)
    bias = None
    if layer.bias is not None:
        qb = quantizer_of(layer, "bias")
        if not isinstance(qb, FakeQuantize) or float(qb.scale) != s:
            raise ValueError(f"{name}: the bias must be quantized on the weights' grid (use mint)")
        bias = qb.integers(layer.bias)
    conv = isinstance(layer, nn.Conv2d)
    if conv and (layer.groups != 1 or layer.dilation != (1, 1) or layer.padding_mode != "zeros"):
        raise ValueError(f"{name}: integer export supports plain convolutions only")
    return IntLayer(q.integers(layer.weight), bias, s, layer.stride[0] if conv else 1, layer.padding[0] if conv else 0)


def _int_neuron(neuron: nn.Module, name: str, step: float) -> IntNeuron:
    if not isinstance(neuron, (LIF, IF)) or getattr(neuron, "v_reset", 0.0) != 0.0:
        raise ValueError(f"{name}: integer export needs a LIF or IF neuron with V_reset = 0")
    mq = neuron.quantizer
    if not isinstance(mq, MembraneQuantizer) or float(mq.scale) != step or mq.rounding != "nearest":
        raise ValueError(f"{name}: the membrane must be quantized on the weights' grid (use mint)")
    beta = (1.0 - 1.0 / neuron.tau) if isinstance(neuron, LIF) else torch.ones(())
    num = beta * 2**16
    if not torch.equal(num, torch.round(num)) or num.unique().numel() != 1:
        raise ValueError(f"{name}: the leak must be one multiple of 2^-16 for integer export, got {beta}")
    k = neuron.threshold / step
    if not torch.equal(k, torch.round(k)):
        raise ValueError(f"{name}: the threshold is not on the grid (use mint)")
    num_i, shift = int(num.flatten()[0]), 16
    while shift and num_i % 2 == 0:
        num_i, shift = num_i // 2, shift - 1
    return IntNeuron(k.long().reshape(-1), num_i, shift, mq.qmin, mq.qmax, neuron.reset == "soft")


def export(model: nn.Module, encoder: Encoder) -> IntegerSNN:
    """The integer-only version of a `mint` model fed by `encoder` (a `GridInput` or a spike encoder)."""
    if not encoder.binary and not isinstance(encoder, GridInput):
        raise ValueError("export: an analog input must come on an integer grid (GridInput, as mint returns)")
    blocks = []
    for name, (layer, neuron) in spiking_blocks(model).items():
        il = _int_layer(layer, name)
        pool = getattr(model.get_submodule(name), "pool", None)
        k = pool.kernel_size if isinstance(pool, nn.MaxPool2d) else 1
        if isinstance(pool, nn.MaxPool2d) and (pool.stride != k or pool.padding != 0):
            raise ValueError(f"{name}: integer export supports non-overlapping max-pooling only")
        blocks.append((name, il, _int_neuron(neuron, f"{name}.neuron", il.step), k))
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear) or not blocks:
        raise ValueError("export: needs spiking blocks and a linear readout `head`")
    return IntegerSNN(blocks, _int_layer(head, "head"), encoder.T,
                      encoder.bits if isinstance(encoder, GridInput) else None, encoder)
