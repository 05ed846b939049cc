r"""Turning static inputs into spike trains `[T, B, ...]`.

Three encoders, each a pure function of the input (and of a `torch.Generator` where it draws):

* **rate** (Bernoulli): $S[t] \sim \mathrm{Bernoulli}(x)$ independently at each step, so the expected
  spike count over $T$ steps is $T x$.
* **latency** (time to first spike): one spike per input at $t = \mathrm{round}((1 - x)(T - 1))$,
  brighter pixels fire earlier; inputs at or below `cutoff` never fire.
* **direct**: the analog value itself is the input current at every step; the first layer then does
  multiply-accumulates and becomes the encoder.

Inputs must lie in $[0, 1]$ for `rate` and `latency`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["rate", "latency", "direct", "Encoder", "Rate", "Latency", "Direct"]


def _check(x: Tensor, T: int, where: str, unit: bool) -> None:
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"{where}: number of time steps T must be a positive integer, got {T!r}")
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{where}: expected a floating-point tensor")
    if unit and x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"{where}: inputs must lie in [0, 1], got range [{x.min().item():.3g}, {x.max().item():.3g}]"
        )


def rate(x: Tensor, T: int, generator: torch.Generator | None = None) -> Tensor:
    """Bernoulli rate code: `x: [B, ...]` in [0, 1] -> spikes `[T, B, ...]`."""
    _check(x, T, "rate", unit=True)
    u = torch.rand((T, *x.shape), generator=generator, dtype=x.dtype, device=x.device)
    return (u < x).to(x.dtype)  # S[t] = [u_t < x]


def latency(x: Tensor, T: int, cutoff: float = 0.0) -> Tensor:
    """Time-to-first-spike code: one spike at step `round((1 - x) (T - 1))`, none where `x <= cutoff`."""
    _check(x, T, "latency", unit=True)
    t_fire = torch.round((1 - x) * (T - 1)).long()  # [B, ...]
    steps = torch.arange(T, device=x.device).view(T, *([1] * x.dim()))
    return ((steps == t_fire) & (x > cutoff)).to(x.dtype)


def direct(x: Tensor, T: int) -> Tensor:
    """Direct (analog current) input: `x` repeated at every step, `[T, B, ...]` (a view, no copy)."""
    _check(x, T, "direct", unit=False)
    return x.unsqueeze(0).expand(T, *x.shape)


@dataclass(frozen=True)
class Encoder:
    """An encoding with its number of steps; `encoder(x, generator)` returns `[T, B, ...]`."""

    T: int

    def __post_init__(self) -> None:
        if not isinstance(self.T, int) or self.T < 1:
            raise ValueError(f"{type(self).__name__}: T must be a positive integer, got {self.T!r}")

    @property
    def binary(self) -> bool:
        """Whether the encoded input is made of spikes (so the first layer does accumulates)."""
        return True

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True)
class Rate(Encoder):
    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return rate(x, self.T, generator)


@dataclass(frozen=True)
class Latency(Encoder):
    cutoff: float = 0.0

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return latency(x, self.T, self.cutoff)


@dataclass(frozen=True)
class Direct(Encoder):
    @property
    def binary(self) -> bool:
        return False

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return direct(x, self.T)
