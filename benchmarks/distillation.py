"""Distillation benchmark: a small spiking student alone against the same student distilled, little data.

    python benchmarks/distillation.py [--quick] [--jobs 2] [--only alone,kd-spike-count]

Setting (the one where distillation has room to help): the first 1000 MNIST-5k training images (about
100 per class, `data.mnist1k`), all 1000 test images. The student is `conv_snn(channels=(4, 8))`
(4 278 parameters) fed `Direct(4)`, trained for 8 epochs (batch 64, Adam 2e-3, cosine) from the same
initialisation in every run, so each distilled run differs from `alone` only by its distillation terms.
The main teacher is `conv-ann-1k` (`conv_ann()`, 20 538 parameters, 4.8x the student, trained by the
cached builder on the *same* 1000 images); `kd-spike-count-teacher4k` uses `conv-ann`, trained on all
4000 training images, to show how much of a gain comes from the teacher's extra data. The SNN-to-SNN
rows distil the cached `conv-direct4` SNN (T = 4, 4000 images) into the student at T = 2.

For seeds 0, 1, 2 (`--quick`: seed 0) it writes `benchmarks/results/distillation.json`: per run and
seed the accuracy, spikes per sample, synaptic operations and energy (`energy.compare` against the
teacher ANN, both ANN accountings), the teacher's accuracy and the wall-clock seconds; means and
standard deviations over seeds; and the gain of each run over `alone` at the same T, in points.
Work is spread over `--jobs` processes with one thread each.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import record
import torch

from snncomp import baselines, data, energy, metrics, models, registry
from snncomp.data import encoding
from snncomp.train import TrainConfig, fit

OUT = Path(__file__).resolve().parent / "results" / "distillation.json"
CHANNELS = (4, 8)
CFG = TrainConfig(epochs=8, batch_size=64, lr=2e-3)
T_MAIN, T_SHORT = 4, 2

# run name -> (registered method or "alone", student T, options); `teacher` names a baseline (seed-matched)
# in priority order: the runs are started in this order (all seeds of one run before the next), and the
# result file is rewritten after every finished run, so an interrupted benchmark keeps what it finished
RUNS = {
    "alone": ("alone", T_MAIN, {}),
    "kd-spike-count": ("soft-target-distillation", T_MAIN, dict(teacher="conv-ann-1k", readout="spike-count")),
    "kd-mean": ("soft-target-distillation", T_MAIN, dict(teacher="conv-ann-1k", readout="mean")),
    # heterogeneous temperatures (tau_t = 4, tau_s = 1) with the firing-rate term, then without it
    "energy-aware": ("energy-aware-distillation", T_MAIN,
                     dict(teacher="conv-ann-1k", readout="spike-count", student_temperature=1.0, spike_weight=2.0)),
    # a stronger firing-rate term
    "energy-aware-strong": ("energy-aware-distillation", T_MAIN,
                            dict(teacher="conv-ann-1k", readout="spike-count", student_temperature=1.0,
                                 spike_weight=5.0)),
    "kd-hetero": ("energy-aware-distillation", T_MAIN,
                  dict(teacher="conv-ann-1k", readout="spike-count", student_temperature=1.0, spike_weight=0.0)),
    "kd-membrane": ("soft-target-distillation", T_MAIN, dict(teacher="conv-ann-1k", readout="membrane")),
    "kdsnn": ("kdsnn", T_MAIN, dict(teacher="conv-ann-1k", readout="spike-count")),
    "attention-transfer": ("attention-transfer", T_MAIN, dict(teacher="conv-ann-1k", readout="spike-count")),
    "alone-T2": ("alone", T_SHORT, {}),
    "snn-kd-T4-to-T2": ("spike-distillation", T_SHORT, dict(teacher="conv-direct4", readout="spike-count")),
    "kd-spike-count-teacher4k": ("soft-target-distillation", T_MAIN, dict(teacher="conv-ann", readout="spike-count")),
}


def _init() -> None:
    torch.set_num_threads(1)


def _measure(model, split, enc, ann_report) -> dict:
    rep = metrics.measure(model, split.test_x, enc, split.test_y)
    cmp = energy.compare(rep, ann_report)
    return {"accuracy": rep.accuracy, "params": rep.params, "spikes_per_sample": rep.spikes_per_sample,
            "dense_synops": rep.dense_synops, "effective_synops": rep.effective_macs + rep.effective_acs,
            "energy_uj": cmp.snn_pj() * 1e-6, "ann_dense_uj": cmp.ann_pj("dense") * 1e-6,
            "ann_zero_skipping_uj": cmp.ann_pj("zero_skipping") * 1e-6}


def run(name: str, seed: int) -> dict:
    method, T, opts = RUNS[name]
    split = data.mnist1k()
    enc = encoding.Direct(T)
    student = models.conv_snn(channels=CHANNELS, seed=seed)
    cfg = TrainConfig(**{**CFG.__dict__, "seed": seed, "progress": False})
    ann, ann_enc = baselines.trained("conv-ann-1k", seed)
    ann_report = metrics.measure(ann, split.test_x, ann_enc, split.test_y)
    t0 = time.perf_counter()
    if method == "alone":
        fit(student, split, enc, cfg)
        model, info = student, {}
    else:
        o = {**opts, "teacher": (opts["teacher"], seed)}
        res = registry.get(method).fn(student, split, enc, train=cfg, **o)
        model = res.model
        info = {k: res.info[k] for k in ("teacher", "teacher_params", "teacher_accuracy") if k in res.info}
    seconds = time.perf_counter() - t0
    return {"method": method, "T": T, "seconds": seconds, **info, **_measure(model, split, enc, ann_report)}


def _mean(rows: list[dict]) -> dict:
    out = {}
    for k, v in rows[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            vals = [r[k] for r in rows]
            out[k] = statistics.fmean(vals)
            if len(vals) > 1:
                out[k + "_std"] = statistics.stdev(vals)
    return out


def add_tables(out: dict) -> dict:
    """Provenance, the gain of every run over `alone` at its T (per seed, then mean and spread), the table."""
    for k, v in record.provenance("python benchmarks/distillation.py", f"{out.get('jobs', 1)} jobs x 1 thread").items():
        out.setdefault(k, v)
    table = []
    for name, r in out["runs"].items():
        ref = out["runs"].get("alone" if r["T"] == T_MAIN else "alone-T2")
        if not ref or not r["seeds"]:
            continue
        common = [s for s in r["seeds"] if s in ref["seeds"]]
        gains = [100 * (r["seeds"][s]["accuracy"] - ref["seeds"][s]["accuracy"]) for s in common]
        spikes = [r["seeds"][s]["spikes_per_sample"] / ref["seeds"][s]["spikes_per_sample"] for s in common]
        r["gain_points"] = gains
        m = r["mean"]
        table.append({"run": name, "method": r["method"], "T": r["T"], "teacher": r["options"].get("teacher", "-"),
                      "accuracy": round(m["accuracy"], 4), "± (std)": round(m.get("accuracy_std", 0.0), 4),
                      "gain (points)": round(statistics.fmean(gains), 2) if gains else "",
                      "min gain": round(min(gains), 2) if gains else "",
                      "spikes/sample": round(m["spikes_per_sample"]),
                      "spikes vs alone": round(statistics.fmean(spikes), 3) if spikes else "",
                      "eff. synops": int(m["effective_synops"]), "energy µJ": round(m["energy_uj"], 4)})
    out["table"] = table
    return out


def main(argv=None) -> int:
    ap = record.parser(__doc__, OUT)
    ap.add_argument("--tables-only", action="store_true", help="recompute the tables of an existing result file")
    ap.add_argument("--resume", action="store_true",
                    help="keep the runs an existing result file finished for every seed and run only the others")
    args = ap.parse_args(argv)
    if args.tables_only:
        record.write(args.output, add_tables(json.loads(Path(args.output).read_text())), indent=1)
        return 0
    seeds = [0] if args.quick else [0, 1, 2]
    names = record.selected(RUNS, args.only)
    t_start = time.perf_counter()
    _init()
    for s in seeds:  # teachers first, in this process (trained once on a clean checkout, then cached)
        for b in sorted({RUNS[n][2]["teacher"] for n in names if "teacher" in RUNS[n][2]} | {"conv-ann-1k"}):
            baselines.trained(b, s)
    results: dict = {}
    args.kept = []
    if args.resume and Path(args.output).exists():  # runs finished by an earlier invocation, every seed
        old = json.loads(Path(args.output).read_text())["runs"]
        results = {n: dict(r["seeds"]) for n, r in old.items() if n in RUNS and {str(s) for s in seeds} <= set(r["seeds"])}
        args.kept = sorted(results)
        names = list(dict.fromkeys([n for n in RUNS if n in results] + names))
    with ProcessPoolExecutor(max_workers=args.jobs, initializer=_init) as pool:
        futs = {pool.submit(run, n, s): (n, s) for n in names for s in seeds if str(s) not in results.get(n, {})}
        for f in as_completed(futs):
            n, s = futs[f]
            row = f.result()
            results.setdefault(n, {})[str(s)] = row
            print(f"{n} seed {s}: acc {row['accuracy']:.4f} spikes {row['spikes_per_sample']:.0f} "
                  f"{row['seconds']:.0f} s", flush=True)
            _write(args, seeds, names, results, t_start, partial=True)
    out = _write(args, seeds, names, results, t_start, partial=False)
    print(f"wrote {args.output} in {out['wall_seconds']:.0f} s")
    return 0


def _write(args, seeds, names, results, t_start, partial: bool) -> dict:
    """The result file from the runs finished so far (`partial` until every run has finished)."""
    out = {"benchmark": "distillation", "data": "mnist1k (1000 train, 1000 test images)", "seeds": seeds,
           "student": f"conv_snn(channels={CHANNELS})", "config": CFG.__dict__, "jobs": args.jobs,
           "threads_per_job": 1, "partial": partial, "wall_seconds": time.perf_counter() - t_start,
           "kept_from_earlier_invocation": getattr(args, "kept", []),
           "runs": {n: {"method": RUNS[n][0], "T": RUNS[n][1],
                        "options": {k: v for k, v in RUNS[n][2].items()},
                        "seeds": dict(sorted(results[n].items())),
                        "mean": _mean([v for _, v in sorted(results[n].items())])} for n in names if n in results}}
    record.write(args.output, add_tables(out), indent=1)
    return out


if __name__ == "__main__":
    sys.exit(main())
