"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``) loads a small report with a
deliberately failing check and must show the verdict, the counts and the failure's replay line, run the page's
script, and log nothing to the console.  Those tests skip where no Chromium is installed (CI installs it:
``.ci/run``).  The rest render hand-made report dicts (older and newer figure sets) without a browser."""

from __future__ import annotations

import functools
import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install "
                                                             "chromium); .ci/run installs it so CI runs this test")


def rope_off_by_one(x: torch.Tensor, positions: torch.Tensor, *, base: float) -> torch.Tensor:
    """A deliberately wrong RoPE: rotates position t by the angle of t + 1 (the float64 oracle, rounded once)."""
    from veriformer.implementations import oracle_rope

    return oracle_rope(x, positions + 1, base=base, layout="half")


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with its own profile folder; stdout/stderr captured (console lines on stderr)."""
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={tmp / 'chromium-profile'}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def _console_lines(stderr: str) -> list[str]:
    """Chromium's log lines for page console messages (``INFO:CONSOLE``; uncaught exceptions included)."""
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]


def _text(dom: str) -> str:
    """Visible text of a serialised DOM, whitespace collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def _report(folder: Path) -> dict[str, Any]:
    from veriformer.implementations import Implementation, oracle_rope
    from veriformer.report import write_report

    impls = [Implementation("oracle_rope", "rope", functools.partial(oracle_rope, layout="half"),
                            options={"layout": "half"}, note="float64 oracle rounded once"),
             Implementation("rope_off_by_one", "rope", rope_off_by_one, options={"layout": "half"},
                            note="deliberately wrong")]
    return write_report(folder, laws=["rope.composition"], mutants=["rope.table_wraps_at_4096"],
                        implementations=impls, sweep_sizes={"rope": (16, 64)}, progress=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("report")
    return out, _report(out)


@needs_chromium
def test_console_capture_sees_errors(tmp_path: Path) -> None:
    """The console check below can fail: a page that throws is seen in Chromium's log."""
    page = tmp_path / "probe.html"
    page.write_text("<!doctype html><p>x</p><script>undefinedFunction();</script>")
    r = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert any("Uncaught ReferenceError" in ln for ln in _console_lines(r.stderr)), r.stderr[-3000:]


@needs_chromium
def test_report_in_headless_chromium(report: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, rep = report
    assert not rep["passed"]
    page = out / "conformance.html"
    source = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", source), "the page must not load anything"
    r = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert r.returncode == 0, r.stderr[-3000:]
    dom, text = r.stdout, _text(r.stdout)
    assert "veriformer conformance report" in text
    # the verdict, in its badge
    assert re.search(r"""<span class="verdict FAILED" id="verdict">FAILED</span>""", dom), dom[:3000]
    # the counts: 1/1 law, 1/1 mutant killed, 1/2 implementation checks, 1 failure per dtype (3)
    assert "laws 1/1 passed · mutants 1/1 killed · implementation checks 1/2 passed" in text
    assert "3 failure(s)" in text
    # the failing check's replay line, as the JSON has it, on the page
    wrong = next(c for c in rep["checks"] if c["name"] == "rope_off_by_one")
    replays = [" ".join(f["replay"].split()) for f in wrong["failures"].values()]
    assert replays and all(x for x in replays)
    for x in replays:
        assert x in text
    assert "rope_off_by_one" in text and "rope.table_wraps_at_4096" in text
    # the page's script ran (it fills in the search boxes' row counts) and logged nothing
    assert "1 of 1 shown" in text and "6 of 6 shown" in text
    assert _console_lines(r.stderr) == [], _console_lines(r.stderr)


@needs_chromium
def test_search_box_filters_rows(report: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """The mutants' search box, filled from the address, hides the rows that do not match."""
    out, _ = report
    uri = (out / "conformance.html").as_uri()
    hit = _text(_chromium(tmp_path, "--dump-dom", uri + "?mutants-table=TABLE_WRAPS").stdout)
    miss = _chromium(tmp_path, "--dump-dom", uri + "?mutants-table=no-such-mutant")
    assert "1 of 1 shown" in hit
    assert "0 of 1 shown" in _text(miss.stdout)
    row = re.search(r"<tr[^>]*>\s*<td><code>rope\.table_wraps_at_4096</code>", miss.stdout)
    assert row and "display: none" in row.group(0), row
    assert _console_lines(miss.stderr) == []


@needs_chromium
def test_verdict_visible_at_the_top(report: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """Screenshot at 1400 x 2000: the red FAILED badge is in the first 150 px, and the page is not blank."""
    from PIL import Image

    out, _ = report
    shot = tmp_path / "report.png"
    r = _chromium(tmp_path, "--hide-scrollbars", "--window-size=1400,2000", f"--screenshot={shot}",
                  (out / "conformance.html").as_uri())
    assert shot.exists(), r.stderr[-3000:]
    im = Image.open(shot).convert("RGB")
    assert im.size == (1400, 2000)
    top = im.crop((0, 0, 1400, 150))
    px = np.asarray(top, dtype=np.int32)
    red = int(np.sum((px[..., 0] > 180) & (px[..., 1] < 70) & (px[..., 2] < 70)))
    assert red > 500, f"no FAILED badge in the top 150 px ({red} red pixels)"
    colours = len(np.unique(np.asarray(im.resize((350, 500))).reshape(-1, 3), axis=0))
    assert colours > 50
    assert json.loads((out / "conformance.json").read_text())["passed"] is False


def _synthetic(*, extra: bool, failing: bool) -> dict[str, Any]:
    """A hand-made report dict: one check (two dtypes), one law, one mutant; ``extra`` adds figures newer
    CheckResults carry (a per-dtype ``max_bits_lost``, per-verdict ``bits_lost``, a ``coverage`` summary)."""
    def per(passed: bool, margin: float) -> dict[str, Any]:
        d = {"cases": 3, "passed": passed, "max_ratio": 1.5, "max_margin": margin, "max_abs": 1e-3, "max_ulp": 4.0,
             "rel_rms": 1e-4, "baseline_max_abs": 1e-3, "baseline_max_ulp": 2.0}
        return {**d, "max_bits_lost": 2.5} if extra else d

    verdict = {"output": "out", "margin": 0.7, "candidate": {"max_abs": 1e-3, **({"bits_lost": 2.5} if extra
                                                                                  else {})}}
    check = {"name": "my_kernel", "op": "rope", "grad": False, "passed": not failing, "note": "",
             "per_dtype": {"float16": per(True, 0.3), "float32": per(not failing, 7.0 if failing else 0.7)},
             "cases": [{"dtype": "float32", "verdicts": [verdict]}],
             "failures": {"float32": {"message": "CaseFailed: out: margin 7", "example": "case=RopeCase(T=3)",
                                      "replay": "check(my_kernel, 'rope', cases=[RopeCase(T=3)])"}}
             if failing else {}}
    if extra:
        check["coverage"] = {"features": ["causal"], "not_covered": [], "cases_per_dtype": {"float16": 3}}
    return {"environment": {"python": "3.11", "torch": "2.x", "device": "cpu", "profile": "ci", "seed": 0},
            "seconds": 1.0, "passed": not failing, "checks": [check],
            "laws": [{"name": "rope.composition", "kind": "exact", "passed": True, "n_cases": 5, "source": "s",
                      "worst": {"what": "R R == R", "margin": 0.01, "max_abs": 1e-16}}],
            "mutants": [{"name": "rope.bad", "target": "rope", "killed": True, "description": "d",
                         "caught": {"rope.composition": True}}],
            "kill_matrix": {"targets": ["rope.composition"], "rows": []}, "tolerances": [], "length_sweep": []}


def test_markdown_top_block_and_failures() -> None:
    from veriformer.report import to_markdown

    md = to_markdown(_synthetic(extra=False, failing=True))
    head = md.splitlines()[:5]
    assert head[0] == "# veriformer conformance report — FAILED"
    assert "laws 1/1 passed · mutants 1/1 killed · implementation checks 0/1 passed (1/2 implementation x dtype)" \
        in head[2] and "1 failure(s)" in head[2]
    assert head[4].startswith("python 3.11 · torch 2.x · device cpu · profile ci · seed 0 · wall time 1.0 s")
    failures = md.index("## Failures")
    assert failures < md.index("## Laws")
    assert "replay: `check(my_kernel, 'rope', cases=[RopeCase(T=3)])`" in md[failures:]
    assert "| `rope.bad` | rope | yes | rope.composition | — | d |" in md
    passing = to_markdown(_synthetic(extra=False, failing=False))
    assert "## Failures\n\nNone: every law passed" in passing and "replay:" not in passing


def test_html_colours_margins_and_adapts_to_the_figures_present() -> None:
    from veriformer.report import to_html

    old = to_html(_synthetic(extra=False, failing=True))
    assert "<span class='verdict FAILED' id='verdict'>FAILED</span>" in old
    assert "<td class='num bad'>7</td>" in old and "<td class='num warn'>" not in old
    assert "<td class='num good'>0.3</td>" in old and "<td class='fail'>FAIL</td>" in old
    assert "<pre class='replay'>check(my_kernel, &#x27;rope&#x27;, cases=[RopeCase(T=3)])</pre>" in old
    assert "bits lost" not in old and "coverage" not in old
    new = to_html(_synthetic(extra=True, failing=False))
    assert "<span class='verdict PASSED' id='verdict'>PASSED</span>" in new
    assert "<td class='num warn'>0.7</td>" in new
    assert "<th>max bits lost</th>" in new and "<th>bits lost</th>" in new
    assert "<th>coverage</th>" in new and "features causal; 3 cases per dtype</td>" in new
