r"""Structured mechanics: choosing units (channels of a conv block, neurons of a dense block, in a
`ConvNet` or an `MLP`) and removing them physically, together with the neuron state that belongs to them.

A `ConvNet` may end its conv blocks with dense blocks (`conv_snn(hidden=...)`): removing a channel
of the last conv block then removes its $H W$ input columns of the first dense layer, as it does
the readout's when no dense block follows.

A mask does not make a model smaller or faster by itself; `remove_units` does: it returns a model
with fewer parameters and fewer synaptic operations that computes what the masked model computes
(`mask_units`, tested equal).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..compress import unparametrize
from ..models import ConvBlock, block_neuron
from .masks import Mask, check_sparsity, scoped_masks, set_masks
from .scores import check_units_model

__all__ = ["units_of", "select_units", "remove_units", "mask_units"]


def units_of(block: nn.Module) -> int:
    """Channels of a conv block or neurons of a dense block."""
    return block.conv.out_channels if hasattr(block, "conv") else block.fc.out_features


def select_units(scores: dict[int, Tensor], sparsity: float, scope: str = "global") -> dict[int, Tensor]:
    """Indices of the units (channels or neurons) to keep in each block: the `round(sparsity * n)`
    lowest scores go, over all blocks at once (`global`) or per block (`layer`)."""
    check_sparsity(sparsity)
    masks = scoped_masks({str(i): s for i, s in scores.items()}, sparsity, scope)
    return {i: masks[str(i)].nonzero().flatten() for i in scores}


def _param(t: Tensor) -> nn.Parameter:
    return nn.Parameter(t.detach().clone())


def _slice_weight(layer: nn.Module, cut: Callable[[Tensor], Tensor], name: str) -> None:
    """`layer.weight <- cut(layer.weight)`, cutting a pruning mask on it the same way (it stays on)."""
    mask = None
    if parametrize.is_parametrized(layer, "weight"):
        params = list(layer.parametrizations.weight)
        if not all(isinstance(p, Mask) for p in params):
            raise NotImplementedError(f"{name}: removing units through a weight parametrized by "
                                      f"{[type(p).__name__ for p in params]} is not supported; bake the model first")
        mask = cut(params[0].mask)
        unparametrize(layer, "weight")
    layer.weight = _param(cut(layer.weight))
    if mask is not None:
        set_masks({name: layer}, {name: mask})


@torch.no_grad()
def remove_units(model: nn.Module, keep: dict[int, Tensor]) -> nn.Module:
    r"""A physically smaller copy of `model` keeping only the units `keep[i]` of block `i`.

    For a conv block, removing channel $c$ removes `conv.weight[c]`, the BatchNorm entries
    (`weight`, `bias`, `running_mean`, `running_var`), the neuron's per-channel state (`tau`,
    `threshold`, ... via `keep_channels`) and the input channel $c$ of the next convolution, or, for
    the last conv block, the columns $cHW \ldots (c+1)HW - 1$ of the flattened features in the layer
    that reads them (the first dense block's `fc`, else the readout). For a dense block, removing
    neuron $j$ removes row $j$ of `fc` (weight and bias), its neuron state and column $j$ of the next
    layer (the next dense block or the readout). Blocks not in `keep` are left whole. Pruning masks
    on the weights are cut with them and stay in force.
    """
    check_units_model(model, "remove_units")
    net = copy.deepcopy(model)
    for i, idx in sorted(keep.items()):
        block = net.blocks[i]
        idx = torch.as_tensor(idx, dtype=torch.long).sort().values
        n = units_of(block)
        if idx.numel() == 0:
            kind = "channels" if isinstance(block, ConvBlock) else "neurons"
            raise ValueError(f"would remove all {n} {kind} of blocks.{i}")
        if idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"blocks.{i} has {n} units; keep indices must lie in [0, {n})")
        nxt = net.blocks[i + 1] if i + 1 < len(net.blocks) else None
        # --8<-- [start:remove_channel]
        if isinstance(block, ConvBlock):
            conv, bn = block.conv, block.bn
            _slice_weight(conv, lambda w: w[idx], f"blocks.{i}.conv")  # [C_out', C_in, k, k]
            conv.out_channels = len(idx)
            bn.weight, bn.bias = _param(bn.weight[idx]), _param(bn.bias[idx])  # [C']
            bn.running_mean, bn.running_var = bn.running_mean[idx].clone(), bn.running_var[idx].clone()
            bn.num_features = len(idx)
            if isinstance(nxt, ConvBlock):
                _slice_weight(nxt.conv, lambda w: w[:, idx], f"blocks.{i + 1}.conv")  # [C_next, C', k, k]
                nxt.conv.in_channels = len(idx)
            else:  # the flattened maps feed a dense block or the readout
                reader, name = (nxt.fc, f"blocks.{i + 1}.fc") if nxt is not None else (net.head, "head")
                hw = reader.in_features // n  # H * W positions per channel
                # channel c owns the reader's columns cHW .. (c+1)HW - 1
                _slice_weight(reader, lambda w: w.view(w.shape[0], n, hw)[:, idx].reshape(w.shape[0], -1), name)
                reader.in_features = len(idx) * hw  # [F_out, C' H W]
        # --8<-- [end:remove_channel]
        else:
            fc = block.fc
            _slice_weight(fc, lambda w: w[idx], f"blocks.{i}.fc")  # [F', F_in]
            if fc.bias is not None:
                fc.bias = _param(fc.bias[idx])
            fc.out_features = len(idx)
            nxt_fc, nxt_name = (nxt.fc, f"blocks.{i + 1}.fc") if nxt is not None else (net.head, "head")
            _slice_weight(nxt_fc, lambda w: w[:, idx], nxt_name)  # [F_next, F']
            nxt_fc.in_features = len(idx)
        neuron = block_neuron(block)  # also the neuron behind TA-SNN's attention
        if neuron is not None:
            neuron.keep_channels(idx)
    return net


@torch.no_grad()
def mask_units(model: nn.Module, keep: dict[int, Tensor]) -> nn.Module:
    """A same-sized copy of `model` in which the units not in `keep` get zero input current, so
    their neurons never reach threshold (thresholds are positive) and emit no spikes: BatchNorm
    scale and shift zeroed (conv block) or `fc` rows and bias zeroed (dense block). `remove_units` with the
    same `keep` computes the same function with fewer parameters."""
    check_units_model(model, "mask_units")
    net = copy.deepcopy(model)
    for i, idx in keep.items():
        block = net.blocks[i]
        drop = torch.ones(units_of(block), dtype=torch.bool)
        drop[torch.as_tensor(idx, dtype=torch.long)] = False
        if isinstance(block, ConvBlock):
            block.bn.weight[drop] = 0  # gamma_c = 0
            block.bn.bias[drop] = 0  # beta_c = 0  ->  input current of channel c is 0
        else:
            w = block.fc.parametrizations.weight.original if parametrize.is_parametrized(block.fc, "weight") \
                else block.fc.weight
            w[drop] = 0  # rows of the dropped neurons (behind a mask, if any)
            if block.fc.bias is not None:
                block.fc.bias[drop] = 0
    return net
