"""Checking a recipe before anything trains: `validate` (unknown methods and options, option values of the
wrong type or out of range, missing options, unknown baselines and teachers, an order of methods that cannot
work); `options_of` (the options a step of a method may set) is `snncomp.chain`'s.

`snncomp.recipes` re-exports both and describes what is checked.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence

from torch import nn

from . import baselines, chain, registry
from .chain import options_of
from .data.encoding import Encoder
from .recipe import _BUDGET_FIELDS, BUDGETS, TRAIN, Recipe, RecipeError, _closest, _student_problem
from .train import TrainConfig

__all__ = ["validate", "options_of"]

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
    _check_measures(recipe)
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


MEASURE_INPUTS = ("model", "encoder", "data", "seed")  # what `measure_inputs` fills in; never recipe options


def measure_options(name: str) -> dict[str, inspect.Parameter]:
    """The options a recipe may give the registered measure `name`: its parameters but the inputs."""
    return {n: p for n, p in inspect.signature(registry.get(name).fn).parameters.items()
            if n not in MEASURE_INPUTS and p.kind is not inspect.Parameter.VAR_KEYWORD}


def _check_measures(recipe: Recipe) -> None:
    src = recipe.source or "<recipe>"
    names = sorted(m.name for m in registry.methods() if m.kind == "measure")
    seen = set()
    for i, m in enumerate(recipe.measures):
        name = m["measure"]
        where = f"{src}: measure {i + 1} {name!r}"
        if name not in names:
            raise RecipeError(f"{where}: unknown measure{_closest(name, names)} (measures: {', '.join(names)})")
        if name in seen:
            raise RecipeError(f"{where}: measured twice; its report is stored under its name")
        seen.add(name)
        params = measure_options(name)
        for opt in m:
            if opt != "measure" and opt not in params:
                raise RecipeError(f"{where}: unknown option {opt!r}{_closest(opt, list(params))}")
        missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in m]
        if missing:
            raise RecipeError(f"{where}: missing option {missing[0]!r} (it has no default)")


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
