"""Train the shared baseline conv SNN (and its same-shaped ANN) on MNIST-5k for three seeds.

    python benchmarks/baseline.py [--seeds 0 1 2] [--output benchmarks/results/baseline.json]

Setting: `models.conv_snn()` with direct input, T = 4, `TrainConfig(epochs=8)` (Adam 2e-3, cosine, batch 64);
the ANN is `models.conv_ann()` at T = 1 with the same config. Test accuracy on the 1000 held-out images,
wall-clock training time, and the metrics of `snncomp.metrics.measure` with FP32 energy estimates.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import record
import torch

from snncomp import baselines, data, energy, metrics, train


def run(kind: str, seed: int, split: data.Split) -> dict:
    """Train one baseline afresh (this benchmark times training, so it does not read the cache), with the
    specification of the cached builder `snncomp.baselines`."""
    spec = baselines.BASELINES["conv-direct4" if kind == "snn" else "conv-ann"]
    model, enc = spec.build(seed=seed, **spec.kwargs), spec.encoder
    t0 = time.perf_counter()
    train.fit(model, split, enc, dataclasses.replace(spec.config, seed=seed, progress=False), evaluate_test=False)
    seconds = time.perf_counter() - t0
    r = metrics.measure(model, split.test_x, enc, split.test_y)
    e = energy.estimate(r) if kind == "snn" else energy.ann_energy(r)
    return {"model": f"conv {kind.upper()}", "seed": seed, "accuracy": round(r.accuracy, 4),
            "train_seconds": round(seconds, 1), "spikes_per_sample": round(r.spikes_per_sample, 1),
            "dense_synops": r.dense_synops, "effective_macs": round(r.effective_macs),
            "effective_acs": round(r.effective_acs), "energy_uj_fp32": round(e.total_uj, 4)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--output", default=str(Path(__file__).parent / "results" / "baseline.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    split = data.mnist5k()
    rows = []
    for kind in ("snn", "ann"):
        for seed in args.seeds:
            rows.append(run(kind, seed, split))
            print(rows[-1], file=sys.stderr)
    summary = []
    for kind in ("conv SNN", "conv ANN"):
        acc = [r["accuracy"] for r in rows if r["model"] == kind]
        secs = [r["train_seconds"] for r in rows if r["model"] == kind]
        summary.append({"model": kind, "seeds": len(acc), "mean_accuracy": round(statistics.mean(acc), 4),
                        "min_accuracy": min(acc), "mean_train_seconds": round(statistics.mean(secs), 1)})
    result = {"benchmark": "shared baseline on MNIST-5k",
              **record.provenance("python benchmarks/baseline.py", f"torch threads {torch.get_num_threads()}"),
              "summary": summary, "rows": rows}
    record.write(args.output, result)
    print(json.dumps(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
