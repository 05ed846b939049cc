from pathlib import Path

import pytest

from snncomp import bib

ROOT = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "fixtures"


def test_real_bibliography_is_clean():
    assert bib.problems(ROOT / "references.bib") == []
    entries = bib.load(ROOT / "references.bib")
    assert len(entries) >= 90
    assert "xie2024efficient" in entries


def test_syntax_error_names_key_and_line():
    found = bib.problems(FIX / "broken_syntax.bib")
    assert len(found) == 1
    p = found[0]
    assert p.key == "jones2021broken" and p.line == 9
    assert "jones2021broken" in str(p) and ":9:" in str(p)


def test_duplicate_key_names_both_places():
    found = bib.problems(FIX / "duplicate_key.bib")
    assert [(p.key, p.line) for p in found] == [("smith2020good", 9)]
    assert "also defined at line 1" in found[0].message


def test_field_problems():
    found = {(p.key, p.message.split(" ")[0]) for p in bib.problems(FIX / "bad_fields.bib")}
    messages = "\n".join(map(str, bib.problems(FIX / "bad_fields.bib")))
    assert "missing required field 'booktitle'" in messages
    assert "malformed DOI" in messages and "park2018baddoi" in messages
    assert "malformed arXiv id '22.1'" in messages
    assert "kang2017noid" in messages and "needs a 'doi'" in messages
    assert "'BadKey': key does not follow the scheme" in messages
    assert len(found) == 5


def test_load_raises_with_every_problem():
    with pytest.raises(bib.BibError) as err:
        bib.load(FIX / "bad_fields.bib")
    assert len(err.value.problems) == 5


def test_cite_keys_and_formatting():
    assert bib.cite_keys("see [@a2020x] and [@b2021y; @c2022z]") == ["a2020x", "b2021y", "c2022z"]
    entries = bib.load(ROOT / "references.bib")
    e = entries["chen2021pruning"]
    assert bib.short_cite(e) == "Chen et al., 2021"
    text = bib.format_text(e)
    assert text.startswith("Yanqi Chen, Zhaofei Yu") and "(2021)" in text and "Gradient Rewiring" in text
    assert bib.to_bibtex(e).startswith("@inproceedings{chen2021pruning,")
