"""Scaled casts and MX blocks against an independent reference written here from
the OCP Microscaling v1.0 text (section 6.3) and torchao's formulas (exact
exponents from ``math.frexp`` and Fractions, element rounding by ml_dtypes'
own casts), bit for bit; and against torchao itself (``to_mx``, the float8
training scale and cast), where its arithmetic is the same; the places where
torchao 0.18.0 differs are tests of their own."""

import math
import warnings
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from kernels import scaled
from kernels.scaled import ELEMENT_DTYPES, SCALE_RULES

BF16 = ml_dtypes.bfloat16
INPUTS = (np.float32, BF16, np.float16, np.float64)


# --------------------------------------------------------------------------
# the reference
# --------------------------------------------------------------------------


def _mant_bits(name):
    return ml_dtypes.finfo(getattr(ml_dtypes, name)).nmant


def _fmax(name):
    return float(ml_dtypes.finfo(getattr(ml_dtypes, name)).max)


def _floor_log2(a: float) -> float:
    """floor(log2 a) exactly (frexp: a = m * 2**e, 0.5 <= m < 1); -inf for 0."""
    return -math.inf if a == 0 else math.frexp(a)[1] - 1


def _ceil_log2(a: float) -> float:
    if a == 0:
        return -math.inf
    m, e = math.frexp(a)
    return e - 1 if m == 0.5 else e


def ref_exponent(a: float, name: str, rule: str):
    """OCP 6.3 / torchao: the shared exponent s of a block of float32 amax ``a``, or None (NaN scale)."""
    if not math.isfinite(a):
        return None
    fmax = _fmax(name)
    emax = _floor_log2(fmax)
    if rule == "floor":  # OCP: floor(log2(max |V_i|)) - emax_elem
        s = _floor_log2(a) - emax
    elif rule == "ceil":
        s = _ceil_log2(a) - emax
    elif rule == "even":  # a rounded to the element's mantissa bits, ties away from zero
        if a == 0:
            s = -math.inf
        else:
            q = Fraction(2) ** (_floor_log2(a) - _mant_bits(name))
            r = math.floor(Fraction(a) / q + Fraction(1, 2)) * q  # dyadic, at most 2**128: exact in float64
            s = _floor_log2(float(r)) - emax
    else:  # rceil: the power of two at or above float32(a / fmax) (IEEE division)
        s = _ceil_log2(float(np.float32(a) / np.float32(fmax)))
    return int(min(max(s, -127), 127))


def _to_elem(v: np.ndarray, name: str, saturate: bool = True) -> np.ndarray:
    fmax = _fmax(name)
    if saturate:
        v = np.clip(v, -fmax, fmax)  # NaN passes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return v.astype(getattr(ml_dtypes, name))


def ref_mx(x, name, rule, block=32, axis=-1):
    """(codes, e8m0 bytes, dequantized float64) of x in MX blocks along axis."""
    x32 = np.moveaxis(np.asarray(x).astype(np.float32), axis, -1)
    n = x32.shape[-1]
    nb = -(-n // block)
    pad = np.zeros(x32.shape[:-1] + (nb * block - n,), np.float32)
    blocks = np.concatenate([x32, pad], -1).reshape(-1, nb, block).astype(np.float64)
    codes = np.empty(blocks.shape, getattr(ml_dtypes, name))
    sbytes = np.empty(blocks.shape[:2], np.uint8)
    deq = np.empty(blocks.shape)
    for i in range(blocks.shape[0]):
        for b in range(nb):
            v = blocks[i, b]
            s = ref_exponent(float(np.max(np.abs(v))), name, rule)  # np.max: NaN if any is NaN
            sbytes[i, b] = 255 if s is None else s + 127
            scaled_v = v * math.nan if s is None else v / 2.0**s  # exact: a power of two
            codes[i, b] = _to_elem(scaled_v, name)
            deq[i, b] = math.nan if s is None else codes[i, b].astype(np.float64) * 2.0**s
    shape = x32.shape
    codes = np.moveaxis(codes.reshape(shape[:-1] + (nb * block,))[..., :n], -1, axis)
    deq = np.moveaxis(deq.reshape(shape[:-1] + (nb * block,))[..., :n], -1, axis)
    sbytes = np.moveaxis(sbytes.reshape(shape[:-1] + (nb,)), -1, axis)
    with np.errstate(over="ignore"):
        return codes, sbytes, deq.astype(np.float32)  # 2**128 (ceil/even near float32 max) is inf


def ref_scaled(x, name, axis=None, eps=1e-12, pow2=False, saturate=True):
    """torchao float8: scale = float32(fmax / max(amax, eps)) in float64; codes of float32(x) * scale."""
    x64 = np.asarray(x).astype(np.float64)
    amax = np.max(np.abs(x64), axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (_fmax(name) / np.maximum(amax, eps)).astype(np.float32)
    if pow2:
        scale = np.array([2.0 ** _floor_log2(float(s)) if np.isfinite(s) and s > 0 else s for s in scale.ravel()],
                         np.float32).reshape(scale.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        v = np.asarray(x).astype(np.float32) * scale  # float32 product
    codes = _to_elem(v.astype(np.float64), name, saturate)
    with np.errstate(invalid="ignore", divide="ignore"):
        deq = codes.astype(np.float32) / scale
    return codes, scale, deq


def _bits(a):
    return np.asarray(a).view(np.uint8)


def _same(a, b):
    """Equal values, NaN equal to NaN (dequantized floats)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.array_equal(a, b, equal_nan=True)


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------


def traps(name, seed=0):
    """Blocks of 32 (rows) holding the numerical traps for element format ``name``."""
    rng = np.random.default_rng(seed)
    fmax = _fmax(name)
    emax = _floor_log2(fmax)
    rows = [
        rng.standard_normal(32),  # ordinary
        rng.standard_normal(32) * np.exp2(rng.uniform(-24, 0, 32)),  # element subnormals beside a large amax
        np.zeros(32),  # all zero: scale 2**-127
        np.r_[np.zeros(31), 1.0],  # amax exactly a power of two
        np.r_[rng.uniform(-1, 1, 31), fmax],  # amax at the format max
        np.r_[rng.uniform(-1, 1, 31), fmax * 2.0**-40],  # ... times a power of two
        np.r_[rng.uniform(-1, 1, 31), (2 - 2.0**-20) * 2.0**emax],  # just below the next power: floor overflows
        np.r_[rng.uniform(-1, 1, 31), np.nan],  # NaN: the NaN scale
        np.r_[rng.uniform(-1, 1, 31), np.inf],  # inf: the NaN scale
        np.r_[rng.uniform(-1, 1, 31), -np.inf],
        rng.standard_normal(32) * 2.0**-140,  # float32 subnormals: scale clamped at 2**-127
        rng.standard_normal(32) * 2.0**-120,
        np.r_[rng.uniform(-1, 1, 31), np.float32(3.4028235e38)],  # float32 max: even rounds amax to 2**128
        np.r_[rng.uniform(-1, 1, 31) * 2.0**100, 2.0**127],
        np.r_[np.full(31, 0.5), (2 - 2.0**-(_mant_bits(name) + 1)) * 4],  # the even rule's tie
        np.r_[np.full(31, 0.5), (2 - 2.0**-(_mant_bits(name) + 1)) * 4 * (1 - 2.0**-20)],
        -np.abs(rng.standard_normal(32)) * 1e3,
    ]
    return np.array(rows)


def random_blocks(shape, seed, spread=30):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * np.exp2(rng.integers(-spread, spread, shape[:-1] + (1,)))


# --------------------------------------------------------------------------
# MX blocks against the reference
# --------------------------------------------------------------------------


@pytest.mark.parametrize("rule", SCALE_RULES)
@pytest.mark.parametrize("name", ELEMENT_DTYPES)
def test_mx_traps_match_reference(name, rule):
    x = traps(name).astype(np.float32)
    codes, scales = scaled.mx_quantize(x, name, scale_rule=rule)
    rc, rs, rd = ref_mx(x, name, rule)
    assert codes.dtype == np.dtype(getattr(ml_dtypes, name)) and scales.dtype == np.dtype(ml_dtypes.float8_e8m0fnu)
    np.testing.assert_array_equal(_bits(scales), rs)
    np.testing.assert_array_equal(_bits(codes), _bits(rc))
    assert _same(scaled.mx_dequantize(codes, scales), rd)


@pytest.mark.parametrize("dtype", INPUTS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("rule", SCALE_RULES)
@pytest.mark.parametrize("name", ELEMENT_DTYPES)
def test_mx_random_matches_reference(name, rule, dtype):
    spread = 12 if dtype is np.float16 else 30
    x = random_blocks((6, 96), seed=len(name) + SCALE_RULES.index(rule), spread=spread).astype(dtype)
    codes, scales = scaled.mx_quantize(x, name, scale_rule=rule)
    rc, rs, rd = ref_mx(x, name, rule)
    np.testing.assert_array_equal(_bits(scales), rs)
    np.testing.assert_array_equal(_bits(codes), _bits(rc))
    assert _same(scaled.mx_dequantize(codes, scales), rd)


def test_mx_along_axis_0_and_block_sizes():
    x = random_blocks((64, 5), seed=3).T.copy().T  # 64 x 5, blocks down the columns
    for block in (1, 8, 32, 64):
        codes, scales = scaled.mx_quantize(x, "float8_e4m3fn", block=block, axis=0)
        rc, rs, rd = ref_mx(x, "float8_e4m3fn", "floor", block=block, axis=0)
        assert scales.shape == (64 // block, 5)
        np.testing.assert_array_equal(_bits(scales), rs)
        np.testing.assert_array_equal(_bits(codes), _bits(rc))
        assert _same(scaled.mx_dequantize(codes, scales, block=block, axis=0), rd)


def test_mx_pad_zeros_completes_the_last_block():
    x = random_blocks((3, 4, 70), seed=4).astype(np.float32)
    codes, scales = scaled.mx_quantize(x, "float6_e3m2fn", scale_rule="rceil", pad="zeros")
    rc, rs, rd = ref_mx(x, "float6_e3m2fn", "rceil")
    assert codes.shape == x.shape and scales.shape == (3, 4, 3)
    np.testing.assert_array_equal(_bits(scales), rs)
    np.testing.assert_array_equal(_bits(codes), _bits(rc))
    assert _same(scaled.mx_dequantize(codes, scales, pad="zeros"), rd)


def test_mx_large_input_runs_parallel_kernel_same_bits():
    x = random_blocks((1 << 12, 32), seed=5).astype(np.float32)  # > SERIAL_MAX elements
    codes, scales = scaled.mx_quantize(x, "float4_e2m1fn", scale_rule="even")
    sub = slice(0, 64)
    c2, s2 = scaled.mx_quantize(x[sub], "float4_e2m1fn", scale_rule="even")
    np.testing.assert_array_equal(_bits(codes[sub]), _bits(c2))
    np.testing.assert_array_equal(_bits(scales[sub]), _bits(s2))
    rc, rs, _ = ref_mx(x[:256], "float4_e2m1fn", "even")
    np.testing.assert_array_equal(_bits(codes[:256]), _bits(rc))


def test_mx_nan_or_inf_amax_gives_the_nan_scale_and_a_nan_block():
    x = traps("float8_e4m3fn").astype(np.float32)
    codes, scales = scaled.mx_quantize(x, "float8_e4m3fn")
    bad = ~np.isfinite(x).all(axis=1)
    assert bad.sum() == 3
    assert (_bits(scales)[bad] == 0xFF).all() and np.isnan(scales[bad].astype(np.float32)).all()
    assert (_bits(scales)[~bad] != 0xFF).all()
    deq = scaled.mx_dequantize(codes, scales)
    assert np.isnan(deq[bad]).all() and not np.isnan(deq[~bad]).any()


def test_mx_zero_block_gets_the_smallest_scale():
    codes, scales = scaled.mx_quantize(np.zeros((2, 32), np.float32), "float8_e5m2")
    assert (scales.astype(np.float64) == 2.0**-127).all()
    assert (scaled.mx_dequantize(codes, scales) == 0).all()


@pytest.mark.parametrize("name", ELEMENT_DTYPES)
def test_mx_floor_saturates_the_elements_above_fmax(name):
    """OCP 6.3: floor(log2 amax) - emax can leave the largest element past fmax
    (up to 2**(emax+1)); it is clamped to fmax, not NaN or inf."""
    emax = _floor_log2(_fmax(name))
    x = np.r_[np.full(31, 0.25), (2 - 2.0**-10) * 2.0**emax].astype(np.float32).reshape(1, 32)
    codes, scales = scaled.mx_quantize(x, name)
    assert scales.astype(np.float64)[0, 0] == 1.0
    assert codes[0, -1].astype(np.float64) == _fmax(name)


@pytest.mark.parametrize("name", ELEMENT_DTYPES)
def test_mx_block_of_format_values_round_trips(name):
    """amax at the format max (times any power of two in range): every element
    that is a format value times the scale comes back exactly, floor and rceil."""
    fmt = getattr(ml_dtypes, name)
    vals = np.unique(np.arange(256, dtype=np.uint8).view(fmt).astype(np.float64))
    vals = vals[np.isfinite(vals)]
    blocks = [np.resize(np.r_[_fmax(name), vals[np.random.default_rng(k).permutation(vals.size)]], 32) for k in range(4)]
    for k in (-30, 0, 20):
        x = (np.array(blocks) * 2.0**k).astype(np.float32)
        for rule in ("floor", "rceil"):
            codes, scales = scaled.mx_quantize(x, name, scale_rule=rule)
            assert (scales.astype(np.float64) == 2.0**k).all()
            np.testing.assert_array_equal(scaled.mx_dequantize(codes, scales), x)


def test_mx_even_rule_carry_past_float32_max_keeps_a_finite_scale():
    """even rounds amax = float32 max to 2**128: s = 128 - emax, a finite scale
    (torchao's main branch makes it NaN by testing the rounded amax for finiteness)."""
    x = np.r_[np.zeros(31), np.finfo(np.float32).max].astype(np.float32).reshape(1, 32)
    _, s_even = scaled.mx_quantize(x, "float8_e4m3fn", scale_rule="even")
    _, s_floor = scaled.mx_quantize(x, "float8_e4m3fn", scale_rule="floor")
    assert s_even.astype(np.float64)[0, 0] == 2.0 * s_floor.astype(np.float64)[0, 0] == 2.0 ** (128 - 8)


def test_bytes_per_element():
    assert scaled.bytes_per_element("float8_e4m3fn", 32) == 1 + 1 / 32
    assert scaled.bytes_per_element("float6_e2m3fn", 32) == 6 / 8 + 1 / 32
    assert scaled.bytes_per_element("float4_e2m1fn", 16) == 4 / 8 + 1 / 16
    assert scaled.bytes_per_element("float16") == 2
    assert [scaled.element_emax(n) for n in ("float8_e4m3fn", "float8_e5m2", "float6_e2m3fn", "float4_e2m1fn")] == [
        _floor_log2(_fmax(n)) for n in ("float8_e4m3fn", "float8_e5m2", "float6_e2m3fn", "float4_e2m1fn")]


# --------------------------------------------------------------------------
# per tensor / per channel against the reference
# --------------------------------------------------------------------------


@pytest.mark.parametrize("pow2", (False, True), ids=("scale", "pow2"))
@pytest.mark.parametrize("axis", (None, 0, -1, (0, 1)), ids=("tensor", "axis0", "axis-1", "axes01"))
@pytest.mark.parametrize("dtype", INPUTS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", ELEMENT_DTYPES)
def test_scaled_cast_matches_reference(name, dtype, axis, pow2):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((6, 5, 4)) * np.exp2(rng.integers(-12, 12, (1, 1, 4)))).astype(dtype)
    x[0, 0, 0] = 0
    x[1, :, 1] = 0  # a zero channel: scale fmax / eps
    codes, scale = scaled.scaled_cast(x, name, axis=axis, pow2=pow2)
    rc, rs, rd = ref_scaled(x, name, axis, pow2=pow2)
    np.testing.assert_array_equal(_bits(scale.view(np.uint32)), _bits(rs.view(np.uint32)))
    np.testing.assert_array_equal(_bits(codes), _bits(rc))
    assert _same(scaled.scaled_dequantize(codes, scale, axis=axis), rd)


@pytest.mark.parametrize("name", ("float8_e4m3fn", "float8_e5m2", "float6_e2m3fn"))
def test_scaled_cast_traps_match_reference(name):
    x = traps(name).astype(np.float32)
    for axis in (None, -1):
        for eps in (1e-12, 1e-3):
            codes, scale = scaled.scaled_cast(x, name, axis=axis, eps=eps)
            rc, rs, rd = ref_scaled(x, name, axis, eps=eps)
            np.testing.assert_array_equal(scale.view(np.uint32), rs.view(np.uint32))
            np.testing.assert_array_equal(_bits(codes), _bits(rc))
            assert _same(scaled.scaled_dequantize(codes, scale, axis=axis), rd)


def test_scaled_cast_without_saturation_overflows_as_the_format():
    x = np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)
    # a delayed scale: amax from other data, larger values overflow
    codes, scale = scaled.scaled_cast(x[:, :2], "float8_e4m3fn", saturate=False)
    assert scale[0, 0] == np.float32(448 / 2)
    c2, _ = scaled.scaled_cast(x, "float8_e4m3fn", saturate=False)
    rc, _, _ = ref_scaled(x, "float8_e4m3fn", saturate=False)
    np.testing.assert_array_equal(_bits(c2), _bits(rc))


def test_pow2_is_the_exact_power_of_two_below():
    s = np.array([1.0, 1.5, np.nextafter(np.float32(2), np.float32(0)), 2.0 ** -130, 3 * 2.0 ** -140, 0.0], np.float32)
    got = scaled._pow2_down(s).astype(np.float64)
    assert list(got) == [2.0 ** _floor_log2(float(v)) if v else 0.0 for v in s]


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------


def test_mx_length_not_a_multiple_names_both():
    with pytest.raises(ValueError, match=r"length 40.*block=32.*pad='zeros'"):
        scaled.mx_quantize(np.ones((2, 40), np.float32), "float8_e4m3fn")
    codes, scales = scaled.mx_quantize(np.ones((2, 40), np.float32), "float8_e4m3fn", pad="zeros")
    with pytest.raises(ValueError, match=r"length 40.*block=32"):
        scaled.mx_dequantize(codes, scales)


def test_unknown_rule_and_format_list_the_valid_ones():
    x = np.ones(32, np.float32)
    with pytest.raises(ValueError, match="floor, ceil, even, rceil"):
        scaled.mx_quantize(x, "float8_e4m3fn", scale_rule="round")
    for bad in ("float16", "float8_e8m0fnu", "int4", "uint8"):
        with pytest.raises(ValueError, match="float8_e4m3fn, float8_e5m2.*float4_e2m1fn"):
            scaled.mx_quantize(x, bad)
        with pytest.raises(ValueError, match="float4_e2m1fn"):
            scaled.scaled_cast(x, bad)
    with pytest.raises(ValueError, match="pad="):
        scaled.mx_quantize(x, "float8_e4m3fn", pad="edge")


def test_other_bad_arguments():
    x = np.ones((4, 32), np.float32)
    with pytest.raises(TypeError, match="float16, bfloat16, float32, float64"):
        scaled.mx_quantize(np.ones(32, np.uint8), "float8_e4m3fn")
    with pytest.raises(ValueError, match="block=0"):
        scaled.mx_quantize(x, "float8_e4m3fn", block=0)
    with pytest.raises(TypeError, match="block=2.5"):
        scaled.mx_quantize(x, "float8_e4m3fn", block=2.5)
    with pytest.raises(ValueError, match="out of range"):
        scaled.mx_quantize(x, "float8_e4m3fn", axis=2)
    with pytest.raises(ValueError, match="consecutive"):
        scaled.scaled_cast(np.ones((2, 3, 4), np.float32), "float8_e4m3fn", axis=(0, 2))
    with pytest.raises(ValueError, match="eps"):
        scaled.scaled_cast(x, "float8_e4m3fn", eps=0)
    codes, scales = scaled.mx_quantize(x, "float8_e4m3fn")
    with pytest.raises(ValueError, match="scales has shape"):
        scaled.mx_dequantize(codes, scales[:2])
    with pytest.raises(TypeError, match="float8_e8m0fnu"):
        scaled.mx_dequantize(codes, scales.astype(np.float32))
    with pytest.raises(ValueError, match="is empty"):
        scaled.mx_quantize(np.ones((0, 32), np.float32), "float8_e4m3fn")
    before = x.copy()
    scaled.mx_quantize(x, "float8_e4m3fn")
    scaled.scaled_cast(x, "float8_e4m3fn")
    np.testing.assert_array_equal(x, before)  # inputs never modified


# --------------------------------------------------------------------------
# torchao itself
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ao():
    import logging

    logging.getLogger("torchao").setLevel(logging.ERROR)
    import torch
    import torchao.prototype.mx_formats.mx_tensor as mx
    from torchao.prototype.mx_formats.config import ScaleCalculationMode
    from torchao.prototype.mx_formats.constants import DTYPE_FP6_E2M3, DTYPE_FP6_E3M2
    from torchao.prototype.mx_formats.kernels import unpack_uint4

    elems = {"float8_e4m3fn": torch.float8_e4m3fn, "float8_e5m2": torch.float8_e5m2,
             "float6_e2m3fn": DTYPE_FP6_E2M3, "float6_e3m2fn": DTYPE_FP6_E3M2, "float4_e2m1fn": torch.float4_e2m1fn_x2}
    modes = {r: getattr(ScaleCalculationMode, r.upper()) for r in SCALE_RULES}

    def to_mx(x, name, rule, block=32):
        s, d = mx.to_mx(torch.from_numpy(np.asarray(x)) if x.dtype != BF16 else
                        torch.from_numpy(x.view(np.uint16)).view(torch.bfloat16), elems[name], block, modes[rule])
        if name.startswith("float4"):
            d = unpack_uint4(d)
        return d.view(torch.uint8).numpy(), s.view(torch.uint8).numpy()

    return torch, to_mx, elems


TORCHAO_MX = ("float8_e4m3fn", "float8_e5m2", "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn")


def _finite_normal_blocks(x, name):
    """Blocks torchao 0.18.0 and this module agree on: finite, and a scale above 2**-127."""
    a = np.abs(x.astype(np.float32)).astype(np.float64).reshape(x.shape[0], -1, 32).max(axis=-1)
    return np.isfinite(a) & (a >= 2.0 ** (-127 + _floor_log2(_fmax(name)) + 1))


@pytest.mark.parametrize("dtype", (np.float32, BF16), ids=("float32", "bfloat16"))
@pytest.mark.parametrize("rule", SCALE_RULES)
@pytest.mark.parametrize("name", TORCHAO_MX)
def test_mx_matches_torchao_to_mx(ao, name, rule, dtype):
    _, to_mx, _ = ao
    x = np.concatenate([random_blocks((8, 256), seed=11), traps(name).reshape(1, -1)[:, :256]]).astype(dtype)
    codes, scales = scaled.mx_quantize(x, name, scale_rule=rule)
    tc, ts = to_mx(x, name, rule)
    ok = _finite_normal_blocks(x, name)
    assert ok.sum() >= 70
    np.testing.assert_array_equal(_bits(scales)[ok], ts[ok])
    np.testing.assert_array_equal(_bits(codes).reshape(ok.shape + (32,))[ok], tc.reshape(ok.shape + (32,))[ok])
    nan = np.isnan(np.abs(x.astype(np.float32)).reshape(ok.shape + (32,)).max(axis=-1))
    assert (ts[nan] == 0xFF).all() and (_bits(scales)[nan] == 0xFF).all()


@pytest.mark.parametrize("rule", ("floor", "ceil", "even"))
def test_torchao_018_divides_a_2m127_block_by_2m126(ao, rule):
    """torchao 0.18.0 records the scale 2**-127 for a block of tiny amax but
    divides by max(X, 2**-126): its codes are this module's for half the input
    (so its dequantized block is half the input)."""
    _, to_mx, _ = ao
    rng = np.random.default_rng(12)
    x = (rng.choice([-1, 1], (4, 32)) * rng.uniform(1, 2, (4, 32)) * 2.0**-122).astype(np.float32)  # normal
    tc, ts = to_mx(x, "float8_e4m3fn", rule)
    codes, scales = scaled.mx_quantize(x, "float8_e4m3fn", scale_rule=rule)
    half, _ = scaled.mx_quantize(x / np.float32(2), "float8_e4m3fn", scale_rule=rule)  # exact halving
    assert (ts == 0).all() and (_bits(scales) == 0).all()
    assert not np.array_equal(tc, _bits(codes))
    np.testing.assert_array_equal(tc, _bits(half))


def test_torchao_018_inf_block_gets_a_finite_scale(ao):
    _, to_mx, _ = ao
    x = np.r_[np.ones(31), np.inf].astype(np.float32).reshape(1, 32)
    _, ts = to_mx(x, "float8_e4m3fn", "floor")
    _, scales = scaled.mx_quantize(x, "float8_e4m3fn")
    assert _bits(scales)[0, 0] == 0xFF and ts[0, 0] == 128 + 127 - 8  # its exponent field 255 read as 2**128


def test_torchao_018_rceil_misses_the_round_up_just_above_a_power_of_two(ao):
    """torchao 0.18.0's rceil takes ceil(log2(d)) in float32: for d = 2**k (1 + 2**-23)
    log2 rounds to k, and the scale 2**k leaves the block's max above fmax (clamped)."""
    _, to_mx, _ = ao
    d = np.float32(2.0**10) * (1 + np.float32(2.0**-23))
    amax = np.float32(d * np.float32(448))
    x = np.r_[np.ones(31), amax].astype(np.float32).reshape(1, 32)
    _, ts = to_mx(x, "float8_e4m3fn", "rceil")
    _, scales = scaled.mx_quantize(x, "float8_e4m3fn", scale_rule="rceil")
    assert np.float32(amax / np.float32(448)) > 2.0**10
    assert _bits(scales)[0, 0] == 127 + 11 and ts[0, 0] == 127 + 10


@pytest.mark.parametrize("axis", (None, -1, 0), ids=("tensor", "rowwise", "colwise"))
@pytest.mark.parametrize("name", ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"))
def test_scaled_cast_matches_torchao_float8(ao, name, axis):
    torch = ao[0]
    from torchao.float8.float8_training_tensor import hp_tensor_and_scale_to_float8
    from torchao.float8.float8_utils import amax_to_scale

    rng = np.random.default_rng(13)
    x = (rng.standard_normal((16, 48)) * np.exp2(rng.integers(-20, 20, (16, 1)))).astype(np.float32)
    x[3] = 0
    t = torch.from_numpy(x)
    fd = getattr(torch, name)
    amax = torch.amax(torch.abs(t), dim=axis, keepdim=True) if axis is not None else torch.max(torch.abs(t))
    for pow2 in (False, True):
        s = amax_to_scale(amax, fd, round_scales_to_power_of_2=pow2)
        f8 = hp_tensor_and_scale_to_float8(t, s, fd, axiswise_dim=axis)
        codes, scale = scaled.scaled_cast(x, name, axis=axis, pow2=pow2)
        np.testing.assert_array_equal(scale.reshape(-1).view(np.uint32), s.numpy().reshape(-1).view(np.uint32))
        np.testing.assert_array_equal(_bits(codes), f8._data.view(torch.uint8).numpy())


# --------------------------------------------------------------------------
# steps, pipelines and measure
# --------------------------------------------------------------------------


def _ref_counts(x, deq):
    """(distinct in, distinct dequantized out, max merged span) counted here from the pairs."""
    xf, yf = x.reshape(-1).astype(np.float64) + 0.0, deq.reshape(-1).astype(np.float64) + 0.0
    outs = {}
    for a, b in zip(xf.tolist(), yf.tolist()):
        if not math.isnan(b):
            outs.setdefault(b, set()).add(a)
    span = max((max(v) - min(v)) for v in outs.values())
    return len(set(xf.tolist())), len(outs), span


@pytest.mark.parametrize("spec, ref", [
    ("mx(dtype=float8_e4m3fn)", lambda x: ref_mx(x, "float8_e4m3fn", "floor")),
    ("mx(dtype=float4_e2m1fn, block=16, scale_rule=rceil)", lambda x: ref_mx(x, "float4_e2m1fn", "rceil", block=16)),
    ("mx(dtype=float6_e2m3fn, axis=0, scale_rule=even)", lambda x: ref_mx(x, "float6_e2m3fn", "even", axis=0)),
    ("scaled_cast(dtype=float8_e5m2, axis=0, pow2=True)", lambda x: ref_scaled(x, "float8_e5m2", 0, pow2=True)),
], ids=("mxfp8", "mxfp4-rceil-16", "mxfp6-axis0", "scaled-e5m2"))
def test_block_step_measure_counts_dequantized_values(spec, ref):
    import kernels

    x = random_blocks((64, 64), seed=21, spread=4).astype(np.float32)
    x[:4] = np.round(x[:4])  # repeated values across blocks
    codes, sc, deq = ref(x)  # mx: e8m0 bytes; scaled_cast: float32 scales
    y = kernels.pipeline(spec).transform(x)
    assert y.dtype == np.float32 and _same(y, deq.astype(np.float32))
    r = kernels.measure(x, spec)
    din, dout, span = _ref_counts(x, deq)
    assert (r.distinct_in, r.distinct_out, r.collisions) == (din, dout, din - dout)
    assert r.max_merged_span_in == span
    assert r.distinct_codes == len(set(codes.astype(np.float64).reshape(-1).tolist()))
    scales_ref = np.asarray(sc).astype(np.float64) if not spec.startswith("mx") else 2.0 ** (np.asarray(sc) - 127.0)
    assert r.distinct_scales == len(set(scales_ref.reshape(-1).tolist()))
    assert r.max_abs_error_in == float(np.max(np.abs(deq.astype(np.float64) - x)))
    assert r.steps[0]["distinct_out"] == dout and r.to_dict()["distinct_codes"] == r.distinct_codes


def test_block_step_after_elementwise_steps():
    import kernels

    x = np.arange(256, dtype=np.uint8).reshape(8, 32)
    p = kernels.pipeline("scale(divisor=255); mx(dtype=float8_e4m3fn); cast(output_dtype=float16)")
    y = p.transform(x)
    x01 = kernels.pipeline("scale(divisor=255)").transform(x)
    _, _, deq = ref_mx(x01, "float8_e4m3fn", "floor")
    assert y.dtype == np.float16 and np.array_equal(y, deq.astype(np.float16))
    r = kernels.measure(x, p)
    assert [s["distinct_out"] for s in r.steps] == [256, _ref_counts(x01, deq)[1], len(np.unique(y))]
    with pytest.raises(ValueError, match="block step"):
        p.program("uint8")
    assert kernels.measure(x, "scale(divisor=255)").distinct_codes is None


def test_block_step_specs_round_trip_and_bad_options_list_the_valid_ones():
    import kernels

    s = kernels.step("mx(dtype=float8_e5m2, block=16, scale_rule=rceil, pad=zeros)")
    assert kernels.step(s.spec) == s and s.output_dtype == "float32"
    with pytest.raises(ValueError, match="floor, ceil, even, rceil"):
        kernels.step("mx(dtype=float8_e4m3fn, scale_rule=nearest)")
    with pytest.raises(ValueError, match="float8_e4m3fn, float8_e5m2"):
        kernels.step("scaled_cast(dtype=int8)")
    with pytest.raises(ValueError, match="needs dtype="):
        kernels.step("mx(block=32)")
    with pytest.raises(ValueError, match="length 40.*block=32"):
        kernels.pipeline("mx(dtype=float8_e4m3fn)").transform(np.ones((2, 40), np.float32))


@pytest.mark.parametrize("spec", ["minmax; mx(dtype=float8_e4m3fn)", "scale(divisor=255); mx(dtype=float4_e2m1fn)",
                                  "minmax(feature_range=(-1, 1)); scaled_cast(dtype=float8_e5m2)"],
                         ids=("minmax-mxfp8", "scale-mxfp4", "minmax-scaled-e5m2"))
def test_block_step_error_in_input_units_after_a_transform(spec):
    """Regression: an elementwise step before a block step left max_abs_error_in NaN
    (only an all-block/cast pipeline had an ideal), so choose --max-error-in dropped
    every MX candidate after minmax.  Reference: the exact ideal in Fractions,
    |y - ideal| in output units times the inverse slope, over every element."""
    import kernels

    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (16, 64)).astype(np.uint8)
    x[0, :2] = (0, 255)
    y = kernels.pipeline(spec).fit_transform(x)
    lo, hi = int(x.min()), int(x.max())
    if spec.startswith("minmax"):
        a, b = (-1, 1) if "feature_range" in spec else (0, 1)
        ideal = [Fraction(a) + Fraction(int(v) - lo, hi - lo) * (b - a) for v in x.reshape(-1)]
        inv_slope = Fraction(hi - lo, b - a)
    else:
        ideal = [Fraction(int(v), 255) for v in x.reshape(-1)]
        inv_slope = Fraction(255)
    err = [abs(Fraction(float(v)) - i) * inv_slope for v, i in zip(y.reshape(-1).tolist(), ideal)]
    r = kernels.measure(x, spec)
    assert r.max_abs_error_in == pytest.approx(float(max(err)), rel=1e-12, abs=0)
    assert r.mean_abs_error_in == pytest.approx(float(sum(err) / len(err)), rel=1e-12, abs=0)
    assert r.underflow_out == sum(1 for v, i in zip(y.reshape(-1).tolist(), ideal) if v == 0 and i != 0)
