"""Writing files so that an interrupted run never leaves a half-written one behind, and where cached
files live.

One writer serves the command line (exports), the benchmarks (result files) and the caches (trained
weights, event frames): it writes to a temporary file in the target's folder and renames it over the
target in one step, so readers see either the old file or the complete new one. `cache_folder(name)`
is the one place that decides where a cache lives; `parsed(path, parse)` keeps what a reader made of a
file until the file changes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["write_atomic", "cache_folder", "parsed"]


def write_atomic(path: str | Path, content: str | bytes | Callable[[IO[bytes]], None], mode: int = 0o644) -> Path:
    """Write `content` to `path` atomically and return the path.

    `content` is text (written as UTF-8), bytes, or a callable that writes into the binary file
    handle it is given (for `torch.save`, say). Missing parent folders are created. On any error
    the temporary file is removed and the previous file, if any, is left as it was.
    """
    out = Path(path)
    parent = out.parent if str(out.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{out.name}-")
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(content):
                content(fh)
            else:
                fh.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.chmod(tmp, mode)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def cache_folder(name: str) -> Path:
    """The cache folder `name` (e.g. "baselines", "events"): `$SNNCOMP_CACHE/<name>` when that variable
    is set, else `.cache/<name>` at the root of the source tree (an editable install), else
    `~/.cache/snncomp/<name>`. Not created here; writers create it on first use."""
    if os.environ.get("SNNCOMP_CACHE"):
        return Path(os.environ["SNNCOMP_CACHE"]) / name
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").exists():
        return root / ".cache" / name
    return Path.home() / ".cache" / "snncomp" / name


_PARSED: dict[tuple[str, Path], tuple[tuple[int, int], object]] = {}


def parsed(path: str | Path, parse: Callable[[Path], object]):
    """`parse(path)`, kept while the file's modification time and size stay the same (a long-lived process
    such as `mkdocs serve` reads the same files at every rebuild). The result is shared between calls:
    callers hand out copies when theirs may be changed. `parse` is a named function (it keys the memo)."""
    path = Path(path).resolve()
    st = path.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    key = (f"{parse.__module__}.{parse.__qualname__}", path)
    hit = _PARSED.get(key)
    if hit is None or hit[0] != stamp:
        hit = _PARSED[key] = (stamp, parse(path))
    return hit[1]
