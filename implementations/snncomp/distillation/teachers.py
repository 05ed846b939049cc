"""Teachers: a frozen trained network, the encoder it reads images with, and what it says about a batch.

A distillation method never trains its teacher. `resolve` turns what a caller passes (a baseline name
from `snncomp.baselines`, a `(name, seed)` pair, a `(model, encoder)` pair or a `Teacher`) into a
`Teacher` whose parameters are frozen (`requires_grad = False`, on a private copy: the caller's model
is not touched) and whose forward always runs in eval mode under `torch.no_grad`. A name that
`baselines` does not know is an error before any training starts; the weights of a known one come
from the one cached builder (trained once on a clean checkout, loaded afterwards, never committed).

The teacher reads the batch *before* encoding (`train.Step.images`) with its own encoder, so an ANN
teacher sees the analog image at one step while a spiking student sees its spike code, and a long-T
SNN teacher runs its own T beside a short-T student. Rate codes are drawn from the teacher's own
seeded generator.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .. import baselines
from ..data.encoding import Encoder
from ..neurons import SpikingNeuron
from ..spikes import hooked
from ..train import Step

__all__ = ["Teacher", "resolve", "activation_layers", "readout_layer", "capture", "check_classes"]


def activation_layers(model: nn.Module) -> list[str]:
    """Names of the layers whose outputs are a network's features, in forward order: its spiking
    neurons, or the ReLUs of an ANN (e.g. `blocks.0.neuron`, `blocks.1.neuron`)."""
    return [n for n, m in model.named_modules() if isinstance(m, (SpikingNeuron, nn.ReLU))]


def readout_layer(model: nn.Module) -> str:
    """Name of the last `nn.Linear` of `model`: the layer whose outputs are the class scores."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.Linear readout layer")
    return names[-1]


@contextmanager
def capture(model: nn.Module, names: list[str]) -> Iterator[dict[str, Tensor]]:
    """While active, `{name: output of the last forward call}` for the named modules of `model`."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise KeyError(f"{type(model).__name__} has no layer {missing[0]!r}; layers: {', '.join(activation_layers(model))}")
    store: dict[str, Tensor] = {}
    with hooked({n: modules[n] for n in names}, lambda n, m, i, o: store.__setitem__(n, o)):
        yield store


@dataclass
class Teacher:
    """A frozen network and its encoder; `outputs(step)` gives its class scores and features for the
    step's batch, computed once per step without gradients."""

    model: nn.Module
    encoder: Encoder
    name: str = "teacher"
    seed: int = 0
    features: tuple[str, ...] = ()  # layers whose outputs `outputs` also returns
    _cache: tuple = field(default=(None, None), repr=False)

    def __post_init__(self) -> None:
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._gen = torch.Generator().manual_seed(self.seed)

    def logits(self, images: Tensor) -> Tensor:
        """Class scores `[B, classes]` for images `[B, ...]`, in eval mode and without gradients."""
        return self.run(images)[0]

    @torch.no_grad()
    def run(self, images: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """`(logits [B, classes], {feature layer: output [T_teacher, B, ...]})` for images `[B, ...]`."""
        self.model.eval()  # a caller may have switched it back; the teacher never trains
        with capture(self.model, list(self.features)) as feats:
            logits = self.model(self.encoder(images, self._gen))
        return logits, dict(feats)

    def outputs(self, step: Step) -> tuple[Tensor, dict[str, Tensor]]:
        """`run(step.images)`, cached for the step so several loss terms share one teacher forward."""
        if step.images is None:
            raise ValueError(f"{self.name}: the step carries no images (train.Step.images); a teacher reads the "
                             "batch before encoding, which train.fit passes")
        key = (step.index, step.epoch, step.images.data_ptr(), tuple(step.images.shape))
        if self._cache[0] != key:
            self._cache = (key, self.run(step.images))
        return self._cache[1]

    def with_features(self, names: list[str] | tuple[str, ...]) -> "Teacher":
        """This teacher, also returning the outputs of layers `names` (checked to exist)."""
        with capture(self.model, list(names)):
            pass
        self.features = tuple(dict.fromkeys((*self.features, *names)))
        self._cache = (None, None)
        return self


def resolve(teacher, *, seed: int = 0, where: str = "distillation") -> Teacher:
    """A frozen `Teacher` from a baseline name, `(name, seed)`, `(model, encoder)` or a `Teacher`.

    Raised before any training: `TypeError` when no teacher is given or it has the wrong type, `KeyError`
    for a baseline name `snncomp.baselines.BASELINES` does not hold."""
    if teacher is None:
        raise TypeError(f"{where}: needs a teacher (a baseline name such as 'conv-ann', (name, seed), "
                        "(model, encoder) or a Teacher); none was given")
    if isinstance(teacher, Teacher):
        return teacher
    if isinstance(teacher, str):
        teacher = (teacher, seed)
    if isinstance(teacher, tuple) and len(teacher) == 2 and isinstance(teacher[0], str):
        name, s = teacher
        if name not in baselines.BASELINES:
            raise KeyError(f"{where}: unknown teacher {name!r}: no such baseline in snncomp.baselines.BASELINES "
                           f"(known: {', '.join(baselines.BASELINES)})")
        model, enc = baselines.trained(name, int(s))
        return Teacher(model, enc, name=f"{name} (seed {s})", seed=int(s))
    if isinstance(teacher, tuple) and len(teacher) == 2 and isinstance(teacher[0], nn.Module) \
            and isinstance(teacher[1], Encoder):
        return Teacher(copy.deepcopy(teacher[0]), teacher[1], name=type(teacher[0]).__name__, seed=seed)
    raise TypeError(f"{where}: teacher must be a baseline name, (name, seed), (model, encoder) or a Teacher; "
                    f"got {type(teacher).__name__}")


def check_classes(student: nn.Module, student_encoder: Encoder, teacher: Teacher, images: Tensor) -> int:
    """The number of classes both networks give for `images` (a few samples); a `ValueError` naming
    both readout layers when they differ."""
    with torch.no_grad():
        was = student.training
        student.eval()
        s = student(student_encoder(images)).shape[-1]
        student.train(was)
    t = teacher.logits(images).shape[-1]
    if s != t:
        raise ValueError(f"class counts differ: student layer {readout_layer(student)!r} gives {s} classes, "
                         f"teacher {teacher.name} layer {readout_layer(teacher.model)!r} gives {t}")
    return s
