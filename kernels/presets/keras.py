"""Keras preprocessing-layer presets (data only; keras is not imported here).

Read from keras 3.15.1 and verified on the jax backend (CPU, 64-bit mode off),
layers called eagerly, in tests/test_presets_jax_keras_alb.py:

- ``keras/src/layers/preprocessing/rescaling.py`` ``Rescaling.call``:
  ``cast(inputs, compute_dtype) * cast(scale, compute_dtype) + cast(offset, compute_dtype)``;
  a Python float ``scale``/``offset`` is rounded once into float16, but into
  bfloat16 via float32 (``keras/src/backend/jax/core.py`` ``convert_to_tensor``:
  "Can't create bfloat16 arrays on the fly": ``jnp.asarray(x).astype(dtype)``).
- ``keras/src/layers/preprocessing/normalization.py`` ``Normalization.build`` /
  ``call``: ``mean``/``variance`` go through ``ops.convert_to_tensor`` (float32,
  keras' floatx) and *then* ``ops.cast`` to the compute dtype (two roundings for
  float16/bfloat16); ``call`` computes ``(x - mean) / maximum(sqrt(variance),
  epsilon)`` with ``sqrt`` and ``maximum`` in the compute dtype and
  ``epsilon = backend.epsilon() = 1e-7`` as a weak Python float (rounded into it:
  float16 makes it the subnormal 2**-23).  On jax the division is rewritten by
  XLA into ``* (1 / std)`` for float32/float16 (see :mod:`.jax_numpy`), not bfloat16.
- Only *given* statistics (``Normalization(mean=, variance=)``) are modelled;
  ``adapt()`` is not (its fitted statistics are not reproduced here), nor
  ``invert=True`` (its exact ideal ``x * sqrt(var) + mean`` has an irrational slope).
- XLA:CPU flushes float32 subnormals: not modelled (tests keep float32 data normal).
- ``dtype`` is the layer's dtype policy; ``mixed_float16``/``mixed_bfloat16``
  compute (and return) in the 16-bit type, as the plain 16-bit policies do.
"""

from __future__ import annotations

import numpy as np

from ..program import Op
from ._base import REQUIRED, Built, Exact, Preset, affine
from .jax_numpy import choice, divide_ops, in_dtype, options, reals, rounded

EPSILON = 1e-7  # keras.backend.epsilon() default (keras/src/backend/config.py)
_POLICIES = {
    "float32": "float32",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "mixed_float16": "float16",
    "mixed_bfloat16": "bfloat16",
}
_IN_DTYPES = ("uint8", "uint16", "float16", "float32")


def _compute(policy) -> str:
    return _POLICIES[choice(policy, tuple(_POLICIES), "dtype")]


# ------------------------------------------------------------------ Rescaling

_R = "keras.Rescaling"
_R_DEFAULTS = {"scale": REQUIRED, "offset": 0.0, "dtype": "float32"}


def _rescaling_parse(opts):
    o = options(_R, _R_DEFAULTS, opts)
    return reals(o["scale"], "scale"), reals(o["offset"], "offset"), _compute(o["dtype"])


def _rescaling_build(in_dtype_: str, stats=None, **opts) -> Built:
    scale, offset, c = _rescaling_parse(opts)
    in_dtype(in_dtype_, _IN_DTYPES, _R)
    # the add runs even when offset == 0 (it turns -0.0 into +0.0)
    if c == "bfloat16":  # convert_to_tensor's bfloat16 branch: float32 first
        scale, offset = rounded(scale, "float32"), rounded(offset, "float32")
    ops = (Op("round", c), Op("mul", c, (scale,)), Op("add", c, (offset,)))
    return Built(ops, c, c)


def _rescaling_ideal(stats=None, **opts):
    scale, offset, _ = _rescaling_parse(opts)
    return (affine(tuple(scale.tolist()), tuple(offset.tolist())),)


# -------------------------------------------------------------- Normalization

_N = "keras.Normalization"
_N_DEFAULTS = {"mean": REQUIRED, "variance": REQUIRED, "axis": -1, "invert": False, "dtype": "float32"}


def _normalization_parse(opts):
    o = options(_N, _N_DEFAULTS, opts)
    if o["axis"] != -1 or isinstance(o["axis"], bool):
        raise ValueError(f"axis={o['axis']!r}: only axis=-1 (channels last) is modelled")
    if o["invert"] is not False:
        raise ValueError(f"invert={o['invert']!r}: only invert=False is modelled (its ideal needs sqrt(var) as a slope)")
    mean, var = reals(o["mean"], "mean"), reals(o["variance"], "variance")
    if mean.shape != var.shape:
        raise ValueError(f"mean has {mean.size} values and variance {var.size}: keras needs the same shape")
    if (var < 0).any():
        raise ValueError(f"variance={o['variance']!r} must be >= 0")
    return mean, var, _compute(o["dtype"])


def normalization_std(var: np.ndarray, c: str) -> np.ndarray:
    """``maximum(sqrt(cast(float32(var), c)), epsilon)`` as keras computes it, in ``c``."""
    v = rounded(rounded(var, "float32"), c)
    # sqrt of a value of c, in float64, then one rounding: the correctly rounded sqrt
    # (float64 holds 2p+2 bits for every c here), which is what XLA gives
    return np.maximum(rounded(np.sqrt(v), c), rounded(np.array([EPSILON]), c))


def _normalization_build(in_dtype_: str, stats=None, **opts) -> Built:
    mean, var, c = _normalization_parse(opts)
    in_dtype(in_dtype_, _IN_DTYPES, _N)
    ops = (
        Op("round", c),  # convert_to_tensor(inputs, dtype=compute_dtype)
        Op("sub", c, (rounded(rounded(mean, "float32"), c),)),
        divide_ops(normalization_std(var, c), c),
    )
    return Built(ops, c, c)


def _normalization_ideal(stats=None, **opts):
    mean, var, _ = _normalization_parse(opts)
    # what the layer means: (x - mean) / sqrt(var), the given floats exact; keras' epsilon
    # only guards var -> 0, where the Exact convention divides by 1
    return (Exact("sqrt", (tuple(mean.tolist()), tuple(var.tolist()))),)


PRESETS = [
    Preset(
        name=_R,
        library="keras",
        verified="keras 3.15.1 (jax backend, CPU, eager), bit for bit (tests/test_presets_jax_keras_alb.py)",
        source="keras 3.15.1 keras/src/layers/preprocessing/rescaling.py (Rescaling.call)",
        summary="cast(x, compute dtype) * scale + offset, each op rounded into the policy's compute dtype",
        options=_R_DEFAULTS,
        build=_rescaling_build,
        ideal=_rescaling_ideal,
    ),
    Preset(
        name=_N,
        library="keras",
        verified="keras 3.15.1 (jax backend, CPU, eager), given mean/variance only, bit for bit "
        "(tests/test_presets_jax_keras_alb.py); adapt() is not modelled",
        source="keras 3.15.1 keras/src/layers/preprocessing/normalization.py (build, call)",
        summary="(x - mean) / maximum(sqrt(variance), 1e-7) in the compute dtype; jax/XLA divides by "
        "multiplying with the reciprocal (float32/float16)",
        options=_N_DEFAULTS,
        build=_normalization_build,
        ideal=_normalization_ideal,
    ),
]
