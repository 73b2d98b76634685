"""The GPU entry point's CPU smoke mode (``benchmarks/gpu_session.sh all --smoke``) and the bounds that keep a short
GPU run from hanging: the per-call wall-clock guard, the per-step budget and SIGINT handling of the benchmark
runner (``benchmarks/_roofline.py``)."""

from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from _helpers import ROOT

SCRIPTS = ["attention", "linear_attention", "ssm", "selective_scan", "vq_attention", "rope", "ssm_conv", "mla",
           "monarch", "rerope", "streaming"]
OURS = {"attention": "triton_flash (ours)", "linear_attention": "triton chunk (ours)", "ssm": "triton_ssd (ours)",
        "selective_scan": "triton_selective_scan (ours)", "vq_attention": "(ours)", "rope": "triton rope_qk (ours)",
        "ssm_conv": "fft_conv (ours)", "mla": "triton mla_decode (ours)", "monarch": "triton monarch (ours)",
        "rerope": "triton rerope (ours)", "streaming": "triton window+sinks (ours)"}


def _session(tmp_path: Path, *args: str, timeout: float) -> tuple[int, str, str]:
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "TRITON_INTERPRET": "1",
           "VERIFORMER_PROFILE": "ci"}
    r = subprocess.run(["bash", "benchmarks/gpu_session.sh", "all", "--smoke", *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=timeout)
    summary = tmp_path / "gpu_session_summary.txt"
    return r.returncode, r.stdout + r.stderr, summary.read_text() if summary.exists() else ""


def _step_output(out: str, name: str) -> str:
    """The lines between a step's start line and its end line."""
    m = re.search(rf"^== \[\d+/\d+\] {name}: \d+ s of .*?$(.*?)^== \[\d+/\d+\] {name}: exit", out, re.M | re.S)
    assert m, f"no output of step {name}:\n{out[-3000:]}"
    return m.group(1)


def test_gpu_session_all_smoke(tmp_path: Path) -> None:
    """The single GPU command in its CPU smoke mode: the pytest step, then every benchmark script, each prints
    rows of ours, its ``## timing`` line (compile vs timed seconds), and the session ends with a summary in which
    every step is ok.  The budget is generous (the steps take 3-6 s each here): it only bounds a hang."""
    t0 = time.monotonic()
    rc, out, summary = _session(tmp_path, "--budget", "300", timeout=400)
    took = time.monotonic() - t0
    assert rc == 0, out[-4000:]
    assert re.search(r"\d+ skipped", _step_output(out, "tests")), out[:3000]
    for name in SCRIPTS:
        step = _step_output(out, name)
        rows = [ln for ln in step.splitlines() if OURS[name] in ln and re.search(r"\s\d+\.\d{3}\s", ln)]
        assert rows, f"{name}: no timed row of ours\n{step}"
        timing = re.search(r"^## timing \w+: wall_s=([\d.]+) compile_s=([\d.]+) timed_s=([\d.]+) .*rows=(\d+) "
                           r".*status=ok$", step, re.M)
        # compile and timed seconds are printed to 0.1 s and may both read 0.0 for a torch-only script on the CPU
        assert timing and int(timing.group(4)) >= 2 and float(timing.group(1)) > 0, step
    assert "== gpu_session summary: budget 300 s" in summary and "status ok" in summary
    bwd = _step_output(out, "attention_bwd")  # our kernel under other launch configurations, in the same table
    assert "triton_flash split (ours)" in bwd and "triton_flash tma" not in bwd, bwd
    for name in ["tests", "attention_bwd", *SCRIPTS]:
        assert re.search(rf"^{name}\s+ok\s+0\s", summary, re.M), summary
    assert (tmp_path / "gpu_session.txt").read_text().endswith(summary)
    assert took < 300


def test_gpu_session_step_over_budget(tmp_path: Path) -> None:
    """A step that outlives its share gets SIGINT (its printed rows stay) and is reported as timed out; one that
    ignores SIGINT is killed after the grace period; a step with no time left is skipped for time; the session
    still ends with its summary and exits 1."""
    py = sys.executable
    hang = f"hang={py} -u -c 'import time; print(\"row 1\", flush=True); time.sleep(30)'"
    stubborn = (f"stubborn={py} -u -c 'import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                f"print(\"stubborn row\", flush=True); time.sleep(30)'")
    t0 = time.monotonic()
    rc, out, summary = _session(tmp_path, "--budget", "6", "--grace", "1", "--steps", "hang stubborn after",
                                "--extra-step", hang, "--extra-step", stubborn, "--extra-step", "after=echo after",
                                timeout=60)
    assert time.monotonic() - t0 < 20
    assert rc == 1, out
    assert "row 1" in _step_output(out, "hang") and "stubborn row" in _step_output(out, "stubborn")
    assert re.search(r"^hang\s+timeout\s+124\s+2\s", summary, re.M), summary
    assert re.search(r"^stubborn\s+killed .*\s137\s", summary, re.M), summary
    assert re.search(r"^after\s+skipped \(time\)", summary, re.M), summary
    assert "after: skipped (time)" in out and "\nafter\n" not in out


# ------------------------------------------------------------------------------------- the runner's bounds

@pytest.fixture
def roofline() -> Any:
    """``benchmarks/_roofline.py``, imported the way the benchmark scripts import it (from sys.path).  The
    signal-based bounds work in the main thread only (as in a benchmark script)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGALRM / SIGINT handlers need the main thread")
    bench_dir = os.path.join(ROOT, "benchmarks")
    if bench_dir not in sys.path:
        sys.path.insert(0, bench_dir)
    return importlib.import_module("_roofline")


def test_wall_clock_limit_interrupts_a_long_call(roofline: Any) -> None:
    t0 = time.monotonic()
    with pytest.raises(roofline.CallTimeout), roofline.wall_clock_limit(0.2):
        time.sleep(10)
    assert time.monotonic() - t0 < 2
    with roofline.wall_clock_limit(5):  # a call within its limit is untouched, and the alarm is cleared
        time.sleep(0.01)
    time.sleep(0.05)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_bench_bounds_every_peer_and_streams_rows(roofline: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Ours first at every shape; a peer whose first call exceeds --call-timeout gets a timeout row and is skipped
    (not retried) in that mode; a peer that fails in fwd+bwd after a good forward is reported as forward only; a
    mode-restricted, an unavailable, a length-capped and a prefix-measured (extrapolated) peer each say so; the
    prefix is timed once for all lengths."""
    R = roofline
    calls = {"slow": 0}

    def ours(x: torch.Tensor) -> torch.Tensor:
        return x.cumsum(-1)

    def slow(x: torch.Tensor) -> torch.Tensor:
        calls["slow"] += 1
        time.sleep(60)
        return x.cumsum(-1)

    class FwdOnly(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
            return x.cumsum(-1)

        @staticmethod
        def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("backward refused on this build")

    cases = []
    for n in (8, 32, 64):
        x = torch.randn(2, n, requires_grad=True)
        case = R.Case(f"n{n}", (x,), (x,), torch.ones(2, n), lambda mode, ms: {"rate": 1.0 / ms}, n,
                      cut=lambda y, m: y[..., :m])
        case.prefix = R.prefix_case(case, lambda t: t.dim() - 1)
        cases.append(case)
    impls = [R.Impl("ours", ours), R.Impl("slow peer", slow, modes=["fwd"]), R.Impl("fwd-only peer", FwdOnly.apply),
             R.Impl("restricted", ours, modes=["fwd"], mode_note="forward only: by design"),
             R.Impl("absent", None), R.Impl("quadratic", ours, max_len=16, skip_note="skipped: O(T^2) beyond 16"),
             R.Impl("loop", ours, max_len=16, extrapolate=True)]
    bench = R.Bench(device="cpu", warmup=1, rep=1, call_timeout=3.0, name="fake")
    bench.table([*R.LEAD_COLUMNS, ("rate", "rate", ".1f"), ("diff", "max|o-ours|", ".1e")],
                [c.shape for c in cases], [i.name for i in impls])
    t0 = time.monotonic()
    rows = bench.run(impls, cases, ["fwd", "fwd+bwd"])
    assert time.monotonic() - t0 < 10  # one 3 s timeout, then no retry of the slow peer
    out = capsys.readouterr().out
    by = {(r["impl"], r["shape"], r["mode"]): r for r in rows}
    assert rows[0]["impl"] == "ours" and rows[0]["ratio"] == 1.0 and "ms" in rows[0]
    assert [r["impl"] for r in rows[:6]] == ["ours"] * 6  # every shape of ours before any peer
    assert by["slow peer", "n8", "fwd"]["note"].startswith("timeout: first call over 3 s")
    assert by["slow peer", "n32", "fwd"]["note"].startswith("skipped: timed out earlier")
    assert calls["slow"] == 1  # timed out at n8, not retried at n32 and n64
    assert "ms" in by["fwd-only peer", "n8", "fwd"] and by["fwd-only peer", "n8", "fwd"]["diff"] == 0.0
    assert by["fwd-only peer", "n8", "fwd+bwd"]["note"].startswith(
        "forward only here: fwd+bwd failed: RuntimeError: backward refused")
    assert by["fwd-only peer", "n32", "fwd+bwd"]["note"].startswith("skipped: failed earlier")
    assert by["restricted", "n32", "fwd+bwd"]["note"] == "forward only: by design"
    assert by["absent", "n8", "-"]["note"] == "not installed"
    assert "ms" in by["quadratic", "n8", "fwd"] and by["quadratic", "n32", "fwd"]["note"].startswith("skipped: O(T^2)")
    loop, loop64 = by["loop", "n32", "fwd"], by["loop", "n64", "fwd"]
    assert "time x2" in loop["note"] and loop["diff"] == 0.0 and loop["first_s"] >= 0
    assert "time x4" in loop64["note"] and "timed at an earlier shape" in loop64["note"] and loop64["diff"] == 0.0
    assert loop64["ms"] == pytest.approx(2 * loop["ms"])  # the length-16 prefix timed once, scaled x2 and x4
    assert bench.counts["timeout"] == 1 and bench.counts["failed"] == 1
    for r in rows:  # every row was printed when measured, in order
        assert r["impl"] in out
    assert out.index("timeout: first call") < out.index("fwd-only peer")


def test_bench_budget_turns_late_cells_into_skipped_rows(roofline: Any, capsys: pytest.CaptureFixture[str]) -> None:
    R = roofline
    x = torch.randn(4, requires_grad=True)
    case = R.Case("n4", (x,), (x,), torch.ones(4), length=4)
    bench = R.Bench(device="cpu", warmup=1, rep=1, budget=1e-3, name="late")
    time.sleep(0.01)
    bench.table(R.LEAD_COLUMNS, ["n4"], ["ours"])
    rows = bench.run([R.Impl("ours", lambda t: t * 2)], [case], ["fwd"])
    assert rows[0]["note"] == "skipped: out of the script's --budget" and bench.budget_hit


def test_main_of_stops_on_sigint_and_keeps_rows(roofline: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """SIGINT during a run: the rows printed so far stay, the timing line says interrupted, the status is 130 and
    the caller's SIGINT handler is restored."""
    R = roofline

    def run(argv: list[str] | None) -> None:
        bench = R.Bench(device="cpu", warmup=1, rep=1, name="interrupted")
        bench.table(R.LEAD_COLUMNS, ["s"], ["ours"])
        bench.emit({"shape": "s", "mode": "fwd", "impl": "ours", "ms": 1.0, "ratio": 1.0})
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(10)
        bench.emit({"shape": "s", "mode": "fwd+bwd", "impl": "never", "ms": 1.0})

    before = signal.getsignal(signal.SIGINT)
    t0 = time.monotonic()
    assert R.main_of(run)([]) == 130
    assert time.monotonic() - t0 < 5
    out = capsys.readouterr().out
    assert "ours" in out and "never" not in out and "## interrupted (SIGINT)" in out
    assert re.search(r"^## timing interrupted: wall_s=.* rows=0 .*status=interrupted$", out, re.M)
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize(("hopper", "above_371", "refused"), [(True, False, True), (True, True, False),
                                                              (False, False, False)])
def test_fla_forward_only_where_fla_refuses_its_gated_backward(monkeypatch: pytest.MonkeyPatch, hopper: bool,
                                                               above_371: bool, refused: bool) -> None:
    """linear_attention.py runs fla's chunk_simple_gla forward only exactly where fla raises on its backward
    (its own flags: Hopper, Triton >= 3.4.0 and < 3.7.1; the 2026-12-04 H200 image has Triton 3.6)."""
    import types

    from _helpers import load_benchmark

    fla = types.ModuleType("fla")
    fla.utils = types.SimpleNamespace(IS_NVIDIA_HOPPER=hopper, TRITON_ABOVE_3_4_0=True,  # type: ignore[attr-defined]
                                      TRITON_ABOVE_3_7_1=above_371)
    monkeypatch.setitem(sys.modules, "fla", fla)
    monkeypatch.setitem(sys.modules, "fla.utils", fla.utils)  # type: ignore[attr-defined]
    note = load_benchmark("linear_attention").fla_gated_backward_refused()
    assert (note is not None) == refused
    if refused:
        assert note.startswith("forward only: fla refuses chunk_simple_gla fwd+bwd") and "#640" in note
