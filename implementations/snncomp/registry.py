"""The method registry: every compression method is registered once, with its kind, its place in the
taxonomy and the bibliography keys it implements.

A method is one of three kinds:

* **transform**: `fn(model, ...) -> new model` (or a result object carrying it as `.model`, as the
  pruning transforms do with `PruneResult`); the input model is left untouched;
* **objective**: `fn(tensors...) -> scalar loss term`;
* **measure**: `fn(model, ...) -> report`.

Tests, notebooks, the command line and the generated site pages all iterate this registry, so a
newly registered method is tested, listed and cited without further wiring.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Method", "KINDS", "register", "get", "methods", "UnknownMethodError"]

KINDS = ("transform", "objective", "measure")
# modules whose import registers methods
_METHOD_MODULES = ("snncomp.pruning",)


@dataclass(frozen=True)
class Method:
    """One registered method."""

    name: str
    kind: str
    taxonomy: str  # "section/family", e.g. "pruning/unstructured"
    keys: tuple[str, ...]  # bibliography keys it implements
    fn: Callable
    summary: str

    @property
    def section(self) -> str:
        return self.taxonomy.split("/")[0]

    @property
    def family(self) -> str:
        return self.taxonomy.split("/")[1]

    @property
    def qualname(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"


class UnknownMethodError(KeyError):
    """Raised for an unknown method name; the message lists the closest registered names."""


_REGISTRY: dict[str, Method] = {}


def register(name: str, *, kind: str, taxonomy: str, keys: tuple[str, ...] | list[str], summary: str):
    """Decorator registering `fn` as method `name`."""
    if kind not in KINDS:
        raise ValueError(f"register({name!r}): kind must be one of {KINDS}, got {kind!r}")
    if taxonomy.count("/") != 1:
        raise ValueError(f"register({name!r}): taxonomy must be 'section/family', got {taxonomy!r}")
    if not keys:
        raise ValueError(f"register({name!r}): a method must cite at least one bibliography key")

    def deco(fn: Callable) -> Callable:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"register: method {name!r} is already registered by {_REGISTRY[name].qualname}")
        _REGISTRY[name] = Method(name, kind, taxonomy, tuple(keys), fn, summary)
        return fn

    return deco


def _load() -> None:
    for mod in _METHOD_MODULES:
        importlib.import_module(mod)


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
