"""The cache of executed notebooks, shared by the site build and the test run.

A notebook's run is valid as long as the notebook, the package and the committed benchmark results
are unchanged, so its cache file is named by a hash of all three:
`.cache/notebooks/<stem>-<hash>.ipynb`. The MkDocs hook (`hooks/sitegen.py`) renders a cached run
when one exists and executes the notebook otherwise; the root `conftest.py` stores the run nbval
has just made under the same name, so a test session executes each notebook once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from snncomp.files import write_atomic

__all__ = ["CACHE_DIR", "source_hash", "cache_path", "read", "store"]

CACHE_DIR = Path(".cache") / "notebooks"


def source_hash(nb_path: Path, base: Path) -> str:
    """Hash of the notebook, every `.py` file of the package (subpackages included) and every
    committed benchmark result, relative to the project root `base`."""
    nb_path, base = Path(nb_path), Path(base)
    h = hashlib.sha256(nb_path.read_bytes())
    sources = sorted((base / "implementations" / "snncomp").rglob("*.py"))
    results = sorted(p for p in (base / "benchmarks" / "results").glob("*") if p.is_file())
    for p in sources + results:
        h.update(p.relative_to(base).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def cache_path(nb_path: Path, base: Path) -> Path:
    """Where the run of `nb_path` made against the current sources is (or would be) cached."""
    return Path(base) / CACHE_DIR / f"{Path(nb_path).stem}-{source_hash(nb_path, base)}.ipynb"


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
