"""Oracles: float64 NumPy implementations of every mechanism, each also runnable in mpmath precision.

Every oracle takes ``backend=F64`` (default, vectorised float64 — the gold answer) or ``backend=MP(dps)``
(mpmath object arrays at ``dps`` digits — the certificate of the float64 run on small inputs).
Inputs may be NumPy arrays or torch tensors of any float dtype (converted exactly to float64).
"""

from ._validate import InputError
from .attention import (
    attention_as_rnn,
    attention_logits,
    merge_attention_states,
    online_softmax_attention,
    softmax_attention,
    softmax_attention_vjp,
    visibility_mask,
)
from .backends import F64, MP, Backend
from .rope import (
    LAYOUTS,
    rope,
    rope_complex,
    rope_frequencies,
    rope_layout_permutation,
    rope_pairs,
    rope_rotation_matrix,
    rope_vjp,
)
from .softmax import logsumexp, softmax

__all__ = [
    "F64",
    "LAYOUTS",
    "MP",
    "Backend",
    "InputError",
    "attention_as_rnn",
    "attention_logits",
    "logsumexp",
    "merge_attention_states",
    "online_softmax_attention",
    "rope",
    "rope_complex",
    "rope_frequencies",
    "rope_layout_permutation",
    "rope_pairs",
    "rope_rotation_matrix",
    "rope_vjp",
    "softmax",
    "softmax_attention",
    "softmax_attention_vjp",
    "visibility_mask",
]

# Family modules (reference/<family>.py) are discovered by name and export their oracles via __all__ (plain
# pkgutil: the oracles import nothing from the veriformer core)
import importlib as _importlib
import pkgutil as _pkgutil

_CORE = {"backends", "softmax", "attention", "rope"}
for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("_") or _info.name in _CORE:
        continue
    _module = _importlib.import_module(f"{__name__}.{_info.name}")
    for _name in _module.__all__:
        globals()[_name] = getattr(_module, _name)
    __all__ += list(_module.__all__)
