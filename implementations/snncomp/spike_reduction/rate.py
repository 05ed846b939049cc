r"""Rate side of spike reduction: penalising or gating spikes so neurons fire less
(section 3.4 of [@xie2024efficient]).

**Objectives** (loss terms for `train.fit`, each `fn(step, **options) -> scalar`; wrap one with its weight
by `weighted`):

* `spike-rate-l1`: the mean firing rate over every spiking neuron and step, the activity regulariser of
  [@deng2021comprehensive]; $R_1 = \frac{1}{B\,T\,N}\sum_{b,t,n} s_{b,t,n}$.
* `spike-rate-l2`: the mean over neurons of the squared per-neuron rate, an L2 activity penalty in the
  spirit of [@neil2016learning]; $R_2 = \frac{1}{B\,N}\sum_{b,n} \big(\frac{1}{T}\sum_t s_{b,t,n}\big)^2$,
  which bears on the busiest neurons hardest.
* `target-firing-rate`: a target rate per layer, $\sum_l \max(0, r_l - r^*_l)^2$ with $r_l$ the layer's
  mean rate in the batch: no pressure below the target.
* `synops-loss`: the energy objective of [@sorbaro2020optimizing], the squared relative distance of the
  effective synaptic operations per sample $S$ to a target $S_0$, $((S - S_0)/S_0)^2$. $S = \sum_i x_i f_i$
  with fan-out $f_i$ (`synops_count`, see `spike_reduction.synops`) equals `metrics.measure`'s
  `effective_acs + effective_macs` on the same inputs.

The three activity terms and `synops_count` (which, weighted by `weighted`, is a linear synop penalty,
kept for comparison) are 0 for a silent network (the count keeps a constant for analog-input
layers, which have no spikes to remove); all reach the weights through the surrogate gradient of the
spikes. The synop loss pushes down while $S > S_0$ and stops at the target.

**Transforms** (the `snncomp.compress` contract):

* `learnable-threshold`: every LIF's threshold and leak become trainable per channel, as in DIET-SNN
  [@rathi2023dietsnn].
* `temporal-wise-attention`: TA-SNN [@yao2021temporalwise], a squeeze-and-excitation score per time
  step in front of every block; at inference, steps scored below `d_th` are dropped.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..compress import Compressed, budget, run_phase
from ..data import Split
from ..encoding import Encoder
from ..neurons import LIF, SpikingNeuron
from ..registry import register
from ..spikes import record_inputs
from ..train import Hook, LossTerm, Step, TrainConfig, evaluate
from .synops import count_synops

__all__ = ["spike_rate_l1", "spike_rate_l2", "target_firing_rate", "synops_loss", "synops_count", "weighted", "layer_rates",
           "learnable_threshold", "AtLeast", "TemporalAttention", "temporal_wise_attention", "FINETUNE"]

FINETUNE = TrainConfig(epochs=2, lr=1e-3)  # default training of the rate-side transforms on a trained model


def _spikes(step: Step, where: str) -> list[tuple[str, Tensor]]:
    out = [(name, s) for name, calls in step.spikes.items() for s in calls]
    if not out:
        raise ValueError(f"{where}: the step recorded no spikes; the model has no spiking neuron layer "
                         f"(train.fit records them with spikes.record)")
    return out


def layer_rates(step: Step) -> dict[str, Tensor]:
    """Mean firing rate of every spiking layer in this step (spikes per neuron per step), with gradient."""
    rates: dict[str, list[Tensor]] = {}
    for name, s in _spikes(step, "layer_rates"):
        rates.setdefault(name, []).append(s.mean())
    return {k: torch.stack(v).mean() for k, v in rates.items()}


@register("spike-rate-l1", kind="objective", taxonomy="spike-reduction/rate", keys=("deng2021comprehensive",))
def spike_rate_l1(step: Step) -> Tensor:
    r"""Mean firing rate over all spiking neurons, steps and samples, the L1 activity regulariser
    [@deng2021comprehensive].

    $R_1 = \sum_{b,t,n} s_{b,t,n} / (B\,T\,N)$; spikes are non-negative, so this is their L1 norm,
    normalised. Multiply by `neuron_updates` per sample to get spikes per sample."""
    # --8<-- [start:spike_l1]
    pairs = _spikes(step, "spike-rate-l1")
    total = sum(s.sum() for _, s in pairs)
    count = sum(s.numel() for _, s in pairs)
    return total / count
    # --8<-- [end:spike_l1]


@register("spike-rate-l2", kind="objective", taxonomy="spike-reduction/rate", keys=("neil2016learning",))
def spike_rate_l2(step: Step) -> Tensor:
    r"""Mean squared per-neuron firing rate, an L2 activity penalty [@neil2016learning].

    $R_2 = \frac{1}{B N}\sum_{b,n}\bar s_{b,n}^2$ with $\bar s_{b,n} = \frac{1}{T}\sum_t s_{b,t,n}$: the
    pressure on a neuron grows with its own rate, so the busiest neurons are quietened first."""
    pairs = _spikes(step, "spike-rate-l2")
    total = sum((s.mean(0) ** 2).sum() for _, s in pairs)
    count = sum(s[0].numel() for _, s in pairs)
    return total / count


@register("target-firing-rate", kind="objective", taxonomy="spike-reduction/rate", keys=("deng2021comprehensive",))
def target_firing_rate(step: Step, target: float | dict[str, float] = 0.02) -> Tensor:
    r"""Penalty on layers firing above a target rate, $\sum_l \max(0, r_l - r^*_l)^2$.

    `target` is one rate for every spiking layer or `{layer name: rate}` (a layer left out has no
    target); rates are spikes per neuron per step, in $[0, 1]$. A negative target is an error that
    names the layer."""
    rates = layer_rates(step)
    targets = {k: target for k in rates} if not isinstance(target, dict) else dict(target)
    unknown = [k for k in targets if k not in rates]
    if unknown:
        raise KeyError(f"target-firing-rate: no spiking layer named {unknown}; spiking layers: {list(rates)}")
    for k, v in targets.items():
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"target-firing-rate: target rate for layer {k!r} must lie in [0, 1] "
                             f"(spikes per neuron per step), got {v!r}")
    terms = [torch.clamp(rates[k] - float(v), min=0.0) ** 2 for k, v in targets.items()]
    return torch.stack(terms).sum() if terms else step.logits.sum() * 0.0


def synops_count(step: Step) -> Tensor:
    r"""Effective synaptic operations per sample of this step, differentiable in the spikes:
    $S = \frac{1}{B}\sum_{\text{layers}}\sum_i x_i f_i$ over the inputs $x$ each conv/linear layer received
    (`Step.synaptic_inputs`, filled by `train.fit`; a step without them is re-run under
    `spikes.record_inputs`) and their effective fan-out $f$. It equals `metrics.measure`'s
    `effective_acs + effective_macs` for the same inputs. Weighted (`weighted(synops_count, w)`) it is a
    linear synop penalty, which pushes at the same strength all the way down (an option in Sorbaro et al.'s
    code that their final runs do not use)."""
    inputs = step.synaptic_inputs
    if not inputs:
        with record_inputs(step.model) as inputs:
            step.model(step.inputs)
    count = count_synops(step.model, inputs, step.targets.shape[0])
    return count.total.to(step.logits.dtype)


@register("synops-loss", kind="objective", taxonomy="spike-reduction/rate", keys=("sorbaro2020optimizing",),
          needs=("target",))
def synops_loss(step: Step, target: float) -> Tensor:
    r"""Squared relative distance of the effective synaptic operations per sample to a target,
    $((S - S_0)/S_0)^2$ [@sorbaro2020optimizing].

    $S$ is `synops_count(step)` and $S_0$ = `target` (operations per sample). The authors add this term,
    unweighted, to the cross-entropy, and sweep $S_0$ (targets from about $10^4$ to $2\cdot10^6$ on
    MNIST-DVS in their published code); they train an ANN with the count taken from its activations and
    convert it, where we train the SNN itself. The term pulls $S$ towards $S_0$ from either side, so it stops
    removing operations once the target is reached. A target that is not positive is an error."""
    if not target > 0:
        raise ValueError(f"synops-loss: target must be a positive number of operations per sample, got {target!r}")
    # --8<-- [start:synops_loss]
    s = synops_count(step)
    return ((s - target) / target) ** 2  # ((S - S_0) / S_0)^2
    # --8<-- [end:synops_loss]


def weighted(objective: Callable[..., Tensor], weight: float, **options) -> LossTerm:
    """A loss term for `fit(loss_terms=...)`: `weight * objective(step, **options)`."""
    if not weight >= 0:
        raise ValueError(f"weighted: weight must be >= 0, got {weight!r}")

    def term(step: Step) -> Tensor:
        return weight * objective(step, **options)

    term.__name__ = f"{getattr(objective, '__name__', 'objective')}x{weight:g}"
    return term


# ----------------------------------------------------------------------------- learnable thresholds


class AtLeast(nn.Module):
    """Parametrization keeping a tensor at or above `floor` (a threshold above 0, a time constant >= 1)."""

    def __init__(self, floor: float) -> None:
        super().__init__()
        self.floor = float(floor)

    def forward(self, x: Tensor) -> Tensor:
        return torch.clamp(x, min=self.floor)


def _make_trainable(module: nn.Module, name: str, floor: float) -> None:
    value = getattr(module, name).detach().clone()
    delattr(module, name)  # a buffer
    module.register_parameter(name, nn.Parameter(value))
    parametrize.register_parametrization(module, name, AtLeast(floor))


@register("learnable-threshold", kind="transform", taxonomy="spike-reduction/rate", keys=("rathi2023dietsnn",))
def learnable_threshold(model: nn.Module, data: Split, encoder: Encoder, *, leak: bool = True,
                        min_threshold: float = 0.05, train: TrainConfig | None = None,
                        finetune: TrainConfig | None = None, loss_terms: Sequence[LossTerm] = (),
                        hooks: Sequence[Hook] = ()) -> Compressed:
    r"""Threshold (and leak) optimisation: every LIF's threshold $\theta$ and, with `leak`, its time
    constant become trainable, per channel, and are trained with the weights [@rathi2023dietsnn].

    DIET-SNN learns one threshold and one leak per layer by backpropagation; ours are per channel (the
    shape of the baseline's neuron buffers). Both stay on the model as `AtLeast` parametrizations
    ($\theta \ge$ `min_threshold`, $\tau \ge 1$). A higher learned threshold means fewer spikes; pass a
    spike or synop loss in `loss_terms` to pull in that direction explicitly. `train` (default
    `FINETUNE`) is the phase with trainable thresholds; `finetune` (default none) trains again after it.
    `.info` holds the mean threshold of each layer before and after."""
    net = copy.deepcopy(model)
    lifs = {n: m for n, m in net.named_modules() if isinstance(m, LIF)}
    if not lifs:
        raise TypeError(f"learnable-threshold needs LIF neurons; {type(model).__name__} has none")
    before = {n: float(m.threshold.mean()) for n, m in lifs.items()}
    for m in lifs.values():
        _make_trainable(m, "threshold", min_threshold)
        if leak:
            _make_trainable(m, "tau", 1.0)
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, FINETUNE, "train"), "train", history, extra_terms=loss_terms,
              extra_hooks=hooks)
    run_phase(net, data, encoder, budget(finetune, TrainConfig(epochs=0), "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    after = {n: float(m.threshold.detach().mean()) for n, m in lifs.items()}
    return Compressed(net, encoder, history, {"threshold_before": before, "threshold_after": after})


# ----------------------------------------------------------------------------- temporal-wise attention


class TemporalAttention(nn.Module):
    r"""Temporal-wise attention in front of a block [@yao2021temporalwise]: squeeze each step's input to
    its mean, $z_t = \mathrm{mean}(X[t])$ per sample, excite with two linear layers,
    $d = \sigma(W_2\,\mathrm{ReLU}(W_1 z))$, and scale each step, $X'[t] = d_t X[t]$.

    In eval mode with `d_th > 0`, a step scored below `d_th` is dropped ($X'[t] = 0$, input attention
    pruning) and the others keep their raw input ($X'[t] = X[t]$), so spike inputs stay spikes; in
    training every step is scaled."""

    def __init__(self, T: int, reduction: int = 4, d_th: float = 0.0) -> None:
        super().__init__()
        hidden = max(1, T // reduction)
        self.T, self.d_th = T, float(d_th)
        self.excite = nn.Sequential(nn.Linear(T, hidden), nn.ReLU(), nn.Linear(hidden, T), nn.Sigmoid())
        self.last_kept: Tensor | None = None  # [T, B] mask of the steps kept in the last eval call

    def scores(self, x: Tensor) -> Tensor:
        """Attention scores `[T, B]` of `x: [T, B, ...]`."""
        if x.shape[0] != self.T:
            raise ValueError(f"TemporalAttention: built for T={self.T} steps, got input with {x.shape[0]}")
        z = x.flatten(2).mean(2).t()  # [B, T]
        return self.excite(z).t()  # [T, B]

    def forward(self, x: Tensor) -> Tensor:
        d = self.scores(x)
        shape = (*d.shape, *([1] * (x.dim() - 2)))
        if not self.training and self.d_th > 0:
            keep = (d >= self.d_th).to(x.dtype)
            self.last_kept = keep
            return x * keep.view(shape)
        return x * d.view(shape)


class _Attended(nn.Module):
    """A block with a `TemporalAttention` in front of it."""

    def __init__(self, attention: TemporalAttention, block: nn.Module) -> None:
        super().__init__()
        self.attention, self.block = attention, block

    def forward(self, x: Tensor) -> Tensor:
        return self.block(self.attention(x))


@register("temporal-wise-attention", kind="transform", taxonomy="spike-reduction/rate", keys=("yao2021temporalwise",))
def temporal_wise_attention(model: nn.Module, data: Split, encoder: Encoder, *, reduction: int = 4,
                            d_th: float = 0.5, train: TrainConfig | None = None,
                            finetune: TrainConfig | None = None, loss_terms: Sequence[LossTerm] = (),
                            hooks: Sequence[Hook] = ()) -> Compressed:
    r"""TA-SNN: temporal-wise attention in front of every block, trained with the network; at inference
    steps scored below `d_th` are dropped [@yao2021temporalwise].

    The model must keep its blocks in `.blocks` (the baselines' `ConvNet` and `MLP`). The paper puts
    the attention on each layer's input and, for input attention pruning, drops the frames whose score
    falls below $d_{th}$ at inference; we do both, with the squeeze taken as the mean over all features
    of a step. `train` (default `FINETUNE`) trains the attended network; `finetune` (default none)
    trains again. `.info` has the test accuracy with and without dropping and the fraction of
    (step, sample) inputs kept per block."""
    if not hasattr(model, "blocks"):
        raise TypeError(f"temporal-wise-attention needs a model with .blocks; {type(model).__name__} has none")
    if not 0.0 <= d_th < 1.0:
        raise ValueError(f"temporal-wise-attention: d_th must lie in [0, 1), got {d_th!r}")
    net = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the attention layers' initial weights, the same on every run
        net.blocks = nn.ModuleList(_Attended(TemporalAttention(encoder.T, reduction, d_th), b) for b in net.blocks)
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, FINETUNE, "train"), "train", history, extra_terms=loss_terms,
              extra_hooks=hooks)
    run_phase(net, data, encoder, budget(finetune, TrainConfig(epochs=0), "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    attn = [b.attention for b in net.blocks]
    for a in attn:
        a.d_th = 0.0
    acc_soft = evaluate(net, data.test_x, data.test_y, encoder)
    for a in attn:
        a.d_th = d_th
    acc = evaluate(net, data.test_x, data.test_y, encoder)
    kept = [float(a.last_kept.mean()) if a.last_kept is not None else 1.0 for a in attn]
    return Compressed(net, encoder, history, {"accuracy": acc, "accuracy_without_dropping": acc_soft,
                                              "kept_fraction_last_batch": kept})
