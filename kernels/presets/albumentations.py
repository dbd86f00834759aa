"""albumentations presets (data only; albumentations is not imported here).

Read from albumentations 2.0.8 and albucore 0.0.24, verified bit for bit in
tests/test_presets_jax_keras_alb.py:

- ``Normalize`` (``albumentations/augmentations/pixel/transforms.py``):
  ``mean_np = float32(mean) * max_pixel_value`` and ``denominator =
  reciprocal(float32(std) * max_pixel_value)``, both float32 (NumPy 2 keeps a
  Python float weak).  ``albucore/functions.py`` ``normalize``: uint8 goes
  through a float32 table ``(arange(256, float32) - mean_np) * denominator``
  (``normalize_lut``); every other dtype through ``img.astype(float32)``,
  ``cv2.subtract``, ``cv2.multiply`` (``normalize_opencv``): the same ops, so a
  uint8 code and the same number stored as float32 give the same bits; the
  same *pixel* as uint8 (``max_pixel_value=255``) and as float32 in [0, 1]
  (``max_pixel_value=1``) does not (the tests count how often).
  Per-channel values need the image's channel count to equal their number
  (albucore's ``convert_value`` silently uses ``mean[0]`` for fewer channels).
  Only ``normalization='standard'`` is modelled (the others fit per-image statistics).
- ``ToFloat`` (``albumentations/augmentations/other/type_transform.py``,
  ``albucore.to_float``): uint8 -> ``arange(256, float32) / max_value`` (float32
  division); uint16 -> ``img / max_value`` in float64, then float32 (two
  roundings); float16 -> float16 division, then float32; float32 is returned
  unchanged and float64 only cast, *ignoring max_value*; bfloat16 needs an
  explicit max_value (albucore raises otherwise).
- ``FromFloat`` (``albucore.from_float``): float32 -> ``clip(rint(img *
  max_value), 0, max)`` then ``astype(dtype)`` (ties to even); float16,
  bfloat16 and float64 images take ``from_float_numpy``, whose in-place clip
  never casts: the result stays in the *input* float dtype.  NaN is undefined
  there (a float->uint cast) and not modelled.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..program import Op
from ._base import Built, Exact, Preset, affine
from .jax_numpy import choice, in_dtype, options, reals, rounded

_MAX_BY_DTYPE = {"uint8": 255, "uint16": 65535}  # albucore/utils.py MAX_VALUES_BY_DTYPE (the ones here)
_VERIFIED = "albumentations 2.0.8 + albucore 0.0.24, bit for bit (tests/test_presets_jax_keras_alb.py)"


def _f32(values) -> np.ndarray:
    return rounded(np.asarray(values, dtype=np.float64), "float32")


# ------------------------------------------------------------------ Normalize

_N = "albumentations.Normalize"
_N_DEFAULTS = {
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
    "max_pixel_value": 255.0,
    "normalization": "standard",
}
_NORMALIZATIONS = ("standard", "image", "image_per_channel", "min_max", "min_max_per_channel")
_N_IN = ("uint8", "uint16", "float16", "bfloat16", "float32", "float64")


def _normalize_parse(opts):
    o = options(_N, _N_DEFAULTS, opts)
    if choice(o["normalization"], _NORMALIZATIONS, "normalization") != "standard":
        raise ValueError(
            f"normalization={o['normalization']!r} fits per-image statistics, which this preset does not model; "
            "only normalization='standard' is"
        )
    mean, std = reals(o["mean"], "mean"), reals(o["std"], "std", positive=True)
    if mean.size != std.size and 1 not in (mean.size, std.size):
        raise ValueError(f"mean has {mean.size} values and std {std.size}: pass one, or one per channel each")
    mpv = reals(o["max_pixel_value"], "max_pixel_value", positive=True)
    if mpv.size != 1:
        raise TypeError(f"max_pixel_value={o['max_pixel_value']!r} must be one number")
    return mean, std, float(mpv[0])


def normalize_constants(mean, std, mpv):
    """(mean_np, denominator) exactly as Normalize.__init__ computes them in float32."""
    m = _f32(_f32(mean) * _f32(mpv))
    d = _f32(1.0 / _f32(_f32(std) * _f32(mpv)))  # np.reciprocal in float32: correctly rounded
    return m, d


def _normalize_build(in_dtype_: str, stats=None, **opts) -> Built:
    mean, std, mpv = _normalize_parse(opts)
    in_dtype(in_dtype_, _N_IN, _N)
    m, d = normalize_constants(mean, std, mpv)
    # the uint8 table and the OpenCV path are the same three float32 roundings
    ops = (Op("round", "float32"), Op("sub", "float32", (m,)), Op("mul", "float32", (d,)))
    return Built(ops, "float32", "float32")


def _normalize_ideal(stats=None, **opts):
    mean, std, mpv = _normalize_parse(opts)
    n = max(mean.size, std.size)
    mean, std, mpv = np.broadcast_to(mean, n).tolist(), np.broadcast_to(std, n).tolist(), Fraction(mpv)
    return (affine(tuple(1 / (Fraction(s) * mpv) for s in std),
                   tuple(-Fraction(m) / Fraction(s) for m, s in zip(mean, std))),)


# -------------------------------------------------------------------- ToFloat

_T = "albumentations.ToFloat"
_T_DEFAULTS = {"max_value": None}
_T_IN = ("uint8", "uint16", "float16", "bfloat16", "float32", "float64")


def _max_value(value, argument="max_value"):
    if value is None:
        return None
    v = reals(value, argument, positive=True)
    if v.size != 1:
        raise TypeError(f"{argument}={value!r} must be one number or None")
    return float(v[0])


def _to_float_build(in_dtype_: str, stats=None, **opts) -> Built:
    mv = _max_value(options(_T, _T_DEFAULTS, opts)["max_value"])
    in_dtype(in_dtype_, _T_IN, _T)
    if in_dtype_ in ("float32", "float64"):
        return Built((Op("round", "float32"),), "float32", "float32")  # max_value ignored (albucore.to_float)
    if mv is None:
        if in_dtype_ not in _MAX_BY_DTYPE and in_dtype_ != "float16":
            # albucore.utils.get_max_value's message, as a TypeError
            raise TypeError(
                f"Can't infer the maximum value for dtype {in_dtype_}. You need to specify the maximum "
                "value manually by passing the max_value argument."
            )
        mv = float(_MAX_BY_DTYPE.get(in_dtype_, 1.0))
    if in_dtype_ == "uint8":
        ops = (Op("round", "float32"), Op("div", "float32", (mv,)))  # to_float_lut
    elif in_dtype_ == "uint16":
        ops = (Op("div", "float64", (mv,)), Op("round", "float32"))  # to_float_numpy: NumPy float64 division
    else:  # float16 / bfloat16 divided in their own type (NumPy / ml_dtypes), then astype(float32)
        ops = (Op("div", in_dtype_, (mv,)), Op("round", "float32"))
    return Built(ops, "float32", ops[0].dtype)


def _to_float_ideal(stats=None, **opts):
    mv = _max_value(options(_T, _T_DEFAULTS, opts)["max_value"])
    if mv is None:
        raise ValueError(
            "albumentations.ToFloat(max_value=None) infers max_value from the input dtype, which ideal() is not "
            "given: pass max_value (255 for uint8, 65535 for uint16); float32/float64 images are returned "
            "unscaled whatever max_value is"
        )
    return (affine(1 / Fraction(mv)),)


def _to_float_ideal_for(in_dtype_: str, **opts):
    """ToFloat's ideal for a known input: x / max_value, max_value inferred from the
    dtype when None (albucore's get_max_value); float32/float64 come back unscaled."""
    mv = _max_value(options(_T, _T_DEFAULTS, opts)["max_value"])
    if in_dtype_ in ("float32", "float64"):
        return (affine(1),)
    if mv is None:
        mv = float(_MAX_BY_DTYPE.get(in_dtype_, 1.0))
    return (affine(1 / Fraction(mv)),)


# ------------------------------------------------------------------ FromFloat

_F = "albumentations.FromFloat"
_F_DEFAULTS = {"dtype": "uint8", "max_value": None}
_F_DTYPES = ("uint8", "uint16", "uint32")  # FromFloat.InitSchema
_F_IN = ("float16", "bfloat16", "float32", "float64")


def _from_float_parse(opts):
    o = options(_F, _F_DEFAULTS, opts)
    dtype = choice(o["dtype"], _F_DTYPES, "dtype")
    if dtype == "uint32":
        raise ValueError("dtype='uint32' is valid in albumentations but not a dtype of this bench (uint8, uint16)")
    mv = _max_value(o["max_value"])
    return dtype, float(_MAX_BY_DTYPE[dtype]) if mv is None else mv


def _from_float_build(in_dtype_: str, stats=None, **opts) -> Built:
    dtype, mv = _from_float_parse(opts)
    in_dtype(in_dtype_, _F_IN, _F)
    compute = in_dtype_  # img * max_value in the image's own float type (weak Python scalar)
    if compute in ("float16", "bfloat16") and dtype != "uint8":
        raise ValueError(
            f"{_F}(dtype={dtype!r}) on a {in_dtype_} image multiplies by {mv:g} in {in_dtype_} "
            "(65535 becomes inf in float16, 0 * inf = NaN): not modelled; only dtype='uint8' is for 16-bit floats"
        )
    out = dtype if in_dtype_ == "float32" else in_dtype_  # from_float_numpy's in-place clip never casts
    ops = (Op("mul", compute, (mv,)), Op("int", dtype, rounding="half_even", overflow="saturate"))
    return Built(ops, out, compute)


def _from_float_ideal(stats=None, **opts):
    dtype, mv = _from_float_parse(opts)
    return (affine(Fraction(mv)), Exact("clip", (0, _MAX_BY_DTYPE[dtype])))


PRESETS = [
    Preset(
        name=_N,
        library="albumentations",
        verified=_VERIFIED,
        source="albumentations 2.0.8 augmentations/pixel/transforms.py (Normalize); albucore 0.0.24 "
        "functions.py (normalize, normalize_lut, normalize_opencv)",
        summary="(float32(x) - float32(mean*max_pixel_value)) * float32(1/(std*max_pixel_value)), "
        "all float32 (a lookup table for uint8)",
        options=_N_DEFAULTS,
        build=_normalize_build,
        ideal=_normalize_ideal,
    ),
    Preset(
        name=_T,
        library="albumentations",
        verified=_VERIFIED,
        source="albumentations 2.0.8 augmentations/other/type_transform.py (ToFloat); albucore 0.0.24 "
        "functions.py (to_float, to_float_lut, to_float_numpy), utils.py (get_max_value)",
        summary="x / max_value into float32 (uint8: float32 division; uint16: float64 then float32); "
        "float32/float64 images unscaled",
        options=_T_DEFAULTS,
        build=_to_float_build,
        ideal=_to_float_ideal,
        ideal_for=_to_float_ideal_for,
    ),
    Preset(
        name=_F,
        library="albumentations",
        verified=_VERIFIED,
        source="albumentations 2.0.8 augmentations/other/type_transform.py (FromFloat); albucore 0.0.24 "
        "functions.py (from_float, from_float_opencv, from_float_numpy), utils.py (clip)",
        summary="clip(rint(x * max_value), 0, max) (ties to even); uint8/uint16 for float32 images, "
        "the input float dtype otherwise",
        options=_F_DEFAULTS,
        build=_from_float_build,
        ideal=_from_float_ideal,
    ),
]
