r"""Event streams binned into frames, and `Frames`, the encoder that feeds those frames to a network.

A stream is a structured array with fields `x`, `y`, `t` (integer microseconds), `p` (Tonic's layout,
`sensor.EVENT_DTYPE`) [@lenz2021tonic]. Binned, it becomes `[T, P, H, W]` event counts; a data set of
frames is `[N, T, P, H, W]` (uint8, counts saturated at 255), the layout of every event data set of
`snncomp.data` (the synthetic N-MNIST-like set and the local N-MNIST, SHD and DVS128 Gesture).

* `to_frames` bins with Tonic's `ToFrame`, by time or by event count (Tonic needed);
* `bin_by_time` bins by time with numpy alone (T equal windows, every event in exactly one bin, the
  same counts as `ToFrame` with a time window, checked in the tests), used by the local loaders so that
  they do not need Tonic;
* `Frames` turns `[B, T0, ...]` frames into `[T, B, ...]` network input: time-major, bins merged when
  fewer steps are asked for, each count clipped to one spike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from .encoding import Encoder
from .sensor import SENSOR, EventSet

__all__ = ["to_frames", "frames", "bin_by_time", "Frames"]


def to_frames(events: np.ndarray, T: int, by: str = "time", duration_us: int | None = None,
              sensor_size: tuple[int, int, int] = SENSOR) -> np.ndarray:
    r"""Bin one stream into `[T, 2, H, W]` event counts with Tonic's `ToFrame` [@lenz2021tonic].

    `by="time"`: T equal windows over `[0, duration_us)` (the whole recording, so early bins hold only
    the first saccade), every event in exactly one bin; `by="count"`: T bins of $\lfloor N/T \rfloor$
    events each, so, as in Tonic, the last $N \bmod T$ events (fewer than T) are left out.
    """
    from tonic.transforms import ToFrame

    if not isinstance(T, int) or T < 1:
        raise ValueError(f"to_frames: T must be a positive integer, got {T!r}")
    if by == "time":
        if duration_us is None or duration_us % T:
            raise ValueError(f"to_frames: by='time' needs duration_us divisible by T={T}, got {duration_us!r}")
        if len(events) and not (events["t"].min() >= 0 and events["t"].max() < duration_us):
            raise ValueError(f"to_frames: timestamps outside [0, {duration_us}) us")
        tf = ToFrame(sensor_size, time_window=duration_us // T, start_time=0, end_time=duration_us)
    elif by == "count":
        if len(events) < T:  # Tonic cannot make more bins than events; empty bins stay empty
            out = np.zeros((T, sensor_size[2], sensor_size[1], sensor_size[0]), dtype=np.int16)
            np.add.at(out, (np.arange(len(events)), events["p"].astype(int), events["y"], events["x"]), 1)
            return out
        tf = ToFrame(sensor_size, n_event_bins=T)
    else:
        raise ValueError(f"to_frames: by must be 'time' or 'count', got {by!r}")
    return tf(events)


def frames(ev: EventSet, T: int, by: str = "time", progress: bool | None = None) -> np.ndarray:
    """Every stream of `ev` binned by `to_frames`: `[N, T, 2, 34, 34]` counts, saturated at 255 (uint8)."""
    out = np.zeros((len(ev), T, 2, SENSOR[1], SENSOR[0]), dtype=np.uint8)
    for i in tqdm(range(len(ev)), desc="frames", disable=None if progress is None else not progress, leave=False):
        out[i] = np.minimum(to_frames(ev[i], T, by, ev.duration_us), 255)
    return out


def bin_by_time(events: np.ndarray, T: int, sensor_size: tuple[int, int, int], start_us: int, end_us: int) -> np.ndarray:
    """One stream as `[T, P, H, W]` counts (int64) over T equal windows of `[start_us, end_us)` (window
    `k` holds `start + k w <= t < start + (k + 1) w`, `w = (end - start) / T`); `sensor_size` is Tonic's
    (width, height, polarities). Events outside the interval are an error, as are coordinates outside the
    sensor; a stream without a `y` field (audio, SHD) is one row (H = 1)."""
    W, H, P = sensor_size
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"bin_by_time: T must be a positive integer, got {T!r}")
    if end_us <= start_us:
        raise ValueError(f"bin_by_time: empty interval [{start_us}, {end_us}) us")
    t = events["t"].astype(np.int64)
    if len(t) and (t.min() < start_us or t.max() >= end_us):
        raise ValueError(f"bin_by_time: timestamps [{t.min()}, {t.max()}] us outside [{start_us}, {end_us})")
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64) if "y" in events.dtype.names else np.zeros_like(x)
    p = events["p"].astype(np.int64) if P > 1 else np.zeros_like(x)
    if len(x) and (x.min() < 0 or x.max() >= W or y.min() < 0 or y.max() >= H or p.min() < 0 or p.max() >= P):
        raise ValueError(f"bin_by_time: events outside the sensor (width {W}, height {H}, polarities {P})")
    k = (t - start_us) * T // (end_us - start_us)  # window index, exact in integers
    flat = ((k * P + p) * H + y) * W + x
    return np.bincount(flat, minlength=T * P * H * W).reshape(T, P, H, W)


@dataclass(frozen=True)
class Frames(Encoder):
    """Encoder for event frames `x: [B, T0, 2, H, W]`: returns `[T, B, 2, H, W]` spikes.

    With `T < T0` the T0 bins are merged into T contiguous groups (summed; `torch.tensor_split`
    sizes), so a shorter network still sees the whole recording; `T > T0` is an error. With `binary`
    (default) a count above zero is one spike, so every first-layer operation is an accumulate.
    """

    binary_spikes: bool = True

    @property
    def binary(self) -> bool:
        return self.binary_spikes

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.dim() < 3:
            raise ValueError(f"Frames: expected [B, T, ...] event frames, got shape {tuple(x.shape)}")
        T0 = x.shape[1]
        if self.T > T0:
            raise ValueError(f"Frames: asked for T={self.T} steps but the frames hold only {T0} bins")
        x = x.float()
        if self.T < T0:
            x = torch.stack([g.sum(1) for g in torch.tensor_split(x, self.T, dim=1)], dim=1)
        x = x.transpose(0, 1)  # [T, B, ...]
        return (x > 0).float() if self.binary_spikes else x
