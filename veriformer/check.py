"""``veriformer.check``: test any callable against an op's oracle under the tolerance policy.

For each dtype, Hypothesis draws cases from the op's strategy (seeded; a failure is shrunk to a minimal
counterexample and printed with its replay blob).  Per case:

1. the float64 inputs are rounded to the dtype (the exact values every consumer sees);
2. gold = the float64 oracle on those values; baseline = the naive torch formula in the dtype (TF32 off);
3. the candidate runs on the same tensors with NaN-poisoned ``torch.empty``;
4. each output (and, with ``grad=True``, each input gradient for a random cotangent) is judged:
   non-finite where gold is finite fails at once; else ``|c - g| <= rho * max|b - g| + floor_ulps * ulp``.
"""

from __future__ import annotations

import inspect
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from veriformer.campaign import Failure, run_campaign
from veriformer.cases import parse_case
from veriformer.compare import DTYPES, OpVerdict, bits_lost, judge_against_baseline, measure, unit_roundoff
from veriformer.ops import OpSpec, get_op
from veriformer.profiles import active_profile, examples
from veriformer.tolerances import Tolerance, tolerance
from veriformer.torchio import nan_poisoned_allocations, no_tf32, round_to, to_numpy, to_torch, torch_dtype

__all__ = ["CaseResult", "CheckResult", "check"]


@dataclass
class CaseResult:
    """One case in one dtype: a verdict per output (``o``) and per gradient (``dq``, ...).  ``case`` is the case
    object itself (``check(fn, op, cases=[r.case])`` replays it); ``regions`` the op's edge regions it lies in."""

    dtype: str
    case: Any
    size: int
    verdicts: list[OpVerdict]
    passed: bool
    message: str = ""
    regions: frozenset[str] = frozenset()
    notes: tuple[str, ...] = ()  # e.g. the usual baseline's loss when a careful baseline judged the case

    @property
    def margin(self) -> float:
        return max((v.margin for v in self.verdicts), default=float("inf"))

    def as_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "case": repr(self.case), "size": self.size, "passed": self.passed,
                "message": self.message, "regions": sorted(self.regions), "notes": list(self.notes),
                "verdicts": [v.as_dict() for v in self.verdicts]}


@dataclass
class CheckResult:
    """Outcome of :func:`check`: ``passed``, every case's figures (``cases``), the ``worst`` case and the
    first ``failure`` (falsifying example and replay line) per dtype."""

    op: str
    name: str
    device: str
    dtypes: tuple[str, ...]
    features: tuple[str, ...]
    grad: bool
    profile: str
    seed: int | None
    options: dict[str, Any]
    tolerances: dict[str, Tolerance]
    cases: list[CaseResult] = field(default_factory=list)
    failures: dict[str, Failure] = field(default_factory=dict)
    not_covered: tuple[str, ...] = ()  # features of the op that no case drew (fn lacks the keyword, or narrowed)

    @property
    def coverage(self) -> dict[str, Any]:
        """What the cases exercised: features drawn and not covered, the op's edge regions hit and missed, cases
        per dtype."""
        spec = get_op(self.op)
        hit = sorted({r for c in self.cases for r in c.regions})
        known = sorted(spec.regions.reachable(self.features)) if spec.regions is not None else hit
        return {"features": list(self.features), "not_covered": list(self.not_covered), "regions_hit": hit,
                "regions_missed": [r for r in known if r not in hit],
                "cases_per_dtype": {dt: sum(c.dtype == dt for c in self.cases) for dt in self.dtypes}}

    def coverage_line(self) -> str:
        cov = self.coverage
        parts = [f"features {', '.join(cov['features']) or 'none'}"]
        if cov["not_covered"]:
            parts.append(f"not covered: {', '.join(cov['not_covered'])}")
        if cov["regions_hit"] or cov["regions_missed"]:
            n = len(cov["regions_hit"]) + len(cov["regions_missed"])
            parts.append(f"regions {len(cov['regions_hit'])}/{n}"
                         + (f" (missed: {', '.join(cov['regions_missed'])})" if cov["regions_missed"] else ""))
        per = cov["cases_per_dtype"]
        parts.append("cases " + ", ".join(f"{dt} {k}" for dt, k in per.items()))
        return "coverage: " + "; ".join(parts)

    @property
    def passed(self) -> bool:
        return not self.failures and bool(self.cases)

    @property
    def failure(self) -> Failure | None:
        return next(iter(self.failures.values()), None)

    @property
    def worst(self) -> CaseResult | None:
        return max(self.cases, key=lambda c: c.margin, default=None)

    def per_dtype(self) -> dict[str, dict[str, Any]]:
        """Aggregate figures per dtype: cases, passed, worst ratio/margin, max abs, max ulp, rel RMS.

        ``max_ratio``: per output (o, dq, ...), the candidate's largest absolute error over all cases divided by
        the naive baseline's largest, then the maximum over outputs; per-case ratios are not aggregated, since a
        case whose gold value is ~0 (a gradient cancelling to nothing) makes them ratios of rounding residues.
        ``rel_rms`` is the largest finite one (an all-zero gold output has none); ``max_ulp`` and ``rel_rms`` of
        near-zero outputs are large by construction (their verdict rests on the floor)."""
        out: dict[str, dict[str, Any]] = {}
        for dt in self.dtypes:
            cs = [c for c in self.cases if c.dtype == dt]
            vs = [v for c in cs for v in c.verdicts]
            worst: dict[str, list[float]] = {}
            for v in vs:
                w = worst.setdefault(v.output, [0.0, 0.0])
                w[0], w[1] = max(w[0], v.candidate.max_abs), max(w[1], v.baseline.max_abs)
            fin = [c / b for c, b in worst.values() if b > 0 and np.isfinite(c / b)]
            out[dt] = {
                "cases": len(cs), "passed": dt not in self.failures and bool(cs),
                "max_ratio": max(fin, default=0.0),
                "max_margin": max((v.margin for v in vs), default=float("inf")),
                "max_abs": max((v.candidate.max_abs for v in vs), default=0.0),
                "max_ulp": max((v.candidate.max_ulp for v in vs), default=0.0),
                "rel_rms": max((v.candidate.rel_rms for v in vs if np.isfinite(v.candidate.rel_rms)), default=0.0),
                "baseline_max_abs": max((v.baseline.max_abs for v in vs), default=0.0),
                "baseline_max_ulp": max((v.baseline.max_ulp for v in vs), default=0.0),
                "nonfinite": sum(v.candidate.nonfinite for v in vs),
                "bits_lost": bits_lost(max((v.candidate.max_ulp for v in vs), default=0.0)),
                "baseline_bits_lost": bits_lost(max((v.baseline.max_ulp for v in vs), default=0.0)),
            }
        return out

    def summary(self) -> str:
        """A plain-text table: one line per dtype, then the first failure, if any."""
        head = (f"check {self.name} as op {self.op} on {self.device} ({self.profile} profile, seed "
                f"{self.seed}, grad={self.grad}): {'PASSED' if self.passed else 'FAILED'}")
        lines = [head, f"{'dtype':<9} {'cases':>5} {'pass':>5} {'max ratio':>10} {'margin':>8} "
                       f"{'max abs':>10} {'max ulp':>9} {'rel rms':>9} {'bits lost':>9} {'NaN/Inf':>7} "
                       f"{'base abs':>10} {'base bits':>9}"]
        for dt, f in self.per_dtype().items():
            lines.append(f"{dt:<9} {f['cases']:>5} {('yes' if f['passed'] else 'NO'):>5} "
                         f"{f['max_ratio']:>10.3g} {f['max_margin']:>8.3g} {f['max_abs']:>10.3g} "
                         f"{f['max_ulp']:>9.3g} {f['rel_rms']:>9.3g} {f['bits_lost']:>9.1f} {f['nonfinite']:>7d} "
                         f"{f['baseline_max_abs']:>10.3g} {f['baseline_bits_lost']:>9.1f}")
        for dt, fail in self.failures.items():
            lines += [f"FAILED in {dt}: {fail.message}"]
            failed = [c for c in self.cases if c.dtype == dt and not c.passed]
            rec = next((c for c in failed if repr(c.case) == fail.example), failed[-1] if failed else None)
            if rec is not None:
                lines += [f"  {v.output}: {v.failing} element(s) over tolerance, {v.candidate.nonfinite} NaN/Inf; "
                          f"{v.worst or 'no finite error'}" for v in rec.verdicts if not v.passed]
            lines += [f"  case: {fail.example}" if fail.example else "", f"replay: {fail.replay}"]
        lines += self.baseline_notes()
        lines.append(self.coverage_line())
        return "\n".join(x for x in lines if x)

    def baseline_notes(self) -> list[str]:
        """Flags for a baseline that is itself far from the correctly rounded answer: a pass then only means
        "as good as the usual plain-torch code"."""
        notes = []
        for dt in self.dtypes:
            worst = max(((v.baseline.max_ulp, v.output, c) for c in self.cases if c.dtype == dt for v in c.verdicts
                         if np.isfinite(v.baseline.max_ulp)), default=None, key=lambda x: x[0])
            if worst is None:
                continue
            lost = bits_lost(worst[0])
            p = DTYPES[dt][0]
            if lost > max(4.0, p / 3):
                notes.append(f"note: in {dt} the naive baseline loses {lost:.0f} of {p} bits on '{worst[1]}' "
                             f"({worst[2].case!r}); a pass is relative to it - see each case's candidate bits")
            usual = sorted({n for c in self.cases if c.dtype == dt for n in c.notes})
            if usual:
                notes.append(f"note: in {dt} {usual[-1]} (and {len(usual) - 1} more such cases)" if len(usual) > 1
                             else f"note: in {dt} {usual[0]}")
        return notes

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "name": self.name, "device": self.device, "dtypes": list(self.dtypes),
                "features": list(self.features), "grad": self.grad, "profile": self.profile,
                "seed": self.seed, "options": self.options, "passed": self.passed, "coverage": self.coverage,
                "tolerances": {k: vars(t) for k, t in self.tolerances.items()},
                "per_dtype": self.per_dtype(), "cases": [c.as_dict() for c in self.cases],
                "failures": {k: f.as_dict() for k, f in self.failures.items()}}


def _describe(fn: Callable[..., Any]) -> str:
    mod = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return f"{mod}:{name}" if mod else name


def _as_outputs(raw: Any, spec: OpSpec, gold: dict[str, np.ndarray], dtype: str,
                what: str) -> tuple[dict[str, torch.Tensor] | None, str]:
    """Unpack a callable's result into {output name: tensor}, checking type, arity, shape and dtype."""
    names = spec.outputs
    if len(names) == 1:
        raw = (raw,)
    elif not isinstance(raw, tuple | list) or len(raw) != len(names):
        return None, f"{what} returned {type(raw).__name__}, expected a tuple ({', '.join(names)})"
    outs: dict[str, torch.Tensor] = {}
    for name, val in zip(names, raw, strict=True):
        label = what if len(names) == 1 else f"{what} output '{name}'"
        if name not in gold:
            if val is not None:
                return None, f"{label} should be None for this case"
            continue
        if not isinstance(val, torch.Tensor):
            return None, f"{label} returned {type(val).__name__}, expected a torch.Tensor"
        if tuple(val.shape) != gold[name].shape:
            return None, f"{label} returned shape {tuple(val.shape)}, expected {gold[name].shape}"
        if val.dtype != torch_dtype(dtype) and not (
                name in spec.wide_outputs and val.dtype == torch.float32 and dtype in ("float16", "bfloat16")):
            wide = " (or torch.float32)" if name in spec.wide_outputs and dtype in ("float16", "bfloat16") else ""
            return None, f"{label} returned dtype {val.dtype}, expected {torch_dtype(dtype)}{wide}"
        outs[name] = val
    return outs, ""


# gold, baseline outputs and conditioning of recent (op, case, dtype, device, options): checking several
# candidates on the same explicit cases (the wrong-answer mutants, the report) computes them once
_CACHE: OrderedDict[tuple[str, ...], dict[str, Any]] = OrderedDict()
_CACHE_SIZE = 16


def _closer(a: np.ndarray, b: np.ndarray, gold: np.ndarray) -> bool:
    """True when baseline ``a`` has a smaller max abs error against ``gold`` than baseline ``b`` (NaN ignored)."""
    with np.errstate(invalid="ignore"):
        return bool(np.nanmax(np.abs(a - gold), initial=0.0) < np.nanmax(np.abs(b - gold), initial=0.0))


def _conditioned(entry: tuple[Any, ...] | None) -> dict[str, Any]:
    """An op's conditioning entry ``(condition, summand size[, root-sum-square])`` (sizes: one number or one per
    element) as keyword arguments of :func:`judge_against_baseline`."""
    if entry is None:
        return {}
    out = {"condition": float(entry[0]), "floor_scale": entry[1]}
    if len(entry) > 2:
        out["sigma"] = entry[2]
    return out


def _run_case(fn: Callable[..., Any], spec: OpSpec, case: Any, dtype: str, device: str, grad: bool,
              tols: dict[str, Tolerance], opts: dict[str, Any]) -> CaseResult:
    arrays = {k: round_to(v, dtype) for k, v in case.arrays().items()}
    key = (spec.name, repr(case), dtype, str(device), repr(sorted(opts.items())))
    cached = _CACHE.get(key)
    if cached is None:
        gold = spec.gold(case, arrays, opts)
        cached = {"gold": {"out": gold} if isinstance(gold, np.ndarray) else gold}
    else:
        _CACHE.move_to_end(key)
    gold = cached["gold"]
    size = spec.size(case)

    regions = spec.regions(case) if spec.regions is not None else frozenset()

    def fail(msg: str, verdicts: list[OpVerdict] | None = None) -> CaseResult:
        return CaseResult(dtype, case, size, verdicts or [], False, msg, regions)

    def tensors() -> dict[str, torch.Tensor]:
        t = {k: to_torch(v, dtype, device) for k, v in arrays.items()}
        if grad:
            for n in spec.differentiable:
                if n in t:
                    t[n].requires_grad_(True)
        return t

    cand_in = tensors()
    try:
        with nan_poisoned_allocations():
            raw = spec.call(fn, cand_in, case, opts)
    except Exception as exc:
        return fail("candidate raised " + "".join(traceback.format_exception_only(type(exc), exc)).strip())
    outs, why = _as_outputs(raw, spec, gold, dtype, "candidate")
    if outs is None:
        return fail(why)
    if grad or "base" not in cached:
        base_in = tensors()
        with no_tf32():
            base, why = _as_outputs(spec.call(spec.baseline(opts), base_in, case, opts), spec, gold, dtype,
                                    "baseline")
        if base is None:
            raise RuntimeError(f"naive baseline of op {spec.name!r} is broken: {why}")
        cached["base"] = {n: to_numpy(b) for n, b in base.items()}
        if spec.careful_baseline is not None:  # judge against the better of the two baselines, per output
            with no_tf32(), torch.no_grad():
                careful, why = _as_outputs(spec.call(spec.careful_baseline(opts), tensors(), case, opts), spec, gold,
                                           dtype, "careful baseline")
            if careful is None:
                raise RuntimeError(f"careful baseline of op {spec.name!r} is broken: {why}")
            for n, cb in careful.items():
                c_np = to_numpy(cb)
                if _closer(c_np, cached["base"][n], gold[n]):
                    lost = bits_lost(measure(cached["base"][n], gold[n], dtype).max_ulp)
                    cached.setdefault("notes", []).append(
                        f"the usual baseline loses {lost:.0f} bits on '{n}'; judged against the careful one")
                    cached["base"][n] = c_np
        cached["cond"] = spec.conditioning(case, arrays, None, opts)
        _CACHE[key] = cached
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    base_np, cond, notes = cached["base"], cached["cond"], tuple(cached.get("notes", ()))
    t_out = tols["out"]
    verdicts = [judge_against_baseline(n, to_numpy(outs[n]), base_np[n], gold[n], dtype, rho=t_out.rho,
                                       floor_ulps=t_out.floor_ulps, **_conditioned(cond.get(n)))
                for n in outs]
    if grad:
        rng = np.random.default_rng(getattr(case, "seed", 0) + 1)
        cots = {n: (np.zeros(gold[n].shape) if n in spec.nondiff_outputs
                    else round_to(rng.standard_normal(gold[n].shape), dtype)) for n in outs}
        gold_g = spec.gold_vjp(case, arrays, cots, opts)
        names = [n for n in spec.differentiable if n in cand_in]
        if not any(o.requires_grad for o in outs.values()):
            return fail("candidate output does not require grad (no autograd support)", verdicts)

        def vjp(o: dict[str, torch.Tensor], inputs: dict[str, torch.Tensor]) -> tuple[Any, ...]:
            live = [n for n in o if o[n].requires_grad]
            return torch.autograd.grad([o[n] for n in live], [inputs[n] for n in names],
                                       [to_torch(cots[n], dtype, device).to(o[n].dtype) for n in live],
                                       allow_unused=True)

        try:
            with nan_poisoned_allocations():
                cand_g = vjp(outs, cand_in)
        except Exception as exc:
            return fail("candidate backward raised " + repr(exc), verdicts)
        with no_tf32():
            base_g = [None if g is None else to_numpy(g) for g in vjp(base, base_in)]
            if spec.careful_baseline is not None:  # the better of the two baselines, per gradient
                careful_in = tensors()
                careful, _ = _as_outputs(spec.call(spec.careful_baseline(opts), careful_in, case, opts), spec,
                                         gold, dtype, "careful baseline")
                if careful is not None and any(o.requires_grad for o in careful.values()):
                    for i, cg_ in enumerate(vjp(careful, careful_in)):
                        if cg_ is None or base_g[i] is None:
                            continue
                        c_np = to_numpy(cg_)
                        if _closer(c_np, base_g[i], gold_g[names[i]]):
                            base_g[i] = c_np
        t_g = tols["grad"]
        conds = spec.conditioning(case, arrays, cots, opts)
        for n, cg, bg in zip(names, cand_g, base_g, strict=True):
            if cg is None:
                return fail(f"candidate gives no gradient for '{n}'", verdicts)
            verdicts.append(judge_against_baseline(f"d{n}", to_numpy(cg), bg, gold_g[n], dtype,
                                                   rho=t_g.rho, floor_ulps=t_g.floor_ulps,
                                                   **_conditioned(conds.get(f"d{n}"))))
    passed = all(v.passed for v in verdicts)
    msg = "; ".join(f"{v.output}: {v.reason}" for v in verdicts if not v.passed)
    return CaseResult(dtype, case, size, verdicts, passed, msg, regions, notes)


def _dtype_name(dt: Any) -> str:
    """A dtype given as a name ("bfloat16") or a torch dtype (torch.bfloat16), as its name."""
    if isinstance(dt, torch.dtype):
        dt = str(dt).replace("torch.", "")
    if not isinstance(dt, str) or dt not in _DTYPE_NAMES:
        raise ValueError(f"check: argument 'dtypes' has {dt!r}; expected names or torch dtypes among "
                         f"{', '.join(_DTYPE_NAMES)}")
    return dt


_DTYPE_NAMES = tuple(DTYPES)  # the one dtype table: veriformer.compare.DTYPES


def _accepted_keywords(fn: Callable[..., Any]) -> set[str] | None:
    """Keyword arguments ``fn`` accepts (None: any, it takes **kwargs or has no readable signature)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return {n for n, p in sig.parameters.items()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def _number(name: str, value: Any, *, positive: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value) or value < 0 \
            or (positive and value == 0):
        want = "a positive finite number" if positive else "a finite number >= 0"
        raise ValueError(f"check: argument '{name}' must be {want}; got {value!r}")
    return float(value)


def check(fn: Callable[..., Any], op: str, *, dtypes: Iterable[Any] = ("float32",), device: str = "cpu",
          features: Iterable[str] | None = None, grad: bool = False, profile: str | None = None,
          max_examples: int | None = None, seed: int | None = 0, rho: float | None = None,
          floor_ulps: float | None = None, cases: Iterable[Any] | None = None, name: str | None = None,
          shrink: bool = True, **options: Any) -> CheckResult:
    """Check callable ``fn`` against op ``op``'s float64 oracle; returns a :class:`CheckResult`.

    ``fn`` follows the op's calling convention (``veriformer list --op NAME``).  ``features`` narrows the op's
    features drawn (e.g. ``{"causal", "gqa"}``); by default every feature of the convention is drawn, except
    those whose keyword ``fn`` does not accept (detected from its signature), which the summary lists as "not
    covered".  ``dtypes``: names or torch dtypes among float16, bfloat16, float32, float64; ``device`` "cpu" or
    "cuda".  ``grad=True`` also checks the VJP against the oracle's with random cotangents.  ``rho`` /
    ``floor_ulps`` override the tolerance table; ``cases`` replays explicit cases (e.g. ``result.cases[0].case``
    or a printed counterexample, constructors in :mod:`veriformer.cases`) instead of drawing; ``shrink=False``
    skips minimising a failure (verdict only); ``options`` are op options (rope: ``layout``, ``rotary_dim``).
    Without ``cases``, the op's explicit corner cases run first, then ``max_examples`` drawn ones per dtype.
    Policy: module docstring and :mod:`veriformer.tolerances`.
    """
    if not callable(fn):
        raise TypeError(f"check: argument 'fn' must be callable; got {type(fn).__name__}")
    spec = get_op(op)
    accepted = _accepted_keywords(fn)
    not_covered: tuple[str, ...] = ()
    if features is None:
        missing = {f for f, kw in spec.feature_keywords.items() if accepted is not None and kw not in accepted}
        feats = frozenset(spec.features - missing)
        not_covered = tuple(sorted(missing))
    else:
        if isinstance(features, str):
            raise TypeError(f"check: argument 'features' must be a collection of names, not the string {features!r}")
        feats = frozenset(features)
        unknown = feats - spec.features
        if unknown:
            raise ValueError(f"check: argument 'features' has {sorted(unknown)}, not features of op {op!r}; "
                             f"expected a subset of {sorted(spec.features)}")
        not_covered = tuple(sorted(spec.features - feats))
    bad_opts = set(options) - set(spec.options)
    if bad_opts:
        raise ValueError(f"check: unknown option(s) {sorted(bad_opts)} for op {op!r}; "
                         f"op options: {sorted(spec.options) or 'none'}")
    opts = {**spec.options, **options}
    spec.validate_options(opts)
    if isinstance(dtypes, str | torch.dtype):
        dtypes = (dtypes,)
    dtypes = tuple(_dtype_name(dt) for dt in dtypes)
    if not dtypes:
        raise ValueError("check: argument 'dtypes' is empty; expected at least one of " + ", ".join(_DTYPE_NAMES))
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"check: argument 'device' must be 'cpu' or 'cuda'; got {device!r}")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("check: device 'cuda' requested but torch.cuda.is_available() is False")
    rho = _number("rho", rho)
    floor_ulps = _number("floor_ulps", floor_ulps)
    if max_examples is not None and (isinstance(max_examples, bool) or not isinstance(max_examples, int)
                                     or max_examples < 1):
        raise ValueError(f"check: argument 'max_examples' must be an int >= 1; got {max_examples!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"check: argument 'seed' must be an int or None; got {seed!r}")
    if cases is not None:
        cases = [parse_case(c) if isinstance(c, str) else c for c in cases]
        if not cases:
            raise ValueError("check: argument 'cases' is empty; give at least one case or omit it to draw cases")
        for c in cases:
            if not hasattr(c, "arrays"):
                raise TypeError(f"check: argument 'cases' has {type(c).__name__}, not a case (an object with "
                                f".arrays(), e.g. from veriformer.cases or result.cases[i].case)")
    profile = profile or active_profile()
    n = max_examples or examples(profile, "check")
    tols = {"out": tolerance(spec.tolerance).with_overrides(rho=rho, floor_ulps=floor_ulps),
            "grad": tolerance(spec.tolerance + ".grad").with_overrides(rho=rho, floor_ulps=floor_ulps)}
    result = CheckResult(op, name or _describe(fn), str(device), dtypes, tuple(sorted(feats)), grad, profile,
                         seed, opts, tols if grad else {"out": tols["out"]}, not_covered=not_covered)
    for dt in dtypes:
        explicit = list(cases) if cases is not None else (
            spec.corners(feats, dt, opts) if spec.corners is not None else [])
        for case in explicit:
            rec = _run_case(fn, spec, case, dt, device, grad, tols, opts)
            result.cases.append(rec)
            if not rec.passed and dt not in result.failures:
                cause = likely_cause(fn, spec, case, dt, device, opts)
                result.failures[dt] = Failure("; ".join(x for x in (cause, rec.message) if x), repr(case),
                                              _replay(result, case, dt))
        if cases is not None or dt in result.failures:
            continue

        def body(case: Any, dt: str = dt) -> tuple[CaseResult, bool, str]:
            rec = _run_case(fn, spec, case, dt, device, grad, tols, opts)
            return rec, rec.passed, rec.message

        camp = run_campaign(spec.strategy(feats, dt, opts), body, max_examples=n, seed=seed, profile=profile,
                            shrink=shrink)
        result.cases.extend(camp.records)
        if camp.failure is not None:
            last = camp.records[-1] if camp.records else None
            replay = _replay(result, last.case, dt) if last is not None and not last.passed else camp.failure.replay
            shrunk = last is not None and not last.passed
            cause = likely_cause(fn, spec, last.case, dt, device, opts) if shrunk else ""
            msg = last.message if shrunk else camp.failure.message
            result.failures[dt] = Failure("; ".join(x for x in (cause, msg) if x),
                                          repr(last.case) if shrunk else camp.failure.example, replay)
    return result


def likely_cause(fn: Callable[..., Any], spec: OpSpec, case: Any, dtype: str, device: str,
                 opts: dict[str, Any]) -> str:
    """Re-run ``fn`` on ``case`` and name the op's known alternative convention or bug signature that its output
    matches (relative RMS error within 16 unit roundoffs of the dtype and 4x closer than to the convention's
    gold), or "" when none does."""
    if spec.alternatives is None:
        return ""
    arrays = {k: round_to(v, dtype) for k, v in case.arrays().items()}
    gold = spec.gold(case, arrays, opts)
    gold = {"out": gold} if isinstance(gold, np.ndarray) else gold
    try:
        with torch.no_grad(), nan_poisoned_allocations():
            raw = spec.call(fn, {k: to_torch(v, dtype, device) for k, v in arrays.items()}, case, opts)
    except Exception:
        return ""
    outs, _ = _as_outputs(raw, spec, gold, dtype, "candidate")
    if outs is None:
        return ""
    got = {n: to_numpy(t) for n, t in outs.items()}

    def rel(ref_: dict[str, Any]) -> float:
        num = sum(float(np.sum((got[n] - ref_[n]) ** 2)) for n in got if n in ref_)
        den = sum(float(np.sum(np.asarray(ref_[n]) ** 2)) for n in got if n in ref_)
        return float(np.sqrt(num / den)) if den > 0 else float("inf")

    with np.errstate(all="ignore"):
        to_gold = rel(gold)
        scored = [(rel(alt), desc) for desc, alt in spec.alternatives(case, arrays, opts)]
    best = min(scored, default=None)
    if best is None or not np.isfinite(best[0]):
        return ""
    if best[0] <= 16 * unit_roundoff(dtype) and best[0] < 0.25 * to_gold:
        return (f"likely cause: your output matches {best[1]} (relative error {best[0]:.2g} against it, "
                f"{to_gold:.2g} against the convention)")
    return ""


def _replay(result: CheckResult, case: Any, dtype: str) -> str:
    """One line that replays ``case`` as printed (with ``fn`` the callable under test)."""
    kw = "".join(f", {k}={v!r}" for k, v in result.options.items() if v is not None)
    feats = f", features={set(result.features)!r}" if result.features else ", features=set()"
    grad = ", grad=True" if result.grad else ""
    dev = f", device={result.device!r}" if result.device != "cpu" else ""
    return (f"import veriformer; from veriformer.cases import *; veriformer.check(fn, op={result.op!r}, "
            f"dtypes=({dtype!r},){feats}{grad}{dev}{kw}, cases=[{case!r}])")
