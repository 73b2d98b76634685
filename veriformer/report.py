"""``veriformer report``: run the catalogue (laws, mutants, implementation checks) and write
``conformance.json``, ``conformance.md`` and a self-contained ``conformance.html`` with plots.

The HTML page is built to be read top-down in seconds: the verdict, the counts and the environment first; then
the failures with their replay lines; the "closest to failing" table (margin = error / allowed error, <= 1
passes; green < 0.5, amber 0.5-1, red > 1); the implementation checks; the plots (error vs sequence length,
one panel per dtype with the allowed error drawn, legends outside the axes; the margin distribution with the
tolerance at margin 1); the laws; "mutant -> caught by" with a search box; the tolerance table.  Everything is
inline (PNG plots as base64, a few lines of JS for the search boxes): no network access.  A box can be filled
from the address: ``conformance.html?mutants-table=softmax`` (also ``checks-table``, ``laws-table``).

Figures are read from the ``as_dict()`` of :class:`~veriformer.check.CheckResult`, ``LawResult`` and
``MutantResult`` defensively: a key a given version does not produce is left out of the page.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import html
import io
import math
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from veriformer.check import check
from veriformer.implementations import IMPLEMENTATIONS
from veriformer.jsonio import dumps, load
from veriformer.laws import run_law, run_mutant
from veriformer.registry import LAWS, MUTANTS
from veriformer.tolerances import TOLERANCES

__all__ = ["REPORT_SWEEP_SIZES", "build_report", "load_report", "to_html", "to_markdown", "write_report"]

DTYPES = ("float16", "bfloat16", "float32")

# Sequence lengths of the report's error-vs-length sweep, for the ops where they differ from the op's own
# ``sweep_sizes`` less the longest (the deep profile and a CUDA device add the op's own lengths too).  Longer than
# the ops' defaults where the float64 oracle and the CPU kernels are cheap enough for the report's CPU time
# budget (lengths above SWEEP_LONG run one seed instead of three; see _length_sweep).  Measured on 2 busy CPU
# cores, each sweep alone: rope 72 s -> 97 s of CPU time (its Triton kernels in the interpreter are 2/3 of it),
# S4D kernel +0.7 s, SSM convolution +2.4 s.  The other ops' next lengths cost 5-18 s each on CPU (their Triton
# kernels run in the interpreter) and keep their defaults there.
REPORT_SWEEP_SIZES: dict[str, tuple[int, ...]] = {
    "rope": (16, 256, 4096, 16384),
    "s4d_kernel": (64, 1024, 4096, 16384),
    "ssm_convolution": (16, 256, 2048, 8192),
}
SWEEP_SEEDS = 3
SWEEP_LONG = 512  # lengths above this run one seed per dtype: the max error over a long sequence is stable

MARGIN_AMBER, MARGIN_RED = 0.5, 1.0
CLOSEST_ROWS = 20


def _progress(i: int, n: int, label: str) -> None:
    width = 30
    done = int(width * i / max(n, 1))
    sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {i}/{n} {label[:60]:<60}")
    sys.stderr.flush()
    if i == n:
        sys.stderr.write("\n")


def _git_commit() -> str | None:
    """Short commit hash of the checkout veriformer runs from (``+dirty`` with uncommitted changes), or None
    outside a git checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=20)
        return head.stdout.strip() + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _environment(device: str, profile: str, seed: int) -> dict[str, Any]:
    import hypothesis
    import mpmath
    import torch

    from veriformer import __version__

    dev = torch.cuda.get_device_name() if device.startswith("cuda") and torch.cuda.is_available() else \
        (platform.processor() or platform.machine())
    return {"veriformer": __version__, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": _git_commit(), "device": device, "device_name": dev, "python": platform.python_version(),
            "platform": platform.platform(), "torch": torch.__version__, "triton": _version("triton"),
            "numpy": np.__version__, "mpmath": mpmath.__version__, "hypothesis": hypothesis.__version__,
            "profile": profile, "seed": seed}


def build_report(*, device: str = "cpu", profile: str = "ci", seed: int = 0, progress: bool = True,
                 laws: Iterable[str] | None = None, mutants: Iterable[str] | None = None,
                 implementations: Sequence[Any] | None = None,
                 sweep_sizes: dict[str, tuple[int, ...]] | None = None) -> dict[str, Any]:
    """Run every law, every mutant against its catchers, every implementation check, and the length sweep.

    ``laws`` / ``mutants`` (names) and ``implementations`` (:class:`~veriformer.implementations.Implementation`)
    select a subset of the catalogue (default: all registered); ``sweep_sizes`` maps op name -> sequence lengths
    of the error-vs-length sweep (default :data:`REPORT_SWEEP_SIZES`, else the op's own ``sweep_sizes``)."""
    from veriformer import load_catalogue

    load_catalogue()
    law_names = list(LAWS) if laws is None else list(laws)
    mutant_names = list(MUTANTS) if mutants is None else list(mutants)
    impls = list(IMPLEMENTATIONS if implementations is None else implementations)
    total = len(law_names) + len(mutant_names) + 2 * len(impls)
    step = 0
    t0 = time.time()

    def tick(label: str) -> None:
        nonlocal step
        step += 1
        if progress:
            _progress(step, total, label)

    law_rows = []
    for name in law_names:
        law_rows.append(run_law(name, profile=profile).as_dict())
        tick(f"law {name}")
    mutant_rows = []
    for name in mutant_names:
        mutant_rows.append(run_mutant(name, profile=profile).as_dict())
        tick(f"mutant {name}")
    checks = []
    compile_total = {"count": 0, "seconds": 0.0}
    for impl in impls:
        with _compile_stats(device) as cs:
            r = check(impl.fn, op=impl.op, dtypes=DTYPES, device=device, features=impl.features,
                      grad=impl.grad, profile=profile, seed=seed, name=impl.name, **impl.options)
        d = r.as_dict()
        d["note"] = impl.note
        if cs is not None:  # Triton JIT compilations made by this check (cuda only; the interpreter compiles none)
            d["compilations"] = {"count": cs.count, "seconds": round(cs.seconds, 2),
                                 "per_kernel": {k: [n, round(t, 2)] for k, (n, t) in cs.per_kernel.items()}}
            compile_total["count"] += cs.count
            compile_total["seconds"] = round(compile_total["seconds"] + cs.seconds, 2)
        checks.append(d)
        tick(f"check {impl.name}")
    sweep = _length_sweep(impls, device, profile, seed, sweep_sizes, on_done=lambda n: tick(f"length sweep {n}"))
    targets = list(law_names) + sorted({t for m in mutant_rows for t in m["caught"] if t.startswith("op:")})
    matrix = [{"mutant": m["name"], "cells": {t: m["caught"].get(t) for t in targets}} for m in mutant_rows]
    env = _environment(device, profile, seed)
    if str(device).startswith("cuda"):
        env["triton_compilations"] = compile_total
    return {"environment": env, "seconds": round(time.time() - t0, 1),
            "tolerances": [vars(t) for t in TOLERANCES.values()], "laws": law_rows, "mutants": mutant_rows,
            "kill_matrix": {"targets": targets, "rows": matrix}, "checks": checks, "length_sweep": sweep,
            "passed": all(x["passed"] for x in law_rows) and all(m["killed"] for m in mutant_rows)
            and all(c["passed"] for c in checks)}


def _sweep_sizes(spec: Any, profile: str, override: dict[str, tuple[int, ...]] | None,
                 device: str = "cpu") -> tuple[int, ...]:
    """Lengths of op ``spec``'s sweep: ``override`` (or :data:`REPORT_SWEEP_SIZES`) where it lists the op, else
    the op's ``sweep_sizes`` less the longest; the deep profile and a CUDA device (kernels are fast there) add
    the op's own longer lengths.  An explicit ``override`` is used as given."""
    if override is not None and spec.name in override:
        return tuple(override[spec.name])
    sizes = tuple(REPORT_SWEEP_SIZES.get(spec.name, spec.sweep_sizes[:-1]))
    if profile == "deep" or str(device).startswith("cuda"):
        sizes = tuple(sorted(set(sizes) | set(spec.sweep_sizes)))
    return sizes


@contextlib.contextmanager
def _compile_stats(device: str) -> Iterator[Any]:
    """Triton compile counts and times of the block on a CUDA device (fast._triton.env.compile_stats), else
    None."""
    if not str(device).startswith("cuda"):
        yield None
        return
    from veriformer.fast._triton.env import compile_stats

    with compile_stats() as st:
        yield st


def _length_sweep(impls: list[Any], device: str, profile: str, seed: int,
                  sizes_override: dict[str, tuple[int, ...]] | None = None,
                  on_done: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Error of each implementation's output on the op's fixed sweep shapes at growing sequence length.

    Lengths: see :func:`_sweep_sizes` (:data:`REPORT_SWEEP_SIZES`, the op's ``sweep_sizes``, or
    ``sizes_override``).  Seeds: 3 per length up to :data:`SWEEP_LONG`, 1 above.  Rows: impl, op, dtype, size,
    passed, max abs, ratio, margin, baseline max abs, and ``allowed`` = rho * baseline max abs + floor, the
    allowed error at the worst element's scale.  ``on_done(name)`` is called after each implementation."""
    from veriformer import load_catalogue
    from veriformer.ops import OPS

    load_catalogue()

    rows: list[dict[str, Any]] = []
    for impl in impls:
        spec = OPS[impl.op]
        make = spec.sweep
        cases = [] if make is None else [make(n, seed + i) for n in _sweep_sizes(spec, profile, sizes_override, device)
                                         for i in range(SWEEP_SEEDS if n <= SWEEP_LONG else 1)]
        if not cases:
            if on_done is not None:
                on_done(impl.name)
            continue
        r = check(impl.fn, op=impl.op, dtypes=DTYPES, device=device, cases=cases, name=impl.name,
                  **impl.options)
        rho = r.tolerances["out"].rho
        for c in r.cases:
            v = c.verdicts[0] if c.verdicts else None
            rows.append({"impl": impl.name, "op": impl.op, "dtype": c.dtype, "size": c.size, "passed": c.passed,
                         "max_abs": v.candidate.max_abs if v else None, "ratio": v.ratio if v else None,
                         "margin": v.margin if v else None,
                         "baseline_max_abs": v.baseline.max_abs if v else None,
                         "allowed": rho * v.baseline.max_abs + getattr(v, "floor", 0.0) if v else None})
        if on_done is not None:
            on_done(impl.name)
    return rows


# ----------------------------------------------------------------------------------------------- summaries


def _g(x: Any) -> str:
    return "—" if x is None else (f"{x:.3g}" if isinstance(x, float) else str(x))


def _num(x: Any) -> float | None:
    """A float, or None for a missing / non-numeric value (JSON gives Infinity as float('inf'))."""
    if isinstance(x, bool) or x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _counts(rep: dict[str, Any]) -> dict[str, int]:
    """Totals for the top block: laws, mutants, implementation checks, (check, dtype) rows, cases."""
    laws, mutants, checks = rep.get("laws", []), rep.get("mutants", []), rep.get("checks", [])
    rows = [f for c in checks for f in (c.get("per_dtype") or {}).values()]
    return {"laws": len(laws), "laws_passed": sum(bool(x.get("passed")) for x in laws),
            "mutants": len(mutants), "mutants_killed": sum(bool(m.get("killed")) for m in mutants),
            "checks": len(checks), "checks_passed": sum(bool(c.get("passed")) for c in checks),
            "dtype_rows": len(rows), "dtype_rows_passed": sum(bool(f.get("passed")) for f in rows),
            "cases": sum(int(f.get("cases") or 0) for f in rows) + sum(int(x.get("n_cases") or 0) for x in laws),
            "sweep_points": len(rep.get("length_sweep") or [])}


def _counts_line(k: dict[str, int]) -> str:
    return (f"laws {k['laws_passed']}/{k['laws']} passed · mutants {k['mutants_killed']}/{k['mutants']} killed · "
            f"implementation checks {k['checks_passed']}/{k['checks']} passed "
            f"({k['dtype_rows_passed']}/{k['dtype_rows']} implementation x dtype) · {k['cases']} cases")


_ENV_KEYS = (("python", "python"), ("torch", "torch"), ("triton", "triton"), ("numpy", "numpy"),
             ("mpmath", "mpmath"), ("hypothesis", "hypothesis"), ("veriformer", "veriformer"),
             ("device", "device"), ("device_name", "device name"), ("profile", "profile"), ("seed", "seed"),
             ("date", "date"), ("git_commit", "git commit"), ("platform", "platform"))


def _env_items(rep: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs of the environment, wall time included; keys absent from ``rep`` are left out."""
    env = rep.get("environment") or {}
    items = [(label, str(env[k])) for k, label in _ENV_KEYS if env.get(k) is not None]
    if rep.get("seconds") is not None:
        items.append(("wall time", f"{rep['seconds']} s"))
    return items


def _failures(rep: dict[str, Any]) -> list[dict[str, str]]:
    """Every failure as {kind, name, where, message, example, replay}: failing checks (one per dtype), failing
    laws, and mutants some declared catcher missed."""
    out: list[dict[str, str]] = []
    for c in rep.get("checks", []):
        if c.get("passed"):
            continue
        fails = c.get("failures") or {}
        if not fails:
            out.append({"kind": "check", "name": c.get("name", "?"), "where": f"op {c.get('op')}",
                        "message": "no case ran", "example": "", "replay": ""})
        for dt, f in fails.items():
            out.append({"kind": "check", "name": c.get("name", "?"), "where": f"op {c.get('op')}, {dt}",
                        "message": str(f.get("message", "")), "example": str(f.get("example", "")),
                        "replay": str(f.get("replay", ""))})
    for law in rep.get("laws", []):
        if law.get("passed"):
            continue
        f = law.get("failure") or {}
        out.append({"kind": "law", "name": law.get("name", "?"), "where": str(law.get("source", "")),
                    "message": str(f.get("message", "")), "example": str(f.get("example", "")),
                    "replay": str(f.get("replay", ""))})
    for m in rep.get("mutants", []):
        if m.get("killed"):
            continue
        missed = [t for t, v in (m.get("caught") or {}).items() if not v]
        out.append({"kind": "mutant survived", "name": m.get("name", "?"), "where": f"planted in {m.get('target')}",
                    "message": "not caught by " + (", ".join(missed) or "any catcher (none ran)"),
                    "example": str(m.get("description", "")), "replay": ""})
    return out


def _bits(c: dict[str, Any], dtype: str) -> float | None:
    """Largest ``bits_lost`` of the candidate over a check's cases in ``dtype``, where the figures have it."""
    vals = [_num((v.get("candidate") or {}).get("bits_lost")) for case in c.get("cases", [])
            if case.get("dtype") == dtype for v in case.get("verdicts", [])]
    vals = [v for v in vals if v is not None]
    return max(vals) if vals else None


def _is_baseline(c: dict[str, Any]) -> bool:
    """A check of the op's baseline itself: named ``naive_torch...``, or with a max ratio of exactly 1 in every
    dtype (its margin is ~1/rho by construction)."""
    ratios = [f.get("max_ratio") for f in (c.get("per_dtype") or {}).values()]
    return str(c.get("name", "")).startswith("naive_torch") or (bool(ratios) and all(r == 1.0 for r in ratios))


def _closest(rep: dict[str, Any], n: int = CLOSEST_ROWS) -> list[dict[str, Any]]:
    """The ``n`` rows with the largest margin over (check, dtype) and law: kind, name, where, margin, max abs,
    max ulp, bits lost (where present), passed.  Passing naive baselines are left out (see
    :func:`_is_baseline`)."""
    rows: list[dict[str, Any]] = []
    for c in rep.get("checks", []):
        if _is_baseline(c) and c.get("passed"):
            continue
        for dt, f in (c.get("per_dtype") or {}).items():
            rows.append({"kind": "check", "name": c.get("name"), "where": f"{c.get('op')} {dt}",
                         "margin": _num(f.get("max_margin")), "max_abs": _num(f.get("max_abs")),
                         "max_ulp": _num(f.get("max_ulp")), "bits_lost": _bits(c, dt), "passed": f.get("passed")})
    for law in rep.get("laws", []):
        w = law.get("worst") or {}
        rows.append({"kind": "law", "name": law.get("name"), "where": str(w.get("what", "")),
                     "margin": _num(w.get("margin")) if w else (None if law.get("passed") else math.inf),
                     "max_abs": _num(w.get("max_abs")), "max_ulp": _num(w.get("max_ulp")), "bits_lost": None,
                     "passed": law.get("passed")})
    rows.sort(key=lambda r: -math.inf if r["margin"] is None or math.isnan(r["margin"]) else r["margin"],
              reverse=True)
    return rows[:n]


def _mutant_rows(rep: dict[str, Any]) -> list[dict[str, Any]]:
    """mutant -> caught by: name, planted in, killed, the catchers that caught it and those that missed it."""
    out = []
    for m in rep.get("mutants", []):
        caught = m.get("caught") or {}
        out.append({"name": m.get("name", "?"), "target": m.get("target", ""), "killed": bool(m.get("killed")),
                    "caught_by": [t for t, v in caught.items() if v], "missed_by": [t for t, v in caught.items()
                                                                                   if not v],
                    "description": m.get("description", "")})
    return out


# ------------------------------------------------------------------------------------------------ markdown


def to_markdown(rep: dict[str, Any]) -> str:
    """The report as Markdown: verdict, counts, environment and failures first, then every table."""
    verdict = "PASSED" if rep.get("passed") else "FAILED"
    k = _counts(rep)
    fails = _failures(rep)
    out = [f"# veriformer conformance report — {verdict}", "", f"**{verdict}** · {_counts_line(k)} · "
           f"{len(fails)} failure(s)", "", " · ".join(f"{label} {v}" for label, v in _env_items(rep)), ""]
    out += ["## Failures", ""]
    if not fails:
        out += ["None: every law passed, every mutant was caught by every declared catcher, every implementation "
                "check passed.", ""]
    else:
        for f in fails:
            out.append(f"- **{f['kind']} `{f['name']}`** ({f['where']}): {f['message'][:1000]}")
            if f["example"]:
                out.append(f"  - example: `{' '.join(f['example'].split())[:1000]}`")
            if f["replay"]:
                out.append(f"  - replay: `{' '.join(f['replay'].split())[:2000]}`")
        out.append("")
    out += ["## Closest to failing", "", "| margin | kind | name | where | max abs | max ulp | passed |",
            "|---|---|---|---|---|---|---|"]
    for r in _closest(rep):
        out.append(f"| {_g(r['margin'])} | {r['kind']} | `{r['name']}` | {r['where']} | {_g(r['max_abs'])} | "
                   f"{_g(r['max_ulp'])} | {'yes' if r['passed'] else '**NO**'} |")
    out += ["", "## Laws", "", "| law | kind | cases | passed | worst margin | worst max abs | source |",
            "|---|---|---|---|---|---|---|"]
    for law in rep.get("laws", []):
        w = law.get("worst") or {}
        out.append(f"| `{law['name']}` | {law.get('kind')} | {law.get('n_cases')} | "
                   f"{'yes' if law['passed'] else '**NO**'} | {_g(w.get('margin'))} | {_g(w.get('max_abs'))} | "
                   f"{law.get('source', '')} |")
    out += ["", "margin = max error / allowed error (<= 1 passes); allowed errors come from the tolerance "
            "table below.", "", "## Implementation checks", "",
            "| implementation | op | dtype | grad | cases | passed | max ratio | margin | max abs | max ulp | "
            "rel RMS | baseline max abs |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in rep.get("checks", []):
        for dt, f in (c.get("per_dtype") or {}).items():
            out.append(f"| {c['name']} | {c['op']} | {dt} | {c.get('grad')} | {f.get('cases')} | "
                       f"{'yes' if f.get('passed') else '**NO**'} | {_g(f.get('max_ratio'))} | "
                       f"{_g(f.get('max_margin'))} | {_g(f.get('max_abs'))} | {_g(f.get('max_ulp'))} | "
                       f"{_g(f.get('rel_rms'))} | {_g(f.get('baseline_max_abs'))} |")
    out += ["", "max ratio = per output or gradient, the candidate's largest abs error over all cases / the naive "
            "baseline's, maximised over outputs; margin = max error / allowed (<= 1 passes); "
            "max ulp over elements whose gold value is a normal number of the dtype; rel RMS = ||c - g|| / ||g||. "
            "Gradients whose gold values are ~0 by cancellation (dq of a one-hot softmax row, say) have huge max ulp "
            "and rel RMS by construction: their absolute error is bounded by the conditioned floor."]
    sweep = rep.get("length_sweep") or []
    for op in sorted({r["op"] for r in sweep}):
        rows = [r for r in sweep if r["op"] == op]
        sizes = sorted({r["size"] for r in rows})
        out += ["", f"## {op}: error vs sequence length (fixed shapes, median max abs over seeds)", "",
                "| implementation | dtype | " + " | ".join(f"len {n}" for n in sizes) + " |",
                "|---|---|" + "---|" * len(sizes)]
        for impl, dt in dict.fromkeys((r["impl"], r["dtype"]) for r in rows):
            cells = []
            for n in sizes:
                errs = [r["max_abs"] for r in rows if (r["impl"], r["dtype"], r["size"]) == (impl, dt, n)
                        and r["max_abs"] is not None]
                cells.append(_g(float(np.median(errs))) if errs else "—")
            out.append(f"| {impl} | {dt} | " + " | ".join(cells) + " |")
    out += ["", "ratio = max abs error of the implementation / that of the naive torch baseline in the same "
            "dtype (figures include gradients where grad is True).", "",
            "## Kill matrix (mutant -> caught by)", "",
            "Each planted bug and the laws / op checks that caught it; a mutant is killed when every declared "
            "catcher catches it.", "", "| mutant | planted in | killed | caught by | missed by | description |",
            "|---|---|---|---|---|---|"]
    for m in _mutant_rows(rep):
        out.append(f"| `{m['name']}` | {m['target']} | {'yes' if m['killed'] else '**NO**'} | "
                   f"{', '.join(m['caught_by']) or '—'} | {', '.join(m['missed_by']) or '—'} | "
                   f"{m['description']} |")
    out += ["", "## Tolerance table", "", "| key | rho | floor ulps | factor | reason |",
            "|---|---|---|---|---|"]
    for t in rep.get("tolerances", []):
        out.append(f"| `{t['key']}` | {_g(t.get('rho'))} | {_g(t.get('floor_ulps'))} | "
                   f"{_g(t.get('factor'))} | {t.get('reason', '')} |")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------- plots

_DT_ORDER = ("float16", "bfloat16", "float32", "float64")


def _median_points(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for n in sorted({r["size"] for r in rows}):
        vals = [v for r in rows if r["size"] == n and (v := _num(r.get(key))) is not None and math.isfinite(v)]
        if vals:
            xs.append(n)
            ys.append(float(np.median(vals)))
    return xs, ys


def _plots(rep: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(title, caption, base64 PNG) figures: per op, error vs sequence length in small multiples (one panel per
    dtype, the allowed error dashed, the legend to the right of the panels); then the margin distribution per
    dtype with the tolerance (margin 1) drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = []
    sweep = rep.get("length_sweep") or []
    cmap = plt.get_cmap("tab10")
    for op in sorted({r["op"] for r in sweep}):
        rows = [r for r in sweep if r["op"] == op]
        dts = [d for d in _DT_ORDER if any(r["dtype"] == d for r in rows)]
        impls = list(dict.fromkeys(r["impl"] for r in rows))
        fig, axes = plt.subplots(1, len(dts), figsize=(3.4 * len(dts), 2.7), sharey=True, squeeze=False)
        handles: dict[str, Any] = {}
        for ax, dt in zip(axes[0], dts, strict=True):
            for k, impl in enumerate(impls):
                sel = [r for r in rows if r["impl"] == impl and r["dtype"] == dt]
                xs, ys = _median_points(sel, "max_abs")
                pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y > 0]
                if pts:
                    (h,) = ax.plot(*zip(*pts, strict=True), ["-", "--", ":", "-."][k // 10 % 4],
                                   marker="osv^Dx+*<>"[k % 10], mfc="none", color=cmap(k % 10),
                                   ms=7.0 - 0.45 * (k % 10), lw=1.1)
                    handles.setdefault(impl, h)
            xs, ys = _median_points([r for r in rows if r["dtype"] == dt], "allowed")
            pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y > 0]
            if pts:
                (h,) = ax.plot(*zip(*pts, strict=True), "k--", lw=1.6, alpha=0.7)
                handles.setdefault("allowed error (median)", h)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(dt, fontsize=9)
            ax.set_xlabel("sequence length T", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(True, which="major", alpha=0.3)
        axes[0][0].set_ylabel("max abs error vs fp64 oracle", fontsize=8)
        fig.tight_layout()
        if handles:
            fig.legend(list(handles.values()), list(handles), loc="center left", bbox_to_anchor=(0.995, 0.5),
                       fontsize=7, frameon=False)
        fig.suptitle(f"{op}: error vs sequence length", fontsize=10, y=1.04)
        title = f"{op}: error vs sequence length"
        caption = ("median over seeds of the largest absolute error of the output; dashed: the allowed error "
                   "rho x (naive baseline's error) + floor, median over implementations; up to T = "
                   f"{max(r['size'] for r in rows)}")
        figs.append((title, caption, _png(fig, legend_outside=bool(handles))))
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    lo, hi = -6.0, 2.0
    bins = np.linspace(lo, hi, 41)
    colors = {"float16": "tab:red", "bfloat16": "tab:orange", "float32": "tab:blue", "float64": "tab:green"}
    for dt, col in colors.items():
        ms = [m for c in rep.get("checks", []) for case in c.get("cases", []) if case.get("dtype") == dt
              for v in case.get("verdicts", []) if (m := _num(v.get("margin"))) is not None and m > 0]
        if ms:
            ax.hist(np.clip(np.log10(np.minimum(ms, 1e300)), lo, hi), bins=bins, histtype="step", lw=1.5,
                    color=col, label=f"{dt} ({len(ms)})")
    ax.axvline(0.0, color="k", ls="--", lw=1.2, label="tolerance (margin 1)")
    ax.axvspan(0.0, hi, color="tab:red", alpha=0.08)
    ax.set_xlabel("log10(margin) = log10(error / allowed error), clipped to [-6, 2]; right of the dashed line "
                  "fails", fontsize=8)
    ax.set_ylabel("outputs and gradients", fontsize=8)
    ax.set_title("margin distribution of every checked output and gradient", fontsize=10)
    ax.tick_params(labelsize=7)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    figs.append(("margin distribution", "each (case, output) verdict of every implementation check, per dtype",
                 _png(fig, legend_outside=True)))
    plt.close(fig)
    return figs


def _png(fig: Any, legend_outside: bool = False) -> str:
    buf = io.BytesIO()
    if not legend_outside:
        fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight" if legend_outside else None)
    return base64.b64encode(buf.getvalue()).decode()


# ---------------------------------------------------------------------------------------------------- html


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _margin_class(m: float | None) -> str:
    if m is None or math.isnan(m):
        return ""
    return "good" if m < MARGIN_AMBER else ("warn" if m <= MARGIN_RED else "bad")


def _mcell(m: Any) -> str:
    v = _num(m)
    return f"<td class='num {_margin_class(v)}'>{_e(_g(v))}</td>"


def _pass_cell(ok: Any, yes: str = "pass", no: str = "FAIL") -> str:
    return f"<td class='{'pass' if ok else 'fail'}'>{yes if ok else no}</td>"


def _ncell(x: Any) -> str:
    return f"<td class='num'>{_e(_g(x))}</td>"


def _table(tid: str, head: list[str], rows: list[str], search: str | None = None) -> str:
    box = (f"<input class='filter' type='search' data-table='{tid}' placeholder='{_e(search)}' "
           f"aria-label='{_e(search)}'> <span class='shown' id='{tid}-shown'></span>") if search else ""
    return (f"<div class='tbl' id='{tid}'>{box}<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1360px;margin:0 auto;padding:0 16px 40px;
font-size:13px;color:#1d1d1f}
h1{font-size:22px;margin:14px 0 6px}h2{font-size:17px;margin:26px 0 6px;border-bottom:1px solid #ddd}
.verdict{display:inline-block;padding:4px 14px;border-radius:6px;color:#fff;font-weight:700;font-size:20px;
margin-right:10px;vertical-align:middle}
.verdict.PASSED{background:#1a7f37}.verdict.FAILED{background:#c62828}
.top{border:1px solid #ddd;border-radius:8px;padding:10px 14px;background:#fafafa}
.counts{font-size:15px;margin:8px 0}.counts b{font-size:17px}
.env{display:flex;flex-wrap:wrap;gap:4px 18px;color:#444;font-size:12px;margin-top:6px}.env span b{color:#000}
nav{margin:8px 0;font-size:12px}nav a{margin-right:12px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #d0d0d0;padding:2px 6px;vertical-align:top}
th{background:#eee;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.pass{color:#1a7f37;font-weight:600}td.fail{color:#fff;background:#c62828;font-weight:700}
.good{background:#d8f3dc}.warn{background:#ffe8a3}.bad{background:#f8c4c4;font-weight:700}
.key span{display:inline-block;padding:0 6px;margin-right:6px}
.failure{border-left:4px solid #c62828;background:#fff4f4;padding:6px 10px;margin:8px 0}
.failure h3{margin:0 0 4px;font-size:14px}
pre{white-space:pre-wrap;word-break:break-all;background:#f4f4f4;padding:4px 6px;margin:4px 0;font-size:12px}
pre.replay{background:#fff;border:1px solid #c62828}pre.example{color:#444}
code{font-size:12px}.muted{color:#666}td.note{color:#666;font-size:11px;max-width:420px}td.muted{font-size:11px}
input.filter{font-size:13px;padding:3px 6px;width:320px;margin:4px 0}
figure{margin:10px 0}figcaption{color:#555;font-size:12px}img{max-width:100%}
details>summary{cursor:pointer;font-weight:600;margin:6px 0}
"""

_SCRIPT = """
document.querySelectorAll('input.filter').forEach(function(box){
  var table=document.getElementById(box.dataset.table).querySelector('table');
  var shown=document.getElementById(box.dataset.table+'-shown');
  function apply(){
    var q=box.value.trim().toLowerCase(), n=0, rows=table.tBodies[0].rows;
    for(var i=0;i<rows.length;i++){
      var hit=!q||rows[i].textContent.toLowerCase().indexOf(q)>=0;
      rows[i].style.display=hit?'':'none'; if(hit){n++;}
    }
    shown.textContent=n+' of '+rows.length+' shown';
  }
  var given=new URLSearchParams(location.search).get(box.dataset.table);
  if(given!==null){box.value=given;}
  box.addEventListener('input',apply); apply();
});
"""


def to_html(rep: dict[str, Any], markdown: str | None = None) -> str:
    """Self-contained HTML page (inline CSS, base64 PNG plots, a few lines of JS for the search boxes):
    verdict, counts, environment; failures with replay lines; closest to failing; implementation checks;
    plots; laws; mutant -> caught by; tolerances.  ``markdown`` is accepted for backward compatibility and
    not used."""
    del markdown
    verdict = "PASSED" if rep.get("passed") else "FAILED"
    k = _counts(rep)
    fails = _failures(rep)
    env = "".join(f"<span>{_e(label)} <b>{_e(v)}</b></span>" for label, v in _env_items(rep))
    sections = [("failures", "Failures"), ("closest", "Closest to failing"), ("checks", "Implementation checks"),
                ("plots", "Plots"), ("laws", "Laws"), ("mutants", "Mutant → caught by"),
                ("tolerances", "Tolerances")]
    nav = "".join(f"<a href='#{sid}'>{_e(t)}</a>" for sid, t in sections)
    part = [f"<h1>veriformer conformance report</h1><div class='top'><span class='verdict {verdict}' "
            f"id='verdict'>{verdict}</span><span class='counts' id='counts'>"
            f"laws <b>{k['laws_passed']}/{k['laws']}</b> passed · mutants <b>{k['mutants_killed']}/"
            f"{k['mutants']}</b> killed · implementation checks <b>{k['checks_passed']}/{k['checks']}</b> passed "
            f"({k['dtype_rows_passed']}/{k['dtype_rows']} implementation × dtype) · {k['cases']} cases · "
            f"<b>{len(fails)}</b> failure(s)</span><div class='env' id='environment'>{env}</div></div>"
            f"<nav>{nav}</nav>"]
    # failures
    part.append("<h2 id='failures'>Failures</h2>")
    if not fails:
        part.append("<p class='muted'>None: every law passed, every mutant was caught by every declared catcher, "
                    "every implementation check passed.</p>")
    groups: dict[tuple[str, str], list[dict[str, str]]] = {}
    for f in fails:
        groups.setdefault((f["kind"], f["name"]), []).append(f)
    for (kind, name), fs in groups.items():
        msgs = "".join(f"<pre><b>{_e(f['where'])}</b>: {_e(f['message'])}</pre>" for f in fs)
        examples = "".join(f"<pre class='example'>{_e(' '.join(x.split()))}</pre>"
                           for x in dict.fromkeys(f["example"] for f in fs) if x)
        replays = "".join(f"<pre class='replay'>{_e(x)}</pre>" for x in dict.fromkeys(f["replay"] for f in fs) if x)
        part.append(f"<div class='failure'><h3>{_e(kind)} <code>{_e(name)}</code></h3>{msgs}{examples}"
                    + (f"<div>replay:</div>{replays}" if replays else "") + "</div>")
    # closest to failing
    closest = _closest(rep)
    has_bits = any(r["bits_lost"] is not None for r in closest)
    head = ["margin", "kind", "name", "where", "max abs", "max ulp"] + (["bits lost"] if has_bits else []) + \
        ["verdict"]
    rows = [f"<tr>{_mcell(r['margin'])}<td>{_e(r['kind'])}</td><td><code>{_e(r['name'])}</code></td>"
            f"<td>{_e(r['where'])}</td>{_ncell(r['max_abs'])}{_ncell(r['max_ulp'])}"
            + (_ncell(r["bits_lost"]) if has_bits else "") + f"{_pass_cell(r['passed'])}</tr>" for r in closest]
    part.append("<h2 id='closest'>Closest to failing</h2><p class='key'>margin = error / allowed error, <= 1 "
                "passes: <span class='good'>&lt; 0.5</span><span class='warn'>0.5 – 1</span>"
                "<span class='bad'>&gt; 1 fails</span> (check rows: worst over the implementation's cases in "
                f"that dtype; law rows: the worst claim; passing naive baselines, at 1/rho by construction, left out). "
                f"Top {len(closest)}.</p>" + _table("closest-table", head, rows))
    part.append(_checks_html(rep))
    # plots
    plots = "".join(f"<figure><img alt='{_e(t)}' src='data:image/png;base64,{b}'><figcaption>{_e(t)}: {_e(c)}"
                    "</figcaption></figure>" for t, c, b in _plots(rep))
    part.append(f"<h2 id='plots'>Plots</h2>{plots}{_sweep_html(rep)}")
    # laws
    rows = []
    for law in rep.get("laws", []):
        w = law.get("worst") or {}
        rows.append(f"<tr><td><code>{_e(law.get('name'))}</code></td><td>{_e(law.get('kind', ''))}</td>"
                    f"{_pass_cell(law.get('passed'))}{_ncell(law.get('n_cases'))}{_mcell(w.get('margin'))}"
                    f"{_ncell(_num(w.get('max_abs')))}<td>{_e(w.get('what', ''))}</td>"
                    f"<td class='muted'>{_e(law.get('source', ''))}</td></tr>")
    part.append("<h2 id='laws'>Laws</h2>" + _table("laws-table", ["law", "kind", "verdict", "cases", "worst margin",
                                                                   "worst max abs", "worst claim", "source"],
                                                    rows, search="filter laws (name, kind, source)"))
    # mutants
    rows = [f"<tr><td><code>{_e(m['name'])}</code></td><td>{_e(m['target'])}</td>"
            f"{_pass_cell(m['killed'], 'killed', 'SURVIVED')}<td>"
            + ", ".join(f"<code>{_e(t)}</code>" for t in m["caught_by"])
            + "".join(f" <span class='fail'>missed by <code>{_e(t)}</code></span>" for t in m["missed_by"])
            + f"</td><td class='muted'>{_e(m['description'])}</td></tr>" for m in _mutant_rows(rep)]
    part.append("<h2 id='mutants'>Mutant → caught by</h2><p class='muted'>Each planted bug and the laws / op "
                "checks that caught it; killed = caught by every declared catcher.</p>" +
                _table("mutants-table", ["mutant", "planted in", "verdict", "caught by", "description"], rows,
                       search="filter mutants (name, law, op, text)"))
    # tolerances
    rows = [f"<tr><td><code>{_e(t.get('key'))}</code></td>{_ncell(_num(t.get('rho')))}"
            f"{_ncell(_num(t.get('floor_ulps')))}{_ncell(_num(t.get('factor')))}"
            f"<td class='muted'>{_e(t.get('reason', ''))}</td></tr>" for t in rep.get("tolerances", [])]
    part.append("<h2 id='tolerances'>Tolerances</h2>" +
                _table("tolerances-table", ["key", "rho", "floor ulps", "factor", "reason"], rows))
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>veriformer conformance: {verdict}"
            f"</title><style>{_STYLE}</style></head><body>{''.join(part)}<script>{_SCRIPT}</script>"
            "</body></html>")


_PER_DTYPE_KNOWN = ("cases", "passed", "max_ratio", "max_margin", "max_abs", "max_ulp", "rel_rms",
                    "baseline_max_abs", "baseline_max_ulp")


def _checks_html(rep: dict[str, Any]) -> str:
    """One row per (implementation, dtype); figures that only newer results carry (e.g. bits lost, coverage)
    get a column when present."""
    checks = rep.get("checks", [])
    extra = list(dict.fromkeys(key for c in checks for f in (c.get("per_dtype") or {}).values() for key in f
                               if key not in _PER_DTYPE_KNOWN and _num(f[key]) is not None))
    has_cov = any(c.get("coverage") for c in checks)
    head = ["implementation", "op", "dtype", "grad", "cases", "verdict", "margin", "max ratio", "max abs",
            "max ulp", "rel RMS", "baseline max abs"] + [x.replace("_", " ") for x in extra] + \
        (["coverage"] if has_cov else []) + ["note"]
    rows = []
    for c in checks:
        for j, (dt, f) in enumerate((c.get("per_dtype") or {}).items()):
            cov_txt = _coverage_text(c.get("coverage")) if j == 0 else ""
            rows.append(f"<tr><td><code>{_e(c.get('name'))}</code></td><td>{_e(c.get('op'))}</td><td>{_e(dt)}</td>"
                        f"<td>{_e(c.get('grad'))}</td>{_ncell(f.get('cases'))}{_pass_cell(f.get('passed'))}"
                        f"{_mcell(f.get('max_margin'))}{_ncell(_num(f.get('max_ratio')))}"
                        f"{_ncell(_num(f.get('max_abs')))}{_ncell(_num(f.get('max_ulp')))}"
                        f"{_ncell(_num(f.get('rel_rms')))}{_ncell(_num(f.get('baseline_max_abs')))}"
                        + "".join(_ncell(_num(f.get(x))) for x in extra)
                        + (f"<td class='note'>{_e(cov_txt[:400])}</td>" if has_cov else "")
                        + f"<td class='note'>{_e(c.get('note', '') if j == 0 else '')}</td></tr>")
    return ("<h2 id='checks'>Implementation checks</h2><p class='muted'>margin = max error / allowed (<= 1 "
            "passes); max ratio = the candidate's largest abs error / the naive torch baseline's, per output, "
            "maximised over outputs; max ulp over elements whose gold value is a normal number of the dtype.</p>" +
            _table("checks-table", head, rows, search="filter checks (implementation, op, dtype)"))


def _coverage_text(cov: Any) -> str:
    """A check's ``coverage`` in a few words: features (and those not covered), regions hit of reachable (and
    the missed ones), cases per dtype collapsed when equal."""
    if not isinstance(cov, dict):
        return "" if cov is None else str(cov)
    parts = []
    if cov.get("features") is not None:
        parts.append("features " + (", ".join(cov["features"]) or "none"))
    if cov.get("not_covered"):
        parts.append("not covered: " + ", ".join(cov["not_covered"]))
    hit, missed = cov.get("regions_hit") or [], cov.get("regions_missed") or []
    if hit or missed:
        parts.append(f"regions {len(hit)}/{len(hit) + len(missed)}" + (f" (missed: {', '.join(missed)})"
                                                                          if missed else ""))
    per = cov.get("cases_per_dtype") or {}
    if per:
        counts = set(per.values())
        parts.append(f"{counts.pop()} cases per dtype" if len(counts) == 1
                     else "cases " + ", ".join(f"{k} {v}" for k, v in per.items()))
    known = {"features", "not_covered", "regions_hit", "regions_missed", "cases_per_dtype"}
    parts += [f"{k.replace('_', ' ')}: {v}" for k, v in cov.items() if k not in known and v]
    return "; ".join(parts)


def _sweep_html(rep: dict[str, Any]) -> str:
    """The error-vs-length figures as tables, folded (the plots above show them)."""
    sweep = rep.get("length_sweep") or []
    out = []
    for op in sorted({r["op"] for r in sweep}):
        rows = [r for r in sweep if r["op"] == op]
        sizes = sorted({r["size"] for r in rows})
        body = []
        for impl, dt in dict.fromkeys((r["impl"], r["dtype"]) for r in rows):
            cells = []
            for n in sizes:
                sel = [r for r in rows if (r["impl"], r["dtype"], r["size"]) == (impl, dt, n)]
                errs = [v for r in sel if (v := _num(r.get("max_abs"))) is not None]
                margins = [v for r in sel if (v := _num(r.get("margin"))) is not None]
                cls = _margin_class(max(margins)) if margins else ""
                cells.append(f"<td class='num {cls}'>{_e(_g(float(np.median(errs))) if errs else '—')}</td>")
            body.append(f"<tr><td><code>{_e(impl)}</code></td><td>{_e(dt)}</td>{''.join(cells)}</tr>")
        out.append(f"<details><summary>{_e(op)}: error vs sequence length, table (median max abs over seeds; "
                   "cell colour = worst margin)</summary>" +
                   _table(f"sweep-{op}", ["implementation", "dtype"] + [f"T = {n}" for n in sizes], body) +
                   "</details>")
    return "".join(out)


def write_report(out: str | Path = "reports/cpu", **kw: Any) -> dict[str, Any]:
    """Build the report (keywords as :func:`build_report`) and write conformance.{json,md,html} into ``out``;
    returns the report dict."""
    rep = build_report(**kw)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "conformance.json").write_text(dumps(rep, indent=1) + "\n")  # strict JSON: non-finite as strings
    md = to_markdown(rep)
    (out / "conformance.md").write_text(md)
    (out / "conformance.html").write_text(to_html(rep, md))
    return rep


def load_report(path: str | Path) -> dict[str, Any]:
    """A ``conformance.json`` written by :func:`write_report` (non-finite figures restored to floats), ready for
    :func:`to_markdown` / :func:`to_html`."""
    return load(path)
