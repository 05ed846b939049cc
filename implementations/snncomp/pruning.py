"""Pruning: removing synapses, neurons, channels or time steps (section 3.1 of [@xie2024efficient]).

The file keeps three things apart so they combine freely:

* **importance scores**, pure functions `model -> {layer: score tensor}`: weight magnitude, BatchNorm
  scale over firing threshold, firing rate, gradient magnitude;
* **mechanics**: masks chosen from scores with an exact count of zeros (`global_masks`,
  `layer_masks`), kept through training by `MaskHook`, and physical removal of channels or neurons
  together with their neuron state (`remove_units`);
* **schedules**: how sparsity grows over training: one shot, the cubic schedule of gradual
  pruning (`cubic_sparsity`), a geometric schedule over the rounds of iterative pruning
  (`iterative_sparsity`), and a feedback controller (`SparsityController`) that steers the strength
  of a regulariser (Grad R's prior) so the sparsity it produces follows a schedule.

Every method below is one registered **transform** with the same signature,

    fn(model, data: Split, encoder: Encoder, *, config: TrainConfig | None = None, **options)
        -> PruneResult

It deep-copies `model` (the input is never modified), trains only through `train.fit` (loss terms
and hooks), and returns a `PruneResult` whose `.model` is the new network, `.history` the per-epoch
records of every training phase and `.info` what the method reports (sparsity reached, channels
kept, accuracy per number of time steps, ...). `sparsity` is always the fraction removed, in [0, 1).

**What is pruned (unstructured methods).** The weights of every `nn.Conv2d` and `nn.Linear`,
readout included, ranked in one global pool (`scope="global"`, the default): biases, BatchNorm and
neuron parameters are never pruned. A global pool lets the large readout (most of the weights of
the baseline) absorb most of the cuts while the small first convolution keeps most of its weights,
because its weights are larger. `scope="layer"` instead prunes each layer to the same sparsity.
Mask-based methods reach the requested sparsity exactly: the pool has exactly
`round(sparsity * numel)` zeros. The penalty-driven ones (Grad R, soft threshold) cut the smallest
survivors at the end if training left them short of it (`info["topped_up"]` says how many), and
report more zeros if training overshot.

**Structured methods** physically remove channels (ConvNet) or hidden neurons (MLP) together with
the neuron state that belongs to them (`remove_units`); there `sparsity` is the fraction of units
removed. **Time-step reduction** fine-tunes the same network at fewer steps.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from . import spikes as spike_rec
from .data import Split
from .encoding import Encoder
from .models import MLP, ConvNet
from .neurons import SpikingNeuron
from .registry import register
from .train import Hook, Step, TrainConfig, evaluate, fit

__all__ = [
    "PruneResult", "check_sparsity", "prunable_layers", "sparsity_of",
    # scores
    "magnitude_scores", "bn_scale_scores", "firing_rate_scores",
    # mechanics
    "global_masks", "layer_masks", "apply_masks", "MaskHook", "topup_to_sparsity",
    "select_units", "remove_units", "mask_units",
    # schedules
    "cubic_sparsity", "iterative_sparsity", "SparsityController",
    # methods
    "magnitude_prune", "gradual_magnitude_prune", "lottery_ticket", "grad_rewiring", "prune_regrow",
    "admm_prune", "soft_threshold", "soft_threshold_prune", "channel_slimming", "activity_prune", "timestep_reduction",
    "sparsity_report",
]

Masks = dict[str, Tensor]  # layer name -> {0, 1} mask shaped like its weight

FINETUNE = TrainConfig(epochs=4, lr=2e-3)  # default budget for fine-tuning a trained model
TRAIN = TrainConfig(epochs=8, lr=2e-3)  # default budget for methods that prune while training


@dataclass
class PruneResult:
    """What a pruning transform returns: the new model, the training records and a report."""

    model: nn.Module
    history: list[dict] = field(default_factory=list)  # per-epoch records of every phase, tagged
    info: dict = field(default_factory=dict)


# ============================================================================ checks and helpers


def check_sparsity(sparsity: float, what: str = "sparsity") -> float:
    """`sparsity` as a float, or a `ValueError` when it lies outside [0, 1)."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity < 1.0:
        raise ValueError(f"{what} must lie in [0, 1), got {sparsity!r}")
    return float(sparsity)


def _check_model(model: nn.Module, where: str) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{where}: expected an nn.Module, got {type(model).__name__}")


def prunable_layers(model: nn.Module, *, include_head: bool = True) -> dict[str, nn.Module]:
    """The `nn.Conv2d` and `nn.Linear` layers whose weights unstructured pruning may zero."""
    _check_model(model, "prunable_layers")
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    if not include_head:
        layers.pop("head", None)
    if not layers:
        raise TypeError(f"pruning needs nn.Conv2d or nn.Linear layers; {type(model).__name__} has none")
    return layers


def sparsity_of(layers: dict[str, nn.Module]) -> float:
    """Fraction of zero weights over `layers`."""
    total = sum(m.weight.numel() for m in layers.values())
    zeros = sum(int((m.weight == 0).sum()) for m in layers.values())
    return zeros / total


def _tagged(history, phase: str) -> list[dict]:
    return [{**r, "phase": phase} for r in history.epochs]


def _steps(data: Split, config: TrainConfig) -> int:
    """Optimiser steps `fit` takes with `config` on `data`."""
    return config.steps(data.train_x.shape[0])


# ============================================================================ importance scores


def magnitude_scores(layers: dict[str, nn.Module]) -> dict[str, Tensor]:
    """$|w|$ for every weight [@han2015learning]."""
    return {n: m.weight.detach().abs() for n, m in layers.items()}


def _block_neurons(model: nn.Module) -> list[nn.Module]:
    return [b.neuron for b in model.blocks]


def bn_scale_scores(model: ConvNet) -> dict[int, Tensor]:
    """Neuron-state-aware channel importance of each conv block: $|\\gamma_c| / \\theta_c$ [@liu2017learning].

    The BatchNorm scale $\\gamma_c$ multiplies the normalised input current of channel $c$; the
    membrane reaches threshold $\\theta_c$ in proportion to $\\gamma_c/\\theta_c$, so a small ratio
    means the channel's neurons are barely driven by their input.
    """
    if not isinstance(model, ConvNet):
        raise TypeError(f"BatchNorm-scale scores need a ConvNet (BatchNorm channels), got {type(model).__name__}")
    out = {}
    for i, b in enumerate(model.blocks):
        gamma = b.bn.weight.detach().abs()  # [C]
        theta = getattr(b.neuron, "threshold", None)
        theta = theta.detach() if isinstance(theta, Tensor) else torch.ones_like(gamma)
        out[i] = gamma / theta  # |gamma_c| / theta_c, [C]
    return out


@torch.no_grad()
def firing_rate_scores(model: nn.Module, x: Tensor, encoder: Encoder, batch_size: int = 250,
                       seed: int = 0) -> dict[int, Tensor]:
    """Mean spikes per step of each channel (ConvNet) or neuron (MLP) of every block on images `x`
    [@li2024efficient]: units that rarely fire carry little information to the next layer."""
    _check_units_model(model, "firing-rate scores")
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    sums: dict[int, Tensor] = {}
    counts: dict[int, int] = {}
    names = {f"blocks.{i}.neuron": i for i in range(len(model.blocks))}
    try:
        for start in range(0, x.shape[0], batch_size):
            with spike_rec.record(model) as rec:
                model(encoder(x[start : start + batch_size], gen))
            for name, outs in rec.items():
                i = names[name]
                s = outs[0]  # [T, B, C, ...]
                r = s.transpose(0, 2).flatten(1).sum(1)  # spikes of each channel, [C]
                sums[i] = sums.get(i, 0) + r
                counts[i] = counts.get(i, 0) + s.numel() // s.shape[2]  # T * B * positions per channel
    finally:
        model.train(was)
    if not sums:
        raise TypeError(f"firing-rate scores need spiking neurons; {type(model).__name__} has none")
    return {i: v / counts[i] for i, v in sums.items()}  # rate_c = spikes_c / (T B H W)


# ============================================================================ masks (mechanics)


# --8<-- [start:global_masks]
def global_masks(scores: dict[str, Tensor], sparsity: float) -> Masks:
    """Masks zeroing exactly `round(sparsity * N)` entries: the lowest scores in one pool of N."""
    sparsity = check_sparsity(sparsity)
    flat = torch.cat([s.flatten() for s in scores.values()])  # [N]
    k = round(sparsity * flat.numel())  # number of zeros
    keep = torch.ones_like(flat, dtype=torch.bool)
    if k:
        keep[torch.topk(flat, k, largest=False).indices] = False
    out, start = {}, 0
    for n, s in scores.items():
        out[n] = keep[start : start + s.numel()].view_as(s).to(s.dtype)
        start += s.numel()
    return out
# --8<-- [end:global_masks]


def layer_masks(scores: dict[str, Tensor], sparsity: float) -> Masks:
    """Masks zeroing `round(sparsity * n_l)` lowest-scoring entries in every layer separately."""
    return {n: global_masks({n: s}, sparsity)[n] for n, s in scores.items()}


def _masks(scores: dict[str, Tensor], sparsity: float, scope: str) -> Masks:
    if scope == "global":
        return global_masks(scores, sparsity)
    if scope == "layer":
        return layer_masks(scores, sparsity)
    raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")


def _keep_pruned(scores: dict[str, Tensor], masks: Masks | None) -> dict[str, Tensor]:
    """Scores with already-pruned entries set to -1, so they are cut first again."""
    if masks is None:
        return scores
    return {n: s.masked_fill(masks[n] == 0, -1.0) for n, s in scores.items()}


@torch.no_grad()
def apply_masks(layers: dict[str, nn.Module], masks: Masks) -> None:
    """$w \\leftarrow w \\odot m$ in place."""
    for n, m in masks.items():
        layers[n].weight.mul_(m)


# --8<-- [start:mask_hook]
class MaskHook(Hook):
    """Keeps masked weights at zero through training: their gradients are zeroed before the
    optimiser step, and the mask is re-applied after it (Adam's momentum would move them)."""

    def __init__(self, layers: dict[str, nn.Module], masks: Masks) -> None:
        self.layers, self.masks = layers, masks

    def after_backward(self, model: nn.Module, step: Step) -> None:
        for n, m in self.masks.items():
            g = self.layers[n].weight.grad
            if g is not None:
                g.mul_(m)  # dL/dw <- dL/dw * m

    def after_step(self, model: nn.Module, step: Step) -> None:
        apply_masks(self.layers, self.masks)
# --8<-- [end:mask_hook]


@torch.no_grad()
def topup_to_sparsity(layers: dict[str, nn.Module], sparsity: float) -> tuple[Masks, int]:
    """Zero the smallest surviving weights until exactly `round(sparsity * N)` are zero (no-op when
    already sparser); returns the masks of non-zero weights and how many weights it cut."""
    before = sum(int((m.weight == 0).sum()) for m in layers.values())
    k = round(check_sparsity(sparsity) * sum(m.weight.numel() for m in layers.values()))
    if before >= k:
        return {n: (m.weight != 0).float() for n, m in layers.items()}, 0
    masks = global_masks(magnitude_scores(layers), sparsity)
    apply_masks(layers, masks)
    return masks, k - before


# ============================================================================ schedules


# --8<-- [start:cubic]
def cubic_sparsity(t: float, s_final: float, n: float, s_init: float = 0.0, t0: float = 0.0) -> float:
    """Gradual pruning schedule [@zhu2017prune], clamped to [t0, t0 + n]."""
    u = min(max((t - t0) / n, 0.0), 1.0) if n > 0 else 1.0
    return s_final + (s_init - s_final) * (1.0 - u) ** 3  # s_t = s_f + (s_i - s_f)(1 - (t - t0)/n)^3
# --8<-- [end:cubic]


def iterative_sparsity(s_final: float, rounds: int) -> list[float]:
    """Sparsity after each round of iterative pruning, removing the same fraction $p$ of the
    surviving weights every round [@frankle2019lottery]: $s_r = 1 - (1 - s_f)^{r/R}$."""
    check_sparsity(s_final)
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    return [1.0 - (1.0 - s_final) ** (r / rounds) for r in range(1, rounds + 1)]  # s_r = 1 - (1 - s_f)^(r/R)


class SparsityController(Hook):
    """Feedback on a regulariser's strength so the sparsity it produces tracks a schedule.

    Every `every` steps: $\\lambda \\leftarrow \\lambda \\cdot f$ when the layers are less sparse
    than `target(step)`, $\\lambda \\leftarrow \\lambda / f$ otherwise. Methods whose sparsity
    emerges from a penalty (Grad R's prior) use it to hit a requested sparsity.
    """

    def __init__(self, layers: dict[str, nn.Module], target: Callable[[int], float], strength: float,
                 every: int = 5, factor: float = 1.2) -> None:
        self.layers, self.target, self.strength, self.every, self.factor = layers, target, strength, every, factor
        self.measure: Callable[[], float] = lambda: sparsity_of(self.layers)

    def after_step(self, model: nn.Module, step: Step) -> None:
        if step.index % self.every == 0:
            below = self.measure() < self.target(step.index)
            self.strength *= self.factor if below else 1.0 / self.factor


# ============================================================================ unstructured methods


def _finetune(net, layers, masks, data, encoder, config, phase, history) -> None:
    hist = fit(net, data, encoder, config, hooks=[MaskHook(layers, masks)])
    history += _tagged(hist, phase)


@register("magnitude", kind="transform", taxonomy="pruning/unstructured", keys=("han2015learning",),
          summary="One-shot magnitude pruning to an exact sparsity, then masked fine-tuning.")
def magnitude_prune(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9,
                    config: TrainConfig | None = None, scope: str = "global") -> PruneResult:
    """Zero the smallest-magnitude weights at once, then fine-tune the survivors [@han2015learning].

    $m = [\\,|w| > \\tau\\,]$ with $\\tau$ the `round(sparsity * N)`-th smallest $|w|$; `config`
    (default `FINETUNE`) sets the fine-tuning budget (0 epochs: no fine-tuning).
    """
    check_sparsity(sparsity)
    net = copy.deepcopy(model)
    layers = prunable_layers(net)
    masks = _masks(magnitude_scores(layers), sparsity, scope)
    apply_masks(layers, masks)
    history: list[dict] = []
    _finetune(net, layers, masks, data, encoder, config or FINETUNE, "finetune", history)
    return PruneResult(net, history, {"sparsity": sparsity_of(layers), "scope": scope})


class GradualPruneHook(MaskHook):
    """Re-prunes to the cubic schedule's sparsity every `every` steps [@zhu2017prune]; between
    updates it keeps the current masks like `MaskHook`."""

    def __init__(self, layers, sparsity: Callable[[int], float], every: int, scope: str) -> None:
        super().__init__(layers, {n: torch.ones_like(m.weight) for n, m in layers.items()})
        self.sparsity, self.every, self.scope = sparsity, every, scope

    def prune(self, s: float) -> None:
        scores = _keep_pruned(magnitude_scores(self.layers), self.masks)
        self.masks = _masks(scores, s, self.scope)
        apply_masks(self.layers, self.masks)

    def after_step(self, model: nn.Module, step: Step) -> None:
        if step.index % self.every == 0:
            self.prune(self.sparsity(step.index))
        else:
            apply_masks(self.layers, self.masks)


@register("gradual-magnitude", kind="transform", taxonomy="pruning/unstructured", keys=("zhu2017prune",),
          summary="Gradual magnitude pruning during training on the cubic sparsity schedule.")
def gradual_magnitude_prune(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9,
                            config: TrainConfig | None = None, begin: float = 0.0, end: float = 0.75,
                            every: int = 10, scope: str = "global") -> PruneResult:
    """Prune while training, raising sparsity from 0 to `sparsity` on the cubic schedule between
    the fractions `begin` and `end` of the training steps, every `every` steps [@zhu2017prune]."""
    check_sparsity(sparsity)
    if not 0.0 <= begin < end <= 1.0:
        raise ValueError(f"need 0 <= begin < end <= 1, got begin={begin!r}, end={end!r}")
    config = config or TRAIN
    net = copy.deepcopy(model)
    layers = prunable_layers(net)
    total = _steps(data, config)
    t0, n = begin * total, (end - begin) * total
    hook = GradualPruneHook(layers, lambda t: cubic_sparsity(t, sparsity, n, 0.0, t0), every, scope)
    hist = fit(net, data, encoder, config, hooks=[hook])
    hook.prune(sparsity)  # the last update lands exactly on s_f
    return PruneResult(net, _tagged(hist, "gradual"), {"sparsity": sparsity_of(layers), "scope": scope})


class _Snapshot(Hook):
    """Saves the model state after `at` optimiser steps (the rewinding point $\\theta_k$)."""

    def __init__(self, at: int) -> None:
        self.at, self.state = at, None

    def after_step(self, model: nn.Module, step: Step) -> None:
        if step.index + 1 == self.at:
            self.state = copy.deepcopy(model.state_dict())


@register("lottery-ticket", kind="transform", taxonomy="pruning/unstructured",
          keys=("frankle2019lottery", "frankle2020linear", "kim2022exploring"),
          summary="Iterative magnitude pruning with weight rewinding (lottery tickets).")
def lottery_ticket(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9,
                   rounds: int = 3, rewind_steps: int = 50, config: TrainConfig | None = None,
                   dense_config: TrainConfig | None = None) -> PruneResult:
    """Iterative magnitude pruning with rewinding [@frankle2019lottery; @frankle2020linear], as
    applied to SNNs in [@kim2022exploring].

    Train the dense net (`dense_config`, default `config`), saving its state $\\theta_k$ after
    `rewind_steps` steps; then `rounds` times: prune the trained weights by global magnitude to
    $s_r = 1 - (1 - s_f)^{r/R}$, rewind the survivors (and BatchNorm statistics) to $\\theta_k$ and
    retrain with the mask for `config`. Starting from an untrained model gives the classic ticket;
    starting from a trained one, $\\theta_k$ lies close to the trained weights (late rewinding).
    `dense_config` with 0 epochs skips dense training and rewinds to the input weights.
    """
    check_sparsity(sparsity)
    config = config or TRAIN
    dense_config = dense_config or config
    net = copy.deepcopy(model)
    layers = prunable_layers(net)
    history: list[dict] = []
    snap = _Snapshot(rewind_steps)
    if rewind_steps == 0 or dense_config.epochs == 0:
        snap.state = copy.deepcopy(net.state_dict())
    if dense_config.epochs:
        history += _tagged(fit(net, data, encoder, dense_config, hooks=[snap]), "dense")
    if snap.state is None:  # fewer steps than rewind_steps: rewind to the end of dense training
        snap.state = copy.deepcopy(net.state_dict())
    masks: Masks | None = None
    per_round = []
    for r, s_r in enumerate(iterative_sparsity(sparsity, rounds), start=1):
        masks = global_masks(_keep_pruned(magnitude_scores(layers), masks), s_r)
        net.load_state_dict(snap.state)  # theta <- theta_k
        apply_masks(layers, masks)  # theta_k * m
        _finetune(net, layers, masks, data, encoder, config, f"round {r}", history)
        per_round.append({"round": r, "sparsity": sparsity_of(layers),
                          "test_acc": history[-1].get("test_acc") if history else None})
    return PruneResult(net, history, {"sparsity": sparsity_of(layers), "rounds": per_round})


class _SignedReLU(torch.autograd.Function):
    """$w = s \\cdot \\mathrm{relu}(\\theta)$ whose backward passes $s \\cdot \\partial L/\\partial w$
    to $\\theta$ even where $\\theta \\le 0$ (the rewiring gradient of Grad R)."""

    @staticmethod
    def forward(ctx, theta, sign):  # type: ignore[override]
        ctx.save_for_backward(sign)
        return sign * theta.clamp_min(0)  # w = s relu(theta)

    @staticmethod
    def backward(ctx, grad_w):  # type: ignore[override]
        (sign,) = ctx.saved_tensors
        return grad_w * sign, None  # dL/dtheta := s dL/dw, for every theta


class GradRWeight(nn.Module):
    """Parametrisation of a weight by its hidden synaptic parameter $\\theta$ and a fixed sign."""

    def __init__(self, weight: Tensor) -> None:
        super().__init__()
        self.register_buffer("sign", torch.where(weight < 0, -1.0, 1.0).to(weight.dtype))

    def forward(self, theta: Tensor) -> Tensor:
        return _SignedReLU.apply(theta, self.sign)

    def right_inverse(self, weight: Tensor) -> Tensor:
        return weight.abs()  # theta = |w| initially


def _hidden(layers: dict[str, nn.Module]) -> list[Tensor]:
    return [m.parametrizations.weight.original for m in layers.values()]


def _unparametrize(layers: dict[str, nn.Module]) -> None:
    from torch.nn.utils import parametrize

    for m in layers.values():
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)


def _emergent_result(net, layers, sparsity, data, encoder, finetune, history, info) -> PruneResult:
    """Shared ending of the penalty-driven methods: reach the requested sparsity exactly by cutting
    the smallest survivors (if the penalty fell short), then fine-tune with the mask if asked."""
    info["sparsity_reached_by_training"] = sparsity_of(layers)
    masks, cut = topup_to_sparsity(layers, sparsity)
    info["topped_up"] = cut
    if finetune is not None and finetune.epochs:
        _finetune(net, layers, masks, data, encoder, finetune, "finetune", history)
    info["sparsity"] = sparsity_of(layers)
    return PruneResult(net, history, info)


@register("grad-rewiring", kind="transform", taxonomy="pruning/unstructured", keys=("chen2021pruning",),
          summary="Grad R: hidden synaptic parameters with rewiring gradients and a Laplacian prior.")
def grad_rewiring(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9,
                  config: TrainConfig | None = None, prior: float = 1e-4, prior_mean: float = -0.01,
                  end: float = 0.75, finetune: TrainConfig | None = None) -> PruneResult:
    """Gradient rewiring (Grad R) [@chen2021pruning].

    Each weight is $w = s \\cdot \\mathrm{relu}(\\theta)$ with a fixed sign $s$; a synapse is
    pruned while $\\theta \\le 0$ and regrows when $\\theta$ turns positive, because $\\theta$ gets
    $s\\,\\partial L/\\partial w$ even while pruned. A Laplacian prior
    $p(\\theta) \\propto e^{-\\alpha|\\theta - \\mu|}$ adds $\\alpha \\sum |\\theta - \\mu|$ to the
    loss and pulls $\\theta$ below zero. The paper fixes $\\alpha$; here a `SparsityController`
    adapts $\\alpha$ (starting at `prior`) so the sparsity follows the cubic schedule to `sparsity`
    at the fraction `end` of training; any shortfall is cut by magnitude at the end.
    """
    from torch.nn.utils import parametrize

    check_sparsity(sparsity)
    config = config or TRAIN
    net = copy.deepcopy(model)
    layers = prunable_layers(net)
    for m in layers.values():
        parametrize.register_parametrization(m, "weight", GradRWeight(m.weight.detach()))
    thetas = _hidden(layers)
    total = _steps(data, config)
    ctrl = SparsityController(layers, lambda t: cubic_sparsity(t, sparsity, end * total), prior)
    ctrl.measure = lambda: float(sum(int((t <= 0).sum()) for t in thetas)) / sum(t.numel() for t in thetas)

    def laplace_prior(step: Step) -> Tensor:
        return ctrl.strength * sum((t - prior_mean).abs().sum() for t in thetas)  # alpha sum |theta - mu|

    hist = fit(net, data, encoder, config, loss_terms=[laplace_prior], hooks=[ctrl])
    _unparametrize(layers)  # w = s relu(theta), exact zeros where theta <= 0
    return _emergent_result(net, layers, sparsity, data, encoder, finetune, _tagged(hist, "grad-r"),
                            {"final_prior": ctrl.strength})


class RegrowHook(MaskHook):
    """Fixed-density rewiring: every `every` steps, in each layer, drop the `fraction` of active
    weights with the smallest magnitude and regrow as many inactive ones, chosen at random
    [@bellec2018deep] or by largest gradient magnitude [@shen2023eslsnns]; regrown weights start at
    zero. The fraction decays as $f_t = f\\,(1 + \\cos(\\pi t / t_{end}))/2$ and rewiring stops at
    $t_{end}$."""

    def __init__(self, layers, masks, *, fraction: float, every: int, stop: int, grow: str, seed: int) -> None:
        super().__init__(layers, masks)
        self.fraction, self.every, self.stop, self.grow = fraction, every, stop, grow
        self.gen = torch.Generator().manual_seed(seed)
        self.rewired = 0

    def after_backward(self, model: nn.Module, step: Step) -> None:
        t = step.index
        if 0 < t < self.stop and t % self.every == 0:
            f = self.fraction * (1 + math.cos(math.pi * t / self.stop)) / 2  # f_t
            for n, mask in self.masks.items():
                self._rewire(n, mask, f)
        super().after_backward(model, step)

    @torch.no_grad()
    def _rewire(self, name: str, mask: Tensor, f: float) -> None:
        w = self.layers[name].weight
        flat_m = mask.view(-1)
        active = flat_m.nonzero().flatten()
        inactive = (flat_m == 0).nonzero().flatten()
        k = min(int(f * active.numel()), inactive.numel())
        if k == 0:
            return
        drop = active[torch.topk(w.view(-1)[active].abs(), k, largest=False).indices]  # smallest |w|
        if self.grow == "gradient" and w.grad is not None:
            score = w.grad.view(-1)[inactive].abs()  # |dL/dw| at w = 0
        else:
            score = torch.rand(inactive.numel(), generator=self.gen)
        grow = inactive[torch.topk(score, k).indices]
        flat_m[drop] = 0
        flat_m[grow] = 1
        w.view(-1)[drop] = 0
        w.view(-1)[grow] = 0  # regrown synapses start at zero
        self.rewired += k


@register("prune-regrow", kind="transform", taxonomy="pruning/unstructured",
          keys=("bellec2018deep", "shen2023eslsnns"),
          summary="Prune-and-regrow at fixed density (Deep R / ESL-SNN style rewiring).")
def prune_regrow(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9,
                 config: TrainConfig | None = None, fraction: float = 0.3, every: int = 20, end: float = 0.75,
                 grow: str = "gradient", scope: str = "global") -> PruneResult:
    """Train at a fixed number of connections: start from a magnitude mask at `sparsity`, then
    rewire it during training (see `RegrowHook`) [@bellec2018deep; @shen2023eslsnns]. The number of
    zeros never changes, so the sparsity is exact throughout. `grow` is 'random' or 'gradient'."""
    check_sparsity(sparsity)
    if grow not in ("random", "gradient"):
        raise ValueError(f"grow must be 'random' or 'gradient', got {grow!r}")
    config = config or TRAIN
    net = copy.deepcopy(model)
    layers = prunable_layers(net)
    masks = _masks(magnitude_scores(layers), sparsity, scope)
    apply_masks(layers, masks)
    hook = RegrowHook(layers, masks, fraction=fraction, every=every, stop=int(end * _steps(data, config)),
                      grow=grow, seed=config.seed)
    hist = fit(net, data, encoder, config, hooks=[hook])
    return PruneResult(net, _tagged(hist, "rewire"), {"sparsity": sparsity_of(layers), "rewired": hook.rewired})


# --8<-- [start:admm]
class ADMMHook(Hook):
    """The ADMM auxiliary variables of sparse training [@deng2021comprehensive].

    Every `every` steps: $Z \\leftarrow \\Pi_S(W + U)$ (keep the largest entries, exact sparsity)
    and $U \\leftarrow U + W - Z$. `penalty` is the loss term $\\frac{\\rho}{2}\\|W - Z + U\\|^2$.
    """

    def __init__(self, layers, sparsity: float, rho: float, every: int, scope: str) -> None:
        self.layers, self.sparsity, self.rho, self.every, self.scope = layers, sparsity, rho, every, scope
        self.U = {n: torch.zeros_like(m.weight) for n, m in layers.items()}
        self.Z: dict[str, Tensor] = {}
        self.update_z()

    @torch.no_grad()
    def update_z(self) -> None:
        V = {n: m.weight.detach() + self.U[n] for n, m in self.layers.items()}  # W + U
        masks = _masks({n: v.abs() for n, v in V.items()}, self.sparsity, self.scope)
        self.Z = {n: V[n] * masks[n] for n in V}  # Z = proj_S(W + U)

    def penalty(self, step: Step) -> Tensor:
        return self.rho / 2 * sum(((m.weight - self.Z[n] + self.U[n]) ** 2).sum()
                                  for n, m in self.layers.items())  # rho/2 ||W - Z + U||^2

    def after_step(self, model: nn.Module, step: Step) -> None:
        if (step.index + 1) % self.every == 0:
            self.update_z()
            with torch.no_grad():
                for n, m in self.layers.items():
                    self.U[n] += m.weight - self.Z[n]  # U <- U + W - Z
# --8<-- [end:admm]


@register("admm", kind="transform", taxonomy="pruning/unstructured", keys=("deng2021comprehensive",),
          summary="ADMM-regularised training toward a sparse set, then hard pruning and fine-tuning.")
def admm_prune(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9,
               config: TrainConfig | None = None, rho: float = 5e-3, every: int = 20,
               finetune: TrainConfig | None = None, scope: str = "global") -> PruneResult:
    """ADMM pruning [@deng2021comprehensive]: train with $\\frac{\\rho}{2}\\|W - Z + U\\|^2$ pulling
    $W$ toward its sparse projection $Z$ (`config`, default `TRAIN`), then prune $W$ by magnitude
    to exactly `sparsity` and fine-tune with the mask (`finetune`, default `FINETUNE`)."""
    check_sparsity(sparsity)
    config = config or TRAIN
    net = copy.deepcopy(model)
    layers = prunable_layers(net)
    admm = ADMMHook(layers, sparsity, rho, every, scope)
    history = _tagged(fit(net, data, encoder, config, loss_terms=[admm.penalty], hooks=[admm]), "admm")
    masks = _masks(magnitude_scores(layers), sparsity, scope)
    apply_masks(layers, masks)
    _finetune(net, layers, masks, data, encoder, finetune or FINETUNE, "finetune", history)
    return PruneResult(net, history, {"sparsity": sparsity_of(layers), "scope": scope})


def soft_threshold(layers: dict[str, nn.Module], sparsity: float) -> float:
    """Shrink every weight of the pool by the magnitude $d$ of its `round(sparsity * N)`-th
    smallest entry, so that many become exact zeros; returns $d$ (0 when already that sparse)."""
    flat = torch.cat([m.weight.detach().abs().flatten() for m in layers.values()])  # [N]
    k = round(sparsity * flat.numel())
    if k == 0:
        return 0.0
    d = torch.kthvalue(flat, k).values  # d = k-th smallest |w|
    with torch.no_grad():
        for m in layers.values():
            w = m.weight
            w.copy_(w.sign() * (w.abs() - d).clamp_min(0))  # w = sign(w) relu(|w| - d)
    return float(d)


class SoftThresholdHook(Hook):
    """ISTA-style soft thresholding after every optimiser step with a scheduled threshold
    [@chen2023unified]: $w \leftarrow \mathrm{sign}(w)\,\mathrm{relu}(|w| - d_t)$, the proximal
    step of an L1 penalty, with $d_t$ the magnitude that makes the pool `sparsity(t)` sparse.

    Unlike a hard mask, the survivors shrink by $d_t$ too, and a zeroed weight regrows when its
    gradient pushes it back out of $[-d_t, d_t]$: the state transition of synapses between
    pruned and active of [@chen2022state]. It is the soft-threshold operator
    $w = \mathrm{sign}(v)\,\mathrm{relu}(|v| - d)$ of [@kusupati2020soft] applied to the weights
    in place, with a threshold schedule instead of a learned threshold.
    """

    def __init__(self, layers, sparsity: Callable[[int], float]) -> None:
        self.layers, self.sparsity = layers, sparsity
        self.thresholds: list[float] = []

    def after_step(self, model: nn.Module, step: Step) -> None:
        self.thresholds.append(soft_threshold(self.layers, self.sparsity(step.index)))


@register("soft-threshold", kind="transform", taxonomy="pruning/unstructured",
          keys=("chen2022state", "chen2023unified", "kusupati2020soft"),
          summary="Soft-threshold pruning: ISTA-style shrinkage with a threshold scheduled to a sparsity.")
def soft_threshold_prune(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.9,
                         config: TrainConfig | None = None, end: float = 0.75,
                         finetune: TrainConfig | None = None) -> PruneResult:
    """Soft-threshold pruning [@kusupati2020soft; @chen2022state; @chen2023unified]: train with the
    shrinkage of `SoftThresholdHook`, its target sparsity rising on the cubic schedule to
    `sparsity` at the fraction `end` of training and held there; the last step leaves exactly
    `round(sparsity * N)` zeros (barring ties), and `finetune` optionally retrains with them fixed."""
    check_sparsity(sparsity)
    config = config or TRAIN
    net = copy.deepcopy(model)
    layers = prunable_layers(net)
    total = _steps(data, config)
    shrink = SoftThresholdHook(layers, lambda t: cubic_sparsity(t, sparsity, end * total))
    hist = fit(net, data, encoder, config, hooks=[shrink])
    soft_threshold(layers, sparsity)
    return _emergent_result(net, layers, sparsity, data, encoder, finetune, _tagged(hist, "soft-threshold"),
                            {"final_threshold": shrink.thresholds[-1] if shrink.thresholds else 0.0})


# ============================================================================ structured mechanics


def _check_units_model(model: nn.Module, where: str) -> None:
    if not isinstance(model, (ConvNet, MLP)):
        raise TypeError(f"{where} supports ConvNet and MLP models, got {type(model).__name__}")


def _units(block: nn.Module) -> int:
    return block.conv.out_channels if hasattr(block, "conv") else block.fc.out_features


def select_units(scores: dict[int, Tensor], sparsity: float, scope: str = "global") -> dict[int, Tensor]:
    """Indices of the units (channels or neurons) to keep in each block: the `round(sparsity * n)`
    lowest scores go, over all blocks at once (`global`) or per block (`layer`)."""
    check_sparsity(sparsity)
    masks = _masks({str(i): s for i, s in scores.items()}, sparsity, scope)
    return {i: masks[str(i)].nonzero().flatten() for i in scores}


def _param(t: Tensor) -> nn.Parameter:
    return nn.Parameter(t.detach().clone())


@torch.no_grad()
def remove_units(model: nn.Module, keep: dict[int, Tensor]) -> nn.Module:
    """A physically smaller copy of `model` keeping only the units `keep[i]` of block `i`.

    For a `ConvNet` block, removing channel $c$ removes `conv.weight[c]`, the BatchNorm entries
    (`weight`, `bias`, `running_mean`, `running_var`), the neuron's per-channel state (`tau`,
    `threshold`, ... via `keep_channels`) and the input channel $c$ of the next convolution, or, for
    the last block, the readout columns $cHW \\ldots (c+1)HW - 1$ of the flattened features. For an
    `MLP` block, removing neuron $j$ removes row $j$ of `fc` (weight and bias), its neuron state and
    column $j$ of the next layer. Blocks not in `keep` are left whole.
    """
    _check_units_model(model, "remove_units")
    net = copy.deepcopy(model)
    for i, idx in sorted(keep.items()):
        block = net.blocks[i]
        idx = torch.as_tensor(idx, dtype=torch.long).sort().values
        n = _units(block)
        if idx.numel() == 0:
            kind = "channels" if isinstance(net, ConvNet) else "neurons"
            raise ValueError(f"would remove all {n} {kind} of blocks.{i}")
        if idx.numel() and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"blocks.{i} has {n} units; keep indices must lie in [0, {n})")
        nxt = net.blocks[i + 1] if i + 1 < len(net.blocks) else None
        # --8<-- [start:remove_channel]
        if isinstance(net, ConvNet):
            conv, bn = block.conv, block.bn
            conv.weight = _param(conv.weight[idx])  # [C_out', C_in, k, k]
            conv.out_channels = len(idx)
            bn.weight, bn.bias = _param(bn.weight[idx]), _param(bn.bias[idx])  # [C']
            bn.running_mean, bn.running_var = bn.running_mean[idx].clone(), bn.running_var[idx].clone()
            bn.num_features = len(idx)
            if nxt is not None:
                nxt.conv.weight = _param(nxt.conv.weight[:, idx])  # [C_next, C', k, k]
                nxt.conv.in_channels = len(idx)
            else:
                head = net.head
                hw = head.in_features // n  # H * W positions per channel
                w = head.weight.view(head.out_features, n, hw)[:, idx]  # channel c owns columns cHW..(c+1)HW-1
                head.weight = _param(w.reshape(head.out_features, -1))  # [classes, C' H W]
                head.in_features = len(idx) * hw
        # --8<-- [end:remove_channel]
        else:
            fc = block.fc
            fc.weight = _param(fc.weight[idx])  # [F', F_in]
            if fc.bias is not None:
                fc.bias = _param(fc.bias[idx])
            fc.out_features = len(idx)
            nxt_fc = nxt.fc if nxt is not None else net.head
            nxt_fc.weight = _param(nxt_fc.weight[:, idx])  # [F_next, F']
            nxt_fc.in_features = len(idx)
        if isinstance(block.neuron, SpikingNeuron):
            block.neuron.keep_channels(idx)
    return net


@torch.no_grad()
def mask_units(model: nn.Module, keep: dict[int, Tensor]) -> nn.Module:
    """A same-sized copy of `model` in which the units not in `keep` get zero input current, so
    their neurons never reach threshold (thresholds are positive) and emit no spikes: BatchNorm
    scale and shift zeroed (ConvNet) or `fc` rows and bias zeroed (MLP). `remove_units` with the
    same `keep` computes the same function with fewer parameters."""
    _check_units_model(model, "mask_units")
    net = copy.deepcopy(model)
    for i, idx in keep.items():
        block = net.blocks[i]
        drop = torch.ones(_units(block), dtype=torch.bool)
        drop[torch.as_tensor(idx, dtype=torch.long)] = False
        if isinstance(net, ConvNet):
            block.bn.weight[drop] = 0  # gamma_c = 0
            block.bn.bias[drop] = 0  # beta_c = 0  ->  input current of channel c is 0
        else:
            block.fc.weight[drop] = 0
            if block.fc.bias is not None:
                block.fc.bias[drop] = 0
    return net


# ============================================================================ structured methods


def _structured_info(model: nn.Module, pruned: nn.Module, keep: dict[int, Tensor]) -> dict:
    return {"units_before": [_units(b) for b in model.blocks], "units_after": [_units(b) for b in pruned.blocks],
            "kept": {i: idx.tolist() for i, idx in keep.items()}}


@register("channel-slimming", kind="transform", taxonomy="pruning/structured", keys=("liu2017learning",),
          summary="Network slimming: L1 on BatchNorm scales, then physical removal of weak channels "
                  "with their neuron state.")
def channel_slimming(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.5,
                     config: TrainConfig | None = None, l1: float = 1e-3, finetune: TrainConfig | None = None,
                     scope: str = "layer") -> PruneResult:
    """Network slimming [@liu2017learning], made neuron-state aware.

    1. Sparsity training (`config`, default `FINETUNE`) with the loss term $\\lambda \\sum |\\gamma|$ on
       every BatchNorm scale.
    2. Score channel $c$ by $|\\gamma_c| / \\theta_c$ (`bn_scale_scores`) and remove the lowest
       `sparsity` fraction of channels with `remove_units`, which also removes their neurons'
       `tau`/`threshold` and the weights reading them. The paper ranks all channels globally
       (`scope="global"`); the default here prunes every block by the same fraction, because
       BatchNorm scales differ between blocks and a global cut can empty the first block
       (an error: `remove_units` never deletes a whole layer).
    3. Fine-tune the smaller network (`finetune`, default `FINETUNE`).
    """
    check_sparsity(sparsity)
    if not isinstance(model, ConvNet):
        raise TypeError(f"channel slimming needs a ConvNet with BatchNorm channels, got {type(model).__name__}")
    net = copy.deepcopy(model)
    gammas = [b.bn.weight for b in net.blocks]

    def l1_gamma(step: Step) -> Tensor:
        return l1 * sum(g.abs().sum() for g in gammas)  # lambda sum |gamma|

    history = _tagged(fit(net, data, encoder, config or FINETUNE, loss_terms=[l1_gamma]), "sparsity-train")
    keep = select_units(bn_scale_scores(net), sparsity, scope)
    pruned = remove_units(net, keep)
    history += _tagged(fit(pruned, data, encoder, finetune or FINETUNE), "finetune")
    return PruneResult(pruned, history, _structured_info(model, pruned, keep))


@register("activity-pruning", kind="transform", taxonomy="pruning/structured", keys=("li2024efficient",),
          summary="Remove the channels or hidden neurons that fire least, then fine-tune.")
def activity_prune(model: nn.Module, data: Split, encoder: Encoder, *, sparsity: float = 0.5,
                   config: TrainConfig | None = None, scope: str = "layer", samples: int = 1000) -> PruneResult:
    """Activity-driven pruning [@li2024efficient]: score every channel (ConvNet) or hidden neuron
    (MLP) by its firing rate on `samples` training inputs, remove the least active `sparsity`
    fraction (per block by default, since firing rates differ between layers) with `remove_units`,
    and fine-tune (`config`, default `FINETUNE`). Only the pruning half of the paper's
    prune-and-regenerate loop is implemented.
    """
    check_sparsity(sparsity)
    _check_units_model(model, "activity pruning")
    scores = firing_rate_scores(model, data.train_x[:samples], encoder)
    keep = select_units(scores, sparsity, scope)
    pruned = remove_units(model, keep)
    history = _tagged(fit(pruned, data, encoder, config or FINETUNE), "finetune")
    info = _structured_info(model, pruned, keep)
    info["firing_rates"] = {i: s.tolist() for i, s in scores.items()}
    return PruneResult(pruned, history, info)


# ============================================================================ time steps


def _halvings(T: int) -> tuple[int, ...]:
    out, t = [], T // 2
    while t >= 1:
        out.append(t)
        t //= 2
    return tuple(out)


@register("timestep-reduction", kind="transform", taxonomy="pruning/time-steps", keys=("chowdhury2022ultra",),
          summary="Progressive time-step reduction: fine-tune at successively fewer steps.")
def timestep_reduction(model: nn.Module, data: Split, encoder: Encoder, *, steps: tuple[int, ...] | None = None,
                       config: TrainConfig | None = None, keep_models: bool = False) -> PruneResult:
    """Progressive time-step reduction [@chowdhury2022ultra]: starting from a model trained with
    `encoder` at $T$ steps, fine-tune it at each $T'$ of `steps` in turn (default: halving down to
    1, e.g. 16 -> 8 -> 4 -> 2 -> 1), each stage starting from the previous one.

    `.model` is the model at the last $T'$; `.info["accuracy"]` maps each $T$ to the test accuracy
    after its stage (the input model at the start), `.info["accuracy_before_finetune"]` to the
    accuracy on entering the stage, and, with `keep_models`, `.info["models"]` holds every stage's
    model. The encoder at $T'$ is `dataclasses.replace(encoder, T=T')`.
    """
    _check_model(model, "timestep_reduction")
    T0 = encoder.T
    steps = _halvings(T0) if steps is None else tuple(steps)
    if not steps or any(not isinstance(t, int) or t < 1 for t in steps) or \
            any(b >= a for a, b in zip((T0, *steps), steps)):
        raise ValueError(f"steps must be strictly decreasing positive ints below T={T0}, got {steps!r}")
    config = config or FINETUNE
    net = copy.deepcopy(model)
    acc = {T0: evaluate(net, data.test_x, data.test_y, encoder)}
    before: dict[int, float] = {}
    kept: dict[int, nn.Module] = {T0: copy.deepcopy(net)} if keep_models else {}
    history: list[dict] = []
    for t in steps:
        enc = dataclasses.replace(encoder, T=t)
        before[t] = evaluate(net, data.test_x, data.test_y, enc)
        history += _tagged(fit(net, data, enc, config), f"T={t}")
        acc[t] = evaluate(net, data.test_x, data.test_y, enc)
        if keep_models:
            kept[t] = copy.deepcopy(net)
    info = {"T": steps[-1], "accuracy": acc, "accuracy_before_finetune": before}
    if keep_models:
        info["models"] = kept
    return PruneResult(net, history, info)


# ============================================================================ measure


@register("sparsity-report", kind="measure", taxonomy="pruning/unstructured", keys=("han2015learning",),
          summary="Zeros per conv/linear layer and overall, and the units of each block.")
def sparsity_report(model: nn.Module) -> dict:
    """Per layer: weights, zeros and sparsity; overall sparsity; units (channels or neurons) per block."""
    layers = prunable_layers(model)
    rows = {n: {"weights": m.weight.numel(), "zeros": int((m.weight == 0).sum()),
                "sparsity": float((m.weight == 0).float().mean())} for n, m in layers.items()}
    out = {"layers": rows, "sparsity": sparsity_of(layers),
           "weights": sum(r["weights"] for r in rows.values()), "zeros": sum(r["zeros"] for r in rows.values())}
    if isinstance(model, (ConvNet, MLP)):
        out["units"] = [_units(b) for b in model.blocks]
    return out
