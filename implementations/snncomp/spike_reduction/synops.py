r"""Synaptic operations as a differentiable function of the spikes: the shared mechanics of the
synaptic-operation loss [@sorbaro2020optimizing].

A spike arriving at input position $i$ of a layer costs one accumulate per non-zero synapse it
reaches, its effective **fan-out** $f_i$. The layer's effective operations are then linear in its input:

$$\mathrm{SynOps} = \sum_i x_i\, f_i, \qquad f_i = \#\{(o, k) : \text{tap } k \text{ of output } o \text{ reads } i,\ w_k \ne 0\},$$

summed over time steps and samples. For a linear layer $f_i$ is the number of non-zero weights in
column $i$; for a convolution it is the transposed convolution of an all-ones output with the
non-zero-weight indicator, so taps that fall on zero padding are not counted (the same rule as
`metrics`, and as sinabs' connection map, which counts every weight rather than the non-zero ones).
For spike inputs ($x_i \in \{0, 1\}$) this equals `metrics.measure`'s effective count exactly, and its
gradient with respect to $x_i$ is $f_i$: a spike that feeds many synapses costs more than one that feeds
few, which a plain spike count ignores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..spikes import is_spike_tensor

__all__ = ["fan_out", "layer_synops", "SynopCount", "count_synops"]


def fan_out(module: nn.Module, in_shape: tuple[int, ...]) -> Tensor:
    """Effective fan-out of every input position of `module` (`nn.Conv2d` or `nn.Linear`) for inputs of
    per-sample shape `in_shape` (`(C, H, W)` or `(F,)`): a float64 tensor of that shape."""
    # --8<-- [start:fan_out]
    w_nz = (module.weight.detach() != 0).to(torch.float64)
    if isinstance(module, nn.Linear):
        return w_nz.sum(0)  # [in_features]
    if not isinstance(module, nn.Conv2d):
        raise TypeError(f"fan_out: expected nn.Conv2d or nn.Linear, got {type(module).__name__}")
    if module.padding_mode != "zeros":
        raise ValueError(f"fan_out: only zero padding is supported, got padding_mode={module.padding_mode!r}")
    c, h, w = in_shape
    ones_in = torch.zeros(1, c, h, w, dtype=torch.float64)
    out_hw = F.conv2d(ones_in, w_nz, None, module.stride, module.padding, module.dilation, module.groups).shape[-2:]
    ones_out = torch.ones(1, module.out_channels, *out_hw, dtype=torch.float64)
    full = F.conv_transpose2d(ones_out, w_nz, None, module.stride, module.padding, 0, module.groups, module.dilation)
    # the transposed convolution may come out short of the input on the bottom/right edge (stride > 1);
    # positions it does not reach have no fan-out
    fo = torch.zeros(c, h, w, dtype=torch.float64)
    fo[:, : full.shape[-2], : full.shape[-1]] = full[0, :, :h, :w]
    # --8<-- [end:fan_out]
    return fo


def layer_synops(module: nn.Module, x: Tensor) -> tuple[Tensor, bool]:
    """Effective synaptic operations of one call of `module` on `x` (`[N, ...]`, time folded into the
    batch), summed over `N`, as a float64 scalar; and whether they are accumulates (spike input).

    Spike inputs keep their gradient (the count is $\\sum_i x_i f_i$); analog inputs are counted by their
    non-zero indicator, a constant, as `metrics` counts MACs."""
    fo = fan_out(module, tuple(x.shape[1:]))
    binary = is_spike_tensor(x.detach(), signed=True)  # the metric's test: -1, 0 and 1 only -> accumulates
    if not binary:
        src = (x.detach() != 0).to(x.dtype)
    elif bool((x.detach() < 0).any()):
        src = x.abs()  # ternary spikes: a -1 is one operation, as in the metric
    else:
        src = x  # spikes in {0, 1}: the gradient with respect to x_i is f_i
    return (src.sum(0).to(torch.float64) * fo).sum(), binary


@dataclass
class SynopCount:
    """Effective operations per sample of one forward, split into accumulates and multiply-accumulates,
    with the per-layer totals; `acs` carries the gradient with respect to the spikes."""

    acs: Tensor
    macs: Tensor
    layers: dict[str, float]

    @property
    def total(self) -> Tensor:
        return self.acs + self.macs


def count_synops(model: nn.Module, inputs: dict[str, list[Tensor]], samples: int) -> SynopCount:
    """Sum `layer_synops` over the recorded `inputs` of every conv/linear layer of `model`
    (`{layer name: [input of each call]}`, as `spikes.record_inputs` gives) and divide by `samples`."""
    if samples < 1:
        raise ValueError(f"count_synops: samples must be >= 1, got {samples}")
    modules = dict(model.named_modules())
    acs = torch.zeros((), dtype=torch.float64)
    macs = torch.zeros((), dtype=torch.float64)
    layers: dict[str, float] = {}
    for name, calls in inputs.items():
        if name not in modules:
            raise KeyError(f"count_synops: recorded layer {name!r} is not a module of {type(model).__name__}")
        for x in calls:
            ops, binary = layer_synops(modules[name], x)
            if binary:
                acs = acs + ops
            else:
                macs = macs + ops
            layers[name] = layers.get(name, 0.0) + ops.item() / samples
    return SynopCount(acs / samples, macs / samples, layers)
