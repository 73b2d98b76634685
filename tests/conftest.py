"""Test configuration for veriformer's own suite: load veriformer's Hypothesis profile for the ``@given`` tests
here (the pytest plugin deliberately loads none, so that other projects keep their own settings).

The profile is ``--veriformer-profile`` (an option of the plugin), else VERIFORMER_PROFILE, else ``ci``; an
explicit ``--hypothesis-profile`` wins for the ``@given`` tests.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Load the veriformer profile into Hypothesis for this suite unless ``--hypothesis-profile`` was given."""
    from hypothesis import settings

    from veriformer.profiles import active_profile, hypothesis_settings

    if config.getoption("hypothesis_profile", default=None):
        return
    name = config.getoption("--veriformer-profile", default=None) or active_profile()
    settings.register_profile(f"veriformer-{name}", hypothesis_settings(name))
    settings.load_profile(f"veriformer-{name}")
