"""Campaigns reach the corners: in one ci-profile check() per op, every edge region that the drawn features
allow is hit at least once (in the spirit of Hypothesis' find_any), and the coverage line says so."""

from __future__ import annotations

import pytest
import torch

import veriformer
from veriformer.implementations import oracle_attention
from veriformer.ops import get_op
from veriformer.torchio import to_numpy


def _oracle_la(q, k, v, *, g=None, scale, initial_state=None, output_final_state):  # type: ignore[no-untyped-def]
    from veriformer import reference as ref
    o, S = ref.linear_attention(q, k, v, g=None if g is None else to_numpy(g), scale=scale,
                                initial_state=None if initial_state is None else to_numpy(initial_state),
                                output_final_state=output_final_state)
    o = torch.from_numpy(o).to(q.dtype)
    return o, (None if S is None else torch.from_numpy(S).to(q.dtype))


def _oracle_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,  # type: ignore[no-untyped-def]
                 return_last_state=False):
    from veriformer.fast.ssm import naive as naive_ssm
    return naive_ssm.selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


def _oracle_impl(op: str) -> object:
    from veriformer.implementations import IMPLEMENTATIONS
    return next(i for i in IMPLEMENTATIONS if i.op == op and i.name.startswith("oracle_in_torch"))


@pytest.mark.parametrize(("op", "fn"), [("softmax_attention", oracle_attention), ("linear_attention", _oracle_la),
                                        ("selective_scan", _oracle_scan), ("rope", None), ("ssd_scan", None),
                                        ("mamba_chunk_scan", None), ("vq_attention", None),
                                        ("ssm_convolution", None), ("s4d_kernel", None)])
def test_every_region_is_reached_in_a_ci_campaign(op: str, fn: object) -> None:
    opts: dict[str, object] = {}
    if fn is None:
        impl = _oracle_impl(op)
        fn, opts = impl.fn, dict(impl.options)  # type: ignore[attr-defined]
    r = veriformer.check(fn, op=op, dtypes=("float32",), profile="ci", **opts)  # type: ignore[arg-type]
    spec = get_op(op)
    assert spec.regions is not None
    want = spec.regions.reachable(r.features)
    hit = {x for c in r.cases for x in c.regions}
    assert want <= hit, f"{op}: regions never reached: {sorted(want - hit)}"
    assert not r.coverage["regions_missed"] and "regions" in r.coverage_line()


def test_features_default_to_the_whole_convention_and_missing_keywords_are_reported() -> None:
    def attention_without_window(q, k, v, *, causal, scale, mask=None):  # type: ignore[no-untyped-def]
        return oracle_attention(q, k, v, causal=causal, scale=scale, mask=mask)

    r = veriformer.check(attention_without_window, op="softmax_attention", max_examples=3)
    assert r.passed
    assert set(r.features) == {"causal", "gqa", "mask"} and set(r.not_covered) == {"lse", "sinks", "window"}
    assert "not covered: lse, sinks, window" in r.summary()


def test_linear_attention_campaign_varies_scale() -> None:
    r = veriformer.check(_oracle_la, op="linear_attention", max_examples=12)
    scales = {c.case.scale for c in r.cases}
    assert len(scales - {None}) >= 1 and None in scales
