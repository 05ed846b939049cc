"""Section specs (`benchmarks/specs/*.toml`): every spec loads and validates, run keys are unique, a malformed
spec names its line, and the tables and targets render from a store (fake rows written in tmp_path)."""

import json
import textwrap

import pytest

from snncomp import board, specs
from snncomp.kb import leaderboard, spec_tables

SECTIONS = ("baseline", "distillation", "events", "pruning", "quantization", "spike_reduction")


def test_every_spec_loads_validates_and_has_unique_keys():
    every = specs.all_specs()  # check=True: recipes.validate on every run's recipe
    assert set(SECTIONS) <= set(every)
    keys = []
    for name, spec in every.items():
        assert spec.section == name and spec.runs and spec.tables
        runs = specs.runs(spec)
        assert all(r.recipe.name.startswith(f"{name}/") for r in runs)  # never clashes with the board's names
        keys += [r.key for r in runs]
    assert len(keys) == len(set(keys))
    board_names = {r.recipe.name for r in board.board(seeds=(0,))}
    assert not board_names & {k.split("@")[0] for k in keys}


def test_translations_keep_the_scripts_runs_and_say_what_is_not_a_recipe():
    every = specs.all_specs(check=False)
    assert len(every["pruning"].runs) == 48 and len(every["quantization"].runs) == 19
    assert len(every["distillation"].runs) == 12
    # what is not a chain of registered methods is listed, not dropped
    assert any("S4NN's test accuracy after every epoch" in n for n in every["spike_reduction"].not_recipes)
    assert any("generation timing" in n for n in every["events"].not_recipes)
    # sweeps are runs with measures, shown by sweep tables
    exit_run = every["spike_reduction"].run("exit-rate16").recipe
    assert [m["measure"] for m in exit_run.measures] == ["early-exit-sweep", "early-exit-calibrated"]
    assert every["spike_reduction"].table("exit_table").measure == "early-exit-sweep"
    lottery = every["pruning"].run("lottery-ticket-90-fc256").recipe
    assert lottery.student == {"build": "conv_snn", "hidden": [256]}  # the untrained architecture, as the script
    assert every["distillation"].run("alone").data == "mnist1k"


def test_metrics_named_by_specs_are_computed_by_the_leaderboard():
    row = {"steps": [{"accuracy": 0.9, "spikes_per_sample": 10.0, "synops": 100.0},
                     {"accuracy": 0.8, "spikes_per_sample": 4.0, "synops": 50.0, "params": 7, "dense_synops": 9}]}
    got = leaderboard._metrics(row)
    assert set(specs.METRICS) <= set(got)
    assert got["fewer_spikes"] == pytest.approx(60.0) and got["fewer_synops"] == pytest.approx(50.0)


SPEC = """\
[[run]]
name = "a"
baseline = "conv-direct4"
seeds = [0, 1]
steps = [
  { method = "magnitude", sparsity = 0.9 },
  { method = "uniform-ptq", bits = 4 },
]

[[run]]
name = "b"
baseline = "conv-direct4"
steps = [{ method = "uniform-ptq", bits = 8 }]

[[table]]
name = "t"
runs = ["a", "a@1", "b"]
columns = ["accuracy", "drop", "gain"]
reference = "b"
caption = "A caption."

[[target]]
text = "a keeps accuracy"
run = "a"
metric = "drop"
op = "<="
bound = 2.0

[[target]]
text = "a or b beats 95 %"
runs = ["a", "b"]
metric = "accuracy"
op = ">="
bound = 95.0

[[target]]
text = "b is small"
run = "b"
metric = "smaller"
op = ">="
bound = 4.0
"""


@pytest.mark.parametrize("old, new, line, message", [
    ('method = "uniform-ptq", bits = 4', 'method = "uniform-ptqq", bits = 4', 7, "unknown method 'uniform-ptqq'"),
    ("sparsity = 0.9", "sparsty = 0.9", 6, "unknown option 'sparsty'"),
    ('"accuracy", "drop"', '"accuracy", "dropp"', 18, "unknown column 'dropp'"),
    ('runs = ["a", "a@1", "b"]', 'runs = ["a", "c"]', 17, "unknown run 'c'"),
    ('runs = ["a", "a@1", "b"]', 'runs = ["a@3"]', 17, "step number from 0 to 2"),
    ('op = "<="', 'op = "<"', 26, "op must be"),
    ('name = "b"', 'name = "a"', 11, "used twice"),
    ('name = "b"', 'name = "b', 11, "TOML syntax error"),
    ('caption = "A caption."', 'colour = "red"', 20, "unknown key 'colour'"),
])
def test_malformed_spec_names_its_line(old, new, line, message):
    assert old in SPEC
    with pytest.raises(specs.SpecError) as e:
        specs.loads(SPEC.replace(old, new, 1), source="benchmarks/specs/x.toml")
    assert str(e.value).startswith(f"benchmarks/specs/x.toml:{line}:"), str(e.value)
    assert message in str(e.value)


def test_reference_columns_need_a_reference():
    with pytest.raises(specs.SpecError, match="reference run"):
        specs.loads(SPEC.replace('reference = "b"\n', ""), source="x.toml")


def _fake(base, spec_text=SPEC):
    (base / "benchmarks" / "specs").mkdir(parents=True)
    (base / "benchmarks" / "results").mkdir(parents=True)
    (base / "benchmarks" / "specs" / "x.toml").write_text(spec_text)
    spec = specs.loads(spec_text, source="x.toml", section="x")
    return spec, {(r.recipe.name.split("/")[1], r.seed): r.key for r in specs.runs(spec)}


def _row(key, seed, accs, status="ok"):
    steps = [{"accuracy": a, "spikes_per_sample": 10.0} for a in accs]
    return {"key": key, "recipe": key.split("@")[0], "baseline": "conv-direct4", "data": "mnist5k", "seed": seed,
            "status": status, "error": None if status == "ok" else "ValueError: boom",
            "steps": steps if status == "ok" else []}


def test_spec_table_renders_mean_sd_and_not_run_yet(tmp_path):
    _, keys = _fake(tmp_path)
    rows = [_row(keys[("a", 0)], 0, [0.97, 0.95, 0.94]), _row(keys[("a", 1)], 1, [0.97, 0.96, 0.92]),
            _row("a@conv-direct4/mnist5k/seed0#stale", 0, [0.1, 0.1, 0.1])]  # another digest: not this spec's run
    (tmp_path / "benchmarks" / "results" / "board.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    md = spec_tables.spec_table(tmp_path, "x", "t")
    lines = {ln.split(" | ")[0].strip("| `"): ln for ln in md.splitlines() if ln.startswith("| `")}
    assert md.startswith("A caption.")
    assert "| 0,1 | 93.00 ± 1.41 | 4.00 ± 1.41 |" in lines["a"]  # mean ± sd over the two seeds
    assert "| 0,1 | 95.50 ± 0.71 | 1.50 ± 0.71 |" in lines["a@1"]  # after the first step
    assert "not run yet" in lines["b"] and "not run yet" not in lines["a"]
    assert "snncomp bench --spec x --output benchmarks/results/board.jsonl" in md
    assert "benchmarks/specs/x.toml" in md


def test_gain_against_the_reference_run_seed_by_seed(tmp_path):
    _, keys = _fake(tmp_path)
    rows = [_row(keys[("a", s)], s, [0.97, 0.95, a]) for s, a in ((0, 0.94), (1, 0.92))]
    rows += [_row(keys[("b", s)], s, [0.97, b]) for s, b in ((0, 0.90), (1, 0.91), (2, 0.5))]
    (tmp_path / "benchmarks" / "results" / "board.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    md = spec_tables.spec_table(tmp_path, "x", "t")
    a = next(ln for ln in md.splitlines() if ln.startswith("| `a` "))
    assert a.endswith("| 2.50 ± 2.12 |")  # (94 - 90) and (92 - 91): seed 2 of b has no partner in a


def test_targets_met_missed_and_not_run(tmp_path):
    _, keys = _fake(tmp_path)
    rows = [_row(keys[("a", s)], s, [0.97, 0.96, 0.96]) for s in (0, 1)]
    rows += [_row(keys[("b", 0)], 0, [0.97, 0.90])]
    (tmp_path / "benchmarks" / "results" / "board.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    md = spec_tables.spec_targets(tmp_path, "x")
    verdict = {ln.split(" | ")[0].lstrip("| "): ln.rstrip(" |").rsplit("| ", 1)[1] for ln in md.splitlines()
               if ln.startswith("| ") and not ln.startswith(("| target", "|---"))}
    assert verdict == {"a keeps accuracy": "met", "a or b beats 95 %": "met", "b is small": "not run"}
    assert "`a`" in md.splitlines()[3]  # the best of the two runs is the one judged
    rows = [_row(keys[("a", 0)], 0, [0.97, 0.90, 0.90])]
    (tmp_path / "benchmarks" / "results" / "board.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = specs.loads(SPEC, source="x.toml")
    judged = spec_tables.judge(spec, spec_tables._rows(tmp_path, spec))
    assert [j["met"] for j in judged] == [False, False, None]


def test_failed_seeds_are_named(tmp_path):
    _, keys = _fake(tmp_path)
    rows = [_row(keys[("b", 0)], 0, [0.97, 0.9]), _row(keys[("b", 1)], 1, [], status="error")]
    (tmp_path / "benchmarks" / "results" / "board.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    md = spec_tables.spec_table(tmp_path, "x", "t")
    assert "| 0 (failed: 1) |" in md


def test_spec_board_selects_runs_seeds_and_quick_budgets():
    runs = specs.spec_board(["pruning"], only=["magnitude-90", "pruning/rigl-90"])
    assert sorted({r.recipe.name for r in runs}) == ["pruning/magnitude-90", "pruning/rigl-90"]
    assert sorted({r.seed for r in runs}) == [0, 1, 2]
    quick = specs.spec_board(["pruning,quantization".split(",")[0]], only=["rigl-90"], quick=True)
    assert [r.seed for r in quick] == [0] and quick[0].recipe.steps[0].options["train"]["epochs"] == 1
    assert len(specs.spec_board(["all"], seeds=(5,), only=["ptq-4", "alone"])) == 2
    with pytest.raises(KeyError, match="no spec named"):
        specs.spec_board(["pruningg"])
    with pytest.raises(KeyError, match="no run named"):
        specs.spec_board(["pruning"], only=["nothing"])


def test_cli_bench_spec_refuses_an_unknown_spec(capsys):
    from snncomp.kb import cli

    assert cli.main(["bench", "--spec", "nosuch"]) == 2
    assert "no spec named nosuch" in capsys.readouterr().err


def test_a_run_can_name_a_recipe_file():
    text = textwrap.dedent("""\
        [[run]]
        name = "pq"
        recipe = "recipes/prune-quantize.toml"

        [[table]]
        name = "t"
        runs = ["pq@1", "pq"]
        columns = ["accuracy", "sparsity", "bits"]
        """)
    spec = specs.loads(text, source="s.toml", section="s")
    r = spec.run("pq")
    assert r.recipe.name == "s/pq" and r.baseline == "conv-direct4" and len(r.recipe.steps) == 2


def _fake_run(run, device="cpu"):
    acc = 0.9 + 0.01 * run.seed
    return {"steps": [{"step": None, "method": "start", "accuracy": 0.97}, {"step": 0, "method": "x", "accuracy": acc}]}


def test_bench_spec_fills_the_store_that_the_table_reads(tmp_path, monkeypatch, capsys):
    import shutil

    from snncomp import runner
    from snncomp.kb import cli

    monkeypatch.setattr(runner, "run_recipe", _fake_run)
    monkeypatch.setattr(runner, "_prepare", lambda runs, threads, show, jobs=1: None)
    (tmp_path / "benchmarks" / "specs").mkdir(parents=True)
    shutil.copy(specs.SPECS / "quantization.toml", tmp_path / "benchmarks" / "specs")
    out = tmp_path / "benchmarks" / "results" / "board.jsonl"
    argv = ["bench", "--spec", "quantization", "--only", "ptq-4,quantization/ptq-2", "--output", str(out),
            "--no-progress"]
    assert cli.main(argv) == 0
    assert "running 6" in capsys.readouterr().err
    rows = runner.Store(out).rows()
    assert sorted({r["recipe"] for r in rows}) == ["quantization/ptq-2", "quantization/ptq-4"]
    md = spec_tables.spec_table(tmp_path, "quantization", "table")
    ptq4 = next(ln for ln in md.splitlines() if ln.startswith("| `ptq-4` "))
    assert "| 0,1,2 | 91.00 ± 1.00 | 6.00 ± 1.00 |" in ptq4
    assert "not run yet" in next(ln for ln in md.splitlines() if ln.startswith("| `ptq-8` "))
    targets = spec_tables.spec_targets(tmp_path, "quantization")
    assert "| missed |" in next(ln for ln in targets.splitlines() if "(compact) within 0.5 point" in ln)
    assert cli.main(argv[:1] + ["--spec", "quantization", "--seeds", "7", "--only", "ptq-4", "--output", str(out),
                                "--no-progress"]) == 0
    assert {r["seed"] for r in runner.Store(out).rows()} == {0, 1, 2, 7}


def test_site_hook_replaces_table_and_targets_markers(tmp_path, monkeypatch):
    import importlib.util

    path = specs.ROOT / "hooks" / "sitegen.py"
    spec = importlib.util.spec_from_file_location("sitegen_under_test", path)
    sitegen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sitegen)
    _, keys = _fake(tmp_path)
    (tmp_path / "benchmarks" / "results" / "board.jsonl").write_text(
        json.dumps(_row(keys[("b", 0)], 0, [0.97, 0.9])) + "\n")
    monkeypatch.setitem(sitegen._STATE, "base", tmp_path)
    monkeypatch.setitem(sitegen._STATE, "k", None)
    md = sitegen.on_page_markdown("before\n\n<!-- table: x t -->\n\n<!-- targets: x -->\n", None, None, None)
    assert "<!--" not in md and md.startswith("before")
    assert "| `b` | conv-direct4 | 0 | 90.00 |" in md and "| b is small | `b` |" in md


def test_sweep_tables_render_a_measure_report_per_entry(tmp_path):
    """A sweep table shows one line per entry of a measure's rows (mean ± sd over seeds), a scalar measure
    field is a column of an ordinary table and a target, and a sweep over a run that does not measure it is
    refused with the line."""
    import json
    import shutil

    from snncomp.kb import spec_tables

    text = """
[[run]]
name = "as-is"
baseline = "conv-direct4"
seeds = [0, 1]
measure = [{ measure = "early-exit-calibrated" }, { measure = "early-exit-sweep", thresholds = [0.5, 0.9] }]
steps = [{ method = "train", train = { epochs = 0 } }]

[[table]]
name = "sweep"
measure = "early-exit-sweep"
runs = ["as-is"]
columns = ["threshold", "average_steps"]

[[table]]
name = "plain"
runs = ["as-is"]
columns = ["accuracy", "m:early-exit-calibrated.average_steps"]

[[target]]
text = "few steps"
run = "as-is"
metric = "m:early-exit-calibrated.average_steps"
op = "<="
bound = 2.0
"""
    (tmp_path / "benchmarks" / "specs").mkdir(parents=True)
    (tmp_path / "benchmarks" / "specs" / "demo.toml").write_text(text)
    spec = specs.load(tmp_path / "benchmarks" / "specs" / "demo.toml")
    rows = []
    for run in specs.runs(spec):
        sweep = {"rows": [{"threshold": th, "average_steps": 2.0 + run.seed + th} for th in (0.5, 0.9)]}
        rows.append({"key": run.key, "recipe": run.recipe.name, "seed": run.seed, "status": "ok", "steps": [
            {"accuracy": 0.9}, {"accuracy": 0.9, "measures": {"early-exit-sweep": sweep,
                                                              "early-exit-calibrated": {"average_steps": 1.0 + run.seed}}}]})
    store = tmp_path / leaderboard.STORE
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sweep = spec_tables.spec_table(tmp_path, "demo", "sweep")
    assert "| `as-is` | 1 | 0,1 | 0.5000 | 3.00 ± 0.71 |" in sweep
    assert "| `as-is` | 2 | 0,1 | 0.9000 | 3.40 ± 0.71 |" in sweep
    plain = spec_tables.spec_table(tmp_path, "demo", "plain")
    assert "1.50 ± 0.71" in plain and "early-exit-calibrated: average_steps" in plain
    assert "| met |" in spec_tables.spec_targets(tmp_path, "demo")
    bad = text.replace('measure = "early-exit-sweep"\nruns', 'measure = "most-spikes"\nruns')
    with pytest.raises(specs.SpecError, match=r"demo.toml:\d+: run 'as-is' does not measure 'most-spikes'"):
        specs.loads(bad, source="demo.toml")
    shutil.rmtree(tmp_path / "benchmarks")


def test_views_compute_energy_assumptions_and_rankings_from_the_rows(tmp_path):
    """The `energy-assumptions` view prices the SNN's and the ANN's stored counts with `energy.compare`
    (so it agrees with calling it directly); the `ranking` view orders runs per column and says where an
    order differs from the first column's."""
    import json
    from types import SimpleNamespace

    from snncomp import energy

    text = """
[[run]]
name = "snn"
baseline = "conv-direct4"
seeds = [0]
steps = [{ method = "train", train = { epochs = 0 } }]

[[run]]
name = "ann"
baseline = "conv-ann"
seeds = [0]
steps = [{ method = "train", train = { epochs = 0 } }]

[[table]]
name = "assumptions"
view = "energy-assumptions"
runs = ["snn", "ann"]

[[table]]
name = "rank"
view = "ranking"
runs = ["snn", "ann"]
columns = ["synops", "spikes"]
"""
    folder = tmp_path / "benchmarks" / "specs"
    folder.mkdir(parents=True)
    (folder / "demo.toml").write_text(text)
    spec = specs.load(folder / "demo.toml")
    counts = {"snn": {"effective_macs": 100.0, "effective_acs": 1000.0, "neuron_updates": 50.0, "dense_synops": 5000.0,
                      "synops": 1100.0, "spikes_per_sample": 9.0, "accuracy": 0.9},
              "ann": {"effective_macs": 800.0, "effective_acs": 0.0, "neuron_updates": 0.0, "dense_synops": 1000.0,
                      "synops": 800.0, "spikes_per_sample": 20.0, "accuracy": 0.9}}
    rows = [{"key": run.key, "recipe": run.recipe.name, "seed": 0, "status": "ok",
             "steps": [counts[run.recipe.name.split("/")[1]]] * 2} for run in specs.runs(spec)]
    store = tmp_path / leaderboard.STORE
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = spec_tables.spec_table(tmp_path, "demo", "assumptions")
    want = energy.compare(SimpleNamespace(**counts["snn"]), SimpleNamespace(**counts["ann"]), "int8").ratio("mac", "zero_skipping")
    assert f"| int8 | mac | zero_skipping | {want:.3f} |" in got
    ranked = spec_tables.spec_table(tmp_path, "demo", "rank")
    assert "| `snn` | 2 | 1 |" in ranked and "| `ann` | 1 | 2 |" in ranked
    assert "Order differs from synaptic ops / sample under: spikes / sample" in ranked
    with pytest.raises(specs.SpecError, match="unknown view 'rankings'"):
        specs.loads(text.replace('view = "ranking"', 'view = "rankings"'), source="demo.toml")
