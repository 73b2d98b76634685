"""Laws (identities with sources), mutants (planted bugs) and public Hypothesis strategies.

Importing this package registers every law and mutant in ``veriformer.registry``: each family's
``<family>_laws.py`` and ``<family>_mutants.py`` module is discovered by name.
"""

from veriformer.discovery import import_family_modules

from . import strategies

import_family_modules(__name__, __path__, lambda n: n.endswith(("_laws", "_mutants")))

__all__ = ["strategies"]
