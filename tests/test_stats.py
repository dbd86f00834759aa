"""fit: exact min/max, accumulators, NaN policy, and the numerical traps by name."""

import math
from fractions import Fraction

import numpy as np
import pytest
from conftest import DTYPES, sample
from reference import NP

from kernels import ACCUMULATORS, COMPUTE_DTYPES, fit
from kernels.stats import CHUNK


def _exact_mean_var(x):
    fr = [Fraction(float(v)) for v in np.asarray(x, dtype=np.float64)]
    mean = sum(fr) / len(fr)
    var = sum((v - mean) ** 2 for v in fr) / len(fr)
    return mean, var


@pytest.mark.parametrize("dtype", DTYPES)
def test_minmax_exact_for_every_dtype(dtype):
    x = sample(dtype)
    x = x[np.isfinite(x.astype(np.float64))]
    p = fit(x, "minmax")
    assert p["min"][0] == x.astype(np.float64).min()
    assert p["max"][0] == x.astype(np.float64).max()


@pytest.mark.parametrize("dtype", DTYPES)
def test_minmax_per_column_and_per_channel(dtype):
    x = np.resize(sample(dtype), 600)
    x = np.where(np.isfinite(x.astype(np.float64)), x, x.dtype.type(1))  # 1, not 0: e8m0 has no zero
    cols = x.reshape(-1, 6)
    p = fit(cols, "minmax", axis=0)
    assert np.array_equal(p["min"], cols.astype(np.float64).min(axis=0))
    assert np.array_equal(p["max"], cols.astype(np.float64).max(axis=0))
    img = x.reshape(10, 20, 3)
    q = fit(img, "minmax", axis=(0, 1))
    assert np.array_equal(q["max"], img.astype(np.float64).max(axis=(0, 1)))


def test_minmax_across_many_chunks_and_threads():
    x = np.random.default_rng(0).normal(size=5 * CHUNK + 17).astype(np.float32)
    x[3 * CHUNK + 5] = -100
    x[7] = 100
    p = fit(x, "minmax")
    assert (p["min"][0], p["max"][0]) == (-100, 100)


def test_nan_policy():
    x = np.array([1.0, np.nan, 3.0, -2.0], np.float32)
    with pytest.raises(ValueError, match="nan_policy"):
        fit(x, "minmax")
    p = fit(x, "minmax", nan_policy="omit")
    assert (p["min"][0], p["max"][0], p["count"][0]) == (-2, 3, 3)
    assert np.isnan(fit(x, "minmax", nan_policy="propagate")["min"][0])
    s = fit(x, "standardize", nan_policy="omit")
    assert s["mean"][0] == np.float64(np.mean([1.0, 3.0, -2.0]))
    assert np.isnan(fit(x, "standardize", nan_policy="propagate")["mean"][0])


@pytest.mark.parametrize("accumulator", ACCUMULATORS)
def test_float64_accumulators_near_exact(accumulator):
    x = np.random.default_rng(1).normal(1000, 3, 3 * CHUNK // 2 + 123)
    p = fit(x, "standardize", accumulator=accumulator, acc_dtype="float64")
    mean = math.fsum(x) / x.size
    var = math.fsum((x - mean) ** 2) / x.size
    # error bounds: naive's sequential sum grows with the chunk length; Welford's update
    # rounds a few times per element but relative to the running deviation
    ulps = {"naive": 1e-11 / np.finfo(float).eps, "welford": 16, "pairwise": 4, "kahan": 4}[accumulator]
    assert abs(p["mean"][0] - mean) <= ulps * np.spacing(mean)
    tol = 1e-6 if accumulator == "naive" else 1e-12  # naive's sum-of-squares cancels ~1e6:1
    assert abs(p["var"][0] - var) <= tol * var


@pytest.mark.parametrize("accumulator", ACCUMULATORS)
def test_float64_accumulators_against_fractions(accumulator):
    x = np.random.default_rng(2).uniform(-5, 5, 999)
    mean, var = _exact_mean_var(x)
    p = fit(x, "standardize", accumulator=accumulator)
    assert abs(Fraction(p["mean"][0]) - mean) <= 8 * Fraction(np.spacing(5.0))
    assert abs(Fraction(p["var"][0]) - var) <= Fraction(1, 10**12) * var


def test_float16_naive_sum_stalls_at_2048():
    x = np.ones(4096, np.float16)
    # the trap, computed independently: a float16 running sum of ones
    s = np.float16(0)
    for v in x:
        s = np.float16(s + v)
    assert s == 2048
    p = fit(x, "standardize", accumulator="naive", acc_dtype="float16")
    assert p["mean"][0] == float(np.float16(np.float32(s) / np.float32(x.size))) == 0.5


@pytest.mark.parametrize("accumulator", ["pairwise", "kahan", "welford"])
def test_float16_careful_accumulators_get_mean_of_ones_right(accumulator):
    p = fit(np.ones(4096, np.float16), "standardize", accumulator=accumulator, acc_dtype="float16")
    assert p["mean"][0] == 1.0 and p["var"][0] == 0.0


def test_float16_naive_matches_python_reference_bit_for_bit():
    x = (np.random.default_rng(3).normal(2, 0.5, 3000)).astype(np.float16)
    s = q = np.float16(0)
    for v in x:
        s = np.float16(s + v)
        q = np.float16(q + np.float16(v * v))
    mean = np.float16(np.float32(s) / np.float32(x.size))
    m2 = max(np.float16(q - np.float16(s * mean)), np.float16(0))
    var = np.float16(np.float32(m2) / np.float32(x.size))
    p = fit(x, "standardize", accumulator="naive", acc_dtype="float16")
    assert (p["mean"][0], p["var"][0], p["std"][0]) == (mean, var, np.float16(np.sqrt(np.float32(var))))


def test_naive_float32_variance_cancels_where_welford_does_not():
    x = (1e4 + np.random.default_rng(4).normal(0, 1, 20000)).astype(np.float32)
    _, var = _exact_mean_var(x)
    err = {a: abs(fit(x, "standardize", accumulator=a, acc_dtype="float32")["var"][0] / float(var) - 1)
           for a in ACCUMULATORS}
    assert err["naive"] > 1e-2  # sum of squares ~1e12 in float32: most digits lost
    assert max(err["welford"], err["pairwise"], err["kahan"]) < 1e-4


@pytest.mark.parametrize("acc_dtype", COMPUTE_DTYPES)
def test_accumulated_statistics_are_values_of_the_acc_dtype(acc_dtype):
    x = np.random.default_rng(5).normal(0, 1, 5000).astype(np.float32)
    p = fit(x, "standardize", accumulator="welford", acc_dtype=acc_dtype)
    for k in ("mean", "var", "std"):
        v = p[k]
        assert np.array_equal(v.astype(NP[acc_dtype]).astype(np.float64), v)


def test_params_are_immutable():
    p = fit(np.arange(10, dtype=np.uint8), "minmax")
    with pytest.raises(ValueError):
        p["min"][0] = 3
    with pytest.raises(Exception):
        p.transform = "standardize"
    with pytest.raises(TypeError):
        p.stats["min"] = np.zeros(1)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_minmax_over_every_16bit_pattern(dtype):
    """Order keys are exact on every finite pattern, -0.0 and NaN of both signs included."""
    x = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(NP[dtype])
    f = x.astype(np.float32)
    x, f = x[~np.isinf(f)], f[~np.isinf(f)]
    rng = np.random.default_rng(6)
    for sample_x in (x, rng.permutation(x), x[~np.isnan(f)][:1000]):
        sf = sample_x.astype(np.float32)
        p = fit(sample_x, "minmax", nan_policy="omit")
        assert p["min"][0] == np.nanmin(sf) and p["max"][0] == np.nanmax(sf)
        assert p["count"][0] == (~np.isnan(sf)).sum()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["+nan", "-nan"])
def test_nan_of_either_sign_is_found_by_the_key_extremes(dtype, sign):
    """A min/max fit first takes the extreme order keys alone; a NaN of either sign
    lies outside [key(-inf), key(+inf)] and sends it to the counting kernel."""
    x = np.array([1.0, 2.0, np.copysign(np.nan, sign), -3.0], np.float64).astype(NP[dtype])
    assert np.signbit(x[2].astype(np.float64)) == (sign < 0)
    with pytest.raises(ValueError, match="nan_policy"):
        fit(x, "minmax")
    p = fit(x, "minmax", nan_policy="omit")
    assert (p["min"][0], p["max"][0], p["count"][0]) == (-3.0, 2.0, 3)
