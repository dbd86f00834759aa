"""transform / inverse_transform: bit for bit against the op-by-op numpy reference."""

import warnings

import numpy as np
import pytest
from conftest import CROSS_DTYPES, sample
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference import NP, reference_transform, same_bits

from kernels import COMPUTE_DTYPES, FORMULAS, REGISTRY, fit, inverse_transform, transform
from kernels.stats import QDTYPES

OUTS = CROSS_DTYPES
AFFINE = [(t, f) for t in ("minmax", "standardize", "scale", "maxabs") for f in FORMULAS[t]]


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*a, **k)


def _source(transform_name, input_dtype):
    x = sample(input_dtype, n=600)
    if not REGISTRY[input_dtype].is_integer:
        x = x[np.isfinite(x.astype(np.float64))]
        x = x[np.abs(x.astype(np.float64)) < 60000]  # keep the fitted range finite in every compute dtype
    return x


def _options(t, input_dtype):
    return {"divisor": 255.0} if t == "scale" else {}


@pytest.mark.parametrize("out", OUTS)
@pytest.mark.parametrize("compute", COMPUTE_DTYPES)
@pytest.mark.parametrize("t,formula", AFFINE, ids=[f"{t}-{f}" for t, f in AFFINE])
@pytest.mark.parametrize("input_dtype", ["float32"])  # every input codec: test_every_input_dtype_bitexact
def test_affine_bitexact(input_dtype, t, formula, compute, out):
    x = _source(t, input_dtype)
    if formula == "fma" and x.size > 200:
        x = x[:: max(1, x.size // 200)]  # the fma reference uses Fractions
    params = fit(x, t, **_options(t, input_dtype))
    ours = _quiet(transform, x, t, params=params, formula=formula, compute_dtype=compute, output_dtype=out)
    ref = reference_transform(x, params, formula, compute, out)
    assert same_bits(ours, ref)


@pytest.mark.parametrize("compute", COMPUTE_DTYPES)
@pytest.mark.parametrize("formula", ["sub_div", "mul_add"])
@pytest.mark.parametrize("input_dtype", CROSS_DTYPES)
def test_every_input_dtype_bitexact(input_dtype, formula, compute):
    """The input codec is independent of the output stage: every input, two output dtypes."""
    x = _source("minmax", input_dtype)
    params = fit(x, "minmax")
    for out in ("float16", "uint8"):
        ours = _quiet(transform, x, "minmax", params=params, formula=formula, compute_dtype=compute, output_dtype=out)
        assert same_bits(ours, reference_transform(x, params, formula, compute, out)), out


@pytest.mark.parametrize("compute", COMPUTE_DTYPES)
@pytest.mark.parametrize("out", OUTS)
def test_minmax_feature_range_bitexact(compute, out):
    x = sample("float32", n=900)
    for formula in FORMULAS["minmax"]:
        params = fit(x, "minmax", feature_range=(-1, 1))
        ours = _quiet(transform, x, "minmax", params=params, formula=formula, compute_dtype=compute, output_dtype=out)
        assert same_bits(ours, reference_transform(x, params, formula, compute, out)), formula


@pytest.mark.parametrize("symmetric", [False, True], ids=["asym", "sym"])
@pytest.mark.parametrize("compute", COMPUTE_DTYPES)
@pytest.mark.parametrize("qdtype", QDTYPES)
def test_quantize_dequantize_bitexact(compute, qdtype, symmetric):
    x = sample("float32", n=900)
    params = fit(x, "quantize", qdtype=qdtype, symmetric=symmetric)
    q = _quiet(transform, x, "quantize", params=params, compute_dtype=compute)
    assert q.dtype == NP[qdtype]
    assert same_bits(q, reference_transform(x, params, "round", compute, qdtype))
    dq = fit(q, "dequantize", qdtype=qdtype, scale=params["scale"], zero_point=params["zero_point"])
    back = _quiet(transform, q, "dequantize", params=dq, compute_dtype=compute, output_dtype="float32")
    assert same_bits(back, reference_transform(q, dq, "affine", compute, "float32"))
    # inverse_transform of quantize is dequantize with the same numbers
    inv = _quiet(inverse_transform, q, "quantize", params, compute_dtype=compute)
    assert same_bits(inv, back)


@pytest.mark.parametrize("compute", COMPUTE_DTYPES)
@pytest.mark.parametrize("source", ["uint8", "uint16", "float32"])
def test_quantize_rounds_every_tie_to_even(compute, source):
    """scale 2 makes x / scale land on k + 0.5 for every odd x: each tie must go to the
    even integer, as numpy's rint does (the kernel's llvm.rint, or its written-out form
    for float16 compute)."""
    x = np.arange(0, 256 if source == "uint8" else 664, dtype=source)
    params = fit(x, "quantize", qdtype="uint16", scale=2.0, zero_point=3.0)
    q = _quiet(transform, x, "quantize", params=params, compute_dtype=compute)
    ref = reference_transform(x, params, "round", compute, "uint16")
    assert same_bits(q, ref)
    # where x and x / 2 are exact in the compute dtype (11 bits in float16, 8 in bfloat16)
    exact = x.astype(np.float64) <= {"float16": 2048, "bfloat16": 255}.get(compute, 1 << 24)
    assert np.array_equal(q[exact], np.rint(x[exact] / 2.0) + 3)
    assert (q[exact][1::2] % 2 == 1).all()  # 0.5, 1.5, 2.5 ... -> 0, 2, 2, 4, ..., plus zero point 3


@pytest.mark.parametrize("compute", COMPUTE_DTYPES)
@pytest.mark.parametrize("qdtype", ["int8", "int16"])
def test_signed_quantize_clips_at_qmin_and_keeps_nan_zero(compute, qdtype):
    """Signed targets clip to [qmin, qmax] (not [0, qmax]); NaN passes the clip and encodes to 0."""
    info = np.iinfo(qdtype)
    params = fit(np.array([-1.0, 1.0], np.float32), "quantize", qdtype=qdtype)
    x = np.array([-1e30, -5.0, -1.0, 0.0, 1.0, 5.0, 1e30, np.nan, -np.inf, np.inf], np.float32)
    q = _quiet(transform, x, "quantize", params=params, compute_dtype=compute)
    assert same_bits(q, reference_transform(x, params, "round", compute, qdtype))
    assert q[0] == q[1] == q[8] == info.min and q[5] == q[6] == q[9] == info.max and q[7] == 0


def test_quantize_fitted_like_onnx_dynamic_quantize_linear():
    x = np.array([-1.0, 0.0, 0.5, 3.0], np.float32)
    p = fit(x, "quantize")
    scale = (3.0 - -1.0) / 255
    assert p["scale"][0] == scale
    assert p["zero_point"][0] == np.clip(np.rint(1.0 / scale), 0, 255)
    q = transform(x, "quantize", params=p)
    assert q.dtype == np.uint8 and q[1] == p["zero_point"][0]


def test_sklearn_minmaxscaler_bit_for_bit():
    from sklearn.preprocessing import MinMaxScaler

    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 7)) * rng.uniform(0.1, 1e4, 7) + rng.uniform(-50, 50, 7)
    for fr in [(0, 1), (-1, 1), (2, 7)]:
        ref = MinMaxScaler(feature_range=fr).fit_transform(X)
        ours = transform(X, "minmax", formula="mul_add", compute_dtype="float64", output_dtype="float64", axis=0,
                         feature_range=fr)
        assert same_bits(ours, ref), fr
        scaler = MinMaxScaler(feature_range=fr).fit(X)
        p = fit(X, "minmax", axis=0, feature_range=fr)
        assert same_bits(
            inverse_transform(ours, "minmax", p, compute_dtype="float64", output_dtype="float64"),
            scaler.inverse_transform(ref),
        )


def test_per_channel_images_match_per_channel_loop():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (32, 24, 3), dtype=np.uint8)
    img[..., 1] //= 4  # channels with different ranges
    ours = transform(img, "minmax", axis=(0, 1), output_dtype="float16", formula="sub_div")
    for c in range(3):
        ch = np.ascontiguousarray(img[..., c])
        assert same_bits(ours[..., c], transform(ch, "minmax", output_dtype="float16", formula="sub_div"))


def test_params_from_training_data_apply_outside_range_without_wrapping():
    train = np.array([10, 20, 200], np.uint8)
    p = fit(train, "minmax")
    test = np.array([0, 5, 10, 255], np.uint8)
    y = transform(test, "minmax", params=p, formula="sub_div")
    ref = (test.astype(np.float32) - np.float32(10)) / np.float32(190)
    assert same_bits(y, ref)
    assert y[0] < 0 and y[-1] > 1  # x - lo on uint8 would have wrapped to 246


def test_constant_data_scales_by_one():
    for t in ("minmax", "standardize", "maxabs"):
        x = np.full(100, 7.0, np.float32) if t != "maxabs" else np.zeros(100, np.float32)
        for formula in FORMULAS[t]:
            y = transform(x, t, formula=formula)
            assert np.isfinite(y).all()
            assert (y == (x - (7 if t != "maxabs" else 0))).all()


def test_standardize_matches_sklearn_standardscaler_on_float64():
    from sklearn.preprocessing import StandardScaler

    X = np.random.default_rng(3).normal(5, 2, (1000, 4))
    ref = StandardScaler().fit_transform(X)
    ours = transform(X, "standardize", compute_dtype="float64", output_dtype="float64", axis=0)
    # mean/std differ only by accumulation order: within a few ulps of 1
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-13)


# ---------------------------------------------------------------- hypothesis


finite32 = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(np.float32, st.integers(2, 300), elements=finite32),
    t=st.sampled_from([("minmax", f) for f in FORMULAS["minmax"]] + [("standardize", "sub_div"), ("scale", "div"),
                                                                     ("maxabs", "mul")]),
    compute=st.sampled_from(COMPUTE_DTYPES),
    out=st.sampled_from(["float16", "bfloat16", "float32", "float64", "uint8"]),
)
def test_sorted_inputs_give_sorted_outputs_and_input_untouched(x, t, compute, out):
    name, formula = t
    xs = np.sort(x)
    before = xs.copy()
    opts = {"divisor": 255.0} if name == "scale" else {}
    y = _quiet(transform, xs, name, formula=formula, compute_dtype=compute, output_dtype=out, **opts)
    assert np.array_equal(xs, before)
    y64 = y.astype(np.float64)
    assert not np.isnan(y64).any()
    assert (np.diff(y64) >= 0).all()  # every step is monotone non-decreasing for a positive scale


# Round-trip bound: forward then inverse, both in compute dtype c with unit roundoff u,
# returns x within (k * u) * (|x| + |lo| + rng) + tiny for a small k (a handful of rounded
# ops, each contributing at most u relative to the magnitudes above; tiny, c's smallest
# normal, covers inputs that underflow when rounded into c).  k = 8 is generous.
ROUNDTRIP_K = 8


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(np.float64, st.integers(2, 200), elements=st.floats(-1e6, 1e6, allow_nan=False)),
    formula=st.sampled_from(FORMULAS["minmax"]),
    compute=st.sampled_from(["float32", "float64"]),
)
def test_minmax_round_trip_within_stated_bound(x, formula, compute):
    p = fit(x, "minmax")
    y = transform(x, "minmax", params=p, formula=formula, compute_dtype=compute, output_dtype=compute)
    back = inverse_transform(y, "minmax", p, formula=formula, compute_dtype=compute, output_dtype="float64")
    u = float(np.finfo(NP[compute]).eps) / 2
    lo, hi = p["min"][0], p["max"][0]
    bound = ROUNDTRIP_K * u * (np.abs(x) + abs(lo) + (hi - lo)) + float(np.finfo(NP[compute]).smallest_normal)
    assert (np.abs(back - x) <= bound).all()


def test_uint8_round_trip_through_float16_is_exact():
    x = np.arange(256, dtype=np.uint8)
    for formula in FORMULAS["minmax"]:
        p = fit(x, "minmax")
        y = transform(x, "minmax", params=p, formula=formula, output_dtype="float16")
        back = inverse_transform(y, "minmax", p, formula=formula, output_dtype="uint8")
        assert np.array_equal(back, x), formula


def test_transform_out_is_honoured_and_returned():
    x = sample("float32")
    out = np.empty(x.shape, np.float16)
    assert transform(x, "minmax", out=out, output_dtype="float16") is out


def test_kernels_are_cached_on_disk():
    """A fresh process loads the compiled kernels from the disk cache instead of compiling."""
    import subprocess
    import sys

    code = (
        "import numpy as np, kernels; from kernels.transforms import _apply_kernel; "
        "from kernels.stats import _key_extremes; "
        "kernels.transform(np.arange(10, dtype=np.uint8), 'minmax', output_dtype='float16'); "
        "print(sum(_apply_kernel.serial.stats.cache_hits.values()), sum(_key_extremes.serial.stats.cache_hits.values()))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)  # writes the cache
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    hits = [int(v) for v in res.stdout.split()]
    assert hits[0] >= 1 and hits[1] >= 1, res.stdout


@pytest.mark.parametrize("compute", ["float16", "bfloat16"])
def test_16bit_fma_keeps_infinities(compute):
    """fma in an emulated 16-bit dtype: +-inf inputs give +-inf (IEEE), not NaN.

    The round-to-odd step once read the NaN TwoSum error of an infinite sum as
    'inexact' and stepped -inf's bit pattern into a NaN."""
    params = fit(np.array([0.0, 10.0], np.float32), "minmax")
    x = np.array([np.inf, -np.inf, 1e5, -1e5, 3.0, np.nan], np.float32)
    ours = _quiet(transform, x, "minmax", params=params, formula="fma", compute_dtype=compute, output_dtype="float32")
    ref = reference_transform(x, params, "fma", compute, "float32")
    assert same_bits(ours, ref)
    assert list(np.sign(ours[:2])) == [1, -1] and np.isinf(ours[:2]).all()


def test_float16_fma_matches_fractions_on_random_triples():
    """float16 fma runs its TwoSum in float32: checked against exact rationals on
    random finite float16 triples spanning subnormals to 65504 (outputs may overflow)."""
    from fractions import Fraction

    from numba import njit
    from reference import round_exact_scalar

    from kernels.codecs import REGISTRY as REG
    from kernels.codecs import encode, fma_c

    tag = REG["float16"].tag

    @njit
    def fma16(a, b, c, out):
        for i in range(a.size):
            out[i] = encode(tag, fma_c(tag, a[i], b[i], c[i]))

    rng = np.random.default_rng(7)
    bits = rng.integers(0, 1 << 16, (3, 60_000), dtype=np.uint16)
    vals = bits.view(np.float16)
    vals = vals[:, np.isfinite(vals).all(axis=0)]
    # near-cancelling triples too: c = -round(a * b), the sum is the product's rounding error
    a2, b2 = vals[0, :5000], vals[1, :5000]
    c2 = (-(a2.astype(np.float64) * b2.astype(np.float64))).astype(np.float16)
    keep = np.isfinite(c2)
    a = np.concatenate([vals[0], a2[keep]])
    b = np.concatenate([vals[1], b2[keep]])
    c = np.concatenate([vals[2], c2[keep]])
    out = np.empty(a.size, np.uint16)
    fma16(a.astype(np.float32), b.astype(np.float32), c.astype(np.float32), out)
    ref = np.array(
        [round_exact_scalar(Fraction(float(p)) * Fraction(float(q)) + Fraction(float(r)), np.float16) for p, q, r in zip(a, b, c)],
        dtype=np.float16,
    )
    same = (out == ref.view(np.uint16)) | ((ref == 0) & (out.view(np.float16) == 0))
    assert same.all(), (a[~same][:3], b[~same][:3], c[~same][:3])


@pytest.mark.parametrize("source", ["int8", "int16"])
def test_signed_inputs_through_tables_match_the_direct_kernel(source):
    """Large signed inputs take the 256-code table (int8, looked up by bit pattern:
    -128 is pattern 128) or the program's code table; the same bits as the reference
    on every code, in every position."""
    from kernels.pipeline import pipeline

    info = np.iinfo(source)
    codes = np.arange(int(info.min), int(info.max) + 1).astype(source)
    x = np.random.default_rng(5).permutation(np.tile(codes, max(1, 300_000 // codes.size)))
    params = fit(codes, "minmax")
    for out in ("float16", "int8", "uint8"):
        y = _quiet(transform, x, "minmax", params=params, compute_dtype="float32", output_dtype=out)
        assert same_bits(y, reference_transform(x, params, "mul_add", "float32", out)), out
    pipe = pipeline("minmax(feature_range=(-1, 1))", "cast(output_dtype=int8)").fit(codes)
    big, small = pipe.transform(x), pipe.transform(codes)
    assert big.dtype == np.int8
    assert np.array_equal(big, small[(x.astype(np.int64) - int(info.min))])
