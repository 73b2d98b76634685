"""docs/catalogue.md is generated from the registries and must be current."""

from __future__ import annotations

from pathlib import Path

from veriformer.catalogue import render_catalogue


def test_catalogue_doc_is_current() -> None:
    path = Path(__file__).resolve().parents[2] / "docs" / "catalogue.md"
    want = render_catalogue()
    assert path.read_text() == want, "docs/catalogue.md is stale: python -m veriformer.catalogue > docs/catalogue.md"
