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
# # 08 Bring your own model: snnTorch to snncomp and back through NIR
#
# A small spiking network is built and trained in snnTorch on scikit-learn's 8x8 digits (a few seconds),
# written to NIR with snnTorch's own exporter, read into snncomp with `nir_io.load`, compressed by a recipe
# (magnitude pruning to 80 %, then 4-bit LSQ weights), written back to NIR with `nir_io.export`, and run
# again in snnTorch. At each crossing the notebook checks that every spike of the hidden layer is the same
# in both libraries, and it measures the cost before and after with `evaluation.measure_all`. The page
# [Bring your own model](../../bring-your-own-model/) explains the discretisation and the traps.

# %%
import torch
from torch import nn

import snntorch as snn
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir

from snncomp import chain, data, evaluation, nir_io, recipes
from snncomp.data import encoding
from snncomp.spikes import hooked

_ = torch.manual_seed(0)
split = data.digits()  # 1437 training and 360 test images, 8x8, values in [0, 1]
T = 4
HIDDEN = 64

# %% [markdown]
# ## A network built and trained in snnTorch
#
# One hidden layer of 64 leaky neurons and a linear readout whose output is averaged over the 4 steps; the
# image is the input current at every step (direct input). Two snnTorch settings matter for NIR: `beta` and
# `threshold` are given per neuron, because snnTorch's exporter writes whatever shape they have and NIR's
# type check refuses a scalar; and the reset is `"zero"`, because a NIR LIF resets to `v_reset` (snnTorch's
# default reset by subtraction would not survive the trip, and it also subtracts the threshold after the
# leak where snncomp subtracts it before).

# %%
net = nn.Sequential(
    nn.Linear(64, HIDDEN),
    snn.Leaky(beta=torch.full((HIDDEN,), 0.5), threshold=torch.ones(HIDDEN), init_hidden=True, reset_mechanism="zero"),
    nn.Linear(HIDDEN, 10),
)


def reset(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, snn.SpikingNeuron):
            m.reset_mem()


def snntorch_run(model: nn.Module, x: torch.Tensor, imported: bool = False):
    """Scores `[B, 10]` (readout averaged over time) and hidden spikes `[T, B, HIDDEN]` of an snnTorch
    network on images `x: [B, 1, 8, 8]`, one step at a time."""
    reset(model)
    flat = x.flatten(1)
    spikes, outs, state = [], [], None
    leaky = [m for m in model.modules() if isinstance(m, snn.Leaky)]
    with hooked(leaky, lambda m, i, o: spikes.append(o)):
        for _t in range(T):
            if imported:  # the NIR graph snnTorch builds passes its state along
                out, state = model(flat, state)
            else:
                out = model(flat)
            outs.append(out)
    return torch.stack(outs).mean(0), torch.stack(spikes)


opt = torch.optim.Adam(net.parameters(), lr=5e-3)
for epoch in range(15):
    perm = torch.randperm(len(split.train_x), generator=torch.Generator().manual_seed(epoch))
    for i in range(0, len(perm), 64):
        idx = perm[i:i + 64]
        scores, _ = snntorch_run(net, split.train_x[idx])
        loss = nn.functional.cross_entropy(scores, split.train_y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
with torch.no_grad():
    scores, theirs = snntorch_run(net, split.test_x)
acc_snntorch = (scores.argmax(1) == split.test_y).float().mean().item()
print(f"snnTorch: test accuracy {acc_snntorch:.3f}, {theirs.sum().item() / len(split.test_x):.1f} hidden spikes per image")

# %% [markdown]
# ## Into snncomp
#
# snnTorch writes its time constants for a step of `dt = 1e-4` seconds ($\tau = dt / (1 - \beta)$,
# $R = \tau / dt$), so we read the graph with the same `dt`. The graph holds no encoder; ours is the direct
# input the network was trained with. `load` builds an `MLP` of our `LIF` neurons running on whole
# sequences `[T, B, ...]`.

# %%
graph = export_to_nir(net, torch.zeros(1, 64), ignore_dims=[0])
print({name: type(node).__name__ for name, node in graph.nodes.items()})
model, _ = nir_io.load(graph, dt=1e-4)
enc = encoding.Direct(T)
print(model)


def snncomp_spikes(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = []
    with hooked([model.blocks[0].neuron], lambda m, i, o: out.append(o)), torch.no_grad():
        model(enc(x))
    return out[0]  # [T, B, HIDDEN]


ours = snncomp_spikes(model, split.test_x)
assert torch.equal(ours, theirs), f"{int((ours != theirs).sum())} spikes differ"
before = evaluation.measure_all(model, enc, split, "test")
assert abs(before["accuracy"] - acc_snntorch) <= 1 / len(split.test_x)  # the same model (readout sums may round apart)
print(f"identical spikes ({int(ours.sum())} in all); snncomp measures accuracy {before['accuracy']:.3f}")

# %% [markdown]
# ## Compressed by a recipe
#
# The same recipe structure as `recipes/prune-quantize.toml`, built in Python and shortened for the small
# network: magnitude pruning to 80 % with four epochs of masked recovery, then four epochs of 4-bit LSQ on every layer
# (`first_last_bits = None`: the paper's 8-bit first and last layers would leave nothing at 4 bits here).

# %%
recipe = recipes.Recipe(name="byo-prune-quantize", steps=(
    chain.Step("magnitude", {"sparsity": 0.8, "finetune": {"epochs": 4, "lr": 2e-3}}, label="prune 80%"),
    chain.Step("lsq", {"bits": 4, "first_last_bits": None, "train": {"epochs": 4, "lr": 1e-2}}, label="LSQ 4-bit"),
))
applied = recipes.apply(recipe, model, split, enc, progress=False)
small = applied.compressed.model
cols = ("accuracy", "connection_sparsity", "weight_bits", "spikes_per_sample", "synops", "deployed_footprint_bytes")
print(f"{'step':<12}" + "".join(f"{c:>26}" for c in cols) + f"{'45nm pJ':>14}")
for r in applied.reports:
    print(f"{r['label']:<12}" + "".join(f"{r[c]:>26.4g}" for c in cols) + f"{r['energy_pj']['45nm-fp32']:>14.4g}")
after = applied.reports[-1]
assert after["connection_sparsity"] >= 0.79 and after["weight_bits"] == 4.0

# %% [markdown]
# ## Back to snnTorch
#
# `nir_io.export` bakes the mask and the quantizer into the weights (the zeros and the 16 levels are what the
# graph holds) and writes the bit width into each weight node's metadata. It writes, as the threshold, the
# largest float32 below ours: NIR and snnTorch fire on $v > v_{th}$, snncomp on $v \ge \theta$, and with
# weights on a grid a potential can land exactly on $\theta$.

# %%
out = nir_io.export(small, enc, dt=1e-4)
print({name: node.metadata.get("snncomp", {}).get("weight_bits") for name, node in out.nodes.items()
       if type(node).__name__ in ("Affine", "Linear")})
back = import_from_nir(out)
with torch.no_grad():
    scores_back, theirs_small = snntorch_run(back, split.test_x, imported=True)
ours_small = snncomp_spikes(small, split.test_x)
assert torch.equal(ours_small, theirs_small), f"{int((ours_small != theirs_small).sum())} spikes differ"
acc_back = (scores_back.argmax(1) == split.test_y).float().mean().item()
assert abs(acc_back - after["accuracy"]) <= 1 / len(split.test_x)
levels = {n: m.weight.detach().unique().numel() for n, m in back.named_modules() if isinstance(m, nn.Linear)}
assert all(v <= 16 for v in levels.values()), levels
print(f"snnTorch runs the compressed graph with identical spikes ({int(theirs_small.sum())}); accuracy "
      f"{acc_back:.3f}; distinct weight values per layer {levels}")

# %% [markdown]
# ## Cost before and after
#
# Both columns come from `measure_all` on the same test images. The pruned, 4-bit network does fewer
# synaptic operations and holds a smaller footprint; how much of that a chip realises depends on whether it
# skips zero weights and stores 4-bit words, which is what the energy page's models spell out.

# %%
for key in ("accuracy", "connection_sparsity", "weight_bits", "spikes_per_sample", "synops", "deployed_footprint_bytes"):
    print(f"{key:<26}{before[key]:>12.4g}{after[key]:>12.4g}")
for model_name in ("45nm-fp32", "memory"):
    print(f"{'energy ' + model_name + ' pJ':<26}{before['energy_pj'][model_name]:>12.4g}"
          f"{after['energy_pj'][model_name]:>12.4g}")
assert after["deployed_footprint_bytes"] < before["deployed_footprint_bytes"]
