"""Energy of the shared baseline conv SNN against its same-shaped ANN, under every accounting.

    python benchmarks/energy.py [--seeds 0 1 2] [--output benchmarks/results/energy.json]

Takes the cached baselines `conv-direct4` (T = 4, direct input) and `conv-ann` from `snncomp.baselines`
(trained on first use), measures them on the 1000 held-out MNIST-5k images with `metrics.measure`, and
writes per seed the operation counts and, for FP32 and INT8, the SNN/ANN energy ratio under each pair of
assumptions of `energy.compare` (SNN neuron updates not priced, priced as ACs or as MACs; ANN dense or
zero-skipping). The `counts` and `ratios` tables hold the means over seeds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import record
import torch

from snncomp import baselines, data, energy, metrics

OUT = Path(__file__).resolve().parent / "results" / "energy.json"
COUNTS = ("accuracy", "dense_synops", "effective_macs", "effective_acs", "activation_sparsity", "neuron_updates")


def measure(seed: int, split: data.Split) -> dict:
    out = {"seed": seed}
    for kind, name in (("snn", "conv-direct4"), ("ann", "conv-ann")):
        model, enc = baselines.trained(name, seed)
        out[kind] = metrics.measure(model, split.test_x, enc, split.test_y)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--output", default=str(OUT))
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    split = data.mnist5k()
    runs = [measure(s, split) for s in args.seeds]
    rows, counts, ratios = [], [], []
    for r in runs:
        for kind in ("snn", "ann"):
            rows.append({"model": f"conv {kind.upper()}", "seed": r["seed"],
                         **{k: getattr(r[kind], k) for k in COUNTS}})
    for kind in ("snn", "ann"):
        mine = [row for row in rows if row["model"] == f"conv {kind.upper()}"]
        counts.append({"model": f"conv {kind.upper()}",
                       **{k.replace("_", " "): round(statistics.fmean(row[k] for row in mine), 4 if k in
                                                     ("accuracy", "activation_sparsity") else 0) for k in COUNTS}})
    for regime in ("fp32", "int8"):
        comps = [energy.compare(r["snn"], r["ann"], regime) for r in runs]
        for key in comps[0].ratios():
            vals = [c.ratios()[key] for c in comps]
            ratios.append({"regime": regime, "SNN neuron updates": key[0], "ANN accounting": key[1],
                           "E_SNN / E_ANN": round(statistics.fmean(vals), 3),
                           "spread (min-max)": f"{min(vals):.3f}-{max(vals):.3f}"})
        for c in comps:
            print(regime, c, file=sys.stderr)
    result = {"benchmark": "energy of the baseline SNN against its ANN",
              **record.provenance("python benchmarks/energy.py", f"torch threads {torch.get_num_threads()}"),
              "seeds": args.seeds, "counts": counts, "ratios": ratios, "rows": rows}
    record.write(args.output, result)
    print(counts, ratios, sep="\n", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
