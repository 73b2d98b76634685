"""Run laws: draw inputs, evaluate claims, keep figures; and run mutants against the laws/ops that must
catch them."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import UnsatisfiedAssumption

from veriformer.campaign import Failure, run_campaign
from veriformer.claims import ClaimResult, as_claims
from veriformer.profiles import examples
from veriformer.registry import LAWS, MUTANTS, Law, Mutant, oracle_namespace

__all__ = ["LawResult", "MutantResult", "run_law", "run_mutant"]


@dataclass
class LawCase:
    inputs: str
    claims: list[ClaimResult]
    passed: bool
    error: str = ""

    @property
    def margin(self) -> float:
        return max((c.margin for c in self.claims), default=float("inf") if self.error else 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "passed": self.passed, "error": self.error,
                "claims": [c.as_dict() for c in self.claims]}


@dataclass
class LawResult:
    """Outcome of one law run: verdict, per-case figures, the worst claim, and the counterexample."""

    law: Law
    passed: bool
    cases: list[LawCase]
    failure: Failure | None
    profile: str
    seed: int | None
    mutant: str | None = None

    @property
    def worst(self) -> ClaimResult | None:
        claims = [c for case in self.cases for c in case.claims]
        return max(claims, key=lambda c: c.margin, default=None)

    def as_dict(self) -> dict[str, Any]:
        w = self.worst
        return {"name": self.law.name, "family": self.law.family, "kind": self.law.kind,
                "source": self.law.source, "description": self.law.description, "passed": self.passed,
                "n_cases": len(self.cases), "profile": self.profile, "seed": self.seed,
                "mutant": self.mutant, "worst": w.as_dict() if w else None,
                "failure": self.failure.as_dict() if self.failure else None}


def _describe(drawn: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in drawn.items())[:2000]


def run_law(law: Law | str, *, profile: str = "ci", max_examples: int | None = None,
            seed: int | None = None, overrides: dict[str, Any] | None = None,
            mutant: str | None = None, shrink: bool = True) -> LawResult:
    """Run ``law`` on drawn inputs under ``profile`` (optionally with oracles replaced by ``overrides``)."""
    if isinstance(law, str) and law not in LAWS:
        _load_catalogue()
    law = LAWS[law] if isinstance(law, str) else law
    ns = oracle_namespace(overrides)
    n = max_examples or examples(profile, "law")
    if law.max_examples is not None:  # slow laws (mpmath): the cap, ten times it in the deep profile
        n = min(n, law.max_examples * (10 if profile == "deep" else 1))

    def body(drawn: dict[str, Any]) -> tuple[LawCase, bool, str]:
        try:
            claims = [c.evaluate() for c in as_claims(law.fn(ns, **drawn))]
        except UnsatisfiedAssumption:  # hypothesis.assume() in a law: the case is outside its domain, not a failure
            raise
        except Exception as exc:
            msg = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            return LawCase(_describe(drawn), [], False, msg), False, msg
        ok = all(c.passed for c in claims)
        msg = "; ".join(f"{c.what}: max abs {c.max_abs:.3g} > allowed {c.allowed:.3g} {c.detail}"
                        for c in claims if not c.passed)
        return LawCase(_describe(drawn), claims, ok), ok, msg

    res = run_campaign(st.fixed_dictionaries(law.inputs), body, max_examples=n, seed=seed,
                       profile=profile, shrink=shrink)
    return LawResult(law, res.failure is None, res.records, res.failure, profile, seed, mutant)


@dataclass
class MutantResult:
    """Which of a mutant's declared catchers caught it (``caught[target] = True``)."""

    mutant: Mutant
    caught: dict[str, bool]
    details: dict[str, str] = field(default_factory=dict)

    @property
    def killed(self) -> bool:
        return bool(self.caught) and all(self.caught.values())

    def as_dict(self) -> dict[str, Any]:
        m = self.mutant
        return {"name": m.name, "family": m.family, "description": m.description,
                "target": m.replaces or f"op:{m.op}", "killed": self.killed, "caught": self.caught,
                "details": self.details}


def _load_catalogue() -> None:
    """Register every family's laws and mutants (a name looked up before the catalogue was imported)."""
    from veriformer import load_catalogue

    load_catalogue()


def run_mutant(m: Mutant | str, *, profile: str = "ci", targets: list[str] | None = None) -> MutantResult:
    """Run mutant ``m`` against each of its ``caught_by`` targets (or ``targets``).  An op target with explicit
    ``cases`` (the wrong-answer mutants) catches the mutant only when every case fails in every dtype."""
    from veriformer.check import check  # local: check imports the op registry

    if isinstance(m, str) and m not in MUTANTS:
        _load_catalogue()
    m = MUTANTS[m] if isinstance(m, str) else m
    caught: dict[str, bool] = {}
    details: dict[str, str] = {}
    for target in targets or list(m.caught_by):
        if target.startswith("op:"):
            kw = {"max_examples": examples(profile, "mutant"), **m.check_kwargs}
            r = check(m.fn, op=target[3:], features=m.features, profile=profile, shrink=False, **kw)
            if "cases" in m.check_kwargs:  # explicit cases: every case in every dtype must fail
                survived = [f"{c.dtype} {c.case}" for c in r.cases if c.passed]
                caught[target] = bool(r.cases) and not survived
                details[target] = (f"survived {len(survived)} of {len(r.cases)} cases: {survived[:3]}" if survived
                                   else f"all {len(r.cases)} cases failed")
                continue
            caught[target] = not r.passed
            details[target] = r.failure.message if r.failure else "not caught"
        else:
            if m.replaces is None:
                raise ValueError(f"mutant {m.name!r} replaces no oracle; it cannot run law {target!r}")
            lr = run_law(target, profile=profile, max_examples=examples(profile, "mutant"),
                         overrides={m.replaces: m.fn}, mutant=m.name, shrink=False)
            caught[target] = not lr.passed
            details[target] = lr.failure.message if lr.failure else "not caught"
    return MutantResult(m, caught, details)
