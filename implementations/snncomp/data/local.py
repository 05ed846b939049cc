"""What every loader of a data set on the local disk shares: where the files are, the errors when they are
not there, subsampling, binning event streams into frames, and the identity of the files read.

The loaders (`nmnist`, `shd`, `dvs_gesture`, `images`) never download anything. Each reads the folder
`<root>/<FOLDER>/`, where `root` is the path passed in or, when none is, the environment variable
`SNNCOMP_DATA`; `<FOLDER>` is the name the data set's usual downloader gives it (Tonic's class name for the
event sets, torchvision's folder for the images), so a folder filled by either is read as it is. A missing
folder or file is a `MissingData` error (a `FileNotFoundError`) naming every file expected and where; a
file that is there but broken is a `ValueError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from .frames import bin_by_time
from .splits import Split

__all__ = ["ENV", "MissingData", "root_of", "folder_of", "require", "identity", "balanced", "event_frames", "to_split"]

ENV = "SNNCOMP_DATA"  # the folder holding one sub-folder per local data set


class MissingData(FileNotFoundError):
    """A local data set's folder or files are not where they are expected (the message lists them)."""


def root_of(root: str | Path | None, dataset: str) -> Path:
    """The data root: `root` when given, else `$SNNCOMP_DATA`; neither is a `MissingData` error."""
    if root is None:
        env = os.environ.get(ENV)
        if not env:
            raise MissingData(f"{dataset}: no data folder given; pass root=PATH (snncomp bench --data-root PATH) "
                              f"or set {ENV} to the folder that holds the data set's folder")
        root = env
    return Path(root).expanduser()


def folder_of(root: str | Path | None, dataset: str, folder: str, layout: str) -> Path:
    """`<root>/<folder>`, which must exist; `layout` (the files expected inside) goes into the error."""
    path = root_of(root, dataset) / folder
    if not path.is_dir():
        raise MissingData(f"{dataset}: no folder {path}; expected the layout\n{layout}\n(nothing is downloaded: "
                          f"copy or extract the files there, or point {ENV} / --data-root at their parent folder)")
    return path


def require(folder: Path, names: Iterable[str], dataset: str, layout: str) -> list[Path]:
    """The paths `folder/name` for every name, all of which must be files; the missing ones are listed."""
    paths = [folder / n for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise MissingData(f"{dataset}: missing {len(missing)} file(s) under {folder}: {', '.join(missing)}; "
                          f"expected the layout\n{layout}")
    return paths


def identity(paths: Iterable[Path]) -> str:
    """16 hex digits of a hash of every file's name, size and modification time (sorted by path): a data
    set whose files changed on disk is another data set for the caches that key on it."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        st = p.stat()
        h.update(f"{p.as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def balanced(labels: Sequence[int] | np.ndarray, limit: int | None) -> np.ndarray:
    """Indices (sorted) of at most `limit` samples taken class by class in turn (the first sample of every
    class, then the second, ...), in the order the data set lists them: a class-balanced subset that needs
    no random draw and reads only the files it keeps. `None` keeps everything."""
    y = np.asarray(labels)
    if limit is None or limit >= len(y):
        return np.arange(len(y))
    if not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    rank = np.zeros(len(y), dtype=np.int64)  # position of each sample inside its class
    for c in np.unique(y):
        idx = np.nonzero(y == c)[0]
        rank[idx] = np.arange(len(idx))
    order = np.lexsort((y, rank))  # rank first, then class
    return np.sort(order[:limit])


def event_frames(streams: Sequence[np.ndarray], T: int, sensor_size: tuple[int, int, int],
                 downsample: int = 1) -> np.ndarray:
    """Streams binned into `[N, T, P, H, W]` uint8 counts (saturated at 255): each stream over its own span
    `[t_first, t_last + 1)` cut into T equal windows (`frames.bin_by_time`), so every event lands in one bin;
    `downsample` > 1 sums `downsample` x `downsample` pixel blocks (H and W divided by it, rounded up)."""
    W, H, P = sensor_size
    if not isinstance(downsample, int) or downsample < 1:
        raise ValueError(f"downsample must be a positive integer, got {downsample!r}")
    w, h = -(-W // downsample), -(-H // downsample)
    out = np.zeros((len(streams), T, P, h, w), dtype=np.uint8)
    for i, ev in enumerate(streams):
        if not len(ev):
            continue
        if downsample > 1:
            ev = ev.copy()
            ev["x"] //= downsample
            if "y" in ev.dtype.names:
                ev["y"] //= downsample
        t0, t1 = int(ev["t"].min()), int(ev["t"].max()) + 1
        out[i] = np.minimum(bin_by_time(ev, T, (w, h, P), t0, t1), 255)
    return out


def to_split(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], name: str) -> Split:
    """A `Split` from numpy (inputs, labels) pairs: inputs kept in their dtype, labels as int64."""
    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a))

    return Split(t(train[0]), t(train[1].astype(np.int64)), t(test[0]), t(test[1].astype(np.int64)), name)
