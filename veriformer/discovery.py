"""Families are discovered, never named: the core imports whatever family folders the properties layer holds.

A family is a package ``veriformer.properties.<family>`` (folder ``properties/<family>/``).  Loading it imports
its modules in dependency order: ``strategies*`` first, then ``op*`` (the ops, their tolerance rows), then every
other module (``laws*``, ``mutants*``, ``implementations*``, ``third_party``, ...) in sorted order.  The modules
register their ops, laws, mutants and implementations in the core's registries as they import.  Adding a family
or a module to one never edits a shared file.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

__all__ = ["family_names", "load_families"]

PROPERTIES = "veriformer.properties"


def _order(name: str) -> tuple[int, str]:
    return (0 if name.startswith("strategies") else 1 if name.startswith("op") else 2, name)


def family_names() -> list[str]:
    """The families of the properties layer (its sub-packages), sorted."""
    pkg = importlib.import_module(PROPERTIES)
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.ispkg and not m.name.startswith("_"))


def load_families() -> list[ModuleType]:
    """Import every module of every family (idempotent); returns the modules in the order imported."""
    out: list[ModuleType] = []
    for family in family_names():
        pkg = importlib.import_module(f"{PROPERTIES}.{family}")
        names = sorted((m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")), key=_order)
        out += [importlib.import_module(f"{pkg.__name__}.{n}") for n in names]
    return out
