"""Shared benchmark helpers: timing, the two roofline ceilings measured in the same process, and the streaming,
bounded side-by-side runner every benchmark script uses.

* copy bandwidth: ``dst.copy_(src)`` of a large buffer, bytes read + written per second (what a
  memory-bound kernel such as RoPE can reach at best);
* matmul rate: ``a @ b`` of square bfloat16 (or the given dtype) matrices, ``2 n^3`` flops per second
  (the ceiling that attention's two GEMMs per tile are compared with).

On CUDA, times come from ``triton.testing.do_bench`` when Triton is importable (median of CUDA-event
timings with the L2 cache flushed), else from CUDA events; on the CPU (``--smoke`` runs) from
``time.perf_counter``.  Numbers are only comparable within one process on one device.

:class:`Bench` runs the implementations one after the other (ours first, then the peers in the order given:
fast ones first), each over every shape and mode, and prints each table row the moment it is measured
(flushed), so a run that is stopped keeps every row it measured.  Each row has a ``compile s`` column: the
wall-clock seconds of the first call in that mode (Triton compilation and autotuning, ``torch.compile``, cuDNN
plan search, allocator warm-up, plus one run), apart from the timed iterations.  Every call is bounded: the
first call and the timing each run under a SIGALRM wall-clock guard (:func:`wall_clock_limit`, ``--call-timeout``)
whose expiry is recorded in the row as ``timeout`` (that implementation is then skipped in that mode for the
rest of the script), and a script ``--budget`` turns the cells it no longer has time for into ``skipped`` rows.
:func:`main_of` makes SIGINT stop a script promptly (a second SIGINT, or 5 s without reaching Python, exits
at once) and prints a final ``## timing`` line: wall, first-call (compile) and timed seconds, row counts.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["LEAD_COLUMNS", "Bench", "CallTimeout", "Case", "Ceilings", "Impl", "add_bench_args", "bench_ms",
           "fmt_table", "main_of", "measure_ceilings", "mode_caller", "prefix_case", "wall_clock_limit"]

_T0 = time.monotonic()


def bench_ms(fn: Callable[[], Any], *, device: torch.device | str, warmup: int = 3, rep: int = 10) -> float:
    """Median milliseconds of ``fn()`` on ``device`` (see module docstring for the method)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        try:
            from triton.testing import do_bench

            return float(do_bench(fn, warmup=max(warmup, 25), rep=max(rep, 100), return_mode="median"))
        except ImportError:
            pass
        for _ in range(warmup):
            fn()
        torch.cuda.synchronize(dev)
        times = []
        for _ in range(rep):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(dev)
            times.append(start.elapsed_time(end))
        return statistics.median(times)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rep):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


class Ceilings:
    """Measured ``copy_gbps`` (GB/s, read + write) and ``matmul_tflops`` (of ``dtype``) on ``device``."""

    def __init__(self, device: str, copy_gbps: float, matmul_tflops: float, dtype: torch.dtype) -> None:
        self.device, self.copy_gbps, self.matmul_tflops, self.dtype = device, copy_gbps, matmul_tflops, dtype

    def __repr__(self) -> str:
        return (f"Ceilings(device={self.device!r}, copy {self.copy_gbps:.0f} GB/s, "
                f"{str(self.dtype).replace('torch.', '')} matmul {self.matmul_tflops:.1f} TFLOP/s)")


def measure_ceilings(device: torch.device | str, *, copy_mib: int = 1024, matmul_n: int = 8192,
                     dtype: torch.dtype = torch.bfloat16, smoke: bool = False) -> Ceilings:
    """Measure copy bandwidth and the ``dtype`` matmul rate on ``device`` (small sizes when ``smoke``)."""
    dev = torch.device(device)
    if smoke:
        copy_mib, matmul_n = 4, 256
    n_el = copy_mib * 2**20 // 4
    src = torch.empty(n_el, dtype=torch.float32, device=dev).uniform_()
    dst = torch.empty_like(src)
    ms = bench_ms(lambda: dst.copy_(src), device=dev)
    copy_gbps = 2 * src.numel() * src.element_size() / (ms * 1e-3) / 1e9
    mm_dtype = dtype if (dev.type == "cuda" or dtype != torch.bfloat16) else torch.float32
    a = torch.randn(matmul_n, matmul_n, dtype=mm_dtype, device=dev)
    b = torch.randn(matmul_n, matmul_n, dtype=mm_dtype, device=dev)
    ms = bench_ms(lambda: a @ b, device=dev)
    tflops = 2 * matmul_n**3 / (ms * 1e-3) / 1e12
    return Ceilings(str(dev), copy_gbps, tflops, mm_dtype)


LEAD_COLUMNS: list[tuple[str, str, str]] = [
    ("shape", "shape", "s"), ("mode", "mode", "s"), ("impl", "impl", "s"), ("ms", "ms", ".3f"),
    ("ratio", "speedup of ours", ".2f")]
"""The first columns of every side-by-side table (a :class:`Bench` adds ``compile s`` and ``note`` last)."""


def fmt_table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """Plain-text table: ``columns`` = [(key, header, format spec)]; missing values print as '-'."""
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        line = []
        for key, _, spec in columns:
            v = r.get(key)
            line.append("-" if v is None else format(v, spec))
        cells.append(line)
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c[i].rjust(widths[i]) for i in range(len(columns))) for c in cells)


def mode_caller(fn: Callable[..., Any], mode: str, args: tuple[Any, ...], wrt: tuple[torch.Tensor, ...],
                grads: Any) -> Callable[[], Any]:
    """``fn(*args)`` without autograd ("fwd"), or forward plus ``autograd.grad`` w.r.t. ``wrt`` ("fwd+bwd")."""
    if mode == "fwd":
        def call() -> Any:
            with torch.no_grad():
                return fn(*args)
    else:
        def call() -> Any:
            return torch.autograd.grad(fn(*args), wrt, grads)
    return call


# ------------------------------------------------------------------------------------------ bounded calls

class CallTimeout(BaseException):
    """Raised in the main thread by :func:`wall_clock_limit` when the guarded block runs too long.  A
    ``BaseException`` so that a library's ``except Exception`` (autotuners, fallbacks) cannot swallow it."""


@contextmanager
def wall_clock_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`CallTimeout` in the block after ``seconds`` of wall-clock time (``signal.setitimer`` /
    SIGALRM; the exception surfaces when the interpreter next runs Python code, so a single C call that never
    returns, e.g. a hung CUDA synchronize, is left to the caller's outer ``timeout -k``).  No-op when
    ``seconds`` is None or not positive, off the main thread, or where SIGALRM does not exist."""
    usable = (seconds is not None and seconds > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return
    assert seconds is not None

    def on_alarm(signum: int, frame: Any) -> None:
        raise CallTimeout(f"over {seconds:.3g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------------------------- the runner

@dataclass
class Case:
    """One input shape of a side-by-side table: ``fn(*args)``, gradients w.r.t. ``wrt`` with cotangents
    ``grads``; ``extra(mode, ms)`` adds the rate / roofline columns; ``length`` is the sequence length (T or L)
    that :attr:`Impl.max_len` compares; ``prefix(n)`` (optional) the same inputs cut to their first ``n``
    tokens, and ``cut(out, n)`` the matching prefix of an output (for the extrapolated timing of a linear-time
    sequential baseline)."""

    shape: str
    args: tuple[Any, ...]
    wrt: tuple[torch.Tensor, ...]
    grads: Any
    extra: Callable[[str, float], dict[str, float]] = lambda mode, ms: {}
    length: int = 0
    prefix: Callable[[int], Case] | None = None
    cut: Callable[[torch.Tensor, int], torch.Tensor] | None = None


@dataclass
class Impl:
    """One implementation of a table: ``fn`` (None: not available, ``unavailable`` is the row's note);
    ``modes``: the modes it runs (others get a row with ``mode_note``); ``max_len``: longer cases are measured
    on the first ``max_len`` tokens and extrapolated linearly when ``extrapolate`` (the case must have a
    ``prefix``), else skipped with ``skip_note``; ``fields`` are added to its rows, and ``extra(mode, ms, length)``
    to its timed rows (rates only this implementation has); ``skip_if(case)``: a note when it must not run at
    that case (e.g. an O(L^2) baseline over a FLOP limit)."""

    name: str
    fn: Callable[..., Any] | None
    unavailable: str = "not installed"
    modes: Sequence[str] | None = None
    mode_note: str = ""
    max_len: int | None = None
    extrapolate: bool = False
    skip_note: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    extra: Callable[[str, float, int], dict[str, float]] | None = None
    skip_if: Callable[[Case], str | None] | None = None


def prefix_case(case: Case, axis_of: Callable[[torch.Tensor], int | None]) -> Callable[[int], Case]:
    """``case.prefix``: every tensor argument with a sequence axis (``axis_of(t)``, None: no such axis) cut to
    its first ``n`` entries there, as new leaves (requiring grad like the originals); the cotangents likewise."""

    def cut(t: Any, n: int) -> Any:
        if not isinstance(t, torch.Tensor):
            return t
        ax = axis_of(t)
        if ax is None:
            return t
        out = t.detach().narrow(ax, 0, n).contiguous()
        return out.requires_grad_(t.requires_grad)

    def make(n: int) -> Case:
        args = tuple(cut(a, n) for a in case.args)
        by_id = {id(a): b for a, b in zip(case.args, args, strict=True)}
        wrt = tuple(by_id.get(id(w), w) for w in case.wrt)
        grads = tuple(cut(g, n) for g in case.grads) if isinstance(case.grads, tuple) else cut(case.grads, n)
        return Case(case.shape, args, wrt, grads, case.extra, n)

    return make


CURRENT: Bench | None = None
"""The :class:`Bench` of the running script (for :func:`main_of`'s final ``## timing`` line)."""


def add_bench_args(ap: argparse.ArgumentParser) -> None:
    """``--call-timeout``, ``--budget`` and ``--deadline``, shared by the benchmark scripts."""
    ap.add_argument("--call-timeout", type=float, default=60.0,
                    help="wall-clock limit (s) of each first call and of each timing; 0: none")
    ap.add_argument("--budget", type=float, default=0.0,
                    help="seconds this script may run; cells it has no time for are printed as skipped (0: none)")
    ap.add_argument("--deadline", type=float, default=0.0,
                    help="the same as an absolute time.time() (gpu_session.sh: the step's start + its share)")


class Bench:
    """Streams the rows of side-by-side tables and accounts where the time went (module docstring).

    ``out(text)`` prints and records every line (``lines``); ``rows`` collects every row (timed rows have ``ms``,
    the others a ``note`` instead)."""

    def __init__(self, *, device: str, warmup: int, rep: int, call_timeout: float | None = None,
                 budget: float | None = None, deadline: float | None = None, name: str = "") -> None:
        global CURRENT
        self.device, self.warmup, self.rep = device, warmup, rep
        self.call_timeout = call_timeout if call_timeout and call_timeout > 0 else None
        self.start = time.monotonic()
        ends = [_T0 + budget] if budget and budget > 0 else []
        if deadline and deadline > 0:
            ends.append(self.start + deadline - time.time())
        self.deadline = min(ends) if ends else None
        self.name = name
        self.lines: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self.compile_s = self.timed_s = 0.0
        self.counts = {"timed": 0, "skipped": 0, "timeout": 0, "failed": 0}
        self.status = "running"
        self.budget_hit = False
        self._groups: dict[str, tuple[dict[tuple[str, str], float], dict[str, torch.Tensor]]] = {}
        self.columns: list[tuple[str, str, str]] = []
        self.widths: list[int] = []
        CURRENT = self

    @classmethod
    def from_args(cls, args: argparse.Namespace, *, device: str, warmup: int, rep: int, name: str = "") -> Bench:
        """A :class:`Bench` with the ``--call-timeout`` / ``--budget`` / ``--deadline`` of :func:`add_bench_args`
        (the budget counts from the script's start, the deadline is absolute)."""
        return cls(device=device, warmup=warmup, rep=rep, call_timeout=args.call_timeout, budget=args.budget,
                   deadline=args.deadline, name=name)

    # -- output
    def out(self, text: str = "") -> None:
        """Print ``text`` now (flushed) and keep it in :attr:`lines`."""
        self.lines.append(text)
        print(text, flush=True)

    def table(self, columns: list[tuple[str, str, str]], shapes: Sequence[str], impls: Sequence[str],
              title: str | None = None) -> None:
        """Start a table: ``columns`` (the ``compile s`` and ``note`` columns are appended), widths from the
        shapes and implementation names to come; prints the optional title and the header."""
        self.columns = [*columns, ("first_s", "compile s", ".2f"), ("note", "note", "s")]
        hint = {"shape": max([len(s) for s in shapes] or [0]), "impl": max([len(s) for s in impls] or [0]),
                "mode": 7}
        self.widths = [max(len(h), hint.get(k, 8)) for k, h, _ in self.columns]
        if title:
            self.out("")
            self.out(title)
        self.out(self._line({k: h for k, h, _ in self.columns}, header=True))

    def _line(self, row: dict[str, Any], header: bool = False) -> str:
        cells = []
        for (key, _, spec), width in zip(self.columns, self.widths, strict=True):
            v = row.get(key)
            text = v if header else ("-" if v is None else format(v, spec))
            if key == "note":
                cells.append(str(text) if (header or v is not None) else "")
            else:
                cells.append(str(text).rjust(width))
        return "  ".join(cells).rstrip()

    def emit(self, row: dict[str, Any]) -> dict[str, Any]:
        """Print ``row`` as a table line now and keep it."""
        self.rows.append(row)
        self.out(self._line(row))
        return row

    def remaining(self) -> float | None:
        """Seconds left of the script's budget (None: no budget)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _limit(self) -> float | None:
        left = self.remaining()
        if left is None:
            return self.call_timeout
        return left if self.call_timeout is None else min(left, self.call_timeout)

    # -- measuring
    def run(self, impls: Sequence[Impl], cases: Sequence[Case], modes: Sequence[str],
            output: Callable[[Any], torch.Tensor] = lambda o: o, base: dict[str, Any] | None = None,
            group: str = "") -> list[dict[str, Any]]:
        """Measure every implementation over every case and mode: implementation by implementation, so the fast
        ones listed first print their rows at every shape before a slow peer compiles.  Returns the rows (each
        also printed as it comes).  Ours is ``impls[0]`` of the first call for ``group`` (later calls with the
        same ``group`` continue its table: their peers are compared with that ours).  ``ratio`` = ms / ours ms
        at the same shape and mode (> 1: ours is faster); ``diff`` = max |output - ours' output| at that shape;
        ``base`` fields are added to every row."""
        base = base or {}
        fresh = group not in self._groups
        ours_ms, refs = self._groups.setdefault(group, ({}, {}))
        rows: list[dict[str, Any]] = []
        for i, impl in enumerate(impls):
            head = {**base, **impl.fields, "impl": impl.name}
            if impl.fn is None:
                rows.append(self._note(cases[0], "-", head, impl.unavailable, "skipped"))
                continue
            state = _ImplState()
            for case in cases:
                for mode in modes:
                    rows.append(self._cell(impl, case, mode, head, fresh and i == 0, ours_ms, refs, state, output))
        return rows

    def _note(self, case: Case, mode: str, head: dict[str, Any], note: str, kind: str) -> dict[str, Any]:
        self.counts[kind] += 1
        return self.emit({"shape": case.shape, "mode": mode, **head, "note": note})

    def _cell(self, impl: Impl, case: Case, mode: str, head: dict[str, Any], ours: bool,
              ours_ms: dict[tuple[str, str], float], refs: dict[str, torch.Tensor], state: _ImplState,
              output: Callable[[Any], torch.Tensor]) -> dict[str, Any]:
        assert impl.fn is not None
        dead, diffs = state.dead, state.diffs
        if impl.modes is not None and mode not in impl.modes:
            return self._note(case, mode, head, impl.mode_note or f"not run in {mode}", "skipped")
        if mode in dead:
            return self._note(case, mode, head, dead[mode], "skipped")
        left = self.remaining()
        if left is not None and left < 1.0:
            self.budget_hit = True
            return self._note(case, mode, head, "skipped: out of the script's --budget", "skipped")
        why_not = impl.skip_if(case) if impl.skip_if is not None else None
        if why_not:
            return self._note(case, mode, head, why_not, "skipped")
        run_case, scale, note = case, 1.0, None
        if impl.max_len is not None and case.length > impl.max_len:
            if not impl.extrapolate or case.prefix is None:
                return self._note(case, mode, head, impl.skip_note or f"skipped beyond length {impl.max_len}",
                                  "skipped")
            run_case, scale = case.prefix(impl.max_len), case.length / impl.max_len
            note = f"measured at length {impl.max_len}, time x{scale:g} (linear in length)"
        phase, limit, t0 = "first call", self._limit(), time.monotonic()
        try:
            with wall_clock_limit(limit):
                res = _first_call(impl.fn, mode, run_case)
                if self.device.startswith("cuda"):
                    torch.cuda.synchronize()
            first_s = time.monotonic() - t0
            self.compile_s += first_s
            if case.shape not in diffs:
                got = output(res).detach()
                if ours and scale == 1.0:
                    refs[case.shape] = got
                ref = refs.get(case.shape)
                if ref is not None and case.cut is not None and scale != 1.0:
                    ref = case.cut(ref, run_case.length)
                if ref is not None and ref.shape == got.shape:
                    diffs[case.shape] = float((got.float() - ref.float()).abs().max())
            del res
            # a prefix of the same shapes was timed at an earlier case: the same computation, not timed again
            same = (mode, tuple(tuple(a.shape) for a in run_case.args if isinstance(a, torch.Tensor)))
            if scale != 1.0 and same in state.prefix_ms:
                ms, note = state.prefix_ms[same] * scale, f"{note}; timed at an earlier shape"
            else:
                phase, limit, t0 = "timing", self._limit(), time.monotonic()
                with wall_clock_limit(limit):
                    ms = bench_ms(mode_caller(impl.fn, mode, run_case.args, run_case.wrt, run_case.grads),
                                  device=self.device, warmup=self.warmup, rep=self.rep)
                self.timed_s += time.monotonic() - t0
                if scale != 1.0:
                    state.prefix_ms[same] = ms
                ms *= scale
        except (CallTimeout, Exception) as exc:  # over its limit; or a peer missing, failing, out of memory
            if phase == "first call":
                self.compile_s += time.monotonic() - t0
            else:
                self.timed_s += time.monotonic() - t0
            if isinstance(exc, CallTimeout):
                dead[mode] = f"skipped: timed out earlier ({case.shape}, {phase})"
                return self._note(case, mode, head, f"timeout: {phase} over {limit:.3g} s", "timeout")
            why = f"failed: {type(exc).__name__}: {' '.join(str(exc).split())[:240]}"
            if mode != "fwd" and "fwd" in state.timed:
                why = f"forward only here: {mode} {why}"
            dead[mode] = f"skipped: failed earlier ({case.shape})"
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()
            return self._note(case, mode, head, why, "failed")
        key = (case.shape, mode)
        if ours:
            ours_ms[key] = ms
        base_ms = ours_ms.get(key)
        self.counts["timed"] += 1
        state.timed.add(mode)
        return self.emit({"shape": case.shape, "mode": mode, **head, "ms": ms,
                          "ratio": None if base_ms is None else ms / base_ms, "diff": diffs.get(case.shape),
                          "first_s": first_s, **case.extra(mode, ms),
                          **(impl.extra(mode, ms, case.length) if impl.extra else {}),
                          **({"note": note} if note else {})})

    def timing_line(self) -> str:
        """``## timing ...``: wall seconds since the script started, the sum of first calls (compile, autotune,
        warm-up and one run), the timed iterations, the rest (imports, ceilings, inputs), row counts, status."""
        wall = time.monotonic() - _T0
        other = max(0.0, wall - self.compile_s - self.timed_s)
        c = self.counts
        return (f"## timing {self.name}: wall_s={wall:.1f} compile_s={self.compile_s:.1f} "
                f"timed_s={self.timed_s:.1f} other_s={other:.1f} rows={c['timed']} skipped={c['skipped']} "
                f"timeouts={c['timeout']} failed={c['failed']} status={self.status}")


@dataclass
class _ImplState:
    """Per implementation: modes that timed out or failed (the later cells say so instead of retrying), the
    ``diff`` per shape, the modes timed at least once, and the ms of prefix measurements by mode and input shapes
    (a longer case cut to the same prefix reuses it: same computation, only the extrapolation factor differs)."""

    dead: dict[str, str] = field(default_factory=dict)
    diffs: dict[str, float] = field(default_factory=dict)
    timed: set[str] = field(default_factory=set)
    prefix_ms: dict[tuple[Any, ...], float] = field(default_factory=dict)


def _first_call(fn: Callable[..., Any], mode: str, case: Case) -> Any:
    if mode == "fwd":
        with torch.no_grad():
            return fn(*case.args)
    res = fn(*case.args)
    torch.autograd.grad(res, case.wrt, case.grads)
    return res


# ------------------------------------------------------------------------------------------------- main

_INTERRUPTED = threading.Event()
_WATCHDOG: list[threading.Timer] = []


def _hard_exit() -> None:
    """Last resort after SIGINT: write the timing line with a raw ``os.write`` (no stdout lock) and exit 130."""
    line = CURRENT.timing_line().replace("status=running", "status=killed") if CURRENT is not None else ""
    os.write(1, f"\n## SIGINT: still running after the grace period, exiting now\n{line}\n".encode())
    os._exit(130)


def _on_sigint(signum: int, frame: Any) -> None:
    if _INTERRUPTED.is_set():
        _hard_exit()
    _INTERRUPTED.set()
    timer = threading.Timer(5.0, _hard_exit)
    timer.daemon = True
    timer.start()
    _WATCHDOG.append(timer)
    raise KeyboardInterrupt


def main_of(run: Callable[[list[str] | None], Any]) -> Callable[[list[str] | None], int]:
    """The ``main(argv)`` of a benchmark script whose ``run(argv)`` parses, measures and prints: exit status 0;
    on SIGINT the rows already printed stay, a ``## timing`` line follows and the status is 130 (a second SIGINT,
    or 5 s in which the interrupt does not reach Python code, exits at once)."""
    def main(argv: list[str] | None = None) -> int:
        _INTERRUPTED.clear()
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, _on_sigint)
        status = 0
        try:
            run(argv)
            if CURRENT is not None:
                CURRENT.status = "out-of-budget" if CURRENT.budget_hit else "ok"
        except KeyboardInterrupt:
            status = 130
            if CURRENT is not None:
                CURRENT.status = "interrupted"
            print("\n## interrupted (SIGINT): the rows above are all that was measured", flush=True)
        finally:
            if CURRENT is not None:
                print(CURRENT.timing_line(), flush=True)
            sys.stdout.flush()
            while _WATCHDOG:
                _WATCHDOG.pop().cancel()
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        return status
    return main
