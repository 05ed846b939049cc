r"""Energy models behind one call: `energy.price(counts, model)` gives an `energy.Priced`.

Three models, one per module, each pricing measured counts and saying what it prices and what it
leaves out (`Priced.priced`, `Priced.not_priced`):

| model name | module | counts it takes | what it is |
|---|---|---|---|
| `"45nm-fp32"`, `"45nm-fp16"`, `"45nm-int32"`, `"45nm-int8"` | `compute` | `metrics.Report` | effective MACs and ACs at Horowitz's 45 nm estimates [@horowitz2014computings] |
| a chip profile name (`"loihi"`, `"truenorth"`, `"odin"`, `"darwin3"`, ...) | `chips` (data in `chips.toml`) | `metrics.Report` | the per-operation figures a chip's source publishes |
| `"memory"` | `memory` | `memory.measure(model, x, encoder)` | the memory-inclusive analytical model of Lemaire et al. [@lemaire2022analytical] |

`price_all(report)` prices a report under the 45 nm FP32 model and every chip profile that publishes a
synaptic-operation figure. The 45 nm model's own API stays in `compute` and is re-exported here:
`estimate` (with the neuron updates priced apart), `ann_energy` (dense or zero-skipping accounting of
an ANN) and `compare` (an SNN against its ANN under every pairing of those assumptions).
"""

from __future__ import annotations

from ..metrics import Report
from . import chips, compute, memory
from .compute import HOROWITZ_45NM, REGIMES, Comparison, Energy, OpEnergy, ann_energy, compare, estimate
from .priced import Priced

__all__ = ["Priced", "price", "price_all", "models", "HOROWITZ_45NM", "REGIMES", "OpEnergy", "Energy", "estimate",
           "ann_energy", "Comparison", "compare", "chips", "compute", "memory"]

_COMPUTE = {f"45nm-{r}": r for r in REGIMES}


def models() -> dict[str, str]:
    """Every model name `price` accepts, with its label (chip profiles without a published figure included)."""
    out = {name: compute.LABEL.format(regime=r) for name, r in _COMPUTE.items()}
    out.update({name: p.label for name, p in chips.profiles().items()})
    out["memory"] = memory.LABEL
    return out


def price(counts: Report | memory.MemoryEnergy, model: str = "45nm-fp32") -> Priced:
    """Energy per sample of `counts` under `model` (see the module docstring for the names): a
    `metrics.Report` for the 45 nm model and the chip profiles, `memory.measure`'s counts for `"memory"`."""
    if model == "memory":
        if not isinstance(counts, memory.MemoryEnergy):
            raise TypeError(f"energy.price(..., 'memory') needs the counts of energy.memory.measure, "
                            f"got {type(counts).__name__}")
        return memory.price(counts)
    if not isinstance(counts, Report):
        raise TypeError(f"energy.price(..., {model!r}) needs a metrics.Report, got {type(counts).__name__}")
    if model in _COMPUTE:
        return compute.price(counts, _COMPUTE[model])
    known = chips.profiles()
    if model not in known:
        raise KeyError(f"unknown energy model {model!r}; known models: {', '.join(models())}")
    priced = chips.price(counts, known[model])
    if priced is None:
        raise ValueError(f"energy model {model!r} ({known[model].label}) publishes no per-operation energy: "
                         f"{known[model].source.get('note', '')}")
    return priced


def price_all(report: Report) -> dict[str, Priced]:
    """`report` under the 45 nm FP32 model and every chip profile that publishes a synaptic-operation energy."""
    names = ["45nm-fp32", *(n for n, p in chips.profiles().items() if p.published)]
    return {n: price(report, n) for n in names}
