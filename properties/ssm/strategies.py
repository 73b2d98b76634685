"""Hypothesis strategies for the state-space family: small printable cases with a seed and ``.arrays()``.

* :class:`SystemCase` — an LTI system (A [N, N], B [N], C [N]) of kind ``"legs"``, ``"legt"`` (S4 normalisation,
  w = 2), ``"stable"`` (random, spectrum in the open left half-plane) or ``"singular"`` (a zero column), a step
  ``dt`` and a length ``L`` (odd, L < N and L = 1 included).
* :class:`ConvCase` — op ``ssm_convolution``: u [B, C, L], kernel [C, L] (decaying, oscillating or flat kernels).
* :class:`S4DCase` — op ``s4d_kernel``: log_dt [H], A/B/C [H, N2] complex stored as real and imaginary parts.
* :class:`ScanCase` — op ``selective_scan``; :class:`SSDCase` — op ``ssd_scan``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = [
    "ConvCase",
    "S4DCase",
    "SSDCase",
    "ScanCase",
    "SystemCase",
    "conv_cases",
    "s4d_cases",
    "scan_cases",
    "ssd_cases",
    "system_cases",
]

DTS = (1e-3, 0.01, 0.1, 0.37, 1.0)
LENGTHS = (1, 2, 3, 7, 8, 16, 33, 64)


@dataclass(frozen=True)
class SystemCase:
    """An LTI system x' = A x + B u, y = C x of size N, with step dt and kernel length L."""

    N: int
    kind: str
    dt: float
    L: int
    seed: int

    def arrays(self) -> dict[str, np.ndarray]:
        from veriformer import reference as ref

        rng = np.random.default_rng(self.seed)
        N = self.N
        if self.kind == "legs":
            A, B = ref.hippo_legs(N)
        elif self.kind == "legt":
            A, B = ref.hippo_legt(N, 2.0)
        else:
            M = rng.standard_normal((N, N)) / np.sqrt(N)
            # shift by at least 1.5 and keep every eigenvalue's real part <= -0.5: "stable" means stable (a plain
            # -1.5 shift left a few draws unstable, e.g. N=5 seed 235, whose Ad^L then grows like 1.15^L)
            A = M - max(1.5, float(np.linalg.eigvals(M).real.max()) + 0.5) * np.eye(N)
            B = rng.standard_normal(N)
            if self.kind == "singular":
                A[:, 0] = 0.0
        return {"A": A, "B": B, "C": rng.standard_normal(N), "u": rng.standard_normal(self.L)}


@st.composite
def system_cases(draw: Any, kinds: tuple[str, ...] = ("legs", "legt", "stable", "singular"), max_N: int = 8,
                 dts: tuple[float, ...] = DTS, lengths: tuple[int, ...] = LENGTHS) -> SystemCase:
    """LTI systems with N in [1, max_N] (N = 1 and L < N reachable)."""
    return SystemCase(N=draw(st.integers(1, max_N)), kind=draw(st.sampled_from(kinds)),
                      dt=draw(st.sampled_from(dts)), L=draw(st.sampled_from(lengths)),
                      seed=draw(st.integers(0, 2**32 - 1)))


@dataclass(frozen=True)
class ConvCase:
    """Op ``ssm_convolution``: u [B, C, L] ~ N(0, amp^2); kernel [C, L] of shape ``kernel``:
    ``"decay"`` (S4-like: damped cosines), ``"flat"`` (random, no decay) or ``"impulse"`` (K = e_0: y = u)."""

    B: int
    C: int
    L: int
    kernel: str
    amp: float
    seed: int

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        u = rng.standard_normal((self.B, self.C, self.L)) * self.amp
        t = np.arange(self.L)
        if self.kernel == "decay":
            rate = rng.uniform(0.001, 0.3, (self.C, 1))
            freq = rng.uniform(0, np.pi, (self.C, 1))
            K = np.exp(-rate * t) * np.cos(freq * t) * rng.standard_normal((self.C, 1))
        elif self.kernel == "flat":
            K = rng.standard_normal((self.C, self.L)) / np.sqrt(self.L)
        else:
            K = np.zeros((self.C, self.L))
            K[:, 0] = 1.0
        return {"u": u, "kernel": K}


CONV_LENGTHS = (1, 2, 3, 7, 16, 31, 64, 100, 127, 256, 300)


@st.composite
def conv_cases(draw: Any, max_L: int = 300) -> ConvCase:
    """Causal long-convolution cases (L = 1, odd and prime L included; a fixed menu of lengths so FFT plans are
    reused while shrinking)."""
    return ConvCase(B=draw(st.integers(1, 2)), C=draw(st.integers(1, 3)),
                    L=draw(st.sampled_from(tuple(n for n in CONV_LENGTHS if n <= max_L))),
                    kernel=draw(st.sampled_from(("decay", "flat", "impulse"))),
                    amp=draw(st.sampled_from((1.0, 1e-3, 30.0))), seed=draw(st.integers(0, 2**32 - 1)))


@dataclass(frozen=True)
class S4DCase:
    """Op ``s4d_kernel``: H channels with N2 kept eigenvalues; ``init`` ``"lin"`` (S4D-Lin: -1/2 + i pi n) or
    ``"random"`` (Re in [-2, -0.05], Im in [-10, 10]); log_dt in [log 1e-3, log 1e-1]; B = 1 (absorbed) or
    random; C complex normal."""

    H: int
    N2: int
    L: int
    init: str
    random_B: bool
    seed: int

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        H, N2 = self.H, self.N2
        if self.init == "lin":
            A = np.broadcast_to(-0.5 + 1j * np.pi * np.arange(N2), (H, N2))
        else:
            A = -rng.uniform(0.05, 2.0, (H, N2)) + 1j * rng.uniform(-10, 10, (H, N2))
        B = (rng.standard_normal((H, N2)) + 1j * rng.standard_normal((H, N2))) if self.random_B else \
            np.ones((H, N2), dtype=complex)
        C = (rng.standard_normal((H, N2)) + 1j * rng.standard_normal((H, N2))) * np.sqrt(0.5)
        log_dt = rng.uniform(np.log(1e-3), np.log(1e-1), H)
        return {"log_dt": log_dt, "A_re": A.real.copy(), "A_im": A.imag.copy(), "B_re": B.real.copy(),
                "B_im": B.imag.copy(), "C_re": C.real.copy(), "C_im": C.imag.copy()}


@st.composite
def s4d_cases(draw: Any, max_L: int = 256) -> S4DCase:
    """S4D kernel cases (N2 = 1 and L = 1 included)."""
    return S4DCase(H=draw(st.integers(1, 3)), N2=draw(st.sampled_from((1, 2, 4, 16, 32))),
                   L=draw(st.one_of(st.sampled_from((1, 2, 7, 64)), st.integers(1, max_L))),
                   init=draw(st.sampled_from(("lin", "random"))), random_B=draw(st.booleans()),
                   seed=draw(st.integers(0, 2**32 - 1)))


SCAN_FEATURES = frozenset({"D", "z", "delta_bias", "delta_softplus", "return_last_state", "variable_BC",
                           "grouped_BC", "complex_A"})


@dataclass(frozen=True)
class ScanCase:
    """Op ``selective_scan`` (mamba ``selective_scan_ref`` layouts): u, delta [b, d, L]; A [d, n] real (negative);
    B, C ``"constant"`` [d, n], ``"variable"`` [b, n, L] or ``"grouped"`` [b, g, n, L] (d divisible by g);
    optional D [d], z [b, d, L], delta_bias [d], softplus, last state.

    ``complex_A``: A = A_re + i A_im (A_re < 0, the S4D-Lin-like A_im in [-4, 4]) stored as the real arrays
    "A_re", "A_im" (so check() rounds each part to the test dtype); constant B/C complex as "B_re", "B_im", ...;
    variable/grouped B/C real [..., n, 2L] with interleaved (re, im) pairs, as mamba takes them.  No last state
    (it is complex: op outputs are real)."""

    b: int
    d: int
    n: int
    L: int
    bc: str = "variable"
    groups: int = 1
    use_D: bool = False
    use_z: bool = False
    use_bias: bool = False
    softplus: bool = False
    last_state: bool = False
    seed: int = 0
    complex_A: bool = False

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        b, d, n, L = self.b, self.d, self.n, self.L
        out: dict[str, np.ndarray] = {
            "u": rng.standard_normal((b, d, L)),
            "delta": (rng.standard_normal((b, d, L)) - 1.0) if self.softplus else rng.uniform(0.001, 0.2, (b, d, L)),
            "A": -np.exp(rng.uniform(np.log(0.5), np.log(16.0), (d, n))),
        }
        shape = {"constant": (d, n), "variable": (b, n, L), "grouped": (b, self.groups, n, L)}[self.bc]
        out["B"], out["C"] = rng.standard_normal(shape), rng.standard_normal(shape)
        if self.complex_A:
            out["A_re"], out["A_im"] = out.pop("A"), rng.uniform(-4.0, 4.0, (d, n))
            for name in ("B", "C"):
                if self.bc == "constant":
                    out[name + "_re"], out[name + "_im"] = out.pop(name), rng.standard_normal(shape)
                else:  # interleaved (re, im) along the last axis: [..., n, 2L]
                    out[name] = np.stack([out[name], rng.standard_normal(shape)], axis=-1).reshape(*shape[:-1], 2 * L)
        if self.use_D:
            out["D"] = rng.standard_normal(d)
        if self.use_z:
            out["z"] = rng.standard_normal((b, d, L))
        if self.use_bias:
            out["delta_bias"] = rng.uniform(-0.5, 0.5, d) if self.softplus else rng.uniform(0.0, 0.05, d)
        return out


@st.composite
def scan_cases(draw: Any, features: frozenset[str] = SCAN_FEATURES - {"complex_A"}, max_L: int = 64) -> ScanCase:
    """Selective-scan cases using only ``features`` (complex A only when asked for: the laws' real-A default)."""
    d = draw(st.sampled_from((1, 2, 4)))
    bc = "constant"
    if "variable_BC" in features:
        bc = draw(st.sampled_from(("variable", "grouped") if "grouped_BC" in features else ("variable",)))
    groups = draw(st.sampled_from([g for g in (1, 2) if d % g == 0])) if bc == "grouped" else 1

    def flag(name: str) -> bool:
        return name in features and draw(st.booleans())

    cplx = flag("complex_A")
    return ScanCase(b=draw(st.integers(1, 2)), d=d, n=draw(st.sampled_from((1, 4, 16))),
                    L=draw(st.one_of(st.sampled_from((1, 2, 31)), st.integers(1, max_L))), bc=bc, groups=groups,
                    use_D=flag("D"), use_z=flag("z"), use_bias=flag("delta_bias"), softplus=flag("delta_softplus"),
                    last_state=flag("return_last_state") and not cplx, seed=draw(st.integers(0, 2**32 - 1)),
                    complex_A=cplx)


@dataclass(frozen=True)
class SSDCase:
    """Op ``ssd_scan`` (mamba ``ssd_minimal_discrete`` layouts): X [b, l, h, p], A [b, l, h] (= dt * A_h <= 0,
    ``decay`` ``"mild"``, ``"zero"`` (a = 0 exactly) or ``"steep"`` (e^{segsum} underflows)), B, C [b, l, h, n],
    l = chunks * chunk_size; optional initial state [b, h, p, n]."""

    b: int
    h: int
    p: int
    n: int
    chunks: int
    chunk_size: int
    decay: str = "mild"
    initial: bool = False
    seed: int = 0

    @property
    def length(self) -> int:
        return self.chunks * self.chunk_size

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        b, h, p, n, t = self.b, self.h, self.p, self.n, self.length
        if self.decay == "zero":
            A = np.zeros((b, t, h))
        elif self.decay == "steep":
            A = -rng.uniform(5.0, 400.0, (b, t, h))
        else:
            A = -rng.uniform(0.0, 0.3, (b, t, h))
        out = {"X": rng.standard_normal((b, t, h, p)), "A": A, "B": rng.standard_normal((b, t, h, n)),
               "C": rng.standard_normal((b, t, h, n))}
        if self.initial:
            out["initial_states"] = rng.standard_normal((b, h, p, n))
        return out


@st.composite
def ssd_cases(draw: Any, max_chunks: int = 4, initial: bool = True) -> SSDCase:
    """SSD cases: chunk sizes {1, 4, 8, 16}, 1..max_chunks chunks (T = 1 reachable); an initial state only
    when ``initial``."""
    return SSDCase(b=draw(st.integers(1, 2)), h=draw(st.integers(1, 2)), p=draw(st.sampled_from((1, 3, 8))),
                   n=draw(st.sampled_from((1, 4, 16))), chunks=draw(st.integers(1, max_chunks)),
                   chunk_size=draw(st.sampled_from((1, 4, 8, 16))),
                   decay=draw(st.sampled_from(("mild", "mild", "zero", "steep"))),
                  initial=draw(st.booleans()) if initial else False,
                   seed=draw(st.integers(0, 2**32 - 1)))
