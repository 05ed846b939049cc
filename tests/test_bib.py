from pathlib import Path

import pytest

from snncomp.kb import bib

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


def _one_entry(tmp_path, fields: str):
    path = tmp_path / "one.bib"
    path.write_text("@misc{doe2020entry,\n" + fields + "  year = {2020},\n  url = {https://example.org/a%27b~c}\n}\n",
                    encoding="utf-8")
    return bib.load(path)["doe2020entry"]


def test_latex_is_decoded_by_the_middlewares(tmp_path):
    e = _one_entry(tmp_path, "  author = {M{\\\"u}ller, J{\\'e}r{\\^o}me and {Smith and Sons} and others},\n"
                             "  title = {{SNN}s --- a survey, pages 1--2, \\& more},\n")
    title = bib.field(e, "title")
    assert "\u2014" in title and "---" not in title  # em dash
    assert "1\u20132" in title and "--" not in title  # en dash
    assert title == "SNNs \u2014 a survey, pages 1\u20132, & more"
    assert bib.authors(e) == ["M\u00fcller", "Smith and Sons", "others"]
    assert bib.short_cite(e) == "M\u00fcller et al., 2020"
    assert bib.format_text(e).startswith("J\u00e9r\u00f4me M\u00fcller, Smith and Sons et al. (2020).")
    # identifiers are not LaTeX: `%` and `~` in a URL survive
    assert bib.format_text(e).endswith("https://example.org/a%27b~c")
    assert bib.latex_to_text("A---B -- C") == "A\u2014B \u2013 C"


def test_bibtex_is_printed_as_written(tmp_path):
    e = _one_entry(tmp_path, "  author = {M{\\\"u}ller, J.},\n  title = {{SNN}s --- a survey},\n")
    assert "M{\\\"u}ller" in bib.to_bibtex(e) and "{SNN}s --- a survey" in bib.to_bibtex(e)


def test_non_utf8_file_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.bib"
    text = "@misc{doe2020entry,\n  author = {Doe, J.},\n  title = {Caf\u00e9},\n  year = {2020},\n  url = {https://e.org}\n}\n"
    path.write_bytes(text.encode("latin-1"))
    found = bib.problems(path)
    assert len(found) == 1 and found[0].line == 3 and "not UTF-8" in found[0].message
    with pytest.raises(bib.BibError) as err:
        bib.load(path)
    assert f"{path}:3:" in str(err.value)


@pytest.mark.parametrize("text, what", [("", "is empty"), ("  \n\n", "is empty"), ("% a comment only\n", "holds no entry"),
                                        ("@article{jones2021cut,\n  title = {Cut", "holds no parsable entry")])
def test_a_file_without_entries_says_so_first(tmp_path, text, what):
    path = tmp_path / "refs.bib"
    path.write_text(text, encoding="utf-8")
    found = bib.problems(path)
    assert found and found[0].line == 1 and found[0].key is None
    assert f"no bibliography entries: the file {what}" in found[0].message
    with pytest.raises(bib.BibError) as err:
        bib.load(path)
    assert "no bibliography entries" in str(err.value).splitlines()[1]


def test_bibtexparser_log_does_not_reach_the_terminal(tmp_path, capfd):
    path = tmp_path / "cut.bib"
    path.write_text("@article{jones2021cut,\n  title = {Cut", encoding="utf-8")
    found = bib.problems(path)
    assert any("syntax error" in p.message for p in found)  # the failed block is still reported, by us
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    import logging
    assert logging.getLogger("bibtexparser").propagate and not logging.getLogger("bibtexparser").handlers


def test_the_kept_entries_follow_the_file_and_are_new_objects(tmp_path):
    path = tmp_path / "two.bib"
    path.write_text("@misc{doe2020a,\n  title = {One},\n  author = {Doe, Jane},\n  year = {2020},\n"
                    "  url = {https://example.org/one}\n}\n", encoding="utf-8")
    a = bib.load(path)
    a["doe2020a"]["title"] = "changed by a caller"
    assert bib.field(bib.load(path)["doe2020a"], "title") == "One"
    path.write_text(path.read_text(encoding="utf-8").replace("{One}", "{Other title}"), encoding="utf-8")
    assert bib.field(bib.load(path)["doe2020a"], "title") == "Other title"
