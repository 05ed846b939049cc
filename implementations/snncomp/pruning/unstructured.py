r"""Unstructured pruning: zeroing individual synapses (section 3.1 of [@xie2024efficient]).

Every method here is a registered transform with the contract of `snncomp.compress`:

    fn(model, data, encoder, *, sparsity=0.9, train=None, finetune=None, loss_terms=(), hooks=(), ...)
        -> Compressed

**What is pruned.** The weights of every `nn.Conv2d` and `nn.Linear`, readout included, ranked in one
global pool (`scope="global"`, the default), or each layer to the same sparsity (`scope="layer"`).
Mask-based methods reach the requested sparsity exactly (`round(sparsity * N)` zeros); the
penalty-driven ones (Grad R, soft threshold) cut the smallest survivors at the end if training left
them short of it (`info["topped_up"]` says how many; `info["sparsity_reached_by_training"]` what
training alone reached). Every method leaves its result as `masks.Mask` parametrizations, so the zeros
stay zero through any later training; a mask already on the input is kept (its zeros are never
revived), so the result can be sparser than asked.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..compress import Compressed, bake_, budget, run_phase
from ..data import Split
from ..encoding import Encoder
from ..metrics import weight_sparsity
from ..registry import register
from ..train import Hook, LossTerm, Step, TrainConfig
from .hooks import ADMMHook, GradRWeight, GradualPruneHook, RegrowHook, SoftThresholdHook, shrink
from .masks import (check_sparsity, combine, global_masks, keep_pruned, masks_of, prunable_layers, scoped_masks,
                    set_masks, topup_to_sparsity)
from .schedules import SparsityController, cubic_sparsity, iterative_sparsity
from .scores import magnitude_scores
from .units import units_of

__all__ = ["FINETUNE", "TRAIN", "NONE", "magnitude", "gradual_magnitude", "lottery_ticket", "grad_rewiring",
           "prune_regrow", "admm", "soft_threshold", "sparsity_report"]

FINETUNE = TrainConfig(epochs=4, lr=2e-3)  # default recovery budget after pruning a trained model
TRAIN = TrainConfig(epochs=8, lr=2e-3)  # default budget of methods that prune while training
NONE = TrainConfig(epochs=0)  # a skipped phase

Terms = Sequence[LossTerm]
Hooks = Sequence[Hook]


def _start(model: nn.Module, sparsity: float, *, bake: bool = False):
    """Check `sparsity`, copy `model`, and return (copy, its prunable layers, masks already on it).
    With `bake`, the copy's parametrizations become plain tensors (for methods that re-parametrize
    or edit the weights themselves)."""
    check_sparsity(sparsity)
    net = copy.deepcopy(model)
    prior = masks_of(prunable_layers(net))
    if bake:
        bake_(net)
    return net, prunable_layers(net), prior


@register("magnitude", kind="transform", taxonomy="pruning/unstructured", keys=("han2015learning",))
def magnitude(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9, scope: str = "global",
              train: TrainConfig | None = None, finetune: TrainConfig | None = None,
              loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""One-shot magnitude pruning to an exact sparsity, then masked fine-tuning [@han2015learning].

    $m = [\,|w| > \tau\,]$ with $\tau$ the `round(sparsity * N)`-th smallest $|w|$. `train` is the
    training before the cut (default none: the input is taken as trained), `finetune` the masked
    recovery after it (default `FINETUNE`).
    """
    net, layers, prior = _start(model, sparsity)
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, NONE, "train"), "train", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    set_masks(layers, combine(scoped_masks(keep_pruned(magnitude_scores(layers), prior), sparsity, scope), prior))
    run_phase(net, data, encoder, budget(finetune, FINETUNE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"sparsity": weight_sparsity(layers), "scope": scope})


@register("gradual-magnitude", kind="transform", taxonomy="pruning/unstructured", keys=("zhu2017prune",))
def gradual_magnitude(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9,
                      begin: float = 0.0, end: float = 0.75, every: int = 10, scope: str = "global",
                      train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                      loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    """Gradual magnitude pruning during training on the cubic sparsity schedule [@zhu2017prune].

    Sparsity rises from 0 to `sparsity` between the fractions `begin` and `end` of the `train` steps
    (default `TRAIN`), updated every `every` steps; `finetune` (default none) retrains with the
    final mask.
    """
    if not 0.0 <= begin < end <= 1.0:
        raise ValueError(f"need 0 <= begin < end <= 1, got begin={begin!r}, end={end!r}")
    net, layers, prior = _start(model, sparsity)
    train = budget(train, TRAIN, "train")
    total = train.steps(data.train_x.shape[0])
    t0, n = begin * total, (end - begin) * total
    hook = GradualPruneHook(layers, lambda t: cubic_sparsity(t, sparsity, n, 0.0, t0), every, scope, prior)
    history: list[dict] = []
    run_phase(net, data, encoder, train, "gradual", history, hooks=[hook], extra_terms=loss_terms, extra_hooks=hooks)
    hook.prune(sparsity)  # the last update lands exactly on s_f
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"sparsity": weight_sparsity(layers), "scope": scope})


class _Snapshot(Hook):
    r"""Keeps a copy of the model after `at` optimiser steps (the rewinding point $\theta_k$)."""

    def __init__(self, at: int) -> None:
        self.at, self.model = at, None

    def after_step(self, model: nn.Module, step: Step) -> None:
        if step.index + 1 == self.at:
            self.model = copy.deepcopy(model)


@register("lottery-ticket", kind="transform", taxonomy="pruning/unstructured",
          keys=("frankle2019lottery", "frankle2020linear", "kim2022exploring"))
def lottery_ticket(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9, rounds: int = 3,
                   rewind_steps: int = 50, dense: TrainConfig | None = None, train: TrainConfig | None = None,
                   finetune: TrainConfig | None = None, loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Iterative magnitude pruning with weight rewinding (lottery tickets) [@frankle2019lottery; @frankle2020linear].

    As applied to SNNs in [@kim2022exploring]: train the dense net (`dense`, default `train`), keeping its state $\theta_k$ after `rewind_steps`
    steps; then `rounds` times: prune the trained weights by global magnitude to
    $s_r = 1 - (1 - s_f)^{r/R}$, rewind the survivors (and BatchNorm statistics) to $\theta_k$ and
    retrain with the mask for `train` (default `TRAIN`); `finetune` (default none) trains once more
    at the end. Starting from an untrained model gives the classic ticket; starting from a trained
    one, $\theta_k$ lies close to the trained weights (late rewinding). `dense` with 0 epochs skips
    dense training and rewinds to the input weights.
    """
    net, layers, prior = _start(model, sparsity)
    train = budget(train, TRAIN, "train")
    dense = budget(dense, train, "dense")
    history: list[dict] = []
    snap = _Snapshot(rewind_steps)
    if rewind_steps == 0 or dense.epochs == 0:
        snap.model = copy.deepcopy(net)
    run_phase(net, data, encoder, dense, "dense", history, hooks=[snap], extra_terms=loss_terms, extra_hooks=hooks)
    if snap.model is None:  # fewer steps than rewind_steps: rewind to the end of dense training
        snap.model = copy.deepcopy(net)
    masks, per_round = prior, []
    for r, s_r in enumerate(iterative_sparsity(sparsity, rounds), start=1):
        masks = combine(global_masks(keep_pruned(magnitude_scores(layers), masks), s_r), prior)
        net = copy.deepcopy(snap.model)  # theta <- theta_k
        layers = prunable_layers(net)
        set_masks(layers, masks)  # theta_k * m
        run_phase(net, data, encoder, train, f"round {r}", history, extra_terms=loss_terms, extra_hooks=hooks)
        per_round.append({"round": r, "sparsity": weight_sparsity(layers),
                          "test_acc": history[-1].get("test_acc") if history else None})
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"sparsity": weight_sparsity(layers), "rounds": per_round})


def _emergent_end(net, layers, sparsity, prior, data, encoder, finetune, history, info, terms, hooks) -> Compressed:
    """Shared ending of the penalty-driven methods: cut the smallest survivors if the penalty fell
    short of `sparsity`, put the masks on, then fine-tune with them (default none)."""
    info["sparsity_reached_by_training"] = weight_sparsity(layers)
    masks, info["topped_up"] = topup_to_sparsity(layers, sparsity)
    set_masks(layers, combine(masks, prior))
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=terms, extra_hooks=hooks)
    info["sparsity"] = weight_sparsity(layers)
    return Compressed(net, encoder, history, info)


@register("grad-rewiring", kind="transform", taxonomy="pruning/unstructured", keys=("chen2021pruning",))
def grad_rewiring(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9, prior: float = 1e-4,
                  prior_mean: float = -0.01, end: float = 0.75, train: TrainConfig | None = None,
                  finetune: TrainConfig | None = None, loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Grad R: hidden synaptic parameters with rewiring gradients and a Laplacian prior [@chen2021pruning].

    Each weight is $w = s \cdot \mathrm{relu}(\theta)$ with a fixed sign $s$; a synapse is
    pruned while $\theta \le 0$ and regrows when $\theta$ turns positive, because $\theta$ gets
    $s\,\partial L/\partial w$ even while pruned. A Laplacian prior
    $p(\theta) \propto e^{-\alpha|\theta - \mu|}$ adds $\alpha \sum |\theta - \mu|$ to the
    loss and pulls $\theta$ below zero. The paper fixes $\alpha$; here a `SparsityController`
    adapts $\alpha$ (starting at `prior`) so the sparsity follows the cubic schedule to `sparsity`
    at the fraction `end` of the `train` steps (default `TRAIN`); any shortfall is cut by magnitude
    at the end, and `finetune` (default none) retrains with the mask.
    """
    net, layers, prior_masks = _start(model, sparsity, bake=True)
    train = budget(train, TRAIN, "train")
    for m in layers.values():
        parametrize.register_parametrization(m, "weight", GradRWeight(m.weight.detach()))
    thetas = [m.parametrizations.weight.original for m in layers.values()]
    total = train.steps(data.train_x.shape[0])
    ctrl = SparsityController(layers, lambda t: cubic_sparsity(t, sparsity, end * total), prior)
    ctrl.measure = lambda: float(sum(int((t <= 0).sum()) for t in thetas)) / sum(t.numel() for t in thetas)

    def laplace_prior(step: Step) -> Tensor:
        return ctrl.strength * sum((t - prior_mean).abs().sum() for t in thetas)  # alpha sum |theta - mu|

    history: list[dict] = []
    run_phase(net, data, encoder, train, "grad-r", history, loss_terms=[laplace_prior], hooks=[ctrl],
              extra_terms=loss_terms, extra_hooks=hooks)
    bake_(net)  # w = s relu(theta), exact zeros where theta <= 0
    return _emergent_end(net, layers, sparsity, prior_masks, data, encoder, finetune, history,
                         {"final_prior": ctrl.strength}, loss_terms, hooks)


@register("prune-regrow", kind="transform", taxonomy="pruning/unstructured", keys=("bellec2018deep", "shen2023eslsnns"))
def prune_regrow(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9, fraction: float = 0.3,
                 every: int = 20, end: float = 0.75, grow: str = "gradient", scope: str = "global",
                 train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                 loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    """Prune-and-regrow at fixed density (Deep R / ESL-SNN style rewiring) [@bellec2018deep; @shen2023eslsnns].

    Start from a magnitude mask at `sparsity`, then rewire it while training for `train` (default
    `TRAIN`; see `RegrowHook`). The number of zeros never changes, so the sparsity is exact
    throughout. `grow` is 'random' or 'gradient'; `finetune` (default none) retrains with the final mask.
    """
    if grow not in ("random", "gradient"):
        raise ValueError(f"grow must be 'random' or 'gradient', got {grow!r}")
    net, layers, prior = _start(model, sparsity)
    train = budget(train, TRAIN, "train")
    masks = combine(scoped_masks(keep_pruned(magnitude_scores(layers), prior), sparsity, scope), prior)
    set_masks(layers, masks)
    hook = RegrowHook(layers, masks, fraction=fraction, every=every, stop=int(end * train.steps(data.train_x.shape[0])),
                      grow=grow, seed=train.seed, allowed=prior)
    history: list[dict] = []
    run_phase(net, data, encoder, train, "rewire", history, hooks=[hook], extra_terms=loss_terms, extra_hooks=hooks)
    for p in hook.params.values():
        p.record_grad, p.grad = False, None
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"sparsity": weight_sparsity(layers), "rewired": hook.rewired})


@register("admm", kind="transform", taxonomy="pruning/unstructured", keys=("deng2021comprehensive",))
def admm(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9, rho: float = 5e-3,
         every: int = 20, scope: str = "global", train: TrainConfig | None = None,
         finetune: TrainConfig | None = None, loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""ADMM-regularised training toward a sparse set, then hard pruning and fine-tuning [@deng2021comprehensive].

    Train with $\frac{\rho}{2}\|W - Z + U\|^2$ pulling $W$ toward its sparse projection $Z$ (`train`,
    default `TRAIN`), then prune $W$ by magnitude to exactly `sparsity` and fine-tune with the mask
    (`finetune`, default `FINETUNE`).
    """
    net, layers, prior = _start(model, sparsity)
    hook = ADMMHook(layers, sparsity, rho, every, scope)
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, TRAIN, "train"), "admm", history, loss_terms=[hook.penalty],
              hooks=[hook], extra_terms=loss_terms, extra_hooks=hooks)
    set_masks(layers, combine(scoped_masks(keep_pruned(magnitude_scores(layers), prior), sparsity, scope), prior))
    run_phase(net, data, encoder, budget(finetune, FINETUNE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"sparsity": weight_sparsity(layers), "scope": scope})


@register("soft-threshold", kind="transform", taxonomy="pruning/unstructured",
          keys=("chen2022state", "chen2023unified", "kusupati2020soft"))
def soft_threshold(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9, end: float = 0.75,
                   train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                   loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    """Soft-threshold pruning: ISTA-style shrinkage with a threshold scheduled to a sparsity
    [@kusupati2020soft; @chen2022state; @chen2023unified].

    Train for `train` (default `TRAIN`) with the shrinkage of `SoftThresholdHook`, its target sparsity
    rising on the cubic schedule to `sparsity` at the fraction `end` of training and held there; the
    last step leaves exactly `round(sparsity * N)` zeros (barring ties), and `finetune` (default
    none) retrains with them fixed.
    """
    net, layers, prior = _start(model, sparsity, bake=True)
    train = budget(train, TRAIN, "train")
    total = train.steps(data.train_x.shape[0])
    hook = SoftThresholdHook(layers, lambda t: cubic_sparsity(t, sparsity, end * total))
    history: list[dict] = []
    run_phase(net, data, encoder, train, "soft-threshold", history, hooks=[hook],
              extra_terms=loss_terms, extra_hooks=hooks)
    shrink(layers, sparsity)
    return _emergent_end(net, layers, sparsity, prior, data, encoder, finetune, history,
                         {"final_threshold": hook.thresholds[-1] if hook.thresholds else 0.0}, loss_terms, hooks)


@register("sparsity-report", kind="measure", taxonomy="pruning/unstructured", keys=("han2015learning",))
def sparsity_report(model: nn.Module) -> dict:
    """Zeros per conv/linear layer and overall, and the units of each block."""
    layers = prunable_layers(model)
    rows = {n: {"weights": m.weight.numel(), "zeros": int((m.weight == 0).sum()),
                "sparsity": float((m.weight == 0).float().mean())} for n, m in layers.items()}
    out = {"layers": rows, "sparsity": weight_sparsity(layers),
           "weights": sum(r["weights"] for r in rows.values()), "zeros": sum(r["zeros"] for r in rows.values())}
    if hasattr(model, "blocks"):
        out["units"] = [units_of(b) for b in model.blocks]
    return out
