"""The Benchmark page's numbers come from the result store: last row per key, mean and sd over seeds, the
targets, failures listed, and a store line that is not JSON named by its line."""

import json

import pytest

from snncomp.kb import leaderboard


def _row(name, seed, acc, *, kind="method", status="ok", start_acc=0.97, own=None, ann=None, e_mem=2e6,
         ann_mem_w=None, bits=32.0, footprint=1000.0, dense0=100000.0):
    last = {"accuracy": acc, "connection_sparsity": 0.9, "weight_bits": bits, "state_bits": bits, "T": 4,
            "spikes_per_sample": 100.0, "synops": 1e4, "deployed_footprint_bytes": footprint,
            "energy_pj": {"45nm-fp32": 1000.0, "memory": e_mem, "loihi": 500.0}}
    if own is not None:
        last["energy_pj"]["45nm-int8"] = own
    if bits < 32:
        last["energy_pj"][f"memory-w{bits:g}"] = e_mem / 2
    if ann is not None:
        last["ann_energy_pj"] = {"45nm-fp32-dense": ann, "45nm-fp32-zero-skipping": ann / 2, "memory": 4 * e_mem}
        if ann_mem_w is not None:
            last["ann_energy_pj"][f"memory-w{bits:g}"] = ann_mem_w
    steps = [{"accuracy": start_acc, "deployed_dense_bytes": dense0}, last]
    return {"key": f"{name}@b/d/seed{seed}#0", "recipe": name, "kind": kind, "baseline": "b", "data": "d",
            "seed": seed, "status": status, "error": None if status == "ok" else "ValueError: boom",
            "seconds": 10.0, "steps": steps if status == "ok" else [], "command": "snncomp bench", "torch": "2.13.0",
            "cpu_capability": "AVX2", "threads": 1, "device": "cpu", "date": "2026-12-03"}


def test_summary_means_over_seeds_and_last_row_per_key(tmp_path):
    store = tmp_path / "board.jsonl"
    rows = [_row("magnitude", 0, 0.50), _row("magnitude", 0, 0.95), _row("magnitude", 1, 0.93),
            _row("lsq", 0, 0.9, status="error")]
    store.write_text("".join(json.dumps(r) + "\n" for r in rows))
    read = leaderboard.read_store(store)
    assert len(read) == 3  # the retried seed-0 run replaced its earlier row
    s = {e["name"]: e for e in leaderboard.summarise(read, {"magnitude": "pruning", "lsq": "quantization"})}
    mean, sd = s["magnitude"]["stats"]["accuracy"]
    assert mean == pytest.approx(94.0) and sd == pytest.approx(1.41421356, rel=1e-6)
    assert s["magnitude"]["section"] == "pruning" and s["magnitude"]["seeds"] == [0, 1]
    assert s["magnitude"]["stats"]["drop"][0] == pytest.approx(3.0)
    assert s["magnitude"]["stats"]["smaller"][0] == pytest.approx(100.0)
    assert s["lsq"]["failed"] == [0] and s["lsq"]["errors"] == ["ValueError: boom"]


def test_targets_use_the_models_own_arithmetic_and_the_same_width_ann():
    rows = [_row("targets", s, 0.96, kind="recipe", own=10.0, ann=1000.0, bits=4.0, ann_mem_w=6e6, footprint=2000.0)
            for s in (0, 1, 2)]
    got = {t["metric"]: t for t in leaderboard.targets(leaderboard.summarise(rows))}
    assert got["drop"]["mean"] == pytest.approx(1.0) and got["drop"]["met"]
    assert got["vs_ann_dense"]["mean"] == pytest.approx(100.0) and got["vs_ann_dense"]["met"]  # 1000 / 10 (int8)
    assert got["vs_ann_memory_w"]["mean"] == pytest.approx(6.0) and got["vs_ann_memory_w"]["met"]  # 6e6 / 1e6
    assert got["smaller"]["mean"] == pytest.approx(50.0) and got["smaller"]["met"]
    missed = leaderboard.targets(leaderboard.summarise([_row("targets", 0, 0.90, kind="recipe", ann=1000.0)]))
    assert [t["met"] for t in missed][:2] == [False, False]  # 7 points lost; FP32-priced SNN only 1x cheaper
    assert all(t["met"] is None for t in leaderboard.targets([]))  # no result: "not run", never "met"


def test_page_and_plots_render_from_a_store(tmp_path):
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    rows = [_row("magnitude", s, 0.95 - 0.01 * s) for s in (0, 1)] + [_row("lsq", 0, 0.9, status="error")]
    (tmp_path / leaderboard.STORE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    page = leaderboard.board_page(tmp_path, {"magnitude": "pruning"}, {"magnitude": ["*paper*: x [@han2015learning]"]})
    assert 'id="snn-board"' in page and "<td>magnitude</td>" in page and "94.50 ± 0.71" in page
    assert "## Runs that failed" in page and "ValueError: boom" in page
    assert "*paper*: x [@han2015learning]" in page and "`AVX2`" in page
    svg = leaderboard.pareto_svg(leaderboard.summarise(leaderboard.read_store(tmp_path / leaderboard.STORE)),
                                 "e45", "energy")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "No result store yet" in leaderboard.board_page(tmp_path / "empty", {}, {})


def test_a_broken_store_line_is_named(tmp_path):
    store = tmp_path / "board.jsonl"
    store.write_text(json.dumps(_row("magnitude", 0, 0.9)) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"board.jsonl:2: not a JSON row"):
        leaderboard.read_store(store)


def test_a_later_success_supersedes_the_old_error_of_the_same_seed():
    rows = [_row("spike-distillation", 0, 0.0, status="error"), _row("spike-distillation", 0, 0.95),
            _row("spike-distillation", 1, 0.0, status="error")]
    rows[1]["key"] = "spike-distillation@b/d/seed0#fixed"  # the fixed recipe is another key
    (s,) = leaderboard.summarise(rows)
    assert s["seeds"] == [0] and s["failed"] == [1]


def test_snn_to_snn_runs_on_the_board_learn_from_an_snn():
    from snncomp import board, registry

    runs = {r.recipe.name: r for r in board.board(seeds=(0,))}
    for m in registry.methods(section="distillation", kind="transform"):
        teacher = runs[m.name].recipe.steps[0].options["teacher"]
        assert teacher == ("conv-fc256-direct4" if m.family == "snn-to-snn" else "conv-ann"), m.name


def test_the_kept_parse_follows_the_file_and_hands_out_new_rows(tmp_path):
    store = tmp_path / "board.jsonl"
    store.write_text(json.dumps(_row("magnitude", 0, 0.9)) + "\n")
    first = leaderboard.read_store(store)
    first[0]["status"] = "changed by a caller"  # a caller's change to a row stays its own
    assert leaderboard.read_store(store)[0]["status"] == "ok"
    with store.open("a") as f:  # an appended row (new size) is read
        f.write(json.dumps(_row("magnitude", 1, 0.8)) + "\n")
    assert len(leaderboard.read_store(store)) == 2
