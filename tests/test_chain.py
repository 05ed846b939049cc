"""Chains of methods: every (constraint-leaving method, later transform) pair either keeps the constraint on the
model or is refused by `chain.check` before anything trains; `chain.run` tags its history by step and phase,
freezing holds what an earlier step trained, and an error names both steps."""

from __future__ import annotations


import pytest
import torch

from snncomp import chain, compress, data, models, registry, train
from snncomp.data import encoding
from snncomp.chain import ChainError, Step

ONE = {"epochs": 1, "batch_size": 64, "progress": False}  # one optimiser step per phase on 32 images
BUDGETS = {"train": ONE, "finetune": ONE}
# the cheapest options of the methods that would otherwise run long (or need more than the tiny set)
CHEAP: dict[str, dict] = {
    "lottery-ticket": {"rounds": 1, "dense": ONE},
    "lr-rewinding": {"rounds": 1},
    "gradual-magnitude": {"every": 1},
    "timestep-reduction": {"steps": (1,)},
    "s4nn": {"T": 8, "hidden": (8,)},
    "activity-pruning": {"samples": 32},
    "confidence-early-exit": {"threshold": 0.9},
    "q-spinn": {"weight_bits": 4},  # so that it leaves both grids it declares
    "synops-loss": {"target": 100.0},
}
LEAVING = [m.name for m in registry.methods() if m.leaves]
LATER = [m.name for m in registry.methods(kind="transform")]


@pytest.fixture(scope="module")
def setup():
    s = data.digits()
    split = data.Split(s.train_x[:32], s.train_y[:32], s.test_x[:16], s.test_y[:16], "digits-32")
    model = models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)
    teacher = (models.conv_snn((1, 8, 8), channels=(4, 8), seed=1), encoding.Direct(2))
    return model, split, encoding.Direct(2), teacher


def step(name: str, **extra) -> Step:
    options = {**(BUDGETS if registry.get(name).kind == "transform" else {"finetune": ONE}), **CHEAP.get(name, {})}
    return Step(name, {**options, **extra})


_FIRST: dict[str, compress.Compressed] = {}


def first(name: str, setup) -> compress.Compressed:
    """The tiny model after the constraint-leaving method `name` alone (once per module)."""
    if name not in _FIRST:
        model, split, enc, teacher = setup
        _FIRST[name] = chain.run([step(name)], model, split, enc, teachers=teacher)
    return _FIRST[name]


@pytest.fixture
def fit_calls(monkeypatch):
    calls = {"n": 0}
    real = train.fit

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "fit", counting)
    monkeypatch.setattr(compress, "fit", counting)
    return calls


@pytest.mark.parametrize("later", LATER)
@pytest.mark.parametrize("earlier", LEAVING)
def test_pair_keeps_constraint_or_is_refused(earlier, later, setup, fit_calls):
    model, split, enc, teacher = setup
    steps = [step(earlier), step(later)]
    try:
        chain.check(steps, encoder=enc, model=model)
    except ChainError as e:
        assert (e.earlier, e.later) == (0, 1), str(e)
        assert f"step 1 {later!r} cannot follow step 0 {earlier!r}" in str(e)
        with pytest.raises(ChainError):
            chain.run(steps, model, split, enc, teachers=teacher)
        assert fit_calls["n"] == 0  # refused before any training
        return
    start = first(earlier, setup)
    leaves = registry.get(earlier).leaves
    assert set(leaves) <= set(chain.constraints(start.model)), f"{earlier} did not leave {leaves}"
    out = chain.run([steps[1]], start.model, split, start.encoder, teachers=teacher)
    kept = chain.constraints(out.model)
    assert set(leaves) <= set(kept), f"{later} dropped {set(leaves) - set(kept)} left by {earlier}"
    assert chain.broken(out.model) == [], f"{later} after {earlier}: {chain.broken(out.model)}"
    with torch.no_grad():
        assert out.model(out.encoder(split.test_x[:3])).shape == (3, 10)


def test_run_tags_history_and_keeps_mask_and_grid(setup):
    model, split, enc, _ = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    steps = [Step("train", {"train": ONE}), step("magnitude", sparsity=0.5), step("lsq"),
             Step("spike-rate-l1", {"weight": 0.1, "finetune": ONE}, label="fewer spikes"), step("timestep-reduction")]
    out = chain.run(steps, model, split, enc, after_step=lambda j, s, so_far: seen.append((j, len(so_far.history))))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the input is untouched
    assert [j for j, _ in seen] == [0, 1, 2, 3, 4] and seen[-1][1] == len(out.history)
    assert len(out.info["steps"]) == 5
    tags = [(r["step"], r["method"], r["phase"]) for r in out.history]
    assert (0, "train", "train") in tags and (1, "magnitude", "finetune") in tags and (2, "lsq", "lsq") in tags
    assert (3, "spike-rate-l1", "finetune") in tags and (4, "timestep-reduction", "T=1") in tags
    assert [r["label"] for r in out.history if r["step"] == 3] == ["fewer spikes"]
    assert out.encoder.T == 1
    assert {"mask", "weight-grid"} <= set(chain.constraints(out.model)) and chain.broken(out.model) == []


def _steps_of(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith(".scale")}


def test_freeze_holds_lsq_steps_in_later_phases(setup):
    model, split, enc, _ = setup
    after_lsq = {}

    def keep(j, s, so_far):
        if j == 0:
            after_lsq.update(_steps_of(so_far.model))

    train_on = {"train": {**ONE, "lr": 0.05}}
    frozen = chain.run([step("lsq"), Step("train", train_on, freeze=("quantizer-steps",))], model, split, enc,
                       after_step=keep)
    assert after_lsq and all(torch.equal(after_lsq[n], p) for n, p in _steps_of(frozen.model).items())
    scales = [p for n, p in frozen.model.named_parameters() if n.endswith(".scale")]
    assert scales and all(p.requires_grad for p in scales)  # frozen in that step only
    moving = chain.run([step("lsq"), Step("train", train_on)], model, split, enc)
    assert any(not torch.equal(after_lsq[n], p) for n, p in _steps_of(moving.model).items())


def test_freeze_holds_learned_thresholds(setup):
    model, split, enc, _ = setup
    out0 = chain.run([step("learnable-threshold")], model, split, enc)
    out = chain.run([Step("train", {"train": {**ONE, "lr": 0.05}}, freeze=("thresholds",))], out0.model, split, enc)
    for (n, a), b in zip(out0.model.named_modules(), out.model.modules()):
        if hasattr(a, "parametrizations") and "threshold" in a.parametrizations:
            assert torch.equal(a.threshold, b.threshold), n


def test_error_names_both_steps_and_why(setup):
    model, split, enc, _ = setup
    with pytest.raises(ChainError) as e:
        chain.check([step("lsq"), step("magnitude"), step("soft-threshold")])
    assert (e.value.earlier, e.value.later) == (0, 2)
    assert str(e.value).startswith("step 2 'soft-threshold' cannot follow step 0 'lsq': ")
    assert "weight-grid" in str(e.value) and "bakes" in e.value.reason
    with pytest.raises(ChainError, match="step 1 'learnable-threshold' cannot follow step 0 'time-to-first-spike'"):
        chain.check([step("time-to-first-spike"), step("learnable-threshold")], model=model, encoder=enc)


def test_check_refuses_unknown_methods_options_and_missing_teachers(setup):
    model, split, enc, _ = setup
    with pytest.raises(ChainError, match="step 0 'magnitud'.*closest: magnitude"):
        chain.check([Step("magnitud")])
    with pytest.raises(ChainError, match="unknown option 'sparsty'.*closest: sparsity"):
        chain.check([Step("magnitude", {"sparsty": 0.5})])
    with pytest.raises(ChainError, match="freeze"):
        chain.check([Step("train", freeze=("weights",))])
    with pytest.raises(ChainError, match="a measure cannot be a chain step"):
        chain.check([Step("sparsity-report")])
    with pytest.raises(ChainError, match="needs a teacher"):
        chain.run([step("soft-target-distillation")], model, split, enc)


def test_timestep_reduction_rebakes_attention_and_grid_input(setup):
    model, split, enc, _ = setup
    enc4 = encoding.Direct(4)
    out = chain.run([step("mint"), step("timestep-reduction", steps=(2,))], model, split, enc4)
    assert out.encoder.T == 2 and out.encoder.inner.T == 2  # MINT's GridInput re-set, not raised on
    assert chain.broken(out.model) == []
    out = chain.run([step("temporal-wise-attention"), step("timestep-reduction", steps=(2,))], model, split, enc4)
    att = [m for m in out.model.modules() if type(m).__name__ == "TemporalAttention"]
    assert out.encoder.T == 2 and att and all(a.T == 2 for a in att)


def test_declarations_cover_every_method():
    rows = {r["method"]: r for r in chain.declarations()}
    assert set(rows) == {m.name for m in registry.methods() if m.kind != "measure"}
    assert rows["soft-threshold"]["drops"] == ("weight-grid", "early-exit")
    with pytest.raises(ValueError, match="leaves must be"):
        registry.register("x", kind="transform", taxonomy="pruning/unstructured", keys=("k",), leaves=("grid",))


def test_docs_table_matches_declarations():
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "pipeline.md").read_text()
    table = page.split("<!-- chain-declarations:start -->")[1].split("<!-- chain-declarations:end -->")[0]
    assert table.strip() == chain.declarations_table().strip()


def test_a_teacher_named_by_baseline_is_taken_at_the_runs_seed(setup, monkeypatch):
    """Each seed of a student learns from the teacher baseline of the same seed (not always seed 0)."""
    from snncomp import baselines

    model, split, enc, teacher = setup
    asked = []

    def fake_trained(name, seed=0):
        asked.append((name, seed))
        return teacher

    monkeypatch.setattr(baselines, "trained", fake_trained)
    one = train.TrainConfig(epochs=1, batch_size=len(split.train_y), progress=False)
    for seed in (0, 2):
        chain.run([Step("soft-target-distillation", {"teacher": "conv-ann", "train": one})], model, split, enc,
                  seed=seed)
    assert asked == [("conv-ann", 0), ("conv-ann", 2)]
