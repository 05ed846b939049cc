"""Run specifications: a section's benchmark as data, run by the one runner and rendered from the one store.

A **spec** is a TOML file `benchmarks/specs/<section>.toml` holding three kinds of tables:

```toml
[[run]]                          # one run per seed: a recipe on a trained baseline
name = "magnitude-90"
baseline = "conv-direct4"        # a snncomp.baselines name
data = "mnist1k"                 # optional: another data set than the baseline's own
seeds = [0, 1, 2]                # optional, default [0, 1, 2]
student = { build = "conv_snn", channels = [4, 8] }   # optional: start from a fresh model of this shape
steps = [                        # inline step tables, exactly the keys of a recipe's [[step]]
  { method = "magnitude", sparsity = 0.9, finetune = { epochs = 2, lr = 0.002 } },
]
# or, instead of steps: recipe = "recipes/prune-quantize.toml"

[[table]]                        # rendered from the store by snncomp.kb.spec_tables
name = "compact"
runs = ["magnitude-90", "rigl-90@1"]   # "RUN@N": the measurement after the N-th step (0: the start)
columns = ["accuracy", "drop", "sparsity"]   # names of `METRICS` (or "chip:<profile>")
caption = "one sentence"         # optional
reference = "alone"              # optional: a run to compare with, seed by seed ("gain", "spikes_vs_reference")

[[target]]                       # a goal the section page states, judged on the mean over seeds
text = "4-bit weights within 0.5 point"
run = "ptq-4"                    # or runs = [...]: the best of these runs
metric = "drop"
op = "<="                        # or ">="
bound = 0.5
```

Every run's recipe is named `<section>/<run name>`, so its store key never clashes with the leaderboard's
runs (`snncomp.board`). `load` reads a spec and checks it: a TOML error, an unknown key, an unknown method
or option (with `recipes.validate`, so the message names the step's line), an unknown table column and a
table or target naming an unknown run are each a `SpecError` starting with `<file>:<line>:`. A benchmark
part that is not a chain of registered methods (a threshold sweep, an encoder change without training, a
timing) is kept in the file as a comment starting `# not a recipe:` saying what it would need;
`Spec.not_recipes` lists those comments. `runs(spec)` gives the `board.Run`s; `snncomp bench --spec NAME`
executes them into the store.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .data.catalog import DATASETS
from .recipe import _closest

__all__ = ["SpecError", "RunSpec", "Table", "Target", "Spec", "load", "loads", "runs", "all_specs", "command", "spec_board",
           "METRICS", "REFERENCE_METRICS", "SPECS", "DEFAULT_SEEDS", "VIEWS"]

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "benchmarks" / "specs"
DEFAULT_SEEDS = (0, 1, 2)
STORE = "benchmarks/results/board.jsonl"
# the per-run numbers a table may show: what `snncomp.kb.leaderboard._metrics` computes from a store row
# (kept here because the ML code never imports the knowledge base; a test checks both lists agree)
METRICS = ("accuracy", "val_accuracy", "drop", "sparsity", "bits", "state_bits", "T", "spikes", "fewer_spikes", "synops",
           "fewer_synops", "dense_synops", "params", "e45", "e45_fp32", "memory", "footprint_kb", "smaller",
           "vs_ann_dense", "vs_ann_skip", "vs_ann_memory_w", "vs_ann_memory", "seconds")
REFERENCE_METRICS = ("gain", "spikes_vs_reference")  # only with a table's or target's `reference` run
_RUN_KEYS = ("name", "baseline", "data", "seeds", "student", "steps", "recipe", "description", "measure")
_TABLE_KEYS = ("name", "runs", "columns", "caption", "reference", "measure", "rows", "view")
VIEWS = ("energy-assumptions", "ranking")  # tables computed from the rows of fixed runs (see `snncomp.kb.spec_tables`)
_TARGET_KEYS = ("text", "run", "runs", "metric", "op", "bound", "reference")
_HEADER = re.compile(r"^\s*\[\[\s*(run|table|target)\s*\]\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")
_METHOD = re.compile(r"\bmethod\s*=")


class SpecError(ValueError):
    """A spec that cannot be read or cannot work; the message starts with `<file>:<line>:`."""


@dataclass(frozen=True)
class RunSpec:
    """One run of a spec: `recipe` (named `<section>/<name>`) on `baseline`, for each of `seeds`."""

    name: str
    baseline: str
    recipe: object  # a recipes.Recipe
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    data: str = ""
    line: int = 1


@dataclass(frozen=True)
class Table:
    """A table of runs (one row per run, columns from `METRICS`), or with `measure` a *sweep* table: one row
    per entry of the list or mapping `rows` of that measure's report in each run (an early-exit sweep over
    thresholds, per-layer sparsity), the columns being fields of those entries."""

    name: str
    runs: tuple[str, ...]
    columns: tuple[str, ...]
    caption: str = ""
    reference: str | None = None
    line: int = 1
    measure: str | None = None
    rows: str = "rows"
    view: str | None = None  # one of VIEWS: a table computed from its runs' rows in a fixed way


@dataclass(frozen=True)
class Target:
    text: str
    runs: tuple[str, ...]  # one run, or several of which the best counts
    metric: str
    op: str
    bound: float
    reference: str | None = None
    line: int = 1


@dataclass(frozen=True)
class Spec:
    section: str
    runs: tuple[RunSpec, ...]
    tables: tuple[Table, ...] = ()
    targets: tuple[Target, ...] = ()
    not_recipes: tuple[str, ...] = ()  # the `# not a recipe: ...` comments, each with its line
    source: str | None = field(default=None, compare=False)

    def run(self, name: str) -> RunSpec:
        for r in self.runs:
            if r.name == name:
                return r
        raise KeyError(name)

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"{self.source}: no table {name!r}; tables: {', '.join(t.name for t in self.tables)}")


def _scan(text: str) -> tuple[dict[str, list[int]], list[dict[str, int]], list[list[int]], list[str]]:
    """Lines of each [[run]]/[[table]]/[[target]] header, of each key in a block (in file order), of each step
    (a line with `method =`) in each run, and the `# not a recipe:` comments."""
    heads: dict[str, list[int]] = {"run": [], "table": [], "target": []}
    keys: list[dict[str, int]] = []
    steps: list[list[int]] = []
    notes: list[str] = []
    kind = None
    for n, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("# not a recipe:"):
            notes.append(f"line {n}: {stripped[len('# not a recipe:'):].strip()}")
            continue
        m = _HEADER.match(line)
        if m:
            kind = m.group(1)
            heads[kind].append(n)
            keys.append({})
            if kind == "run":
                steps.append([])
            continue
        if stripped.startswith("#") or not stripped:
            continue
        k = _KEY.match(line)
        if k and keys:
            keys[-1].setdefault(k.group(1), n)
        if kind == "run" and steps and _METHOD.search(line.split("#", 1)[0]):
            steps[-1].append(n)
    return heads, keys, steps, notes


def loads(text: str, source: str = "<spec>", section: str | None = None, *, check: bool = True) -> Spec:
    """A spec from TOML `text`; `section` defaults to the file's stem. `check`: validate every run's recipe
    (methods, options, order) with `recipes.validate`."""
    from . import baselines, recipes

    section = section or Path(source).stem
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise SpecError(f"{source}:{m.group(1) if m else 1}: TOML syntax error: {exc}") from None
    heads, keys, step_lines, notes = _scan(text)
    unknown = [k for k in d if k not in ("run", "table", "target", "section", "description")]
    if unknown:
        raise SpecError(f"{source}:1: unknown top-level key {unknown[0]!r}; a spec holds [[run]], [[table]] and "
                        "[[target]] tables")
    block = iter(keys)
    blocks = {kind: [] for kind in heads}
    order = sorted((line, kind) for kind, lines in heads.items() for line in lines)
    for (line, kind), k in zip(order, block):
        blocks[kind].append((line, k))

    def at(kind: str, i: int, key: str | None = None) -> str:
        line, k = blocks[kind][i] if i < len(blocks[kind]) else (1, {})
        return f"{source}:{k.get(key, line) if key else line}"

    def known_keys(kind: str, i: int, entry: Mapping, allowed: Sequence[str]) -> None:
        if not isinstance(entry, Mapping):
            raise SpecError(f"{at(kind, i)}: a [[{kind}]] must be a table")
        for key in entry:
            if key not in allowed:
                raise SpecError(f"{at(kind, i, key)}: unknown key {key!r} in [[{kind}]]{_closest(key, allowed)}")

    out_runs: list[RunSpec] = []
    for i, r in enumerate(d.get("run", [])):
        known_keys("run", i, r, _RUN_KEYS)
        name = r.get("name")
        if not isinstance(name, str) or not name or "@" in name or "/" in name:
            raise SpecError(f"{at('run', i, 'name')}: every run needs a 'name' (a string without '@' or '/')")
        if any(x.name == name for x in out_runs):
            raise SpecError(f"{at('run', i, 'name')}: run name {name!r} is used twice")
        out_runs.append(_run(r, name, section, source, at, i, step_lines[i] if i < len(step_lines) else [],
                             blocks["run"][i][1] if i < len(blocks["run"]) else {}, baselines, recipes, check))
    names = [r.name for r in out_runs]
    steps_of = {r.name: len(r.recipe.steps) for r in out_runs}

    def run_ref(ref, where: str) -> str:
        if not isinstance(ref, str):
            raise SpecError(f"{where}: a run reference must be a string, got {ref!r}")
        name, _, step = ref.partition("@")
        if name not in names:
            raise SpecError(f"{where}: unknown run {name!r}{_closest(name, names)}")
        if step and (not step.isdigit() or int(step) > steps_of[name]):
            raise SpecError(f"{where}: {ref!r}: after '@' give a step number from 0 to {steps_of[name]}")
        return ref

    tables: list[Table] = []
    for i, t in enumerate(d.get("table", [])):
        known_keys("table", i, t, _TABLE_KEYS)
        if not isinstance(t.get("name"), str) or not t["name"]:
            raise SpecError(f"{at('table', i)}: every table needs a 'name'")
        if any(x.name == t["name"] for x in tables):
            raise SpecError(f"{at('table', i, 'name')}: table name {t['name']!r} is used twice")
        if not isinstance(t.get("runs"), list) or not t["runs"]:
            raise SpecError(f"{at('table', i, 'runs')}: a table needs 'runs', a list of run names")
        ref = t.get("reference")
        if ref is not None:
            run_ref(ref, at("table", i, "reference"))
        view = t.get("view")
        if view is not None and view not in VIEWS:
            raise SpecError(f"{at('table', i, 'view')}: unknown view {view!r}; views: {', '.join(VIEWS)}")
        cols = t.get("columns", ["view"] if view else None)
        if not isinstance(cols, list) or not cols:
            raise SpecError(f"{at('table', i, 'columns')}: a table needs 'columns', a list of metric names")
        measure = t.get("measure")
        if measure is not None:
            _check_measure(measure, out_runs, [x.partition("@")[0] for x in t["runs"] if isinstance(x, str)],
                           at("table", i, "measure"))
            if not all(isinstance(c, str) for c in cols):
                raise SpecError(f"{at('table', i, 'columns')}: a sweep table's columns are field names (strings)")
        elif view is None or view == "ranking":
            for c in cols:
                _check_metric(c, ref, at("table", i, "columns"))
        elif len(t["runs"]) != 2:
            raise SpecError(f"{at('table', i, 'runs')}: the {view!r} view takes two runs: the SNN's and its ANN's")
        tables.append(Table(t["name"], tuple(run_ref(x, at("table", i, "runs")) for x in t["runs"]), tuple(cols),
                            str(t.get("caption", "")), ref, blocks["table"][i][0], measure, str(t.get("rows", "rows")),
                            view))
    targets: list[Target] = []
    for i, t in enumerate(d.get("target", [])):
        known_keys("target", i, t, _TARGET_KEYS)
        for key in ("text", "metric", "op", "bound"):
            if key not in t:
                raise SpecError(f"{at('target', i)}: a target needs {key!r}")
        refs = t.get("runs", [t["run"]] if "run" in t else None)
        if not refs or ("run" in t and "runs" in t):
            raise SpecError(f"{at('target', i)}: a target needs either 'run' or 'runs'")
        if t["op"] not in ("<=", ">="):
            raise SpecError(f"{at('target', i, 'op')}: op must be '<=' or '>=', got {t['op']!r}")
        if not isinstance(t["bound"], (int, float)) or isinstance(t["bound"], bool):
            raise SpecError(f"{at('target', i, 'bound')}: bound must be a number, got {t['bound']!r}")
        ref = t.get("reference")
        if ref is not None:
            run_ref(ref, at("target", i, "reference"))
        _check_metric(t["metric"], ref, at("target", i, "metric"))
        where = at("target", i, "runs" if "runs" in t else "run")
        targets.append(Target(str(t["text"]), tuple(run_ref(x, where) for x in refs), t["metric"], t["op"],
                              float(t["bound"]), ref, blocks["target"][i][0]))
    return Spec(section, tuple(out_runs), tuple(tables), tuple(targets), tuple(notes), source)


def _check_measure(measure, runs: Sequence[RunSpec], names: Sequence[str], where: str) -> None:
    """A sweep table's `measure` must be measured by every run it shows."""
    if not isinstance(measure, str):
        raise SpecError(f"{where}: 'measure' must be a measure name, got {measure!r}")
    for r in runs:
        if r.name in names and measure not in [m["measure"] for m in r.recipe.measures]:
            raise SpecError(f"{where}: run {r.name!r} does not measure {measure!r}; add "
                            f"measure = [{{ measure = \"{measure}\" }}] to it")


def _check_metric(c, reference, where: str) -> None:
    if isinstance(c, str) and c.startswith("chip:") and len(c) > 5:
        return
    if isinstance(c, str) and c.startswith("m:") and "." in c:  # a scalar field of a measure's report
        return
    if c in REFERENCE_METRICS:
        if reference is None:
            raise SpecError(f"{where}: column {c!r} compares with a reference run: give reference = \"<run>\"")
        return
    if c not in METRICS:
        raise SpecError(f"{where}: unknown column {c!r}{_closest(str(c), list(METRICS) + list(REFERENCE_METRICS))}")


def _run(r: Mapping, name: str, section: str, source: str, at, i: int, step_lines: list[int], keys: dict[str, int],
         baselines, recipes, check: bool) -> RunSpec:
    """One [[run]] as a `RunSpec` whose recipe carries the step lines of the spec file."""
    seeds = r.get("seeds", list(DEFAULT_SEEDS))
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                           for s in seeds):
        raise SpecError(f"{at('run', i, 'seeds')}: seeds must be a list of integers, got {seeds!r}")
    if ("steps" in r) == ("recipe" in r):
        raise SpecError(f"{at('run', i)}: run {name!r} needs either 'steps' (inline step tables) or "
                        "'recipe' (a recipes/*.toml path)")
    full = f"{section}/{name}"
    try:
        if "recipe" in r:
            path = ROOT / r["recipe"]
            base = recipes.load(path)
            if "student" in r:
                base = dataclasses.replace(base, student=dict(r["student"]))
            if "measure" in r:
                base = dataclasses.replace(base, measures=tuple(r["measure"]))
            recipe = dataclasses.replace(base, name=full)
        else:
            steps = r["steps"]
            if not isinstance(steps, list) or not steps or not all(isinstance(s, Mapping) for s in steps):
                raise SpecError(f"{at('run', i, 'steps')}: 'steps' must be a list of inline tables "
                                "such as { method = \"magnitude\", sparsity = 0.9 }")
            lines = step_lines if len(step_lines) == len(steps) else [keys.get("steps", 1)] * len(steps)
            d = {"name": full, "step": steps}
            for key in ("description", "student", "measure"):
                if key in r:
                    d[key] = r[key]
            recipe = recipes.from_dict(d, source=source, lines=lines)
            object.__setattr__(recipe, "_keys", [{k: lines[j] for k in s} for j, s in enumerate(steps)])
    except recipes.RecipeError as exc:
        raise SpecError(str(exc)) from None
    baseline = r.get("baseline", getattr(recipe, "baseline", None))
    if baseline not in baselines.BASELINES:
        raise SpecError(f"{at('run', i, 'baseline')}: unknown baseline {baseline!r}"
                        f"{_closest(str(baseline), list(baselines.BASELINES))}")
    data = r.get("data", getattr(recipe, "data", None) or baselines.BASELINES[baseline].dataset)
    if data not in DATASETS:
        raise SpecError(f"{at('run', i, 'data')}: unknown data set {data!r}"
                        f"{_closest(str(data), list(DATASETS))}")
    # the recipe names the baseline (its encoder is the chain's); its data only when it is the baseline's own
    own = data == baselines.BASELINES[baseline].dataset
    line = int(at("run", i).rsplit(":", 1)[1])
    keep = {"_keys": getattr(recipe, "_keys", None),
            "_top": getattr(recipe, "_top", None) if "recipe" in r else
            {k: keys.get(k, line) for k in ("baseline", "data", "student", "name")}}
    recipe = dataclasses.replace(recipe, baseline=baseline, data=data if own else None)
    for k, v in keep.items():
        if v is not None:
            object.__setattr__(recipe, k, v)
    if check:
        try:
            recipes.validate(recipe)
        except recipes.RecipeError as exc:
            raise SpecError(f"{exc} (run {name!r})") from None
    return RunSpec(name, baseline, recipe, tuple(seeds), data, line)


def load(path: str | Path, *, check: bool = True) -> Spec:
    """The spec in TOML file `path` (errors name `path` and the line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec: {exc.strerror or exc}") from None
    try:
        source = str(path.resolve().relative_to(ROOT))
    except ValueError:
        source = str(path)
    return loads(text, source=source, section=path.stem, check=check)


def all_specs(folder: str | Path | None = None, *, check: bool = True) -> dict[str, Spec]:
    """Every `benchmarks/specs/*.toml`, by section name."""
    folder = Path(folder) if folder is not None else SPECS
    return {p.stem: load(p, check=check) for p in sorted(folder.glob("*.toml"))}


def runs(spec: Spec, *, seeds: Sequence[int] | None = None, only: Sequence[str] | None = None) -> list:
    """The `board.Run`s of `spec`: each run at each of its seeds (or `seeds`), `only` the runs named
    (`name` or `section/name`; an unknown name is a `KeyError` listing the runs there are)."""
    from .board import Run

    chosen = list(spec.runs)
    if only:
        names = {r.name for r in spec.runs}
        wanted = {o.split("/", 1)[1] if o.startswith(spec.section + "/") else o for o in only}
        unknown = sorted(wanted - names)
        if unknown:
            raise KeyError(f"{spec.source}: no run named {', '.join(unknown)}; runs: {', '.join(sorted(names))}")
        chosen = [r for r in chosen if r.name in wanted]
    return [Run(r.recipe, r.baseline, s, r.data) for r in chosen for s in (seeds if seeds is not None else r.seeds)]


def command(section: str) -> str:
    """The command that fills the committed store with `section`'s runs."""
    return f"snncomp bench --spec {section} --output {STORE}"


def spec_board(names: Sequence[str], *, seeds: Sequence[int] | None = None, only: Sequence[str] | None = None,
               quick: bool = False) -> list:
    """The runs of the section specs `names` (`benchmarks/specs/<name>.toml`; `"all"`: every spec), each at
    its own seeds or at `seeds`. `only`: the runs named (`name` or `section/name`). `quick`: seed 0 and every
    explicit budget cut to one epoch. An unknown spec or run is a `KeyError` listing those there are; a
    malformed spec is a `SpecError` naming its line."""
    from .board import _quick_recipe

    every = {p.stem: p for p in sorted(SPECS.glob("*.toml"))}
    wanted = list(every) if "all" in names else list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in every]
    if unknown:
        raise KeyError(f"no spec named {', '.join(unknown)}; specs: {', '.join(every)}")
    chosen = {n: load(every[n]) for n in wanted}
    out: list = []
    names_found = set()
    for n, spec in chosen.items():
        mine = [o for o in (only or ()) if o in {r.name for r in spec.runs} or o.startswith(n + "/")]
        names_found.update(mine)
        if only and not mine:
            continue
        got = runs(spec, seeds=(0,) if quick else seeds, only=mine or None)
        if quick:
            got = [dataclasses.replace(r, recipe=_quick_recipe(r.recipe)) for r in got]
        out += got
    missing = [o for o in (only or ()) if o not in names_found]
    if missing:
        raise KeyError(f"no run named {', '.join(missing)} in the specs {', '.join(wanted)}")
    return out
