"""Writing a speed benchmark's result file (`neurons.py`, `event_generation.py`): provenance fields and an
atomic, readable JSON write. Method runs go through the one runner and its store instead (`snncomp bench`).

Every file under `benchmarks/results/` names the command that produced it, the date and the
machine, so the site can say where each number came from; `write` replaces the file in one step,
so an interrupted run never leaves a half-written result behind.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

from snncomp.files import write_atomic


def provenance(command: str, threads: str) -> dict:
    """`command`, today's `date` and a one-line `machine` description (`threads`: how work was run)."""
    return {"command": command, "date": dt.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {threads}"}


def write(path: str | Path, data: dict, indent: int = 2) -> None:
    """Write `data` as JSON to `path` atomically (temporary file, then rename), mode 0644."""
    write_atomic(path, json.dumps(data, indent=indent, default=str) + "\n")
