r"""One flat, JSON-safe set of measurements for any model: what every recipe step and every run reports.

`measure_all(model, encoder, split)` measures the model on one part of the split (the test images by
default) with `metrics.measure` (accuracy, sizes, sparsity, spikes, synaptic operations) and
`energy.memory.measure` (memory accesses), and prices the counts under every energy model of
`snncomp.energy`: the 45 nm FP32 compute model, every chip profile that publishes a synaptic-operation
energy, and the memory-inclusive model. The result holds only numbers, strings, `None` and dicts of
them, so a row of the result store is this dict as it is.

| field | what |
|---|---|
| `accuracy`, `params`, `connection_sparsity`, `activation_sparsity`, `spikes_per_sample`, `dense_synops`, `effective_macs`, `effective_acs`, `neuron_updates`, `deployed_bits`, `footprint_bytes` | as `metrics.measure` gives them |
| `synops` | `effective_macs + effective_acs`: the synaptic operations the model really does, per sample |
| `deployed_footprint_bytes` | the bytes a device holds once quantised tensors are stored at their width and the conv and linear weights in the cheapest of `metrics.SPARSE_FORMATS` (`metrics.deployed_bits(model, sparse="auto")`: a pruned layer's bitmap or indices are counted) |
| `deployed_dense_bytes` | `deployed_bits / 8`: the same with every weight stored densely, zeros included |
| `weight_bits` | mean bits per synaptic weight (conv and linear weights, weighted by their size; 32 for FP32) |
| `state_bits` | bits of the membrane potentials: the widest membrane quantizer's, 32 when any spiking neuron has none (an ANN has none: 32) |
| `T` | time steps the encoder feeds (`None` for an encoder without `T`) |
| `energy_pj` | `{model name: pJ per sample}`: `45nm-fp32`, every published chip profile, `memory`; when both `weight_bits` and `state_bits` are below 32 also `45nm-<regime>` (the 45 nm figures of the narrowest Horowitz format holding both the weights and the membrane potentials the adds accumulate into: `int8` up to 8 bits, `int32` above; a model whose potentials stay in floating point adds in FP32 whatever its weights) and, when `weight_bits` is below 32, `memory-w<bits>` (see below) |
| `energy_notes` | `{model name: "prices ...; leaves out ..."}`, from each `energy.Priced` |

`memory-w<b>` is our variant of the memory-inclusive model for narrow weights: the parameter reads
and the parameter buffer are sized at `b` bits per weight instead of 32-bit words, and so are the
membrane potentials of an SNN whose potentials are quantised (at `state_bits`); spike messages stay
32-bit words, and every operation stays as Lemaire et al.'s model prices it [@lemaire2022analytical].
Its ANN at the same width reads weights and analog activations at `b` bits, so the two are compared at
the same width without favouring the SNN.

**Against the ANN of the same architecture.** With `ann=(ann_model, ann_encoder)`, or afterwards with
`compare_ann(measurements, ann_model, ann_encoder, split)`, the dict gains `ann_energy_pj` and
`ann_ratio` (SNN energy / ANN energy, below 1: the SNN is cheaper), each keyed by
`"45nm-fp32-dense"`, `"45nm-fp32-zero-skipping"` (the two accountings of `energy.ann_energy`: every
dense MAC, or only those with non-zero input and weight), the same two at the SNN's weight regime
(`"45nm-int8-dense"`, ...), `"memory"` and `"memory-w<b>"`; `ann_accuracy` and `ann_regime` say what
was compared. The ANN is priced in the SNN's arithmetic format in the narrow entries (an ANN whose weights
and activations are quantised to the same width), and at FP32 in the others.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import energy, metrics
from .data import Split
from .data.encoding import Encoder
from .energy import memory as memory_model

__all__ = ["measure_all", "compare_ann", "weight_bits", "state_bits", "regime_for_bits", "memory_at_bits", "REPORT_FIELDS"]

# the metrics.Report fields copied as they are
REPORT_FIELDS = ("accuracy", "params", "connection_sparsity", "deployed_bits", "footprint_bytes", "spikes_per_sample",
                 "activation_sparsity", "dense_synops", "effective_macs", "effective_acs", "neuron_updates")


def _part(split: Split, part: str):
    if part == "test":
        return split.test_x, split.test_y
    if part in ("val", "validation"):
        if not split.has_validation:
            raise ValueError(f"measure_all: split {split.name or '?'} has no validation part "
                             "(carve one with Split.with_validation, or use baselines.split)")
        return split.val_x, split.val_y
    if part == "train":
        return split.train_x, split.train_y
    raise ValueError(f"measure_all: part must be 'test', 'val' or 'train', got {part!r}")


def weight_bits(model: nn.Module) -> float:
    """Mean bits per synaptic weight: over the weights of every conv and linear layer, each
    weight's dense width (`metrics.stored_width`: a quantizer's, else the layer's `weight_bits`
    attribute, else the dtype's; a code without a zero level that holds pruned zeros needs a symbol
    more); weighted by the number of weights. Scales and codebooks are left out (they are in
    `deployed_bits`)."""
    widths = metrics._quantized_widths(model)
    deployed = metrics._deployed(model)
    total, count = 0.0, 0
    for name, layer in metrics.weight_layers(deployed).items():
        w = layer.weight
        _, bits, _ = metrics.stored_width(widths, name, layer, "weight", w)  # the dense width, zeros included
        total += bits * w.numel()
        count += w.numel()
    return total / count if count else 32.0


def state_bits(model: nn.Module) -> float:
    """Bits of the membrane potentials the synaptic adds accumulate into: the widest membrane quantizer's
    `bits` over the spiking neurons, 32 when any spiking neuron has none or there is no spiking neuron."""
    from .neurons import SpikingNeuron

    widths = []
    for m in model.modules():
        if isinstance(m, SpikingNeuron):
            q = getattr(m, "quantizer", None)
            if q is None or not hasattr(q, "bits"):
                return 32.0
            widths.append(float(q.bits))
    return max(widths) if widths else 32.0


def regime_for_bits(bits: float) -> str:
    """The 45 nm number format (`energy.REGIMES`) that holds weights of `bits` bits: `int8` up to 8
    bits, `int32` below 32, `fp32` at 32 (the narrowest Horowitz figure at or above the width)."""
    if bits <= 8:
        return "int8"
    return "int32" if bits < 32 else "fp32"


def memory_at_bits(counts: memory_model.MemoryEnergy, bits: float, *, state_bits: float = 32.0,
                   activation_bits: float = 32.0) -> float:
    """pJ per sample of `counts` (from `energy.memory.measure`) with weights stored and read at `bits`
    bits, membrane potentials at `state_bits` and analog activations (layer inputs and outputs that are
    not spike messages) at `activation_bits`: the bytes of each such access and the capacity of its
    buffer scale by the width over 32; everything else is priced as the memory-inclusive model does.
    The SNN is priced with its weight and state widths and its spike messages kept as 32-bit words;
    its ANN at the same width gets the same width for weights and activations."""
    scale = {"read_params": bits / 32.0, "read_potential": state_bits / 32.0, "write_potential": state_bits / 32.0,
             "read_in": activation_bits / 32.0, "write_out": activation_bits / 32.0}
    scaled = memory_model.MemoryEnergy(samples=counts.samples, ops=counts.ops)
    scaled.accesses = [(k, b * scale[k], c * scale[k], by) for k, b, c, by in counts.accesses]
    return float(scaled.per_sample_pj()["total"])


def _note(p: energy.Priced) -> str:
    left = "; ".join(p.not_priced) if p.not_priced else "nothing (an all-in figure)"
    return f"prices {'; '.join(p.priced)}; leaves out {left}"


def _finite(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _counts(model: nn.Module, encoder: Encoder, x, y, batch_size: int):
    model.eval()
    report = metrics.measure(model, x, encoder, y, batch_size=batch_size)
    counts = memory_model.measure(model, x, encoder, batch_size=batch_size)
    return report, counts


@torch.no_grad()
def measure_all(model: nn.Module, encoder: Encoder, split: Split, part: str = "test", *,
                ann: tuple[nn.Module, Encoder] | None = None, batch_size: int = 250) -> dict:
    """Measure `model` fed by `encoder` on `part` (`"test"`, `"val"` or `"train"`) of `split` and price it
    under every energy model; with `ann=(ann_model, ann_encoder)` compare it with that ANN (see the module
    docstring for every field). The model is put in eval mode; its weights are not changed."""
    x, y = _part(split, part)
    report, counts = _counts(model, encoder, x, y, batch_size)
    out: dict = {k: getattr(report, k) for k in REPORT_FIELDS}
    out["synops"] = report.effective_macs + report.effective_acs
    out["deployed_footprint_bytes"] = metrics.deployed_bits(model, sparse="auto") / 8
    out["deployed_dense_bytes"] = report.deployed_bits / 8
    bits = weight_bits(model)
    out["weight_bits"] = bits
    out["state_bits"] = state_bits(model)
    out["T"] = getattr(encoder, "T", None)
    priced = dict(energy.price_all(report))
    priced["memory"] = energy.price(counts, "memory")
    regime = regime_for_bits(max(bits, out["state_bits"]))
    if regime != "fp32":
        priced[f"45nm-{regime}"] = energy.price(report, f"45nm-{regime}")
    out["energy_pj"] = {name: float(p.total_pj) for name, p in priced.items()}
    out["energy_notes"] = {name: _note(p) for name, p in priced.items()}
    if bits < 32:
        key = f"memory-w{bits:g}"
        out["energy_pj"][key] = memory_at_bits(counts, bits, state_bits=out["state_bits"])
        out["energy_notes"][key] = (out["energy_notes"]["memory"].replace("prices ", "prices (weights read at "
                                                                          f"{bits:g} bits) ", 1))
    out = {k: _finite(v) for k, v in out.items()}
    if ann is not None:
        out.update(compare_ann(out, *ann, split, part, batch_size=batch_size))
    return out


@torch.no_grad()
def compare_ann(measured: dict, ann_model: nn.Module, ann_encoder: Encoder, split: Split, part: str = "test", *,
                batch_size: int = 250) -> dict:
    """The fields `measure_all(..., ann=...)` adds, from the SNN's `measured` dict (what `measure_all`
    gave) and the ANN measured on the same part: `ann_accuracy`, `ann_regime`, `ann_energy_pj` and
    `ann_ratio` (see the module docstring)."""
    x, y = _part(split, part)
    report, counts = _counts(ann_model, ann_encoder, x, y, batch_size)
    bits = float(measured["weight_bits"])
    # the SNN's adds run in the format holding its weights and potentials; the ANN is priced in the same
    # format (an ANN quantised to the same width), and at FP32
    regime = regime_for_bits(max(bits, float(measured.get("state_bits", 32.0))))
    snn = measured["energy_pj"]
    ann_pj, ratio = {}, {}
    for r in dict.fromkeys(("fp32", regime)):
        for accounting, skip in (("dense", False), ("zero-skipping", True)):
            k = f"45nm-{r}-{accounting}"
            ann_pj[k] = float(energy.ann_energy(report, r, skip_zeros=skip).total_pj)
            ratio[k] = snn[f"45nm-{r}"] / ann_pj[k] if ann_pj[k] else None
    ann_pj["memory"] = float(energy.price(counts, "memory").total_pj)
    ratio["memory"] = snn["memory"] / ann_pj["memory"] if ann_pj["memory"] else None
    if bits < 32:
        k = f"memory-w{bits:g}"
        ann_pj[k] = memory_at_bits(counts, bits, activation_bits=bits)
        ratio[k] = snn[k] / ann_pj[k] if ann_pj[k] else None
    return {"ann_accuracy": report.accuracy, "ann_regime": regime, "ann_energy_pj": ann_pj, "ann_ratio": ratio}
