"""Compute-energy estimates from operation counts.

The estimate multiplies operation counts by per-operation energies measured for a 45 nm process
[@horowitz2014computings]:

$$E_{ANN} = E_{MAC} \\cdot \\#\\mathrm{MAC}, \\qquad
  E_{SNN} = E_{MAC} \\cdot \\#\\mathrm{MAC}_{eff} + E_{AC} \\cdot \\#\\mathrm{AC}_{eff}$$

where the SNN's MACs come from layers with analog (non-spike) input, in our models the first
layer under direct encoding, and its ACs from layers fed by spikes (`metrics.measure` gives both).

**Scope.** This is compute only: it leaves out memory reads and writes (often the larger share
[@lemaire2022analytical]), membrane-state updates, spike routing and addressing, and any cost of
sparsity bookkeeping. It assumes hardware that skips zero inputs and zero weights for free. Published
estimates differ in whether the first layer's MACs are multiplied by $T$; with direct input our
models run the first layer once (see `models`). So the numbers rank designs under one stated model;
they are not joules on a chip. An SNN can cost *more* than its ANN under this very model when it
fires densely, runs many steps, or keeps non-spiking paths that still multiply
[@bhattacharjee2023snns]; the energy page shows such a case measured here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .metrics import Report

__all__ = ["OpEnergy", "REGIMES", "Energy", "estimate", "ann_energy"]


@dataclass(frozen=True)
class OpEnergy:
    """Energy per operation in picojoules."""

    mac_pj: float
    ac_pj: float


# 45 nm, 0.9 V [@horowitz2014computings]: a MAC is a multiply plus an add of that format.
REGIMES: dict[str, OpEnergy] = {
    "fp32": OpEnergy(mac_pj=4.6, ac_pj=0.9),  # 3.7 pJ mult + 0.9 pJ add
    "fp16": OpEnergy(mac_pj=1.5, ac_pj=0.4),  # 1.1 pJ mult + 0.4 pJ add
    "int32": OpEnergy(mac_pj=3.2, ac_pj=0.1),  # 3.1 pJ mult + 0.1 pJ add
    "int8": OpEnergy(mac_pj=0.23, ac_pj=0.03),  # 0.2 pJ mult + 0.03 pJ add
}


@dataclass(frozen=True)
class Energy:
    """Estimated compute energy per sample in picojoules, split by operation type."""

    mac_pj: float
    ac_pj: float
    regime: str

    @property
    def total_pj(self) -> float:
        return self.mac_pj + self.ac_pj

    @property
    def total_uj(self) -> float:
        return self.total_pj * 1e-6


def _regime(regime: str) -> OpEnergy:
    if regime not in REGIMES:
        raise KeyError(f"unknown energy regime {regime!r}; choose one of {', '.join(REGIMES)}")
    return REGIMES[regime]


def estimate(report: Report, regime: str = "fp32") -> Energy:
    """SNN-style estimate: effective MACs at the MAC cost plus effective ACs at the AC cost."""
    e = _regime(regime)
    return Energy(mac_pj=report.effective_macs * e.mac_pj, ac_pj=report.effective_acs * e.ac_pj, regime=regime)


def ann_energy(report: Report, regime: str = "fp32", *, skip_zeros: bool = False) -> Energy:
    """ANN-style estimate: every dense synaptic operation is a MAC (or only the effective ones, when
    `skip_zeros`, for hardware that skips zero activations and weights)."""
    e = _regime(regime)
    ops = report.effective_macs + report.effective_acs if skip_zeros else report.dense_synops
    return Energy(mac_pj=ops * e.mac_pj, ac_pj=0.0, regime=regime)
