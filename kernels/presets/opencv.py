"""OpenCV presets: ``cv2.convertTo``, ``cv2.convertScaleAbs``, ``cv2.normalize``.

Read from OpenCV's C++ source (opencv/opencv, 5.x branch, the code behind
opencv-python-headless 5.0.0.93):

- ``modules/core/src/convert_scale.simd.hpp`` (commit 0d15fa55): ``cvt_32f`` and
  ``cvtabs_32f`` round alpha and beta to float (``(wtype)scale[0]``) and evaluate
  ``v_fma(v, a, b)`` in float32; the scalar tail is ``saturate_cast<_Td>(src[j]*a + b)``,
  which GCC contracts to the same fused multiply-add (measured: identical bits
  on arrays shorter than one vector).  A float64 source is loaded *as float*
  (``vx_load_pair_as``) before the float32 fma when the destination is 8u/16u;
  ``cvt_64f`` (double fma) is used when the destination or, for a 32f
  destination, the source is 64f.  ``convertScaleAbs`` stores ``v_abs(v_fma(..))``:
  the absolute value of the fused result, then ``saturate_cast<uchar>``.
- ``modules/core/include/opencv2/core/saturate.hpp``: ``saturate_cast<uchar>(float)``
  is ``cvRound`` (cvtss2si: half to even; NaN, inf and |v| >= 2**31 give INT_MIN)
  then a clip to [0, 255]: NaN/inf/huge become 0 (the Op's ``overflow='cv'``).
- ``Mat::convertTo``: ``noScale = |alpha - 1| < DBL_EPSILON && |beta| < DBL_EPSILON``;
  then a plain conversion (a copy for the same depth) with no arithmetic.
- ``modules/core/src/norm.cpp`` ``cv::normalize`` (commit 0310b081): NORM_MINMAX
  ``scale = (dmax - dmin)*(smax - smin > DBL_EPSILON ? 1./(smax - smin) : 0)``; for
  ``rtype == CV_32F``: ``scale = (float)scale; shift = (float)dmin - (float)(smin*scale)``
  (a float32 subtraction), else ``shift = dmin - smin*scale`` in double;
  NORM_INF/L1/L2: ``scale = norm > DBL_EPSILON ? alpha/norm : 0``, shift 0.  Then
  ``convertTo(rtype, scale, shift)``.

The project's dtypes limit the depths modelled to CV_8U, CV_16U, CV_16F, CV_32F
and CV_64F (as inputs and outputs).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..codecs import lookup
from ..program import Op
from ._base import REQUIRED, Built, Exact, Preset, affine

VERSION = "opencv-python-headless 5.0.0.93 (OpenCV 5.0.0)"
DBL_EPSILON = 2.220446049250313e-16

# OpenCV depth constants (cv2 values); only the ones the project's dtypes hold are usable
DEPTHS = {"CV_8U": 0, "CV_8S": 1, "CV_16U": 2, "CV_16S": 3, "CV_32S": 4, "CV_32F": 5, "CV_64F": 6, "CV_16F": 7}
DTYPE_OF = {"CV_8U": "uint8", "CV_16U": "uint16", "CV_16F": "float16", "CV_32F": "float32", "CV_64F": "float64"}
DEPTH_OF = {v: k for k, v in DTYPE_OF.items()}
NORMS = {"NORM_INF": 1, "NORM_L1": 2, "NORM_L2": 4, "NORM_MINMAX": 32}
INT_MAX = {"uint8": 255, "uint16": 65535}
_SOURCE_CVT = "opencv/opencv modules/core/src/convert_scale.simd.hpp @0d15fa55 (5.x), core/include/opencv2/core/saturate.hpp"
_SOURCE_NORM = "opencv/opencv modules/core/src/norm.cpp @0310b081 (5.x) cv::normalize, then " + _SOURCE_CVT


def _in_dtype(in_dtype, func: str) -> str:
    """The input's registry name; what OpenCV's Python binding refuses is a TypeError with its message."""
    name = lookup(in_dtype, "in_dtype").name
    if name == "bfloat16":  # cv2 5.0.0 has CV_16BF internally, but its binding refuses ml_dtypes arrays
        raise TypeError(
            f"OpenCV(5.0.0) :-1: error: (-5:Bad argument) in function '{func}'\n"
            "> Overload resolution failed:\n>  - src data type = bfloat16 is not supported"
        )
    return name


def _depth(value, argument: str, allow_default: bool) -> str | None:
    """An OpenCV depth given as "CV_32F" or its cv2 integer -> the project's dtype name (None for -1)."""
    if allow_default and not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value < 0:
        return None
    if isinstance(value, str):
        key = value if value.startswith("CV_") else "CV_" + value
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        key = next((k for k, v in DEPTHS.items() if v == int(value)), None)
    else:
        raise TypeError(f"{argument}={value!r} must be an OpenCV depth name or integer, e.g. 'CV_32F' or 5")
    if key not in DTYPE_OF:
        valid = ", ".join(f"{k} ({DEPTHS[k]})" for k in DTYPE_OF) + (", -1 (the input's depth)" if allow_default else "")
        raise ValueError(f"{argument}={value!r} is not a depth this project models; use one of: {valid}")
    return DTYPE_OF[key]


def _real(value, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{argument}={value!r} must be a real number")
    return float(value)


def _norm_type(value) -> str:
    if isinstance(value, str) and value in NORMS:
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        for k, v in NORMS.items():
            if v == int(value):
                return k
    raise ValueError(f"norm_type={value!r} is not supported; use one of: " + ", ".join(f"{k} ({v})" for k, v in NORMS.items()))


def _check_options(options: dict, valid: dict, func: str) -> dict:
    unknown = set(options) - set(valid)
    if unknown:
        raise ValueError(f"{func} has no option {', '.join(sorted(unknown))}; its options are: {', '.join(valid)}")
    out = {**valid, **options}
    missing = [k for k, v in out.items() if v is REQUIRED]
    if missing:
        raise TypeError(f"{func} needs option(s): {', '.join(missing)}")
    return out


# --------------------------------------------------------------------------
# convertTo: the engine of all three
# --------------------------------------------------------------------------


def _convert_ops(src: str, dst: str, alpha: float, beta: float) -> tuple[tuple, str]:
    """(ops, compute dtype) of ``Mat::convertTo(dst, alpha, beta)`` from depth ``src``."""
    no_scale = abs(alpha - 1) < DBL_EPSILON and abs(beta) < DBL_EPSILON
    to_int = dst in INT_MAX
    tail = (Op("int", dst, rounding="half_even", overflow="cv"),) if to_int else ()
    if no_scale:
        if src == dst:
            return (), src  # copyTo: the bits themselves
        # cvt_: a 64f source goes through float on its way to 16f (vx_load_pair_as)
        pre = (Op("round", "float32"),) if src == "float64" and dst == "float16" else ()
        return pre + tail, "float32" if src != "float64" or dst != "float64" else "float64"
    if dst == "float64" or (src == "float64" and dst == "float32"):
        return (Op("fma", "float64", (alpha, beta)),), "float64"  # cvt_64f
    # cvt_32f / cvt1_32f: the source is loaded as float32 (exact except from 64f)
    pre = (Op("round", "float32"),) if src == "float64" else ()
    return pre + (Op("fma", "float32", (alpha, beta)),) + tail, "float32"


def _convert_ideal(dst: str, alpha, beta) -> tuple:
    steps = (affine(alpha, beta),)
    if dst in INT_MAX:
        steps += (Exact("clip", (0, INT_MAX[dst])),)
    return steps


_CONVERT_OPTIONS = {"rtype": REQUIRED, "alpha": 1.0, "beta": 0.0}


def _convert_parse(options):
    o = _check_options(options, _CONVERT_OPTIONS, "cv2.convertTo")
    return _depth(o["rtype"], "rtype", True), _real(o["alpha"], "alpha"), _real(o["beta"], "beta")


def _convert_build(in_dtype, stats=None, **options) -> Built:
    src = _in_dtype(in_dtype, "convertTo")
    dst, alpha, beta = _convert_parse(options)
    dst = dst or src
    ops, compute = _convert_ops(src, dst, alpha, beta)
    return Built(ops, dst, compute)


def _convert_ideal_fn(exact_stats=None, **options):
    dst, alpha, beta = _convert_parse(options)
    return _convert_ideal(dst or "float32", alpha, beta)


# --------------------------------------------------------------------------
# convertScaleAbs
# --------------------------------------------------------------------------

_ABS_OPTIONS = {"alpha": 1.0, "beta": 0.0}


def _abs_parse(options):
    o = _check_options(options, _ABS_OPTIONS, "cv2.convertScaleAbs")
    return _real(o["alpha"], "alpha"), _real(o["beta"], "beta")


def _abs_build(in_dtype, stats=None, **options) -> Built:
    src = _in_dtype(in_dtype, "convertScaleAbs")
    alpha, beta = _abs_parse(options)
    # cvtabs_32f, always (no noScale shortcut): a 64f source is rounded to float first
    pre = (Op("round", "float32"),) if src == "float64" else ()
    ops = pre + (Op("fma", "float32", (alpha, beta)), Op("abs"), Op("int", "uint8", rounding="half_even", overflow="cv"))
    return Built(ops, "uint8", "float32")


def _abs_ideal(exact_stats=None, **options):
    alpha, beta = _abs_parse(options)
    return (affine(alpha, beta), Exact("abs"), Exact("clip", (0, 255)))


# --------------------------------------------------------------------------
# normalize
# --------------------------------------------------------------------------

_NORM_OPTIONS = {"alpha": 1.0, "beta": 0.0, "norm_type": "NORM_L2", "dtype": -1}


def _norm_parse(options):
    o = _check_options(options, _NORM_OPTIONS, "cv2.normalize")
    return (_real(o["alpha"], "alpha"), _real(o["beta"], "beta"), _norm_type(o["norm_type"]),
            _depth(o["dtype"], "dtype", True))


def _scalar(stats, key):
    if stats is None or key not in stats:
        raise ValueError(f"cv2.normalize needs the statistic {key!r} (from the preset's fit)")
    v = np.asarray(stats[key], dtype=np.float64).reshape(-1)
    if v.size != 1:
        raise ValueError(f"cv2.normalize takes one {key} for the whole array (it has no per-feature mode), got {v.size}")
    return float(v[0])


def _norm_scale_shift(a: float, b: float, norm: str, rtype: str, stats) -> tuple[float, float]:
    """scale and shift exactly as cv::normalize computes them (Python floats are C doubles)."""
    if norm == "NORM_MINMAX":
        smin, smax = _scalar(stats, "min"), _scalar(stats, "max")
        dmin, dmax = min(a, b), max(a, b)
        scale = (dmax - dmin) * (1.0 / (smax - smin) if smax - smin > DBL_EPSILON else 0.0)
        if rtype == "float32":
            scale = float(np.float32(scale))
            shift = float(np.float32(dmin) - np.float32(smin * scale))  # float - float: a float32 subtraction
        else:
            shift = dmin - smin * scale
        return scale, shift
    n = _scalar(stats, "norm")
    return (a / n if n > DBL_EPSILON else 0.0), 0.0


def _norm_build(in_dtype, stats=None, **options) -> Built:
    src = _in_dtype(in_dtype, "normalize")
    a, b, norm, dst = _norm_parse(options)
    dst = dst or src
    scale, shift = _norm_scale_shift(a, b, norm, dst, stats)
    ops, compute = _convert_ops(src, dst, scale, shift)
    return Built(ops, dst, compute)


def _norm_fit(x, **options) -> dict:
    """OpenCV's statistics of the whole array: min/max (minMaxIdx) or the norm."""
    _, _, norm, _ = _norm_parse(options)
    x = np.asarray(x)
    if x.size == 0:
        raise ValueError("cv2.normalize of an empty array")
    _in_dtype(x.dtype, "normalize")
    v = x.astype(np.float64).reshape(-1)
    if not np.isfinite(v).all():
        raise ValueError("cv2.normalize: x has NaN or inf; OpenCV's statistics are undefined there")
    if norm == "NORM_MINMAX":
        return {"min": np.array([v.min()]), "max": np.array([v.max()])}
    if norm == "NORM_INF":
        return {"norm": np.array([np.abs(v).max()])}
    if x.dtype.kind not in "ui":
        # OpenCV sums float data in double in its own SIMD/IPP order; not reproducible bit for bit here
        raise ValueError(f"cv2.normalize {norm} is modelled for uint8/uint16 inputs only (exact integer sums)")
    if norm == "NORM_L1":
        return {"norm": np.array([float(int(x.astype(np.int64).sum()))])}
    s = int((x.astype(np.int64).reshape(-1) ** 2).sum())
    # the sum is exact below 2**53 and sqrt correctly rounded; OpenCV's own L2 norm (IPP) is
    # sometimes 1 ulp away from that (measured by the tests): pass cv2.norm as stats for its bits
    return {"norm": np.array([math.sqrt(s)])}


def _sqrt_fraction(q: Fraction, bits: int = 128) -> Fraction:
    """sqrt(q) as a rational within 2**-bits relative (a square root of a non-square is irrational)."""
    num, den = q.numerator, q.denominator
    k = bits + max(0, den.bit_length() - num.bit_length())
    return Fraction(math.isqrt((num << (2 * k)) // den), 1 << k)


def _norm_exact_fit(values, counts, **options) -> dict:
    _, _, norm, _ = _norm_parse(options)
    vals = [Fraction(float(v)) for v in np.asarray(values, dtype=np.float64)]
    cnts = [int(c) for c in np.asarray(counts)]
    if norm == "NORM_MINMAX":
        return {"min": vals[0], "max": vals[-1]}
    if norm == "NORM_INF":
        return {"norm": max(abs(v) for v in vals)}
    if norm == "NORM_L1":
        return {"norm": sum(abs(v) * c for v, c in zip(vals, cnts))}
    return {"norm": _sqrt_fraction(sum(v * v * c for v, c in zip(vals, cnts)))}


def _norm_ideal(exact_stats=None, **options):
    a, b, norm, dst = _norm_parse(options)
    if exact_stats is None:
        raise ValueError("cv2.normalize's ideal needs exact statistics (exact_fit)")
    a, b = Fraction(a), Fraction(b)
    if norm == "NORM_MINMAX":
        lo, hi = Fraction(exact_stats["min"]), Fraction(exact_stats["max"])
        dmin, dmax = min(a, b), max(a, b)
        slope = (dmax - dmin) / (hi - lo) if hi != lo else Fraction(0)
        steps = (affine(slope, dmin - lo * slope),)
    else:
        n = Fraction(exact_stats["norm"])
        steps = (affine(a / n if n else Fraction(0), 0),)
    if dst in INT_MAX:
        steps += (Exact("clip", (0, INT_MAX[dst])),)
    return steps


PRESETS = [
    Preset(
        name="opencv.convertTo",
        library="cv2",
        verified=f"{VERSION}: every uint8/12-bit/uint16 code and float32/float64/float16 data, bit for bit",
        source=_SOURCE_CVT,
        summary="saturate_cast<rtype>(fma_f32(x, (float)alpha, (float)beta)); double fma for 64f; no arithmetic when alpha=1, beta=0",
        options=dict(_CONVERT_OPTIONS),
        build=_convert_build,
        ideal=_convert_ideal_fn,
    ),
    Preset(
        name="opencv.convertScaleAbs",
        library="cv2",
        verified=f"{VERSION}: every uint8/12-bit/uint16 code and float32/float64/float16 data, bit for bit",
        source=_SOURCE_CVT,
        summary="saturate_cast<uchar>(|fma_f32(x, (float)alpha, (float)beta)|): abs after the fused multiply-add",
        options=dict(_ABS_OPTIONS),
        build=_abs_build,
        ideal=_abs_ideal,
    ),
    Preset(
        name="opencv.normalize",
        library="cv2",
        verified=f"{VERSION}: NORM_MINMAX/INF on all dtypes, L1 on uint8/uint16, bit for bit; L2 bit for bit given cv2.norm (its fit can be 1 ulp off)",
        source=_SOURCE_NORM,
        summary="scale/shift from min/max (or alpha/norm) in double (float32 for CV_32F), then convertTo",
        options=dict(_NORM_OPTIONS),
        build=_norm_build,
        ideal=_norm_ideal,
        fit=_norm_fit,
        exact_fit=_norm_exact_fit,
        fit_from_extremes=lambda **o: _norm_parse(o)[2] in ("NORM_MINMAX", "NORM_INF"),
        dask_fit_hint="NORM_L1 and NORM_L2 sum every value (NORM_MINMAX and NORM_INF are fitted chunk by chunk)",
    ),
]
