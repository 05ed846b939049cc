"""The trained baselines every notebook, benchmark and (later) distillation teacher starts from.

`trained(name, seed)` returns a baseline's trained model and the encoder it was trained with. The
first call trains it with the one training loop (`train.fit`) and stores the weights, and only the
weights (`state_dict`), under the cache folder, keyed by the baseline's name, its full specification
(architecture, encoder, training settings, data), the seed and the numerical environment (torch's
version, `torch.backends.cpu.get_cpu_capability()`, the thread count, the device: the same seed gives
other weights under other CPU kernels or thread counts); later calls load them. Training says so in
one line on stderr (and shows the epoch bar on a terminal); a load prints nothing. Nothing is downloaded and
nothing here is committed: a clean checkout trains each baseline once per environment.

Every baseline is trained without the validation part of its data set (`VALIDATION`, a class-balanced
10 % of the training images carved with seed 0, see `data.Split.with_validation`): `split(name)` gives
that same split, so any setting chosen later on `split(name).validation()` is chosen on images the
baseline never saw, and the test images are kept for the reported numbers.

The cache folder is `$SNNCOMP_CACHE/baselines` when that variable is set, else `.cache/baselines`
at the root of the source tree (an editable install), else `~/.cache/snncomp/baselines`. Beside the
weights, a small JSON record keeps how the weights were made (per-epoch history, seconds, date and the
environment above).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import hashlib
import io
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import data, models
from .data import encoding
from .files import cache_folder, write_atomic
from .train import TrainConfig, fit

__all__ = ["Baseline", "BASELINES", "VALIDATION", "cache_dir", "trained", "record", "split", "environment"]

VALIDATION = (0.1, 0)  # (fraction of the training images, carving seed) held out of every baseline's training


@dataclass(frozen=True)
class Baseline:
    """How a baseline is built: an architecture, the encoder it is fed with, a training budget, the data."""

    build: Callable[..., nn.Module]  # models.conv_snn, ...; called with seed=
    kwargs: dict = field(default_factory=dict)
    encoder: encoding.Encoder = encoding.Direct(4)
    config: TrainConfig = TrainConfig(epochs=8)
    dataset: str = "mnist5k"
    ann: str | None = None  # the baseline holding the ANN of the same architecture, for energy comparisons

    def key(self, seed: int, environment: dict | None = None) -> str:
        """The cache key of this baseline at `seed`: a hash of its specification and of the numerical
        environment that trains it (`environment()`: torch version, CPU capability, threads, device),
        so weights trained under other kernels or another thread count are never mistaken for these."""
        spec = {"build": f"{self.build.__module__}.{self.build.__qualname__}", "kwargs": self.kwargs,
                "encoder": repr(self.encoder), "config": repr(dataclasses.replace(self.config, seed=seed, progress=False)),
                "dataset": self.dataset, "validation": VALIDATION,
                **(_environment() if environment is None else environment)}
        if self.config.patience:  # early stopping is out of the config's repr (see TrainConfig.patience)
            spec["patience"] = self.config.patience
        if self.dataset == "nmnist-like":  # the synthetic sensor's settings make the data: they key it too
            spec["sensor"] = repr(data.sensor.Saccades())
        return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _environment() -> dict:
    """What makes training give other numbers on the same code and seed: torch's version, the CPU kernels
    torch dispatches to (`torch.backends.cpu.get_cpu_capability()`: AVX2 and AVX-512 kernels round
    differently), the number of threads, and the device (baselines train on the CPU)."""
    return {"torch": torch.__version__.split("+")[0], "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "device": "cpu"}


def environment() -> dict:
    """The numerical environment a baseline trained now would record and be keyed by (see `Baseline.key`)."""
    return _environment()


BASELINES: dict[str, Baseline] = {
    # the compact baseline of the notebooks: 2 conv blocks (16, 32), ~20k weights, T = 4 direct input
    "conv-direct4": Baseline(models.conv_snn, ann="conv-ann"),
    # its same-shaped ANN, at one step
    "conv-ann": Baseline(models.conv_ann, encoder=encoding.Direct(1)),
    "mlp-direct4": Baseline(models.mlp_snn, config=TrainConfig(epochs=6)),
    "conv-rate16": Baseline(models.conv_snn, encoder=encoding.Rate(16), config=TrainConfig(epochs=4), ann="conv-ann"),
    # the over-parameterised benchmark network: the compact one with a spiking fully connected
    # layer of 256 between the convolutions and the readout, ~409k weights (98 % in that layer)
    "conv-fc256-direct4": Baseline(models.conv_snn, kwargs={"hidden": (256,)}, ann="conv-fc256-ann"),
    # its same-shaped ANN (ReLU, one step), the reference of the board's energy ratios on that baseline
    "conv-fc256-ann": Baseline(models.conv_ann, kwargs={"hidden": (256,)}, encoder=encoding.Direct(1)),
    # the same conv SNN on synthetic N-MNIST-like events: 2 x 34 x 34 frames, 16 time bins merged into 8;
    # trained until its validation accuracy has not risen for 2 epochs (at most 12), best epoch kept
    "conv-events": Baseline(models.conv_snn, kwargs={"in_shape": (2, 34, 34)}, encoder=data.Frames(8),
                            config=TrainConfig(epochs=12, patience=2), dataset="nmnist-like"),
    # distillation teacher for the little-data setting: the conv ANN trained on the same 1000 images as its students
    "conv-ann-1k": Baseline(models.conv_ann, encoder=encoding.Direct(1), config=TrainConfig(epochs=16), dataset="mnist1k"),
    # quick teachers on scikit-learn's 8x8 digits (seconds to train), for the distillation notebook
    "digits-conv-ann": Baseline(models.conv_ann, kwargs={"in_shape": (1, 8, 8)}, encoder=encoding.Direct(1),
                                config=TrainConfig(epochs=8), dataset="digits"),
    "digits-conv-direct4": Baseline(models.conv_snn, kwargs={"in_shape": (1, 8, 8), "channels": (8, 16)},
                                    config=TrainConfig(epochs=4), dataset="digits", ann="digits-conv-ann"),
}

_DATA = {"mnist5k": data.mnist5k, "digits": data.digits, "mnist1k": data.mnist1k, "nmnist-like": data.nmnist_like}


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
    weights.parent.mkdir(parents=True, exist_ok=True)
    # one process trains a given baseline at a time (parallel runs of the runner wait for it, then load)
    with open(weights.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if weights.exists():
            model.load_state_dict(torch.load(weights, weights_only=True))
            return model, spec.encoder
        print(f"training baseline {name} seed {seed} (first use; cached afterwards)", file=sys.stderr, flush=True)
        config = dataclasses.replace(spec.config, seed=seed, progress=sys.stderr.isatty())  # the epoch bar on a terminal
        env = _environment()
        t0 = time.perf_counter()
        hist = fit(model, split(name), spec.encoder, config)
        seconds = time.perf_counter() - t0
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        write_atomic(meta, json.dumps({"name": name, "seed": seed, "seconds": round(seconds, 1),
                                       "date": dt.date.today().isoformat(), **env, "history": hist.epochs}, indent=1))
        write_atomic(weights, buf.getvalue())  # last: the weights existing means the record does too
    return model, spec.encoder


def record(name: str = "conv-direct4", seed: int = 0) -> dict:
    """How the cached weights of `trained(name, seed)` were made: history, seconds, date, and the torch
    version, CPU capability, threads and device that trained them."""
    trained(name, seed)
    return json.loads(_paths(name, seed)[1].read_text())
