"""The site builds with --strict, renders generated pages and notebooks, requests nothing from the
network, and an unknown citation key stops the build."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = [sys.executable, "-m", "mkdocs"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    res = subprocess.run(MKDOCS + ["build", "--strict", "-q", "-d", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


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
    (tmp / "docs" / "index.md").write_text(page_text)
    hook = ROOT / "implementations" / "snncomp" / "sitegen.py"
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
