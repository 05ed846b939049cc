"""`references.bib`: loading, validating and formatting the project's single source of citations.

Parsing uses bibtexparser 2.x, which does not raise on bad input but collects failed blocks;
`problems` turns every failed block, duplicate key, missing field and malformed identifier into a
`Problem` naming the entry's key and line, and `load` raises `BibError` listing them all.
Citations anywhere in the project (pages, cards, docstrings) are written `[@key]` or
`[@key1; @key2]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import bibtexparser
from bibtexparser.model import DuplicateBlockKeyBlock, Entry, ParsingFailedBlock

__all__ = ["Problem", "BibError", "REQUIRED", "problems", "load", "cite_keys", "CITE_RE", "authors",
           "short_cite", "format_text", "to_bibtex", "latex_to_text"]

REQUIRED: dict[str, tuple[str, ...]] = {
    "article": ("author", "title", "journal", "year"),
    "inproceedings": ("author", "title", "booktitle", "year"),
    "incollection": ("author", "title", "booktitle", "year"),
    "misc": ("author", "title", "year"),
    "book": ("title", "publisher", "year"),
    "phdthesis": ("author", "title", "school", "year"),
    "techreport": ("author", "title", "institution", "year"),
}
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
        if f not in fields or not str(fields[f].value).strip():
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


def problems(path: str | Path) -> list[Problem]:
    """Every problem in the bib file at `path` (an empty list when it is clean)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lib = bibtexparser.parse_string(text)
    out: list[Problem] = []
    first_seen = {e.key: e.start_line + 1 for e in lib.entries}
    for b in lib.failed_blocks:
        if isinstance(b, DuplicateBlockKeyBlock):
            prev = first_seen.get(b.key, b.previous_block.start_line + 1 if b.previous_block else 0)
            out.append(Problem(str(path), b.start_line + 1, b.key,
                               f"duplicate key: also defined at line {prev}"))
        elif isinstance(b, ParsingFailedBlock):
            m = re.match(r"\s*@\w+\s*\{\s*([^,\s]+)", b.raw)
            err = (str(getattr(b, "error", "") or "").strip().splitlines() or ["unbalanced braces or a missing comma?"])[0]
            out.append(Problem(str(path), b.start_line + 1, m.group(1) if m else None, f"syntax error: {err}"))
        else:
            out.append(Problem(str(path), b.start_line + 1, None, f"cannot parse block ({type(b).__name__})"))
    for e in lib.entries:
        out.extend(_entry_problems(e, str(path)))
    return sorted(out, key=lambda p: p.line)


def load(path: str | Path) -> dict[str, Entry]:
    """Entries of a clean bib file by key; raises `BibError` listing every problem otherwise."""
    found = problems(path)
    if found:
        raise BibError(found)
    lib = bibtexparser.parse_string(Path(path).read_text(encoding="utf-8"))
    return {e.key: e for e in lib.entries}


def cite_keys(text: str) -> list[str]:
    """Keys cited as `[@key]` or `[@a; @b]` in `text`, in order of appearance."""
    keys: list[str] = []
    for group in CITE_RE.findall(text):
        keys.extend(k.strip().lstrip("@") for k in group.split(";"))
    return keys


_LATEX = [(r"{\\'e}", "é"), (r"\'e", "é"), (r'{\"o}', "ö"), (r'\"o', "ö"), (r'{\"u}', "ü"), (r'\"u', "ü"),
          (r"{\'a}", "á"), (r"\'a", "á"), (r"{\'i}", "í"), (r"\'{\i}", "í"), (r"{\'o}", "ó"), (r"\'o", "ó"),
          (r'{\"a}', "ä"), (r'\"a', "ä"), (r"{\`e}", "è"), (r"\`e", "è"), (r"{\~n}", "ñ"), (r"\~n", "ñ"),
          (r"{\c{c}}", "ç"), (r"\c{c}", "ç"), (r"\&", "&"), ("--", "–")]


def latex_to_text(s: str) -> str:
    """Plain text of a BibTeX field: accents decoded, protective braces and extra spaces removed."""
    for a, b in _LATEX:
        s = s.replace(a, b)
    s = s.replace("{", "").replace("}", "")
    return re.sub(r"\s+", " ", s).strip()


def field(e: Entry, name: str, default: str = "") -> str:
    f = e.fields_dict.get(name)
    return latex_to_text(str(f.value)) if f is not None else default


def authors(e: Entry) -> list[str]:
    """Author family names (or the editor's, for edited books)."""
    raw = field(e, "author") or field(e, "editor")
    names = []
    for a in re.split(r"\s+and\s+", raw):
        a = a.strip()
        if not a:
            continue
        names.append(a.split(",")[0].strip() if "," in a else a.split()[-1])
    return names


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
    raw = field(e, "author") or field(e, "editor")
    people = []
    for a in re.split(r"\s+and\s+", raw):
        if "," in a:
            last, first = a.split(",", 1)
            people.append(f"{first.strip()} {last.strip()}".strip())
        else:
            people.append(a.strip())
    people = ["et al." if p == "others" else p for p in people]
    who = ", ".join(people[:-1]) + (" and " if len(people) > 1 else "") + people[-1] if people else ""
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
        parts.append(str(e.fields_dict["url"].value))
    return " ".join(parts)


def to_bibtex(e: Entry) -> str:
    """The entry as BibTeX text, fields in their original order."""
    lines = [f"@{e.entry_type}{{{e.key},"]
    for f in e.fields:
        lines.append(f"  {f.key} = {{{f.value}}},")
    lines[-1] = lines[-1].rstrip(",")
    lines.append("}")
    return "\n".join(lines)
