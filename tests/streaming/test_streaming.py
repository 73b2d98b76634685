"""StreamingLLM: the rolling-cache oracle against our Triton flash attention (window + sinks, original positions)
under the interpreter, the paper's worked example, and the oracles' input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

# fast._triton.env first: it selects the CPU interpreter, which must happen before triton is imported
from veriformer.fast._triton.env import HAVE_TRITON, interpreting  # isort: skip

from veriformer import reference as ref
from veriformer.reference import InputError

DEV = "cuda" if torch.cuda.is_available() and not interpreting() else "cpu"


def _stream(B: int, H: int, Hkv: int, N: int, D: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((B, H, N, D)), rng.standard_normal((B, Hkv, N, D)),
            rng.standard_normal((B, Hkv, N, D)))


def test_paper_example_cache_positions() -> None:
    """Xiao et al. 2023, section 3.2: "if the current cache has tokens [0, 1, 2, 3, 6, 7, 8] and is in the process of
    decoding the 9th token, the positions assigned are [0, 1, 2, 3, 4, 5, 6, 7]": 4 sinks, 4 recent (the new token
    included), token 9 decoded with the cache [0, 1, 2, 3, 6, 7, 8, 9] at positions 0..7."""
    q, k, v = _stream(1, 1, 1, 10, 4, 0)
    _, trace = ref.streaming_decode(q, k, v, sinks=4, recent=4, return_trace=True)
    assert [int(i) for i in trace.ids[9]] == [0, 1, 2, 3, 6, 7, 8, 9]
    assert [int(i) for i in trace.ids[8]] == [0, 1, 2, 3, 5, 6, 7, 8]
    assert [int(p) for p in trace.positions[9]] == list(range(8))
    assert [int(i) for i in ref.streaming_retained_ids(9, 4, 4)] == [0, 1, 2, 3, 6, 7, 8, 9]


@pytest.mark.skipif(not HAVE_TRITON, reason="the optional dependency triton is not installed")
@pytest.mark.parametrize(("sinks", "recent", "dtype"), [(2, 5, torch.float32), (1, 16, torch.bfloat16),
                                                        (4, 3, torch.float16)])
def test_fast_attention_matches_rolling_cache_with_original_positions(sinks: int, recent: int,
                                                                     dtype: torch.dtype) -> None:
    """veriformer.fast.attention(R q, R k, v, causal, window=recent, sinks=sinks) on the full stream equals the
    rolling cache decoded with original positions (Triton interpreter on CPU; 16x16 tiles so the sink blocks and the
    window band are separate key blocks)."""
    from veriformer.fast.attention.flash import attention

    B, H, Hkv, N, D = 1, 4, 2, 40, 16
    q, k, v = _stream(B, H, Hkv, N, D, 7)
    want = ref.streaming_decode(q, k, v, sinks=sinks, recent=recent, positions="original")
    pos = np.arange(N)
    qr, kr = ref.rope(q, pos), ref.rope(k, pos)
    t = [torch.from_numpy(a).to(DEV, dtype) for a in (qr, kr, v)]
    got = attention(*t, causal=True, window=recent, sinks=sinks, block_sizes=(16, 16)).double().cpu().numpy()
    # the inputs rounded to dtype: compare against the oracle on the rounded inputs, within dtype accumulation
    rounded = [a.double().cpu().numpy() for a in t]
    exact = ref.softmax_attention(*rounded, causal=True, window=recent, sinks=sinks)
    u = {torch.float32: 2.0**-24, torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}[dtype]
    assert np.abs(got - exact).max() <= 8 * u * np.abs(v).max()
    # and the rolling-cache oracle agrees with the windowed one on the unrounded inputs
    np.testing.assert_allclose(want, ref.softmax_attention(qr, kr, v, causal=True, window=recent, sinks=sinks),
                               atol=1e-13, rtol=0)


def test_input_errors_name_the_argument() -> None:
    q, k, v = _stream(1, 2, 1, 5, 4, 1)
    with pytest.raises(InputError, match="'recent'"):
        ref.streaming_decode(q, k, v, sinks=1, recent=0)
    with pytest.raises(InputError, match="'positions'"):
        ref.streaming_decode(q, k, v, sinks=1, recent=2, positions="absolute")
    with pytest.raises(InputError, match="'k'"):
        ref.streaming_decode(q, k[:, :, :3], v, sinks=1, recent=2)
    with pytest.raises(InputError, match="'sink'"):
        ref.sink_softmax_attention(q, k, v, sink=np.zeros(3))
    with pytest.raises(InputError, match="'sinks'"):
        ref.streaming_retained_ids(3, -1, 2)


def test_softmax_one_all_negative_logits_give_zero_output() -> None:
    """Miller's point: with softmax_1 (sink logit 0) a head whose logits are all very negative outputs ~0 instead
    of an average of the values."""
    x = np.full((1, 4), -50.0)
    assert ref.softmax_with_sink(x, 0.0).sum() < 1e-20
    np.testing.assert_allclose(ref.softmax_with_sink(x, -np.inf), np.full((1, 4), 0.25))
