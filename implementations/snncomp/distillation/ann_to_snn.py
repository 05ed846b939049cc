r"""ANN-to-SNN distillation: an ANN teacher guides a spiking student through its outputs or its features.

Every transform here trains a copy of the student with the task loss of `train.fit` (cross-entropy on
the time-averaged readout) plus its distillation terms; the teacher is frozen and runs without
gradients on the batch before encoding, with its own encoder (`teachers`). `weight` is the ratio of the
distillation term to the cross-entropy: Hinton et al.'s mixture $\alpha\,\mathcal{L}_{KD} + (1-\alpha)\,
\mathcal{L}_{CE}$ is `weight` $= \alpha / (1 - \alpha)$ with the learning rate scaled by $1-\alpha$.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..data import Split
from ..data.encoding import Encoder
from ..registry import all_but, register
from ..train import Hook, LossTerm, Step, TrainConfig
from .losses import soft_target_loss, readout as read_student, spike_rate
from .teachers import resolve
from .terms import FeatureTerm, ResponseTerm, SpikeTerm, Weight, distil, make_adapters, pair_layers, prepare

__all__ = ["soft_targets", "energy_aware_kd", "soft_target_distillation", "kdsnn", "attention_transfer",
           "energy_aware_distillation"]


@register("soft-targets", kind="objective", taxonomy="distillation/ann-to-snn",
          keys=("hinton2015distilling", "sugahara2021training"), needs=("teacher",),
          keeps=all_but("early-exit"))
def soft_targets(step: Step, *, teacher, temperature: float = 4.0, readout: str = "mean") -> Tensor:
    r"""Soft-target loss of a spiking student against a frozen teacher [@hinton2015distilling; @sugahara2021training].

    $\tau^2\,\mathrm{KL}(\mathrm{softmax}(z^t/\tau)\,\|\,\mathrm{softmax}(z^s/\tau))$ with the student's
    scores read by `readout` (`losses.readout`: `"mean"`, `"spike-count"` or `"membrane"`) and the
    teacher's computed on `step.images` with its own encoder. Pass a `teachers.Teacher` to run it inside
    `train.fit` (a name or `(model, encoder)` is resolved, and copied, at every call)."""
    t = resolve(teacher, where="soft_targets")
    t_logits, _ = t.outputs(step)
    return soft_target_loss(read_student(step.logits, step.model, step.spikes, readout), t_logits, temperature)


@register("energy-aware-kd", kind="objective", taxonomy="distillation/ann-to-snn",
          keys=("lee2021energyefficient",), needs=("teacher",),
          keeps=all_but("early-exit"))
def energy_aware_kd(step: Step, *, teacher, temperature: float = 4.0, student_temperature: float = 1.0,
                    spike_weight: float = 1.0, readout: str = "mean") -> Tensor:
    r"""Distillation with heterogeneous temperatures plus a spike-count term [@lee2021energyefficient].

    $\tau_s\tau_t\,\mathrm{KL}(\mathrm{softmax}(z^t/\tau_t)\,\|\,\mathrm{softmax}(z^s/\tau_s)) + \lambda\,\bar r$:
    with $\tau_s < \tau_t$ the student matches the teacher's ranking with logits $\tau_s/\tau_t$ times smaller,
    so its readout needs less drive; $\bar r$ is its mean firing rate (every spiking layer, neuron, step
    and sample) and $\lambda$ = `spike_weight`. The rate term is our addition to make the spike budget explicit."""
    t = resolve(teacher, where="energy_aware_kd")
    t_logits, _ = t.outputs(step)
    s = read_student(step.logits, step.model, step.spikes, readout)
    return soft_target_loss(s, t_logits, temperature, student_temperature) + spike_weight * spike_rate(step.spikes)


@register("soft-target-distillation", kind="transform", taxonomy="distillation/ann-to-snn",
          keys=("sugahara2021training", "hinton2015distilling"), needs=("teacher",),
          keeps=all_but("early-exit"))
def soft_target_distillation(model: nn.Module, data: Split, encoder: Encoder, *, teacher, weight: Weight = 1.0,
                             temperature: float = 4.0, readout: str = "mean", tau: float = 2.0,
                             train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                             loss_terms: Sequence[LossTerm] = (), hooks: Sequence[Hook] = ()):
    r"""Train a low-latency SNN student at its own $T$ with soft targets from a frozen ANN [@sugahara2021training].

    Loss per step: cross-entropy $+\;$ `weight` $\cdot\,\tau^2\,\mathrm{KL}(p_t^\tau\|p_s^\tau)$ with the
    student read from `readout` (`"mean"` time-averaged logits, `"spike-count"` or `"membrane"`, see
    `losses.readout`). `weight` may be a function of the global step (a schedule). `train` (default 8
    epochs) is the distillation phase, `finetune` (default none) trains on without the teacher.
    `.info` has both accuracies and parameter counts."""
    setup = prepare(model, data, encoder, teacher, "soft_target_distillation")
    term = ResponseTerm(setup.teacher, weight, temperature, None, readout, tau)
    return distil(model, data, encoder, setup, [term], train=train, finetune=finetune, loss_terms=loss_terms,
                  hooks=hooks, info={"readout": readout, "temperature": temperature})


@register("kdsnn", kind="transform", taxonomy="distillation/ann-to-snn", keys=("xu2023constructing",),
          needs=("teacher",),
          keeps=all_but("early-exit"))
def kdsnn(model: nn.Module, data: Split, encoder: Encoder, *, teacher, layers: Sequence[int] | dict[str, str] = (-1,),
          feature_weight: Weight = 1.0, weight: Weight = 1.0, temperature: float = 4.0, readout: str = "mean",
          seed: int = 0,
          train: TrainConfig | None = None, finetune: TrainConfig | None = None,
          loss_terms: Sequence[LossTerm] = (), hooks: Sequence[Hook] = ()):
    r"""KDSNN: soft targets plus feature hints through learned adapters from an ANN teacher [@xu2023constructing].

    Loss per step: cross-entropy $+$ `weight` $\cdot\,\mathcal{L}_{KD}$ $+$ `feature_weight` $\cdot
    \sum_l \mathrm{MSE}(A_l(r^s_l), f^t_l)$, where $r^s_l$ is the student's firing rate at its feature
    layer $l$ (spikes averaged over time), $f^t_l$ the teacher's activation there and $A_l$ a learned
    1x1 convolution from the student's channels to the teacher's, trained with the student and
    dropped afterwards. The student's scores for $\mathcal{L}_{KD}$ are read from `readout`. `layers`:
    indices into both networks' feature layers (default the last one), or an explicit
    `{student layer: teacher layer}`; paired maps must share their spatial size.

    Not checked against the paper's method section: we could read only KDSNN's abstract (response- and
    feature-based distillation in one loss, surrogate gradients) and found no code from its authors. The
    feature term follows the BKDSNN authors' public re-implementation [@xu2024bkdsnn] (a 1x1 convolution
    from the student's channels to the teacher's, then a squared distance), with three differences: we
    average over elements where they sum and divide by the batch (a rescaling of `feature_weight`), our
    adapter is there even when the channel counts agree (theirs is then left out), and their
    re-implementation trains the feature term without soft targets."""
    setup = prepare(model, data, encoder, teacher, "kdsnn")
    pairs = pair_layers(model, setup.teacher, layers)
    adapters = make_adapters(model, encoder, setup.teacher, pairs, data.train_x[:2], seed)
    terms = [ResponseTerm(setup.teacher, weight, temperature, None, readout),
             FeatureTerm(setup.teacher, pairs, adapters, feature_weight)]
    return distil(model, data, encoder, setup, terms, train=train, finetune=finetune, loss_terms=loss_terms,
                  hooks=hooks, adapters=adapters, info={"pairs": pairs})


@register("attention-transfer", kind="transform", taxonomy="distillation/ann-to-snn", keys=("zagoruyko2017paying",),
          needs=("teacher",),
          keeps=all_but("attention", "early-exit"))
def attention_transfer(model: nn.Module, data: Split, encoder: Encoder, *, teacher,
                       layers: Sequence[int] | dict[str, str] | None = None, attention_weight: Weight = 1.0,
                       weight: Weight = 1.0, temperature: float = 4.0, readout: str = "mean",
                       train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                       loss_terms: Sequence[LossTerm] = (), hooks: Sequence[Hook] = ()):
    r"""Attention transfer from an ANN teacher to a spiking student, plus soft targets [@zagoruyko2017paying].

    Loss per step: cross-entropy $+$ `weight` $\cdot\,\mathcal{L}_{KD}$ $+$ `attention_weight` $\cdot
    \sum_l \frac1B\sum_b\|a(r^s_{l,b}) - a(f^t_{l,b})\|_2^2$ over every paired feature layer (default all
    that both have), where $a(\cdot)$ is Zagoruyko and Komodakis's activation-based spatial attention map
    (`losses.attention_map`: channels pooled as $\sum_c |F_c|^2$, flattened, divided by its L2 norm), so
    the two networks may differ in width without an adapter. Every pair is matched from the first step
    (`weight=0` leaves attention transfer alone, as in their paper; the default adds Hinton et al.'s soft
    targets, a combination they also ran). Adapted, not copied: their networks were two ANNs and
    their code averages the squared difference over map positions with $\beta/2 = 500$, where we sum
    over positions with weight 1 and read the student's maps from its firing rates.

    This is the loss our pages once credited to LaSNN [@hong2023lasnn]; LaSNN's own attention scheme and
    layer-wise schedule could not be read (only its abstract), so no transform carries its name."""
    setup = prepare(model, data, encoder, teacher, "attention_transfer")
    pairs = pair_layers(model, setup.teacher, layers)
    make_adapters(model, encoder, setup.teacher, pairs, data.train_x[:2])  # checks the spatial sizes
    terms = [ResponseTerm(setup.teacher, weight, temperature, None, readout),
             FeatureTerm(setup.teacher, pairs, None, attention_weight, kind="attention")]
    return distil(model, data, encoder, setup, terms, train=train, finetune=finetune, loss_terms=loss_terms,
                  hooks=hooks, info={"pairs": pairs})


@register("energy-aware-distillation", kind="transform", taxonomy="distillation/ann-to-snn",
          keys=("lee2021energyefficient",), needs=("teacher",),
          keeps=all_but("early-exit"))
def energy_aware_distillation(model: nn.Module, data: Split, encoder: Encoder, *, teacher, weight: Weight = 1.0,
                              temperature: float = 4.0, student_temperature: float = 1.0,
                              spike_weight: Weight = 1.0, readout: str = "mean",
                              train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                              loss_terms: Sequence[LossTerm] = (), hooks: Sequence[Hook] = ()):
    r"""Distillation that keeps the student's spikes down: heterogeneous temperatures and a rate term [@lee2021energyefficient].

    Loss per step: cross-entropy $+$ `weight` $\cdot\,\tau_s\tau_t\,\mathrm{KL}(p_t^{\tau_t}\|p_s^{\tau_s})$
    $+$ `spike_weight` $\cdot\,\bar r$ (see the objective `energy_aware_kd`); with `spike_weight=0` it is
    the heterogeneous-temperature loss alone."""
    setup = prepare(model, data, encoder, teacher, "energy_aware_distillation")
    terms = [ResponseTerm(setup.teacher, weight, temperature, student_temperature, readout), SpikeTerm(spike_weight)]
    return distil(model, data, encoder, setup, terms, train=train, finetune=finetune, loss_terms=loss_terms,
                  hooks=hooks, info={"temperature": temperature, "student_temperature": student_temperature})
