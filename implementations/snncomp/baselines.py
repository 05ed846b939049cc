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

A baseline can be trained on another data set than its own (`trained(name, seed, data=NAME)`, the runs of
`snncomp bench --data NAME`): `on_data(name, NAME)` keeps its architecture, training budget and number of
time steps and takes the input shape and the number of classes from the data (an event set is fed through
`data.Frames`, an image set through `Direct` when the baseline's own input was events). Data sets drawn
from the same images (`mnist1k` from MNIST-5k, `data.catalog.Dataset.source`) keep the baseline as it is.
The key of such a baseline holds the data set's name and, for a set read from the local disk, the identity
of its files (`data.catalog.identity`: names, sizes, modification times), so changed files retrain it.

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
import inspect
import io
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from . import data, models
from .data import catalog, encoding
from .files import cache_folder, write_atomic
from .train import TrainConfig, fit

__all__ = ["Baseline", "BASELINES", "VALIDATION", "cache_dir", "trained", "record", "split", "on_data", "retrains",
           "environment"]

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
        if catalog.get(self.dataset).local:  # files on disk: their names, sizes and times key the weights
            spec["files"] = catalog.identity(self.dataset)
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

def retrains(name: str, dataset: str | None) -> bool:
    """Whether baseline `name` is trained anew for `dataset`: a data set not drawn from the baseline's own
    images (`data.catalog.Dataset.source`)."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    own = BASELINES[name].dataset
    return dataset is not None and catalog.get(dataset).same_as != catalog.get(own).same_as


@lru_cache(maxsize=2)
def _local(dataset: str, identity: str) -> data.Split:  # keyed by the files' identity: changed files reload
    return catalog.load(dataset)


def _load(dataset: str) -> data.Split:
    """Data set `dataset` as `data.catalog.load` gives it; a local one is kept for the next call (at most two)."""
    if catalog.get(dataset).local:
        return _local(dataset, catalog.identity(dataset))
    return catalog.load(dataset)


def on_data(name: str, dataset: str) -> Baseline:
    """Baseline `name` as trained on `dataset`: itself when `dataset` holds its own images (`retrains` is
    false), else its architecture with the input shape (`in_shape`, or `in_features` for an MLP) and the
    number of classes of `dataset`, and an encoder of the same number of steps that fits the data."""
    if not retrains(name, dataset):  # an unknown baseline or data set is a KeyError naming the known ones
        return BASELINES[name]
    spec = BASELINES[name]
    s = _load(dataset)
    events = catalog.is_events(s)
    sample = tuple(s.train_x.shape[2:] if events else s.train_x.shape[1:])  # [P, H, W] or [C, H, W]
    params = inspect.signature(spec.build).parameters
    kwargs = dict(spec.kwargs)
    if "in_shape" in params:
        blocks = len(kwargs.get("channels", params["channels"].default)) if "channels" in params else 0
        if len(sample) != 3 or min(sample[1:]) < 2 ** blocks:
            raise ValueError(f"baseline {name!r}: its {blocks} pooling conv block(s) need inputs [C, H, W] of at "
                             f"least {2 ** blocks} x {2 ** blocks}; data set {dataset!r} gives {list(sample)} "
                             "(choose an MLP baseline such as mlp-direct4)")
        kwargs["in_shape"] = sample
    elif "in_features" in params:
        kwargs["in_features"] = math.prod(sample)
    else:
        raise ValueError(f"baseline {name!r}: {spec.build.__qualname__} takes neither in_shape nor in_features, "
                         f"so it cannot be fitted to data set {dataset!r}")
    if "num_classes" in params:
        kwargs["num_classes"] = s.num_classes
    enc = spec.encoder
    if events and not isinstance(enc, data.Frames):
        enc = data.Frames(enc.T)
    elif not events and isinstance(enc, data.Frames):
        enc = encoding.Direct(enc.T)
    return dataclasses.replace(spec, kwargs=kwargs, encoder=enc, dataset=dataset)


def split(name: str, dataset: str | None = None) -> data.Split:
    """The data of baseline `name` as it was trained, or of `dataset` when given (the data a run on that
    data set uses): the training images without the validation part, which is in `val_x`/`val_y`, and the
    untouched test images."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    return _load(dataset or BASELINES[name].dataset).with_validation(*VALIDATION)


def cache_dir() -> Path:
    """Where trained baselines are kept (see the module docstring)."""
    return cache_folder("baselines")


def _paths(name: str, seed: int, dataset: str | None = None) -> tuple[Path, Path]:
    spec = on_data(name, dataset) if retrains(name, dataset) else BASELINES[name]
    label = name if spec is BASELINES[name] else f"{name}@{spec.dataset}"
    base = cache_dir() / f"{label}-seed{seed}-{spec.key(seed)}"
    return base.with_suffix(".pt"), base.with_suffix(".json")


def trained(name: str = "conv-direct4", seed: int = 0, data: str | None = None) -> tuple[nn.Module, encoding.Encoder]:
    """The trained baseline `name` at `seed` and its encoder, trained on first use, loaded afterwards; with
    `data`, the baseline as trained on that data set (`on_data`)."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    retrain = retrains(name, data)
    spec = on_data(name, data) if retrain else BASELINES[name]
    model = spec.build(seed=seed, **spec.kwargs)
    weights, meta = _paths(name, seed, data)
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
        on = f" on {spec.dataset}" if retrain else ""
        print(f"training baseline {name}{on} seed {seed} (first use; cached afterwards)", file=sys.stderr, flush=True)
        config = dataclasses.replace(spec.config, seed=seed, progress=sys.stderr.isatty())  # the epoch bar on a terminal
        env = _environment()
        t0 = time.perf_counter()
        hist = fit(model, split(name, spec.dataset), spec.encoder, config)
        seconds = time.perf_counter() - t0
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        write_atomic(meta, json.dumps({"name": name, "data": spec.dataset, "seed": seed, "seconds": round(seconds, 1),
                                       "date": dt.date.today().isoformat(), **env, "history": hist.epochs}, indent=1))
        write_atomic(weights, buf.getvalue())  # last: the weights existing means the record does too
    return model, spec.encoder


def record(name: str = "conv-direct4", seed: int = 0, data: str | None = None) -> dict:
    """How the cached weights of `trained(name, seed, data)` were made: history, seconds, date, and the torch
    version, CPU capability, threads and device that trained them."""
    trained(name, seed, data)
    return json.loads(_paths(name, seed, data)[1].read_text())
