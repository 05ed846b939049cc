r"""Mechanics the unstructured methods train with: the hooks that prune, rewire or project the
weights during `fit`, and the parametrization of Grad R's hidden synaptic parameters.

They are kept apart from the methods (in `unstructured`) so that a method reads as its schedule and
its phases, and a hook can be reused by another method or tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..train import Hook, Step
from .masks import Masks, combine, keep_pruned, scoped_masks, set_masks
from .scores import magnitude_scores

__all__ = ["GradualPruneHook", "RegrowHook", "ADMMHook", "SoftThresholdHook", "GradRWeight", "shrink"]


class GradualPruneHook(Hook):
    """Re-prunes to the scheduled sparsity every `every` steps [@zhu2017prune]; the masks it sets
    keep the cut weights at zero in between."""

    def __init__(self, layers, sparsity: Callable[[int], float], every: int, scope: str, prior: Masks | None) -> None:
        self.layers, self.sparsity, self.every, self.scope, self.prior = layers, sparsity, every, scope, prior
        self.masks: Masks | None = prior

    def prune(self, s: float) -> None:
        scores = keep_pruned(magnitude_scores(self.layers), self.masks)
        self.masks = combine(scoped_masks(scores, s, self.scope), self.prior)
        set_masks(self.layers, self.masks)

    def after_step(self, model: nn.Module, step: Step) -> None:
        if step.index % self.every == 0:
            self.prune(self.sparsity(step.index))


class _SignedReLU(torch.autograd.Function):
    r"""$w = s \cdot \mathrm{relu}(\theta)$ whose backward passes $s \cdot \partial L/\partial w$
    to $\theta$ even where $\theta \le 0$ (the rewiring gradient of Grad R)."""

    @staticmethod
    def forward(ctx, theta, sign):  # type: ignore[override]
        ctx.save_for_backward(sign)
        return sign * theta.clamp_min(0)  # w = s relu(theta)

    @staticmethod
    def backward(ctx, grad_w):  # type: ignore[override]
        (sign,) = ctx.saved_tensors
        return grad_w * sign, None  # dL/dtheta := s dL/dw, for every theta


class GradRWeight(nn.Module):
    r"""Parametrization of a weight by its hidden synaptic parameter $\theta$ and a fixed sign."""

    def __init__(self, weight: Tensor) -> None:
        super().__init__()
        self.register_buffer("sign", torch.where(weight < 0, -1.0, 1.0).to(weight.dtype))

    def forward(self, theta: Tensor) -> Tensor:
        return _SignedReLU.apply(theta, self.sign)

    def right_inverse(self, weight: Tensor) -> Tensor:
        return weight.abs()  # theta = |w| initially


class RegrowHook(Hook):
    r"""Fixed-density rewiring: every `every` steps, in each layer, drop the `fraction` of active
    weights with the smallest magnitude and regrow as many inactive ones, chosen at random
    [@bellec2018deep] or by largest gradient magnitude [@shen2023eslsnns]; regrown weights start at
    zero. The fraction decays as $f_t = f\,(1 + \cos(\pi t / t_{end}))/2$ and rewiring stops at
    $t_{end}$. Entries masked before the method started (`allowed` = 0) never regrow."""

    def __init__(self, layers, masks, *, fraction: float, every: int, stop: int, grow: str, seed: int,
                 allowed: Masks | None = None) -> None:
        self.layers, self.masks, self.allowed = layers, masks, allowed
        self.fraction, self.every, self.stop, self.grow = fraction, every, stop, grow
        self.gen = torch.Generator().manual_seed(seed)
        self.rewired = 0
        self.params = {n: m.parametrizations.weight[0] for n, m in layers.items()}
        for p in self.params.values():
            p.record_grad = True  # dense dL/dw: the growth score, and the step of the regrown synapses

    def after_backward(self, model: nn.Module, step: Step) -> None:
        t = step.index
        if 0 < t < self.stop and t % self.every == 0:
            f = self.fraction * (1 + math.cos(math.pi * t / self.stop)) / 2  # f_t
            for n in self.masks:
                self._rewire(n, f)
        for p in self.params.values():
            p.grad = None

    @torch.no_grad()
    def _rewire(self, name: str, f: float) -> None:
        layer, param = self.layers[name], self.params[name]
        theta = layer.parametrizations.weight.original
        flat_m = param.mask.view(-1)
        active = flat_m.nonzero().flatten()
        free = flat_m == 0 if self.allowed is None else (flat_m == 0) & (self.allowed[name].view(-1) != 0)
        inactive = free.nonzero().flatten()
        k = min(int(f * active.numel()), inactive.numel())
        if k == 0:
            return
        drop = active[torch.topk(theta.view(-1)[active].abs(), k, largest=False).indices]  # smallest |w|
        if self.grow == "gradient" and param.grad is not None:
            score = param.grad.view(-1)[inactive].abs()  # |dL/dw| at w = 0
        else:
            score = torch.rand(inactive.numel(), generator=self.gen)
        grow = inactive[torch.topk(score, k).indices]
        flat_m[drop], flat_m[grow] = 0, 1
        theta.view(-1)[drop] = 0
        theta.view(-1)[grow] = 0  # regrown synapses start at zero
        if param.grad is not None and theta.grad is not None:
            theta.grad.copy_(param.grad * param.mask)  # this step already moves the regrown synapses
        self.masks[name] = param.mask
        self.rewired += k


# --8<-- [start:admm]
class ADMMHook(Hook):
    r"""The ADMM auxiliary variables of sparse training [@deng2021comprehensive].

    Every `every` steps: $Z \leftarrow \Pi_S(W + U)$ (keep the largest entries, exact sparsity)
    and $U \leftarrow U + W - Z$. `penalty` is the loss term $\frac{\rho}{2}\|W - Z + U\|^2$.
    """

    def __init__(self, layers, sparsity: float, rho: float, every: int, scope: str) -> None:
        self.layers, self.sparsity, self.rho, self.every, self.scope = layers, sparsity, rho, every, scope
        self.U = {n: torch.zeros_like(m.weight) for n, m in layers.items()}
        self.Z: dict[str, Tensor] = {}
        self.update_z()

    @torch.no_grad()
    def update_z(self) -> None:
        V = {n: m.weight.detach() + self.U[n] for n, m in self.layers.items()}  # W + U
        masks = scoped_masks({n: v.abs() for n, v in V.items()}, self.sparsity, self.scope)
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


def shrink(layers: dict[str, nn.Module], sparsity: float) -> float:
    r"""Shrink every weight of the pool by the magnitude $d$ of its `round(sparsity * N)`-th
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
    r"""ISTA-style soft thresholding after every optimiser step with a scheduled threshold
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
        self.thresholds.append(shrink(self.layers, self.sparsity(step.index)))
