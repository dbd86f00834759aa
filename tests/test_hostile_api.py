"""Hostile input (issue 12): each case a clear error naming the argument, or a correct result."""

import copy
import math
import pickle
import warnings

import ml_dtypes
import numpy as np
import pytest

import kernels as K
from reference import reference_transform, same_bits


@pytest.mark.parametrize("dtype, lo, hi", [("uint8", 300, 400), ("uint8", -5, -1), ("uint16", 70000, 80000),
                                           ("uint8", math.inf, math.inf), ("uint16", -math.inf, -1)])
def test_domain_outside_an_integer_dtype_is_refused_not_a_hang(dtype, lo, hi):
    # the bounds used to be cast to the dtype (300 -> 44 in uint8) and the key search wrapped forever
    with pytest.raises(ValueError, match=f"no {dtype} value lies in .*holds 0"):
        K.domain(dtype, lo, hi)


def test_domain_bounds_are_clamped_and_typed():
    d = K.domain("uint8", -math.inf, math.inf)
    assert (d.lo, d.hi, d.size) == (0.0, 255.0, 256)
    assert K.domain("uint8", 250, 1000).size == 6
    assert K.domain("float16", math.inf, math.inf).size == 1  # +inf is a float16 value
    with pytest.raises(TypeError, match="lo='1'"):
        K.domain("uint8", "1", 2)
    with pytest.raises(TypeError, match="hi=True"):
        K.domain("uint8", 0, True)


def test_masked_arrays_are_refused_naming_the_fix():
    m = np.ma.masked_array(np.array([1.0, 2.0, 3.0, 1e9]), mask=[0, 0, 0, 1])
    for _ in range(2):  # the second call of a dtype used to ignore the mask silently
        for fn in (lambda: K.fit(m, "standardize"), lambda: K.transform(m, "minmax"), lambda: K.cast(m, "float16"),
                   lambda: K.distinct(m), lambda: K.measure(m, "minmax")):
            with pytest.raises(TypeError, match=r"MaskedArray.*compressed\(\)"):
                fn()
    assert K.fit(m.compressed(), "standardize")["mean"][0] == np.ma.mean(m) == 2.0


def test_minmax_whose_range_overflows_float16_warns_naming_compute_dtype():
    """max = 65535 is inf in float16, so s = 1/inf = 0 is finite and the table looked fine."""
    x = np.uint16([0, 1000, 65535])
    with pytest.warns(RuntimeWarning, match="compute_dtype='float16'.*wider compute_dtype"):
        K.transform(x, "minmax", compute_dtype="float16")
    for formula in K.FORMULAS["minmax"]:
        with pytest.warns(RuntimeWarning, match="compute_dtype='float16'"):
            K.transform(x, "minmax", formula=formula, compute_dtype="float16")
    # hi - lo overflows float32 though both ends are finite there
    with pytest.warns(RuntimeWarning, match="hi - lo"):
        K.transform(np.array([-3e38, 3e38], np.float32), "minmax")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        K.transform(x, "minmax", compute_dtype="float32")


@pytest.mark.parametrize("compute", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("qdtype", ["uint8", "uint16"])
@pytest.mark.parametrize("out", ["float32", "float64", "qdtype"])
def test_quantize_stays_within_0_qmax_in_every_compute_dtype(compute, qdtype, out):
    """qmax = 65535 is 65536 in bfloat16 and inf in float16: the clip bound is exact."""
    qmax = np.iinfo(qdtype).max
    x = np.array([-5.0, 0.0, 1.0, qmax / 2, qmax - 1, qmax, qmax + 0.4, 2.0 * qmax, np.nan], np.float32)
    p = K.fit(np.array([0, qmax], np.float32), "quantize", qdtype=qdtype)
    out = qdtype if out == "qdtype" else out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = K.transform(x, "quantize", params=p, compute_dtype=compute, output_dtype=out)
    yf = y.astype(np.float64)
    assert yf[:-1].min() >= 0 and yf[:-1].max() <= qmax  # NaN stays NaN in a float output
    assert yf[-2] == qmax and yf[0] == 0  # saturated both ways
    assert same_bits(y, reference_transform(x, p, "round", compute, out))


@pytest.mark.parametrize("axis, error", [(4, ValueError), (-3, ValueError), (0.5, TypeError), ("0", TypeError),
                                         (False, TypeError), ((0, 1.0), TypeError)])
def test_bad_axis_is_refused(axis, error):
    x = np.ones((3, 2), np.float32)
    with pytest.raises(error, match="axis="):
        K.fit(x, "minmax", axis=axis)
    with pytest.raises(error, match="axis="):
        K.transform(x, "minmax", axis=axis)


def test_good_axes_still_work():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    for axis in (0, -2, (0,), [0], np.int64(0)):
        assert K.fit(x, "minmax", axis=axis).nfeat == 2


@pytest.mark.parametrize("dtype", [">f4", ">u2", ">f8", ">f2"])
def test_big_endian_arrays_are_accepted_as_their_values(dtype):
    x = np.array([0, 1, 2, 300, 7], dtype)
    native = x.astype(np.dtype(dtype).newbyteorder("="))
    assert same_bits(K.transform(x, "minmax"), K.transform(native, "minmax"))
    assert same_bits(K.cast(x, "float16"), K.cast(native, "float16"))
    assert K.distinct(x).values.tolist() == K.distinct(native).values.tolist()
    assert x.dtype == np.dtype(dtype) and x.tolist() == native.tolist()  # not modified


def test_big_endian_dtype_arguments_name_the_byte_order():
    x = np.arange(3, dtype=np.uint16)
    with pytest.raises(TypeError, match="dtype='>f4' is a non-native.*'float32'"):
        K.cast(x, ">f4")
    with pytest.raises(TypeError, match="output_dtype='>f2'.*'float16'"):
        K.transform(x, "minmax", output_dtype=">f2")
    with pytest.raises(TypeError, match="byte-swapped"):
        K.cast(x, "float32", out=np.empty(3, ">f4"))


@pytest.mark.parametrize("kw, error, name", [
    (dict(divisor="abc"), TypeError, "divisor"), (dict(divisor=np.array([1, 2])), TypeError, "divisor"),
    (dict(divisor=True), TypeError, "divisor"), (dict(divisor=None), None, None), (dict(divisor=np.float32(2)), None, None),
    (dict(divisor=np.array(4.0)), None, None),
])
def test_divisor_types(kw, error, name):
    x = np.arange(4, dtype=np.uint8)
    if error is None:
        d = kw["divisor"]
        assert K.fit(x, "scale", **kw)["divisor"][0] == (255 if d is None else float(d))
    else:
        with pytest.raises(error, match=name):
            K.fit(x, "scale", **kw)


def test_quantize_scale_and_zero_point_shapes_and_types():
    x = np.ones((4, 2), np.float32)
    with pytest.raises(ValueError, match="scale has shape"):
        K.fit(x.reshape(-1), "quantize", scale=[1, 2], zero_point=0)
    with pytest.raises(TypeError, match="zero_point"):
        K.fit(x.reshape(-1), "quantize", scale=1, zero_point="3")
    with pytest.raises(TypeError, match="scale"):
        K.fit(x.reshape(-1), "quantize", scale=True, zero_point=0)
    p = K.fit(x, "quantize", axis=0, scale=[1, 2], zero_point=[0, 3])
    assert p["scale"].tolist() == [1, 2] and p["zero_point"].tolist() == [0, 3]
    with pytest.raises(TypeError, match="feature_range"):
        K.fit(x, "minmax", feature_range=("0", "1"))


def test_measure_all_nan_under_propagate_counts_nan_apart():
    x = np.full(7, np.nan, np.float32)
    r = K.measure(x, "minmax", nan_policy="propagate", repeat=1)
    assert (r.n, r.nan_in, r.distinct_in, r.distinct_out, r.collisions) == (7, 7, 0, 0, 0)
    assert math.isnan(r.survival) and r.error_points == 0
    # one all-NaN column among finite ones
    t = np.array([[np.nan, 1], [np.nan, 2], [np.nan, 3]], np.float32)
    r = K.measure(t, "minmax", axis=0, nan_policy="propagate", repeat=1)
    assert (r.nan_in, r.distinct_in, r.distinct_out) == (3, 3, 3)


def test_float64_accumulator_overflow_does_not_advise_float32():
    with pytest.warns(RuntimeWarning, match="acc_dtype='float64'.*no wider acc_dtype") as w:
        K.fit(np.array([1e300, -1e300, 0]), "standardize")
    assert "'float32'" not in str(w[0].message)
    with pytest.warns(RuntimeWarning, match="such as 'float64'"):  # bfloat16 has float32's range
        K.fit(np.array([1e30, -1e30, 0], np.float32), "standardize", acc_dtype="bfloat16")


@pytest.mark.parametrize("transform, opts", [("minmax", {}), ("standardize", {}), ("quantize", {"qdtype": "uint16"}),
                                             ("scale", {"divisor": 7})])
def test_params_pickle_deepcopy_and_stay_immutable(transform, opts):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    p = K.fit(x, transform, axis=0, **opts)
    for q in (pickle.loads(pickle.dumps(p)), copy.deepcopy(p), copy.copy(p), p.feature(1)):
        for k, v in q.stats.items():
            with pytest.raises(ValueError):
                v.flags.writeable = True
            with pytest.raises(ValueError):
                v[...] = 0
            if v.base is not None and isinstance(v.base, np.ndarray):
                with pytest.raises(ValueError):
                    v.base.flags.writeable = True
        with pytest.raises(TypeError):
            q.stats["min"] = np.zeros(3)
        with pytest.raises(AttributeError):
            q.transform = "scale"
    q = pickle.loads(pickle.dumps(p))
    assert q == p and copy.deepcopy(p) == p and dict(q.options) == dict(p.options)
    assert same_bits(K.transform(x, transform, params=q), K.transform(x, transform, params=p))
    assert p.feature(1) == q.feature(1) and p["count"].tolist() == [4, 4, 4]
    with pytest.raises(ValueError):
        p["count"].flags.writeable = True


@pytest.mark.parametrize("kw, error", [(dict(repeat=0), ValueError), (dict(repeat=-1), ValueError),
                                       (dict(repeat=1.5), TypeError), (dict(repeat=True), TypeError),
                                       (dict(exact_points=1), ValueError), (dict(exact_points="9"), TypeError)])
def test_measure_repeat_and_exact_points_are_validated(kw, error):
    with pytest.raises(error, match=next(iter(kw))):
        K.measure(np.arange(5, dtype=np.float32), "minmax", **kw)


def test_one_output_dtype_rule():
    """None: float64 for float64 input, else float32; quantize gives its qdtype,
    dequantize float32 unless its input is float64 (kernels.transforms' table)."""
    for dt, expect in (("float64", "float64"), ("float32", "float32"), ("uint8", "float32"), ("float16", "float32"),
                       ("bfloat16", "float32")):
        x = np.arange(1, 5).astype(ml_dtypes.bfloat16 if dt == "bfloat16" else dt)
        p = K.fit(x, "minmax")
        y = K.transform(x, "minmax", params=p)
        assert y.dtype.name == expect
        assert K.inverse_transform(x, "minmax", p).dtype.name == expect
        assert K.measure(x, "minmax", repeat=1).output_dtype == expect
    x = np.arange(5.0)
    q = K.transform(x, "quantize", qdtype="uint16")
    assert q.dtype == np.uint16
    pq = K.fit(x, "quantize", qdtype="uint16")
    assert K.inverse_transform(q, "quantize", pq).dtype == np.float32
    pd = K.fit(x, "dequantize", scale=0.5, zero_point=3, qdtype="uint16")
    assert K.transform(q, "dequantize", params=pd).dtype == np.float32
    assert K.transform(q.astype(np.float64), "dequantize", params=pd).dtype == np.float64
    assert K.inverse_transform(np.ones(3, np.float32), "dequantize", pd).dtype == np.uint16
    assert K.measure(x, "quantize", qdtype="uint16", repeat=1).output_dtype == "uint16"
    with pytest.raises(TypeError, match="needs a dtype"):
        K.cast(x, None)
    with pytest.raises(TypeError, match="compute_dtype=None"):
        K.transform(x, "minmax", compute_dtype=None)


def _close_float64():
    """float64 values that float32 cannot tell apart, before or after minmax (below
    float32's smallest subnormal)."""
    return np.r_[0.0, np.arange(1, 200) * 1e-50, 1.0]


def _choose_lossless(x, _):
    from kernels.advise import Requirement, choose

    return choose(x, "minmax", Requirement(lossless=True), formulas=["mul_add"], repeat=1)[0].output_dtype


def _cli_measure_json(x, tmp_path):
    import json

    from kernels.cli import main

    f = tmp_path / "x.npy"
    np.save(f, x)
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["measure", "--data", str(f), "--transform", "minmax", "--repeat", "1", "--json"]) == 0
    return json.loads(buf.getvalue())["output_dtype"]


def _audit_recommended(x, tmp_path):
    from kernels.audit import audit

    f = tmp_path / "x.npy"
    np.save(f, x)
    a = audit(str(f))
    assert ("minmax", "float64", "float64") in {(r.name, r.output, r.compute) for r in a.pipelines}
    return a.recommendation.output


FLOAT64_DEFAULT = {
    "transform": lambda x, _: K.transform(x, "minmax").dtype.name,
    "inverse_transform": lambda x, _: K.inverse_transform(x, "minmax", K.fit(x, "minmax")).dtype.name,
    "measure": lambda x, _: K.measure(x, "minmax", repeat=1).output_dtype,
    "measure-cli": _cli_measure_json,
    "pipeline-step": lambda x, _: K.pipeline("minmax").fit(x).transform(x).dtype.name,
    "measure-pipeline": lambda x, _: K.measure(x, K.pipeline("minmax; scale(divisor=2)"), repeat=1).output_dtype,
    "choose-lossless": _choose_lossless,
    "audit-recommendation": _audit_recommended,
}


@pytest.mark.parametrize("entry", list(FLOAT64_DEFAULT))
def test_float64_input_gives_float64_by_default(entry, tmp_path):
    """As scikit-learn: float64 in, float64 out, unless asked otherwise (choose and
    audit: float64 is a candidate, and the only lossless one here)."""
    x = _close_float64()
    assert np.unique(x.astype(np.float32)).size < x.size
    assert FLOAT64_DEFAULT[entry](x, tmp_path) == "float64"
