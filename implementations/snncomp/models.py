"""The shared baselines: a small convolutional SNN, an MLP SNN, and same-shaped ANNs.

All models take a time-major input `[T, B, ...]` and return class scores `[B, classes]`, the
readout layer's output averaged over time (a non-spiking readout). An ANN is the same network
with ReLU in place of the spiking neurons, run with `T = 1`.

Layers without time dynamics (convolution, normalisation, pooling, linear) see the time steps as
extra batch entries through `seq`. When the input is a `direct` encoding (the same analog frame at
every step, an expanded view), the first convolution and its normalisation run once and their
output is repeated over time: the result is identical and the first layer's multiply-accumulates
are counted once, not $T$ times (see the energy page).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import Tensor, nn

from .neurons import IF, LIF, PLIF, SpikingNeuron
from .surrogate import Surrogate

__all__ = ["block_neuron", "seq", "ConvBlock", "ConvNet", "DenseBlock", "MLP", "conv_snn", "conv_ann", "mlp_snn", "mlp_ann",
           "make_neuron", "NEURONS"]

NEURONS = ("lif", "plif", "if", "relu")


def seq(layer: nn.Module, x: Tensor) -> Tensor:
    """Apply a per-step layer to `x: [T, B, ...]` by folding time into the batch."""
    T, B = x.shape[:2]
    y = layer(x.flatten(0, 1))  # [T*B, ...]
    return y.view(T, B, *y.shape[1:])


def make_neuron(kind: str, channels: int, *, tau: float = 2.0, threshold: float = 1.0,
                surrogate: Surrogate | None = None) -> nn.Module:
    """A neuron module with per-channel state: 'lif', 'plif', 'if' or 'relu' (for ANNs)."""
    if kind == "lif":
        return LIF(channels, tau=tau, threshold=threshold, surrogate=surrogate)
    if kind == "plif":
        return PLIF(channels, tau_init=tau, threshold=threshold, surrogate=surrogate)
    if kind == "if":
        return IF(channels, threshold=threshold, surrogate=surrogate)
    if kind == "relu":
        return nn.ReLU()
    raise ValueError(f"unknown neuron kind {kind!r}; choose one of {', '.join(NEURONS)}")


def _is_repeated(x: Tensor) -> bool:
    """True when `x: [T, ...]` is one frame expanded over time (a `direct` encoding view)."""
    return x.shape[0] > 1 and x.stride(0) == 0


class ConvBlock(nn.Module):
    """conv -> batch norm -> neuron -> max-pool, on `[T, B, C_in, H, W]` -> `[T, B, C_out, H/p, W/p]`."""

    def __init__(self, in_channels: int, out_channels: int, neuron: nn.Module, kernel_size: int = 3,
                 pool: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.neuron = neuron
        self.pool = nn.MaxPool2d(pool) if pool > 1 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        if _is_repeated(x):  # same frame at every step: compute once, repeat
            z = seq(self.bn, seq(self.conv, x[:1]))  # [1, B, C_out, H, W]
            z = z.expand(x.shape[0], *z.shape[1:])
        else:
            z = seq(self.bn, seq(self.conv, x))  # [T, B, C_out, H, W]
        return seq(self.pool, self.neuron(z))


class ConvNet(nn.Module):
    """Stack of `ConvBlock`s, optionally followed by `DenseBlock`s (the feature maps are flattened
    before the first of them), and a linear readout averaged over time."""

    def __init__(self, blocks: list[nn.Module], head: nn.Linear, in_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.head = head
        self.in_shape = tuple(in_shape)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5 or tuple(x.shape[2:]) != self.in_shape:
            raise ValueError(
                f"ConvNet: expected input [T, B, {', '.join(map(str, self.in_shape))}], got shape {tuple(x.shape)}"
            )
        for block in self.blocks:
            if isinstance(block, DenseBlock) and x.dim() == 5:
                x = x.flatten(2)  # [T, B, C*H*W]
            x = block(x)  # [T, B, C, H, W] after a conv block, [T, B, F] after a dense block
        x = x.flatten(2)  # [T, B, features]
        return seq(self.head, x).mean(0)  # [B, classes]


class DenseBlock(nn.Module):
    """linear -> neuron on `[T, B, F_in]` -> `[T, B, F_out]`."""

    def __init__(self, in_features: int, out_features: int, neuron: nn.Module) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)
        self.neuron = neuron

    def forward(self, x: Tensor) -> Tensor:
        if _is_repeated(x):
            z = seq(self.fc, x[:1])
            z = z.expand(x.shape[0], *z.shape[1:])
        else:
            z = seq(self.fc, x)
        return self.neuron(z)


class MLP(nn.Module):
    """Stack of `DenseBlock`s and a linear readout averaged over time; flattens image inputs."""

    def __init__(self, blocks: list[DenseBlock], head: nn.Linear) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 3:
            raise ValueError(f"MLP: expected input [T, B, features...], got shape {tuple(x.shape)}")
        x = x.flatten(2)  # [T, B, F]
        in_features = self.blocks[0].fc.in_features if len(self.blocks) else self.head.in_features
        if x.shape[2] != in_features:
            raise ValueError(f"MLP: expected {in_features} input features per step, got {x.shape[2]}")
        for block in self.blocks:
            x = block(x)
        return seq(self.head, x).mean(0)  # [B, classes]


def _seeded(seed: int | None):
    return nullcontext() if seed is None else torch.random.fork_rng(devices=[])


def conv_snn(in_shape: tuple[int, int, int] = (1, 28, 28), channels: tuple[int, ...] = (16, 32),
             num_classes: int = 10, *, neuron: str = "lif", tau: float = 2.0, threshold: float = 1.0,
             surrogate: Surrogate | None = None, kernel_size: int = 3, hidden: tuple[int, ...] = (),
             seed: int | None = 0) -> ConvNet:
    """The baseline conv SNN: `channels` conv blocks (3x3, BN, neuron, 2x2 max-pool), then one
    fully connected `DenseBlock` (linear + neuron) per width in `hidden` (none by default), and a readout.

    `conv_snn(hidden=(256,))` is the over-parameterised benchmark network: its 1568 -> 256 layer
    holds ~400k of its ~408k weights. With the default `hidden=()` the model, its parameter names
    and its seeded initialisation are those of the compact baseline.
    """
    if not channels or any(c < 1 for c in channels):
        raise ValueError(f"conv_snn: channels must be a non-empty tuple of positive ints, got {channels!r}")
    if any(not isinstance(h, int) or h < 1 for h in hidden):
        raise ValueError(f"conv_snn: hidden must be a tuple of positive ints, got {hidden!r}")
    with _seeded(seed):
        if seed is not None:
            torch.manual_seed(seed)
        c, h, w = in_shape
        blocks = []
        for out in channels:
            blocks.append(ConvBlock(c, out, make_neuron(neuron, out, tau=tau, threshold=threshold,
                                                        surrogate=surrogate), kernel_size))
            c, h, w = out, h // 2, w // 2
        f = c * h * w
        for width in hidden:
            blocks.append(DenseBlock(f, width, make_neuron(neuron, width, tau=tau, threshold=threshold,
                                                           surrogate=surrogate)))
            f = width
        return ConvNet(blocks, nn.Linear(f, num_classes), in_shape)


def conv_ann(in_shape: tuple[int, int, int] = (1, 28, 28), channels: tuple[int, ...] = (16, 32),
             num_classes: int = 10, *, kernel_size: int = 3, hidden: tuple[int, ...] = (),
             seed: int | None = 0) -> ConvNet:
    """The same-shaped ANN (ReLU instead of spiking neurons); run it with `T = 1`."""
    return conv_snn(in_shape, channels, num_classes, neuron="relu", kernel_size=kernel_size, hidden=hidden,
                    seed=seed)


def mlp_snn(in_features: int = 784, hidden: tuple[int, ...] = (256,), num_classes: int = 10, *,
            neuron: str = "lif", tau: float = 2.0, threshold: float = 1.0, surrogate: Surrogate | None = None,
            seed: int | None = 0) -> MLP:
    """MLP SNN: linear + neuron blocks of widths `hidden`, then a linear readout."""
    if not hidden or any(h < 1 for h in hidden):
        raise ValueError(f"mlp_snn: hidden must be a non-empty tuple of positive ints, got {hidden!r}")
    with _seeded(seed):
        if seed is not None:
            torch.manual_seed(seed)
        blocks, f = [], in_features
        for h in hidden:
            blocks.append(DenseBlock(f, h, make_neuron(neuron, h, tau=tau, threshold=threshold, surrogate=surrogate)))
            f = h
        return MLP(blocks, nn.Linear(f, num_classes))


def mlp_ann(in_features: int = 784, hidden: tuple[int, ...] = (256,), num_classes: int = 10, *,
            seed: int | None = 0) -> MLP:
    """The same-shaped ANN of `mlp_snn`; run it with `T = 1`."""
    return mlp_snn(in_features, hidden, num_classes, neuron="relu", seed=seed)


def block_neuron(block: nn.Module) -> SpikingNeuron | None:
    """The spiking neuron of a block's `neuron` slot, looking through wrappers that hold it as their own
    `.neuron` (TA-SNN's attention puts one before it); `None` for a block without a spiking neuron."""
    n = getattr(block, "neuron", None)
    while n is not None and not isinstance(n, SpikingNeuron) and hasattr(n, "neuron"):
        n = n.neuron
    return n if isinstance(n, SpikingNeuron) else None
