"""Spike-reduction benchmark: the rate side, early exit and temporal coding on the shared baselines.

    python benchmarks/spike_reduction.py [--quick] [--seeds 0,1,2] [--parts rate,exit,exit_calibrated,ttfs,s4nn,mlp_rate] [--merge]

For each seed (`--quick`: seed 0) it writes `benchmarks/results/spike_reduction.json`:

* **rate** (`conv-direct4`, MNIST-5k): the trained baseline fine-tuned for `FT` (5 epochs over the
  `FT_IMAGES` training images) with trainable thresholds and leaks (`learnable-threshold`, DIET-SNN) and
  the spike-rate L1 regulariser or, separately, the synaptic-operation loss, each at three weights (the
  synop loss normalised by the baseline's own count, so both start at comparable sizes); and the same
  fine-tuning without any term (the control). Per run: accuracy, spikes per sample, per-layer firing
  rates, effective ACs and MACs, fp32 energy.
* **exit** (`conv-rate16` on rate-coded MNIST-5k, `conv-events` on the synthetic N-MNIST-like frames):
  SEENN-I early exit at several confidence thresholds: average steps, accuracy at the exit and at full
  T, spikes and synaptic operations in the steps used. No training.
* **exit_calibrated**: the same on the validation images each baseline was trained without
  (`baselines.split(name).validation()`) and on the test images, so that the threshold picked on
  validation (the fewest steps within 0.5 points) is judged on test.
* **ttfs**: from the `conv-direct4` weights, `FT_CODE` of training with time-to-first-spike input
  (`Latency(8)`, at most one spike per neuron), and the same budget with rate-coded input (`Rate(8)`):
  accuracy, spikes per sample, the largest spike count of any neuron.
* **s4nn**: S4NN trained from scratch with the paper's settings (784-400-10, T = 256, online SGD at
  0.2) for `S4NN_EPOCHS` epochs over the 4000 training images: the same measures, and the test accuracy
  after every epoch.
* **mlp_rate**: the same 784-400-10 shape as a LIF network on rate-coded input (`Rate(8)`), trained from
  scratch with the `mlp-direct4` baseline's budget: the rate-coded counterpart of S4NN.

The mean over seeds is stored beside the runs. Runs one process; run it under `nice` on a shared machine.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import record
import torch

from snncomp import baselines, data, energy, metrics, models
from snncomp.data import encoding
from snncomp import spike_reduction as sr
from snncomp.train import TrainConfig, fit

OUT = Path(__file__).resolve().parent / "results" / "spike_reduction.json"

FT = TrainConfig(epochs=5, lr=1e-3)  # rate-side fine-tuning of a trained baseline (thresholds trainable)
FT_CODE = TrainConfig(epochs=3, lr=1e-3)  # temporal coding against rate coding, same budget
FT_IMAGES = 4000  # every training image of MNIST-5k
S4NN_EPOCHS = 20  # 80 000 online updates; the paper trains on 60 000 images per epoch
L1_WEIGHTS = (64.0, 16.0, 8.0, 4.0)  # times the mean firing rate (about 0.1 on the baseline)
SYNOP_WEIGHTS = (6.4, 1.6, 0.4, 0.2, 0.1)  # linear penalty: times synops / baseline synops (1 on the baseline)
SYNOP_TARGETS = (0.25, 0.35, 0.5)  # Sorbaro et al.'s loss: target as a fraction of the baseline's synops
THRESHOLDS = (0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 0.999, 0.9999)


def _report(model, split, enc) -> dict:
    r = metrics.measure(model, split.test_x, enc, split.test_y)
    e = energy.estimate(r, "fp32")
    return {"accuracy": r.accuracy, "spikes_per_sample": r.spikes_per_sample, "firing_rates": r.firing_rates,
            "effective_acs": r.effective_acs, "effective_macs": r.effective_macs,
            "effective_synops": r.effective_acs + r.effective_macs, "dense_synops": r.dense_synops,
            "neuron_updates": r.neuron_updates, "energy_pj": e.total_pj, "energy_with_updates_pj": e.with_updates_pj("ac")}


def _finetune_split() -> data.Split:
    s = data.mnist5k()
    if FT_IMAGES >= len(s.train_y):
        return s
    return data.Split(s.train_x[:FT_IMAGES], s.train_y[:FT_IMAGES], s.test_x, s.test_y, "mnist5k-ft")


def _rate_terms(name: str, base_synops: float) -> list:
    """The loss terms of a rate-side run named `control`, `l1-<weight>`, `synops-<weight>` (the linear synop
    penalty, weight times S / baseline S) or `synops-target-<fraction>` (Sorbaro et al.'s loss with the target
    at that fraction of the baseline's operations)."""
    kind, _, weight = name.partition("-")
    if kind == "control" and not weight:
        return []
    if kind == "l1":
        return [sr.weighted(sr.spike_rate_l1, float(weight))]
    if kind == "synops" and weight.startswith("target-"):
        return [functools.partial(sr.synops_loss, target=float(weight.removeprefix("target-")) * base_synops)]
    if kind == "synops":
        return [sr.weighted(sr.synops_count, float(weight) / base_synops)]
    raise ValueError(f"rate run {name!r}: expected control, l1-<weight>, synops-<weight> or synops-target-<fraction>")


def rate_side(seed: int, save=None, names: list[str] | None = None) -> dict:
    split = _finetune_split()
    base, enc = baselines.trained("conv-direct4", seed)
    out = {"baseline": _report(base, split, enc)}
    base_synops = out["baseline"]["effective_synops"]
    cfg = dataclasses.replace(FT, seed=seed, progress=False)
    # every run trains the baseline's thresholds and leaks with the weights (`learnable-threshold`), the
    # control with no term
    if names is None:
        names = ["control", *(f"l1-{w:g}" for w in L1_WEIGHTS), *(f"synops-{w:g}" for w in SYNOP_WEIGHTS),
                 *(f"synops-target-{f:g}" for f in SYNOP_TARGETS)]
    runs = {name: _rate_terms(name, base_synops) for name in names}
    for name, terms in runs.items():
        t0 = time.perf_counter()
        net = sr.learnable_threshold(base, split, enc, train=cfg, loss_terms=terms).model
        out[name] = {**_report(net, split, enc), "seconds": time.perf_counter() - t0}
        print(f"  seed {seed} {name}: {out[name]['accuracy']:.4f} acc, {out[name]['spikes_per_sample']:.0f} spikes, "
              f"{out[name]['effective_synops']:.4g} ops", flush=True)
        if save is not None:
            save(out)
    return out


EXIT_MODELS = {"conv-rate16": data.mnist5k, "conv-events": lambda: data.nmnist_like(T=16)}


def early_exit(seed: int, models: tuple[str, ...] = tuple(EXIT_MODELS)) -> dict:
    out = {}
    for name in models:
        split = EXIT_MODELS[name]()
        model, enc = baselines.trained(name, seed)
        out[name] = {}
        for th, r in zip(THRESHOLDS, sr.early_exit_reports(model, split.test_x, split.test_y, enc, THRESHOLDS)):
            out[name][f"{th:g}"] = dict(r.__dict__)
        print(f"  seed {seed} {name}: " + ", ".join(f"{k}: {v['average_steps']:.2f} steps {v['accuracy']:.4f}"
                                                   for k, v in out[name].items()), flush=True)
    return out


def most_spikes(model, encoder, x, generator=None, batch: int = 250) -> int:
    """The largest spike count of any neuron for any image of `x`, encoded in batches of `batch`."""
    return max(sr.max_spikes_per_neuron(model, encoder(x[i:i + batch], generator)) for i in range(0, len(x), batch))


def early_exit_calibrated(seed: int, models: tuple[str, ...] = tuple(EXIT_MODELS)) -> dict:
    """Early exit with the threshold chosen on validation images: every threshold measured on the validation
    part the baseline was trained without (`baselines.split(name).validation()`) and on the test images, so
    the threshold picked on validation can be judged on test (`tables`: `exit_calibrated_table`)."""
    out = {}
    for name in models:
        split = baselines.split(name)
        model, enc = baselines.trained(name, seed)
        out[name] = {}
        for part, s in (("val", split.validation()), ("test", split)):
            reports = sr.early_exit_reports(model, s.test_x, s.test_y, enc, THRESHOLDS)
            out[name][part] = {f"{th:g}": dict(r.__dict__) for th, r in zip(THRESHOLDS, reports)}
    print(f"  seed {seed} calibrated exit measured", flush=True)
    return out


def pick_threshold(reports: dict, max_drop: float = 0.5) -> str:
    """The threshold with the fewest average steps among those losing at most `max_drop` points against full
    T on `reports` (`{threshold: report}`, one half of the test images or the mean over seeds); the one that
    loses least when none does."""
    drop = {th: 100 * (r["accuracy_full"] - r["accuracy"]) for th, r in reports.items()}
    ok = [(r["average_steps"], th) for th, r in reports.items() if drop[th] <= max_drop]
    return min(ok)[1] if ok else min(drop, key=drop.get)


def temporal_coding(seed: int) -> dict:
    split = _finetune_split()
    base, _ = baselines.trained("conv-direct4", seed)
    cfg = dataclasses.replace(FT_CODE, seed=seed, progress=False)
    out = {}
    t0 = time.perf_counter()
    res = sr.time_to_first_spike(base, split, encoding.Direct(4), T=8, train=cfg)
    rep = _report(res.model, split, res.encoder)
    worst = most_spikes(res.model, res.encoder, split.test_x)
    out["time-to-first-spike"] = {**rep, "max_spikes_per_neuron": worst, "seconds": time.perf_counter() - t0}
    t0 = time.perf_counter()
    net = copy.deepcopy(base)
    fit(net, split, encoding.Rate(8), cfg, evaluate_test=False)
    gen = torch.Generator().manual_seed(0)
    worst = most_spikes(net, encoding.Rate(8), split.test_x, gen)
    out["rate-8"] = {**_report(net, split, encoding.Rate(8)), "max_spikes_per_neuron": worst,
                     "seconds": time.perf_counter() - t0}
    print(f"  seed {seed} ttfs {out['time-to-first-spike']['accuracy']:.4f}, rate {out['rate-8']['accuracy']:.4f}", flush=True)
    return out


def _mean(runs: list[dict]) -> dict:
    """Mean over seeds of every numeric leaf (nested dicts averaged key by key)."""
    first = runs[0]
    out = {}
    for k, v in first.items():
        if not all(k in r for r in runs):  # a run cut short: only what every seed finished
            continue
        if isinstance(v, dict):
            out[k] = _mean([r[k] for r in runs])
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = statistics.fmean(r[k] for r in runs)
    return out


def _pm(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    """Mean ± standard deviation over seeds, as text."""
    vals = [v * scale for v in values]
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.fmean(vals):.{digits}f} ± {sd:.{digits}f}"


def matched_accuracy(mean: dict) -> list[dict]:
    """Each synop run against the spike-rate L1 curve at the same accuracy (means over seeds): the operations
    the L1 curve needs there, interpolated linearly between its two neighbouring runs, and the ratio (below 1:
    the synop run needs fewer operations for the same accuracy). Runs outside the L1 curve's accuracy range
    are reported without a ratio."""
    l1 = sorted((v["accuracy"], v["effective_synops"]) for k, v in mean.items() if k.startswith("l1-"))
    rows = []
    for name, v in mean.items():
        if not name.startswith("synops-"):
            continue
        acc, ops = v["accuracy"], v["effective_synops"]
        row = {"run": name, "form": "target (Sorbaro)" if name.startswith("synops-target-") else "linear",
               "accuracy %": round(100 * acc, 2), "effective synops / sample": f"{ops / 1e3:.1f} k"}
        pair = next(((a, b) for a, b in zip(l1, l1[1:]) if a[0] <= acc <= b[0]), None)
        if pair is None:
            row.update({"L1 at the same accuracy": "outside the L1 curve", "ratio": ""})
        else:
            (a0, o0), (a1, o1) = pair
            at = o0 + (acc - a0) / (a1 - a0) * (o1 - o0) if a1 > a0 else min(o0, o1)
            row.update({"L1 at the same accuracy": f"{at / 1e3:.1f} k", "ratio": round(ops / at, 3)})
        rows.append(row)
    return rows


def tables(result: dict) -> dict:
    """Flat tables for the docs page (`<!-- results: spike_reduction TABLE -->`), means ± sd over seeds."""
    out = {}
    if "rate" in result:
        runs = result["rate"]["runs"]
        base = [r["baseline"] for r in runs]
        rows = []
        for name in [k for k in runs[0] if all(k in r for r in runs)]:
            got = [r[name] for r in runs]
            rows.append({
                "run": name,
                "accuracy %": _pm([g["accuracy"] for g in got], 100, 2),
                "drop vs baseline (pt)": _pm([100 * (b["accuracy"] - g["accuracy"]) for b, g in zip(base, got)], 1, 2),
                "spikes / sample": _pm([g["spikes_per_sample"] for g in got], 1, 0),
                "fewer spikes %": _pm([100 * (1 - g["spikes_per_sample"] / b["spikes_per_sample"])
                                       for b, g in zip(base, got)], 1, 1),
                "effective synops / sample": _pm([g["effective_synops"] for g in got], 1e-3, 1) + " k",
                "fewer synops %": _pm([100 * (1 - g["effective_synops"] / b["effective_synops"])
                                       for b, g in zip(base, got)], 1, 1),
                "energy fp32 (nJ)": _pm([g["energy_pj"] for g in got], 1e-3, 1),
            })
        out["rate_table"] = rows
        targets = []  # the goal against the mean over seeds: >= 60 % fewer spikes with <= 1 point lost
        for name in [k for k in runs[0] if k != "baseline" and all(k in r for r in runs)]:
            fewer = statistics.fmean(1 - r[name]["spikes_per_sample"] / r["baseline"]["spikes_per_sample"] for r in runs)
            drop = statistics.fmean(100 * (r["baseline"]["accuracy"] - r[name]["accuracy"]) for r in runs)
            targets.append({"run": name, "fewer spikes % (mean)": round(100 * fewer, 1),
                            "drop (pt, mean)": round(drop, 2), "met (>= 60 % fewer, <= 1 pt)": fewer >= 0.6 and drop <= 1.0})
        out["rate_targets"] = targets
        out["rate_curves"] = matched_accuracy(result["rate"]["mean"])
    if "exit" in result:
        rows = []
        runs = result["exit"]["runs"]
        for model in runs[0]:
            for th in runs[0][model]:
                got = [r[model][th] for r in runs]
                rows.append({"baseline": model, "threshold": th, "T": got[0]["T"],
                             "average steps": _pm([g["average_steps"] for g in got], 1, 2),
                             "accuracy %": _pm([g["accuracy"] for g in got], 100, 2),
                             "full-T accuracy %": _pm([g["accuracy_full"] for g in got], 100, 2),
                             "drop (pt)": _pm([100 * (g["accuracy_full"] - g["accuracy"]) for g in got], 1, 2),
                             "synops vs full T %": _pm([100 * g["synops_per_sample"] / g["synops_full"] for g in got], 1, 1)})
        out["exit_table"] = rows
        targets = []  # per baseline, on the mean over seeds: the cheapest threshold with <= 0.5 point lost
        for model in runs[0]:
            mean = _mean([r[model] for r in runs])
            th = pick_threshold(mean)
            steps, T = mean[th]["average_steps"], runs[0][model][th]["T"]
            drop = 100 * (mean[th]["accuracy_full"] - mean[th]["accuracy"])
            targets.append({"baseline": model, "threshold": th, "T": T, "average steps": round(steps, 2),
                            "drop (pt, mean)": round(drop, 2), "met (<= T/2 steps, <= 0.5 pt)": drop <= 0.5 and steps <= T / 2})
        out["exit_targets"] = targets
    if "exit_calibrated" in result:
        rows = []
        runs = result["exit_calibrated"]["runs"]
        for model in runs[0]:  # each seed: pick on the validation images, judge on the test images
            picked = [(pick_threshold(r[model]["val"]), r[model]["test"][pick_threshold(r[model]["val"])])
                      for r in runs]
            steps = [g["average_steps"] for _, g in picked]
            drops = [100 * (g["accuracy_full"] - g["accuracy"]) for _, g in picked]
            T = picked[0][1]["T"]
            rows.append({"baseline": model, "T": T, "thresholds picked": ", ".join(sorted({th for th, _ in picked}, key=float)),
                         "average steps": _pm(steps, 1, 2), "drop (pt)": _pm(drops, 1, 2),
                         "met (<= T/2 steps, <= 0.5 pt)": statistics.fmean(steps) <= T / 2 and statistics.fmean(drops) <= 0.5})
        out["exit_calibrated_table"] = rows
    rows = []
    for part in ("ttfs", "s4nn", "mlp_rate"):
        runs = result[part]["runs"] if part in result else []
        network = "conv, from the conv-direct4 weights" if part == "ttfs" else "784-400-10, from scratch"
        rows += [{"code": name, "network": network, "seeds": len(runs),
                  "accuracy %": _pm([r[name]["accuracy"] for r in runs], 100, 2),
                  "spikes / sample": _pm([r[name]["spikes_per_sample"] for r in runs], 1, 0),
                  "max spikes of a neuron": max(r[name]["max_spikes_per_neuron"] for r in runs),
                  "effective synops / sample": _pm([r[name]["effective_synops"] for r in runs], 1e-3, 1) + " k",
                  "neuron updates / sample": f"{statistics.fmean(r[name]['neuron_updates'] for r in runs):.0f}"}
                 for name in (runs[0] if runs else ())]
    if rows:
        out["ttfs_table"] = rows
    return out


def s4nn_run(seed: int) -> dict:
    split = _finetune_split()
    t0 = time.perf_counter()
    cfg = dataclasses.replace(sr.S4NN_TRAIN, epochs=S4NN_EPOCHS, seed=seed, progress=False)
    res = sr.s4nn(baselines.trained("mlp-direct4", seed)[0], split, encoding.Direct(4), seed=seed, train=cfg)
    worst = most_spikes(res.model, res.encoder, split.test_x)
    out = {"s4nn": {**_report(res.model, split, res.encoder), "max_spikes_per_neuron": worst,
                    "test_accuracy_per_epoch": [r["test_acc"] for r in res.history],
                    "revived_per_epoch": res.info["revived_per_epoch"], "seconds": time.perf_counter() - t0}}
    print(f"  seed {seed} s4nn {out['s4nn']['accuracy']:.4f}", flush=True)
    return out


def settings() -> dict:
    return {"FT": repr(FT), "FT_CODE": repr(FT_CODE), "FT_IMAGES": FT_IMAGES, "L1_WEIGHTS": L1_WEIGHTS,
            "SYNOP_WEIGHTS": SYNOP_WEIGHTS, "SYNOP_TARGETS": SYNOP_TARGETS, "THRESHOLDS": THRESHOLDS,
            "S4NN": repr(dataclasses.replace(sr.S4NN_TRAIN, epochs=S4NN_EPOCHS))}


def mlp_rate(seed: int) -> dict:
    """S4NN's 784-400-10 shape as a LIF network with rate-coded input (`Rate(8)`), trained from scratch with the
    `mlp-direct4` baseline's budget: the rate-coded counterpart of the `s4nn` part."""
    split = _finetune_split()
    t0 = time.perf_counter()
    net = models.mlp_snn(hidden=(400,), seed=seed)
    enc = encoding.Rate(8)
    fit(net, split, enc, dataclasses.replace(baselines.BASELINES["mlp-direct4"].config, seed=seed, progress=False),
        evaluate_test=False)
    gen = torch.Generator().manual_seed(0)
    worst = most_spikes(net, enc, split.test_x, gen)
    out = {"rate-8 mlp-400": {**_report(net, split, enc), "max_spikes_per_neuron": worst,
                              "seconds": time.perf_counter() - t0}}
    print(f"  seed {seed} rate-8 mlp-400 {out['rate-8 mlp-400']['accuracy']:.4f}", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="seed 0 only")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--ttfs-seeds", default=None, help="seeds of the ttfs part (default: --seeds)")
    p.add_argument("--parts", default="rate,exit,exit_calibrated,ttfs,s4nn,mlp_rate")
    p.add_argument("--output", default=str(OUT))
    p.add_argument("--exit-models", default=",".join(EXIT_MODELS), help="baselines of the exit part")
    p.add_argument("--rate-runs", default=None,
                   help="rate part: comma-separated runs (control, l1-<weight>, synops-<weight>); default: the settings")
    p.add_argument("--merge", action="store_true", help="keep the parts already in --output that are not rerun")
    p.add_argument("--tables-only", action="store_true", help="only rebuild the tables of --output")
    p.add_argument("--note", default=None, help="--combine: a note on which process ran which runs")
    p.add_argument("--combine", nargs="+", metavar="FILE",
                   help="join result files of separate processes (one part or seed each) into --output")
    args = p.parse_args(argv)
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    parts = args.parts.split(",")
    fns = {"rate": rate_side, "exit": early_exit, "exit_calibrated": early_exit_calibrated, "ttfs": temporal_coding,
           "s4nn": s4nn_run, "mlp_rate": mlp_rate}
    if args.combine:
        parts_in = [json.loads(Path(f).read_text()) for f in args.combine]
        processes = []  # a file that was itself joined brings the processes it lists
        for r in parts_in:
            processes += r.get("processes") or [{k: r.get(k) for k in ("command", "date", "machine", "seconds", "seeds", "partial")}]
        result = {**record.provenance("python benchmarks/spike_reduction.py " + " ".join(sys.argv[1:]),
                                      "separate processes run at the same time, shared with other jobs"),
                  "processes": processes, "settings": settings(), **({"settings_note": args.note} if args.note else {})}
        for part in fns:  # per seed, the runs of every file that has that seed, joined (a later file adds runs)
            by_seed: dict[int, dict] = {}
            for r in parts_in:
                for seed, run in zip(r[part].get("seeds", r.get("seeds")), r[part]["runs"]) if part in r else ():
                    by_seed.setdefault(seed, {}).update(run)
            if by_seed:
                runs = [by_seed[s] for s in sorted(by_seed)]
                result[part] = {"seeds": sorted(by_seed), "runs": runs, "mean": _mean(runs)}
        record.write(args.output, {**result, **tables(result)})
        return
    if args.tables_only:
        result = json.loads(Path(args.output).read_text())
        result.update(result.pop("provenance", {}))  # files written before provenance moved to the top level
        record.write(args.output, {**result, **tables(result)})
        return
    t0 = time.perf_counter()
    result = {**record.provenance("python benchmarks/spike_reduction.py " + " ".join(sys.argv[1:]),
                                  f"one process, {torch.get_num_threads()} torch threads, shared with other jobs"),
              "settings": settings(), "seeds": seeds}
    if args.merge and Path(args.output).exists():
        old = json.loads(Path(args.output).read_text())
        result = {**{k: v for k, v in old.items() if k in fns}, **result,
                  "merged_with": {k: old.get(k) for k in ("command", "date", "machine")}}
    for part in parts:
        runs = []
        for s in ([int(x) for x in args.ttfs_seeds.split(",")] if part == "ttfs" and args.ttfs_seeds else seeds):
            print(f"{part}, seed {s}", flush=True)
            if part in ("exit", "exit_calibrated"):
                runs.append(fns[part](s, tuple(args.exit_models.split(","))))
            elif part == "rate":  # written after every run, so a run cut short keeps what it finished
                runs.append(rate_side(s, names=args.rate_runs.split(",") if args.rate_runs else None, save=lambda out: record.write(
                    args.output, {**result, "partial": True, "rate": {"runs": [*runs, out], "mean": out}})))
            else:
                runs.append(fns[part](s))
        result[part] = {"runs": runs, "mean": _mean(runs)}
        result["seconds"] = time.perf_counter() - t0
        record.write(args.output, {**result, **tables(result)})  # after every part, so a cut-off run keeps what it finished
    print(f"wrote {args.output} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
