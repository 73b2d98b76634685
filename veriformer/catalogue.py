"""``docs/catalogue.md``, generated from the registries: every op with its convention and source, every law with
its source and the mutants it must kill, every mutant with what it breaks and what catches it.

Regenerate with ``python -m veriformer.catalogue > docs/catalogue.md``; ``tests/test_catalogue_doc.py`` fails
when the committed file is stale.
"""

from __future__ import annotations

from collections import defaultdict

__all__ = ["render_catalogue"]


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_catalogue() -> str:
    """The catalogue as Markdown (deterministic: sorted by name within each family)."""
    from . import load_catalogue
    from .ops import OPS
    from .registry import LAWS, MUTANTS

    load_catalogue()
    killers: dict[str, list[str]] = defaultdict(list)
    for m in MUTANTS.values():
        for target in m.caught_by:
            killers[target].append(m.name)
    lines = ["# Catalogue", "",
             "Generated from the registries by `python -m veriformer.catalogue` (do not edit by hand): "
             f"{len(OPS)} ops, {len(LAWS)} laws, {len(MUTANTS)} mutants.", "", "## Ops", "",
             "| op | convention | features | source | killed mutants |", "|---|---|---|---|---|"]
    for name in sorted(OPS):
        op = OPS[name]
        lines.append(f"| `{name}` | {_cell(op.convention)} | {_cell(', '.join(sorted(op.features)) or '-')} | "
                     f"{_cell(op.source)} | {len(killers.get('op:' + name, []))} |")
    lines += ["", "## Laws", "", "| law | kind | source | what it states | mutants it kills |", "|---|---|---|---|---|"]
    for name in sorted(LAWS):
        law = LAWS[name]
        kills = ", ".join(f"`{m}`" for m in sorted(killers.get(name, []))) or "-"
        lines.append(f"| `{name}` | {law.kind} | {_cell(law.source)} | {_cell(law.description)} | {kills} |")
    lines += ["", "## Mutants", "", "| mutant | breaks | the bug | caught by |", "|---|---|---|---|"]
    for name in sorted(MUTANTS):
        m = MUTANTS[name]
        target = f"oracle `{m.replaces}`" if m.replaces else f"op `{m.op}`"
        lines.append(f"| `{name}` | {target} | {_cell(m.description)} | "
                     f"{', '.join(f'`{t}`' for t in m.caught_by)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_catalogue(), end="")
