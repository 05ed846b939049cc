r"""The distillation losses as pure functions of tensors, and what a spiking student's output is read from.

* `soft_target_loss`: the temperature-softened KL divergence of Hinton et al. [@hinton2015distilling],

  $$\mathcal{L}_{KD} = \tau_s \tau_t \, \frac{1}{B}\sum_b \mathrm{KL}\big(\mathrm{softmax}(z^t_b/\tau_t)
    \,\|\, \mathrm{softmax}(z^s_b/\tau_s)\big)$$

  with one temperature $\tau_s = \tau_t = \tau$ in the usual recipe (the factor is then $\tau^2$, which
  keeps the soft-target gradient on the scale of the hard-label one) and two different ones in the
  heterogeneous-temperature variant [@lee2021energyefficient];
* `feature_loss`: the mean squared distance between a teacher's feature map and the student's firing
  rates mapped through a learned adapter (KDSNN [@xu2023constructing], after FitNets [@romero2015fitnets]);
* `attention_map` / `attention_loss`: the channel-pooled, normalised spatial attention map of attention
  transfer [@zagoruyko2017paying], which needs no adapter because it has no channel axis;
* `readout`: the student's class scores read from time-averaged logits, spike counts of an output
  layer of LIF neurons, or the final potential of a leaky, non-firing output layer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..models import ConvBlock, seq
from ..neurons import lif

__all__ = ["READOUTS", "soft_target_loss", "feature_loss", "attention_map", "attention_loss", "readout_steps",
           "readout", "spike_rate"]

READOUTS = ("mean", "spike-count", "membrane")


# --8<-- [start:soft]
def soft_target_loss(student: Tensor, teacher: Tensor, temperature: float = 4.0,
                     student_temperature: float | None = None) -> Tensor:
    r"""$\tau_s\tau_t\,\mathrm{KL}(p_t \| p_s)$ averaged over the batch, for scores `[B, classes]`.

    $p_t = \mathrm{softmax}(z^t/\tau_t)$ with $\tau_t$ = `temperature`, $p_s = \mathrm{softmax}(z^s/\tau_s)$
    with $\tau_s$ = `student_temperature` (default: the same). Zero when $z^s/\tau_s = z^t/\tau_t$."""
    if student.shape != teacher.shape:
        raise ValueError(f"soft_target_loss: student scores {tuple(student.shape)} and teacher scores "
                         f"{tuple(teacher.shape)} differ in shape")
    tau_t = float(temperature)
    tau_s = tau_t if student_temperature is None else float(student_temperature)
    if tau_t <= 0 or tau_s <= 0:
        raise ValueError(f"soft_target_loss: temperatures must be positive, got {tau_t} and {tau_s}")
    log_p_s = F.log_softmax(student / tau_s, dim=-1)
    log_p_t = F.log_softmax(teacher.detach() / tau_t, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()  # KL(p_t || p_s), batch mean
    return tau_s * tau_t * kl
# --8<-- [end:soft]


# --8<-- [start:feature]
def feature_loss(student_rates: Tensor, teacher_features: Tensor, adapter: nn.Module | None = None) -> Tensor:
    r"""$\frac{1}{N}\|A(r^s) - f^t\|_2^2$: mean squared distance between the adapted student firing rates
    $A(r^s)$ (`[B, C_s, H, W]` or `[B, F_s]`) and the teacher's features $f^t$ of the adapter's output shape."""
    s = adapter(student_rates) if adapter is not None else student_rates
    if s.shape != teacher_features.shape:
        raise ValueError(f"feature_loss: adapted student features {tuple(s.shape)} and teacher features "
                         f"{tuple(teacher_features.shape)} differ in shape")
    return F.mse_loss(s, teacher_features.detach())
# --8<-- [end:feature]


# --8<-- [start:attention]
def attention_map(features: Tensor, p: int = 2) -> Tensor:
    r"""$a = \mathrm{vec}\big(\sum_c |F_c|^p\big) / \|\mathrm{vec}(\sum_c |F_c|^p)\|_2$ for `features [B, C, H, W]`
    (or `[B, F]`, taken as `F` channels of one position): `[B, H*W]`."""
    if features.dim() == 2:
        features = features[:, :, None, None]
    a = features.abs().pow(p).sum(1).flatten(1)  # [B, H*W]
    return F.normalize(a, dim=1, eps=1e-8)


def attention_loss(student_rates: Tensor, teacher_features: Tensor, p: int = 2) -> Tensor:
    r"""$\frac{1}{B}\sum_b \|a^s_b - a^t_b\|_2^2$ between the attention maps of the student's firing rates
    and the teacher's features, which must share their spatial size (channels may differ)."""
    if student_rates.shape[2:] != teacher_features.shape[2:] or student_rates.shape[0] != teacher_features.shape[0]:
        raise ValueError(f"attention_loss: student rates {tuple(student_rates.shape)} and teacher features "
                         f"{tuple(teacher_features.shape)} need the same batch and spatial size")
    d = attention_map(student_rates, p) - attention_map(teacher_features.detach(), p)
    return d.pow(2).sum(1).mean()
# --8<-- [end:attention]


def readout_steps(model: nn.Module, spikes: dict[str, list[Tensor]]) -> Tensor:
    """The readout layer's output at every step, `[T, B, classes]`, recomputed from the last spiking
    layer's recorded spikes (`train.Step.spikes`) for the shared `ConvNet`/`MLP` baselines; its mean
    over time is the model's output."""
    blocks = getattr(model, "blocks", None)
    head = getattr(model, "head", None)
    if blocks is None or not len(blocks) or not isinstance(head, nn.Linear):
        raise ValueError(f"readout_steps: {type(model).__name__} is not a ConvNet/MLP with `blocks` and a linear "
                         "`head`; use readout='mean'")
    last = f"blocks.{len(blocks) - 1}.neuron"
    if not spikes.get(last):
        raise ValueError(f"readout_steps: no spikes recorded for layer {last!r}")
    z = spikes[last][-1]  # [T, B, ...]
    if isinstance(blocks[-1], ConvBlock):
        z = seq(blocks[-1].pool, z)
    return seq(head, z.flatten(2))  # [T, B, classes]


# --8<-- [start:readout]
def readout(logits: Tensor, model: nn.Module, spikes: dict[str, list[Tensor]], kind: str = "mean",
            tau: float = 2.0) -> Tensor:
    r"""The student's class scores `[B, classes]` that the distillation loss compares with the teacher's.

    * `"mean"`: the time-averaged readout $\frac1T\sum_t z_t$, what the model predicts with (`logits`);
    * `"spike-count"`: the spike count $\sum_t s_t$ of one LIF neuron per class (time constant `tau`,
      threshold 1, hard reset, surrogate gradient) driven by the readout currents $z_t$;
    * `"membrane"`: the last potential $u_T$ of a leaky, non-firing output neuron,
      $u_t = \beta u_{t-1} + z_t$ with $\beta = 1 - 1/\tau$, scaled by $(1-\beta)/(1-\beta^T)$ so that
      a constant input reads the same as `"mean"`; late steps weigh more.

    The model itself still predicts with the time average; the other two only change what the loss sees.
    """
    if kind == "mean":
        return logits
    if kind not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {kind!r}")
    z = readout_steps(model, spikes)  # [T, B, classes]
    if kind == "spike-count":
        return lif(z, tau, 1.0).spikes.sum(0)
    beta = 1.0 - 1.0 / tau
    T = z.shape[0]
    w = beta ** torch.arange(T - 1, -1, -1, dtype=z.dtype)  # beta^(T-1-t)
    scale = (1 - beta) / (1 - beta ** T) if beta > 0 else 1.0
    return scale * (w[:, None, None] * z).sum(0)
# --8<-- [end:readout]


def spike_rate(spikes: dict[str, list[Tensor]]) -> Tensor:
    """Mean firing rate over every recorded spiking layer, neuron, step and sample (a differentiable
    scalar proportional to the spikes per sample)."""
    rates = [s.mean() for calls in spikes.values() for s in calls]
    if not rates:
        raise ValueError("spike_rate: no spiking layer was recorded")
    total = sum(s.numel() for calls in spikes.values() for s in calls)
    return sum(s.sum() for calls in spikes.values() for s in calls) / total
