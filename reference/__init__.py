"""Oracles: float64 NumPy implementations of every mechanism, each also runnable in mpmath precision.

Every oracle takes ``backend=F64`` (default, vectorised float64 — the gold answer) or ``backend=MP(dps)``
(mpmath object arrays at ``dps`` digits — the certificate of the float64 run on small inputs).
Inputs may be NumPy arrays or torch tensors of any float dtype (converted exactly to float64).
"""

from veriformer.reference._families import export_submodules as _export
from veriformer.reference._legacy import install_aliases as _install_aliases
from veriformer.reference._legacy import keep_functions as _keep_functions
from veriformer.reference._validate import InputError
from veriformer.reference.attention import (
    attention_as_rnn,
    attention_logits,
    merge_attention_states,
    online_softmax_attention,
    softmax_attention,
    softmax_attention_vjp,
    visibility_mask,
)
from veriformer.reference.backends import F64, MP, Backend
from veriformer.reference.rope import (
    LAYOUTS,
    rope,
    rope_complex,
    rope_frequencies,
    rope_layout_permutation,
    rope_pairs,
    rope_rotation_matrix,
    rope_vjp,
)
from veriformer.reference.softmax import logsumexp, softmax

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

_install_aliases({f"{__name__}.{old}": f"{__name__}.{new}" for old, new in {
    "s4": "ssm.s4", "hippo": "ssm.hippo", "hippo_online": "ssm.hippo_online", "discretization": "ssm.discretization",
    "rtf": "ssm.rtf", "ssm_vjp": "ssm.vjp", "selective_scan": "ssm.selective_scan", "ssd": "ssm.ssd",
    "mamba_chunk_scan": "ssm.mamba_chunk_scan", "vq_attention": "vq.attention", "vq_local_bias": "vq.local_bias",
}.items()})

# Every other family (reference/<family>.py or reference/<family>/) is discovered by name and re-exported
__all__ += _export(__name__, __path__, globals(), skip={"backends", "softmax", "attention", "rope"})
_keep_functions(__name__)
