"""The site builds with --strict, renders generated pages and notebooks, requests nothing from the
network; an unknown citation key or an unresolved method link stops the build; notebooks that nbval
ran earlier in the session are rendered from its run, not executed again."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from snncomp import registry
from snncomp.kb import pages

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = [sys.executable, "-m", "mkdocs"]


@pytest.fixture(scope="module")
def build(site_build):
    """The session's strict build of the real site (tests/conftest.py; tests/test_browser.py drives the same one)."""
    return site_build


@pytest.fixture(scope="module")
def site(build):
    return build[0]


def test_generated_pages_exist(site):
    for page in ["taxonomy", "methods", "bibliography", "papers/chen2021pruning", "notebooks/01_biology",
                 "notebooks/02_neuron_units", "api", "pruning"]:
        assert (site / page / "index.html").exists(), page


def test_citations_link_to_bibliography(site):
    html = (site / "biology" / "index.html").read_text()
    assert 'href="../bibliography/#hodgkin1952quantitative"' in html
    assert "[@" not in re.sub(r"<pre.*?</pre>", "", html, flags=re.S)


def test_paper_page_has_bibtex_and_reported_numbers(site):
    html = (site / "papers" / "chen2021pruning" / "index.html").read_text()
    text = re.sub(r"<[^>]+>", "", html)  # the BibTeX block is syntax-highlighted
    assert "@inproceedings{chen2021pruning," in text and '<div class="highlight"' in html
    assert "reported by the paper" in html


def test_section_pages_have_method_tables(site):
    html = (site / "pruning" / "index.html").read_text()
    assert "Grad R" in html and "bibliography/#chen2021pruning" in html


def test_notebooks_render_with_outputs(site):
    html = (site / "notebooks" / "02_neuron_units" / "index.html").read_text()
    assert "data:image/png;base64" in html
    assert "trained in" in html
    assert "on 1 torch thread(s)" in html  # the kernels run one thread, in the build and under nbval alike


def test_every_notebook_page_offers_its_source_and_its_executed_ipynb(site):
    import nbformat

    for nb in sorted((ROOT / "notebooks").glob("*.py")):
        html = (site / "notebooks" / nb.stem / "index.html").read_text()
        assert f'href="../{nb.name}" download' in html and f'href="../{nb.stem}.ipynb" download' in html, nb.name
        assert (site / "notebooks" / nb.name).read_bytes() == nb.read_bytes()
        run = nbformat.read(str(site / "notebooks" / f"{nb.stem}.ipynb"), as_version=4)
        assert any(c.get("outputs") for c in run.cells if c.cell_type == "code"), f"{nb.stem}.ipynb has no outputs"


def test_notebooks_run_by_nbval_are_not_executed_again(build, nbval_cached):
    """nbval (run first, see `testpaths`) caches each notebook it ran; the build renders those runs."""
    if not nbval_cached:
        pytest.skip("no notebook ran under nbval earlier in this session (the build executed them itself)")
    _, executed = build
    assert not executed & nbval_cached, f"executed again by the site build: {sorted(executed & nbval_cached)}"


def test_notebooks_nav_is_generated(site):
    html = (site / "index.html").read_text()
    for nb in sorted((ROOT / "notebooks").glob("*.py")):
        assert f'href="notebooks/{nb.stem}/"' in html, nb.name
    assert "02 Neuron units" in html


def test_api_page_documents_every_module_and_method(site):
    html = (site / "api" / "index.html").read_text()
    for module in pages.api_modules():
        assert f'id="{module}"' in html, module
    for m in registry.methods():
        assert f'id="{m.qualname}"' in html, m.qualname


def test_method_links_resolve_to_the_api_page(site):
    html = (site / "pruning" / "index.html").read_text()
    m = registry.methods("pruning")[0]
    assert f'href="../api/#{m.qualname}"' in html
    card = next(iter(m.keys))
    assert f'../../api/#{m.qualname}"' in (site / "papers" / card / "index.html").read_text()


def test_method_index_is_sortable_and_filterable(site):
    html = (site / "methods" / "index.html").read_text()
    assert 'class="snn-sortable"' in html and 'class="md-input snn-filter"' in html
    assert html.count("<tr>") >= 50


def test_math_and_fonts_are_offline(site):
    assert (site / "assets" / "katex" / "katex.min.js").exists()
    assert list((site / "assets" / "katex" / "fonts").glob("*.woff2"))
    for page in site.rglob("*.html"):
        text = page.read_text()
        for bad in ("fonts.googleapis", "fonts.gstatic", "cdn.jsdelivr", "unpkg.com", "mathjax"):
            assert bad not in text.lower(), (page, bad)


def _mini_project(tmp: Path, page_text: str) -> Path:
    for name in ("taxonomy.yaml", "references.bib"):
        shutil.copy(ROOT / name, tmp / name)
    shutil.copytree(ROOT / "papers", tmp / "papers")
    shutil.copytree(ROOT / "benchmarks" / "results", tmp / "benchmarks" / "results")
    (tmp / "notebooks").mkdir()
    (tmp / "implementations" / "snncomp").mkdir(parents=True)
    (tmp / "docs").mkdir()
    for page in (ROOT / "docs").glob("*.md"):  # the families' anchors need the section pages' headings only
        if page.name != "index.md":
            heads = [line for line in page.read_text().splitlines() if line.startswith("#")]
            (tmp / "docs" / page.name).write_text("\n\n".join(heads) + "\n")
    (tmp / "docs" / "index.md").write_text(page_text)
    hook = ROOT / "hooks" / "sitegen.py"
    (tmp / "mkdocs.yml").write_text(
        "site_name: t\nstrict: true\ntheme: {name: material, font: false}\n"
        f"hooks: ['{hook}']\nvalidation: {{links: {{not_found: info, unrecognized_links: info, anchors: info}}}}\n"
    )
    return tmp


def test_unknown_citation_fails_the_build(tmp_path):
    proj = _mini_project(tmp_path, "# t\n\nAs shown [@nobody2099nothing].\n")
    res = subprocess.run(MKDOCS + ["build", "--strict", "-q", "-d", str(tmp_path / "out")], cwd=proj,
                         capture_output=True, text=True, env={**os.environ, "SNNCOMP_ROOT": str(proj)})
    assert res.returncode != 0
    assert "unknown citation key 'nobody2099nothing'" in res.stdout + res.stderr


def test_known_citation_builds(tmp_path):
    proj = _mini_project(tmp_path, "# t\n\nAs shown [@xie2024efficient].\n")
    res = subprocess.run(MKDOCS + ["build", "--strict", "-q", "-d", str(tmp_path / "out")], cwd=proj,
                         capture_output=True, text=True, env={**os.environ, "SNNCOMP_ROOT": str(proj)})
    assert res.returncode == 0, res.stdout + res.stderr
    assert "bibliography/#xie2024efficient" in (tmp_path / "out" / "index.html").read_text()


def test_unresolved_method_link_fails_the_build(tmp_path):
    """Method links are autorefs identifiers: one the API page does not document stops a strict build."""
    proj = _mini_project(tmp_path, "# t\n\n[`ghost`][snncomp.nowhere.ghost]\n")
    text = (proj / "mkdocs.yml").read_text().replace("validation:", "plugins: [search, mkdocstrings]\nvalidation:")
    (proj / "mkdocs.yml").write_text(text)
    # no -q: MkDocs 1.6's --quiet drops warnings before --strict counts them
    res = subprocess.run(MKDOCS + ["build", "--strict", "-d", str(tmp_path / "out")], cwd=proj,
                         capture_output=True, text=True, env={**os.environ, "SNNCOMP_ROOT": str(proj)})
    assert res.returncode != 0
    unresolved = re.findall(r"(?:reference|target)[^\n]*?'?(snncomp[\w.]+)", res.stdout + res.stderr)
    assert set(unresolved) == {"snncomp.nowhere.ghost"}, res.stdout + res.stderr


def test_page_builders_link_methods_by_identifier():
    from snncomp.kb.taxonomy import Knowledge

    k = Knowledge.load(ROOT)
    m = registry.methods("pruning")[0]
    assert f"[`{m.name}`][{m.qualname}]" in pages.section_table(k, "pruning")
    card = k.cards[next(key for key in m.keys if key in k.cards)]
    assert f"[`{m.name}`][{m.qualname}]" in pages.card_page(k, card)
    assert pages.notebook_title("03_pruning") == "03 Pruning"
    assert pages.notebook_title("02_neuron_units") == "02 Neuron units"
    modules = pages.api_modules()
    assert modules == sorted(modules) and "snncomp.kb.bib" in modules and "snncomp.kb.pages" in modules
    assert {m.fn.__module__ for m in registry.methods()} <= set(modules)
    assert pages.api_page(["snncomp.a", "snncomp.b"]).count(":::") == 2


def test_results_marker_naming_a_missing_table_fails_clearly(tmp_path):
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "x.json").write_text(json.dumps({"rows": [{"a": 1}], "other": [{"b": 2}]}))
    assert "| a |" in pages.results_block(tmp_path, "x")
    with pytest.raises(KeyError, match=r"results marker 'x nope'.*has no table 'nope'.*\['other', 'rows'\]"):
        pages.results_block(tmp_path, "x", "nope")


def test_rows_measured_before_a_fix_are_marked_and_stale_marks_fail(tmp_path):
    res = tmp_path / "benchmarks" / "results"
    res.mkdir(parents=True)
    (res / "x.json").write_text(json.dumps({"rows": [{"method": "a", "acc": 1}, {"method": "b", "acc": 2}]}))
    (res / "before_fix.yaml").write_text('- {file: x, table: rows, match: [b], why: "b changed."}\n'
                                         '- {file: y, table: rows, match: [zz], why: "another file."}\n')
    out = pages.results_block(tmp_path, "x")
    assert "| a | 1 |" in out and "| b† | 2 |" in out
    assert "† Measured before a fix changed this method (issue 18): b changed." in out
    (res / "before_fix.yaml").write_text('- {file: x, table: "*", match: all, why: "old baselines."}\n')
    out = pages.results_block(tmp_path, "x")
    assert "| b | 2 |" in out and "Every row above was measured before a fix (issue 18): old baselines." in out
    (res / "before_fix.yaml").write_text('- {file: x, table: rows, match: [c], why: "gone."}\n')
    with pytest.raises(ValueError, match=r"entry 1 marks row 'c'.*its rows: \['a', 'b'\]"):
        pages.results_block(tmp_path, "x")
    (res / "before_fix.yaml").write_text('- {file: x, table: rows, why: "no match field"}\n')
    with pytest.raises(ValueError, match="entry 1 needs the fields"):
        pages.results_block(tmp_path, "x")


# ----------------------------------------------------------------------------- home page, section endings, method index


SECTION_PAGES = ("biology", "neuron-units", "pruning", "quantization", "distillation", "spike-reduction")


def _ids(site: Path, page: str) -> set[str]:
    return set(re.findall(r'id="([^"]+)"', (site / page / "index.html").read_text()))


def test_home_page_map_links_every_family_to_a_heading_that_exists(site):
    from snncomp.kb.taxonomy import Knowledge

    html = (site / "index.html").read_text()
    k = Knowledge.load(ROOT)
    links = re.findall(r'<div class="tax-family"><a href="([\w-]+)/(?:#([\w-]+))?">', html)
    assert len(links) == len(k.families)
    for page, anchor in links:
        assert (site / page / "index.html").exists(), page
        assert not anchor or anchor in _ids(site, page), (page, anchor)
    assert all(f'class="tax-title" href="{s.page[:-3]}/"' in html for s in k.sections)


def test_home_page_headline_comes_from_the_store(site):
    from snncomp.kb import leaderboard

    text = re.sub(r"<[^>]+>", "", (site / "index.html").read_text())
    assert "× cheaper than the FP32 dense ANN" in text and "recipes/targets.toml" in text
    rows = [r for r in leaderboard.read_store(ROOT / leaderboard.STORE) if r["recipe"] == "targets"]
    assert any(r["command"] in text for r in rows)
    assert "Three ways in" in text and "Read a section" in text and "Run a notebook" in text and "Cite a method" in text


def test_every_section_page_ends_with_methods_notebook_and_references(site):
    for page in SECTION_PAGES:
        html = (site / page / "index.html").read_text()
        body = html[:html.index("</article>")]
        i, j, r = (body.find(f'id="{h}"') for h in ("papers-in-this-section", "run-it", "references"))
        assert 0 < i < j < r, page
        assert "<table>" in body[i:j] and 'href="../notebooks/' in body[j:r], page
        refs = re.findall(r'<li><a class="snn-cite" href="../bibliography/#([\w]+)"', body[r:])
        cited = set(re.findall(r'href="../bibliography/#(\w+)"', body[:r]))
        assert refs and set(refs) == cited, page  # every cited work once, nothing else
        assert not re.search(r"<h[1-6]", body[r + 20:]), page  # nothing after the references


def test_method_index_has_two_full_width_views(site):
    html = (site / "methods" / "index.html").read_text()
    # table ids differ from every heading id (the h1 "Method index" is id="method-index"), so filters find them
    assert html.count('id="snn-method-results"') == 1 and html.count('id="snn-paper-cards"') == 1
    assert html.count('class="snn-wide snn-full"') == 2
    assert 'data-md-type="toc" hidden>' in html  # front matter `hide: [toc]`: the tables get the width
    results = html[html.index('id="snn-method-results"'):html.index('id="snn-paper-cards"')]
    for m in registry.methods():
        assert f'href="../api/#{m.qualname}"' in results, m.name
    assert "not measured" in results and "45 nm energy (nJ)" in results


def test_citing_page_shows_the_project_citation(site):
    text = re.sub(r"<[^>]+>", "", (site / "citing" / "index.html").read_text())
    assert "cff-version: 1.2.0" in text and "@software{snncomp," in text and "snncomp cite" in text


def test_section_closing_adds_what_is_missing():
    from snncomp.kb import blocks
    from snncomp.kb.taxonomy import Knowledge

    k = Knowledge.load(ROOT)
    s = k.section("pruning")
    bare = blocks.section_closing(k, s, "# Pruning\n\nAs [@han2015learning] showed.\n", "../")
    assert "## Papers in this section" in bare and "<!-- snncomp:methods-table -->" in bare
    assert "[03 Pruning](notebooks/03_pruning.md)" in bare and "## References" in bare
    assert 'href="../bibliography/#han2015learning"' in bare
    full = "# Pruning\n\n" + pages.section_table(k, "pruning")
    assert blocks.section_closing(k, s, full, "../").count("## Papers in this section") == 0
    from dataclasses import replace

    no_nb = blocks.section_closing(k, replace(s, notebook=None), full, "../")
    assert "No notebook covers this section yet" in no_nb


def test_taxonomy_anchor_that_is_no_heading_fails_clearly(tmp_path):
    from types import SimpleNamespace

    from snncomp.kb import anchors

    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("assets"))
    text = (ROOT / "taxonomy.yaml").read_text().replace("anchor: structured-pruning", "anchor: no-such-heading")
    (tmp_path / "taxonomy.yaml").write_text(text)
    with pytest.raises(ValueError, match=r"family pruning/structured: anchor 'no-such-heading' is no heading of "
                                         r"docs/pruning.md; its headings: pruning, unstructured-pruning"):
        anchors.family_links(SimpleNamespace(base=tmp_path))
    (tmp_path / "taxonomy.yaml").write_text(text.replace("        anchor: no-such-heading\n", ""))
    with pytest.raises(ValueError, match=r"family pruning/structured has no `anchor:`"):
        anchors.family_links(SimpleNamespace(base=tmp_path))
    assert anchors.headings("# A `b` [c](d.md)\n```\n# not a heading\n```\n## E {#custom}\n") == ["a-b-c", "custom"]


def test_headline_without_a_result_says_how_to_get_one(tmp_path):
    from snncomp.kb import blocks

    assert "has no result in `benchmarks/results/board.jsonl` yet" in blocks.headline(tmp_path)
