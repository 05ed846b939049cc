"""The knowledge base fits together, and each validator catches a broken copy of it."""

import re
import shutil
from pathlib import Path

import pytest

from snncomp import registry
from snncomp.kb.taxonomy import CardError, Knowledge, parse_card, validate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def k():
    return Knowledge.load(ROOT)


def test_real_knowledge_base_validates(k):
    assert validate(k) == []


def test_counts(k):
    assert len(k.entries) >= 90
    assert len(k.cards) >= 50
    for c in k.cards.values():
        text = re.sub(r"\b(e\.g|i\.e|et al|vs|cf|Fig|Eq)\.", r"\1", c.body)
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
        assert 4 <= len(sentences) <= 12, (c.key, len(sentences))


def test_every_registered_method_cites_a_carded_key(k):
    for m in registry.methods():
        assert any(key in k.cards for key in m.keys), m.name


@pytest.fixture
def copy(tmp_path):
    for name in ("taxonomy.yaml", "references.bib"):
        shutil.copy(ROOT / name, tmp_path / name)
    for d in ("papers", "docs", "notebooks", "benchmarks"):
        shutil.copytree(ROOT / d, tmp_path / d, ignore=shutil.ignore_patterns("assets", "__pycache__"))
    (tmp_path / "implementations").mkdir()
    return tmp_path


def test_unknown_citation_is_reported(copy):
    page = copy / "docs" / "biology.md"
    page.write_text(page.read_text() + "\nSee [@nobody2099nothing].\n")
    found = validate(Knowledge.load(copy))
    assert any("docs/biology.md" in p and "unknown key 'nobody2099nothing'" in p for p in found)


def test_card_with_unknown_key_is_reported(copy):
    src = (copy / "papers" / "chen2021pruning.md").read_text()
    (copy / "papers" / "ghost2020paper.md").write_text(src.replace("key: chen2021pruning", "key: ghost2020paper"))
    found = validate(Knowledge.load(copy))
    assert any("ghost2020paper" in p and "not in references.bib" in p for p in found)


def test_card_with_unknown_family_is_reported(copy):
    p = copy / "papers" / "chen2021pruning.md"
    p.write_text(p.read_text().replace("taxonomy: pruning/unstructured", "taxonomy: pruning/random"))
    assert any("pruning/random" in q for q in validate(Knowledge.load(copy)))


def test_unused_entry_is_reported(copy):
    bibfile = copy / "references.bib"
    bibfile.write_text(bibfile.read_text() + "\n@misc{orphan2020entry,\n  author = {Orphan, A.},\n  title = {Nobody cites me},\n"
                       "  year = {2020},\n  url = {https://example.org}\n}\n")
    found = validate(Knowledge.load(copy))
    assert any("'orphan2020entry' is cited nowhere" in p for p in found)


def test_card_claiming_a_missing_implementation_is_reported(copy):
    p = copy / "papers" / "zenke2018superspike.md"
    p.write_text(p.read_text().replace("snncomp.surrogate.FastSigmoid", "snncomp.surrogate.NoSuchThing"))
    assert any("NoSuchThing" in q for q in validate(Knowledge.load(copy)))


def test_malformed_card_names_the_file(tmp_path):
    bad = tmp_path / "x2020y.md"
    bad.write_text("---\nkey: x2020y\ntitle: t\n---\nbody\n")
    with pytest.raises(CardError, match="x2020y.md: missing front-matter field"):
        parse_card(bad)


def test_method_without_card_is_reported(k, monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "fake-method", registry.Method(
        "fake-method", "measure", "pruning/unstructured", ("xie2024efficient",), lambda m: m, "x"))
    assert any("'fake-method' cites no key that has a card" in p for p in validate(k))
