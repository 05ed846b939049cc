"""Watching what flows through a model: forward hooks, spike records and the spike-tensor test.

* `hooked(modules, fn)` registers one forward hook on each module for the duration of a `with`
  block and removes every hook on exit, even when the block raises; every site in snncomp that
  watches a forward pass (the recorders below, `metrics`, `energy.memory`, the distillation
  teachers, early exit, S4NN's spike bound) goes through it.
* `record(model)` captures, for every spiking neuron module, the spike tensor `[T, B, ...]` of each
  forward call, and `record_inputs(model)` the input of every conv and linear layer. They keep the
  tensors attached to the graph, so training objectives can penalise them; `metrics.measure` turns
  the same activity into firing rates and spikes per sample.
* `is_spike_tensor(x, signed=...)` is the one test of whether a tensor holds spikes: values in
  $\\{0, 1\\}$, or in $\\{-1, 0, 1\\}$ when `signed` (ternary spikes). The operation counts of
  `metrics` and of the synops objective use the signed test, as NeuroBench does for its ACs
  [@yik2025neurobench]; the memory-inclusive energy model (`energy.memory`) uses the unsigned one, as
  SpikingJelly's implementation of it does, since its event FIFOs carry unsigned spikes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from .neurons import SpikingNeuron

__all__ = ["hooked", "record", "record_inputs", "is_spike_tensor"]


@contextmanager
def hooked(modules: Mapping[str, nn.Module] | Iterable[nn.Module], fn: Callable) -> Iterator[list[RemovableHandle]]:
    """While active, call `fn` after every forward call of each of `modules`; on exit (normal or
    by an exception) remove every hook again.

    `modules` is either an iterable of modules, and then `fn(module, inputs, output)` is called as
    PyTorch calls a forward hook, or a `{name: module}` mapping, and then `fn(name, module, inputs,
    output)` also receives the module's name. `inputs` is the tuple of positional inputs. Yields the
    hook handles (already removed after the block). Blocks nest, e.g. to give two groups of modules
    different hooks."""
    handles: list[RemovableHandle] = []
    try:
        if isinstance(modules, Mapping):
            for name, module in modules.items():
                handles.append(module.register_forward_hook(lambda m, i, o, name=name: fn(name, m, i, o)))
        else:
            for module in modules:
                handles.append(module.register_forward_hook(fn))
        yield handles
    finally:
        for h in handles:
            h.remove()


def is_spike_tensor(x: Tensor, *, signed: bool) -> bool:
    """Whether every value of `x` is a spike: in $\\{0, 1\\}$, or in $\\{-1, 0, 1\\}$ when `signed`
    (ternary spikes count as spikes). A boolean tensor holds spikes; an empty one does too. Callers
    say which test they mean: `signed=True` for NeuroBench's accumulate test (`metrics`, the synops
    objective), `signed=False` for the memory-inclusive energy model (SpikingJelly's test)."""
    if x.dtype == torch.bool:
        return True
    ok = (x == 0) | (x == 1)
    if signed:
        ok |= x == -1
    return bool(ok.all())


@contextmanager
def record(model: nn.Module) -> Iterator[dict[str, list[Tensor]]]:
    """Capture every spiking layer's output: `{layer name: [spikes of each call]}`."""
    layers = {name: m for name, m in model.named_modules() if isinstance(m, SpikingNeuron)}
    store: dict[str, list[Tensor]] = {name: [] for name in layers}
    with hooked(layers, lambda name, m, i, o: store[name].append(o)):
        yield store


@contextmanager
def record_inputs(model: nn.Module) -> Iterator[dict[str, list[Tensor]]]:
    """Capture the input of every `nn.Conv2d` and `nn.Linear` (the layers with synapses):
    `{layer name: [input of each call]}`, kept attached to the graph so an objective can count the
    synaptic operations those inputs cause (`spike_reduction.synops`)."""
    layers = {name: m for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    store: dict[str, list[Tensor]] = {name: [] for name in layers}
    with hooked(layers, lambda name, m, i, o: store[name].append(i[0])):
        yield store
