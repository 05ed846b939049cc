r"""Spiking neuron models on whole time-major sequences.

Every neuron here takes its input current for all time steps at once, `x` of shape `[T, B, ...]`,
and returns a `NeuronOutput(spikes, membrane)` with the same shape. Nothing is kept between calls,
so there is no state to reset. The `nn.Module` wrappers return only the spikes from `forward` (so
they compose in `nn.Sequential`) and the full `NeuronOutput` from `run`.

The discrete leaky integrate-and-fire (LIF) neuron [@gerstner2002spiking] with decay
$\beta = 1 - 1/\tau$ runs three steps per time step:

$$H[t] = \beta\,V[t-1] + X[t] \qquad \text{(charge)}$$

$$S[t] = \Theta(H[t] - \theta) \qquad \text{(fire)}$$

$$V[t] = H[t](1 - S[t]) + V_{reset} S[t] \quad\text{(hard reset)} \qquad V[t] = H[t] - \theta S[t] \quad\text{(soft reset)}$$

`membrane` holds $V[t]$ (after the reset). With the reset detached from the autograd graph (the
default), the LIF runs through a fused autograd function whose backward pass is written out by
hand; `lif_reference` is the same model as a plain autograd loop, and the tests check that both
agree in values and gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .surrogate import ATan, Surrogate

__all__ = ["NeuronOutput", "lif", "lif_reference", "integrate_and_fire", "adaptive_lif", "SpikingNeuron", "LIF",
           "IF", "PLIF", "AdaptiveLIF"]


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


def lif_reference(x: Tensor, beta: float | Tensor, threshold: float | Tensor = 1.0, *, reset: str = "hard",
                  v_reset: float = 0.0, surrogate: Surrogate | None = None, detach_reset: bool = True,
                  quantize: Callable[[Tensor], Tensor] | None = None) -> NeuronOutput:
    r"""LIF as a plain autograd loop over time (readable reference; any reset, detached or not).

    `x`: input current `[T, B, ...]`; `beta`: decay $\beta$ (float, 0-dim tensor or per-channel
    `[C]`); `threshold`: $\theta$ (float or per-channel `[C]`). `quantize`, when given, maps the leaked
    potential kept from one step to the next onto a grid, $H[t] = Q(\beta V[t-1]) + X[t]$ (a membrane
    quantizer, `quantization.MembraneQuantizer`: the state a chip stores between steps)."""
    _check_sequence(x, "lif_reference")
    _check_reset(reset, "lif_reference")
    surrogate = surrogate or ATan()
    beta = _channel_view(beta, x)
    threshold = _channel_view(threshold, x)
    v = torch.full_like(x[0], v_reset)  # V[-1] = V_reset: [B, ...]
    spikes, membrane = [], []
    # --8<-- [start:lif_loop]
    for t in range(x.shape[0]):
        leaked = beta * v if quantize is None else quantize(beta * v)  # the state kept between steps
        h = leaked + x[t]  # H[t] = beta V[t-1] + X[t]  (Q(beta V[t-1]) + X[t] when quantized)
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
    r"""LIF with a detached reset; forward without a graph, backward through time by hand.

    With the reset detached, $\partial V[t]/\partial H[t] = 1 - S[t]$ (hard) or $1$ (soft), so

    $$\frac{\partial L}{\partial H[t]} = \frac{\partial L}{\partial S[t]} g'(H[t]-\theta)
      + \Big(\frac{\partial L}{\partial V[t]} + \beta \frac{\partial L}{\partial H[t+1]}\Big)\frac{\partial V[t]}{\partial H[t]},$$

    $\partial L/\partial X[t] = \partial L/\partial H[t]$ and
    $\partial L/\partial \beta = \sum_t \partial L/\partial H[t]\, V[t-1]$.
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


def lif(x: Tensor, tau: float | Tensor = 2.0, threshold: float | Tensor = 1.0, *, reset: str = "hard",
        v_reset: float = 0.0, surrogate: Surrogate | None = None, detach_reset: bool = True,
        quantize: Callable[[Tensor], Tensor] | None = None) -> NeuronOutput:
    r"""Leaky integrate-and-fire on `x: [T, B, ...]` with time constant `tau` (in steps, $\ge 1$).

    `tau` and `threshold` are floats or per-channel tensors `[C]` (channel on dim 2 of `x`).
    `quantize` quantizes the potential at every step (see `lif_reference`).
    """
    _check_sequence(x, "lif")
    _check_tau(tau, "lif")
    _check_positive("threshold", threshold, "lif")
    beta = 1.0 - 1.0 / tau
    return _lif_beta(x, beta, threshold, reset=reset, v_reset=v_reset, surrogate=surrogate, detach_reset=detach_reset,
                     quantize=quantize)


def integrate_and_fire(x: Tensor, threshold: float | Tensor = 1.0, *, reset: str = "soft", v_reset: float = 0.0,
                       surrogate: Surrogate | None = None, detach_reset: bool = True,
                       quantize: Callable[[Tensor], Tensor] | None = None) -> NeuronOutput:
    r"""Integrate-and-fire: the LIF without leak ($\beta = 1$). Soft reset by default."""
    _check_sequence(x, "integrate_and_fire")
    _check_positive("threshold", threshold, "integrate_and_fire")
    return _lif_beta(x, 1.0, threshold, reset=reset, v_reset=v_reset, surrogate=surrogate, detach_reset=detach_reset,
                     quantize=quantize)


def _lif_beta(x, beta, threshold, *, reset, v_reset, surrogate, detach_reset, quantize=None) -> NeuronOutput:
    _check_reset(reset, "lif")
    surrogate = surrogate or ATan()
    if not detach_reset or quantize is not None:  # the quantized potential runs through the autograd loop
        return lif_reference(
            x, beta, threshold, reset=reset, v_reset=v_reset, surrogate=surrogate, detach_reset=detach_reset,
            quantize=quantize,
        )
    beta_b = _channel_view(beta, x)
    thr_b = _channel_view(threshold, x)
    if isinstance(thr_b, Tensor) and thr_b.requires_grad:
        # a learnable threshold needs the autograd path
        return lif_reference(x, beta, threshold, reset=reset, v_reset=v_reset, surrogate=surrogate)
    spikes, membrane = _FusedLIF.apply(x, beta_b, thr_b, float(v_reset), reset == "soft", surrogate)
    return NeuronOutput(spikes, membrane)


# ----------------------------------------------------------------------------- adaptive LIF


def adaptive_lif(x: Tensor, tau: float = 2.0, threshold: float = 1.0, *, tau_adapt: float = 20.0,
                 adapt_strength: float = 1.8, surrogate: Surrogate | None = None,
                 detach_adaptation: bool = False) -> NeuronOutput:
    r"""LIF with an adaptive threshold, the ALIF unit of LSNNs [@bellec2018long].

    Each neuron keeps an adaptation variable $a$, a low-pass filter of its own spikes, and fires
    against a threshold that rises with it:

    $$a[t] = \rho\, a[t-1] + (1 - \rho)\, S[t-1], \qquad \theta[t] = \theta_0 + \gamma\, a[t],
      \qquad \rho = 1 - 1/\tau_a$$

    $$H[t] = \beta V[t-1] + X[t], \qquad S[t] = \Theta(H[t] - \theta[t]), \qquad V[t] = H[t] - \theta[t] S[t]$$

    with $a[-1] = S[-1] = V[-1] = 0$. `adapt_strength` is $\gamma$ (the paper's $\beta$; 1.8 is the value
    LSNN implementations commonly use); one spike raises the threshold by $\gamma (1 - \rho) = \gamma/\tau_a$,
    which then relaxes with time constant $\tau_a$.

    As in the paper, the gradient flows through the adaptation path: $\theta[t]$ depends on the earlier
    spikes through $a$, and backpropagation through time follows that dependence (with the surrogate
    derivative for each $\partial S/\partial H$). `detach_adaptation=True` cuts it (an ablation, not LSNN).
    Only the spike in the reset term $\theta[t] S[t]$ is detached, as for the other neurons here.

    Conventions that differ from the LSNN code: the input is not scaled by $1 - \beta$ (a matter of
    weight scale), and the reset is applied in the same step as the spike (charge, fire, reset), where
    LSNN subtracts the threshold at the next step.
    """
    _check_sequence(x, "adaptive_lif")
    _check_tau(tau, "adaptive_lif")
    _check_tau(tau_adapt, "adaptive_lif")
    _check_positive("threshold", threshold, "adaptive_lif")
    surrogate = surrogate or ATan()
    beta, rho = 1.0 - 1.0 / tau, 1.0 - 1.0 / tau_adapt
    v = torch.zeros_like(x[0])  # V[-1]
    a = torch.zeros_like(x[0])  # a[-1]
    s = torch.zeros_like(x[0])  # S[-1]
    spikes, membrane = [], []
    for t in range(x.shape[0]):
        s_a = s.detach() if detach_adaptation else s
        a = rho * a + (1.0 - rho) * s_a  # a[t] = rho a[t-1] + (1 - rho) S[t-1]
        theta = threshold + adapt_strength * a  # theta[t] = theta_0 + gamma a[t]
        h = beta * v + x[t]  # H[t]
        s = surrogate(h - theta)  # S[t] = Theta(H[t] - theta[t])
        v = h - theta * s.detach()  # soft reset by the current threshold
        spikes.append(s)
        membrane.append(v)
    return NeuronOutput(torch.stack(spikes), torch.stack(membrane))


# ----------------------------------------------------------------------------- modules


class SpikingNeuron(nn.Module):
    """Base class of the neuron modules: `forward` gives spikes, `run` gives `NeuronOutput`.

    Modules built with `channels=C` keep per-channel parameters of shape `[C]` (channel on dim 2
    of the input `[T, B, C, ...]`), so structured pruning can remove a channel's neuron state.
    """

    leaky: bool = True  # whether the membrane decays between steps (a multiply per neuron and step); IF: False

    def run(self, x: Tensor) -> NeuronOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def quantizer(self) -> nn.Module | None:
        """The membrane quantizer set as submodule `membrane_quantizer` (by a quantization transform,
        on a copy), or `None`; LIF, IF and PLIF apply it to their potential at every step."""
        return self._modules.get("membrane_quantizer")

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
            surrogate=self.surrogate, detach_reset=self.detach_reset, quantize=self.quantizer,
        )

    def extra_repr(self) -> str:
        return f"channels={self.tau.numel() if self.tau.dim() else None}, reset={self.reset}"


class IF(SpikingNeuron):
    """Integrate-and-fire module (no leak, soft reset by default)."""

    leaky = False

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
        return integrate_and_fire(x, thr, reset=self.reset, surrogate=self.surrogate, quantize=self.quantizer)


class PLIF(SpikingNeuron):
    r"""Parametric LIF: a LIF with a learnable time constant [@fang2021incorporating].

    The paper's charge equation leaks towards $V_{reset}$ and scales the input by $1/\tau$:

    $$H[t] = V[t-1] + \frac{1}{\tau}\big(X[t] - (V[t-1] - V_{reset})\big), \qquad \frac{1}{\tau} = \sigma(w),$$

    followed by the usual fire and reset steps, with $V[-1] = V_{reset}$. $w$ is learned (one per
    channel when `channels` is given, one per layer otherwise as in the paper), so $\tau$ stays above 1.
    This is `decay_input=True`, the default, and the same model as SpikingJelly's `ParametricLIFNode`.

    `decay_input=False` keeps the input unscaled, $H[t] = V[t-1] - \frac{1}{\tau}(V[t-1] - V_{reset}) + X[t]$;
    with $V_{reset} = 0$ this is our LIF, $H[t] = \beta V[t-1] + X[t]$ with $\beta = 1 - \sigma(w)$.

    Both forms are $H[t] = \beta V[t-1] + X'[t]$ with $X'[t] = \sigma(w)(X[t] + V_{reset})$ or
    $X[t] + \sigma(w) V_{reset}$, so they run through the same fused LIF; autograd carries the gradient
    of $w$ through both $\beta$ and $X'$. With `reset="soft"` the leak target and the initial potential
    are `v_reset` too (0 by default, as in SpikingJelly's soft reset).
    """

    def __init__(self, channels: int | None = None, *, tau_init: float = 2.0, threshold: float = 1.0,
                 reset: str = "hard", v_reset: float = 0.0, decay_input: bool = True,
                 surrogate: Surrogate | None = None, detach_reset: bool = True) -> None:
        super().__init__()
        if not tau_init > 1:
            raise ValueError(f"PLIF: tau_init must be > 1 time step, got {tau_init!r}")
        _check_positive("threshold", threshold, "PLIF")
        _check_reset(reset, "PLIF")
        w0 = -math.log(tau_init - 1.0)  # sigmoid(w0) = 1 / tau_init
        self.w = nn.Parameter(_per_channel(w0, channels))
        self.register_buffer("threshold", _per_channel(threshold, channels))
        self.reset, self.v_reset, self.decay_input, self.detach_reset = reset, float(v_reset), decay_input, detach_reset
        self.surrogate = surrogate or ATan()

    @property
    def tau(self) -> Tensor:
        return 1.0 / torch.sigmoid(self.w.detach())

    def run(self, x: Tensor) -> NeuronOutput:
        _check_sequence(x, "PLIF")
        q = torch.sigmoid(self.w)  # 1 / tau
        q_x = _channel_view(q, x)
        if self.decay_input:
            x_in = q_x * (x + self.v_reset) if self.v_reset else q_x * x  # X' = (X + V_reset) / tau
        else:
            x_in = x + q_x * self.v_reset if self.v_reset else x  # X' = X + V_reset / tau
        thr = self.threshold if self.threshold.dim() else float(self.threshold)
        return _lif_beta(x_in, 1.0 - q, thr, reset=self.reset, v_reset=self.v_reset, surrogate=self.surrogate,
                         detach_reset=self.detach_reset, quantize=self.quantizer)

    def extra_repr(self) -> str:
        return (f"channels={self.w.numel() if self.w.dim() else None}, reset={self.reset}, "
                f"decay_input={self.decay_input}")


class AdaptiveLIF(SpikingNeuron):
    """Module wrapper of `adaptive_lif`, the LSNN's adaptive-threshold neuron [@bellec2018long]."""

    def __init__(self, *, tau: float = 2.0, threshold: float = 1.0, tau_adapt: float = 20.0,
                 adapt_strength: float = 1.8, surrogate: Surrogate | None = None,
                 detach_adaptation: bool = False) -> None:
        super().__init__()
        _check_tau(tau, "AdaptiveLIF")
        _check_tau(tau_adapt, "AdaptiveLIF")
        _check_positive("threshold", threshold, "AdaptiveLIF")
        self.tau, self.threshold, self.tau_adapt, self.adapt_strength = tau, threshold, tau_adapt, adapt_strength
        self.detach_adaptation = detach_adaptation
        self.surrogate = surrogate or ATan()

    def run(self, x: Tensor) -> NeuronOutput:
        return adaptive_lif(x, self.tau, self.threshold, tau_adapt=self.tau_adapt,
                            adapt_strength=self.adapt_strength, surrogate=self.surrogate,
                            detach_adaptation=self.detach_adaptation)
