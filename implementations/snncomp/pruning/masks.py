r"""Masks: which weights unstructured pruning may zero, how many, and how the zeros stay zero.

A mask is a `Mask` parametrization on the layer's weight (`torch.nn.utils.parametrize`, the way
`torch.nn.utils.prune` keeps its masks on the module): the layer's `weight` is computed as
$w = \theta \odot m$ from the stored $\theta$ and the $\{0, 1\}$ buffer $m$. The zeros therefore
survive any later training (a plain `fit`, another method, quantisation-aware training) with no
hook, since $\partial L / \partial \theta = m \odot \partial L / \partial w$ is zero where $m = 0$.
`compress.bake` turns the mask into a plain tensor for export.

Masks are chosen from importance scores with an exact count of zeros: `round(sparsity * N)` over
one global pool (`global_masks`), in every layer separately (`layer_masks`), or over one pool of
scores divided by their layer's mean (`normalised_masks`).

**Why a normalised pool.** A convolution followed by BatchNorm computes the same function when its
weights are multiplied by any $c > 0$: BatchNorm divides the scale out again. Such a layer's
magnitudes have no scale of their own; in one global ranking, a layer whose weights happen to be
small (a wide layer initialised with a small fan-in-scaled spread, or one shrunk by weight decay) is
cut first although its weights matter as much. Dividing each layer's scores by its mean score makes
the ranking invariant to that rescaling, while still letting layers end at different sparsities.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..metrics import weight_layers

__all__ = ["Masks", "Mask", "check_sparsity", "prunable_layers", "global_masks", "layer_masks",
           "normalised_masks", "SCOPES", "scoped_masks", "keep_pruned", "set_masks", "masks_of", "combine", "prune_masks", "topup_to_sparsity"]

Masks = dict[str, Tensor]  # layer name -> {0, 1} mask shaped like its weight


def check_sparsity(sparsity: float, what: str = "sparsity") -> float:
    """`sparsity` as a float, or a `ValueError` when it lies outside [0, 1)."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity < 1.0:
        raise ValueError(f"{what} must lie in [0, 1), got {sparsity!r}")
    return float(sparsity)


def prunable_layers(model: nn.Module, *, include_head: bool = True) -> dict[str, nn.Module]:
    """The layers whose weights unstructured pruning may zero: `metrics.weight_layers` (every
    `nn.Conv2d` and `nn.Linear`), optionally without the readout `head`. Biases, BatchNorm and neuron
    parameters are never pruned."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"pruning needs an nn.Module, got {type(model).__name__}")
    layers = weight_layers(model)
    if not include_head:
        layers.pop("head", None)
    if not layers:
        raise TypeError(f"pruning needs nn.Conv2d or nn.Linear layers; {type(model).__name__} has none")
    return layers


# --8<-- [start:mask]
class Mask(nn.Module):
    r"""The parametrization $w = \theta \odot m$ with a fixed $\{0, 1\}$ buffer `mask`.

    With `record_grad = True` it also keeps $\partial L / \partial w$ of the last backward pass in
    `grad`, dense (masked entries included): what regrowth by gradient needs.
    """

    def __init__(self, mask: Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.detach().clone())
        self.record_grad = False
        self.grad: Tensor | None = None

    def forward(self, theta: Tensor) -> Tensor:
        w = theta * self.mask  # w = theta * m
        if self.record_grad and w.requires_grad:
            w.register_hook(self._keep)
        return w

    def _keep(self, g: Tensor) -> None:
        self.grad = g.detach().clone() if self.grad is None else self.grad + g.detach()
# --8<-- [end:mask]


def _mask_param(module: nn.Module) -> Mask | None:
    if parametrize.is_parametrized(module, "weight"):
        for p in module.parametrizations.weight:
            if isinstance(p, Mask):
                return p
    return None


@torch.no_grad()
def set_masks(layers: dict[str, nn.Module], masks: Masks) -> None:
    r"""Put `masks[name]` on each layer's weight, replacing a mask already there. The stored
    $\theta$ is zeroed where the mask is 0, so a weight regrown later starts at zero."""
    for n, m in masks.items():
        module = layers[n]
        if m.shape != module.weight.shape:
            raise ValueError(f"mask for {n} has shape {tuple(m.shape)}, its weight {tuple(module.weight.shape)}")
        m = m.to(module.weight.dtype)
        param = _mask_param(module)
        if param is None:
            param = Mask(m)
            parametrize.register_parametrization(module, "weight", param)
        else:
            param.mask.copy_(m)
        module.parametrizations.weight.original.mul_(m)


def masks_of(layers: dict[str, nn.Module]) -> Masks | None:
    """The masks on `layers` (all ones for an unmasked layer), or `None` when no layer has one."""
    found = {n: _mask_param(m) for n, m in layers.items()}
    if all(p is None for p in found.values()):
        return None
    return {n: p.mask.clone() if p is not None else torch.ones_like(layers[n].weight) for n, p in found.items()}


def combine(masks: Masks, prior: Masks | None) -> Masks:
    """`masks` with every entry a `prior` mask had zeroed kept zero (a later method never revives
    an earlier method's cuts)."""
    return masks if prior is None else {n: m * prior[n] for n, m in masks.items()}


# --8<-- [start:global_masks]
def global_masks(scores: dict[str, Tensor], sparsity: float) -> Masks:
    """Masks zeroing exactly `round(sparsity * N)` entries: the lowest scores in one pool of N."""
    sparsity = check_sparsity(sparsity)
    flat = torch.cat([s.flatten() for s in scores.values()])  # [N]
    k = round(sparsity * flat.numel())  # number of zeros
    keep = torch.ones_like(flat, dtype=torch.bool)
    if k:
        keep[torch.topk(flat, k, largest=False).indices] = False
    out, start = {}, 0
    for n, s in scores.items():
        out[n] = keep[start : start + s.numel()].view_as(s).to(s.dtype)
        start += s.numel()
    return out
# --8<-- [end:global_masks]


def layer_masks(scores: dict[str, Tensor], sparsity: float) -> Masks:
    """Masks zeroing `round(sparsity * n_l)` lowest-scoring entries in every layer separately."""
    return {n: global_masks({n: s}, sparsity)[n] for n, s in scores.items()}


def normalised_masks(scores: dict[str, Tensor], sparsity: float) -> Masks:
    r"""`global_masks` over the scores divided by their layer's mean, $s_i / \overline{s}_l$.

    The mean runs over the layer's non-negative scores (`keep_pruned` marks already-cut entries
    with -1, which stay below every survivor). Multiplying one layer's scores by a constant leaves
    the masks unchanged (tested), which a plain global pool does not do.
    """
    out = {}
    for n, s in scores.items():
        live = s[s >= 0]
        mean = float(live.mean()) if live.numel() else 0.0
        out[n] = s / mean if mean > 0 else s  # s_i / mean_l(s)
    return global_masks(out, sparsity)


SCOPES = ("global", "layer", "normalised")


def scoped_masks(scores: dict[str, Tensor], sparsity: float, scope: str) -> Masks:
    """`global_masks` for `scope="global"`, `layer_masks` for `scope="layer"`, `normalised_masks`
    for `scope="normalised"`."""
    if scope == "global":
        return global_masks(scores, sparsity)
    if scope == "layer":
        return layer_masks(scores, sparsity)
    if scope == "normalised":
        return normalised_masks(scores, sparsity)
    raise ValueError(f"scope must be one of {', '.join(map(repr, SCOPES))}, got {scope!r}")


def keep_pruned(scores: dict[str, Tensor], masks: Masks | None) -> dict[str, Tensor]:
    """Scores with already-pruned entries set to -1, so they are cut first again."""
    if masks is None:
        return scores
    return {n: s.masked_fill(masks[n] == 0, -1.0) for n, s in scores.items()}


def prune_masks(scores: dict[str, Tensor], sparsity: float, scope: str, prior: Masks | None) -> Masks:
    """Masks cutting the lowest `scores` to `sparsity` (`scoped_masks`), with the entries a `prior`
    mask already cut ranked first and kept cut (`keep_pruned`, `combine`)."""
    return combine(scoped_masks(keep_pruned(scores, prior), sparsity, scope), prior)


@torch.no_grad()
def topup_to_sparsity(layers: dict[str, nn.Module], sparsity: float) -> tuple[Masks, int]:
    """Masks of the non-zero weights after zeroing the smallest survivors until exactly
    `round(sparsity * N)` weights are zero (none zeroed when already sparser), and how many it cut.
    The layers must be unmasked (plain weights); nothing is set on them."""
    zeros = sum(int((m.weight == 0).sum()) for m in layers.values())
    k = round(check_sparsity(sparsity) * sum(m.weight.numel() for m in layers.values()))
    if zeros >= k:
        return {n: (m.weight != 0).to(m.weight.dtype) for n, m in layers.items()}, 0
    masks = global_masks({n: m.weight.abs() for n, m in layers.items()}, sparsity)
    return masks, k - zeros
