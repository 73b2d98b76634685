"""Transformer-VQ oracles (float64 NumPy / mpmath): ``attention`` (quantiser, quadratic, linear-time and block
forms, straight-through VJPs) and ``local_bias`` (the block form with a learned local bias).  Every name in each
module's ``__all__`` is re-exported here and by ``veriformer.reference``.
"""

from veriformer.reference._families import export_submodules

__all__ = export_submodules(__name__, __path__, globals())
