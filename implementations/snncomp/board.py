"""The runs and the leaderboard: `Run` (a recipe on a trained baseline at a seed, and its key) and
`board()`, the runs of `snncomp bench` (with the `--quick` board: `QUICK_METHODS`, `QUICK_RECIPES`);
`snncomp.specs.spec_board` gives the runs of `snncomp bench --spec NAME` (the section specs).

`snncomp.runner` executes the runs and re-exports these names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Run", "board", "SHARED_BASELINE", "QUICK_METHODS", "QUICK_RECIPES", "TEACHER_OPTION", "SNN_TEACHER"]

SHARED_BASELINE = "conv-direct4"  # the board's starting point


def _content(recipe) -> str:
    """The part of a recipe that decides its results: its name and its steps (not its description or file)."""
    steps = [{"method": s.method, "options": s.options, "freeze": s.freeze, "label": s.label} for s in recipe.steps]
    return json.dumps({"name": recipe.name, "steps": steps}, sort_keys=True, default=repr)


@dataclass(frozen=True)
class Run:
    """One run: `recipe` applied to the trained baseline `baseline` at `seed`, on the data set `data`
    (default: the baseline's own; a data set of other images trains the baseline's architecture on it, see
    `baselines.on_data`)."""

    recipe: object  # a recipes.Recipe (name, steps)
    baseline: str = SHARED_BASELINE
    seed: int = 0
    data: str = ""

    def __post_init__(self) -> None:
        if not self.data:
            from . import baselines

            if self.baseline not in baselines.BASELINES:
                raise KeyError(f"unknown baseline {self.baseline!r}; known: {', '.join(baselines.BASELINES)}")
            object.__setattr__(self, "data", baselines.BASELINES[self.baseline].dataset)
        from .data import catalog

        catalog.get(self.data)  # an unknown data set is a KeyError naming the known ones

    @property
    def digest(self) -> str:
        """8 hex digits of the hash of the recipe's content: a changed recipe is another run."""
        return hashlib.sha256(_content(self.recipe).encode()).hexdigest()[:8]

    @property
    def key(self) -> str:
        return f"{self.recipe.name}@{self.baseline}/{self.data}/seed{self.seed}#{self.digest}"


# ----------------------------------------------------------------------------------------------- the board

# `--quick`: the cheapest transforms, each with a one-epoch budget where it trains (the learning rates are
# the methods' own defaults), seed 0 only
QUICK_METHODS: dict[str, dict] = {
    "magnitude": {"finetune": {"epochs": 1, "lr": 2e-3}},
    "uniform-ptq": {},
    "lsq": {"train": {"epochs": 1, "lr": 1e-2}},
    "uniform-qat": {"train": {"epochs": 1, "lr": 5e-4}},
    "learnable-threshold": {"train": {"epochs": 1, "lr": 1e-3}},
}
QUICK_RECIPES = 2  # the first recipes (by name) in `--quick`, every explicit budget cut to one epoch
TEACHER_OPTION = {"teacher": "conv-ann"}  # the teacher of the one-step distillation runs (a baseline name)
SNN_TEACHER = {"conv-direct4": "conv-fc256-direct4"}  # the SNN teacher of the one-step SNN-to-SNN runs


def _one_step(method: str, options: dict, baseline: str):
    from . import chain, recipes

    return recipes.Recipe(name=method, steps=(chain.Step(method, dict(options)),),
                          description=f"{method} with its default options", baseline=baseline)


def _quick_recipe(recipe):
    import dataclasses

    steps = []
    for s in recipe.steps:
        opts = {k: ({**v, "epochs": min(int(v.get("epochs", 1)), 1)} if k in ("train", "finetune") and isinstance(v, dict)
                    else v) for k, v in s.options.items()}
        steps.append(dataclasses.replace(s, options=opts))
    return dataclasses.replace(recipe, steps=tuple(steps))


def board(*, quick: bool = False, seeds: Sequence[int] = (0, 1, 2), only: Sequence[str] | None = None,
          baseline: str = SHARED_BASELINE, data: str = "") -> list[Run]:
    """The leaderboard's runs: every registered transform with its default options as a one-step recipe
    (the distillation ones with the baseline's ANN as teacher), then every recipe of `recipes.builtin()`
    on its own baseline (or `baseline`), for each seed. `quick`: seed 0, `QUICK_METHODS` and the first
    `QUICK_RECIPES` recipes with one-epoch budgets. `only`: keep the runs whose recipe name is listed
    (an unknown name is a `KeyError` listing the names there are). `data`: every run on that data set (a
    name of `snncomp.data.catalog`), its baselines trained on it (`snncomp bench --data NAME`)."""
    from . import baselines, recipes, registry

    seeds = (0,) if quick else tuple(seeds)
    methods = registry.methods()
    methods = list(methods.values()) if isinstance(methods, dict) else list(methods)
    plans = []
    for m in methods:
        if m.kind != "transform" or (quick and m.name not in QUICK_METHODS):
            continue
        options = dict(QUICK_METHODS.get(m.name, {})) if quick else {}
        if "teacher" in m.needs:
            # ANN-to-SNN methods learn from the baseline's ANN; SNN-to-SNN ones from a larger SNN
            teacher = SNN_TEACHER.get(baseline) if m.family == "snn-to-snn" else baselines.BASELINES[baseline].ann
            if teacher is None:
                continue
            options.update({"teacher": teacher})
        plans.append(_one_step(m.name, options, baseline))
    builtin = dict(sorted(recipes.builtin().items()))
    if quick:
        builtin = {k: _quick_recipe(v) for k, v in list(builtin.items())[:QUICK_RECIPES]}
    plans += list(builtin.values())
    names = [p.name for p in plans]
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise KeyError(f"no board run named {', '.join(unknown)}; runs: {', '.join(names)}")
        plans = [p for p in plans if p.name in only]
    if data:  # a teacher named by a baseline is trained on its own images: left out where the run's are others
        plans = [p for p in plans if not any(isinstance(t := s.options.get("teacher"), str) and t in baselines.BASELINES
                                             and baselines.retrains(t, data) for s in p.steps)]
    return [Run(p, getattr(p, "baseline", None) or baseline, s, data or getattr(p, "data", None) or "")
            for p in plans for s in seeds]
