"""Every public function over random shapes, dtypes (supported and not), options and
values: a result equal to an independent numpy reference, or a TypeError/ValueError
naming the argument; inputs never modified.  Derandomized and bounded (about a
minute with warm caches): dtypes are drawn from a fixed set so Numba compiles a
bounded number of specialisations."""

import warnings

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kernels as K
from reference import NP, convert, numpy_distinct, reference_transform, same_bits

SUPPORTED = list(NP)
UNSUPPORTED = ["int32", "bool", "complex64"]
SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


def _np_dtype(name):
    return NP.get(name, np.dtype(name))


@st.composite
def arrays(draw, dtypes=SUPPORTED + UNSUPPORTED, min_size=0, finite=False):
    name = draw(st.sampled_from(dtypes))
    shape = draw(st.sampled_from([(), (0,), (1,), (7,), (3, 2), (2, 2, 2)] if min_size == 0 else [(1,), (7,), (3, 2), (4, 3)]))
    n = int(np.prod(shape))
    pool = [0.0, -0.0, 1.0, 2.5, 255.0, 300.7, 65504.0, 65520.0, 1e-8, -3.25, 1e6]
    if not finite:
        pool += [np.nan, np.inf, -np.inf]
    vals = np.array(draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n)), np.float64).reshape(shape)
    with np.errstate(all="ignore"):
        x = convert(vals, name) if name in NP else vals.astype(name)
        if finite and name in NP:  # 65520 and 1e6 overflow float16 to inf: not finite data
            x = convert(np.where(np.isfinite(x.astype(np.float64)), vals, 1.0), name)  # 1: e8m0 has no 0
    if draw(st.booleans()) and x.ndim == 2:
        x = np.asfortranarray(x)  # non-contiguous
    return x


def _call(fn, x):
    """(result or exception, input unchanged?)."""
    before = x.copy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = fn()
    except (TypeError, ValueError) as e:
        res = e
    assert x.dtype == before.dtype and x.tobytes() == before.tobytes(), "input modified"
    return res


def _refused(res, x, argument):
    """Unsupported dtype or empty/0-d input: the error names the argument."""
    if x.dtype.name not in NP or x.size == 0 or x.ndim == 0:
        assert isinstance(res, (TypeError, ValueError)) and argument in str(res), res
        return True
    return False


@settings(max_examples=60, **SETTINGS)
@given(x=arrays(), target=st.sampled_from(SUPPORTED + UNSUPPORTED + [None]))
def test_cast(x, target):
    res = _call(lambda: K.cast(x, target), x)
    if _refused(res, x, "x"):
        return
    if target not in NP:
        assert isinstance(res, TypeError) and "dtype" in str(res)
        return
    src = x.astype(np.float64) if x.dtype == NP["bfloat16"] and target == "float64" else x
    assert same_bits(res, convert(src, target))


@settings(max_examples=60, **SETTINGS)
@given(x=arrays(), transform=st.sampled_from(["minmax", "maxabs", "standardize", "scale"]),
       axis=st.sampled_from([None, 0, 1, 0.5, "0"]), nan_policy=st.sampled_from(["omit", "propagate", "raise"]))
def test_fit(x, transform, axis, nan_policy):
    opts = {"divisor": 3.0} if transform == "scale" else {}
    res = _call(lambda: K.fit(x, transform, axis=axis, nan_policy=nan_policy, **opts), x)
    if _refused(res, x, "x"):
        return
    xf = x.astype(np.float64)
    if axis is not None:
        if not isinstance(axis, int) or x.ndim != 2 or axis != 0:
            assert isinstance(res, (TypeError, ValueError)) and "axis" in str(res)
            return
        cols = xf
    else:
        cols = xf.reshape(-1, 1)
    nan = np.isnan(cols).any(axis=0)
    if isinstance(res, Exception):
        # NaN under 'raise', inf data, or an all-NaN feature under 'omit'
        assert np.isnan(cols).any() or np.isinf(cols).any(), res
        assert "nan_policy" in str(res) or "NaN" in str(res) or "inf" in str(res)
        return
    assert res.nfeat == cols.shape[1]
    if transform in ("minmax", "maxabs"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo = np.where(nan & (nan_policy == "propagate"), np.nan, np.nanmin(cols, axis=0))
            hi = np.where(nan & (nan_policy == "propagate"), np.nan, np.nanmax(cols, axis=0))
        assert np.array_equal(res["min"], lo, equal_nan=True) and np.array_equal(res["max"], hi, equal_nan=True)
    elif transform == "standardize" and np.isfinite(cols).all():
        np.testing.assert_allclose(res["mean"], cols.mean(axis=0), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(res["var"], cols.var(axis=0), rtol=1e-9, atol=1e-290)
    elif transform == "scale":
        assert res["divisor"].tolist() == [3.0] * res.nfeat


@settings(max_examples=60, **SETTINGS)
@given(x=arrays(finite=True), t=st.sampled_from([("minmax", f) for f in K.FORMULAS["minmax"]]
                                                + [("standardize", "sub_div"), ("scale", "mul"), ("maxabs", "div"),
                                                   ("quantize", "round")]),
       compute=st.sampled_from(K.COMPUTE_DTYPES + ("uint8", None)), out=st.sampled_from(SUPPORTED + ["int32", None]))
def test_transform(x, t, compute, out):
    name, formula = t
    opts = {"divisor": 255.0} if name == "scale" else {}
    res = _call(lambda: K.transform(x, name, formula=formula, compute_dtype=compute, output_dtype=out, **opts), x)
    if _refused(res, x, "x"):
        return
    if compute not in K.COMPUTE_DTYPES:
        assert isinstance(res, TypeError) and "compute_dtype" in str(res)
        return
    if out == "int32":
        assert isinstance(res, TypeError) and "output_dtype" in str(res)
        return
    p = K.fit(x, name, **opts)
    default = "uint8" if name == "quantize" else ("float64" if x.dtype == np.float64 else "float32")
    expect = reference_transform(np.ascontiguousarray(x), p, formula, compute, out or default)
    assert same_bits(res, expect)


@settings(max_examples=40, **SETTINGS)
@given(y=arrays(finite=True), compute=st.sampled_from(K.COMPUTE_DTYPES), out=st.sampled_from(SUPPORTED + [None]),
       divisor=st.sampled_from([255.0, 3.0, 0.1, "2", True]))
def test_inverse_transform(y, compute, out, divisor):
    """inverse(scale) is y * d, each operation in the compute dtype."""
    try:
        p = K.fit(np.ones(1, np.float32), "scale", divisor=divisor)
    except TypeError as e:
        assert "divisor" in str(e)
        return
    res = _call(lambda: K.inverse_transform(y, "scale", p, compute_dtype=compute, output_dtype=out), y)
    if _refused(res, y, "x"):
        return
    cd = NP[compute]
    yin = y.astype(np.float64) if y.dtype == NP["bfloat16"] else y
    with np.errstate(all="ignore"):
        # the kernel is y * d + 0 (the affine inverse with lo = 0): -0.0 comes back +0.0
        prod = ((convert(yin, compute) * convert(np.float64(divisor), compute)).astype(cd) + cd.type(0)).astype(cd)
    target = out or ("float64" if y.dtype == np.float64 else "float32")
    p64 = prod.astype(np.float64) if compute == "bfloat16" else prod
    assert same_bits(res, convert(p64, target) if compute != target else prod)


@settings(max_examples=40, **SETTINGS)
@given(x=arrays())
def test_distinct(x):
    res = _call(lambda: K.distinct(x), x)
    if _refused(res, x, "x"):
        return
    v = x.astype(np.float64).reshape(-1) + 0.0
    assert res.nan == int(np.isnan(v).sum()) and len(res) == numpy_distinct(x)
    assert np.array_equal(res.values.astype(np.float64) + 0.0, np.unique(v[~np.isnan(v)]))
    assert int(res.counts.sum()) + res.nan == x.size


@settings(max_examples=15, **SETTINGS)
@given(x=arrays(dtypes=["uint8", "float16", "float32", "int32"], finite=True),
       nan_policy=st.sampled_from(["propagate", "omit"]), repeat=st.sampled_from([1, 0, 1.5]),
       out=st.sampled_from(["float16", "float32", None]))
def test_measure(x, nan_policy, repeat, out):
    res = _call(lambda: K.measure(x, "minmax", nan_policy=nan_policy, repeat=repeat, output_dtype=out), x)
    if repeat != 1:  # checked before the source
        assert isinstance(res, (TypeError, ValueError)) and "repeat" in str(res)
        return
    if _refused(res, x, "source"):
        return
    y = K.transform(x, "minmax", output_dtype=out)
    assert (res.n, res.distinct_in, res.distinct_out) == (x.size, numpy_distinct(x), numpy_distinct(y))
    assert res.output_dtype == (out or "float32")


ALL16 = {name: np.arange(1 << 16, dtype=np.uint16).view(NP[name]) for name in ("float16", "bfloat16")}


@settings(max_examples=60, **SETTINGS)
@given(dtype=st.sampled_from(["uint8", "uint16", "float16", "bfloat16", "float64", "int32"]),
       lo=st.sampled_from([-np.inf, -70000.0, -5.0, -0.0, 0.0, 0.3, 1.0, 300.0, 65504.0, 70000.0, np.inf, "1", None]),
       hi=st.sampled_from([-np.inf, -1.0, 0.0, 0.3, 2.0, 255.0, 400.0, 65535.0, 80000.0, np.inf, None]))
def test_domain(dtype, lo, hi):
    try:
        d = K.domain(dtype, lo, hi)
    except (TypeError, ValueError) as e:
        d = e
    if dtype not in ("uint8", "uint16", "float16", "bfloat16"):
        assert isinstance(d, (TypeError, ValueError)) and "dtype" in str(d)
        return
    if isinstance(lo, str):
        assert isinstance(d, TypeError) and "lo=" in str(d)
        return
    allv = ALL16[dtype].astype(np.float64) if dtype in ALL16 else np.arange(np.iinfo(dtype).max + 1, dtype=np.float64)
    info = np.iinfo(dtype) if dtype.startswith("uint") else ml_dtypes.finfo(NP[dtype])
    a = (0.0 if dtype.startswith("uint") else -float(info.max)) if lo is None else lo
    b = float(info.max) if hi is None else hi
    inside = np.unique(allv[(allv >= a) & (allv <= b)] + 0.0)  # NaN excluded, -0.0 == 0.0
    if inside.size == 0 or a > b:
        assert isinstance(d, ValueError) and ("lo" in str(d) or "no " in str(d))
        return
    assert (d.size, d.lo, d.hi) == (inside.size, inside[0], inside[-1])
    assert np.array_equal(np.unique(d.values().astype(np.float64) + 0.0), inside)


if __name__ == "__main__":
    pytest.main([__file__, "-q"])
