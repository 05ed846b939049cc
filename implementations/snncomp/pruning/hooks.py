r"""Mechanics the mask-based unstructured methods train with: the hooks that prune or project the
weights during `fit` (the rewiring and re-parameterising methods have theirs in `rewiring`).

They are kept apart from the methods (in `unstructured`) so that a method reads as its schedule and
its phases, and a hook can be reused by another method or tested on its own.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..train import Hook, Step
from .masks import Masks, combine, keep_pruned, scoped_masks, set_masks
from .scores import magnitude_scores

__all__ = ["GradualPruneHook", "ADMMHook"]


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
