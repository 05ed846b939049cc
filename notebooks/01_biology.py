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
# # 01 Biology: from Hodgkin-Huxley to LIF
#
# This notebook runs three neuron models from `snncomp.neurons` on the same kind of input, a constant
# current step, and compares their spikes and their F-I curves (firing rate against input current).
# All three take a current sequence `[T, B]` and return `NeuronOutput(spikes, membrane)`. Every number
# printed here is reproduced by running this file; nothing is copied from papers.

# %%
import matplotlib.pyplot as plt
import torch

from snncomp import biology, neurons

_ = torch.manual_seed(0)

# %% [markdown]
# ## Hodgkin-Huxley action potential
#
# Forward Euler with `dt = 0.01` ms on the squid-axon model (modern sign convention, rest near -65 mV).
# A current step of 10 µA/cm² switched on at 5 ms.

# %%
dt = 0.01
t_ms = torch.arange(0, 50, dt)  # [T]
current = torch.where(t_ms >= 5, 10.0, 0.0).unsqueeze(1)  # [T, 1]
hh = biology.hodgkin_huxley(current, dt=dt)
fig, ax = plt.subplots(figsize=(8, 3))
ax.plot(t_ms, hh.membrane[:, 0])
ax.set(xlabel="time (ms)", ylabel="V (mV)", title="Hodgkin-Huxley, 10 µA/cm² step")
plt.show()
peak = hh.membrane.max().item()
n_spikes = int(hh.spikes.sum())
print(f"peak {peak:.1f} mV, {n_spikes} spikes in 45 ms, rest {hh.membrane[int(4 / dt), 0]:.1f} mV")
assert 20 < peak < 60, "the action potential should overshoot 0 mV"
assert n_spikes >= 2

# %% [markdown]
# ## Izhikevich firing patterns
#
# Two variables and four parameters $(a, b, c, d)$ give qualitatively different firing patterns for the same
# input. Current 10 for 300 ms, `dt = 0.5` ms.

# %%
dt_i = 0.5
steps = int(300 / dt_i)
fig, axes = plt.subplots(len(biology.IZHIKEVICH_PATTERNS), 1, figsize=(8, 8), sharex=True)
counts = {}
for ax, (name, params) in zip(axes, biology.IZHIKEVICH_PATTERNS.items()):
    out = biology.izhikevich(torch.full((steps, 1), 10.0), *params, dt=dt_i)
    counts[name] = int(out.spikes.sum())
    ax.plot(torch.arange(steps) * dt_i, out.membrane[:, 0])
    ax.set_ylabel("v (mV)")
    ax.set_title(f"{name}: {counts[name]} spikes", fontsize=9)
axes[-1].set_xlabel("time (ms)")
plt.tight_layout()
plt.show()
print(counts)
assert counts["fast spiking"] > counts["regular spiking"], "fast-spiking cells fire faster than regular-spiking ones"
assert counts["chattering"] > counts["regular spiking"]

# %% [markdown]
# ## LIF: what deep SNNs keep
#
# The discrete LIF keeps only leak, threshold and reset: $H[t] = \beta V[t-1] + X[t]$,
# $S[t] = \Theta(H[t] - \theta)$, $V[t] = H[t](1 - S[t])$. One step here stands for one network time step,
# not a millisecond.

# %%
x = torch.full((60, 1), 0.3)  # [T, B]
lif_out = neurons.lif(x, tau=4.0, threshold=1.0)
fig, ax = plt.subplots(figsize=(8, 2.5))
ax.plot(lif_out.membrane[:, 0], label="V[t] (after reset)")
ax.vlines(torch.nonzero(lif_out.spikes[:, 0]).flatten(), 0, 1.2, color="k", lw=0.8, label="spikes")
ax.set(xlabel="time step", title="LIF, tau = 4, constant input 0.3")
ax.legend(fontsize=8)
plt.show()
# with beta = 0.75 and input 0.3, V climbs 0.3, 0.525, 0.69375, 0.8203..., 0.9152..., 0.9864..., 1.0398 -> spike at step 6
first = int(torch.nonzero(lif_out.spikes[:, 0])[0])
print("first spike at step", first)
assert first == 6

# %% [markdown]
# ## F-I curves
#
# Firing rate against constant input for the three models. Hodgkin-Huxley is silent below a threshold
# current and then jumps to a finite rate (a *type II* neuron); the LIF's rate starts from zero and grows
# continuously (*type I*), as does the regular-spiking Izhikevich cell.

# %%
hh_I = torch.linspace(0, 30, 31)
T_hh = int(200 / dt)
hh_fi = biology.hodgkin_huxley(hh_I.expand(T_hh, -1).contiguous(), dt=dt)
hh_rate = hh_fi.spikes[int(50 / dt):].sum(0) / 0.150  # Hz over the last 150 ms

iz_I = torch.linspace(0, 30, 31)
T_iz = int(1000 / dt_i)
iz_rate = biology.izhikevich(iz_I.expand(T_iz, -1).contiguous(), *biology.IZHIKEVICH_PATTERNS["regular spiking"],
                             dt=dt_i).spikes.sum(0) / 1.0  # Hz over 1 s

lif_I = torch.linspace(0, 1, 41)
lif_rate = neurons.lif(lif_I.expand(200, -1).contiguous(), tau=4.0).spikes.mean(0)  # spikes per step

fig, axes = plt.subplots(1, 3, figsize=(11, 3))
axes[0].plot(hh_I, hh_rate, "o-", ms=3); axes[0].set(title="Hodgkin-Huxley", xlabel="I (µA/cm²)", ylabel="rate (Hz)")
axes[1].plot(iz_I, iz_rate, "o-", ms=3); axes[1].set(title="Izhikevich RS", xlabel="I", ylabel="rate (Hz)")
axes[2].plot(lif_I, lif_rate, "o-", ms=3); axes[2].set(title="LIF, tau = 4", xlabel="input per step", ylabel="spikes per step")
plt.tight_layout()
plt.show()

onset = hh_I[torch.nonzero(hh_rate)[0]].item()
print(f"HH starts firing at {onset:.0f} µA/cm² with {hh_rate[hh_rate > 0][0]:.0f} Hz")
assert 4 <= onset <= 10 and hh_rate[hh_rate > 0][0] > 40, "HH jumps to a finite rate at threshold (type II)"
# LIF: below (1 - beta) * theta = 0.25 the membrane converges under threshold and never fires
assert lif_rate[lif_I < 0.25].sum() == 0 and lif_rate[lif_I > 0.3].min() > 0
assert torch.all(lif_rate[1:] >= lif_rate[:-1]), "the LIF F-I curve is monotone"
