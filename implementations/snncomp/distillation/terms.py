"""Loss terms that bind a teacher to the losses, the adapters of feature distillation, and the one
runner every distillation transform trains through.

A term is a `train.LossTerm` (`term(step) -> scalar`): it reads the student's tensors from the step
(`logits`, recorded `spikes`) and the teacher's from `Teacher.outputs(step)` (one no-grad teacher
forward per step, shared by every term). `distil` checks everything it can before the first optimiser
step (the teacher exists, both networks give the same classes, paired feature maps have the same spatial
size), attaches the adapters to the student while it trains (so `train.fit` optimises them with the
student) and removes them afterwards: the distilled model has exactly the student's parameters.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .. import spikes as spike_rec
from ..compress import Compressed, budget, run_phase
from ..data import Split
from ..data.encoding import Encoder
from ..metrics import count_params
from ..train import NONE, Hook, LossTerm, Step, TrainConfig, evaluate
from .losses import READOUTS, attention_loss, feature_loss, readout, soft_target_loss, spike_rate
from .teachers import Teacher, activation_layers, check_classes, resolve

__all__ = ["DISTIL_TRAIN", "Weight", "ResponseTerm", "FeatureTerm", "SpikeTerm", "pair_layers", "make_adapters",
           "Setup", "prepare", "distil"]

DISTIL_TRAIN = TrainConfig(epochs=8, lr=2e-3)  # training the student under its teacher (from scratch)

Weight = float | Callable[[int], float]  # a constant, or a function of the global step


def _weight(w: Weight, step: Step) -> float:
    return float(w(step.index)) if callable(w) else float(w)


@dataclass
class ResponseTerm:
    """`weight * soft_target_loss(student readout, teacher logits)` for each step."""

    teacher: Teacher
    weight: Weight = 1.0
    temperature: float = 4.0
    student_temperature: float | None = None
    readout: str = "mean"
    tau: float = 2.0

    def __post_init__(self) -> None:
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {self.readout!r}")

    def __call__(self, step: Step) -> Tensor:
        t_logits, _ = self.teacher.outputs(step)
        s = readout(step.logits, step.model, step.spikes, self.readout, self.tau)
        return _weight(self.weight, step) * soft_target_loss(s, t_logits, self.temperature, self.student_temperature)


@dataclass
class FeatureTerm:
    """`weight * sum over layer pairs` of the feature (`kind="mse"`, through the adapters) or attention
    (`kind="attention"`) loss between the student's firing rates and the teacher's features."""

    teacher: Teacher
    pairs: dict[str, str]  # student layer -> teacher layer
    adapters: nn.ModuleDict | None = None  # keyed by the student layer with "." -> "_"
    weight: Weight = 1.0
    kind: str = "mse"
    layers: Callable[[int], Sequence[str]] | None = None  # which student layers count at a step (default all)

    def __call__(self, step: Step) -> Tensor:
        _, t_feats = self.teacher.outputs(step)
        active = self.pairs if self.layers is None else self.layers(step.index)
        total = step.logits.new_zeros(())
        for s_name in active:
            rates = step.spikes[s_name][-1].mean(0)  # [B, C, H, W]: firing rate over time
            target = t_feats[self.pairs[s_name]].mean(0)  # teacher features, averaged over its steps
            if self.kind == "attention":
                total = total + attention_loss(rates, target)
            else:
                total = total + feature_loss(rates, target, self.adapters[_key(s_name)] if self.adapters else None)
        return _weight(self.weight, step) * total


@dataclass
class SpikeTerm:
    """`weight * ` the student's mean firing rate (over every spiking layer, neuron, step and sample)."""

    weight: Weight = 1.0

    def __call__(self, step: Step) -> Tensor:
        return _weight(self.weight, step) * spike_rate(step.spikes)


def _key(name: str) -> str:
    return name.replace(".", "_")


def pair_layers(student: nn.Module, teacher: Teacher, layers: Sequence[int] | dict[str, str] | None) -> dict[str, str]:
    """Student layer -> teacher layer: an explicit dict, or the i-th feature layers of both
    (`teachers.activation_layers`) for each index in `layers` (default: all that both have)."""
    s_layers = [n for n in activation_layers(student)]
    t_layers = activation_layers(teacher.model)
    if isinstance(layers, dict):
        for s, t in layers.items():
            if s not in s_layers:
                raise KeyError(f"student has no spiking layer {s!r}; spiking layers: {', '.join(s_layers)}")
            if t not in t_layers:
                raise KeyError(f"teacher {teacher.name} has no feature layer {t!r}; layers: {', '.join(t_layers)}")
        return dict(layers)
    idx = range(min(len(s_layers), len(t_layers))) if layers is None else layers
    out = {}
    for i in idx:
        if not -len(s_layers) <= i < len(s_layers) or not -len(t_layers) <= i < len(t_layers):
            raise IndexError(f"feature layer {i} out of range: student has {len(s_layers)}, teacher {len(t_layers)}")
        out[s_layers[i]] = t_layers[i]
    return out


def make_adapters(student: nn.Module, encoder: Encoder, teacher: Teacher, pairs: dict[str, str], images: Tensor,
                  seed: int = 0) -> nn.ModuleDict:
    """A 1x1 convolution (or linear map) per pair from the student's channels to the teacher's, after
    checking on `images` that each pair has the same spatial size (a `ValueError` names both layers)."""
    teacher.with_features(list(pairs.values()))
    with torch.no_grad(), spike_rec.record(student) as rec:
        was = student.training
        student.eval()
        student(encoder(images))
        student.train(was)
    _, t_feats = teacher.run(images)
    adapters = nn.ModuleDict()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for s_name, t_name in pairs.items():
            s = rec[s_name][-1].shape[2:]  # [C, H, W] or [F]
            t = t_feats[t_name].shape[2:]
            if len(s) != len(t) or s[1:] != t[1:]:
                raise ValueError(f"feature shapes differ: student layer {s_name!r} gives {tuple(s)}, teacher "
                                 f"{teacher.name} layer {t_name!r} gives {tuple(t)} (channels may differ, the "
                                 "spatial size may not)")
            adapters[_key(s_name)] = (nn.Conv2d(s[0], t[0], 1) if len(s) == 3 else nn.Linear(s[0], t[0]))
    return adapters


@dataclass
class Setup:
    """What `prepare` checked and built: the frozen teacher and the number of classes."""

    teacher: Teacher
    classes: int
    info: dict = field(default_factory=dict)


def prepare(model: nn.Module, data: Split, encoder: Encoder, teacher, where: str) -> Setup:
    """Resolve and check the teacher against the student before any training (see the module docstring)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{where}: expected an nn.Module student, got {type(model).__name__}")
    t = resolve(teacher, where=where)
    classes = check_classes(model, encoder, t, data.train_x[:2])
    return Setup(t, classes)


def distil(model: nn.Module, data: Split, encoder: Encoder, setup: Setup, terms: Sequence[LossTerm], *,
           train: TrainConfig | None, finetune: TrainConfig | None, loss_terms: Sequence[LossTerm] = (),
           hooks: Sequence[Hook] = (), adapters: nn.ModuleDict | None = None, info: dict | None = None) -> Compressed:
    """Train a copy of `model` with the distillation `terms` for `train` (default `DISTIL_TRAIN`), then without
    them for `finetune` (default none); the caller's `loss_terms`/`hooks` ride along both phases.
    `adapters` are trained with the student and removed afterwards."""
    net = copy.deepcopy(model)
    history: list[dict] = []
    if adapters is not None:
        net.add_module("distill_adapters", adapters)
    try:
        run_phase(net, data, encoder, budget(train, DISTIL_TRAIN, "train"), "distil", history, loss_terms=terms,
                  extra_terms=loss_terms, extra_hooks=hooks)
    finally:
        if adapters is not None:
            del net.distill_adapters
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    t = setup.teacher
    out = {"teacher": t.name, "teacher_params": count_params(t.model), "student_params": count_params(net),
           "classes": setup.classes,
           "teacher_accuracy": evaluate(t.model, data.test_x, data.test_y, t.encoder),
           "accuracy": evaluate(net, data.test_x, data.test_y, encoder), **(info or {})}
    return Compressed(net, encoder, history, out)
