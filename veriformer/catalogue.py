"""``docs/catalogue.md``, generated from the registries: every op with its convention and source, every law with
its source and the mutants it must kill, every mutant with what it breaks and what catches it.

Regenerate with ``python -m veriformer.catalogue > docs/catalogue.md``; ``tests/core/test_catalogue_doc.py`` fails
when the committed file is stale.
"""

from __future__ import annotations

import inspect
import sys
from collections import defaultdict

__all__ = ["render_catalogue"]


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_catalogue() -> str:
    """The catalogue as Markdown (deterministic: sorted by name within each family)."""
    from veriformer import load_catalogue
    from veriformer.ops import OPS
    from veriformer.registry import LAWS, MUTANTS

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
    lines += ["", "## Op conventions in full", "",
              "Optional keyword arguments are *omitted* when a case does not use them (never passed as None), so a "
              "callable may declare them with any default. Outputs marked wide may come back in float32 for "
              "float16/bfloat16 inputs. `veriformer list --op NAME` prints the same.", ""]
    for name in sorted(OPS):
        op = OPS[name]
        mod = sys.modules.get(getattr(op.call, "__module__", "") or "")
        feats = ", ".join(f"{f} ({op.feature_keywords[f]})" if f in op.feature_keywords else f
                          for f in sorted(op.features)) or "none"
        lines += [f"### `{name}`", "", f"- convention: `{_cell(op.convention)}`",
                  f"- outputs: {', '.join(f'`{o}`' + (' (wide)' if o in op.wide_outputs else '') for o in op.outputs)}",
                  f"- features (keyword they need): {_cell(feats)}",
                  f"- options of check(): {_cell(', '.join(f'{k}={v!r}' for k, v in op.options.items()) or 'none')}",
                  f"- gradients checked for: {', '.join(op.differentiable)}",
                  f"- tolerance rows: `{op.tolerance}`, `{op.tolerance}.grad`"]
        doc = inspect.getdoc(mod) if mod is not None else ""
        if doc:
            lines += ["", "> " + "\n> ".join(doc.splitlines())]
        lines.append("")
    lines += ["## Laws", "", "| law | kind | source | what it states | mutants it kills |", "|---|---|---|---|---|"]
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
