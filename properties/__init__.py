"""Laws (identities with sources), mutants (planted bugs), ops and public Hypothesis strategies, one folder per
family: ``properties/<family>/`` holds ``strategies`` (printable cases), ``laws*``, ``mutants*``, ``op*`` (calling
convention, gold, naive baseline, tolerance rows), ``regions`` / ``alternatives`` (edge regions and corner cases;
likely causes of a failure) and ``implementations*`` / ``third_party`` (ours and peers' kernels the report checks).
The modules at this level are what families share (``regions``, ``wrong_answers``, ``third_party``) and the index
of public strategies (``strategies``).

Importing this package registers nothing: :func:`veriformer.load_catalogue` imports every family folder
(``veriformer.discovery``), and the strategies load on their own.
"""

from veriformer.reference._legacy import install_aliases as _install_aliases

_install_aliases({f"{__name__}.{old}": f"{__name__}.{new}" for old, new in {
    "attention_laws": "attention.laws", "attention_mutants": "attention.mutants", "softmax_laws": "softmax.laws",
    "entropy_softmax_laws": "entropy_softmax.laws", "entropy_softmax_mutants": "entropy_softmax.mutants",
    "gau_laws": "gau.laws", "gau_mutants": "gau.mutants", "performer_laws": "performer.laws",
    "performer_mutants": "performer.mutants", "performer_vq_laws": "performer_vq.laws",
    "performer_vq_mutants": "performer_vq.mutants", "rope_laws": "rope.laws", "rope_mutants": "rope.mutants",
    "linear_attention_laws": "linear_attention.laws", "linear_attention_mutants": "linear_attention.mutants",
    "linear_attention_strategies": "linear_attention.strategies", "vq_laws": "vq.laws", "vq_mutants": "vq.mutants",
    "vq_kernel_mutants": "vq.mutants_kernel", "vq_local_bias_laws": "vq.laws_local_bias",
    "vq_local_bias_mutants": "vq.mutants_local_bias", "ssm_laws": "ssm.laws", "ssm_mutants": "ssm.mutants",
    "ssm_rtf_laws": "ssm.laws_rtf", "ssm_rtf_mutants": "ssm.mutants_rtf", "ssm_scan_laws": "ssm.laws_scan",
    "ssm_scan_mutants": "ssm.mutants_scan", "ssm_vjp_laws": "ssm.laws_vjp", "ssm_vjp_mutants": "ssm.mutants_vjp",
    "hippo_online_laws": "ssm.laws_hippo_online", "hippo_online_mutants": "ssm.mutants_hippo_online",
    "ssm_op_mutants": "ssm.mutants_op", "mamba_chunk_scan_mutants": "ssm.mutants_chunk_scan",
    "ssm_strategies": "ssm.strategies", "mamba_chunk_scan_strategies": "ssm.strategies_chunk_scan",
    "wrong_answer_mutants": "wrong_answers"}.items()})


def __getattr__(name: str) -> object:
    if name == "strategies":  # the public index, loaded on first use
        import importlib

        return importlib.import_module(f"{__name__}.strategies")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
