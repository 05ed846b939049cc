# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 Knowledge distillation: a small spiking student and its teachers
#
# A small spiking student learns scikit-learn's 8x8 handwritten digits from only 300 images (about 30 per
# class) in 5 epochs, alone or under a frozen teacher: a conv ANN about 9x its size, or a conv SNN about 3x
# its size at T = 4 teaching the student at T = 2. Both teachers come from the cached baseline builder and train in seconds on the full
# digits training set; small images keep the notebook quick. The three-seed comparison on MNIST (1000
# images, a teacher trained on those same images) is the spec `benchmarks/specs/distillation.toml`,
# whose stored results are read at the end.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from snncomp import baselines, data, distillation, energy, metrics, models, registry
from snncomp.data import encoding
from snncomp.train import TrainConfig, fit

ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "benchmarks" / "results").is_dir())
_ = torch.manual_seed(0)
full = data.digits()  # 1437 training and 360 test images, 8x8
split = data.Split(full.train_x[:300], full.train_y[:300], full.test_x, full.test_y, "digits-300")
test_x, test_y = full.test_x, full.test_y
quick = TrainConfig(epochs=5, batch_size=16, lr=5e-3, progress=False)
enc = encoding.Direct(4)
print("registered:", [(m.name, m.kind) for m in registry.methods(section="distillation")])

# %% [markdown]
# ## The teacher and the student alone
#
# The teacher comes from the one cached builder (`baselines.trained`, weights only, trained on first use).
# Distillation freezes it: its parameters get no gradient and its forward runs in eval mode without
# gradients, on the images before encoding, with its own encoder (`Direct(1)` for the ANN).

# %%
ann, ann_enc = baselines.trained("digits-conv-ann", seed=0)
r_ann = metrics.measure(ann, test_x, ann_enc, test_y)
teacher = distillation.resolve(("digits-conv-ann", 0))
alone = models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)
fit(alone, split, enc, quick, evaluate_test=False)


def report(model, encoder=enc):
    r = metrics.measure(model, test_x, encoder, test_y)
    c = energy.compare(r, r_ann)
    return {"accuracy": r.accuracy, "params": r.params, "spikes": r.spikes_per_sample,
            "synops": r.effective_macs + r.effective_acs, "µJ": c.snn_pj() * 1e-6,
            "vs ANN dense": c.ratio(None, "dense"), "vs ANN zero-skip": c.ratio(None, "zero_skipping")}


rows = {"teacher ANN": {"accuracy": r_ann.accuracy, "params": r_ann.params, "spikes": 0.0,
                        "synops": r_ann.dense_synops, "µJ": energy.ann_energy(r_ann).total_uj,
                        "vs ANN dense": 1.0, "vs ANN zero-skip": float("nan")},
        "student alone": report(alone)}
print(f"teacher: {r_ann.params} parameters, accuracy {r_ann.accuracy:.3f}; student: {rows['student alone']['params']}")
assert r_ann.params >= 4 * rows["student alone"]["params"]
assert not any(p.requires_grad for p in teacher.model.parameters())

# %% [markdown]
# ## What the student's output is read from
#
# Soft targets at temperature 4, weight 1 beside the cross-entropy, with the student's scores read three ways:
# the time-averaged readout (what the model predicts with), the spike counts of one LIF neuron per class
# driven by the readout, and the last potential of a leaky non-firing output neuron.

# %%
def fresh():
    return models.conv_snn((1, 8, 8), channels=(4, 8), seed=0)  # the same initialisation in every run


for ro in distillation.READOUTS:
    res = distillation.soft_target_distillation(fresh(), split, enc, teacher=teacher, readout=ro, train=quick)
    rows[f"soft targets, {ro}"] = report(res.model)

# %% [markdown]
# ## Features, energy, and a spiking teacher
#
# KDSNN adds the teacher's last feature map, matched by the student's firing rates through a learned 1x1
# adapter (dropped after training); attention transfer (Zagoruyko and Komodakis) matches channel-pooled,
# normalised attention maps of every layer. The energy-aware
# variant adds the student's mean firing rate to the loss. Last, the SNN baseline (T = 4) teaches the student
# at T = 2, against the same student trained alone at T = 2.

# %%
rows["KDSNN"] = report(distillation.kdsnn(fresh(), split, enc, teacher=teacher, readout="spike-count",
                                          train=quick).model)
rows["attention transfer"] = report(distillation.attention_transfer(fresh(), split, enc, teacher=teacher,
                                                                   readout="spike-count", train=quick).model)
lean = distillation.energy_aware_distillation(fresh(), split, enc, teacher=teacher, readout="spike-count",
                                              student_temperature=1.0, spike_weight=2.0, train=quick)
rows["energy-aware"] = report(lean.model)
enc2 = encoding.Direct(2)
alone2 = fresh()
fit(alone2, split, enc2, quick, evaluate_test=False)
rows["alone, T=2"] = report(alone2, enc2)
snn_t = distillation.spike_distillation(fresh(), split, enc2, teacher=("digits-conv-direct4", 0), readout="spike-count",
                                        train=quick)
rows["SNN T=4 -> T=2"] = report(snn_t.model, enc2)
print(f"{'':>26}" + "".join(f"{c:>18}" for c in rows["student alone"]))
for name, r in rows.items():
    print(f"{name:>26}" + "".join(f"{v:>18.4g}" for v in r.values()))
assert rows["energy-aware"]["spikes"] < rows["soft targets, spike-count"]["spikes"]
assert snn_t.info["teacher_T"] == 4 and snn_t.encoder.T == 2

# %% [markdown]
# ## The benchmark: three seeds, 8 epochs
#
# Read from the one result store (`benchmarks/results/board.jsonl`, filled by `snncomp bench --spec
# distillation`) through the tables of `benchmarks/specs/distillation.toml`, as the Distillation page shows them.
# `gain` is in accuracy points over the same student trained alone at the same T, from the same
# initialisation, seed by seed; `spikes vs alone` is the ratio of spikes per sample.

# %%
from snncomp.kb import spec_tables

tab = spec_tables.means(ROOT, "distillation", "table")
short = spec_tables.means(ROOT, "distillation", "short")
print(f"{'run':>26}{'seeds':>8}{'accuracy':>10}{'gain':>8}{'spikes':>10}{'vs alone':>10}")
for r in tab + short:
    print(f"{r['run']:>26}{','.join(map(str, r['seeds'])):>8}{r['accuracy']:>10.2f}{r['gain']:>8.2f}"
          f"{r['spikes']:>10.0f}{r['spikes_vs_reference']:>10.3f}")
plt.figure(figsize=(5.5, 3))
plt.scatter([r["spikes"] for r in tab], [r["accuracy"] for r in tab])
for r in tab:
    plt.annotate(r["run"], (r["spikes"], r["accuracy"]), fontsize=7)
plt.xlabel("student spikes per sample"); plt.ylabel("test accuracy (%)"); plt.title("benchmark means, T = 4")
plt.show()
assert all(r["seeds"] == [0, 1, 2] for r in tab + short)
