"""The knowledge-base pages of the site, as Markdown built from a `Knowledge`.

Pure functions, tested without MkDocs; the MkDocs hook (`hooks/sitegen.py`) adds them to the build.
Links to implementations are written by identifier (the method's `qualname`, a dotted path into the
package) and resolved by mkdocs-autorefs against the generated API reference (`api_page`), which
documents every module of the package; neither keeps a list of modules.
"""

from __future__ import annotations

import difflib
import html
import importlib
import json
import pkgutil
import re
from pathlib import Path

from . import bib
from .taxonomy import Card, Knowledge, load_yaml

__all__ = ["taxonomy_grid", "taxonomy_page", "methods_page", "bibliography_page", "card_page", "section_table",
           "render_citations", "results_block", "before_fix_marks", "api_modules", "api_page", "notebook_title", "UnknownCitation"]


class UnknownCitation(KeyError):
    """A page cites a key that is not in references.bib."""


def _esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def _impl_link(m) -> str:
    """Link from a method name to its entry in the API reference, by identifier (mkdocs-autorefs
    resolves it; an identifier the API page does not document fails a strict build)."""
    return f"[`{m.name}`][{m.qualname}]"


# ----------------------------------------------------------------------------- pages


def taxonomy_grid(k: Knowledge, prefix: str, links: dict[str, str]) -> str:
    """HTML boxes, one per section (linking to its page) holding its families with their paper and
    implementation counts; a family whose path is in `links` links to `prefix + links[path]`."""
    rows = k.rows()
    out = ['<div class="tax-diagram">']
    for s in k.sections:
        out.append(f'<div class="tax-section"><a class="tax-title" href="{prefix}{s.page[:-3]}/">{_esc(s.title)}</a>')
        for f in s.families:
            n = sum(r["taxonomy"] == f.path for r in rows)
            impl = sum(bool(r["implemented"]) and r["taxonomy"] == f.path for r in rows)
            tag = ' <span class="tax-added">added</span>' if f.added else ""
            title = (f'<a href="{prefix}{links[f.path]}">{_esc(f.title)}</a>' if f.path in links else _esc(f.title))
            out.append(f'<div class="tax-family">{title}{tag}<br><small>{n} paper{"s" * (n != 1)}, {impl} implemented</small></div>')
        out.append("</div>")
    out.append("</div>")
    return "\n".join(out) + "\n"


def taxonomy_page(k: Knowledge) -> str:
    """The taxonomy as a diagram (HTML boxes, families linking to the headings that explain them) and as
    a nested list."""
    from .anchors import family_links

    rows = k.rows()
    out = ["# Taxonomy", "",
           f"The tree follows the survey's sections [@{k.survey_key}]; families marked *added* are not in the "
           "survey. Each paper card in `papers/` attaches to one family; implementations attach through the "
           "keys they cite. This page is generated from `taxonomy.yaml` at build time.", "",
           taxonomy_grid(k, "../", family_links(k)), "## Nested list", ""]
    for s in k.sections:
        nb = f" · notebook `{s.notebook}`" if s.notebook else ""
        out.append(f"- **[{s.title}]({s.page})** (survey §{s.survey_section}){nb}: {s.summary}")
        for f in s.families:
            added = " *(added)*" if f.added else ""
            out.append(f"    - **{f.title}**{added}: {f.summary}")
            for r in rows:
                if r["taxonomy"] == f.path:
                    impl = f" → implemented as `{r['implemented']}`" if r["implemented"] else ""
                    out.append(f"        - [{r['method']}](papers/{r['key']}.md) [@{r['key']}]{impl}")
    return "\n".join(out) + "\n"


MEASURED = (  # (header, metric of `leaderboard._metrics`, digits, scale)
    ("accuracy %", "accuracy", 2, 1.0), ("accuracy drop (points)", "drop", 2, 1.0), ("sparsity", "sparsity", 3, 1.0),
    ("weight bits", "bits", 1, 1.0), ("spikes / sample", "spikes", 0, 1.0), ("45 nm energy (nJ)", "e45", 2, 1e-3),
)


def _measured_rows(k: Knowledge) -> tuple[list[str], str]:
    """One table row per registered method and baseline it was measured on (the board rows of the result
    store: recipe names without "/"), "not measured" where the store has none; and the provenance line."""
    from snncomp import registry

    from . import leaderboard

    rows = [r for r in leaderboard.read_store(k.base / leaderboard.STORE) if "/" not in r["recipe"]]
    summary = [s for s in leaderboard.summarise(rows) if s["kind"] == "method"]
    order = {path: i for i, path in enumerate(k.families)}
    out = []
    for m in sorted(registry.methods(), key=lambda m: (order.get(m.taxonomy, len(order)), m.name)):
        papers = "; ".join(f"[@{key}]" for key in m.keys)
        name = f'<a href="../api/#{m.qualname}"><code>{_esc(m.name)}</code></a>'
        head = f"<td>{name}</td><td>{_esc(m.kind)}</td><td>{_esc(m.taxonomy)}</td>"
        runs = [s for s in summary if s["name"] == m.name and s["seeds"]]
        if not runs:
            why = {"objective": ' title="a loss term: transforms and recipes train with it"',
                   "measure": ' title="a report on a model: recipes run it after their last step"'}.get(m.kind, "")
            out.append(f"<tr>{head}<td{why}>not measured</td><td></td>" + "<td>–</td>" * len(MEASURED)
                       + f"<td>{papers}</td></tr>")
        for s in runs:
            cells = "".join(f"<td>{leaderboard._cell(s['stats'].get(metric, (None, None)), digits, scale)}</td>"
                            for _, metric, digits, scale in MEASURED)
            out.append(f"<tr>{head}<td>{_esc(s['baseline'])}</td><td>{','.join(map(str, s['seeds']))}</td>{cells}"
                       f"<td>{papers}</td></tr>")
    ok = [r for r in rows if r.get("status") == "ok"]
    dates = sorted(r["date"][:10] for r in ok if r.get("date"))
    commands = sorted({r.get("command", "?") for r in ok})
    prov = (f"*Reproduced here: {len(ok)} runs of `{'`, `'.join(commands)}` in `benchmarks/results/board.jsonl`"
            + (f", {dates[0]} to {dates[-1]}" if dates else "") + ". Mean ± sd over the seeds listed; accuracy "
            "drop is the starting model's test accuracy minus the last step's (negative: a gain); energy is per "
            "sample, 45 nm compute model. Recipes, the ANN comparisons and the footprints are on the "
            "[Benchmark](benchmark.md) page.*") if ok else (
            "*No board run in `benchmarks/results/board.jsonl` yet: `snncomp bench --output "
            "benchmarks/results/board.jsonl` fills it.*")
    return out, prov


def methods_page(k: Knowledge) -> str:
    """The method index in two views at full page width: every registered method with its measured
    results from the result store, and every paper card; both tables sortable and filterable."""
    measured, prov = _measured_rows(k)
    head = "".join(f"<th>{_esc(h)}</th>" for h, *_ in MEASURED)
    out = ["---", "hide:", "  - toc", "---", "", "# Method index", "",
           "Two views, generated at build time: the methods registered in `snncomp` with what they measured "
           "here, and the paper cards with where each is implemented. Click a column header to sort; type in a "
           "box to filter rows.", "",
           "## Registered methods, measured here", "", prov, "",
           '<input class="md-input snn-filter" data-table="snn-method-results" placeholder="Filter methods…" '
           'aria-label="Filter registered methods">', "",
           '<div class="snn-wide snn-full"><table id="snn-method-results" class="snn-sortable"><thead><tr>'
           f"<th>Method</th><th>Kind</th><th>Family</th><th>Baseline</th><th>Seeds</th>{head}<th>Papers</th>"
           "</tr></thead><tbody>", *measured, "</tbody></table></div>", "",
           "## Paper cards", "",
           "One row per paper card, from the cards, the bibliography and the registry; "
           "`snncomp export --format csv` gives the same rows as a file.", "",
           '<input class="md-input snn-filter" data-table="snn-paper-cards" placeholder="Filter papers…" '
           'aria-label="Filter paper cards">', "",
           '<div class="snn-wide snn-full"><table id="snn-paper-cards" class="snn-sortable"><thead><tr>'
           "<th>Method</th><th>Family</th><th>Year</th><th>Venue</th><th>Implemented</th><th>Notebook</th><th>Paper</th>"
           "</tr></thead><tbody>"]
    for r in k.rows():
        nb = f'<code>{_esc(r["notebook"])}</code>' if r["notebook"] else ""
        impl = f'<code>{_esc(r["implemented"])}</code>' if r["implemented"] else "no"
        out.append(
            f'<tr><td><a href="../papers/{r["key"]}/">{_esc(r["method"])}</a></td><td>{_esc(r["taxonomy"])}</td>'
            f'<td>{r["year"]}</td><td>{_esc(r["venue"])}</td><td>{impl}</td><td>{nb}</td><td>[@{r["key"]}]</td></tr>'
        )
    out.append("</tbody></table></div>")
    return "\n".join(out) + "\n"


def bibliography_page(k: Knowledge) -> str:
    """Every bib entry, sorted by key, each with an anchor the citations link to."""
    out = ["# Bibliography", "",
           f"All {len(k.entries)} entries of `references.bib`, the project's single source of citations, sorted "
           "by key. Entries with a paper card link to it. `snncomp cite KEY` prints any of them as BibTeX.", ""]
    for key in sorted(k.entries):
        e = k.entries[key]
        card = f' · [paper card](papers/{key}.md)' if key in k.cards else ""
        out.append(f'<p class="snn-ref" id="{key}"><code>{key}</code> · {_esc(bib.format_text(e))}</p>')
        if card:
            out.append(f"{card[3:]}")
        out.append("")
    return "\n".join(out) + "\n"


def _reported_table(c: Card) -> list[str]:
    if not c.reported:
        return ["No headline number was recorded for this paper (none could be read from its own page).", ""]
    out = ["| setting | metric | value | source |", "|---|---|---|---|"]
    for r in c.reported:
        cells = [str(r.get(x, "")).replace("|", "\\|") for x in ("setting", "metric", "value")]
        out.append(f"| {cells[0]} | {cells[1]} | {cells[2]} | reported by the paper [@{c.key}] |")
    return out + [""]


def card_page(k: Knowledge, c: Card) -> str:
    """One paper card as a page: metadata, reported numbers, text, implementation, BibTeX."""
    e = k.entries[c.key]
    fam = k.families.get(c.taxonomy)
    sec = k.section(c.section)
    impls = k.implementations(c.key)
    code = f"[{c.code}]({c.code})" if c.code.startswith("http") else c.code
    out = [f"# {c.method}", "", f"**{bib.field(e, 'title')}** [@{c.key}]", "",
           "| | |", "|---|---|",
           f"| Taxonomy | [{sec.title}](../{sec.page}) / {fam.title if fam else c.family} |",
           f"| Venue | {c.venue} |", f"| Year | {c.year} |",
           f"| Datasets | {', '.join(c.datasets) or '—'} |", f"| Code | {code} |",
           f"| In snncomp | {c.snncomp} |"]
    if impls:
        out.append(f"| Registered as | {', '.join(_impl_link(m) for m in impls)} |")
    if impls and sec.notebook:
        out.append(f"| Notebook | [`{sec.notebook}`](../notebooks/{Path(sec.notebook).stem}.md) |")
    out += ["", "## Idea and cost", "", c.body, "", "## Headline numbers", ""]
    out += _reported_table(c)
    out += ["## BibTeX", "", "```bibtex", bib.to_bibtex(e), "```", ""]
    return "\n".join(out)


def section_table(k: Knowledge, section: str) -> str:
    """Markdown table of a section's methods with citations and implementations."""
    rows = k.rows(section)
    if not rows:
        return "<!-- snncomp:methods-table -->\n\n*No paper cards in this section yet.*\n"
    out = ["<!-- snncomp:methods-table -->", "",  # lets `blocks.section_closing` see the table is there
           "| method | family | year | paper | in snncomp |", "|---|---|---|---|---|"]
    for r in rows:
        impls = k.implementations(r["key"])
        impl = ", ".join(_impl_link(m) for m in impls) if impls else "—"
        out.append(f"| [{r['method']}](papers/{r['key']}.md) | {r['family']} | {r['year']} | [@{r['key']}] | {impl} |")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- citations


def render_citations(text: str, k: Knowledge, page_url: str, where: str) -> str:
    """Replace `[@a; @b]` in HTML `text` with linked short citations relative to `page_url`."""
    prefix = "../" * page_url.count("/")  # "papers/x/" -> "../../", "" (home) -> ""

    def one(m: re.Match) -> str:
        keys = [s.strip().lstrip("@") for s in m.group(1).split(";")]
        parts = []
        for key in keys:
            if key not in k.entries:
                close = difflib.get_close_matches(key, list(k.entries), n=3)
                raise UnknownCitation(f"{where}: unknown citation key {key!r}" +
                                      (f"; closest: {', '.join(close)}" if close else ""))
            label = _esc(bib.short_cite(k.entries[key]))
            parts.append(f'<a class="snn-cite" href="{prefix}bibliography/#{key}" title="{_esc(bib.field(k.entries[key], "title"))}">{label}</a>')
        return "(" + "; ".join(parts) + ")"

    return bib.CITE_RE.sub(one, text)


# ----------------------------------------------------------------------------- results


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v).replace("|", "\\|")


def before_fix_marks(base: Path, name: str, table: str, rows: list[dict]) -> tuple[list[str], list[str]]:
    """Marks for the rows of committed table `name`/`table` that were measured before a fix changed the
    method they show, read from `benchmarks/results/before_fix.yaml` (a list of entries with `file`,
    `table`, `match`: values of the row's first column, and `why`: one sentence; `match: all` notes every
    row of the table, and `table: "*"` every table of the file, without per-row marks). Returns one mark per
    row ("" for rows measured after every fix) and the footnotes. An entry whose row is not in the table,
    or that lacks a field, is an error naming the entry, so a stale mark cannot linger."""
    path = base / "benchmarks" / "results" / "before_fix.yaml"
    marks = [""] * len(rows)
    if not path.exists():
        return marks, []
    entries = load_yaml(path.read_text()) or []
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of entries with file, table, match and why")
    first = [str(r[next(iter(r))]) if r else "" for r in rows]
    notes = []
    for n, e in enumerate(entries, 1):
        if not isinstance(e, dict) or not {"file", "table", "match", "why"} <= set(e):
            raise ValueError(f"{path}: entry {n} needs the fields file, table, match and why; got {e!r}")
        if e["file"] != name or e["table"] not in (table, "*"):
            continue
        if e["match"] == "all":  # every row of the table (or of every table of the file, with table "*")
            notes.append(f"Every row above was measured before a fix (issue 18): {e['why']}")
            continue
        sign = "†" * (len(notes) + 1)
        for value in e["match"]:
            if str(value) not in first:
                raise ValueError(f"{path}: entry {n} marks row {value!r}, which table {table!r} of "
                                 f"benchmarks/results/{name}.json does not have; its rows: {first}")
            marks[first.index(str(value))] += sign
        notes.append(f"{sign} Measured before a fix changed this method (issue 18): {e['why']} "
                     "The next benchmark run replaces this row.")
    return marks, notes


def results_block(base: Path, name: str, table: str | None = None) -> str:
    """A committed benchmark result `benchmarks/results/NAME.json` as a table with its provenance.

    The file holds `command`, `date`, `machine` and a list of row dicts under `rows` (or under
    `table` when given). Rows listed in `benchmarks/results/before_fix.yaml` carry a mark and a footnote
    (`before_fix_marks`)."""
    path = base / "benchmarks" / "results" / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"results marker names {path}, which does not exist; run the benchmark first")
    data = json.loads(path.read_text())
    key = table or "rows"
    rows = data.get(key)
    if not isinstance(rows, list):
        tables = sorted(k for k, v in data.items() if isinstance(v, list) and v and all(isinstance(r, dict) for r in v))
        marker = f"{name} {table}" if table else name
        raise KeyError(f"results marker '{marker}': {path} has no table {key!r} (a list of rows); its tables: {tables}")
    marks, notes = before_fix_marks(base, name, key, rows)
    cols = list(rows[0]) if rows else []
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c, "")) + (mark if i == 0 else "") for i, c in enumerate(cols)) + " |"
            for r, mark in zip(rows, marks, strict=True)]
    prov = (f"*Reproduced here: `{data.get('command', '?')}` on {data.get('date', '?')} "
            f"({data.get('machine', 'unknown machine')}); committed as `benchmarks/results/{name}.json`.*")
    foot = "".join(f"\n\n*{n}*" for n in notes)
    return "\n".join(out) + "\n\n" + prov + foot + "\n"


def chip_profiles_table() -> str:
    """The chip energy profiles of `snncomp/energy/chips.toml`, after the 45 nm compute model, as a table
    (generated at build time, never copied): each row says what a figure prices and what it leaves out."""
    from snncomp import energy, metrics

    def pj(v):
        return "-" if v is None else f"{v:g}"

    probe = metrics.Report(params=0, footprint_bytes=0, deployed_bits=0, connection_sparsity=0.0,
                           activation_sparsity=0.0, dense_synops=1.0, effective_macs=1.0, effective_acs=1.0,
                           spikes_per_sample=1.0, neuron_updates=2.0, active_neuron_updates=1.0)
    out = ["| profile | node | V | pJ / synaptic op | pJ / MAC | pJ / neuron update (active / idle) | pJ / spike | scope | "
           "evidence | read in | priced | not priced | source |", "|" + "---|" * 13]
    fp32 = energy.REGIMES["fp32"]
    q = energy.price(probe, "45nm-fp32")
    out.append(f"| {q.label} | 45 nm | 0.9 | {fp32.ac_pj:g} (an add) | {fp32.mac_pj:g} | - | - | per-term | {q.evidence} | "
               f"quoted | {_fmt('; '.join(q.priced))} | {_fmt('; '.join(q.not_priced))} | [@horowitz2014computings] |")
    for p in energy.chips.profiles().values():
        upd = "-" if p.e_neuron_update is None else (
            pj(p.e_neuron_update) + ("" if p.e_neuron_idle is None else f" / {pj(p.e_neuron_idle)}"))
        q = energy.price(probe, p.name) if p.published else None
        priced = _fmt("; ".join(q.priced)) if q else "-"
        not_priced = (_fmt("; ".join(q.not_priced)) or "nothing: all-in") if q else "everything: no figure published"
        out.append(f"| {p.label} | {p.node} | {pj(p.voltage)} | {pj(p.e_synop)} | {pj(p.e_mac)} | "
                   f"{upd} | {pj(p.e_spike)} | {p.scope} | {p.evidence} | {p.confirmed if p.published else '-'} | "
                   f"{priced} | {not_priced} | "
                   f"{_fmt(p.cite())}; {_fmt(p.source.get('note', '')) if p.source.get('key') else ''} |")
    return "\n".join(out) + ("\n\n*Generated at build time from `snncomp.energy.compute.HOROWITZ_45NM` and "
                             "`implementations/snncomp/energy/chips.toml`.*\n")


# ----------------------------------------------------------------------------- API reference


def api_modules(package: str = "snncomp") -> list[str]:
    """Every module of `package`, subpackages walked recursively and sorted by name; a package's
    `__init__` is listed only when it has a docstring."""
    root = importlib.import_module(package)
    names = [package] if root.__doc__ else []
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if info.ispkg and not importlib.import_module(info.name).__doc__:
            continue
        names.append(info.name)
    return sorted(names)


def api_page(modules: list[str]) -> str:
    """The API reference: one mkdocstrings block per module."""
    out = ["# API reference", "",
           "Generated at build time from the docstrings of every module of the `snncomp` package.", ""]
    for name in modules:
        out += [f"::: {name}", ""]
    return "\n".join(out)


def notebook_title(stem: str) -> str:
    """Navigation title of a notebook file: "03_pruning" -> "03 Pruning"."""
    words = stem.split("_")
    if words[0].isdigit() and len(words) > 1:
        return f"{words[0]} " + " ".join(words[1:]).capitalize()
    return " ".join(words).capitalize()
