"""The `snncomp` command line: cite, list, search and export the knowledge base.

    snncomp cite KEY_OR_METHOD [--format bibtex|text]
    snncomp list [--section S] [--implemented]
    snncomp search WORDS...
    snncomp export --format json|csv [--output FILE]
    snncomp validate

An unknown key, method or section exits with status 2 and the closest matches. Output piped into a
reader that stops early (`snncomp list | head`) ends without a traceback, with status 141 (128 + SIGPIPE,
as a shell reports for tools killed by the closed pipe).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from pathlib import Path

from snncomp.files import write_atomic

from . import bib
from .taxonomy import Knowledge, validate

__all__ = ["main"]

BROKEN_PIPE = 141


def _fail(msg: str) -> int:
    print(f"snncomp: {msg}", file=sys.stderr)
    return 2


def _cite(k: Knowledge, args) -> int:
    keys = k.resolve(args.what)
    if not keys:
        close = k.closest(args.what)
        return _fail(f"unknown key or method {args.what!r}" + (f"; closest: {', '.join(close)}" if close else ""))
    for key in keys:
        e = k.entries[key]
        print(bib.to_bibtex(e) if args.format == "bibtex" else bib.format_text(e))
        if args.format == "bibtex" and len(keys) > 1:
            print()
    return 0


def _list(k: Knowledge, args) -> int:
    if args.section and args.section not in {s.id for s in k.sections}:
        import difflib

        close = difflib.get_close_matches(args.section, [s.id for s in k.sections], n=3, cutoff=0.0)
        return _fail(f"unknown section {args.section!r}; closest: {', '.join(close)}")
    rows = k.rows(args.section, True if args.implemented else None)
    for r in rows:
        impl = f"  [{r['implemented']}]" if r["implemented"] else ""
        print(f"{r['taxonomy']:<34} {r['method']:<40} {r['key']:<28} {r['year']}{impl}")
    return 0


def _search(k: Knowledge, args) -> int:
    hits = k.search(" ".join(args.words))
    if not hits:
        close = k.closest(" ".join(args.words))
        return _fail(f"nothing matches {' '.join(args.words)!r}" + (f"; closest: {', '.join(close)}" if close else ""))
    for h in hits:
        print(f"{h['key']:<28} {h['year']}  {h['method'] or '-':<32} {h['title']}")
    return 0


FIELDS = ["section", "family", "taxonomy", "method", "key", "year", "venue", "implemented", "notebook", "title"]


def _export(k: Knowledge, args) -> int:
    rows = k.rows()
    if args.format == "json":
        tree = {
            "survey": k.survey_key,
            "sections": [
                {"id": s.id, "title": s.title, "notebook": s.notebook,
                 "families": [{"id": f.id, "title": f.title, "added": f.added,
                               "methods": [r for r in rows if r["taxonomy"] == f.path]} for f in s.families]}
                for s in k.sections
            ],
        }
        text = json.dumps(tree, indent=2, ensure_ascii=False) + "\n"
    else:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        text = buf.getvalue()
    if args.output:
        out = Path(args.output)
        if not out.parent.resolve().is_dir():
            return _fail(f"cannot write {out}: folder {out.parent} does not exist")
        write_atomic(out, text)  # an existing file is never left half-written
    else:
        sys.stdout.write(text)
    return 0


def _validate(k: Knowledge, args) -> int:
    found = validate(k)
    for p in found:
        print(p)
    print(f"{len(k.entries)} bib entries, {len(k.cards)} cards: {len(found)} problem(s)")
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="snncomp", description="Cite, list, search and export the snncomp knowledge base.")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cite", help="print BibTeX (or a formatted reference) for a bib key or a method name")
    c.add_argument("what")
    c.add_argument("--format", choices=["bibtex", "text"], default="bibtex")
    ls = sub.add_parser("list", help="print taxonomy rows (one per paper card)")
    ls.add_argument("--section")
    ls.add_argument("--implemented", action="store_true", help="only papers with an implementation in snncomp")
    s = sub.add_parser("search", help="find methods and papers containing all the words")
    s.add_argument("words", nargs="+")
    e = sub.add_parser("export", help="write the taxonomy with its keys as JSON or CSV")
    e.add_argument("--format", choices=["json", "csv"], required=True)
    e.add_argument("--output", "-o", help="file to write (default: standard output)")
    sub.add_parser("validate", help="check bibliography, cards, taxonomy, registry and citations")
    args = p.parse_args(argv)
    try:
        k = Knowledge.load()
    except (bib.BibError, ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    command = {"cite": _cite, "list": _list, "search": _search, "export": _export, "validate": _validate}[args.cmd]
    try:
        code = command(k, args)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
    except BrokenPipeError:
        # the reader stopped early (`snncomp list | head`): end quietly, as other Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the final flush at exit then goes nowhere
        return BROKEN_PIPE
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
