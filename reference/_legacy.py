"""Old import paths, kept for one release as aliases of the modules that replaced them (issue 12 moved every
family into one module or folder per layer).  ``import veriformer.fast.flash_attention`` gives the module
``veriformer.fast.attention.flash`` itself (same object, private names included) with a ``DeprecationWarning``
that names the new path.  Each layer's ``__init__`` installs its own table, so the lowest layer holds only this
mechanism (standard library only)."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from types import ModuleType
from typing import Any

__all__ = ["install_aliases", "keep_functions"]


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self) -> None:
        self.table: dict[str, str] = {}

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if name in self.table:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        new = self.table[module.__name__]
        warnings.warn(f"{module.__name__} moved to {new}; the old path is an alias for one release",
                      DeprecationWarning, stacklevel=2)
        # the import system returns what sys.modules holds once this returns: the new module itself
        sys.modules[module.__name__] = importlib.import_module(new)


_FINDER = _AliasFinder()


def install_aliases(table: dict[str, str]) -> None:
    """Make every old module name in ``table`` import as its new module (old -> new, full dotted names)."""
    _FINDER.table.update(table)
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)


class _KeepsFunctions(types.ModuleType):
    """A package whose functions are not replaced by submodules of the same name: Python binds a submodule as an
    attribute of its package when the submodule is first imported (``veriformer.fast.attention`` the package vs
    ``fast.attention`` the kernel; an old path such as ``veriformer.reference.selective_scan`` vs the oracle)."""

    def __setattr__(self, name: str, value: Any) -> None:
        current = self.__dict__.get(name)
        if isinstance(value, ModuleType) and current is not None and not isinstance(current, ModuleType):
            return
        super().__setattr__(name, value)


def keep_functions(package: str) -> None:
    """Protect the functions of ``package`` (a module name) from being rebound to submodules of the same name."""
    sys.modules[package].__class__ = _KeepsFunctions
