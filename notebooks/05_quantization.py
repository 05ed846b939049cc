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
# # 05 Quantization: weights, membrane potential, binary and integer-only inference
#
# Each family of the quantization section on the shared compact baseline (`conv-direct4`, seed 0), post-training
# only so the notebook runs in about a minute: accuracy against the bit width of the weights and of the membrane
# potential, how a low-bit membrane departs from full precision, the deployed size in bits (dense and sparse),
# synaptic operations and energy under the FP32 and INT8 regimes, and a model run on integers only. The
# quantization-aware runs (2-bit, binary, MINT, k-means, ADMM) over three seeds are the section's runs in
# `benchmarks/specs/quantization.toml`; their committed results are read from the result store at the end.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from snncomp import baselines, data, energy, metrics, pruning, registry, spikes, train
from snncomp.neurons import lif
from snncomp.quantization import integer, membrane_potential, quantizers, weights

ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "benchmarks" / "results").is_dir())

_ = torch.manual_seed(0)
split = data.mnist5k()
none = train.NONE

model, enc = baselines.trained("conv-direct4", seed=0)  # Direct(4) input
r_fp = metrics.measure(model, split.test_x, enc, split.test_y)
print(f"FP32 baseline: accuracy {r_fp.accuracy:.3f}, {r_fp.params} parameters, {r_fp.deployed_bits} bits deployed")
print("registered quantization methods:", [m.name for m in registry.methods(section="quantization")])

# %% [markdown]
# ## The fake quantizer is torch's
#
# Our quantizer is plain PyTorch; on the same scale and zero point it gives exactly the values of
# `torch.fake_quantize_per_channel_affine`, so what follows is the arithmetic a reader can check.

# %%
w = model.blocks[1].conv.weight.detach()
for bits in (8, 4, 2):
    qmin, qmax = quantizers.qrange(bits)
    s = quantizers.minmax_scale(w, bits, per_channel=True)
    zp = torch.zeros(s.numel(), dtype=torch.int32)
    ours = quantizers.fake_quantize(w, s, zp, qmin, qmax, axis=0)
    assert torch.equal(ours, torch.fake_quantize_per_channel_affine(w, s, zp, 0, qmin, qmax))
    print(f"{bits} bits: {ours.unique().numel()} distinct values in blocks.1.conv, mean |error| "
          f"{(ours - w).abs().mean():.4f}")

# %% [markdown]
# ## Accuracy against the weight bit width (post-training)
#
# Symmetric min-max steps per output channel, no retraining. Eight and four bits cost nothing on this
# network; two bits (four levels) break it without quantization-aware training.

# %%
w_rows = {}
for bits in (8, 4, 3, 2):
    q = weights.uniform_ptq(model, split, enc, bits=bits).model
    w_rows[bits] = train.evaluate(q, split.test_x, split.test_y, enc)
    print(f"weights {bits} bits: accuracy {w_rows[bits]:.3f}")
assert w_rows[8] >= r_fp.accuracy - 0.005 and w_rows[4] >= r_fp.accuracy - 0.01
assert w_rows[2] < w_rows[4], "2-bit post-training quantization should cost accuracy"

# %% [markdown]
# ## Accuracy against the membrane bit width (post-training)
#
# The state a neuron keeps from one step to the next, $\beta V[t-1]$, stored on $b$ bits with step
# $\theta / 2^{b-1}$ (`q_spinn`), weights left in FP32. With only $T = 4$ steps and $\beta = 1/2$ little state
# survives from step to step, so even two bits change few decisions here; longer runs and slower leaks
# depend on it more (next cell).

# %%
m_rows = {}
for bits in (8, 4, 2):
    q = membrane_potential.q_spinn(model, split, enc, bits=bits).model
    m_rows[bits] = train.evaluate(q, split.test_x, split.test_y, enc)
    print(f"membrane {bits} bits: accuracy {m_rows[bits]:.3f}")
both = membrane_potential.q_spinn(model, split, enc, bits=4, weight_bits=4).model
acc_both = train.evaluate(both, split.test_x, split.test_y, enc)
print(f"4-bit weights and 4-bit membrane: accuracy {acc_both:.3f}")
assert m_rows[8] >= r_fp.accuracy - 0.005 and acc_both >= r_fp.accuracy - 0.02

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(list(w_rows), list(w_rows.values()), "o-", label="weights (per channel)")
ax.plot(list(m_rows), list(m_rows.values()), "s--", label="membrane potential")
ax.axhline(r_fp.accuracy, color="k", lw=0.8, label="FP32")
ax.set(xlabel="bits", ylabel="test accuracy", title="post-training quantization", xticks=[2, 3, 4, 8])
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## How a low-bit membrane departs from full precision
#
# One LIF neuron ($\tau = 8$, so $\beta = 7/8$ and the state matters) driven by the same noisy current for
# 40 steps, with the state it keeps between steps at full precision and on 4-bit (step 1/8) and 2-bit (step 1/2,
# range $[-1, 0.5]$) grids; plotted is the potential $H[t]$ tested against the threshold (dotted). Rounding the
# kept state shifts when the potential reaches the threshold, and once one spike moves the trajectories separate;
# on 2 bits the kept state saturates at 0.5 and this input never brings the neuron to threshold.

# %%
g = torch.Generator().manual_seed(3)
current = (0.22 + 0.12 * torch.randn(40, 1, 1, generator=g))  # [T, B=1, 1]
runs = {"FP32": None, "4 bits": quantizers.MembraneQuantizer(1 / 8, 4), "2 bits": quantizers.MembraneQuantizer(1 / 2, 2)}
fig, axes = plt.subplots(2, 1, figsize=(6, 4), sharex=True)
traj = {}
for i, ((label, q), (color, marker)) in enumerate(zip(runs.items(), (("k", ""), ("C0", "o"), ("C3", "s")))):
    out = lif(current, tau=8.0, threshold=1.0, quantize=q)
    kept = 7 / 8 * torch.cat([torch.zeros(1), out.membrane[:-1, 0, 0]])  # beta V[t-1], the state carried over
    h = (kept if q is None else q(kept)) + current[:, 0, 0]  # H[t], the potential tested against theta
    traj[label] = (h, out.spikes[:, 0, 0])
    axes[0].step(range(40), traj[label][0], color=color, marker=marker, where="post", ms=3, lw=1, label=label)
    axes[1].eventplot([torch.nonzero(traj[label][1]).flatten().tolist()], lineoffsets=i + 1, colors=[color])
axes[0].axhline(1.0, color="grey", lw=0.6, ls=":")
axes[0].set(ylabel="potential H[t]", title="LIF with its kept state at full precision and on 4 and 2 bits")
axes[0].legend(fontsize=8)
axes[1].set(xlabel="time step", ylabel="spikes", yticks=[1, 2, 3], yticklabels=list(runs))
plt.tight_layout()
plt.show()
n_spk = {k: int(v[1].sum()) for k, v in traj.items()}
print("spikes in 40 steps:", n_spk)
assert not torch.equal(traj["FP32"][1], traj["2 bits"][1]), "the 2-bit state should move some spikes"

# %% [markdown]
# ## What is stored: deployed bits, dense and sparse
#
# `metrics.deployed_bits` counts every tensor at the width its quantizer sets, plus what the quantizer stores
# beside the integers (one FP32 step per channel). Biases, batch normalisation and neuron parameters stay at
# 32 bits, which is why four-bit weights give less than the ideal 8x on this small network. Pruned weights
# cost nothing only in a sparse format, and the format's indices are counted: a bitmap (one bit per weight),
# an index list ($\lceil \log_2 N\rceil$ bits per kept weight) or Deep Compression's 4-bit relative indices.
# (Pruning here is one-shot without fine-tuning, for the size only; the benchmark fine-tunes.)

# %%
q4 = weights.uniform_ptq(model, split, enc, bits=4).model
pruned = pruning.magnitude(model, split, enc, sparsity=0.9, finetune=none).model
pq4 = weights.uniform_ptq(pruned, split, enc, bits=4).model
fp_bits = metrics.deployed_bits(model)
print(f"{'model':<24}{'format':<10}{'bits':>9}{'x smaller':>11}")
for name, net in (("FP32", model), ("4-bit", q4), ("90% pruned + 4-bit", pq4)):
    for fmt in ("dense", "bitmap", "index", "relative"):
        if name != "90% pruned + 4-bit" and fmt != "dense":
            continue
        b = metrics.deployed_bits(net, fmt)
        print(f"{name:<24}{fmt:<10}{b:>9}{fp_bits / b:>11.2f}")
assert fp_bits / metrics.deployed_bits(q4) > 6.5
assert metrics.deployed_bits(pq4, "auto") < metrics.deployed_bits(pq4, "dense")

# %% [markdown]
# ## Operations and energy: FP32 and INT8 regimes
#
# Quantization does not change how many synaptic operations run: it changes what each costs. We price the
# FP32 SNN and ANN under the FP32 regime and the weight-quantized SNN and the ANN under the INT8 regime
# (`energy.compare`, 45 nm per-operation energies), each against both ANN accountings: dense, and skipping
# zero activations. Fake quantization itself saves nothing at run time: the FP32 model above computes in FP32.

# %%
ann, ann_enc = baselines.trained("conv-ann", seed=0)
r_ann = metrics.measure(ann, split.test_x, ann_enc, split.test_y)
r_q4 = metrics.measure(q4, split.test_x, enc, split.test_y)
assert r_q4.dense_synops == r_fp.dense_synops
for label, rep, regime in (("FP32 SNN vs FP32 ANN", r_fp, "fp32"), ("4-bit SNN vs INT8 ANN", r_q4, "int8")):
    c = energy.compare(rep, r_ann, regime)
    print(f"{label}: SNN {c.snn_pj() / 1e6:.4f} µJ (+ updates as MACs {c.snn_pj('mac') / 1e6:.4f}), ANN dense "
          f"{c.ann_pj('dense') / 1e6:.4f} µJ, ANN zero-skipping {c.ann_pj('zero_skipping') / 1e6:.4f} µJ; "
          f"SNN/ANN {c.ratio():.2f} (dense), {c.ratio(accounting='zero_skipping'):.2f} (zero-skipping)")
print(f"effective synaptic ops per sample: SNN {r_q4.effective_macs + r_q4.effective_acs:.3g}, "
      f"ANN {r_ann.effective_macs + r_ann.effective_acs:.3g} (dense {r_ann.dense_synops:.3g})")

# %% [markdown]
# ### Under the published chip profiles
#
# The same counts priced under every profile of `snncomp/energy/chips.toml` (see the energy page). A chip prices a
# synaptic event at its own fixed width, so weight bits change the footprint there, not this figure: the FP32
# and 4-bit models cost the same on a chip unless their spikes differ. Terms a source does not publish are
# listed, not counted as free.

# %%
for name in energy.price_all(r_fp):
    fp, q = energy.price(r_fp, name), energy.price(r_q4, name)
    print(f"{q.label:<48} FP32 {fp.total_pj / 1e3:8.2f} nJ   4-bit {q.total_pj / 1e3:8.2f} nJ"
          f"   not priced: {'; '.join(q.not_priced) or '-'}")
    assert q.total_pj > 0

# %% [markdown]
# ## Integer-only inference
#
# `mint` puts a layer's weights, bias, stored potential and threshold on one power-of-two grid (BatchNorm
# folded, the image on an 8-bit grid); `integer.export` turns the result into `int64` tensors and runs it with
# integer sums, shifts and comparisons only. Its spikes equal the fake-quantized model's, bit for bit. Here
# without quantization-aware training; the benchmark trains it for one epoch.

# %%
mint = membrane_potential.mint(model, split, enc, bits=4, membrane_bits=4, train=none)
net = mint.model.eval()
ints = integer.export(net, mint.encoder)
x = split.test_x[:200]
with torch.no_grad(), spikes.record(net) as rec:
    logits = net(mint.encoder(x))
got = ints.run(x)
for name, s in got.spikes.items():
    assert torch.equal(rec[name][0], s.float()), name
assert torch.equal(logits, got.logits)
acc_int = (got.logits.argmax(1) == split.test_y[:200]).float().mean().item()
print(f"MINT 4-bit weights / 4-bit membrane, integer-only on 200 test images: accuracy {acc_int:.3f}; "
      f"grid steps {mint.info['steps']}; leak of blocks.0 = {ints.blocks[0][2].beta_num}/2^{ints.blocks[0][2].beta_shift}")

# %% [markdown]
# ## Benchmark: three seeds, with quantization-aware training
#
# The section's runs from the committed result store (`snncomp bench --spec quantization --output
# benchmarks/results/board.jsonl`; mean over seeds 0, 1, 2), as the Quantization page shows them.

# %%
from snncomp.kb import spec_tables

targets = spec_tables.spec_targets(ROOT, "quantization")
print(targets)
assert "not run" not in targets, "every run of the quantization spec is in the committed store"
