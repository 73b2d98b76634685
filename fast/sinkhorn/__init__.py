"""Entropic optimal transport kernels, layout C [B, n, m], a [B, n], b [B, m]: ``log_domain`` (batched log-domain
Sinkhorn in torch, float32 arithmetic for half inputs; op ``sinkhorn``) and ``naive`` (the plain scaling-domain
iterations in the input dtype: the baseline).

Cuturi 2013 (arXiv:1306.0895); Peyré & Cuturi 2019 (arXiv:1803.00567), §4.2 and §4.4.
"""
