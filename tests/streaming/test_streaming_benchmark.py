"""The StreamingLLM benchmark (``benchmarks/streaming.py``) in its CPU smoke mode: it runs, prints timed rows of ours
(prefill with window + sinks, and the decode step) and ends with an ok ``## timing streaming:`` line."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from _helpers import ROOT


def test_streaming_benchmark_smoke() -> None:
    """``python benchmarks/streaming.py --smoke --modes fwd`` under the Triton interpreter: exit 0, every row of ours
    timed (a millisecond value, as tests/core/test_benchmarks_smoke.py parses rows) with a finite max|o-ours|, and
    the final timing line with status=ok and no failed cell."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "VERIFORMER_PROFILE": "ci"}
    r = subprocess.run([sys.executable, "benchmarks/streaming.py", "--smoke", "--modes", "fwd"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    ours = [ln for ln in r.stdout.splitlines() if "(ours)" in ln]
    assert len(ours) == 2, out  # the prefill row and the decode row
    for ln in ours:
        assert re.search(r"\s\d+\.\d{3}\s", ln) and "failed" not in ln, ln
    peers = [ln for ln in r.stdout.splitlines() if "sdpa" in ln and re.search(r"\s\d+\.\d{3}\s", ln)]
    assert len(peers) == 2, out  # the masked prefill peer and SDPA on the rolling cache, both timed
    for ln in peers:  # bf16 against our kernel: a few units of the last place
        diff = re.search(r"\s(\d\.\de[+-]\d\d)\s", ln)
        assert diff and float(diff.group(1)) < 0.05, ln
    timing = re.search(r"^## timing streaming: wall_s=([\d.]+) .*rows=(\d+) .*failed=(\d+) status=ok$", r.stdout,
                       re.M)
    assert timing and int(timing.group(2)) >= 4 and int(timing.group(3)) == 0, out
