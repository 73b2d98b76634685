"""The layout rules of issue 12, checked on the source tree: a family is one name in every layer, the core names no
family, no layer imports upward, and the old import paths still work (as aliases, with a warning)."""

from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

import pytest

from veriformer.discovery import family_names

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> list[str]:
    """Absolute names of the veriformer modules a file imports (``from a import b`` gives ``a.b`` and ``a``)."""
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names]
    return [m for m in out if m == "veriformer" or m.startswith("veriformer.")]


def _layer_files(layer: str) -> list[Path]:
    return sorted(p for p in (ROOT / layer).rglob("*.py") if "__pycache__" not in p.parts)


def test_every_family_is_one_name_in_every_layer_it_has() -> None:
    families = set(family_names())
    assert {"attention", "rope", "linear_attention", "vq", "ssm"} <= families
    fast = {p.name for p in (ROOT / "fast").iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    fast.discard("__pycache__")
    reference = {p.stem for p in (ROOT / "reference").iterdir()
                 if not p.name.startswith(("_", ".")) and (p.suffix == ".py" or p.is_dir())} - {"backends"}
    tests = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    assert fast <= families, f"fast/ packages without a family folder: {fast - families}"
    assert reference <= families, f"reference/ modules without a family folder: {reference - families}"
    assert families <= reference, f"families without an oracle module: {families - reference}"
    assert tests - {"core", "__pycache__"} <= families, tests
    # every family folder's modules are of the kinds discovery knows
    kinds = ("strategies", "op", "laws", "mutants", "implementations", "third_party", "regions", "alternatives")
    for family in families:
        for p in (ROOT / "properties" / family).glob("*.py"):
            assert p.stem == "__init__" or p.stem.startswith(kinds), f"properties/{family}/{p.name}"


def test_the_core_names_no_family() -> None:
    families = set(family_names())
    for path in sorted((ROOT / "veriformer").glob("*.py")):
        if path.name == "test_catalogue.py":
            continue
        for mod in _imports(path):
            parts = mod.split(".")
            if len(parts) >= 3 and parts[1] in ("reference", "fast", "properties"):
                family_module = parts[2] in families or (parts[1] == "fast" and not parts[2].startswith("_"))
                assert not family_module, f"veriformer/{path.name} imports {mod}"


@pytest.mark.parametrize("layer,allowed", [
    ("reference", ("veriformer.reference",)),
    ("fast", ("veriformer.fast", "veriformer.reference")),
])
def test_no_layer_imports_upward(layer: str, allowed: tuple[str, ...]) -> None:
    for path in _layer_files(layer):
        for mod in _imports(path):
            assert mod.startswith(allowed), f"{path.relative_to(ROOT)} imports {mod} (above its layer)"


@pytest.mark.parametrize("old,new", [
    ("veriformer.fast.flash_attention", "veriformer.fast.attention.flash"),
    ("veriformer.fast.naive_ssm", "veriformer.fast.ssm.naive"),
    ("veriformer.reference.s4", "veriformer.reference.ssm.s4"),
    ("veriformer.reference.vq_attention", "veriformer.reference.vq.attention"),
    ("veriformer.properties.rope_mutants", "veriformer.properties.rope.mutants"),
    ("veriformer.properties.ssm_strategies", "veriformer.properties.ssm.strategies"),
])
def test_old_import_paths_are_aliases_with_a_warning(old: str, new: str) -> None:
    import sys

    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mod = importlib.import_module(old)
    assert mod is importlib.import_module(new)
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught)


def test_public_api_names_survive_the_move() -> None:
    import veriformer
    from veriformer import fast
    from veriformer.implementations import torch_sdpa  # README's example
    from veriformer.properties.strategies import AttentionCase, RopeCase, rope_cases  # noqa: F401

    assert callable(fast.attention) and callable(fast.rope) and callable(fast.vq_attention.vq_attention)
    import veriformer.fast.attention.flash

    assert callable(fast.attention) and fast.attention.__name__ == "attention"
    from veriformer import reference as ref

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        importlib.import_module("veriformer.reference.selective_scan")  # the old module path of an oracle's name
    assert callable(ref.selective_scan) and ref.selective_scan.__name__ == "selective_scan"
    assert torch_sdpa.__module__ == "veriformer.properties.attention.implementations"
    assert {"softmax_attention", "rope"} <= set(dir(fast.naive))
    assert veriformer.cases.AttentionCase is AttentionCase


def test_every_package_is_declared_in_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for layer, pkg in (("veriformer", "veriformer"), ("reference", "veriformer.reference"), ("fast", "veriformer.fast"),
                       ("properties", "veriformer.properties")):
        for init in (ROOT / layer).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / layer).parts
            found.add(".".join((pkg, *rel)))
    assert found == declared, f"missing: {sorted(found - declared)}, stale: {sorted(declared - found)}"


def test_fast_naive_namespace_has_no_clashes() -> None:
    """``veriformer.fast.naive`` gathers every family's baselines: no two families may export the same name."""
    import sys

    import veriformer.fast  # noqa: F401

    seen: dict[str, str] = {}
    for name, mod in sorted(sys.modules.items()):
        if name.startswith("veriformer.fast.") and name.rsplit(".", 1)[-1].startswith("naive") and mod is not None \
                and name != "veriformer.fast.naive" and mod.__name__ == name:  # aliases (old paths) are the same
            for export in getattr(mod, "__all__", ()):
                assert export not in seen, f"{export} exported by {seen.get(export)} and {name}"
                seen[export] = name
