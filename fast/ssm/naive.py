"""Naive torch baselines of the state-space ops (what a careful plain-torch user writes).

* :func:`ssm_convolution` — causal long convolution by rfft padded to 2L (the S4 ``FFTConv`` recipe); the FFT
  runs in float32 for half inputs (torch has no CPU half FFT) and in float64 for float64 inputs.
* :func:`s4d_kernel` — the S4D Vandermonde kernel in complex64 (complex128 for float64 inputs).
* :func:`selective_scan_ref` — mamba's ``selective_scan_ref`` (float32 internally, out in the input dtype).
* :func:`ssd_minimal` — mamba's ``ssd_minimal_discrete`` in the input dtype, with the stable segsum.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["s4d_kernel", "selective_scan_ref", "ssd_minimal", "ssd_recurrence_careful", "ssm_convolution"]


def _work(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def ssm_convolution(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``y = irfft(rfft(K, 2L) rfft(u, 2L), 2L)[..., :L]``: u [B, C, L], kernel [C, L] -> y [B, C, L] in u's dtype.
    Source: S4 ``FFTConv`` (Gu et al. 2022)."""
    L = u.shape[-1]
    w = _work(u.dtype)
    y = torch.fft.irfft(torch.fft.rfft(kernel.to(w), n=2 * L) * torch.fft.rfft(u.to(w), n=2 * L), n=2 * L)
    return y[..., :L].to(u.dtype)


def s4d_kernel(log_dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, L: int) -> torch.Tensor:
    """S4D ZOH kernel ``K = 2 Re sum_n C B (e^{dt A} - 1)/A e^{l dt A}``: log_dt [H], A/B/C [H, N2] complex ->
    K [H, L] in log_dt's dtype.  Source: S4 ``models/s4/s4d.py`` (``S4DKernel.forward``)."""
    w = _work(log_dt.dtype)
    cw = torch.complex128 if w == torch.float64 else torch.complex64
    A, B, C = A.to(cw), B.to(cw), C.to(cw)
    dt = torch.exp(log_dt.to(w))
    dtA = A * dt[:, None]
    K = dtA.unsqueeze(-1) * torch.arange(L, device=A.device, dtype=w)
    Cb = C * B * (torch.exp(dtA) - 1.0) / A
    return (2 * torch.einsum("hn,hnl->hl", Cb, torch.exp(K)).real).to(log_dt.dtype)


def selective_scan_ref(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                       D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                       delta_bias: torch.Tensor | None = None, delta_softplus: bool = False,
                       return_last_state: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """mamba's ``selective_scan_ref`` (real or complex A; constant, variable or grouped B/C), computed in
    float32 (float64 for float64 inputs); the last state is returned in u's dtype (mamba keeps it float32).
    Layouts: see :mod:`veriformer.reference.ssm.selective_scan`.  Source: mamba selective_scan_interface.py."""
    dtype_in = u.dtype
    w = _work(dtype_in)
    u, delta = u.to(w), delta.to(w)
    if delta_bias is not None:
        delta = delta + delta_bias[..., None].to(w)
    if delta_softplus:
        delta = F.softplus(delta)
    batch, dim, dstate = u.shape[0], A.shape[0], A.shape[1]
    var_B, var_C = B.dim() >= 3, C.dim() >= 3
    if A.is_complex():
        if var_B:
            B = torch.view_as_complex(B.to(w).reshape(*B.shape[:-1], -1, 2).contiguous())
        if var_C:
            C = torch.view_as_complex(C.to(w).reshape(*C.shape[:-1], -1, 2).contiguous())
    else:
        A, B, C = A.to(w), B.to(w), C.to(w)
    x = A.new_zeros((batch, dim, dstate))
    deltaA = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    if not var_B:
        deltaB_u = torch.einsum("bdl,dn,bdl->bdln", delta, B, u)
    elif B.dim() == 3:
        deltaB_u = torch.einsum("bdl,bnl,bdl->bdln", delta, B, u)
    else:
        B = B.repeat_interleave(dim // B.shape[1], dim=1)
        deltaB_u = torch.einsum("bdl,bdnl,bdl->bdln", delta, B, u)
    if var_C and C.dim() == 4:
        C = C.repeat_interleave(dim // C.shape[1], dim=1)
    ys = []
    for i in range(u.shape[2]):
        x = deltaA[:, :, i] * x + deltaB_u[:, :, i]
        if not var_C:
            y = torch.einsum("bdn,dn->bd", x, C)
        elif C.dim() == 3:
            y = torch.einsum("bdn,bn->bd", x, C[:, :, i])
        else:
            y = torch.einsum("bdn,bdn->bd", x, C[:, :, :, i])
        if y.is_complex():
            y = y.real * 2
        ys.append(y)
    out = torch.stack(ys, dim=2)
    if D is not None:
        out = out + u * D.to(w)[:, None]
    if z is not None:
        out = out * F.silu(z.to(w))
    out = out.to(dtype_in)
    if return_last_state:
        return out, (x if x.is_complex() else x.to(dtype_in))
    return out


def _segsum(x: torch.Tensor) -> torch.Tensor:
    """Stable segment sum (mamba ``segsum``): masked cumulative sums, -inf above the diagonal."""
    T = x.size(-1)
    x = x[..., None].expand(*x.shape, T)
    low = torch.tril(torch.ones(T, T, device=x.device, dtype=torch.bool), diagonal=-1)
    s = torch.cumsum(x.masked_fill(~low, 0), dim=-2)
    keep = torch.tril(torch.ones(T, T, device=x.device, dtype=torch.bool), diagonal=0)
    return s.masked_fill(~keep, -torch.inf)


def ssd_minimal(X: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, chunk_size: int,
                initial_states: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """mamba's ``ssd_minimal_discrete`` in the input dtype: X [b, l, h, p], A [b, l, h], B/C [b, l, h, n],
    initial_states [b, h, p, n] -> (Y [b, l, h, p], final_state [b, h, p, n]).  Source: mamba ssd_minimal.py."""
    b, l, h, p = X.shape
    c = l // chunk_size
    Xc, Bc, Cc = (t.reshape(b, c, chunk_size, h, -1) for t in (X, B, C))
    Ac = A.reshape(b, c, chunk_size, h).permute(0, 3, 1, 2)  # b h c l
    A_cs = torch.cumsum(Ac, dim=-1)
    Lm = torch.exp(_segsum(Ac))
    Y_diag = torch.einsum("bclhn,bcshn,bhcls,bcshp->bclhp", Cc, Bc, Lm, Xc)
    decay_states = torch.exp(A_cs[..., -1:] - A_cs)
    states = torch.einsum("bclhn,bhcl,bclhp->bchpn", Bc, decay_states, Xc)
    if initial_states is None:
        initial_states = torch.zeros_like(states[:, :1])
    else:
        initial_states = initial_states[:, None]
    states = torch.cat([initial_states, states], dim=1)
    decay_chunk = torch.exp(_segsum(F.pad(A_cs[..., -1], (1, 0))))
    new_states = torch.einsum("bhzc,bchpn->bzhpn", decay_chunk, states)
    states, final = new_states[:, :-1], new_states[:, -1]
    Y_off = torch.einsum("bclhn,bchpn,bhcl->bclhp", Cc, states, torch.exp(A_cs))
    return (Y_diag + Y_off).reshape(b, l, h, p), final


def ssd_recurrence_careful(X: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, chunk_size: int,
                           initial_states: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """SSD as a careful plain-torch user writes it: the recurrence ``H_t = exp(a_t) H_{t-1} + x_t B_t^T``,
    ``y_t = H_t C_t`` with the state and decays in float32 (float64 for float64 input), y cast to the input
    dtype, the final state returned in float32 as mamba does.  Same layouts as :func:`ssd_minimal`
    (``chunk_size`` is accepted and ignored).  Its autograd gives dA without the cumulative-sum cancellation of
    ``ssd_minimal``'s segsum, so ``check()`` judges ssd_scan against the better of the two baselines.
    Source: Dao & Gu 2024 (Mamba-2), the SSM recurrence (eq. 1 of the SSD form)."""
    work = torch.float64 if X.dtype == torch.float64 else torch.float32
    x, a, bb, cc = (t.to(work) for t in (X, A, B, C))
    b, l, h, p = X.shape
    H = torch.zeros(b, h, p, B.shape[-1], dtype=work, device=X.device) if initial_states is None \
        else initial_states.to(work)
    ys = []
    for t in range(l):
        H = torch.exp(a[:, t])[..., None, None] * H + x[:, t, :, :, None] * bb[:, t, :, None, :]
        ys.append((H * cc[:, t, :, None, :]).sum(-1))
    return torch.stack(ys, dim=1).to(X.dtype), H
