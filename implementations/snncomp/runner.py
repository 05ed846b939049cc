"""The runner: every measured number of the project comes from a run executed here (`execute`) and recorded
in a result store (`Store`, in `snncomp.store`; `Run` and `board` are in `snncomp.board`, all re-exported).

A **run** (`Run`) is a recipe applied to a trained baseline at a seed on a data set. `execute(runs, store)`
runs the runs not yet done and appends one row per run to a **store** (`Store`), a JSON-lines file:

* append-only, one row per line, each written with a single `os.write` of the whole line and flushed to
  disk (`fsync`), so a killed run leaves at most a torn last line, which the next `Store` open cuts away;
* resumable: a run whose key already has a row with status `"ok"` is skipped; a run that failed (status
  `"error"`, with its error message and the tail of its traceback) is retried by the next `execute`;
* one failing run never stops the others.

A row holds the run (`key`, `recipe`, `kind`, `baseline`, `data`, `seed`), its `status`, `error`,
`traceback`, `seconds` (wall time of the run in its worker, baseline training excluded: baselines are
trained, once, before the runs start), `steps` (the measurements `evaluation.measure_all` gave after
every step, the starting model first), the last step's measurements at top level, and the provenance
(`provenance()`: command, commit, date, machine, torch version, CPU capability, threads, device).

Executors: `"local"` runs in this process for `jobs=1` and in `jobs` worker processes (spawned, each with
`torch.set_num_threads(threads)`) otherwise; `"ray"` sends each run to a Ray cluster (the optional `ray`
extra; `RAY_ADDRESS` picks the cluster, none starts a local one). `device` is `"cpu"` or a CUDA device.

`board(...)` (in `snncomp.board`) lists the runs of the leaderboard (`snncomp bench`): every registered transform with its
default options as a one-step recipe, and every recipe under `recipes/`, on the shared baselines.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .board import QUICK_METHODS, SHARED_BASELINE, Run, board
from .specs import spec_board
from .store import Store

__all__ = ["Run", "Store", "provenance", "execute", "run_recipe", "resolve_device", "board", "spec_board", "DEFAULT_OUTPUT",
           "SHARED_BASELINE", "QUICK_METHODS", "TRACEBACK_LINES"]

TRACEBACK_LINES = 20  # lines of a failing run's traceback kept in its row
ROOT = Path(__file__).resolve().parents[2]


def _default_output() -> Path:
    from .files import cache_folder

    return cache_folder("runs") / "board.jsonl"


DEFAULT_OUTPUT = _default_output()  # never a committed file: the cache folder



def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def provenance(command: str | None = None, device: str = "cpu") -> dict:
    """Where and how a row was made: `command` (default: this process's command line), `commit` (`git
    rev-parse HEAD`, or None outside a checkout), `date` (UTC, ISO), `machine`, `torch`, `cpu_capability`
    (`torch.backends.cpu.get_cpu_capability()`: which kernels ran), `threads` (`torch.get_num_threads()`)
    and `device`."""
    import torch

    return {"command": command if command is not None else shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "commit": _commit(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {platform.system()} {platform.release()}, {os.cpu_count()} CPUs",
            "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "device": device}


def resolve_device(device: str) -> str:
    """`device` checked: `"cpu"`, or `"cuda"` / `"cuda:N"` when torch sees a CUDA device; anything else, or a
    GPU asked for where there is none, is a `ValueError` saying why."""
    import torch

    if device == "cpu":
        return device
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but torch {torch.__version__} sees no CUDA device "
                             f"(built with CUDA: {torch.version.cuda or 'no'}); use --device cpu")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} asked for, but torch sees {torch.cuda.device_count()} CUDA device(s)")
        return device
    raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def _split(run: Run):
    """The run's data set with the baselines' validation part carved out (`baselines.split`)."""
    from . import baselines

    return baselines.split(run.baseline, run.data)


def _to(split, device: str):
    import dataclasses

    import torch

    return dataclasses.replace(split, **{f.name: getattr(split, f.name).to(device) for f in dataclasses.fields(split)
                                         if isinstance(getattr(split, f.name), torch.Tensor)})


def run_recipe(run: Run, device: str = "cpu") -> dict:
    """The default run function: the trained baseline, `recipes.apply` with a measurement after every step,
    and for a baseline with an ANN of the same architecture (`baselines.Baseline.ann`) the last step
    compared with that ANN (`evaluation.compare_ann`). Returns `{"steps": [measurements...]}`. On a data set
    not drawn from the baseline's own images the baseline (and its ANN) is the one trained on that data set
    (`baselines.on_data`).

    On a CUDA device the model and the data tensors are moved there before the recipe runs; the
    measurements are the same code on that device."""
    from . import baselines, evaluation, recipes

    model, encoder = baselines.trained(run.baseline, run.seed, run.data)
    split = _split(run)
    if device != "cpu":
        model, split = model.to(device), _to(split, device)
    applied = recipes.apply(run.recipe, model, split, encoder, seed=run.seed, measure=True, progress=False)
    steps = [dict(r) for r in applied.reports]
    if applied.measures:  # the recipe's measures of the final model, beside its last measurement
        steps[-1]["measures"] = applied.measures
    ann = baselines.BASELINES[run.baseline].ann
    if ann and (baselines.BASELINES[ann].dataset == run.data or baselines.retrains(ann, run.data)):
        ann_model, ann_encoder = baselines.trained(ann, run.seed, run.data)
        if device != "cpu":
            ann_model = ann_model.to(device)
        steps[-1].update(evaluation.compare_ann(steps[-1], ann_model, ann_encoder, split))
        steps[-1]["ann_baseline"] = ann
    return {"steps": steps}


def _kind(recipe) -> str:
    one = len(recipe.steps) == 1 and recipe.steps[0].method == recipe.name and getattr(recipe, "source", None) is None
    return "method" if one else "recipe"


def _row(run: Run, status: str, seconds: float, result: dict | None, error: BaseException | None,
         device: str, command: str | None, cpu_seconds: float | None = None) -> dict:
    row = {"key": run.key, "recipe": run.recipe.name, "kind": _kind(run.recipe), "baseline": run.baseline,
           "data": run.data, "seed": run.seed, "status": status, "error": None, "traceback": None,
           "seconds": round(seconds, 3), "steps": []}
    if cpu_seconds is not None:
        # CPU time of this process over the run: well below seconds x threads, the run waited for the CPU
        # (other jobs shared the machine), and its seconds are not an idle machine's
        row["cpu_seconds"] = round(cpu_seconds, 3)
    if error is not None:
        row["error"] = f"{type(error).__name__}: {error}"
        tail = traceback.format_exception(type(error), error, error.__traceback__)
        row["traceback"] = "".join(tail).splitlines()[-TRACEBACK_LINES:]
    if result is not None:
        row["steps"] = result.get("steps", [])
        if row["steps"]:
            final = {k: v for k, v in row["steps"][-1].items() if k not in ("step", "method") and k not in row}
            row.update(final)
    row.update(provenance(command, device))
    return _clean(row)


def _clean(v):
    """`v` with every NaN or infinity replaced by None (a store row is strict JSON)."""
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def _execute_one(run_fn: Callable, run: Run, threads: int, device: str, command: str | None) -> dict:
    """Run one run in this process with `threads` torch threads and return its row (a failure is a row too)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        result = run_fn(run, device)
        return _row(run, "ok", time.perf_counter() - t0, result, None, device, command, time.process_time() - c0)
    except Exception as e:  # noqa: BLE001 - any failure of one run is recorded, the others go on
        return _row(run, "error", time.perf_counter() - t0, None, e, device, command, time.process_time() - c0)
    finally:
        torch.set_num_threads(before)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _prepare(runs: Sequence[Run], threads: int, show: bool, jobs: int = 1) -> None:
    """Train (or load) every baseline the runs start from, once, before the runs: parallel workers then
    only load them, and no run's seconds include a baseline's training. Trained with `threads` threads,
    as the workers run, so the cache key (which holds the thread count) is theirs; with `jobs` > 1, that
    many baselines train at once in worker processes (the cache's lock files keep two from training one)."""
    from . import baselines

    needed: dict[tuple, None] = {}
    for r in runs:  # (name, seed), or (name, seed, data) for a baseline trained on the run's data set
        needed[(r.baseline, r.seed, r.data) if baselines.retrains(r.baseline, r.data) else (r.baseline, r.seed)] = None
        ann = baselines.BASELINES[r.baseline].ann
        if ann:
            needed[(ann, r.seed, r.data) if baselines.retrains(ann, r.data) else (ann, r.seed)] = None
        for step in r.recipe.steps:  # teachers named by a baseline
            teacher = step.options.get("teacher")
            if isinstance(teacher, str) and teacher in baselines.BASELINES:
                needed[(teacher, r.seed)] = None
    if show:
        for name, seed, *on in needed:
            print(f"baseline {name}{''.join(f' on {d}' for d in on)} seed {seed}", file=sys.stderr, flush=True)
    if jobs > 1 and len(needed) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                 initargs=(threads,)) as pool:
            list(pool.map(_train_baseline, needed))
        return
    for key in needed:
        _train_baseline(key, threads)


def _train_baseline(name_seed: tuple, threads: int | None = None) -> None:
    import torch

    from . import baselines

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        baselines.trained(*name_seed)
    finally:
        torch.set_num_threads(before)


def _bar(total: int, show: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="runs", unit="run", disable=not show)


def execute(runs: Iterable[Run], store: Store | str | Path, *, jobs: int = 1, threads: int = 1, device: str = "cpu",
            executor: str = "local", progress: bool | None = None, run_fn: Callable[[Run, str], dict] | None = None,
            command: str | None = None, prepare: bool | None = None, redo: bool = False) -> list[dict]:
    """Run every run of `runs` whose key the store has not done, append one row per run to `store`, and
    return the rows of all `runs` (done earlier or now) in their order.

    `run_fn(run, device) -> {"steps": [...]}` does one run (default `run_recipe`); it must be a
    module-level function for worker processes and Ray. `prepare` trains the baselines first (default:
    when `run_fn` is the default). `progress`: a bar (default: when stderr is a terminal). `redo`: run
    every run again, even those done, appending new rows (the store reads the newest row of each key)."""
    if executor not in ("local", "ray"):
        raise ValueError(f"executor must be 'local' or 'ray', got {executor!r}")
    if jobs < 1 or threads < 1:
        raise ValueError(f"jobs and threads must be at least 1, got jobs={jobs}, threads={threads}")
    device = resolve_device(device)
    store = store if isinstance(store, Store) else Store(store)
    unique = list({r.key: r for r in runs}.values())
    done = set() if redo else store.done()  # redo: run again and append; the newest row of a key counts
    todo = [r for r in unique if r.key not in done]
    show = sys.stderr.isatty() if progress is None else progress
    fn = run_recipe if run_fn is None else run_fn
    if todo and (prepare if prepare is not None else run_fn is None):
        _prepare(todo, threads, show, jobs if executor == "local" else 1)
    with _bar(len(unique), show) as bar:
        bar.update(len(unique) - len(todo))
        if executor == "ray":
            _ray(todo, store, fn, threads, device, command, bar)
        elif jobs == 1:
            for r in todo:
                store.append(_execute_one(fn, r, threads, device, command))
                bar.update(1)
        else:
            _pool(todo, store, fn, jobs, threads, device, command, bar)
    latest = store.latest()
    return [latest[r.key] for r in unique if r.key in latest]


def _pool(todo, store, fn, jobs, threads, device, command, bar) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                               initargs=(threads,))
    try:
        futures = [pool.submit(_execute_one, fn, r, threads, device, command) for r in todo]
        for fut in as_completed(futures):
            store.append(fut.result())
            bar.update(1)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _ray(todo, store, fn, threads, device, command, bar) -> None:
    try:
        import ray
    except ImportError as e:
        raise RuntimeError("the ray executor needs Ray: pip install 'snncomp[ray]'") from e
    started = not ray.is_initialized()
    if started:
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, logging_level="ERROR",
                 log_to_driver=False)
    module = sys.modules.get(getattr(fn, "__module__", ""))
    if module is not None and module.__name__ != "__main__" and not module.__name__.startswith("snncomp"):
        # a run function outside the package (a script's, a test's) travels by value: the cluster's workers
        # cannot import its module
        from ray import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    try:
        gpus = 1 if device != "cpu" else 0
        remote = ray.remote(num_cpus=threads, num_gpus=gpus)(_execute_one)
        pending = {remote.remote(fn, r, threads, device, command): r for r in todo}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                pending.pop(ref)
                store.append(ray.get(ref))
                bar.update(1)
    finally:
        if started:
            ray.shutdown()
