"""`Split`: the train, validation and test tensors every method, recipe and run takes, and `split`, the
seeded stratified split of one labelled set into train and test.

`split` makes a stratified train/test split from a seed: the same seed gives the same split on every
machine, because it only uses `torch.Generator` permutations inside each class. A data set that comes
with its own official train/test split (the local ones of `snncomp.data.local`) builds its `Split`
directly.

Settings chosen from data (thresholds, loss weights, temperatures) are chosen on a **validation** part
carved from the training images, never on the test images: `Split.with_validation(fraction, seed)`
moves a class-balanced, seeded fraction of the training images into `val_x`/`val_y`, and
`Split.validation()` is the split whose test part is those validation images, so every evaluation
function measures validation when handed it. The same carving serves every data set (MNIST-5k, digits,
the synthetic events, the local data sets), because it only looks at the labels. The trained baselines
(`snncomp.baselines`) are trained without their validation images, so a setting picked there is picked
on unseen images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from . import encoding

__all__ = ["Split", "split"]


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
