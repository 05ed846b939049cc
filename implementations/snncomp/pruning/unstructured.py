r"""Unstructured pruning: zeroing individual synapses (section 3.1 of [@xie2024efficient]).

Every method here is a registered transform with the contract of `snncomp.compress`:

    fn(model, data, encoder, *, sparsity=0.9, train=None, finetune=None, loss_terms=(), hooks=(), ...)
        -> Compressed

**What is pruned.** The weights of every `nn.Conv2d` and `nn.Linear`, readout included, ranked in one
global pool (`scope="global"`, the default), each layer to the same sparsity (`scope="layer"`), or in
one pool of layer-normalised scores (`scope="normalised"`: divided by the layer's mean; `scope="lamp"`:
LAMP scores [@lee2021layeradaptive]), whose ranking no longer follows the arbitrary weight scale of
BatchNorm-followed convolutions (`masks`; Deep R takes only "global" and "layer").
Mask-based and fixed-density methods (RigL, SET, Deep R) reach the requested sparsity exactly
(`round(sparsity * N)` zeros); the ones whose sparsity emerges from training (Grad R, soft threshold)
cut the smallest survivors at the end if training left them short of it (`info["topped_up"]` says how
many; `info["sparsity_reached_by_training"]` what training alone reached, measured before the cut),
and are sparser than asked if training overshoots (Grad R). Every method leaves its result as
`masks.Mask` parametrizations, so the zeros stay zero through any later training; a mask already on
the input is kept (its zeros are never revived), so the result can be sparser than asked. RigL and
SET keep the mask's density exact; a regrown weight whose gradient stays zero stays 0, so the
measured sparsity can come out slightly higher.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..compress import Compressed, bake_weights, budget, run_phase
from ..data import Split
from ..data.encoding import Encoder
from ..metrics import weight_sparsity
from ..registry import all_but, register
from ..train import NONE, Hook, LossTerm, Step, TrainConfig
from .hooks import ADMMHook, GradualPruneHook
from .masks import (check_sparsity, combine, global_masks, keep_pruned, masks_of, prunable_layers, prune_masks,
                    set_masks, topup_to_sparsity)
from .rewiring import (DeepRHook, DeepRWeight, GradRPrior, GradRWeight, RegrowHook, SoftThresholdWeight,
                       ThresholdSchedule)
from .schedules import cubic_sparsity, iterative_sparsity, step_learning_rates
from .scores import magnitude_scores
from .units import units_of

__all__ = ["PRUNE_FINETUNE", "PRUNE_TRAIN", "magnitude", "gradual_magnitude", "lottery_ticket", "lr_rewinding",
           "grad_rewiring", "deep_r", "rigl", "sparse_evolutionary", "admm", "soft_threshold", "sparsity_report"]

PRUNE_FINETUNE = TrainConfig(epochs=4, lr=2e-3)  # default recovery budget after pruning a trained model
PRUNE_TRAIN = TrainConfig(epochs=8, lr=2e-3)  # default budget of methods that prune while training

Terms = Sequence[LossTerm]
Hooks = Sequence[Hook]


def _start(model: nn.Module, sparsity: float, *, bake: bool = False):
    """Check `sparsity`, copy `model`, and return (copy, its prunable layers, masks already on it).
    With `bake`, the copy's weight parametrizations become plain tensors (for methods that re-parametrize
    or edit the weights themselves)."""
    check_sparsity(sparsity)
    net = copy.deepcopy(model)
    prior = masks_of(prunable_layers(net))
    if bake:
        bake_weights(prunable_layers(net))
    return net, prunable_layers(net), prior


@register("magnitude", kind="transform", taxonomy="pruning/unstructured", keys=("han2015learning",),
          leaves=("mask",), keeps=all_but("early-exit"))
def magnitude(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9, scope: str = "global",
              train: TrainConfig | None = None, finetune: TrainConfig | None = None,
              loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""One-shot magnitude pruning to an exact sparsity, then masked fine-tuning [@han2015learning].

    $m = [\,|w| > \tau\,]$ with $\tau$ the `round(sparsity * N)`-th smallest $|w|$. `train` is the
    training before the cut (default none: the input is taken as trained), `finetune` the masked
    recovery after it (default `PRUNE_FINETUNE`).
    """
    net, layers, prior = _start(model, sparsity)
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, NONE, "train"), "train", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    set_masks(layers, prune_masks(magnitude_scores(layers), sparsity, scope, prior))
    run_phase(net, data, encoder, budget(finetune, PRUNE_FINETUNE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"sparsity": weight_sparsity(layers), "scope": scope})


@register("gradual-magnitude", kind="transform", taxonomy="pruning/unstructured", keys=("zhu2017prune",),
          leaves=("mask",), keeps=all_but("early-exit"))
def gradual_magnitude(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9,
                      begin: float = 0.0, end: float = 0.75, every: int = 10, scope: str = "global",
                      train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                      loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    """Gradual magnitude pruning during training on the cubic sparsity schedule [@zhu2017prune].

    Sparsity rises from 0 to `sparsity` between the fractions `begin` and `end` of the `train` steps
    (default `PRUNE_TRAIN`), updated every `every` steps; `finetune` (default none) retrains with the
    final mask.
    """
    if not 0.0 <= begin < end <= 1.0:
        raise ValueError(f"need 0 <= begin < end <= 1, got begin={begin!r}, end={end!r}")
    net, layers, prior = _start(model, sparsity)
    train = budget(train, PRUNE_TRAIN, "train")
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


def _imp_rounds(net, restart: Callable[[nn.Module], nn.Module], sparsity, rounds, prior, data, encoder, train,
                history, terms, hooks):
    """Iterative magnitude pruning: `rounds` times, prune the trained weights of `net` by global
    magnitude to $s_r$, take `restart(net)` (the weights to retrain from), put the masks on it and
    retrain it for `train`. Returns the last net and a record per round."""
    masks, per_round = prior, []
    for r, s_r in enumerate(iterative_sparsity(sparsity, rounds), start=1):
        masks = combine(global_masks(keep_pruned(magnitude_scores(prunable_layers(net)), masks), s_r), prior)
        net = restart(net)
        set_masks(prunable_layers(net), masks)  # the survivors keep the values they restart from
        run_phase(net, data, encoder, train, f"round {r}", history, extra_terms=terms, extra_hooks=hooks)
        per_round.append({"round": r, "sparsity": weight_sparsity(prunable_layers(net)),
                          "test_acc": history[-1].get("test_acc") if history else None})
    return net, per_round


@register("lottery-ticket", kind="transform", taxonomy="pruning/unstructured",
          keys=("frankle2019lottery", "frankle2020linear", "kim2022exploring"),
          leaves=("mask",), keeps=all_but("early-exit"))
def lottery_ticket(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9, rounds: int = 3,
                   rewind: float = 0.02, dense: TrainConfig | None = None, train: TrainConfig | None = None,
                   finetune: TrainConfig | None = None, loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Lottery tickets: iterative magnitude pruning with rewinding to an early iterate of dense
    training [@frankle2019lottery; @frankle2020linear].

    The input must be **untrained**: the method trains it dense itself (`dense`, default `train`),
    keeping its state $\theta_k$ (weights, BatchNorm statistics, neuron parameters) after the first
    $k$ = `round(rewind * steps)` dense steps (`rewind=0.02`: 2 % of them; 0: the initial weights, the
    ticket of [@frankle2019lottery]). Then `rounds` times: prune the trained weights by global magnitude
    to $s_r = 1 - (1 - s_f)^{r/R}$, rewind the survivors to $\theta_k$ and retrain with the mask for
    `train` (default `PRUNE_TRAIN`); `finetune` (default none) trains once more at the end. This is the
    procedure [@kim2022exploring] apply to deep SNNs. Each round restarts the learning-rate schedule, as
    Kim et al.'s code does; Frankle et al. continue the original schedule from step $k$. To prune a
    trained model and retrain it, use `lr-rewinding`.
    """
    if isinstance(rewind, bool) or not 0.0 <= rewind < 1.0:
        raise ValueError(f"rewind must be a fraction of the dense steps in [0, 1), got {rewind!r}")
    net, _, prior = _start(model, sparsity)
    train = budget(train, PRUNE_TRAIN, "train")
    dense = budget(dense, train, "dense")
    if dense.epochs == 0:
        raise ValueError("lottery-ticket trains the untrained input itself, so `dense` needs epochs >= 1; "
                         "to prune a trained model and retrain it, use 'lr-rewinding'")
    k = round(rewind * dense.steps(data.train_x.shape[0]))
    snap = _Snapshot(k)
    if k == 0:
        snap.model = copy.deepcopy(net)
    history: list[dict] = []
    run_phase(net, data, encoder, dense, "dense", history, hooks=[snap], extra_terms=loss_terms, extra_hooks=hooks)
    net, per_round = _imp_rounds(net, lambda _: copy.deepcopy(snap.model), sparsity, rounds, prior, data, encoder,
                                 train, history, loss_terms, hooks)
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"sparsity": weight_sparsity(prunable_layers(net)), "rounds": per_round,
                                              "rewind_step": k})


@register("lr-rewinding", kind="transform", taxonomy="pruning/unstructured", keys=("renda2020comparing",),
          leaves=("mask",), keeps=all_but("early-exit"))
def lr_rewinding(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9, rounds: int = 3,
                 train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                 loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Iterative magnitude pruning of a trained model with learning-rate rewinding [@renda2020comparing].

    `rounds` times: prune the current weights by global magnitude to $s_r = 1 - (1 - s_f)^{r/R}$, keep
    the survivors at their trained values and retrain them with the mask for `train` (default `PRUNE_TRAIN`,
    the baseline's own training budget), the learning-rate schedule restarted from its beginning; as
    Renda et al. recommend, `train` should be the budget the input was trained with. `finetune`
    (default none) trains once more at the end. Unlike a lottery ticket, no weight is rewound.
    """
    net, _, prior = _start(model, sparsity)
    history: list[dict] = []
    net, per_round = _imp_rounds(net, lambda n: n, sparsity, rounds, prior, data, encoder,
                                 budget(train, PRUNE_TRAIN, "train"), history, loss_terms, hooks)
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"sparsity": weight_sparsity(prunable_layers(net)), "rounds": per_round})


def _emergent_end(net, layers, sparsity, prior, data, encoder, finetune, history, info, terms, hooks) -> Compressed:
    """Shared ending of the methods whose sparsity emerges from training: record what training
    reached (unless the method already did), cut the smallest survivors if it fell short of
    `sparsity`, put the masks on, then fine-tune with them (default none)."""
    info.setdefault("sparsity_reached_by_training", weight_sparsity(layers))
    masks, info["topped_up"] = topup_to_sparsity(layers, sparsity)
    set_masks(layers, combine(masks, prior))
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=terms, extra_hooks=hooks)
    info["sparsity"] = weight_sparsity(layers)
    return Compressed(net, encoder, history, info)


@register("grad-rewiring", kind="transform", taxonomy="pruning/unstructured", keys=("chen2021pruning",),
          leaves=("mask",), keeps=all_but("weight-grid", "early-exit"))
def grad_rewiring(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9, alpha: float = 1e-3,
                  train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                  loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Grad R: hidden synaptic parameters with rewiring gradients and a Laplacian prior [@chen2021pruning].

    Each weight is $w = s \cdot \mathrm{relu}(\theta)$ with a fixed sign $s$; a synapse is pruned while
    $\theta \le 0$ and regrows when $\theta$ turns positive, because $\theta$ gets $s\,\partial L/\partial w$
    even while pruned. The prior $p(\theta) \propto e^{-\alpha|\theta - \mu|}$ is centred at
    $\mu = \ln(2(1 - s))/\alpha$, so a fraction $s$ = `sparsity` of it lies below zero (hence
    $s \ge 0.5$, as in the authors' code), and is applied as their optimiser does: a step
    $-\alpha\,\eta_t\,\mathrm{sign}(\theta - \mu)$ after Adam's (`rewiring.GradRPrior`), with $\alpha$
    fixed. The default $\alpha$ = 1e-3 is the authors'; they train for hundreds of epochs, so on short
    budgets training reaches far less than $s$ (`info["sparsity_reached_by_training"]`) and the
    smallest survivors are cut to $s$ at the end. `train` defaults to `PRUNE_TRAIN`, `finetune` to none.
    """
    net, layers, prior_masks = _start(model, sparsity, bake=True)
    if sparsity < 0.5:
        raise ValueError(f"grad-rewiring centres its prior at ln(2(1 - s))/alpha <= 0, so sparsity must be >= 0.5, "
                         f"got {sparsity!r}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    train = budget(train, PRUNE_TRAIN, "train")
    for m in layers.values():
        parametrize.register_parametrization(m, "weight", GradRWeight(m.weight.detach()))
    thetas = [m.parametrizations.weight.original for m in layers.values()]
    mu = math.log(2 * (1 - sparsity)) / alpha  # mu = ln(2(1 - s)) / alpha
    prior = GradRPrior(thetas, alpha, mu, step_learning_rates(train, data.train_x.shape[0]))
    history: list[dict] = []
    run_phase(net, data, encoder, train, "grad-r", history, hooks=[prior], extra_terms=loss_terms, extra_hooks=hooks)
    bake_weights(layers)  # w = s relu(theta), exact zeros where theta <= 0
    return _emergent_end(net, layers, sparsity, prior_masks, data, encoder, finetune, history,
                         {"alpha": alpha, "mu": mu}, loss_terms, hooks)


@register("deep-r", kind="transform", taxonomy="pruning/unstructured", keys=("bellec2018deep",),
          leaves=("mask",), keeps=all_but("weight-grid", "early-exit"))
def deep_r(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9, lr: float = 0.5,
           l1: float = 1e-5, temperature: float | None = None, scope: str = "global",
           train: TrainConfig | None = None, finetune: TrainConfig | None = None,
           loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Deep R: exactly K active connections, rewired at random while training [@bellec2018deep].

    Every weight gets a fixed sign $s$ and a parameter $\theta$: $w = s\,\theta$ while $\theta > 0$,
    dormant ($w = 0$) otherwise. The $K = N - $ `round(sparsity * N)` weights of largest magnitude start
    active, in one global pool or per layer (`scope="layer"`). While training for `train` (default
    `PRUNE_TRAIN`), the active $\theta$ follow the paper's noisy SGD with an $L_1$ term (learning rate `lr` on
    `fit`'s schedule, $\alpha$ = `l1`, temperature $T$), a $\theta$ that crosses zero turns its
    connection dormant, and dormant connections drawn at random are reactivated so that exactly $K$ are
    active after every step (`rewiring.DeepRHook`); Adam trains the other parameters. `lr` = 0.5,
    `l1` = 1e-5 and the default $T = \eta\sigma^2/2$ with $\sigma$ = 1e-5 (gradient noise of standard
    deviation $10^{-5}\eta$) are the authors' MNIST script's; there $\eta$ decays by 0.8 per epoch,
    here it follows `fit`'s schedule. The paper starts from a random sparse network; this starts from the
    input's largest weights. `finetune` (default none) retrains with the final mask.
    """
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    net, layers, prior = _start(model, sparsity, bake=True)
    train = budget(train, PRUNE_TRAIN, "train")
    start = prune_masks(magnitude_scores(layers), sparsity, scope, prior)
    for n, m in layers.items():
        parametrize.register_parametrization(m, "weight", DeepRWeight(m.weight.detach(), start[n]))
    groups = [list(layers)] if scope == "global" else [[n] for n in layers]
    lrs = step_learning_rates(train, data.train_x.shape[0])
    hook = DeepRHook({n: m.parametrizations.weight.original for n, m in layers.items()}, groups,
                     [sum(int(start[n].sum()) for n in g) for g in groups], lr=lr,
                     lr_scale=[x / train.lr for x in lrs], l1=l1,
                     temperature=lr * 1e-10 / 2 if temperature is None else temperature, seed=train.seed,
                     allowed=prior)
    history: list[dict] = []
    run_phase(net, data, encoder, train, "deep-r", history, hooks=[hook], extra_terms=loss_terms, extra_hooks=hooks)
    bake_weights(layers)  # w = s theta on the K active connections, 0 elsewhere
    set_masks(layers, combine({n: (m.weight != 0).to(m.weight.dtype) for n, m in layers.items()}, prior))
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"sparsity": weight_sparsity(layers), "scope": scope,
                                              "reactivated": hook.reactivated})


def _regrow(model, data, encoder, sparsity, scope, init, train, finetune, terms, hooks, **rewire) -> Compressed:
    """Shared body of RigL and SET: a starting mask at `sparsity` (largest input weights, or random),
    rewired by `rewiring.RegrowHook` while training, then `finetune` (default none) with the final mask."""
    if init not in ("magnitude", "random"):
        raise ValueError(f"init must be 'magnitude' or 'random', got {init!r}")
    net, layers, prior = _start(model, sparsity)
    gen = torch.Generator().manual_seed(train.seed)
    scores = magnitude_scores(layers) if init == "magnitude" else \
        {n: torch.rand(m.weight.shape, generator=gen) for n, m in layers.items()}
    masks = prune_masks(scores, sparsity, scope, prior)
    set_masks(layers, masks)
    hook = RegrowHook(layers, masks, seed=train.seed, allowed=prior, **rewire)
    history: list[dict] = []
    run_phase(net, data, encoder, train, "rewire", history, hooks=[hook], extra_terms=terms, extra_hooks=hooks)
    hook.release()
    run_phase(net, data, encoder, budget(finetune, NONE, "finetune"), "finetune", history,
              extra_terms=terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"sparsity": weight_sparsity(layers), "rewired": hook.rewired,
                                              "scope": scope, "init": init})


@register("rigl", kind="transform", taxonomy="pruning/unstructured", keys=("evci2020rigging",),
          leaves=("mask",), keeps=all_but("early-exit"))
def rigl(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9, fraction: float = 0.3,
         every: int = 100, end: float = 0.75, scope: str = "global", init: str = "magnitude",
         train: TrainConfig | None = None, finetune: TrainConfig | None = None,
         loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""RigL: drop the smallest active weights, regrow where the dense gradient is largest, at fixed
    density [@evci2020rigging].

    From a mask at `sparsity` (the input's largest weights, or random with `init="random"`), every
    `every` steps until the fraction `end` of the `train` steps (default `PRUNE_TRAIN`), each layer drops the
    fraction $f_t = f\,(1 + \cos(\pi t/t_{end}))/2$ of its active weights and regrows as many where
    $|\partial L/\partial w|$ is largest, at zero (`rewiring.RegrowHook`). The defaults are RigL's
    ($f$ = 0.3, $\Delta T$ = 100, $t_{end}$ = 75 % of training, cosine decay). RigL trains a random
    sparse network from scratch (uniform or ERK layer densities) and zeroes the optimiser's momentum of
    regrown weights; here the start is the input's global magnitude mask by default and Adam's moments
    are left to decay. `finetune` (default none) retrains with the final mask.
    """
    train = budget(train, PRUNE_TRAIN, "train")
    return _regrow(model, data, encoder, sparsity, scope, init, train, finetune, loss_terms, hooks,
                   fraction=fraction, every=every, stop=int(end * train.steps(data.train_x.shape[0])),
                   grow="gradient", anneal="cosine")


@register("sparse-evolutionary", kind="transform", taxonomy="pruning/unstructured", keys=("mocanu2018scalable",),
          leaves=("mask",), keeps=all_but("early-exit"))
def sparse_evolutionary(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9,
                        fraction: float = 0.3, every: int | None = None, scope: str = "global",
                        init: str = "magnitude", train: TrainConfig | None = None,
                        finetune: TrainConfig | None = None, loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""SET (sparse evolutionary training): drop the smallest active weights, regrow as many at
    random, at fixed density [@mocanu2018scalable].

    From a mask at `sparsity` (the input's largest weights, or random with `init="random"`), after every
    epoch of `train` but the last (default `PRUNE_TRAIN`; `every` steps if given), each layer drops the
    fraction $\zeta$ = `fraction` (SET's 0.3, constant) of its active weights with the smallest
    magnitude and activates as many weights drawn at random, at zero (`rewiring.RegrowHook`). SET drops
    the $\zeta$ smallest positive and the $\zeta$ largest negative weights separately and starts from an
    Erdos-Renyi random graph per layer; here one magnitude ranking per layer and the input's global
    magnitude mask (or a random one). `finetune` (default none) retrains with the final mask.
    """
    train = budget(train, PRUNE_TRAIN, "train")
    n = data.train_x.shape[0]
    return _regrow(model, data, encoder, sparsity, scope, init, train, finetune, loss_terms, hooks,
                   fraction=fraction, every=every or math.ceil(n / train.batch_size), stop=train.steps(n),
                   grow="random", anneal="constant")


@register("admm", kind="transform", taxonomy="pruning/unstructured", keys=("deng2021comprehensive",),
          leaves=("mask",), keeps=all_but("early-exit"))
def admm(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9, rho: float = 5e-3,
         every: int = 20, scope: str = "global", train: TrainConfig | None = None,
         finetune: TrainConfig | None = None, loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""ADMM-regularised training toward a sparse set, then hard pruning and fine-tuning [@deng2021comprehensive].

    Train with $\frac{\rho}{2}\|W - Z + U\|^2$ pulling $W$ toward its sparse projection $Z$ (`train`,
    default `PRUNE_TRAIN`), then prune $W$ by magnitude to exactly `sparsity` and fine-tune with the mask
    (`finetune`, default `PRUNE_FINETUNE`).
    """
    net, layers, prior = _start(model, sparsity)
    hook = ADMMHook(layers, sparsity, rho, every, scope)
    history: list[dict] = []
    run_phase(net, data, encoder, budget(train, PRUNE_TRAIN, "train"), "admm", history, loss_terms=[hook.penalty],
              hooks=[hook], extra_terms=loss_terms, extra_hooks=hooks)
    set_masks(layers, prune_masks(magnitude_scores(layers), sparsity, scope, prior))
    run_phase(net, data, encoder, budget(finetune, PRUNE_FINETUNE, "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, encoder, history, {"sparsity": weight_sparsity(layers), "scope": scope})


@register("soft-threshold", kind="transform", taxonomy="pruning/unstructured",
          keys=("chen2022state", "chen2023unified"),
          leaves=("mask",), keeps=all_but("weight-grid", "early-exit"))
def soft_threshold(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9,
                   threshold: float | None = None, train: TrainConfig | None = None,
                   finetune: TrainConfig | None = None, loss_terms: Terms = (), hooks: Hooks = ()) -> Compressed:
    r"""Soft-threshold reparameterisation with a learning-rate-aware threshold schedule (STDS, LATS)
    [@chen2022state; @chen2023unified].

    Each weight is computed from a hidden $\theta$ as $w = \mathrm{sign}(\theta)\,\mathrm{relu}(|\theta| - d_t)$,
    with a straight-through gradient $\partial L/\partial\theta = \partial L/\partial w$
    (`rewiring.SoftThresholdWeight`): survivors are offset by the current $d_t$ only, and a pruned
    $\theta$ keeps learning, so synapses move between pruned and active. The threshold rises in
    proportion to the learning rate, $d_t = D \sum_{i \le t}\eta_i / \sum_i \eta_i$, to $D$ at the end
    of `train` (default `PRUNE_TRAIN`; `rewiring.ThresholdSchedule`, S-LATS under a cosine learning rate).
    The papers set $D$ by hand; by default (`threshold=None`) $D$ is the magnitude of the
    `round(sparsity * N)`-th smallest weight of the input (our calibration to the target). At the end,
    a shortfall is cut from the smallest survivors, and an overshoot is undone by lowering $d$ to the
    value that leaves exactly `round(sparsity * N)` zeros; `finetune` (default none) retrains with the mask.
    """
    net, layers, prior = _start(model, sparsity, bake=True)
    train = budget(train, PRUNE_TRAIN, "train")
    flat = torch.cat([m.weight.detach().abs().flatten() for m in layers.values()])
    k = round(sparsity * flat.numel())
    final = (float(torch.kthvalue(flat, k).values) if k else 0.0) if threshold is None else float(threshold)
    params = [SoftThresholdWeight() for _ in layers]
    for m, p in zip(layers.values(), params):
        parametrize.register_parametrization(m, "weight", p)
    schedule = ThresholdSchedule(params, final, step_learning_rates(train, data.train_x.shape[0]))
    history: list[dict] = []
    run_phase(net, data, encoder, train, "soft-threshold", history, hooks=[schedule],
              extra_terms=loss_terms, extra_hooks=hooks)
    info = {"scheduled_threshold": float(params[0].d), "sparsity_reached_by_training": weight_sparsity(layers)}
    thetas = torch.cat([m.parametrizations.weight.original.detach().abs().flatten() for m in layers.values()])
    if k and int((thetas <= params[0].d).sum()) > k:  # overshoot: the d that leaves exactly k zeros
        for p in params:
            p.d.fill_(float(torch.kthvalue(thetas, k).values))
    info["final_threshold"] = float(params[0].d)
    bake_weights(layers)
    return _emergent_end(net, layers, sparsity, prior, data, encoder, finetune, history, info, loss_terms, hooks)


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
