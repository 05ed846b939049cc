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
first paragraph of the function's docstring. Importing `snncomp` imports every section subpackage, so
every method is registered by import alone; tests, the command line and the site iterate this registry.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Method", "KINDS", "CONSTRAINTS", "FACTS", "FREEZABLE", "all_but", "register", "get", "methods",
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
    importlib.import_module("snncomp")  # importing the package registers every method


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
