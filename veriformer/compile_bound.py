"""The compile bound, proven without a GPU: how many Triton compilations a ``check()`` campaign of each of our
kernels makes, counted from the launches it records in compiled mode (``TRITON_INTERPRET=0`` on a CPU machine runs
nothing; see :func:`veriformer.fast._triton.env.recorded_launches` and ``specialisation_key``).
``tests/core/test_compile_bound.py`` holds the budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from veriformer.fast._triton.env import Launch, recorded_launches, specialisation_key

__all__ = ["campaign_launches", "campaign_specialisations", "our_implementations"]


def our_implementations() -> tuple[tuple[str, str], ...]:
    """(op, name) of every registered implementation that launches our Triton kernels (flag ``triton``)."""
    from veriformer import load_catalogue
    from veriformer.implementations import IMPLEMENTATIONS

    load_catalogue()
    return tuple((i.op, i.name) for i in IMPLEMENTATIONS if i.triton)


def campaign_launches(fn: Callable[..., Any], op: str, *, dtypes: tuple[str, ...] = ("float16", "bfloat16",
                      "float32"), features: Any = (), grad: bool = False, profile: str = "ci", seed: int = 0,
                      **options: Any) -> list[Launch]:
    """The launches (recorded, not run: compiled mode, see :func:`recorded_launches`) that
    ``veriformer.check(fn, op, dtypes=..., features=..., grad=..., profile=..., seed=...)`` makes when every case
    passes: the same strategy, seed and number of examples per dtype, each case's forward and (with ``grad``) its
    backward with unit cotangents.  Oracle, baseline and judging are skipped (they launch nothing)."""
    from hypothesis import strategies as st  # noqa: F401  (the campaign needs hypothesis)

    from veriformer.campaign import run_campaign
    from veriformer.ops import get_op
    from veriformer.profiles import examples
    from veriformer.torchio import round_to, to_torch

    spec = get_op(op)
    feats = frozenset(features)
    opts = {**spec.options, **options}
    with recorded_launches() as rec:
        for dt in dtypes:
            def body(case: Any, dt: str = dt) -> tuple[None, bool, str]:
                t = {k: to_torch(round_to(v, dt), dt, "cpu") for k, v in case.arrays().items()}
                if grad:
                    for n in spec.differentiable:
                        if n in t and t[n].is_floating_point():
                            t[n].requires_grad_(True)
                raw = spec.call(fn, t, case, opts)
                outs = [o for o in (raw if isinstance(raw, tuple | list) else (raw,))
                        if isinstance(o, torch.Tensor) and o.requires_grad]
                ins = [t[n] for n in spec.differentiable if n in t and t[n].requires_grad]
                if grad and outs and ins:
                    torch.autograd.grad(outs, ins, [torch.ones_like(o) for o in outs], allow_unused=True)
                return None, True, ""

            camp = run_campaign(spec.strategy(feats, dt, opts), body, max_examples=examples(profile, "check"),
                                seed=seed, profile=profile, shrink=False)
            if camp.failure is not None:
                raise RuntimeError(f"campaign_launches({op}, {dt}): {camp.failure.message}")
        return list(rec)


def campaign_specialisations(profile: str = "ci", dtypes: tuple[str, ...] = ("float16", "bfloat16", "float32"),
                             implementations: tuple[tuple[str, str], ...] | None = None
                             ) -> dict[str, Any]:
    """How many Triton compilations a GPU makes for ``check()`` of each of our implementations (with gradients where
    registered, every dtype in ``dtypes``, the ``profile``'s cases, seed 0: what ``pytest -m gpu`` and
    ``veriformer report --device cuda`` run): ``{"total": n, "per_kernel": {kernel: n}, "per_implementation":
    {"op:name": n}, "launches": n, "signatures": {kernel: n}}`` (``signatures``: distinct constexprs + argument types
    + launch options, whatever the integer / alignment classes); kernels shared between implementations (the SSD
    kernels, flash dK/dV for VQ) are counted once in ``total`` and ``per_kernel``.  Counted from
    :func:`recorded_launches` with :func:`specialisation_key`, so it needs compiled mode (a GPU machine, or
    ``TRITON_INTERPRET=0`` on a CPU one), runs nothing on a device and takes seconds.  ``implementations``
    defaults to every implementation flagged ``triton`` (:func:`our_implementations`)."""
    from veriformer import load_catalogue
    from veriformer.implementations import IMPLEMENTATIONS

    load_catalogue()
    if implementations is None:
        implementations = our_implementations()
    keys: dict[str, set[tuple[Any, ...]]] = {}
    per_impl: dict[str, int] = {}
    n_launches = 0
    for op, name in implementations:
        impl = next((i for i in IMPLEMENTATIONS if i.op == op and i.name == name), None)
        if impl is None:
            continue
        launches = campaign_launches(impl.fn, op, dtypes=dtypes, features=impl.features, grad=impl.grad,
                                     profile=profile, **impl.options)
        n_launches += len(launches)
        own = {specialisation_key(rec) for rec in launches}
        per_impl[f"{op}:{name}"] = len(own)
        for key in own:
            keys.setdefault(key[0], set()).add(key)
    per_kernel = {k: len(v) for k, v in sorted(keys.items())}
    # signatures: the keys without Triton's value classes (= 1, divisible by 16, aligned): constexprs, argument
    # types, launch options; bounded_jit allows at most two specialisations per signature
    signatures = {k: len({(key[0], tuple(p[:2] for p in key[1]), key[2]) for key in v}) for k, v in keys.items()}
    return {"total": sum(per_kernel.values()), "per_kernel": per_kernel, "per_implementation": per_impl,
            "launches": n_launches, "signatures": dict(sorted(signatures.items()))}
