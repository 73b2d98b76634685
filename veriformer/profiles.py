"""Hypothesis profiles: ``ci`` (default; derandomized, quick) and ``deep`` (long campaigns).

Both print the reproduce blob of a failure and use no example database, so a run depends only on the
profile and the seed.  Select with ``VERIFORMER_PROFILE=deep``, ``pytest --veriformer-profile deep``,
``veriformer report --profile deep`` or ``check(..., profile="deep")``.

The profiles are neither registered with Hypothesis at import nor loaded globally: veriformer's campaigns
pass ``settings(hypothesis_settings(name), ...)`` explicitly (built from Hypothesis' ``default`` profile, not
looked up by name, so Hypothesis' own ``ci`` profile, active on CI machines, is never replaced), and importing
veriformer or installing its pytest plugin leaves a project's own Hypothesis settings alone.  veriformer's own
test-suite loads the profile for its ``@given`` tests in ``tests/conftest.py``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["PROFILES", "active_profile", "examples", "hypothesis_settings", "register_profiles"]

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
           HealthCheck.function_scoped_fixture, HealthCheck.differing_executors]

# examples per law run, per op check (per dtype), per mutant attempt
PROFILES: dict[str, dict[str, int]] = {
    "ci": {"law": 25, "check": 12, "mutant": 40},
    "deep": {"law": 400, "check": 150, "mutant": 200},
}


def hypothesis_settings(name: str) -> settings:
    """A fresh Hypothesis ``settings`` object for veriformer profile ``name``, independent of Hypothesis'
    profile registry (so a project's own profile that happens to be called ``ci`` cannot leak in)."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; expected one of {sorted(PROFILES)}")
    return settings(settings.get_profile("default"), max_examples=PROFILES[name]["law"], derandomize=True,
                    deadline=None, print_blob=True, database=None, suppress_health_check=_HEALTH)


def register_profiles() -> None:
    """Register ``ci`` and ``deep`` with Hypothesis (``settings.get_profile(name)``); loads neither.

    Caveat: Hypothesis has a built-in ``ci`` profile (loaded automatically when a CI variable is set) and
    re-registering the active profile's name re-activates it; so while :mod:`veriformer.campaign` resolves
    profiles by name, importing veriformer replaces an active profile called ``ci`` or ``deep``.  Campaigns
    that use :func:`hypothesis_settings` need no registration at all."""
    for name in PROFILES:
        settings.register_profile(name, hypothesis_settings(name))


def active_profile() -> str:
    """The profile named by VERIFORMER_PROFILE (default ``ci``)."""
    name = os.environ.get("VERIFORMER_PROFILE", "ci")
    if name not in PROFILES:
        raise ValueError(f"VERIFORMER_PROFILE must be one of {sorted(PROFILES)}, got {name!r}")
    return name


def examples(profile: str, what: str) -> int:
    """Examples per run of ``what`` ("law", "check" per dtype, "mutant" per catcher) in ``profile``."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(PROFILES)}")
    return PROFILES[profile][what]

