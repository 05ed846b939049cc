r"""Energy under published chip profiles: one network's operation counts priced by several chips.

Published energy models disagree by orders of magnitude on the same network, so one figure from one
model says little. A **profile** holds what a source publishes per operation: energy per synaptic
operation, per neuron update (active / idle), per spike sent or router hop, per memory access, each
`None` where the source gives nothing (never zero), with its **scope** (`per-term`: the terms add up;
`all-in`: the figure already contains everything else, as TrueNorth's 26 pJ per synaptic event
[@merolla2014million]), its **evidence** (measured silicon, pre-silicon simulation, derived), the
process node and voltage, how we read the figure (`confirmed`: in the source, its abstract, or a
verbatim quotation elsewhere) and the source (bib key, table, page).

Profiles live in `chips.toml`, checked when loaded: a profile without a source, with a negative
energy, an unknown field or scope is rejected with an error that names the profile and the field.

`price(report, profile)` (reached through `energy.price(report, "<profile>")`) prices a `metrics.Report`:

$$E = e_{syn}\,(\#AC + \#MAC') + e_{upd}\,\#\mathrm{active} + e_{idle}\,\#\mathrm{idle} + e_{spike}\,\#\mathrm{spikes}$$

with each term present only where the profile gives its energy; the result lists what it prices
(`priced`) and every term it leaves out (`not_priced`), never counting a missing term as free.

* $\#MAC'$: on a neuromorphic chip that publishes no multiply energy, an analog-input MAC (the first
  layer under direct encoding) is priced as one synaptic operation, an assumption in the chip's favour
  that `Priced.macs_as_synops` flags.
* Neuron updates: `Report.active_neuron_updates` counts a neuron in a step as **active** when its input
  current is non-zero or it spikes in that step; every other update is **idle** (leak only). A profile
  with an idle figure prices the two apart (Loihi: 81 pJ active, 52 pJ idle [@davies2018loihi]); one
  with a single figure prices every update at it. A bias or batch-norm shift makes the input current
  non-zero, so on our conv models almost every update counts as active, the dearer reading.
* Spikes: each emitted spike is priced as one within-core (within-tile) spike; router hops between
  cores need a placement of the network on cores that we do not model, so they are listed as not
  priced even where the source gives them, and the spike term is a lower bound.
* Under an all-in profile only the synaptic term is priced: its figure already holds neuron updates,
  routing, memory and static power at its operating point, so nothing is added on top.
* Memory accesses and static or leakage power are never priced here (a `Report` holds no access counts;
  see `energy.memory`).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..metrics import Report
from .priced import Priced

__all__ = ["Profile", "ProfileError", "ENERGY_FIELDS", "load", "profiles", "get", "price"]

ENERGY_FIELDS = ("e_synop", "e_mac", "e_neuron_update", "e_neuron_idle", "e_spike", "e_hop", "e_mem_access")
_TEXT_FIELDS = ("label", "node", "scope", "evidence", "confirmed")
SCOPES = ("per-term", "all-in")
EVIDENCE = ("measured", "simulated", "derived")
CONFIRMED = ("primary", "abstract", "quoted")
DATA = Path(__file__).with_name("chips.toml")


class ProfileError(ValueError):
    """A profile file entry that cannot be used; the message names the file, the profile and the field."""


@dataclass(frozen=True)
class Profile:
    """Energies in picojoules per operation (`None`: not published) and where they come from."""

    name: str
    label: str
    node: str
    scope: str
    evidence: str
    confirmed: str
    source: dict
    voltage: float | None = None
    e_synop: float | None = None
    e_mac: float | None = None
    e_neuron_update: float | None = None
    e_neuron_idle: float | None = None
    e_spike: float | None = None
    e_hop: float | None = None
    e_mem_access: float | None = None

    @property
    def published(self) -> bool:
        """Whether the source gives a per-synaptic-operation energy at all."""
        return self.e_synop is not None

    def cite(self) -> str:
        s = self.source
        return f"[@{s['key']}], {s['where']}" if s.get("key") else s["note"]


def _check(name: str, entry: dict, where: str) -> Profile:
    def bad(fieldname: str, problem: str) -> ProfileError:
        return ProfileError(f"{where}: profile {name!r}, field {fieldname!r}: {problem}")

    known = set(ENERGY_FIELDS) | set(_TEXT_FIELDS) | {"voltage", "source"}
    for k in entry:
        if k not in known:
            raise bad(k, f"unknown field; known fields: {', '.join(sorted(known))}")
    for k in _TEXT_FIELDS:
        if not isinstance(entry.get(k), str) or not entry[k]:
            raise bad(k, "missing (a non-empty string is required)")
    for k, allowed in (("scope", SCOPES), ("evidence", EVIDENCE), ("confirmed", CONFIRMED)):
        if entry[k] not in allowed:
            raise bad(k, f"{entry[k]!r} is not one of {', '.join(allowed)}")
    for k in (*ENERGY_FIELDS, "voltage"):
        v = entry.get(k)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0):
            raise bad(k, f"{v!r} is not a non-negative number of {'volts' if k == 'voltage' else 'picojoules'}")
    src = entry.get("source")
    if not isinstance(src, dict) or not (src.get("key") or src.get("note")):
        raise bad("source", "missing: give {key = <bib key>, where = <table / page>} or a note saying why none")
    if any(entry.get(k) is not None for k in ENERGY_FIELDS) and not (src.get("key") and src.get("where")):
        raise bad("source", "a profile with energies needs the bib key and where in the source (table, page)")
    if entry["scope"] == "all-in" and any(entry.get(k) is not None for k in ENERGY_FIELDS if k != "e_synop"):
        raise bad("scope", "an all-in profile holds one figure (e_synop); other terms are inside it")
    return Profile(name=name, **{k: entry.get(k) for k in (*_TEXT_FIELDS, "voltage", *ENERGY_FIELDS)},
                   source=dict(src))


def load(path: str | Path = DATA) -> dict[str, Profile]:
    """Read and check a profile file (TOML, one table per profile)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{path}: not valid TOML: {e}") from e
    return {name: _check(name, entry, str(path)) for name, entry in raw.items()}


@lru_cache(maxsize=1)
def profiles() -> dict[str, Profile]:
    """The profiles shipped in `chips.toml`."""
    return load(DATA)


def get(name: str) -> Profile:
    """One shipped profile by name; an unknown name lists the known ones."""
    known = profiles()
    if name not in known:
        raise KeyError(f"unknown chip profile {name!r}; known profiles: {', '.join(known)}")
    return known[name]


def _idle_updates(report: Report) -> float:
    return max(report.neuron_updates - report.active_neuron_updates, 0.0)


def price(report: Report, profile: Profile | str) -> Priced | None:
    """Price `report` (from `metrics.measure`) under `profile`; `None` for a chip with no published
    per-synaptic-operation energy (use `energy.price`, which names the model in its error)."""
    p = get(profile) if isinstance(profile, str) else profile
    if not p.published:
        return None
    macs, acs = report.effective_macs, report.effective_acs
    as_synops = p.e_mac is None and macs > 0
    terms = {"synaptic": acs * p.e_synop + macs * (p.e_synop if p.e_mac is None else p.e_mac)}
    priced = [f"synaptic operations at {p.e_synop:g} pJ" + (f", MACs at {p.e_mac:g} pJ" if p.e_mac is not None
                                                            else " (analog-input MACs as synaptic operations)")]
    notes = ["analog-input MACs priced as one synaptic operation each (no multiply figure published)"] if as_synops else []
    not_priced: list[str] = []
    if p.scope == "all-in":
        priced[0] = (f"everything, as {p.e_synop:g} pJ per synaptic event at the source's operating point "
                     "(neuron updates, routing, memory and static power are inside the figure)")
        return Priced(p.name, p.label, terms, tuple(priced), (), p.scope, p.evidence, tuple(notes), as_synops)
    if p.e_neuron_update is None:
        not_priced.append("neuron updates (no figure published or confirmed)")
    elif p.e_neuron_idle is None:
        terms["neuron_updates"] = p.e_neuron_update * report.neuron_updates
        priced.append(f"neuron updates at {p.e_neuron_update:g} pJ each")
    else:
        terms["neuron_updates_active"] = p.e_neuron_update * report.active_neuron_updates
        terms["neuron_updates_idle"] = p.e_neuron_idle * _idle_updates(report)
        priced.append(f"neuron updates: {p.e_neuron_update:g} pJ active (input or spike in the step), "
                      f"{p.e_neuron_idle:g} pJ idle")
    if p.e_spike is None:
        not_priced.append("spikes sent (no figure published or confirmed)")
    else:
        terms["spikes"] = p.e_spike * report.spikes_per_sample
        priced.append(f"spikes, each as one within-core spike at {p.e_spike:g} pJ")
    not_priced.append("router hops between cores (needs a placement on cores"
                      + (f"; from {p.e_hop:g} pJ per hop published)" if p.e_hop is not None else "; no figure published or confirmed)"))
    not_priced.append("memory accesses" + (" (a Report holds no access counts)" if p.e_mem_access is not None
                                           else " (no figure published or confirmed)"))
    not_priced.append("static and leakage power")
    return Priced(p.name, p.label, terms, tuple(priced), tuple(not_priced), p.scope, p.evidence, tuple(notes),
                  as_synops)
