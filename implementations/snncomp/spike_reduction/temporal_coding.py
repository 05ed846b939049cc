r"""Temporal coding: the time of few spikes, at most one per neuron, carries the information
(section 3.4 of [@xie2024efficient]).

In time-to-first-spike (TTFS) coding an input fires once, earlier when stronger (`encoding.Latency`),
and every neuron fires at most once per sample: after its first spike it stays silent for the rest
of the sample. Mostafa [@mostafa2018supervised] trains such networks with exact gradients of spike
times (non-leaky neurons with exponentially decaying synaptic current); S4NN
[@kheradpisheh2020temporal] uses non-leaky integrate-and-fire neurons and an approximate
backpropagation of spike latencies, with the first output neuron to fire giving the class.

**What we implement, and how it differs.** `FirstSpikeLIF` is our LIF with a refractory period of the
whole sample:

$$H[t] = \beta V[t-1] + X[t], \qquad S[t] = \Theta(H[t] - \theta)\,\Big(1 - \sum_{\tau<t} S[\tau]\Big), \qquad V[t] = H[t](1 - S[t]),$$

so $\sum_t S[t] \le 1$ for every neuron, exactly. `time_to_first_spike` swaps every LIF of a trained
network for it, feeds latency-coded input and trains with the one training loop: surrogate gradients
through time and cross-entropy on the time-averaged readout. That is neither Mostafa's exact spike-time
gradient nor S4NN's latency loss and first-spike readout: it keeps the at-most-one-spike code and the
baselines' non-spiking readout, so the comparison with rate coding isolates the code, not the
learning rule.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..compress import Compressed, budget, run_phase
from ..data import Split
from ..encoding import Encoder, Latency
from ..neurons import LIF, NeuronOutput, SpikingNeuron, _channel_view, _check_sequence
from ..registry import register
from ..surrogate import ATan, Surrogate
from ..train import Hook, LossTerm, TrainConfig, evaluate

__all__ = ["first_spike_lif", "FirstSpikeLIF", "time_to_first_spike", "max_spikes_per_neuron", "TRAIN"]

TRAIN = TrainConfig(epochs=4, lr=2e-3)  # default training of the single-spike network


def first_spike_lif(x: Tensor, tau: float | Tensor = 2.0, threshold: float | Tensor = 1.0, *,
                    surrogate: Surrogate | None = None) -> NeuronOutput:
    """LIF on `x: [T, B, ...]` where every neuron fires at most once (see the module docstring);
    `tau` and `threshold` are floats or per-channel `[C]` tensors. The reset is detached."""
    _check_sequence(x, "first_spike_lif")
    surrogate = surrogate or ATan()
    beta = _channel_view(1.0 - 1.0 / tau, x)
    theta = _channel_view(threshold, x)
    v = torch.zeros_like(x[0])
    fired = torch.zeros_like(x[0])  # 1 once the neuron has spiked
    spikes, membrane = [], []
    # --8<-- [start:first_spike]
    for t in range(x.shape[0]):
        h = beta * v + x[t]  # H[t] = beta V[t-1] + X[t]
        s = surrogate(h - theta) * (1 - fired)  # S[t] = Theta(H[t] - theta)(1 - fired)
        fired = fired + s.detach()
        v = h * (1 - s.detach())  # hard reset to 0
        # --8<-- [end:first_spike]
        spikes.append(s)
        membrane.append(v)
    return NeuronOutput(torch.stack(spikes), torch.stack(membrane))


class FirstSpikeLIF(SpikingNeuron):
    """Module of `first_spike_lif`; `tau` and `threshold` are buffers (per channel when given as `[C]`)."""

    def __init__(self, tau: float | Tensor = 2.0, threshold: float | Tensor = 1.0,
                 surrogate: Surrogate | None = None) -> None:
        super().__init__()
        self.register_buffer("tau", torch.as_tensor(tau, dtype=torch.float32).clone())
        self.register_buffer("threshold", torch.as_tensor(threshold, dtype=torch.float32).clone())
        if (self.tau < 1).any() or (self.threshold <= 0).any():
            raise ValueError(f"FirstSpikeLIF: need tau >= 1 and threshold > 0, got {tau!r}, {threshold!r}")
        self.surrogate = surrogate or ATan()

    @classmethod
    def from_lif(cls, lif: LIF) -> FirstSpikeLIF:
        if lif.reset != "hard" or lif.v_reset != 0.0:
            raise ValueError(f"FirstSpikeLIF.from_lif: needs a hard reset to 0, got reset={lif.reset!r}, "
                             f"v_reset={lif.v_reset!r}")
        return cls(lif.tau.detach(), lif.threshold.detach(), lif.surrogate)

    def run(self, x: Tensor) -> NeuronOutput:
        tau = self.tau if self.tau.dim() else float(self.tau)
        thr = self.threshold if self.threshold.dim() else float(self.threshold)
        return first_spike_lif(x, tau, thr, surrogate=self.surrogate)


def _swap_neurons(net: nn.Module) -> int:
    swapped = 0
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LIF):
                setattr(parent, name, FirstSpikeLIF.from_lif(child))
                swapped += 1
    return swapped


@register("time-to-first-spike", kind="transform", taxonomy="spike-reduction/temporal-coding",
          keys=("kheradpisheh2020temporal", "mostafa2018supervised"))
def time_to_first_spike(model: nn.Module, data: Split, encoder: Encoder, *, T: int | None = None,
                        train: TrainConfig | None = None, finetune: TrainConfig | None = None,
                        loss_terms: Sequence[LossTerm] = (), hooks: Sequence[Hook] = ()) -> Compressed:
    r"""Time-to-first-spike coding with at most one spike per neuron per sample
    [@kheradpisheh2020temporal; @mostafa2018supervised].

    Every LIF becomes a `FirstSpikeLIF` (same $\tau$ and $\theta$), the input becomes latency-coded
    (`encoding.Latency(T)`, `T` defaulting to the encoder's), and the network is trained (`train`,
    default `TRAIN`) with surrogate gradients, then optionally fine-tuned (`finetune`, default none).
    Simplified learning rule: see the module docstring. `.info` has the accuracy before training (the
    weights as given, on the new code) and after."""
    net = copy.deepcopy(model)
    if _swap_neurons(net) == 0:
        raise TypeError(f"time-to-first-spike needs LIF neurons to swap; {type(model).__name__} has none")
    enc = Latency(T if T is not None else encoder.T)
    before = evaluate(net, data.test_x, data.test_y, enc)
    history: list[dict] = []
    run_phase(net, data, enc, budget(train, TRAIN, "train"), "train", history, extra_terms=loss_terms,
              extra_hooks=hooks)
    run_phase(net, data, enc, budget(finetune, TrainConfig(epochs=0), "finetune"), "finetune", history,
              extra_terms=loss_terms, extra_hooks=hooks)
    return Compressed(net, enc, history, {"T": enc.T, "accuracy_before_training": before,
                                          "accuracy": evaluate(net, data.test_x, data.test_y, enc)})


def max_spikes_per_neuron(model: nn.Module, inputs: Tensor) -> int:
    """The largest number of spikes any neuron emits for any sample of `inputs: [T, B, ...]`."""
    seen: list[int] = [0]
    handles = [m.register_forward_hook(lambda m, i, o: seen.append(int(o.sum(0).max()))) for m in model.modules()
               if isinstance(m, SpikingNeuron)]
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    return max(seen)
