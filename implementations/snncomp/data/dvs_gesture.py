"""DVS128 Gesture from local files [@amir2017low]: 11 hand and arm gestures of 29 people under 3 lightings,
recorded by a 128 x 128 DVS camera.

Tonic 1.6.0 keeps the recordings, one gesture each, as NumPy files [@lenz2021tonic]:
`DVSGesture/ibmGestureTrain/<user>_<lighting>/<label>.npy` and the same under `ibmGestureTest/`, each an
array `[n, 4]` of events with columns x, y, polarity and time in milliseconds, the file name being the
class (0 to 10). `load` bins every recording into frames `[N, T, 2, H, W]` (uint8 counts, the layout of the
other event sets), with the official split into training and test recordings (by person). At the full
128 x 128 resolution the whole set takes 16 kB per time bin and recording, so `downsample` (default 4) sums
blocks of pixels: 32 x 32 frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import local
from .sensor import EVENT_DTYPE
from .splits import Split

__all__ = ["FOLDER", "PARTS", "LAYOUT", "SENSOR", "CLASSES", "read_gesture_file", "files", "load"]

FOLDER = "DVSGesture"  # Tonic's folder name (tonic.datasets.DVSGesture)
PARTS = ("ibmGestureTrain", "ibmGestureTest")
LAYOUT = ("  DVSGesture/ibmGestureTrain/<user>_<lighting>/<label 0-10>.npy\n"
          "  DVSGesture/ibmGestureTest/<user>_<lighting>/<label 0-10>.npy\n"
          "(each an array [n, 4]: x, y, polarity, time in ms)")
SENSOR = (128, 128, 2)  # width, height, polarities
CLASSES = 11


def read_gesture_file(path: str | Path) -> np.ndarray:
    """One recording as a Tonic structured array (`sensor.EVENT_DTYPE`, times in integer microseconds,
    sorted); a file that is not a NumPy array `[n, 4]` or holds events off the sensor is a `ValueError`."""
    try:
        raw = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npy array ({e})") from e
    if raw.ndim != 2 or raw.shape[1] != 4:
        raise ValueError(f"{path}: expected an array [n, 4] (x, y, polarity, time in ms), got shape {raw.shape}")
    x, y, p, t = raw.T
    if raw.size and (x.min() < 0 or x.max() >= SENSOR[0] or y.min() < 0 or y.max() >= SENSOR[1]
                     or not np.isin(p, (0, 1)).all()):
        raise ValueError(f"{path}: events outside the {SENSOR[0]} x {SENSOR[1]} sensor or polarities other than 0/1")
    ev = np.empty(len(raw), dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"], ev["t"] = x, y, p.astype(bool), (t * 1000).astype(np.int64)  # ms -> whole us, as Tonic
    return ev[np.argsort(ev["t"], kind="stable")]


def _listing(folder: Path, part: str) -> tuple[list[Path], np.ndarray]:
    """The recordings of one part, by folder then label, and their labels (the file names)."""
    sub = folder / part
    found = sorted((p for p in sub.glob("*_*/*.npy") if p.stem.isdigit()), key=lambda p: (p.parent.name, int(p.stem))) \
        if sub.is_dir() else []
    if not found:
        raise local.MissingData(f"DVS128 Gesture: no <user>_<lighting>/<label>.npy files under {sub}; "
                                f"expected the layout\n{LAYOUT}")
    labels = np.array([int(p.stem) for p in found])
    bad = [str(p) for p, c in zip(found, labels) if c >= CLASSES]
    if bad:
        raise ValueError(f"DVS128 Gesture: file names must be labels 0-{CLASSES - 1}: {', '.join(bad)}")
    return found, labels


def files(root: str | Path | None = None) -> list[Path]:
    """Every recording `load` reads (both parts), for the data set's identity (`local.identity`)."""
    folder = local.folder_of(root, "DVS128 Gesture", FOLDER, LAYOUT)
    return [p for part in PARTS for p in _listing(folder, part)[0]]


def load(root: str | Path | None = None, T: int = 16, limit: int | None = None, downsample: int = 4) -> Split:
    """DVS128 Gesture from `<root>/DVSGesture/` (root: the argument or `$SNNCOMP_DATA`) as a `Split` of
    frames `[N, T, 2, 128 / downsample, 128 / downsample]` (uint8), each recording cut into T equal windows of
    its own duration; `limit` keeps at most that many recordings of each part, class-balanced."""
    folder = local.folder_of(root, "DVS128 Gesture", FOLDER, LAYOUT)
    parts = []
    for part in PARTS:
        paths, labels = _listing(folder, part)
        keep = local.balanced(labels, limit)
        streams = [read_gesture_file(paths[i]) for i in keep]
        parts.append((local.event_frames(streams, T, SENSOR, downsample), labels[keep]))
    return local.to_split(parts[0], parts[1], "dvs-gesture")
