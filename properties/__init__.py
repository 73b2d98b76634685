"""Laws (identities with sources), mutants (planted bugs) and public Hypothesis strategies.

Importing this package registers every law and mutant in ``veriformer.registry``.
"""

from . import strategies
from . import softmax_laws, attention_laws, rope_laws  # noqa: F401  (register laws)
from . import attention_mutants, rope_mutants  # noqa: F401  (register mutants)

__all__ = ["strategies"]
