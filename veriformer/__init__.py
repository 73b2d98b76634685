"""veriformer: numerical verification and property testing for efficient-attention and SSM kernels.

* ``veriformer.reference`` — float64 / mpmath oracles;  ``veriformer.fast`` — kernels and naive baselines;
* ``veriformer.properties`` — laws, mutants and public Hypothesis strategies;
* ``veriformer.check(fn, op=...)`` — conformance of any callable, with figures;
* ``veriformer.run_law`` / ``run_mutant`` — the catalogue; ``veriformer report`` — JSON/Markdown/HTML.

Importing the package is light: every name below loads its module on first use (PEP 562), so
``from veriformer import reference`` pays for the oracles only, not for torch, Triton or the catalogue.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute); None: the submodule itself
_LAZY: dict[str, tuple[str, str | None]] = {
    "reference": (".reference", None),
    "properties": (".properties", None),
    "fast": (".fast", None),
    "cases": (".cases", None),
    "check": (".check", "check"),
    "CaseResult": (".check", "CaseResult"),
    "CheckResult": (".check", "CheckResult"),
    "run_law": (".laws", "run_law"),
    "run_mutant": (".laws", "run_mutant"),
    "LawResult": (".laws", "LawResult"),
    "MutantResult": (".laws", "MutantResult"),
    "InputError": (".reference._validate", "InputError"),
    "LAWS": (".registry", "LAWS"),
    "MUTANTS": (".registry", "MUTANTS"),
    "TOLERANCES": (".tolerances", "TOLERANCES"),
    "Tolerance": (".tolerances", "Tolerance"),
}
# names whose value is only complete once the catalogue (laws, mutants, ops, implementations) is loaded
_CATALOGUE = {"LAWS", "MUTANTS", "TOLERANCES", "check", "run_law", "run_mutant"}


def load_catalogue() -> None:
    """Import every family (``properties/<family>/``: its ops, laws, mutants and implementations; what ``check``,
    ``run_law``, ``LAWS`` and ``MUTANTS`` need); idempotent."""
    importlib.import_module(".discovery", __name__).load_families()


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'veriformer' has no attribute {name!r}")
    if name in _CATALOGUE:
        load_catalogue()
    module, attr = _LAZY[name]
    mod = importlib.import_module(module, __name__)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


class _Package(types.ModuleType):
    """The package module: importing the submodule ``veriformer.check`` must not replace the function
    ``veriformer.check`` (Python binds a submodule as an attribute of its package when it is first imported)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "check" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = [
    "LAWS",
    "MUTANTS",
    "TOLERANCES",
    "CaseResult",
    "CheckResult",
    "InputError",
    "LawResult",
    "MutantResult",
    "Tolerance",
    "__version__",
    "check",
    "load_catalogue",
    "properties",
    "reference",
    "run_law",
    "run_mutant",
]
