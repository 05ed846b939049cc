"""Recipes: an ordered list of registered methods with their options, kept as a small TOML file.

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
import difflib
import inspect
import math
import re
import time
import tomllib
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import baselines, chain, models, registry
from .compress import Compressed
from .data import Split
from .encoding import Encoder
from .train import TrainConfig

__all__ = ["RecipeError", "Recipe", "Applied", "load", "loads", "dumps", "from_dict", "to_dict", "validate",
           "apply", "builtin", "build_student", "STUDENT_BUILDERS", "TOP_LEVEL", "STEP_KEYS", "BUDGETS"]

TOP_LEVEL = ("name", "description", "baseline", "data", "student", "step")
STEP_KEYS = ("method", "label", "freeze")  # keys of a [[step]] table that are not options of the method
BUDGETS = ("train", "finetune", "dense")  # options that are training budgets (tables of TrainConfig fields)
TRAIN = "train"  # the built-in plain-training step of `snncomp.chain`
STUDENT_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "conv_snn": models.conv_snn, "mlp_snn": models.mlp_snn}
_BUDGET_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))
_SUPPLIED = {"model", "data", "encoder", "loss_terms", "hooks", "step"}  # given by the chain, never by a recipe
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_HEADER = re.compile(r"^\s*\[\[\s*step\s*\]\]")
_TABLE = re.compile(r"^\s*\[")


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
    source: str | None = field(default=None, compare=False)
    lines: tuple[int, ...] = field(default=(), compare=False)  # line of each step's [[step]] header

    def __post_init__(self) -> None:
        steps = tuple(_normal(s) if isinstance(s, chain.Step) else _step(s, f"step {i + 1}")
                      for i, s in enumerate(self.steps))
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "lines", tuple(self.lines))
        if self.student is not None:
            object.__setattr__(self, "student", _plain(dict(self.student), "student"))

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
    return d


def from_dict(d: Mapping, *, source: str | None = None, lines: Sequence[int] = ()) -> Recipe:
    """A recipe from plain data (what `to_dict` or `tomllib` gives)."""
    src = source or "<recipe>"
    unknown = [k for k in d if k not in TOP_LEVEL]
    if unknown:
        close = difflib.get_close_matches(unknown[0], TOP_LEVEL, n=3, cutoff=0.4)
        raise RecipeError(f"{src}:1: unknown top-level key {unknown[0]!r}"
                          + (f"; closest: {', '.join(close)}" if close else f"; known: {', '.join(TOP_LEVEL)}"))
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
    return Recipe(name=name, steps=tuple(steps), description=d.get("description", ""), baseline=d.get("baseline"),
                  data=d.get("data"), student=d.get("student"), source=source, lines=tuple(lines))


# ---------------------------------------------------------------------------------------------------
# TOML
# ---------------------------------------------------------------------------------------------------

def _scan(text: str) -> tuple[list[int], dict[str, int], list[dict[str, int]]]:
    """Lines (1-based) of each [[step]] header, of each top-level key, and of each key inside each step."""
    headers: list[int] = []
    top: dict[str, int] = {}
    keys: list[dict[str, int]] = []
    section = None  # None: top level; int: a step; "other": another table
    key = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]*\")\s*=")
    for n, line in enumerate(text.splitlines(), start=1):
        if _HEADER.match(line):
            headers.append(n)
            keys.append({})
            section = len(headers) - 1
            continue
        if _TABLE.match(line):
            section = "other"
            continue
        m = key.match(line)
        if m:
            k = m.group(1).strip('"')
            if section is None:
                top.setdefault(k, n)
            elif isinstance(section, int):
                keys[section].setdefault(k, n)
    return headers, top, keys


def loads(text: str, source: str = "<string>") -> Recipe:
    """A recipe from TOML text; a syntax error or a malformed recipe is a `RecipeError` naming the line."""
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise RecipeError(f"{source}:{m.group(1) if m else 1}: TOML syntax error: {exc}") from None
    headers, top, keys = _scan(text)
    unknown = [k for k in d if k not in TOP_LEVEL]
    if unknown:
        close = difflib.get_close_matches(unknown[0], TOP_LEVEL, n=3, cutoff=0.4)
        raise RecipeError(f"{source}:{top.get(unknown[0], 1)}: unknown top-level key {unknown[0]!r}"
                          + (f"; closest: {', '.join(close)}" if close else f"; known: {', '.join(TOP_LEVEL)}"))
    recipe = from_dict(d, source=source, lines=headers if len(headers) == len(d.get("step", [])) else ())
    object.__setattr__(recipe, "_keys", keys)
    object.__setattr__(recipe, "_top", top)
    return recipe


def load(path: str | Path) -> Recipe:
    """The recipe in TOML file `path` (errors name `path` and the line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read the recipe: {exc.strerror or exc}") from None
    return loads(text, source=str(path))


def _toml_key(k: str) -> str:
    return k if _BARE.match(k) else _toml_str(k)


def _toml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(v, where: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x, where) for x in v) + "]"
    if isinstance(v, Mapping):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(str(k))} = {_toml_value(x, where)}" for k, x in v.items()) + " }"
    if v is None:
        raise RecipeError(f"{where}: TOML has no null value; leave the option out to get its default")
    raise RecipeError(f"{where}: cannot write a {type(v).__name__} in TOML ({v!r}); use strings, numbers, "
                      "booleans, lists and tables")


def dumps(recipe: Recipe) -> str:
    """The recipe as TOML text (`loads(dumps(r)) == r`)."""
    d = to_dict(recipe)
    lines = []
    for key in ("name", "description", "baseline", "data", "student"):
        if key in d:
            lines.append(f"{key} = {_toml_value(d[key], key)}")
    for i, s in enumerate(d["step"]):
        lines += ["", "[[step]]"]
        for k, v in s.items():
            where = f"step {i + 1} {s['method']!r}: {k}"
            lines.append(f"{_toml_key(k)} = {_toml_value(v, where)}")
    return "\n".join(lines) + "\n"


def builtin() -> dict[str, Recipe]:
    """Every `recipes/*.toml` at the root of the source tree, by recipe name (empty when installed
    without the source tree)."""
    folder = Path(__file__).resolve().parents[2] / "recipes"
    out: dict[str, Recipe] = {}
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else ():
        r = load(path)
        if r.name in out:
            raise RecipeError(f"{path}:1: recipe name {r.name!r} is also used by {out[r.name].source}")
        out[r.name] = r
    return out


# ---------------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------------

def _closest(word: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(names), n=3, cutoff=0.4)
    return f"; closest: {', '.join(close)}" if close else (f"; known: {', '.join(sorted(names))}" if names else "")


def _hints(fn: Callable) -> dict[str, object]:
    """Evaluated annotations of `fn` (one by one: an annotation that cannot be evaluated is skipped)."""
    out: dict[str, object] = {}
    for name, p in inspect.signature(fn).parameters.items():
        ann = p.annotation
        if ann is inspect.Parameter.empty:
            continue
        if isinstance(ann, str):
            try:
                ann = eval(ann, dict(vars(typing)), dict(fn.__globals__))  # noqa: S307 - the package's own annotations
            except Exception:  # noqa: BLE001 - unknown name: no type check for this parameter
                continue
        out[name] = ann
    return out


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "").replace("collections.abc.", "")


def _matches(value, tp) -> bool:
    """Whether plain `value` (as read from TOML) fits type `tp`; unknown types accept anything."""
    if tp is typing.Any or tp is inspect.Parameter.empty:
        return True
    if tp is None or tp is type(None):
        return value is None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or (origin is None and type(tp).__name__ == "UnionType") or \
            type(tp).__name__ == "UnionType":
        return any(_matches(value, a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return value in args
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if tp is TrainConfig:
        return isinstance(value, (Mapping, TrainConfig))
    if origin is not None and origin in (list, tuple, Sequence, typing.Sequence) or tp in (list, tuple, Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        inner = [a for a in args if a is not Ellipsis]
        return not inner or all(any(_matches(v, a) for a in inner) for v in value)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            return False
        return len(args) != 2 or all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
    if origin is not None and getattr(origin, "__module__", "") == "collections.abc" and origin.__name__ == "Callable" \
            or tp is Callable:
        return callable(value)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def _range(name: str, value) -> str | None:
    """Why the value of a common option is out of range, or None."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "sparsity" and number and not 0.0 <= value < 1.0:
        return f"sparsity must lie in [0, 1), got {value!r}"
    if name.endswith("bits") and isinstance(value, int) and not isinstance(value, bool) and value < 1:
        return f"{name} must be at least 1, got {value!r}"
    if name == "temperature" and number and not value > 0:
        return f"temperature must be positive, got {value!r}"
    if name == "steps" and isinstance(value, list) and value:
        if any(not isinstance(t, int) or isinstance(t, bool) or t < 1 for t in value) or \
                any(b >= a for a, b in zip(value, value[1:])):
            return f"steps must be strictly decreasing positive integers, got {value!r}"
    return None


def _budget_problem(name: str, value) -> str | None:
    if isinstance(value, TrainConfig):
        return None
    if not isinstance(value, Mapping):
        return f"{name} must be a table of training settings such as {{ epochs = 2 }}, got {value!r}"
    bad = [k for k in value if k not in _BUDGET_FIELDS]
    if bad:
        return f"unknown training setting {bad[0]!r} in {name}{_closest(bad[0], _BUDGET_FIELDS)}"
    hints = typing.get_type_hints(TrainConfig)
    for k, v in value.items():
        if not _matches(v, hints[k]):
            return f"{name}.{k} must be {_type_name(hints[k])}, got {v!r}"
    try:
        TrainConfig(**value)
    except (TypeError, ValueError) as exc:
        return f"bad {name}: {exc}"
    return None


def options_of(method: str) -> dict[str, inspect.Parameter]:
    """The options a recipe step of `method` may set: the method's keyword parameters (less what the
    chain supplies), plus `weight` and `finetune` for an objective; `train` for the built-in step."""
    if method == TRAIN:
        return {TRAIN: inspect.Parameter(TRAIN, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=TrainConfig)}
    m = registry.get(method)
    params = {n: p for n, p in inspect.signature(m.fn).parameters.items()
              if n not in _SUPPLIED and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    if m.kind == "objective":
        params.setdefault("weight", inspect.Parameter("weight", inspect.Parameter.KEYWORD_ONLY, default=1.0,
                                                      annotation=float))
        params["finetune"] = inspect.Parameter("finetune", inspect.Parameter.KEYWORD_ONLY, default=None,
                                               annotation=TrainConfig)
    return params


def _option_line(recipe: Recipe, index: int, option: str) -> int | None:
    keys = getattr(recipe, "_keys", None)
    if keys and index < len(keys):
        return keys[index].get(option)
    return None


def validate(recipe: Recipe, *, encoder: Encoder | None = None, model: nn.Module | None = None,
             teachers=None) -> None:
    """Check `recipe` before anything trains; the first problem is a `RecipeError` naming the step and
    the file line. `encoder` (default: the baseline's) and `model` go to `chain.check`; `teachers` are
    teachers a caller passes to `chain.run` besides the `teacher` options (one for all the steps, or a
    mapping from step index (0-based), label or method name)."""
    src = recipe.source or "<recipe>"
    top = getattr(recipe, "_top", {})

    def at(key: str) -> str:
        return f"{src}:{top.get(key, 1)}"

    if recipe.baseline is not None and recipe.baseline not in baselines.BASELINES:
        raise RecipeError(f"{at('baseline')}: unknown baseline {recipe.baseline!r}"
                          f"{_closest(recipe.baseline, list(baselines.BASELINES))}")
    data_names = sorted({b.dataset for b in baselines.BASELINES.values()})
    if recipe.data is not None:
        if recipe.data not in data_names:
            raise RecipeError(f"{at('data')}: unknown data set {recipe.data!r}{_closest(recipe.data, data_names)}")
        if recipe.baseline is not None and baselines.BASELINES[recipe.baseline].dataset != recipe.data:
            raise RecipeError(f"{at('data')}: baseline {recipe.baseline!r} is trained on "
                              f"{baselines.BASELINES[recipe.baseline].dataset!r}, not {recipe.data!r}")
    if recipe.student is not None:
        problem = _student_problem(recipe.student)
        if problem:
            raise RecipeError(f"{at('student')}: {problem}")
    known = sorted([m.name for m in registry.methods() if m.kind in ("transform", "objective")] + [TRAIN])
    for i, s in enumerate(recipe.steps):
        head = f"{recipe.where(i)}: step {i + 1} {s.method!r}"

        def where(option: str | None = None, i=i, s=s) -> str:
            line = _option_line(recipe, i, option) if option else None
            return (f"{src}:{line}" if line else recipe.where(i)) + f": step {i + 1} {s.method!r}"

        if s.method not in known:
            kind = ""
            try:
                kind = registry.get(s.method).kind
            except registry.UnknownMethodError:
                pass
            if kind == "measure":
                raise RecipeError(f"{where('method')}: {s.method!r} is a measure, not a transform or objective")
            raise RecipeError(f"{where('method')}: unknown method {s.method!r}{_closest(s.method, known)}")
        params = options_of(s.method)
        for opt, value in s.options.items():
            if opt not in params:
                raise RecipeError(f"{where(opt)}: unknown option {opt!r}{_closest(opt, list(params))}")
            if opt in BUDGETS or params[opt].annotation in (TrainConfig, "TrainConfig | None"):
                problem = _budget_problem(opt, value)
                if problem:
                    raise RecipeError(f"{where(opt)}: {problem}")
                continue
            hint = _hints(registry.get(s.method).fn).get(opt) if s.method != TRAIN else None
            if hint is None and opt == "weight":
                hint = float
            if hint is None and params[opt].default not in (inspect.Parameter.empty, None):
                d = params[opt].default
                hint = float if isinstance(d, float) else type(d) if isinstance(d, (bool, int, str)) else None
            if hint is not None and not _matches(value, hint):
                raise RecipeError(f"{where(opt)}: bad value for {opt!r}: expected {_type_name(hint)}, "
                                  f"got {type(value).__name__} {value!r}")
            problem = _range(opt, value)
            if problem:
                raise RecipeError(f"{where(opt)}: {problem}")
        if s.method != TRAIN:
            method = registry.get(s.method)
            given = _has_teacher(teachers, i, s)
            if "teacher" in method.needs and "teacher" not in s.options and not given:
                names = ", ".join(n for n in baselines.BASELINES if "ann" in n)
                raise RecipeError(f"{head}: missing teacher: {s.method!r} distils from a teacher; give "
                                  f"teacher = \"<baseline name>\" (e.g. one of {names})")
            teacher = s.options.get("teacher")
            if isinstance(teacher, str) and teacher not in baselines.BASELINES:
                raise RecipeError(f"{where('teacher')}: unknown teacher baseline {teacher!r}"
                                  f"{_closest(teacher, list(baselines.BASELINES))}")
            missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in s.options
                       and not (n == "teacher" and given)]
            if missing:
                raise RecipeError(f"{head}: missing option {missing[0]!r} (it has no default)")
        if s.freeze is not None and not isinstance(s.freeze, tuple):
            raise RecipeError(f"{where('freeze')}: 'freeze' must be a list of names")
    if encoder is None and recipe.baseline is not None:
        encoder = baselines.BASELINES[recipe.baseline].encoder
    _check_time_steps(recipe, getattr(encoder, "T", None))
    try:
        chain.check(recipe.steps, encoder=encoder, model=model)
    except chain.ChainError as exc:
        later = exc.later if exc.later is not None else 0
        msg = f"{recipe.where(later)}: step {later + 1} {recipe.steps[later].method!r}: "
        if exc.earlier is not None:
            msg += (f"cannot follow step {exc.earlier + 1} {recipe.steps[exc.earlier].method!r}"
                    f" ({recipe.where(exc.earlier)}): ")
        raise RecipeError(msg + exc.reason) from None


def _check_time_steps(recipe: Recipe, T: int | None) -> None:
    """Follow the encoder's `T` along the steps (while it is known) and refuse a `timestep-reduction`
    whose `steps` do not start below it."""
    src = recipe.source or "<recipe>"
    for i, s in enumerate(recipe.steps):
        if s.method == "timestep-reduction":
            steps = s.options.get("steps")
            if T is not None and steps and steps[0] >= T:
                line = _option_line(recipe, i, "steps")
                raise RecipeError(f"{f'{src}:{line}' if line else recipe.where(i)}: step {i + 1} {s.method!r}: "
                                  f"steps must start below the encoder's T = {T} at this point, got {steps!r}")
            T = steps[-1] if steps else 1
        elif s.method != TRAIN and registry.get(s.method).kind == "transform" and \
                any(c.partition("=")[0] in ("T", "encoder", "architecture") for c in registry.get(s.method).changes):
            T = None  # another code or network: its T is known only once the step has run


def _has_teacher(teachers, index: int, step: chain.Step) -> bool:
    """Whether `teachers` (as `chain.run` takes it: one teacher for every step, or a mapping from step
    index, label or method name) supplies step `index`'s teacher."""
    if teachers is None:
        return False
    if isinstance(teachers, Mapping):
        return any(k in teachers for k in (index, step.label, step.method) if k != "")
    return True


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


# ---------------------------------------------------------------------------------------------------
# applying a recipe
# ---------------------------------------------------------------------------------------------------

@dataclass
class Applied:
    """What `apply` hands back: the chain's result and one measurement per stage (`reports[0]` is the
    model passed in, then one report per step, each tagged with `step` (0-based), `method`, `label`
    and the step's `seconds`)."""

    compressed: Compressed
    reports: list[dict] = field(default_factory=list)


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
    `evaluation.measure_all` on the test part; `on_report` is called with each report as it comes."""
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

    if measure:
        report({"step": None, "method": "start", "label": "start", "seconds": 0.0,
                **evaluation.measure_all(model, encoder, split, "test")})
    clock = [time.perf_counter()]

    def after_step(i: int, step: chain.Step, result: Compressed) -> None:
        seconds = time.perf_counter() - clock[0]
        if measure:
            report({"step": i, "method": step.method, "label": step.label or step.method,
                    "seconds": round(seconds, 2), **evaluation.measure_all(result.model, result.encoder, split, "test")})
        clock[0] = time.perf_counter()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        compressed = chain.run(_seeded(recipe, seed), start, split, encoder, teachers=teachers,
                               after_step=after_step, progress=progress)
    return Applied(compressed, reports)
