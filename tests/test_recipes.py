"""Recipes: TOML round trip, validation naming the file line, apply measuring every step, the CLI."""

from __future__ import annotations

import re
import tomllib

import pytest
import torch

from snncomp import chain, data, models, recipes
from snncomp.data import encoding
from snncomp.train import TrainConfig

HEAD = 'name = "r"\nbaseline = "conv-direct4"\ndata = "mnist5k"\n'


def python_recipe() -> recipes.Recipe:
    return recipes.Recipe(
        name="py", description='quotes " and \\ and é\nnew line', baseline="conv-direct4", data="mnist5k",
        student={"build": "conv_snn", "channels": (8, 16)},
        steps=(chain.Step("magnitude", {"sparsity": 0.9, "finetune": TrainConfig(epochs=2, lr=1e-5)}, label="prune"),
               chain.Step("lsq", {"bits": 4, "per_channel": True}, freeze=()),
               chain.Step("target-firing-rate", {"target": 0.05, "weight": 2}, freeze=("quantizer-steps",)),
               chain.Step("timestep-reduction", {"steps": (2, 1), "train": {"epochs": 1}})))


def test_round_trip_toml_and_dict():
    r = python_recipe()
    text = recipes.dumps(r)
    assert tomllib.loads(text)["step"][0]["finetune"] == {"epochs": 2, "lr": 1e-5}  # valid TOML, budgets as tables
    back = recipes.loads(text)
    assert back == r and recipes.from_dict(recipes.to_dict(r)) == r
    assert back.steps[3].options["steps"] == [2, 1] and back.steps[1].freeze == ()
    assert back.lines == tuple(i + 1 for i, line in enumerate(text.splitlines()) if line == "[[step]]")
    assert recipes.dumps(back) == text


def test_option_named_like_a_step_key_round_trips():
    r = recipes.Recipe(name="x", steps=(chain.Step("train", {"train": {"epochs": 1}}, label="control"),))
    assert recipes.loads(recipes.dumps(r)) == r


def test_none_cannot_be_written():
    r = recipes.Recipe(name="x", steps=(chain.Step("lsq", {"first_last_bits": None}),))
    with pytest.raises(recipes.RecipeError, match="no null"):
        recipes.dumps(r)


def test_builtin_recipes_load_validate_and_round_trip():
    found = recipes.builtin()
    assert {"distil-prune-quantize", "targets"} <= set(found)
    for name, r in found.items():
        recipes.validate(r)
        assert recipes.loads(recipes.dumps(r)) == r, name
    example = found["distil-prune-quantize"]
    assert [s.method for s in example.steps] == ["soft-target-distillation", "magnitude", "mint", "spike-rate-l1",
                                                "timestep-reduction"]
    assert example.student["build"] == "conv_snn"


def step(method: str, **options) -> str:
    body = "".join(f"{k} = {v}\n" for k, v in options.items())
    return f'\n[[step]]\nmethod = "{method}"\n{body}'


# (recipe text, the line the error must name, words the message must contain)
MALFORMED = {
    "unknown method": (HEAD + step("magnitude") + step("lsqq", bits=4), 9, ["step 2 'lsqq'", "closest: lsq"]),
    "unknown option": (HEAD + step("magnitude") + step("lsq", bitz=4), 10, ["unknown option 'bitz'", "closest: bits"]),
    "bad value type": (HEAD + step("lsq", bits='"four"'), 7, ["'bits'", "expected int", "'four'"]),
    "float for int": (HEAD + step("lsq", bits=4.5), 7, ["expected int"]),
    "out of range": (HEAD + step("magnitude", sparsity=1.5), 7, ["sparsity must lie in [0, 1)"]),
    "bad budget setting": (HEAD + step("magnitude", finetune="{ epoch = 2 }"), 7,
                           ["unknown training setting 'epoch'", "closest: epochs"]),
    "bad budget value": (HEAD + step("magnitude", finetune="{ epochs = -1 }"), 7, ["epochs >= 0"]),
    "budget not a table": (HEAD + step("magnitude", finetune=2), 7, ["finetune must be a table"]),
    "missing teacher": (HEAD + step("magnitude") + step("soft-target-distillation", temperature=2.0), 8,
                        ["step 2 'soft-target-distillation'", "missing teacher", "teacher = "]),
    "unknown teacher": (HEAD + step("soft-target-distillation", teacher='"conv-an"'), 7,
                        ["unknown teacher baseline 'conv-an'", "closest: conv-ann"]),
    "missing option": (HEAD + step("synops-loss"), 5, ["missing option 'target'"]),
    "steps not below T": (HEAD + step("timestep-reduction", steps="[2]") + step("timestep-reduction", steps="[2, 1]"),
                          11, ["step 2 'timestep-reduction'", "below the encoder's T = 2"]),
    "measure as step": (HEAD + step("sparsity-report"), 6, ["is a measure"]),
    "bad freeze": (HEAD + step("lsq", freeze=3), 5, ["'freeze' must be a list"]),
    "step without method": (HEAD + "\n[[step]]\nbits = 4\n", 5, ["needs a 'method'"]),
    "unknown top-level key": ('name = "r"\nbaseline = "conv-direct4"\nstudnet = { build = "conv_snn" }\n'
                              + step("lsq"), 3, ["unknown top-level key 'studnet'", "closest: student"]),
    "unknown baseline": ('name = "r"\n\nbaseline = "conv-direct"\n' + step("lsq"), 3,
                         ["unknown baseline 'conv-direct'", "conv-direct4"]),
    "baseline and data disagree": ('name = "r"\nbaseline = "conv-direct4"\ndata = "digits"\n' + step("lsq"), 3,
                                   ["trained on 'mnist5k'"]),
    "bad student": ('name = "r"\nstudent = { build = "conv_snn", chanels = [8] }\n' + step("lsq"), 2,
                    ["unknown student option 'chanels'", "closest: channels"]),
    "no steps": ('name = "r"\n', 1, ["at least one [[step]]"]),
    "toml syntax": (HEAD + step("lsq") + "bits = = 4\n", 7, ["TOML syntax error"]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_recipe_names_file_line_and_step(case, tmp_path):
    text, line, words = MALFORMED[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(recipes.RecipeError) as err:
        recipes.validate(recipes.load(path))
    msg = str(err.value)
    assert msg.startswith(f"{path}:{line}: "), msg
    for w in words:
        assert w in msg, (w, msg)


def test_impossible_order_names_both_steps_and_lines(tmp_path):
    # LSQ's weight quantizers would be dropped by soft-threshold, which bakes its input (the example)
    path = tmp_path / "order.toml"
    path.write_text(HEAD + step("lsq", bits=4) + step("soft-threshold", sparsity=0.5))
    with pytest.raises(recipes.RecipeError) as err:
        recipes.validate(recipes.load(path))
    assert str(err.value).startswith(f"{path}:9: step 2 'soft-threshold': cannot follow step 1 'lsq' ({path}:5): ")


def test_chain_error_is_mapped_to_the_later_steps_line(tmp_path, monkeypatch):
    def refuse(steps, **_):
        raise chain.ChainError(2, steps[2].method, "a reason", 0, steps[0].method)

    monkeypatch.setattr(chain, "check", refuse)
    path = tmp_path / "x.toml"
    path.write_text(HEAD + step("magnitude") + step("lsq") + "\n\n" + step("mint"))
    with pytest.raises(recipes.RecipeError) as err:
        recipes.validate(recipes.load(path))
    assert str(err.value) == f"{path}:13: step 3 'mint': cannot follow step 1 'magnitude' ({path}:5): a reason"


def test_teachers_given_to_apply_satisfy_a_step_without_teacher_option():
    r = recipes.loads(HEAD + step("soft-target-distillation"))
    with pytest.raises(recipes.RecipeError, match="missing teacher"):
        recipes.validate(r)
    recipes.validate(r, teachers={0: "conv-ann"})
    recipes.validate(r, teachers="conv-ann")


def tiny_split(n: int = 96) -> data.Split:
    s = data.mnist5k()
    return data.Split(s.train_x[:n], s.train_y[:n], s.test_x[:n], s.test_y[:n], "tiny").with_validation(0.25, 0)


def test_apply_measures_every_step_and_leaves_the_input_alone():
    split = tiny_split()
    model = models.conv_snn(channels=(4, 8), seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = recipes.Recipe(name="t", steps=(
        chain.Step("magnitude", {"sparsity": 0.5, "finetune": {"epochs": 1}}),
        chain.Step("spike-rate-l1", {"weight": 1.0, "finetune": {"epochs": 1}}, label="quiet")))
    seen = []
    out = recipes.apply(r, model, split, encoding.Direct(2), seed=1, progress=False, on_report=seen.append)
    assert seen == out.reports and len(out.reports) == 3
    assert [(p["step"], p["method"], p["label"]) for p in out.reports] == [
        (None, "start", "start"), (0, "magnitude", "magnitude"), (1, "spike-rate-l1", "quiet")]
    for p in out.reports:
        assert 0.0 <= p["accuracy"] <= 1.0 and p["energy_pj"]["45nm-fp32"] > 0 and p["T"] == 2
    assert out.reports[0]["connection_sparsity"] < 0.05
    assert out.reports[1]["connection_sparsity"] == pytest.approx(0.5, abs=0.02)
    assert out.reports[2]["connection_sparsity"] == pytest.approx(0.5, abs=0.02)  # the mask is kept
    assert {r["step"] for r in out.compressed.history} == {0, 1}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_apply_seed_reaches_the_budgets_and_repeats():
    split = tiny_split()
    model = models.conv_snn(channels=(4, 8), seed=0)
    r = recipes.Recipe(name="t", steps=(chain.Step("train", {"train": {"epochs": 1}}),))
    a = recipes.apply(r, model, split, encoding.Direct(2), seed=3, measure=False, progress=False)
    b = recipes.apply(r, model, split, encoding.Direct(2), seed=3, measure=False, progress=False)
    c = recipes.apply(r, model, split, encoding.Direct(2), seed=4, measure=False, progress=False)
    assert a.reports == [] and a.compressed.history[0]["loss"] == b.compressed.history[0]["loss"]
    assert a.compressed.history[0]["loss"] != c.compressed.history[0]["loss"]


def test_apply_starts_from_the_student():
    split = tiny_split()
    model = models.conv_snn(channels=(4, 8), seed=0)
    r = recipes.Recipe(name="s", student={"build": "conv_snn", "channels": [2, 4]},
                       steps=(chain.Step("train", {"train": {"epochs": 1}}),))
    out = recipes.apply(r, model, split, encoding.Direct(2), progress=False)
    assert out.reports[0]["params"] > out.reports[1]["params"]  # start: the model passed in; then the student
    convs = [m for m in out.compressed.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [2, 4]


def test_cli_compress_prints_every_step(tmp_path, capsys):
    from snncomp.kb import cli

    path = tmp_path / "quick.toml"
    path.write_text('name = "quick"\nbaseline = "digits-conv-direct4"\n'
                    + step("magnitude", sparsity=0.5, finetune="{ epochs = 0 }")
                    + step("uniform-ptq", bits=8, label='"8-bit"'))
    out = tmp_path / "m.pt"
    code = cli.main(["compress", str(path), "--out", str(out), "--threads", "1", "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0, text
    rows = [line for line in text.splitlines() if re.match(r"^(start|magnitude|8-bit)\s", line)]
    assert [r.split()[0] for r in rows] == ["start", "magnitude", "8-bit"]
    saved = torch.load(out, weights_only=False)
    assert recipes.loads(saved["recipe"]) == recipes.load(path) and len(saved["reports"]) == 3


def test_cli_compress_malformed_exits_2_with_line(tmp_path, capsys):
    from snncomp.kb import cli

    path = tmp_path / "bad.toml"
    path.write_text(HEAD + step("lsq", bitz=4))
    assert cli.main(["compress", str(path)]) == 2
    assert f"{path}:7: step 1 'lsq': unknown option 'bitz'" in capsys.readouterr().err
