"""Packaging: the package imports with only its declared dependencies (scipy is an extra)."""

from __future__ import annotations

import subprocess
import sys

_BLOCK_SCIPY = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "scipy" or name.startswith("scipy."):
            raise ImportError("scipy is not installed (blocked by the test)")
sys.meta_path.insert(0, Block())
"""


def test_every_public_module_imports_without_scipy_and_scipy_laws_name_the_extra() -> None:
    code = _BLOCK_SCIPY + """
import veriformer, veriformer.reference, veriformer.fast, veriformer.properties, veriformer.cases
import veriformer.cli, veriformer.report, veriformer_pytest
r = veriformer.run_law("ssm.zoh_block_expm", max_examples=1)
assert not r.passed and "pip install 'veriformer[scipy]'" in r.failure.message, r.failure.message
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr
