r"""The 45 nm compute model: operation counts priced by per-operation energies.

The estimate multiplies operation counts by per-operation energies that Horowitz gives for a 45 nm
process at 0.9 V [@horowitz2014computings], estimates for that process rather than measurements of one
chip (`HOROWITZ_45NM`, the one table of these figures in the package; `energy.memory` reads its integer
add and multiply from it too):

$$E_{ANN} = E_{MAC} \cdot \#\mathrm{MAC}, \qquad
  E_{SNN} = E_{MAC} \cdot \#\mathrm{MAC}_{eff} + E_{AC} \cdot \#\mathrm{AC}_{eff}$$

where the SNN's MACs come from layers with analog (non-spike) input, in our models the first
layer under direct encoding, and its ACs from layers fed by spikes (`metrics.measure` gives both).

**Two accountings for the ANN.** The SNN above is charged only its *effective* operations (zero
inputs and zero weights skipped). Charging the ANN every *dense* MAC (`ann_energy(r)`) assumes the
SNN's hardware skips zeros and the ANN's does not; `ann_energy(r, skip_zeros=True)` charges the ANN
its effective operations too (the zeros of its ReLUs skipped), which compares like with like.

**Neuron state updates.** A spiking neuron updates its membrane at every step whether or not it
spikes; `metrics.Report.neuron_updates` counts one update per neuron per step. `estimate` prices
them under two stated assumptions and keeps them out of `total_pj`, so existing callers see the
synaptic estimate unchanged: `update_mac_pj` charges each update one MAC (a multiply for the leak
$\beta V$ plus the add of the input), `update_ac_pj` one AC (an add only: leak by a shift, or no
leak as in IF). `Energy.with_updates_pj("mac" | "ac")` gives the total with them. `compare` puts
an SNN and its ANN side by side under every combination of these assumptions.

**Scope.** This is compute only: it leaves out memory reads and writes (often the larger share
[@lemaire2022analytical]), threshold comparisons and resets, spike routing and addressing, the ANN's
activation functions, and any cost of sparsity bookkeeping. Published estimates differ in whether the
first layer's MACs are multiplied by $T$; with direct input our models run the first layer once (see
`models`). So the numbers rank designs under one stated model; they are not joules on a chip. An SNN
can cost *more* than its ANN under this very model when it fires densely, runs many steps, or keeps
non-spiking paths that still multiply [@bhattacharjee2023snns]; the energy page shows such a case
measured here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..metrics import Report
from .priced import Priced

__all__ = ["HOROWITZ_45NM", "EVIDENCE", "OpEnergy", "REGIMES", "Energy", "estimate", "ann_energy", "Comparison",
           "compare", "price"]

# Energy per operation in pJ, 45 nm at 0.9 V [@horowitz2014computings]: (add, multiply) per number format.
HOROWITZ_45NM: dict[str, tuple[float, float]] = {
    "fp32": (0.9, 3.7),
    "fp16": (0.4, 1.1),
    "int32": (0.1, 3.1),
    "int8": (0.03, 0.2),
}
EVIDENCE = "estimated (45 nm process figures)"  # the one label of these figures everywhere
LABEL = "45 nm CMOS, per operation (Horowitz 2014), {regime}"


@dataclass(frozen=True)
class OpEnergy:
    """Energy per operation in picojoules."""

    mac_pj: float
    ac_pj: float


# a MAC is a multiply plus an add of the same format, an AC an add
REGIMES: dict[str, OpEnergy] = {k: OpEnergy(mac_pj=round(mul + add, 6), ac_pj=add) for k, (add, mul) in HOROWITZ_45NM.items()}

UPDATE_PRICES = ("mac", "ac")


@dataclass(frozen=True)
class Energy:
    """Estimated compute energy per sample in picojoules, split by operation type.

    `mac_pj + ac_pj` (`total_pj`) is the synaptic estimate. `neuron_updates` (per sample) and their
    price as MACs (`update_mac_pj`) or as ACs (`update_ac_pj`) are kept apart; they are zero for an ANN.
    """

    mac_pj: float
    ac_pj: float
    regime: str
    neuron_updates: float = 0.0
    update_mac_pj: float = 0.0
    update_ac_pj: float = 0.0

    @property
    def total_pj(self) -> float:
        return self.mac_pj + self.ac_pj

    @property
    def total_uj(self) -> float:
        return self.total_pj * 1e-6

    def with_updates_pj(self, price: str = "mac") -> float:
        """Synaptic estimate plus the neuron updates, each priced as one MAC (`"mac"`) or one AC (`"ac"`)."""
        if price not in UPDATE_PRICES:
            raise ValueError(f"price must be 'mac' or 'ac', got {price!r}")
        return self.total_pj + (self.update_mac_pj if price == "mac" else self.update_ac_pj)


def _regime(regime: str) -> OpEnergy:
    if regime not in REGIMES:
        raise KeyError(f"unknown energy regime {regime!r}; choose one of {', '.join(REGIMES)}")
    return REGIMES[regime]


def estimate(report: Report, regime: str = "fp32") -> Energy:
    """SNN-style estimate: effective MACs at the MAC cost plus effective ACs at the AC cost, and the
    neuron updates priced apart (see `Energy`)."""
    e = _regime(regime)
    n = report.neuron_updates
    return Energy(mac_pj=report.effective_macs * e.mac_pj, ac_pj=report.effective_acs * e.ac_pj, regime=regime,
                  neuron_updates=n, update_mac_pj=n * e.mac_pj, update_ac_pj=n * e.ac_pj)


def ann_energy(report: Report, regime: str = "fp32", *, skip_zeros: bool = False) -> Energy:
    """ANN-style estimate: every dense synaptic operation is a MAC (hardware that does not skip zeros),
    or with `skip_zeros` only the effective ones (zero activations, e.g. ReLU outputs, and zero weights
    skipped), all priced as MACs since an ANN multiplies whatever its input."""
    e = _regime(regime)
    ops = report.effective_macs + report.effective_acs if skip_zeros else report.dense_synops
    return Energy(mac_pj=ops * e.mac_pj, ac_pj=0.0, regime=regime)


@dataclass(frozen=True)
class Comparison:
    """An SNN's and its ANN's estimates under one regime, per sample in picojoules."""

    regime: str
    snn_synaptic_pj: float
    snn_update_mac_pj: float
    snn_update_ac_pj: float
    ann_dense_pj: float
    ann_zero_skipping_pj: float

    def snn_pj(self, updates: str | None = None) -> float:
        """The SNN's estimate: synaptic only (`None`), or with neuron updates priced as `"mac"` or `"ac"`."""
        if updates is None:
            return self.snn_synaptic_pj
        if updates not in UPDATE_PRICES:
            raise ValueError(f"updates must be None, 'mac' or 'ac', got {updates!r}")
        return self.snn_synaptic_pj + (self.snn_update_mac_pj if updates == "mac" else self.snn_update_ac_pj)

    def ann_pj(self, accounting: str = "dense") -> float:
        """The ANN's estimate under `"dense"` or `"zero_skipping"` accounting."""
        if accounting not in ("dense", "zero_skipping"):
            raise ValueError(f"accounting must be 'dense' or 'zero_skipping', got {accounting!r}")
        return self.ann_dense_pj if accounting == "dense" else self.ann_zero_skipping_pj

    def ratio(self, updates: str | None = None, accounting: str = "dense") -> float:
        """$E_{SNN} / E_{ANN}$ under the stated assumptions (below 1: the SNN is cheaper)."""
        return self.snn_pj(updates) / self.ann_pj(accounting)

    def ratios(self) -> dict[tuple[str, str], float]:
        """Every ratio: `{(SNN updates: "none" | "mac" | "ac", ANN accounting): E_SNN / E_ANN}`."""
        return {(u or "none", a): self.ratio(u, a) for u in (None, "mac", "ac") for a in ("dense", "zero_skipping")}


def compare(snn: Report, ann: Report, regime: str = "fp32") -> Comparison:
    """Estimate an SNN (`snn`, from `metrics.measure`) against its ANN (`ann`) under `regime`."""
    s = estimate(snn, regime)
    return Comparison(regime=regime, snn_synaptic_pj=s.total_pj, snn_update_mac_pj=s.update_mac_pj,
                      snn_update_ac_pj=s.update_ac_pj, ann_dense_pj=ann_energy(ann, regime).total_pj,
                      ann_zero_skipping_pj=ann_energy(ann, regime, skip_zeros=True).total_pj)


NOT_PRICED = ("neuron state updates (`estimate` reports them apart, priced as one MAC or one AC each)",
              "memory reads and writes (see the memory model)", "threshold comparisons and resets",
              "spike routing and addressing", "static and leakage power")


def price(report: Report, regime: str = "fp32") -> Priced:
    """`report` under the 45 nm model as an `energy.Priced` (what `energy.price(report, "45nm-<regime>")`
    returns): effective MACs and ACs priced, the rest listed as not priced."""
    e = estimate(report, regime)
    return Priced(model=f"45nm-{regime}", label=LABEL.format(regime=regime),
                  terms={"synaptic_macs": e.mac_pj, "synaptic_acs": e.ac_pj},
                  priced=(f"effective MACs (analog-input layers) at {REGIMES[regime].mac_pj:g} pJ",
                          f"effective ACs (spike-fed layers) at {REGIMES[regime].ac_pj:g} pJ"),
                  not_priced=NOT_PRICED, scope="per-term", evidence=EVIDENCE)
