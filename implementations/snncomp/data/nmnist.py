"""N-MNIST from local files [@orchard2015converting]: the `.bin` reader and the data set loader.

N-MNIST is MNIST recorded by an ATIS camera on a pan-tilt unit (three saccades, 34 x 34 pixels). Its files
are laid out as Tonic 1.6.0 extracts them [@lenz2021tonic], `NMNIST/Train/<digit>/<name>.bin` and
`NMNIST/Test/<digit>/<name>.bin`; nothing is downloaded. `load` bins every recording into frames
`[N, T, 2, 34, 34]` (uint8 counts, the layout of `synthetic.nmnist_like`, fed by `frames.Frames`) with the
official split: 60 000 training and 10 000 test recordings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import local
from .sensor import EVENT_DTYPE, SENSOR, EventSet
from .splits import Split

__all__ = ["FOLDER", "LAYOUT", "read_nmnist_file", "read_nmnist", "files", "load"]

FOLDER = "NMNIST"  # Tonic's folder name (tonic.datasets.NMNIST)
LAYOUT = "  NMNIST/Train/<digit 0-9>/<name>.bin\n  NMNIST/Test/<digit 0-9>/<name>.bin"


def read_nmnist_file(path: str | Path) -> np.ndarray:
    """One N-MNIST `.bin` recording as a Tonic structured array [@orchard2015converting].

    Records of 5 bytes: x, y, then polarity in bit 7 and a 23-bit timestamp in microseconds over the
    remaining 23 bits (big-endian); a record with y = 240 is a timestamp overflow that adds 2^13 us to
    every later event (as Tonic's reader treats it).
    """
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0:
        raise ValueError(f"{path}: empty file, no N-MNIST records")
    if raw.size % 5:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of 5-byte N-MNIST records")
    r = raw.reshape(-1, 5).astype(np.int64)
    overflow = r[:, 1] == 240
    t = ((r[:, 2] & 127) << 16 | r[:, 3] << 8 | r[:, 4]) + np.cumsum(overflow) * 2 ** 13
    keep = ~overflow
    ev = np.empty(int(keep.sum()), dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = r[keep, 0], r[keep, 1], t[keep], (r[keep, 2] >> 7) == 1
    return ev


def read_nmnist(folder: str | Path, duration_us: int | None = None) -> EventSet:
    """A real N-MNIST split from a local folder laid out as `folder/<digit>/<name>.bin` (no download).

    `duration_us` (default: the last timestamp rounded up to a multiple of 100 ms) is the recording
    window that binning by time divides into equal parts."""
    root = Path(folder)
    files = sorted(p for p in root.glob("*/*.bin") if p.parent.name.isdigit())
    if not files:
        raise FileNotFoundError(f"read_nmnist: no <digit>/<name>.bin files under {root}")
    streams = [read_nmnist_file(p) for p in files]
    for p, ev in zip(files, streams):
        if len(ev) and (ev["x"].max() >= SENSOR[0] or ev["y"].max() >= SENSOR[1]):
            raise ValueError(f"{p}: events outside the {SENSOR[0]} x {SENSOR[1]} sensor")
    cat = np.concatenate(streams)
    if duration_us is None:
        duration_us = (int(cat["t"].max(initial=0)) // 100_000 + 1) * 100_000
    if len(cat) and cat["t"].max() >= duration_us:
        raise ValueError(f"read_nmnist: timestamps up to {cat['t'].max()} us exceed duration_us={duration_us}")
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in streams])])
    labels = np.array([int(p.parent.name) for p in files])
    return EventSet(cat["x"], cat["y"], cat["t"], cat["p"], offsets, labels, duration_us, name="N-MNIST")


def _listing(folder: Path, part: str) -> list[Path]:
    """The `.bin` files of one part (`Train` or `Test`), sorted, each in a digit folder."""
    sub = folder / part
    found = sorted(p for p in sub.glob("*/*.bin") if p.parent.name.isdigit()) if sub.is_dir() else []
    if not found:
        raise local.MissingData(f"N-MNIST: no <digit>/<name>.bin files under {sub}; expected the layout\n{LAYOUT}")
    return found


def files(root: str | Path | None = None) -> list[Path]:
    """Every recording `load` reads (both parts), for the data set's identity (`local.identity`)."""
    folder = local.folder_of(root, "N-MNIST", FOLDER, LAYOUT)
    return _listing(folder, "Train") + _listing(folder, "Test")


def load(root: str | Path | None = None, T: int = 16, limit: int | None = None) -> Split:
    """N-MNIST from `<root>/NMNIST/` (root: the argument or `$SNNCOMP_DATA`) as a `Split` of frames
    `[N, T, 2, 34, 34]` (uint8), each recording cut into T equal windows of its own duration; `limit` keeps
    at most that many recordings of each part, class-balanced (`local.balanced`)."""
    folder = local.folder_of(root, "N-MNIST", FOLDER, LAYOUT)
    parts = []
    for part in ("Train", "Test"):
        paths = _listing(folder, part)
        labels = np.array([int(p.parent.name) for p in paths])
        keep = local.balanced(labels, limit)
        streams = []
        for i in keep:
            ev = read_nmnist_file(paths[i])
            if len(ev) and (ev["x"].max() >= SENSOR[0] or ev["y"].max() >= SENSOR[1]):
                raise ValueError(f"{paths[i]}: events outside the {SENSOR[0]} x {SENSOR[1]} sensor")
            streams.append(ev)
        parts.append((local.event_frames(streams, T, SENSOR), labels[keep]))
    return local.to_split(parts[0], parts[1], "nmnist")
