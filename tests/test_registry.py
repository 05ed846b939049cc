"""Contract tests over the registry: every registered method is exercised without further wiring.

* every transform leaves its input untouched, returns a `Compressed` whose model runs on the
  encoder it names, passes the caller's loss terms and hooks to every phase it trains, and leaves
  masks that a later plain `fit` keeps;
* every objective returns a finite scalar whose gradient reaches at least one parameter and is finite
  for every parameter it reads (every parameter in its graph);
* every measure returns a report whose numbers are all finite.

A method that needs extra inputs declares them (`register(..., needs=(...))`); `EXTRA` supplies them.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from snncomp import data, metrics, models, pruning, registry, spikes
from snncomp.data import encoding
from snncomp.compress import Compressed
from snncomp.train import Hook, Step, TrainConfig, fit

TRANSFORMS = [m.name for m in registry.methods(kind="transform")]
OBJECTIVES = [m.name for m in registry.methods(kind="objective")]
MEASURES = [m.name for m in registry.methods(kind="measure")]
ONE = TrainConfig(epochs=1, batch_size=128, progress=False)


EXTRA: dict[str, object] = {  # inputs a method may declare with `needs` (a teacher, ...)
    "teacher": (models.conv_snn((1, 8, 8), channels=(8, 16), seed=1), encoding.Direct(2)),
    "target": 100.0,  # synops-loss: a target number of synaptic operations per sample
}


def _extra(method) -> dict:
    missing = [n for n in method.needs if n not in EXTRA]
    assert not missing, f"{method.name} needs {missing}: add them to EXTRA in this test"
    return {n: EXTRA[n] for n in method.needs}


def test_registered_methods_are_well_formed():
    for m in registry.methods():
        assert m.kind in registry.KINDS and m.keys and m.summary
        assert registry.get(m.name) is m
        assert m.fn.__name__ == m.name.replace("-", "_")
        assert m.fn.__module__ == f"snncomp.{m.section.replace('-', '_')}.{m.family.replace('-', '_')}"


def test_registration_rules_are_enforced():
    with pytest.raises(ValueError, match="must be named 'some_method'"):
        registry.register("some-method", kind="measure", taxonomy="pruning/unstructured", keys=("x",))(lambda m: m)

    def misplaced(model):
        """Doc."""

    with pytest.raises(ValueError, match="lives in snncomp.quantization.weights"):
        registry.register("misplaced", kind="measure", taxonomy="quantization/weights", keys=("x",))(misplaced)


class _Probe(Hook):
    def __init__(self) -> None:
        self.steps = 0

    def after_step(self, model, step) -> None:
        self.steps += 1


@pytest.mark.parametrize("name", TRANSFORMS)
def test_transform_contract(name, tiny):
    model, split, enc = tiny
    method = registry.get(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = {"term": 0}

    def term(step: Step) -> torch.Tensor:
        calls["term"] += 1
        return step.logits.sum() * 0.0

    probe = _Probe()
    out = method.fn(model, split, enc, train=ONE, finetune=ONE, loss_terms=[term], hooks=[probe], **_extra(method))
    assert isinstance(out, Compressed) and out.model is not model
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    # the caller's term and hook ride along every phase that trained
    steps_per_epoch = math.ceil(256 / 128)
    trained = len(out.history)
    assert trained > 0 and all("phase" in r for r in out.history)
    assert calls["term"] == probe.steps == trained * steps_per_epoch
    with torch.no_grad():
        assert out.model(out.encoder(split.test_x[:3])).shape == (3, 10)
    # masks it leaves survive a plain fit
    layers = pruning.prunable_layers(out.model)
    masks = pruning.masks_of(layers)
    if masks is not None:
        fit(out.model, split, out.encoder, ONE, evaluate_test=False)
        for n, m in masks.items():
            assert (layers[n].weight[m == 0] == 0).all(), n


@pytest.mark.parametrize("name", OBJECTIVES)
def test_objective_contract(name, tiny):
    model, split, enc = tiny
    method = registry.get(name)
    net = copy.deepcopy(model)
    x, y = enc(split.train_x[:8]), split.train_y[:8]
    with spikes.record(net) as rec, spikes.record_inputs(net) as ins:
        logits = net(x)
    step = Step(net, x, y, logits, rec, 0, 0, synaptic_inputs=ins, images=split.train_x[:8])
    value = method.fn(step, **_extra(method))
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    read = {n: p.grad for n, p in net.named_parameters() if p.grad is not None}  # the parameters it reads
    assert any(g.abs().sum() > 0 for g in read.values()), f"{name}: no parameter gets a gradient"
    bad = [n for n, g in read.items() if not torch.isfinite(g).all()]
    assert not bad, f"{name}: non-finite gradient for {bad}"


def _numbers(report, where="report"):
    """Every number in a report (dicts, lists, tuples, dataclasses, tensors), with where it sits."""
    import dataclasses

    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        report = dataclasses.asdict(report)
    if isinstance(report, dict):
        for k, v in report.items():
            yield from _numbers(v, f"{where}[{k!r}]")
    elif isinstance(report, (list, tuple)):
        for i, v in enumerate(report):
            yield from _numbers(v, f"{where}[{i}]")
    elif isinstance(report, torch.Tensor):
        if report.is_floating_point() or not report.dtype.is_complex:
            yield where, report.double()
    elif isinstance(report, (int, float)) and not isinstance(report, bool):
        yield where, torch.tensor(float(report), dtype=torch.float64)


@pytest.mark.parametrize("name", MEASURES)
def test_measure_contract(name, tiny):
    import inspect

    model, split, encoder = tiny
    method = registry.get(name)
    inputs = {"encoder": encoder, "data": split.with_validation(0.25, 0)}  # what a recipe's measure is given
    params = inspect.signature(method.fn).parameters
    report = method.fn(model, **{k: v for k, v in inputs.items() if k in params}, **_extra(method))
    found = list(_numbers(report))
    assert found, f"{name}: the report holds no numbers"
    bad = [w for w, v in found if not torch.isfinite(v).all()]
    assert not bad, f"{name}: non-finite values at {bad}"


def test_prune_then_plain_fit_keeps_exact_sparsity():
    """The acceptance test of the architecture issue, on the shared baseline architecture (the
    weights are trained briefly here; the cached trained baseline is used by the notebooks)."""
    split = data.mnist5k()
    small = data.Split(split.train_x[:512], split.train_y[:512], split.test_x[:128], split.test_y[:128], "mnist-512")
    enc = encoding.Direct(4)
    base = models.conv_snn(seed=0)
    cfg = TrainConfig(epochs=1, batch_size=128, progress=False)
    res = pruning.magnitude(base, small, enc, sparsity=0.9, finetune=cfg)
    layers = pruning.prunable_layers(res.model)
    total = sum(m.weight.numel() for m in layers.values())
    zeros = round(0.9 * total)
    assert metrics.weight_sparsity(layers) == zeros / total
    fit(res.model, small, enc, cfg, evaluate_test=False)  # plain fit, no hooks
    assert metrics.weight_sparsity(layers) == zeros / total
    # a second, different transform, then a plain fit again
    res2 = pruning.timestep_reduction(res.model, small, enc, steps=(2,), train=cfg)
    layers2 = pruning.prunable_layers(res2.model)
    assert res2.encoder.T == 2 and metrics.weight_sparsity(layers2) == zeros / total
    fit(res2.model, small, res2.encoder, cfg, evaluate_test=False)
    assert metrics.weight_sparsity(layers2) == zeros / total
