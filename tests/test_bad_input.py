"""Bad input: a clear exception naming the argument and the fix, never a crash or a silent wrong number."""

import re
import warnings

import numpy as np
import pytest

from kernels import cast, fit, inverse_transform, transform
from kernels.codecs import supported


@pytest.mark.parametrize("fn", [lambda x: cast(x, "float16"), lambda x: fit(x, "minmax"),
                                lambda x: transform(x, "minmax")], ids=["cast", "fit", "transform"])
def test_empty_and_0d(fn):
    with pytest.raises(ValueError, match="empty"):
        fn(np.array([], np.float32))
    with pytest.raises(ValueError, match="0-d"):
        fn(np.float32(3.0) * np.ones((), np.float32))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.complex64, np.bool_, object, "U3"])
def test_unsupported_input_dtype_lists_supported(dtype):
    x = np.zeros(4, dtype=dtype)
    for fn in (lambda: cast(x, "float16"), lambda: transform(x, "minmax"), lambda: fit(x, "minmax")):
        with pytest.raises(TypeError, match=re.escape(supported())):  # every registry row, listed
            fn()


def test_unsupported_target_and_compute_dtypes():
    x = np.arange(4, dtype=np.uint8)
    with pytest.raises(TypeError, match="dtype='int32'"):
        cast(x, "int32")
    with pytest.raises(TypeError, match="compute_dtype"):
        transform(x, "minmax", compute_dtype="uint8")
    with pytest.raises(TypeError, match="acc_dtype"):
        fit(x, "standardize", acc_dtype="uint16")
    with pytest.raises(TypeError, match="output_dtype"):
        transform(x, "minmax", output_dtype="int32")
    with pytest.raises(TypeError, match="compute_dtype"):
        transform(x, "minmax", compute_dtype="int16")  # a registry row, but no float arithmetic
    with pytest.raises(TypeError, match="qdtype"):
        fit(x, "quantize", qdtype="float16")


def test_nan_raises_by_default_naming_nan_policy():
    x = np.array([1, np.nan, 2], np.float32)
    with pytest.raises(ValueError, match="nan_policy"):
        transform(x, "minmax")
    with pytest.raises(ValueError, match="nan_policy"):
        transform(x, "standardize")


def test_inf_in_fit_data_is_refused():
    with pytest.raises(ValueError, match="inf"):
        fit(np.array([1, np.inf], np.float32), "minmax")


def test_unknown_names():
    x = np.arange(4, dtype=np.float32)
    with pytest.raises(ValueError, match="transform="):
        transform(x, "normalize")
    with pytest.raises(ValueError, match="formula="):
        transform(x, "scale", formula="mul_add", divisor=2)
    with pytest.raises(ValueError, match="accumulator="):
        fit(x, "standardize", accumulator="compensated")
    with pytest.raises(ValueError, match="nan_policy="):
        fit(x, "minmax", nan_policy="ignore")
    with pytest.raises(TypeError, match="feature_range"):
        fit(x, "standardize", feature_range=(0, 1))
    with pytest.raises(ValueError, match="divisor"):
        fit(x, "scale")
    with pytest.raises(ValueError, match="divisor"):
        fit(x, "scale", divisor=0)
    with pytest.raises(ValueError, match="feature_range"):
        fit(x, "minmax", feature_range=(1, 0))


def test_non_contiguous_and_3d_work_and_axis_is_checked():
    x = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    assert np.array_equal(transform(x[:, ::2], "minmax"), transform(np.ascontiguousarray(x[:, ::2]), "minmax"))
    assert transform(x, "minmax", axis=(0, 1)).shape == x.shape
    with pytest.raises(ValueError, match="axis"):
        transform(x, "minmax", axis=1)
    with pytest.raises(ValueError, match="axis"):
        transform(x.reshape(-1), "minmax", axis=0)


def test_wrong_out():
    x = np.arange(10, dtype=np.float32)
    with pytest.raises(TypeError, match="out.dtype"):
        cast(x, "float16", out=np.empty(10, np.float32))
    with pytest.raises(ValueError, match="out.shape"):
        transform(x, "minmax", out=np.empty(9, np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        transform(x, "minmax", out=np.empty(20, np.float32)[::2])
    with pytest.raises(ValueError, match="overlaps"):
        buf = np.arange(11, dtype=np.float32)
        transform(buf[:10], "minmax", out=buf[1:])
    with pytest.raises(TypeError, match="out must be"):
        transform(x, "minmax", out=[0] * 10)


def test_in_place_only_when_out_is_x():
    x = np.arange(10, dtype=np.float32)
    y = transform(x, "minmax", out=x)
    assert y is x and x[-1] == 1.0


def test_float16_overflow_past_65504_warns():
    x = np.array([0, 65504, 65535], np.uint16)
    with pytest.warns(RuntimeWarning, match="1 finite value"):
        y = transform(x, "scale", divisor=1, output_dtype="float16")
    assert y.tolist() == [0, 65504, np.inf]
    with pytest.warns(RuntimeWarning, match="compute dtype float16"):
        transform(x, "scale", divisor=1, compute_dtype="float16", output_dtype="float32")


@pytest.mark.parametrize("block", [1 << 20, 4])
def test_overflow_is_counted_in_place_too(block, monkeypatch):
    """The kernels only flag an overflow and a second pass counts it from the inputs;
    with out=x those inputs are overwritten by then, so in-place calls go through a
    block-sized temporary (block 4 here splits the data, per feature rows intact)."""
    import kernels.codecs

    monkeypatch.setattr(kernels.codecs.cast, "IN_PLACE_BLOCK", block)
    x = np.array([1, 16000, 16376, 16384, -20000, np.inf], np.float16)
    expected = int((np.isfinite(x) & (np.abs(x.astype(np.float32) * 4) >= 65520)).sum())
    assert expected == 2
    params = fit(np.ones(1, np.float16), "scale", divisor=0.25)  # x holds inf, so fit elsewhere
    with pytest.warns(RuntimeWarning, match=f": {expected} finite value"):
        y = transform(x, "scale", params=params, compute_dtype="float32", output_dtype="float16", out=x)
    assert y is x and y.tolist() == [4, 64000, 65504, np.inf, -np.inf, np.inf]
    u = np.array([0, 65504, 65519, 65520, 65535], np.uint16)
    with pytest.warns(RuntimeWarning, match=": 2 finite value"):
        h = cast(u, "float16", out=u.view(np.float16))
    assert h.tolist() == [0, 65504, 65504, np.inf, np.inf]
    # per feature: 3 columns with their own ranges, 4 rows
    t = np.array([[1, 20000, 3], [4, 5, 30000], [7, 8, 9], [40000, 11, 12]], np.float32)
    per_col = fit(np.array([[0, 0, 0], [1, 10, 100]], np.float32), "minmax", axis=0)
    expect = transform(t, "minmax", params=per_col, output_dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert transform(t, "minmax", params=per_col, output_dtype="float32", out=t) is t
    assert np.array_equal(t, expect)


def test_params_misuse():
    x = np.arange(10, dtype=np.float32)
    p = fit(x, "minmax")
    with pytest.raises(ValueError, match="fitted for 'minmax'"):
        transform(x, "standardize", params=p)
    with pytest.raises(TypeError, match="params must be"):
        inverse_transform(x, "minmax", {"min": 0})
    with pytest.raises(TypeError, match="together with params"):
        transform(x, "minmax", params=p, feature_range=(0, 2))
    q = fit(x.reshape(5, 2), "minmax", axis=0)
    with pytest.raises(ValueError, match="2 features"):
        transform(x.reshape(2, 5), "minmax", params=q)


def test_not_an_array():
    with pytest.raises(TypeError, match="x must be a numpy array"):
        cast("abc", "float16")


def test_parameters_overflowing_the_compute_dtype_warn():
    x = np.array([-1e300, 0, 1e300])
    with pytest.warns(RuntimeWarning, match="compute_dtype='float32'"):
        y = transform(x, "minmax")
    assert np.isnan(y).all()  # the measured effect, announced
    assert transform(x, "minmax", compute_dtype="float64", output_dtype="float64").tolist() == [0.0, 0.5, 1.0]


def test_all_nan_with_omit_is_refused():
    with pytest.raises(ValueError, match="no non-NaN values"):
        fit(np.array([np.nan, np.nan], np.float32), "minmax", nan_policy="omit")


def test_division_by_a_parameter_that_rounds_to_zero_is_ieee_not_an_exception():
    """divisor 1e-30 is 0 in float16: x / 0 is inf (NaN for 0 / 0), as numpy's float16 gives."""
    x = np.array([0, 1, 2], dtype=np.uint8)
    with pytest.warns(RuntimeWarning):
        y = transform(x, "scale", divisor=1e-30, compute_dtype="float16", output_dtype="float32")
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = (x.astype(np.float16) / np.float16(1e-30)).astype(np.float32)
    np.testing.assert_array_equal(y, expected)


def test_float16_accumulator_overflow_warns():
    """Finite data whose squared deviations overflow a float16 accumulator (M2 ~ 1e8 >
    65504): the inf/NaN variance is the accumulator's measured behaviour, kept, but
    announced; a float32 accumulator fits the same data silently and finitely."""
    x = np.random.default_rng(0).normal(0, 100, 10_000).astype(np.float16)
    for accumulator in ("naive", "kahan", "welford"):
        with pytest.warns(RuntimeWarning, match="overflowed acc_dtype='float16'"):
            p = fit(x, "standardize", accumulator=accumulator, acc_dtype="float16")
        assert not np.isfinite(p["var"]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(fit(x, "standardize", acc_dtype="float32")["var"]).all()


def test_signed_quantize_bad_options_name_the_fix():
    x = np.array([-1.0, 2.0], np.float32)
    with pytest.raises(ValueError, match=r"zero_point.*\[-128, 127\]"):
        fit(x, "quantize", qdtype="int8", scale=0.1, zero_point=128)
    with pytest.raises(ValueError, match="symmetric"):
        fit(x, "quantize", qdtype="int8", symmetric=True, scale=0.1, zero_point=0)
    with pytest.raises(TypeError, match="symmetric"):
        fit(x, "quantize", qdtype="int8", symmetric="yes")
    with pytest.raises(TypeError, match="symmetric"):
        fit(x, "dequantize", qdtype="int8", symmetric=True, scale=0.1, zero_point=0)


@pytest.mark.parametrize("rounding", ["nearest_even", "up"])
def test_overflow_warning_points_at_the_callers_line(rounding):
    """transform and inverse_transform reach the warning through different numbers of
    frames (dask hand-off, thread wrapper, program path): it names this file either way."""
    x = np.array([0, 1e6], np.float32)
    p = fit(x, "scale", divisor=1e-3)
    for call in (lambda: transform(x, "scale", params=p, compute_dtype="float16", output_dtype="float16", rounding=rounding),
                 lambda: inverse_transform(x, "scale", p, compute_dtype="float16", output_dtype="float16", rounding=rounding)):
        with pytest.warns(RuntimeWarning, match="overflow") as rec:
            call()
        assert {w.filename for w in rec} == {__file__}
