"""Laws (identities with sources), mutants (planted bugs) and public Hypothesis strategies.

Importing this package registers every law and mutant in ``veriformer.registry``.
"""

from . import attention_laws, attention_mutants, rope_laws, rope_mutants, softmax_laws, strategies  # noqa: F401  (register laws)  # noqa: F401  (register mutants)

__all__ = ["strategies"]
