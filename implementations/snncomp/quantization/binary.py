r"""Binary SNNs: one-bit weights on top of one-bit activations (section 3.2 of [@xie2024efficient]).

The layer keeps real-valued *shadow* weights $w$ that receive the gradient; the forward pass uses

$$\hat w = \alpha \operatorname{sign}(w), \qquad \alpha = \frac{\|w \odot m\|_1}{\|m\|_0}$$

(one $\alpha$ per layer, or per output channel, the mean magnitude of the kept weights; $m$ a pruning mask,
all ones without one), and the sign is passed straight through where $|w| \le 1$ (the clipped STE of
BinaryConnect [@courbariaux2015binaryconnect]). A pruned weight has $\operatorname{sign}(0) = 0$ and stays
zero, so a binary layer over a mask is ternary $\{-\alpha, 0, \alpha\}$ with the zeros in the sparse format.
Each binary layer then needs only additions and subtractions of its spikes and one multiplication by
$\alpha$ per output (or none, folded into the threshold).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..compress import Compressed, budget, run_phase
from ..data import Split
from ..encoding import Encoder
from ..metrics import weight_layers
from ..registry import register
from ..train import Hook, LossTerm, TrainConfig
from .quantizers import SCALE_BITS, weight_quantizers
from .weights import NONE

__all__ = ["BINARY", "Binarize", "binary_weights"]

BINARY = TrainConfig(epochs=3, lr=5e-4)  # default training through the binarizer on a trained model

Terms = Sequence[LossTerm]
Hooks = Sequence[Hook]


class _SignSTE(torch.autograd.Function):
    """sign(w) forward; gradient passed where |w| <= 1 (clipped straight-through)."""

    @staticmethod
    def forward(ctx, w):  # type: ignore[override]
        ctx.save_for_backward(w)
        return torch.sign(w)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (w,) = ctx.saved_tensors
        return grad * (w.abs() <= 1).to(grad.dtype)


# --8<-- [start:Binarize]
class Binarize(nn.Module):
    r"""Parametrization $\hat w = \alpha \operatorname{sign}(w)$, $\alpha$ the mean $|w|$ over the non-zero
    (kept) weights, per tensor or per output channel; one bit per weight plus the FP32 $\alpha$s."""

    bits = 1

    def __init__(self, w: Tensor, per_channel: bool = False, where: str = "weight") -> None:
        super().__init__()
        self.per_channel, self.where = per_channel, where
        self.channels = w.shape[0] if per_channel else 1  # how many alphas are stored

    def alpha(self, w: Tensor) -> Tensor:
        a, kept = w.abs(), (w != 0).to(w.dtype)
        if self.per_channel:
            num, den = a.flatten(1).sum(1), kept.flatten(1).sum(1)
            return (num / den.clamp(min=1)).view(-1, *[1] * (w.dim() - 1))
        return a.sum() / kept.sum().clamp(min=1)

    def forward(self, w: Tensor) -> Tensor:
        if w.numel() == 0:
            raise ValueError(f"{self.where}: cannot binarize an empty tensor (shape {tuple(w.shape)})")
        return self.alpha(w) * _SignSTE.apply(w)  # alpha sign(w); alpha carries a gradient too

    @property
    def overhead_bits(self) -> int:
        return self.channels * SCALE_BITS
# --8<-- [end:Binarize]


@register("binary-weights", kind="transform", taxonomy="quantization/binary",
          keys=("kheradpisheh2022bs4nn", "lu2020exploring", "courbariaux2015binaryconnect"))
def binary_weights(model: nn.Module, data: Split, encoder: Encoder, *, per_channel: bool = False,
                   include_first: bool = True, include_head: bool = True, train: TrainConfig | None = None,
                   finetune: TrainConfig | None = None, loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Binary weights $\alpha \operatorname{sign}(w)$ with real-valued shadow weights, trained through the STE.

    As in BS4NN [@kheradpisheh2022bs4nn] and the binary SNNs of [@lu2020exploring], the forward pass uses
    signs scaled by a per-layer factor while a real-valued copy of each weight takes the gradient.
    `train` (default `BINARY`) trains through the binarizer from the input's weights. Where we differ:
    BS4NN trains single-spike time-to-first-spike networks with its own temporal backpropagation, and
    Lu and Sengupta convert a binary ANN; here the network is our multi-step LIF trained with the
    surrogate gradient. `include_first`/`include_head` binarize the first and last layers too (the
    binary-network papers usually keep them at higher precision).
    """
    net = copy.deepcopy(model)
    layers = weight_layers(net)
    if not layers:
        raise TypeError(f"binary_weights: {type(model).__name__} has no nn.Conv2d or nn.Linear layers")
    names = list(layers)
    if not include_first:
        layers.pop(names[0])
    if not include_head:
        layers.pop("head", None)
    weight_quantizers(layers, lambda n, w: Binarize(w, per_channel, where=n))
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, BINARY, "train"), "binary", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"bits": 1, "per_channel": per_channel, "layers": list(layers)})
