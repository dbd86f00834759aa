"""The formats of 8 bits and below (float8, float6, float4, e8m0): every float32
pattern against ml_dtypes, float64 and every rounding mode against Fractions,
every code's value against the format's definition, saturation against ONNX's
reference implementation.

The sweep is its own module so that ``--dist loadfile`` runs it beside
``test_codecs``' float16/bfloat16 sweeps, on the other core."""

import warnings
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from reference import MINIFLOATS, NP, minifloat_codes_reference

import kernels
from kernels import cast

SWEEP_CHUNK = 1 << 26
DETERMINISTIC = ("nearest_even", "toward_zero", "up", "down", "nearest_away")
FLOAT8 = ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz")
# (exponent bits, mantissa bits, bias) as the OCP 8-bit / MX specs and ml_dtypes define them
LAYOUT = {
    "float8_e4m3fn": (4, 3, 7), "float8_e5m2": (5, 2, 15), "float8_e4m3fnuz": (4, 3, 8),
    "float8_e5m2fnuz": (5, 2, 16), "float6_e2m3fn": (2, 3, 1), "float6_e3m2fn": (3, 2, 3),
    "float4_e2m1fn": (2, 1, 1), "float8_e8m0fnu": (8, 0, 127),
}


def _cast(x, name, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow warnings are tested on their own
        return cast(x, name, **kw)


def _codes(name):
    e, m, _ = LAYOUT[name]
    return np.arange(1 << (e + m + (name != "float8_e8m0fnu")), dtype=np.uint8)


def _definition(name, code):
    """The value of a code from the format's definition (sign, biased exponent,
    mantissa; subnormals at exponent field 0), or None for a NaN/inf code."""
    e, m, bias = LAYOUT[name]
    if name == "float8_e8m0fnu":
        return None if code == 0xFF else Fraction(2) ** (code - bias)
    sign = -1 if code >> (e + m) else 1
    field, frac = (code >> m) & ((1 << e) - 1), code & ((1 << m) - 1)
    top = field == (1 << e) - 1
    if (name == "float8_e5m2" and top) or (name == "float8_e4m3fn" and top and frac == (1 << m) - 1):
        return None
    if name.endswith("fnuz") and code == 0x80:
        return None
    if field == 0:
        return sign * Fraction(frac, 1 << m) * Fraction(2) ** (1 - bias)
    return sign * (1 + Fraction(frac, 1 << m)) * Fraction(2) ** (field - bias)


@pytest.mark.exhaustive
def test_every_float32_pattern_casts_like_ml_dtypes():
    """All 2^32 float32 patterns, into each of the eight formats: ``cast`` gives the
    bits of ``astype(ml_dtypes.<format>)`` (ml_dtypes' default, non-saturating cast)
    wherever ml_dtypes gives a number, and a NaN where it gives a NaN."""
    from concurrent.futures import ThreadPoolExecutor

    def patterns(start):
        return np.arange(start, start + SWEEP_CHUNK, dtype=np.uint32).view(np.float32)

    def peer(x):
        return [x.astype(NP[n]).view(np.uint8) for n in MINIFLOATS]

    nan_out = {n: np.isnan(np.arange(256, dtype=np.uint8).view(NP[n]).astype(np.float32)) for n in MINIFLOATS}
    ours = {n: np.empty(SWEEP_CHUNK, NP[n]) for n in MINIFLOATS}
    starts = list(range(0, 1 << 32, SWEEP_CHUNK))
    with ThreadPoolExecutor(max_workers=1) as pool:  # ml_dtypes' cast of the next chunk beside ours
        x = patterns(starts[0])
        pending = pool.submit(peer, x)
        for i, start in enumerate(starts):
            for n in MINIFLOATS:
                _cast(x, n, out=ours[n])
            theirs = pending.result()
            if i + 1 < len(starts):
                x = patterns(starts[i + 1])
                pending = pool.submit(peer, x)
            for n, t in zip(MINIFLOATS, theirs):
                o = ours[n].view(np.uint8)
                # 8 codes per comparison; only words that differ are looked at code by code
                words = np.flatnonzero(o.view(np.uint64) != t.view(np.uint64))
                idx = (words[:, None] * 8 + np.arange(8)).reshape(-1)
                idx = idx[o[idx] != t[idx]]
                bad = idx[~(nan_out[n][o[idx]] & nan_out[n][t[idx]])]
                assert not bad.size, f"{n}: float32 bits 0x{start + int(bad[0]):08x} gives 0x{o[bad[0]]:02x}, ml_dtypes 0x{t[bad[0]]:02x}"


@pytest.mark.parametrize("name", MINIFLOATS)
def test_every_code_decodes_to_its_defined_value(name):
    """Every code, cast to float64 and float32, is the value the format's definition
    gives (exactly, as a Fraction) and ml_dtypes' value; NaN codes give NaN."""
    codes = _codes(name)
    x = codes.view(NP[name])
    for wide in ("float64", "float32"):
        got = cast(x, wide)
        assert np.array_equal(got, x.astype(np.float64).astype(wide), equal_nan=True)
        for c, v in zip(codes, got):
            d = _definition(name, int(c))
            if d is None:
                assert not np.isfinite(v), (name, hex(c))
            else:
                e, m, _ = LAYOUT[name]
                negative_code = name != "float8_e8m0fnu" and int(c) >> (e + m) == 1
                assert Fraction(float(v)) == d and bool(np.signbit(v)) == negative_code, (name, hex(c))


def _grid(name, rng):
    """Every value, every midpoint (a tie), the float64 numbers next to each midpoint
    (which a double rounding through float32 gets wrong), both overflow edges, the
    region below the smallest value, and random magnitudes."""
    vals = np.unique(np.abs(_codes(name).view(NP[name]).astype(np.float64)))
    vals = vals[np.isfinite(vals)]
    big = vals[-1]
    ulp = 2.0 ** (int(ml_dtypes.finfo(NP[name]).maxexp) - 1 - int(ml_dtypes.finfo(NP[name]).nmant))
    mids = (vals[:-1] + vals[1:]) / 2
    edges = np.array([big + ulp / 2, big + ulp / 4, big + ulp, big * 4, 1e300, vals[1] / 2, vals[1] / 3, 1e-300, 2.0**-140])
    pts = np.concatenate([vals, mids, np.nextafter(mids, 0), np.nextafter(mids, np.inf), edges,
                          np.nextafter(edges, 0), rng.uniform(0, 2 * big, 300), big * 2.0 ** rng.uniform(-40, 0, 300)])
    pts = np.concatenate([pts, -pts, [0.0, -0.0, np.inf, -np.inf]])
    return pts


@pytest.mark.parametrize("saturate", [False, True], ids=["own_overflow", "saturate"])
@pytest.mark.parametrize("rounding", DETERMINISTIC)
@pytest.mark.parametrize("name", MINIFLOATS)
def test_rounds_once_like_fractions(name, rounding, saturate):
    """float64 inputs round exactly once (not through float32), and float32 inputs
    likewise, in every deterministic rounding mode and both overflow policies:
    the code correct rounding by Fractions gives (tests/reference.py)."""
    x = _grid(name, np.random.default_rng(7))
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    for src in (x, x32):
        want = minifloat_codes_reference(src, name, rounding, saturate)
        got = _cast(src, name, rounding=rounding, saturate=saturate)
        got_codes = got.view(np.uint8).astype(np.int64)
        nan = np.isnan(got.astype(np.float32))
        assert np.array_equal(nan, want < 0), (name, src[nan != (want < 0)][:4])
        bad = (got_codes != want) & ~nan
        assert not bad.any(), (name, src.dtype, src[bad][:4], got_codes[bad][:4], want[bad][:4])


def _onnx_cast(x, name, saturate):
    import onnx
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    to = {"float8_e4m3fn": TensorProto.FLOAT8E4M3FN, "float8_e5m2": TensorProto.FLOAT8E5M2,
          "float8_e4m3fnuz": TensorProto.FLOAT8E4M3FNUZ, "float8_e5m2fnuz": TensorProto.FLOAT8E5M2FNUZ}[name]
    node = helper.make_node("Cast", ["x"], ["y"], to=to, saturate=int(saturate))
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
                              [helper.make_tensor_value_info("y", to, ["n"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    onnx.checker.check_model(model)
    return ReferenceEvaluator(model).run(None, {"x": x})[0]


def _pattern_classes():
    """float32 values of every class: normals of each format's range, subnormals,
    overflow, +-inf, NaNs of both signs, signed zeros."""
    rng = np.random.default_rng(3)
    mag = 2.0 ** rng.uniform(-30, 20, 4000)
    x = np.concatenate([mag, -mag, [0.0, -0.0, np.inf, -np.inf, 448, 464, 480, 57344, 61440, 65536, 1e30, 240, 248, 256]])
    nans = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF], np.uint32).view(np.float32)
    return np.concatenate([x.astype(np.float32), nans, -np.float32([448, 464, 480, 57344, 61440, 65536, 240, 248, 256])])


@pytest.mark.parametrize("saturate", [False, True], ids=["saturate0", "saturate1"])
@pytest.mark.parametrize("name", FLOAT8)
def test_cast_matches_onnx_reference(name, saturate):
    """ONNX Cast (opset 21, ``onnx.reference``) with ``saturate`` 0 and 1, on every
    class of float32: the same bits wherever ONNX gives a number, NaN where it gives NaN."""
    x = _pattern_classes()
    want = np.asarray(_onnx_cast(x, name, saturate)).astype(NP[name])
    got = _cast(x, name, saturate=saturate)
    nan = np.isnan(want.astype(np.float32))
    assert np.array_equal(np.isnan(got.astype(np.float32)), nan)
    bad = got.view(np.uint8)[~nan] != want.view(np.uint8)[~nan]
    assert not bad.any(), x[~nan][bad][:5]


# --- named traps ---


def test_e4m3fn_overflow_is_nan_and_saturate_gives_448():
    x = np.float32([465, 1e6, np.inf, -500])  # 464, halfway to the 480 that e4m3fn lacks, ties to 448
    assert _cast(np.float32([464]), "float8_e4m3fn").astype(np.float32)[0] == 448
    assert np.isnan(_cast(x, "float8_e4m3fn").astype(np.float32)).all()
    assert _cast(x, "float8_e4m3fn", saturate=True).astype(np.float32).tolist() == [448, 448, 448, -448]
    assert _cast(np.float32([463.99]), "float8_e4m3fn").astype(np.float32)[0] == 448


def test_e5m2_overflow_is_inf():
    assert _cast(np.float32([61440, -1e6]), "float8_e5m2").astype(np.float32).tolist() == [np.inf, -np.inf]
    assert _cast(np.float32([61439.99]), "float8_e5m2").astype(np.float32)[0] == 57344


@pytest.mark.parametrize("name", ["float8_e4m3fnuz", "float8_e5m2fnuz"])
def test_fnuz_negative_zero_and_negative_underflow_encode_to_positive_zero(name):
    """fnuz has no -0: its code 0x80 is the NaN, so -0 and a negative value that
    rounds to zero must give 0x00, never 0x80."""
    x = np.float32([-0.0, -1e-30, -2.0**-30])
    assert _cast(x, name).view(np.uint8).tolist() == [0, 0, 0]
    assert _cast(x.astype(np.float64), name, rounding="up").view(np.uint8).tolist() == [0, 0, 0]


def test_e8m0_has_no_zero_and_no_sign():
    y = _cast(np.float32([0.0, -1.0, 1e-45, 1.5, 3.0, 2.0**127 * 1.5]), "float8_e8m0fnu")
    assert y.view(np.uint8).tolist() == [0xFF, 0xFF, 0, 128, 129, 0xFF]  # NaN, NaN, 2**-127, 2, 4, NaN


@pytest.mark.parametrize("name", ["float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn"])
def test_mx_element_types_saturate_and_have_no_nan(name):
    """No NaN and no inf: overflow and inf saturate; a NaN becomes a zero (of the
    opposite sign bit, which is what ml_dtypes does today)."""
    big = float(ml_dtypes.finfo(NP[name]).max)
    y = _cast(np.float32([np.inf, -np.inf, big * 3, np.nan]), name).astype(np.float32)
    assert y[:3].tolist() == [big, -big, big] and y[3] == 0
    assert y.view(np.uint32)[3] == np.float32(0).astype(NP[name]).astype(np.float32).view(np.uint32) ^ 0x80000000


def test_directed_rounding_of_a_float8_tie():
    """1.0625 lies halfway between 1 and 1.125 in e4m3fn."""
    x = np.float32([1.0625, -1.0625])
    got = {r: _cast(x, "float8_e4m3fn", rounding=r).astype(np.float32).tolist() for r in DETERMINISTIC}
    assert got == {"nearest_even": [1.0, -1.0], "toward_zero": [1.0, -1.0], "up": [1.125, -1.0],
                   "down": [1.0, -1.125], "nearest_away": [1.125, -1.125]}


def test_overflow_warning_names_nan():
    with pytest.warns(RuntimeWarning, match="became NaN"):
        cast(np.float32([1000.0]), "float8_e4m3fn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cast(np.float32([1000.0]), "float8_e4m3fn", saturate=True)


@pytest.mark.parametrize("name", MINIFLOATS)
def test_float8_is_refused_as_a_compute_dtype_with_the_reason(name):
    x = np.linspace(0, 1, 100, dtype=np.float32)
    with pytest.raises(TypeError, match="compute_dtype.*wider type"):
        kernels.transform(x, "minmax", compute_dtype=name)
    with pytest.raises(TypeError, match="acc_dtype.*wider type"):
        kernels.fit(x, "standardize", acc_dtype=name)

