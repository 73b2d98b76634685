"""Command line: ``veriformer report``, ``veriformer list``, ``veriformer check MODULE:FN --op NAME``."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

__all__ = ["main"]


def _load(spec: str) -> Any:
    if ":" not in spec:
        raise SystemExit(f"veriformer check: argument 'target' must be MODULE:FUNCTION; got {spec!r}")
    mod, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(mod)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="veriformer", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report", help="run laws, mutants and implementation checks; write JSON/MD/HTML")
    r.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    r.add_argument("--profile", default="ci", choices=["ci", "deep"])
    r.add_argument("--out", default=None, help="output folder (default reports/<device>)")
    r.add_argument("--seed", type=int, default=0)
    sub.add_parser("list", help="list ops, laws (with sources) and mutants")
    c = sub.add_parser("check", help="check a callable MODULE:FN against an op's oracle")
    c.add_argument("target")
    c.add_argument("--op", required=True)
    c.add_argument("--dtype", action="append", help="repeatable; default float32")
    c.add_argument("--device", default="cpu")
    c.add_argument("--feature", action="append", default=[], help="repeatable: causal, gqa, window, ...")
    c.add_argument("--grad", action="store_true")
    c.add_argument("--profile", default="ci", choices=["ci", "deep"])
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--layout", default=None, help="rope only: half or interleaved")
    c.add_argument("--rotary-dim", type=int, default=None, help="rope only")
    a = p.parse_args(argv)

    import veriformer

    if a.cmd == "list":
        from veriformer.ops import OPS

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
        return 0
    if a.cmd == "report":
        from veriformer.report import write_report

        out = a.out or f"reports/{a.device}"
        rep = write_report(out, device=a.device, profile=a.profile, seed=a.seed)
        print(f"wrote {out}/conformance.json, .md, .html: {'PASSED' if rep['passed'] else 'FAILED'} "
              f"({rep['seconds']} s)")
        return 0 if rep["passed"] else 1
    fn = _load(a.target)
    opts = {}
    if a.layout:
        opts["layout"] = a.layout
    if a.rotary_dim:
        opts["rotary_dim"] = a.rotary_dim
    res = veriformer.check(fn, op=a.op, dtypes=tuple(a.dtype or ["float32"]), device=a.device,
                           features=set(a.feature), grad=a.grad, profile=a.profile, seed=a.seed, **opts)
    print(res.summary())
    return 0 if res.passed else 1


if __name__ == "__main__":
    sys.exit(main())
