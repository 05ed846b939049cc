r"""Surrogate gradients for the spike non-linearity.

The forward pass of a spiking neuron uses the Heaviside step $\Theta(x)$, whose derivative is zero
almost everywhere. A surrogate keeps the step in the forward pass and substitutes a smooth derivative
in the backward pass [@neftci2019surrogate]. Each surrogate here is defined by its *primitive*
$g_\alpha(x)$, a smooth step with $g_\alpha(-\infty)=0$ and $g_\alpha(\infty)=1$, and by the
hand-written derivative $g'_\alpha(x)$ that the backward pass uses. The tests check the
hand-written derivative against autograd applied to the primitive.

| name | primitive $g_\alpha(x)$ | derivative $g'_\alpha(x)$ |
|---|---|---|
| `atan` | $\frac{1}{\pi}\arctan(\frac{\pi}{2}\alpha x) + \frac12$ | $\frac{\alpha/2}{1 + (\frac{\pi}{2}\alpha x)^2}$ |
| `sigmoid` | $\sigma(\alpha x)$ | $\alpha\,\sigma(\alpha x)(1-\sigma(\alpha x))$ |
| `fast_sigmoid` | $\frac{\alpha x}{2(1+\lvert\alpha x\rvert)} + \frac12$ | $\frac{\alpha}{2(1+\lvert\alpha x\rvert)^2}$ |
| `rectangular` | $\mathrm{clip}(\alpha x + \frac12, 0, 1)$ | $\alpha\,[\lvert x\rvert < \frac{1}{2\alpha}]$ |
| `triangular` | piecewise quadratic | $\alpha \max(0, 1 - \alpha\lvert x\rvert)$ |

The fast sigmoid is SuperSpike's surrogate [@zenke2018superspike] scaled to unit area; the
rectangular window is the one used with spatio-temporal backpropagation [@wu2018spatiotemporal].
Every derivative integrates to one, so $\alpha$ only sets the width.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "Surrogate",
    "ATan",
    "Sigmoid",
    "FastSigmoid",
    "Rectangular",
    "Triangular",
    "SURROGATES",
    "get",
    "spike",
]


@dataclass(frozen=True)
class Surrogate:
    r"""Base class: a smooth step (`primitive`) and its hand-written derivative (`derivative`).

    Calling a surrogate on `x` returns the Heaviside step $\Theta(x)$ (1 where $x \ge 0$) whose
    gradient is `derivative(x)`.
    """

    alpha: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.alpha, (int, float)) and self.alpha > 0 and math.isfinite(self.alpha)):
            raise ValueError(f"{type(self).__name__}: alpha must be a positive finite number, got {self.alpha!r}")

    def primitive(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def derivative(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: Tensor) -> Tensor:
        return _Spike.apply(x, self)


class _Spike(torch.autograd.Function):
    r"""$S = \Theta(x)$ forward, $\partial S / \partial x = g'_\alpha(x)$ backward."""

    @staticmethod
    def forward(ctx, x: Tensor, surrogate: Surrogate) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None


def spike(x: Tensor, surrogate: Surrogate) -> Tensor:
    """Heaviside step of `x` with the surrogate's derivative in the backward pass."""
    return _Spike.apply(x, surrogate)


@dataclass(frozen=True)
class ATan(Surrogate):
    """Arctangent surrogate (the default in SpikingJelly and snnTorch)."""

    alpha: float = 2.0

    def primitive(self, x: Tensor) -> Tensor:
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5

    def derivative(self, x: Tensor) -> Tensor:
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * x) ** 2)


@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """Logistic surrogate."""

    alpha: float = 4.0

    def primitive(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.alpha * x)

    def derivative(self, x: Tensor) -> Tensor:
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1 - s)


@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """SuperSpike's fast sigmoid, normalised to unit area [@zenke2018superspike]."""

    alpha: float = 10.0

    def primitive(self, x: Tensor) -> Tensor:
        ax = self.alpha * x
        return ax / (2 * (1 + ax.abs())) + 0.5

    def derivative(self, x: Tensor) -> Tensor:
        return self.alpha / (2 * (1 + (self.alpha * x).abs()) ** 2)


@dataclass(frozen=True)
class Rectangular(Surrogate):
    r"""Boxcar window of width $1/\alpha$ [@wu2018spatiotemporal]."""

    alpha: float = 1.0

    def primitive(self, x: Tensor) -> Tensor:
        return torch.clamp(self.alpha * x + 0.5, 0.0, 1.0)

    def derivative(self, x: Tensor) -> Tensor:
        return self.alpha * (x.abs() < 0.5 / self.alpha).to(x.dtype)


@dataclass(frozen=True)
class Triangular(Surrogate):
    r"""Triangle of half-width $1/\alpha$; its primitive is a piecewise quadratic."""

    alpha: float = 1.0

    def primitive(self, x: Tensor) -> Tensor:
        ax = torch.clamp(self.alpha * x, -1.0, 1.0)
        left = 0.5 * (1 + ax) ** 2  # for -1 <= ax < 0
        right = 1 - 0.5 * (1 - ax) ** 2  # for 0 <= ax <= 1
        return torch.where(ax < 0, left, right)

    def derivative(self, x: Tensor) -> Tensor:
        return self.alpha * torch.clamp(1 - self.alpha * x.abs(), min=0.0)


SURROGATES: dict[str, type[Surrogate]] = {
    "atan": ATan,
    "sigmoid": Sigmoid,
    "fast_sigmoid": FastSigmoid,
    "rectangular": Rectangular,
    "triangular": Triangular,
}


def get(name: str, alpha: float | None = None) -> Surrogate:
    """Build a surrogate by name; an unknown name raises a `KeyError` listing the closest names."""
    try:
        cls = SURROGATES[name]
    except KeyError:
        close = difflib.get_close_matches(name, SURROGATES, n=3, cutoff=0.0)
        raise KeyError(f"unknown surrogate {name!r}; closest: {', '.join(close)}") from None
    return cls() if alpha is None else cls(alpha=alpha)
