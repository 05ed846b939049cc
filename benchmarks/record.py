"""Writing a benchmark's result file: provenance fields and an atomic, readable JSON write.

Every file under `benchmarks/results/` names the command that produced it, the date and the
machine, so the site can say where each number came from; `write` replaces the file in one step,
so an interrupted run never leaves a half-written result behind.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from collections.abc import Iterable
from pathlib import Path

from snncomp.files import write_atomic


def provenance(command: str, threads: str) -> dict:
    """`command`, today's `date` and a one-line `machine` description (`threads`: how work was run)."""
    return {"command": command, "date": dt.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {threads}"}


def write(path: str | Path, data: dict, indent: int = 2) -> None:
    """Write `data` as JSON to `path` atomically (temporary file, then rename), mode 0644."""
    write_atomic(path, json.dumps(data, indent=indent, default=str) + "\n")


def parser(doc: str, output: str | Path) -> argparse.ArgumentParser:
    """The options the run-based benchmarks share: `--quick` (seed 0 only), `--jobs` (worker processes,
    one thread each), `--only` (comma-separated run names) and `--output` (the result file); the first
    line of the script's docstring `doc` is the description."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="seed 0 only")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated run names")
    ap.add_argument("--output", default=str(output))
    return ap


def selected(runs: Iterable[str], only: str) -> list[str]:
    """The run names of `runs` that `--only` (comma-separated, empty for all) keeps, in `runs`' order;
    an `--only` that matches none exits with status 2 and lists the runs there are."""
    runs = list(runs)
    keep = [r for r in runs if not only or r in only.split(",")]
    if not keep:
        print(f"no run matches {only!r}; runs: {', '.join(runs)}", file=sys.stderr)
        raise SystemExit(2)
    return keep
