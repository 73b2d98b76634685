"""Fast kernels (PyTorch + Triton) checked against the oracles.

This package holds the implementations under test.  ``veriformer.fast.naive`` is the plain-torch
baseline that the tolerance policy measures every candidate against (what a careful torch user writes,
in the candidate's own dtype).  The Triton kernels land here in later issues.
"""

from . import naive

__all__ = ["naive"]
