"""The trained baselines every notebook, benchmark and (later) distillation teacher starts from.

`trained(name, seed)` returns a baseline's trained model and the encoder it was trained with. The
first call trains it with the one training loop (`train.fit`) and stores the weights, and only the
weights (`state_dict`), under the cache folder, keyed by the baseline's name, its full specification
(architecture, encoder, training settings, data) and the seed; later calls load them. Nothing is
downloaded and nothing here is committed: a clean checkout trains each baseline once.

Every baseline is trained without the validation part of its data set (`VALIDATION`, a class-balanced
10 % of the training images carved with seed 0, see `data.Split.with_validation`): `split(name)` gives
that same split, so any setting chosen later on `split(name).validation()` is chosen on images the
baseline never saw, and the test images are kept for the reported numbers.

The cache folder is `$SNNCOMP_CACHE/baselines` when that variable is set, else `.cache/baselines`
at the root of the source tree (an editable install), else `~/.cache/snncomp/baselines`. Beside the
weights, a small JSON record keeps how the weights were made (per-epoch history, seconds, date).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import data, encoding, events, models
from .files import cache_folder, write_atomic
from .train import TrainConfig, fit

__all__ = ["Baseline", "BASELINES", "VALIDATION", "cache_dir", "trained", "record", "mnist1k", "split"]

VALIDATION = (0.1, 0)  # (fraction of the training images, carving seed) held out of every baseline's training


@dataclass(frozen=True)
class Baseline:
    """How a baseline is built: an architecture, the encoder it is fed with, a training budget, the data."""

    build: Callable[..., nn.Module]  # models.conv_snn, ...; called with seed=
    kwargs: dict = field(default_factory=dict)
    encoder: encoding.Encoder = encoding.Direct(4)
    config: TrainConfig = TrainConfig(epochs=8)
    dataset: str = "mnist5k"

    def key(self, seed: int) -> str:
        spec = {"build": f"{self.build.__module__}.{self.build.__qualname__}", "kwargs": self.kwargs,
                "encoder": repr(self.encoder), "config": repr(dataclasses.replace(self.config, seed=seed, progress=False)),
                "dataset": self.dataset, "validation": VALIDATION, "torch": torch.__version__.split("+")[0]}
        if self.dataset == "nmnist-like":  # the synthetic sensor's settings make the data: they key it too
            spec["sensor"] = repr(events.Saccades())
        return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:12]


BASELINES: dict[str, Baseline] = {
    # the compact baseline of the notebooks: 2 conv blocks (16, 32), ~20k weights, T = 4 direct input
    "conv-direct4": Baseline(models.conv_snn),
    # its same-shaped ANN, at one step
    "conv-ann": Baseline(models.conv_ann, encoder=encoding.Direct(1)),
    "mlp-direct4": Baseline(models.mlp_snn, config=TrainConfig(epochs=6)),
    "conv-rate16": Baseline(models.conv_snn, encoder=encoding.Rate(16), config=TrainConfig(epochs=4)),
    # the over-parameterised benchmark network: the compact one with a spiking fully connected
    # layer of 256 between the convolutions and the readout, ~409k weights (98 % in that layer)
    "conv-fc256-direct4": Baseline(models.conv_snn, kwargs={"hidden": (256,)}),
    # the same conv SNN on synthetic N-MNIST-like events: 2 x 34 x 34 frames, 16 time bins merged into 8
    "conv-events": Baseline(models.conv_snn, kwargs={"in_shape": (2, 34, 34)}, encoder=events.Frames(8),
                            config=TrainConfig(epochs=3), dataset="nmnist-like"),
    # distillation teacher for the little-data setting: the conv ANN trained on the same 1000 images as its students
    "conv-ann-1k": Baseline(models.conv_ann, encoder=encoding.Direct(1), config=TrainConfig(epochs=16), dataset="mnist1k"),
    # quick teachers on scikit-learn's 8x8 digits (seconds to train), for the distillation notebook
    "digits-conv-ann": Baseline(models.conv_ann, kwargs={"in_shape": (1, 8, 8)}, encoder=encoding.Direct(1),
                                config=TrainConfig(epochs=8), dataset="digits"),
    "digits-conv-direct4": Baseline(models.conv_snn, kwargs={"in_shape": (1, 8, 8), "channels": (8, 16)},
                                    config=TrainConfig(epochs=4), dataset="digits"),
}

def mnist1k() -> data.Split:
    """MNIST-5k with only its first 1000 training images (about 100 per class) and all 1000 test images:
    the little-data setting of the distillation section."""
    s = data.mnist5k()
    return data.Split(s.train_x[:1000], s.train_y[:1000], s.test_x, s.test_y, "mnist1k")


_DATA = {"mnist5k": data.mnist5k, "digits": data.digits, "mnist1k": mnist1k, "nmnist-like": events.nmnist_like}


def split(name: str) -> data.Split:
    """The data of baseline `name` as it was trained: the training images without the validation part,
    which is in `val_x`/`val_y`, and the untouched test images."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    return _DATA[BASELINES[name].dataset]().with_validation(*VALIDATION)


def cache_dir() -> Path:
    """Where trained baselines are kept (see the module docstring)."""
    return cache_folder("baselines")


def _paths(name: str, seed: int) -> tuple[Path, Path]:
    base = cache_dir() / f"{name}-seed{seed}-{BASELINES[name].key(seed)}"
    return base.with_suffix(".pt"), base.with_suffix(".json")


def trained(name: str = "conv-direct4", seed: int = 0) -> tuple[nn.Module, encoding.Encoder]:
    """The trained baseline `name` at `seed` and its encoder, trained on first use, loaded afterwards."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    spec = BASELINES[name]
    model = spec.build(seed=seed, **spec.kwargs)
    weights, meta = _paths(name, seed)
    if weights.exists():
        model.load_state_dict(torch.load(weights, weights_only=True))
        return model, spec.encoder
    config = dataclasses.replace(spec.config, seed=seed, progress=False)
    t0 = time.perf_counter()
    hist = fit(model, split(name), spec.encoder, config)
    seconds = time.perf_counter() - t0
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    write_atomic(weights, buf.getvalue())
    write_atomic(meta, json.dumps({"name": name, "seed": seed, "seconds": round(seconds, 1),
                                   "date": dt.date.today().isoformat(), "history": hist.epochs}, indent=1))
    return model, spec.encoder


def record(name: str = "conv-direct4", seed: int = 0) -> dict:
    """How the cached weights of `trained(name, seed)` were made: history, seconds, date."""
    trained(name, seed)
    return json.loads(_paths(name, seed)[1].read_text())
