"""The pytest plugin lives in the top-level module :mod:`veriformer_pytest` (entry point ``veriformer``), so that
pytest's start-up does not import the ``veriformer`` package (torch, the catalogue); this module re-exports its
hooks and fixtures for an environment whose entry point still names ``veriformer.pytest_plugin``."""

from __future__ import annotations

from veriformer_pytest import (
    PROFILE_NAMES,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    veriformer_check,
    veriformer_profile,
)

__all__ = ["PROFILE_NAMES", "pytest_addoption", "pytest_collection_modifyitems", "pytest_configure",
           "veriformer_check", "veriformer_profile"]
