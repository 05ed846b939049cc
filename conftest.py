"""Let nbval run the jupytext percent notebooks in notebooks/*.py directly (it only collects .ipynb), in
kernels with the build's environment (one torch thread), and keep the run: once every cell of a notebook
has passed, the executed notebook (the outputs nbval collected) is stored in the site's notebook cache
(`snncomp.kb.notebooks`), so the site build later in the same session renders it instead of executing it
again."""

import copy
from pathlib import Path

import jupytext
import pytest
from nbval import plugin

ROOT = Path(__file__).resolve().parent
CACHED = pytest.StashKey[dict]()  # notebook name -> cache file of its nbval run in this session


class JupytextNotebook(plugin.IPyNbFile):
    """An nbval notebook read from a jupytext `.py` file instead of an `.ipynb`."""

    def collect(self):
        from snncomp.kb import notebooks as nbcache  # imported here: a broken package fails notebooks only

        # hashed before any cell runs: the run belongs to the sources as they were when it started
        self.cache_target = nbcache.cache_path(self.path, ROOT)
        self.cells, self.passed = [], set()
        read = plugin.nbformat.read
        plugin.nbformat.read = lambda path, as_version=4: jupytext.read(str(path))
        try:
            for item in super().collect():
                self.cells.append(item)
                yield item
        finally:
            plugin.nbformat.read = read

    def setup(self):
        """Start the kernel with `KERNEL_ENV` (one torch thread), as the site build starts its kernels, so
        a notebook's outputs and baselines are the same whichever of the two ran it."""
        import os
        from unittest import mock

        from snncomp.kb import notebooks as nbcache

        with mock.patch.dict(os.environ, nbcache.KERNEL_ENV):  # the kernel inherits the environment at its start
            super().setup()

    def teardown(self):
        try:
            if self.cells and all(c.nodeid in self.passed for c in self.cells):
                self._cache_run()
        finally:
            super().teardown()

    def _cache_run(self):
        from snncomp.kb import notebooks as nbcache

        nb = copy.deepcopy(self.nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        for n, (cell, item) in enumerate(zip(code, self.cells, strict=True), 1):
            cell.execution_count = n
            cell.outputs = copy.deepcopy(item.test_outputs)
            for out in cell.outputs:
                if out.output_type == "execute_result":
                    out.execution_count = n
        nbcache.store(nb, self.cache_target)
        self.config.stash.setdefault(CACHED, {})[self.path.name] = self.cache_target


def pytest_collect_file(file_path, parent):
    opt = parent.config.option
    if (opt.nbval or opt.nbval_lax) and file_path.suffix == ".py" and file_path.parent.name == "notebooks":
        return JupytextNotebook.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if isinstance(item.parent, JupytextNotebook) and report.when == "call" and report.passed:
        item.parent.passed.add(item.nodeid)
    return report


@pytest.fixture
def nbval_cached(request) -> set:
    """Names (`02_neuron_units.py`) of the notebooks nbval ran and cached earlier in this session whose
    cache entry is still current (no source changed since)."""
    from snncomp.kb import notebooks as nbcache

    runs = request.config.stash.get(CACHED, {})
    return {name for name, path in runs.items() if path == nbcache.cache_path(ROOT / "notebooks" / name, ROOT)}
