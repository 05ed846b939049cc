"""The runner and its result store: keys, torn lines, errors, resume, executors, provenance, the board,
`snncomp bench`, and the reproducibility records of the baselines."""

import json
import os
import subprocess

import pytest
import torch

from snncomp import baselines, chain, models, recipes, registry, runner
from snncomp.data import encoding
from snncomp.kb import cli
from snncomp.train import TrainConfig

VOLATILE = ("seconds", "cpu_seconds", "date")  # what differs between two runs of the same thing


def _recipe(name: str, sparsity: float = 0.5, **extra) -> recipes.Recipe:
    return recipes.Recipe(name=name, steps=(chain.Step("magnitude", {"sparsity": sparsity}),), **extra)


def _runs(n: int = 4) -> list[runner.Run]:
    return [runner.Run(_recipe(f"r{i}"), "conv-direct4", seed) for i in range(n // 2) for seed in (0, 1)]


def fake_run(run: runner.Run, device: str) -> dict:
    """A run without training: deterministic measurements from the run, and the threads it ran with."""
    acc = 0.5 + 0.01 * run.seed + 0.1 * len(run.recipe.name)
    return {"steps": [{"step": None, "method": "start", "accuracy": 0.9, "ratio": float("inf")},
                      {"step": 0, "method": run.recipe.steps[0].method, "accuracy": acc,
                       "torch_threads_seen": torch.get_num_threads(), "energy_pj": {"45nm-fp32": 1.0}}]}


def failing_run(run: runner.Run, device: str) -> dict:
    if run.recipe.name == "r0" and run.seed == 1:
        raise RuntimeError("this run breaks")
    return fake_run(run, device)


def _stable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def test_run_key_names_the_run_and_hashes_the_recipe():
    run = runner.Run(_recipe("prune"), "conv-direct4", 2)
    assert run.data == "mnist5k"
    assert run.key.startswith("prune@conv-direct4/mnist5k/seed2#") and len(run.key.split("#")[1]) == 8
    assert runner.Run(_recipe("prune", description="other words"), "conv-direct4", 2).key == run.key
    assert runner.Run(_recipe("prune", 0.8), "conv-direct4", 2).key != run.key  # another recipe content
    assert runner.Run(_recipe("prune"), "conv-direct4", 3).key != run.key
    with pytest.raises(KeyError, match="unknown baseline"):
        runner.Run(_recipe("prune"), "no-such-baseline")


def test_store_cuts_a_torn_last_line(tmp_path):
    path = tmp_path / "runs.jsonl"
    store = runner.Store(path)
    store.append({"key": "a", "status": "ok"})
    store.append({"key": "b", "status": "error"})
    with open(path, "ab") as fh:  # a process killed in the middle of writing its row
        fh.write(b'{"key": "c", "stat')
    reopened = runner.Store(path)
    assert reopened.repaired == len(b'{"key": "c", "stat')
    assert path.read_bytes().endswith(b"\n")
    assert [r["key"] for r in reopened.rows()] == ["a", "b"] and reopened.done() == {"a"}
    assert runner.Store(path).repaired == 0  # a whole file is left as it is
    with pytest.raises(ValueError):  # a row that is not strict JSON is refused, not half-written
        reopened.append({"key": "c", "value": float("nan")})
    assert len(reopened.rows()) == 2


def test_failing_run_is_recorded_the_others_go_on_and_a_rerun_retries_it(tmp_path):
    store = runner.Store(tmp_path / "runs.jsonl")
    rows = runner.execute(_runs(), store, run_fn=failing_run, progress=False)
    assert [r["status"] for r in rows] == ["ok", "error", "ok", "ok"]
    bad = rows[1]
    assert bad["error"] == "RuntimeError: this run breaks"
    assert any("this run breaks" in line for line in bad["traceback"]) and bad["steps"] == []
    ok = rows[0]
    assert ok["accuracy"] == pytest.approx(0.5 + 0.1 * 2) and ok["energy_pj"] == {"45nm-fp32": 1.0}
    assert "method" not in ok and len(ok["steps"]) == 2
    assert ok["steps"][0]["ratio"] is None  # a non-finite number is stored as null, never breaking the row
    calls = []

    def counting(run, device):
        calls.append(run.key)
        return fake_run(run, device)

    rows = runner.execute(_runs(), store, run_fn=counting, progress=False)
    assert calls == [bad["key"]]  # only the failed run is done again
    assert [r["status"] for r in rows] == ["ok"] * 4
    assert len(store.rows()) == 5 and store.done() == {r.key for r in _runs()}


def test_rows_carry_provenance(tmp_path):
    rows = runner.execute(_runs(2), tmp_path / "runs.jsonl", run_fn=fake_run, progress=False, threads=1,
                          command="snncomp bench --only r0")
    r = rows[0]
    for k in ("command", "commit", "date", "machine", "torch", "cpu_capability", "threads", "device", "seconds"):
        assert k in r, k
    assert r["command"] == "snncomp bench --only r0" and r["device"] == "cpu" and r["threads"] == 1
    assert r["torch"] == torch.__version__ and r["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert r["commit"] is None or len(r["commit"]) == 40
    assert r["torch_threads_seen"] == 1 and r["seconds"] >= 0
    assert {k: r[k] for k in ("recipe", "kind", "baseline", "data", "seed")} == \
        {"recipe": "r0", "kind": "recipe", "baseline": "conv-direct4", "data": "mnist5k", "seed": 0}


def test_interrupted_run_resumes_to_the_rows_of_an_uninterrupted_one(tmp_path):
    whole = runner.execute(_runs(), tmp_path / "whole.jsonl", run_fn=fake_run, progress=False, command="c")
    calls = []

    def interrupted(run, device):
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C (or a kill) during the third run
        calls.append(run.key)
        return fake_run(run, device)

    path = tmp_path / "resumed.jsonl"
    with pytest.raises(KeyboardInterrupt):
        runner.execute(_runs(), path, run_fn=interrupted, progress=False, command="c")
    assert len(runner.Store(path).rows()) == 2
    again = []

    def resumed(run, device):
        again.append(run.key)
        return fake_run(run, device)

    rows = runner.execute(_runs(), path, run_fn=resumed, progress=False, command="c")
    assert again == [r.key for r in _runs()[2:]]  # the finished two are not redone
    assert _stable(rows) == _stable(whole)
    assert _stable(runner.Store(path).rows()) == _stable(runner.Store(tmp_path / "whole.jsonl").rows())


def test_worker_processes_give_the_rows_of_one_process(tmp_path):
    one = runner.execute(_runs(), tmp_path / "one.jsonl", run_fn=fake_run, progress=False, command="c")
    two = runner.execute(_runs(), tmp_path / "two.jsonl", run_fn=fake_run, progress=False, command="c", jobs=2)
    assert _stable(two) == _stable(one)
    assert all(r["threads"] == 1 and r["torch_threads_seen"] == 1 for r in two)


def test_ray_executor_runs_locally(tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'snncomp[ray]'): the ray executor is not tested")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local cluster, started and stopped by the runner
    one = runner.execute(_runs(2), tmp_path / "one.jsonl", run_fn=failing_run, progress=False, command="c")
    rows = runner.execute(_runs(2), tmp_path / "ray.jsonl", run_fn=failing_run, progress=False, command="c",
                          executor="ray")
    assert _stable(rows) == _stable(one) and rows[1]["status"] == "error"


def test_device_is_checked():
    assert runner.resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device must be"):
        runner.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA device"):
            runner.resolve_device("cuda")
        with pytest.raises(ValueError, match="sees no CUDA device"):
            runner.execute(_runs(2), "unused.jsonl", run_fn=fake_run, device="cuda")


def test_board_lists_every_transform_and_recipe():
    transforms = [m.name for m in (registry.methods().values() if isinstance(registry.methods(), dict)
                                   else registry.methods()) if m.kind == "transform"]
    full = runner.board()
    names = {r.recipe.name for r in full}
    assert set(transforms) <= names and set(recipes.builtin()) <= names
    assert {r.seed for r in full} == {0, 1, 2} and len(full) == 3 * len(names)
    for r in full:
        if r.recipe.name in transforms:
            assert len(r.recipe.steps) == 1 and r.baseline == runner.SHARED_BASELINE
            needs = registry.get(r.recipe.name).needs
            teacher = "conv-fc256-direct4" if registry.get(r.recipe.name).family == "snn-to-snn" else "conv-ann"
            assert r.recipe.steps[0].options == ({"teacher": teacher} if "teacher" in needs else {})
    quick = runner.board(quick=True)
    assert {r.seed for r in quick} == {0}
    one_step = {r.recipe.name for r in quick if r.recipe.name in transforms}
    assert one_step == set(runner.QUICK_METHODS)
    for r in quick:  # every budget a quick run gives is one epoch
        for s in r.recipe.steps:
            assert all(v.get("epochs", 1) <= 1 for k, v in s.options.items() if k in ("train", "finetune"))
    for r in quick + full:
        recipes.validate(r.recipe)
    assert [r.recipe.name for r in runner.board(only=["magnitude"], seeds=(0,))] == ["magnitude"]
    with pytest.raises(KeyError, match="no board run named nope"):
        runner.board(only=["nope"])


def test_default_output_is_not_committed():
    out = runner.DEFAULT_OUTPUT
    assert out.name == "board.jsonl" and out.parent.name == "runs"
    if "SNNCOMP_CACHE" not in os.environ:
        assert out.parts[-3:] == (".cache", "runs", "board.jsonl")
        if (runner.ROOT / ".git").exists():  # git ignores it: a bench run never dirties the checkout
            done = subprocess.run(["git", "check-ignore", "-q", str(out)], cwd=runner.ROOT)
            assert done.returncode == 0


def test_bench_command_runs_resumes_and_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "run_recipe", fake_run)
    monkeypatch.setattr(runner, "_prepare", lambda runs, threads, show, jobs=1: None)
    out = tmp_path / "board.jsonl"
    argv = ["bench", "--quick", "--only", "magnitude,lsq", "--output", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr()
    assert "magnitude" in printed.out and "lsq" in printed.out and "wall time" in printed.out
    assert "running 2" in printed.err
    rows = runner.Store(out).rows()
    assert [r["recipe"] for r in rows] == ["lsq", "magnitude"] or [r["recipe"] for r in rows] == ["magnitude", "lsq"]
    assert rows[0]["command"] == "snncomp " + " ".join(argv)
    assert cli.main(argv) == 0  # nothing left to run
    assert "2 already in" in capsys.readouterr().err and len(runner.Store(out).rows()) == 2
    assert cli.main(["bench", "--only", "nope", "--output", str(out)]) == 2
    assert "no board run named nope" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert cli.main(["bench", "--quick", "--device", "cuda", "--output", str(out)]) == 2
        assert "no CUDA device" in capsys.readouterr().err


def test_run_recipe_end_to_end_on_a_small_baseline(tmp_path):
    """The default run function on the digits baseline: a real (no-training) recipe, measured after every step
    and compared with the ANN of the same architecture."""
    recipe = recipes.Recipe(name="prune-half", steps=(chain.Step("magnitude", {"sparsity": 0.5, "finetune": {"epochs": 0}}),))
    rows = runner.execute([runner.Run(recipe, "digits-conv-direct4", 0)], tmp_path / "runs.jsonl", progress=False)
    r = rows[0]
    assert r["status"] == "ok", r["error"]
    assert len(r["steps"]) == 2 and r["steps"][0]["connection_sparsity"] < 0.1
    assert r["connection_sparsity"] == pytest.approx(0.5, abs=0.02)
    assert r["ann_baseline"] == "digits-conv-ann" and r["ann_ratio"]["45nm-fp32-dense"] > 0
    json.dumps(r, allow_nan=False)


@pytest.fixture
def tiny_baseline(monkeypatch, tmp_path):
    monkeypatch.setenv("SNNCOMP_CACHE", str(tmp_path))
    spec = baselines.Baseline(models.conv_snn, kwargs={"in_shape": (1, 8, 8), "channels": (4, 8)},
                              encoder=encoding.Direct(2), config=TrainConfig(epochs=1), dataset="digits")
    monkeypatch.setitem(baselines.BASELINES, "tiny-test", spec)
    return "tiny-test"


def test_baseline_training_says_so_records_its_environment_and_a_load_is_silent(tiny_baseline, capsys):
    baselines.trained(tiny_baseline, 0)
    err = capsys.readouterr().err
    assert "training baseline tiny-test seed 0 (first use; cached afterwards)" in err
    rec = baselines.record(tiny_baseline, 0)
    env = baselines.environment()
    assert {k: rec[k] for k in env} == env and rec["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert capsys.readouterr().err == ""  # record() loads the cached weights: nothing printed
    baselines.trained(tiny_baseline, 0)
    assert capsys.readouterr() == ("", "")
    # another thread count is another cache entry, trained anew
    cached, before = baselines._paths(tiny_baseline, 0)[0], torch.get_num_threads()
    assert cached.exists()
    torch.set_num_threads(before + 1)
    try:
        other = baselines._paths(tiny_baseline, 0)[0]
    finally:
        torch.set_num_threads(before)
    assert other != cached and not other.exists()


def test_killed_bench_resumes_to_the_rows_of_an_uninterrupted_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "_prepare", lambda runs, threads, show, jobs=1: None)
    monkeypatch.setattr(runner, "run_recipe", fake_run)
    whole, cut = tmp_path / "whole.jsonl", tmp_path / "cut.jsonl"
    common = ["bench", "--quick", "--no-progress", "--output"]
    assert cli.main(common + [str(whole)]) == 0
    calls = []

    def killed(run, device):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(run)
        return fake_run(run, device)

    monkeypatch.setattr(runner, "run_recipe", killed)
    assert cli.main(common + [str(cut)]) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    assert len(runner.Store(cut).rows()) == 3
    monkeypatch.setattr(runner, "run_recipe", fake_run)
    assert cli.main(common + [str(cut)]) == 0

    def stable(path):
        return [{k: v for k, v in r.items() if k not in (*VOLATILE, "command")} for r in runner.Store(path).rows()]

    assert stable(cut) == stable(whole) and len(stable(whole)) == len(runner.board(quick=True))


def test_redo_runs_again_and_the_newest_row_counts(tmp_path):
    path = tmp_path / "s.jsonl"
    runner.execute(_runs(2), path, run_fn=fake_run, progress=False, command="c")
    again = runner.execute(_runs(2), path, run_fn=fake_run, progress=False, command="c")
    assert len(runner.Store(path).rows()) == 2  # done: nothing run again
    redone = runner.execute(_runs(2), path, run_fn=fake_run, progress=False, command="c", redo=True)
    assert len(runner.Store(path).rows()) == 4 and _stable(redone) == _stable(again)
