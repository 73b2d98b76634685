"""``veriformer report``: run the catalogue (laws, mutants, implementation checks) and write
``conformance.json``, ``conformance.md`` and a self-contained ``conformance.html`` with plots."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .check import check
from .implementations import IMPLEMENTATIONS
from .laws import run_law, run_mutant
from .registry import LAWS, MUTANTS
from .tolerances import TOLERANCES

__all__ = ["build_report", "write_report"]

DTYPES = ("float16", "bfloat16", "float32")


def _progress(i: int, n: int, label: str) -> None:
    width = 30
    done = int(width * i / max(n, 1))
    sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {i}/{n} {label[:60]:<60}")
    sys.stderr.flush()
    if i == n:
        sys.stderr.write("\n")


def _environment(device: str, profile: str, seed: int) -> dict[str, Any]:
    import hypothesis
    import mpmath
    import torch

    from . import __version__

    dev = torch.cuda.get_device_name() if device.startswith("cuda") and torch.cuda.is_available() else \
        (platform.processor() or platform.machine())
    return {"veriformer": __version__, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "device": device, "device_name": dev, "python": platform.python_version(),
            "platform": platform.platform(), "torch": torch.__version__, "numpy": np.__version__,
            "mpmath": mpmath.__version__, "hypothesis": hypothesis.__version__, "profile": profile,
            "seed": seed}


def build_report(*, device: str = "cpu", profile: str = "ci", seed: int = 0,
                 progress: bool = True) -> dict[str, Any]:
    """Run every law, every mutant against its catchers, and every implementation check."""
    impls = IMPLEMENTATIONS
    total = len(LAWS) + len(MUTANTS) + len(impls)
    step = 0
    t0 = time.time()

    def tick(label: str) -> None:
        nonlocal step
        step += 1
        if progress:
            _progress(step, total, label)

    laws = []
    for name in LAWS:
        laws.append(run_law(name, profile=profile).as_dict())
        tick(f"law {name}")
    mutants = []
    for name in MUTANTS:
        mutants.append(run_mutant(name, profile=profile).as_dict())
        tick(f"mutant {name}")
    checks = []
    for impl in impls:
        r = check(impl.fn, op=impl.op, dtypes=DTYPES, device=device, features=impl.features,
                  grad=impl.grad, profile=profile, seed=seed, name=impl.name, **impl.options)
        d = r.as_dict()
        d["note"] = impl.note
        checks.append(d)
        tick(f"check {impl.name}")
    sweep = _length_sweep(impls, device, profile, seed)
    targets = list(LAWS) + sorted({t for m in MUTANTS.values() for t in m.caught_by if t.startswith("op:")})
    matrix = [{"mutant": m["name"], "cells": {t: m["caught"].get(t) for t in targets}} for m in mutants]
    return {"environment": _environment(device, profile, seed), "seconds": round(time.time() - t0, 1),
            "tolerances": [vars(t) for t in TOLERANCES.values()], "laws": laws, "mutants": mutants,
            "kill_matrix": {"targets": targets, "rows": matrix}, "checks": checks, "length_sweep": sweep,
            "passed": all(x["passed"] for x in laws) and all(m["killed"] for m in mutants)
            and all(c["passed"] for c in checks)}


def _length_sweep(impls: list[Any], device: str, profile: str, seed: int) -> list[dict[str, Any]]:
    """Error of each implementation's output on the op's fixed sweep shapes at growing sequence length
    (3 seeds per length; more lengths in the deep profile).  Rows: impl, op, dtype, size, max abs, ratio."""
    from .ops import OPS

    rows: list[dict[str, Any]] = []
    for impl in impls:
        spec = OPS[impl.op]
        if spec.sweep is None:
            continue
        sizes = spec.sweep_sizes if profile == "deep" else spec.sweep_sizes[:-1]
        cases = [spec.sweep(n, seed + i) for n in sizes for i in range(3)]
        r = check(impl.fn, op=impl.op, dtypes=DTYPES, device=device, cases=cases, name=impl.name,
                  **impl.options)
        for c in r.cases:
            v = c.verdicts[0] if c.verdicts else None
            rows.append({"impl": impl.name, "op": impl.op, "dtype": c.dtype, "size": c.size, "passed": c.passed,
                         "max_abs": v.candidate.max_abs if v else None, "ratio": v.ratio if v else None,
                         "baseline_max_abs": v.baseline.max_abs if v else None})
    return rows


def _g(x: Any) -> str:
    return "—" if x is None else (f"{x:.3g}" if isinstance(x, float) else str(x))


def to_markdown(rep: dict[str, Any]) -> str:
    env = rep["environment"]
    out = [f"# veriformer conformance report — {'PASSED' if rep['passed'] else 'FAILED'}", "",
           f"{env['date']} · device {env['device']} ({env['device_name']}) · profile {env['profile']} · "
           f"seed {env['seed']} · torch {env['torch']} · numpy {env['numpy']} · mpmath {env['mpmath']} · "
           f"hypothesis {env['hypothesis']} · python {env['python']} · {rep['seconds']} s", "",
           "## Laws", "", "| law | kind | cases | passed | worst margin | worst max abs | source |",
           "|---|---|---|---|---|---|---|"]
    for law in rep["laws"]:
        w = law["worst"] or {}
        out.append(f"| `{law['name']}` | {law['kind']} | {law['n_cases']} | {'yes' if law['passed'] else '**NO**'} "
                   f"| {_g(w.get('margin'))} | {_g(w.get('max_abs'))} | {law['source']} |")
    out += ["", "margin = max error / allowed error (<= 1 passes); allowed errors come from the tolerance "
            "table below.", "", "## Implementation checks", "",
            "| implementation | op | dtype | grad | cases | passed | max ratio | margin | max abs | max ulp | "
            "rel RMS | baseline max abs |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in rep["checks"]:
        for dt, f in c["per_dtype"].items():
            out.append(f"| {c['name']} | {c['op']} | {dt} | {c['grad']} | {f['cases']} | "
                       f"{'yes' if f['passed'] else '**NO**'} | {_g(f['max_ratio'])} | {_g(f['max_margin'])} | "
                       f"{_g(f['max_abs'])} | {_g(f['max_ulp'])} | {_g(f['rel_rms'])} | "
                       f"{_g(f['baseline_max_abs'])} |")
    out += ["", "max ratio = per output or gradient, the candidate's largest abs error over all cases / the naive "
            "baseline's, maximised over outputs; margin = max error / allowed (<= 1 passes); "
            "max ulp over elements whose gold value is a normal number of the dtype; rel RMS = ||c - g|| / ||g||. "
            "Gradients whose gold values are ~0 by cancellation (dq of a one-hot softmax row, say) have huge max ulp "
            "and rel RMS by construction: their absolute error is bounded by the conditioned floor."]
    sweep = rep.get("length_sweep") or []
    for op in sorted({r["op"] for r in sweep}):
        rows = [r for r in sweep if r["op"] == op]
        sizes = sorted({r["size"] for r in rows})
        out += ["", f"## {op}: error vs sequence length (fixed shapes, median max abs of 3 seeds)", "",
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
            "dtype (figures include gradients where grad is True).", "", "## Mutants (planted bugs)", "",
            "| mutant | planted in | killed | description |", "|---|---|---|---|"]
    for m in rep["mutants"]:
        out.append(f"| `{m['name']}` | {m['target']} | {'yes' if m['killed'] else '**NO**'} | {m['description']} |")
    targets = rep["kill_matrix"]["targets"]
    out += ["", "## Kill matrix", "", "Rows: mutants; columns: laws and op checks (x = caught, . = not run).", "",
            "| mutant | " + " | ".join(f"`{t}`" for t in targets) + " |", "|---" * (len(targets) + 1) + "|"]
    for row in rep["kill_matrix"]["rows"]:
        cells = ["x" if v else ("." if v is None else "**missed**") for v in row["cells"].values()]
        out.append(f"| `{row['mutant']}` | " + " | ".join(cells) + " |")
    out += ["", "## Tolerance table", "", "| key | rho | floor ulps | factor | reason |",
            "|---|---|---|---|---|"]
    for t in rep["tolerances"]:
        out.append(f"| `{t['key']}` | {_g(t['rho'])} | {_g(t['floor_ulps'])} | "
                   f"{_g(t['factor'])} | {t['reason']} |")
    fails = [c for c in rep["checks"] if not c["passed"]] + [x for x in rep["laws"] if not x["passed"]]
    if fails:
        out += ["", "## Failures", ""]
        for f in fails:
            out.append(f"- `{f['name']}`: {json.dumps(f.get('failures') or f.get('failure'))[:2000]}")
    return "\n".join(out) + "\n"


def _plots(rep: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, base64 PNG) figures: error vs sequence length per dtype per op, ratio distribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = []
    colors = {"float16": "tab:red", "bfloat16": "tab:orange", "float32": "tab:blue", "float64": "tab:green"}
    sweep = rep.get("length_sweep") or []
    for op in sorted({r["op"] for r in sweep}):
        fig, ax = plt.subplots(figsize=(7, 3.8))
        impls = sorted({r["impl"] for r in sweep if r["op"] == op})
        styles = ["-o", "--x", ":s", "-.^", "-v", "--d"]
        for k, impl in enumerate(impls):
            for dt, col in colors.items():
                pts = sorted({r["size"] for r in sweep if (r["op"], r["impl"], r["dtype"]) == (op, impl, dt)})
                ys = [float(np.median([r["max_abs"] for r in sweep if (r["op"], r["impl"], r["dtype"], r["size"])
                                       == (op, impl, dt, n)])) for n in pts]
                if pts and all(y > 0 for y in ys):
                    ax.plot(pts, ys, styles[k % len(styles)], color=col, ms=4, lw=1,
                            label=f"{impl} {dt}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length")
        ax.set_ylabel("max abs error vs fp64 oracle (median of 3)")
        ax.set_title(f"{op}: error vs sequence length")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, ncol=2)
        figs.append((f"{op}: error vs sequence length", _png(fig)))
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    lo, hi = -4.0, 4.0
    bins = np.linspace(lo, hi, 33)
    for dt, col in colors.items():
        r = [v["ratio"] for c in rep["checks"] if "naive" not in c["name"] for case in c["cases"]
             if case["dtype"] == dt for v in case["verdicts"] if v["ratio"] > 0]
        if r:
            ax.hist(np.clip(np.log10(np.minimum(r, 1e300)), lo, hi), bins=bins, alpha=0.5, color=col, label=dt)
    ax.axvline(np.log10(2.0), color="k", ls="--", lw=1)
    ax.set_xlabel("log10(error / naive baseline error), clipped to [-4, 4]  (rho = 2 dashed)")
    ax.set_ylabel("outputs and gradients")
    ax.set_title("ratio distribution (non-naive implementations); the verdict also has an ulp floor")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    figs.append(("ratio distribution", _png(fig)))
    plt.close(fig)
    return figs


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode()


def to_html(rep: dict[str, Any], markdown: str) -> str:
    """Self-contained HTML: the Markdown tables rendered as HTML tables plus embedded PNG plots."""
    body, table = [], []

    def flush() -> None:
        if table:
            rows = [r.strip("|").split(" | ") for r in table if not set(r) <= set("|-")]
            head, rest = rows[0], rows[1:]
            body.append("<table><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in head) + "</tr>" +
                        "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rest) +
                        "</table>")
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("- "):
            body.append(f"<p>{html.escape(line)}</p>")
        elif line:
            body.append(f"<p>{_inline(line)}</p>")
    flush()
    plots = "".join(f"<h3>{html.escape(t)}</h3><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'>"
                    for t, b in _plots(rep))
    style = ("body{font-family:sans-serif;max-width:1300px;margin:auto;font-size:13px}"
             "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:2px 6px}"
             "th{background:#eee}code{font-size:12px}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>veriformer conformance</title>"
            f"<style>{style}</style></head><body>{body[0]}<h2>Plots</h2>{plots}{''.join(body[1:])}</body></html>")


def _inline(s: str) -> str:
    s = html.escape(s.strip())
    parts = s.split("`")
    s = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    return s.replace("**", "")


def write_report(out: str | Path = "reports/cpu", **kw: Any) -> dict[str, Any]:
    """Build the report and write conformance.{json,md,html} into ``out``; returns the report dict."""
    rep = build_report(**kw)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "conformance.json").write_text(json.dumps(rep, indent=1, default=_json_default) + "\n")
    md = to_markdown(rep)
    (out / "conformance.md").write_text(md)
    (out / "conformance.html").write_text(to_html(rep, md))
    return rep


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    return str(x)
