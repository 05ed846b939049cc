"""Let nbval run the jupytext percent notebooks in notebooks/*.py directly (it only collects .ipynb)."""

import jupytext
import pytest
from nbval import plugin


class JupytextNotebook(plugin.IPyNbFile):
    """An nbval notebook read from a jupytext `.py` file instead of an `.ipynb`."""

    def collect(self):
        read = plugin.nbformat.read
        plugin.nbformat.read = lambda path, as_version=4: jupytext.read(str(path))
        try:
            yield from super().collect()
        finally:
            plugin.nbformat.read = read


def pytest_collect_file(file_path, parent):
    opt = parent.config.option
    if (opt.nbval or opt.nbval_lax) and file_path.suffix == ".py" and file_path.parent.name == "notebooks":
        return JupytextNotebook.from_parent(parent, path=file_path)
    return None
