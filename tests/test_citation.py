"""CITATION.cff is valid Citation File Format 1.2.0, agrees with pyproject.toml and mkdocs.yml, cites the
survey exactly as references.bib does, and the site shows it with a BibTeX entry made from it.

The checks are our own reading of the CFF 1.2.0 schema (required keys, the known top-level keys, person
and entity authors, dates, DOIs, references); a broken fixture shows each check fires."""

import datetime as dt
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from snncomp.kb import bib, blocks

ROOT = Path(__file__).resolve().parents[1]

TOP_KEYS = {"abstract", "authors", "cff-version", "commit", "contact", "date-released", "doi", "identifiers",
            "keywords", "license", "license-url", "message", "preferred-citation", "references", "repository",
            "repository-artifact", "repository-code", "title", "type", "url", "version"}
REQUIRED = ("cff-version", "message", "title", "authors")
REFERENCE_REQUIRED = ("type", "authors", "title")
DATE = re.compile(r"^\d{4}-(0[1-9]|1[012])-(0[1-9]|[12]\d|3[01])$")
DOI = re.compile(r"^10\.\d{4,9}(\.\d+)?/\S+$")
URL = re.compile(r"^(https|http|ftp|sftp)://.+")


def _people(where: str, people) -> list[str]:
    if not isinstance(people, list) or not people:
        return [f"{where}: expected a non-empty list of persons or entities"]
    out = []
    for n, p in enumerate(people, 1):
        if not isinstance(p, dict) or not ({"name"} & set(p) or {"family-names", "given-names"} & set(p)):
            out.append(f"{where}[{n}]: neither an entity (name) nor a person (family-names, given-names): {p!r}")
    return out


def cff_problems(data) -> list[str]:
    """Every way `data` (a parsed CITATION.cff) breaks CFF 1.2.0 as read here; empty when valid."""
    if not isinstance(data, dict):
        return [f"expected a mapping, got {type(data).__name__}"]
    out = [f"missing required key {k!r}" for k in REQUIRED if k not in data]
    out += [f"unknown top-level key {k!r}" for k in sorted(set(data) - TOP_KEYS)]
    if data.get("cff-version") != "1.2.0":
        out.append(f"cff-version must be the string '1.2.0', got {data.get('cff-version')!r}")
    for key in ("message", "title"):
        if key in data and not (isinstance(data[key], str) and data[key].strip()):
            out.append(f"{key} must be a non-empty string")
    if "authors" in data:
        out += _people("authors", data["authors"])
    if "date-released" in data and not DATE.match(str(data["date-released"])):
        out.append(f"date-released {data['date-released']!r} is not YYYY-MM-DD")
    if "doi" in data and not DOI.match(str(data["doi"])):
        out.append(f"doi {data['doi']!r} is not a bare DOI")
    for key in ("url", "repository-code", "repository", "license-url"):
        if key in data and not URL.match(str(data[key])):
            out.append(f"{key} {data[key]!r} is not an http(s) URL")
    for n, ref in enumerate(data.get("references") or [], 1):
        if not isinstance(ref, dict):
            out.append(f"references[{n}]: expected a mapping")
            continue
        out += [f"references[{n}]: missing {k!r}" for k in REFERENCE_REQUIRED if k not in ref]
        out += _people(f"references[{n}].authors", ref.get("authors"))
        if "doi" in ref and not DOI.match(str(ref["doi"])):
            out.append(f"references[{n}]: doi {ref['doi']!r} is not a bare DOI")
        for key in ("year", "start", "end"):
            if key in ref and not isinstance(ref[key], int):
                out.append(f"references[{n}]: {key} must be an integer")
    return out


@pytest.fixture(scope="module")
def cff():
    return yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))


def test_citation_file_is_valid_cff_1_2_0(cff):
    assert cff_problems(cff) == []
    assert cff["cff-version"] == "1.2.0"
    assert isinstance(cff["date-released"], (str, dt.date))


def test_broken_fixture_is_caught():
    broken = {"cff-version": "1.1.0", "title": "", "authors": [{"affiliation": "x"}], "date-released": "2026-13-01",
              "doi": "https://doi.org/10.1/x", "homepage": "x",
              "references": [{"title": "t", "authors": [], "year": "2024"}]}
    problems = "\n".join(cff_problems(broken))
    for expected in ("missing required key 'message'", "unknown top-level key 'homepage'", "cff-version must be",
                     "title must be a non-empty string", "authors[1]: neither an entity", "not YYYY-MM-DD",
                     "is not a bare DOI", "references[1]: missing 'type'", "references[1].authors: expected",
                     "references[1]: year must be an integer"):
        assert expected in problems, expected


def test_citation_agrees_with_the_project(cff):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert str(cff["version"]) == project["version"]
    assert cff["license"] == project["license"]["text"]
    repo_url = yaml.safe_load((ROOT / "mkdocs.yml").read_text()).get("repo_url") or ""
    # the repository names no URL of its own; the CFF must not invent one (nor miss one named later)
    assert cff.get("repository-code", "") == repo_url


def test_survey_reference_matches_the_bibliography(cff):
    e = bib.load(ROOT / "references.bib")["xie2024efficient"]
    ref = next(r for r in cff["references"] if r["title"] == bib.field(e, "title"))
    assert [p["family-names"] for p in ref["authors"]] == bib.authors(e)
    assert [p["given-names"] for p in ref["authors"]] == [" ".join(p.first) for p in bib.people(e)]
    assert ref["year"] == int(bib.field(e, "year"))
    assert ref["doi"] == bib.field(e, "doi")
    assert re.split(r"\D+", bib.field(e, "pages")) == [str(ref["start"]), str(ref["end"])]
    assert ref["collection-title"] == bib.field(e, "booktitle")
    assert ref["publisher"]["name"] == bib.field(e, "publisher")
    assert bib.field(e, "series") in ref["notes"]
    assert {"type": "other", "value": f"arXiv:{bib.field(e, 'eprint')}"}.items() <= ref["identifiers"][1].items()


def test_site_block_shows_the_file_and_its_bibtex(cff):
    text = blocks.project_citation(ROOT)
    assert "```yaml\n# Citation metadata of snncomp" in text
    bibtex = text.split("```bibtex\n", 1)[1]
    assert bibtex.startswith("@software{snncomp,")
    assert f"title = {{{cff['title']}}}" in bibtex and f"version = {{{cff['version']}}}" in bibtex
    assert "author = {{snncomp contributors}}" in bibtex and f"date = {{{cff['date-released']}}}" in bibtex


def test_bad_citation_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="CITATION.cff does not exist"):
        blocks.project_citation(tmp_path)
    (tmp_path / "CITATION.cff").write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match=r"CITATION.cff: expected a mapping of CFF keys, got list"):
        blocks.project_citation(tmp_path)
    (tmp_path / "CITATION.cff").write_text("title: [unclosed\n")
    with pytest.raises(ValueError, match=r"CITATION.cff: not valid YAML"):
        blocks.project_citation(tmp_path)
    (tmp_path / "CITATION.cff").write_text("cff-version: 1.2.0\ntitle: t\nauthors: [{name: x}]\n")
    with pytest.raises(ValueError, match=r"CITATION.cff: missing 'version'"):
        blocks.project_citation(tmp_path)
