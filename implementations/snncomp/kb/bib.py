"""`references.bib`: loading, validating and formatting the project's single source of citations.

Parsing uses bibtexparser 2.x with its own middlewares: LaTeX is decoded to Unicode
(`LatexDecodingMiddleware`; identifiers such as `doi` and `url` are left verbatim) and name fields are
split into people and name parts (`SeparateCoAuthors`, `SplitNameParts`). bibtexparser does not raise
on bad input but collects failed blocks; `problems` turns every failed block, duplicate key, missing
field, malformed identifier and non-UTF-8 byte into a `Problem` naming the file, the line and, where
known, the entry's key, and `load` raises `BibError` listing them all.

Citations anywhere in the project (pages, cards, docstrings) are written `[@key]` or `[@key1; @key2]`.
"""

from __future__ import annotations

import logging
import pickle
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bibtexparser
from bibtexparser.library import Library
from bibtexparser.middlewares import LatexDecodingMiddleware, SeparateCoAuthors, SplitNameParts
from bibtexparser.middlewares.names import NameParts
from bibtexparser.model import (DuplicateBlockKeyBlock, Entry, Field, MiddlewareErrorBlock,
                                ParsingFailedBlock)

from snncomp.files import parsed

__all__ = ["Problem", "BibError", "REQUIRED", "VERBATIM", "problems", "load", "cite_keys", "CITE_RE", "field",
           "people", "authors", "short_cite", "venue", "format_text", "to_bibtex", "latex_to_text"]

REQUIRED: dict[str, tuple[str, ...]] = {
    "article": ("author", "title", "journal", "year"),
    "inproceedings": ("author", "title", "booktitle", "year"),
    "incollection": ("author", "title", "booktitle", "year"),
    "misc": ("author", "title", "year"),
    "book": ("title", "publisher", "year"),
    "phdthesis": ("author", "title", "school", "year"),
    "techreport": ("author", "title", "institution", "year"),
}
# identifiers: never LaTeX-decoded (a `%` in a URL is not a comment, a `~` not a space)
VERBATIM = ("doi", "eprint", "archiveprefix", "url")
DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
ARXIV_RE = re.compile(r"^(\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")
KEY_RE = re.compile(r"^[a-z][a-z0-9]*\d{4}[a-z0-9]+$")
CITE_KEY = r"[a-z][a-z0-9]*\d{4}[a-z0-9]*"
CITE_RE = re.compile(rf"\[@({CITE_KEY}(?:\s*;\s*@{CITE_KEY})*)\]")


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a bib file: where (file, line, key) and what."""

    path: str
    line: int
    key: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}"
        return f"{where}: entry {self.key!r}: {self.message}" if self.key else f"{where}: {self.message}"


class BibError(ValueError):
    """Raised by `load` when the file has problems; `.problems` lists them."""

    def __init__(self, found: list[Problem]):
        self.problems = found
        super().__init__(f"{len(found)} problem(s) in the bibliography:\n" + "\n".join(f"  {p}" for p in found))


# ----------------------------------------------------------------------------- parsing


class _DecodeLatex(LatexDecodingMiddleware):
    """bibtexparser's LaTeX decoding applied to every field except the identifiers in `VERBATIM`.

    Braced groups are kept (so `{Smith and Sons}` stays one name when names are split afterwards);
    the display functions drop the braces."""

    def __init__(self):
        super().__init__(keep_braced_groups=True)

    def transform_entry(self, entry: Entry, library: Library):
        order = [f.key for f in entry.fields]
        kept = [f for f in entry.fields if f.key.lower() in VERBATIM]
        entry.fields = [f for f in entry.fields if f.key.lower() not in VERBATIM]
        out = super().transform_entry(entry, library)
        block = out.block if isinstance(out, MiddlewareErrorBlock) else out
        by_key = {f.key: f for f in [*block.fields, *kept]}
        block.fields = [by_key[k] for k in order]
        return out


def _middlewares() -> list:
    # decode first (braces kept), then split "A and B" into people and each person into name parts
    return [_DecodeLatex(), SeparateCoAuthors(), SplitNameParts()]


def _read(path: Path) -> tuple[str, Problem | None]:
    """The file's text, or a problem naming the line of its first byte that is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return "", Problem(str(path), line, None,
                           f"not UTF-8: byte 0x{data[exc.start]:02x} at column {column}; save the file as UTF-8")


@contextmanager
def _quiet_parser() -> Iterator[list[logging.LogRecord]]:
    """While active, bibtexparser's log records (it logs every failed block) are collected instead of
    reaching the terminal: every failed block becomes a `Problem`, reported in our own words."""
    log = logging.getLogger("bibtexparser")
    records: list[logging.LogRecord] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, propagate = _Collect(), log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        yield records
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def _parse(path: Path) -> tuple[Library | None, list[Problem]]:
    text, bad = _read(path)
    if bad:
        return None, [bad]
    with _quiet_parser():
        return bibtexparser.parse_string(text, append_middleware=_middlewares()), []


def _blank(value: object) -> bool:
    return not value if isinstance(value, list) else not str(value).strip()


def _entry_problems(e: Entry, path: str) -> list[Problem]:
    out: list[Problem] = []
    line = e.start_line + 1
    fields = {k.lower(): v for k, v in e.fields_dict.items()}
    if not KEY_RE.match(e.key):
        out.append(Problem(path, line, e.key, "key does not follow the scheme <author><year><word> in lowercase"))
    required = REQUIRED.get(e.entry_type.lower())
    if required is None:
        out.append(Problem(path, line, e.key, f"unsupported entry type @{e.entry_type}"))
        required = ()
    if e.entry_type.lower() == "book" and "author" not in fields and "editor" not in fields:
        out.append(Problem(path, line, e.key, "missing field 'author' or 'editor'"))
    for f in required:
        if f not in fields or _blank(fields[f].value):
            out.append(Problem(path, line, e.key, f"missing required field '{f}' for @{e.entry_type}"))
    if "year" in fields and not re.fullmatch(r"\d{4}", str(fields["year"].value).strip()):
        out.append(Problem(path, line, e.key, f"year {fields['year'].value!r} is not four digits"))
    if not any(f in fields for f in ("doi", "eprint", "url")):
        out.append(Problem(path, line, e.key, "needs a 'doi', an arXiv 'eprint' or a 'url'"))
    if "doi" in fields:
        doi = str(fields["doi"].value).strip()
        if not DOI_RE.match(doi):
            out.append(Problem(path, fields["doi"].start_line + 1, e.key, f"malformed DOI {doi!r} (expected 10.NNNN/...)"))
    if "eprint" in fields:
        eprint = str(fields["eprint"].value).strip()
        prefix = str(fields["archiveprefix"].value).strip() if "archiveprefix" in fields else ""
        if prefix.lower() != "arxiv":
            out.append(Problem(path, line, e.key, "eprint given without archiveprefix = {arXiv}"))
        elif not ARXIV_RE.match(eprint):
            out.append(Problem(path, fields["eprint"].start_line + 1, e.key, f"malformed arXiv id {eprint!r}"))
    return out


def _problems(lib: Library, path: str) -> list[Problem]:
    out: list[Problem] = []
    first_seen = {e.key: e.start_line + 1 for e in lib.entries}
    for b in lib.failed_blocks:
        if isinstance(b, DuplicateBlockKeyBlock):
            prev = first_seen.get(b.key, b.previous_block.start_line + 1 if b.previous_block else 0)
            out.append(Problem(path, b.start_line + 1, b.key, f"duplicate key: also defined at line {prev}"))
        elif isinstance(b, ParsingFailedBlock):
            m = re.match(r"\s*@\w+\s*\{\s*([^,\s]+)", b.raw)
            err = (str(getattr(b, "error", "") or "").strip().splitlines() or ["unbalanced braces or a missing comma?"])[0]
            out.append(Problem(path, b.start_line + 1, m.group(1) if m else None, f"syntax error: {err}"))
        elif isinstance(b, MiddlewareErrorBlock):
            out.append(Problem(path, b.start_line + 1, getattr(b.block, "key", None), f"cannot decode: {b.error}"))
        else:
            out.append(Problem(path, b.start_line + 1, None, f"cannot parse block ({type(b).__name__})"))
    for e in lib.entries:
        out.extend(_entry_problems(e, path))
    out.sort(key=lambda p: p.line)
    if not lib.entries:  # said first: every other problem (and every card's key) follows from it
        what = "is empty" if not lib.blocks else "holds no parsable entry" if lib.failed_blocks else "holds no entry"
        out.insert(0, Problem(path, 1, None, f"no bibliography entries: the file {what} (expected @article{{...}}, "
                                             "@inproceedings{...} and the like)"))
    return out


def problems(path: str | Path) -> list[Problem]:
    """Every problem in the bib file at `path` (an empty list when it is clean)."""
    lib, found = _parse(Path(path))
    return found if lib is None else _problems(lib, str(path))


def load(path: str | Path) -> dict[str, Entry]:
    """Entries of a clean bib file by key; raises `BibError` listing every problem otherwise.

    Text fields are decoded to Unicode; `author` and `editor` are lists of `NameParts`. Each call returns
    new objects; the decoded entries are kept while the file is unchanged (`files.parsed`: decoding the
    LaTeX is most of a `mkdocs serve` rebuild's knowledge-base time otherwise)."""
    return pickle.loads(parsed(path, _pickled_entries))


def _pickled_entries(path: Path) -> bytes:
    lib, found = _parse(path)
    if lib is not None:
        found = _problems(lib, str(path))
    if found:
        raise BibError(found)
    return pickle.dumps({e.key: e for e in lib.entries})


def cite_keys(text: str) -> list[str]:
    """Keys cited as `[@key]` or `[@a; @b]` in `text`, in order of appearance."""
    keys: list[str] = []
    for group in CITE_RE.findall(text):
        keys.extend(k.strip().lstrip("@") for k in group.split(";"))
    return keys


# ----------------------------------------------------------------------------- formatting


def _plain(s: str) -> str:
    """Decoded text without the protective braces and with single spaces."""
    return re.sub(r"\s+", " ", s.replace("{", "").replace("}", "")).strip()


def latex_to_text(s: str) -> str:
    """Plain text of a LaTeX string, decoded the way `load` decodes a field."""
    lib = _DecodeLatex().transform(Library([Entry("misc", "x", [Field("text", s)])]))
    return _plain(str(lib.entries[0]["text"]))


def people(e: Entry) -> list[NameParts]:
    """The authors (or, for an edited book, the editors) as name parts."""
    for name in ("author", "editor"):
        f = e.fields_dict.get(name)
        if f is not None and f.value:
            return [p for p in f.value if isinstance(p, NameParts)]
    return []


def field(e: Entry, name: str, default: str = "") -> str:
    """A field as plain text; names come out as "Last, First and Last, First"."""
    f = e.fields_dict.get(name)
    if f is None:
        return default
    if isinstance(f.value, list):
        return _plain(" and ".join(p.merge_last_name_first if isinstance(p, NameParts) else str(p) for p in f.value))
    return _plain(str(f.value))


def authors(e: Entry) -> list[str]:
    """Author family names, "von" part included (or the editors', for edited books)."""
    return [_plain(" ".join(p.von + p.last)) for p in people(e)]


def short_cite(e: Entry) -> str:
    """"Chen et al., 2021" style label."""
    names = authors(e)
    year = field(e, "year")
    if not names:
        return f"{field(e, 'title')[:30]}, {year}"
    if len(names) == 1 or names[1] == "others":
        who = names[0] if len(names) == 1 else f"{names[0]} et al."
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {year}"


def venue(e: Entry) -> str:
    """Journal, booktitle, or arXiv id."""
    for name in ("journal", "booktitle", "publisher", "school", "institution"):
        if name in e.fields_dict:
            return field(e, name)
    if "eprint" in e.fields_dict:
        return f"arXiv:{field(e, 'eprint')}"
    return field(e, "howpublished")


def format_text(e: Entry) -> str:
    """A formatted reference: Authors (year). Title. Venue, volume(number), pages. doi/arXiv."""
    names = ["et al." if p.last == ["others"] and not p.first else _plain(p.merge_first_name_first) for p in people(e)]
    who = ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1] if names else ""
    who = who.replace(" and et al.", " et al.")
    parts = [f"{who} ({field(e, 'year')}). {field(e, 'title')}."]
    v = venue(e)
    extra = ""
    if "volume" in e.fields_dict:
        extra += f", {field(e, 'volume')}"
        if "number" in e.fields_dict:
            extra += f"({field(e, 'number')})"
    if "pages" in e.fields_dict:
        extra += f", {field(e, 'pages')}"
    if v:
        parts.append(f"{v}{extra}.")
    if "doi" in e.fields_dict:
        parts.append(f"doi:{field(e, 'doi')}")
    elif "eprint" in e.fields_dict and not v.startswith("arXiv"):
        parts.append(f"arXiv:{field(e, 'eprint')}")
    elif "url" in e.fields_dict:
        parts.append(str(e.fields_dict["url"].value).strip())
    return " ".join(parts)


def to_bibtex(e: Entry) -> str:
    """The entry as written in the bib file (LaTeX and field order as in the source)."""
    return e.raw.strip()
