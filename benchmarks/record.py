"""Writing a benchmark's result file: provenance fields and an atomic, readable JSON write.

Every file under `benchmarks/results/` names the command that produced it, the date and the
machine, so the site can say where each number came from; `write` replaces the file in one step,
so an interrupted run never leaves a half-written result behind.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import tempfile
from pathlib import Path


def provenance(command: str, threads: str) -> dict:
    """`command`, today's `date` and a one-line `machine` description (`threads`: how work was run)."""
    return {"command": command, "date": dt.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {threads}"}


def write(path: str | Path, data: dict, indent: int = 2) -> None:
    """Write `data` as JSON to `path` atomically (temporary file, then rename), mode 0644."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}-")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=indent, default=str)
        fh.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
