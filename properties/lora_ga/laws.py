"""Laws of LoRA-GA (Wang, Yu, Li 2024, arXiv:2407.05000; Su kexue.fm/archives/10226; Outsider565/LoRA-GA)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement, Bound
from veriformer.properties.lora_ga.strategies import LoraGACase, lora_ga_cases
from veriformer.registry import law

U = 2.0**-53
SRC = "Wang, Yu, Li 2024 (LoRA-GA, arXiv:2407.05000); Su kexue.fm/archives/10226"
REPO = "Outsider565/LoRA-GA peft/src/peft/tuners/lora/layer.py (lora_ga_init)"


def _c(case: LoraGACase, s: float) -> float:
    """B0 B0^T G + G A0^T A0 = c G_2r: c = (out^(1/4)/sqrt(gamma))^2, 1/s^2 or 1."""
    return {"stable": np.sqrt(case.out) / case.stable_gamma, "gd": 1.0 / s**2, "unit": 1.0}[case.scale]


def _amax(*arrs: Any) -> float:
    return max(float(np.abs(np.asarray(a)).max()) for a in arrs)


@law("lora_ga.init_output_unchanged", family="lora_ga", source=SRC + "; " + REPO)
def init_output_unchanged(ref: Any, case: LoraGACase = lora_ga_cases()) -> list[Agreement]:
    """W_res + s B0 A0 = W0 and the unmerged layer x W_res^T + s (x A0^T) B0^T equals x W0^T at initialisation
    (W_res = W0 - s B0 A0 is formed in float64; casting W_res to bf16 breaks this, see merge_roundtrip)."""
    a = case.arrays()
    A, B, W_res, s = ref.lora_ga_init(a["w0"], a["g"], case.r, **case.kwargs())
    off = s * _amax(B) * _amax(A) * case.r
    sc = _amax(a["w0"]) + off
    return [Agreement(ref.lora_merge(W_res, A, B, s), a["w0"], "W_res + s B0 A0 == W0", terms=case.r + 4, scale=sc),
            Agreement(ref.lora_forward(a["x"], W_res, A, B, s), a["x"] @ a["w0"].T, "y(init) == x W0^T",
                      terms=2 * case.inn + 2 * case.r + 8, scale=sc * _amax(a["x"]) * case.inn)]


@law("lora_ga.gradient_formulas", family="lora_ga", source=SRC + " (chain rule)")
def gradient_formulas(ref: Any, case: LoraGACase = lora_ga_cases(),
                      dseed: int = st.integers(0, 2**32 - 1)) -> list[Agreement]:
    """dL/dA = s B^T G and dL/dB = s G A^T with G = dL/dW at W_eff, checked against central differences of the
    quadratic loss L(W) = 0.5 ||W X - Y||^2 along random directions (exact for a quadratic: the difference
    quotient with h = 1 is the directional derivative up to rounding)."""
    a = case.arrays()
    A, B, W_res, s = ref.lora_ga_init(a["w0"], a["g"], case.r, **case.kwargs())
    X, Y = a["X"], a["Y"]

    def loss(AA: np.ndarray, BB: np.ndarray) -> float:
        R = (W_res + s * BB @ AA) @ X - Y
        return 0.5 * float(np.sum(R * R))

    W = W_res + s * B @ A
    G = (W @ X - Y) @ X.T
    dA, dB = ref.lora_grads(G, A, B, s)
    rng = np.random.default_rng(dseed)
    DA = rng.standard_normal(A.shape) * (_amax(A) or 1.0)
    DB = rng.standard_normal(B.shape) * (_amax(B) or 1.0)
    fdA = (loss(A + DA, B) - loss(A - DA, B)) / 2
    fdB = (loss(A, B + DB) - loss(A, B - DB)) / 2
    big = max(loss(A + DA, B), loss(A, B + DB), loss(A, B), 1e-300)
    t = 8 * (case.inn + case.out + case.r + 5)
    return [Agreement(np.sum(dA * DA), fdA, "<dL/dA, D> == central difference", terms=t, scale=big),
            Agreement(np.sum(dB * DB), fdB, "<dL/dB, D> == central difference", terms=t, scale=big)]


@law("lora_ga.one_step_expansion", family="lora_ga", source=SRC + " (one SGD step)")
def one_step_expansion(ref: Any, case: LoraGACase = lora_ga_cases(),
                       lr: float = st.sampled_from((1e-3, 0.1, 1.0))) -> Agreement:
    """After one SGD step at initialisation (W_eff = W0): W_eff1 - W0 = -eta s^2 (B0 B0^T G + G A0^T A0)
    + eta^2 s^3 G A0^T B0^T G, exactly (the step is bilinear in the two updates)."""
    a = case.arrays()
    G = a["g"]
    A, B, W_res, s = ref.lora_ga_init(a["w0"], G, case.r, **case.kwargs())
    _, _, W1 = ref.lora_sgd_step(W_res, A, B, G, lr, s)
    rhs = -lr * s**2 * (B @ B.T @ G + G @ A.T @ A) + lr**2 * s**3 * (G @ A.T @ B.T @ G)
    g, ab = _amax(G), _amax(A, B) + 1e-300
    n = case.out + case.inn + case.r
    sc = _amax(a["w0"]) + s * ab**2 * case.r + lr * s**2 * ab**2 * g * n + lr**2 * s**3 * ab**2 * g**2 * n * n
    return Agreement(W1 - a["w0"], rhs, "W1 - W0 == expansion", terms=4 * n + 16, scale=sc)


@law("lora_ga.projector_identity", family="lora_ga", source=SRC + "; " + REPO)
def projector_identity(ref: Any, case: LoraGACase = lora_ga_cases()) -> list[Agreement]:
    """B0 B0^T G + G A0^T A0 = c G_2r for every direction (ArB2r, A2rBr, ArBr), with c = sqrt(out)/gamma (stable),
    1/s^2 (gd) or 1 (unit): with gd the first-order step -eta s^2 (...) is exactly -eta G_2r.  With tied
    sigma_{2r-1} = sigma_{2r} G_2r is not unique: only ||G - P/c||^2 = sum_{i>=2r} sigma_i^2 is compared."""
    a = case.arrays()
    G = a["g"]
    A, B, _, s = ref.lora_ga_init(a["w0"], G, case.r, **case.kwargs())
    c = _c(case, s)
    P = ref.lora_ga_projector(G, A, B) / c
    sig = np.linalg.svd(G, compute_uv=False)
    t = 8 * (case.out + case.inn) + 16
    tail = Agreement(np.sum((G - P) ** 2), np.sum(sig[2 * case.r:] ** 2), "||G - P/c||^2 == sum_{i>=2r} sigma^2",
                     terms=t * case.out * case.inn, scale=float(np.sum(G**2)))
    if case.grad == "tied":
        return [tail]
    return [Agreement(P, ref.truncated_svd(G, 2 * case.r), "P / c == G_2r", terms=t, scale=_amax(G)), tail]


@law("lora_ga.eckart_young", family="lora_ga", source="Eckart and Young 1936; " + SRC)
def eckart_young(ref: Any, case: LoraGACase = lora_ga_cases(), k: int = st.integers(0, 32)) -> list[Any]:
    """||G - G_k||_F^2 = sum_{i>=k} sigma_i^2; G_k has rank <= k; and a random rank-k matrix built on random
    orthonormal factors (the random-init LoRA-GA objective) is never closer to G than G_k."""
    a = case.arrays()
    G = a["g"]
    k = min(k, min(G.shape))
    Gk = ref.truncated_svd(G, k)
    sig = np.linalg.svd(G, compute_uv=False)
    rng = np.random.default_rng(case.seed + 7)
    Qu, _ = np.linalg.qr(rng.standard_normal((case.out, max(k, 1))))
    Qv, _ = np.linalg.qr(rng.standard_normal((case.inn, max(k, 1))))
    rand = Qu[:, :k] @ (Qu[:, :k].T @ G @ Qv[:, :k]) @ Qv[:, :k].T
    nG = float(np.sum(G**2))
    t = 8 * (case.out + case.inn) * case.out * case.inn
    sk = np.linalg.svd(Gk, compute_uv=False)
    return [Agreement(np.sum((G - Gk) ** 2), np.sum(sig[k:] ** 2), "||G - G_k||^2 == sum_{i>=k} sigma^2",
                      terms=t, scale=nG),
            Bound(sk[k:], 0.0, "rank(G_k) <= k", slack=64 * U * float(sig[0] if sig.size else 0) * max(G.shape)),
            Bound(np.sum((G - Gk) ** 2), np.sum((G - rand) ** 2), "G_k beats a random rank-k projection",
                  slack=t * U * nG)]


@law("lora_ga.merge_roundtrip", family="lora_ga", source="peft tuners/lora/layer.py (merge / unmerge); " + SRC)
def merge_roundtrip(ref: Any, case: LoraGACase = lora_ga_cases(),
                    dtype: str = st.sampled_from(("float64", "float32", "bfloat16"))) -> list[Agreement]:
    """unmerge(merge(W_res)) returns W_res: to rounding in float64; in float32 / bf16 (merge and unmerge each
    rounded to the format, as a model stored in that dtype does) within 2 u_fmt (|W_res| + 2 |s B A|) per element
    (two roundings of a sum, each <= u_fmt times its magnitude).  The merged forward equals the unmerged one."""
    a = case.arrays()
    A, B, W_res, s = ref.lora_ga_init(a["w0"], a["g"], case.r, **case.kwargs())
    delta = np.abs(s * (B @ A))
    merged = ref.lora_merge(W_res, A, B, s)
    claims = [Agreement(a["x"] @ merged.T, ref.lora_forward(a["x"], W_res, A, B, s), "merged forward == unmerged",
                        terms=2 * case.inn + 2 * case.r + 8,
                        scale=(_amax(W_res) + float(delta.max())) * _amax(a["x"]) * case.inn)]
    if dtype == "float64":
        back = ref.lora_unmerge(merged, A, B, s)
        claims.append(Agreement(back, W_res, "unmerge(merge(W)) == W (float64)", terms=case.r + 4,
                                scale=_amax(W_res) + float(delta.max())))
        return claims
    u_fmt = {"float32": 2.0**-24, "bfloat16": 2.0**-8}[dtype]

    def rnd(v: np.ndarray) -> np.ndarray:
        if dtype == "float32":
            return v.astype(np.float32).astype(np.float64)
        b = v.astype(np.float32).view(np.uint32).astype(np.uint64)  # round to nearest even to 8 significant bits
        b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
        return b.astype(np.uint32).view(np.float32).astype(np.float64)

    Wl = rnd(W_res)
    back = rnd(ref.lora_unmerge(rnd(ref.lora_merge(Wl, A, B, s)), A, B, s))
    bound = 2 * u_fmt * (np.abs(Wl) + 2 * delta) + 8 * U * (np.abs(Wl) + delta)
    claims.append(Bound(np.abs(back - Wl) - bound, 0.0, f"|unmerge(merge(W)) - W| <= 2 u (|W| + 2|sBA|) ({dtype})"))
    return claims


@law("lora_ga.repo_defaults", family="lora_ga", kind="defined", source=REPO + "; Su kexue.fm/archives/10226")
def repo_defaults(ref: Any, out: int = st.sampled_from((5, 8, 16)),
                  inn: int = st.sampled_from((5, 6, 12))) -> list[Any]:
    """Worked examples: (1) G = diag(5,4,3,2,1), r = 1, unit scale: B0 B0^T G + G A0^T A0 = diag(5,4,0,0,0) and
    the residual^2 = 3^2 + 2^2 + 1^2 = 14 (spec section 8); (2) the defaults (direction ArB2r, scale stable,
    gamma 16): A0 = out^(1/4)/4 V^T[:r] and B0 = out^(1/4)/4 U[:, r:2r] up to sign, so |A0 rows| = |B0 columns|
    = out^(1/4)/4 and the projector is sqrt(out)/16 G_2r; A0 spans the top-r right singular vectors and B0 the
    left ones r..2r-1."""
    G = np.diag([5.0, 4.0, 3.0, 2.0, 1.0])
    A, B, _, _s = ref.lora_ga_init(np.zeros((5, 5)), G, 1, scale="unit")
    P = ref.lora_ga_projector(G, A, B)
    claims: list[Any] = [Agreement(P, np.diag([5.0, 4.0, 0, 0, 0]), "toy: projector == diag(5,4,0,0,0)", terms=8,
                                   scale=5.0),
                         Agreement(np.sum((G - P) ** 2), 14.0, "toy: residual^2 == 14", terms=16, scale=14.0)]
    rng = np.random.default_rng(out * 100 + inn)
    Uq, _ = np.linalg.qr(rng.standard_normal((out, out)))
    Vq, _ = np.linalg.qr(rng.standard_normal((inn, inn)))
    k = min(out, inn)
    sig = np.arange(k, 0, -1, dtype=float) * 1.5
    G = (Uq[:, :k] * sig) @ Vq[:, :k].T
    r = k // 2
    A, B, _, _s = ref.lora_ga_init(rng.standard_normal((out, inn)), G, r)
    f = out**0.25 / 4.0
    claims += [Agreement(np.linalg.norm(A, axis=1), np.full(r, f), "|A0 rows| == out^(1/4)/4", terms=4 * inn, scale=f),
               Agreement(np.linalg.norm(B, axis=0), np.full(r, f), "|B0 cols| == out^(1/4)/4", terms=4 * out, scale=f),
               Agreement(np.abs(A @ Vq[:, :r]), np.eye(r) * f, "A0 = f V^T[:r] (up to sign)", terms=4 * inn, scale=f),
               Agreement(np.abs(Uq[:, r:2 * r].T @ B), np.eye(r) * f, "B0 = f U[:, r:2r] (up to sign)",
                         terms=4 * out, scale=f),
               Agreement(ref.lora_ga_projector(G, A, B), np.sqrt(out) / 16 * ref.truncated_svd(G, 2 * r),
                         "projector == sqrt(out)/16 G_2r", terms=16 * (out + inn), scale=float(sig[0]))]
    return claims


