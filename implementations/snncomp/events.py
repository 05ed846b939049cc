r"""Synthetic N-MNIST-like event data, made offline from MNIST-5k, and a reader for real N-MNIST files.

N-MNIST was recorded by an ATIS event camera on a pan-tilt unit looking at MNIST digits on a monitor,
moving in three saccades of about 100 ms each, cropped to 34 x 34 pixels [@orchard2015converting].
`generate` imitates that recording in software:

* the 28 x 28 image sits in the middle of a 34 x 34 canvas and moves along a triangle, offsets
  $(0,0) \to (2,2) \to (-2,2) \to (0,0)$ pixels by default, one straight segment per saccade, sampled
  every `step_us` with bilinear sub-pixel shifts;
* each pixel sees $L = \mathrm{linlog}(255\,I)$, linear below 20 and logarithmic above as in v2e
  [@delbruck2021v2e] (no $\log 0$ on black pixels), and emits one event per crossed contrast threshold:
  an ON event each time $L - L_{ref} \ge C_{on}$, an OFF event each time $L_{ref} - L \ge C_{off}$, the
  reference moving by $\pm C$ per event;
* each event's timestamp is placed inside the sampling step by linear interpolation in $L$ between the
  two samples, as ESIM does [@rebecq2018esim]; timestamps are integer microseconds;
* the sensor is v2e's default pixel array in one respect: each pixel's ON and OFF thresholds are drawn
  once from $\mathcal{N}(0.2, 0.03^2)$ (v2e's `sigma_thres` default; a fixed map of the one simulated
  sensor, drawn from the seed); `Saccades(threshold_sigma=0.0)` gives an ideal sensor with one threshold.
  v2e's other defaults (a 300 Hz photoreceptor low-pass, leak and shot-noise events) are not modelled;
* options: a refractory period (an event closer than it to the pixel's last event is dropped; the reference
  level still moves, our simplification), and shot noise (uniform in time and space, random polarity).

The result is labelled **synthetic N-MNIST-like** everywhere: it is cleaner and sparser than a real
ATIS recording and its accuracies are not comparable with published N-MNIST results.

Events use Tonic's structured layout (fields `x`, `y`, `t`, `p`) [@lenz2021tonic]; `to_frames` bins one
stream into `[T, 2, 34, 34]` counts with Tonic's `ToFrame`, by time (T equal windows of the whole
stream duration) or by event count (T bins holding equal numbers of events). `nmnist_like` gives a
`data.Split` whose inputs are those frames (`[N, T, 2, 34, 34]`, uint8), and `Frames` is the matching
encoder: it turns them time-major, merges bins when fewer steps are asked for, and clips each count to
one spike. The frames are cached under the cache folder (never committed); a stream is remade on
demand (`nmnist_like_events`), since each depends only on its image, its index and the seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from . import data, encoding
from .files import cache_folder, write_atomic

__all__ = ["EVENT_DTYPE", "SENSOR", "Saccades", "EventSet", "generate", "to_frames", "frames", "Frames",
           "nmnist_like", "nmnist_like_events", "read_nmnist_file", "read_nmnist", "cache_dir"]

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])  # tonic.io.events_struct
SENSOR = (34, 34, 2)  # Tonic's sensor_size: width, height, polarities
CHUNK = 250  # images per task when `nmnist_like` generates its cache


@dataclass(frozen=True)
class Saccades:
    """How the synthetic sensor records: motion path, sampling, pixel model, non-idealities."""

    canvas: int = 34
    path: tuple[tuple[float, float], ...] = ((0, 0), (2, 2), (-2, 2), (0, 0))  # (dy, dx) vertices, pixels
    saccade_us: int = 100_000
    step_us: int = 5_000
    threshold: float = 0.2  # C_on = C_off
    threshold_sigma: float = 0.03  # per-pixel threshold spread, v2e's default; 0.0: an ideal sensor
    refractory_us: int = 0
    noise_hz: float = 0.0  # shot-noise events per pixel per second

    def __post_init__(self) -> None:
        problems = []
        if self.canvas < 28:
            problems.append(f"canvas={self.canvas} (must hold a 28 x 28 image)")
        if len(self.path) < 2:
            problems.append("path needs at least two vertices")
        if self.saccade_us <= 0 or self.step_us <= 0 or self.saccade_us % self.step_us:
            problems.append(f"saccade_us={self.saccade_us}, step_us={self.step_us} (positive, step divides saccade)")
        if not self.threshold > 0 or self.threshold_sigma < 0 or self.refractory_us < 0 or self.noise_hz < 0:
            problems.append("threshold must be > 0; threshold_sigma, refractory_us, noise_hz >= 0")
        margin = (self.canvas - 28) / 2
        if any(abs(v) > margin for p in self.path for v in p):
            problems.append(f"path {self.path} leaves the {self.canvas} x {self.canvas} canvas (margin {margin})")
        if problems:
            raise ValueError("Saccades: " + "; ".join(problems))

    @property
    def duration_us(self) -> int:
        return self.saccade_us * (len(self.path) - 1)

    def offsets(self) -> np.ndarray:
        """`[K + 1, 2]` offsets (dy, dx) at the sampling instants `0, step_us, ..., duration_us`."""
        t = np.arange(0, self.duration_us + 1, self.step_us) / self.saccade_us
        v = np.asarray(self.path, dtype=np.float64)
        return np.stack([np.interp(t, np.arange(len(v)), v[:, i]) for i in range(2)], axis=1)


@dataclass
class EventSet:
    """Event streams of many samples: columns of all events, sample `i` at `offsets[i]:offsets[i+1]`."""

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    p: np.ndarray
    offsets: np.ndarray  # [N + 1]
    labels: np.ndarray  # [N]
    duration_us: int
    name: str = "synthetic N-MNIST-like"

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        """Sample `i` as a Tonic structured array (fields x, y, t, p), sorted by time."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"EventSet: index {i} out of range for {len(self)} samples")
        s = slice(self.offsets[i], self.offsets[i + 1])
        ev = np.empty(s.stop - s.start, dtype=EVENT_DTYPE)
        ev["x"], ev["y"], ev["t"], ev["p"] = self.x[s], self.y[s], self.t[s], self.p[s]
        return ev

    def counts(self) -> np.ndarray:
        """Events per sample."""
        return np.diff(self.offsets)


def _linlog(lum: np.ndarray, knee: float = 20.0) -> np.ndarray:
    """v2e's lin-log: linear below `knee` (0-255 scale), log above, continuous at the knee."""
    return np.where(lum < knee, lum * (np.log(knee) / knee), np.log(np.maximum(lum, knee)))


def _shift(batch: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Bilinear shift of `[B, H, W]` by (dy, dx) pixels, zeros shifted in: out[y, x] = in[y - dy, x - dx]
    (as `scipy.ndimage.shift(..., order=1, mode="grid-constant")`, checked in the tests)."""
    H, W = batch.shape[1:]
    iy, ix = int(np.floor(dy)), int(np.floor(dx))
    fy, fx = dy - iy, dx - ix
    P = max(abs(iy), abs(ix)) + 2
    pad = np.pad(batch, ((0, 0), (P, P), (P, P)))

    def tap(sy: int, sx: int) -> np.ndarray:  # in[y - sy, x - sx]
        return pad[:, P - sy:P - sy + H, P - sx:P - sx + W]

    return ((1 - fy) * ((1 - fx) * tap(iy, ix) + fx * tap(iy, ix + 1))
            + fy * ((1 - fx) * tap(iy + 1, ix) + fx * tap(iy + 1, ix + 1)))


def _crossings(t0, cfg, j, m, b, xx, yy, sgn, step, lp, lc, lr):
    """Events of the `j`-th threshold crossing of pixels `m` inside the step starting at `t0`: the level
    crossed is `L_ref + j C` (ON) or `L_ref - j C` (OFF), its time interpolated linearly in L."""
    level = lr[m] + sgn[m] * j * step[m]
    frac = np.clip((level - lp[m]) / (lc[m] - lp[m]), 0.0, 1.0)
    t = np.minimum(np.floor(t0 + frac * cfg.step_us), cfg.duration_us - 1)
    return b[m], xx[m], yy[m], t, sgn[m] > 0


def _chunk(images: np.ndarray, cfg: Saccades, c_on: np.ndarray, c_off: np.ndarray, seed: int,
           first: int) -> tuple[np.ndarray, ...]:
    """Events of `images: [B, 28, 28]` in [0, 1]: columns (b, x, y, t, p), sorted by (b, t)."""
    B, pad = images.shape[0], (cfg.canvas - 28) // 2
    canvas = np.zeros((B, cfg.canvas, cfg.canvas))
    canvas[:, pad:pad + 28, pad:pad + 28] = images * 255.0
    off = cfg.offsets()
    L_prev = _linlog(_shift(canvas, *off[0]))
    L_ref = L_prev.copy()
    last = np.full(L_ref.shape, -np.inf)
    out: list[tuple[np.ndarray, ...]] = []
    for k in range(1, len(off)):
        L = _linlog(_shift(canvas, *off[k]))
        d = L - L_ref
        n = np.where(d > 0, np.floor(d / c_on), np.floor(-d / c_off)).astype(np.int64)
        idx = np.nonzero(n)
        if idx[0].size:
            b, yy, xx = idx
            nn_, sgn = n[idx], np.sign(d[idx])
            step = np.where(sgn > 0, c_on[yy, xx], c_off[yy, xx])
            lp, lc, lr = L_prev[idx], L[idx], L_ref[idx]
            t0 = (k - 1) * cfg.step_us
            if cfg.refractory_us == 0:  # all crossings at once: event e is crossing j of pixel rep[e]
                rep = np.repeat(np.arange(nn_.size), nn_)
                j = np.arange(rep.size) - np.repeat(np.cumsum(nn_) - nn_, nn_) + 1
                out.append(_crossings(t0, cfg, j, rep, b, xx, yy, sgn, step, lp, lc, lr))
            for j in range(1, int(nn_.max()) + 1) if cfg.refractory_us else ():  # crossing j, in time order
                m = np.nonzero(nn_ >= j)[0]
                bm, xm, ym, t, pm = _crossings(t0, cfg, j, m, b, xx, yy, sgn, step, lp, lc, lr)
                keep = t - last[bm, ym, xm] >= cfg.refractory_us
                last[bm[keep], ym[keep], xm[keep]] = t[keep]
                out.append((bm[keep], xm[keep], ym[keep], t[keep], pm[keep]))
            L_ref[idx] = lr + sgn * nn_ * step
        L_prev = L
    for i in range(B) if cfg.noise_hz > 0 else ():  # shot noise, from each image's own generator
        rng = np.random.default_rng([seed, 1, first + i])
        k = rng.poisson(cfg.noise_hz * cfg.duration_us * 1e-6 * cfg.canvas ** 2)
        out.append((np.full(k, i), rng.integers(0, cfg.canvas, k), rng.integers(0, cfg.canvas, k),
                    rng.integers(0, cfg.duration_us, k).astype(float), rng.random(k) < 0.5))
    if not out:
        return tuple(np.zeros(0, dtype=np.int64) for _ in range(5))
    b, x, y, t, p = (np.concatenate(c) for c in zip(*out))
    t = t.astype(np.int64)
    side = cfg.canvas
    order = np.argsort((((b * cfg.duration_us + t) * side + y) * side + x) * 2 + p, kind="stable")
    return b[order], x[order], y[order], t[order], p[order]


def generate(images: Tensor | np.ndarray, labels: Tensor | np.ndarray | None = None, config: Saccades = Saccades(),
             seed: int = 0, chunk: int = 250, progress: bool | None = None, first: int = 0) -> EventSet:
    """Synthetic N-MNIST-like streams of `images: [N, 1, 28, 28]` (or `[N, 28, 28]`) in [0, 1].

    Deterministic: the sensor's threshold map comes from `seed` and the noise of image `i` from
    `(seed, first + i)`, so a sample's stream is the same whether it is made alone or in a batch
    (`first` is the index of `images[0]` in the whole set) and on every machine.
    """
    imgs = images.detach().cpu().numpy() if isinstance(images, Tensor) else np.asarray(images)
    imgs = imgs.reshape(imgs.shape[0], *imgs.shape[-2:]).astype(np.float64)
    if imgs.shape[1:] != (28, 28):
        raise ValueError(f"generate: expected 28 x 28 images, got shape {images.shape}")
    if imgs.size and (imgs.min() < 0 or imgs.max() > 1):
        raise ValueError(f"generate: images must lie in [0, 1], got [{imgs.min():.3g}, {imgs.max():.3g}]")
    lab = np.zeros(len(imgs), dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
    sensor = np.random.default_rng([seed, 0])
    shape = (config.canvas, config.canvas)
    c_on, c_off = (np.maximum(config.threshold + config.threshold_sigma * sensor.standard_normal(shape), 0.01)
                   for _ in range(2))
    cols: list[tuple[np.ndarray, ...]] = []
    counts = np.zeros(len(imgs), dtype=np.int64)
    show = None if progress is None else not progress
    for start in tqdm(range(0, len(imgs), chunk), desc="events", disable=show, leave=False):
        b, x, y, t, p = _chunk(imgs[start:start + chunk], config, c_on, c_off, seed, first + start)
        counts[start:start + chunk] = np.bincount(b, minlength=min(chunk, len(imgs) - start))
        cols.append((x.astype(np.int16), y.astype(np.int16), t, p.astype(bool)))
    x, y, t, p = (np.concatenate(c) if c else np.zeros(0) for c in zip(*cols)) if cols else (np.zeros(0),) * 4
    return EventSet(x, y, t, p, np.concatenate([[0], np.cumsum(counts)]), lab, config.duration_us)


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


def cache_dir() -> Path:
    """Where the frames are kept: `events/` beside the trained baselines (`files.cache_folder`)."""
    return cache_folder("events")


def _mnist(test_fraction: float, seed: int) -> tuple[Tensor, Tensor, int]:
    """MNIST-5k images and labels, training samples first, and the number of training samples."""
    s = data.mnist5k(test_fraction, seed)
    return torch.cat([s.train_x, s.test_x]), torch.cat([s.train_y, s.test_y]), len(s.train_y)


def nmnist_like_events(index: int | slice, test_fraction: float = 0.2, seed: int = 0,
                       config: Saccades = Saccades()) -> EventSet:
    """The synthetic N-MNIST-like streams of MNIST-5k samples `index` (training samples first, then
    test samples, as in `data.mnist5k(test_fraction, seed)`), made on the spot: the same streams that
    `nmnist_like` bins, since each sample's stream depends only on its image, index and `seed`."""
    x, y, _ = _mnist(test_fraction, seed)
    sl = slice(index, index + 1) if isinstance(index, int) else index
    first = sl.indices(len(y))[0]
    return generate(x[sl], y[sl], config, seed, first=first, progress=False)


def _frames_of(job: tuple) -> np.ndarray:
    """Frames of one chunk of images (a worker's task in `nmnist_like`)."""
    images, labels, config, seed, first, T, by = job
    return frames(generate(images, labels, config, seed, len(labels), False, first), T, by, progress=False)


def nmnist_like(T: int = 16, by: str = "time", test_fraction: float = 0.2, seed: int = 0,
                config: Saccades = Saccades(), progress: bool | None = None, workers: int | None = None) -> data.Split:
    """Synthetic N-MNIST-like frames of MNIST-5k as a `data.Split`: inputs `[N, T, 2, 34, 34]` (uint8
    event counts), the same train/test images and labels as `data.mnist5k(test_fraction, seed)`.

    The frames are cached under `cache_dir()`, keyed by every argument but `workers`; the streams are not
    kept (about 15 000 events per sample at the defaults), `nmnist_like_events` remakes any of them.
    A first call generates them in chunks of 250 images on `workers` processes (default: one per CPU);
    the result does not depend on the number of workers."""
    key = {"config": dataclasses.asdict(config), "seed": seed, "test_fraction": test_fraction, "T": T, "by": by,
           "version": 1}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    path = cache_dir() / f"nmnist-like-T{T}-{by}-seed{seed}-{digest}.npz"
    if not path.exists():
        x, y, _ = _mnist(test_fraction, seed)
        out = np.zeros((len(y), T, 2, SENSOR[1], SENSOR[0]), dtype=np.uint8)
        jobs = [(x[i:i + CHUNK].numpy(), y[i:i + CHUNK].numpy(), config, seed, i, T, by)
                for i in range(0, len(y), CHUNK)]
        n = max(1, min(workers if workers is not None else (os.cpu_count() or 1), len(jobs)))
        bar = tqdm(total=len(y), desc="synthetic N-MNIST-like", leave=False,
                   disable=None if progress is None else not progress)
        # each chunk depends only on its images, its first index and the seed: the same frames in any order
        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork")) if n > 1 else nullcontext() as pool:
            for start, fr in zip(range(0, len(y), CHUNK), (pool.map if pool else map)(_frames_of, jobs)):
                out[start:start + len(fr)] = fr
                bar.update(len(fr))
        bar.close()
        write_atomic(path, lambda fh: np.savez_compressed(fh, frames=out, labels=y.numpy()))
    with np.load(path) as f:
        fr, lab = torch.from_numpy(f["frames"]), torch.from_numpy(f["labels"])
    n_train = _mnist(test_fraction, seed)[2]
    return data.Split(fr[:n_train], lab[:n_train], fr[n_train:], lab[n_train:], "nmnist-like")


@dataclass(frozen=True)
class Frames(encoding.Encoder):
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
