"""Recording and counting the spikes a model emits.

`record(model)` is a context manager that captures, for every spiking neuron module, the spike
tensor `[T, B, ...]` of each forward call. It keeps the tensors attached to the graph, so training
objectives can penalise them; `metrics.measure` turns the same records into firing rates and spikes per
sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor, nn

from .neurons import SpikingNeuron

__all__ = ["record", "record_inputs"]


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



@contextmanager
def record_inputs(model: nn.Module) -> Iterator[dict[str, list[Tensor]]]:
    """Capture the input of every `nn.Conv2d` and `nn.Linear` (the layers with synapses):
    `{layer name: [input of each call]}`, kept attached to the graph so an objective can count the
    synaptic operations those inputs cause (`spike_reduction.synops`)."""
    store: dict[str, list[Tensor]] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            store[name] = []
            handles.append(module.register_forward_hook(lambda m, i, o, name=name: store[name].append(i[0])))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()
