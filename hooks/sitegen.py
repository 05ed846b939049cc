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
  (`snncomp.kb.notebooks`, also filled by the nbval test run) or, on a miss, by executing it here: the
  notebooks whose run is missing start at `on_config`, in parallel, one single-threaded kernel per core
  (on a cold cache after the baselines they share), each page rendered as its notebook ends, and
  `on_files` waits for the slowest;
* turns every `[@key]` / `[@a; @b]` into links to the bibliography; an unknown key stops the build.

What a warm build repeats is cached under `.cache/`: the executed notebooks and their rendered pages,
the leaderboard's plots, and a copy of every generated page (rewritten only when it changes, so that
`mkdocs serve --dirty`, which `make serve` uses, rebuilds only the pages that changed).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from snncomp.files import write_atomic
from snncomp.kb import leaderboard
from snncomp.kb import notebooks as nbcache
from snncomp.kb import blocks, pages, spec_tables
from snncomp.kb.taxonomy import Knowledge

log = logging.getLogger("mkdocs.plugins.snncomp")


class _NoFormatterNotice(logging.Filter):
    """Drops the one INFO line mkdocstrings-python logs when neither Black nor Ruff is installed to
    format separate signatures (they stay as written, which is what we want); nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Formatting signatures requires either Black or Ruff" not in record.getMessage()


class _NoDirtyNotice(logging.Filter):
    """Drops MkDocs' warning that a `--dirty` build may leave other pages' navigation stale, logged at every
    rebuild of `make serve` (which asks for dirty rebuilds on purpose); under `strict: true` that warning
    would abort the first build. `make build` and the tests build clean and never log it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("A 'dirty' build is being performed")


for _name, _filter in (("mkdocs.plugins.mkdocstrings_handlers.python._internal.rendering", _NoFormatterNotice),
                       ("mkdocs.commands.build", _NoDirtyNotice)):
    _logger = logging.getLogger(_name)
    if not any(type(f).__name__ == _filter.__name__ for f in _logger.filters):  # the hook reloads per build
        _logger.addFilter(_filter())

NOTEBOOKS_NAV = "Notebooks"

# ----------------------------------------------------------------------------- notebooks


def _start_notebooks(base: Path) -> None:
    """Start running, in a background thread, every notebook whose cached run is missing, one kernel per
    core (`snncomp.kb.notebooks.execute_all`, in the order of `plan`: on a cold cache the baselines several
    notebooks share train first while the others run); each page is rendered as its notebook ends, and
    `on_files` waits for them. The build so waits for the slowest notebook, not for their sum, and the
    rest of the start-up runs meanwhile."""
    targets = {nb: nbcache.cache_path(nb, base) for nb in _notebooks(base)}
    _STATE["notebooks"] = targets
    missing = [(nb, t) for nb, t in targets.items() if not t.exists()]
    _STATE["runs"] = None
    if missing:  # runs in threads: each notebook runs in its own kernel process
        queue = nbcache.plan(missing, base)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snncomp-notebooks")
        shared = [b for e in queue if isinstance(e, nbcache.Train) for b in e.baselines]
        if shared:
            log.info("snncomp: training the baselines the notebooks share: %s",
                     ", ".join(f"{n} seed {s}" for n, s in shared))
        _STATE["runs"] = pool.submit(nbcache.execute_all, queue,
                                     on_start=lambda nb: log.info("snncomp: executing %s", nb.name),
                                     on_done=lambda nb, run: _render(nb, targets[nb], run))
        pool.shutdown(wait=False)


_RENDER_LOCK = threading.Lock()


def _html_path(target: Path) -> Path:
    return target.with_name(f"{target.stem}-{_render_key()}.html")


def _render(nb_path: Path, target: Path, executed) -> str:
    """Render the executed notebook's page, keep it beside its run (`<stem>-<hash>-<render>.html`) and drop
    the pages of its earlier runs and renderings. Called as each notebook ends (one at a time)."""
    with _RENDER_LOCK:
        html = _html_path(target)
        text = notebook_page(nb_path, executed)
        write_atomic(html, text)
        for old in html.parent.glob(f"{nb_path.stem}-*.html"):  # earlier runs' and renderings' pages
            if old != html and old.name.rsplit("-", 2)[0] == nb_path.stem:
                old.unlink(missing_ok=True)
        return text


def _notebook_pages() -> dict[Path, str]:
    """Every notebook's page. A page is rendered once per executed run and kept beside it
    (`<stem>-<hash>-<render>.html`, `<render>` a digest of the rendering code and nbconvert's version), so a
    later build reads it instead of converting the notebook again; runs started by `_start_notebooks`
    are waited for here (their pages were rendered as they ended)."""
    from mkdocs.exceptions import PluginError

    if _STATE.get("runs") is not None:
        try:
            _STATE["runs"].result()
        except nbcache.NotebookError as exc:
            raise PluginError(str(exc)) from None
    out = {}
    for nb_path, target in _STATE["notebooks"].items():
        html = _html_path(target)
        if html.exists():
            out[nb_path] = html.read_text(encoding="utf-8")
            continue
        executed = nbcache.read(target)
        if executed is None:
            raise PluginError(f"snncomp: {nb_path.name} has no executed run at {target}")
        out[nb_path] = _render(nb_path, target, executed)
    return out


def _render_key() -> str:
    if "render_key" not in _STATE:
        import nbconvert

        code = inspect.getsource(notebook_page) + nbconvert.__version__
        _STATE["render_key"] = hashlib.sha256(code.encode()).hexdigest()[:8]
    return _STATE["render_key"]


_IMG_NO_ALT = re.compile(r"<img(?![^>]*\balt=)")


def notebook_page(nb_path: Path, nb) -> str:
    """The page of the executed notebook `nb`: its cells and outputs as HTML, every image given alt text."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="basic")
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb)
    rel = f"notebooks/{nb_path.name}"
    count = iter(range(1, 10_000))
    body = _IMG_NO_ALT.sub(lambda m: f'<img alt="Figure {next(count)} of {rel}, as its code above draws it"', body)
    return (f'<p class="snn-nbnote">Rendered from <code>{rel}</code>, executed at build time. Download '
            f'<a href="../{nb_path.name}" download>{nb_path.name}</a> (the jupytext source) or '
            f'<a href="../{nb_path.stem}.ipynb" download>{nb_path.stem}.ipynb</a> (as executed here, outputs '
            f'included); run it yourself in Jupyter or under <code>make test</code>.</p>\n\n'
            f'<div class="snn-notebook">\n{body}\n</div>\n')


# ----------------------------------------------------------------------------- generated files on disk

GENERATED = Path(".cache") / "site"  # relative to the project root


def _generated(config, uri: str, content: str):
    """A generated file backed by a copy under `.cache/site/docs/`, rewritten only when its content
    changes: `mkdocs serve --dirty` then rebuilds only the generated pages that changed (a page given
    as text would count as changed at every rebuild)."""
    from mkdocs.structure.files import File

    path = _STATE["base"] / GENERATED / "docs" / uri
    data = content.encode("utf-8")
    if not path.exists() or path.read_bytes() != data:
        write_atomic(path, data)
    return File.generated(config, uri, abs_src_path=str(path))


ANCHORS = GENERATED / "anchors.json"  # the cross-reference targets of the last build


def on_env(env, config, files, **kwargs):
    """In a `--dirty` rebuild, give mkdocs-autorefs back the anchors of the pages not rendered this time
    (the API reference above all), as the last build saved them, so that a rebuilt page's links to API
    identifiers still resolve. A clean build renders every page, so nothing is added and a missing
    target still fails it. Runs before autorefs applies the links (its `on_env` has priority -50)."""
    autorefs = config.plugins.get("autorefs")
    path = _STATE["base"] / ANCHORS
    skipped = {f.page.url: f.page for f in files if f.page is not None and f.page.content is None}
    if autorefs is None or not skipped or not path.exists():
        return env
    for identifier, url, primary, title in json.loads(path.read_text(encoding="utf-8")):
        page_url, _, anchor = url.partition("#")
        if anchor and page_url in skipped:
            autorefs.register_anchor(skipped[page_url], identifier, anchor, title=title, primary=primary)
    return env


def on_post_build(config, **kwargs):
    """Save mkdocs-autorefs' anchors for the next `--dirty` rebuild (see `on_env`)."""
    autorefs = config.plugins.get("autorefs")
    if autorefs is None:
        return
    titles = getattr(autorefs, "_title_map", {})
    rows = [[identifier, url, primary, titles.get(url)]
            for primary, urls_of in ((True, autorefs._primary_url_map), (False, autorefs._secondary_url_map))
            for identifier, urls in sorted(urls_of.items()) for url in urls]
    write_atomic(_STATE["base"] / ANCHORS, json.dumps(rows))


def _cached_text(name: str, key: object, make) -> str:
    """`make()`, kept in `.cache/site/<name>-<digest of key>` so that a later build with the same `key`
    reads it instead (the leaderboard's plots: drawing them is most of a warm build's hook time)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = _STATE["base"] / GENERATED / f"{name}-{digest}"
    if path.exists():
        return path.read_text(encoding="utf-8")
    text = make()
    write_atomic(path, text)
    for old in path.parent.glob(f"{name}-*"):
        if old != path and re.fullmatch(re.escape(name) + r"-[0-9a-f]{16}", old.name):
            old.unlink(missing_ok=True)
    return text


# ----------------------------------------------------------------------------- MkDocs events

_STATE: dict = {}


def _notebooks(base: Path) -> list[Path]:
    return sorted((base / "notebooks").glob("*.py"))


def on_config(config, **kwargs):
    base = Path(config.config_file_path).parent
    _STATE["base"] = base
    _start_notebooks(base)  # first: the kernels start while the rest of the build gets ready
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
    for nb, page in _notebook_pages().items():
        gen[f"notebooks/{nb.stem}.md"] = page
    board_rows = [r for r in leaderboard.read_store(base / leaderboard.STORE) if "/" not in r["recipe"]]
    summary = leaderboard.summarise(board_rows, _sections())
    plotter = inspect.getsource(leaderboard.pareto_svg)
    for name, metric, label in (("energy", "e45", "energy per sample at 45 nm (pJ)"),
                                ("footprint", "footprint_kb", "deployed footprint (KiB)")):
        gen[f"assets/board/pareto_{name}.svg"] = _cached_text(
            f"pareto_{name}.svg", [summary, metric, label, plotter],
            lambda metric=metric, label=label: leaderboard.pareto_svg(summary, metric, label))
    for uri, content in gen.items():
        files.append(_generated(config, uri, content))
    for nb, target in _STATE["notebooks"].items():  # the downloads each notebook page offers
        files.append(File.generated(config, f"notebooks/{nb.name}", abs_src_path=str(nb)))
        files.append(File.generated(config, f"notebooks/{nb.stem}.ipynb", abs_src_path=str(target)))
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
    if page is None:  # called outside a build (tests): no page to close
        return markdown
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
