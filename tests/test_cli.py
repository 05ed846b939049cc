import csv
import io
import json

import pytest

from snncomp.kb import cli


def run(capsys, *args):
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cite_key_bibtex(capsys):
    code, out, _ = run(capsys, "cite", "chen2021pruning")
    assert code == 0 and out.startswith("@inproceedings{chen2021pruning,") and "Gradient Rewiring" in out


def test_cite_method_text(capsys):
    code, out, _ = run(capsys, "cite", "Grad R", "--format", "text")
    assert code == 0 and "Chen" in out and "(2021)" in out and "doi:" in out


def test_cite_registered_method_name(capsys):
    code, out, _ = run(capsys, "cite", "lottery-ticket")
    assert code == 0 and "@" in out and "frankle2019lottery" in out


def test_unknown_key_exits_nonzero_with_closest(capsys):
    code, _, err = run(capsys, "cite", "chen2021prunin")
    assert code == 2 and "closest" in err and "chen2021pruning" in err


def test_list_section_implemented(capsys):
    code, out, _ = run(capsys, "list", "--section", "pruning", "--implemented")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines and all(line.startswith("pruning/") and "[" in line for line in lines)


def test_list_unknown_section(capsys):
    code, _, err = run(capsys, "list", "--section", "prunning")
    assert code == 2 and "pruning" in err


def test_search(capsys):
    code, out, _ = run(capsys, "search", "lottery", "ticket")
    assert code == 0 and "kim2022exploring" in out
    code, _, err = run(capsys, "search", "zzzzqqq")
    assert code == 2


def test_export_json_and_csv(capsys, tmp_path):
    code, out, _ = run(capsys, "export", "--format", "json")
    tree = json.loads(out)
    assert code == 0 and tree["survey"] == "xie2024efficient"
    families = [f for s in tree["sections"] for f in s["families"]]
    assert sum(len(f["methods"]) for f in families) >= 50
    target = tmp_path / "tax.csv"
    code, _, _ = run(capsys, "export", "--format", "csv", "--output", str(target))
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert code == 0 and len(rows) >= 50 and {"method", "key", "taxonomy", "implemented"} <= set(rows[0])


def test_validate_green(capsys):
    code, out, _ = run(capsys, "validate")
    assert code == 0 and "0 problem(s)" in out


def test_console_script_installed():
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "snncomp"
    assert exe.exists() or shutil.which("snncomp")
    res = subprocess.run([str(exe) if exe.exists() else "snncomp", "cite", "nosuchkey2000x"], capture_output=True, text=True)
    assert res.returncode == 2 and "unknown key or method" in res.stderr


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "cite" in capsys.readouterr().out


def test_reader_closing_early_ends_quietly():
    """`snncomp list | head`: the reader goes away, the command ends without a traceback."""
    import subprocess
    import sys
    from pathlib import Path

    proc = subprocess.Popen([sys.executable, "-c", "import sys; from snncomp.kb.cli import main; sys.exit(main())",
                             "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).parents[1])
    proc.stdout.close()  # the reader closes before reading anything: every write hits a closed pipe
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=300) == cli.BROKEN_PIPE, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_non_utf8_bibliography_names_file_and_line(capsys, tmp_path, monkeypatch):
    import shutil
    from pathlib import Path

    root = Path(__file__).parents[1]
    shutil.copy(root / "taxonomy.yaml", tmp_path / "taxonomy.yaml")
    text = (root / "references.bib").read_text(encoding="utf-8")
    line = text[:text.index("Hodgkin")].count("\n") + 1
    (tmp_path / "references.bib").write_bytes(text.replace("Hodgkin", "H\u00f6dgkin", 1).encode("latin-1"))
    monkeypatch.setenv("SNNCOMP_ROOT", str(tmp_path))
    code, _, err = run(capsys, "validate")
    assert code == 2 and f"{tmp_path / 'references.bib'}:{line}: not UTF-8" in err


def test_validate_on_an_empty_bibliography_says_so_first(capfd, tmp_path, monkeypatch):
    import shutil
    from pathlib import Path

    root = Path(__file__).parents[1]
    shutil.copy(root / "taxonomy.yaml", tmp_path / "taxonomy.yaml")
    shutil.copytree(root / "papers", tmp_path / "papers")
    (tmp_path / "references.bib").write_text("", encoding="utf-8")
    monkeypatch.setenv("SNNCOMP_ROOT", str(tmp_path))
    code = cli.main(["validate"])
    out, err = capfd.readouterr()  # file descriptors: a log line of bibtexparser would show up here too
    assert code == 2 and out == ""
    first = err.strip().splitlines()
    assert first[0].startswith("snncomp: 1 problem(s)") and "no bibliography entries: the file is empty" in first[1]
    assert "Parsing" not in err and "card key" not in err


def test_baselines_trains_named_baselines_into_the_cache(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SNNCOMP_CACHE", str(tmp_path))
    assert cli.main(["baselines", "digits-conv-direct4:1"]) == 0
    assert "digits-conv-direct4 seed 1: ready in" in capsys.readouterr().out
    assert len(list((tmp_path / "baselines").glob("digits-conv-direct4-seed1-*.pt"))) == 1
    assert cli.main(["baselines", "digits-conv-direct4:1"]) == 0  # loaded, not trained again
    assert len(list((tmp_path / "baselines").glob("digits-conv-direct4-seed1-*.json"))) == 1


@pytest.mark.parametrize(("arg", "message"), [("conv-direct5", "'conv-direct5': unknown baseline 'conv-direct5'; "
                                                               "closest: conv-direct4"),
                                               ("conv-ann:x", "'conv-ann:x': the seed after ':' must be a non-negative")])
def test_baselines_refuses_bad_names_and_seeds(capsys, arg, message):
    assert cli.main(["baselines", arg]) == 2
    assert message in capsys.readouterr().err
