r"""Binary SNNs: one-bit weights on top of one-bit activations (section 3.2 of [@xie2024efficient]).

The layer keeps real-valued *shadow* weights $w$ that receive the gradient; the forward pass uses

$$\hat w = \alpha \operatorname{sign}(w), \qquad \alpha = \frac{\|w \odot m\|_1}{\|m\|_0}$$

(one $\alpha$ per layer, or per output channel, the mean magnitude of the kept weights; $m$ a pruning mask,
all ones without one). As in BinaryConnect [@courbariaux2015binaryconnect] the gradient of the sign is passed
straight through unchanged, and after every optimiser step the shadow weights are clipped to $[-1, 1]$
(`ClipShadowWeights`, a training hook), so a weight that wandered past 1 comes back and keeps learning.
A pruned weight has $\operatorname{sign}(0) = 0$ and stays zero, so a binary layer over a mask is ternary
$\{-\alpha, 0, \alpha\}$: `metrics.deployed_bits` counts it at 2 bits a weight in the dense format (3
symbols) and at 1 bit a kept weight in the sparse formats, which leave the zeros out.
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
from ..data.encoding import Encoder
from ..metrics import weight_layers
from ..registry import all_but, register
from ..train import NONE, Hook, LossTerm, TrainConfig
from .quantizers import SCALE_BITS, weight_quantizers

__all__ = ["BINARY", "Binarize", "ClipShadowWeights", "binary_weights"]

BINARY = TrainConfig(epochs=3, lr=5e-4)  # default training through the binarizer on a trained model

Terms = Sequence[LossTerm]
Hooks = Sequence[Hook]


class _SignSTE(torch.autograd.Function):
    """sign(w) forward; the gradient passed straight through unchanged (BinaryConnect)."""

    @staticmethod
    def forward(ctx, w):  # type: ignore[override]
        return torch.sign(w)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return grad


class ClipShadowWeights(Hook):
    r"""BinaryConnect's clip: after every optimiser step (and once at the start) the real-valued shadow
    weights of `layers` are clamped to $[-c, c]$ (`clip`, 1 in the paper)."""

    def __init__(self, layers: dict[str, nn.Module], clip: float = 1.0) -> None:
        if not clip > 0:
            raise ValueError(f"ClipShadowWeights: clip must be > 0, got {clip!r}")
        self.layers, self.clip = layers, clip
        self.clamp()

    @torch.no_grad()
    def clamp(self) -> None:
        for m in self.layers.values():
            m.parametrizations.weight.original.clamp_(-self.clip, self.clip)

    def after_step(self, model: nn.Module, step) -> None:
        self.clamp()


# --8<-- [start:Binarize]
class Binarize(nn.Module):
    r"""Parametrization $\hat w = \alpha \operatorname{sign}(w)$, $\alpha$ the mean $|w|$ over the non-zero
    (kept) weights, per tensor or per output channel; one bit per weight plus the FP32 $\alpha$s."""

    bits = 1
    has_zero = False  # the levels are -alpha, alpha; a zero (pruned weight) needs a symbol more

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
          keys=("kheradpisheh2022bs4nn", "lu2020exploring", "courbariaux2015binaryconnect"),
          leaves=("weight-grid",), keeps=all_but("membrane-grid", "early-exit"))
def binary_weights(model: nn.Module, data: Split, encoder: Encoder, *, per_channel: bool = False,
                   include_first: bool = True, include_head: bool = True, clip: float = 1.0,
                   train: TrainConfig | None = None,
                   finetune: TrainConfig | None = None, loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Binary weights $\alpha \operatorname{sign}(w)$ with real-valued shadow weights, trained through the STE.

    As in BS4NN [@kheradpisheh2022bs4nn] and the binary SNNs of [@lu2020exploring], the forward pass uses
    signs scaled by a per-layer factor while a real-valued copy of each weight takes the gradient, passed
    straight through the sign, and, as BinaryConnect does [@courbariaux2015binaryconnect], the copies are
    clipped to $[-$`clip`$, $`clip`$]$ after every optimiser step of both phases (`ClipShadowWeights`).
    `train` (default `BINARY`) trains through the binarizer from the input's weights. Where we differ:
    BS4NN trains single-spike time-to-first-spike networks with its own temporal backpropagation, and
    Lu and Sengupta convert a binary ANN; here the network is our multi-step LIF trained with the
    surrogate gradient, with Adam where BinaryConnect uses SGD-style updates, and the scale $\alpha$ (mean
    $|w|$, from XNOR-style binary networks) is ours, BinaryConnect binarizes to $\pm 1$. The clip acts only
    in this transform's phases; a later `fit` without the hook does not clip. `include_first`/`include_head`
    binarize the first and last layers too (the binary-network papers usually keep them at higher precision).
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
    clipper = ClipShadowWeights(layers, clip)
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, BINARY, "train"), "binary", history, hooks=[clipper],
              extra_terms=loss_terms, extra_hooks=hooks)
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history, hooks=[clipper],
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"bits": 1, "per_channel": per_channel, "layers": list(layers),
                                              "clip": clip})
