"""The exact reference (kernels.exact) against mpmath at 400 bits, and against Fractions."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest
from reference import NP, UINT_VIEW

import kernels as K
from kernels.exact import Ideal, exact_moments

mpmath.mp.prec = 400


def mp_round(y: mpmath.mpf, dtype: str) -> float:
    """The dtype value nearest to y, ties to the even pattern, decided by mpmath."""
    dt = NP[dtype]
    with np.errstate(over="ignore", invalid="ignore"):
        approx = np.array([float(y)]).astype(dt)
    bits = int(approx.view(UINT_VIEW[dt.itemsize])[0])
    best = None
    for b in (bits - 1, bits, bits + 1):
        if not 0 <= b < 1 << (8 * dt.itemsize):
            continue
        c = float(np.array([b], dtype=UINT_VIEW[dt.itemsize]).view(dt)[0])
        if not np.isfinite(c):
            continue
        key = (abs(mpmath.mpf(c) - y), b % 2)
        if best is None or key < best[0]:
            best = (key, c)
    return best[1]


def mp_ideal(transform: str, x: float, stats: dict, fr=(0, 1)) -> mpmath.mpf:
    """The ideal transform in mpmath, with the statistics given as Fractions."""

    def m(q):
        return mpmath.mpf(q.numerator) / q.denominator

    xv = mpmath.mpf(x)
    if transform == "minmax":
        lo, hi = m(stats["min"]), m(stats["max"])
        return (xv - lo) * (fr[1] - fr[0]) / (hi - lo) + fr[0]
    if transform == "standardize":
        return (xv - m(stats["mean"])) / mpmath.sqrt(m(stats["var"]))
    return xv / m(stats["divisor"])


CASES = {
    # uint16 sensor counts scaled to [0, 1]: denominators 65535 and 4095, no exact ties
    "minmax-u16": ("minmax", np.arange(0, 65536, 97, dtype=np.float64), {"min": Fraction(0), "max": Fraction(65535)}),
    # a power-of-two range: many outputs are exact float16/bfloat16 midpoints (ties)
    "minmax-ties": ("minmax", np.arange(0, 4097, 1, dtype=np.float64), {"min": Fraction(0), "max": Fraction(4096)}),
    "minmax-range": ("minmax", np.linspace(-3.7, 9.1, 997), {"min": Fraction(-3.7), "max": Fraction(9.1)}),
    "scale-255": ("scale", np.arange(256, dtype=np.float64), {"divisor": Fraction(255)}),
    # irrational outputs: sqrt of a non-square variance
    "standardize": ("standardize", np.linspace(-50, 80, 1301), {"mean": Fraction(17, 3), "var": Fraction(1234567, 1000)}),
    # a perfect-square variance: rational outputs, some exact ties
    "standardize-square": ("standardize", np.arange(-64, 64, 0.25), {"mean": Fraction(1, 8), "var": Fraction(4)}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_nearest_and_odd_against_mpmath(case):
    transform, xs, stats = CASES[case]
    ideal = Ideal(transform, stats, {"feature_range": (0, 1)})
    nearest, odd = ideal(xs)
    for x, n, o in zip(xs.tolist(), nearest.tolist(), odd.tolist(), strict=True):
        y = mp_ideal(transform, x, stats)
        assert n == mp_round(y, "float64")
        if mpmath.mpf(o) == y:
            continue
        # inexact: o has an odd last bit and y lies strictly between o and a neighbour
        assert np.float64(o).view(np.uint64) & 1
        lo_, hi_ = sorted((o, np.nextafter(o, np.inf if y > o else -np.inf)))
        assert mpmath.mpf(lo_) < y < mpmath.mpf(hi_)


@pytest.mark.parametrize("out", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("case", list(CASES))
def test_correctly_rounded_in_each_output_dtype(case, out):
    transform, xs, stats = CASES[case]
    _, odd = Ideal(transform, stats, {"feature_range": (0, 1)})(xs)
    ours = K.cast(odd, out).astype(np.float64)
    expected = [mp_round(mp_ideal(transform, x, stats), out) for x in xs.tolist()]
    np.testing.assert_array_equal(ours, expected)


def test_exact_moments_against_fractions():
    rng = np.random.default_rng(2)
    # float32 values, full 53-bit float64 mantissas over a wide exponent range, zero
    values = np.unique(
        np.concatenate([
            rng.normal(0, 1e3, 300).astype(np.float32),
            rng.normal(0, 1, 300) * 2.0 ** rng.integers(-60, 60, 300),
            [0.0, -1e-300, 1e300],
        ])
    )
    counts = rng.integers(1, 2**24, values.size)  # c * m**2 far past 2**63, as in huge data
    mean, var = exact_moments(values, counts)
    fr = [Fraction(float(v)) for v in values]
    n = int(counts.sum())
    m = sum(int(c) * v for c, v in zip(counts, fr, strict=True)) / n
    assert mean == m
    assert var == sum(int(c) * (v - m) ** 2 for c, v in zip(counts, fr, strict=True)) / n
    # past 2**34 elements the int64 sums would overflow: the Python-integer path
    big = counts.astype(np.int64) << 20
    mean_b, var_b = exact_moments(values, big)
    assert (mean_b, var_b) == (mean, var)  # scaling every count leaves the moments unchanged


def test_quantize_ideal_rounds_half_to_even():
    ideal = Ideal("quantize", {"scale": Fraction(1, 2), "zero_point": 10}, {"qmax": 255})
    q, _ = ideal(np.array([0.25, 0.75, -5.25, 200.0, -100.0]))
    # x / scale = 0.5, 1.5, -10.5 -> 0, 2, -10 (half to even); then + 10 and clip
    assert q.tolist() == [10.0, 12.0, 0.0, 255.0, 0.0]


def test_quantize_ideal_clips_signed_at_qmin():
    ideal = Ideal("quantize", {"scale": Fraction(1, 2), "zero_point": -3}, {"qmin": -128, "qmax": 127})
    q, _ = ideal(np.array([0.25, -0.75, -5.25, 200.0, -100.0, -np.inf, np.inf]))
    # x / scale = 0.5, -1.5, -10.5 -> 0, -2, -10 (half to even); then - 3 and clip to [-128, 127]
    assert q.tolist() == [-3.0, -5.0, -13.0, 127.0, -128.0, -128.0, 127.0]


@pytest.mark.parametrize("symmetric", [False, True], ids=["asym", "sym"])
@pytest.mark.parametrize("qdtype", ["uint8", "int8", "uint16", "int16"])
def test_exact_quantize_stats_follow_the_onnxruntime_rule_in_fractions(qdtype, symmetric):
    """The exact scale and zero point: onnxruntime's formula (compute_scale_zp) in
    rationals; the fitted float64 ones are their roundings (the zero point equal)."""
    from kernels.exact import exact_stats

    x = np.array([-3.0, -0.1, 0.5, 5.0], np.float32)
    p = K.fit(x, "quantize", qdtype=qdtype, symmetric=symmetric)
    st = exact_stats(p, 0, x, np.ones(x.size, np.int64))
    info = np.iinfo(qdtype)
    qmin, qmax = int(info.min), int(info.max)
    lo, hi = Fraction(-3), Fraction(5)
    if symmetric:
        lo, hi = -max(-lo, hi), max(-lo, hi)
        qmin_s = -qmax if qmin < 0 else qmin
        scale, zp = (hi - lo) / (qmax - qmin_s), round(Fraction(qmin_s + qmax, 2))
    else:
        scale = (hi - lo) / (qmax - qmin)
        zp = round(qmin - lo / scale)
    assert st["scale"] == scale and st["zero_point"] == zp
    assert p["scale"][0] == float(scale) and p["zero_point"][0] == zp
