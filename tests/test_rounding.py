"""Rounding modes (issue 16, section 4): casts into float16, bfloat16 and float32
(from float64) in every deterministic mode against exact references on grids
around every value; emulated compute in a directed mode op by op against
Fractions; stochastic rounding's probabilities by a chi-square test (and a
biased implementation failing it), its reproducibility; bit identity with
pychop's ``Chop`` on the benchmark's data."""

import os
import warnings
from fractions import Fraction

import ml_dtypes
import numba
import numpy as np
import pytest
from reference import (
    DETERMINISTIC_ROUNDINGS,
    NP,
    minifloat_reference,
    round_mode_reference,
    round_mode_scalar,
    same_bits,
)
from scipy import stats

import kernels
from kernels import cast
from kernels.codecs import _round
from kernels.codecs import cast as codec_cast

IEEE = ("float16", "bfloat16")
SATURATE = [False, True]


def _cast(x, name, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow warnings are tested on their own
        return cast(x, name, **kw)


def _values(name):
    """Every non-negative finite value of a 16-bit format, as float64, in order."""
    top = 0x7C00 if name == "float16" else 0x7F80
    return np.arange(top, dtype=np.uint16).view(NP[name]).astype(np.float64)


def _grid(name, src):
    """Around every value of ``name``: the values, every midpoint (a tie), the
    ``src`` numbers next to each value and midpoint (one ulp of the input type),
    the overflow edge (max, max + ulp/2 and its neighbours, beyond), the
    subnormal edge (half the smallest subnormal and its neighbours, below), both
    signs, zeros, infinities and NaN."""
    v = _values(name)
    mids = np.concatenate([(v[:-1] + v[1:]) / 2, [v[-1] + (v[-1] - v[-2]) / 2]])
    big, tiny = v[-1], v[1]
    edges = np.array([big + (v[-1] - v[-2]), big * 4, 1e30, tiny / 2, tiny / 4, tiny / 3, 1e-40], np.float64)
    with np.errstate(over="ignore"):
        pts = np.concatenate([v, mids, edges]).astype(src)
    finf = np.finfo(src)
    pts = pts[np.isfinite(pts)]
    pts = np.concatenate([pts, np.nextafter(pts, src(0)), np.nextafter(pts, src(np.inf)), [finf.max, finf.smallest_subnormal]])
    pts = np.concatenate([pts, -pts, np.array([0.0, -0.0, np.inf, -np.inf, np.nan], src)])
    return pts


@pytest.mark.parametrize("saturate", SATURATE, ids=["own_overflow", "saturate"])
@pytest.mark.parametrize("rounding", DETERMINISTIC_ROUNDINGS)
@pytest.mark.parametrize("src", [np.float64, np.float32], ids=["from_float64", "from_float32"])
@pytest.mark.parametrize("name", IEEE)
def test_16_bit_casts_round_like_the_exact_reference(name, src, rounding, saturate):
    """Every float16 / bfloat16 result of the grid (~130k inputs) is the one exact
    rounding in the mode gives (tests/reference.py ``round_mode_reference``)."""
    x = _grid(name, src)
    got = _cast(x, name, rounding=rounding, saturate=saturate)
    want = round_mode_reference(x, NP[name], rounding, saturate)
    bad = got.view(np.uint16) != want.view(np.uint16)
    bad &= ~(np.isnan(got.astype(np.float32)) & np.isnan(want.astype(np.float32)))
    assert not bad.any(), (x[bad][:4], got[bad][:4], want[bad][:4])


def _float32_grid():
    rng = np.random.default_rng(5)
    v = rng.integers(0, 0x7F800000, 20000, dtype=np.uint32).view(np.float32).astype(np.float64)
    v = np.concatenate([v, np.arange(0, 64, dtype=np.uint32).view(np.float32), [np.finfo(np.float32).max]])
    v = np.unique(v.astype(np.float64))
    with np.errstate(over="ignore"):
        up = np.nextafter(v.astype(np.float32), np.float32(np.inf)).astype(np.float64)
    mids = (v + up) / 2
    big = float(np.finfo(np.float32).max)
    edges = np.array([big + 2.0**103, big + 2.0**104, 1e300, 2.0**-150, 2.0**-151, 1e-300, 5e-324])
    pts = np.concatenate([v, mids, edges])
    pts = np.concatenate([pts, np.nextafter(pts, 0), np.nextafter(pts, np.inf)])
    return np.concatenate([pts, -pts, [0.0, -0.0, np.inf, -np.inf, np.nan]])


@pytest.mark.parametrize("saturate", SATURATE, ids=["own_overflow", "saturate"])
@pytest.mark.parametrize("rounding", DETERMINISTIC_ROUNDINGS)
def test_float64_to_float32_rounds_like_the_exact_reference(rounding, saturate):
    x = _float32_grid()
    got = _cast(x, "float32", rounding=rounding, saturate=saturate)
    want = round_mode_reference(x, np.float32, rounding, saturate)
    assert same_bits(got, want), x[(got.view(np.uint32) != want.view(np.uint32)) & ~np.isnan(got)][:4]


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32"])
def test_vectorised_reference_agrees_with_fractions(name):
    """The float64-comparison reference against round_mode_scalar (Fractions) on a sample."""
    x = (_float32_grid() if name == "float32" else _grid(name, np.float64))
    x = np.random.default_rng(1).choice(x[np.isfinite(x) & (x != 0)], 1500)
    for rounding in DETERMINISTIC_ROUNDINGS:
        for saturate in SATURATE:
            vec = round_mode_reference(x, NP[name], rounding, saturate).astype(np.float64)
            fr = np.array([round_mode_scalar(Fraction(float(v)), NP[name], rounding, saturate) for v in x])
            assert np.array_equal(vec, fr), (rounding, saturate, x[vec != fr][:3])


def test_default_policy_keeps_the_fast_path():
    """nearest_even without saturate is the default Policy: the F16C / bit path,
    numpy's and ml_dtypes' bits (NaN payloads included for float16)."""
    x = np.random.default_rng(0).normal(0, 100, 10000).astype(np.float32)
    x[:3] = [np.nan, -np.nan, 1e6]
    with np.errstate(over="ignore"):
        want = x.astype(np.float16)
    assert np.array_equal(_cast(x, "float16", rounding="nearest_even").view(np.uint16), want.view(np.uint16))
    assert same_bits(_cast(x, "bfloat16", rounding="nearest_even"), x.astype(ml_dtypes.bfloat16))


def test_nan_under_a_policy_is_a_quiet_nan_keeping_the_sign():
    x = np.array([np.nan, -np.nan], np.float32)
    assert list(_cast(x, "float16", rounding="up").view(np.uint16)) == [0x7E00, 0xFE00]
    assert list(_cast(x, "bfloat16", rounding="down").view(np.uint16)) == [0x7FC0, 0xFFC0]
    assert list(_cast(x.astype(np.float64), "float32", rounding="toward_zero").view(np.uint32)) == [0x7FC00000, 0xFFC00000]


def test_directed_modes_overflow_only_away_from_zero():
    x = np.array([1e6, -1e6], np.float32)
    assert list(_cast(x, "float16", rounding="toward_zero")) == [65504, -65504]
    assert list(_cast(x, "float16", rounding="up")) == [np.inf, -65504]
    assert list(_cast(x, "float16", rounding="down")) == [65504, -np.inf]
    with pytest.warns(RuntimeWarning, match="1 finite value"):
        cast(x, "float16", rounding="up")


# --- compute dtypes in a directed rounding mode -------------------------------

FORMULAS = ("sub_div", "sub_mul", "mul_add", "fma")


def _r(q, c, rounding):
    if q == 0:
        return 0.0
    return round_mode_scalar(q, NP[c], rounding)


def _standardize_reference(x, mean, std, formula, c, rounding):
    """Op by op with Fractions, each result rounded in ``rounding`` into compute dtype
    ``c``; the constants as transforms' module docstring says (rounded to nearest even)."""
    rn = lambda v: float(np.asarray(v, np.float64).astype(NP[c]))  # noqa: E731
    m, s = rn(mean), rn(std)
    F = Fraction
    out = []
    for v in x:
        v = _r(F(float(v)), c, rounding)
        if formula == "sub_div":
            y = _r(F(_r(F(v) - F(m), c, rounding)) / F(s), c, rounding)
        elif formula == "sub_mul":
            r = float((NP[c].type(1) / NP[c].type(s)))
            y = _r(F(_r(F(v) - F(m), c, rounding)) * F(r), c, rounding)
        else:
            sc = float(NP[c].type(1) / NP[c].type(s))
            t = float(NP[c].type(0) - NP[c].type(NP[c].type(m) * NP[c].type(sc)))
            if formula == "mul_add":
                y = _r(F(_r(F(v) * F(sc), c, rounding)) + F(t), c, rounding)
            else:
                y = _r(F(v) * F(sc) + F(t), c, rounding)
        out.append(y)
    return np.array(out)


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("rounding", ["toward_zero", "up", "down", "nearest_away"])
@pytest.mark.parametrize("compute", ["float16", "bfloat16", "float32"])
def test_directed_compute_matches_fractions_op_by_op(compute, rounding, formula):
    """standardize with given mean/std in compute dtype c under ``rounding``: the input's
    conversion and every operation round in that mode, exactly once.  A tiny mean
    makes ``x - mean`` inexact in any float64 sum (a sum not rounded to odd would
    lose the direction)."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0, 3, 150), [1.0, -1.0, 2.0**-20, 0.5]]).astype(np.float32)
    for mean, std in ((0.3, 1.7), (1e-30 if compute != "float16" else 1e-7, 3.0)):
        p = kernels.params("standardize", mean=[mean], std=[std])
        got = kernels.transform(x, "standardize", params=p, formula=formula, compute_dtype=compute,
                                rounding=rounding, output_dtype="float64")
        want = _standardize_reference(x, mean, std, formula, compute, rounding)
        assert np.array_equal(got, want), (mean, x[got != want][:3], got[got != want][:3], want[got != want][:3])


def test_default_compute_rounding_is_unchanged():
    x = np.random.default_rng(0).normal(0, 3, 5000).astype(np.float32)
    for c in ("float16", "bfloat16", "float32", "float64"):
        a = kernels.transform(x, "minmax", compute_dtype=c)
        b = kernels.transform(x, "minmax", compute_dtype=c, rounding="nearest_even")
        assert same_bits(a, b)


def test_compute_rounding_refusals_say_why():
    x = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="stochastic.*element index"):
        kernels.measure(x, "scale", divisor=2.0, compute_dtype="float16", rounding="stochastic", repeat=1)
    with pytest.raises(ValueError, match="seed= only applies"):
        kernels.transform(x, "scale", divisor=2.0, compute_dtype="float16", rounding="up", seed=1)
    with pytest.raises(ValueError, match="float64.*nearest_even"):
        kernels.transform(x, "scale", divisor=2.0, compute_dtype="float64", rounding="up")
    with pytest.raises(ValueError, match="not a rounding mode"):
        kernels.transform(x, "scale", divisor=2.0, compute_dtype="float16", rounding="nearest")
    p = kernels.fit(x, "scale", divisor=2.0)
    y = kernels.transform(x, "scale", params=p, compute_dtype="float16", rounding="up")
    back = kernels.inverse_transform(y, "scale", p, compute_dtype="float16", rounding="down")
    assert np.array_equal(back, x)


# --- stochastic rounding ------------------------------------------------------

K = np.arange(1, 8)  # distances k/8 of a quantum above the lower neighbour
N_EACH = 20000
ALPHA = 1e-3


def chi_square_round_up(ups, n, p):
    """Pearson's statistic of round-up counts ``ups`` (one per distance) against
    Binomial(n, p): sum (U - n p)^2 / (n p (1 - p)), chi-square with len(p) dof."""
    ups, p = np.asarray(ups, np.float64), np.asarray(p, np.float64)
    return float(np.sum((ups - n * p) ** 2 / (n * p * (1 - p))))


THRESHOLD = float(stats.chi2.ppf(1 - ALPHA, len(K)))

# (format, lower neighbour, its quantum, input dtype): normal, negative, subnormal, float32 from float64
CASES = [
    ("float16", 1.0, 2.0**-10, np.float64),
    ("float16", -3 * 2.0**-20, -(2.0**-24), np.float32),  # subnormal, negative: up in magnitude
    ("bfloat16", 1.5, 2.0**-7, np.float32),
    ("float8_e4m3fn", 2.0, 0.25, np.float64),
    ("float8_e5m2", -40.0, -8.0, np.float32),
    ("float4_e2m1fn", 0.5, 0.5, np.float64),
    ("float32", 1.0, 2.0**-23, np.float64),
]


def _stochastic_sample(name, lo, q, src, seed=11):
    x = np.repeat(lo + K * q / 8, N_EACH).astype(src)
    y = np.asarray(_cast(x, name, rounding="stochastic", seed=seed)).astype(np.float64)
    assert np.all((y == lo) | (y == lo + q)), f"{name}: a result is neither neighbour"
    return (y == lo + q).reshape(len(K), N_EACH).sum(axis=1)


@pytest.mark.parametrize("name,lo,q,src", CASES, ids=[f"{c[0]}-{c[1]:g}" for c in CASES])
def test_stochastic_rounds_up_with_probability_the_distance(name, lo, q, src):
    """x = lo + k/8 quantum, 20000 elements each: the fraction rounded up (away from
    lo) is k/8 by a chi-square test at alpha 1e-3 (fixed seed, so deterministic)."""
    ups = _stochastic_sample(name, lo, q, src)
    stat = chi_square_round_up(ups, N_EACH, K / 8)
    assert stat < THRESHOLD, (stat, ups / N_EACH)


def test_chi_square_rejects_a_biased_stochastic_rounding():
    """The same statistic fails an implementation that rounds up with probability 1/2
    whatever the distance, and one whose probabilities are 2 % too high."""
    rng = np.random.default_rng(0)
    half = rng.binomial(N_EACH, np.full(len(K), 0.5))
    assert chi_square_round_up(half, N_EACH, K / 8) > THRESHOLD
    shifted = rng.binomial(N_EACH, K / 8 + 0.02)
    assert chi_square_round_up(shifted, N_EACH, K / 8) > THRESHOLD
    fair = rng.binomial(N_EACH, K / 8)
    assert chi_square_round_up(fair, N_EACH, K / 8) < THRESHOLD


def test_stochastic_keeps_exact_values_and_is_unbiased():
    x = _values("float16")[::7]
    x = np.concatenate([x, -x])
    assert np.array_equal(_cast(x, "float16", rounding="stochastic", seed=3).astype(np.float64), x)
    y = np.random.default_rng(2).uniform(1, 2, 400000)
    r = _cast(y, "bfloat16", rounding="stochastic", seed=4).astype(np.float64)
    err = r - y  # each |err| < 2**-7, mean zero
    assert abs(err.mean()) < 5 * err.std() / np.sqrt(err.size)


def test_random_bits_are_splitmix64_of_seed_and_index():
    key = int(_round.seed_key(12345))
    with np.errstate(over="ignore"):  # uint64 products wrap, as in the kernel
        got = [int(_round.random_bits(np.uint64(key), np.int64(i))) for i in (0, 1, 2, 1000)]
    assert got == [_round.random_bits_reference(key, i) for i in (0, 1, 2, 1000)]
    # splitmix64's first output for state 0 (the reference generator's, Vigna's splitmix64.c)
    assert _round.random_bits_reference(0, 0) == 0xE220A8397B1DCDAF
    assert int(_round.seed_key(0)) == 0xE220A8397B1DCDAF


def _big_input(n=300_000):
    return np.random.default_rng(8).normal(0, 1, n).astype(np.float32)


def test_stochastic_is_reproducible_across_threads_and_compilations():
    x = _big_input()
    a = _cast(x, "float16", rounding="stochastic", seed=7)
    assert np.array_equal(a.view(np.uint16), _cast(x, "float16", rounding="stochastic", seed=7).view(np.uint16))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _cast(x, "float16", rounding="stochastic", seed=7)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(a.view(np.uint16), one.view(np.uint16))
    # the first 50,000 elements alone run the serial compilation: the same bits
    head = _cast(x[:50000], "float16", rounding="stochastic", seed=7)
    assert np.array_equal(a[:50000].view(np.uint16), head.view(np.uint16))
    assert np.array_equal(_cast(x, "float16", rounding="stochastic").view(np.uint16),
                          _cast(x, "float16", rounding="stochastic", seed=0).view(np.uint16))


def test_stochastic_in_place_blocks_give_the_whole_array_bits(monkeypatch):
    """out=x (float16 -> bfloat16 in place) runs in blocks through a temporary: each
    block draws the bits of its elements' indices in the whole array."""
    x = _big_input(100_000).astype(np.float16)
    whole = _cast(x, "bfloat16", rounding="stochastic", seed=9)
    monkeypatch.setattr(codec_cast, "IN_PLACE_BLOCK", 7000)
    buf = x.copy()
    res = _cast(buf, "bfloat16", rounding="stochastic", seed=9, out=buf.view(ml_dtypes.bfloat16))
    assert np.array_equal(res.view(np.uint16), whole.view(np.uint16))


def test_different_seeds_give_different_roundings():
    x = _big_input(100_000)
    a = _cast(x, "bfloat16", rounding="stochastic", seed=1).view(np.uint16)
    b = _cast(x, "bfloat16", rounding="stochastic", seed=2).view(np.uint16)
    frac = np.mean(a != b)
    assert 0.2 < frac < 0.5  # two independent roundings of a random value differ 1/3 of the time


def test_seed_is_validated():
    x = np.ones(3, np.float32)
    for bad in (1.5, "1", True, [1]):
        with pytest.raises(TypeError, match="seed"):
            cast(x, "float16", rounding="stochastic", seed=bad)
    for bad in (-1, 1 << 64):
        with pytest.raises(ValueError, match="seed"):
            cast(x, "float16", rounding="stochastic", seed=bad)
    with pytest.raises(ValueError, match="seed= only applies"):
        cast(x, "float16", seed=3)
    cast(x, "float16", rounding="stochastic", seed=np.uint64(2**64 - 1))
    with pytest.raises(ValueError, match="rounding='stochastic'"):
        cast(x, "uint8", rounding="stochastic")


# --- pychop: the benchmark's data, bit for bit ----------------------------------

PYCHOP_RMODE = {"nearest_even": 1, "up": 2, "down": 3, "toward_zero": 4, "nearest_away": 8}
PYCHOP_FORMAT = {"bfloat16": (8, 7), "float8_e4m3fn": (4, 3)}


@pytest.mark.parametrize("rounding", list(PYCHOP_RMODE))
@pytest.mark.parametrize("name", list(PYCHOP_FORMAT))
def test_deterministic_modes_match_pychop_on_the_benchmark_data(name, rounding):
    """pychop's Chop(exp_bits, sig_bits, rmode) on the data of ``speed --peers``' rounding
    jobs: the same bits for rmodes 1-4.  rmode 8 (ties away) rounds a negative tie
    toward zero (its tie branch picks floor for sign < 0 on the magnitude): those
    elements, and only those, differ, and ours is the exact reference's."""
    os.environ.setdefault("chop_backend", "auto")
    import pychop

    from kernels.peer_jobs import rounding_data

    x = rounding_data(name)(1 << 16)
    ours = _cast(x, name, rounding=rounding)
    e, m = PYCHOP_FORMAT[name]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = np.asarray(pychop.Chop(e, m, rmode=PYCHOP_RMODE[rounding], chunk_size=1 << 20)(x)).astype(NP[name])
    u = np.uint16 if name == "bfloat16" else np.uint8
    differ = ours.view(u) != theirs.view(u)
    if rounding != "nearest_away":
        assert not differ.any(), (x[differ][:4], ours[differ][:4], theirs[differ][:4])
        return
    xd = x.astype(np.float64)
    tie = (ours.astype(np.float64) - xd) == -(theirs.astype(np.float64) - xd)
    assert np.all(differ <= (tie & (x < 0))) and differ.any()
    exact = (round_mode_reference(x, NP[name], "nearest_away") if name == "bfloat16"
             else minifloat_reference(x, name, "nearest_away"))
    assert same_bits(ours, exact)


def test_pychop_misreads_the_exponent_just_below_a_power_of_two():
    """Why ``speed --peers`` finds a few elements in 1e7 where pychop's deterministic
    modes differ: its float32 ``floor(log2(|x|))`` rounds up for |x| a few ulps below
    a power of two, so it rounds to a quantum twice too coarse (and -0.0 becomes
    +0.0).  Ours is the exact reference's there."""
    import pychop

    x = np.array([np.nextafter(np.float32(1024), np.float32(0)), np.float32(-0.0)], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = np.asarray(pychop.Chop(8, 7, rmode=4)(x)).astype(ml_dtypes.bfloat16)
    ours = _cast(x, "bfloat16", rounding="toward_zero")
    assert same_bits(ours, round_mode_reference(x, NP["bfloat16"], "toward_zero"))
    assert float(ours[0]) == 1020.0 and float(theirs[0]) == 1016.0
    assert np.signbit(ours[1]) and not np.signbit(theirs[1].astype(np.float32))


# --- rounding= in pipeline steps (program ops under a policy) ------------------

DIRECTED = ("toward_zero", "up", "down", "nearest_away")
# integer-cast spellings of the same modes (codecs.ROUNDING_TABLE)
SPELLING = {"toward_zero": "toward_zero", "up": "ceil", "down": "floor", "nearest_away": "half_away"}


def _f16_grid_float32():
    """The float16 grid from float32 inputs, in [-8, 8] (so standardize's outputs stay in range)."""
    x = _grid("float16", np.float32)
    return x[np.isfinite(x) & (np.abs(x) <= 8)]


def test_transform_steps_round_as_transform_and_fractions():
    """Four standardize(compute_dtype=float16, rounding=r) steps, one per directed mode, as
    one pipeline (program ops under each policy, one fused kernel): transform(rounding=r)
    applied step after step, bit for bit, on every float16 grid point in [-8, 8]
    (~70k inputs), and the Fraction reference on a sample; the integer spellings
    of the modes build the same program.  (One pipeline, so one compile.)"""
    x = _f16_grid_float32()
    mean, std = 0.3, 1.7
    p = kernels.params("standardize", mean=[mean], std=[std])
    spec = "standardize(mean=({m},), std=({s},), formula=sub_div, compute_dtype=float16, rounding={r}, output_dtype=float64)"
    specs = [spec.format(m=mean, s=std, r=r) for r in DIRECTED]
    got = kernels.pipeline(*specs).transform(x)
    sample = np.random.default_rng(6).choice(x, 200)
    want, fr = x, sample
    for r in DIRECTED:  # float16 values: exact in float32, so each step's input converts exactly
        want = kernels.transform(want.astype(np.float32), "standardize", params=p, formula="sub_div",
                                 compute_dtype="float16", rounding=r, output_dtype="float64")
        fr = _standardize_reference(fr.astype(np.float32), mean, std, "sub_div", "float16", r)
    assert same_bits(got, want)
    assert np.array_equal(kernels.pipeline(*specs).transform(sample), fr)
    alias = kernels.pipeline(*[spec.format(m=mean, s=std, r=SPELLING[r]) for r in DIRECTED])
    assert alias.program("float32")[0] == kernels.pipeline(*specs).program("float32")[0]
    ne = kernels.pipeline(spec.format(m=mean, s=std, r="nearest_even")).program("float32")[0]
    assert ne == kernels.pipeline(spec.format(m=mean, s=std, r="half_even")).program("float32")[0]
    assert all(op.codec_tag is None for op in ne)  # the default mode is the default program


@pytest.mark.parametrize("rounding", DIRECTED)
def test_cast_step_rounds_like_the_exact_reference(rounding):
    """cast(output_dtype=float16, rounding=r) on the float16 grid from float64 (every
    value, midpoint, neighbour, both edges): round_mode_reference's bits."""
    x = _grid("float16", np.float64)
    got = _quiet(kernels.pipeline(f"cast(output_dtype=float16, rounding={rounding})").transform, x)
    want = round_mode_reference(x, NP["float16"], rounding)
    bad = (got.view(np.uint16) != want.view(np.uint16)) & ~(np.isnan(got.astype(np.float32)) & np.isnan(want.astype(np.float32)))
    assert not bad.any(), (x[bad][:4], got[bad][:4], want[bad][:4])


def _quiet(fn, *a):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*a)


def test_cast_step_into_float8_and_float64_and_integers():
    """A storage format under a mode (a round op into it, decode(encode(v))): kernels.cast's
    bits; float64 is exact in every mode; integer casts take the float names too."""
    x = np.random.default_rng(4).normal(0, 40, 20000)
    got = _quiet(kernels.pipeline("cast(output_dtype=float8_e4m3fn, rounding=up)").transform, x)
    assert np.array_equal(got.view(np.uint8), _cast(x, "float8_e4m3fn", rounding="up").view(np.uint8))
    assert same_bits(kernels.pipeline("cast(output_dtype=float64, rounding=down)").transform(x), x)
    v = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.7, -3.7])
    for float_name, int_name in [("nearest_even", "half_even"), *SPELLING.items()]:
        a = kernels.pipeline(f"cast(output_dtype=int8, rounding={float_name})").transform(v)
        b = kernels.pipeline(f"cast(output_dtype=int8, rounding={int_name})").transform(v)
        assert np.array_equal(a, b)
    assert kernels.pipeline("cast(output_dtype=int8, rounding=up)").transform(v).tolist() == [-2, -1, 0, 1, 2, 3, 4, -3]
    # kernels.cast takes the integer spellings of its float modes as well
    assert same_bits(_cast(x, "float16", rounding="floor"), _cast(x, "float16", rounding="down"))


@pytest.mark.parametrize("spec,match", [
    ("minmax(compute_dtype=float16, rounding=nearest)", "use one of: nearest_even, toward_zero, up, down, nearest_away"),
    ("minmax(compute_dtype=float64, rounding=up)", "float64.*only rounding='nearest_even'"),
    ("minmax(compute_dtype=float16, rounding=up, seed=3)", "seed= only applies to rounding='stochastic'"),
    ("cast(output_dtype=float16, rounding=stochastic, seed=-1)", "seed"),
    ("cast(output_dtype=uint8, seed=2)", "seed= only applies"),
    ("cast(output_dtype=float16, rounding=sideways)", "not a rounding mode of a float dtype; use one of: nearest_even"),
    ("cast(output_dtype=uint8, rounding=stochastic)", "integer cast; use one of: half_even, toward_zero"),
    ("cast(output_dtype=float16, overflow=wrap)", "overflow='wrap' applies to integer dtypes"),
])
def test_bad_rounding_in_a_step_lists_the_valid_ones(spec, match):
    with pytest.raises(ValueError, match=match):
        kernels.pipeline(spec)
    with pytest.raises(ValueError, match="not a rounding mode"):
        kernels.transform(np.ones(3, np.float32), "scale", divisor=2.0, compute_dtype="float16", rounding="sideways")


def test_measure_forwards_rounding_and_records_it():
    """measure(rounding=) measures transform(rounding=) (its distinct outputs on a domain of
    every uint16 code in [0, 4095]) and keeps the mode in Record.options, so
    measure(**record.options) runs the same variant (the pipeline step's figures
    agree: tests/test_cli_pipeline.py)."""
    dom = kernels.domain("uint16", 0, 4095)
    r = kernels.measure(dom, "minmax", compute_dtype="float16", rounding="up", repeat=1)
    y = kernels.transform(dom.values(), "minmax", compute_dtype="float16", rounding="up")
    assert r.options["rounding"] == "up" and r.distinct_out == np.unique(y).size
    again = kernels.measure(dom, "minmax", compute_dtype="float16", repeat=1, **r.options)
    assert again.distinct_out == r.distinct_out and again.options == r.options
    with pytest.raises(ValueError, match="float64"):
        kernels.measure(dom, "minmax", compute_dtype="float64", rounding="up", repeat=1)


# --- stochastic rounding in program ops (pipeline steps) --------------------------


def test_stochastic_add_rounds_up_with_probability_the_distance():
    """An add in float16 under rounding='stochastic': 1 + k/8 quantum (k = 1..7, one
    constant per feature, 20000 rows) rounds up with probability k/8 by the chi-square
    test at alpha 1e-3 (fixed seed): the op's result draws its own bits."""
    from kernels.program import Op, run_program

    c = K * 2.0**-13  # float16 values: k/8 of float16's quantum at 1
    x = np.ones((N_EACH, len(K)), np.float32)
    y = run_program(x, [Op("add", "float16", (c,), rounding="stochastic", seed=11)], "float64")
    assert np.all((y == 1.0) | (y == 1.0 + 2.0**-10))
    ups = (y > 1).sum(axis=0)
    assert chi_square_round_up(ups, N_EACH, K / 8) < THRESHOLD, ups / N_EACH


def test_stochastic_steps_are_reproducible_across_threads_and_lengths():
    """minmax(compute_dtype=bfloat16, rounding=stochastic, seed=5): each element's bits are a
    function of (seed, its index, the op): the same on a second run, on one thread, and
    for a prefix of the array; another seed rounds differently.  A stochastic cast step
    alone has kernels.cast's bits."""
    x = _big_input()
    spec = "minmax(compute_dtype=bfloat16, rounding=stochastic, seed=5, output_dtype=float64)"
    pipe = kernels.pipeline(spec).fit(x)
    a = pipe.transform(x)
    assert same_bits(a, pipe.transform(x))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = pipe.transform(x)
    finally:
        numba.set_num_threads(before)
    assert same_bits(a, one)
    assert same_bits(a[:50000], pipe.transform(x[:50000]))
    other = kernels.pipeline(spec.replace("seed=5", "seed=6")).fit(x).transform(x)
    assert 0.2 < np.mean(a != other) < 0.7
    nearest = kernels.transform(x, "minmax", compute_dtype="bfloat16", output_dtype="float64")
    assert np.abs(a - nearest).max() <= 2 * 2.0**-8  # within a quantum or two of nearest's
    # transform(rounding='stochastic', seed=) runs the same ops: the step's bits
    assert same_bits(a, kernels.transform(x, "minmax", params=pipe.steps[0].state, compute_dtype="bfloat16",
                                          rounding="stochastic", seed=5, output_dtype="float64"))
    xd = x.astype(np.float64) / 3
    got = kernels.pipeline("cast(output_dtype=float16, rounding=stochastic, seed=7)").transform(xd)
    assert np.array_equal(got.view(np.uint16), _cast(xd, "float16", rounding="stochastic", seed=7).view(np.uint16))
