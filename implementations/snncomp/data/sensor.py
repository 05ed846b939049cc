r"""The synthetic event sensor: MNIST images recorded in software the way N-MNIST was recorded.

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

Events use Tonic's structured layout (fields `x`, `y`, `t`, `p`, `EVENT_DTYPE`) [@lenz2021tonic];
`snncomp.data.frames` bins them into frames and `snncomp.data.synthetic` makes and caches the whole
synthetic N-MNIST-like data set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor
from tqdm import tqdm

__all__ = ["EVENT_DTYPE", "SENSOR", "Saccades", "EventSet", "generate"]


EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])  # tonic.io.events_struct
SENSOR = (34, 34, 2)  # Tonic's sensor_size: width, height, polarities


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
