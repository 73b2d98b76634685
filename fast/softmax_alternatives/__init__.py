"""Sparse probability maps along the last axis: ``naive`` (the plain-torch baselines of ops ``sparsemax`` and
``entmax15``, computed in the input dtype, gradients by autograd).

Martins & Astudillo 2016 (arXiv:1602.02068); Peters, Niculae & Martins 2019 (arXiv:1905.05702).
"""
