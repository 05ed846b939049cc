"""The method registry: every compression method is registered once, with its kind, its place in the
taxonomy and the bibliography keys it implements.

A method is one of three kinds:

* **transform**: `fn(model, data, encoder, *, train=None, finetune=None, loss_terms=(), hooks=(), ...)
  -> compress.Compressed`; the input model is left untouched (see `snncomp.compress`);
* **objective**: `fn(step, **options) -> scalar tensor`, a loss term computed from the tensors of one
  training step (`train.Step`), usable directly in `train.fit(loss_terms=...)`;
* **measure**: `fn(model, ...) -> report`.

Registration follows two naming rules, checked here so they cannot drift: the function is named after
the method (`"gradual-magnitude"` is `gradual_magnitude`), and it lives in the module its taxonomy
path names (`"pruning/time-steps"` lives in `snncomp.pruning.time_steps`). The one-line summary is the
first paragraph of the function's docstring. `methods()` and `get()` first import every section
subpackage (`snncomp.import_sections`), so every method is registered by import alone; tests, the
command line and the site iterate this registry.

`declared()` reads the same facts (name, kind, taxonomy, keys, summary) from the `@register(...)` lines
of the package's source files without importing them, so the knowledge-base commands (`snncomp cite`,
`search`, `list`, `export`) answer without importing torch; it needs the name, kind, taxonomy and keys
written as literals, and `snncomp validate` checks that it agrees with the registry.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import inspect
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Method", "Declared", "declared", "KINDS", "CONSTRAINTS", "FACTS", "FREEZABLE", "all_but", "register", "get", "methods",
           "UnknownMethodError"]

KINDS = ("transform", "objective", "measure")
# what a method leaves on a model and a later method must keep (see `snncomp.chain`)
CONSTRAINTS = ("mask", "weight-grid", "membrane-grid", "trained-threshold", "attention", "early-exit")
# what a method may change about its input (a declared change may name the new value, "encoder=latency")
FACTS = ("T", "encoder", "neuron", "structure", "architecture", "model")
FREEZABLE = ("quantizer-steps", "thresholds")  # what a later step may freeze of what an earlier one trained


def all_but(*names: str) -> tuple[str, ...]:
    """Every constraint but `names`: the `keeps` of a method that drops (or cannot carry) those."""
    unknown = [n for n in names if n not in CONSTRAINTS]
    if unknown:
        raise ValueError(f"all_but: unknown constraints {unknown}; known: {', '.join(CONSTRAINTS)}")
    return tuple(c for c in CONSTRAINTS if c not in names)
_CITE = re.compile(r"\s*\[@[^\]]+\]")


@dataclass(frozen=True)
class Method:
    """One registered method."""

    name: str
    kind: str
    taxonomy: str  # "section/family", e.g. "pruning/unstructured"
    keys: tuple[str, ...]  # bibliography keys it implements
    fn: Callable
    needs: tuple[str, ...] = ()  # extra inputs a caller must supply, e.g. ("teacher",)
    # chain declarations (see `snncomp.chain`): constraints it leaves on the model, those of earlier steps it
    # keeps ("all", or a tuple), facts it changes, conditions on its input, what it freezes by default
    leaves: tuple[str, ...] = ()
    keeps: tuple[str, ...] | str = "all"
    changes: tuple[str, ...] = ()
    requires: dict = field(default_factory=dict, hash=False)
    freezes_by_default: tuple[str, ...] = ()

    def keeps_constraint(self, constraint: str) -> bool:
        """Whether this method keeps (or re-applies) `constraint` left by an earlier step."""
        return self.keeps == "all" or constraint in self.keeps

    @property
    def section(self) -> str:
        return self.taxonomy.split("/")[0]

    @property
    def family(self) -> str:
        return self.taxonomy.split("/")[1]

    @property
    def qualname(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"

    @property
    def summary(self) -> str:
        """First paragraph of the docstring on one line, citation markers removed."""
        first = (inspect.getdoc(self.fn) or "").split("\n\n")[0]
        return _CITE.sub("", " ".join(first.split()))


class UnknownMethodError(KeyError):
    """Raised for an unknown method name; the message lists the closest registered names."""


_REGISTRY: dict[str, Method] = {}


def _module_of(taxonomy: str) -> str:
    section, family = taxonomy.split("/")
    return f"snncomp.{section.replace('-', '_')}.{family.replace('-', '_')}"


def register(name: str, *, kind: str, taxonomy: str, keys: tuple[str, ...] | list[str],
             needs: tuple[str, ...] | list[str] = (), leaves: tuple[str, ...] = (),
             keeps: tuple[str, ...] | str = "all", changes: tuple[str, ...] = (),
             requires: dict[str, tuple[str, ...]] | None = None, freezes_by_default: tuple[str, ...] = ()):
    """Decorator registering `fn` as method `name` (see the module docstring for the rules).

    `leaves`, `keeps`, `changes`, `requires` and `freezes_by_default` are its chain declarations, checked
    against `CONSTRAINTS`, `FACTS` and `FREEZABLE` (`snncomp.chain` explains them)."""
    where = f"register({name!r})"
    requires = dict(requires or {})
    _check_names(where, "leaves", leaves, CONSTRAINTS)
    if keeps != "all":
        _check_names(where, "keeps", keeps, CONSTRAINTS)
    _check_names(where, "changes", tuple(c.split("=")[0] for c in changes), FACTS)
    _check_names(where, "requires", tuple(requires), FACTS)
    _check_names(where, "freezes_by_default", freezes_by_default, FREEZABLE)
    if any(isinstance(v, str) or not isinstance(v, (tuple, list)) for v in requires.values()):
        raise ValueError(f"{where}: requires maps a fact to a tuple of accepted values, got {requires!r}")
    if kind not in KINDS:
        raise ValueError(f"{where}: kind must be one of {KINDS}, got {kind!r}")
    if taxonomy.count("/") != 1:
        raise ValueError(f"{where}: taxonomy must be 'section/family', got {taxonomy!r}")
    if not keys:
        raise ValueError(f"{where}: a method must cite at least one bibliography key")

    def deco(fn: Callable) -> Callable:
        if fn.__name__ != name.replace("-", "_"):
            raise ValueError(f"{where}: the function must be named {name.replace('-', '_')!r}, got {fn.__name__!r}")
        if fn.__module__ != _module_of(taxonomy):
            raise ValueError(f"{where}: a {taxonomy!r} method lives in {_module_of(taxonomy)}, not {fn.__module__}")
        if not inspect.getdoc(fn):
            raise ValueError(f"{where}: the function needs a docstring (its first paragraph is the summary)")
        if name in _REGISTRY and _REGISTRY[name].fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"register: method {name!r} is already registered by {_REGISTRY[name].qualname}")
        _REGISTRY[name] = Method(name, kind, taxonomy, tuple(keys), fn, tuple(needs), tuple(leaves),
                                 keeps if keeps == "all" else tuple(keeps), tuple(changes),
                                 {k: tuple(v) for k, v in requires.items()}, tuple(freezes_by_default))
        return fn

    return deco


def _check_names(where: str, what: str, names, known: tuple[str, ...]) -> None:
    if isinstance(names, str) or any(n not in known for n in names):
        raise ValueError(f"{where}: {what} must be a tuple of {', '.join(known)}; got {names!r}")


def _load() -> None:
    importlib.import_module("snncomp").import_sections()  # importing every section registers every method


def methods(section: str | None = None, kind: str | None = None) -> list[Method]:
    """All registered methods (optionally of one section or kind), sorted by taxonomy then name."""
    _load()
    out = [m for m in _REGISTRY.values() if (section is None or m.section == section) and (kind is None or m.kind == kind)]
    return sorted(out, key=lambda m: (m.taxonomy, m.name))


def get(name: str) -> Method:
    """The method called `name`; an unknown name raises `UnknownMethodError` with the closest names."""
    _load()
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.3)
    hint = f"; closest: {', '.join(close)}" if close else f"; known: {', '.join(sorted(_REGISTRY))}"
    raise UnknownMethodError(f"unknown method {name!r}{hint}")


# ----------------------------------------------------------------------------- read without importing


@dataclass(frozen=True)
class Declared:
    """What a `@register(...)` line declares, read from the source without importing it."""

    name: str
    kind: str
    taxonomy: str
    keys: tuple[str, ...]
    qualname: str
    summary: str

    @property
    def section(self) -> str:
        return self.taxonomy.split("/")[0]


_DECLARED: dict = {}  # package folder -> (sizes and modification times of its files, declarations)


def _register_call(node: ast.expr) -> ast.Call | None:
    if isinstance(node, ast.Call):
        f = node.func
        if (isinstance(f, ast.Name) and f.id == "register") or (isinstance(f, ast.Attribute) and f.attr == "register"):
            return node
    return None


def _read_declarations(path, module: str) -> list[Declared]:
    with warnings.catch_warnings():  # an invalid escape in a docstring is reported by its import, not here
        warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
        tree = ast.parse(path.read_bytes(), filename=str(path))
    out = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for deco in fn.decorator_list:
            call = _register_call(deco)
            if call is None:
                continue
            where = f"{path}:{call.lineno}"
            opts = {kw.arg: kw.value for kw in call.keywords if kw.arg}
            if not call.args or any(k not in opts for k in ("kind", "taxonomy", "keys")):
                raise ValueError(f"{where}: register(...) needs its name and kind=, taxonomy=, keys= written out")
            try:
                name, kind, taxonomy = (ast.literal_eval(x) for x in (call.args[0], opts["kind"], opts["taxonomy"]))
                keys = tuple(ast.literal_eval(opts["keys"]))
            except ValueError:
                raise ValueError(f"{where}: register(...) must give the name, kind, taxonomy and keys as literals "
                                 "(registry.declared reads them without importing the module)") from None
            first = (ast.get_docstring(fn) or "").split("\n\n")[0]
            out.append(Declared(name, kind, taxonomy, keys, f"{module}.{fn.name}", _CITE.sub("", " ".join(first.split()))))
    return out


def declared(section: str | None = None) -> list[Declared]:
    """Every method the package's source files register (optionally of one section), sorted by taxonomy
    then name, read without importing any of them (no torch); cached until a file changes."""
    from pathlib import Path

    pkg = Path(__file__).resolve().parent
    files = sorted(p for p in pkg.rglob("*.py") if "kb" not in p.relative_to(pkg).parts[:1])
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    cached = _DECLARED.get(pkg)
    if cached is None or cached[0] != stamp:
        found = []
        for p in files:
            if b"register(" not in p.read_bytes():
                continue
            parts = p.relative_to(pkg.parent).with_suffix("").parts
            found += _read_declarations(p, ".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        _DECLARED[pkg] = cached = (stamp, sorted(found, key=lambda m: (m.taxonomy, m.name)))
    return [m for m in cached[1] if section is None or m.section == section]
