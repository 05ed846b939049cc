"""snncomp: minimal, tested reference implementations of compression methods for deep spiking
neural networks, companion to the survey of Xie, Yang and Gao [@xie2024efficient].

Importing the package itself is light: it imports no torch and no subpackage. A subpackage or module is
imported on first use, either by an import statement or as an attribute (`snncomp.pruning` after
`import snncomp`). `import_sections()` imports every section subpackage and every module in them, and
so registers every method in `snncomp.registry`; the registry calls it before it answers, so no list of
modules is kept anywhere. The knowledge base (`snncomp.kb`: bibliography, paper cards, taxonomy,
command line) is not imported by it: it uses the ML code, never the reverse, and its `cite`, `list`,
`search` and `export` commands never import torch.
"""

import importlib as _importlib
import importlib.util as _importlib_util
import pkgutil as _pkgutil

__version__ = "0.1.0"

_KNOWLEDGE_BASE = "kb"
_SECTIONS_IMPORTED = False


def import_sections() -> None:
    """Import every section subpackage (all but `kb`) and every module in it, registering every method.
    Idempotent; cheap after the first call."""
    global _SECTIONS_IMPORTED
    if _SECTIONS_IMPORTED:
        return
    for info in _pkgutil.iter_modules(__path__):
        if not info.ispkg or info.name == _KNOWLEDGE_BASE:
            continue
        section = _importlib.import_module(f"{__name__}.{info.name}")
        for sub in _pkgutil.iter_modules(section.__path__):  # every family and mechanics module
            _importlib.import_module(f"{section.__name__}.{sub.name}")
    _SECTIONS_IMPORTED = True


def __getattr__(name: str):
    """`snncomp.<module>` imports that module of the package on first access."""
    if name.startswith("_") or _importlib_util.find_spec(f"{__name__}.{name}") is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _importlib.import_module(f"{__name__}.{name}")
