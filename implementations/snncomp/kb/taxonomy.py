"""The knowledge base as one object: the taxonomy tree, the paper cards, the bibliography and the
registered implementations, joined.

Sources, each holding its facts once:

* `taxonomy.yaml`: sections and families;
* `papers/<key>.md`: one card per method paper (YAML front matter + a short text), attached to a
  family by its `taxonomy:` field;
* `references.bib`: every citation;
* `snncomp.registry`: the implementations, attached to papers through the keys they cite (read from
  the sources by `registry.declared()`, so loading the knowledge base imports no torch; `validate`
  checks them against the live registry).

`Knowledge.load()` reads them and checks that they fit together; `validate` reports every mismatch.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml
from bibtexparser.model import Entry

from snncomp import registry

from . import bib

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's safe loader when PyYAML has it: ~10x faster


def load_yaml(text: str):
    """`yaml.safe_load(text)`, through libyaml when available (the cards' front matter is read at every
    site rebuild)."""
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader

__all__ = ["root", "Family", "Section", "Card", "Knowledge", "CARD_FIELDS", "parse_card", "CardError"]

CARD_FIELDS = ("key", "title", "method", "taxonomy", "year", "venue", "datasets", "reported", "code", "snncomp")


def root() -> Path:
    """The project root (the folder holding `references.bib`); `SNNCOMP_ROOT` overrides it."""
    env = os.environ.get("SNNCOMP_ROOT")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "references.bib").exists() and (parent / "taxonomy.yaml").exists():
            return parent
    raise FileNotFoundError("cannot find the snncomp project root (references.bib); set SNNCOMP_ROOT")


@dataclass(frozen=True)
class Family:
    id: str
    title: str
    summary: str
    added: bool
    section: str

    @property
    def path(self) -> str:
        return f"{self.section}/{self.id}"


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    summary: str
    page: str
    notebook: str | None
    survey_section: str
    families: tuple[Family, ...]


class CardError(ValueError):
    """A paper card that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class Card:
    key: str
    title: str
    method: str
    taxonomy: str
    year: int
    venue: str
    datasets: tuple[str, ...]
    reported: tuple[dict, ...]
    code: str
    snncomp: str
    body: str
    path: str

    @property
    def section(self) -> str:
        return self.taxonomy.split("/")[0]

    @property
    def family(self) -> str:
        return self.taxonomy.split("/")[-1]

    @property
    def objects(self) -> list[str]:
        """The snncomp objects (`snncomp.x.y`) the card's `snncomp:` field names."""
        return re.findall(r"snncomp(?:\.\w+)+", self.snncomp)


_FRONT = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.S)


def parse_card(path: Path) -> Card:
    """Read one card; raises `CardError` naming the file for a missing field or bad front matter."""
    text = path.read_text(encoding="utf-8")
    m = _FRONT.match(text)
    if not m:
        raise CardError(f"{path}: no YAML front matter between '---' lines")
    try:
        meta = load_yaml(m.group(1)) or {}
    except yaml.YAMLError as exc:
        raise CardError(f"{path}: front matter is not valid YAML: {exc}") from None
    missing = [f for f in CARD_FIELDS if f not in meta]
    if missing:
        raise CardError(f"{path}: missing front-matter field(s): {', '.join(missing)}")
    if meta["key"] != path.stem:
        raise CardError(f"{path}: key {meta['key']!r} does not match the file name")
    return Card(
        key=meta["key"], title=str(meta["title"]), method=str(meta["method"]), taxonomy=str(meta["taxonomy"]),
        year=int(meta["year"]), venue=str(meta["venue"]), datasets=tuple(map(str, meta["datasets"] or ())),
        reported=tuple(meta["reported"] or ()), code=str(meta["code"]), snncomp=str(meta["snncomp"]),
        body=m.group(2).strip(), path=str(path),
    )


@dataclass
class Knowledge:
    """Everything the site, the command line and the validators need, loaded once."""

    base: Path
    sections: tuple[Section, ...]
    survey_key: str
    entries: dict[str, Entry]
    cards: dict[str, Card] = field(default_factory=dict)

    @classmethod
    def load(cls, base: Path | None = None) -> "Knowledge":
        base = Path(base) if base else root()
        tree = load_yaml((base / "taxonomy.yaml").read_text(encoding="utf-8"))
        sections = tuple(
            Section(
                id=s["id"], title=s["title"], summary=s["summary"], page=s["page"], notebook=s.get("notebook"),
                survey_section=str(s.get("survey_section", "")),
                families=tuple(Family(f["id"], f["title"], f["summary"], bool(f.get("added", False)), s["id"])
                               for f in s["families"]),
            )
            for s in tree["sections"]
        )
        entries = bib.load(base / "references.bib")
        cards = {}
        for p in sorted((base / "papers").glob("*.md")):
            c = parse_card(p)
            cards[c.key] = c
        return cls(base, sections, tree["survey"], entries, cards)

    # ---- lookups
    @cached_property
    def methods(self) -> list[registry.Declared]:
        """The registered methods as their sources declare them, read once (no module is imported)."""
        return registry.declared()

    @cached_property
    def families(self) -> dict[str, Family]:
        return {f.path: f for s in self.sections for f in s.families}

    def section(self, sid: str) -> Section:
        for s in self.sections:
            if s.id == sid:
                return s
        raise KeyError(f"unknown section {sid!r}; sections: {', '.join(s.id for s in self.sections)}")

    def implementations(self, key: str) -> list[registry.Declared]:
        """Registered methods that cite `key` (as their sources declare them; no module is imported)."""
        return [m for m in self.methods if key in m.keys]

    def rows(self, section: str | None = None, implemented: bool | None = None) -> list[dict]:
        """One row per paper card, in taxonomy order: the method index."""
        order = {f: i for i, f in enumerate(self.families)}
        out = []
        for c in sorted(self.cards.values(), key=lambda c: (order.get(c.taxonomy, 999), c.year, c.key)):
            if section and c.section != section:
                continue
            impls = self.implementations(c.key)
            names = [m.name for m in impls]
            if not names and c.snncomp.lower().startswith("implemented"):
                names = c.objects  # implemented outside the registry
            if implemented is not None and bool(names) != implemented:
                continue
            sec = next((s for s in self.sections if s.id == c.section), None)
            out.append({
                "method": c.method, "key": c.key, "section": c.section, "family": c.family,
                "taxonomy": c.taxonomy, "year": c.year, "venue": c.venue,
                "implemented": ", ".join(names),
                "notebook": sec.notebook if (sec and names) else "",
                "title": c.title,
            })
        return out

    def search(self, words: str) -> list[dict]:
        """Rows of cards and bib entries whose text contains every word (case-insensitive)."""
        terms = [w.lower() for w in words.split() if w]
        hits = []
        for key, e in self.entries.items():
            card = self.cards.get(key)
            text = " ".join([key, bib.field(e, "title"), bib.field(e, "author"), bib.venue(e)] +
                            ([card.method, card.taxonomy, card.body] if card else []) +
                            [m.name + " " + m.summary for m in self.implementations(key)]).lower()
            if all(t in text for t in terms):
                hits.append({"key": key, "method": card.method if card else "", "taxonomy": card.taxonomy if card else "",
                             "title": bib.field(e, "title"), "year": bib.field(e, "year")})
        return hits

    def resolve(self, key_or_method: str) -> list[str]:
        """Bib keys for a bib key, a card's method name or a registered method name."""
        if key_or_method in self.entries:
            return [key_or_method]
        low = key_or_method.lower()
        for m in self.methods:
            if m.name.lower() == low:
                return list(m.keys)
        keys = [c.key for c in self.cards.values() if c.method.lower() == low]
        if keys:
            return keys
        return []

    def closest(self, word: str, n: int = 5) -> list[str]:
        import difflib

        pool = list(self.entries) + [c.method for c in self.cards.values()] + [m.name for m in self.methods]
        return difflib.get_close_matches(word, pool, n=n, cutoff=0.4) or difflib.get_close_matches(
            word.lower(), [p.lower() for p in pool], n=n, cutoff=0.2)


# ----------------------------------------------------------------------------- validation

CITING_GLOBS = ("docs/**/*.md", "papers/*.md", "implementations/**/*.py", "notebooks/*.py", "benchmarks/*.py",
                "hooks/*.py", "README.md")


def citations(base: Path) -> dict[str, list[str]]:
    """Every `[@key]` cited in pages, cards, docstrings, notebooks and benchmarks: key -> places."""
    found: dict[str, list[str]] = {}
    for pattern in CITING_GLOBS:
        for p in sorted(base.glob(pattern)):
            if "assets" in p.parts:
                continue
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                for key in bib.cite_keys(line):
                    found.setdefault(key, []).append(f"{p.relative_to(base)}:{n}")
    return found


def _resolves(dotted: str) -> bool:
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def validate(k: Knowledge) -> list[str]:
    """Every mismatch between the bibliography, the cards, the taxonomy, the registry and the
    citations in the project (an empty list when they fit together)."""
    out: list[str] = []
    for c in k.cards.values():
        if c.key not in k.entries:
            out.append(f"{c.path}: card key {c.key!r} is not in references.bib")
        if c.taxonomy not in k.families:
            out.append(f"{c.path}: taxonomy {c.taxonomy!r} is not a family in taxonomy.yaml")
        impls = k.implementations(c.key)
        says_not = c.snncomp.lower().startswith("not implemented")
        if impls and says_not:
            out.append(f"{c.path}: says 'not implemented' but {', '.join(m.name for m in impls)} cite it")
        if not impls and not says_not:
            targets = c.objects
            if not targets:
                out.append(f"{c.path}: no registered method cites it and `snncomp:` names no snncomp object, "
                           "so it must start with 'not implemented'")
            for t in targets:
                if not _resolves(t):
                    out.append(f"{c.path}: `snncomp:` names {t!r}, which does not exist")
    live = {(m.name, m.kind, m.taxonomy, m.keys, m.qualname, m.summary) for m in registry.methods()}
    read = {(m.name, m.kind, m.taxonomy, m.keys, m.qualname, m.summary) for m in registry.declared()}
    for m in sorted(live ^ read):
        out.append(f"registry: method {m[0]!r} ({m[4]}) is {'registered but not read' if m in live else 'read but not registered'} "
                   "by registry.declared(); write its register(...) arguments as literals")
    for m in registry.methods():
        if m.taxonomy not in k.families:
            out.append(f"registry: method {m.name!r} has taxonomy {m.taxonomy!r}, not a family in taxonomy.yaml")
        for key in m.keys:
            if key not in k.entries:
                out.append(f"registry: method {m.name!r} cites unknown key {key!r}")
        if not any(key in k.cards for key in m.keys):
            out.append(f"registry: method {m.name!r} cites no key that has a card in papers/")
    cited = citations(k.base)
    if k.survey_key not in k.entries:
        out.append(f"taxonomy.yaml: survey key {k.survey_key!r} is not in references.bib")
    for key, places in sorted(cited.items()):
        if key not in k.entries:
            out.append(f"{places[0]}: cites unknown key {key!r}")
    used = set(cited) | set(k.cards) | {key for m in registry.methods() for key in m.keys} | {k.survey_key}
    for key in sorted(set(k.entries) - used):
        out.append(f"references.bib:{k.entries[key].start_line + 1}: entry {key!r} is cited nowhere")
    return out
