"""Writing NIR graphs: the export half of `snncomp.nir_io` (the discretisation and the primitives are
documented there), with the metadata key and the threshold rounding both halves share."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from . import compress, metrics
from .models import MLP, ConvBlock, ConvNet, DenseBlock
from .neurons import IF, LIF, PLIF, SpikingNeuron
from .spikes import hooked

__all__ = ["export", "fold_batchnorm", "KEY"]

KEY = "snncomp"  # our metadata key, on the graph and on nodes
FORMAT = 1  # version of what we write under KEY

# ----------------------------------------------------------------------------- thresholds


def _below(theta: np.ndarray) -> np.ndarray:
    """The largest float32 below each `theta`: NIR's `v > below(theta)` is our `v >= theta` on float32."""
    t = np.asarray(theta, dtype=np.float32)
    return np.nextafter(t, np.float32(-np.inf)).astype(np.float32)


def _above(theta: np.ndarray) -> np.ndarray:
    """The smallest float32 above each `theta`: our `v >= above(theta)` is NIR's `v > theta` on float32."""
    t = np.asarray(theta, dtype=np.float32)
    return np.nextafter(t, np.float32(np.inf)).astype(np.float32)


# ----------------------------------------------------------------------------- export


def fold_batchnorm(model: nn.Module) -> nn.Module:
    r"""A copy of a `ConvNet` whose blocks' `BatchNorm2d` are folded into their convolutions (eval-mode
    statistics): $W' = W s$, $b' = \beta + (b - \mu) s$ with $s = \gamma / \sqrt{\sigma^2 + \epsilon}$ per output
    channel, computed in float64 and stored in float32. The folded model computes the same function up to
    float32 rounding; it is the model `export` writes. Other models are only copied (and baked)."""
    out = compress.bake(model)
    for block in getattr(out, "blocks", []):
        if isinstance(block, ConvBlock) and isinstance(block.bn, nn.BatchNorm2d):
            conv, bn = block.conv, block.bn
            s = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)  # [C_out]
            b = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(s)
            new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                            conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
            with torch.no_grad():
                new.weight.copy_((conv.weight.detach().double() * s.view(-1, 1, 1, 1)).float())  # W s
                new.bias.copy_((bn.bias.detach().double() + (b - bn.running_mean.double()) * s).float())
            for attr in ("weight_bits",):
                if hasattr(conv, attr):
                    setattr(new, attr, getattr(conv, attr))
            block.conv, block.bn = new, nn.Identity()
    return out


def _full(value: torch.Tensor | float, shape: tuple[int, ...]) -> np.ndarray:
    """A per-channel `[C]` (or scalar) parameter broadcast to a neuron layer's full shape `[C, ...]`."""
    v = torch.as_tensor(value, dtype=torch.float64).detach().cpu()
    if v.dim() == 1 and len(shape) > 1:
        v = v.view(-1, *([1] * (len(shape) - 1)))
    return np.ascontiguousarray(np.broadcast_to(v.numpy(), shape))


def _check_neuron(neuron: nn.Module | None, where: str) -> None:
    if not isinstance(neuron, SpikingNeuron):
        raise TypeError(f"export: {where} is a {type(neuron).__name__}; NIR export needs spiking neurons "
                        "(LIF, IF, PLIF), not an ANN's activation")
    if neuron.quantizer is not None:
        raise ValueError(f"export: {where} has a membrane quantizer ({type(neuron.quantizer).__name__}); NIR has no "
                         "field for a quantized membrane potential, so the exported graph would not compute what "
                         "the model computes")
    if not isinstance(neuron, (LIF, IF, PLIF)):
        raise TypeError(f"export: {where} is a {type(neuron).__name__}; NIR export supports LIF, IF and PLIF")


def _neuron_node(neuron: nn.Module, shape: tuple[int, ...], dt: float, exact: bool, where: str) -> nir.NIRNode:
    _check_neuron(neuron, where)
    thr = _full(neuron.threshold, shape)
    v_thr = _below(thr) if exact else thr.astype(np.float32)
    soft = neuron.reset == "soft"
    meta = {"reset": "subtract" if soft else "zero"}
    v_reset = np.zeros(shape, np.float32) if soft or isinstance(neuron, IF) else np.full(shape, neuron.v_reset,
                                                                                         np.float32)
    if isinstance(neuron, IF):
        return nir.IF(r=np.full(shape, 1.0 / dt), v_threshold=v_thr, v_reset=v_reset, metadata={KEY: meta})
    if isinstance(neuron, PLIF):
        tau = _full(1.0 / torch.sigmoid(neuron.w.detach().double()), shape)  # tau in steps
        r = np.ones(shape) if neuron.decay_input else tau  # g = R dt / tau: 1 / tau_steps or 1
        meta.update(neuron="PLIF", decay_input=bool(neuron.decay_input),
                    w=neuron.w.detach().cpu().numpy().astype(np.float32).reshape(-1))
        return nir.LIF(tau=tau * dt, r=r, v_leak=np.full(shape, neuron.v_reset), v_threshold=v_thr,
                       v_reset=np.full(shape, neuron.v_reset), metadata={KEY: meta})
    tau = _full(neuron.tau, shape)  # tau in steps
    return nir.LIF(tau=tau * dt, r=tau.copy(), v_leak=np.zeros(shape), v_threshold=v_thr, v_reset=v_reset,
                   metadata={KEY: meta})


def _weight_meta(layer: nn.Module, bits: int | None, extra: dict | None = None) -> dict:
    meta = dict(extra or {})
    width = bits if bits is not None else getattr(layer, "weight_bits", None)
    if width is not None:
        meta["weight_bits"] = int(width)
    return {KEY: meta} if meta else {}


def _dense_node(fc: nn.Linear, meta: dict) -> nir.NIRNode:
    w = fc.weight.detach().cpu().numpy().astype(np.float32)
    if fc.bias is None:
        return nir.Linear(weight=w, metadata=meta)
    return nir.Affine(weight=w, bias=fc.bias.detach().cpu().numpy().astype(np.float32), metadata=meta)


def _pair(v) -> np.ndarray:
    return np.array(v if isinstance(v, (tuple, list)) else (v, v), dtype=np.int64)


def _encoder_meta(encoder) -> dict:
    if encoder is None:
        return {}
    if not dataclasses.is_dataclass(encoder):
        raise TypeError(f"export: encoder must be an snncomp encoder (a dataclass such as encoding.Direct), "
                        f"got {type(encoder).__name__}")
    fields = {f.name: getattr(encoder, f.name) for f in dataclasses.fields(encoder)}
    bad = [k for k, v in fields.items() if not isinstance(v, (bool, int, float, str))]
    if bad:
        raise TypeError(f"export: encoder {type(encoder).__name__} has fields NIR metadata cannot hold: {bad}")
    return {"encoder": type(encoder).__name__, "encoder_fields": fields}


def _shapes(model: nn.Module) -> dict[int, tuple[int, ...]]:
    """Per-sample shape of every neuron's input and every pool's output, from one forward pass on zeros."""
    if isinstance(model, ConvNet):
        x = torch.zeros(1, 1, *model.in_shape)
    else:
        first = model.blocks[0].fc if len(model.blocks) else model.head
        x = torch.zeros(1, 1, first.in_features)
    shapes: dict[int, tuple[int, ...]] = {}

    def keep(m, inp, out):  # neurons see [T, B, C, ...]; pools run on [T*B, C, H, W]
        shapes[id(m)] = tuple(inp[0].shape[2:]) if isinstance(m, SpikingNeuron) else tuple(out.shape[1:])

    mods = [m for m in model.modules() if isinstance(m, (SpikingNeuron, nn.MaxPool2d, nn.AvgPool2d))]
    with hooked(mods, keep), torch.no_grad():
        model(x)
    return shapes


def export(model: nn.Module, encoder=None, *, dt: float = 1.0, path: str | Path | None = None,
           exact_threshold: bool = True) -> nir.NIRGraph:
    """The NIR graph of a `ConvNet` or `MLP` (masks and quantizers baked, BatchNorm folded), written to
    `path` as well when given (HDF5, `nir.write`).

    `dt` is the step length the continuous-time parameters are written for ($\\tau = \\tau_{steps}\\,dt$):
    snnTorch's reader assumes `1e-4`, SpikingJelly's takes it as an argument (default `1e-4`), Norse's
    defaults to `1e-3`. `exact_threshold=False` writes $\\theta$ itself instead of the float32 just below it
    (what other exporters do: potentials exactly on $\\theta$ then stop spiking in a strict reader)."""
    if not isinstance(model, (ConvNet, MLP)):
        raise TypeError(f"export: expected a ConvNet or MLP of snncomp.models, got {type(model).__name__}")
    if not (isinstance(dt, (int, float)) and dt > 0 and math.isfinite(dt)):
        raise ValueError(f"export: dt must be a positive finite number of seconds, got {dt!r}")
    widths = metrics._quantized_widths(model)  # {"blocks.0.conv.weight": (bits, overhead, has_zero)}
    bits = {k.rsplit(".", 1)[0]: v[0] for k, v in widths.items() if k.endswith(".weight")}
    for i, block in enumerate(model.blocks):  # neurons are checked before anything is copied or run
        _check_neuron(getattr(block, "neuron", None), f"blocks.{i}.neuron")
    folded = fold_batchnorm(model).eval()
    shapes = _shapes(folded)
    nodes: dict[str, nir.NIRNode] = {}
    in_shape = tuple(folded.in_shape) if isinstance(folded, ConvNet) else (
        (folded.blocks[0].fc if len(folded.blocks) else folded.head).in_features,)
    nodes["input"] = nir.Input(input_type={"input": np.array(in_shape)})
    shape = in_shape
    flat = len(in_shape) == 1
    for i, block in enumerate(folded.blocks):
        where = f"blocks.{i}"
        if isinstance(block, ConvBlock):
            conv = block.conv
            nodes[f"conv{i}"] = nir.Conv2d(
                input_shape=tuple(shape[1:]), weight=conv.weight.detach().cpu().numpy().astype(np.float32),
                stride=tuple(conv.stride), padding=conv.padding if isinstance(conv.padding, str) else tuple(conv.padding),
                dilation=tuple(conv.dilation), groups=conv.groups,
                bias=conv.bias.detach().cpu().numpy().astype(np.float32),
                metadata=_weight_meta(conv, bits.get(f"{where}.conv"),
                                      {"batchnorm_folded": isinstance(model.blocks[i].bn, nn.BatchNorm2d)}))
            shape = shapes[id(block.neuron)]
            nodes[f"neuron{i}"] = _neuron_node(block.neuron, shape, dt, exact_threshold, f"{where}.neuron")
            pool = block.pool
            if isinstance(pool, nn.MaxPool2d):
                if pool.dilation not in (1, (1, 1)) or pool.ceil_mode:
                    raise ValueError(f"export: {where}.pool: NIR's SumPool2d has no dilation or ceil mode")
                k = _pair(pool.kernel_size)
                nodes[f"pool{i}"] = nir.SumPool2d(kernel_size=k, stride=_pair(pool.stride if pool.stride else k),
                                                  padding=_pair(pool.padding), metadata={KEY: {"pool": "max"}})
                shape = shapes[id(pool)]
                nodes[f"spike_or{i}"] = nir.Threshold(threshold=np.full(shape, 0.5, np.float32),
                                                      metadata={KEY: {"pool": "max"}})
            elif isinstance(pool, nn.AvgPool2d):
                k = _pair(pool.kernel_size)
                nodes[f"pool{i}"] = nir.AvgPool2d(kernel_size=k, stride=_pair(pool.stride if pool.stride else k),
                                                  padding=_pair(pool.padding))
                shape = shapes[id(pool)]
            elif not isinstance(pool, nn.Identity):
                raise TypeError(f"export: {where}.pool is a {type(pool).__name__}; NIR export supports MaxPool2d "
                                "(of spikes), AvgPool2d and none")
        elif isinstance(block, DenseBlock):
            if not flat:
                nodes["flatten"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
                shape, flat = (int(np.prod(shape)),), True
            nodes[f"fc{i}"] = _dense_node(block.fc, _weight_meta(block.fc, bits.get(f"{where}.fc")))
            shape = shapes[id(block.neuron)]
            nodes[f"neuron{i}"] = _neuron_node(block.neuron, shape, dt, exact_threshold, f"{where}.neuron")
        else:
            raise TypeError(f"export: {where} is a {type(block).__name__}; NIR export supports ConvBlock and "
                            "DenseBlock (a model with TA-SNN attention or early exit has no NIR form)")
    if isinstance(folded.head, nn.Linear):
        if not flat:
            nodes["flatten"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
        nodes["head"] = _dense_node(folded.head, _weight_meta(folded.head, bits.get("head")))
    elif not isinstance(folded.head, nn.Identity):
        raise TypeError(f"export: head is a {type(folded.head).__name__}; expected nn.Linear")
    names = list(nodes)
    out_shape = (folded.head.out_features,) if isinstance(folded.head, nn.Linear) else shape
    nodes["output"] = nir.Output(output_type={"output": np.array(out_shape)})
    edges = [(a, b) for a, b in zip(names, names[1:] + ["output"])]
    meta = {"format": FORMAT, "dt": float(dt), "model": type(model).__name__, "readout": "mean over time",
            "exact_threshold": bool(exact_threshold), **_encoder_meta(encoder)}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={KEY: meta})
    if path is not None:
        path = Path(path)
        if not path.parent.resolve().is_dir():
            raise FileNotFoundError(f"export: cannot write {path}: folder {path.parent} does not exist")
        nir.write(path, graph)
    return graph
