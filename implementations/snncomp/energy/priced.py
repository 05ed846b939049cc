"""The one result every energy model of `snncomp.energy` returns: energy per sample, term by term, with
what the figure prices and what it leaves out."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Priced"]


@dataclass(frozen=True)
class Priced:
    """Energy per sample in picojoules under one model, split by term.

    `priced` names what the terms cover and `not_priced` what the model leaves out (a term a source
    publishes no figure for, or one our counts cannot price), so no figure is read as more complete
    than it is. `scope` is `"per-term"` (the terms add up to a partial total, a lower bound of what a
    device spends) or `"all-in"` (one figure that already holds every cost at its source's operating
    point). `notes` states the assumptions the pricing made (e.g. analog-input MACs priced as
    synaptic operations on a chip that publishes no multiply energy, flagged by `macs_as_synops`)."""

    model: str
    label: str
    terms: dict[str, float] = field(default_factory=dict)
    priced: tuple[str, ...] = ()
    not_priced: tuple[str, ...] = ()
    scope: str = "per-term"
    evidence: str = ""
    notes: tuple[str, ...] = ()
    macs_as_synops: bool = False

    @property
    def total_pj(self) -> float:
        return sum(self.terms.values())

    @property
    def total_uj(self) -> float:
        return self.total_pj * 1e-6
