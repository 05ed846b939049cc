"""The Spiking Heidelberg Digits (SHD) from local HDF5 files [@cramer2022heidelberg].

SHD holds spoken digits (0 to 9 in English and German, 20 classes) turned into spikes of 700 channels by a
model of the inner ear. Tonic 1.6.0 keeps its two files as `SHD/shd_train.h5` and `SHD/shd_test.h5`
[@lenz2021tonic]; each holds, per recording, `spikes/times` (seconds, float), `spikes/units` (channel index,
0 to 699) and `labels`. `load` bins every recording into frames `[N, T, 1, 1, 700]` (uint8 counts: one
polarity, one row, 700 channels, Tonic's `sensor_size` (700, 1, 1) in the layout of the event frames), with
the official split of the two files (about 10 000 recordings in all; the authors' pages give two
different counts per part, so none is assumed here). Reading HDF5 needs `h5py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import local
from .splits import Split

__all__ = ["FOLDER", "FILES", "LAYOUT", "CHANNELS", "read_shd", "files", "load"]

FOLDER = "SHD"  # Tonic's folder name (tonic.datasets.SHD)
FILES = ("shd_train.h5", "shd_test.h5")
LAYOUT = "  SHD/shd_train.h5\n  SHD/shd_test.h5\n(each with the datasets spikes/times, spikes/units and labels)"
CHANNELS = 700
DTYPE = np.dtype([("x", "<i2"), ("t", "<i8")])  # a channel and a time (us) per spike


def read_shd(path: str | Path, limit: int | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """The recordings of one SHD file: a list of spike arrays (fields `x`, the channel, and `t`, microseconds
    truncated to whole ones as Tonic reads them) and their labels; `limit` keeps a class-balanced subset (`local.balanced`). A file that is
    not HDF5, lacks one of the three datasets or holds channels outside 0-699 is a `ValueError` naming it."""
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is pinned in the requirements
        raise ImportError(f"{path}: reading SHD needs h5py (pip install h5py)") from e
    try:
        fh = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not a readable HDF5 file ({e})") from e
    with fh:
        missing = [k for k in ("spikes/times", "spikes/units", "labels") if k not in fh]
        if missing:
            raise ValueError(f"{path}: no dataset {', '.join(missing)}; an SHD file holds spikes/times, "
                             "spikes/units and labels")
        times, units, labels = fh["spikes/times"], fh["spikes/units"], np.asarray(fh["labels"][()])
        if not (len(times) == len(units) == len(labels)):
            raise ValueError(f"{path}: {len(times)} spike-time arrays, {len(units)} unit arrays and {len(labels)} "
                             "labels; they must be as many")
        keep = local.balanced(labels, limit)
        streams = []
        for i in keep:
            t, u = np.asarray(times[i]), np.asarray(units[i])
            if t.shape != u.shape:
                raise ValueError(f"{path}: recording {i} has {t.size} spike times but {u.size} units")
            if u.size and (u.min() < 0 or u.max() >= CHANNELS):
                raise ValueError(f"{path}: recording {i} has units outside 0-{CHANNELS - 1}")
            ev = np.empty(t.size, dtype=DTYPE)
            ev["x"], ev["t"] = u, (t * 1e6).astype(np.int64)  # seconds -> whole microseconds, as Tonic
            streams.append(ev[np.argsort(ev["t"], kind="stable")])
    return streams, labels[keep].astype(np.int64)


def files(root: str | Path | None = None) -> list[Path]:
    """The two files `load` reads, for the data set's identity (`local.identity`)."""
    return local.require(local.folder_of(root, "SHD", FOLDER, LAYOUT), FILES, "SHD", LAYOUT)


def load(root: str | Path | None = None, T: int = 16, limit: int | None = None) -> Split:
    """SHD from `<root>/SHD/` (root: the argument or `$SNNCOMP_DATA`) as a `Split` of frames
    `[N, T, 1, 1, 700]` (uint8), each recording cut into T equal windows of its own duration; `limit` keeps
    at most that many recordings of each part, class-balanced."""
    parts = []
    for path in files(root):
        streams, labels = read_shd(path, limit)
        parts.append((local.event_frames(streams, T, (CHANNELS, 1, 1)), labels))
    return local.to_split(parts[0], parts[1], "shd")
