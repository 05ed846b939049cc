"""N-MNIST from local files [@orchard2015converting]: the `.bin` reader and the data set loader.

N-MNIST is MNIST recorded by an ATIS camera on a pan-tilt unit (three saccades, 34 x 34 pixels). Its files
are laid out as Tonic 1.6.0 extracts them [@lenz2021tonic], `NMNIST/Train/<digit>/<name>.bin` and
`NMNIST/Test/<digit>/<name>.bin`; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .sensor import EVENT_DTYPE, SENSOR, EventSet

__all__ = ["read_nmnist_file", "read_nmnist"]


def read_nmnist_file(path: str | Path) -> np.ndarray:
    """One N-MNIST `.bin` recording as a Tonic structured array [@orchard2015converting].

    Records of 5 bytes: x, y, then polarity in bit 7 and a 23-bit timestamp in microseconds over the
    remaining 23 bits (big-endian); a record with y = 240 is a timestamp overflow that adds 2^13 us to
    every later event (as Tonic's reader treats it).
    """
    raw = np.fromfile(path, dtype=np.uint8)
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
