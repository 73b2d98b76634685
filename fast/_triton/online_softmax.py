"""The online-softmax update every attention kernel shares (flash attention, MLA decode, Transformer-VQ): one block
of base-2 scores folded into the running row max, the running sums and the probabilities handed to the P V product.

Given scores ``s`` [M, N] (already scaled by log2(e); ``-inf`` where masked) and the running ``m_i`` (row max),
``l_i`` (sum of exp2 in float32) and ``lt_i`` (the same sum of the probabilities as rounded for the dot):
``m_new = max(m_i, max_j s_j)``, ``alpha = 2^(m_i - m_new)``, ``p = 2^(s - m_new)``, ``pr = p`` rounded to
``DTYPE``'s grid, ``l_i <- alpha l_i + sum p``, ``lt_i <- alpha lt_i + sum pr``; a row with every score ``-inf``
keeps ``m_new = -inf`` and uses 0 in the exponents, so it contributes nothing.  The caller rescales its
accumulator by ``alpha`` and adds ``pr @ v``.
Source: Milakov & Gimelshein 2018 (online normaliser, arXiv:1805.02867); Dao 2023 (FlashAttention-2, Algorithm 1).
"""

from __future__ import annotations

from veriformer.fast._triton.env import HAVE_TRITON, device_function, tl

__all__ = ["online_softmax_step"]

if HAVE_TRITON:
    from veriformer.fast._triton.precision import to_operand

    @device_function
    def online_softmax_step(s, m_i, l_i, lt_i, DTYPE: tl.constexpr, EMULATE: tl.constexpr):
        """(m_new, alpha, pr, l_i, lt_i) after folding the score block ``s`` in (see the module docstring)."""
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.math.exp2(s - m_use[:, None])
        alpha = tl.math.exp2(m_i - m_use)
        pr = to_operand(p, DTYPE, EMULATE)
        l_i = l_i * alpha + tl.sum(p, 1)
        lt_i = lt_i * alpha + tl.sum(pr.to(tl.float32), 1)
        return m_new, alpha, pr, l_i, lt_i
