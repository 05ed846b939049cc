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
# # 03 Pruning: synapses, channels and time steps
#
# Each family of the pruning section on the shared MNIST-5k baseline, with small budgets so the notebook
# runs in about a minute: unstructured magnitude pruning at several sparsities, neuron-state-aware channel
# pruning, and time-step reduction. The full comparison of every registered method over three seeds is the
# spec `benchmarks/specs/pruning.toml` (`snncomp bench --spec pruning`); its stored results are read at the end.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from snncomp import baselines, data, energy, metrics, pruning, registry, train
from snncomp.data import encoding

ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "benchmarks" / "results").is_dir())

_ = torch.manual_seed(0)
split = data.mnist5k()
# fine-tuning here sees the first 1000 training images (`data.mnist1k()`: 88 to 117 of each class), which
# keeps the notebook quick; the benchmark below fine-tunes on all of them; accuracy is always on the 1000
# test images
train1k = data.mnist1k()
quick = train.TrainConfig(epochs=1, lr=1e-3, progress=False)

# %% [markdown]
# ## The dense baseline
#
# The same network, data and training as in notebook 02 (8 epochs, seed 0), from the one cached builder
# `baselines.trained`: trained once on a fresh checkout, loaded afterwards.

# %%
dense, enc = baselines.trained("conv-direct4", seed=0)  # Direct(4) input
r_dense = metrics.measure(dense, split.test_x, enc, split.test_y)
print(f"dense: accuracy {r_dense.accuracy:.3f}, {r_dense.params} parameters, "
      f"{r_dense.dense_synops:.3g} dense synaptic ops, {energy.estimate(r_dense).total_uj:.3f} µJ")
print("registered pruning methods:", [m.name for m in registry.methods(section="pruning")])

# %% [markdown]
# ## Unstructured: one-shot magnitude pruning
#
# Zero the smallest weights in one global pool, then fine-tune one epoch (1000 images) with the mask held
# fixed. The mask is exact: the pool has exactly `round(s * N)` zeros. Note what does **not** change: the
# parameter count, the footprint and the dense synaptic operations. Only hardware that skips zero weights
# gains, which the effective operations and the energy estimate assume.

# %%
rows, pruned = [], {}
for s in (0.5, 0.9, 0.95):
    res = pruned[s] = pruning.magnitude(dense, train1k, enc, sparsity=s, finetune=quick)
    r = metrics.measure(res.model, split.test_x, enc, split.test_y)
    rows.append((s, r.accuracy, res.info["sparsity"], r.footprint_bytes, r.dense_synops, r.effective_acs,
                 energy.estimate(r).total_uj))
    assert abs(res.info["sparsity"] - s) < 1e-3
    assert r.footprint_bytes == r_dense.footprint_bytes and r.dense_synops == r_dense.dense_synops
print(f"{'target':>7}{'acc':>7}{'reached':>9}{'bytes':>8}{'dense ops':>11}{'eff ACs':>10}{'µJ':>7}")
for row in rows:
    print(f"{row[0]:>7.2f}{row[1]:>7.3f}{row[2]:>9.4f}{row[3]:>8}{row[4]:>11.3g}{row[5]:>10.3g}{row[6]:>7.3f}")
assert rows[0][1] > r_dense.accuracy - 0.01, "50% sparsity should cost almost nothing"
# the input model is untouched by every transform
assert metrics.connection_sparsity(dense) == r_dense.connection_sparsity

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot([r[0] for r in rows], [r[1] for r in rows], "o-", label="magnitude + 1 epoch")
ax.axhline(r_dense.accuracy, color="k", lw=0.8, label="dense")
ax.set(xlabel="weight sparsity", ylabel="test accuracy", title="one-shot magnitude pruning")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Structured: channels removed with their neurons
#
# Network slimming ranks channels by BatchNorm scale; here the score is $|\gamma_c|/\theta_c$ because the
# channel's neurons are driven towards their threshold in that ratio. Removing a channel deletes its
# convolution filter, its BatchNorm entries, its neurons' time constant and threshold, and the weights that
# read it downstream, so the model physically shrinks. Before fine-tuning, the smaller model computes exactly
# what the same-sized model computes with those channels silenced.

# %%
keep = pruning.select_units(pruning.bn_scale_scores(dense), 0.5, "layer")
small = pruning.remove_units(dense, keep)
silenced = pruning.mask_units(dense, keep)
x = enc(split.test_x[:200])
small.eval(); silenced.eval()
with torch.no_grad():
    same = torch.allclose(small(x), silenced(x), atol=1e-5)
print("removed == silenced:", same)
assert same

slim = pruning.channel_slimming(dense, train1k, enc, sparsity=0.5, train=quick, finetune=quick)
r_slim = metrics.measure(slim.model, split.test_x, enc, split.test_y)
print(f"channels kept per block: {[b.conv.out_channels for b in slim.model.blocks]}")
print(f"params {r_dense.params} -> {r_slim.params} ({1 - r_slim.params / r_dense.params:.0%} fewer), "
      f"dense ops {r_dense.dense_synops:.3g} -> {r_slim.dense_synops:.3g} "
      f"({1 - r_slim.dense_synops / r_dense.dense_synops:.0%} fewer), "
      f"footprint {r_dense.footprint_bytes} -> {r_slim.footprint_bytes} bytes, accuracy {r_slim.accuracy:.3f}")
assert r_slim.params < 0.6 * r_dense.params and r_slim.dense_synops < 0.5 * r_dense.dense_synops

# %% [markdown]
# ## Time steps
#
# With direct (analog) input, the conv SNN already works at very few steps: evaluating the $T = 4$ model at
# smaller $T$ costs little, and one epoch of fine-tuning per stage recovers most of it. Time-step pruning
# matters most where the input itself is spike-coded, as in the rate-coded $T = 16$ baseline of the
# benchmark below.

# %%
for T in (4, 1):
    print(f"T={T}: accuracy before fine-tuning {train.evaluate(dense, split.test_x, split.test_y, encoding.Direct(T)):.3f}")
ts = pruning.timestep_reduction(dense, train1k, enc, steps=(1,), train=quick)
print("after progressive fine-tuning:", {T: round(a, 3) for T, a in ts.info["accuracy"].items()}, "-> feed it", ts.encoder)
assert ts.info["accuracy"][1] > 0.9 and ts.encoder.T == 1

# %% [markdown]
# ## Chaining methods: the mask travels with the model
#
# A pruning mask is a parametrization on the weight, so it stays in force through any later training: here
# the 90 % magnitude-pruned model goes through time-step reduction to $T = 1$, and the zeros are still exactly
# where they were. `compress.bake` turns the masks into plain tensors for export.

# %%
from snncomp.compress import bake

pruned = pruned[0.9]  # from the magnitude section above
chained = pruning.timestep_reduction(pruned.model, train1k, pruned.encoder, steps=(1,), train=quick)
s_before = pruning.sparsity_report(pruned.model)["sparsity"]
s_after = pruning.sparsity_report(chained.model)["sparsity"]
print(f"sparsity after pruning {s_before:.4f}, after time-step reduction {s_after:.4f}; "
      f"accuracy at T=1: {train.evaluate(chained.model, split.test_x, split.test_y, chained.encoder):.3f}")
print("phases:", pruned.phases(), "then", chained.phases())
assert s_after == s_before
exported = bake(chained.model)
assert pruning.sparsity_report(exported)["sparsity"] == s_after

# %% [markdown]
# ## The benchmark: every method, two baselines, three seeds
#
# Read from the one result store (`benchmarks/results/board.jsonl`, filled by `snncomp bench --spec pruning`)
# through the tables of `benchmarks/specs/pruning.toml`, as the Pruning page shows them. Means over seeds;
# `drop` is in accuracy points against each seed's dense baseline. The compact baseline above has about 20k
# weights; the over-parameterised one (`conv-fc256-direct4`, a spiking 1568 -> 256 layer after the same
# convolutions) about 409k, and prunes much further for the same loss.

# %%
from snncomp.kb import spec_tables

bench = {name: spec_tables.means(ROOT, "pruning", name) for name in ("compact", "overparameterised", "timesteps")}
for name in ("compact", "overparameterised"):
    print(name)
    print(f"{'run':>32}{'seeds':>10}{'sparsity':>10}{'accuracy':>10}{'drop':>8}")
    for row in bench[name]:
        print(f"{row['run']:>32}{','.join(map(str, row['seeds'])) or '-':>10}"
              + "".join(f"{row[c]:>10.4g}" if row.get(c) is not None else f"{'-':>10}" for c in ("sparsity", "accuracy", "drop")))
print("time steps (rate-coded baseline):", [(r["run"], r.get("T"), r.get("accuracy")) for r in bench["timesteps"]])
fig, ax = plt.subplots(figsize=(5, 3))
for i, name in enumerate(("compact", "overparameterised")):
    done = [r for r in bench[name] if r.get("drop") is not None]
    mag = sorted((r["sparsity"], r["drop"]) for r in done if r["run"].split("-")[0] == "magnitude"
                 and r["run"].removeprefix("magnitude-").removesuffix("-fc256").isdigit())
    ax.plot([m[0] for m in mag], [m[1] for m in mag], "o-", c=f"C{i}", label=f"{name}: magnitude")
    other = [r for r in done if not r["run"].startswith("magnitude")]
    ax.scatter([r["sparsity"] for r in other], [r["drop"] for r in other], c=f"C{i}", marker="x",
               label=f"{name}: other methods")
ax.set(xlabel="weight sparsity", ylabel="accuracy drop (points)", title="benchmark means")
ax.legend(fontsize=7)
plt.show()
assert all(r["seeds"] == [0, 1, 2] for name in ("compact", "overparameterised") for r in bench[name])
