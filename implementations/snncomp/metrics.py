"""Model and activity metrics, aligned with NeuroBench [@yik2025neurobench].

| metric | definition here | NeuroBench |
|---|---|---|
| `params` | number of parameters | same |
| `footprint_bytes` | bytes of parameters and buffers, zeros included | same |
| `deployed_bits` | $\\sum$ numel $\\times$ bits over parameters and buffers, with a module's `<name>_bits` attribute overriding the dtype width | our addition, for quantised tensors |
| `connection_sparsity` | fraction of zero weights in conv and linear layers | same as its code |
| `activation_sparsity` | fraction of zero outputs of the spiking layers over layers, steps and samples | same |
| `dense_synops` | every connection of every conv and linear layer at every step it runs, per sample | same |
| `effective_macs` | connections with a non-zero weight and a non-zero, non-binary input, per sample | same |
| `effective_acs` | connections with a non-zero weight and a non-zero binary (spike) input, per sample | same |
| `spikes_per_sample` | spikes summed over neurons and steps, per sample | our addition |
| `firing_rates` | spikes per neuron per step, for each spiking layer | our addition |

Synaptic operations are counted by forward hooks on every `nn.Conv2d` and `nn.Linear` from the
tensors the layer really receives: for a convolution, the effective count is the convolution of the
non-zero-input indicator with the non-zero-weight indicator, summed. Bias, pooling and normalisation
are not counted. A layer whose input holds only 0 and 1 counts accumulates (ACs), any other layer
multiply-accumulates (MACs).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from . import spikes as spike_rec
from .encoding import Encoder

__all__ = ["Report", "LayerOps", "count_params", "footprint_bytes", "deployed_bits", "connection_sparsity",
           "synops", "counting", "measure"]


def count_params(model: nn.Module) -> int:
    """Number of parameters (zeros included)."""
    return sum(p.numel() for p in model.parameters())


def footprint_bytes(model: nn.Module) -> int:
    """Bytes of parameters and buffers as stored (zeros included)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def deployed_bits(model: nn.Module) -> int:
    """Bits needed to deploy the tensors: numel x bit width, where a module attribute `<name>_bits`
    (e.g. `weight_bits = 4` set by a quantiser) overrides the width of its stored dtype."""
    total = 0
    for module in model.modules():
        for name, t in list(module._parameters.items()) + list(module._buffers.items()):
            if t is None:
                continue
            bits = getattr(module, f"{name}_bits", t.element_size() * 8)
            total += t.numel() * int(bits)
    return total


def _weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def connection_sparsity(model: nn.Module) -> float:
    """Fraction of zero weights over all conv and linear layers."""
    layers = _weighted_layers(model)
    total = sum(m.weight.numel() for _, m in layers)
    zeros = sum((m.weight == 0).sum().item() for _, m in layers)
    return zeros / total if total else 0.0


@dataclass
class LayerOps:
    """Synaptic operations of one layer, summed over all calls (not yet divided by samples)."""

    dense: float = 0.0
    macs: float = 0.0
    acs: float = 0.0


def _layer_ops(module: nn.Module, x: Tensor, out: Tensor) -> LayerOps:
    w_nz = (module.weight != 0).to(x.dtype)
    x_nz = (x != 0).to(x.dtype)
    binary = bool(((x == 0) | (x == 1)).all())
    if isinstance(module, nn.Conv2d):
        fan_in = module.weight[0].numel()  # C_in/groups * kh * kw
        dense = out.numel() * fan_in
        eff = F.conv2d(x_nz, w_nz, None, module.stride, module.padding, module.dilation, module.groups).sum().item()
    else:
        dense = out.numel() * module.in_features
        eff = (x_nz.reshape(-1, module.in_features) @ w_nz.t()).sum().item()
    return LayerOps(dense=float(dense), macs=0.0 if binary else eff, acs=eff if binary else 0.0)


@dataclass
class Report:
    """What `measure` found; operation and spike counts are per sample, over all time steps."""

    params: int
    footprint_bytes: int
    deployed_bits: int
    connection_sparsity: float
    activation_sparsity: float
    dense_synops: float
    effective_macs: float
    effective_acs: float
    spikes_per_sample: float
    firing_rates: dict[str, float] = field(default_factory=dict)
    layers: dict[str, LayerOps] = field(default_factory=dict)
    accuracy: float | None = None
    samples: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@contextmanager
def counting(model: nn.Module) -> Iterator[dict[str, LayerOps]]:
    """Context manager: while active, every forward call adds each conv/linear layer's synaptic
    operations (summed over the batch) to the yielded `{layer name: LayerOps}`."""
    ops: dict[str, LayerOps] = {}

    def hook(m, i, o, name):
        got = _layer_ops(m, i[0], o)
        acc = ops.setdefault(name, LayerOps())
        acc.dense += got.dense
        acc.macs += got.macs
        acc.acs += got.acs

    handles = [module.register_forward_hook(lambda m, i, o, name=name: hook(m, i, o, name))
               for name, module in _weighted_layers(model)]
    try:
        yield ops
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def synops(model: nn.Module, inputs: Tensor) -> dict[str, LayerOps]:
    """Synaptic operations of each conv/linear layer for one forward of `inputs: [T, B, ...]`,
    summed over the batch (divide by `B` for per-sample numbers)."""
    with counting(model) as ops:
        model(inputs)
    return ops


@torch.no_grad()
def measure(model: nn.Module, x: Tensor, encoder: Encoder, y: Tensor | None = None, batch_size: int = 250,
            seed: int = 1234) -> Report:
    """Measure `model` on images `x: [N, ...]` encoded by `encoder` (eval mode; rate codes from `seed`).

    Gives accuracy too when labels `y` are passed.
    """
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    spike_sum: dict[str, float] = {}
    spike_numel: dict[str, int] = {}
    correct, n = 0, x.shape[0]
    try:
        with counting(model) as layers:
            for start in range(0, n, batch_size):
                xb = encoder(x[start : start + batch_size], gen)  # [T, B, ...]
                with spike_rec.record(model) as rec:
                    logits = model(xb)
                for name, outs in rec.items():
                    for s in outs:
                        spike_sum[name] = spike_sum.get(name, 0.0) + s.sum().item()
                        spike_numel[name] = spike_numel.get(name, 0) + s.numel()
                if y is not None:
                    correct += (logits.argmax(1) == y[start : start + batch_size]).sum().item()
    finally:
        model.train(was_training)
    per = {k: LayerOps(v.dense / n, v.macs / n, v.acs / n) for k, v in layers.items()}
    total_spikes = sum(spike_sum.values())
    total_numel = sum(spike_numel.values())
    return Report(
        params=count_params(model),
        footprint_bytes=footprint_bytes(model),
        deployed_bits=deployed_bits(model),
        connection_sparsity=connection_sparsity(model),
        activation_sparsity=1.0 - total_spikes / total_numel if total_numel else 0.0,
        dense_synops=sum(v.dense for v in per.values()),
        effective_macs=sum(v.macs for v in per.values()),
        effective_acs=sum(v.acs for v in per.values()),
        spikes_per_sample=total_spikes / n,
        firing_rates={k: spike_sum[k] / spike_numel[k] for k in spike_sum if spike_numel[k]},
        layers=per,
        accuracy=correct / n if y is not None else None,
        samples=n,
    )
