"""dtype codecs and cast: exhaustive bit-exactness against integer references, Fractions, numpy and ml_dtypes."""

import warnings
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from conftest import DTYPES, sample
from numba import njit, prange
from reference import NP, convert, f32_to_bf16_bits_reference, f32_to_f16_bits_reference, round_exact, same_bits

import kernels
from kernels import REGISTRY, cast
from kernels.codecs._bits import (
    _f16_to_f32_half,
    _f16_to_f32_soft,
    _f32_to_f16_half,
    _f32_to_f16_soft,
    f32_bits,
    f32_from_bits,
    round_to_odd_f32,
)

SWEEP_CHUNK = 1 << 26
# numpy casts float32 -> float16 at about 1.5 ns a value where the result is a
# normal float16, inf from inf or NaN, but at about 65 ns where it underflows
# (|x| < 2**-14) or overflows (|x| >= 2**16): 86 % of the patterns.  The sweep checks
# every pattern against the integer reference, and numpy on the fast magnitude
# ranges below plus every SLOW_SAMPLE-th pattern.
F16_NUMPY_FAST = ((113 << 23, 143 << 23), (255 << 23, 1 << 31))
SLOW_SAMPLE = 61
INTEGER_REFERENCE = {"float16": f32_to_f16_bits_reference, "bfloat16": f32_to_bf16_bits_reference}


def _peer_slices(start: int, target: str) -> tuple[slice, ...]:
    """The parts of the chunk [start, start + SWEEP_CHUNK) the peer's cast checks: for
    float16 the patterns numpy casts fast (magnitudes in [2**-14, 2**16), inf and NaN:
    contiguous ranges for either sign) and every SLOW_SAMPLE-th pattern of the chunk;
    for bfloat16 all of them."""
    if target != "float16":
        return (slice(None),)
    m0 = start & 0x7FFFFFFF
    fast = []
    for lo, hi in F16_NUMPY_FAST:
        a, b = max(lo - m0, 0), min(hi - m0, SWEEP_CHUNK)
        if a < b:
            fast.append(slice(a, b))
    return (*fast, slice(0, SWEEP_CHUNK, SLOW_SAMPLE))


def _patterns(start: int) -> np.ndarray:
    return np.arange(start, start + SWEEP_CHUNK, dtype=np.uint64).astype(np.uint32)


def _peer_chunk(start: int, target: str) -> list[np.ndarray]:
    """numpy's / ml_dtypes' cast of the patterns of ``_peer_slices``.  Runs in a worker
    thread (numpy's cast releases the GIL); only the main thread calls Numba kernels."""
    x = _patterns(start).view(np.float32)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # overflow to inf is expected near the top
        return [x[sl].astype(NP[target]) for sl in _peer_slices(start, target)]


@pytest.mark.exhaustive
@pytest.mark.parametrize("target", ["float16", "bfloat16"])
def test_every_float32_pattern_casts_like_the_integer_reference_and_numpy(target):
    """All 2^32 float32 bit patterns: ``cast`` gives exactly the bits of the integer
    reference (tests/reference.py, NaN by the documented rule included), and, where
    the peer's cast is fast, the same value as ``astype(float16)`` /
    ``astype(ml_dtypes.bfloat16)`` (NaN for NaN: its payload is the peer's business).
    For float16 numpy checks every pattern whose result is a normal float16, inf or
    NaN, and every 61st of the rest (where it takes 65 ns a value); the integer
    reference checks all."""
    from concurrent.futures import ThreadPoolExecutor

    ours = np.empty(SWEEP_CHUNK, dtype=NP[target])
    ref = np.empty(SWEEP_CHUNK, dtype=np.uint16)
    checked_by_peer = 0
    starts = list(range(0, 1 << 32, SWEEP_CHUNK))
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = [pool.submit(_peer_chunk, s, target) for s in starts[:2]]
        for i, start in enumerate(starts):
            bits = _patterns(start)
            x = bits.view(np.float32)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                cast(x, target, out=ours)
            INTEGER_REFERENCE[target](bits, ref)
            bad = ours.view(np.uint16) != ref
            assert not bad.any(), f"integer reference: first mismatch at float32 bits 0x{int(bits[np.argmax(bad)]):08x}"
            peers = pending.pop(0).result()
            if i + 2 < len(starts):
                pending.append(pool.submit(_peer_chunk, starts[i + 2], target))
            for sl, peer in zip(_peer_slices(start, target), peers):
                mine, nan = ours[sl], np.isnan(x[sl])
                differ = (mine.view(np.uint16) != peer.view(np.uint16)) & ~nan
                assert not differ.any(), f"peer: first mismatch at float32 bits 0x{int(bits[sl][np.argmax(differ)]):08x}"
                assert np.isnan(mine[nan].astype(np.float32)).all() and np.isnan(peer[nan].astype(np.float32)).all()
                checked_by_peer += peer.size
    if target == "float16":  # exponents 113..142 and 255 in full, a 61st of all patterns besides
        assert checked_by_peer == pytest.approx((31 / 256 + 1 / SLOW_SAMPLE) * 2**32, rel=1e-3)
    else:
        assert checked_by_peer == 2**32


@pytest.mark.parametrize("target", ["float16", "bfloat16"])
def test_integer_reference_agrees_with_fractions(target):
    """The sweep's integer reference itself, against correct rounding by Fractions
    (tests/reference.round_exact) on every kind of float32: float16/bfloat16 values,
    their midpoints and neighbours, the subnormal, underflow and overflow edges."""
    rng = np.random.default_rng(17)
    codes = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(NP[target]).astype(np.float64)
    codes = np.unique(codes[np.isfinite(codes)])
    mids = (codes[:-1] + codes[1:]) / 2  # ties: exact in float32
    edges = [2.0**-25, 3 * 2.0**-25, 2.0**-24, 2.0**-14, 65504, 65519.99, 65520, 2.0**-133, 2.0**-126, 3.3e38]
    f = np.concatenate([rng.choice(codes, 8000), rng.choice(mids, 8000), codes[:64], mids[:64], codes[-64:],
                        mids[-64:], edges, np.negative(edges),
                        rng.uniform(-70000, 70000, 2000) * 2.0 ** rng.integers(-30, 1, 2000)])
    with np.errstate(over="ignore"):
        f32 = f.astype(np.float32)
    f32 = f32[np.isfinite(f32)]
    bits = f32.view(np.uint32)
    bits = np.unique(np.concatenate([bits, bits + np.uint32(1), bits - np.uint32(1), rng.integers(0, 1 << 32, 4000, dtype=np.uint64).astype(np.uint32)]))
    bits = bits[np.isfinite(bits.view(np.float32))]
    ref = np.empty(bits.size, np.uint16)
    INTEGER_REFERENCE[target](bits, ref)
    exact = round_exact(bits.view(np.float32).astype(np.float64), NP[target])
    assert same_bits(ref.view(NP[target]), exact)


@pytest.mark.parametrize("target", ["float16", "bfloat16"])
def test_nan_encoding_is_the_documented_rule(target):
    """Every one of the 2^24 float32 NaN patterns encodes by the rule the codecs
    docstring states (not by whatever bits a peer happens to give): float16, a quiet
    NaN with the sign and the top 10 payload bits; bfloat16, the top 16 bits with
    the quiet bit set."""
    payload = np.arange(1, 1 << 23, dtype=np.uint32)
    bits = np.concatenate([payload | np.uint32(0x7F800000), payload | np.uint32(0xFF800000)])
    got = cast(bits.view(np.float32), target).view(np.uint16)
    sign = (bits >> np.uint32(16)) & np.uint32(0x8000)
    if target == "float16":
        rule = sign | np.uint32(0x7E00) | ((bits >> np.uint32(13)) & np.uint32(0x3FF))
    else:
        rule = (bits >> np.uint32(16)) | np.uint32(0x40)
    assert np.array_equal(got, rule.astype(np.uint16))


@njit(parallel=True)
def _integer_codec_mismatches(start, stop):
    """Patterns in [start, stop) where the integer float16 codec (for targets without
    F16C) differs from F16C: encode of every float32, decode of every float16.
    NaN may differ in payload only."""
    bad = 0
    for i in prange(start, stop):
        f = f32_from_bits(np.uint32(i))
        soft, half = _f32_to_f16_soft(f), _f32_to_f16_half(f)
        nan = (soft & 0x7FFF) > 0x7C00 and (half & 0x7FFF) > 0x7C00
        bad += soft != half and not (f != f and nan)
        if i < 1 << 16:
            a, b = _f16_to_f32_soft(np.uint16(i)), _f16_to_f32_half(np.uint16(i))
            bad += f32_bits(a) != f32_bits(b) and not (a != a and b != b)
    return bad


@pytest.mark.exhaustive
@pytest.mark.skipif(not kernels.codecs.F16C, reason="compares with F16C; without it the integer codec is the one swept above")
def test_float16_integer_codec_matches_f16c_on_every_pattern():
    """The codec used on targets without F16C gives F16C's bits for all 2^32 float32
    patterns and all 2^16 float16 patterns (F16C itself is swept against numpy above)."""
    assert sum(_integer_codec_mismatches(s, s + (1 << 30)) for s in range(0, 1 << 32, 1 << 30)) == 0


def test_generic_cpu_target_runs_without_f16c(tmp_path):
    """NUMBA_CPU_NAME=generic (portable caches) has no F16C: the kernels must use the
    integer codec instead of LLVM's half conversions, which call a routine Numba's JIT
    cannot resolve and abort the process."""
    import subprocess
    import sys

    code = (
        "import numpy as np, kernels\n"
        "assert not kernels.codecs.F16C and not kernels.lut.AVAILABLE\n"
        "x = np.array([0, -0.0, 1e-8, 3e-5, 1/3, 2.5, 65504, 65519.9, 65520, -7e4, np.inf, -np.inf, np.nan], np.float32)\n"
        "h = kernels.cast(x, 'float16')\n"
        "ref = x.astype(np.float16)\n"
        "assert (h.view(np.uint16) == ref.view(np.uint16)).all() or np.array_equal(h, ref, equal_nan=True)\n"
        "u = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)\n"
        "assert np.array_equal(kernels.cast(u, 'float32'), u.astype(np.float32), equal_nan=True)\n"
        "y = kernels.transform(np.arange(300, dtype=np.uint16), 'minmax', compute_dtype='float16', output_dtype='float16')\n"
        "z = (np.arange(300).astype(np.float16) - np.float16(0)) * (np.float16(1) / np.float16(299))\n"
        "assert np.array_equal(kernels.transform(np.arange(300, dtype=np.uint16), 'minmax', formula='sub_mul', "
        "compute_dtype='float16', output_dtype='float16'), z)\n"
        "print('ok', y.dtype)\n"
    )
    env = {**__import__("os").environ, "NUMBA_CPU_NAME": "generic", "NUMBA_CACHE_DIR": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and res.stdout.startswith("ok"), res.stderr[-2000:]


@pytest.mark.parametrize("source", ["float16", "bfloat16"])
def test_every_16bit_pattern_decodes_exactly(source):
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    x = bits.view(NP[source])
    for target in ("float32", "float64"):
        assert same_bits(cast(x, target), x.astype(NP[target]))
    # and back: 16-bit -> float32 -> 16-bit is the identity on every non-NaN pattern
    back = cast(cast(x, "float32"), source).view(np.uint16)
    nan = np.isnan(x.astype(np.float32))
    assert np.array_equal(back[~nan], bits[~nan])
    assert np.isnan(cast(cast(x, "float32"), source)[nan].astype(np.float32)).all()


@pytest.mark.parametrize("target", DTYPES)
@pytest.mark.parametrize("source", DTYPES)
def test_cast_matches_reference(source, target):
    x = sample(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ours = cast(x, target)
    ref = convert(x.astype(np.float64) if source == "bfloat16" else x, target)
    assert same_bits(ours, ref)


def test_float64_to_float16_rounds_once():
    # 1 + 2^-11 + 2^-40 is just above a float16 tie; through float32 it would land on the tie and round to 1.0
    x = np.array([1 + 2**-11 + 2**-40, -(1 + 2**-11 + 2**-40)])
    assert cast(x, "float16").tolist() == [1 + 2**-10, -(1 + 2**-10)]
    assert same_bits(cast(x, "float16"), x.astype(np.float16))


def test_float64_to_float16_matches_numpy_at_every_kind_of_edge():
    """float64 -> float16 (the integer round-to-odd path) against numpy's direct
    conversion: every float16 value and midpoint, each nudged by one float64 ulp and
    by float32-sized steps (where rounding through float32 first would double-round),
    random bit patterns of every magnitude, the subnormal and overflow edges."""
    rng = np.random.default_rng(5)
    f16 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float64)
    f16 = f16[np.isfinite(f16)]
    f16 = np.sort(np.unique(f16))
    mids = (f16[:-1] + f16[1:]) / 2
    base = np.concatenate([f16, mids, [65520.0, -65520.0, 2.0**-25, -(2.0**-25), 3 * 2.0**-26]])
    steps = [np.nextafter(base, np.inf), np.nextafter(base, -np.inf)]
    for k in (2.0**-30, 2.0**-26, 2.0**-24):  # below, at and above float32's resolution
        steps += [base * (1 + k), base * (1 - k)]
    bits = rng.integers(0, 1 << 63, 200_000, dtype=np.uint64) | rng.integers(0, 2, 200_000, dtype=np.uint64) << 63
    near = rng.uniform(-70000, 70000, 200_000) * 2.0 ** rng.integers(-40, 1, 200_000)
    edges = np.array([0.0, -0.0, np.inf, -np.inf, 2.0**-1074, 1e-300, 2.0**-126, 2.0**-149 * 1.5,
                      3.4e38, 2.0**128, 1e300, np.finfo(np.float64).max, np.nan])
    x = np.concatenate([base, *steps, bits.view(np.float64), near, edges, -edges])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ours = cast(x, "float16")
        ref = x.astype(np.float16)
    assert same_bits(ours, ref)


def test_float64_to_bfloat16_rounds_once():
    """float64 -> bfloat16 is correctly rounded (against Fractions), including just
    above a tie, where rounding through float32 first lands on the tie and rounds
    down.  ml_dtypes 0.5 rounded this conversion twice; 0.7 rounds once: neither
    is asserted, the exact reference decides."""
    x = np.array([1 + 2**-8 + 2**-40, -(1 + 2**-8 + 2**-40)])
    assert cast(x, "bfloat16").astype(np.float64).tolist() == [1 + 2**-7, -(1 + 2**-7)]
    rng = np.random.default_rng(23)
    codes = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(ml_dtypes.bfloat16).astype(np.float64)
    codes = np.unique(codes[np.isfinite(codes)])
    mids = (codes[:-1] + codes[1:]) / 2
    near = np.concatenate([mids, mids * (1 + 2.0**-40), mids * (1 - 2.0**-40), np.nextafter(mids, np.inf),
                           np.nextafter(mids, -np.inf)])
    d = np.concatenate([rng.choice(near, 20_000, replace=False), codes[::7], [2.0**-133 * 1.5, 2.0**-134, 1e-300]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert same_bits(cast(d, "bfloat16"), round_exact(d, ml_dtypes.bfloat16))


def test_float16_overflow_past_65504_warns_and_gives_inf():
    x = np.array([65504, 65519.99, 65520, -65520, 1e6], dtype=np.float32)
    with pytest.warns(RuntimeWarning, match="3 finite value"):
        y = cast(x, "float16")
    assert y.tolist() == [65504, 65504, np.inf, -np.inf, np.inf]


def test_bfloat16_nan_stays_nan_and_inf_stays_inf():
    x = np.array([np.nan, -np.nan, np.inf, -np.inf], dtype=np.float32)
    y = cast(x, "bfloat16").astype(np.float32)
    assert np.isnan(y[:2]).all() and y[2:].tolist() == [np.inf, -np.inf]


INTEGERS = [n for n, r in REGISTRY.items() if r.is_integer]


@pytest.mark.parametrize("target", INTEGERS)
def test_integer_outputs_saturate_with_round_half_even(target):
    info = np.iinfo(NP[target])
    low, top = int(info.min), int(info.max)
    x = np.array([-1e9, -0.5, 0.5, 1.5, 2.5, top - 0.5, top + 0.4, 1e30, np.inf, -np.inf, np.nan], np.float64)
    expect = [low, 0, 0, 2, 2, top - 1 if (top - 1) % 2 == 0 else top, top, top, top, low, 0]
    assert cast(x, target).tolist() == expect


def _half_even(q: Fraction) -> int:
    """Round a rational to the nearest integer, ties to even (Python's round on a Fraction)."""
    return round(q)


@pytest.mark.parametrize("source", ["float32", "float64"])
def test_int8_nan_encodes_to_zero(source):
    """NaN (either sign, quiet or with a payload) is 0 in int8, not -128: a signed
    saturating cast must not let maxnum(NaN, -128) through."""
    nan_bits = {"float32": [0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FBFFFFF], "float64": [0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001]}
    width = np.uint32 if source == "float32" else np.uint64
    x = np.array(nan_bits[source], width).view(NP[source])
    assert np.isnan(x).all()
    assert cast(x, "int8").tolist() == [0] * x.size
    assert cast(x, "int16").tolist() == [0] * x.size
    big = np.tile(x, 5000)  # the vectorised loop body, not only its scalar tail
    assert not cast(big, "int8").any()


@pytest.mark.parametrize("source", ["float32", "float64"])
def test_int8_negative_half_rounds_to_even(source):
    """Negative ties round to the even integer (-2.5 -> -2, -1.5 -> -2, -0.5 -> 0),
    then saturate (-128.7 rounds to -129, then -128); checked against Fractions."""
    x = np.array([-0.5, -1.5, -2.5, -3.5, -126.5, -127.5, -128.5, -128.7, -129.5, -0.49999997, -2.5000002], NP[source])
    expect = [min(max(_half_even(Fraction(float(v))), -128), 127) for v in x]
    assert cast(x, "int8").tolist() == expect
    assert expect[:4] == [0, -2, -2, -4] and expect[7] == -128


def test_int16_saturates_at_both_ends():
    """int16 clips to [-32768, 32767]: the ties just inside and outside, huge values, infinities."""
    x = np.array([-32768.5, -32767.5, -32769.0, -32768.4, -1e30, -np.inf,
                  32766.5, 32767.4, 32767.5, 32768.0, 1e30, np.inf], np.float64)
    want = [-32768, -32768, -32768, -32768, -32768, -32768, 32766, 32767, 32767, 32767, 32767, 32767]
    for source in ("float32", "float64"):
        got = cast(x.astype(source), "int16").tolist()
        ref = [min(max(_half_even(Fraction(float(v))), -32768), 32767) if np.isfinite(v) else (32767 if v > 0 else -32768)
               for v in x.astype(source)]
        assert got == ref == want


def test_cast_int8_to_float16_and_uint8_matches_numpy():
    """Every int8 code: into float16 exactly (numpy's astype, 8-bit integers are float16
    values), into uint8 saturating: negatives become 0 (numpy's astype would wrap -1 to 255,
    so the reference is np.clip first)."""
    x = np.arange(-128, 128, dtype=np.int8)
    assert same_bits(cast(x, "float16"), x.astype(np.float16))
    assert same_bits(cast(x, "bfloat16"), x.astype(ml_dtypes.bfloat16))
    assert np.array_equal(cast(x, "uint8"), np.clip(x, 0, 255).astype(np.uint8))
    assert cast(np.array([-1, -128], np.int8), "uint8").tolist() == [0, 0]
    x16 = np.arange(-32768, 32768, dtype=np.int16)
    assert np.array_equal(cast(x16, "int8"), np.clip(x16, -128, 127).astype(np.int8))
    assert np.array_equal(cast(x16, "float32"), x16.astype(np.float32))


def test_cast_never_modifies_input_and_honours_out():
    x = sample("float32")
    before = x.copy()
    out = np.empty(x.shape, np.float16)
    res = cast(x, "float16", out=out)
    assert res is out
    assert np.array_equal(x, before)


def test_cast_2d_and_non_contiguous():
    x = sample("float32")[:3000].reshape(100, 30)
    assert same_bits(cast(x, "float16"), x.astype(np.float16))
    assert same_bits(cast(x[:, ::3], "float16"), x[:, ::3].astype(np.float16))
    assert same_bits(cast(x.T, "float16"), x.T.astype(np.float16))


def test_registry_rows_round_trip_their_numpy_dtype():
    for name, row in REGISTRY.items():
        assert kernels.codecs.lookup(row.dtype) is row
        assert kernels.codecs.lookup(name) is row


@pytest.mark.parametrize("name", DTYPES)
def test_cast_to_own_dtype_copies_bits_including_nan_payloads(name):
    x = sample(name)
    if REGISTRY[name].itemsize == 1 and not REGISTRY[name].is_integer:
        x = np.arange(256, dtype=np.uint8).view(x.dtype)  # every byte, NaN codes and unused high bits too
    elif not REGISTRY[name].is_integer:
        # a signalling NaN with a payload: numpy's astype keeps it bit for bit
        width = {2: np.uint16, 4: np.uint32, 8: np.uint64}[x.itemsize]
        snan = {"float16": 0x7C01, "bfloat16": 0x7F81, "float32": 0x7F800001, "float64": 0x7FF0000000000001}[name]
        x = np.concatenate([x, np.array([snan], width).view(x.dtype)])
    y = cast(x, name)
    assert y is not x and np.array_equal(y.view(np.uint8), x.view(np.uint8))


@pytest.mark.parametrize("source", ["float32", "float64"])
@pytest.mark.parametrize("target", INTEGERS)
def test_integer_outputs_round_every_tie_to_even(source, target):
    """Every tie k + 0.5 in [low - 1, top + 1], its two neighbours, and random values: the
    saturating cast (clip by max/min, then ``llvm.lrint``) equals numpy's clip(rint(x));
    NaN and -0.0 give 0, -inf and -huge ``low``, +inf and huge values give ``top``."""
    dt = np.dtype(source)
    info = np.iinfo(NP[target])
    low, top = int(info.min), int(info.max)
    ties = np.arange(low - 1, top + 2, dtype=dt) + dt.type(0.5)
    x = np.concatenate(
        [ties, np.nextafter(ties, dt.type(-np.inf)), np.nextafter(ties, dt.type(np.inf)),
         np.random.default_rng(3).uniform(low - 2, top + 2, 200_000).astype(dt), np.arange(low - 1, top + 2, dtype=dt)]
    )
    expected = np.clip(np.rint(x), low, top).astype(NP[target])
    assert np.array_equal(cast(x, target), expected)
    special = np.array([np.nan, -np.nan, -np.inf, np.inf, -0.0, 1e30, -1e30], dtype=dt)
    assert cast(special, target).tolist() == [0, 0, low, top, 0, top, low]


@njit
def _round_to_odd_all(d, out):
    for i in range(d.size):  # vectorised by LLVM, as inside the kernels
        out[i] = round_to_odd_f32(d[i])


def _round_to_odd_reference(d):
    """Round to odd by its definition: d itself when float32 holds it, otherwise
    whichever float32 neighbour of d has an odd last bit (numpy's cast and nextafter)."""
    with np.errstate(over="ignore"):
        f = d.astype(np.float32)
    toward_d = np.where(f.astype(np.float64) > d, -np.inf, np.inf).astype(np.float32)
    other = np.nextafter(f, toward_d)
    odd = np.where(f.view(np.uint32) & 1, f, other)
    return np.where((f.astype(np.float64) == d) | np.isnan(d), f, odd)


def test_float64_round_to_odd_matches_its_definition():
    """The float64 -> float32 round-to-odd behind float64 -> bfloat16 encoding:
    float32 values, their midpoints and neighbours, random patterns, the subnormal
    and overflow edges."""
    rng = np.random.default_rng(11)
    f = rng.integers(0, 1 << 32, 100_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    f = f[np.isfinite(f)].astype(np.float64)
    up = np.nextafter(f.astype(np.float32), np.float32(np.inf)).astype(np.float64)
    mid = (f + up) / 2
    bits = rng.integers(0, 1 << 63, 100_000, dtype=np.uint64) | rng.integers(0, 2, 100_000, dtype=np.uint64) << 63
    edges = np.array([0.0, -0.0, np.inf, -np.inf, 2.0**-149, 2.0**-150, 2.0**-151, 3 * 2.0**-151, 1e-300,
                      np.finfo(np.float32).max, 2.0**128, 2.0**128 - 2.0**103, 1e300, -1e300])
    d = np.concatenate([f, mid, np.nextafter(mid, -np.inf), np.nextafter(mid, np.inf), bits.view(np.float64), edges, -edges])
    d = d[~np.isnan(d)]
    ours = np.empty(d.size, np.float32)
    _round_to_odd_all(d, ours)
    assert same_bits(ours, _round_to_odd_reference(d))
    nan = np.array([np.nan, -np.nan], np.float64)
    _round_to_odd_all(nan, ours[:2])
    assert np.isnan(ours[:2]).all()
