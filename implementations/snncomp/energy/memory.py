r"""A memory-inclusive analytical energy model after Lemaire et al. [@lemaire2022analytical].

The 45 nm compute model (`energy.compute`) prices synaptic operations only. This model adds what an accelerator also pays for:
neuron-state operations, the arithmetic of addressing, and every memory read and write, each priced
by the size of the buffer it touches. Per one inference (one sample), with 32-bit words throughout:

**Operations** ($E_{add}$ = 0.1 pJ, $E_{mul}$ = 3.1 pJ, the 32-bit integer figures of
`energy.compute.HOROWITZ_45NM`; a MAC is $E_{mul} + E_{add}$):

* a layer with analog input (the first layer under direct encoding, every layer of an ANN) does its
  dense MACs, $N_{out} \cdot C_{in} k^2$ for a convolution (taps on padding included, as in the
  paper's formula) and $N_{out} \cdot N_{in}$ for a linear layer;
* a layer fed by spikes does one AC per input spike per reached synapse: $\theta_{in} \cdot N_{out}$
  for a linear layer, $\theta_{in} \cdot C_{out} \lceil k/s \rceil^2$ for a convolution
  ($\theta_{in}$ = number of input spikes);
* a bias adds one AC per output; a neuron adds one AC per spike it emits (the reset) and, if it
  leaks, one MAC per neuron per step (the leak multiply). Whether it leaks is the neuron's own
  `leaky` attribute (`neurons.SpikingNeuron.leaky`): LIF, PLIF and the adaptive LIF leak, IF and the
  non-leaky first-spike neuron of S4NN do not.

**Addressing** (event-driven layers must find the synapses a spike reaches): a spike-fed layer pays
one AC per reached synapse ($\theta_{in} C_{out} k^2$ for a convolution, $\theta_{in} N_{out}$ for a
linear layer) and a convolution two MACs per spike to locate its first output; an analog layer pays
$N_{in} + N_{out}$ ACs, plus $C_{out} k^2$ for a convolution.

**Memory** (bytes moved times the energy per byte of a buffer of that capacity): the per-byte price
interpolates linearly through (0 B, 0 pJ), (8 KiB, 10/4 pJ), (32 KiB, 20/4 pJ), (1 MiB, 100/4 pJ),
flat beyond 1 MiB (a 32-bit access to 8 KiB, 32 KiB and 1 MiB of SRAM: 10, 20 and 100 pJ).

* inputs: a spike-fed layer reads one word per input spike from a FIFO of 1000 messages; an analog
  convolution reads one input word per MAC, an analog linear layer each input once, from a buffer
  holding one input frame;
* parameters: one weight word per MAC or per reached synapse, one bias word per output, from a
  buffer holding the layer's parameters;
* potentials: a spike-fed layer reads and writes one potential per reached synapse
  ($\theta_{in} C_{out} k^2$ or $\theta_{in} N_{out}$), a spiking neuron reads and writes each
  potential once per step (leak, threshold), in a buffer holding one step's potentials of the layer;
* outputs: a spiking neuron writes one word per emitted spike into a 1000-message FIFO; in a network
  without spiking neurons (an ANN) every weight layer writes its whole output to a buffer of that size.

Batch normalisation, pooling and activation functions are outside the model and cost nothing here,
as in SpikingJelly's implementation, which reads the paper the same way (a test checks each count
against `spikingjelly.activation_based.op_counter.LemaireEnergyProfiler`). We size every buffer for one
sample at one time step; SpikingJelly sizes the potential buffer of a spike-fed conv or linear layer
for all the steps it folds into its batch (see `tests/test_memory_energy.py` for the priced difference).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from math import ceil, prod

import torch
from torch import Tensor, nn

from ..data.encoding import Encoder
from ..metrics import weight_layers
from ..neurons import SpikingNeuron
from ..spikes import hooked, is_spike_tensor
from ..train import eval_batches
from .compute import HOROWITZ_45NM
from .priced import Priced

__all__ = ["E_ADD_PJ", "E_MUL_PJ", "FIFO_MESSAGES", "MEMORY_POINTS", "memory_pj_per_byte", "MemoryEnergy",
           "measure", "price", "baseline"]

E_ADD_PJ, E_MUL_PJ = HOROWITZ_45NM["int32"]  # 32-bit integer add and multiply at 45 nm [@horowitz2014computings]
WORD = 4  # bytes per access
FIFO_MESSAGES = 1000  # spike FIFO depth in the paper's experiments
# (buffer capacity in bytes, pJ per byte accessed): a 32-bit access costs 10, 20, 100 pJ at 8 KiB, 32 KiB, 1 MiB
MEMORY_POINTS = ((0.0, 0.0), (8 * 1024.0, 10 / WORD), (32 * 1024.0, 20 / WORD), (1024 * 1024.0, 100 / WORD))
ACCESSES = ("read_in", "read_params", "read_potential", "write_potential", "write_out")


def memory_pj_per_byte(capacity: float) -> float:
    """Energy per byte accessed in a buffer of `capacity` bytes: piecewise linear through `MEMORY_POINTS`,
    flat beyond the last point."""
    c = min(max(capacity, 0.0), MEMORY_POINTS[-1][0])
    for (x0, y0), (x1, y1) in zip(MEMORY_POINTS, MEMORY_POINTS[1:]):
        if c <= x1:
            return y0 + (y1 - y0) * (c - x0) / (x1 - x0)
    raise AssertionError("unreachable")


@dataclass
class MemoryEnergy:
    """Counts and energies summed over `samples` inferences (divide by `samples` for one).

    `ops` holds `mac`, `ac` (synaptic, bias and neuron), `acc_addr`, `mac_addr`; `accesses` holds
    `[(kind, bytes, buffer capacity in bytes, by)]` with kind in `ACCESSES` and `by` either `"synapse"`
    (a conv or linear layer) or `"neuron"`."""

    samples: int = 0
    ops: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    accesses: list[tuple[str, int, int, str]] = field(default_factory=list)

    def bytes(self, kind: str) -> int:
        return sum(b for k, b, _, _ in self.accesses if k == kind)

    def memory_pj(self, kind: str) -> float:
        """$\\sum$ bytes $\\times$ price per byte at the buffer's capacity, over accesses of `kind`."""
        return sum(b * memory_pj_per_byte(c) for k, b, c, _ in self.accesses if k == kind)

    def breakdown_pj(self) -> dict[str, float]:
        """Energy per term, summed over the samples: ops, addressing, inputs/outputs, parameters, potentials."""
        o = self.ops
        return {
            "ops": o["ac"] * E_ADD_PJ + o["mac"] * (E_MUL_PJ + E_ADD_PJ),
            "addressing": o["acc_addr"] * E_ADD_PJ + o["mac_addr"] * (E_MUL_PJ + E_ADD_PJ),
            "inout": self.memory_pj("read_in") + self.memory_pj("write_out"),
            "params": self.memory_pj("read_params"),
            "potential": self.memory_pj("read_potential") + self.memory_pj("write_potential"),
        }

    def per_sample_pj(self) -> dict[str, float]:
        """`breakdown_pj` per sample, with the `total`."""
        b = {k: v / self.samples for k, v in self.breakdown_pj().items()}
        return {**b, "total": sum(b.values())}


def _synaptic(m: nn.Module, x: Tensor, out: Tensor, acc: MemoryEnergy, has_neurons: bool) -> None:
    """Price one call of a conv or linear layer (`x`, `out`: the tensors it saw, steps folded into rows)."""
    conv = isinstance(m, nn.Conv2d)
    rows = x.shape[0] if x.dim() > 1 else 1
    params_capacity = sum(p.numel() for p in m.parameters(recurse=False)) * WORD
    if is_spike_tensor(x, signed=False):  # unsigned spikes only, as SpikingJelly's profiler tests
        spikes = int(x.count_nonzero())  # theta_in
        if conv:
            c_out = m.out_channels // m.groups
            synops = spikes * c_out * prod(ceil(k / s) for k, s in zip(m.kernel_size, m.stride))
            reached = spikes * c_out * prod(m.kernel_size)  # synapses touched in memory
            acc.ops["mac_addr"] += 2 * spikes  # locate the first output of each spike
        else:
            synops = reached = spikes * m.out_features
        acc.ops["ac"] += synops
        acc.ops["acc_addr"] += reached
        acc.accesses.append(("read_in", spikes * WORD, FIFO_MESSAGES * WORD, "synapse"))
        weight_reads = reached
        potential_capacity = out[0].numel() * WORD  # one sample, one step (conv: [C, H, W]; linear: [N])
        acc.accesses.append(("read_potential", reached * WORD, potential_capacity, "synapse"))
        acc.accesses.append(("write_potential", reached * WORD, potential_capacity, "synapse"))
    else:
        fan_in = prod(m.weight.shape[1:])  # C_in/groups * k^2, or N_in
        weight_reads = out.numel() * fan_in  # dense MACs, taps on padding included
        acc.ops["mac"] += weight_reads
        acc.ops["acc_addr"] += x.numel() + out.numel() + (m.out_channels * prod(m.kernel_size) if conv else 0)
        frame = x[0].numel() * WORD if conv else m.in_features * WORD  # one sample's input
        acc.accesses.append(("read_in", (weight_reads if conv else x.numel()) * WORD, frame, "synapse"))
        if not has_neurons:
            acc.accesses.append(("write_out", out.numel() * WORD, out.numel() // rows * WORD, "synapse"))
    bias = m.bias is not None
    acc.ops["ac"] += out.numel() if bias else 0
    param_bytes = (weight_reads + (out.numel() if bias else 0)) * WORD
    acc.accesses.append(("read_params", param_bytes, params_capacity, "synapse"))


def _neuron(m: nn.Module, out: Tensor, acc: MemoryEnergy, batch: int) -> None:
    """Price one call of a spiking neuron layer on `out: [T, B, ...]` spikes."""
    steps = out.shape[0]
    capacity = out.numel() // (steps * batch) * WORD  # one sample's potentials at one step
    acc.accesses.append(("read_potential", out.numel() * WORD, capacity, "neuron"))
    acc.accesses.append(("write_potential", out.numel() * WORD, capacity, "neuron"))
    spikes = int(out.count_nonzero())
    acc.ops["ac"] += spikes  # reset
    if getattr(m, "leaky", True):
        acc.ops["mac"] += out.numel()  # leak: one multiply-add per neuron per step
    acc.accesses.append(("write_out", spikes * WORD, FIFO_MESSAGES * WORD, "neuron"))


@torch.no_grad()
def measure(model: nn.Module, x: Tensor, encoder: Encoder, batch_size: int = 250, seed: int = 1234) -> MemoryEnergy:
    """Count the operations and memory accesses of `model` on images `x: [N, ...]` encoded by `encoder`
    (eval mode); `energy.price(counts, "memory")` prices them."""
    for name, m in weight_layers(model).items():
        if isinstance(m, nn.Conv2d) and m.padding_mode != "zeros":
            raise ValueError(f"energy.memory: layer {name!r} pads with {m.padding_mode!r}; the model assumes zeros")
    has_neurons = any(isinstance(m, SpikingNeuron) for m in model.modules())
    acc, batch = MemoryEnergy(samples=x.shape[0]), [0]
    neurons = [m for m in model.modules() if isinstance(m, SpikingNeuron)]
    with (hooked(weight_layers(model).values(), lambda m, i, o: _synaptic(m, i[0], o, acc, has_neurons)),
          hooked(neurons, lambda m, i, o: _neuron(m, o, acc, batch[0]))):
        for _, xb in eval_batches(model, x, encoder, batch_size, seed):
            batch[0] = xb.shape[1]
            model(xb)
    return acc


LABEL = "memory-inclusive analytical model (Lemaire 2022), 45 nm, 32-bit words"
PRICED = ("synaptic MACs and ACs, bias adds", "neuron resets and leak multiplies (leaky neurons only)",
          "addressing arithmetic of event-driven layers",
          "memory reads and writes of inputs, outputs, weights, biases and membrane potentials, priced by buffer size")
NOT_PRICED = ("batch normalisation, pooling and activation functions", "spike routing between cores",
              "static and leakage power", "off-chip memory (every buffer is on-chip SRAM)")


def price(counts: MemoryEnergy) -> Priced:
    """`counts` (from `measure`) per sample as an `energy.Priced` (what `energy.price(counts, "memory")` gives)."""
    per = {k: v for k, v in counts.per_sample_pj().items() if k != "total"}
    return Priced(model="memory", label=LABEL, terms=per, priced=PRICED, not_priced=NOT_PRICED, scope="per-term",
                  evidence="analytical model with 45 nm estimates [@lemaire2022analytical]")


def baseline(x: Tensor, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per-sample energy by term (pJ) of the conv SNN baseline (`conv-direct4`, Direct(4) input) and its
    ANN (`conv-ann`) on images `x`, under this model."""
    from .. import baselines  # trained weights, cached

    out = {}
    for name in ("conv-direct4", "conv-ann"):
        model, encoder = baselines.trained(name, seed)
        out[name] = measure(model, x, encoder).per_sample_pj()
    return out
