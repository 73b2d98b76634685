"""Campaigns reach the corners: in one ci-profile check() per op, every edge region that the drawn features
allow is hit at least once (in the spirit of Hypothesis' find_any), and the coverage line says so."""

from __future__ import annotations

import pytest
import torch

import veriformer
from veriformer.ops import get_op
from veriformer.properties.attention.implementations import oracle_attention
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


def _oracle_impl(op: str) -> object | None:
    from veriformer.implementations import IMPLEMENTATIONS
    return next((i for i in IMPLEMENTATIONS if i.op == op and i.name.startswith("oracle_in_torch")), None)


# the float64 oracle where a callable of the convention is written here (features the shipped wrapper lacks)
_OWN = {"softmax_attention": oracle_attention, "linear_attention": _oracle_la, "selective_scan": _oracle_scan}
veriformer.load_catalogue()
_WITH_REGIONS = sorted(name for name, spec in veriformer.ops.OPS.items() if spec.regions is not None)


def test_every_op_has_edge_regions() -> None:
    assert set(_WITH_REGIONS) == set(veriformer.ops.OPS), sorted(set(veriformer.ops.OPS) - set(_WITH_REGIONS))
    assert {"softmax_attention", "rope", "linear_attention", "ssd_scan"} <= set(_WITH_REGIONS)


@pytest.mark.parametrize("op", _WITH_REGIONS)
def test_every_region_is_reached_in_a_ci_campaign(op: str) -> None:
    """Every op's campaign with a correct callable: ours above, else the shipped oracle_in_torch, else the op's own
    naive baseline (judged against itself, so it passes whatever its precision)."""
    spec = get_op(op)
    opts: dict[str, object] = {}
    fn = _OWN.get(op)
    if fn is None:
        impl = _oracle_impl(op)
        if impl is not None:
            fn, opts = impl.fn, dict(impl.options)  # type: ignore[attr-defined]
        else:
            fn = spec.baseline(dict(spec.options))
    r = veriformer.check(fn, op=op, dtypes=("float32",), profile="ci", **opts)  # type: ignore[arg-type]
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
