"""The house rules of the package layout: small files, no import cycles, the knowledge base apart from
the ML code, and method files where their taxonomy path says."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "implementations" / "snncomp"
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Modules of the package that `name` imports (module level and inside functions)."""
    mods = _modules()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in mods else base)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m in mods and m != name}


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_file_above_the_line_budget(name):
    assert len(_modules()[name].read_text().splitlines()) <= MAX_LINES


def test_no_import_cycles():
    mods = _modules()
    graph = {n: _imports(n, p) for n, p in mods.items()}
    # a package importing its own submodules is how registration by import works; a submodule
    # importing its parent package back would be a cycle
    graph = {n: {m for m in deps if not m.startswith(n + ".")} for n, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for m in graph[n]:
            assert state.get(m) != 1, f"import cycle: {' -> '.join(path + [n, m])}"
            if m not in state:
                visit(m, path + [n])
        state[n] = 2

    for n in graph:
        if n not in state:
            visit(n, [])


def test_ml_code_never_imports_the_knowledge_base():
    for name, path in _modules().items():
        if name.startswith("snncomp.kb"):
            continue
        bad = {m for m in _imports(name, path) if m.startswith("snncomp.kb")}
        assert not bad, f"{name} imports {bad}"


def test_section_files_mirror_the_taxonomy():
    from snncomp import registry

    for m in registry.methods():
        path = PKG / m.section.replace("-", "_") / f"{m.family.replace('-', '_')}.py"
        assert path.exists(), (m.name, path)
