"""Build-time generation of the site's knowledge-base pages (an MkDocs hook module, not part of the package).

`mkdocs.yml` loads this file under `hooks:`. At every build it

* fills the "Notebooks" navigation section from `notebooks/*.py`;
* generates the taxonomy page, the method index, the bibliography, one page per paper card and the
  API reference (one block per module of the package) with the builders of `snncomp.kb.pages`;
* replaces `<!-- methods: SECTION -->` on a section page with that section's method table,
  `<!-- results: NAME [TABLE] -->` with a committed benchmark result and `<!-- board -->` with the
  leaderboard generated from the committed result store (`snncomp.kb.leaderboard`), whose two Pareto
  plots it writes as `assets/board/*.svg`; `<!-- table: SECTION TABLE -->` and `<!-- targets: SECTION -->`
  with a table and the targets of `benchmarks/specs/SECTION.toml`, from the same store (`snncomp.kb.spec_tables`);
* renders each `notebooks/*.py`, outputs included, as a page: from the cache of executed notebooks
  (`snncomp.kb.notebooks`, also filled by the nbval test run) or, on a miss, by executing it here;
* turns every `[@key]` / `[@a; @b]` into links to the bibliography; an unknown key stops the build.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from snncomp.kb import leaderboard
from snncomp.kb import notebooks as nbcache
from snncomp.kb import blocks, pages, spec_tables
from snncomp.kb.taxonomy import Knowledge

log = logging.getLogger("mkdocs.plugins.snncomp")

NOTEBOOKS_NAV = "Notebooks"

# ----------------------------------------------------------------------------- notebooks


def execute_notebook(nb_path: Path, base: Path):
    """The executed notebook: its cached run, or a fresh run (then cached)."""
    target = nbcache.cache_path(nb_path, base)
    nb = nbcache.read(target)
    if nb is not None:
        return nb
    import jupytext
    from nbclient import NotebookClient

    log.info("snncomp: executing %s", nb_path.name)
    nb = jupytext.read(nb_path)
    NotebookClient(nb, kernel_name="python3", timeout=900,
                   resources={"metadata": {"path": str(nb_path.parent)}}).execute()
    nbcache.store(nb, target)
    return nb


def notebook_page(nb_path: Path, base: Path) -> str:
    from nbconvert import HTMLExporter

    nb = execute_notebook(nb_path, base)
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


def _notebooks(base: Path) -> list[Path]:
    return sorted((base / "notebooks").glob("*.py"))


def on_config(config, **kwargs):
    base = Path(config.config_file_path).parent
    _STATE["base"] = base
    _STATE["k"] = Knowledge.load(base)
    for entry in config.nav or []:
        if isinstance(entry, dict) and NOTEBOOKS_NAV in entry:
            entry[NOTEBOOKS_NAV] = [{pages.notebook_title(nb.stem): f"notebooks/{nb.stem}.md"}
                                    for nb in _notebooks(base)]
    return config


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File

    k: Knowledge = _STATE["k"]
    base: Path = _STATE["base"]
    gen = {"taxonomy.md": pages.taxonomy_page(k), "methods.md": pages.methods_page(k),
           "bibliography.md": pages.bibliography_page(k), "api.md": pages.api_page(pages.api_modules())}
    for c in k.cards.values():
        gen[f"papers/{c.key}.md"] = pages.card_page(k, c)
    for nb in _notebooks(base):
        gen[f"notebooks/{nb.stem}.md"] = notebook_page(nb, base)
    board_rows = [r for r in leaderboard.read_store(base / leaderboard.STORE) if "/" not in r["recipe"]]
    summary = leaderboard.summarise(board_rows, _sections())
    gen["assets/board/pareto_energy.svg"] = leaderboard.pareto_svg(summary, "e45", "energy per sample at 45 nm (pJ)")
    gen["assets/board/pareto_footprint.svg"] = leaderboard.pareto_svg(summary, "footprint_kb", "deployed footprint (KiB)")
    for uri, content in gen.items():
        files.append(File.generated(config, uri, content=content))
    return files


def _sections() -> dict[str, str]:
    from snncomp import registry

    return {m.name: m.section for m in registry.methods()}


def _reported(k: Knowledge) -> dict[str, list[str]]:
    """For every registered method, what the paper cards of its keys report, each line cited."""
    from snncomp import registry

    out: dict[str, list[str]] = {}
    for m in registry.methods():
        for key in m.keys:
            card = k.cards.get(key)
            for r in (card.reported if card else ()):
                out.setdefault(m.name, []).append(
                    f"*paper*: {r.get('setting', '')}, {r.get('metric', '')} {r.get('value', '')} [@{key}]")
    return out


_METHODS_MARK = re.compile(r"<!--\s*methods:\s*([\w-]+)\s*-->")
_RESULTS_MARK = re.compile(r"<!--\s*results:\s*([\w-]+)(?:\s+([\w-]+))?\s*-->")
_CHIPS_MARK = re.compile(r"<!--\s*chips:\s*profiles\s*-->")
_BOARD_MARK = re.compile(r"<!--\s*board\s*-->")
_TABLE_MARK = re.compile(r"<!--\s*table:\s*([\w-]+)\s+([\w-]+)\s*-->")
_TARGETS_MARK = re.compile(r"<!--\s*targets:\s*([\w-]+)\s*-->")


def on_page_markdown(markdown, page, config, files, **kwargs):
    k: Knowledge = _STATE["k"]
    markdown = _METHODS_MARK.sub(lambda m: pages.section_table(k, m.group(1)), markdown)
    markdown = _CHIPS_MARK.sub(lambda m: pages.chip_profiles_table(), markdown)
    markdown = _TABLE_MARK.sub(lambda m: spec_tables.spec_table(_STATE["base"], m.group(1), m.group(2)), markdown)
    markdown = _TARGETS_MARK.sub(lambda m: spec_tables.spec_targets(_STATE["base"], m.group(1)), markdown)
    markdown = _BOARD_MARK.sub(lambda m: leaderboard.board_page(_STATE["base"], _sections(), _reported(k)), markdown)
    markdown = _RESULTS_MARK.sub(lambda m: pages.results_block(_STATE["base"], m.group(1), m.group(2)), markdown)
    return blocks.fill(markdown, k, page.file.src_uri, page.url)  # taxonomy map, headline, section closing


def on_page_content(html_text, page, config, files, **kwargs):
    from mkdocs.exceptions import PluginError

    try:
        # leave code blocks alone: only text outside <pre> is scanned
        parts = re.split(r"(<pre.*?</pre>)", html_text, flags=re.S)
        return "".join(p if p.startswith("<pre") else pages.render_citations(p, _STATE["k"], page.url, page.file.src_uri)
                       for p in parts)
    except pages.UnknownCitation as exc:
        raise PluginError(str(exc.args[0])) from None
