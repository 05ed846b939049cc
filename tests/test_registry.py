"""Registry-driven tests: every registered method is exercised without further wiring."""

from __future__ import annotations

import pytest
import torch

from snncomp import data, encoding, models, registry
from snncomp.train import TrainConfig

TRANSFORMS = [m.name for m in registry.methods(kind="transform")]
MEASURES = [m.name for m in registry.methods(kind="measure")]


@pytest.fixture(scope="module")
def tiny():
    s = data.digits()
    split = data.Split(s.train_x[:256], s.train_y[:256], s.test_x[:64], s.test_y[:64], "digits-tiny")
    return models.conv_snn((1, 8, 8), channels=(4, 8), seed=0), split, encoding.Direct(2)


def test_registered_methods_are_well_formed():
    for m in registry.methods():
        assert m.kind in registry.KINDS and m.keys and m.summary
        assert registry.get(m.name) is m


@pytest.mark.parametrize("name", TRANSFORMS)
def test_transform_returns_new_model_and_leaves_input_untouched(name, tiny):
    """Transforms share one signature: `fn(model, data, encoder, *, config=TrainConfig, ...)`; they
    return a new model, or a result object carrying it as `.model`."""
    model, split, enc = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = registry.get(name).fn(model, split, enc, config=TrainConfig(epochs=1, batch_size=128, progress=False))
    new = getattr(out, "model", out)
    assert isinstance(new, torch.nn.Module) and new is not model
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    with torch.no_grad():
        assert new(enc(split.test_x[:3])).shape == (3, 10)


@pytest.mark.parametrize("name", MEASURES)
def test_measure_runs_on_a_model(name, tiny):
    model, _, _ = tiny
    assert registry.get(name).fn(model) is not None
