"""precision-bench: how many distinct values survive a dtype transform, how wrong, how fast.

Public face: :func:`cast`, :func:`fit`, :func:`transform`, :func:`inverse_transform`,
:func:`measure` (a :class:`Record` per variant) on arrays or :func:`domain` sweeps,
:func:`distinct`, and the dtype registry :data:`REGISTRY`.
"""


from . import _cache  # noqa: F401  (first: versions the numba disk cache)
from .cast import cast
from .codecs import COMPUTE_DTYPES, REGISTRY
from .stats import ACCUMULATORS, NAN_POLICIES, TRANSFORMS, Params, fit, params
from .transforms import DEFAULT_FORMULA, FORMULAS, inverse_transform, transform
from .domain import Domain, domain
from .measure import SCHEMA, Record, measure
from .metrics import Distinct, distinct
from .steps import CONSTANTS, Step, step
from .pipeline import Pipeline, pipeline
from .measure_pipeline import measure_outputs
from .presets import PRESETS

__all__ = [
    "cast",
    "fit",
    "params",
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
    "measure",
    "Record",
    "SCHEMA",
    "domain",
    "Domain",
    "distinct",
    "Distinct",
    "step",
    "Step",
    "pipeline",
    "Pipeline",
    "CONSTANTS",
    "PRESETS",
    "measure_outputs",
]
__version__ = "0.1.0"
