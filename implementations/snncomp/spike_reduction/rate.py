r"""Rate side of spike reduction: penalising or gating spikes so neurons fire less
(section 3.4 of [@xie2024efficient]).

**Objectives** (loss terms for `train.fit`, each `fn(step, **options) -> scalar`; wrap one with its weight
by `weighted`):

* `spike-rate-l1`: the mean firing rate over every spiking neuron and step, the activity regulariser of
  [@deng2021comprehensive]; $R_1 = \frac{1}{B\,T\,N}\sum_{b,t,n} s_{b,t,n}$.
* `spike-rate-l2`: the mean over neurons of the squared per-neuron rate, an L2 activity penalty in the
  spirit of [@neil2016learning]; $R_2 = \frac{1}{B\,N}\sum_{b,n} \big(\frac{1}{T}\sum_t s_{b,t,n}\big)^2$,
  which bears on the busiest neurons hardest.
* `target-firing-rate`: an upper bound on each layer's population rate, in the form of the `UpperBoundL2`
  activity regulariser of the Zenke lab's `stork` library used with [@zenke2021remarkable]:
  $\sum_l \frac1B\sum_b \max(0, r_{l,b} - r^*_l)^2$ with $r_{l,b}$ sample $b$'s mean rate in layer $l$;
  no pressure below the bound.
* `synops-loss`: the energy objective of [@sorbaro2020optimizing], the squared relative distance of the
  effective synaptic operations per sample $S$ to a target $S_0$, $((S - S_0)/S_0)^2$. $S = \sum_i x_i f_i$
  with fan-out $f_i$ (`synops_count`, see `spike_reduction.synops`) equals `metrics.measure`'s
  `effective_acs + effective_macs` on the same inputs.

The three activity terms and `synops_count` (which, weighted by `weighted`, is a linear synop penalty,
kept for comparison) are 0 for a silent network (the count keeps a constant for analog-input
layers, which have no spikes to remove); all reach the weights through the surrogate gradient of the
spikes. The synop loss pushes down while $S > S_0$ and stops at the target.

**Transforms** (the `snncomp.compress` contract):

* `learnable-threshold`: every LIF's threshold and leak become trainable, one per layer, and the reset
  becomes a subtraction, as in DIET-SNN [@rathi2023dietsnn] (the leak through $\tau \ge 1$: see the docstring).
* `temporal-wise-attention`: TA-SNN [@yao2021temporalwise], a squeeze-and-excitation score per time
  step that multiplies every block's current (after conv -> batch norm, before the neuron), in training
  and at inference as in the authors' code; with `d_th`, steps scored below it get no current at inference.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..compress import Compressed, budget, own_class, run_phase
from ..data import Split
from ..data.encoding import Encoder
from ..neurons import LIF
from ..registry import all_but, register
from ..spikes import record_inputs
from ..train import NONE, Hook, LossTerm, Step, TrainConfig, evaluate
from .synops import count_synops

__all__ = ["spike_rate_l1", "spike_rate_l2", "target_firing_rate", "synops_loss", "synops_count", "weighted", "layer_rates",
           "learnable_threshold", "AtLeast", "SharedAtLeast", "TemporalAttention", "temporal_wise_attention", "RATE_FINETUNE"]

RATE_FINETUNE = TrainConfig(epochs=2, lr=1e-3)  # default training of the rate-side transforms on a trained model


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


@register("spike-rate-l1", kind="objective", taxonomy="spike-reduction/rate", keys=("deng2021comprehensive",),
          keeps=all_but("early-exit"))
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


@register("spike-rate-l2", kind="objective", taxonomy="spike-reduction/rate", keys=("neil2016learning",),
          keeps=all_but("early-exit"))
def spike_rate_l2(step: Step) -> Tensor:
    r"""Mean squared per-neuron firing rate, an L2 activity penalty [@neil2016learning].

    $R_2 = \frac{1}{B N}\sum_{b,n}\bar s_{b,n}^2$ with $\bar s_{b,n} = \frac{1}{T}\sum_t s_{b,t,n}$: the
    pressure on a neuron grows with its own rate, so the busiest neurons are quietened first."""
    pairs = _spikes(step, "spike-rate-l2")
    total = sum((s.mean(0) ** 2).sum() for _, s in pairs)
    count = sum(s[0].numel() for _, s in pairs)
    return total / count


@register("target-firing-rate", kind="objective", taxonomy="spike-reduction/rate", keys=("zenke2021remarkable",),
          keeps=all_but("early-exit"))
def target_firing_rate(step: Step, target: float | dict[str, float] = 0.02) -> Tensor:
    r"""Upper bound on each layer's population firing rate, squared hinge per sample:
    $\sum_l \frac1B\sum_b \max(0, r_{l,b} - r^*_l)^2$ [@zenke2021remarkable].

    $r_{l,b}$ is sample $b$'s mean rate over the neurons and steps of layer $l$. This is the form of
    `UpperBoundL2` with a population average in `stork`, the Zenke lab's library (we read its code; of
    the paper we read the abstract and record, which name activity regularisation but not this
    equation); we count rates (spikes per neuron per step) where `stork` counts spikes per neuron over
    the trial, a factor $T$ in the bound. `target` is one rate for every spiking layer or
    `{layer name: rate}` (a layer left out has no bound); a rate outside $[0, 1]$ is an error that names
    the layer."""
    pairs = _spikes(step, "target-firing-rate")
    per_sample: dict[str, list[Tensor]] = {}
    for name, s in pairs:
        per_sample.setdefault(name, []).append(s.transpose(0, 1).flatten(1).mean(1))  # [B]
    rates = {k: torch.stack(v).mean(0) for k, v in per_sample.items()}  # layer -> [B]
    targets = {k: target for k in rates} if not isinstance(target, dict) else dict(target)
    unknown = [k for k in targets if k not in rates]
    if unknown:
        raise KeyError(f"target-firing-rate: no spiking layer named {unknown}; spiking layers: {list(rates)}")
    for k, v in targets.items():
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"target-firing-rate: target rate for layer {k!r} must lie in [0, 1] "
                             f"(spikes per neuron per step), got {v!r}")
    # --8<-- [start:target_rate]
    terms = [(torch.clamp(rates[k] - float(v), min=0.0) ** 2).mean() for k, v in targets.items()]
    # --8<-- [end:target_rate]
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
          needs=("target",),
          keeps=all_but("early-exit"))
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


class SharedAtLeast(nn.Module):
    """Parametrization tying a per-channel tensor to one value per layer (the mean of the stored
    entries, which stay equal under training since each gets the same gradient), kept at or above
    `floor`: DIET-SNN's one threshold and one leak per layer on neurons that store them per channel."""

    def __init__(self, floor: float) -> None:
        super().__init__()
        self.floor = float(floor)

    def forward(self, x: Tensor) -> Tensor:
        return torch.clamp(x.mean(), min=self.floor).expand_as(x)


def _make_trainable(module: nn.Module, name: str, floor: float, per_layer: bool) -> None:
    if parametrize.is_parametrized(module, name):
        return  # already learned (an earlier learnable-threshold step): it keeps its own parametrization
    value = getattr(module, name).detach().clone()
    if per_layer:
        value = torch.full_like(value, float(value.mean()))
    own_class(module)  # registering on a parametrized copy must not edit its original's class
    delattr(module, name)  # a buffer
    module.register_parameter(name, nn.Parameter(value))
    parametrize.register_parametrization(module, name, SharedAtLeast(floor) if per_layer else AtLeast(floor))


@register("learnable-threshold", kind="transform", taxonomy="spike-reduction/rate", keys=("rathi2023dietsnn",),
          leaves=("trained-threshold",), keeps=all_but("membrane-grid", "early-exit"), requires={"neuron": ("LIF",)})
def learnable_threshold(model: nn.Module, data: Split, encoder: Encoder, *, leak: bool = True,
                        per_layer: bool = True, reset: str | None = "soft", min_threshold: float = 0.05,
                        train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                        loss_terms: Sequence[LossTerm] = (), hooks: Sequence[Hook] = ()) -> Compressed:
    r"""DIET-SNN's threshold and leak optimisation: every LIF's threshold $\theta$ and, with `leak`, its
    leak become trainable and are trained with the weights [@rathi2023dietsnn].

    As in DIET-SNN (paper and the authors' code, nitin-rathi/DIET-SNN): one threshold and one leak per
    layer (`per_layer=True`; `False` gives one per channel), and reset by subtraction (`reset="soft"`
    switches the LIFs to it; `None` keeps the model's own reset). Where we differ: the leak is trained
    through the time constant, $\beta = 1 - 1/\tau$ with $\tau \ge 1$ (DIET-SNN trains $\beta$ itself,
    unbounded); the surrogate gradient is the model's own, taken at $H - \theta$ (DIET-SNN's is linear in
    $H/\theta - 1$); and we start from a directly trained network where DIET-SNN starts from a converted
    ANN with thresholds set from its activations. Both stay on the model as parametrizations
    ($\theta \ge$ `min_threshold`, $\tau \ge 1$). A higher learned threshold means fewer spikes; pass a
    spike or synop loss in `loss_terms` to pull in that direction explicitly. `train` (default
    `RATE_FINETUNE`) is the phase with trainable thresholds; `finetune` (default none) trains again after it.
    `.info` holds the mean threshold of each layer before and after."""
    if reset not in (None, "soft", "hard"):
        raise ValueError(f"learnable-threshold: reset must be 'soft', 'hard' or None, got {reset!r}")
    net = copy.deepcopy(model)
    lifs = {n: m for n, m in net.named_modules() if isinstance(m, LIF)}
    if not lifs:
        raise TypeError(f"learnable-threshold needs LIF neurons; {type(model).__name__} has none")
    before = {n: float(m.threshold.detach().mean()) for n, m in lifs.items()}
    for m in lifs.values():
        _make_trainable(m, "threshold", min_threshold, per_layer)
        if leak:
            _make_trainable(m, "tau", 1.0, per_layer)
        if reset is not None:
            m.reset = reset
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, RATE_FINETUNE, "train"), "train", history, extra_terms=loss_terms,
              extra_hooks=hooks)
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    after = {n: float(m.threshold.detach().mean()) for n, m in lifs.items()}
    return Compressed(net, encoder, history, {"threshold_before": before, "threshold_after": after})


# ----------------------------------------------------------------------------- temporal-wise attention


class TemporalAttention(nn.Module):
    r"""Temporal-wise attention on a layer's current [@yao2021temporalwise]: squeeze each step's current to
    its mean, $z_t = \mathrm{mean}(U[t])$ per sample, excite with two linear layers,
    $d = \sigma(W_2\,\mathrm{ReLU}(W_1 z))$, and scale each step, $U'[t] = d_t\,U[t]$.

    As in the authors' published code (BICLab/TA-SNN, `module/TA.py` and `module/LIF_Module.py`), the
    scores multiply the current in training and at inference alike, so the neuron sees the same scale in
    both modes. With `d_th > 0`, in eval mode a step scored below `d_th` gets no current at all
    ($U'[t] = 0$, input attention pruning) and a kept step is still scaled by its score; the published
    code has no pruning step and we could not read the paper's equation for it, so this zeroing rule is
    ours."""

    def __init__(self, T: int, reduction: int = 4, d_th: float = 0.0) -> None:
        super().__init__()
        hidden = max(1, T // reduction)
        self.T, self.d_th = T, float(d_th)
        self.excite = nn.Sequential(nn.Linear(T, hidden), nn.ReLU(), nn.Linear(hidden, T), nn.Sigmoid())
        self.last_kept: Tensor | None = None  # [T, B] mask of the steps kept in the last eval call

    def retime(self, T: int) -> None:
        """Re-bake for `T` steps, at most those it was built for (time-step reduction after TA-SNN): the
        excitation layers are kept and read the `T` step means followed by zeros, and the first `T` scores
        are used, as if the weights reading and scoring the dropped steps were cut; masks or quantizers on
        those layers stay in force. Our rule: TA-SNN is trained at one fixed T."""
        built = self.excite[0].in_features
        if not 1 <= T <= built:
            raise ValueError(f"TemporalAttention.retime: built for {built} steps, cannot run {T}")
        self.T, self.last_kept = T, None

    def scores(self, x: Tensor) -> Tensor:
        """Attention scores `[T, B]` of `x: [T, B, ...]`."""
        if x.shape[0] != self.T:
            raise ValueError(f"TemporalAttention: built for T={self.T} steps, got input with {x.shape[0]}")
        z = x.flatten(2).mean(2).t()  # [B, T]
        built = self.excite[0].in_features
        if self.T < built:  # retimed to fewer steps: the dropped steps read as zeros
            z = nn.functional.pad(z, (0, built - self.T))
        return self.excite(z)[:, : self.T].t()  # [T, B]

    def forward(self, x: Tensor) -> Tensor:
        d = self.scores(x)
        shape = (*d.shape, *([1] * (x.dim() - 2)))
        # --8<-- [start:attention]
        if not self.training and self.d_th > 0:
            keep = (d >= self.d_th).to(x.dtype)
            self.last_kept = keep
            d = d * keep  # input attention pruning: a dropped step gets no current
        return x * d.view(shape)  # U'[t] = d_t U[t], in training and at inference
        # --8<-- [end:attention]


class _AttendedNeuron(nn.Module):
    """A block's neuron fed through a `TemporalAttention`: the block's current (conv -> batch norm, or the
    linear layer's output) is scored and scaled before the neuron integrates it, as in TA-SNN."""

    def __init__(self, attention: TemporalAttention, neuron: nn.Module) -> None:
        super().__init__()
        self.attention, self.neuron = attention, neuron

    def forward(self, x: Tensor) -> Tensor:
        return self.neuron(self.attention(x))


@register("temporal-wise-attention", kind="transform", taxonomy="spike-reduction/rate", keys=("yao2021temporalwise",),
          leaves=("attention",), keeps=all_but("early-exit"), requires={"model": ("ConvNet", "MLP")})
def temporal_wise_attention(model: nn.Module, data: Split, encoder: Encoder, *, reduction: int = 4,
                            d_th: float = 0.0, train: TrainConfig | None = None,
                            finetune: TrainConfig | None = None, loss_terms: Sequence[LossTerm] = (),
                            hooks: Sequence[Hook] = ()) -> Compressed:
    r"""TA-SNN: temporal-wise attention on every block's current, trained with the network; at inference
    steps scored below `d_th` get no current [@yao2021temporalwise].

    The model must keep its blocks in `.blocks`, each with a `.neuron` (the baselines' `ConvNet` and `MLP`).
    Following the authors' code, the attention sits between the block's conv -> batch norm (or linear)
    output and its spiking neuron, squeezes each step to the mean over all its features, and multiplies
    the current by the score in training and at inference. Input attention pruning (`d_th > 0`) zeroes
    the current of the steps scored below `d_th` in eval mode; kept steps keep their score (our rule: the
    published code has no pruning step and we could not read the paper's equation). By default `d_th = 0`:
    nothing is dropped, as in the published code; dropping is an option, since the network never sees it in
    training (at `d_th = 0.5` on direct input every score of our baseline fell below it and the board measured
    chance accuracy), so a threshold should be chosen on validation images. `train` (default
    `RATE_FINETUNE`) trains the attended network; `finetune` (default none) trains again. `.info` has the
    test accuracy with and without dropping and the fraction of (step, sample) currents kept per block
    in the last batch."""
    if not hasattr(model, "blocks") or not all(hasattr(b, "neuron") for b in model.blocks):
        raise TypeError(f"temporal-wise-attention needs a model with .blocks that have a .neuron; "
                        f"{type(model).__name__} has none")
    if not 0.0 <= d_th < 1.0:
        raise ValueError(f"temporal-wise-attention: d_th must lie in [0, 1), got {d_th!r}")
    net = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the attention layers' initial weights, the same on every run
        for b in net.blocks:
            b.neuron = _AttendedNeuron(TemporalAttention(encoder.T, reduction, d_th), b.neuron)
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, RATE_FINETUNE, "train"), "train", history, extra_terms=loss_terms,
              extra_hooks=hooks)
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    attn = [b.neuron.attention for b in net.blocks]
    for a in attn:
        a.d_th = 0.0
    acc_soft = evaluate(net, data.test_x, data.test_y, encoder)
    for a in attn:
        a.d_th = d_th
    acc = evaluate(net, data.test_x, data.test_y, encoder)
    kept = [float(a.last_kept.mean()) if a.last_kept is not None else 1.0 for a in attn]
    return Compressed(net, encoder, history, {"accuracy": acc, "accuracy_without_dropping": acc_soft,
                                              "kept_fraction_last_batch": kept})
