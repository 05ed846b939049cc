r"""Schedules: how sparsity grows over training.

One shot needs none; gradual pruning follows the cubic schedule (`cubic_sparsity`); iterative
pruning removes the same fraction of the survivors every round (`iterative_sparsity`); and a
feedback controller (`SparsityController`) steers a regulariser's strength so the sparsity it
produces tracks a schedule.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..metrics import weight_sparsity
from ..train import Hook, Step
from .masks import check_sparsity

__all__ = ["cubic_sparsity", "iterative_sparsity", "SparsityController"]


# --8<-- [start:cubic]
def cubic_sparsity(t: float, s_final: float, n: float, s_init: float = 0.0, t0: float = 0.0) -> float:
    """Gradual pruning schedule [@zhu2017prune], clamped to [t0, t0 + n]."""
    u = min(max((t - t0) / n, 0.0), 1.0) if n > 0 else 1.0
    return s_final + (s_init - s_final) * (1.0 - u) ** 3  # s_t = s_f + (s_i - s_f)(1 - (t - t0)/n)^3
# --8<-- [end:cubic]


def iterative_sparsity(s_final: float, rounds: int) -> list[float]:
    r"""Sparsity after each round of iterative pruning, removing the same fraction $p$ of the
    surviving weights every round [@frankle2019lottery]: $s_r = 1 - (1 - s_f)^{r/R}$."""
    check_sparsity(s_final)
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    return [1.0 - (1.0 - s_final) ** (r / rounds) for r in range(1, rounds + 1)]  # s_r = 1 - (1 - s_f)^(r/R)


class SparsityController(Hook):
    r"""Feedback on a regulariser's strength so the sparsity it produces tracks a schedule.

    Every `every` steps: $\lambda \leftarrow \lambda \cdot f$ when the layers are less sparse
    than `target(step)`, $\lambda \leftarrow \lambda / f$ otherwise.
    """

    def __init__(self, layers: dict[str, nn.Module], target: Callable[[int], float], strength: float,
                 every: int = 5, factor: float = 1.2) -> None:
        self.layers, self.target, self.strength, self.every, self.factor = layers, target, strength, every, factor
        self.measure: Callable[[], float] = lambda: weight_sparsity(self.layers)

    def after_step(self, model: nn.Module, step: Step) -> None:
        if step.index % self.every == 0:
            below = self.measure() < self.target(step.index)
            self.strength *= self.factor if below else 1.0 / self.factor
