"""Edge regions of each op's input space, and explicit corner cases that reach them in every campaign.

A :class:`Regions` names predicates on cases (with the features each needs); ``check()`` records the regions each
case lies in, the summary's coverage line lists the regions hit and missed, and the op's corner cases (each family's
``regions`` module; run before the drawn ones, in every profile) make sure a ci campaign reaches every region
whatever Hypothesis draws. ``tests/core/test_reach.py`` proves it: every reachable region is hit at least once per
ci campaign.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Regions", "needs"]


@dataclass(frozen=True)
class Regions:
    """Named predicates ``name -> (features needed, predicate(case))``; calling it gives a case's regions."""

    table: dict[str, tuple[frozenset[str], Callable[[Any], bool]]]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.table)

    def reachable(self, features: frozenset[str] | set[str] | tuple[str, ...]) -> frozenset[str]:
        """The regions whose features are all drawn."""
        f = frozenset(features)
        return frozenset(n for n, (need, _) in self.table.items() if need <= f)

    def __call__(self, case: Any) -> frozenset[str]:
        return frozenset(n for n, (_, pred) in self.table.items() if pred(case))


def needs(*features: str) -> frozenset[str]:
    """The features a region needs (its predicate can only hold when they are drawn)."""
    return frozenset(features)
