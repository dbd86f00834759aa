"""Rounding a float64 into any small binary format, by integer arithmetic on its bits.

One generic encoder for every format held as a bit pattern (float8, float6,
float4, the e8m0 scale; float16 and bfloat16 under a non-default rounding
mode), described by a :class:`Format`.  A float32 input is widened to float64
first (exact), so float32 and float64 inputs both round exactly once.

For a finite ``|v| = M * 2**(E - 52)`` (``M`` the 53-bit significand, ``E`` its
exponent), the quantum of the result is ``2**q`` with ``q = max(E, emin) - m``
(``m`` mantissa bits, ``emin`` the smallest normal exponent), so the rounded
magnitude is ``N * 2**q`` with ``N = M >> s`` (``s = q - E + 52``) plus the
increment that the rounding mode gives for the remainder ``r = M mod 2**s``:

================  =============================================
rounding          increment
================  =============================================
nearest_even      ``r > half`` or (``r == half`` and ``N`` odd)
nearest_away      ``r >= half``
toward_zero       0
up                ``r > 0`` and ``v > 0``
down              ``r > 0`` and ``v < 0``
stochastic        ``r > u`` for ``u`` uniform in ``[0, 2**s)``
================  =============================================

and the code is ``((max(E, emin) - emin) << m) + N`` (a carry out of ``N``
moves into the exponent field by itself; subnormals are the codes below
``2**m``).  Shifts past 62 bits keep a sticky bit, so ties stay exact.
Overflow (a code past the largest finite one) and the special inputs follow
the format's ``special`` rule and the policy (``saturate``); see
:mod:`kernels.codecs.minifloat` for the table.
"""

from __future__ import annotations

import dataclasses
import functools
from fractions import Fraction

import numpy as np
from numba import njit
from numba.extending import register_jitable

from .._jit import JIT
from ._bits import f64_bits, sum_to_odd_f64

# special: how the format spends its top codes
#   "ieee"  the all-ones exponent holds +-inf (mantissa 0) and NaNs (float8_e5m2, float16, bfloat16)
#   "fn"    only the all-ones code (either sign) is NaN; no inf (float8_e4m3fn)
#   "fnuz"  the negative-zero code is the only NaN; no inf and no -0 (the fnuz formats)
#   "none"  no NaN and no inf (float6/float4: the MX element types)
#   "e8m0"  unsigned powers of two, no zero, no subnormals; 0xFF is NaN (float8_e8m0fnu)
SPECIALS = ("ieee", "fn", "fnuz", "none", "e8m0")


@dataclasses.dataclass(frozen=True)
class Format:
    """A binary floating-point format: ``ebits`` exponent bits, ``mbits`` mantissa bits."""

    ebits: int
    mbits: int
    bias: int
    special: str
    storage: type = np.uint8

    @property
    def signed(self) -> bool:
        return self.special != "e8m0"

    @property
    def sign_bit(self) -> int:
        return 1 << (self.ebits + self.mbits) if self.signed else 0

    @property
    def ncodes(self) -> int:
        return 1 << (self.ebits + self.mbits + self.signed)

    @property
    def emin(self) -> int:
        """The exponent of the smallest normal value."""
        return -self.bias if self.special == "e8m0" else 1 - self.bias

    @property
    def max_code(self) -> int:
        """The magnitude code of the largest finite value."""
        top = (1 << (self.ebits + self.mbits)) - 1
        return {"ieee": top - (1 << self.mbits), "fn": top - 1, "fnuz": top, "none": top, "e8m0": top - 1}[self.special]

    @property
    def nan_code(self) -> int:
        """The code a positive NaN input encodes to (ml_dtypes' choice), or -1 when there is no NaN."""
        top = (1 << (self.ebits + self.mbits)) - 1
        return {"ieee": top - (1 << self.mbits) + 1 + (1 << max(self.mbits - 1, 0)), "fn": top, "fnuz": self.sign_bit,
                "none": -1, "e8m0": top}[self.special]

    def value(self, code: int) -> Fraction | float:
        """The exact value of ``code`` (a Fraction), or a float inf/NaN: the reference decode."""
        code &= self.ncodes - 1
        sign = -1 if code & self.sign_bit else 1
        mag = code & (self.sign_bit - 1) if self.signed else code
        field, frac = mag >> self.mbits, mag & ((1 << self.mbits) - 1)
        if self.special == "e8m0":
            return float("nan") if mag == 0xFF else Fraction(2) ** (field - self.bias)
        if self.special == "fnuz" and code == self.sign_bit:
            return float("nan")
        if mag > self.max_code:
            if self.special == "ieee" and frac == 0:
                return sign * float("inf")
            return float("nan")
        if field == 0:
            return sign * Fraction(frac, 1 << self.mbits) * Fraction(2) ** self.emin
        return sign * (1 + Fraction(frac, 1 << self.mbits)) * Fraction(2) ** (field - self.bias)

    def decode_table(self) -> np.ndarray:
        """float32 value of every code, from :meth:`value` (exact: every value fits float32)."""
        out = np.empty(self.ncodes, np.float32)
        for c in range(self.ncodes):
            v = self.value(c)
            out[c] = np.float32(v) if isinstance(v, float) else np.float32(float(v))
            if (v == 0 or v != v) and c & self.sign_bit:
                out[c] = -out[c]  # -0 (a Fraction has none) and the NaN codes' sign, as ml_dtypes decodes them
            assert isinstance(v, float) or Fraction(float(out[c])) == v, (self, c)
        return out


# The rounding increments, one per mode: (negative, N, r, half, shift, u) -> 0 or 1.
@njit(**JIT)
def _inc_nearest_even(neg, n, r, half, shift, u):
    return np.int64((r > half) | ((r == half) & ((n & 1) == 1)))


@njit(**JIT)
def _inc_nearest_away(neg, n, r, half, shift, u):
    return np.int64(r >= half)


@njit(**JIT)
def _inc_toward_zero(neg, n, r, half, shift, u):
    return np.int64(0)


@njit(**JIT)
def _inc_up(neg, n, r, half, shift, u):
    return np.int64((r != 0) & (not neg))


@njit(**JIT)
def _inc_down(neg, n, r, half, shift, u):
    return np.int64((r != 0) & neg)


@njit(**JIT)
def _inc_stochastic(neg, n, r, half, shift, u):
    # the top ``shift`` bits of u are uniform on [0, 2**shift): increment with
    # probability r / 2**shift, the distance to the lower neighbour in quanta
    return np.int64(np.uint64(r) > (np.uint64(u) >> np.uint64(64 - shift)))


INCREMENTS = {
    "nearest_even": _inc_nearest_even,
    "nearest_away": _inc_nearest_away,
    "toward_zero": _inc_toward_zero,
    "up": _inc_up,
    "down": _inc_down,
    "stochastic": _inc_stochastic,
}


def make_encoder(fmt: Format, rounding: str = "nearest_even", saturate: bool = False):
    """A function callable from Numba code, ``encode(v, u) -> storage code`` of ``fmt`` under the policy
    (``u``: 64 random bits, read by the stochastic mode only).  Every constant is
    a closure value, so each (format, policy) compiles to straight-line code."""
    inc = INCREMENTS[rounding]
    st = fmt.storage
    m, emin, max_code, sign_bit = fmt.mbits, fmt.emin, fmt.max_code, fmt.sign_bit
    special, nan_code = fmt.special, fmt.nan_code
    no_special, signed_nan, fnuz, e8m0 = special == "none", special in ("ieee", "fn"), special == "fnuz", special == "e8m0"
    no_subnormals = e8m0
    adj = (1 << m) if no_subnormals else 0  # e8m0: exponent emin is code 0
    # what a finite overflow gives (rounded away from zero) and what inf gives
    if saturate or special == "none":
        over_away, inf_code = max_code, max_code
    elif special == "ieee":
        over_away, inf_code = max_code + 1, max_code + 1
    else:
        over_away, inf_code = -1, -1  # NaN
    toward_zero_pos = rounding in ("toward_zero", "down")  # overflow of a positive value stays finite
    toward_zero_neg = rounding in ("toward_zero", "up")

    @register_jitable
    def encode(v, u):
        b = f64_bits(np.float64(v))
        neg = (b >> np.uint64(63)) != 0
        ab = b & np.uint64(0x7FFFFFFFFFFFFFFF)
        sign = np.int64(sign_bit) if neg else np.int64(0)
        if ab > np.uint64(0x7FF0000000000000):  # NaN
            if no_special:  # ml_dtypes: a zero of the opposite sign
                return st(np.int64(sign_bit) - sign)
            if signed_nan:
                return st(sign | nan_code)
            return st(nan_code)
        if e8m0 and (neg or ab == np.uint64(0)):
            return st(nan_code)  # no zero and no sign: NaN, as ml_dtypes
        if ab == np.uint64(0x7FF0000000000000):  # +-inf
            if inf_code < 0:
                return st(sign | nan_code) if signed_nan else st(nan_code)
            return st(sign | inf_code)
        if ab == np.uint64(0):
            return st(0) if fnuz else st(sign)
        e64 = np.int64(ab >> np.uint64(52))
        mant = np.int64(ab & np.uint64(0xFFFFFFFFFFFFF))
        if e64 == 0:  # float64 subnormal: far below every format's quantum
            big_m, e = mant, np.int64(-1023)
        else:
            big_m, e = mant | np.int64(1 << 52), e64 - np.int64(1023)
        eq = max(e, np.int64(emin))
        shift = eq - np.int64(m) - e + np.int64(52)
        if shift > 62:  # keep a sticky bit: the result is below half a quantum
            big_m = (big_m >> (shift - 62) if shift - 62 < 64 else np.int64(0)) | np.int64(1)
            shift = np.int64(62)
        half = np.int64(1) << (shift - 1)
        n = big_m >> shift
        r = big_m & ((half << 1) - 1)
        n += inc(neg, n, r, half, shift, u)
        code = ((eq - np.int64(emin)) << np.int64(m)) + n - np.int64(adj)
        if code < 0:  # e8m0 below its smallest power: the smallest, as ml_dtypes
            code = np.int64(0)
        if code > max_code:
            if (toward_zero_neg if neg else toward_zero_pos):
                return st(sign | max_code)
            if over_away < 0:
                return st(sign | nan_code) if signed_nan else st(nan_code)
            return st(sign | over_away)
        if code == 0 and fnuz:
            return st(0)  # no -0: the negative-zero code is NaN
        return st(sign | code)

    return encode


def make_nearest_even_encoder(fmt: Format, saturate: bool = False):
    """The round-to-nearest-even ``encode(v) -> code`` of a signed ``fmt`` for a
    float32 ``v``, branch-free so the cast loop vectorises (the generic encoder's
    branches keep it scalar: 4-12 ns a value against about 1).  Bit for bit the
    generic encoder's result (tests/test_minifloat.py sweeps both over every float32).

    Normal results: the float32 pattern rounded to ``m`` mantissa bits by the
    integer add of ``half - 1 + lsb`` (a mantissa carry moves into the exponent),
    then rebased from float32's bias to the format's.  Subnormal results:
    ``rint(|v| * 2**(m - emin))`` in float32, exact (a power-of-two scaling of a
    value below ``2**emin``).  A float64 input is first rounded to odd into
    float32 (24 bits >= m + 2: the following rounding is then correct)."""
    from ._bits import _llvm_rint, f32_bits, f32_from_bits

    assert fmt.signed and fmt.special != "e8m0"
    st = fmt.storage
    m, bias, max_code, sign_bit = fmt.mbits, fmt.bias, fmt.max_code, fmt.sign_bit
    sh = 23 - m
    rebias = (127 - bias) << m
    min_normal_bits = (fmt.emin + 127) << 23  # float32 pattern of 2**emin
    scale = np.float32(2.0 ** (m - fmt.emin))
    no_special, fnuz = fmt.special == "none", fmt.special == "fnuz"
    nan_code = fmt.nan_code
    if saturate or no_special:
        over = max_code
    elif fmt.special == "ieee":
        over = max_code + 1
    else:
        over = -1
    signed_nan = fmt.special in ("ieee", "fn")

    @register_jitable
    def encode(v):
        b = np.int32(f32_bits(np.float32(v)))
        a = b & np.int32(0x7FFFFFFF)
        sign = np.int32(sign_bit) & (b >> np.int32(31))  # sign_bit or 0
        norm = ((a + np.int32((1 << (sh - 1)) - 1) + ((a >> np.int32(sh)) & np.int32(1))) >> np.int32(sh)) - np.int32(rebias)
        sub = np.int32(_llvm_rint(f32_from_bits(np.uint32(a)) * scale))
        code = sub if a < np.int32(min_normal_bits) else norm
        finite = a < np.int32(0x7F800000)
        if not finite and a == np.int32(0x7F800000):  # +-inf overflows like a finite value
            code = np.int32(max_code + 1)
        if over < 0:
            nan = np.int32(nan_code) | (sign if signed_nan else np.int32(0))
            out = nan if code > np.int32(max_code) else sign | code
        else:
            out = sign | min(code, np.int32(over))
        if fnuz:
            out = np.int32(0) if code == 0 else out  # no -0: 0x80 is the NaN
        if a > np.int32(0x7F800000):  # NaN
            out = (np.int32(sign_bit) - sign) if no_special else (np.int32(nan_code) | (sign if signed_nan else np.int32(0)))
        return st(out)

    return encode


_ENCODERS: dict = {}


def encoder(fmt: Format, policy):
    """``make_encoder(fmt, policy.rounding, policy.saturate)``, built once per (format, policy)."""
    key = (fmt, policy.rounding, policy.saturate)
    if key not in _ENCODERS:
        _ENCODERS[key] = make_encoder(fmt, policy.rounding, policy.saturate)
    return _ENCODERS[key]


# --------------------------------------------------------------------------
# the random bits of stochastic rounding: a counter-based hash of (seed, index)
# --------------------------------------------------------------------------

_GOLDEN = 0x9E3779B97F4A7C15  # splitmix64's increment (2**64 / golden ratio, odd)
_MIX1, _MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_M64 = (1 << 64) - 1


def seed_key(seed: int) -> np.uint64:
    """The 64-bit key of a seed: splitmix64's first output for state ``seed``, so that
    nearby seeds (0, 1, 2, ...) give unrelated streams.  Python integers: the same
    function as :func:`random_bits` with index -1, written out for the reader."""
    z = (seed + _GOLDEN) & _M64
    z = ((z ^ (z >> 30)) * _MIX1) & _M64
    z = ((z ^ (z >> 27)) * _MIX2) & _M64
    return np.uint64(z ^ (z >> 31))


@register_jitable
def random_bits(key, i):
    """64 uniform bits for element ``i`` under seed key ``key``: output ``i + 1`` of a
    splitmix64 generator whose state starts at ``key`` (Steele, Lea and Flood 2014),
    a function of (key, i) alone, so the bits of an element do not depend on the
    thread that computes it, the chunk it is in or the serial/parallel compilation."""
    z = np.uint64(key) + (np.uint64(i) + np.uint64(1)) * np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return z ^ (z >> np.uint64(31))


def random_bits_reference(key: int, i: int) -> int:
    """:func:`random_bits` in Python integers (for tests and the reader)."""
    z = (int(key) + (i + 1) * _GOLDEN) & _M64
    z = ((z ^ (z >> 30)) * _MIX1) & _M64
    z = ((z ^ (z >> 27)) * _MIX2) & _M64
    return z ^ (z >> 31)


# --------------------------------------------------------------------------
# compute codecs under a non-default rounding mode: float64 arithmetic
# --------------------------------------------------------------------------
#
# Every value of a compute codec under a policy is held in float64.  For float16,
# bfloat16 and float32 operands (p <= 24 bits): a product is exact in float64
# (2p <= 48 bits, exponents within float64's range); a quotient is never within
# float64's half-ulp of a p-bit number or of a midpoint between two unless it is
# one (a - b*v is then a nonzero multiple of about 2**-2p * a), so float64's
# rounding keeps it in the same open interval between two neighbours of the
# format and any rounding of it is the correct one; sums are rounded *to odd*
# in float64 (53 >= p + 2 bits; ``sum_to_odd_f64``), which keeps the interval
# and the exactness, whatever the exponents' distance.  Then ``encode`` rounds
# once, in the policy's mode.


@functools.cache
def compute_ops(enc, decode_bits):
    """(to_compute, rnd, add_c, sub_c, fma_c) impls of a compute codec whose encode under the
    policy is ``enc(v, u)`` and whose storage bits decode exactly by ``decode_bits``."""
    @register_jitable
    def rnd64(v):
        return np.float64(decode_bits(enc(np.float64(v), np.uint64(0))))

    def to_compute(codec, v):
        return rnd64(v)

    def rnd(codec, v):
        return rnd64(v)

    def add_c(codec, a, b):
        return rnd64(sum_to_odd_f64(np.float64(a), np.float64(b)))

    def sub_c(codec, a, b):
        return rnd64(sum_to_odd_f64(np.float64(a), -np.float64(b)))

    def fma_c(codec, a, b, c):
        # the product of two p <= 24-bit values is exact in float64
        return rnd64(sum_to_odd_f64(np.float64(a) * np.float64(b), np.float64(c)))

    return to_compute, rnd, add_c, sub_c, fma_c
