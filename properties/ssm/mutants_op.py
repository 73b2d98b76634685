"""Planted bugs in state-space kernels: torch callables that ``check(op=...)`` must reject."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from veriformer.fast.ssm import naive as naive_ssm
from veriformer.properties.ssm.strategies import ConvCase, ScanCase, SSDCase
from veriformer.properties.ssm.strategies_chunk_scan import MambaChunkCase
from veriformer.properties.wrong_answers import LONG, wrong_answer_mutants
from veriformer.registry import mutant

FAMILY = "ssm"
_SCAN_ALL = ("D", "z", "delta_bias", "delta_softplus", "return_last_state", "variable_BC", "grouped_BC")

# -- ssm_convolution ---------------------------------------------------------------------------------------------


@mutant("ssm.conv_kernel_fft_unpadded", family=FAMILY, op="ssm_convolution", caught_by=["op:ssm_convolution"])
def conv_circular(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """rfft with n = L (no zero padding): circular convolution, the tail wraps onto the first outputs."""
    L = u.shape[-1]
    y = torch.fft.irfft(torch.fft.rfft(kernel.float(), n=L) * torch.fft.rfft(u.float(), n=L), n=L)
    return y.to(u.dtype)


@mutant("ssm.conv_kernel_shifted", family=FAMILY, op="ssm_convolution", caught_by=["op:ssm_convolution"])
def conv_shifted(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Kernel applied one step late (y_k uses K_{j} u_{k-1-j}): an off-by-one delay."""
    y = naive_ssm.ssm_convolution(u, kernel)
    return torch.cat([torch.zeros_like(y[..., :1]), y[..., :-1]], dim=-1)


@mutant("ssm.conv_kernel_correlation", family=FAMILY, op="ssm_convolution", caught_by=["op:ssm_convolution"])
def conv_flipped(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Kernel flipped in time (cross-correlation with the reversed kernel, the F.conv1d habit)."""
    return naive_ssm.ssm_convolution(u, kernel.flip(-1))


# -- s4d_kernel --------------------------------------------------------------------------------------------------


@mutant("ssm.s4d_kernel_euler_B", family=FAMILY, op="s4d_kernel", caught_by=["op:s4d_kernel"])
def s4d_euler_b(log_dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, L: int) -> torch.Tensor:
    """Bd = dt B instead of the ZOH (e^{dt A} - 1)/A B (B discretised with the wrong scheme)."""
    dt = torch.exp(log_dt.to(A.real.dtype))
    dtA = A * dt[:, None]
    Bz = B * dtA / (torch.exp(dtA) - 1.0)  # so that (e^{dtA} - 1)/A * Bz = dt B
    return naive_ssm.s4d_kernel(log_dt, A, Bz, C, L)


@mutant("ssm.s4d_kernel_no_conjugate", family=FAMILY, op="s4d_kernel", caught_by=["op:s4d_kernel"])
def s4d_no_conj(log_dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, L: int) -> torch.Tensor:
    """Re sum without the factor 2 of the implied conjugate pairs."""
    return naive_ssm.s4d_kernel(log_dt, A, B, C, L) / 2


@mutant("ssm.s4d_kernel_powers_from_one", family=FAMILY, op="s4d_kernel", caught_by=["op:s4d_kernel"])
def s4d_from_one(log_dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, L: int) -> torch.Tensor:
    """Vandermonde powers l = 1..L instead of 0..L-1."""
    return naive_ssm.s4d_kernel(log_dt, A, B, C, L + 1)[:, 1:]


# -- selective_scan ----------------------------------------------------------------------------------------------


def _scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
          D: torch.Tensor | None = None, z: torch.Tensor | None = None, delta_bias: torch.Tensor | None = None,
          delta_softplus: bool = False, return_last_state: bool = False, *, zoh: bool = False,
          bias_late: bool = False) -> Any:
    """A float32 selective scan (real A) with switchable planted bugs."""
    d = delta.float()
    if delta_bias is not None and not bias_late:
        d = d + delta_bias.float()[:, None]
    if delta_softplus:
        d = F.softplus(d)
    if delta_bias is not None and bias_late:
        d = d + delta_bias.float()[:, None]
    Af = A.float()[None, :, None, :]
    dA = d[..., None] * Af  # [b, d, L, n]

    def per_step(M: torch.Tensor) -> torch.Tensor:
        M = M.float()
        if M.dim() == 2:
            return M[None, :, None, :]
        if M.dim() == 3:
            return M.transpose(1, 2)[:, None]
        return M.repeat_interleave(A.shape[0] // M.shape[1], dim=1).transpose(2, 3)

    Bd = (torch.exp(dA) - 1) / Af if zoh else d[..., None]
    bu = Bd * per_step(B) * u.float()[..., None]
    a = torch.exp(dA)
    x = torch.zeros_like(a[:, :, 0])
    ys = []
    for t in range(u.shape[-1]):
        x = a[:, :, t] * x + bu[:, :, t]
        ys.append((x * per_step(C)[:, :, min(t, per_step(C).shape[2] - 1)]).sum(-1))
    out = torch.stack(ys, dim=-1)
    if D is not None:
        out = out + u.float() * D.float()[:, None]
    if z is not None:
        out = out * F.silu(z.float())
    out = out.to(u.dtype)
    return (out, x.to(u.dtype)) if return_last_state else out


@mutant("ssm.scan_exact_zoh_B", family=FAMILY, op="selective_scan", caught_by=["op:selective_scan"], features=_SCAN_ALL)
def scan_zoh_b(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
               **kw: Any) -> Any:
    """Exact ZOH input map (e^{delta A} - 1)/A B instead of mamba's delta B (right for ZOH, wrong for mamba)."""
    return _scan(u, delta, A, B, C, **kw, zoh=True)


@mutant("ssm.scan_bias_after_softplus", family=FAMILY, op="selective_scan", caught_by=["op:selective_scan"],
        features=_SCAN_ALL)
def scan_bias_late(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   **kw: Any) -> Any:
    """delta = softplus(delta) + bias instead of softplus(delta + bias)."""
    return _scan(u, delta, A, B, C, **kw, bias_late=True)


@mutant("ssm.scan_gate_before_skip", family=FAMILY, op="selective_scan", caught_by=["op:selective_scan"],
        features=_SCAN_ALL)
def scan_gate_order(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                    D: torch.Tensor | None = None, z: torch.Tensor | None = None, **kw: Any) -> Any:
    """out = y * silu(z) + D u (the skip added after the gate instead of before)."""
    res = naive_ssm.selective_scan_ref(u, delta, A, B, C, None, z, **kw)
    if D is None:
        return res
    last = kw.get("return_last_state", False)
    out = res[0] if last else res
    out = (out.float() + u.float() * D.float()[:, None]).to(u.dtype)
    return (out, res[1]) if last else out


@mutant("ssm.scan_last_state_first_step", family=FAMILY, op="selective_scan", caught_by=["op:selective_scan"],
        features=_SCAN_ALL)
def scan_wrong_state(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                     **kw: Any) -> Any:
    """Returns the state after one fewer step (x_{L-2}; zeros for L = 1) as the last state."""
    if not kw.get("return_last_state"):
        return naive_ssm.selective_scan_ref(u, delta, A, B, C, **kw)
    out, _ = naive_ssm.selective_scan_ref(u, delta, A, B, C, **kw)
    L = u.shape[-1]
    if L == 1:
        return out, torch.zeros((u.shape[0], A.shape[0], A.shape[1]), dtype=u.dtype)
    cut = {k: (v[..., :-1] if isinstance(v, torch.Tensor) and k == "z" else v) for k, v in kw.items()}
    Bc = B[..., :-1] if B.dim() >= 3 else B
    Cc = C[..., :-1] if C.dim() >= 3 else C
    _, st = naive_ssm.selective_scan_ref(u[..., :-1], delta[..., :-1], A, Bc, Cc, **cut)
    return out, st


# -- ssd_scan ----------------------------------------------------------------------------------------------------


@mutant("ssm.ssd_states_not_carried", family=FAMILY, op="ssd_scan", caught_by=["op:ssd_scan"],
        features=("initial_states",))
def ssd_no_carry(X: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, chunk_size: int,
                 initial_states: torch.Tensor | None = None) -> Any:
    """Each chunk restarts from the initial state: the inter-chunk recurrence (step 3) is skipped."""
    l = X.shape[1]
    Ys, H = [], None
    for s in range(0, l, chunk_size):
        sl = slice(s, s + chunk_size)
        Y, H = naive_ssm.ssd_minimal(X[:, sl], A[:, sl], B[:, sl], C[:, sl], chunk_size, initial_states)
        Ys.append(Y)
    return torch.cat(Ys, dim=1), H


@mutant("ssm.ssd_decay_off_by_one", family=FAMILY, op="ssd_scan", caught_by=["op:ssd_scan"],
        features=("initial_states",))
def ssd_decay_shift(X: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, chunk_size: int,
                    initial_states: torch.Tensor | None = None) -> Any:
    """Decay applied after the input is added (h_t = e^{a_t}(h_t-1 + x_t B_t^T)): L_tt = e^{a_t} instead of 1."""
    Y, H = naive_ssm.ssd_minimal(X * torch.exp(A)[..., None], A, B, C, chunk_size, initial_states)
    return Y, H


@mutant("ssm.ssd_initial_state_ignored", family=FAMILY, op="ssd_scan", caught_by=["op:ssd_scan"],
        features=("initial_states",))
def ssd_no_init(X: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, chunk_size: int,
                initial_states: torch.Tensor | None = None) -> Any:
    """initial_states accepted but never used."""
    return naive_ssm.ssd_minimal(X, A, B, C, chunk_size, None)


@mutant("ssm.scan_complex_A_conjugated", family=FAMILY, op="selective_scan", caught_by=["op:selective_scan"],
        features={"complex_A", "variable_BC"})
def scan_complex_conj(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                      **kw: Any) -> Any:
    """Complex A used conjugated (e^{delta conj(A)}): the rotation runs the other way."""
    return naive_ssm.selective_scan_ref(u, delta, A.conj() if A.is_complex() else A, B, C, **kw)


class _NoImagGrad(torch.autograd.Function):
    """Identity whose backward drops the imaginary part of the gradient."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor) -> torch.Tensor:
        return a.clone()

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        return torch.complex(g.real, torch.zeros_like(g.real))


@mutant("ssm.scan_complex_A_grad_real_only", family=FAMILY, op="selective_scan", caught_by=["op:selective_scan"],
        features={"complex_A"}, grad=True)
def scan_complex_grad(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                      **kw: Any) -> Any:
    """A correct forward whose backward loses dL/d Im A (a real-only gradient path for complex weights)."""
    return naive_ssm.selective_scan_ref(u, delta, _NoImagGrad.apply(A) if A.is_complex() else A, B, C, **kw)


# -- wrong answers at LLM lengths (veriformer.properties.wrong_answers) --------------------------------------

wrong_answer_mutants("ssm_convolution", family=FAMILY, seq_axis=-1,
                     cases=[ConvCase(B=1, C=1, L=n, kernel="decay", amp=1.0, seed=n) for n in LONG])
wrong_answer_mutants("selective_scan", family=FAMILY, seq_axis=-1,
                     cases=[ScanCase(b=1, d=2, n=4, L=n, seed=n) for n in LONG])
wrong_answer_mutants("ssd_scan", family=FAMILY, seq_axis=1,
                     cases=[SSDCase(b=1, h=1, p=4, n=4, chunks=n // 64, chunk_size=64, seed=n) for n in LONG])
wrong_answer_mutants("mamba_chunk_scan", family=FAMILY, seq_axis=1,
                     cases=[MambaChunkCase(b=1, l=n, h=1, g=1, p=4, n=4, chunk_size=64, seed=n) for n in LONG])
