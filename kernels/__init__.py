"""precision-bench: how many distinct values survive a dtype transform, how wrong, how fast.

Public face: :func:`cast`, :func:`fit`, :func:`transform`, :func:`inverse_transform`,
and the dtype registry :data:`REGISTRY`.
"""

from .cast import cast
from .codecs import COMPUTE_DTYPES, REGISTRY
from .stats import ACCUMULATORS, NAN_POLICIES, TRANSFORMS, Params, fit
from .transforms import DEFAULT_FORMULA, FORMULAS, inverse_transform, transform

__all__ = [
    "cast",
    "fit",
    "transform",
    "inverse_transform",
    "Params",
    "REGISTRY",
    "COMPUTE_DTYPES",
    "ACCUMULATORS",
    "NAN_POLICIES",
    "TRANSFORMS",
    "FORMULAS",
    "DEFAULT_FORMULA",
]
__version__ = "0.1.0"
