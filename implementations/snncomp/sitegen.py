"""Build-time generation of the site's knowledge-base pages (an MkDocs hook module).

`mkdocs.yml` loads this file under `hooks:`. At every build it

* generates the taxonomy page, the method index, the bibliography and one page per paper card
  from `taxonomy.yaml`, `papers/`, `references.bib` and the registry (nothing generated is committed);
* replaces `<!-- methods: SECTION -->` on a section page with that section's method table;
* executes each `notebooks/*.py` (cached in `.cache/notebooks/` by a hash of the notebook, the
  package sources and the benchmark results) and renders it, outputs included, as a page;
* turns every `[@key]` / `[@a; @b]` into links to the bibliography; an unknown key stops the build.

The page builders are pure functions of a `Knowledge` and are tested without MkDocs.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
from pathlib import Path

from snncomp import bib
from snncomp.taxonomy import Card, Knowledge

log = logging.getLogger("mkdocs.plugins.snncomp")

__all__ = ["taxonomy_page", "methods_page", "bibliography_page", "card_page", "section_table", "render_citations",
           "UnknownCitation"]

API_PAGES = {"neurons", "surrogate", "encoding", "data", "models", "train", "metrics", "energy", "spikes",
             "registry", "pruning", "bib", "taxonomy"}


class UnknownCitation(KeyError):
    """A page cites a key that is not in references.bib."""


def _esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def _impl_link(m, prefix: str = "") -> str:
    """Markdown link from a method name to its entry in the API reference."""
    module = m.fn.__module__.split(".")[-1]
    if module not in API_PAGES:
        return f"`{m.name}`"
    return f"[`{m.name}`]({prefix}api.md#{m.fn.__module__}.{m.fn.__qualname__})"


# ----------------------------------------------------------------------------- pages


def taxonomy_page(k: Knowledge) -> str:
    """The taxonomy as a diagram (HTML boxes) and as a nested list."""
    rows = k.rows()
    out = ["# Taxonomy", "",
           f"The tree follows the survey's sections [@{k.survey_key}]; families marked *added* are not in the "
           "survey. Each paper card in `papers/` attaches to one family; implementations attach through the "
           "keys they cite. This page is generated from `taxonomy.yaml` at build time.", "",
           '<div class="tax-diagram">']
    for s in k.sections:
        out.append(f'<div class="tax-section"><a class="tax-title" href="../{s.page[:-3]}/">{_esc(s.title)}</a>')
        for f in s.families:
            n = sum(r["taxonomy"] == f.path for r in rows)
            impl = sum(bool(r["implemented"]) and r["taxonomy"] == f.path for r in rows)
            tag = ' <span class="tax-added">added</span>' if f.added else ""
            out.append(f'<div class="tax-family">{_esc(f.title)}{tag}<br><small>{n} papers, {impl} implemented</small></div>')
        out.append("</div>")
    out += ["</div>", "", "## Nested list", ""]
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


def methods_page(k: Knowledge) -> str:
    """The method index: a sortable, filterable table."""
    out = ["# Method index", "",
           "One row per paper card. Click a column header to sort; type in the box to filter rows. "
           "Generated at build time from the cards, the bibliography and the registry; "
           "`snncomp export --format csv` gives the same rows as a file.", "",
           '<input class="md-input snn-filter" data-table="method-index" placeholder="Filter methods…" '
           'aria-label="Filter methods">', "",
           '<table id="method-index" class="snn-sortable"><thead><tr>'
           "<th>Method</th><th>Family</th><th>Year</th><th>Venue</th><th>Implemented</th><th>Notebook</th><th>Paper</th>"
           "</tr></thead><tbody>"]
    for r in k.rows():
        nb = f'<code>{_esc(r["notebook"])}</code>' if r["notebook"] else ""
        impl = f'<code>{_esc(r["implemented"])}</code>' if r["implemented"] else "no"
        out.append(
            f'<tr><td><a href="../papers/{r["key"]}/">{_esc(r["method"])}</a></td><td>{_esc(r["taxonomy"])}</td>'
            f'<td>{r["year"]}</td><td>{_esc(r["venue"])}</td><td>{impl}</td><td>{nb}</td><td>[@{r["key"]}]</td></tr>'
        )
    out.append("</tbody></table>")
    return "\n".join(out) + "\n"


def bibliography_page(k: Knowledge) -> str:
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
        out.append(f"| Registered as | {', '.join(_impl_link(m, '../') for m in impls)} |")
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
        return "*No paper cards in this section yet.*\n"
    out = ["| method | family | year | paper | in snncomp |", "|---|---|---|---|---|"]
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
                close = __import__("difflib").get_close_matches(key, list(k.entries), n=3)
                raise UnknownCitation(f"{where}: unknown citation key {key!r}" +
                                      (f"; closest: {', '.join(close)}" if close else ""))
            label = _esc(bib.short_cite(k.entries[key]))
            parts.append(f'<a class="snn-cite" href="{prefix}bibliography/#{key}" title="{_esc(bib.field(k.entries[key], "title"))}">{label}</a>')
        return "(" + "; ".join(parts) + ")"

    return bib.CITE_RE.sub(one, text)


# ----------------------------------------------------------------------------- notebooks


# modules that only serve the site and the command line: editing them does not re-run the notebooks
_NOT_USED_BY_NOTEBOOKS = {"sitegen", "cli", "bib", "taxonomy"}


def _notebook_hash(nb: Path, base: Path) -> str:
    h = hashlib.sha256(nb.read_bytes())
    sources = [p for p in sorted((base / "implementations" / "snncomp").glob("*.py")) if p.stem not in _NOT_USED_BY_NOTEBOOKS]
    for p in sources + sorted((base / "benchmarks" / "results").glob("*")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def execute_notebook(nb_path: Path, base: Path, cache: Path):
    """Run a jupytext notebook (or reuse the cached run) and return the executed notebook."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{nb_path.stem}-{_notebook_hash(nb_path, base)}.ipynb"
    if target.exists():
        return nbformat.read(str(target), as_version=4)
    log.info("snncomp: executing %s", nb_path.name)
    nb = jupytext.read(nb_path)
    NotebookClient(nb, kernel_name="python3", timeout=900,
                   resources={"metadata": {"path": str(nb_path.parent)}}).execute()
    for old in cache.glob(f"{nb_path.stem}-*.ipynb"):
        old.unlink()
    tmp = target.with_suffix(".tmp")
    nbformat.write(nb, str(tmp))
    tmp.replace(target)  # never leave a half-written cache file
    return nb


def notebook_page(nb_path: Path, base: Path, cache: Path) -> str:
    from nbconvert import HTMLExporter

    nb = execute_notebook(nb_path, base, cache)
    exporter = HTMLExporter(template_name="basic")
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb)
    rel = f"notebooks/{nb_path.name}"
    return (f'<p class="snn-nbnote">Rendered from <code>{rel}</code>, executed at build time; run it yourself with '
            f'<code>jupytext --to ipynb {rel}</code> or directly under <code>make test</code>.</p>\n\n'
            f'<div class="snn-notebook">\n{body}\n</div>\n')


# ----------------------------------------------------------------------------- MkDocs events

_STATE: dict = {}


def on_config(config, **kwargs):
    base = Path(config.config_file_path).parent
    _STATE["base"] = base
    _STATE["k"] = Knowledge.load(base)
    return config


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File

    k: Knowledge = _STATE["k"]
    base: Path = _STATE["base"]
    gen = {"taxonomy.md": taxonomy_page(k), "methods.md": methods_page(k), "bibliography.md": bibliography_page(k)}
    for c in k.cards.values():
        gen[f"papers/{c.key}.md"] = card_page(k, c)
    cache = base / ".cache" / "notebooks"
    for nb in sorted((base / "notebooks").glob("*.py")):
        gen[f"notebooks/{nb.stem}.md"] = notebook_page(nb, base, cache)
    for uri, content in gen.items():
        files.append(File.generated(config, uri, content=content))
    return files


_METHODS_MARK = re.compile(r"<!--\s*methods:\s*([\w-]+)\s*-->")
_RESULTS_MARK = re.compile(r"<!--\s*results:\s*([\w-]+)(?:\s+([\w-]+))?\s*-->")


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v).replace("|", "\\|")


def results_block(base: Path, name: str, table: str | None = None) -> str:
    """A committed benchmark result `benchmarks/results/NAME.json` as a table with its provenance.

    The file holds `command`, `date`, `machine` and a list of row dicts under `rows` (or under
    `table` when given)."""
    import json

    path = base / "benchmarks" / "results" / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"results marker names {path}, which does not exist; run the benchmark first")
    data = json.loads(path.read_text())
    rows = data[table or "rows"]
    cols = list(rows[0]) if rows else []
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    prov = (f"*Reproduced here: `{data.get('command', '?')}` on {data.get('date', '?')} "
            f"({data.get('machine', 'unknown machine')}); committed as `benchmarks/results/{name}.json`.*")
    return "\n".join(out) + "\n\n" + prov + "\n"


def on_page_markdown(markdown, page, config, files, **kwargs):
    k: Knowledge = _STATE["k"]
    markdown = _METHODS_MARK.sub(lambda m: section_table(k, m.group(1)), markdown)
    return _RESULTS_MARK.sub(lambda m: results_block(_STATE["base"], m.group(1), m.group(2)), markdown)


def on_page_content(html_text, page, config, files, **kwargs):
    from mkdocs.exceptions import PluginError

    try:
        # leave code blocks alone: only text outside <pre> is scanned
        parts = re.split(r"(<pre.*?</pre>)", html_text, flags=re.S)
        return "".join(p if p.startswith("<pre") else render_citations(p, _STATE["k"], page.url, page.file.src_uri)
                       for p in parts)
    except UnknownCitation as exc:
        raise PluginError(str(exc.args[0])) from None
