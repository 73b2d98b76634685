"""Hypothesis profiles: ``ci`` (default; derandomized, quick) and ``deep`` (long campaigns).

Both print the reproduce blob of a failure and use no example database, so a run depends only on the
profile and the seed.  Select with ``VERIFORMER_PROFILE=deep``, ``pytest --hypothesis-profile=deep`` or
``veriformer report --profile deep``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["PROFILES", "active_profile", "examples", "register_profiles"]

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
           HealthCheck.function_scoped_fixture, HealthCheck.differing_executors]

# examples per law run, per op check (per dtype), per mutant attempt
PROFILES: dict[str, dict[str, int]] = {
    "ci": {"law": 25, "check": 12, "mutant": 40},
    "deep": {"law": 400, "check": 150, "mutant": 200},
}


def register_profiles() -> None:
    for name, n in PROFILES.items():
        settings.register_profile(name, max_examples=n["law"], derandomize=True, deadline=None,
                                  print_blob=True, database=None, suppress_health_check=_HEALTH)


def active_profile() -> str:
    """The profile named by VERIFORMER_PROFILE (default ``ci``)."""
    name = os.environ.get("VERIFORMER_PROFILE", "ci")
    if name not in PROFILES:
        raise ValueError(f"VERIFORMER_PROFILE must be one of {sorted(PROFILES)}, got {name!r}")
    return name


def examples(profile: str, what: str) -> int:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(PROFILES)}")
    return PROFILES[profile][what]


register_profiles()
