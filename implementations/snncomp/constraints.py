"""What a model carries and what methods declare: the constraints in force on a model (`constraints`,
`broken`) and every method's chain declarations (`declarations`, `declarations_table`).

`snncomp.chain` re-exports these four; the constraint names and what each means are listed there.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from . import registry
from .registry import CONSTRAINTS

__all__ = ["constraints", "broken", "declarations", "declarations_table"]


def declarations() -> list[dict]:
    """Every transform's and objective's chain declarations, one dict each (for the docs table)."""
    rows = []
    for m in registry.methods():
        if m.kind == "measure":
            continue
        rows.append({"method": m.name, "kind": m.kind, "requires": dict(m.requires), "leaves": m.leaves,
                     "keeps": m.keeps if m.keeps == "all" else tuple(m.keeps),
                     "drops": () if m.keeps == "all" else tuple(c for c in CONSTRAINTS if c not in m.keeps),
                     "changes": m.changes, "freezes_by_default": m.freezes_by_default})
    return rows


def declarations_table() -> str:
    """`declarations()` as a Markdown table (the one on the docs page `pipeline.md`, kept equal by a test)."""
    def cell(items) -> str:
        return ", ".join(f"`{x}`" for x in items) or "-"

    lines = ["| method | kind | requires | leaves | drops (refused after) | changes |", "|---|---|---|---|---|---|"]
    for r in declarations():
        req = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["requires"].items()) or "-"
        lines.append(f"| `{r['method']}` | {r['kind']} | {req} | {cell(r['leaves'])} | {cell(r['drops'])} | "
                     f"{cell(r['changes'])} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- what a model carries


def constraints(model: nn.Module) -> dict[str, object]:
    """The constraints `model` carries now, only those present: `"mask"` ({layer: mask}), `"weight-grid"`
    ({"<module>.<tensor>": quantizer}), `"membrane-grid"` ({neuron name: quantizer}), `"trained-threshold"`
    (names of the neurons whose threshold is a parameter), `"attention"` (names of the attention modules)
    and `"early-exit"` (names of the wrappers)."""
    from .metrics import weight_layers
    from .neurons import SpikingNeuron
    from .pruning.masks import masks_of
    from .quantization.quantizers import quantizers_of
    from .spike_reduction.dynamic_inference import EarlyExit
    from .spike_reduction.rate import TemporalAttention

    out: dict[str, object] = {}
    layers = weight_layers(model)
    masks = masks_of(layers) if layers else None
    if masks is not None:
        out["mask"] = masks
    grids = quantizers_of(model)
    if grids:
        out["weight-grid"] = grids
    neurons = {n: m for n, m in model.named_modules() if isinstance(m, SpikingNeuron)}
    membrane = {n: m.quantizer for n, m in neurons.items() if m.quantizer is not None}
    if membrane:
        out["membrane-grid"] = membrane
    learned = [n for n, m in neurons.items()
               if parametrize.is_parametrized(m, "threshold") or isinstance(m._parameters.get("threshold"), nn.Parameter)]
    if learned:
        out["trained-threshold"] = learned
    attention = [n for n, m in model.named_modules() if isinstance(m, TemporalAttention)]
    if attention:
        out["attention"] = attention
    exits = [n or "<model>" for n, m in model.named_modules() if isinstance(m, EarlyExit)]
    if exits:
        out["early-exit"] = exits
    return out


@torch.no_grad()
def _on_grid(q: nn.Module, w: torch.Tensor) -> bool:
    from .quantization.quantizers import FakeQuantize, fake_quantize

    if isinstance(q, FakeQuantize):  # the fixed grid it holds now (a min-max quantizer's last step)
        again = fake_quantize(w, q.scale, q.zero_point, q.qmin, q.qmax, 0 if q.per_channel else None)
    else:
        again = q(w)
    return torch.allclose(again, w, rtol=1e-5, atol=1e-6 * float(w.abs().max().clamp(min=1e-12)))


@torch.no_grad()
def broken(model: nn.Module) -> list[str]:
    """What of the constraints `model` carries is not in force (empty when all are): a masked weight that is
    not zero, a quantized tensor not on its quantizer's grid, a membrane quantizer on a neuron that does not
    apply it."""
    from .neurons import IF, LIF, PLIF

    out = []
    found = constraints(model)
    from .metrics import weight_layers

    layers = weight_layers(model)
    for n, m in found.get("mask", {}).items():
        if (layers[n].weight[m == 0] != 0).any():
            out.append(f"mask: {n} has non-zero pruned weights")
    modules = dict(model.named_modules())
    for key, q in found.get("weight-grid", {}).items():
        mname, _, tname = key.rpartition(".")
        w = getattr(modules[mname], tname)
        if not _on_grid(q, w):
            out.append(f"weight-grid: {key} is off its quantizer's grid")
    for n in found.get("membrane-grid", {}):
        if not isinstance(modules[n], (LIF, IF, PLIF)):
            out.append(f"membrane-grid: {n} ({type(modules[n]).__name__}) does not apply its membrane quantizer")
    return out
