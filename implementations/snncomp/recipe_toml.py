"""Recipes as TOML: `loads`/`load` read a recipe (errors name the file and line), `dumps` writes one back
(`loads(dumps(r)) == r`), `builtin` reads every `recipes/*.toml` of the source tree.

The format is described in `snncomp.recipes`, which re-exports these four.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from .recipe import TOP_LEVEL, Recipe, RecipeError, _closest, from_dict, to_dict

__all__ = ["load", "loads", "dumps", "builtin"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_HEADER = re.compile(r"^\s*\[\[\s*step\s*\]\]")
_TABLE = re.compile(r"^\s*\[")


def _scan(text: str) -> tuple[list[int], dict[str, int], list[dict[str, int]]]:
    """Lines (1-based) of each [[step]] header, of each top-level key, and of each key inside each step."""
    headers: list[int] = []
    top: dict[str, int] = {}
    keys: list[dict[str, int]] = []
    section = None  # None: top level; int: a step; "other": another table
    key = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]*\")\s*=")
    for n, line in enumerate(text.splitlines(), start=1):
        if _HEADER.match(line):
            headers.append(n)
            keys.append({})
            section = len(headers) - 1
            continue
        if _TABLE.match(line):
            section = "other"
            continue
        m = key.match(line)
        if m:
            k = m.group(1).strip('"')
            if section is None:
                top.setdefault(k, n)
            elif isinstance(section, int):
                keys[section].setdefault(k, n)
    return headers, top, keys


def loads(text: str, source: str = "<string>") -> Recipe:
    """A recipe from TOML text; a syntax error or a malformed recipe is a `RecipeError` naming the line."""
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise RecipeError(f"{source}:{m.group(1) if m else 1}: TOML syntax error: {exc}") from None
    headers, top, keys = _scan(text)
    unknown = [k for k in d if k not in TOP_LEVEL]
    if unknown:
        raise RecipeError(f"{source}:{top.get(unknown[0], 1)}: unknown top-level key {unknown[0]!r}"
                          f"{_closest(unknown[0], TOP_LEVEL)}")
    recipe = from_dict(d, source=source, lines=headers if len(headers) == len(d.get("step", [])) else ())
    object.__setattr__(recipe, "_keys", keys)
    object.__setattr__(recipe, "_top", top)
    return recipe


def load(path: str | Path) -> Recipe:
    """The recipe in TOML file `path` (errors name `path` and the line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read the recipe: {exc.strerror or exc}") from None
    return loads(text, source=str(path))


def _toml_key(k: str) -> str:
    return k if _BARE.match(k) else _toml_str(k)


def _toml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(v, where: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x, where) for x in v) + "]"
    if isinstance(v, Mapping):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(str(k))} = {_toml_value(x, where)}" for k, x in v.items()) + " }"
    if v is None:
        raise RecipeError(f"{where}: TOML has no null value; leave the option out to get its default")
    raise RecipeError(f"{where}: cannot write a {type(v).__name__} in TOML ({v!r}); use strings, numbers, "
                      "booleans, lists and tables")


def dumps(recipe: Recipe) -> str:
    """The recipe as TOML text (`loads(dumps(r)) == r`)."""
    d = to_dict(recipe)
    lines = []
    for key in ("name", "description", "baseline", "data", "student"):
        if key in d:
            lines.append(f"{key} = {_toml_value(d[key], key)}")
    for i, s in enumerate(d["step"]):
        lines += ["", "[[step]]"]
        for k, v in s.items():
            where = f"step {i + 1} {s['method']!r}: {k}"
            lines.append(f"{_toml_key(k)} = {_toml_value(v, where)}")
    for i, m in enumerate(d.get("measure", [])):
        lines += ["", "[[measure]]"]
        for k, v in m.items():
            lines.append(f"{_toml_key(k)} = {_toml_value(v, f'measure {i + 1}: {k}')}")
    return "\n".join(lines) + "\n"


def builtin() -> dict[str, Recipe]:
    """Every `recipes/*.toml` at the root of the source tree, by recipe name (empty when installed
    without the source tree)."""
    folder = Path(__file__).resolve().parents[2] / "recipes"
    out: dict[str, Recipe] = {}
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else ():
        r = load(path)
        if r.name in out:
            raise RecipeError(f"{path}:1: recipe name {r.name!r} is also used by {out[r.name].source}")
        out[r.name] = r
    return out
