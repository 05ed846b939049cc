"""Synthetic N-MNIST-like events: accuracy against T, time-step reduction, and energy under chip profiles.

    python benchmarks/events.py [--seeds 0 1 2] [--train 4000] [--output benchmarks/results/events.json]

Data: `data.nmnist_like(T=16)` (the synthetic N-MNIST-like frames of MNIST-5k, cached): the first `--train`
training samples (default all 4000) and all 1000 test samples. Per seed:

* the event baseline: `baselines.trained("conv-events", seed)`, the compact conv SNN (channels 16, 32;
  2 x 34 x 34 input) trained by the cached builder at T = 8 (the 16 stored bins merged in pairs by
  `data.Frames`), with its accuracy, spikes and synaptic operations;
* accuracy against T: the same network and training budget (`BASELINES["conv-events"].config`) at
  T = 1, 2 and 4 (T = 8 is the baseline);
* progressive time-step reduction [@chowdhury2022ultra] of the T = 8 baseline to 4 and then 2 steps
  (`pruning.timestep_reduction`, `STAGE` per stage): T_max / 4; and, as the control, the T = 8 baseline
  trained for the same two stages at T = 8, so that the epochs the stages add are not read as a gain of
  fewer steps;
* energy per sample of four models under the 45 nm model and every chip profile of `snncomp.energy`: the T = 8 event baseline, its
  T = 2 reduction, the cached direct-input baseline `conv-direct4` (MNIST-5k test set) and that baseline after
  90 % one-shot magnitude pruning with 1 epoch of fine-tuning; the ranking under each profile, and whether
  it differs from the ranking under the 45 nm model.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import tempfile
from unittest import mock
import statistics
import sys
import time
from pathlib import Path

import record
import torch

from snncomp import baselines, data, energy, metrics, pruning, train

OUT = Path(__file__).resolve().parent / "results" / "events.json"
STEPS = (1, 2, 4, 8)
BASE = "conv-events"
STAGE = train.TrainConfig(epochs=1, lr=1e-3)  # fine-tuning per stage of the time-step reduction


def subset(sp: data.Split, n_train: int) -> data.Split:
    return data.Split(sp.train_x[:n_train], sp.train_y[:n_train], sp.test_x, sp.test_y, sp.name)


def run_seed(seed: int, ev: data.Split, mnist: data.Split) -> dict:
    spec = baselines.BASELINES[BASE]
    t0 = time.perf_counter()
    base, enc8 = baselines.trained(BASE, seed)  # T = 8, trained on the full split by the cached builder
    base_seconds = time.perf_counter() - t0
    cfg = dataclasses.replace(spec.config, seed=seed, progress=False)
    acc = {}
    for T in STEPS[:-1]:  # the same network and budget at fewer steps, trained from scratch
        net = spec.build(seed=seed, **spec.kwargs)
        train.fit(net, ev, data.Frames(T), cfg, evaluate_test=False)
        acc[T] = train.evaluate(net, ev.test_x, ev.test_y, data.Frames(T))
        print(f"seed {seed} T={T}: {acc[T]:.4f}", file=sys.stderr, flush=True)
    acc[8] = train.evaluate(base, ev.test_x, ev.test_y, enc8)
    cut = pruning.timestep_reduction(base, ev, enc8, steps=(4, 2), train=dataclasses.replace(STAGE, seed=seed,
                                                                                            progress=False))
    # the control: the T = 8 model given the same extra training at T = 8 (two 1-epoch stages), so that the
    # reduction's gain or loss is not confused with the epochs its stages add
    ctrl = copy.deepcopy(base)
    for _ in range(2):
        train.fit(ctrl, ev, enc8, dataclasses.replace(STAGE, seed=seed, progress=False), evaluate_test=False)
    control = train.evaluate(ctrl, ev.test_x, ev.test_y, enc8)
    print(f"seed {seed} T=8: {acc[8]:.4f}; reduced {cut.info['accuracy']}; T=8 with the same training {control:.4f}",
          file=sys.stderr, flush=True)
    direct, enc = baselines.trained("conv-direct4", seed)
    pruned = pruning.magnitude(direct, mnist, enc, sparsity=0.9,
                               finetune=train.TrainConfig(epochs=1, lr=1e-3, seed=seed, progress=False))
    reports = {"events conv SNN, T=8": metrics.measure(base, ev.test_x, enc8, ev.test_y),
               "events conv SNN, reduced to T=2": metrics.measure(cut.model, ev.test_x, cut.encoder, ev.test_y),
               "direct conv SNN, T=4": metrics.measure(direct, mnist.test_x, enc, mnist.test_y),
               "direct conv SNN, T=4, 90% pruned": metrics.measure(pruned.model, mnist.test_x, pruned.encoder,
                                                                   mnist.test_y)}
    priced = {m: {p: q.total_pj for p, q in energy.price_all(r).items()} for m, r in reports.items()}
    return {"seed": seed, "baseline_seconds": base_seconds, "accuracy": acc, "reduction": cut.info["accuracy"],
            "control_T8": control,
            "energy_pj": priced,
            "counts": {m: {"accuracy": r.accuracy, "effective_macs": r.effective_macs,
                           "effective_acs": r.effective_acs, "neuron_updates": r.neuron_updates,
                           "spikes_per_sample": r.spikes_per_sample} for m, r in reports.items()}}


def _mean(vals) -> float:
    return statistics.fmean(vals)


def time_generation(output: Path, note: str = "") -> int:
    """Seconds to generate, bin and store the 5000 synthetic streams from nothing (a temporary cache
    folder), with one worker and with one per CPU; written to `output` (`results/events_generation.json`)."""
    rows = []
    for workers in (1, None):
        with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {"SNNCOMP_CACHE": tmp}):
            t0 = time.perf_counter()
            split = data.nmnist_like(T=16, workers=workers, progress=False)
            seconds = time.perf_counter() - t0
        rows.append({"workers": workers or os.cpu_count(), "images": len(split.train_y) + len(split.test_y),
                     "seconds": round(seconds, 1)})
        print(rows[-1], file=sys.stderr)
    record.write(output, {**record.provenance("python benchmarks/events.py --generation-only",
                                              "workers are processes" + (f"; {note}" if note else "")),
                          "rows": rows})
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--train", type=int, default=4000)
    ap.add_argument("--output", default=str(OUT))
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--note", default="", help="what else the machine ran, for the record")
    ap.add_argument("--generation-only", action="store_true",
                    help="only time a fresh generation of the cache (one worker, then one per CPU), "
                         "into results/events_generation.json")
    args = ap.parse_args(argv)
    if args.generation_only:
        return time_generation(OUT.with_name("events_generation.json"), args.note)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    ev = subset(data.nmnist_like(T=16), args.train)
    if args.train != 4000:  # the baseline builder trains on the full split
        print("note: --train limits the T = 1, 2, 4 runs and the reduction; the T = 8 baseline uses all 4000",
              file=sys.stderr)
    mnist = data.mnist5k()
    runs = [run_seed(s, ev, mnist) for s in args.seeds]
    accuracy = [{"T": T, "test accuracy (mean)": round(_mean(r["accuracy"][T] for r in runs), 4),
                 "spread (min-max)": f"{min(r['accuracy'][T] for r in runs):.3f}-"
                                     f"{max(r['accuracy'][T] for r in runs):.3f}"} for T in STEPS]
    reduction = [{"T": T, "accuracy after the stage (mean)": round(_mean(r["reduction"][T] for r in runs), 4),
                  "spread (min-max)": f"{min(r['reduction'][T] for r in runs):.3f}-"
                                      f"{max(r['reduction'][T] for r in runs):.3f}",
                  "drop vs T=8 (points, mean)": round(100 * _mean(r["reduction"][8] - r["reduction"][T] for r in runs), 2)}
                 for T in (8, 4, 2)]
    drop = reduction[-1]["drop vs T=8 (points, mean)"]
    drop_ctrl = round(100 * _mean(r["control_T8"] - r["reduction"][2] for r in runs), 2)
    target = {"goal": "time-step reduction to T <= T_max / 4 = 2 within 1 point of the T = 8 accuracy",
              "T = 8 baseline (mean)": round(_mean(r["reduction"][8] for r in runs), 4),
              "T = 8 with the same extra training (mean)": round(_mean(r["control_T8"] for r in runs), 4),
              "T = 2 after reduction (mean)": round(_mean(r["reduction"][2] for r in runs), 4),
              "drop vs the T = 8 baseline (points)": drop, "drop vs the T = 8 control (points)": drop_ctrl,
              "met": drop <= 1.0 and drop_ctrl <= 1.0}
    models_ = list(runs[0]["energy_pj"])
    profiles = list(runs[0]["energy_pj"][models_[0]])
    mean_e = {m: {p: _mean(r["energy_pj"][m][p] for r in runs) for p in profiles} for m in models_}
    energy_rows = [{"model": m, **{energy.models()[p]: round(mean_e[m][p] / 1e3, 2) for p in profiles}} for m in models_]
    ref = sorted(models_, key=lambda m: mean_e[m]["45nm-fp32"])
    rankings = []
    for p in profiles:
        order = sorted(models_, key=lambda m: mean_e[m][p])
        per_seed = [sorted(models_, key=lambda m: r["energy_pj"][m][p]) for r in runs]
        rankings.append({"profile": energy.models()[p], "scope": energy.chips.get(p).scope if p in energy.chips.profiles() else "per-term",
                         "cheapest to dearest (mean over seeds)": " < ".join(order),
                         "differs from 45 nm ranking": order != ref,
                         "same ranking in every seed": all(o == per_seed[0] for o in per_seed)})
    counts = [{"model": m, **{k: round(_mean(r["counts"][m][k] for r in runs), 4 if k == "accuracy" else 0)
                              for k in runs[0]["counts"][m]}} for m in models_]
    result = {"benchmark": "synthetic N-MNIST-like events: accuracy against T, time-step reduction, chip energy",
              **record.provenance(f"python benchmarks/events.py --train {args.train}",
                                  f"torch threads {torch.get_num_threads()}" + (f"; {args.note}" if args.note else "")),
              "seeds": args.seeds, "train_samples": args.train, "test_samples": len(ev.test_y),
              "seconds": round(time.perf_counter() - t0), "accuracy": accuracy, "reduction": reduction, "target": [target],
              "energy_nj": energy_rows, "rankings": rankings, "counts": counts, "runs": runs}
    record.write(args.output, result)
    print(accuracy, reduction, energy_rows, rankings, sep="\n", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
