"""snncomp: minimal, tested reference implementations of compression methods for deep spiking
neural networks, companion to the survey of Xie, Yang and Gao [@xie2024efficient].

Importing the package imports every section subpackage (pruning, and the sections that follow), and
so registers every method in `snncomp.registry`; no list of modules is kept anywhere. The knowledge
base (`snncomp.kb`: bibliography, paper cards, taxonomy, command line) is not imported here: it uses
the ML code, never the reverse.
"""

import importlib as _importlib
import pkgutil as _pkgutil

__version__ = "0.1.0"

_KNOWLEDGE_BASE = "kb"


def _import_sections() -> None:
    for info in _pkgutil.iter_modules(__path__):
        if not info.ispkg or info.name == _KNOWLEDGE_BASE:
            continue
        section = _importlib.import_module(f"{__name__}.{info.name}")
        for sub in _pkgutil.iter_modules(section.__path__):  # every family and mechanics module
            _importlib.import_module(f"{section.__name__}.{sub.name}")


_import_sections()
