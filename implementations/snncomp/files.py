"""Writing files so that an interrupted run never leaves a half-written one behind, and where cached
files live.

One writer serves the command line (exports), the benchmarks (result files) and the caches (trained
weights, event frames): it writes to a temporary file in the target's folder and renames it over the
target in one step, so readers see either the old file or the complete new one. `cache_folder(name)`
is the one place that decides where a cache lives.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["write_atomic", "cache_folder"]


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
