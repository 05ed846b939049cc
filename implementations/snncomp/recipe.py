"""The recipe itself: `Recipe` (an ordered list of chain steps and where they start), its plain-data form
(`to_dict`, `from_dict`), `RecipeError`, and the fresh *student* a recipe may start from (`build_student`).

`snncomp.recipes` re-exports all of it and describes the TOML form; `snncomp.recipe_toml` reads and
writes that form, `snncomp.recipe_checks` checks a recipe before anything trains.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from torch import nn

from . import chain, models
from .chain import BUDGETS  # options that are training budgets (tables of TrainConfig fields)
from .train import TrainConfig

__all__ = ["RecipeError", "Recipe", "from_dict", "to_dict", "build_student", "STUDENT_BUILDERS", "TOP_LEVEL",
           "STEP_KEYS", "BUDGETS", "TRAIN"]

TOP_LEVEL = ("name", "description", "baseline", "data", "student", "step", "measure")
STEP_KEYS = ("method", "label", "freeze")  # keys of a [[step]] table that are not options of the method
TRAIN = "train"  # the built-in plain-training step of `snncomp.chain`
STUDENT_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "conv_snn": models.conv_snn, "mlp_snn": models.mlp_snn}
_BUDGET_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


class RecipeError(ValueError):
    """A recipe that cannot be read or cannot work; the message starts with `<file>:<line>:`."""


# ---------------------------------------------------------------------------------------------------
# the recipe and its plain-data form
# ---------------------------------------------------------------------------------------------------

def _plain(value, where: str):
    """`value` as TOML-able plain data: tuples become lists, budgets given as `TrainConfig` become
    tables of the fields that differ from the defaults."""
    if isinstance(value, TrainConfig):
        default = TrainConfig()
        return {f: getattr(value, f) for f in _BUDGET_FIELDS if getattr(value, f) != getattr(default, f)}
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, where) for k, v in value.items()}
    return value


def _step(d: Mapping, where: str) -> chain.Step:
    freeze = d.get("freeze")
    if freeze is not None:
        if isinstance(freeze, str):
            freeze = (freeze,)
        if not isinstance(freeze, (list, tuple)) or not all(isinstance(f, str) for f in freeze):
            raise RecipeError(f"{where}: 'freeze' must be a list of names, got {freeze!r}")
        freeze = tuple(freeze)
    method = d.get("method")
    if not isinstance(method, str) or not method:
        raise RecipeError(f"{where}: every step needs a 'method' (a registered method name or 'train')")
    label = d.get("label", "")
    if not isinstance(label, str):
        raise RecipeError(f"{where}: 'label' must be a string, got {label!r}")
    options = d.get("options")
    if options is None:
        options = {k: v for k, v in d.items() if k not in STEP_KEYS}
    return chain.Step(method=method, options=_plain(dict(options), where), freeze=freeze, label=label)


def _normal(s: chain.Step) -> chain.Step:
    freeze = None if s.freeze is None else tuple(s.freeze)
    return chain.Step(method=s.method, options=_plain(dict(s.options or {}), s.method), freeze=freeze,
                      label=s.label or "")


@dataclass(frozen=True)
class Recipe:
    """An ordered list of steps and where they start. `source` and `lines` say where it was read
    from (they do not take part in `==`: a recipe read back from its own `dumps` is equal to it)."""

    name: str
    steps: tuple[chain.Step, ...]
    description: str = ""
    baseline: str | None = None
    data: str | None = None
    student: dict | None = None  # {"build": "conv_snn", **kwargs}: start from a fresh model of this shape
    # registered measures of the final model, each {"measure": name, **options}; their reports go beside the
    # last step's measurement (`recipes.apply`), e.g. an early-exit sweep over thresholds or per-layer sparsity
    measures: tuple[dict, ...] = ()
    source: str | None = field(default=None, compare=False)
    lines: tuple[int, ...] = field(default=(), compare=False)  # line of each step's [[step]] header

    def __post_init__(self) -> None:
        steps = tuple(_normal(s) if isinstance(s, chain.Step) else _step(s, f"step {i + 1}")
                      for i, s in enumerate(self.steps))
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "lines", tuple(self.lines))
        if self.student is not None:
            object.__setattr__(self, "student", _plain(dict(self.student), "student"))
        object.__setattr__(self, "measures", tuple(_plain(dict(m), "measure") for m in self.measures))

    def where(self, index: int | None = None) -> str:
        """`<file>:<line>` of step `index` (0-based), or of the file when `index` is None."""
        src = self.source or "<recipe>"
        if index is not None and index < len(self.lines):
            return f"{src}:{self.lines[index]}"
        return f"{src}:1" if index is None else src


def to_dict(recipe: Recipe) -> dict:
    """The recipe as plain data (the TOML structure: top-level keys and a `step` list of tables)."""
    d: dict = {"name": recipe.name}
    for key in ("description", "baseline", "data", "student"):
        value = getattr(recipe, key)
        if value not in (None, ""):
            d[key] = _plain(value, key)
    steps = []
    for s in recipe.steps:
        t: dict = {"method": s.method}
        if s.label:
            t["label"] = s.label
        if s.freeze is not None:
            t["freeze"] = list(s.freeze)
        clash = [k for k in s.options if k in STEP_KEYS]
        if clash:
            t["options"] = _plain(s.options, s.method)  # keeps an option that shares a step key's name
        else:
            t.update(_plain(s.options, s.method))
        steps.append(t)
    d["step"] = steps
    if recipe.measures:
        d["measure"] = [dict(m) for m in recipe.measures]
    return d


def from_dict(d: Mapping, *, source: str | None = None, lines: Sequence[int] = ()) -> Recipe:
    """A recipe from plain data (what `to_dict` or `tomllib` gives)."""
    src = source or "<recipe>"
    unknown = [k for k in d if k not in TOP_LEVEL]
    if unknown:
        raise RecipeError(f"{src}:1: unknown top-level key {unknown[0]!r}{_closest(unknown[0], TOP_LEVEL)}")
    name = d.get("name")
    if not isinstance(name, str) or not name:
        raise RecipeError(f"{src}:1: a recipe needs a 'name' (a non-empty string)")
    for key in ("description", "baseline", "data"):
        if key in d and not isinstance(d[key], str):
            raise RecipeError(f"{src}:1: {key!r} must be a string, got {d[key]!r}")
    if "student" in d and not isinstance(d["student"], Mapping):
        raise RecipeError(f"{src}:1: 'student' must be a table such as {{ build = \"conv_snn\", channels = [8, 16] }}")
    raw = d.get("step", [])
    if not isinstance(raw, list) or not raw:
        raise RecipeError(f"{src}:1: a recipe needs at least one [[step]] table")
    steps = []
    for i, s in enumerate(raw):
        line = lines[i] if i < len(lines) else 1
        if not isinstance(s, Mapping):
            raise RecipeError(f"{src}:{line}: step {i + 1}: a step must be a table, got {s!r}")
        steps.append(_step(s, f"{src}:{line}: step {i + 1}"))
    measures = d.get("measure", [])
    if not isinstance(measures, list) or not all(isinstance(m, Mapping) and isinstance(m.get("measure"), str)
                                                 for m in measures):
        raise RecipeError(f"{src}:1: 'measure' must be a list of tables such as "
                          "{ measure = \"sparsity-report\" } (a registered measure and its options)")
    return Recipe(name=name, steps=tuple(steps), description=d.get("description", ""), baseline=d.get("baseline"),
                  data=d.get("data"), student=d.get("student"), measures=tuple(measures), source=source,
                  lines=tuple(lines))



# ---------------------------------------------------------------------------------------------------
# the student
# ---------------------------------------------------------------------------------------------------

def _closest(word: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(names), n=3, cutoff=0.4)
    return f"; closest: {', '.join(close)}" if close else (f"; known: {', '.join(sorted(names))}" if names else "")



def _student_problem(student: Mapping) -> str | None:
    build = student.get("build")
    if build not in STUDENT_BUILDERS:
        return f"student 'build' must be one of {', '.join(STUDENT_BUILDERS)}, got {build!r}"
    sig = inspect.signature(STUDENT_BUILDERS[build]).parameters
    for k in student:
        if k == "build":
            continue
        if k not in sig or k == "seed":
            return f"unknown student option {k!r} for {build}{_closest(k, [p for p in sig if p != 'seed'])}"
    return None


def build_student(student: Mapping, seed: int = 0) -> nn.Module:
    """A fresh (untrained) model of the shape `student` describes: `{"build": "conv_snn", **kwargs}`;
    lists become tuples."""
    problem = _student_problem(student)
    if problem:
        raise RecipeError(problem)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in student.items() if k != "build"}
    return STUDENT_BUILDERS[student["build"]](seed=seed, **kwargs)
