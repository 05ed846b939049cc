"""Fixtures the unit tests share: a tiny slice of scikit-learn's digits and a tiny conv SNN for it."""

import pytest

from snncomp import data, models
from snncomp.data import encoding


@pytest.fixture(scope="module")
def tiny_split() -> data.Split:
    """256 training and 64 test images of the 8x8 digits."""
    s = data.digits()
    return data.Split(s.train_x[:256], s.train_y[:256], s.test_x[:64], s.test_y[:64], "digits-tiny")


@pytest.fixture(scope="module")
def tiny(tiny_split):
    """(a fresh conv SNN with 4 and 8 channels, `tiny_split`, `Direct(2)`), once per test module."""
    return models.conv_snn((1, 8, 8), channels=(4, 8), seed=0), tiny_split, encoding.Direct(2)
