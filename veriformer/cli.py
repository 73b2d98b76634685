"""Command line: ``veriformer list [--op NAME]``, ``veriformer check MODULE:FN --op NAME``, ``veriformer report``.

Conventions (those of the tools kernel engineers use):

* the current folder is importable: ``veriformer check mymod:fn`` finds ``./mymod.py`` without PYTHONPATH;
* every argument is validated before anything runs, with one line naming the bad value and the valid ones
  (``veriformer: error: argument --dtype: 'fp17' is not one of bfloat16, float16, float32, float64``);
  ``--device cuda`` without a CUDA device is such an error, for ``check`` and ``report`` alike;
* exit codes: 0 passed, 1 a check failed, 2 usage error, 3 internal error (an unexpected exception: one line,
  the traceback with ``--traceback``);
* results go to stdout (``--json`` for machine reading, the same figures as :meth:`CheckResult.as_dict`),
  progress and errors to stderr.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import html
import importlib
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from veriformer.jsonio import jsonable

__all__ = ["DTYPES", "DTYPE_ALIASES", "EXIT_FAILED", "EXIT_INTERNAL", "EXIT_OK", "EXIT_USAGE", "UsageError",
           "case_classes", "case_type", "describe_op", "jsonable", "main", "parse_case"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
DTYPES = ("bfloat16", "float16", "float32", "float64")
# accepted spellings (torch's and the usual short names) -> dtype name
DTYPE_ALIASES = {"fp16": "float16", "half": "float16", "torch.float16": "float16",
                 "bf16": "bfloat16", "torch.bfloat16": "bfloat16",
                 "fp32": "float32", "float": "float32", "torch.float32": "float32",
                 "fp64": "float64", "double": "float64", "torch.float64": "float64"}
DEFAULT_REPORT_DIR = "veriformer-report"

_EPILOG = """\
exit codes:
  0  passed
  1  a check failed (or, for report, a law, mutant or check did)
  2  usage error (bad argument, target not importable or not callable, no CUDA device for --device cuda)
  3  internal error (an unexpected exception; run with --traceback for details)
"""


class UsageError(Exception):
    """A bad command line: printed as ``veriformer: error: <message>``, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``veriformer: error: <message>`` (plus where to get help) and exit 2."""
        sys.stderr.write(f"veriformer: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USAGE)


def _one_of(name: str, value: str, valid: Sequence[str], extra: str = "") -> UsageError:
    """``argument NAME: 'VALUE' is not one of A, B, C[; did you mean 'X'?]``."""
    close = difflib.get_close_matches(value, list(valid), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return UsageError(f"argument {name}: {value!r} is not one of {', '.join(valid)}{extra}{hint}")


def _dtype(value: str) -> str:
    """argparse type of ``--dtype``: a dtype name or one of :data:`DTYPE_ALIASES`."""
    name = DTYPE_ALIASES.get(value.lower(), value.lower())
    if name not in DTYPES:
        close = difflib.get_close_matches(value, [*DTYPES, *DTYPE_ALIASES], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise argparse.ArgumentTypeError(f"{value!r} is not one of {', '.join(DTYPES)} (aliases: "
                                         f"{', '.join(a for a in DTYPE_ALIASES if '.' not in a)}){hint}")
    return name


def _positive_int(value: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be at least 1")
    return n


def _int(value: str) -> int:
    """argparse type: any integer (a clearer message than argparse's)."""
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None


def _parser() -> argparse.ArgumentParser:
    from veriformer import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--traceback", action="store_true", help="print the full traceback of an internal error")
    fmt = argparse.RawDescriptionHelpFormatter
    p = _Parser(prog="veriformer", epilog=_EPILOG, formatter_class=fmt,
                description="veriformer: check attention / RoPE / linear-attention / SSM kernels against float64 "
                            "oracles; run the catalogue of laws and mutants.")
    p.add_argument("--version", action="version", version=f"veriformer {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser, metavar="{list,check,report}")

    ls = sub.add_parser("list", parents=[common], epilog=_EPILOG, formatter_class=fmt,
                        help="list ops, laws (with sources) and mutants; --op NAME: one op's full convention")
    ls.add_argument("--op", help="print this op's full convention (layouts, keywords, outputs, tolerances)")

    c = sub.add_parser("check", parents=[common], epilog=_EPILOG, formatter_class=fmt,
                       help="check a callable MODULE:FN against an op's oracle",
                       description="Check callable MODULE:FN (the current folder is importable) against op "
                                   "NAME's float64 oracle; the Python API is veriformer.check().")
    c.add_argument("target", help="MODULE:FUNCTION (attribute paths allowed: mod:Class.method)")
    c.add_argument("--op", required=True, help="op name (veriformer list)")
    c.add_argument("--dtype", action="append", type=_dtype, metavar="DTYPE",
                   help=f"repeatable; one of {', '.join(DTYPES)} or an alias "
                        f"({', '.join(a for a in DTYPE_ALIASES if '.' not in a)}); default float32")
    c.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    c.add_argument("--feature", action="append", default=[], help="repeatable: keyword features the callable "
                   "accepts (softmax_attention: causal, gqa, window, sinks, mask; see veriformer list --op)")
    c.add_argument("--grad", action="store_true", help="also check the VJP against the oracle's")
    c.add_argument("--profile", default=None, choices=["ci", "deep"],
                   help="campaign size (default VERIFORMER_PROFILE or ci)")
    c.add_argument("--max-examples", type=_positive_int, default=None, metavar="N",
                   help="cases drawn per dtype (default: the profile's)")
    c.add_argument("--seed", type=_int, default=0, metavar="N", help="Hypothesis seed (default 0)")
    c.add_argument("--case", default=None, metavar="'CASE(...)'",
                   help="replay one printed case, e.g. \"RopeCase(B=1, H=1, T=3, D=4, seed=7)\", instead of drawing")
    c.add_argument("--layout", default=None, help="rope only: half or interleaved")
    c.add_argument("--rotary-dim", type=_positive_int, default=None, metavar="N", help="rope only")
    c.add_argument("--json", action="store_true", help="print the result as JSON (CheckResult.as_dict(); "
                   "NaN and infinities as the strings \"nan\", \"inf\", \"-inf\")")
    c.add_argument("--out", default=None, metavar="FILE.html", help="also write the result as one HTML page")
    c.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

    r = sub.add_parser("report", parents=[common], epilog=_EPILOG, formatter_class=fmt,
                       help="run laws, mutants and implementation checks; write JSON/MD/HTML",
                       description="Run the whole catalogue and write conformance.json, .md and .html to --out "
                                   "(the committed report is regenerated with --out reports/cpu).")
    r.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    r.add_argument("--profile", default="ci", choices=["ci", "deep"])
    r.add_argument("--out", default=DEFAULT_REPORT_DIR, metavar="DIR",
                   help=f"output folder (default ./{DEFAULT_REPORT_DIR}; the committed one is reports/cpu)")
    r.add_argument("--seed", type=_int, default=0, metavar="N")
    r.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    return p


# --- validation ---------------------------------------------------------------------------------------------


def _check_device(device: str) -> None:
    """``cpu``, ``cuda`` or ``cuda:N``; a CUDA device must exist (checked before anything runs)."""
    if device != "cpu" and device != "cuda" and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise UsageError(f"argument --device: {device!r} is not one of cpu, cuda, cuda:N")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"argument --device: {device!r} requested but torch.cuda.is_available() is False "
                             f"(no CUDA device or a CPU-only torch {torch.__version__}); use --device cpu")
        n = torch.cuda.device_count()
        if ":" in device and int(device[5:]) >= n:
            raise UsageError(f"argument --device: {device!r} but this machine has {n} CUDA device(s)")


def _load_target(spec: str) -> Callable[..., Any]:
    """Import ``MODULE:ATTR[.ATTR...]`` with the current folder first on ``sys.path``; UsageError when the
    module cannot be imported, the attribute is missing or the object is not callable."""
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise UsageError(f"argument target: {spec!r} must be MODULE:FUNCTION (e.g. mypkg.kernels:my_attention)")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    importlib.invalidate_caches()
    try:
        obj: Any = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (mod_name == exc.name or mod_name.startswith(exc.name + ".")):
            raise UsageError(f"argument target: cannot import module {mod_name!r} ({exc}); searched the current "
                             f"folder {cwd} and sys.path") from None
        raise UsageError(f"argument target: importing {mod_name!r} failed: {type(exc).__name__}: {exc}") from None
    except Exception as exc:
        raise UsageError(f"argument target: importing {mod_name!r} failed: {type(exc).__name__}: "
                         f"{_first_line(exc)}") from None
    where = mod_name
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(f"argument target: {where!r} has no attribute {part!r}{hint}")
        obj = getattr(obj, part)
        where = f"{where}.{part}" if where != mod_name else f"{mod_name}:{part}"
    if not callable(obj):
        raise UsageError(f"argument target: {spec!r} is a {type(obj).__name__}, not a callable")
    return obj  # type: ignore[no-any-return]


def case_classes() -> dict[str, type]:
    """The case dataclasses of every family (``AttentionCase``, ``RopeCase``, ...), by name
    (:func:`veriformer.cases.case_classes`)."""
    from veriformer.cases import case_classes as classes

    return classes()


_SAFE_NAMES = {"nan": math.nan, "inf": math.inf, "None": None, "True": True, "False": False}


def _literal(node: ast.AST) -> Any:
    """A literal argument of a printed case: numbers, strings, None/True/False, nan/inf, tuples/lists/dicts
    of those, a unary minus, and numpy scalar reprs such as ``np.float64(0.5)``."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in _SAFE_NAMES:
        return _SAFE_NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _literal(node.operand)
        return -v if isinstance(node.op, ast.USub) else +v
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)) and isinstance(node.right,
                                                                                               ast.Constant):
        left, right = _literal(node.left), node.right.value  # complex literals: 1+2j
        return left + right if isinstance(node.op, ast.Add) else left - right
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_literal(e) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
            and node.func.value.id in ("np", "numpy") and len(node.args) == 1 and not node.keywords):
        import numpy as np

        kind = getattr(np, node.func.attr, None)
        if isinstance(kind, type) and issubclass(kind, np.generic):
            return kind(_literal(node.args[0]))
    raise ValueError(f"{ast.unparse(node)!r} is not a literal")


def parse_case(text: str) -> Any:
    """The case object for a printed case such as ``AttentionCase(B=1, H=2, ...)`` (as failures print them).

    Only a call of one of :func:`case_classes` with literal arguments is accepted; nothing else is evaluated.
    UsageError names the problem and the known case classes."""
    classes = case_classes()
    names = ", ".join(sorted(classes))
    text = text.strip()
    if text.startswith("case="):
        text = text[5:]
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise UsageError(f"argument --case: {text!r} is not a constructor call ({exc.msg})") from None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise UsageError(f"argument --case: {text!r} is not a constructor call like RopeCase(B=1, ...); "
                         f"case classes: {names}")
    if node.func.id not in classes:
        raise _one_of("--case", node.func.id, sorted(classes))
    try:
        args = [_literal(a) for a in node.args]
        kwargs = {k.arg: _literal(k.value) for k in node.keywords if k.arg is not None}
        if len(kwargs) != len(node.keywords):
            raise ValueError("**kwargs are not allowed")
        return classes[node.func.id](*args, **kwargs)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"argument --case: {exc}") from None


# --- output -------------------------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _g(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.3g}"
    return "—" if x is None else str(x)


def _check_html(res: Any, env: dict[str, str]) -> str:
    """One self-contained HTML page for one CheckResult: verdict, environment, per-dtype figures, failures
    with their replay lines, and the cases closest to failing."""
    e = html.escape
    ok = res.passed
    rows = "".join(
        f"<tr class='{'ok' if f['passed'] else 'bad'}'><td>{e(dt)}</td><td>{f['cases']}</td>"
        f"<td>{'pass' if f['passed'] else 'FAIL'}</td><td>{_g(f['max_ratio'])}</td><td>{_g(f['max_margin'])}</td>"
        f"<td>{_g(f['max_abs'])}</td><td>{_g(f['max_ulp'])}</td><td>{_g(f['rel_rms'])}</td>"
        f"<td>{_g(f['baseline_max_abs'])}</td></tr>" for dt, f in res.per_dtype().items())
    fails = "".join(
        f"<h3>FAILED in {e(dt)}</h3><p>{e(f.message)}</p><pre>{e(f.example)}</pre>"
        f"<p>replay:</p><pre class='replay'>{e(f.replay)}</pre>" for dt, f in res.failures.items())
    closest = sorted(res.cases, key=lambda c: -c.margin if math.isfinite(c.margin) else -math.inf)[:10]
    crow = "".join(f"<tr class='{'ok' if c.passed else 'bad'}'><td>{e(c.dtype)}</td><td>{_g(c.margin)}</td>"
                   f"<td>{c.size}</td><td><code>{e(str(c.case))}</code></td><td>{e(c.message)}</td></tr>"
                   for c in closest)
    envline = " · ".join(f"{k} {e(str(v))}" for k, v in env.items())
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto;font-size:13px}"
             "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:2px 6px}"
             "th{background:#eee}.ok td:nth-child(3){color:#176f2c}.bad{background:#fde8e8}"
             ".verdict{font-size:20px;font-weight:bold;color:" + ("#176f2c" if ok else "#b00020") + "}"
             "pre{background:#f6f6f6;padding:6px;white-space:pre-wrap}")
    head = ("<tr><th>dtype</th><th>cases</th><th>pass</th><th>max ratio</th><th>margin</th><th>max abs</th>"
            "<th>max ulp</th><th>rel rms</th><th>base abs</th></tr>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>veriformer check {e(res.name)}</title>"
            f"<style>{style}</style></head><body><h1>veriformer check: {e(res.name)} as op {e(res.op)}</h1>"
            f"<p class='verdict'>{'PASSED' if ok else 'FAILED'}</p>"
            f"<p>{len(res.cases)} cases · dtypes {e(', '.join(res.dtypes))} · grad={res.grad} · "
            f"features {e(', '.join(res.features) or '-')} · profile {e(res.profile)} · seed {res.seed}</p>"
            f"<p>{envline}</p><table>{head}{rows}</table>{fails}"
            f"<h2>Closest to failing</h2><table><tr><th>dtype</th><th>margin</th><th>size</th><th>case</th>"
            f"<th>message</th></tr>{crow}</table></body></html>")


def _environment(device: str) -> dict[str, str]:
    import platform

    import torch

    from veriformer import __version__

    return {"veriformer": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "device": device}


# --- commands -----------------------------------------------------------------------------------------------


def _cmd_list(a: argparse.Namespace) -> int:
    import veriformer
    from veriformer import load_catalogue
    from veriformer.ops import OPS

    load_catalogue()

    if a.op is not None:
        if a.op not in OPS:
            raise _one_of("--op", a.op, sorted(OPS))
        print(describe_op(a.op))
        return EXIT_OK
    print("ops:")
    for op in OPS.values():
        print(f"  {op.name:<20} {op.convention}\n  {'':<20} features: {sorted(op.features) or '-'}; "
              f"source: {op.source}")
    print("laws:")
    for law in veriformer.LAWS.values():
        print(f"  {law.name:<42} [{law.kind}] {law.source}")
    print("mutants:")
    for m in veriformer.MUTANTS.values():
        print(f"  {m.name:<42} caught by {', '.join(m.caught_by)}")
    print("\n'veriformer list --op NAME' prints one op's full convention.")
    return EXIT_OK


def describe_op(name: str) -> str:
    """Op ``name``'s full convention as text: calling convention (layouts, keywords), features, options, outputs,
    wide outputs (states returned in float32 for float16/bfloat16 inputs), differentiable inputs, source, and
    its tolerance rows with their reasons."""
    from veriformer import load_catalogue
    from veriformer.ops import OPS

    load_catalogue()
    from veriformer.tolerances import TOLERANCES

    spec = OPS[name]
    opts = ", ".join(f"{k}={v!r}" for k, v in spec.options.items()) or "none"
    wide = ", ".join(sorted(spec.wide_outputs))
    lines = [f"op {spec.name}", f"  convention:  {spec.convention}", f"  source:      {spec.source}",
             f"  features:    {', '.join(sorted(spec.features)) or 'none'} (check(..., features=...) / --feature)",
             f"  options:     {opts}" + (" (keyword arguments of check(); --layout, --rotary-dim)" if spec.options
                                         else ""),
             f"  outputs:     {', '.join(spec.outputs)}"
             + ("" if len(spec.outputs) > 1 else " (a single tensor)"),
             f"  wide outputs: {wide or 'none'}"
             + (" (may come back in float32 for float16/bfloat16 inputs; judged as returned)" if wide else ""),
             f"  gradients (grad=True): {', '.join(spec.differentiable)}",
             f"  cases:       {case_type(name).__name__} (what failures print; replay with --case)",
             "  tolerances:"]
    for key in (spec.tolerance, spec.tolerance + ".grad"):
        t = TOLERANCES.get(key)
        if t is not None:
            lines.append(f"    {key}: rho={t.rho:g}, floor_ulps={t.floor_ulps:g}")
            lines.append(f"      {t.reason}")
    return "\n".join(lines)


def case_type(op: str, features: frozenset[str] = frozenset(), dtype: str = "float32") -> type:
    """The case class op ``op``'s strategy draws (``RopeCase`` for rope, ...): one case drawn, not run."""
    from hypothesis import Phase, find, settings

    from veriformer import load_catalogue
    from veriformer.ops import OPS


    load_catalogue()

    spec = OPS[op]
    strategy = spec.strategy(frozenset(features), dtype, dict(spec.options))
    one = find(strategy, lambda _: True, settings=settings(database=None, max_examples=1, derandomize=True,
                                                             phases=[Phase.generate]))
    return type(one)


def _shell_replay(a: argparse.Namespace, res: Any) -> list[str]:
    """For each failed dtype, the command line that replays its failing case (``--case``)."""
    import shlex

    lines = []
    for dt in res.failures:
        bad = next((c for c in res.cases if c.dtype == dt and not c.passed), None)
        if bad is None:
            continue
        text = bad.case if isinstance(bad.case, str) else repr(bad.case)
        args = ["veriformer", "check", a.target, "--op", a.op, "--dtype", dt, "--device", a.device,
                *[x for f in a.feature for x in ("--feature", f)], *(["--grad"] if a.grad else []),
                *(["--layout", a.layout] if a.layout else []),
                *(["--rotary-dim", str(a.rotary_dim)] if a.rotary_dim else []), "--case", text]
        lines.append(f"replay from a shell ({dt}): {shlex.join(args)}")
    return lines


def _merge(parts: list[Any]) -> Any:
    """One CheckResult from per-dtype CheckResults of the same call (check() runs each dtype independently)."""
    if len(parts) == 1:
        return parts[0]
    return dataclasses.replace(parts[0], dtypes=tuple(dt for p in parts for dt in p.dtypes),
                               cases=[c for p in parts for c in p.cases],
                               failures={k: v for p in parts for k, v in p.failures.items()})


def _cmd_check(a: argparse.Namespace) -> int:
    import veriformer
    from veriformer import load_catalogue
    from veriformer.ops import OPS

    load_catalogue()

    # everything validated before anything runs
    if a.op not in OPS:
        raise _one_of("--op", a.op, sorted(OPS))
    spec = OPS[a.op]
    for f in a.feature:
        if f not in spec.features:
            extra = "" if spec.features else f" (op {a.op!r} has no features)"
            raise _one_of("--feature", f, sorted(spec.features), extra)
    opts: dict[str, Any] = {}
    for flag, key, value in (("--layout", "layout", a.layout), ("--rotary-dim", "rotary_dim", a.rotary_dim)):
        if value is None:
            continue
        if key not in spec.options:
            raise UsageError(f"argument {flag}: op {a.op!r} has no option {key!r} "
                             f"(its options: {', '.join(spec.options) or 'none'})")
        opts[key] = value
    if a.layout is not None and a.layout not in ("half", "interleaved"):
        raise _one_of("--layout", a.layout, ["half", "interleaved"])
    _check_device(a.device)
    dtypes = list(dict.fromkeys(a.dtype or ["float32"]))
    cases = None
    if a.case is not None:
        case = parse_case(a.case)
        want = case_type(a.op, frozenset(a.feature))
        if not isinstance(case, want):
            raise UsageError(f"argument --case: op {a.op!r} takes {want.__name__} cases, not {type(case).__name__}")
        cases = [case]
    if a.out is not None and Path(a.out).is_dir():
        raise UsageError(f"argument --out: {a.out!r} is a folder; give a file name such as check.html")
    fn = _load_target(a.target)

    kw = dict(op=a.op, device=a.device, features=set(a.feature), grad=a.grad, profile=a.profile,
              max_examples=a.max_examples, seed=a.seed, cases=cases, **opts)
    parts = []
    t_all = time.time()
    if not a.quiet:
        from veriformer.profiles import active_profile, examples

        profile = a.profile or active_profile()
        n = "1 given case" if cases else f"{a.max_examples or examples(profile, 'check')} examples"
        print(f"veriformer: checking {a.target} as op {a.op} in {', '.join(dtypes)} ({n} per dtype, {profile} "
              f"profile, seed {a.seed}, grad={a.grad})", file=sys.stderr)
    for i, dt in enumerate(dtypes):
        t0 = time.time()
        try:
            part = veriformer.check(fn, dtypes=(dt,), **kw)
        except (ValueError, TypeError) as exc:  # check() validates its arguments
            raise UsageError(_first_line(exc)) from None
        parts.append(part)
        if not a.quiet:
            print(f"veriformer: [{i + 1}/{len(dtypes)}] {dt}: {len(part.cases)} cases, "
                  f"{'passed' if part.passed else 'FAILED'} ({time.time() - t0:.1f} s)", file=sys.stderr)
    res = _merge(parts)
    if a.json:
        print(json.dumps(jsonable(res.as_dict()), indent=1, allow_nan=False))
    else:
        print(res.summary())
        for line in _shell_replay(a, res):
            print(line)
    if a.out is not None:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(_check_html(res, _environment(a.device)))
        if not a.quiet:
            print(f"veriformer: wrote {out} ({time.time() - t_all:.1f} s)", file=sys.stderr)
    return EXIT_OK if res.passed else EXIT_FAILED


def _cmd_report(a: argparse.Namespace) -> int:
    _check_device(a.device)
    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"argument --out: {a.out!r} exists and is not a folder")
    from veriformer.report import write_report

    rep = write_report(out, device=a.device, profile=a.profile, seed=a.seed, progress=not a.quiet)
    print(f"wrote {out}/conformance.json, .md, .html: {'PASSED' if rep['passed'] else 'FAILED'} "
          f"({rep['seconds']} s)")
    return EXIT_OK if rep["passed"] else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 passed, 1 a check failed, 2 usage error, 3 internal
    error) instead of raising, so ``sys.exit(main())`` is the whole entry point."""
    parser = _parser()
    try:
        a = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    commands = {"list": _cmd_list, "check": _cmd_check, "report": _cmd_report}
    try:
        return commands[a.cmd](a)
    except UsageError as exc:
        print(f"veriformer: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("veriformer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (| head): stop quietly, as a SIGPIPE would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        if a.traceback:
            traceback.print_exc()
        print(f"veriformer: internal error: {type(exc).__name__}: {_first_line(exc)}"
              + ("" if a.traceback else " (run with --traceback for details)"), file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
