"""The cache of executed notebooks, shared by the site build and the test run, and the parallel runner.

A notebook's run is valid as long as the notebook and what it reads are unchanged, so its cache file
is named by a hash of them: `.cache/notebooks/<stem>-<hash>.ipynb`. What a notebook reads
(`dependencies`):

* the notebook's own text;
* the source of every module of the package it imports, transitively within the package, found by
  reading `import` statements with `ast` (module level and inside functions; a `from pkg import name`
  counts `pkg` and, when it is a module, `pkg.name`; importing a module runs its parent packages'
  `__init__`, so those count too);
* when one of those modules (or the notebook) imports dynamically (`importlib.import_module`,
  `import_sections`, `pkgutil.iter_modules`) or asks the registry (`registry.methods`, `.get`,
  `.declared`), which imports every section, every module of the package outside `kb`;
* the data files beside those modules (`energy/chips.toml`), and every non-Python file under a
  top-level project folder that one of those sources names in a string literal (`"benchmarks"`,
  `"recipes/prune-quantize.toml"`): the result store, the specs, the recipes.

A notebook that cannot be parsed depends on the whole package and every such folder. A change to one
module therefore runs again only the notebooks that can see it. The MkDocs hook (`hooks/sitegen.py`)
runs the notebooks whose cache entry is missing in parallel, one single-threaded kernel per core
(`execute_all`; on a cold cache the baselines several of them share are trained first, `plan`), at the
start of the build and renders cached runs; the root `conftest.py` stores the run nbval has just
made under the same name, so a test session executes each notebook once.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from snncomp.files import cache_folder, write_atomic

__all__ = ["CACHE_DIR", "PACKAGE", "KERNEL_ENV", "dependencies", "source_hash", "cache_path", "read", "store",
           "execute", "execute_all", "longest_first", "plan", "Train", "prepare", "baselines_named", "default_jobs",
           "NotebookError"]

CACHE_DIR = Path(".cache") / "notebooks"
PACKAGE = Path("implementations") / "snncomp"  # relative to the project root
_ROOT_PACKAGE = "snncomp"
_NOT_DATA = {"implementations", "notebooks"}  # top-level folders never counted as data folders
_DYNAMIC_CALLS = {"import_module", "import_sections", "iter_modules", "walk_packages"}
_REGISTRY_LOOKUPS = {"methods", "get", "declared"}
_PATHLIKE = re.compile(r"^[\w.-]+(?:/[\w.-]+)*/?$")
# the two modules that import every section on request (`import_sections`, the registry's lookups): their
# own dynamic imports do not count; the calls that trigger them (`registry.methods()`, ...) do
_LOADERS = {_ROOT_PACKAGE, f"{_ROOT_PACKAGE}.registry"}
SECONDS = "seconds.json"  # in the cache folder: each notebook's last run time, to start the longest first


# ----------------------------------------------------------------------------- static import graph


class _Facts:
    """What one source file imports (absolute names, unresolved), whether it imports dynamically, and
    the path-like string literals it holds."""

    __slots__ = ("imports", "dynamic", "strings")

    def __init__(self, imports: list[tuple[str, tuple[str, ...]]], dynamic: bool, strings: set[str]):
        self.imports, self.dynamic, self.strings = imports, dynamic, strings


_FACTS: dict[tuple[str, int, int], _Facts | None] = {}  # (path, mtime, size) -> facts (None: unparsable)


def _facts(path: Path, module: str, is_package: bool) -> _Facts | None:
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _FACTS:
        try:
            with warnings.catch_warnings():  # an invalid escape in a docstring is the module's own business
                warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
                tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError):
            _FACTS[key] = None
        else:
            _FACTS[key] = _read_facts(tree, module, is_package)
    return _FACTS[key]


def _read_facts(tree: ast.AST, module: str, is_package: bool) -> _Facts:
    here = module.split(".") if is_package else module.split(".")[:-1]  # the package relative imports start from
    imports: list[tuple[str, tuple[str, ...]]] = []
    dynamic, strings = False, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [(a.name, ()) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            imports.append((name, tuple(a.name for a in node.names)))
        elif isinstance(node, ast.Call):
            f = node.func
            called = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if called in _DYNAMIC_CALLS or (called in _REGISTRY_LOOKUPS and isinstance(f, ast.Attribute)
                                            and isinstance(f.value, ast.Name) and f.value.id == "registry"):
                dynamic = True
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _PATHLIKE.match(node.value):
            strings.add(node.value)
    return _Facts(imports, dynamic and module not in _LOADERS, strings)


def _modules(package_dir: Path) -> dict[str, tuple[Path, bool]]:
    """Every module of the package in `package_dir`: dotted name -> (file, is a package)."""
    out = {}
    for p in sorted(package_dir.rglob("*.py")):
        if "__pycache__" in p.parts:
            continue
        parts = list(p.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (p, is_package)
    return out


def _with_parents(name: str, modules: dict) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules]


def dependencies(nb_path: Path, base: Path) -> list[Path]:
    """Every file the executed notebook `nb_path` depends on (see the module docstring), the notebook
    first, then sorted; `base` is the project root holding `implementations/snncomp`."""
    nb_path, base = Path(nb_path).resolve(), Path(base).resolve()
    modules = _modules(base / PACKAGE)
    every_section = {m for m in modules if m.split(".")[1:2] != ["kb"]}
    nb = _facts(nb_path, "__notebook__", False)
    seen: set[str] = set()
    strings: set[str] = set()
    if nb is None:  # cannot read its imports: everything
        seen, every_folder = set(modules), True
    else:
        every_folder = False
        todo: list[str] = []
        pending = [nb]
        strings |= nb.strings
        while pending:
            facts = pending.pop()
            if facts.dynamic:
                todo += sorted(every_section)
            for name, names in facts.imports:
                if name.split(".")[0] != _ROOT_PACKAGE:
                    continue
                todo += _with_parents(name, modules)
                todo += [f"{name}.{n}" for n in names if f"{name}.{n}" in modules]
            while todo:
                m = todo.pop()
                if m in seen:
                    continue
                seen.add(m)
                path, is_package = modules[m]
                f = _facts(path, m, is_package)
                if f is None:  # an unparsable module: everything
                    seen, every_folder = set(modules), True
                    pending, todo = [], []
                    break
                strings |= f.strings
                pending.append(f)
    files = {modules[m][0] for m in seen}
    for folder in {modules[m][0].parent for m in seen}:  # data files beside the modules
        files |= {p for p in folder.iterdir() if p.is_file() and p.suffix not in (".py", ".pyc")}
    folders = {s.split("/")[0] for s in strings} if not every_folder else {p.name for p in base.iterdir()}
    for name in sorted(folders - _NOT_DATA):
        folder = base / name
        if name.startswith(".") or not folder.is_dir():
            continue
        files |= {p for p in folder.rglob("*") if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts
                  and not any(part.startswith(".") for part in p.relative_to(base).parts)}
    return [nb_path] + sorted(files - {nb_path})


def source_hash(nb_path: Path, base: Path) -> str:
    """Hash of the notebook and every file it depends on (`dependencies`), relative to the project root `base`."""
    nb_path, base = Path(nb_path).resolve(), Path(base).resolve()
    h = hashlib.sha256()
    for p in dependencies(nb_path, base):
        rel = p.relative_to(base).as_posix() if p.is_relative_to(base) else p.name
        h.update(rel.encode() + b"\0")
        data = p.read_bytes()
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()[:16]


def cache_path(nb_path: Path, base: Path) -> Path:
    """Where the run of `nb_path` made against the current sources is (or would be) cached."""
    return Path(base) / CACHE_DIR / f"{Path(nb_path).stem}-{source_hash(nb_path, base)}.ipynb"


# ----------------------------------------------------------------------------- cache files


def read(path: Path):
    """The cached executed notebook at `path`, or None when there is none."""
    import nbformat

    return nbformat.read(str(path), as_version=4) if Path(path).exists() else None


def store(nb, path: Path) -> Path:
    """Write the executed notebook `nb` to the cache file `path` atomically and drop the notebook's
    older runs (cached under other hashes)."""
    import nbformat

    path = Path(path)
    stem = path.stem.rsplit("-", 1)[0]
    write_atomic(path, nbformat.writes(nb))
    for old in path.parent.glob(f"{stem}-*.ipynb"):
        if old != path and old.stem.rsplit("-", 1)[0] == stem:
            old.unlink(missing_ok=True)
    return path


# ----------------------------------------------------------------------------- execution


def default_jobs() -> int:
    """Kernels to run at once: `SNNCOMP_NOTEBOOK_JOBS` when set, else the cores this process may use."""
    env = os.environ.get("SNNCOMP_NOTEBOOK_JOBS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"SNNCOMP_NOTEBOOK_JOBS must be a positive integer, got {env!r}")
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def longest_first(items: Iterable[tuple[Path, Path]], base: Path) -> list[tuple[Path, Path]]:
    """`(notebook, cache target)` pairs ordered by their last recorded run time, longest first (a
    notebook never timed first, then larger files first), so that parallel runs end close together."""
    seconds = _seconds(Path(base) / CACHE_DIR)
    return sorted(items, key=lambda it: (-seconds.get(it[0].stem, float("inf")), -it[0].stat().st_size, it[0].name))


_BASELINE_CALLS = {"trained", "record", "split"}  # `baselines.<call>(name, seed)`: the cached builder


def baselines_named(nb_path: Path) -> set[tuple[str, int]]:
    """The `(name, seed)` baselines the notebook asks the cached builder for with literal arguments
    (`baselines.trained("conv-direct4", seed=0)`; `split` counts as seed 0). Others are not seen, which only
    costs the scheduler a guess (`plan`)."""
    try:
        tree = ast.parse(Path(nb_path).read_bytes())
    except (SyntaxError, ValueError):
        return set()
    out = set()
    for node in ast.walk(tree):
        f = getattr(node, "func", None)
        if not (isinstance(node, ast.Call) and isinstance(f, ast.Attribute) and f.attr in _BASELINE_CALLS
                and isinstance(f.value, ast.Name) and f.value.id == "baselines"):
            continue
        given = {k.arg: k.value for k in node.keywords} | dict(zip(("name", "seed"), node.args))
        name, seed = given.get("name"), given.get("seed", ast.Constant(0))
        if (isinstance(name, ast.Constant) and isinstance(name.value, str) and isinstance(seed, ast.Constant)
                and isinstance(seed.value, int)):
            out.add((name.value, 0 if f.attr == "split" else seed.value))
    return out


def _baseline_cached(name: str, seed: int) -> bool:
    """Whether some weights of this baseline are cached (any key: a stale one only misleads the order)."""
    return any(cache_folder("baselines").glob(f"{name}-seed{seed}-*.pt"))


@dataclass(frozen=True)
class Train:
    """An entry of a run queue (`plan`, `execute_all`): train these `(name, seed)` baselines (`prepare`)."""

    baselines: tuple[tuple[str, int], ...]


def plan(items: Iterable[tuple[Path, Path]], base: Path) -> list:
    """The queue to run `(notebook, cache target)` pairs in: `longest_first`, except on a cold baseline cache.
    There the baseline most notebooks share is trained first (a `Train` entry) while the other kernels run
    the notebooks that wait for none of the shared baselines; the other shared baselines train next, then
    the notebooks that need them. Without this, every kernel but one sat blocked on the builder's lock
    (`baselines.trained`) while one notebook trained them."""
    ordered = longest_first(items, base)
    missing = {nb: {b for b in baselines_named(nb) if not _baseline_cached(*b)} for nb, _ in ordered}
    counts = Counter(b for need in missing.values() for b in need)
    shared = sorted((b for b, n in counts.items() if n > 1), key=lambda b: (-counts[b], b))  # most needed first
    if not shared:
        return ordered
    free = [it for it in ordered if not missing[it[0]] & set(shared)]
    later = [Train(tuple(shared[1:]))] if len(shared) > 1 else []
    return [Train(tuple(shared[:1])), *free, *later, *(it for it in ordered if it not in free)]


def prepare(baselines: Iterable[tuple[str, int]]) -> None:
    """Train (or load) `baselines` into the cache in a separate process (`snncomp baselines`, one thread, as
    the kernels); a failure raises `NotebookError` with the end of its output."""
    import subprocess
    import sys

    names = [f"{name}:{seed}" for name, seed in baselines]
    if not names:
        return
    cmd = [sys.executable, "-m", "snncomp.kb.cli", "baselines", *names]
    done = subprocess.run(cmd, env={**os.environ, **KERNEL_ENV}, capture_output=True, text=True, check=False)
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
        raise NotebookError(f"training the notebooks' baselines {', '.join(names)} failed:\n{tail}")


def _seconds(folder: Path) -> dict[str, float]:
    import json

    try:
        data = json.loads((folder / SECONDS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))} if isinstance(data, dict) else {}


_SECONDS_LOCK = threading.Lock()


def _record_seconds(folder: Path, stem: str, seconds: float) -> None:
    import json

    with _SECONDS_LOCK:
        data = _seconds(folder)
        data[stem] = round(seconds, 1)
        write_atomic(folder / SECONDS, json.dumps(data, indent=1, sort_keys=True) + "\n")


# Every notebook kernel runs torch on one thread, in the build and under nbval (`conftest.py`): its outputs
# do not depend on the machine's core count or on who ran it, its baselines are the benchmark's (the cache
# key holds the thread count; `snncomp bench` runs one thread per run), and two kernels share 2 cores without
# oversubscribing them (torch's OpenMP threads spin while they wait: two kernels of two threads on 2 cores
# took a cold build's notebooks 414 s, against 175 s with one thread each, back to back on this machine).
KERNEL_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def execute(nb_path: Path, target: Path, timeout: int = 900):
    """Run the jupytext notebook `nb_path` in a fresh kernel (its folder as working directory, `KERNEL_ENV`
    added to its environment), store the executed notebook at `target` and return it. The kernel talks
    over local IPC sockets in a private temporary folder (no TCP port, and so no warning about unencrypted
    TCP)."""
    import jupytext
    from nbclient import NotebookClient
    from traitlets.config import Config

    t0 = time.perf_counter()
    nb = jupytext.read(nb_path)
    env = {**os.environ, **KERNEL_ENV}
    with tempfile.TemporaryDirectory(prefix="snn-kernel-") as sockets:
        config = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "k")}})
        NotebookClient(nb, kernel_name="python3", timeout=timeout, config=config,
                       resources={"metadata": {"path": str(Path(nb_path).parent)}}).execute(env=env)
    store(nb, target)
    _record_seconds(Path(target).parent, Path(nb_path).stem, time.perf_counter() - t0)
    return nb


def execute_all(queue: Iterable, jobs: int | None = None, on_start: Callable[[Path], None] | None = None, *,
                on_done: Callable[[Path, object], None] | None = None) -> dict[Path, object]:
    """Run the `queue` in its order, `jobs` at a time (default `default_jobs()`): each entry a `(notebook,
    cache target)` pair, run in its own kernel (`execute`), or a `Train` entry (`prepare`); order them
    with `plan`. `on_done(notebook, executed)` is called in the worker thread as each notebook ends.
    Return notebook -> executed notebook. The first failure is raised after the other runs end, naming its
    notebook, or the baselines when their training failed (the notebooks that need them fail by it)."""
    queue = list(queue)
    if not queue:
        return {}
    jobs = max(1, min(jobs or default_jobs(), len(queue)))

    def run(item):
        if on_start:
            on_start(item[0])
        nb = execute(*item)
        if on_done:
            on_done(item[0], nb)
        return nb

    out, failed = {}, []
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="snncomp-notebook") as pool:
        futures = [(pool.submit(prepare, e.baselines), None) if isinstance(e, Train) else (pool.submit(run, e), e[0])
                   for e in queue]
        for fut, nb_path in futures:
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001 - reported below with the notebook's name
                failed.append((nb_path, exc))
            else:
                if nb_path is not None:
                    out[nb_path] = result
    if failed:
        nb_path, exc = min(failed, key=lambda f: f[0] is not None)  # a failed training first
        raise NotebookError(f"notebook {nb_path.name} failed: {exc}" if nb_path else str(exc)) from exc
    return out


class NotebookError(RuntimeError):
    """A notebook whose run failed; the message names it."""
