"""The synthetic N-MNIST-like data set: MNIST-5k recorded by the simulated sensor of `snncomp.data.sensor`
and binned into frames, made offline and cached.

`nmnist_like` gives a `Split` whose inputs are frames `[N, T, 2, 34, 34]` (uint8 event counts binned by
`frames.to_frames`), the same train/test images and labels as `bundled.mnist5k(test_fraction, seed)`;
`frames.Frames` is the encoder that feeds them to a network. The frames are cached under the cache folder
(never committed); a stream is remade on demand (`nmnist_like_events`), since each depends only on its
image, its index and the seed. The result is labelled **synthetic N-MNIST-like** everywhere: its
accuracies are not comparable with published N-MNIST results.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ..files import cache_folder, write_atomic
from .bundled import mnist5k
from .frames import frames
from .sensor import SENSOR, EventSet, Saccades, generate
from .splits import Split

__all__ = ["nmnist_like", "nmnist_like_events", "cache_dir", "CHUNK"]

CHUNK = 250  # images per task when `nmnist_like` generates its cache


def cache_dir() -> Path:
    """Where the frames are kept: `events/` beside the trained baselines (`files.cache_folder`)."""
    return cache_folder("events")


def _mnist(test_fraction: float, seed: int) -> tuple[Tensor, Tensor, int]:
    """MNIST-5k images and labels, training samples first, and the number of training samples."""
    s = mnist5k(test_fraction, seed)
    return torch.cat([s.train_x, s.test_x]), torch.cat([s.train_y, s.test_y]), len(s.train_y)


def nmnist_like_events(index: int | slice, test_fraction: float = 0.2, seed: int = 0,
                       config: Saccades = Saccades()) -> EventSet:
    """The synthetic N-MNIST-like streams of MNIST-5k samples `index` (training samples first, then
    test samples, as in `mnist5k(test_fraction, seed)`), made on the spot: the same streams that
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
                config: Saccades = Saccades(), progress: bool | None = None, workers: int | None = None) -> Split:
    """Synthetic N-MNIST-like frames of MNIST-5k as a `Split`: inputs `[N, T, 2, 34, 34]` (uint8
    event counts), the same train/test images and labels as `mnist5k(test_fraction, seed)`.

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
    return Split(fr[:n_train], lab[:n_train], fr[n_train:], lab[n_train:], "nmnist-like")
