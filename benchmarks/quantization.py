"""Quantization benchmark on MNIST-5k: weight, membrane and binary quantization on the shared baselines.

    python benchmarks/quantization.py [--quick] [--jobs 2] [--only ptq-4,binary]

For seeds 0, 1, 2 (`--quick`: seed 0 only; runs that name their seeds in `RUNS` only those) it takes the cached trained baselines `conv-direct4` (compact,
~20k weights) and `conv-fc256-direct4` (over-parameterised, ~409k weights) from `snncomp.baselines`, runs
each quantization method on them and writes `benchmarks/results/quantization.json`: per run and seed the
accuracy, the FP32 baseline's accuracy, the deployed size in bits (`metrics.deployed_bits`, dense and in
the cheapest sparse format with its index cost), the size ratio against the FP32 baseline, synaptic
operations and the compute-energy estimate under the FP32 and INT8 regimes (`energy.estimate`); plus
the mean and spread over seeds and a summary table with the issue's targets. Work is spread over
`--jobs` processes with one thread each.
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

from snncomp import baselines, data, energy, metrics, registry
from snncomp.train import TrainConfig

OUT = Path(__file__).resolve().parent / "results" / "quantization.json"

Q1 = TrainConfig(epochs=1, lr=5e-4)  # one quantization-aware epoch from the trained baseline
FT1 = TrainConfig(epochs=1, lr=1e-3)  # one masked fine-tuning epoch after pruning
C, O = "conv-direct4", "conv-fc256-direct4"

# run name -> (steps, baseline, target drop in points or None[, seeds]); a step is (registered method, options).
# Runs with a seed list run only on those seeds (none today: every run covers seeds 0, 1, 2).
RUNS = {
    "ptq-8": ([("uniform-ptq", dict(bits=8))], C, None),
    "ptq-4": ([("uniform-ptq", dict(bits=4))], C, 0.5),
    "ptq-2": ([("uniform-ptq", dict(bits=2))], C, None),
    "qat-2": ([("uniform-qat", dict(bits=2, train=Q1))], C, 1.5),
    "lsq-2": ([("lsq", dict(bits=2, train=Q1))], C, 1.5),
    "binary": ([("binary-weights", dict(train=Q1))], C, 2.0),
    "binary-3-epochs": ([("binary-weights", dict(train=TrainConfig(epochs=3, lr=5e-4)))], C, 2.0),
    "membrane-4": ([("q-spinn", dict(bits=4))], C, None),
    "membrane-2": ([("q-spinn", dict(bits=2))], C, None),
    "w4-membrane-4": ([("q-spinn", dict(bits=4, weight_bits=4))], C, 1.5),
    "mint-4-4": ([("mint", dict(bits=4, membrane_bits=4, train=Q1))], C, 1.5),
    "kmeans-4": ([("kmeans-sharing", dict(bits=4, finetune=Q1))], C, None),
    # rho: ours for a one-epoch budget (the penalty must pull W onto the levels within ~60 steps), not tuned
    "admm-2": ([("admm-quantization", dict(bits=2, rho=5e-2, train=Q1, finetune=Q1))], C, None),
    "pruned90-ptq-4": ([("magnitude", dict(sparsity=0.9, finetune=FT1)), ("uniform-ptq", dict(bits=4))], C, None),
    "fc256-ptq-4": ([("uniform-ptq", dict(bits=4))], O, 0.5),
    "fc256-lsq-2": ([("lsq", dict(bits=2, train=Q1))], O, 1.5),
    "fc256-binary-3-epochs": ([("binary-weights", dict(train=TrainConfig(epochs=3, lr=5e-4)))], O, 2.0),
    "fc256-w4-membrane-4": ([("q-spinn", dict(bits=4, weight_bits=4))], O, 1.5),
    "fc256-pruned90-ptq-4": ([("magnitude", dict(sparsity=0.9, finetune=FT1)), ("uniform-ptq", dict(bits=4))], O, None),
}
FOOTPRINT_TARGETS = {"ptq-4": 7.5, "fc256-ptq-4": 7.5, "fc256-pruned90-ptq-4": 25.0}


def _measure(model, split, enc) -> dict:
    rep = metrics.measure(model, split.test_x, enc, split.test_y)
    return {"accuracy": rep.accuracy, "sparsity": rep.connection_sparsity, "params": rep.params,
            "deployed_bits": metrics.deployed_bits(model),
            "deployed_bits_sparse": metrics.deployed_bits(model, "auto"),
            "dense_synops": rep.dense_synops, "effective_synops": rep.effective_macs + rep.effective_acs,
            "spikes_per_sample": rep.spikes_per_sample,
            "energy_fp32_uj": energy.estimate(rep, "fp32").total_uj,
            "energy_int8_uj": energy.estimate(rep, "int8").total_uj}


def _init() -> None:
    torch.set_num_threads(1)


def _seeded(v, seed):
    return TrainConfig(**{**v.__dict__, "seed": seed, "progress": False}) if isinstance(v, TrainConfig) else v


def baseline(name: str, seed: int) -> dict:
    model, enc = baselines.trained(name, seed)
    return _measure(model, data.mnist5k(), enc)


def run(name: str, seed: int) -> dict:
    steps, base = RUNS[name][:2]
    split = data.mnist5k()
    model, enc = baselines.trained(base, seed)
    t0 = time.perf_counter()
    info = {}
    for method, opts in steps:
        res = registry.get(method).fn(model, split, enc, **{k: _seeded(v, seed) for k, v in opts.items()})
        model, enc = res.model, res.encoder
        info.update(json.loads(json.dumps(res.info, default=str)))
    out = {"seconds": time.perf_counter() - t0, **_measure(model, split, enc), "info": info}
    return out


def _seeds(r: str, seeds: list[int]) -> list[int]:
    return [s for s in seeds if len(RUNS[r]) < 4 or s in RUNS[r][3]]


def _mean(rows: list[dict]) -> dict:
    out = {}
    for k, v in (rows[0] if rows else {}).items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            vals = [r[k] for r in rows]
            out[k] = statistics.fmean(vals)
            out[k + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return out


def main(argv=None) -> int:
    ap = record.parser(__doc__, OUT)
    ap.add_argument("--seeds", default="", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--merge", action="store_true",
                    help="keep the runs and seeds already in the output file, replacing only those run now")
    args = ap.parse_args(argv)
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")] if args.seeds else [0, 1, 2]
    runs = record.selected(RUNS, args.only)
    bases = sorted({RUNS[r][1] for r in runs})
    wanted = {(RUNS[r][1], s) for r in runs for s in seeds if s in _seeds(r, seeds)}
    t_start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs, initializer=_init) as pool:
        base_f = {pool.submit(baseline, b, s): (b, s) for s in seeds for b in bases if (b, s) in wanted}
        fp, futs = {}, {}
        for f in as_completed(base_f):
            b, s = base_f[f]
            fp[(b, s)] = f.result()
            print(f"baseline {b} seed {s}: acc {fp[(b, s)]['accuracy']:.4f}", flush=True)
            for r in runs:  # the runs that train first, so the pool stays busy
                if RUNS[r][1] == b and s in _seeds(r, seeds):
                    futs[pool.submit(run, r, s)] = (r, s)
        results: dict = {}
        args.invocations = []
        if args.merge and Path(args.output).exists():
            old = json.loads(Path(args.output).read_text())
            args.invocations = old.get("invocations", [])
            for b, rec in old["baselines"].items():
                for s, row in rec["seeds"].items():
                    fp.setdefault((b, int(s)), row)
            seeds = sorted({*seeds, *(int(s) for s in old["seeds"])})
            bases = sorted({*bases, *old["baselines"]})
            for r, rec in old["runs"].items():
                results[r] = dict(rec["seeds"])
        for f in as_completed(futs):
            r, s = futs[f]
            try:
                row = f.result()
            except Exception as e:  # record the failure, keep the other runs
                results.setdefault(r, {})[str(s)] = {"error": f"{type(e).__name__}: {e}"}
                print(f"{r} seed {s}: FAILED {type(e).__name__}: {e}", flush=True)
                continue
            ref = fp[(RUNS[r][1], s)]
            row.update(fp32_accuracy=ref["accuracy"], drop=ref["accuracy"] - row["accuracy"],
                       size_ratio=ref["deployed_bits"] / row["deployed_bits"],
                       size_ratio_sparse=ref["deployed_bits"] / row["deployed_bits_sparse"])
            results.setdefault(r, {})[str(s)] = row
            print(f"{r} seed {s}: acc {row['accuracy']:.4f} (fp32 {ref['accuracy']:.4f}) size x{row['size_ratio']:.2f} "
                  f"(sparse x{row['size_ratio_sparse']:.2f}) {row['seconds']:.0f} s", flush=True)
            _write(args, seeds, bases, fp, results, t_start, partial=True)
    out = _write(args, seeds, bases, fp, results, t_start, partial=False)
    print(f"wrote {args.output} in {out['wall_seconds']:.0f} s")
    return 0


def _write(args, seeds, bases, fp, results, t_start, partial) -> dict:
    out = {"benchmark": "quantization", "data": "mnist5k", "seeds": seeds, "jobs": args.jobs, "partial": partial,
           "wall_seconds": time.perf_counter() - t_start,
           "invocations": [*getattr(args, "invocations", []),
                           {"only": args.only or "all", "seeds": seeds, "jobs": args.jobs,
                            "wall_seconds": round(time.perf_counter() - t_start)}],
           "baselines": {b: {"seeds": {str(s): fp[(b, s)] for s in seeds if (b, s) in fp},
                             "mean": _mean([fp[(b, s)] for s in seeds if (b, s) in fp])} for b in bases},
           "runs": {}}
    for r in RUNS:
        if r not in results:
            continue
        steps, base, target = RUNS[r][:3]
        ok = [v for _, v in sorted(results[r].items()) if "error" not in v]
        out["runs"][r] = {"steps": [[m, {k: (v.__dict__ if isinstance(v, TrainConfig) else v) for k, v in o.items()}]
                                    for m, o in steps],
                          "baseline": base, "target_drop_points": target, "footprint_target": FOOTPRINT_TARGETS.get(r),
                          "seeds": dict(sorted(results[r].items())), "mean": _mean(ok)}
    for k, v in record.provenance("python benchmarks/quantization.py",
                                  f"shared with other jobs, {args.jobs} jobs x 1 thread").items():
        out.setdefault(k, v)
    out["table"] = _table(out)
    record.write(args.output, out, indent=1)
    return out


def _table(out: dict) -> list[dict]:
    rows = []
    for name, r in out["runs"].items():
        m = r["mean"]
        if not m:
            continue
        drop, t, ft = 100 * m["drop"], r["target_drop_points"], r["footprint_target"]
        rows.append({"run": name, "seeds": len(r["seeds"]), "methods": " + ".join(s[0] for s in r["steps"]), "baseline": r["baseline"],
                     "accuracy": round(m["accuracy"], 4), "FP32 accuracy": round(m["fp32_accuracy"], 4),
                     "drop (points)": f"{drop:.2f} ± {100 * m['drop_std']:.2f}",
                     "drop target": "" if t is None else f"≤ {t} ({'met' if drop <= t else 'missed'})",
                     "smaller than FP32 (dense)": round(m["size_ratio"], 2),
                     "smaller (sparse format)": round(m["size_ratio_sparse"], 2),
                     "size target": "" if ft is None else
                     f"≥ {ft}x ({'met' if max(m['size_ratio'], m['size_ratio_sparse']) >= ft else 'missed'})",
                     "energy FP32 µJ": round(m["energy_fp32_uj"], 3), "energy INT8 µJ": round(m["energy_int8_uj"], 4)})
    return rows


if __name__ == "__main__":
    sys.exit(main())
