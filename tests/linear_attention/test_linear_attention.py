"""Focused tests of the linear-attention family: pinned values, cross-checks against fla's naive
recurrence (re-derived) and torch float64 autograd, the straight-through rule, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import veriformer
from veriformer import reference as ref
from veriformer.fast.linear_attention import naive
from veriformer.fast.vq import naive as naive_vq
from veriformer.reference import InputError

RNG = np.random.default_rng(0)


def _la_inputs(B: int = 2, T: int = 7, H: int = 3, K: int = 4, V: int = 5) -> dict[str, np.ndarray]:
    return {"q": RNG.standard_normal((B, T, H, K)), "k": RNG.standard_normal((B, T, H, K)),
            "v": RNG.standard_normal((B, T, H, V)), "g": -RNG.random((B, T, H)),
            "s0": RNG.standard_normal((B, H, K, V))}


def test_pinned_two_token_recurrence() -> None:
    # K = V = 1, scale 1: S_0 = k0 v0 = 2, S_1 = e^{g1} S_0 + k1 v1 = 0.5 * 2 + 3 = 4
    q = np.array([1.0, 2.0]).reshape(1, 2, 1, 1)
    k = np.array([1.0, 1.0]).reshape(1, 2, 1, 1)
    v = np.array([2.0, 3.0]).reshape(1, 2, 1, 1)
    g = np.array([-5.0, np.log(0.5)]).reshape(1, 2, 1)
    for f in (ref.linear_attention, ref.linear_attention_recurrent):
        o, S = f(q, k, v, g=g, scale=1.0, output_final_state=True)
        np.testing.assert_allclose(o.ravel(), [2.0, 8.0], rtol=1e-15)
        np.testing.assert_allclose(S.ravel(), [4.0], rtol=1e-15)


def test_matches_fla_naive_recurrence_in_float64() -> None:
    """fla's naive_recurrent_simple_gla, written out: S = S * exp(g_t) + k_t v_t^T; o_t = (q_t K^-0.5) S."""
    a = _la_inputs()
    q, k, v, g = (torch.tensor(a[n]).transpose(1, 2) for n in ("q", "k", "v", "g"))
    S = torch.tensor(a["s0"]).clone()
    outs = []
    for t in range(q.shape[2]):
        S = S * g[:, :, t].exp()[..., None, None] + k[:, :, t, :, None] * v[:, :, t, None, :]
        outs.append(((q[:, :, t] * q.shape[-1] ** -0.5)[..., None] * S).sum(-2))
    o_fla = torch.stack(outs, 2).transpose(1, 2).numpy()
    o, S_ref = ref.linear_attention(a["q"], a["k"], a["v"], g=a["g"], initial_state=a["s0"], output_final_state=True)
    np.testing.assert_allclose(o, o_fla, atol=1e-13)
    np.testing.assert_allclose(S_ref, S.numpy(), atol=1e-13)


def test_vjp_matches_float64_autograd_of_naive() -> None:
    """Independent cross-check of the analytic VJP (the gold of the op) against torch float64 autograd of
    the plain-torch baseline, including dg and d initial_state (autograd of the naive form)."""
    a = _la_inputs()
    ts = {n: torch.tensor(a[n], requires_grad=True) for n in ("q", "k", "v", "g", "s0")}
    o, S = naive.linear_attention(ts["q"], ts["k"], ts["v"], g=ts["g"], initial_state=ts["s0"],
                                  output_final_state=True, gate_dtype=torch.float64)
    go, gs = RNG.standard_normal(o.shape), RNG.standard_normal(S.shape)
    grads = torch.autograd.grad([o, S], list(ts.values()), [torch.tensor(go), torch.tensor(gs)])
    d = ref.linear_attention_vjp(a["q"], a["k"], a["v"], go, g=a["g"], initial_state=a["s0"], grad_final_state=gs)
    for name, gr in zip(("dq", "dk", "dv", "dg", "dinitial_state"), grads, strict=True):
        np.testing.assert_allclose(d[name], gr.numpy(), atol=1e-12, err_msg=name)


def test_chunk_sizes_and_tiny_decay_never_overflow() -> None:
    a = _la_inputs(T=37)
    lam = np.array([0.0, 1e-20, 0.97])
    o, S = ref.linear_attention(a["q"], a["k"], a["v"], decay=lam, output_final_state=True)
    for C in (1, 5, 16, 37, 64):
        oc, Sc = ref.linear_attention_chunked(a["q"], a["k"], a["v"], chunk_size=C, decay=lam, output_final_state=True)
        assert np.all(np.isfinite(oc))
        np.testing.assert_allclose(oc, o, atol=1e-12)
        np.testing.assert_allclose(Sc, S, atol=1e-12)


def test_alibi_slopes_pinned() -> None:
    np.testing.assert_allclose(ref.alibi_slopes(8), [2.0**-i for i in range(1, 9)], rtol=0)
    with pytest.raises(InputError, match="alibi_slopes: argument 'H'"):
        ref.alibi_slopes(6)


@pytest.mark.parametrize("kw, match", [
    ({"g": np.ones((2, 7, 3))}, "argument 'g' must be log-decays <= 0"),
    ({"g": np.zeros((2, 7))}, "argument 'g' must be a tensor of rank 3"),
    ({"decay": np.array([0.5, 1.5, 0.1])}, "argument 'decay' must be per-head decays in"),
    ({"decay": np.ones(3), "causal": False}, "argument 'causal' must be True when g or decay"),
    ({"normalize": True, "output_final_state": True}, "argument 'output_final_state' must be False"),
    ({"feature_map": "softplus"}, "argument 'feature_map' must be one of"),
    ({"initial_state": np.zeros((2, 3, 4, 4))}, "argument 'initial_state' must be of shape"),
])
def test_bad_inputs(kw: dict, match: str) -> None:
    a = _la_inputs()
    with pytest.raises(InputError, match=match):
        ref.linear_attention(a["q"], a["k"], a["v"], **kw)


def test_bad_chunk_size_and_shapes() -> None:
    a = _la_inputs()
    with pytest.raises(InputError, match="argument 'chunk_size' must be an int >= 1"):
        ref.linear_attention_chunked(a["q"], a["k"], a["v"], chunk_size=0)
    with pytest.raises(InputError, match="argument 'k' must be of shape"):
        ref.linear_attention(a["q"], a["k"][:, :3], a["v"])
    with pytest.raises(InputError, match="argument 'block_size'"):
        ref.vq_attention_blocks(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)),
                                np.zeros((1, 3, 2)), block_size=0)
    with pytest.raises(InputError, match="argument 'codebook' must be of shape"):
        ref.vq_quantize(np.zeros((1, 2, 2, 2)), np.zeros((3, 3, 2)))


def test_vq_pinned_quantisation_and_ties() -> None:
    cb = np.array([[[1.0, 0.0], [-1.0, 0.0], [0.0, 3.0]]])
    k = np.array([[[[0.9, 0.1], [0.0, 0.0], [-2.0, 0.0], [0.0, 2.0]]]])
    z, k_hat = ref.vq_quantize(k, cb)
    np.testing.assert_array_equal(z, [[[0, 0, 1, 2]]])  # key (0, 0) ties codes 0 and 1 -> first index
    np.testing.assert_array_equal(k_hat[0, 0], cb[0, [0, 0, 1, 2]])


def test_vq_straight_through_forward_bitwise_and_identity_jacobian() -> None:
    k = torch.randn(1, 2, 5, 4, dtype=torch.float32, requires_grad=True)
    cb = torch.randn(2, 3, 4, dtype=torch.float32)
    z, k_hat = naive_vq.vq_quantize(k, cb)
    want = cb[torch.arange(2)[None, :, None], z]
    assert torch.equal(k_hat, want)  # forward value is c_z bitwise (sg(c_z) + (k - sg(k)), k - k = 0)
    jac = torch.autograd.functional.jacobian(lambda x: naive_vq.vq_quantize(x, cb)[1], k)
    eye = torch.eye(k.numel()).reshape(*k.shape, *k.shape)
    assert torch.equal(jac, eye)
    zf, _ = ref.vq_quantize(k.detach(), cb)
    np.testing.assert_array_equal(zf, z.numpy())


def test_vq_linear_form_survives_huge_unused_logits() -> None:
    rng = np.random.default_rng(3)
    q, v = rng.standard_normal((1, 1, 6, 2)), rng.standard_normal((1, 1, 6, 3))
    cb = np.array([[[1.0, 0.0], [0.0, 1.0], [1e4, 1e4]]])  # code 2 is never nearest; its logit ~ 1e4
    k = cb[0, rng.integers(0, 2, 6)][None, None] + 0.01
    dense = ref.vq_attention(q, k, v, cb)
    np.testing.assert_allclose(ref.vq_attention_linear(q, k, v, cb), dense, atol=1e-14)
    np.testing.assert_allclose(ref.vq_attention_linear(q, k, v, cb, causal=True),
                               ref.vq_attention(q, k, v, cb, causal=True), atol=1e-14)


def test_check_accepts_oracle_and_rejects_mutants_in_float32() -> None:
    from veriformer.properties.linear_attention.implementations import oracle_linear_attention

    r = veriformer.check(oracle_linear_attention, op="linear_attention", features={"gate", "initial_state"},
                         max_examples=6)
    assert r.passed, r.summary()

    def wrong_order(q, k, v, *, scale, output_final_state, g=None):  # type: ignore[no-untyped-def]
        return naive.linear_attention(q.flip(1), k.flip(1), v.flip(1), scale=scale,
                                      output_final_state=output_final_state)

    assert not veriformer.check(wrong_order, op="linear_attention", max_examples=6).passed


def test_performer_identity_by_mpmath_quadrature_1d() -> None:
    """E_w[exp(w q - q^2/2) exp(w k - k^2/2)] = exp(q k) for w ~ N(0, 1), by quadrature at 30 digits."""
    import mpmath

    with mpmath.workdps(30):
        for qf, kf in ((0.3, -0.7), (1.2, 0.4), (-2.0, -1.5)):
            q, k = mpmath.mpf(qf), mpmath.mpf(kf)

            def f(w: mpmath.mpf, q: mpmath.mpf = q, k: mpmath.mpf = k) -> mpmath.mpf:
                return mpmath.npdf(w) * mpmath.exp(w * q - q * q / 2) * mpmath.exp(w * k - k * k / 2)

            val = mpmath.quad(f, [-mpmath.inf, 0, mpmath.inf])
            assert abs(val / mpmath.exp(q * k) - 1) < 1e-25


def test_performer_variance_pinned_and_features_shapes() -> None:
    q, k = np.array([0.3, 0.1]), np.array([0.2, -0.4])
    s2, qk = np.sum((q + k) ** 2), q @ k
    np.testing.assert_allclose(ref.performer_variance(q, k, 4), np.exp(2 * qk) * (np.exp(s2) - 1) / 4, rtol=1e-15)
    d2 = np.sum((q - k) ** 2)
    np.testing.assert_allclose(ref.performer_variance(q, k, 3, kind="trig"),
                               np.exp(q @ q + k @ k) * (1 - np.exp(-d2)) ** 2 / 6, rtol=1e-14)
    w = ref.gaussian_projection(5, 2, seed=0, orthogonal=True)
    assert ref.performer_features(q, w).shape == (5,)
    assert ref.performer_features(q, w, kind="trig").shape == (10,)
    w4 = ref.gaussian_projection(4, 4, seed=1, orthogonal=True)
    gram = w4 @ w4.T
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=1e-13)  # rows orthogonal
    with pytest.raises(InputError, match="performer_features: argument 'kind'"):
        ref.performer_features(q, w, kind="cos")


def test_orf_mse_figure_d16() -> None:
    """Spec figure (d = m = 16): ORF MSE below i.i.d. MSE; also the i.i.d. MSE matches the variance formula."""
    rng = np.random.default_rng(5)
    u = rng.standard_normal(16)
    s = u / np.linalg.norm(u)  # ||q + k||^2 = 1
    w_ = rng.standard_normal(16) * 0.4
    q, k = (s + w_) / 2, (s - w_) / 2
    R, target = 4000, np.exp(q @ k)
    mse = {}
    for orth in (False, True):
        w = ref.gaussian_projection(R * 16, 16, seed=int(orth), orthogonal=orth)
        est = (ref.performer_features(q, w) * ref.performer_features(k, w) * R).reshape(R, 16).sum(-1)
        mse[orth] = float(np.mean((est - target) ** 2))
    theory = float(ref.performer_variance(q, k, 16))
    assert mse[True] < mse[False]
    assert abs(mse[False] / theory - 1) < 0.15


def test_flash_edge_cases() -> None:
    rng = np.random.default_rng(2)
    n, s = 6, 3
    qq, kq, ql, kl = (rng.standard_normal((1, n, s)) for _ in range(4))
    v = rng.standard_normal((1, n, 2))
    # c = n, causal: one chunk, no linear part -> causal relu^2 attention divided by n s
    o = ref.flash_attention_chunked(qq, kq, ql, kl, v, chunk=n, causal=True)
    np.testing.assert_allclose(o, ref.relu2_attention(qq, kq, v, causal=True), atol=1e-14)
    # c = 1, causal: the quadratic part is the diagonal only; chunk 0 has an empty linear prefix
    o1 = ref.flash_attention_direct(qq, kq, ql, kl, v, chunk=1, causal=True)
    diag = np.maximum(np.sum(qq * kq, -1, keepdims=True), 0) ** 2 / s * v
    np.testing.assert_allclose(o1[:, 0], diag[:, 0], atol=1e-14)
    np.testing.assert_allclose(ref.flash_default_normaliser(7, 3, True), [1.0, 3.0, 6.0])
    with pytest.raises(InputError, match="argument 'lin_normaliser'"):
        ref.flash_attention_direct(qq, kq, ql, kl, v, chunk=2, lin_normaliser=np.ones(2))


def test_check_accepts_a_float32_state_for_half_inputs_and_nothing_wider() -> None:
    """fla and mamba return recurrent states in float32: op outputs listed in ``wide_outputs`` may come back
    in float32 for half inputs (judged as returned); any other dtype is still an error."""

    def fp32_state(q, k, v, **kw):
        o, S = naive.linear_attention(q, k, v, **kw)
        return o, (None if S is None else S.float())

    r = veriformer.check(fp32_state, op="linear_attention", dtypes=("bfloat16", "float16"),
                         features={"gate", "initial_state"}, max_examples=6)
    assert r.passed, r.summary()

    def fp64_state(q, k, v, **kw):
        o, S = naive.linear_attention(q, k, v, **kw)
        return o, (None if S is None else S.double())

    r = veriformer.check(fp64_state, op="linear_attention", dtypes=("bfloat16",), max_examples=12, shrink=False)
    assert not r.passed and "or torch.float32" in r.failure.message


def test_grad_check_covers_gates_and_initial_state() -> None:
    """Optional differentiable inputs (g, initial_state) are checked in the cases that contain them: a kernel
    that stops the gradient of g, or gets it wrong by a factor, fails."""

    def detached_gate(q, k, v, *, g=None, **kw):
        return naive.linear_attention(q, k, v, g=None if g is None else g.detach(), **kw)

    r = veriformer.check(detached_gate, op="linear_attention", features={"gate"}, grad=True, max_examples=12,
                         shrink=False)
    assert not r.passed and "'g'" in r.failure.message

    class HalfGateGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, g):
            return g.clone()

        @staticmethod
        def backward(ctx, dg):
            return 0.5 * dg

    def wrong_dg(q, k, v, *, g=None, **kw):
        return naive.linear_attention(q, k, v, g=None if g is None else HalfGateGrad.apply(g), **kw)

    r = veriformer.check(wrong_dg, op="linear_attention", features={"gate"}, grad=True, max_examples=12,
                         shrink=False)
    assert not r.passed and "dg" in r.failure.message

    def detached_state(q, k, v, *, initial_state=None, **kw):
        s0 = None if initial_state is None else initial_state.detach()
        return naive.linear_attention(q, k, v, initial_state=s0, **kw)

    r = veriformer.check(detached_state, op="linear_attention", features={"initial_state"}, grad=True,
                         max_examples=30, shrink=False)
    assert any(c.case.initial_state for c in r.cases)
    assert not r.passed and "'initial_state'" in r.failure.message


def test_vq_local_bias_rejects_bad_arguments() -> None:
    """The local-bias block form names the argument: a bias reaching the compressed cache (W > l), a bias of
    the wrong shape, an unknown stop-gradient setting."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, 6, 4)) for _ in range(3))
    cb = rng.standard_normal((2, 3, 4))
    with pytest.raises(InputError, match="bias"):
        ref.vq_local_bias_blocks(q, k, v, cb, bias=np.ones(4), block_size=2)
    with pytest.raises(InputError, match="bias"):
        ref.vq_local_bias_attention(q, k, v, cb, bias=np.ones((3, 2)))
    with pytest.raises(InputError, match="stop_gradient"):
        ref.vq_local_bias_vjp(q, k, v, cb, v, bias=np.ones(2), block_size=2, stop_gradient="all")
    # W = l is the largest exact support: block form == dense
    b = rng.standard_normal(3)
    np.testing.assert_allclose(ref.vq_local_bias_blocks(q, k, v, cb, bias=b, block_size=2),
                               ref.vq_local_bias_attention(q, k, v, cb, bias=b), rtol=0, atol=1e-13)
