"""Family modules are discovered by name, so adding a family never edits a shared file.

* ``veriformer/op_<family>.py`` registers ops; ``veriformer/impl_<family>.py`` registers implementations;
* ``properties/<family>_laws.py`` and ``properties/<family>_mutants.py`` register laws and mutants;
* ``reference/<family>.py`` modules export their oracles through ``__all__``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from types import ModuleType

__all__ = ["import_family_modules"]


def import_family_modules(package: str, path: Iterable[str],
                          keep: Callable[[str], bool]) -> list[ModuleType]:
    """Import (in sorted order) every submodule of ``package`` whose name satisfies ``keep``."""
    names = sorted(m.name for m in pkgutil.iter_modules(list(path)) if keep(m.name))
    return [importlib.import_module(f"{package}.{n}") for n in names]
