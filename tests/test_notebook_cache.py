"""The executed-notebook cache key follows what a notebook reads: its text, the package modules it imports
(transitively, read with `ast` on a temporary package), the data files beside them and the project
folders they name; and the runner executes notebooks in parallel kernels over IPC, recording their times."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from snncomp.kb import notebooks as nbcache

PACKAGE = {
    "__init__.py": "",
    "registry.py": "def methods():\n    import importlib\n    importlib.import_module('snncomp').import_sections()\n",
    "a.py": "from . import b\n\ndef f():\n    from snncomp.lazy import g  # an import inside a function counts\n    return g\n",
    "b.py": "X = 1\n",
    "lazy.py": "def g():\n    return 2\n",
    "unrelated.py": "Y = 3\n",
    "asks.py": "from snncomp import registry\n\nNAMES = [m for m in registry.methods()]\n",
    "store.py": "from pathlib import Path\n\nSTORE = Path('benchmarks') / 'results' / 'board.jsonl'\n",
    "sec/__init__.py": "from .m import *  # noqa\n",
    "sec/m.py": "from ..b import X\n",
    "sec/table.toml": "k = 1\n",
    "kb/__init__.py": "",
    "kb/site.py": "Z = 4\n",
}
NOTEBOOKS = {
    "plain.py": "# %%\nfrom snncomp import a\nprint(a.f())\n",
    "section.py": "# %%\nimport snncomp.sec\n",
    "registry.py": "# %%\nfrom snncomp import asks\n",
    "results.py": "# %%\nfrom snncomp.store import STORE\n",
    "broken.py": "# %%\nfrom snncomp import (\n",
}


@pytest.fixture
def project(tmp_path) -> Path:
    for rel, text in PACKAGE.items():
        p = tmp_path / "implementations" / "snncomp" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for rel, text in NOTEBOOKS.items():
        p = tmp_path / "notebooks" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "board.jsonl").write_text("{}\n")
    (tmp_path / "benchmarks" / "script.py").write_text("print('a speed script, not data')\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# home\n")
    return tmp_path


def _deps(project: Path, nb: str) -> set[str]:
    return {p.relative_to(project).as_posix() for p in nbcache.dependencies(project / "notebooks" / nb, project)}


def _hashes(project: Path) -> dict[str, str]:
    return {nb: nbcache.source_hash(project / "notebooks" / nb, project) for nb in NOTEBOOKS}


def _edit(path: Path, extra: str = "\n# edited\n") -> None:
    path.write_text(path.read_text() + extra)


PKG = "implementations/snncomp"


def test_a_notebook_depends_on_the_modules_it_imports_transitively(project):
    assert _deps(project, "plain.py") == {"notebooks/plain.py", f"{PKG}/__init__.py", f"{PKG}/a.py", f"{PKG}/b.py",
                                          f"{PKG}/lazy.py"}
    # importing a subpackage runs its __init__, which imports m, which imports b relatively; data beside count
    assert _deps(project, "section.py") == {"notebooks/section.py", f"{PKG}/__init__.py", f"{PKG}/sec/__init__.py",
                                            f"{PKG}/sec/m.py", f"{PKG}/b.py", f"{PKG}/sec/table.toml"}


def test_asking_the_registry_depends_on_every_module_outside_the_knowledge_base(project):
    deps = _deps(project, "registry.py")
    modules = {f"{PKG}/{rel}" for rel in PACKAGE if not rel.startswith("kb/")}
    assert modules <= deps and not {d for d in deps if "/kb/" in d}


def test_a_named_project_folder_counts_as_data_but_its_scripts_do_not(project):
    deps = _deps(project, "results.py")
    assert "benchmarks/results/board.jsonl" in deps
    assert "benchmarks/script.py" not in deps and "docs/index.md" not in deps


def test_an_unparsable_notebook_depends_on_everything(project):
    deps = _deps(project, "broken.py")
    assert {f"{PKG}/{rel}" for rel in PACKAGE} <= deps
    assert {"benchmarks/results/board.jsonl", "docs/index.md"} <= deps


@pytest.mark.parametrize("edited, changed", [
    (f"{PKG}/b.py", {"plain.py", "section.py", "registry.py", "broken.py"}),
    (f"{PKG}/lazy.py", {"plain.py", "registry.py", "broken.py"}),
    (f"{PKG}/unrelated.py", {"registry.py", "broken.py"}),
    (f"{PKG}/kb/site.py", {"broken.py"}),
    (f"{PKG}/sec/table.toml", {"section.py", "registry.py", "broken.py"}),
    # store.py names the folder; asking the registry imports every module, store.py included
    ("benchmarks/results/board.jsonl", {"results.py", "registry.py", "broken.py"}),
    ("benchmarks/script.py", set()),
    ("notebooks/plain.py", {"plain.py"}),
])
def test_an_edit_changes_only_the_keys_of_the_notebooks_that_see_it(project, edited, changed):
    before = _hashes(project)
    _edit(project / edited)
    after = _hashes(project)
    assert {nb for nb in NOTEBOOKS if before[nb] != after[nb]} == changed


def test_a_new_module_changes_only_the_notebooks_that_import_it_or_ask_the_registry(project):
    before = _hashes(project)
    (project / PKG / "sec" / "new.py").write_text("W = 5\n")
    after = _hashes(project)
    assert {nb for nb in NOTEBOOKS if before[nb] != after[nb]} == {"registry.py", "broken.py"}


def test_cache_path_is_named_by_stem_and_key(project):
    nb = project / "notebooks" / "plain.py"
    path = nbcache.cache_path(nb, project)
    assert path.parent == project / nbcache.CACHE_DIR
    assert path.name == f"plain-{nbcache.source_hash(nb, project)}.ipynb" and len(path.stem.split("-")[1]) == 16


def test_longest_first_uses_recorded_times_then_size(project):
    folder = project / nbcache.CACHE_DIR
    folder.mkdir(parents=True)
    (folder / nbcache.SECONDS).write_text(json.dumps({"plain": 5.0, "section": 50.0}))
    nbs = [project / "notebooks" / n for n in ("plain.py", "section.py", "results.py")]
    order = [nb.name for nb, _ in nbcache.longest_first([(nb, nb) for nb in nbs], project)]
    assert order == ["results.py", "section.py", "plain.py"]  # never timed first, then the longest


def test_baselines_named_reads_literal_calls_of_the_cached_builder(tmp_path):
    nb = tmp_path / "nb.py"
    nb.write_text(textwrap.dedent("""\
        # %%
        from snncomp import baselines
        net, enc = baselines.trained("conv-direct4", seed=1)
        ann, _ = baselines.trained(name="conv-ann")
        split = baselines.split("digits-conv-direct4")
        rec = baselines.record("mlp-direct4", 2)
        other = baselines.trained(NAME)  # not a literal: not seen
        """))
    assert nbcache.baselines_named(nb) == {("conv-direct4", 1), ("conv-ann", 0), ("digits-conv-direct4", 0),
                                           ("mlp-direct4", 2)}


def test_on_a_cold_baseline_cache_the_shared_baselines_train_first_while_the_other_notebooks_run(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNCOMP_CACHE", str(tmp_path / "cache"))
    texts = {"big.py": 'baselines.trained("shared")\n' + "#\n" * 40,  # larger files count as longer
             "mid.py": 'baselines.trained("shared")\n' + "#\n" * 20,
             "own.py": 'baselines.trained("alone")\n' + "#\n" * 10,  # its baseline is needed by nobody else
             "free.py": "print(1)\n"}
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    items = [(tmp_path / n, tmp_path / n) for n in texts]
    assert [nb.name for nb, _ in nbcache.longest_first(items, tmp_path)] == ["big.py", "mid.py", "own.py", "free.py"]
    # "shared" is trained first, by one job; the notebooks that need it go after those that wait for nothing
    def names(queue):
        return [e.baselines if isinstance(e, nbcache.Train) else e[0].name for e in queue]

    assert names(nbcache.plan(items, tmp_path)) == [(("shared", 0),), "own.py", "free.py", "big.py", "mid.py"]
    (tmp_path / "more.py").write_text('baselines.trained("shared")\nbaselines.trained("second", 1)\n')
    (tmp_path / "again.py").write_text('baselines.trained("second", seed=1)\n')
    more = items + [(tmp_path / n, tmp_path / n) for n in ("more.py", "again.py")]
    # the most needed baseline first, the other shared one after the notebooks that need neither
    assert names(nbcache.plan(more, tmp_path)) == [(("shared", 0),), "own.py", "free.py", (("second", 1),),
                                                    "big.py", "mid.py", "more.py", "again.py"]
    (tmp_path / "cache" / "baselines").mkdir(parents=True)
    (tmp_path / "cache" / "baselines" / "shared-seed0-0123abcd.pt").write_bytes(b"")
    assert names(nbcache.plan(items, tmp_path)) == ["big.py", "mid.py", "own.py", "free.py"]


def test_a_failed_training_of_the_shared_baselines_is_reported_first(tmp_path):
    nb = tmp_path / "nb.py"
    nb.write_text("# %%\nprint(1)\n")
    with pytest.raises(nbcache.NotebookError, match=r"training the notebooks' baselines no-such-net:0 failed:\n"
                                                     r"(.|\n)*unknown baseline 'no-such-net'"):
        nbcache.execute_all([nbcache.Train((("no-such-net", 0),)), (nb, tmp_path / "nb-0.ipynb")], jobs=2)
    assert (tmp_path / "nb-0.ipynb").exists()  # the notebook itself ran


def test_default_jobs_reads_the_environment(monkeypatch):
    monkeypatch.setenv("SNNCOMP_NOTEBOOK_JOBS", "3")
    assert nbcache.default_jobs() == 3
    monkeypatch.setenv("SNNCOMP_NOTEBOOK_JOBS", "two")
    with pytest.raises(ValueError, match="SNNCOMP_NOTEBOOK_JOBS must be a positive integer, got 'two'"):
        nbcache.default_jobs()
    monkeypatch.delenv("SNNCOMP_NOTEBOOK_JOBS")
    assert nbcache.default_jobs() >= 1


def test_notebooks_run_in_parallel_kernels_over_ipc_and_a_failure_names_its_notebook(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the kernels run on one thread whatever the caller's setting
    good = tmp_path / "good.py"
    good.write_text(textwrap.dedent("""\
        # %%
        import os
        print("sum", 20 + 22, os.path.basename(os.getcwd()), "threads", os.environ.get("OMP_NUM_THREADS"))
        """))
    bad = tmp_path / "bad.py"
    bad.write_text("# %%\nraise RuntimeError('broken on purpose')\n")
    cache = tmp_path / "cache"
    started, done = [], []
    with pytest.raises(nbcache.NotebookError, match="notebook bad.py failed"):
        nbcache.execute_all([(good, cache / "good-0.ipynb"), (bad, cache / "bad-0.ipynb")], jobs=2,
                            on_start=lambda nb: started.append(nb.name),
                            on_done=lambda nb, run: done.append((nb.name, len(run.cells))))
    assert sorted(started) == ["bad.py", "good.py"] and done == [("good.py", 1)]
    run = nbcache.read(cache / "good-0.ipynb")  # the good run is stored even though the other failed
    assert any(f"sum 42 {tmp_path.name} threads 1" in out.get("text", "") for out in run.cells[0].outputs)
    assert not (cache / "bad-0.ipynb").exists()
    seconds = json.loads((cache / nbcache.SECONDS).read_text())
    assert set(seconds) == {"good"} and seconds["good"] > 0
    err = capfd.readouterr().err
    assert "without encryption" not in err  # the kernels talk over IPC, not TCP
