"""Recording and counting the spikes a model emits.

`record(model)` is a context manager that captures, for every spiking neuron module, the spike
tensor `[T, B, ...]` of each forward call. It keeps the tensors attached to the graph, so training
objectives can penalise them. Firing rate here means spikes per neuron per time step, averaged over
samples; spikes per sample sums over neurons and time steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor, nn

from .neurons import SpikingNeuron

__all__ = ["record", "firing_rate", "spike_count"]


@contextmanager
def record(model: nn.Module) -> Iterator[dict[str, list[Tensor]]]:
    """Capture every spiking layer's output: `{layer name: [spikes of each call]}`."""
    store: dict[str, list[Tensor]] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, SpikingNeuron):
            store[name] = []
            handles.append(module.register_forward_hook(lambda m, i, o, name=name: store[name].append(o)))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def firing_rate(spikes: Tensor) -> Tensor:
    """Mean spikes per neuron per time step of `spikes: [T, B, ...]` (a 0-dim tensor)."""
    return spikes.mean()


def spike_count(spikes: Tensor) -> Tensor:
    """Spikes per sample of `spikes: [T, B, ...]`, summed over neurons and steps (a 0-dim tensor)."""
    return spikes.sum() / spikes.shape[1]
