"""Steps, pipelines, given statistics and the program kernel that runs them.

References are independent: the transforms' own kernels (a one-step pipeline
must give their bits), numpy / ml_dtypes scalar arithmetic (each op rounds
once), and Python integers for the integer conversions.
"""

from __future__ import annotations

import math
import pickle
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import kernels
from kernels import lut
from kernels.program import INT_TYPES, OVERFLOWS, ROUNDINGS, Op, run_program
from kernels.steps import SpecError, parse

RNG = np.random.default_rng(20261202)
MEAN, STD = kernels.CONSTANTS["imagenet"]["mean"], kernels.CONSTANTS["imagenet"]["std"]


def _bits(a):
    a = np.asarray(a)
    return a.view(np.uint16) if a.dtype.itemsize == 2 and a.dtype.kind != "u" else a


def _inputs(dtype):
    if dtype == "uint8":
        return np.arange(256, dtype=np.uint8).repeat(20)  # past the lookup-table threshold
    if dtype == "uint16":
        return np.arange(65536, dtype=np.uint16)
    big = 65504.0 if dtype == "float16" else 70000.0  # past float16's max only where x can hold it
    x = np.concatenate([RNG.random(20000) * 3 - 1, [0, 1, -0.0, 0.5, 1e-30, big, 255]])
    return x.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)


# ---------------------------------------------------------------- a one-step pipeline is the transform


# every formula in every compute dtype on float32 data, and every transform's
# default formula on each input dtype (each case compiles its own program)
CASES = [
    (t, f, c, "float32") for t in ("minmax", "standardize", "maxabs", "quantize") for f in kernels.FORMULAS[t]
    for c in ("float16", "bfloat16", "float32", "float64")
] + [
    (t, kernels.DEFAULT_FORMULA[t], "float32", d)
    for t in ("minmax", "standardize", "maxabs", "scale", "quantize")
    for d in ("uint8", "uint16", "float16")
    if not (t == "scale" and d == "float16")  # scale of float data needs a divisor
]


@pytest.mark.parametrize("transform,formula,compute,dtype", CASES, ids=["-".join(c) for c in CASES])
def test_one_step_pipeline_has_the_transform_bits(transform, formula, compute, dtype):
    x = _inputs(dtype)
    p = kernels.fit(x, transform)
    with np.errstate(all="ignore"), _quiet():
        want = kernels.transform(x, transform, params=p, formula=formula, compute_dtype=compute)
        pipe = kernels.pipeline(kernels.step(transform, formula=formula, compute_dtype=compute)).fit(x)
        got = pipe.transform(x)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(_bits(got), _bits(want))


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *a):
        return self._w.__exit__(*a)


@pytest.mark.parametrize("compute", ["float16", "bfloat16", "float32", "float64"])
def test_inverse_program_has_the_inverse_transform_bits(compute):
    x = _inputs("float32")
    p = kernels.fit(x, "minmax")
    y = kernels.transform(x, "minmax", params=p, compute_dtype=compute)
    want = kernels.inverse_transform(y, "minmax", p, compute_dtype=compute)
    pipe = kernels.pipeline(kernels.step("minmax", compute_dtype=compute)).fit(x)
    np.testing.assert_array_equal(pipe.inverse_transform(y), want)


# ---------------------------------------------------------------- each op rounds once, in its dtype


SCALAR = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32, "float64": np.float64}
ARITH = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "rsub": lambda a, b: b - a, "rdiv": lambda a, b: b / a,
}


@pytest.mark.parametrize("dtype", list(SCALAR))
@pytest.mark.parametrize("kind", list(ARITH))
def test_arithmetic_op_rounds_once_into_its_dtype(kind, dtype):
    t = SCALAR[dtype]
    x = (RNG.random(3000) * 4 - 2).astype(t)
    c = t(0.3)  # not exact in binary: rounded into the dtype first
    want = np.array([ARITH[kind](v, c) for v in x], dtype=t)  # numpy / ml_dtypes scalar ops round once
    with np.errstate(all="ignore"):
        got = run_program(x, [Op(kind, dtype, (float(c),))], dtype)
    np.testing.assert_array_equal(_bits(got), _bits(want))


def _int_reference(v: float, dtype: str, rounding: str, overflow: str) -> int:
    bits, signed = INT_TYPES[dtype]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if math.isnan(v) or (math.isinf(v) and overflow not in ("saturate", "saturate_nan_min")):
        r = None
    else:
        if math.isinf(v):
            return lo if v < 0 else hi
        f = Fraction(v)
        if rounding == "half_even":
            r = round(f)
        elif rounding == "toward_zero":
            r = int(f)
        elif rounding == "floor":
            r = math.floor(f)
        elif rounding == "ceil":
            r = math.ceil(f)
        else:
            r = math.floor(f + Fraction(1, 2)) if f >= 0 else -math.floor(-f + Fraction(1, 2))
    if overflow in ("saturate", "saturate_nan_min"):  # NaN -> 0, or lo (onnxruntime's QuantizeLinear)
        return (0 if overflow == "saturate" else lo) if r is None else min(max(r, lo), hi)
    if overflow == "wrap":
        if r is None or abs(r) >= 1 << 63:
            return 0
        m = r % (1 << bits)
        return m - (1 << bits) if signed and m >= 1 << (bits - 1) else m
    if r is None or not -(1 << 31) <= r < 1 << 31:
        r = -(1 << 31)
    return min(max(r, lo), hi)


INT_VALUES = np.array(
    [0.0, -0.0, 0.5, 1.5, 2.5, -0.5, -1.5, 0.49999999999999994, 254.5, 255.5, 256.0, 300.7, -3.2, 65535.5, 65536.0,
     2.0**31, 2.0**31 - 1, -(2.0**31), 1e19, -1e19, 2.0**53 + 2, np.inf, -np.inf, np.nan, 127.5, -128.5, 12.999],
)


@pytest.mark.parametrize("overflow", OVERFLOWS)
@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int8", "int16"])
def test_int_op_against_python_integers(dtype, rounding, overflow):
    got = run_program(INT_VALUES, [Op("int", dtype, rounding=rounding, overflow=overflow)], dtype)
    want = [_int_reference(float(v), dtype, rounding, overflow) for v in INT_VALUES]
    assert got.tolist() == want


@pytest.mark.parametrize("dtype", [k for k, (b, s) in INT_TYPES.items() if s])
def test_int_op_signed_targets_held_as_float(dtype):
    got = run_program(INT_VALUES, [Op("int", dtype, rounding="toward_zero", overflow="wrap")], "float64")
    want = [_int_reference(float(v), dtype, "toward_zero", "wrap") for v in INT_VALUES]
    assert got.tolist() == [float(w) for w in want]


def test_clip_lets_nan_through():
    got = run_program(np.array([-1.0, 0.5, 2.0, np.nan]), [Op("clip", None, (0.0, 1.0))], "float64")
    assert got[:3].tolist() == [0.0, 0.5, 1.0] and math.isnan(got[3])


# ---------------------------------------------------------------- the per-channel lookup table


@pytest.mark.skipif(not lut.AVAILABLE, reason="AVX-512 VBMI lookup absent: the gather runs instead (tested by the others)")
@pytest.mark.parametrize("nfeat", range(2, lut.MAX_CHANNELS + 1))
@pytest.mark.parametrize("out", ["uint8", "uint16", "float32", "float64"])
def test_channel_lookup_equals_gather(nfeat, out):
    x = RNG.integers(0, 256, 64 * 37 * nfeat + 5, dtype=np.uint8)
    table = RNG.integers(0, 2**31, (256, nfeat)).astype(out)
    got = np.empty(x.size, out)
    lut.apply_tables(x, table, got)
    want = table[x, np.arange(x.size) % nfeat]
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- pipelines


def _imagenet():
    return kernels.pipeline("scale(divisor=255, formula=mul)", "standardize(mean=imagenet, std=imagenet)", "cast(output_dtype=float16)")


def test_fused_pipeline_equals_steps_one_by_one():
    x = RNG.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    a = kernels.transform(x, "scale", divisor=255, formula="mul")
    b = kernels.transform(a, "standardize", mean=MEAN, std=STD)
    np.testing.assert_array_equal(_bits(_imagenet().transform(x)), _bits(kernels.cast(b, "float16")))


def test_spec_parses_back_to_the_same_pipeline():
    p = _imagenet()
    q = kernels.pipeline(p.spec)
    assert q.spec == p.spec and len(q) == 3
    assert parse("cast(output_dtype=uint8, rounding=toward_zero)") == ("cast", {"output_dtype": "uint8", "rounding": "toward_zero"})


def test_pipeline_pickles_and_is_immutable():
    x = RNG.random((50, 4)).astype(np.float32)
    p = kernels.pipeline("minmax(axis=0); cast(output_dtype=bfloat16)")
    f = p.fit(x)
    assert p.needs_fit and not f.needs_fit  # fit returns a copy
    g = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(_bits(g.transform(x)), _bits(f.transform(x)))
    with pytest.raises(Exception):
        f.steps = ()


def test_each_step_is_fitted_on_the_output_before_it():
    x = RNG.random(1000) * 100
    f = kernels.pipeline("scale(divisor=100)", "minmax(feature_range=(-1, 1))").fit(x)
    mid = kernels.transform(x, "scale", divisor=100)
    assert f.steps[1].state == kernels.fit(mid, "minmax", feature_range=(-1, 1))


def test_fit_transform_and_inverse_transform():
    x = RNG.random((200, 3)) * 10
    p = kernels.pipeline("standardize(axis=0, compute_dtype=float64)")
    y = p.fit_transform(x)
    f = p.fit(x)
    np.testing.assert_allclose(f.inverse_transform(y), x, rtol=0, atol=1e-13)  # float64: a few ulps of 10


def test_each_step_has_its_compute_and_out_dtype():
    f = kernels.pipeline("torchvision.ToDtype(dtype=float16, scale=True)", "minmax(compute_dtype=float64)",
                         "cast(output_dtype=bfloat16)").fit(np.arange(256, dtype=np.uint8))
    assert [(s.compute_dtype, s.output_dtype) for s in f.steps] == [
        ("float16", "float16"), ("float64", "float32"), ("bfloat16", "bfloat16")]
    assert kernels.step("clip(lo=0)").output_dtype is None  # a clip keeps whatever dtype reaches it


def test_unfitted_pipeline_says_fit_first():
    with pytest.raises(ValueError, match="fit"):
        kernels.pipeline("minmax").transform(np.arange(5.0))


@pytest.mark.parametrize(
    "spec,match",
    [
        ("nosuch(a=1)", "valid steps"),
        ("cast(output_dtype=float16, bogus=1)", "no option bogus"),
        ("cast()", "needs output_dtype"),
        ("cast(output_dtype=flot16)", "flot16"),
        ("cast(output_dtype=uint8, rounding=stochastic)", "rounding.*not a rounding mode of an integer cast; use one of: half_even"),
        ("cast(1)", "by name"),
        ("cast(output_dtype=", "does not parse"),
        ("torchvision.NoSuch", "valid steps"),
    ],
)
def test_bad_specs_name_the_problem(spec, match):
    with pytest.raises((SpecError, TypeError, ValueError), match=match):
        kernels.pipeline(spec).program("float32")


def test_pipeline_needs_a_step():
    with pytest.raises(ValueError, match="at least one step"):
        kernels.pipeline()


# ---------------------------------------------------------------- given statistics


def test_given_statistics_apply_per_channel():
    x = RNG.random((5, 6, 3)).astype(np.float32)
    got = kernels.transform(x, "standardize", mean=MEAN, std=STD)
    want = (x - np.float32(MEAN)) / np.float32(STD)  # numpy float32, one rounding per op
    np.testing.assert_array_equal(got, want)


def test_params_attribute_access_repr_and_pickle():
    p = kernels.params("minmax", data_min=[0, 1], data_max=[255, 4095])
    assert p.min.tolist() == [0, 1] and p.max.tolist() == [255, 4095]
    assert "minmax" in repr(p) and pickle.loads(pickle.dumps(p)) == p
    with pytest.raises(AttributeError, match="no statistic"):
        p.mean


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(mean=[1, 2], std=[1, 2, 3]), "different lengths"),
        (dict(mean=[0, np.nan], std=1), "finite"),
        (dict(mean=0, std=np.inf), "finite"),
        (dict(mean=[[0, 1]], std=1), "shape"),
        (dict(mean=0, std=-1), "std"),
    ],
)
def test_bad_given_statistics_name_the_statistic(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kernels.params("standardize", **kwargs)


def test_given_statistics_of_the_wrong_length_for_x():
    with pytest.raises(ValueError, match="features"):
        kernels.fit(np.zeros((4, 2)), "standardize", mean=MEAN, std=STD)


# ---------------------------------------------------------------- measure


def test_measure_of_a_one_step_pipeline_matches_measure_of_the_transform():
    dom = kernels.domain("uint16")
    a = kernels.measure(dom, "minmax", output_dtype="float16")
    b = kernels.measure(dom, "minmax; cast(output_dtype=float16)")
    for f in ("distinct_in", "distinct_out", "collisions", "roundtrip_exact", "max_ulp_error", "max_preimage"):
        assert getattr(a, f) == getattr(b, f), f
    assert [s["distinct_out"] for s in b.steps] == [65536, a.distinct_out]
    assert b.steps[1]["collisions"] == a.collisions


def test_measure_names_the_step_that_merges():
    r = kernels.measure(kernels.domain("uint16"), "scale(divisor=65535); cast(output_dtype=bfloat16)")
    assert r.steps[0]["collisions"] == 0 and r.steps[1]["collisions"] == r.collisions > 0
    # the widest merged range of inputs, recomputed by grouping
    y = kernels.pipeline("scale(divisor=65535); cast(output_dtype=bfloat16)").transform(np.arange(65536, dtype=np.uint16))
    _, inv = np.unique(y.astype(np.float64), return_inverse=True)
    spans = [np.ptp(np.flatnonzero(inv == k)) for k in range(inv.max() + 1)]
    assert r.steps[1]["max_merged_span_in"] == max(spans)


def _nearest_f16(q: Fraction) -> np.float16:
    """The float16 nearest to q (ties to even), chosen among neighbours by exact distance."""
    f = np.float16(float(q))
    cands = [np.nextafter(f, np.float16(-np.inf)), f, np.nextafter(f, np.float16(np.inf))]
    return min(cands, key=lambda c: (abs(Fraction(float(c)) - q), int(c.view(np.uint16)) & 1))


def test_imagenet_pipeline_error_against_the_exact_ideal():
    x = np.tile(np.arange(256, dtype=np.uint8)[:, None], (1, 3))
    r = kernels.measure(x, _imagenet())
    y = _imagenet().transform(x).astype(np.float64)
    # the exact ideal (x/255 - mean)/std, correctly rounded to float16, by Fractions
    worst = 0
    for j in range(3):
        for v in range(256):
            q = (Fraction(v, 255) - Fraction(MEAN[j])) / Fraction(STD[j])
            ref = _nearest_f16(q)
            ulp = abs(int(np.float16(y[v, j]).view(np.int16)) - int(ref.view(np.int16)))
            worst = max(worst, ulp)
    assert r.max_ulp_error == worst


def test_measure_outputs_of_a_library_array():
    x = np.arange(256, dtype=np.uint8)
    y = (x.astype(np.float16) / np.float16(255)).astype(np.float16)  # numpy's own float16 arithmetic
    r = kernels.measure_outputs(x, y, ideal="scale(divisor=255)")
    assert r.distinct_out == np.unique(y).size and r.collisions == 256 - np.unique(y).size
    ref = np.array([_nearest_f16(Fraction(v, 255)) for v in range(256)])
    assert r.max_ulp_error == np.max(np.abs(y.view(np.int16).astype(int) - ref.view(np.int16).astype(int)))
    assert math.isnan(r.roundtrip_exact)  # no inverse given
    with pytest.raises(ValueError, match="function of x"):
        kernels.measure_outputs(np.zeros(4, np.uint8), np.arange(4, dtype=np.float32))


# ---------------------------------------------------------------- fused kernel == interpreter


def _all_ops(dtype):
    return [Op(k, dtype, (0.3,)) for k in ARITH] + [
        Op("fma", dtype, (1.7, -0.2)), Op("round", dtype), Op("abs"), Op("rint"), Op("clip", None, (-3.0, 3.0)),
    ]


FUSED_PROGRAMS = {
    **{f"every-float-op-{d}": (_all_ops(d), d) for d in SCALAR},
    "int-ops": ([Op("mul", "float64", (97.3,))] + [Op("int", t, rounding=r, overflow=o)
                for t, r, o in [("uint8", "half_even", "wrap"), ("int16", "floor", "saturate"),
                                ("uint16", "half_away", "cv"), ("int32", "toward_zero", "wrap")]], "float64"),
    "per-channel-to-uint8": ([Op("sub", "float32", (np.array([0.1, 0.2, 0.3]),)), Op("mul", "float32", (255.0,)),
                              Op("int", "uint8", rounding="toward_zero", overflow="wrap")], "uint8"),
}


@pytest.mark.parametrize("name", list(FUSED_PROGRAMS))
def test_fused_kernel_equals_interpreter(name):
    """Large inputs run the fused kernel (one specialisation per program), small ones
    and code tables the interpreter: both call the same apply_op, so the same bits."""
    ops, out = FUSED_PROGRAMS[name]
    nfeat = max(c.size for op in ops for c in op.const)
    x = np.concatenate([RNG.normal(0, 3, 3000), [0.0, -0.0, 0.5, -0.5, 1e-40, 3e38, np.inf, -np.inf, np.nan]])
    x = np.resize(x, (x.size // nfeat) * nfeat).reshape(-1, nfeat) if nfeat > 1 else x
    with np.errstate(all="ignore"), _quiet():
        fused = run_program(x, ops, out, fused=True)
        interpreted = run_program(x, ops, out, fused=False)
    np.testing.assert_array_equal(_bits(fused), _bits(interpreted))


def test_pipeline_overflow_warns_as_cast_does():
    with pytest.warns(RuntimeWarning, match="1 finite value"):
        y = kernels.pipeline("cast(output_dtype=float16)").transform(np.array([1e6, 1.0], np.float32))
    assert np.isinf(y[0]) and y[1] == 1
