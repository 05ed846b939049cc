"""The knowledge-base commands stay light: `import snncomp` and `snncomp cite/list/search/export` never
import torch (the registry's facts come from `registry.declared()`, read from the sources), while the
registry itself still imports every section on first use and agrees with what the sources declare; the
site's serve settings keep generated paper cards out of the navigation list."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from snncomp import registry

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_kb_commands_never_import_torch():
    res = _run(
        "import contextlib, io, sys\n"
        "import snncomp.kb.cli as cli\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    codes = [cli.main(['cite', 'Grad R']), cli.main(['cite', 'grad-rewiring', '--format', 'text']),\n"
        "             cli.main(['search', 'lottery']), cli.main(['list', '--implemented']),\n"
        "             cli.main(['export', '--format', 'csv'])]\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy'))\n"
        "print(codes, heavy[:5], len(out.getvalue()))\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("[0, 0, 0, 0, 0] [] "), res.stdout + res.stderr  # all ok; no torch, no numpy
    assert int(res.stdout.split()[-1]) > 1000  # and they printed their answers


def test_importing_the_package_is_light_and_modules_load_on_first_use():
    res = _run("import sys, snncomp\n"
               "assert 'torch' not in sys.modules\n"
               "pruning = snncomp.pruning  # an attribute imports the subpackage\n"
               "assert 'torch' in sys.modules and pruning.__name__ == 'snncomp.pruning'\n"
               "try:\n"
               "    snncomp.no_such_module\n"
               "except AttributeError as exc:\n"
               "    print(exc)\n")
    assert res.returncode == 0, res.stderr
    assert "module 'snncomp' has no attribute 'no_such_module'" in res.stdout


def test_the_registry_imports_every_section_on_first_use():
    res = _run("from snncomp import registry\n"
               "print(len(registry.methods()), len(registry.declared()))\n")
    assert res.returncode == 0, res.stderr
    live, read = map(int, res.stdout.split())
    assert live == read > 30


def test_declared_agrees_with_the_registry():
    def facts(ms):
        return [(m.name, m.kind, m.taxonomy, m.keys, m.qualname, m.summary) for m in ms]

    assert facts(registry.declared()) == facts(registry.methods())
    assert facts(registry.declared("pruning")) == facts(registry.methods("pruning"))


def test_declared_names_a_register_call_it_cannot_read(tmp_path, monkeypatch):
    src = tmp_path / "snncomp"
    src.mkdir()
    (src / "registry.py").write_text("")
    bad = src / "odd.py"
    bad.write_text("KEYS = ('a2020b',)\n\n@register('odd', kind='measure', taxonomy='pruning/odd', keys=KEYS)\n"
                   "def odd(model):\n    '''Odd.'''\n")
    monkeypatch.setattr(registry, "__file__", str(src / "registry.py"))
    try:
        registry.declared()
    except ValueError as exc:
        assert f"{bad}:3: register(...) must give the name, kind, taxonomy and keys as literals" in str(exc)
    else:
        raise AssertionError("a register call with non-literal keys was read without complaint")


def test_generated_paper_cards_are_not_listed_as_outside_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert "/papers/" in config["not_in_nav"].split()
