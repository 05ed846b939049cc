r"""SNN-to-SNN distillation: a larger, or slower, spiking teacher trains a smaller or faster spiking student.

The teacher runs its own encoder on the batch before encoding, so it may use another code and another
number of time steps than the student: a rate-coded teacher at $T = 16$ can teach a student that sees
the direct code at $T = 2$ (the long-T to short-T case).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..data import Split
from ..data.encoding import Encoder
from ..neurons import SpikingNeuron
from ..registry import all_but, register
from ..train import Hook, LossTerm, TrainConfig
from .terms import ResponseTerm, Weight, distil, prepare

__all__ = ["spike_distillation"]


@register("spike-distillation", kind="transform", taxonomy="distillation/snn-to-snn",
          keys=("kushawaha2020distilling",), needs=("teacher",),
          keeps=all_but("early-exit"))
def spike_distillation(model: nn.Module, data: Split, encoder: Encoder, *, teacher, weight: Weight = 1.0,
                       temperature: float = 4.0, readout: str = "mean", tau: float = 2.0,
                       require_spiking_teacher: bool = True, train: TrainConfig | None = None,
                       finetune: TrainConfig | None = None, loss_terms: Sequence[LossTerm] = (),
                       hooks: Sequence[Hook] = ()):
    r"""Distil a trained SNN teacher into a smaller or shorter-T SNN student [@kushawaha2020distilling].

    Loss per step: cross-entropy $+$ `weight` $\cdot\,\tau^2\,\mathrm{KL}(p_t^\tau\|p_s^\tau)$ between the
    teacher's time-averaged output over its own $T$ and the student's output read from `readout`
    (`"mean"`, `"spike-count"` or `"membrane"`, see `losses.readout`). Simplified: one soft-target loss,
    where the paper compares several spike-based losses and adds an intermediate-size teacher in stages.
    With `require_spiking_teacher` a teacher without spiking neurons is an error (use the ANN-to-SNN
    methods for it)."""
    setup = prepare(model, data, encoder, teacher, "spike_distillation")
    if require_spiking_teacher and not any(isinstance(m, SpikingNeuron) for m in setup.teacher.model.modules()):
        raise ValueError(f"spike_distillation: teacher {setup.teacher.name} has no spiking neurons; use an "
                         "ANN-to-SNN method or pass require_spiking_teacher=False")
    term = ResponseTerm(setup.teacher, weight, temperature, None, readout, tau)
    return distil(model, data, encoder, setup, [term], train=train, finetune=finetune, loss_terms=loss_terms,
                  hooks=hooks, info={"teacher_T": setup.teacher.encoder.T, "student_T": encoder.T,
                                     "readout": readout})
