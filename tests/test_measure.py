"""measure / Record / domain sweeps: every expected figure is computed here, independently."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from reference import NP, numpy_distinct

import kernels as K
from kernels.measure import SCHEMA

ISSUE_FIELDS = """distinct_in distinct_out collisions survival max_preimage entropy_in_bits entropy_out_bits
info_lost_bits representable_in_range utilization roundtrip_exact max_ulp_error mean_ulp_error max_bits_error
max_ulp_error_apply nan_in inf_in overflow_out underflow_out saturated seconds fit_seconds elements_per_s
bytes_per_s roofline_fraction provenance source input_dtype transform formula compute_dtype output_dtype
accumulator acc_dtype n""".split()


def numpy_minmax_mul_add(x, lo, hi):
    """scikit-learn's minmax in float32 op by op: x * s + t."""
    f = np.float32
    s = f(1) / (f(hi) - f(lo))
    t = f(0) - f(lo) * s
    return x.astype(f) * s + t


@pytest.mark.parametrize("output_dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize(("dtype", "hi"), [("uint8", 255), ("uint16", 4095), ("uint16", 65535)], ids=["uint8", "12bit", "uint16"])
def test_design_table(dtype, hi, output_dtype):
    x = np.arange(hi + 1, dtype=NP[dtype])
    expected = numpy_distinct(numpy_minmax_mul_add(x, 0, hi).astype(NP[output_dtype]))
    r = K.measure(K.domain(dtype, 0, hi), "minmax", output_dtype=output_dtype)
    assert (r.distinct_in, r.distinct_out) == (hi + 1, expected)
    assert r.collisions == hi + 1 - expected
    assert r.survival == expected / (hi + 1)
    # every output value of [0, 1] in the output dtype, counted from its bit patterns
    with np.errstate(invalid="ignore"):
        patterns = np.arange(1 << 16, dtype=np.uint16).view(NP[output_dtype]).astype(np.float32).astype(np.float64)
    assert r.representable_in_range == numpy_distinct(patterns[(patterns >= 0) & (patterns <= 1)])
    assert r.entropy_in_bits == pytest.approx(math.log2(hi + 1))


@pytest.mark.exhaustive
def test_float32_unit_interval_to_float16_sweep():
    """All 1,065,353,217 float32 values of [0, 1], streamed: 15,361 survive in float16."""
    one_bits = int(np.float32(1).view(np.uint32))
    f16 = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float64)
    r = K.measure(K.domain("float32", 0, 1), "minmax", output_dtype="float16", progress=False)
    assert r.streamed
    assert r.distinct_in == one_bits + 1  # patterns 0 .. bits(1.0)
    assert r.distinct_out == numpy_distinct(f16[(f16 >= 0) & (f16 <= 1)])
    assert r.roundtrip_exact == pytest.approx(r.distinct_out / r.distinct_in)


def test_overflow_past_65504_is_counted():
    x = np.arange(1 << 16, dtype=np.uint16)
    with np.errstate(over="ignore"):
        expected = int(np.isinf(x.astype(np.float16)).sum())  # numpy's own cast
    r = K.measure(K.domain("uint16"), "scale", divisor=1.0, output_dtype="float16")
    assert r.overflow_out == expected > 0
    assert r.max_ulp_error == 0  # inf is the correctly rounded value of x > 65519


def test_float16_naive_accumulator_makes_standardize_wrong():
    # 6000 values in 0..3: the float16 sum passes 8192, where its ulp (8) exceeds
    # twice every increment, and sticks; the sum of squares stays finite
    x = np.random.default_rng(1).integers(0, 4, 6000).astype(np.uint8)
    # float64 arithmetic, float32 output: the only visible error is the fit's
    kw = dict(output_dtype="float32", compute_dtype="float64")
    good = K.measure(x, "standardize", accumulator="pairwise", acc_dtype="float64", **kw)
    bad = K.measure(x, "standardize", accumulator="naive", acc_dtype="float16", **kw)
    # the float16 sum of the data, as numpy computes it one addition at a time
    acc = np.float16(0)
    for v in x.astype(np.float16):
        acc = np.float16(acc + v)
    assert acc < 0.95 * x.sum()  # the trap the test is about: the sum stalls
    assert good.max_ulp_error <= 1
    assert bad.max_ulp_error > 1000
    # the arithmetic itself is fine; the damage is in the fitted mean
    assert bad.max_ulp_error_apply <= 1


def test_nan_and_inf_are_counted_never_crash():
    x = np.linspace(-1, 1, 1000, dtype=np.float32)
    x[[3, 50, 700]] = np.nan
    r = K.measure(x, "minmax", nan_policy="omit")
    assert (r.nan_in, r.inf_in, r.distinct_in) == (3, 0, 997)
    x[[10, 20]] = [np.inf, -np.inf]
    with pytest.raises(ValueError, match="nan_policy"):
        K.measure(x, "minmax")
    r = K.measure(x, "minmax", nan_policy="propagate")
    assert (r.nan_in, r.inf_in) == (3, 2)


@pytest.mark.parametrize("transform", ["minmax", "standardize", "scale", "maxabs", "quantize"])
@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_unique_shortcut_matches_full_count(transform, dtype):
    rng = np.random.default_rng(7)
    x = (rng.integers(0, 3000, 50_000) if dtype == "uint16" else rng.normal(0, 3, 50_000).round(2)).astype(NP[dtype])
    opts = {"divisor": 255.0} if transform == "scale" else {}
    r = K.measure(x, transform, output_dtype="float16" if transform != "quantize" else "uint8", **opts)
    params = K.fit(x, transform, **opts)
    y = K.transform(x, transform, params=params, output_dtype=r.output_dtype)
    assert r.distinct_in == numpy_distinct(x)
    assert r.distinct_out == numpy_distinct(y)
    _, counts = np.unique(y.astype(np.float64) + 0.0, return_counts=True)
    p = counts / counts.sum()
    assert r.entropy_out_bits == pytest.approx(float(-(p * np.log2(p)).sum()), abs=1e-9)


def test_unique_shortcut_matches_full_count_dequantize():
    q = np.random.default_rng(8).integers(0, 256, 40_000).astype(np.uint8)
    opts = {"scale": 0.013, "zero_point": 100.0}
    r = K.measure(q, "dequantize", output_dtype="bfloat16", **opts)
    y = K.transform(q, "dequantize", output_dtype="bfloat16", **opts)
    assert (r.distinct_in, r.distinct_out) == (numpy_distinct(q), numpy_distinct(y))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int8", "int16", "float16", "bfloat16", "float32", "float64"])
def test_distinct_matches_numpy_unique(dtype):
    rng = np.random.default_rng(3)
    if dtype.startswith("uint"):
        x = rng.integers(0, 300, 600_000).astype(NP[dtype])
    elif dtype.startswith("int"):
        info = np.iinfo(NP[dtype])
        x = rng.integers(max(int(info.min), -3000), min(int(info.max), 3000) + 1, 600_000).astype(NP[dtype])
    else:  # large enough that float32/float64 sort one slice per thread and merge
        x = rng.normal(0, 50, 600_000).astype(NP[dtype])
        x[:5] = [np.nan, -0.0, 0.0, np.nan, np.inf]
        x[-3:] = [-0.0, np.nan, -np.inf]
    d = K.distinct(x)
    v = x.astype(np.float64) + 0.0
    uniq, counts = np.unique(v[~np.isnan(v)], return_counts=True)
    np.testing.assert_array_equal(d.values.astype(np.float64), uniq)
    np.testing.assert_array_equal(d.counts, counts)
    assert d.nan == int(np.isnan(v).sum())


@pytest.mark.parametrize(
    ("dtype", "lo", "hi", "transform", "opts", "out"),
    [
        ("uint16", 0, 65535, "minmax", {}, "float16"),
        ("float16", -3, 2, "minmax", {"feature_range": (-1, 1)}, "bfloat16"),
        ("uint16", 0, 65535, "scale", {"divisor": -255.0}, "float16"),  # decreasing
        ("bfloat16", -100, 100, "scale", {"divisor": 0.75}, "uint8"),  # saturating
        ("float16", -1000, 1000, "quantize", {}, "uint8"),
    ],
    ids=["u16-minmax", "f16-range", "decreasing", "saturating", "quantize"],
)
def test_stream_equals_materialised(dtype, lo, hi, transform, opts, out):
    dom = K.domain(dtype, lo, hi)
    a = K.measure(dom, transform, output_dtype=out, **opts).to_dict()
    b = K.measure(dom, transform, output_dtype=out, stream=True, progress=False, **opts).to_dict()
    for k, v in a.items():
        if k in ("seconds", "fit_seconds", "elements_per_s", "bytes_per_s", "roofline_fraction", "streamed", "provenance"):
            continue
        assert b[k] == (pytest.approx(v) if isinstance(v, float) else v), k


@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_distinct_counts_negative_codes_by_histogram(dtype):
    """Signed 8/16-bit data count through the histogram by bit pattern: every int8 code
    -128..127 (shuffled, each a different number of times) gives 256 values, sorted by
    value (negatives first, though their patterns are the high bins), with their counts."""
    info = np.iinfo(NP[dtype])
    codes = np.arange(int(info.min), int(info.max) + 1)
    reps = (codes - codes.min()) % 5 + 1  # 1..5 copies each
    x = np.random.default_rng(9).permutation(np.repeat(codes, reps)).astype(NP[dtype])
    d = K.distinct(x)
    assert len(d) == codes.size == (256 if dtype == "int8" else 65536)
    assert d.values.dtype == NP[dtype] and d.values.tolist() == codes.tolist()
    assert d.counts.tolist() == reps.tolist() and d.nan == 0
    r = K.measure(x, "minmax", output_dtype="float32", repeat=1)
    assert r.distinct_in == r.distinct_out == codes.size


def test_signed_domains_hold_every_code():
    for dtype in ("int8", "int16"):
        info = np.iinfo(NP[dtype])
        d = K.domain(dtype)
        assert (d.lo, d.hi, d.size) == (info.min, info.max, int(info.max) - int(info.min) + 1)
        assert d.values().tolist() == list(range(int(info.min), int(info.max) + 1))
    assert K.domain("int8", -3.5, 2.5).values().tolist() == [-3, -2, -1, 0, 1, 2]
    with pytest.raises(ValueError, match="-128..127"):
        K.domain("int8", -300, -200)


@pytest.mark.parametrize("out", ["int8", "uint8", "float16"])
def test_signed_domain_stream_equals_materialised(out):
    """The streaming sweep counts saturation at qmin too (int16 into int8 clips both ends)."""
    dom = K.domain("int16", -1000, 1000)
    opts = {"divisor": 4.0}
    a = K.measure(dom, "scale", output_dtype=out, **opts).to_dict()
    b = K.measure(dom, "scale", output_dtype=out, stream=True, progress=False, **opts).to_dict()
    for k, v in a.items():
        if k in ("seconds", "fit_seconds", "elements_per_s", "bytes_per_s", "roofline_fraction", "streamed", "provenance"):
            continue
        assert b[k] == (pytest.approx(v) if isinstance(v, float) else v), k
    x = dom.values().astype(np.float64) / 4.0
    info = np.iinfo(NP[out]) if out != "float16" else None
    want = int(((np.rint(x) < info.min) | (np.rint(x) > info.max)).sum()) if info is not None else 0
    assert a["saturated"] == want


def test_domain_enumerates_by_value():
    d = K.domain("float16", -1, 1)
    v = d.values().astype(np.float64)
    f16 = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float64)
    assert d.size == numpy_distinct(f16[(f16 >= -1) & (f16 <= 1)]) == v.size
    assert (np.diff(v) > 0).all()
    assert K.domain("uint8").size == 256
    b = K.domain("bfloat16", 0.1, 0.2)
    assert b.lo >= 0.1 and b.hi <= 0.2
    assert float(ml_dtypes.bfloat16(b.lo)) == b.lo


def test_record_to_dict_is_json_with_every_field():
    r = K.measure(K.domain("uint8"), "minmax", output_dtype="float16")
    d = r.to_dict()
    assert d["schema"] == SCHEMA == "precision-bench/record/1"
    assert set(ISSUE_FIELDS) <= set(d)
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert {"numpy", "numba", "cpu", "threads", "commit"} <= set(d["provenance"])
    with pytest.raises(AttributeError):
        r.n = 3  # immutable


def test_per_feature_measure_adds_up():
    rng = np.random.default_rng(5)
    x = np.stack([rng.integers(0, 50, 4000), rng.integers(1000, 1100, 4000)], axis=1).astype(np.float32)
    r = K.measure(x, "minmax", axis=0, output_dtype="bfloat16")
    y = K.transform(x, "minmax", axis=0, output_dtype="bfloat16")
    assert r.nfeat == 2
    assert r.distinct_in == sum(numpy_distinct(x[:, j]) for j in range(2))
    assert r.distinct_out == sum(numpy_distinct(y[:, j]) for j in range(2))


# --------------------------------------------------------------------------
# in the input's own units: naive references with Fractions and dict grouping
# --------------------------------------------------------------------------


def naive_span_and_error(x, y, ideal, slope):
    """(widest input range sharing one output, max and count-weighted mean of
    |y - ideal(x)| / slope) by plain loops over the distinct inputs, exactly."""
    groups: dict = {}
    for xv, yv in zip(x.astype(np.float64).tolist(), y.astype(np.float64).tolist()):
        lo, hi = groups.get(yv + 0.0, (xv, xv))
        groups[yv + 0.0] = (min(lo, xv), max(hi, xv))
    span = max(hi - lo for lo, hi in groups.values())
    errs = [abs(Fraction(yv) - ideal(Fraction(xv))) / slope for xv, yv in zip(x.astype(np.float64).tolist(), y.astype(np.float64).tolist())]
    return span, float(max(errs)), float(sum(errs) / len(errs))


@pytest.mark.parametrize("output_dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize(("hi", "bits"), [(255, 8), (4095, 12), (65535, 16)], ids=["uint8", "12bit", "uint16"])
def test_error_in_input_units_matches_fractions(hi, bits, output_dtype):
    x = np.arange(hi + 1, dtype=np.uint8 if hi == 255 else np.uint16)
    r = K.measure(K.domain(str(x.dtype), 0, hi), "minmax", output_dtype=output_dtype, repeat=1)
    y = K.transform(x, "minmax", output_dtype=output_dtype)
    span, emax, emean = naive_span_and_error(x, y, lambda v: v / hi, Fraction(1, hi))
    assert r.max_merged_span_in == span
    assert r.max_abs_error_in == pytest.approx(emax, rel=1e-12)
    assert r.mean_abs_error_in == pytest.approx(emean, rel=1e-12)
    assert r.effective_bits_in == bits  # a 12-bit sensor in a uint16 file says 12


def test_merged_span_trap_uint16_to_float16_hides_32_counts():
    """uint16 -> float16 minmax: near full scale float16's spacing 2**-11 is 32 counts
    of 65535, so changes of up to 32 counts are invisible (the merged range spans 32)."""
    x = np.arange(65536, dtype=np.uint16)
    y = K.transform(x, "minmax", output_dtype="float16").astype(np.float64)
    top = x[y == y[-1]]  # every count that lands on 1.0
    r = K.measure(K.domain("uint16"), "minmax", output_dtype="float16", repeat=1)
    assert r.max_merged_span_in == max(float(top.max() - top.min()), r.max_merged_span_in) >= 16
    assert r.max_abs_error_in <= r.max_merged_span_in


def test_error_in_units_compares_across_dtypes_where_ulps_do_not():
    """The issue's trap: a float16 output can show fewer ULPs than a float32 one
    while its error in input units is far larger."""
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, 4000).astype(np.float32)
    a = K.measure(x, "standardize", output_dtype="float16", repeat=1)
    b = K.measure(x, "standardize", output_dtype="float32", repeat=1)
    assert a.max_abs_error_in > b.max_abs_error_in
    std = float(np.std(x.astype(np.float64)))
    ya = K.transform(x, "standardize", output_dtype="float16").astype(np.float64)
    mean = float(np.mean(x.astype(np.float64)))
    naive = np.abs(ya - (x.astype(np.float64) - mean) / std) * std
    assert a.max_abs_error_in == pytest.approx(naive.max(), rel=1e-6)


@pytest.mark.parametrize("out", ["float16", "bfloat16"])
def test_merged_span_streamed_equals_materialised(out):
    dom = K.domain("float32", 0.5, 1)
    a = K.measure(dom, "minmax", output_dtype=out, repeat=1, stream=False)
    b = K.measure(dom, "minmax", output_dtype=out, repeat=1, stream=True, progress=False)
    assert a.max_merged_span_in == b.max_merged_span_in > 0


def test_pipeline_error_in_input_units_matches_fractions():
    x = np.arange(256, dtype=np.uint8)
    pipe = K.pipeline("scale(divisor=255)", "standardize(mean=0.5, std=0.25)", "cast(output_dtype=bfloat16)")
    r = K.measure(K.domain("uint8"), pipe)
    y = pipe.transform(x)
    span, emax, emean = naive_span_and_error(x, y, lambda v: (v / 255 - Fraction(1, 2)) * 4, Fraction(4, 255))
    assert r.max_merged_span_in == span == r.steps[-1]["max_merged_span_in"]
    assert r.max_abs_error_in == pytest.approx(emax, rel=1e-12)
    assert r.mean_abs_error_in == pytest.approx(emean, rel=1e-12)


def test_quantize_error_in_input_units_is_the_quantization_error():
    """quantize rounds by design: its error in input units is |q - (x/scale + zp)| * scale
    against the unrounded level (so up to scale/2), never 0 for every point."""
    x = np.linspace(-3, 5, 1001).astype(np.float32)
    r = K.measure(x, "quantize", repeat=1)
    p = K.fit(x, "quantize")
    q = K.transform(x, "quantize", params=p).astype(np.float64)
    scale, zp = Fraction(float(p["scale"][0])), int(p["zero_point"][0])
    lo, hi = Fraction(float(x.min())), Fraction(float(x.max()))
    exact_scale = (max(hi, 0) - min(lo, 0)) / 255
    exact_zp = min(max(round(-min(lo, 0) / exact_scale), 0), 255)
    errs = [abs(Fraction(qv) - min(max(Fraction(float(v)) / exact_scale + exact_zp, 0), 255)) * exact_scale
            for v, qv in zip(x.tolist(), q.tolist())]
    assert r.max_abs_error_in == pytest.approx(float(max(errs)), rel=1e-12)
    # about half a level: float32 arithmetic may push a point just past the midpoint
    assert float(exact_scale) / 4 < r.max_abs_error_in < float(exact_scale)
    assert float(scale) == pytest.approx(float(exact_scale)) and zp == exact_zp
