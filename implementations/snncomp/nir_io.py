r"""NIR in and out: our one place for the Neuromorphic Intermediate Representation [@pedersen2024neuromorphic].

NIR is a graph of computational primitives (affine maps, convolutions, pooling, neuron models) that
snnTorch, SpikingJelly, Norse and several neuromorphic chips read and write. `export(model, encoder)`
turns a `ConvNet` or `MLP` of `snncomp.models` (trained, pruned, quantized: any model a recipe hands back)
into a `nir.NIRGraph`; `load(graph_or_path)` turns a NIR graph into one of those two models, with our
neuron classes running on whole time-major sequences `[T, B, ...]`, and the encoder the graph names.

## Discretisation

NIR writes its neurons in continuous time and has no field for the time step. Its LIF is
$\tau \dot v = (v_{leak} - v) + R\,I$ with a spike when $v > v_{threshold}$ and then $v \leftarrow v_{reset}$;
its IF is $\dot v = R\,I$ with the same spike and reset. We integrate both with forward Euler over one
step of length `dt` (the convention of snnTorch's and SpikingJelly's NIR code), which gives, per step,

$$H[t] = \beta V[t-1] + g\,X[t] + (1 - \beta)\,v_{leak}, \qquad \beta = 1 - \frac{dt}{\tau}, \qquad
  g = \frac{R\,dt}{\tau} \;\;\text{(LIF)}, \qquad \beta = 1,\; g = R\,dt \;\;\text{(IF)}.$$

Our LIF is $H[t] = \beta V[t-1] + X[t]$ with $\beta = 1 - 1/\tau_{steps}$, so `export` writes
$\tau = \tau_{steps}\,dt$, $R = \tau_{steps}$ (so $g = 1$) and $v_{leak} = 0$; our IF gets $R = 1/dt$.
`load` reads any $\tau$ and $R$: a gain $g \ne 1$ is moved onto the threshold (the neuron that integrates
$g X$ against $\theta$ fires where the one integrating $X$ fires against $\theta / g$, and its reset value
scales the same way), a LIF with $v_{leak} = v_{reset}$ and $g = 1/\tau_{steps}$ or $g = 1$ becomes our
`PLIF` (SpikingJelly's LIF with and without `decay_input`), and anything else is refused with the node
and field named.

Within one step we charge, then compare, then reset: $S[t] = [H[t] \ge \theta]$ and
$V[t] = H[t](1 - S[t]) + V_{reset} S[t]$ (hard) or $V[t] = H[t] - \theta S[t]$ (soft). NIR fires on
$v > v_{threshold}$, so `export` writes the largest float32 below our $\theta$ (with `exact_threshold`,
the default): NIR's strict comparison then fires on exactly the float32 potentials where our $\ge$ does,
and a potential that lands on $\theta$ (weights on a quantization grid make that common) spikes in every
reader that follows NIR. `load` does the reverse, taking the smallest float32 above $v_{threshold}$ (except
in a graph we wrote with `exact_threshold=False`, whose metadata says it holds $\theta$ itself).

NIR has no reset by subtraction. A soft-reset neuron is written as NIR's neuron with $v_{reset} = 0$ and
`metadata["snncomp"]["reset"] = "subtract"`; `load` honours that key, a reader that ignores it resets to
zero instead and spikes less (see the Bring-your-own-model page for how much).

## Primitives

| ours | NIR |
|---|---|
| input `[C, H, W]` or `[F]` | `Input` |
| `nn.Conv2d` with the block's `BatchNorm2d` folded in (running statistics) | `Conv2d` |
| `nn.Linear` | `Affine` (`Linear` without a bias) |
| `LIF`, `IF`, `PLIF` (thresholds and leaks learned or not) | `LIF`, `IF`, `LIF` (+ metadata) |
| `nn.MaxPool2d` after the neuron | `SumPool2d` then `Threshold` at 0.5: the maximum of binary spikes |
| `nn.AvgPool2d` | `AvgPool2d` |
| flattening before the first dense layer | `Flatten` |
| the readout `head` (its output averaged over time) | `Affine`, then `Output` |

NIR primitives are per neuron: every parameter array has the full shape of the layer (`[C, H, W]`), and
`load` requires them to be uniform over the positions of a channel (our neurons keep one value per
channel). Masks and weight quantizers are baked (`compress.bake`): the graph holds the weights the model
really computes with, zeros and grid values included. NIR has no field for bit widths, so each weight
node carries `metadata["snncomp"]["weight_bits"]`, and `load` puts it back as the layer's `weight_bits`
attribute (which `metrics` reads as the stored width). Encoders, `dt` and the readout rule travel in the
graph's `metadata["snncomp"]`. A membrane quantizer (MINT, Q-SpiNN) has no NIR counterpart and is refused.
We simplify in one place: the graph's output is the readout's output at every step; averaging it over
time, as our models do, is written in the metadata, not in the graph.
"""

from __future__ import annotations

import math
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from .data.encoding import Encoder
from .models import MLP, ConvBlock, ConvNet, DenseBlock
from .neurons import IF, LIF, PLIF, SpikingNeuron
from .nir_export import KEY, _above, export, fold_batchnorm

__all__ = ["export", "load", "fold_batchnorm", "SUPPORTED"]

SUPPORTED = ("Input", "Output", "Conv2d", "Affine", "Linear", "Flatten", "SumPool2d", "AvgPool2d", "Threshold",
             "LIF", "IF")

# ----------------------------------------------------------------------------- load


def _meta(node: nir.NIRNode) -> dict:
    m = getattr(node, "metadata", None) or {}
    ours = m.get(KEY, {})
    return ours if isinstance(ours, dict) else {}


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _chain(graph: nir.NIRGraph) -> list[str]:
    """The node names from the one `Input` to the one `Output`, refusing anything but a chain."""
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if isinstance(node, nir.NIRGraph):
            raise ValueError(f"load: node {name!r} is a subgraph (a recurrent layer); snncomp models are feed-forward")
        if kind not in SUPPORTED:
            raise ValueError(f"load: node {name!r} is a NIR {kind}; snncomp reads {', '.join(SUPPORTED)}"
                             + (" (no current-based synapse in our neurons)" if kind.startswith("Cuba") else ""))
    succ: dict[str, list[str]] = {n: [] for n in graph.nodes}
    pred: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        succ[a].append(b)
        pred[b].append(a)
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(f"load: expected one Input node, found {len(inputs)}: {inputs}")
    order, seen, name = [], set(), inputs[0]
    while True:
        if name in seen:
            raise ValueError(f"load: node {name!r} is reached twice: the graph has a cycle (recurrence)")
        seen.add(name)
        order.append(name)
        if isinstance(graph.nodes[name], nir.Output):
            break
        nxt = succ[name]
        if len(nxt) != 1:
            raise ValueError(f"load: node {name!r} has {len(nxt)} successors {nxt}; snncomp reads chains of layers")
        if len(pred[nxt[0]]) != 1:
            raise ValueError(f"load: node {nxt[0]!r} has {len(pred[nxt[0]])} inputs {pred[nxt[0]]}; snncomp reads chains")
        name = nxt[0]
    left = set(graph.nodes) - seen
    if left:
        raise ValueError(f"load: nodes {sorted(left)} are not on the path from input to output")
    return order


def _channels(arr, name: str, field: str, c: int) -> torch.Tensor:
    """A NIR per-neuron parameter `[C, ...]` (or a scalar) as one value per channel `[C]`, float64."""
    a = np.asarray(arr, dtype=np.float64)
    if a.size == 1:
        return torch.full((c,), float(a.reshape(-1)[0]), dtype=torch.float64)
    if a.shape[0] != c:
        raise ValueError(f"load: node {name!r}: {field} has shape {a.shape}, expected {c} channels first")
    flat = a.reshape(c, -1)
    if not np.all(flat == flat[:, :1]):
        ch = int(np.nonzero(~np.all(flat == flat[:, :1], axis=1))[0][0])
        raise ValueError(f"load: node {name!r}: {field} differs within channel {ch}; snncomp neurons keep one value "
                         "per channel")
    return torch.from_numpy(flat[:, 0].copy())


def _scalar(values: torch.Tensor, name: str, field: str) -> float:
    if not torch.all(values == values[0]):
        raise ValueError(f"load: node {name!r}: {field} differs between channels; snncomp keeps one {field} per layer")
    return float(values[0])


def _close(a: torch.Tensor, b: torch.Tensor | float) -> bool:
    return bool(torch.allclose(a, torch.as_tensor(b, dtype=a.dtype).expand_as(a), rtol=1e-6, atol=1e-12))


def _neuron(node: nir.NIRNode, name: str, c: int, dt: float, strict: bool) -> SpikingNeuron:
    above = _above if strict else (lambda t: np.asarray(t, dtype=np.float32))
    meta = _meta(node)
    soft = _text(meta.get("reset", "zero")) == "subtract"
    thr = _channels(node.v_threshold, name, "v_threshold", c)
    v_reset = _channels(node.v_reset, name, "v_reset", c)
    r = _channels(node.r, name, "r", c)
    if isinstance(node, nir.IF):
        g = r * dt  # H = V + g X
        if not soft and not torch.all(v_reset == 0):
            raise ValueError(f"load: node {name!r}: IF with v_reset != 0; snncomp's IF resets to 0")
        neuron = IF(c, reset="soft" if soft else "hard")
    else:
        tau = _channels(node.tau, name, "tau", c) / dt  # tau in steps
        if not torch.all(tau >= 1):
            raise ValueError(f"load: node {name!r}: tau / dt = {float(tau.min()):g} steps is below 1: forward Euler "
                             f"would give a negative decay; is dt = {dt:g} the step the graph was written for?")
        g = r * dt / (tau * dt)  # H = beta V + g X + (1 - beta) v_leak
        v_leak = _channels(node.v_leak, name, "v_leak", c)
        if _text(meta.get("neuron", "")) == "PLIF" or not torch.all(v_leak == 0):
            decay_input = bool(meta["decay_input"]) if "decay_input" in meta else _close(g, 1.0 / tau)
            if not torch.all(v_leak == v_reset):
                raise ValueError(f"load: node {name!r}: v_leak differs from v_reset (and from 0); snncomp's LIF leaks "
                                 "to 0 and its PLIF to v_reset")
            if not (_close(g, 1.0 / tau) if decay_input else _close(g, 1.0)):
                raise ValueError(f"load: node {name!r}: a LIF leaking to v_reset needs r = 1 or r = tau / dt "
                                 "(SpikingJelly's decay_input true or false)")
            if not torch.all(tau > 1):
                raise ValueError(f"load: node {name!r}: tau / dt must exceed 1 step for a PLIF")
            neuron = PLIF(c, threshold=1.0, reset="soft" if soft else "hard",
                          v_reset=_scalar(v_reset, name, "v_reset"), decay_input=decay_input)
            w = meta.get("w")
            with torch.no_grad():
                neuron.w.copy_(torch.as_tensor(np.asarray(w, np.float32)).view(-1) if w is not None
                               else (-torch.log(tau - 1.0)).float())  # sigmoid(w) = 1 / tau
            neuron.threshold = torch.from_numpy(above(thr.numpy()))
            return neuron
        neuron = LIF(c, reset="soft" if soft else "hard")
        neuron.tau = tau.float()
    # move a gain g != 1 onto the threshold (and the reset value): g X against theta is X against theta / g
    unit = _close(g, 1.0)
    theta = thr if unit else thr / g
    neuron.threshold = torch.from_numpy(above(theta.numpy()))
    if not torch.all(neuron.threshold > 0):
        raise ValueError(f"load: node {name!r}: v_threshold / gain must be positive")
    if isinstance(neuron, LIF) and not soft:
        neuron.v_reset = _scalar(v_reset if unit else v_reset / g, name, "v_reset")
    return neuron


def _bits(layer: nn.Module, node: nir.NIRNode) -> nn.Module:
    b = _meta(node).get("weight_bits")
    if b is not None:
        layer.weight_bits = int(b)
    return layer


def _dense(node: nir.NIRNode) -> nn.Linear:
    w = np.asarray(node.weight, np.float32)
    fc = nn.Linear(w.shape[1], w.shape[0], bias=isinstance(node, nir.Affine))
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(w))
        if fc.bias is not None:
            fc.bias.copy_(torch.from_numpy(np.asarray(node.bias, np.float32)))
    return _bits(fc, node)


def _ints(v) -> tuple[int, int]:
    a = np.asarray(v).reshape(-1).astype(int)
    return (int(a[0]), int(a[0])) if a.size == 1 else (int(a[0]), int(a[1]))


def _conv(node: nir.Conv2d) -> nn.Conv2d:
    w = np.asarray(node.weight, np.float32)
    padding = _text(node.padding) if isinstance(node.padding, (str, bytes)) else _ints(node.padding)
    conv = nn.Conv2d(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]), stride=_ints(node.stride),
                     padding=padding, dilation=_ints(node.dilation), groups=int(node.groups), bias=True)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
        conv.bias.copy_(torch.from_numpy(np.asarray(node.bias, np.float32)))
    return _bits(conv, node)


def _encoder(meta: dict):
    name = meta.get("encoder")
    if name is None:
        return None
    def subclasses(cls):
        for s in cls.__subclasses__():
            yield s
            yield from subclasses(s)

    found = {c.__name__: c for c in subclasses(Encoder)}  # every encoder the package defines
    name = _text(name)
    if name not in found:
        raise ValueError(f"load: the graph names encoder {name!r}, which snncomp does not have "
                         f"(known: {', '.join(sorted(found))})")
    fields = {k: (_text(v) if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v)
              for k, v in dict(meta.get("encoder_fields", {})).items()}
    return found[name](**fields)


def load(graph_or_path: nir.NIRGraph | str | Path, *, dt: float | None = None):
    """A `ConvNet` or `MLP` (eval mode) and its encoder from a NIR graph or file: `(model, encoder_or_None)`.

    The graph must be a chain `Input -> [Conv2d -> neuron -> pool?]* -> Flatten? -> [Affine|Linear ->
    neuron]* -> (Affine|Linear)? -> Output`; a graph that ends on a neuron gets no readout layer and its
    score is the spike count averaged over time. `dt` is the step the graph's time constants are read with:
    `None` takes the one our `export` wrote, else 1.0 (snnTorch and SpikingJelly write for 1e-4)."""
    if isinstance(graph_or_path, (str, Path)):
        path = Path(graph_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"load: no NIR file at {path}")
        try:
            graph = nir.read(path)
        except Exception as exc:  # h5py and nir raise many kinds; name the file
            raise ValueError(f"load: {path} is not a readable NIR file: {exc}") from exc
    elif isinstance(graph_or_path, nir.NIRGraph):
        graph = graph_or_path
    else:
        raise TypeError(f"load: expected a nir.NIRGraph or a path, got {type(graph_or_path).__name__}")
    gmeta = _meta(graph)
    if dt is None:
        dt = float(gmeta.get("dt", 1.0))
    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"load: dt must be a positive finite number, got {dt!r}")
    strict = bool(gmeta.get("exact_threshold", True))  # False: our own graph holding theta itself (we fire on >=)
    order = _chain(graph)
    nodes = [(n, graph.nodes[n]) for n in order[1:-1]]
    in_shape = tuple(int(v) for v in np.asarray(graph.nodes[order[0]].input_type["input"]).reshape(-1))
    blocks: list[nn.Module] = []
    head: nn.Module | None = None
    conv_part = True
    i = 0
    while i < len(nodes):
        name, node = nodes[i]
        if head is not None:
            raise ValueError(f"load: node {name!r} follows the readout layer {order[i]!r}; a weight layer must be "
                             "followed by a neuron except at the end")
        if isinstance(node, nir.Conv2d):
            if not conv_part:
                raise ValueError(f"load: node {name!r}: a convolution after a dense layer; snncomp's ConvNet puts "
                                 "convolutions first")
            conv = _conv(node)
            if i + 1 >= len(nodes) or not isinstance(nodes[i + 1][1], (nir.LIF, nir.IF)):
                raise ValueError(f"load: node {name!r}: a convolution must be followed by a LIF or IF neuron")
            neuron = _neuron(nodes[i + 1][1], nodes[i + 1][0], conv.out_channels, dt, strict)
            block = ConvBlock(conv.in_channels, conv.out_channels, neuron, kernel_size=conv.kernel_size[0], pool=1)
            block.conv, block.bn = conv, nn.Identity()
            i += 2
            if i < len(nodes) and isinstance(nodes[i][1], (nir.SumPool2d, nir.AvgPool2d)):
                pname, p = nodes[i]
                k, s, pad = _ints(p.kernel_size), _ints(p.stride), _ints(p.padding)
                nxt = nodes[i + 1][1] if i + 1 < len(nodes) else None
                if isinstance(p, nir.SumPool2d) and isinstance(nxt, nir.Threshold):
                    th = np.asarray(nxt.threshold, np.float64)
                    if not (np.all(th >= 0) and np.all(th < 1)):
                        raise ValueError(f"load: node {nodes[i + 1][0]!r}: a Threshold after SumPool2d reads as the "
                                         "max of binary spikes only for thresholds in [0, 1)")
                    block.pool = nn.MaxPool2d(k, s, pad)  # sum of spikes > th in [0, 1): at least one spike
                    i += 2
                elif isinstance(p, nir.SumPool2d):
                    block.pool = nn.AvgPool2d(k, s, pad, divisor_override=1)  # a sum
                    i += 1
                else:
                    block.pool = nn.AvgPool2d(k, s, pad)
                    i += 1
            blocks.append(block)
        elif isinstance(node, nir.Flatten):
            conv_part = False
            i += 1
        elif isinstance(node, (nir.Affine, nir.Linear)):
            conv_part = False
            fc = _dense(node)
            if i + 1 < len(nodes) and isinstance(nodes[i + 1][1], (nir.LIF, nir.IF)):
                neuron = _neuron(nodes[i + 1][1], nodes[i + 1][0], fc.out_features, dt, strict)
                block = DenseBlock(fc.in_features, fc.out_features, neuron)
                block.fc = fc
                blocks.append(block)
                i += 2
            else:
                head = fc
                i += 1
        else:
            kind = type(node).__name__
            raise ValueError(f"load: node {name!r} ({kind}) is out of place: neurons follow a weight layer, pools "
                             "follow a convolution's neuron, Threshold follows a SumPool2d")
    if not blocks and head is None:
        raise ValueError("load: the graph has no weight layer")
    head = head if head is not None else nn.Identity()
    if any(isinstance(b, ConvBlock) for b in blocks):
        if len(in_shape) != 3:
            raise ValueError(f"load: the Input node has shape {in_shape}; a graph starting with a convolution "
                             "needs [C, H, W] (no batch or time dimension)")
        model: nn.Module = ConvNet(blocks, head, in_shape)
    else:
        model = MLP(blocks, head)
    model.eval()
    return model, _encoder(gmeta)
