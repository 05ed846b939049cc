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
# # 07 Spike reduction: fewer spikes, fewer synaptic operations
#
# Each family of the spike-reduction section on the shared MNIST-5k baseline, with small budgets so the
# notebook runs in under a minute: the rate side (spike-rate L1 and the synaptic-operation loss), early exit,
# and time-to-first-spike coding. The three-seed comparison is the benchmark
# spec `benchmarks/specs/spike_reduction.toml`; its stored results are read at the end.

# %%
import copy
import functools
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from snncomp import baselines, data, energy, metrics, spikes
from snncomp.data import encoding
from snncomp import spike_reduction as sr
from snncomp.train import Step, TrainConfig, fit

ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "benchmarks" / "results").is_dir())

_ = torch.manual_seed(0)
split = data.mnist5k()
# a slice keeps the notebook quick: the first 1000 training images (88 to 117 of each class), every other test image
small = data.Split(split.train_x[:1000], split.train_y[:1000], split.test_x[::2], split.test_y[::2], "mnist5k-small")
quick = TrainConfig(epochs=1, lr=1e-3, batch_size=64, progress=False)

# %% [markdown]
# ## The baseline and where its operations go
#
# The trained `conv-direct4` baseline (two conv blocks, `Direct(4)` input) and its same-shaped ANN. The first
# convolution receives the analog image and does multiply-accumulates (MACs); every later layer receives spikes
# and does one accumulate (AC) per spike per non-zero synapse the spike reaches. So a spike in the first block,
# whose neurons feed a 3x3x32 convolution, costs far more than a spike in the second block, whose neurons feed
# the readout through max-pooling.

# %%
base, enc = baselines.trained("conv-direct4", seed=0)
ann, ann_enc = baselines.trained("conv-ann", seed=0)
r_base = metrics.measure(base, small.test_x, enc, small.test_y)
r_ann = metrics.measure(ann, small.test_x, ann_enc, small.test_y)
cmp_base = energy.compare(r_base, r_ann)
print(f"baseline: accuracy {r_base.accuracy:.3f}, {r_base.spikes_per_sample:.0f} spikes per sample, "
      f"rates {({k: round(v, 3) for k, v in r_base.firing_rates.items()})}")
for name, ops in r_base.layers.items():
    print(f"  {name:>16}: {ops.macs:>10.0f} MACs {ops.acs:>10.0f} ACs")
print(f"E_SNN / E_ANN (fp32): {cmp_base.ratio(None, 'dense'):.3f} against a dense ANN, "
      f"{cmp_base.ratio(None, 'zero_skipping'):.3f} against a zero-skipping ANN, "
      f"{cmp_base.ratio('mac', 'zero_skipping'):.3f} with neuron updates priced as MACs")

# %% [markdown]
# ## The synaptic-operation loss is the metric's count
#
# `synops_count` computes $S = \sum_i x_i f_i$ from the inputs each layer received in the training step, with
# $f_i$ the effective fan-out of input $i$; on the same encoded batch it equals `metrics.measure`'s effective
# count. The synop loss of Sorbaro et al. is $((S - S_0)/S_0)^2$ for a target $S_0$.

# %%
x = small.test_x[:50]
inputs = enc(x)
base.eval()
with torch.no_grad(), spikes.record(base) as rec, spikes.record_inputs(base) as ins:
    logits = base(inputs)
step = Step(base, inputs, small.test_y[:50], logits, rec, 0, 0, ins)
loss_value = sr.synops_count(step).item()
r50 = metrics.measure(base, x, enc, batch_size=50)
print(f"synops count {loss_value:.1f}, metric {r50.effective_acs + r50.effective_macs:.1f}")
assert abs(loss_value - (r50.effective_acs + r50.effective_macs)) <= 1e-6 * loss_value

# %% [markdown]
# ## Rate side: spike-rate L1 against the synaptic-operation loss
#
# One epoch of fine-tuning on 1000 images from the trained baseline: without a term (the control), with the
# mean-rate L1 term and with the synop loss aimed at half the baseline's count. The notebook's budgets are tiny;
# the benchmark runs full epochs on three seeds.

# %%
base_ops = r_base.effective_acs + r_base.effective_macs
variants = {"control": [], "spike L1 x4": [sr.weighted(sr.spike_rate_l1, 4.0)],
            "synop loss to S/2": [functools.partial(sr.synops_loss, target=0.5 * base_ops)]}
results = {"baseline": (base, r_base)}
for name, terms in variants.items():
    net = copy.deepcopy(base)
    fit(net, small, enc, quick, loss_terms=terms, evaluate_test=False)
    results[name] = (net, metrics.measure(net, small.test_x, enc, small.test_y))
# energy at 45 nm fp32: synaptic only and with the neuron updates priced as ACs, each against the dense
# and the zero-skipping ANN
print(f"{'':>16}{'acc':>7}{'spikes':>9}{'rate b0':>9}{'rate b1':>9}{'eff ACs':>11}{'updates':>9}{'pJ':>9}"
      f"{'pJ+upd':>9}{'/dense':>8}{'/zskip':>8}{'+u/dense':>9}{'+u/zskip':>9}")
for name, (_, r) in results.items():
    rates = list(r.firing_rates.values())
    c = energy.compare(r, r_ann)
    print(f"{name:>16}{r.accuracy:>7.3f}{r.spikes_per_sample:>9.0f}{rates[0]:>9.3f}{rates[1]:>9.3f}"
          f"{r.effective_acs:>11.0f}{r.neuron_updates:>9.0f}{c.snn_pj():>9.0f}{c.snn_pj('ac'):>9.0f}"
          f"{c.ratio(None, 'dense'):>8.3f}{c.ratio(None, 'zero_skipping'):>8.3f}"
          f"{c.ratio('ac', 'dense'):>9.3f}{c.ratio('ac', 'zero_skipping'):>9.3f}")
    assert c.snn_pj('ac') > c.snn_pj() and c.ann_pj('zero_skipping') <= c.ann_pj('dense')
assert results["spike L1 x4"][1].spikes_per_sample < results["control"][1].spikes_per_sample
assert results["synop loss to S/2"][1].effective_acs < results["control"][1].effective_acs

# %% [markdown]
# The same runs under the published chip profiles (`snncomp/energy/chips.toml`, see the energy page), in nJ per
# sample. Under every per-term profile fewer synaptic events cost less; the ranking of the variants can
# still differ between profiles because each weighs synaptic events, neuron updates and spikes differently.

# %%
names = list(energy.price_all(r_base))
print(f"{'':>16}" + "".join(f"{n[:14]:>16}" for n in names))
for name, (_, r) in results.items():
    print(f"{name:>16}" + "".join(f"{energy.price(r, n).total_pj / 1e3:>16.2f}" for n in names))
assert all(energy.price(r, n).total_pj > 0 for _, r in results.values() for n in names)

# %% [markdown]
# ## Rasters before and after
#
# Spikes of 200 neurons of each block for one test image, over the four time steps (x axis: step, with the
# neurons of a step side by side).

# %%
def raster(model, image):
    with torch.no_grad(), spikes.record(model) as rec:
        model(enc(image[None]))
    return {k: v[0][:, 0].flatten(1)[:, :200] for k, v in rec.items()}  # [T, 200] per layer


fig, axes = plt.subplots(2, 3, figsize=(9, 4), sharex=True)
for col, name in enumerate(["control", "spike L1 x4", "synop loss to S/2"]):
    for row, (layer, s) in enumerate(raster(results[name][0], small.test_x[0]).items()):
        t, n = torch.nonzero(s, as_tuple=True)
        axes[row, col].scatter(n + 200 * t, torch.zeros_like(n) + t, s=1, marker="|")
        axes[row, col].set(title=f"{name}: {layer}" if row == 0 else layer, yticks=range(4), ylabel="step")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Early exit (SEENN-I)
#
# The readout summed over the steps seen so far gives an answer after every step (as in SEENN's code); a
# sample stops when the softmax confidence of that sum exceeds the threshold. At threshold 1 every sample
# runs all steps. The threshold is chosen on the validation images the baseline was not trained on
# (`baselines.split`), then judged on the test images; neuron updates fall with the steps used.

# %%
cal = sr.calibrate_threshold(base, baselines.split("conv-direct4"), enc, (0.5, 0.7, 0.9, 0.99, 0.999, 1.0))
print(f"threshold chosen on {sum(cal.reports[0].steps_histogram)} validation images: {cal.threshold}")
for rep in sr.early_exit_reports(base, small.test_x, small.test_y, enc, (cal.threshold, 0.9, 0.99, 0.999, 1.0)):
    print(f"threshold {rep.threshold}: {rep.average_steps:.2f} of {rep.T} steps, accuracy {rep.accuracy:.3f} "
          f"(full T {rep.accuracy_full:.3f}), synops {rep.synops_per_sample:.0f} of {rep.synops_full:.0f}, "
          f"neuron updates {rep.neuron_updates_per_sample:.0f} of {rep.neuron_updates_full:.0f}")
    assert rep.average_steps <= rep.T and rep.neuron_updates_per_sample <= rep.neuron_updates_full + 1e-6
assert rep.average_steps == rep.T and rep.accuracy == rep.accuracy_full


# %% [markdown]
# SEENN's authors train with TET [@deng2022temporal] (`tet-loss`: the cross-entropy of every step's readout,
# plus a small pull of the readouts towards a constant), which makes every prefix of the run a classifier of its
# own. On the small digits baseline, two epochs of fine-tuning with TET against the same two epochs with the
# usual loss on the time-averaged readout, each exit threshold chosen on the validation images:

# %%
dsplit = baselines.split("digits-conv-direct4")
dnet, denc = baselines.trained("digits-conv-direct4", 0)
two = TrainConfig(epochs=2, lr=1e-3, progress=False)
for name, use_tet in (("cross-entropy", False), ("TET", True)):
    out = sr.confidence_early_exit(dnet, dsplit, denc, threshold=None, tet=use_tet, train=two)
    rep = out.info["report"]
    print(f"{name:<14} threshold {out.info['threshold']}: {rep.average_steps:.2f} of {rep.T} steps, "
          f"accuracy {rep.accuracy:.3f} (full T {rep.accuracy_full:.3f})")
    assert rep.average_steps <= rep.T and out.history and out.history[0]["phase"] == "train"
# %% [markdown]
# ## Temporal coding: at most one spike per neuron
#
# Latency-coded input (`Latency(8)`) and LIF neurons that fire at most once, trained for one short epoch (500
# images) from the baseline's weights, beside the same budget with rate-coded input; both tested on 250 images.

# %%
half = data.Split(small.train_x[:500], small.train_y[:500], small.test_x[::2], small.test_y[::2], "mnist5k-half")
ttfs = sr.time_to_first_spike(base, half, enc, T=8, train=quick)
r_ttfs = metrics.measure(ttfs.model, half.test_x, ttfs.encoder, half.test_y)
rate_net = copy.deepcopy(base)
fit(rate_net, half, encoding.Rate(8), quick, evaluate_test=False)
r_rate = metrics.measure(rate_net, half.test_x, encoding.Rate(8), half.test_y)
worst = sr.max_spikes_per_neuron(ttfs.model, ttfs.encoder(half.test_x))
print(f"time to first spike: accuracy {r_ttfs.accuracy:.3f}, {r_ttfs.spikes_per_sample:.0f} spikes per sample, "
      f"at most {worst} per neuron")
print(f"rate code, same budget: accuracy {r_rate.accuracy:.3f}, {r_rate.spikes_per_sample:.0f} spikes per sample")
assert worst <= 1

# %% [markdown]
# ## S4NN: one spike per neuron, trained on spike times
#
# `s4nn` trains a fully connected network of non-leaky integrate-and-fire neurons that each fire at most once,
# on latency-coded input, with S4NN's temporal backpropagation: the class is the output neuron that fires
# first. Here one epoch of online SGD on scikit-learn's digits (64 inputs, so the threshold and initial weights
# are scaled down from the paper's MNIST settings); the benchmark trains the paper's 784-400-10 network at
# $T = 256$ on MNIST-5k.

# %%
digits = data.digits()
s4 = sr.s4nn(None, digits, enc, T=32, hidden=(64,), threshold=5.0, init=(0.6, 1.0),
             train=TrainConfig(epochs=1, batch_size=1, lr=0.05, schedule="constant", progress=False))
r_s4 = metrics.measure(s4.model, digits.test_x, s4.encoder, digits.test_y)
worst = sr.max_spikes_per_neuron(s4.model, s4.encoder(digits.test_x))
print(f"S4NN on digits: accuracy {r_s4.accuracy:.3f}, {r_s4.spikes_per_sample:.0f} spikes per sample "
      f"(of {64 + 64 + 10} neurons and inputs), at most {worst} per neuron")
assert worst <= 1 and r_s4.accuracy > 0.5

# %% [markdown]
# ## The benchmark: three seeds
#
# Read from the one result store (`benchmarks/results/board.jsonl`, filled by `snncomp bench --spec
# spike_reduction`) through the tables of `benchmarks/specs/spike_reduction.toml`, as the Spike reduction
# page shows them: the trade-off of the rate side, then early exit and temporal against rate coding.

# %%
from snncomp.kb import spec_tables

rate = spec_tables.means(ROOT, "spike_reduction", "rate_table")
fig, ax = plt.subplots(figsize=(5, 3.2))
l1 = sorted((r["synops"], r["accuracy"]) for r in rate if r["run"].startswith("l1-"))
ax.plot([p[0] for p in l1], [p[1] for p in l1], "o-", label="spike-rate L1, four weights")
for r in rate:
    if not r["run"].startswith("l1-"):
        ax.plot(r["synops"], r["accuracy"], "*", ms=10, label=r["run"])
ax.set(xlabel="effective synaptic operations per sample", ylabel="test accuracy (%)",
       title="rate side, means over seeds 0, 1, 2")
ax.legend(fontsize=8)
plt.show()
print(spec_tables.spec_targets(ROOT, "spike_reduction"))
ttfs = {r["run"]: r for r in spec_tables.means(ROOT, "spike_reduction", "ttfs_table")}
print(ttfs)
assert all(r["seeds"] == [0, 1, 2] for r in rate)
assert ttfs["time-to-first-spike"]["m:most-spikes.max_spikes_per_neuron"] <= 1
