"""The contract every compression transform keeps, and what it hands back.

A transform takes a model, the data and the encoder the model is fed with, and returns a
`Compressed`: a **new** model (the input is never modified), the encoder the new model must now be
fed with (fewer time steps, another code, or the same one), the per-epoch training records of every
phase it ran, tagged with the phase, and what the method reports.

Every transform takes the same two budgets, each with one meaning:

* `train`: the phase in which the method acts (pruning while training, rewiring, quantisation-aware
  training, distillation, ...); for a one-shot method it is the training before the one-shot step
  (default: none, the input is taken as trained);
* `finetune`: recovery training after the method has acted.

`None` gives the method's documented default (a named preset of its module, e.g. `pruning.PRUNE_FINETUNE`)
and `train.NONE` (a `TrainConfig` with `epochs=0`) skips the phase.
Every transform also accepts `loss_terms` and `hooks` and passes them to every `fit` it runs, so an
objective (a distillation or spike-count loss) can ride along any method.

Constraints a method leaves on the model (a pruning mask, later a quantiser) live on it as
`torch.nn.utils.parametrize` parametrizations, so any later `fit` or transform keeps them without a
hook. `bake` turns them into plain tensors for export.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn
from torch.nn.utils import parametrize

from .data import Split
from .data.encoding import Encoder
from .train import Hook, LossTerm, TrainConfig, fit

__all__ = ["Compressed", "budget", "run_phase", "bake", "bake_", "bake_weights", "unparametrize", "own_class"]


@dataclass
class Compressed:
    """What every registered transform returns."""

    model: nn.Module  # the new model
    encoder: Encoder  # what the new model must be fed with
    history: list[dict] = field(default_factory=list)  # per-epoch records, each with its "phase"
    info: dict = field(default_factory=dict)  # what the method reports (sparsity reached, ...)

    def phases(self) -> list[str]:
        """The phases that trained, in order."""
        seen: list[str] = []
        for r in self.history:
            if r["phase"] not in seen:
                seen.append(r["phase"])
        return seen


def budget(given: TrainConfig | None, default: TrainConfig, what: str) -> TrainConfig:
    """`given`, or `default` when `None`; anything else is a `TypeError` naming the budget."""
    if given is None:
        return default
    if not isinstance(given, TrainConfig):
        raise TypeError(f"{what} must be a TrainConfig or None, got {type(given).__name__}")
    return given


def run_phase(model: nn.Module, data: Split, encoder: Encoder, config: TrainConfig, phase: str,
              history: list[dict], *, loss_terms: Sequence[LossTerm] = (), hooks: Sequence[Hook] = (),
              extra_terms: Sequence[LossTerm] = (), extra_hooks: Sequence[Hook] = (), **fit_options) -> None:
    """Train `model` in place for one phase (skipped at 0 epochs) and append its records, tagged.

    `loss_terms`/`hooks` are the method's own; `extra_terms`/`extra_hooks` are the caller's, passed
    to every phase; `fit_options` (`criterion`, `optimizer`) go to `train.fit`."""
    if config.epochs == 0:
        return
    hist = fit(model, data, encoder, config, loss_terms=[*loss_terms, *extra_terms], hooks=[*hooks, *extra_hooks],
               **fit_options)
    history += [{**r, "phase": phase} for r in hist.epochs]


def unparametrize(module: nn.Module, name: str) -> None:
    """Replace the parametrization of `module.<name>` by the plain tensor it currently computes.

    `copy.deepcopy` of a parametrized module shares the class torch generated for it with the
    original, and `parametrize.remove_parametrizations` edits that class, which would strip the
    original's parametrized attribute too. The module gets a class of its own first."""
    own_class(module)
    parametrize.remove_parametrizations(module, name, leave_parametrized=True)


def own_class(module: nn.Module) -> None:
    """Give a parametrized `module` a class of its own (a no-op for a plain module), so that registering or
    removing a parametrization on it does not edit the class a `copy.deepcopy` shares with the original."""
    if parametrize.is_parametrized(module):
        cls = type(module)
        own = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
        module.__class__ = type(cls.__name__, cls.__bases__, own)


def bake_weights(layers: dict[str, nn.Module]) -> None:
    """Turn the weight parametrizations of `layers` into plain weights, in place; every other parametrization
    of the model (learned thresholds and their bounds) stays."""
    for m in layers.values():
        if parametrize.is_parametrized(m, "weight"):
            unparametrize(m, "weight")


def bake_(model: nn.Module) -> nn.Module:
    """Replace every parametrization of `model` in place by the plain tensor it currently computes."""
    for module in list(model.modules()):
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                unparametrize(module, name)
    return model


def bake(model: nn.Module) -> nn.Module:
    """A copy of `model` whose parametrized tensors (masks, quantisers) are plain tensors, for export:
    the same function, no constraint machinery left, and no longer kept by later training."""
    return bake_(copy.deepcopy(model))
