"""The suite's own catalogue as pytest tests: ``pytest --pyargs veriformer`` runs every law, every
mutant against its catchers, and the shipped implementations through check()."""

from __future__ import annotations

import pytest

import veriformer
from veriformer.implementations import IMPLEMENTATIONS
from veriformer.profiles import active_profile

veriformer.load_catalogue()


@pytest.mark.parametrize("name", list(veriformer.LAWS))
def test_law_holds(name: str) -> None:
    r = veriformer.run_law(name, profile=active_profile())
    assert r.passed, f"{name}: {r.failure.message}\n{r.failure.example}\nreplay: {r.failure.replay}"
    assert r.cases and all(c.claims for c in r.cases), "a law must produce measured claims"


@pytest.mark.parametrize("name", list(veriformer.MUTANTS))
def test_mutant_is_caught(name: str) -> None:
    r = veriformer.run_mutant(name, profile=active_profile())
    missed = [t for t, hit in r.caught.items() if not hit]
    assert not missed, f"mutant {name} survived {missed}"


def test_every_law_catches_a_mutant() -> None:
    catchers = {t for m in veriformer.MUTANTS.values() for t in m.caught_by}
    assert set(veriformer.LAWS) <= catchers, f"laws with no mutant: {set(veriformer.LAWS) - catchers}"


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=lambda i: f"{i.op}:{i.name}")
def test_implementation_passes(impl: object) -> None:
    r = veriformer.check(impl.fn, op=impl.op, dtypes=("float16", "bfloat16", "float32"),  # type: ignore[attr-defined]
                         features=impl.features, grad=impl.grad, profile=active_profile(),  # type: ignore[attr-defined]
                         name=impl.name, **impl.options)  # type: ignore[attr-defined]
    assert r.passed, r.summary()
