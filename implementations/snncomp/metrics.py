r"""Model and activity metrics, aligned with NeuroBench [@yik2025neurobench].

| metric | definition here | NeuroBench |
|---|---|---|
| `params` | number of parameters | same |
| `footprint_bytes` | bytes of parameters and buffers, zeros included; a parametrized tensor (a pruning mask) counts once, as the tensor it computes | same for plain models; NeuroBench would also count the mask and the stored parameter behind it |
| `deployed_bits` | $\sum$ numel $\times$ bits over parameters and buffers, the width set by a quantizer on the tensor (plus its scales) or a module's `<name>_bits` attribute overriding the dtype width; optionally with conv and linear weights in a sparse format (`sparse_bits`: bitmap, index list or relative indices, their cost counted) | our addition, for quantised and pruned tensors |
| `connection_sparsity` | fraction of zero weights in conv and linear layers | same as its code (not rounded) |
| `activation_sparsity` | fraction of zero outputs of the activation layers (spiking neurons, `nn.ReLU`, `nn.Sigmoid`) over layers, steps and samples | same |
| `dense_synops` | every real connection of every conv and linear layer at every step it runs, per sample; taps that fall on zero padding are not connections | same |
| `effective_macs` | connections with a non-zero weight and a non-zero input, in layers whose input is not a spike tensor, per sample | same |
| `effective_acs` | the same in layers whose input holds only values in $\{-1, 0, 1\}$ (spikes), per sample | same |
| `neuron_updates` | state updates of spiking neurons: one per neuron per time step, per sample | NeuroBench's `MembraneUpdates` counts only neurons whose potential changed, and only in snnTorch neurons |
| `active_neuron_updates` | the updates of a neuron in a step where its input current is non-zero or it spikes, per sample (the rest are idle: leak only) | our addition, to price chips that publish active and idle update energies |
| `spikes_per_sample` | spikes summed over neurons and steps, per sample | our addition |
| `firing_rates` | spikes per neuron per step, for each spiking layer | our addition |

Synaptic operations are counted by forward hooks on every `nn.Conv2d` and `nn.Linear` from the
tensors the layer really receives. For a convolution, the dense count is, summed over output
positions, the number of kernel taps that land inside the input (with zero padding, a tap on the
padding connects to nothing), times $C_{in}/\mathrm{groups}$ and $C_{out}$; the effective count is the
convolution of the non-zero-input indicator with the non-zero-weight indicator, summed, so effective
$\le$ dense always. Bias, pooling and normalisation are not counted. A layer whose input holds only
$-1$, $0$ and $1$ counts accumulates (ACs), any other layer multiply-accumulates (MACs).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from .compress import bake
from .data.encoding import Encoder
from .neurons import SpikingNeuron
from .spikes import hooked, is_spike_tensor
from .train import eval_batches

__all__ = ["Report", "LayerOps", "ACTIVATIONS", "count_params", "footprint_bytes", "deployed_bits",
           "sparse_bits", "stored_width", "SPARSE_FORMATS", "weight_layers", "weight_sparsity", "connection_sparsity", "synops", "counting", "measure"]

# modules whose outputs make up activation sparsity: spiking neurons and, as in NeuroBench, ReLU and sigmoid
ACTIVATIONS: tuple[type[nn.Module], ...] = (SpikingNeuron, nn.ReLU, nn.Sigmoid)


def _deployed(model: nn.Module) -> nn.Module:
    """`model` with its parametrizations (pruning masks, quantisers) baked into the tensors they compute:
    a mask buffer and the stored parameter behind it are training machinery, not part of the model a
    device would hold, so the size metrics count the computed weight once."""
    if any(parametrize.is_parametrized(m) for m in model.modules()):
        return bake(model)
    return model


def count_params(model: nn.Module) -> int:
    """Number of parameters (zeros included; a parametrized weight counts once, as it computes)."""
    return sum(p.numel() for p in _deployed(model).parameters())


def footprint_bytes(model: nn.Module) -> int:
    """Bytes of parameters and buffers as stored (zeros included; a parametrized weight counts once)."""
    model = _deployed(model)
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


SPARSE_FORMATS = ("dense", "bitmap", "index", "relative", "auto")


def sparse_bits(t: Tensor, bits: int, fmt: str = "dense", index_bits: int = 4, dense_bits: int | None = None) -> int:
    r"""Bits to store `t` at `bits` per value in a sparse format (its zeros left out):

    * `"dense"`: every entry, $N b'$, with $b' =$ `dense_bits` (default $b$): a code whose levels lack zero
      (binary signs, a k-means codebook) needs a symbol more for the zeros of a dense tensor;
    * `"bitmap"`: one presence bit per entry plus the non-zeros, $N + n b$;
    * `"index"`: each non-zero with its absolute position, $n (b + \lceil \log_2 N \rceil)$;
    * `"relative"`: Deep Compression's relative indices [@han2016deep]: each non-zero with the number of
      zeros before it in `index_bits` bits; a gap longer than $2^k - 1$ inserts a filler zero entry, so
      $(n + \sum_{gaps} \lfloor g / 2^k \rfloor)(b + k)$;
    * `"auto"`: the cheapest of the four.
    """
    if fmt not in SPARSE_FORMATS:
        raise ValueError(f"sparse format must be one of {', '.join(SPARSE_FORMATS)}, got {fmt!r}")
    n_all = t.numel()
    nz = torch.nonzero(t.flatten() != 0).flatten()  # positions of the non-zeros
    n = nz.numel()
    cost = {"dense": n_all * (bits if dense_bits is None else dense_bits), "bitmap": n_all + n * bits,
            "index": n * (bits + max(1, math.ceil(math.log2(max(n_all, 2)))))}
    gaps = torch.diff(nz, prepend=torch.tensor([-1])) - 1  # zeros before each non-zero
    fillers = int((gaps // 2**index_bits).sum())  # trailing zeros need no entry
    cost["relative"] = (n + fillers) * (bits + index_bits)
    return min(cost.values()) if fmt == "auto" else cost[fmt]


def _quantized_widths(model: nn.Module) -> dict[str, tuple[int, int, bool]]:
    """`{"<module>.<tensor>": (bits, overhead bits, zero among the levels)}` for every tensor a quantizer
    (a parametrization with `bits`, e.g. `quantization.FakeQuantize`) computes; a quantizer whose levels
    lack zero says so with `has_zero = False`."""
    out = {}
    for mname, module in model.named_modules():
        if parametrize.is_parametrized(module):
            for tname in module.parametrizations:
                for p in module.parametrizations[tname]:
                    if hasattr(p, "bits"):
                        out[f"{mname}.{tname}"] = (int(p.bits), int(getattr(p, "overhead_bits", 0)),
                                                   bool(getattr(p, "has_zero", True)))
    return out


def stored_width(widths: dict[str, tuple[int, int, bool]], mname: str, module: nn.Module, name: str,
                 t: Tensor) -> tuple[int, int, int]:
    """(bits per stored value, bits per value in a dense layout, overhead bits) of tensor `name` of
    `module` (named `mname`), given the model's `_quantized_widths`: a quantizer's width, else the
    module's `<name>_bits` attribute, else the dtype's width; a code without a zero level that holds
    zeros needs a symbol more in the dense layout."""
    bits, overhead, has_zero = widths.get(f"{mname}.{name}", (None, 0, True))
    if bits is None:
        bits = int(getattr(module, f"{name}_bits", t.element_size() * 8))
    dense = bits
    if not has_zero and bool((t == 0).any()):
        dense = math.ceil(math.log2(2**bits + 1))  # the zeros need a symbol of their own
    return bits, dense, overhead


def deployed_bits(model: nn.Module, sparse: str = "dense", index_bits: int = 4) -> int:
    r"""Bits needed to deploy the tensors: numel x bit width, where the width is the `bits` of a
    quantizer on the tensor (plus what it stores beside the integers, its `overhead_bits`: scales,
    a codebook), else a module attribute `<name>_bits`, else its stored dtype's width. With `sparse`
    other than `"dense"`, the weights of conv and linear layers are stored in that format
    (`sparse_bits`: the presence bitmap or the indices are counted). A tensor whose quantizer has no zero
    level ($2^b$ non-zero levels: binary signs, a k-means codebook) but holds zeros (pruned weights) needs
    $2^b + 1$ symbols, so its dense width is $\lceil \log_2(2^b + 1) \rceil$ bits (2 for a binary layer
    under a mask, which is then ternary); the sparse formats leave the zeros out and keep $b$ bits."""
    widths = _quantized_widths(model)
    deployed = _deployed(model)
    synaptic = {id(m.weight) for m in weight_layers(deployed).values()}
    total = 0
    for mname, module in deployed.named_modules():
        for name, t in list(module._parameters.items()) + list(module._buffers.items()):
            if t is None:
                continue
            bits, dense, overhead = stored_width(widths, mname, module, name, t)
            total += overhead
            if id(t) in synaptic:
                total += sparse_bits(t.detach(), bits, sparse, index_bits, dense_bits=dense)
            else:
                total += t.numel() * dense
    return total


def weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The `nn.Conv2d` and `nn.Linear` layers of `model` by name: the layers with synapses."""
    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def weight_sparsity(layers: dict[str, nn.Module]) -> float:
    """Fraction of zero weights over `layers` (the weights they compute with; 0 for no layers)."""
    total = sum(m.weight.numel() for m in layers.values())
    zeros = sum(int((m.weight == 0).sum()) for m in layers.values())
    return zeros / total if total else 0.0


def connection_sparsity(model: nn.Module) -> float:
    """Fraction of zero weights over all conv and linear layers."""
    return weight_sparsity(weight_layers(model))


@dataclass
class LayerOps:
    """Synaptic operations of one layer, summed over all calls (not yet divided by samples)."""

    dense: float = 0.0
    macs: float = 0.0
    acs: float = 0.0


def _conv_taps(module: nn.Conv2d, x: Tensor) -> float:
    """Number of (output position, kernel tap) pairs whose tap lands on a real input, for one input
    channel of one sample: the convolution of an all-ones image with an all-ones kernel."""
    ones = torch.ones(1, 1, *x.shape[-2:], dtype=torch.float64)
    kernel = torch.ones(1, 1, *module.kernel_size, dtype=torch.float64)
    if module.padding_mode != "zeros":
        # reflect / replicate / circular padding copies real inputs: those taps are connections too
        ones = F.pad(ones, module._reversed_padding_repeated_twice, value=1.0)
        padding = 0
    else:
        padding = module.padding
    return F.conv2d(ones, kernel, None, module.stride, padding, module.dilation).sum().item()


def _layer_ops(module: nn.Module, x: Tensor, out: Tensor) -> LayerOps:
    w_nz = (module.weight != 0).to(x.dtype)
    x_nz = (x != 0).to(x.dtype)
    # spikes (and ternary spikes) need only additions: the same test as NeuroBench's
    binary = is_spike_tensor(x, signed=True)
    if isinstance(module, nn.Conv2d):
        samples = x.shape[0] if x.dim() == 4 else 1
        dense = _conv_taps(module, x) * (module.in_channels // module.groups) * module.out_channels * samples
        # each output entry is at most the fan-in, an exact integer; sum in float64 to keep it exact
        eff = module._conv_forward(x_nz, w_nz, None).sum(dtype=torch.float64).item()
    else:
        dense = out.numel() * module.in_features
        eff = (x_nz.reshape(-1, module.in_features) @ w_nz.t()).sum(dtype=torch.float64).item()
    return LayerOps(dense=float(dense), macs=0.0 if binary else eff, acs=eff if binary else 0.0)


@dataclass
class Report:
    """What `measure` found; operation, spike and update counts are per sample, over all time steps."""

    params: int
    footprint_bytes: int
    deployed_bits: int
    connection_sparsity: float
    activation_sparsity: float
    dense_synops: float
    effective_macs: float
    effective_acs: float
    spikes_per_sample: float
    firing_rates: dict[str, float] = field(default_factory=dict)
    layers: dict[str, LayerOps] = field(default_factory=dict)
    accuracy: float | None = None
    samples: int = 0
    neuron_updates: float = 0.0
    active_neuron_updates: float = 0.0  # updates with a non-zero input current or a spike in that step


    def as_dict(self) -> dict:
        return asdict(self)


@contextmanager
def counting(model: nn.Module) -> Iterator[dict[str, LayerOps]]:
    """Context manager: while active, every forward call adds each conv/linear layer's synaptic
    operations (summed over the batch) to the yielded `{layer name: LayerOps}`."""
    ops: dict[str, LayerOps] = {}

    def hook(m, i, o, name):
        got = _layer_ops(m, i[0], o)
        acc = ops.setdefault(name, LayerOps())
        acc.dense += got.dense
        acc.macs += got.macs
        acc.acs += got.acs

    with hooked(weight_layers(model), lambda name, m, i, o: hook(m, i, o, name)):
        yield ops


@contextmanager
def _activity(model: nn.Module) -> Iterator[dict[str, list[float]]]:
    """While active, add every activation layer's `[non-zero outputs, outputs]` to `{layer name: ...}`."""
    store: dict[str, list[float]] = {}

    def hook(o, name):
        acc = store.setdefault(name, [0.0, 0.0])
        acc[0] += torch.count_nonzero(o).item()
        acc[1] += o.numel()

    layers = {name: module for name, module in model.named_modules() if isinstance(module, ACTIVATIONS)}
    with hooked(layers, lambda name, m, i, o: hook(o, name)):
        yield store


@contextmanager
def _active_updates(model: nn.Module) -> Iterator[list[float]]:
    """While active, add to the yielded `[count]` the (neuron, step) pairs of every spiking layer whose input
    current is non-zero or whose output spikes: the active updates (the others only leak)."""
    store = [0.0]

    def hook(i, o):
        x = i[0]
        store[0] += torch.count_nonzero((x != 0) | (o != 0)).item() if x.shape == o.shape else torch.count_nonzero(o).item()

    with hooked([m for m in model.modules() if isinstance(m, SpikingNeuron)], lambda m, i, o: hook(i, o)):
        yield store


@torch.no_grad()
def synops(model: nn.Module, inputs: Tensor) -> dict[str, LayerOps]:
    """Synaptic operations of each conv/linear layer for one forward of `inputs: [T, B, ...]`,
    summed over the batch (divide by `B` for per-sample numbers)."""
    with counting(model) as ops:
        model(inputs)
    return ops


@torch.no_grad()
def measure(model: nn.Module, x: Tensor, encoder: Encoder, y: Tensor | None = None, batch_size: int = 250,
            seed: int = 1234) -> Report:
    """Measure `model` on images `x: [N, ...]` encoded by `encoder` (eval mode; rate codes from `seed`).

    Gives accuracy too when labels `y` are passed. Activation sparsity covers every activation layer
    (`ACTIVATIONS`: spiking neurons, ReLU, sigmoid), so an ANN reports the zeros of its ReLUs; spikes,
    firing rates and neuron updates cover the spiking layers only.
    """
    spiking = {name for name, m in model.named_modules() if isinstance(m, SpikingNeuron)}
    correct, n = 0, x.shape[0]
    with counting(model) as layers, _activity(model) as act, _active_updates(model) as active:
        for rows, xb in eval_batches(model, x, encoder, batch_size, seed):  # xb: [T, B, ...]
            logits = model(xb)
            if y is not None:
                correct += (logits.argmax(1) == y[rows]).sum().item()
    per = {k: LayerOps(v.dense / n, v.macs / n, v.acs / n) for k, v in layers.items()}
    total_nonzero = sum(v[0] for v in act.values())
    total_numel = sum(v[1] for v in act.values())
    spikes = {k: v for k, v in act.items() if k in spiking}  # spike outputs are 0/1: non-zeros = spikes
    total_spikes = sum(v[0] for v in spikes.values())
    return Report(
        params=count_params(model),
        footprint_bytes=footprint_bytes(model),
        deployed_bits=deployed_bits(model),
        connection_sparsity=connection_sparsity(model),
        activation_sparsity=1.0 - total_nonzero / total_numel if total_numel else 0.0,
        dense_synops=sum(v.dense for v in per.values()),
        effective_macs=sum(v.macs for v in per.values()),
        effective_acs=sum(v.acs for v in per.values()),
        spikes_per_sample=total_spikes / n,
        firing_rates={k: v[0] / v[1] for k, v in spikes.items() if v[1]},
        layers=per,
        accuracy=correct / n if y is not None else None,
        samples=n,
        neuron_updates=sum(v[1] for v in spikes.values()) / n,  # one state update per neuron per step
        active_neuron_updates=active[0] / n,
    )
