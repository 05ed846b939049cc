"""The result store: `Store`, an append-only JSON-lines file with one row per run.

Each row is written with a single `os.write` of the whole line and flushed to disk (`fsync`), so a killed
run leaves at most a torn last line, which the next `Store` open cuts away. `snncomp.runner` (which
re-exports `Store`) writes the rows and says what a row holds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["Store"]


class Store:
    """An append-only JSON-lines file of run rows (see the module docstring). Opening it cuts away a torn
    last line (a line without its newline, left by a process killed mid-write)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repaired = self._repair()

    def _repair(self) -> int:
        """Truncate a last line without `\\n`; return the bytes removed."""
        if not self.path.exists():
            return 0
        with open(self.path, "rb+") as fh:
            data = fh.read()
            if not data or data.endswith(b"\n"):
                return 0
            keep = data.rfind(b"\n") + 1
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
            return len(data) - keep

    def rows(self) -> list[dict]:
        """Every row, in the order written."""
        if not self.path.exists():
            return []
        out = []
        for i, line in enumerate(self.path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{self.path}:{i}: not a JSON row: {e}") from e
        return out

    def latest(self) -> dict[str, dict]:
        """The last row written for each key."""
        return {r["key"]: r for r in self.rows()}

    def done(self) -> set[str]:
        """Keys whose last row has status `"ok"`."""
        return {k for k, r in self.latest().items() if r.get("status") == "ok"}

    def append(self, row: dict) -> None:
        """Write `row` as one line, in one `os.write`, and flush it to disk."""
        line = (json.dumps(row, default=_json_default, allow_nan=False) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):  # pragma: no cover - a full disk
                raise OSError(f"{self.path}: wrote {written} of {len(line)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)


def _json_default(v):
    if hasattr(v, "item"):  # numpy / torch scalars
        return v.item()
    if isinstance(v, (tuple, set)):
        return list(v)
    return repr(v)
