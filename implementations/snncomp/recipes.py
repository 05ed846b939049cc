"""Recipes: an ordered list of registered methods with their options, kept as a small TOML file. This
module applies them (`apply`) and re-exports the recipe itself (`snncomp.recipe`), its TOML reader and
writer (`snncomp.recipe_toml`) and its checks (`snncomp.recipe_checks`).

A recipe says where to start (a trained baseline of `snncomp.baselines`, or a fresh smaller
*student* of a given shape), and which methods to apply in which order. It is written as TOML under
`recipes/` at the root of the repository, or built in Python with the same structure:

```toml
name = "prune-quantize"
description = "magnitude pruning, then 4-bit LSQ"
baseline = "conv-direct4"      # the trained starting point (a snncomp.baselines name)
data = "mnist5k"               # optional: the data set, checked against the baseline's
student = { build = "conv_snn", channels = [8, 16] }   # optional: start from a fresh model of this shape

[[step]]
method = "magnitude"           # a registered transform or objective, or the built-in "train"
sparsity = 0.9                 # every other key is an option of the method
finetune = { epochs = 2 }      # budgets are tables of TrainConfig fields

[[step]]
method = "lsq"
bits = 4
freeze = ["thresholds"]        # optional: what trained earlier stays fixed in this step
label = "4-bit"                # optional: the step's name in reports
```

`load`/`loads` read TOML (with `tomllib`), `dumps` writes it back (`loads(dumps(r)) == r`, and
`from_dict(to_dict(r)) == r`; values are strings, numbers, booleans, lists and tables of those, so an
option whose value would be `None` is written by leaving it out). `validate` checks a recipe before
anything trains: unknown methods and options (with the closest names), option values of the wrong type
for the method's signature or out of their range, a missing option without default (a distillation
step's `teacher`, a baseline name), an unknown teacher, and an order of methods that cannot work
(`snncomp.chain.check`); each error is a `RecipeError` whose message starts with the file and line of
the offending step (`recipes/x.toml:12: step 3 'lsq': unknown option 'bitz'; closest: bits`). Value
checks are static (types, plus the ranges of the common options `sparsity`, `bits`, `steps`,
`temperature` and of the budgets); a value that only the method itself can reject shows up when that
step runs.

`apply` validates, runs the chain (`snncomp.chain.run`) and measures the model after every step with
`snncomp.evaluation.measure_all`, so the cost and the gain of each step are visible side by side;
`snncomp compress RECIPE.toml` prints that table.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from . import chain
from .compress import Compressed
from .data import Split
from .data.encoding import Encoder
from .recipe import (BUDGETS, STEP_KEYS, STUDENT_BUILDERS, TOP_LEVEL, TRAIN, Recipe, RecipeError, build_student,
                     from_dict, to_dict)
from .recipe_checks import options_of, validate
from .recipe_toml import builtin, dumps, load, loads

__all__ = ["RecipeError", "Recipe", "Applied", "load", "loads", "dumps", "from_dict", "to_dict", "validate",
           "apply", "run_measures", "builtin", "build_student", "STUDENT_BUILDERS", "TOP_LEVEL", "STEP_KEYS", "BUDGETS"]


@dataclass
class Applied:
    """What `apply` hands back: the chain's result and one measurement per stage (`reports[0]` is the
    model passed in, then one report per step, each tagged with `step` (0-based), `method`, `label`
    and the step's `seconds`)."""

    compressed: Compressed
    reports: list[dict] = field(default_factory=list)
    measures: dict[str, dict] = field(default_factory=dict)  # the recipe's measures of the final model, by name


def run_measures(recipe: Recipe, model: nn.Module, encoder: Encoder, split: Split, seed: int = 0) -> dict[str, dict]:
    """Each of `recipe.measures` on `model`: the registered measure called with the inputs it names among
    `model`, `encoder`, `data` (the split) and `seed`, and the recipe's options; `{name: report}`."""
    import inspect

    from . import registry

    out = {}
    for m in recipe.measures:
        fn = registry.get(m["measure"]).fn
        inputs = {"model": model, "encoder": encoder, "data": split, "seed": seed}
        params = inspect.signature(fn).parameters
        out[m["measure"]] = fn(**{k: v for k, v in inputs.items() if k in params},
                               **{k: v for k, v in m.items() if k != "measure"})
    return out


def _seeded(recipe: Recipe, seed: int) -> tuple[chain.Step, ...]:
    """The steps with `seed` put into every budget table and `seed` option a step gives without one."""
    out = []
    for s in recipe.steps:
        opts = dict(s.options)
        for k, v in opts.items():
            if k in BUDGETS and isinstance(v, Mapping) and "seed" not in v:
                opts[k] = {**v, "seed": seed}
        if s.method != TRAIN and "seed" in options_of(s.method) and "seed" not in opts:
            opts["seed"] = seed
        out.append(dataclasses.replace(s, options=opts))
    return tuple(out)


def apply(recipe: Recipe, model: nn.Module, split: Split, encoder: Encoder, *, seed: int = 0, measure: bool = True,
          progress: bool | None = None, teachers=None,
          on_report: Callable[[dict], None] | None = None) -> Applied:
    """Validate `recipe`, run it on `model` (never modified) and measure after every step.

    With a `student` in the recipe the chain starts from a fresh model of that shape (initialised
    with `seed`) instead of `model`; `reports[0]` still measures `model`, the reference the steps are
    compared against. `seed` goes into every budget table and `seed` option the recipe leaves unset
    (a budget the recipe leaves out entirely keeps its method's default, seed 0 included) and seeds
    torch's global generator for the run (restored afterwards). Measurements use
    `evaluation.measure_all` on the test part, plus `val_accuracy` on the validation part when the split has
    one (settings are compared on it, never on the test images); `on_report` is called with each report as
    it comes."""
    from . import evaluation  # imported here: written alongside, and heavy

    start = model
    if recipe.student is not None:
        validate(recipe, encoder=encoder, teachers=teachers)  # the student's table, before building it
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        start = build_student(recipe.student, seed).to(device)
    validate(recipe, encoder=encoder, model=start, teachers=teachers)
    reports: list[dict] = []

    def report(r: dict) -> None:
        reports.append(r)
        if on_report is not None:
            on_report(r)

    def measured(m: nn.Module, enc: Encoder) -> dict:
        out = evaluation.measure_all(m, enc, split, "test")
        if getattr(split, "has_validation", False):  # what settings may be chosen on; the test images are not
            from .train import evaluate
            out["val_accuracy"] = evaluate(m, split.val_x, split.val_y, enc)
        return out

    if measure:
        report({"step": None, "method": "start", "label": "start", "seconds": 0.0, **measured(model, encoder)})
    clock = [time.perf_counter()]

    def after_step(i: int, step: chain.Step, result: Compressed) -> None:
        seconds = time.perf_counter() - clock[0]
        if measure:
            report({"step": i, "method": step.method, "label": step.label or step.method,
                    "seconds": round(seconds, 2), **measured(result.model, result.encoder)})
        clock[0] = time.perf_counter()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        compressed = chain.run(_seeded(recipe, seed), start, split, encoder, teachers=teachers,
                               after_step=after_step, progress=progress, seed=seed)
    measures = run_measures(recipe, compressed.model, compressed.encoder, split, seed)
    return Applied(compressed, reports, measures)
