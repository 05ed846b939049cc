"""Spiking neuron models on whole time-major sequences.

Every neuron here takes its input current for all time steps at once, `x` of shape `[T, B, ...]`,
and returns a `NeuronOutput(spikes, membrane)` with the same shape. Nothing is kept between calls,
so there is no state to reset. The `nn.Module` wrappers return only the spikes from `forward` (so
they compose in `nn.Sequential`) and the full `NeuronOutput` from `run`.

The discrete leaky integrate-and-fire (LIF) neuron [@gerstner2002spiking] with decay
$\\beta = 1 - 1/\\tau$ runs three steps per time step:

$$H[t] = \\beta\\,V[t-1] + X[t] \\qquad \\text{(charge)}$$

$$S[t] = \\Theta(H[t] - \\theta) \\qquad \\text{(fire)}$$

$$V[t] = H[t](1 - S[t]) + V_{reset} S[t] \\quad\\text{(hard reset)} \\qquad V[t] = H[t] - \\theta S[t] \\quad\\text{(soft reset)}$$

`membrane` holds $V[t]$ (after the reset). With the reset detached from the autograd graph (the
default), the LIF runs through a fused autograd function whose backward pass is written out by
hand; `lif_reference` is the same model as a plain autograd loop, and the tests check that both
agree in values and gradients.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .surrogate import ATan, Surrogate

__all__ = [
    "NeuronOutput",
    "lif",
    "lif_reference",
    "integrate_and_fire",
    "adaptive_lif",
    "izhikevich",
    "IZHIKEVICH_PATTERNS",
    "hodgkin_huxley",
    "SpikingNeuron",
    "LIF",
    "IF",
    "PLIF",
    "AdaptiveLIF",
]


class NeuronOutput(NamedTuple):
    """Spikes `S[t]` and membrane potential `V[t]`, both `[T, B, ...]`."""

    spikes: Tensor
    membrane: Tensor


# ----------------------------------------------------------------------------- checks


def _check_sequence(x: Tensor, where: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: expected a tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(
            f"{where}: expected a time-major tensor [T, B, ...] with at least 2 dimensions, "
            f"got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{where}: expected a floating-point tensor, got {x.dtype}")


def _check_positive(name: str, value: float | Tensor, where: str) -> None:
    bad = (value <= 0).any().item() if isinstance(value, Tensor) else not (value > 0)
    if bad:
        raise ValueError(f"{where}: {name} must be positive, got {value!r}")


def _check_tau(tau: float | Tensor, where: str) -> None:
    bad = (tau < 1).any().item() if isinstance(tau, Tensor) else not (tau >= 1)
    if bad:
        raise ValueError(
            f"{where}: time constant tau must be >= 1 time step (decay 1 - 1/tau in [0, 1)), got {tau!r}"
        )


def _check_reset(reset: str, where: str) -> None:
    if reset not in ("hard", "soft"):
        raise ValueError(f"{where}: reset must be 'hard' or 'soft', got {reset!r}")


def _channel_view(p: float | Tensor, x: Tensor) -> float | Tensor:
    """Broadcast a per-channel parameter `[C]` against a step `[B, C, ...]` (channels on dim 1)."""
    if isinstance(p, Tensor) and p.dim() == 1:
        return p.view(p.shape[0], *([1] * (x.dim() - 3)))
    return p


# ----------------------------------------------------------------------------- LIF


def lif_reference(
    x: Tensor,
    beta: float | Tensor,
    threshold: float | Tensor = 1.0,
    *,
    reset: str = "hard",
    v_reset: float = 0.0,
    surrogate: Surrogate | None = None,
    detach_reset: bool = True,
) -> NeuronOutput:
    """LIF as a plain autograd loop over time (readable reference; any reset, detached or not).

    `x`: input current `[T, B, ...]`; `beta`: decay $\\beta$ (float, 0-dim tensor or per-channel
    `[C]`); `threshold`: $\\theta$ (float or per-channel `[C]`).
    """
    _check_sequence(x, "lif_reference")
    _check_reset(reset, "lif_reference")
    surrogate = surrogate or ATan()
    beta = _channel_view(beta, x)
    threshold = _channel_view(threshold, x)
    v = torch.full_like(x[0], v_reset)  # V[-1] = V_reset: [B, ...]
    spikes, membrane = [], []
    # --8<-- [start:lif_loop]
    for t in range(x.shape[0]):
        h = beta * v + x[t]  # H[t] = beta V[t-1] + X[t]
        s = surrogate(h - threshold)  # S[t] = Theta(H[t] - theta)
        s_r = s.detach() if detach_reset else s
        if reset == "hard":
            v = h * (1 - s_r) + v_reset * s_r  # V[t] = H[t](1 - S[t]) + V_reset S[t]
        else:
            v = h - threshold * s_r  # V[t] = H[t] - theta S[t]
        spikes.append(s)
        membrane.append(v)
    # --8<-- [end:lif_loop]
    return NeuronOutput(torch.stack(spikes), torch.stack(membrane))


class _FusedLIF(torch.autograd.Function):
    """LIF with a detached reset; forward without a graph, backward through time by hand.

    With the reset detached, $\\partial V[t]/\\partial H[t] = 1 - S[t]$ (hard) or $1$ (soft), so

    $$\\frac{\\partial L}{\\partial H[t]} = \\frac{\\partial L}{\\partial S[t]} g'(H[t]-\\theta)
      + \\Big(\\frac{\\partial L}{\\partial V[t]} + \\beta \\frac{\\partial L}{\\partial H[t+1]}\\Big)\\frac{\\partial V[t]}{\\partial H[t]},$$

    $\\partial L/\\partial X[t] = \\partial L/\\partial H[t]$ and
    $\\partial L/\\partial \\beta = \\sum_t \\partial L/\\partial H[t]\\, V[t-1]$.
    """

    @staticmethod
    def forward(ctx, x, beta, threshold, v_reset, soft, surrogate):  # type: ignore[override]
        # x: [T, B, ...]; beta, threshold: python floats or tensors broadcastable to x[0]
        T = x.shape[0]
        h_all = torch.empty_like(x)  # H[t]
        s_all = torch.empty_like(x)  # S[t]
        v_all = torch.empty_like(x)  # V[t]
        v = torch.full_like(x[0], v_reset)  # V[-1]
        for t in range(T):
            h, s = h_all[t], s_all[t]
            if isinstance(beta, Tensor):
                torch.addcmul(x[t], v, beta, out=h)  # H[t] = beta V[t-1] + X[t]
            else:
                torch.add(x[t], v, alpha=beta, out=h)
            torch.ge(h, threshold, out=s)  # S[t] = Theta(H[t] - theta)
            v = v_all[t]
            if soft:
                torch.sub(h, s * threshold, out=v)  # V[t] = H[t] - theta S[t]
            elif v_reset == 0.0:
                torch.addcmul(h, h, s, value=-1.0, out=v)  # V[t] = H[t](1 - S[t])
            else:
                torch.addcmul(h, h - v_reset, s, value=-1.0, out=v)  # ... + V_reset S[t]
        ctx.save_for_backward(h_all, s_all, v_all, beta if isinstance(beta, Tensor) else None)
        ctx.beta, ctx.threshold, ctx.soft, ctx.v_reset, ctx.surrogate = beta, threshold, soft, v_reset, surrogate
        return s_all, v_all

    @staticmethod
    def backward(ctx, grad_s, grad_v):  # type: ignore[override]
        h_all, s_all, v_all, beta_t = ctx.saved_tensors
        beta = beta_t if beta_t is not None else ctx.beta
        T = h_all.shape[0]
        grad_h = torch.empty_like(h_all)  # dL/dH[t]
        # --8<-- [start:lif_backward]
        carry = torch.zeros_like(h_all[0])  # dL/dH[t+1]
        for t in range(T - 1, -1, -1):
            gv = carry * beta  # dL/dV[t] through H[t+1] = beta V[t] + X[t+1]
            if grad_v is not None:
                gv += grad_v[t]
            if not ctx.soft:
                gv = torch.addcmul(gv, gv, s_all[t], value=-1.0)  # times dV[t]/dH[t] = 1 - S[t]
            if grad_s is not None:  # + dL/dS[t] g'(H[t] - theta)
                gv = torch.addcmul(gv, grad_s[t], ctx.surrogate.derivative(h_all[t] - ctx.threshold))
            grad_h[t] = gv
            carry = gv
        # --8<-- [end:lif_backward]
        grad_beta = None
        if beta_t is not None and ctx.needs_input_grad[1]:
            v_prev = torch.cat([torch.full_like(v_all[:1], ctx.v_reset), v_all[:-1]])  # V[t-1]
            grad_beta = (grad_h * v_prev).sum_to_size(beta_t.shape)
        return grad_h, grad_beta, None, None, None, None


def lif(
    x: Tensor,
    tau: float | Tensor = 2.0,
    threshold: float | Tensor = 1.0,
    *,
    reset: str = "hard",
    v_reset: float = 0.0,
    surrogate: Surrogate | None = None,
    detach_reset: bool = True,
) -> NeuronOutput:
    """Leaky integrate-and-fire on `x: [T, B, ...]` with time constant `tau` (in steps, $\\ge 1$).

    `tau` and `threshold` are floats or per-channel tensors `[C]` (channel on dim 2 of `x`).
    """
    _check_sequence(x, "lif")
    _check_tau(tau, "lif")
    _check_positive("threshold", threshold, "lif")
    beta = 1.0 - 1.0 / tau
    return _lif_beta(x, beta, threshold, reset=reset, v_reset=v_reset, surrogate=surrogate, detach_reset=detach_reset)


def integrate_and_fire(
    x: Tensor,
    threshold: float | Tensor = 1.0,
    *,
    reset: str = "soft",
    v_reset: float = 0.0,
    surrogate: Surrogate | None = None,
    detach_reset: bool = True,
) -> NeuronOutput:
    """Integrate-and-fire: the LIF without leak ($\\beta = 1$). Soft reset by default."""
    _check_sequence(x, "integrate_and_fire")
    _check_positive("threshold", threshold, "integrate_and_fire")
    return _lif_beta(x, 1.0, threshold, reset=reset, v_reset=v_reset, surrogate=surrogate, detach_reset=detach_reset)


def _lif_beta(x, beta, threshold, *, reset, v_reset, surrogate, detach_reset) -> NeuronOutput:
    _check_reset(reset, "lif")
    surrogate = surrogate or ATan()
    if not detach_reset:
        return lif_reference(
            x, beta, threshold, reset=reset, v_reset=v_reset, surrogate=surrogate, detach_reset=False
        )
    beta_b = _channel_view(beta, x)
    thr_b = _channel_view(threshold, x)
    if isinstance(thr_b, Tensor) and thr_b.requires_grad:
        # a learnable threshold needs the autograd path
        return lif_reference(x, beta, threshold, reset=reset, v_reset=v_reset, surrogate=surrogate)
    spikes, membrane = _FusedLIF.apply(x, beta_b, thr_b, float(v_reset), reset == "soft", surrogate)
    return NeuronOutput(spikes, membrane)


# ----------------------------------------------------------------------------- adaptive LIF


def adaptive_lif(
    x: Tensor,
    tau: float = 2.0,
    threshold: float = 1.0,
    *,
    tau_adapt: float = 20.0,
    adapt_strength: float = 0.5,
    surrogate: Surrogate | None = None,
) -> NeuronOutput:
    """LIF whose threshold rises after each spike and relaxes back [@bellec2018long].

    $$a[t] = \\rho\\, a[t-1] + S[t-1], \\quad \\theta[t] = \\theta_0 + \\gamma\\, a[t], \\quad \\rho = 1 - 1/\\tau_a$$

    with the LIF charge and a soft reset by $\\theta[t]$. `adapt_strength` is $\\gamma$.
    """
    _check_sequence(x, "adaptive_lif")
    _check_tau(tau, "adaptive_lif")
    _check_tau(tau_adapt, "adaptive_lif")
    _check_positive("threshold", threshold, "adaptive_lif")
    surrogate = surrogate or ATan()
    beta, rho = 1.0 - 1.0 / tau, 1.0 - 1.0 / tau_adapt
    v = torch.zeros_like(x[0])
    a = torch.zeros_like(x[0])
    s = torch.zeros_like(x[0])
    spikes, membrane = [], []
    for t in range(x.shape[0]):
        a = rho * a + s.detach()  # a[t] = rho a[t-1] + S[t-1]
        theta = threshold + adapt_strength * a  # theta[t]
        h = beta * v + x[t]
        s = surrogate(h - theta)
        v = h - theta * s.detach()  # soft reset
        spikes.append(s)
        membrane.append(v)
    return NeuronOutput(torch.stack(spikes), torch.stack(membrane))


# ----------------------------------------------------------------------------- biology

IZHIKEVICH_PATTERNS: dict[str, tuple[float, float, float, float]] = {
    # name: (a, b, c, d) from the simple model's parameter table [@izhikevich2003simple]
    "regular spiking": (0.02, 0.2, -65.0, 8.0),
    "intrinsically bursting": (0.02, 0.2, -55.0, 4.0),
    "chattering": (0.02, 0.2, -50.0, 2.0),
    "fast spiking": (0.1, 0.2, -65.0, 2.0),
    "low-threshold spiking": (0.02, 0.25, -65.0, 2.0),
}


def izhikevich(
    current: Tensor,
    a: float = 0.02,
    b: float = 0.2,
    c: float = -65.0,
    d: float = 8.0,
    *,
    dt: float = 0.5,
) -> NeuronOutput:
    """Izhikevich's simple model [@izhikevich2003simple], Euler steps of `dt` ms.

    $$\\dot v = 0.04 v^2 + 5 v + 140 - u + I, \\qquad \\dot u = a (b v - u),$$
    and when $v \\ge 30$ mV: $v \\leftarrow c$, $u \\leftarrow u + d$. `current`: `[T, B, ...]`.
    `membrane` holds $v$ in mV with spikes drawn at their 30 mV peak.
    """
    _check_sequence(current, "izhikevich")
    _check_positive("dt", dt, "izhikevich")
    v = torch.full_like(current[0], c)
    u = b * v
    spikes, membrane = [], []
    for t in range(current.shape[0]):
        v = v + dt * (0.04 * v * v + 5 * v + 140 - u + current[t])
        u = u + dt * a * (b * v - u)
        fired = v >= 30.0
        membrane.append(torch.where(fired, torch.full_like(v, 30.0), v))
        spikes.append(fired.to(current.dtype))
        v = torch.where(fired, torch.full_like(v, c), v)
        u = torch.where(fired, u + d, u)
    return NeuronOutput(torch.stack(spikes), torch.stack(membrane))


def hodgkin_huxley(current: Tensor, *, dt: float = 0.01) -> NeuronOutput:
    """Hodgkin-Huxley squid axon [@hodgkin1952quantitative], forward Euler with `dt` ms.

    $$C \\dot V = I - \\bar g_{Na} m^3 h (V - E_{Na}) - \\bar g_K n^4 (V - E_K) - g_L (V - E_L)$$

    $$\\dot x = \\alpha_x(V)(1 - x) - \\beta_x(V) x, \\quad x \\in \\{m, h, n\\}$$

    Modern sign convention (rest near -65 mV), $C = 1\\,\\mu F/cm^2$, $\\bar g_{Na}=120$,
    $\\bar g_K=36$, $g_L=0.3$ mS/cm$^2$, $E_{Na}=50$, $E_K=-77$, $E_L=-54.4$ mV.
    `current`: $\\mu A/cm^2$, `[T, B, ...]`. A spike is an upward crossing of 0 mV.
    """
    _check_sequence(current, "hodgkin_huxley")
    _check_positive("dt", dt, "hodgkin_huxley")
    g_na, g_k, g_l, e_na, e_k, e_l = 120.0, 36.0, 0.3, 50.0, -77.0, -54.387

    def rates(v: Tensor) -> tuple[Tensor, ...]:
        dv_m, dv_n = v + 40.0, v + 55.0
        # alpha_m and alpha_n have removable singularities at -40 and -55 mV
        a_m = torch.where(dv_m.abs() < 1e-6, torch.ones_like(v), 0.1 * dv_m / (1 - torch.exp(-dv_m / 10)))
        b_m = 4.0 * torch.exp(-(v + 65.0) / 18)
        a_h = 0.07 * torch.exp(-(v + 65.0) / 20)
        b_h = 1.0 / (1 + torch.exp(-(v + 35.0) / 10))
        a_n = torch.where(dv_n.abs() < 1e-6, torch.full_like(v, 0.1), 0.01 * dv_n / (1 - torch.exp(-dv_n / 10)))
        b_n = 0.125 * torch.exp(-(v + 65.0) / 80)
        return a_m, b_m, a_h, b_h, a_n, b_n

    v = torch.full_like(current[0], -65.0)
    a_m, b_m, a_h, b_h, a_n, b_n = rates(v)
    m, h, n = a_m / (a_m + b_m), a_h / (a_h + b_h), a_n / (a_n + b_n)  # steady state at rest
    spikes, membrane = [], []
    for t in range(current.shape[0]):
        a_m, b_m, a_h, b_h, a_n, b_n = rates(v)
        i_ion = g_na * m**3 * h * (v - e_na) + g_k * n**4 * (v - e_k) + g_l * (v - e_l)
        v_new = v + dt * (current[t] - i_ion)
        m = m + dt * (a_m * (1 - m) - b_m * m)
        h = h + dt * (a_h * (1 - h) - b_h * h)
        n = n + dt * (a_n * (1 - n) - b_n * n)
        spikes.append(((v < 0) & (v_new >= 0)).to(current.dtype))
        v = v_new
        membrane.append(v)
    return NeuronOutput(torch.stack(spikes), torch.stack(membrane))


# ----------------------------------------------------------------------------- modules


class SpikingNeuron(nn.Module):
    """Base class of the neuron modules: `forward` gives spikes, `run` gives `NeuronOutput`.

    Modules built with `channels=C` keep per-channel parameters of shape `[C]` (channel on dim 2
    of the input `[T, B, C, ...]`), so structured pruning can remove a channel's neuron state.
    """

    def run(self, x: Tensor) -> NeuronOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.run(x).spikes

    def keep_channels(self, index: Tensor) -> None:
        """Keep only the channels in `index` of every per-channel parameter and buffer (in place)."""
        for name, t in list(self._parameters.items()) + list(self._buffers.items()):
            if t is not None and t.dim() == 1:
                new = t.detach()[index].clone()
                if name in self._parameters:
                    self._parameters[name] = nn.Parameter(new, requires_grad=t.requires_grad)
                else:
                    self._buffers[name] = new


def _per_channel(value: float, channels: int | None) -> Tensor:
    return torch.tensor(float(value)) if channels is None else torch.full((channels,), float(value))


class LIF(SpikingNeuron):
    """LIF module; `tau`, `threshold` become buffers, per channel when `channels` is given."""

    def __init__(
        self,
        channels: int | None = None,
        *,
        tau: float = 2.0,
        threshold: float = 1.0,
        reset: str = "hard",
        v_reset: float = 0.0,
        surrogate: Surrogate | None = None,
        detach_reset: bool = True,
    ) -> None:
        super().__init__()
        _check_tau(tau, "LIF")
        _check_positive("threshold", threshold, "LIF")
        _check_reset(reset, "LIF")
        self.register_buffer("tau", _per_channel(tau, channels))
        self.register_buffer("threshold", _per_channel(threshold, channels))
        self.reset, self.v_reset, self.detach_reset = reset, v_reset, detach_reset
        self.surrogate = surrogate or ATan()

    def run(self, x: Tensor) -> NeuronOutput:
        tau = self.tau if self.tau.dim() else float(self.tau)
        thr = self.threshold if self.threshold.dim() else float(self.threshold)
        return lif(
            x, tau, thr, reset=self.reset, v_reset=self.v_reset,
            surrogate=self.surrogate, detach_reset=self.detach_reset,
        )

    def extra_repr(self) -> str:
        return f"channels={self.tau.numel() if self.tau.dim() else None}, reset={self.reset}"


class IF(SpikingNeuron):
    """Integrate-and-fire module (no leak, soft reset by default)."""

    def __init__(self, channels: int | None = None, *, threshold: float = 1.0, reset: str = "soft",
                 surrogate: Surrogate | None = None) -> None:
        super().__init__()
        _check_positive("threshold", threshold, "IF")
        _check_reset(reset, "IF")
        self.register_buffer("threshold", _per_channel(threshold, channels))
        self.reset = reset
        self.surrogate = surrogate or ATan()

    def run(self, x: Tensor) -> NeuronOutput:
        thr = self.threshold if self.threshold.dim() else float(self.threshold)
        return integrate_and_fire(x, thr, reset=self.reset, surrogate=self.surrogate)


class PLIF(SpikingNeuron):
    """LIF with a learnable time constant [@fang2021incorporating].

    The decay is $\\beta = 1 - \\sigma(w)$, i.e. $1/\\tau = \\sigma(w)$, with $w$ learned (one per
    channel when `channels` is given), so $\\tau$ stays above 1 during training.
    """

    def __init__(self, channels: int | None = None, *, tau_init: float = 2.0, threshold: float = 1.0,
                 reset: str = "hard", surrogate: Surrogate | None = None) -> None:
        super().__init__()
        if not tau_init > 1:
            raise ValueError(f"PLIF: tau_init must be > 1 time step, got {tau_init!r}")
        _check_positive("threshold", threshold, "PLIF")
        _check_reset(reset, "PLIF")
        w0 = -math.log(tau_init - 1.0)  # sigmoid(w0) = 1 / tau_init
        self.w = nn.Parameter(_per_channel(w0, channels))
        self.register_buffer("threshold", _per_channel(threshold, channels))
        self.reset = reset
        self.surrogate = surrogate or ATan()

    @property
    def tau(self) -> Tensor:
        return 1.0 / torch.sigmoid(self.w.detach())

    def run(self, x: Tensor) -> NeuronOutput:
        _check_sequence(x, "PLIF")
        beta = 1.0 - torch.sigmoid(self.w)
        thr = self.threshold if self.threshold.dim() else float(self.threshold)
        return _lif_beta(x, beta, thr, reset=self.reset, v_reset=0.0, surrogate=self.surrogate, detach_reset=True)


class AdaptiveLIF(SpikingNeuron):
    """Module wrapper of `adaptive_lif` [@bellec2018long]."""

    def __init__(self, *, tau: float = 2.0, threshold: float = 1.0, tau_adapt: float = 20.0,
                 adapt_strength: float = 0.5, surrogate: Surrogate | None = None) -> None:
        super().__init__()
        _check_tau(tau, "AdaptiveLIF")
        _check_tau(tau_adapt, "AdaptiveLIF")
        _check_positive("threshold", threshold, "AdaptiveLIF")
        self.tau, self.threshold, self.tau_adapt, self.adapt_strength = tau, threshold, tau_adapt, adapt_strength
        self.surrogate = surrogate or ATan()

    def run(self, x: Tensor) -> NeuronOutput:
        return adaptive_lif(x, self.tau, self.threshold, tau_adapt=self.tau_adapt,
                            adapt_strength=self.adapt_strength, surrogate=self.surrogate)
