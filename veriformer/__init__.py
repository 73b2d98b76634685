"""veriformer: numerical verification and property testing for efficient-attention and SSM kernels.

* ``veriformer.reference`` — float64 / mpmath oracles;  ``veriformer.fast`` — kernels and naive baselines;
* ``veriformer.properties`` — laws, mutants and public Hypothesis strategies;
* ``veriformer.check(fn, op=...)`` — conformance of any callable, with figures;
* ``veriformer.run_law`` / ``run_mutant`` — the catalogue; ``veriformer report`` — JSON/Markdown/HTML.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import (
    properties,
    reference,
)
from .check import CaseResult, CheckResult, check
from .laws import LawResult, MutantResult, run_law, run_mutant
from .reference import InputError
from .registry import LAWS, MUTANTS
from .tolerances import TOLERANCES, Tolerance

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
    "properties",
    "reference",
    "run_law",
    "run_mutant",
]
