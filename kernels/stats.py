"""Statistics (layer 2): ``fit``, the min/max and mean/variance a transform needs.

The kernels and the accumulators' table are in :mod:`kernels.accumulators`
(re-exported here); this module validates, picks the kernels, checks the NaN
policy and builds the immutable :class:`Params`.

NaN policy: ``raise`` (ValueError), ``omit`` (NaN values are skipped, the
count excludes them), ``propagate`` (statistics become NaN).
"""

from __future__ import annotations

import warnings

import numpy as np

from ._threads import serialised
from .params import Frozen, Params, normalize_axis  # noqa: F401  (re-exported: kernels.stats.Params)
from .given import GIVEN, GIVEN_AXIS, params  # noqa: F401  (re-exported)
from ._validate import check_array, check_choice, check_dtype, check_real, check_reals
from .accumulators import (  # noqa: F401  (re-exported: the kernels' names, as kernels.dask_array uses them)
    _ACC_TAGS, _NAN_KEEP, _NAN_OMIT, ACCUMULATORS, CHUNK, LANES, PW_LANES, _chan, _kahan_sum, _key_extremes,
    _merge_moments, _minmax, _minmax_features, _minmax_flat, _moment_partials, _moments_kernel, _naive,
    _pairwise_sum, _welford)
from .codecs import COMPUTE_DTYPES

ACC_DTYPES = COMPUTE_DTYPES
NAN_POLICIES = ("raise", "omit", "propagate")
TRANSFORMS = ("minmax", "standardize", "scale", "maxabs", "quantize", "dequantize")

# --------------------------------------------------------------------------
# public: fit and its immutable result
# --------------------------------------------------------------------------


def _nfeat(shape, axis) -> int:
    return 1 if axis is None else int(shape[-1])


def _feature_range(options) -> tuple[float, float]:
    fr = options.get("feature_range", (0.0, 1.0))
    if isinstance(fr, (str, bytes)) or not np.iterable(fr) or len(fr) != 2:
        raise TypeError(f"feature_range={fr!r} must be two numbers (a, b) with a < b")
    a, b = (check_real(v, "feature_range") for v in fr)
    if not (np.isfinite(a) and np.isfinite(b) and a < b):
        raise ValueError(f"feature_range={fr!r} must be two finite numbers with a < b")
    return a, b


_OPTIONS = {
    "minmax": {"feature_range"},
    "standardize": set(),
    "scale": {"divisor"},
    "maxabs": set(),
    "quantize": {"qdtype", "scale", "zero_point", "symmetric"},
    "dequantize": {"qdtype", "scale", "zero_point"},
}


QDTYPES = ("uint8", "uint16", "int8", "int16")  # quantize targets (ONNX QuantizeLinear's integer types)
# onnxruntime's symmetric range of a signed type (quant_utils.ONNX_INT_TYPE_SYMMETRIC_RANGE)
_SYMMETRIC_RANGE = {"int8": (-127.0, 127.0), "int16": (-32767.0, 32767.0)}


def quantize_scale_zp(lo, hi, qrow, symmetric: bool, input_dtype: str):
    """(scale, zero_point) float64 arrays from per-feature min/max, as onnxruntime's
    ``quantization.quant_utils.compute_scale_zp`` (1.32.0) computes them: the range
    extended to hold 0 (and made [-m, m] when ``symmetric``), ``scale = (rmax -
    rmin) / (qmax - qmin)`` in float64, ``zero_point = round(qmin - rmin / scale)``
    (ties to even; ``round((qmin + qmax) / 2)`` when symmetric), and scale 1, zero
    point 0 when the scale is below ``input_dtype``'s smallest normal.  For uint8
    this is ONNX DynamicQuantizeLinear's rule, in float64."""
    qmin, qmax = qrow.min, qrow.max
    if symmetric:
        qmin, qmax = _SYMMETRIC_RANGE.get(qrow.name, (qmin, qmax))
    rmin = np.minimum(np.asarray(lo, dtype=np.float64), 0.0)
    rmax = np.maximum(np.asarray(hi, dtype=np.float64), 0.0)
    if symmetric:
        absmax = np.maximum(np.abs(rmin), np.abs(rmax))
        rmin, rmax = -absmax, absmax
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        scale = (rmax - rmin) / (qmax - qmin)
        if symmetric:
            zp = np.full(scale.shape, np.rint((qmin + qmax) / 2.0))
        else:
            zp = np.clip(np.rint(qmin - rmin / scale), qrow.min, qrow.max)
    # onnxruntime's floor: the data dtype's smallest normal (float16: the stored
    # float16 scale must not be 0); x's of other dtypes are float32 to it
    if input_dtype == "float16":
        tiny = scale.astype(np.float16) == 0
    else:
        tiny = scale < np.finfo(np.float64 if input_dtype == "float64" else np.float32).tiny
    return np.where(tiny, 1.0, scale), np.where(tiny, 0.0, zp)


def fit(x, transform, *, axis=None, accumulator="pairwise", acc_dtype="float64", nan_policy="raise", **options) -> Params:
    """Fit the statistics ``transform`` needs on ``x``; returns an immutable :class:`Params`.

    ========== ==================================================================
    transform  statistics (per feature when ``axis`` is given)
    ========== ==================================================================
    minmax     ``min``, ``max``; option ``feature_range=(0, 1)``
    standardize ``mean``, ``var``, ``std`` (ddof 0) with ``accumulator`` in ``acc_dtype``
    scale      option ``divisor`` (default: the integer input dtype's max, 255 or 65535)
    maxabs     ``maxabs = max(|min|, |max|)``
    quantize   ``scale = (max(hi,0) - min(lo,0)) / (qmax - qmin)`` and
               ``zero_point = rint(qmin - min(lo,0) / scale)`` in float64 (ONNX
               DynamicQuantizeLinear for uint8; onnxruntime's ``compute_scale_zp``
               for every qdtype), or both given; ``qdtype`` uint8, uint16, int8 or
               int16; ``symmetric=True``: the range is [-m, m], ``m = max(|lo|, |hi|)``,
               over [-127, 127] (int8) / [-32767, 32767] (int16) / [0, qmax]
               (unsigned), with ``zero_point`` 0 / 0 / 128 or 32768 (onnxruntime's
               symmetric quantizer).  A scale below the smallest normal (float32's;
               float64's for float64 x; for float16 x, one that is 0 in float16) is
               replaced by scale 1, zero point 0, as onnxruntime does
    dequantize ``scale`` and ``zero_point`` given (or the params of a quantize)
    ========== ==================================================================

    ``axis=None`` fits one set over all elements; ``axis`` naming every axis but
    the last fits per column (2-D, as scikit-learn) or per channel (channel-last
    images).  Zero range or zero std is kept as fitted; transforms then scale
    by 1 (scikit-learn's convention).  min/max are exact; mean and variance are
    rounded as the accumulator table in this module says.  An accumulator that
    overflows on finite data (float16 past 65504) gives inf/NaN statistics, the
    measured behaviour, with a ``RuntimeWarning`` naming ``acc_dtype``.  A
    ``dask.array.Array`` is fitted chunk by chunk on the active dask scheduler
    (:mod:`kernels.dask_array`), with the same partials merged in the same order:
    the same bits.

    Rounding: every accumulator operation rounds to nearest even in ``acc_dtype``
    (min/max are exact); fit takes no ``rounding=``.  The rounding modes of
    :func:`kernels.transform` and of pipeline steps (``rounding=``) apply to the
    transform's compute dtype, after the statistics, which are fitted as above
    and rounded to nearest even into the compute dtype (``kernel_plan``).
    """
    if type(x).__module__.startswith("dask."):  # a dask array: its chunks, on the active scheduler
        from .dask_array import fit as fit_dask

        return fit_dask(x, transform, axis=axis, accumulator=accumulator, acc_dtype=acc_dtype, nan_policy=nan_policy,
                        **options)
    return _fit_array(x, transform, axis=axis, accumulator=accumulator, acc_dtype=acc_dtype, nan_policy=nan_policy,
                      **options)


class _InMemory:
    """The statistics of one C-contiguous array, computed by this module's kernels."""

    def __init__(self, x, row):
        self.flat = x.view(row.storage).reshape(-1)
        self.row = row

    def minmax(self, nfeat):
        return _minmax(self.flat, nfeat, self.row)

    def moments(self, nfeat, acc_row, accumulator, nan_tag):
        return _moments_kernel(self.flat, nfeat, self.row.tag, acc_row.tag, _ACC_TAGS[accumulator], nan_tag, LANES)


@serialised
def _fit_array(x, transform, **kw) -> Params:
    transform = check_choice(transform, TRANSFORMS, "transform")
    x, row = check_array(x)
    return fit_from(x.shape, row, _InMemory(x, row), transform, **kw)


def fit_from(shape, row, source, transform, *, axis=None, accumulator="pairwise", acc_dtype="float64",
             nan_policy="raise", stacklevel=5, **options) -> Params:
    """:func:`fit` of data of ``shape`` and dtype ``row`` whose statistics ``source``
    computes (``minmax(nfeat)`` and ``moments(nfeat, acc_row, accumulator, nan_tag)``,
    as :class:`_InMemory` does): every check, option and rule of :func:`fit`."""
    transform = check_choice(transform, TRANSFORMS, "transform")
    size = int(np.prod(shape))
    given = {k: options.pop(k) for k in GIVEN[transform] if k in options and transform not in ("scale", "quantize", "dequantize")}
    if given:
        # statistics given instead of fitted: nothing is computed from x
        p = params(transform, input_dtype=row.name, **given, **options)
        if p.nfeat > 1 and shape[-1] != p.nfeat:
            raise ValueError(f"{', '.join(given)} give {p.nfeat} features; x has shape {tuple(shape)} (features last)")
        return p
    axis = normalize_axis(axis, len(shape))
    accumulator = check_choice(accumulator, ACCUMULATORS, "accumulator")
    acc_row = check_dtype(acc_dtype, "acc_dtype")
    if not acc_row.can_compute:
        raise TypeError(f"acc_dtype={acc_row.name!r} {acc_row.family.compute_refusal(acc_row.name)}; "
                        f"use one of: {', '.join(ACC_DTYPES)}")
    nan_policy = check_choice(nan_policy, NAN_POLICIES, "nan_policy")
    unknown = set(options) - _OPTIONS[transform]
    if unknown:
        raise TypeError(f"fit() got option(s) {sorted(unknown)} that {transform!r} does not take; "
                        f"it takes: {sorted(_OPTIONS[transform]) or 'none'}")
    nfeat = _nfeat(shape, axis)
    stats: dict[str, np.ndarray] = {}
    opts: dict = {}

    need_minmax = transform in ("minmax", "maxabs") or (
        transform == "quantize" and options.get("scale") is None
    )
    nan_count = np.zeros(nfeat, dtype=np.int64)
    if need_minmax or transform == "standardize" or not row.is_integer:
        lo, hi, nan_count = source.minmax(nfeat)
        if nan_count.any() and nan_policy == "raise":
            raise ValueError(
                f"x contains {int(nan_count.sum())} NaN value(s); pass nan_policy='omit' to skip them "
                "or nan_policy='propagate' to get NaN statistics"
            )
        if (np.isinf(lo).any() or np.isinf(hi).any()) and nan_policy != "propagate":
            raise ValueError(
                "x contains inf, so the fitted statistics are not finite; pass finite data, params "
                "fitted elsewhere, or nan_policy='propagate' to accept inf/NaN statistics"
            )
        if nan_policy == "propagate":
            lo = np.where(nan_count > 0, np.nan, lo)
            hi = np.where(nan_count > 0, np.nan, hi)
        if need_minmax:
            stats["min"], stats["max"] = lo, hi
    stats["count"] = size // nfeat - nan_count
    if nan_policy == "omit" and (stats["count"] == 0).any():
        raise ValueError("x has no non-NaN values to fit (in at least one feature); pass data or params")

    if transform == "minmax":
        opts["feature_range"] = _feature_range(options)
    elif transform == "maxabs":
        stats["maxabs"] = np.maximum(np.abs(stats["min"]), np.abs(stats["max"]))
    elif transform == "standardize":
        nan_tag = _NAN_OMIT if nan_policy == "omit" and nan_count.any() else _NAN_KEEP
        res = source.moments(nfeat, acc_row, accumulator, nan_tag)
        stats["count"], stats["mean"], stats["var"], stats["std"] = res
        # finite data whose sums overflow a 16-bit accumulator give inf/NaN here:
        # that is the accumulator's measured behaviour, kept, but never silent
        finite_data = ((nan_count == 0) | (nan_policy == "omit")) & np.isfinite(lo) & np.isfinite(hi)
        if not np.all(np.isfinite(stats["var"]) | ~finite_data):
            # bfloat16 has float32's range, so only float64 is wider than either
            wider = {"float16": "'float32'", "bfloat16": "'float64'", "float32": "'float64'"}.get(acc_row.name)
            fix = (f"use a wider acc_dtype such as {wider}" if wider else
                   "no wider acc_dtype exists: scale x down first (e.g. x / 2.0**600), then fit")
            warnings.warn(
                f"standardize statistics overflowed acc_dtype={acc_row.name!r} (largest finite "
                f"{acc_row.max:g}): mean/var are inf or NaN; {fix}",
                RuntimeWarning,
                stacklevel=stacklevel,  # fit's caller
            )
    elif transform == "scale":
        divisor = options.get("divisor")
        if divisor is None:
            if not row.is_integer:
                raise ValueError(f"scale of {row.name} data needs divisor=, e.g. divisor=255")
            divisor = row.max
        divisor = check_real(divisor, "divisor")
        if not np.isfinite(divisor) or divisor == 0:
            raise ValueError(f"divisor={divisor!r} must be finite and nonzero")
        stats["divisor"] = np.full(nfeat, divisor)
    elif transform in ("quantize", "dequantize"):
        qrow = check_dtype(options.get("qdtype", "uint8"), "qdtype")
        if qrow.name not in QDTYPES:
            raise TypeError(f"qdtype={qrow.name!r} must be one of: {', '.join(QDTYPES)}")
        opts["qdtype"] = qrow.name
        qmin, qmax = qrow.min, qrow.max
        scale, zp = options.get("scale"), options.get("zero_point")
        symmetric = options.get("symmetric", False)
        if not isinstance(symmetric, (bool, np.bool_)):
            raise TypeError(f"symmetric={symmetric!r} must be True or False")
        if (scale is None) != (zp is None):
            raise ValueError("give both scale= and zero_point=, or neither to fit them from min/max")
        if symmetric and scale is not None:
            raise ValueError("symmetric=True fits scale and zero_point: give it without scale= and zero_point=")
        opts["scale_given"] = scale is not None
        if symmetric:
            opts["symmetric"] = True
        if scale is None:
            if transform == "dequantize":
                raise ValueError("dequantize needs scale= and zero_point= (or the params of a quantize fit)")
            scale, zp = quantize_scale_zp(stats["min"], stats["max"], qrow, bool(symmetric), row.name)
        scale, zp = check_reals(scale, "scale", nfeat), check_reals(zp, "zero_point", nfeat)
        if not (np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError(f"scale={scale!r} must be finite and > 0")
        if not ((zp >= qmin).all() and (zp <= qmax).all() and (zp == np.rint(zp)).all()):
            raise ValueError(f"zero_point={zp!r} must be whole numbers in [{qmin:g}, {qmax:g}] ({qrow.name})")
        stats["scale"], stats["zero_point"] = scale, zp

    return Params(
        transform=transform,
        input_dtype=row.name,
        axis=axis,
        nfeat=nfeat,
        stats=Frozen(stats, arrays=True),
        options=Frozen(opts),
        accumulator=accumulator,
        acc_dtype=acc_row.name,
        nan_policy=nan_policy,
    )
