"""Synthetic N-MNIST-like events: accuracy against T, time-step reduction, and energy under chip profiles.

    python benchmarks/events.py [--seeds 0 1 2] [--train 600] [--output benchmarks/results/events.json]

Data: `events.nmnist_like(T=16)` (the synthetic N-MNIST-like frames of MNIST-5k, cached), a subset to keep
the run short on 2 cores: the first `--train` training samples and every other test sample (500, all
classes). Per seed:

* accuracy against T: a small conv SNN (channels 8, 16; 2 x 34 x 34 input) trained 2 epochs with
  `train.fit` at each T of 1, 2, 4, 8 (the 16 stored bins merged into T by `events.Frames`);
* progressive time-step reduction [@chowdhury2022ultra] of the T = 8 model to 4 and then 2 steps
  (`pruning.timestep_reduction`, 1 epoch per stage): T_max / 4;
* energy per sample of three models under every chip profile of `snncomp.chips`: the T = 8 event model,
  the cached direct-input baseline `conv-direct4` (MNIST-5k test set) and that baseline after 90 %
  one-shot magnitude pruning with 1 epoch of fine-tuning; the ranking of the three under each profile,
  and whether it differs from the ranking under the 45 nm model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import record
import torch

from snncomp import baselines, chips, data, events, metrics, models, pruning, train

OUT = Path(__file__).resolve().parent / "results" / "events.json"
STEPS = (1, 2, 4, 8)


def subset(sp: data.Split, n_train: int) -> data.Split:
    return data.Split(sp.train_x[:n_train], sp.train_y[:n_train], sp.test_x[::2], sp.test_y[::2], sp.name)


def run_seed(seed: int, ev: data.Split, mnist: data.Split) -> dict:
    cfg = train.TrainConfig(epochs=2, batch_size=32, lr=3e-3, seed=seed, progress=False)
    acc, nets = {}, {}
    for T in STEPS:
        net = models.conv_snn(in_shape=(2, 34, 34), channels=(8, 16), seed=seed)
        train.fit(net, ev, events.Frames(T), cfg, evaluate_test=False)
        acc[T] = train.evaluate(net, ev.test_x, ev.test_y, events.Frames(T))
        nets[T] = net
        print(f"seed {seed} T={T}: {acc[T]:.3f}", file=sys.stderr)
    cut = pruning.timestep_reduction(nets[8], ev, events.Frames(8), steps=(4, 2),
                                     train=train.TrainConfig(epochs=1, batch_size=32, lr=1e-3, seed=seed,
                                                             progress=False))
    direct, enc = baselines.trained("conv-direct4", seed)
    pruned = pruning.magnitude(direct, mnist, enc, sparsity=0.9,
                               finetune=train.TrainConfig(epochs=1, lr=1e-3, seed=seed, progress=False))
    reports = {"events conv SNN, T=8": metrics.measure(nets[8], ev.test_x, events.Frames(8), ev.test_y),
               "direct conv SNN, T=4": metrics.measure(direct, mnist.test_x, enc, mnist.test_y),
               "direct conv SNN, T=4, 90% pruned": metrics.measure(pruned.model, mnist.test_x, pruned.encoder,
                                                                   mnist.test_y)}
    energy = {m: {p: q.total_pj for p, q in chips.price_all(r).items()} for m, r in reports.items()}
    return {"seed": seed, "accuracy": acc, "reduction": cut.info["accuracy"], "energy_pj": energy,
            "counts": {m: {"accuracy": r.accuracy, "effective_macs": r.effective_macs,
                           "effective_acs": r.effective_acs, "neuron_updates": r.neuron_updates,
                           "spikes_per_sample": r.spikes_per_sample} for m, r in reports.items()}}


def _mean(vals) -> float:
    return statistics.fmean(vals)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--train", type=int, default=600)
    ap.add_argument("--output", default=str(OUT))
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    ev = subset(events.nmnist_like(T=16), args.train)
    mnist = data.mnist5k()
    runs = [run_seed(s, ev, mnist) for s in args.seeds]
    accuracy = [{"T": T, "test accuracy (mean)": round(_mean(r["accuracy"][T] for r in runs), 4),
                 "spread (min-max)": f"{min(r['accuracy'][T] for r in runs):.3f}-"
                                     f"{max(r['accuracy'][T] for r in runs):.3f}"} for T in STEPS]
    reduction = [{"T": T, "accuracy after the stage (mean)": round(_mean(r["reduction"][T] for r in runs), 4),
                  "spread (min-max)": f"{min(r['reduction'][T] for r in runs):.3f}-"
                                      f"{max(r['reduction'][T] for r in runs):.3f}"} for T in (8, 4, 2)]
    models_ = list(runs[0]["energy_pj"])
    profiles = list(runs[0]["energy_pj"][models_[0]])
    mean_e = {m: {p: _mean(r["energy_pj"][m][p] for r in runs) for p in profiles} for m in models_}
    energy = [{"model": m, **{chips.get(p).label: round(mean_e[m][p] / 1e3, 2) for p in profiles}} for m in models_]
    ref = sorted(models_, key=lambda m: mean_e[m]["horowitz-45nm"])
    rankings = []
    for p in profiles:
        order = sorted(models_, key=lambda m: mean_e[m][p])
        per_seed = [sorted(models_, key=lambda m: r["energy_pj"][m][p]) for r in runs]
        rankings.append({"profile": chips.get(p).label, "scope": chips.get(p).scope,
                         "cheapest to dearest (mean over seeds)": " < ".join(order),
                         "differs from 45 nm ranking": order != ref,
                         "same ranking in every seed": all(o == per_seed[0] for o in per_seed)})
    counts = [{"model": m, **{k: round(_mean(r["counts"][m][k] for r in runs), 4 if k == "accuracy" else 0)
                              for k in runs[0]["counts"][m]}} for m in models_]
    result = {"benchmark": "synthetic N-MNIST-like events: accuracy against T, time-step reduction, chip energy",
              **record.provenance(f"python benchmarks/events.py --train {args.train}",
                                  f"torch threads {torch.get_num_threads()}"),
              "seeds": args.seeds, "train_samples": args.train, "test_samples": len(ev.test_y),
              "seconds": round(time.perf_counter() - t0), "accuracy": accuracy, "reduction": reduction,
              "energy_nj": energy, "rankings": rankings, "counts": counts, "runs": runs}
    record.write(args.output, result)
    print(accuracy, reduction, energy, rankings, sep="\n", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
