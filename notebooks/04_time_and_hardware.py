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
# # 04 Time and hardware: synthetic events and chip energy profiles
#
# Where time matters: MNIST-5k digits turned into **synthetic N-MNIST-like** event streams (three
# saccades on a 34 x 34 sensor, a log-intensity pixel model, `snncomp.data.sensor`), binned into frames with
# Tonic, a short training run on those frames, and a cut in time steps. Where hardware matters: one
# trained model priced under every published chip profile in `snncomp.energy`. Budgets are small so the
# notebook runs in under a minute; the synthetic streams are cleaner and sparser than a real camera's,
# so the accuracies here are not comparable with published N-MNIST results.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from snncomp import data, energy, metrics, models, pruning, train

_ = torch.manual_seed(0)
split = data.mnist5k()

# %% [markdown]
# ## One digit's stream
#
# Each image moves along a triangle, offsets $(0,0) \to (2,2) \to (-2,2) \to (0,0)$ pixels, one 100 ms
# saccade per side. A pixel emits an ON (OFF) event each time its log intensity rises (falls) by the
# contrast threshold $C = 0.2$ from its last reference level; timestamps are interpolated inside each 5 ms
# sampling step. Events arrive in Tonic's structured layout (`x`, `y`, `t` in µs, `p`).

# %%
config = data.sensor.Saccades(threshold_sigma=0.03)  # v2e's default per-pixel threshold spread
pick = [0, 300, 700]  # three test images of different classes
few = data.sensor.generate(split.test_x[pick], split.test_y[pick], config, seed=0)
for i in range(len(few)):
    e = few[i]
    print(f"digit {few.labels[i]}: {len(e)} events, {e['p'].mean():.2f} ON, t in [{e['t'].min()}, {e['t'].max()}] µs")
    assert e["t"].min() >= 0 and e["t"].max() < few.duration_us and np.all(np.diff(e["t"]) >= 0)
    assert e["x"].max() < 34 and e["y"].max() < 34

e0 = few[0]
strip = data.frames.to_frames(e0, 6, "time", few.duration_us)  # six 50 ms windows, [6, 2, 34, 34]
assert strip.sum() == len(e0)  # binning by time keeps every event
fig, axes = plt.subplots(1, 7, figsize=(12, 2.2))
axes[0].imshow(split.test_x[pick[0], 0], cmap="gray")
axes[0].set_title("image")
for k in range(6):
    axes[k + 1].imshow(strip[k, 1].astype(float) - strip[k, 0], cmap="bwr", vmin=-3, vmax=3)
    axes[k + 1].set_title(f"{50 * k}-{50 * (k + 1)} ms")
for ax in axes:
    ax.axis("off")
fig.suptitle("synthetic N-MNIST-like stream, 50 ms frames (red ON, blue OFF)")
plt.show()

# %%
bins = np.arange(0, few.duration_us + 1, 10_000)
fig, ax = plt.subplots(figsize=(7, 2.6))
for i in range(len(few)):
    ax.plot(bins[:-1] / 1000, np.histogram(few[i]["t"], bins)[0] / 10, label=f"digit {few.labels[i]}")
for b in (100, 200):
    ax.axvline(b, color="gray", ls=":")
ax.set(xlabel="time (ms)", ylabel="events per ms", title="event rate; dotted: saccade turns")
ax.legend()
plt.show()

# %% [markdown]
# The rate dips where the motion turns, at the triangle's corners, as in the recordings of
# [@orchard2015converting], and each saccade makes about a third of the events.

# %% [markdown]
# ## A short training run on events
#
# 400 training and 200 test images of MNIST-5k (every fifth test image, so all classes) become streams and then 8 time bins per sample; the
# `Frames` encoder turns them time-major, merges bins when fewer steps are asked for, and makes a count
# above zero one spike, so the first layer only accumulates. The conv SNN is the baseline architecture
# with a 2 x 34 x 34 input; one training loop, `train.fit`.

# %%
def event_split(n_train: int, n_test: int, T: int) -> data.Split:
    rows = torch.arange(0, len(split.test_y), len(split.test_y) // n_test)[:n_test]  # every class
    tr = data.sensor.generate(split.train_x[:n_train], split.train_y[:n_train], config, seed=0)
    te = data.sensor.generate(split.test_x[rows], split.test_y[rows], config, seed=0)
    fr = [torch.from_numpy(data.frames.frames(s, T, progress=False)) for s in (tr, te)]
    return data.Split(fr[0], split.train_y[:n_train], fr[1], split.test_y[rows], "nmnist-like (subset)")


ev_split = event_split(400, 200, T=8)
assert ev_split.train_x.shape[1:] == (8, 2, 34, 34)
enc = data.Frames(4)
model = models.conv_snn(in_shape=(2, 34, 34), channels=(8, 16), seed=0)
hist = train.fit(model, ev_split, enc, train.TrainConfig(epochs=2, batch_size=32, lr=3e-3, progress=False))
print("test accuracy per epoch:", [round(r["test_acc"], 3) for r in hist.epochs])
assert hist.final["test_acc"] > 0.3  # far above chance (0.1) after two short epochs

# %% [markdown]
# ## Cutting time steps
#
# Evaluated as trained at 4 steps, then at 2 and 1 merged bins without retraining, then after
# progressive time-step reduction [@chowdhury2022ultra] (one epoch at 2 steps). Fewer steps see the same
# 300 ms of events in coarser bins.

# %%
acc = {T: train.evaluate(model, ev_split.test_x, ev_split.test_y, data.Frames(T)) for T in (4, 2, 1)}
print("accuracy without retraining:", {T: round(a, 3) for T, a in acc.items()})
cut = pruning.timestep_reduction(model, ev_split, enc, steps=(2,),
                                 train=train.TrainConfig(epochs=1, batch_size=32, lr=1e-3, progress=False))
print("after reduction to T=2:", round(cut.info["accuracy"][2], 3), "encoder:", cut.encoder)
assert cut.encoder.T == 2 and isinstance(cut.encoder, data.Frames)

# %% [markdown]
# ## One model under every chip profile
#
# The operation counts of the trained model (`metrics.measure`) priced by `energy.price` under the 45 nm
# model and each chip profile of `snncomp/energy/chips.toml`. A profile prices only what its source
# publishes; what it leaves out is listed, never counted as free. TrueNorth's figure is all-in (static
# power, neuron and routing energy inside it); the others are per-term partial totals, lower bounds of what
# the chip spends, so the spread is compared among the per-term figures, and Loihi, the one per-term chip
# that publishes neuron-update and spike energies, is the most complete of them.

# %%
rep = metrics.measure(model, ev_split.test_x, enc, ev_split.test_y)
assert rep.effective_macs == 0  # every first-layer input is a spike: accumulates only
rows = []
for name, priced in energy.price_all(rep).items():
    rows.append((priced.label, priced.scope, priced.evidence[:10], priced.total_pj / 1e3,
                 "; ".join(priced.not_priced) or "-"))
print(f"{rep.effective_acs:.3g} synaptic ops, {rep.neuron_updates:.3g} neuron updates, "
      f"{rep.spikes_per_sample:.3g} spikes per sample")
print(f"{'profile':<48} {'scope':<9} {'evidence':<10} {'nJ':>8}  not priced")
for label, scope, ev, nj, missing in rows:
    print(f"{label:<48} {scope:<9} {ev:<10} {nj:8.2f}  {missing}")
unpublished = [p.label for p in energy.chips.profiles().values() if not p.published]
print("no per-operation figure published / confirmed:", ", ".join(unpublished))
totals = [r[3] for r in rows if r[1] == "per-term"]  # like with like: partial totals only
assert len(rows) >= 5 and min(totals) > 0
print(f"spread: {max(totals) / min(totals):.1f}x between the cheapest and the dearest per-term figure")
assert energy.price(rep, "45nm-fp32").total_pj == energy.estimate(rep).total_pj  # the one 45 nm table
loihi = energy.price(rep, "loihi")
assert loihi.terms["neuron_updates_active"] + loihi.terms["neuron_updates_idle"] > 0  # updates are priced
