"""The built site in a real browser. Headless Chromium (Debian's `chromium` package, driven over its
DevTools pipe by tests/browser_cdp.py, no other package) loads every page of the session's strict build
(tests/conftest.py, the build tests/test_site.py checks) from a server on 127.0.0.1 and must find: no
console error, no request leaving 127.0.0.1, no broken internal link or anchor, math rendered by KaTeX,
notebook outputs and plots, and the site search (MkDocs Material's box, typed into) listing the right
pages. It saves screenshots of five pages in .cache/screenshots/ and prints that path.

Without Chromium every test here fails with a message saying how to install it; nothing is skipped."""

from __future__ import annotations

import html.parser
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import browser_cdp as cdp
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / ".cache" / "screenshots"

# page -> file name of its screenshot; the notebook is scrolled to its first plot first
SCREENSHOTS = {"": "home.png", "pruning/": "section-pruning.png", "notebooks/02_neuron_units/": "notebook-02.png",
               "papers/chen2021pruning/": "paper-chen2021pruning.png", "benchmark/": "benchmark.png"}

# query -> pages that must be among its results (the first one on the first screen of ten), read off docs/
# and papers/: Grad R and gradient rewiring are chen2021pruning's method and title and the subject of
# pruning.md's unstructured family; Chen is a bibliography entry's author and that card's (its BibTeX);
# LSQ is esser2020learned's method and a quantization.md heading; early exit is spike-reduction.md's
# dynamic-inference heading and the subject of SEENN (li2023seenn).
SEARCHES = {
    "Grad R": ["papers/chen2021pruning/", "pruning/"],
    "gradient rewiring": ["papers/chen2021pruning/", "pruning/"],
    "Chen": ["bibliography/", "papers/chen2021pruning/"],
    "LSQ": ["papers/esser2020learned/", "quantization/"],
    "early exit": ["spike-reduction/", "papers/li2023seenn/"],
}

FIRST_PLOT = ".output_area img, .jp-OutputArea-output img"  # nbconvert's classic and lab templates

# what the page shows once it has run, read after the load
PROBE = """(() => {
  const OUTPUT = '.output_area, .jp-OutputArea-output';  // nbconvert's classic and lab templates
  const all = s => Array.from(document.querySelectorAll(s));
  const nb = document.querySelector('.snn-notebook');
  return {
    links: all('a[href]').map(a => a.href),
    arithmatex: all('.arithmatex').length,
    unrendered: all('.arithmatex').filter(e => !e.querySelector('.katex')).map(e => e.textContent.slice(0, 80)),
    katex: all('.katex').length,
    katexErrors: all('.katex-error').map(e => (e.getAttribute('title') || e.textContent).slice(0, 120)),
    brokenImages: all('img').filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 100)),
    notebook: nb === null ? null : {
      outputs: nb.querySelectorAll(OUTPUT).length,
      images: Array.from(nb.querySelectorAll(OUTPUT.split(', ').map(o => o + ' img').join(', ')))
        .filter(i => i.complete && i.naturalWidth > 0).length,
    },
  };
})()"""


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and (name == "id" or (tag == "a" and name == "name")):
                self.ids.add(value)


@dataclass
class Crawl:
    """Every page of the site as Chromium loaded it."""

    site: Path
    base: str
    tab: cdp.Tab
    visits: dict[str, cdp.Visit] = field(default_factory=dict)  # page path ("pruning/") -> its load
    probes: dict[str, dict] = field(default_factory=dict)  # page path -> PROBE's answer
    shots: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    _ids: dict[Path, set[str]] = field(default_factory=dict)

    def ids(self, page: Path) -> set[str]:
        """The ids of a built HTML file, from its source."""
        if page not in self._ids:
            parser = _Ids()
            parser.feed(page.read_text(encoding="utf-8"))
            self._ids[page] = parser.ids
        return self._ids[page]

    def local_file(self, url: str) -> Path | None:
        """The built file a URL of the local server names (a folder means its index.html), or None."""
        path = self.site / unquote(urlsplit(url).path).lstrip("/")
        if path.is_dir():
            path = path / "index.html"
        return path if path.is_file() else None


def page_paths(site: Path) -> list[str]:
    """Every HTML page of the build as the path a reader opens ("pruning/", "404.html")."""
    out = []
    for f in sorted(site.rglob("*.html")):
        rel = f.relative_to(site).as_posix()
        out.append(rel[: -len("index.html")] if rel.endswith("index.html") else rel)
    return out


@contextmanager
def load(binary: str, site: Path, pages: list[str], shots: dict[str, Path] | None = None):
    """A `Crawl` of `pages` of the built `site` in a fresh Chromium, with screenshots of the pages
    `shots` names (a notebook scrolled to its first plot); the browser stays open (for the search
    tests) until the context ends."""
    start = time.monotonic()
    browser = cdp.Browser(binary)
    try:
        with cdp.serve(site) as base:
            c = Crawl(site, base, browser.new_tab())
            for page in pages:
                c.visits[page] = c.tab.visit(base + page)
                c.probes[page] = c.tab.evaluate(PROBE)
                if shots and page in shots:
                    if page.startswith("notebooks/"):
                        c.tab.evaluate(f"document.querySelector('{FIRST_PLOT}')?.scrollIntoView({{block: 'center'}})")
                        c.tab.settle(0.3)
                    c.shots[page] = c.tab.screenshot(shots[page])
            c.seconds = time.monotonic() - start
            yield c
    finally:
        browser.close()


# ----------------------------------------------------------------------------- the checks


def console_problems(c: Crawl) -> dict[str, list[str]]:
    """Per page: console errors, uncaught exceptions, failed requests."""
    return {p: v.errors + v.failed for p, v in c.visits.items() if v.errors or v.failed}


def outside_requests(c: Crawl) -> dict[str, list[str]]:
    """Per page: the requests (its own and its workers') for anything not served by the local server."""
    local = c.base.rstrip("/") + "/"
    out = {}
    for page, visit in c.visits.items():
        bad = [u for u in visit.requests
               if urlsplit(u).scheme not in ("data", "blob", "about") and not u.startswith(local)]
        if bad:
            out[page] = bad
    return out


def broken_links(c: Crawl) -> tuple[int, dict[str, list[str]]]:
    """How many links to the local site the pages hold, and per page those to a missing file or to an
    id the target's built HTML lacks."""
    local = c.base.rstrip("/") + "/"
    broken: dict[str, list[str]] = {}
    checked = 0
    for page, probe in c.probes.items():
        for url in probe["links"]:
            if not url.startswith(local):
                continue
            checked += 1
            target = c.local_file(url)
            fragment = unquote(urlsplit(url).fragment)
            if target is None:
                broken.setdefault(page, []).append(f"no such page: /{url.removeprefix(local)}")
            elif fragment and target.suffix == ".html" and fragment not in c.ids(target):
                broken.setdefault(page, []).append(f"no id {fragment!r} on {target.relative_to(c.site)}")
    return checked, broken


def broken_images(c: Crawl) -> dict[str, list[str]]:
    return {p: probe["brokenImages"] for p, probe in c.probes.items() if probe["brokenImages"]}


def math_problems(c: Crawl) -> tuple[list[str], dict[str, list[str]]]:
    """The pages with math (arithmatex spans in their built HTML), and per page KaTeX's errors and the
    math it left as TeX."""
    math_pages = [p for p in c.probes if 'class="arithmatex"' in c.local_file(c.base + p).read_text()]
    problems = {p: [f"KaTeX error: {e}" for e in probe["katexErrors"]] for p, probe in c.probes.items()
                if probe["katexErrors"]}
    for p in math_pages:
        if c.probes[p]["unrendered"]:
            problems.setdefault(p, []).extend(f"left as TeX: {t}" for t in c.probes[p]["unrendered"])
    return math_pages, problems


def _report(problems: dict[str, list[str]]) -> str:
    return "\n".join(f"{page or '(home)'}: {p}" for page, items in problems.items() for p in items)


# ----------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def chromium() -> str:
    try:
        binary = cdp.find_chromium()
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
    if binary is None:
        pytest.fail(cdp.missing_message(), pytrace=False)
    return binary


@pytest.fixture(scope="module")
def crawl(chromium, site_build):
    site = site_build[0]
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    with load(chromium, site, page_paths(site), {p: SHOTS / name for p, name in SCREENSHOTS.items()}) as c:
        yield c


def test_the_checks_catch_a_broken_page(chromium, tmp_path):
    """The recording and the checks, on a two-page site with every fault they look for."""
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "index.html").write_text('<h1 id="here">b</h1><span class="arithmatex">\\(x\\)</span>')
    (tmp_path / "index.html").write_text(
        '<a href="b/#here">fine</a> <a href="b/#gone">bad anchor</a> <a href="c/">no page</a>'
        '<img src="http://example.invalid/logo.png"> <span class="katex-error" title="bad TeX">\\frac</span>'
        "<script>console.error('on purpose'); fetch('https://example.invalid/track');</script>")
    with load(chromium, tmp_path, ["", "b/"]) as c:
        pass
    outside = outside_requests(c)
    assert set(outside) == {""} and sorted(outside[""]) == ["http://example.invalid/logo.png",
                                                            "https://example.invalid/track"]
    errors = " ".join(console_problems(c)[""])
    assert "on purpose" in errors and "ERR_NAME_NOT_RESOLVED" in errors and set(console_problems(c)) == {""}
    checked, broken = broken_links(c)
    assert checked == 3 and broken == {"": ["no id 'gone' on b/index.html", "no such page: /c/"]}
    assert list(broken_images(c)) == [""]
    math_pages, problems = math_problems(c)
    assert math_pages == ["b/"] and problems == {"": ["KaTeX error: bad TeX"], "b/": ["left as TeX: \\(x\\)"]}


def test_every_page_was_loaded(crawl):
    pages = page_paths(crawl.site)
    assert len(pages) > 50 and {"", "pruning/", "benchmark/", "api/", "404.html"} <= set(pages)
    assert set(crawl.visits) == set(pages)
    assert all(v.loaded and v.requests[0] == crawl.base + p for p, v in crawl.visits.items())


def test_no_console_error_and_no_failed_request(crawl):
    problems = console_problems(crawl)
    assert not problems, "console errors or failed requests:\n" + _report(problems)


def test_no_request_leaves_localhost(crawl):
    outside = outside_requests(crawl)
    assert not outside, "requests to other hosts:\n" + _report(outside)
    # Material's search worker fetched its index, and its request was recorded with the page's
    assert any(u.endswith("search/search_index.json") for u in crawl.visits[""].requests)


def test_internal_links_and_anchors_resolve(crawl):
    checked, broken = broken_links(crawl)
    assert checked > 1000
    assert not broken, "broken internal links:\n" + _report(broken)


def test_images_load(crawl):
    broken = broken_images(crawl)
    assert not broken, "images that did not load:\n" + _report(broken)


def test_math_is_rendered_by_katex(crawl):
    math_pages, problems = math_problems(crawl)
    assert {"neuron-units/", "quantization/", "energy/"} <= set(math_pages), math_pages
    assert not problems, "math KaTeX did not render:\n" + _report(problems)
    assert all(crawl.probes[p]["katex"] >= crawl.probes[p]["arithmatex"] > 0 for p in math_pages)


def test_notebook_pages_show_outputs_and_plots(crawl):
    notebooks = sorted((ROOT / "notebooks").glob("*.py"))
    assert notebooks
    for nb in notebooks:
        page = f"notebooks/{nb.stem}/"
        shown = crawl.probes[page]["notebook"]
        assert shown is not None, f"{page}: no rendered notebook"
        assert shown["outputs"] > 0, f"{page}: no cell output"
        html_text = crawl.local_file(crawl.base + page).read_text()
        built = html_text[html_text.index('class="snn-notebook"'):].count("<img ")
        assert shown["images"] == built, f"{page}: {shown['images']} of its {built} output images displayed"
        source = nb.read_text()
        if "plt." in source or "matplotlib" in source:
            assert shown["images"] > 0, f"{page}: {nb.name} plots, but its page shows no image"


SEARCH = """(async () => {
  const list = document.querySelector('.md-search-result__list');
  const scroll = document.querySelector('.md-search__scrollwrap');
  const meta = document.querySelector('.md-search-result__meta');
  const wait = ms => new Promise(r => setTimeout(r, ms));
  for (let i = 0; i < 200 && !/matching document/i.test(meta.textContent); i++) await wait(50);
  const links = () => Array.from(list.querySelectorAll(':scope > li > a.md-search-result__link')).map(a => a.href);
  const first = links();  // the first screen of results, ten at most
  // Material appends the rest four at a time whenever the list is scrolled to its end
  const total = parseInt(meta.textContent.replace(/[^0-9]/g, '')) || list.children.length;
  for (let idle = 0; list.children.length < total && idle < 20; ) {
    const before = list.children.length;
    scroll.scrollTop = 0;
    await wait(30);
    scroll.scrollTop = scroll.scrollHeight;
    await wait(120);
    idle = list.children.length === before ? idle + 1 : 0;
  }
  return {meta: meta.textContent.trim(), query: document.querySelector('input.md-search__input').value,
          total, first, all: links()};
})"""


@pytest.mark.parametrize("query", list(SEARCHES))
def test_search_finds_the_right_pages(crawl, query):
    """Typed into the search box, a query lists its first expected page on the first screen of results
    (ten pages) and every other expected page somewhere in the list."""
    tab = crawl.tab
    tab.visit(crawl.base)
    tab.evaluate("document.querySelector('input.md-search__input').focus()")
    tab.type_text(query)
    found = tab.evaluate(f"({SEARCH})()", timeout=60)
    assert found["query"] == query

    def pages(urls):  # result links carry ?h=QUERY (search.highlight) and #section
        return list(dict.fromkeys(urlsplit(u).path.lstrip("/") for u in urls))

    first, every = pages(found["first"]), pages(found["all"])
    assert len(every) == found["total"], found  # every result was read
    primary, *others = SEARCHES[query]
    assert primary in first, f"search {query!r} ({found['meta']}): {primary} is not on the first screen {first}"
    missing = [p for p in others if p not in every]
    assert not missing, f"search {query!r} ({found['meta']}) misses {missing}; it lists {every}"


def test_screenshots_show_the_pages(crawl, capsys):
    from PIL import Image

    assert set(crawl.shots) == set(SCREENSHOTS)
    for page, path in crawl.shots.items():
        assert path.stat().st_size > 20_000, f"{path}: only {path.stat().st_size} bytes"
        with Image.open(path) as im:
            assert im.size == (1280, 1000), (path, im.size)
            colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        commonest = max(n for n, _ in colours)
        assert len(colours) >= 64, f"{path}: {len(colours)} colours, a blank or broken page"
        assert commonest < 0.97 * 1280 * 1000, f"{path}: one colour covers {commonest / 1280 / 10:.0f}% of it"
    with capsys.disabled():
        print(f"\nbrowser test: {len(crawl.visits)} pages loaded in Chromium in {crawl.seconds:.0f} s; "
              f"screenshots in {SHOTS}")
