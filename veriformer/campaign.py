"""Run a body over Hypothesis-drawn cases and keep every case's record (shared by laws and check()).

Hypothesis draws the cases (seeded or derandomized), and on a failure shrinks it to a minimal
counterexample, which is re-run last.  We keep the records of the generated cases up to the first
failure plus the final (shrunk) one, the falsifying example as Hypothesis prints it, and the
``@reproduce_failure`` blob, so any failure can be replayed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from hypothesis import Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from veriformer import profiles

__all__ = ["CaseFailed", "Failure", "run_campaign"]

R = TypeVar("R")


class CaseFailed(AssertionError):
    """Raised by a campaign body when a case fails (Hypothesis then shrinks it)."""


@dataclass(frozen=True)
class Failure:
    message: str
    example: str  # the falsifying example, as Hypothesis prints it
    replay: str  # the @reproduce_failure(...) line, or how to replay with the seed

    def as_dict(self) -> dict[str, str]:
        return {"message": self.message, "example": self.example, "replay": self.replay}


@dataclass
class CampaignResult(Generic[R]):
    records: list[R]
    failure: Failure | None
    generated: int  # cases Hypothesis ran (including shrinking)


def run_campaign(strategy: st.SearchStrategy[Any], body: Callable[[Any], tuple[R, bool, str]], *,
                 max_examples: int, seed: int | None = None, profile: str = "ci",
                 shrink: bool = True) -> CampaignResult[R]:
    """Run ``body(case) -> (record, passed, message)`` on drawn cases; stop at the first failure and shrink
    it (``shrink=False`` when only the verdict matters, e.g. for a mutant that must be caught)."""
    records: list[R] = []
    first_failure: list[int] = []
    calls = [0]

    def test(case: Any) -> None:
        calls[0] += 1
        record, passed, message = body(case)
        records.append(record)
        if not passed:
            if not first_failure:
                first_failure.append(len(records) - 1)
            raise CaseFailed(message)

    phases = None if shrink else (Phase.explicit, Phase.reuse, Phase.generate)
    run = settings(profiles.hypothesis_settings(profile), max_examples=max_examples, derandomize=seed is None,
                   **({"phases": phases} if phases else {}))(given(case=strategy)(test))
    if seed is not None:
        run = hypothesis_seed(seed)(run)
    try:
        run()
    except Exception as exc:
        notes = [str(n) for n in getattr(exc, "__notes__", [])]
        example = "\n".join(n for n in notes if "Falsifying" in n or n.startswith(("case=", "  case=")))
        replay = "\n".join(n for n in notes if "reproduce_failure" in n)
        if not replay:
            replay = f"seed={seed}" if seed is not None else f"profile={profile} (derandomized)"
        message = f"{type(exc).__name__}: {exc}".strip()
        if not first_failure:  # failed outside the body's verdict (e.g. an exception)
            first_failure.append(len(records))
        kept = records[: first_failure[0] + 1]
        if records and records[-1] is not kept[-1]:
            kept.append(records[-1])
        return CampaignResult(kept, Failure(message, example or "\n".join(notes), replay), calls[0])
    return CampaignResult(records, None, calls[0])

