r"""Schedules: how sparsity grows over training.

One shot needs none; gradual pruning follows the cubic schedule (`cubic_sparsity`); iterative
pruning removes the same fraction of the survivors every round (`iterative_sparsity`); and
`step_learning_rates` gives the learning rate `train.fit` uses at each step, for the methods whose
own updates are tied to it (Grad R's prior step, Deep R's SGD step, the soft-threshold schedule).
"""

from __future__ import annotations

from ..train import TrainConfig
from .masks import check_sparsity

__all__ = ["cubic_sparsity", "iterative_sparsity", "step_learning_rates"]


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


def step_learning_rates(config: TrainConfig, samples: int) -> list[float]:
    """The learning rate of each optimiser step of `train.fit(config)` on `samples` examples
    (`TrainConfig.lr_factor` times `lr`)."""
    total = max(1, config.steps(samples))
    return [config.lr * config.lr_factor(i, total) for i in range(config.steps(samples))]
