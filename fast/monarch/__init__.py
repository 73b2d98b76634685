"""Monarch matrix kernels, fly layout (x [..., k p], w1 [k, q, p], w2 [l, s, r], y [..., l s]): ``kernel`` (Triton:
two batched block-diagonal products with the perfect shuffle fused, forward and backward) and ``naive`` (the
plain-torch baseline: two bmm and the permutation in the input dtype).

Dao et al. 2022, "Monarch" (arXiv:2204.00595); HazyResearch/fly ``blockdiag_butterfly_multiply``.
"""
