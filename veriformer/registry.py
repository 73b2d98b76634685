"""The registry of laws and mutants (planted bugs), filled by decorators in ``veriformer.properties``.

A **law** is a function ``fn(ref, **inputs)`` whose keyword defaults are Hypothesis strategies; ``ref``
is the oracle namespace (``veriformer.reference``, or a copy with one oracle replaced by a mutant).  It
returns claims (see :mod:`veriformer.claims`).

A **mutant** is a planted bug that at least one law or op check must catch:

* ``replaces="softmax"`` — a buggy oracle substituted into ``ref`` while the laws in ``caught_by`` run;
* ``op="softmax_attention"`` — a buggy torch callable checked with :func:`veriformer.check`; it is
  caught by ``"op:softmax_attention"``.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

__all__ = ["LAWS", "MUTANTS", "Law", "Mutant", "law", "mutant", "oracle_namespace", "select"]

KINDS = ("exact", "certificate", "defined", "statistical", "asymptotic")


@dataclass(frozen=True)
class Law:
    name: str
    family: str
    source: str
    kind: str
    fn: Callable[..., Any]
    inputs: dict[str, Any]
    max_examples: int | None = None  # cap per run (slow laws, e.g. mpmath certificates)

    @property
    def description(self) -> str:
        return (inspect.getdoc(self.fn) or "").split("\n\n")[0].replace("\n", " ")


@dataclass(frozen=True)
class Mutant:
    name: str
    family: str
    description: str
    fn: Callable[..., Any]
    caught_by: tuple[str, ...]
    replaces: str | None = None
    op: str | None = None
    features: frozenset[str] = field(default_factory=frozenset)
    check_kwargs: dict[str, Any] = field(default_factory=dict)


LAWS: dict[str, Law] = {}
MUTANTS: dict[str, Mutant] = {}


def law(name: str, *, family: str, source: str, kind: str = "exact",
        max_examples: int | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a law.  The function's first parameter receives the oracle namespace; every other
    parameter must default to a Hypothesis strategy."""
    if kind not in KINDS:
        raise ValueError(f"law {name!r}: kind must be one of {KINDS}, got {kind!r}")

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        params = list(inspect.signature(fn).parameters.values())
        if not params:
            raise TypeError(f"law {name!r}: first parameter must receive the oracle namespace")
        inputs = {}
        for p in params[1:]:
            if p.default is inspect.Parameter.empty:
                raise TypeError(f"law {name!r}: parameter {p.name!r} needs a strategy as default")
            inputs[p.name] = p.default
        if name in LAWS and LAWS[name].fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"law {name!r} registered twice")
        LAWS[name] = Law(name, family, source, kind, fn, inputs, max_examples)
        return fn

    return register


def mutant(name: str, *, family: str, caught_by: Iterable[str], replaces: str | None = None,
           op: str | None = None, features: Iterable[str] = (),
           **check_kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a planted bug (exactly one of ``replaces`` / ``op``); ``caught_by`` lists law names and
    ``"op:NAME"`` entries that must each catch it.  The docstring's first line describes the bug."""
    if (replaces is None) == (op is None):
        raise ValueError(f"mutant {name!r}: give exactly one of replaces= or op=")

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        doc = (inspect.getdoc(fn) or name).split("\n\n")[0].replace("\n", " ")
        MUTANTS[name] = Mutant(name, family, doc, fn, tuple(caught_by), replaces, op,
                               frozenset(features), dict(check_kwargs))
        return fn

    return register


def oracle_namespace(overrides: dict[str, Callable[..., Any]] | None = None) -> SimpleNamespace:
    """``veriformer.reference`` as a namespace, with the named oracles replaced (for mutants)."""
    from veriformer import reference

    ns = SimpleNamespace(**{n: getattr(reference, n) for n in reference.__all__})
    for n, f in (overrides or {}).items():
        if not hasattr(ns, n):
            raise KeyError(f"no oracle named {n!r} to replace")
        setattr(ns, n, f)
    return ns


def select(patterns: Iterable[str] | None, names: Iterable[str]) -> list[str]:
    """Names matching any glob in ``patterns`` (all names when patterns is None), in registry order."""
    names = list(names)
    if patterns is None:
        return names
    pats = list(patterns)
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in pats)]
