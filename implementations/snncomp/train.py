"""The one training loop: backpropagation through time with plug-in loss terms and hooks.

`fit` trains any snncomp model on a `data.Split` with cross-entropy on the time-averaged readout,
plus extra loss terms, and calls hooks around each optimiser step. Compression methods plug in
here instead of writing their own loop:

* a **loss term** is a callable `term(step) -> scalar tensor` added to the loss (an objective such
  as a spike-count penalty or a distillation loss, wrapped with its weight); `step.images` holds the
  batch before encoding, so a term can run a teacher on it with the teacher's own encoder;
* a **hook** is a `Hook` subclass whose methods run after the backward pass (edit gradients), after
  the optimiser step (re-apply masks, project weights, regrow connections) and after each epoch.

Everything `fit` draws (the batch order, the rate codes of a stochastic encoder) comes from its own
generator seeded with `config.seed`; it neither reads nor reseeds torch's global generator, so the same
config gives the same weights on every run whatever the caller drew before, and the caller's global
stream is left where it was. Initial weights are the model builders' business (`models`, with their own
seed); a caller's hook or loss term that draws from the global generator is seeded by the caller.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from tqdm import tqdm

from . import spikes as spike_rec
from .data import Split
from .data.encoding import Encoder

__all__ = ["TrainConfig", "NONE", "Step", "Hook", "History", "LossTerm", "fit", "eval_batches", "evaluate", "predict"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (Adam with a cosine learning-rate schedule by default)."""

    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"
    seed: int = 0
    progress: bool | None = None  # None: show a bar when stderr is a terminal
    # early stopping: with patience p > 0, `fit` stops after p epochs in a row without a higher validation
    # accuracy and restores the weights of the best epoch; `epochs` is then the most it trains (and the length
    # of the cosine schedule). 0: off. Left out of the repr, so budgets without it keep their cache keys.
    patience: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0 or self.patience < 0:
            raise ValueError(f"TrainConfig: need epochs >= 0, batch_size >= 1, lr > 0, patience >= 0; got {self}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"TrainConfig: schedule must be 'cosine' or 'constant', got {self.schedule!r}")

    def steps(self, samples: int) -> int:
        """Optimiser steps `fit` takes on `samples` training examples."""
        return self.epochs * math.ceil(samples / self.batch_size)

    def lr_factor(self, i: int, total: int) -> float:
        r"""Multiplier of `lr` at optimiser step `i` of `total`: $(1 + \cos(\pi i / N))/2$ for the
        cosine schedule, 1 for the constant one. `fit` uses it, and so does every method whose own
        updates follow the learning rate."""
        if self.schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * min(i, total) / total))


NONE = TrainConfig(epochs=0)  # the budget of a skipped phase: no optimiser step; every method's "none" default


@dataclass
class Step:
    """What a loss term or hook sees of the current optimisation step."""

    model: nn.Module
    inputs: Tensor  # [T, B, ...] encoded batch
    targets: Tensor  # [B]
    logits: Tensor  # [B, classes]
    spikes: dict[str, list[Tensor]]  # layer name -> spike tensors [T, B, ...] of this forward
    index: int  # global step
    epoch: int
    # conv/linear layer name -> the input tensor of each of its calls in this forward (time folded into
    # the batch); `fit` fills it, a hand-built Step may leave it empty
    synaptic_inputs: dict[str, list[Tensor]] = field(default_factory=dict)
    images: Tensor | None = None  # [B, ...] the batch before encoding (a teacher encodes it its own way)


class Hook:
    """Plug-in points of `fit`; override the ones you need."""

    def after_backward(self, model: nn.Module, step: Step) -> None:
        """Gradients are in `.grad`; the optimiser has not stepped yet."""

    def after_step(self, model: nn.Module, step: Step) -> None:
        """The optimiser has updated the weights."""

    def after_epoch(self, model: nn.Module, epoch: int) -> None:
        """An epoch has ended."""


@dataclass
class History:
    """Per-epoch records: `loss`, `train_acc`, `val_acc` (when the split has a validation part),
    `test_acc` (when test data was given), `seconds`."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    @property
    def final(self) -> dict[str, float]:
        return self.epochs[-1] if self.epochs else {}


LossTerm = Callable[[Step], Tensor]


def fit(
    model: nn.Module,
    data: Split,
    encoder: Encoder,
    config: TrainConfig = TrainConfig(),
    *,
    loss_terms: Sequence[LossTerm] = (),
    hooks: Sequence[Hook] = (),
    evaluate_test: bool = True,
    params: Sequence[nn.Parameter] | None = None,
    criterion: Callable[[Tensor, Tensor], Tensor] = nn.functional.cross_entropy,
    optimizer: str = "adam",
    momentum: float = 0.0,
    device: str | torch.device | None = None,
) -> History:
    """Train `model` in place on `data.train_*`, return the per-epoch history.

    With `config.patience > 0` the split must have a validation part: training stops once the validation
    accuracy has not risen for that many epochs, the weights of the best epoch are put back, and the history's
    last record carries `best_epoch` and `stopped` (the epoch after which it stopped).

    `params` restricts the optimiser to some parameters (default: all that require grad). The loss is
    `criterion(logits, targets)` (cross-entropy by default) plus the `loss_terms`; `optimizer` is
    `"adam"` (default) or `"sgd"` (plain SGD, for methods whose update rule is SGD on their own
    gradient, such as S4NN); `momentum` is SGD's momentum (0: plain SGD; LSQ trains with 0.9).
    `device` (default: where the model and data already are) moves the model there and each batch as it is
    used; rate codes are drawn on the CPU either way, so a GPU sees the same spikes.
    """
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"fit: optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if device is not None:  # the model and every batch on `device`; codes are still drawn on the CPU (`encode`)
        model.to(device)
    gen = torch.Generator().manual_seed(config.seed)  # batch order and rate codes; the global generator is left alone
    n = data.train_x.shape[0]
    total = max(1, config.steps(n))
    trainable = list(params) if params is not None else [p for p in model.parameters() if p.requires_grad]
    if momentum and optimizer != "sgd":
        raise ValueError(f"fit: momentum is an SGD setting, got momentum={momentum!r} with {optimizer!r}")
    if optimizer == "adam":
        opt = torch.optim.Adam(trainable, lr=config.lr, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.SGD(trainable, lr=config.lr, weight_decay=config.weight_decay, momentum=momentum)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: config.lr_factor(i, total))
    show = sys.stderr.isatty() if config.progress is None else config.progress
    if config.patience and getattr(data, "val_x", None) is None:
        raise ValueError("fit: TrainConfig.patience needs a split with a validation part "
                         "(Split.with_validation); this split has none")
    history = History()
    index = 0
    best_acc, best_epoch, best_state = -1.0, -1, None
    for epoch in tqdm(range(config.epochs), desc="epochs", disable=not show, leave=False):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        loss_sum, correct = 0.0, 0
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            images = data.train_x[idx]
            if device is not None:
                images = images.to(device)
            x = encode(encoder, images, gen)  # [T, B, ...]
            y = data.train_y[idx] if device is None else data.train_y[idx].to(device)
            with spike_rec.record(model) as rec, spike_rec.record_inputs(model) as ins:
                logits = model(x)  # [B, classes]
            step = Step(model, x, y, logits, rec, index, epoch, synaptic_inputs=ins, images=images)
            loss = criterion(logits, y)
            for term in loss_terms:
                loss = loss + term(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for h in hooks:
                h.after_backward(model, step)
            opt.step()
            sched.step()
            for h in hooks:
                h.after_step(model, step)
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
            index += 1
        for h in hooks:
            h.after_epoch(model, epoch)
        record = {"epoch": epoch, "loss": loss_sum / n, "train_acc": correct / n,
                  "seconds": time.perf_counter() - t0}
        if getattr(data, "val_x", None) is not None:  # the part settings may be chosen on
            record["val_acc"] = evaluate(model, data.val_x, data.val_y, encoder)
        if evaluate_test:
            record["test_acc"] = evaluate(model, data.test_x, data.test_y, encoder)
        history.epochs.append(record)
        if config.patience:
            if record["val_acc"] > best_acc:
                best_acc, best_epoch = record["val_acc"], epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if epoch - best_epoch >= config.patience or epoch == config.epochs - 1:
                model.load_state_dict(best_state)
                record.update(best_epoch=best_epoch, stopped=epoch)
                break
    return history


def encode(encoder: Encoder, images: Tensor, gen: torch.Generator) -> Tensor:
    """`encoder(images, gen)` drawn on the CPU whatever the images' device, then moved to it: the codes (and
    so the spikes) are the same on a GPU as on the CPU, and `gen` stays a CPU generator."""
    if images.device.type == "cpu":
        return encoder(images, gen)
    return encoder(images.cpu(), gen).to(images.device)


def eval_batches(model: nn.Module, x: Tensor, encoder: Encoder, batch_size: int = 500,
                 seed: int = 1234) -> Iterator[tuple[slice, Tensor]]:
    """Yield `(rows, encoded batch [T, b, ...])` over images `x: [N, ...]` with `model` in eval mode
    and gradients off; the model's mode is restored afterwards. Rate codes are drawn from `seed`, so
    every evaluation of the same model sees the same spikes."""
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    dev = next((p.device for p in model.parameters()), x.device)  # batches go where the model is
    try:
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                rows = slice(start, start + batch_size)
                yield rows, encode(encoder, x[rows], gen).to(dev)
    finally:
        model.train(was_training)


def predict(model: nn.Module, x: Tensor, encoder: Encoder, batch_size: int = 500, seed: int = 1234) -> Tensor:
    """Class scores `[N, classes]` for images `x: [N, ...]` in eval mode (rate codes drawn from `seed`)."""
    return torch.cat([model(inp) for _, inp in eval_batches(model, x, encoder, batch_size, seed)])


def evaluate(model: nn.Module, x: Tensor, y: Tensor, encoder: Encoder, batch_size: int = 500, seed: int = 1234) -> float:
    """Top-1 accuracy of `model` on images `x: [N, ...]` with labels `y: [N]`."""
    scores = predict(model, x, encoder, batch_size, seed)
    return (scores.argmax(1) == y.to(scores.device)).float().mean().item()
