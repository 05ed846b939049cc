r"""Uniform quantizers as parametrizations: the fake quantizer, the straight-through estimator and LSQ.

A $b$-bit uniform quantizer with step (scale) $s > 0$ and integer zero point $z$ maps a real $x$ to the
integer $q$ and back to the real grid value $\hat x$:

$$q = \mathrm{clamp}\big(\lfloor x / s \rceil + z,\ q_{min},\ q_{max}\big), \qquad \hat x = (q - z)\, s$$

with $\lfloor\cdot\rceil$ round-half-to-even. Weights here are quantized symmetrically (signed,
$z = 0$, $q_{min} = -2^{b-1}$, $q_{max} = 2^{b-1} - 1$), per tensor (one $s$) or per output channel (one
$s$ per row of the weight). **Fake quantization** computes $\hat x$ in floating point: the network still
runs in FP32, but every weight it uses is one of $2^b$ values, so its accuracy is the accuracy of the
integer model (`integer` exports it); it saves nothing at run time by itself.

**Straight-through estimator** (STE) [@bengio2013estimating]: rounding has zero derivative almost
everywhere, so the backward pass treats it as the identity where $x$ lies inside the clipping range and
as zero outside: $\partial \hat x / \partial x = [\,q_{min} \le \lfloor x/s \rceil + z \le q_{max}\,]$, the
same mask `torch.fake_quantize_per_tensor_affine` uses.

**LSQ** [@esser2020learned] makes $s$ a trained parameter. With $Q_N = 2^{b-1}$, $Q_P = 2^{b-1} - 1$,
$\hat v = \lfloor \mathrm{clip}(v/s, -Q_N, Q_P) \rceil\, s$, the rounding passed straight through, so

$$\frac{\partial \hat v}{\partial s} = \begin{cases} -v/s + \lfloor v/s \rceil & -Q_N < v/s < Q_P \\
-Q_N & v/s \le -Q_N \\ Q_P & v/s \ge Q_P \end{cases}$$

and the step's gradient is scaled by $g = 1/\sqrt{N_W Q_P}$ ($N_W$ the weights sharing the step);
the step starts at $s_0 = 2\langle|v|\rangle / \sqrt{Q_P}$. Both as in the paper.

A quantizer is registered on the layer's weight after any pruning `Mask`, so the layer computes
$\hat w = Q(\theta \odot m)$: a pruned weight is $Q(0) = 0$ and its gradient stays zero, so the mask
survives quantization-aware training. Each quantizer knows its `bits` and the `overhead_bits` of what
it stores beside the integers (scales), which `metrics.deployed_bits` counts.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..data.encoding import Encoder

__all__ = ["check_bits", "check_scale", "qrange", "fake_quantize", "minmax_scale", "power_of_two", "round_to_grid",
           "fixed_point_step", "FakeQuantize", "MinMaxFakeQuantize", "FixedPointQuantize", "LSQQuantizer", "MembraneQuantizer", "GridInput", "add_quantizer", "quantizer_of", "quantizers_of", "weight_quantizers"]

SCALE_BITS = 32  # a scale (and a zero point, when stored) is kept as an FP32 / INT32 number


def check_bits(bits: int, where: str) -> int:
    """`bits` as an int in [1, 32], or a `ValueError` naming `where`."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 32:
        raise ValueError(f"{where}: bits must be an integer in [1, 32], got {bits!r}")
    return bits


def check_scale(scale: Tensor | float, where: str) -> Tensor:
    """`scale` as a tensor of finite positive steps, or a `ValueError` naming `where`."""
    s = torch.as_tensor(scale, dtype=torch.float32)
    if s.numel() == 0 or not torch.isfinite(s).all() or not (s > 0).all():
        raise ValueError(f"{where}: scale must be finite and positive, got {scale!r}")
    return s


def _check_tensor(x: Tensor, where: str) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{where}: expected a floating-point tensor, got {type(x).__name__}")
    if x.numel() == 0:
        raise ValueError(f"{where}: cannot quantize an empty tensor (shape {tuple(x.shape)})")


def qrange(bits: int, signed: bool = True, symmetric: bool = False) -> tuple[int, int]:
    """$(q_{min}, q_{max})$ of a `bits`-bit integer: $[-2^{b-1}, 2^{b-1}-1]$ signed, $[0, 2^b - 1]$ unsigned;
    `symmetric` drops the most negative code, $[-(2^{b-1}-1), 2^{b-1}-1]$ (MINT's range)."""
    if signed:
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        return (-hi if symmetric else lo), hi
    return 0, 2**bits - 1


ROUNDINGS = ("nearest", "truncate", "stochastic")


def round_to_grid(k: Tensor, rounding: str, generator: torch.Generator | None = None) -> Tensor:
    r"""Round the real grid coordinates `k` to integers: `"nearest"` (half to even), `"truncate"` (floor: the
    low bits of a two's-complement number dropped) or `"stochastic"` ($\lfloor k \rfloor + [u < k - \lfloor k
    \rfloor]$, $u \sim U[0, 1)$ drawn from `generator`, so $E[r(k)] = k$), the three schemes Q-SpiNN compares."""
    if rounding == "nearest":
        return torch.round(k)
    if rounding == "truncate":
        return torch.floor(k)
    if rounding == "stochastic":
        f = torch.floor(k)
        u = torch.rand(k.shape, generator=generator, dtype=k.dtype, device=k.device)
        return f + (u < k - f).to(k.dtype)
    raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")


def fixed_point_step(fraction_bits: int) -> float:
    r"""The step $2^{-f}$ of a signed fixed-point format with `fraction_bits` $f$ bits after the point; a
    `bits`-bit word then holds $1$ sign, $b - 1 - f$ integer and $f$ fraction bits (Q-SpiNN's formats)."""
    if isinstance(fraction_bits, bool) or not isinstance(fraction_bits, int) or not 0 <= fraction_bits <= 31:
        raise ValueError(f"fraction_bits must be an integer in [0, 31], got {fraction_bits!r}")
    return 2.0 ** -fraction_bits


def _axis_view(t: Tensor, x: Tensor, axis: int | None) -> Tensor:
    """A per-channel `t: [C]` shaped to broadcast along `axis` of `x` (unchanged for a per-tensor one)."""
    if axis is None or t.dim() == 0:
        return t
    shape = [1] * x.dim()
    shape[axis] = -1
    return t.view(shape)


# --8<-- [start:fake_quantize]
def fake_quantize(x: Tensor, scale: Tensor, zero_point: Tensor, qmin: int, qmax: int,
                  axis: int | None = None) -> Tensor:
    r"""$\hat x = (\mathrm{clamp}(\lfloor x / s \rceil + z, q_{min}, q_{max}) - z)\, s$ with the STE
    backward: the gradient passes where $q_{min} \le \lfloor x/s \rceil + z \le q_{max}$ and is zero
    elsewhere. Equal, value for value, to `torch.fake_quantize_per_tensor_affine` (or `_per_channel_`
    with `axis`) on the same scale and zero point."""
    s = _axis_view(scale.to(x.dtype), x, axis)
    z = _axis_view(zero_point.to(x.dtype), x, axis)
    q = torch.round(x * (1.0 / s)) + z  # x * (1/s), as torch's kernel computes it
    inside = (q >= qmin) & (q <= qmax)  # where the STE lets the gradient through
    x_hat = (q.clamp(qmin, qmax) - z) * s
    return x_hat.detach() + (x - x.detach()) * inside  # value x_hat, gradient 1 inside the range
# --8<-- [end:fake_quantize]


def minmax_scale(w: Tensor, bits: int, per_channel: bool) -> Tensor:
    r"""The symmetric min-max step $s = \max|w| / q_{max}$, per tensor or per output channel (dim 0).
    A channel that is all zero (pruned) gets $s = 1$: every step represents 0 exactly."""
    _, qmax = qrange(bits)
    a = w.detach().abs()
    m = a.flatten(1).amax(1) if per_channel else a.max()
    s = m / max(qmax, 1)
    return torch.where(s > 0, s, torch.ones_like(s)).float()


def power_of_two(s: Tensor) -> Tensor:
    r"""The smallest power of two $\ge s$: $2^{\lceil \log_2 s \rceil}$ (a step an integer model applies
    as a shift, and one with which FP32 arithmetic on grid values is exact)."""
    return torch.exp2(torch.ceil(torch.log2(s)))


# --8<-- [start:FakeQuantize]
class FakeQuantize(nn.Module):
    r"""Parametrization $\hat w = Q_{b,s}(w)$: symmetric uniform fake quantization with a fixed step
    (`scale`, one per tensor or per output channel), STE backward."""

    def __init__(self, scale: Tensor, bits: int, *, per_channel: bool = False, symmetric: bool = False,
                 where: str = "weight") -> None:
        super().__init__()
        self.bits = check_bits(bits, where)
        self.per_channel, self.where = per_channel, where
        self.qmin, self.qmax = qrange(bits, symmetric=symmetric)
        self.register_buffer("scale", check_scale(scale, where).clone())
        self.register_buffer("zero_point", torch.zeros_like(self.scale, dtype=torch.int32))

    def forward(self, w: Tensor) -> Tensor:
        _check_tensor(w, self.where)
        return fake_quantize(w, self.scale, self.zero_point, self.qmin, self.qmax, 0 if self.per_channel else None)

    def integers(self, w: Tensor) -> Tensor:
        """The stored integers $q$ of `w` (int64)."""
        s = _axis_view(self.scale, w, 0 if self.per_channel else None)
        return torch.round(w.detach() * (1.0 / s)).clamp(self.qmin, self.qmax).long()

    @property
    def overhead_bits(self) -> int:
        """What is stored beside the integers: one FP32 scale per tensor or channel (the zero point
        is 0 by construction and not stored)."""
        return self.scale.numel() * SCALE_BITS

    def extra_repr(self) -> str:
        return f"bits={self.bits}, per_channel={self.per_channel}"
# --8<-- [end:FakeQuantize]


# --8<-- [start:MinMaxFakeQuantize]
class MinMaxFakeQuantize(FakeQuantize):
    r"""`FakeQuantize` whose step is the min-max step of the weights it is given, recomputed at every call
    (as Jacob et al. take the weight range from the current weights at every training step); the buffer
    `scale` holds the step of the last call, which is the grid the deployed integers use."""

    def __init__(self, w: Tensor, bits: int, *, per_channel: bool = False, where: str = "weight") -> None:
        super().__init__(minmax_scale(w, bits, per_channel), bits, per_channel=per_channel, where=where)

    def forward(self, w: Tensor) -> Tensor:
        _check_tensor(w, self.where)
        with torch.no_grad():
            self.scale.copy_(minmax_scale(w, self.bits, self.per_channel))
        return super().forward(w)

    def integers(self, w: Tensor) -> Tensor:
        with torch.no_grad():
            self.scale.copy_(minmax_scale(w, self.bits, self.per_channel))
        return super().integers(w)
# --8<-- [end:MinMaxFakeQuantize]


class FixedPointQuantize(nn.Module):
    r"""Parametrization: weights in a signed fixed-point format of `bits` bits, `fraction_bits` $f$ of them
    after the point (step $2^{-f}$, range $[-2^{b-1}, 2^{b-1}-1]\,2^{-f}$), rounded by `rounding` (`"nearest"`,
    `"truncate"` or `"stochastic"`; the three Q-SpiNN compares). Stochastic rounding draws one $u \sim U[0,1)$
    per weight from `seed` when the quantizer is made and keeps it, so the deployed weights are fixed and
    $E_u[\hat w] = w$ inside the range. STE backward inside the range, zero outside."""

    def __init__(self, w: Tensor, bits: int, fraction_bits: int, *, rounding: str = "nearest", seed: int = 0,
                 where: str = "weight") -> None:
        super().__init__()
        self.bits = check_bits(bits, where)
        if rounding not in ROUNDINGS:
            raise ValueError(f"{where}: rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
        _check_tensor(w, where)
        self.step, self.fraction_bits = fixed_point_step(fraction_bits), fraction_bits
        self.rounding, self.where = rounding, where
        self.qmin, self.qmax = qrange(bits)
        u = torch.rand(w.shape, generator=torch.Generator().manual_seed(seed)) if rounding == "stochastic" else None
        self.register_buffer("u", u)

    def forward(self, w: Tensor) -> Tensor:
        _check_tensor(w, self.where)
        k = w.detach() / self.step
        if self.rounding == "stochastic":
            f = torch.floor(k)
            k = f + (self.u.to(k.dtype) < k - f).to(k.dtype)
        else:
            k = round_to_grid(k, self.rounding)
        inside = ((k >= self.qmin) & (k <= self.qmax)).to(w.dtype)
        return k.clamp(self.qmin, self.qmax) * self.step + (w - w.detach()) * inside

    @property
    def overhead_bits(self) -> int:
        return 0  # the format (its fraction bits) is fixed by design, nothing stored per tensor

    def extra_repr(self) -> str:
        return f"bits={self.bits}, fraction_bits={self.fraction_bits}, rounding={self.rounding}"


class _GradScale(torch.autograd.Function):
    """Identity forward, gradient multiplied by `g` (LSQ's step-size gradient scale)."""

    @staticmethod
    def forward(ctx, s, g):  # type: ignore[override]
        ctx.g = g
        return s.view_as(s)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return grad * ctx.g, None


# --8<-- [start:LSQ]
class LSQQuantizer(nn.Module):
    r"""LSQ parametrization [@esser2020learned]: $\hat v = \lfloor \mathrm{clip}(v/s, -Q_N, Q_P) \rceil s$
    with a learned step $s$ (an `nn.Parameter`, per tensor or per output channel), initialised at
    $2\langle|v|\rangle/\sqrt{Q_P}$, its gradient scaled by $g = 1/\sqrt{N_W Q_P}$."""

    def __init__(self, w: Tensor, bits: int, *, per_channel: bool = False, where: str = "weight") -> None:
        super().__init__()
        self.bits = check_bits(bits, where)
        if bits < 2:
            raise ValueError(f"{where}: LSQ needs bits >= 2 (Q_P = 2^(b-1) - 1 > 0), got {bits}")
        _check_tensor(w, where)
        self.per_channel, self.where = per_channel, where
        self.qn, self.qp = 2 ** (bits - 1), 2 ** (bits - 1) - 1
        a = w.detach().abs()
        mean = a.flatten(1).mean(1) if per_channel else a.mean()  # <|v|>
        s0 = 2 * mean / math.sqrt(self.qp)  # s_0 = 2 <|v|> / sqrt(Q_P)
        s0 = torch.where(s0 > 0, s0, torch.ones_like(s0))
        self.scale = nn.Parameter(check_scale(s0, where).clone())
        n_w = w[0].numel() if per_channel else w.numel()  # weights sharing one step
        self.grad_scale = 1.0 / math.sqrt(n_w * self.qp)  # g = 1 / sqrt(N_W Q_P)

    def forward(self, v: Tensor) -> Tensor:
        _check_tensor(v, self.where)
        if not (self.scale.detach() > 0).all():
            raise ValueError(f"{self.where}: LSQ step must stay positive, got {self.scale.detach().min().item()}")
        s = _axis_view(_GradScale.apply(self.scale, self.grad_scale), v, 0 if self.per_channel else None)
        x = (v / s).clamp(-self.qn, self.qp)  # clip(v/s, -Q_N, Q_P)
        x = x + (torch.round(x) - x).detach()  # round, passed straight through
        return x * s
# --8<-- [end:LSQ]

    def integers(self, w: Tensor) -> Tensor:
        s = _axis_view(self.scale.detach(), w, 0 if self.per_channel else None)
        return torch.round((w.detach() / s).clamp(-self.qn, self.qp)).long()

    @property
    def overhead_bits(self) -> int:
        return self.scale.numel() * SCALE_BITS

    def extra_repr(self) -> str:
        return f"bits={self.bits}, per_channel={self.per_channel}"


def add_quantizer(module: nn.Module, quantizer: nn.Module, name: str = "weight") -> None:
    """Register `quantizer` on `module.<name>` after any parametrization already there (a pruning
    mask), replacing a quantizer already on it."""
    if quantizer_of(module, name) is not None:
        plist = module.parametrizations[name]
        for i, p in enumerate(plist):
            if hasattr(p, "bits"):
                plist[i] = quantizer
                return
    from ..compress import own_class

    own_class(module)  # a new parametrized tensor must not edit a class shared with a deepcopy's original
    parametrize.register_parametrization(module, name, quantizer)


def quantizer_of(module: nn.Module, name: str = "weight") -> nn.Module | None:
    """The quantizer (a parametrization with `bits`) on `module.<name>`, or `None`."""
    if parametrize.is_parametrized(module, name):
        for p in module.parametrizations[name]:
            if hasattr(p, "bits"):
                return p
    return None


def quantizers_of(model: nn.Module) -> dict[str, nn.Module]:
    """`{"<module>.<tensor>": quantizer}` over every quantized tensor of `model`."""
    out = {}
    for mname, module in model.named_modules():
        if parametrize.is_parametrized(module):
            for tname in module.parametrizations:
                q = quantizer_of(module, tname)
                if q is not None:
                    out[f"{mname}.{tname}" if mname else tname] = q
    return out


def weight_quantizers(layers: dict[str, nn.Module], make) -> None:
    """Put `make(name, weight)` on every layer's weight (after its mask, if any)."""
    for n, m in layers.items():
        w = m.weight
        _check_tensor(w, n)
        add_quantizer(m, make(n, w.detach()))


# --8<-- [start:MembraneQuantizer]
class MembraneQuantizer(nn.Module):
    r"""The membrane state on a `bits`-bit grid of step `scale`: $Q(v) = s\,\mathrm{clamp}(r(v / s),
    q_{min}, q_{max})$ with $r$ one of `round_to_grid`'s schemes: round-half-to-even (`"nearest"`), floor
    (`"truncate"`) or stochastic rounding (`"stochastic"`, drawn from a generator seeded with `seed`, so a run
    is reproducible). The range is $[-2^{b-1}, 2^{b-1} - 1]$, or $\pm(2^{b-1} - 1)$ with `symmetric`. A
    neuron applies it to the leaked potential it keeps between steps (`neurons.lif_reference`). The backward
    pass is the identity (STE through rounding and clamp) so the surrogate gradient flows through time;
    with `saturate_grad=False` it is zero where the clamp saturates, as the clamp in MINT's code gives."""

    def __init__(self, scale: float | Tensor, bits: int, *, rounding: str = "nearest", symmetric: bool = False,
                 saturate_grad: bool = True, seed: int = 0, where: str = "membrane") -> None:
        super().__init__()
        self.bits = check_bits(bits, where)
        if rounding not in ROUNDINGS:
            raise ValueError(f"{where}: rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
        s = check_scale(scale, where)
        if s.numel() != 1:
            raise ValueError(f"{where}: a membrane quantizer has one scale per layer, got {s.numel()}")
        self.register_buffer("scale", s.reshape(()).clone())
        self.rounding, self.where, self.saturate_grad, self.seed = rounding, where, saturate_grad, seed
        self.qmin, self.qmax = qrange(bits, symmetric=symmetric)
        self.generator = torch.Generator().manual_seed(seed) if rounding == "stochastic" else None

    def forward(self, v: Tensor) -> Tensor:
        x = v.detach() / self.scale
        k = round_to_grid(x, self.rounding, self.generator)
        passes = 1.0
        if not self.saturate_grad:  # MINT clamps v/s to the range, then rounds: no gradient where it clamps
            passes = ((x >= self.qmin) & (x <= self.qmax)).to(v.dtype)
        k = k.clamp(self.qmin, self.qmax)
        return (k * self.scale) + (v - v.detach()) * passes  # value on the grid, gradient of the identity

    def extra_repr(self) -> str:
        return f"bits={self.bits}, scale={self.scale.item():.4g}, rounding={self.rounding}"
# --8<-- [end:MembraneQuantizer]


@dataclass(frozen=True)
class GridInput(Encoder):
    r"""An encoder whose images are first put on the unsigned grid $2^{-b}$: $x \leftarrow
    \min(\lfloor 2^b x \rceil, 2^b - 1) / 2^b$, so an integer model is fed the integers
    $\lfloor 2^b x \rceil$ (8-bit pixels by default) and FP32 arithmetic on them stays exact."""

    inner: Encoder | None = None
    bits: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.inner is None or self.inner.T != self.T:
            raise ValueError(f"GridInput: needs an inner encoder with T={self.T}, got {self.inner!r}")
        check_bits(self.bits, "GridInput")

    @property
    def binary(self) -> bool:
        return self.inner.binary

    def integers(self, x: Tensor) -> Tensor:
        """The images as the integers an integer model is fed (int64)."""
        return torch.round(x * 2.0**self.bits).clamp(0, 2**self.bits - 1).long()

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.inner(self.integers(x).to(x.dtype) / 2.0**self.bits, generator)
