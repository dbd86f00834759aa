"""scikit-learn's scalers as data (verified against scikit-learn 1.9.1).

Read from ``sklearn/preprocessing/_data.py`` (MinMaxScaler, StandardScaler,
MaxAbsScaler, RobustScaler, ``_handle_zeros_in_scale``, ``_is_constant_feature``)
and ``sklearn/utils/extmath.py`` (``_incremental_mean_and_var``,
``_safe_accumulator_op``), scikit-learn 1.9.1.  This module does not import
scikit-learn: ``fit`` repeats the library's numpy calls in the library's order
(so its statistics are the library's, bit for bit), ``build`` states the
transform's arithmetic as :class:`~kernels.program.Op` data.

What the library computes in (``validate_data(dtype=supported_float_dtypes)``):
float64, float32 and float16 arrays are kept; every other dtype (uint8, uint16,
bfloat16) is converted to float64 first.  That dtype ``D`` is the output dtype.

* MinMaxScaler fits in ``D`` (float32 data give float32 ``scale_``/``min_``;
  float16 data float16 ones, threshold ``10 * finfo(D).eps``), transform
  ``X *= scale_; X += min_`` in ``D``, ``clip`` to ``feature_range`` cast to ``D``.
* StandardScaler fits in float64 always (corrected two-pass), transform casts
  ``mean_``/``scale_`` to ``D`` and computes ``X -= mean; X /= scale`` in ``D``.
* MaxAbsScaler fits ``nanmax(abs(X))`` in ``D``; ``X /= scale_`` in ``D``.
* RobustScaler: ``center_ = nanmedian`` is in ``D``, but ``scale_`` comes from
  ``nanpercentile`` and is float64, so ``X /= scale_`` is a float64 division
  rounded into ``D`` (numpy's in-place mixed-dtype ufunc).

Transforms assume ``x`` has the dtype the statistics were fitted on (the
``fit_transform`` case): sklearn's MinMax/MaxAbs/Robust use the stored
attribute's dtype, which ``fit`` (float64 arrays) no longer records.
"""

from __future__ import annotations

import math
from fractions import Fraction
from statistics import NormalDist

import numpy as np

from ..program import Op
from ._base import Built, Exact, Preset, affine

VERSION = "scikit-learn 1.9.1"
SOURCE = "sklearn/preprocessing/_data.py, sklearn/utils/extmath.py (scikit-learn 1.9.1)"
VERIFIED = f"{VERSION}: tests/test_presets_sklearn.py, fitted attributes and transform/inverse_transform bit for bit"
_KEPT = ("float64", "float32", "float16")  # supported_float_dtypes(numpy), highest first
_IN_DTYPES = ("uint8", "uint16", "float16", "bfloat16", "float32", "float64")


# ---------------------------------------------------------------- validation


def _options(name: str, defaults: dict, options: dict) -> dict:
    unknown = [k for k in options if k not in defaults]
    if unknown:
        raise ValueError(f"{name} has no option {', '.join(map(repr, unknown))}; its options: {', '.join(defaults)}")
    o = {**defaults, **options}
    for k, v in o.items():
        if isinstance(defaults[k], bool) and not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{name} option {k}={v!r} must be a bool (True or False)")
    return o


def _pair(name: str, key: str, v) -> tuple[float, float]:
    # sklearn's constraint is ``tuple``; a list is accepted here as the same two numbers
    if not isinstance(v, (tuple, list)) or len(v) != 2 or not all(
        isinstance(a, (int, float, np.integer, np.floating)) and not isinstance(a, bool) for a in v
    ):
        raise TypeError(f"{name} option {key}={v!r} must be a tuple of two numbers, e.g. {key}=(0, 1)")
    return float(v[0]), float(v[1])


def _compute_dtype(in_dtype) -> str:
    """The dtype sklearn computes and returns in for input ``in_dtype``."""
    name = getattr(in_dtype, "name", in_dtype)
    if isinstance(name, np.dtype):
        name = name.name
    if not isinstance(name, str) or name not in _IN_DTYPES:
        raise TypeError(f"in_dtype={in_dtype!r} is not supported; use one of: {', '.join(_IN_DTYPES)}")
    return name if name in _KEPT else "float64"


def _as_2d(x) -> np.ndarray:
    """x as sklearn's check_array leaves it: 2-D (features last), float dtype."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(
            f"Expected 2D array, got {x.ndim}D array instead: features are the last axis; "
            "reshape your data with x.reshape(-1, 1) for one feature"
        )
    if x.ndim > 2:
        x = x.reshape(-1, x.shape[-1])
    if x.size == 0:
        raise ValueError(f"x has shape {x.shape}: sklearn needs at least one sample and one feature")
    if x.dtype.kind not in "biuf" and x.dtype.name != "bfloat16":
        raise TypeError(f"x.dtype={x.dtype} is not numeric; sklearn's scalers take numbers")
    x = np.asarray(x, dtype=x.dtype.name if x.dtype.name in _KEPT else np.float64)
    if np.isinf(x).any():
        raise ValueError("Input X contains infinity or a value too large for dtype('%s')." % x.dtype)
    return x


def _zeros_to_one(scale: np.ndarray) -> np.ndarray:
    """``_handle_zeros_in_scale``: scales below 10 eps of their dtype become 1."""
    scale = np.asarray(scale, copy=True)
    scale[scale < 10 * np.finfo(scale.dtype).eps] = 1.0
    return scale


def _f64(d: dict) -> dict:
    return {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in d.items() if v is not None}


def _need(stats, keys, name):
    if stats is None or any(k not in stats for k in keys):
        raise ValueError(f"{name} needs fitted statistics {', '.join(keys)}: pass stats=preset.fit(x, **options)")
    return [np.asarray(stats[k], dtype=np.float64).reshape(-1) for k in keys]


def _vec(v):
    """A Fraction or a sequence of Fractions (one per feature) as a list."""
    return list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]


def _map(f, *cols):
    cols = [_vec(c) for c in cols]
    n = max(len(c) for c in cols)
    cols = [c * n if len(c) == 1 else c for c in cols]
    return [f(*t) for t in zip(*cols)]


def _exact_percentile(values, counts, q) -> Fraction:
    """numpy's 'linear' percentile, in exact arithmetic (q in percent, exact)."""
    counts = np.asarray(counts, dtype=np.int64)
    cum = np.cumsum(counts)
    n = int(cum[-1])
    h = (n - 1) * Fraction(q) / 100
    lo = math.floor(h)

    def at(k):  # the k-th (0-based) element of the sorted data
        return Fraction(float(values[int(np.searchsorted(cum, k, side="right"))]))

    a = at(lo)
    return a if h == lo else a + (h - lo) * (at(lo + 1) - a)


# ---------------------------------------------------------------- MinMaxScaler

_MINMAX = {"feature_range": (0, 1), "clip": False}


def _minmax_opts(o):
    o = _options("sklearn.MinMaxScaler", _MINMAX, o)
    fr = _pair("sklearn.MinMaxScaler", "feature_range", o["feature_range"])
    if fr[0] >= fr[1]:
        raise ValueError(f"Minimum of desired feature range must be smaller than maximum. Got {o['feature_range']}.")
    return fr, bool(o["clip"])


def _minmax_fit(x, **options):
    (a, b), _ = _minmax_opts(options)
    X = _as_2d(x)
    fr0, fr1 = np.asarray(a, dtype=X.dtype), np.asarray(b, dtype=X.dtype)
    data_min = np.asarray(np.nanmin(X, axis=0))
    data_max = np.asarray(np.nanmax(X, axis=0))
    data_range = data_max - data_min
    scale = (fr1 - fr0) / _zeros_to_one(data_range)
    mn = fr0 - data_min * scale
    return _f64({"scale_": scale, "min_": mn, "data_min_": data_min, "data_max_": data_max, "data_range_": data_range})


def _minmax_build(in_dtype, stats=None, **options):
    (a, b), clip = _minmax_opts(options)
    d = _compute_dtype(in_dtype)
    scale, mn = _need(stats, ("scale_", "min_"), "sklearn.MinMaxScaler")
    ops = [Op("mul", d, (scale,)), Op("add", d, (mn,))]
    if clip:  # xp.clip(X, asarray(feature_range[i], dtype=X.dtype))
        t = np.dtype(d).type
        ops.append(Op("clip", None, (float(t(a)), float(t(b)))))
    inv = Built((Op("sub", d, (mn,)), Op("div", d, (scale,))), d, d)
    return Built(tuple(ops), d, d, inverse=inv)


def _minmax_exact_fit(values, counts, **options):
    (a, b), _ = _minmax_opts(options)
    lo, hi = Fraction(float(values[0])), Fraction(float(values[-1]))
    rng = hi - lo
    scale = (Fraction(b) - Fraction(a)) / (rng or Fraction(1))
    return {"data_min_": lo, "data_max_": hi, "data_range_": rng, "scale_": scale, "min_": Fraction(a) - lo * scale}


def _minmax_ideal(st, **options):
    (a, b), clip = _minmax_opts(options)
    a, b = Fraction(a), Fraction(b)
    slope = _map(lambda lo, hi: (b - a) / ((hi - lo) or Fraction(1)), st["data_min_"], st["data_max_"])
    icept = _map(lambda lo, s: a - lo * s, st["data_min_"], slope)
    out = (affine(slope, icept),)
    return out + ((Exact("clip", (a, b)),) if clip else ())


# ---------------------------------------------------------------- StandardScaler

_STANDARD = {"with_mean": True, "with_std": True}


def _standard_fit(x, **options):
    o = _options("sklearn.StandardScaler", _STANDARD, options)
    X = _as_2d(x)
    if not o["with_mean"] and not o["with_std"]:
        return {}
    # _incremental_mean_and_var(X, last_mean=0.0, last_variance=0.0, last_sample_count=zeros(int64)),
    # line by line: every intermediate in float64 (_safe_accumulator_op upcasts the sums)
    up = {"dtype": np.float64} if X.dtype != np.float64 else {}
    last_sample_count = np.asarray(np.zeros(X.shape[1], np.int64), dtype=np.float64)
    last_mean, last_variance = 0.0, 0.0
    last_sum = last_mean * last_sample_count
    nan_mask = np.isnan(X)
    sum_op = np.nansum if nan_mask.any() else np.sum
    new_sum = np.asarray(sum_op(X, axis=0, **up))
    new_sample_count = X.shape[0] - np.asarray(sum_op(nan_mask.astype(X.dtype), axis=0, **up))
    updated_sample_count = last_sample_count + new_sample_count
    mean = (last_sum + new_sum) / updated_sample_count
    T = new_sum / new_sample_count
    temp = X - T
    correction = np.asarray(sum_op(temp, axis=0))
    temp **= 2
    new_unnormalized_variance = np.asarray(sum_op(temp, axis=0))
    new_unnormalized_variance -= correction**2 / new_sample_count
    last_unnormalized_variance = last_variance * last_sample_count
    with np.errstate(divide="ignore", invalid="ignore"):
        last_over_new_count = last_sample_count / new_sample_count
        updated = (
            last_unnormalized_variance
            + new_unnormalized_variance
            + last_over_new_count / updated_sample_count * (last_sum / last_over_new_count - new_sum) ** 2
        )
    zeros = last_sample_count == 0
    updated[zeros] = new_unnormalized_variance[zeros]
    var = updated / updated_sample_count
    out = {"mean_": mean}
    if o["with_std"]:
        n = updated_sample_count[0] if updated_sample_count.max() == updated_sample_count.min() else updated_sample_count
        eps = np.finfo(np.float64).eps
        constant = var <= n * eps * var + (n * mean * eps) ** 2  # _is_constant_feature
        scale = np.sqrt(var)
        scale[constant] = 1.0
        out.update(var_=var, scale_=scale)
    return _f64(out)


def _standard_build(in_dtype, stats=None, **options):
    o = _options("sklearn.StandardScaler", _STANDARD, options)
    d = _compute_dtype(in_dtype)
    fwd, inv = [], []
    if o["with_mean"]:
        (mean,) = _need(stats, ("mean_",), "sklearn.StandardScaler")
        fwd.append(Op("sub", d, (mean,)))  # X -= astype(mean_, X.dtype): the op rounds mean_ into d
    if o["with_std"]:
        (scale,) = _need(stats, ("scale_",), "sklearn.StandardScaler")
        fwd.append(Op("div", d, (scale,)))
        inv.append(Op("mul", d, (scale,)))
    if o["with_mean"]:
        inv.append(Op("add", d, (mean,)))
    if not fwd:  # check_array's conversion only
        fwd = inv = [Op("round", d)]
    return Built(tuple(fwd), d, d, inverse=Built(tuple(inv), d, d))


def _standard_exact_fit(values, counts, **options):
    _options("sklearn.StandardScaler", _STANDARD, options)
    v = [Fraction(float(a)) for a in values]
    c = [int(k) for k in counts]
    n = sum(c)
    mean = sum(ci * vi for ci, vi in zip(c, v)) / n
    var = sum(ci * (vi - mean) ** 2 for ci, vi in zip(c, v)) / n
    return {"mean_": mean, "var_": var}


def _standard_ideal(st, **options):
    o = _options("sklearn.StandardScaler", _STANDARD, options)
    mean = st["mean_"] if o["with_mean"] else Fraction(0)
    if o["with_std"]:
        return (Exact("sqrt", (mean, st["var_"])),)
    return (affine(1, _map(lambda m: -m, mean)),)


# ---------------------------------------------------------------- MaxAbsScaler

_MAXABS = {"clip": False}


def _maxabs_fit(x, **options):
    _options("sklearn.MaxAbsScaler", _MAXABS, options)
    X = _as_2d(x)
    max_abs = np.asarray(np.nanmax(np.abs(X), axis=0))
    return _f64({"max_abs_": max_abs, "scale_": _zeros_to_one(max_abs)})


def _maxabs_build(in_dtype, stats=None, **options):
    o = _options("sklearn.MaxAbsScaler", _MAXABS, options)
    d = _compute_dtype(in_dtype)
    (scale,) = _need(stats, ("scale_",), "sklearn.MaxAbsScaler")
    ops = (Op("div", d, (scale,)),) + ((Op("clip", None, (-1.0, 1.0)),) if o["clip"] else ())
    return Built(ops, d, d, inverse=Built((Op("mul", d, (scale,)),), d, d))


def _maxabs_exact_fit(values, counts, **options):
    _options("sklearn.MaxAbsScaler", _MAXABS, options)
    m = max(abs(Fraction(float(values[0]))), abs(Fraction(float(values[-1]))))
    return {"max_abs_": m, "scale_": m or Fraction(1)}


def _maxabs_ideal(st, **options):
    o = _options("sklearn.MaxAbsScaler", _MAXABS, options)
    out = (affine(_map(lambda m: 1 / (m or Fraction(1)), st["max_abs_"])),)
    return out + ((Exact("clip", (-1, 1)),) if o["clip"] else ())


# ---------------------------------------------------------------- RobustScaler

_ROBUST = {"with_centering": True, "with_scaling": True, "quantile_range": (25.0, 75.0), "unit_variance": False}


def _robust_opts(options):
    o = _options("sklearn.RobustScaler", _ROBUST, options)
    q = _pair("sklearn.RobustScaler", "quantile_range", o["quantile_range"])
    if not 0 <= q[0] <= q[1] <= 100:
        raise ValueError("Invalid quantile range: %s" % str(o["quantile_range"]))
    return o, q


def _norm_adjust(q_min, q_max) -> float:
    # the library's stats.norm.ppf (scipy, a scikit-learn dependency): imported only when asked for
    from scipy import stats

    return stats.norm.ppf(q_max / 100.0) - stats.norm.ppf(q_min / 100.0)


def _robust_fit(x, **options):
    o, q = _robust_opts(options)
    X = _as_2d(x)
    out = {}
    if o["with_centering"]:
        out["center_"] = np.nanmedian(X, axis=0)
    if o["with_scaling"]:
        quantiles = np.transpose([np.nanpercentile(X[:, j], o["quantile_range"]) for j in range(X.shape[1])])
        scale = _zeros_to_one(quantiles[1] - quantiles[0])
        if o["unit_variance"]:
            scale = scale / _norm_adjust(*q)
        out["scale_"] = scale
    return _f64(out)


def _robust_build(in_dtype, stats=None, **options):
    o, _ = _robust_opts(options)
    d = _compute_dtype(in_dtype)
    fwd, inv = [], []
    if o["with_centering"]:
        (center,) = _need(stats, ("center_",), "sklearn.RobustScaler")
        fwd.append(Op("sub", d, (center,)))  # center_ has X's dtype
    if o["with_scaling"]:
        (scale,) = _need(stats, ("scale_",), "sklearn.RobustScaler")
        # scale_ is float64 (nanpercentile): X /= scale_ divides in float64, stores in X's dtype
        fwd += [Op("div", "float64", (scale,)), Op("round", d)]
        inv += [Op("mul", "float64", (scale,)), Op("round", d)]
    if o["with_centering"]:
        inv.append(Op("add", d, (center,)))
    if not fwd:
        fwd = inv = [Op("round", d)]
    return Built(tuple(fwd), d, d, inverse=Built(tuple(inv), d, d))


def _robust_exact_fit(values, counts, **options):
    """Exact median and quantile difference; with unit_variance the normal-quantile
    adjustment is irrational and enters as the float64 nearest it (statistics.NormalDist)."""
    o, (q0, q1) = _robust_opts(options)
    out = {}
    if o["with_centering"]:
        out["center_"] = _exact_percentile(values, counts, 50)
    if o["with_scaling"]:
        s = (_exact_percentile(values, counts, q1) - _exact_percentile(values, counts, q0)) or Fraction(1)
        if o["unit_variance"]:
            nd = NormalDist()
            s = s / Fraction(nd.inv_cdf(q1 / 100.0) - nd.inv_cdf(q0 / 100.0))
        out["scale_"] = s
    return out


def _robust_ideal(st, **options):
    o, _ = _robust_opts(options)
    center = st["center_"] if o["with_centering"] else Fraction(0)
    scale = st["scale_"] if o["with_scaling"] else Fraction(1)
    slope = _map(lambda s: 1 / s, scale)
    return (affine(slope, _map(lambda c, s: -c * s, center, slope)),)


# ---------------------------------------------------------------- the presets

PRESETS = [
    Preset(
        name="sklearn.MinMaxScaler",
        library="sklearn",
        verified=VERIFIED,
        source=SOURCE,
        summary="X *= scale_; X += min_ in X's float dtype (ints -> float64); scale_/min_ fitted in that dtype",
        options=_MINMAX,
        build=_minmax_build,
        ideal=_minmax_ideal,
        fit=_minmax_fit,
        exact_fit=_minmax_exact_fit,
        per_feature=True,
        fit_from_extremes=True,  # nanmin, nanmax
    ),
    Preset(
        name="sklearn.StandardScaler",
        library="sklearn",
        verified=VERIFIED,
        source=SOURCE,
        summary="X -= mean_; X /= scale_ in X's float dtype; mean_/var_ by float64 corrected two-pass",
        options=_STANDARD,
        build=_standard_build,
        ideal=_standard_ideal,
        fit=_standard_fit,
        exact_fit=_standard_exact_fit,
        per_feature=True,
        # its sums follow numpy's summation order over the whole column, which chunks do not reproduce
        dask_fit_hint="or use the standardize step (axis=0 per feature), whose fit is computed chunk by chunk bit "
                      "for bit",
    ),
    Preset(
        name="sklearn.MaxAbsScaler",
        library="sklearn",
        verified=VERIFIED,
        source=SOURCE,
        summary="X /= scale_ (max |X| per feature, zero -> 1) in X's float dtype",
        options=_MAXABS,
        build=_maxabs_build,
        ideal=_maxabs_ideal,
        fit=_maxabs_fit,
        exact_fit=_maxabs_exact_fit,
        per_feature=True,
        fit_from_extremes=True,  # nanmax(abs(X)) = max(|min|, |max|)
    ),
    Preset(
        name="sklearn.RobustScaler",
        library="sklearn",
        verified=VERIFIED,
        source=SOURCE,
        summary="X -= center_ (nanmedian, X's dtype); X /= scale_ (nanpercentile IQR, float64 division)",
        options=_ROBUST,
        build=_robust_build,
        ideal=_robust_ideal,
        fit=_robust_fit,
        exact_fit=_robust_exact_fit,
        per_feature=True,
        dask_fit_hint="its median and percentiles need the sorted values of each feature",
    ),
]
