"""Naive, independent references: numpy / ml_dtypes arithmetic op by op, Fractions,
and integer arithmetic on the bits.

numpy's float16 array arithmetic (and ml_dtypes' bfloat16) computes each
operation in float32 and rounds the result, so it is the reference for the
emulated 16-bit compute dtypes.  Every float64 -> bfloat16 conversion goes
through :func:`round_exact`, which decides between neighbours with Fractions:
ml_dtypes rounded that conversion twice (through float32) up to 0.5 and once
from 0.7, and the suite must not depend on which release is installed.

:func:`f32_to_f16_bits_reference` and :func:`f32_to_bf16_bits_reference` round
float32 bit patterns with integer arithmetic alone (no float operation, no
F16C, no numpy cast), for the exhaustive 2^32 sweeps: numpy's own float16 cast
takes about 65 ns per value for the 44 % of patterns that underflow float16.
"""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
from numba import njit, prange

NP = {
    "uint8": np.dtype(np.uint8),
    "uint16": np.dtype(np.uint16),
    "int8": np.dtype(np.int8),
    "int16": np.dtype(np.int16),
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}
# the formats of 8 bits and below (kernels.codecs.minifloat), as ml_dtypes types
MINIFLOATS = ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float6_e2m3fn",
              "float6_e3m2fn", "float4_e2m1fn", "float8_e8m0fnu")
NP.update({n: np.dtype(getattr(ml_dtypes, n)) for n in MINIFLOATS})
UINT_VIEW = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _neighbours(v, dtype):
    """v's bit pattern and the two adjacent patterns of the same sign."""
    bits = np.array([v], dtype=dtype).view(UINT_VIEW[dtype.itemsize])[0]
    out = []
    for d in (-1, 0, 1):
        b = int(bits) + d
        if 0 <= b < 2 ** (8 * dtype.itemsize):
            out.append(np.array([b], dtype=UINT_VIEW[dtype.itemsize]).view(dtype)[0])
    return out


def round_exact_scalar(q: Fraction, dtype) -> float:
    """The value of dtype nearest to the rational q, ties to the even pattern; overflow -> inf."""
    dtype = np.dtype(dtype)
    approx = np.array([float(q)], dtype=np.float64).astype(dtype)[0]  # within an ulp
    if not np.isfinite(approx):
        big = float(ml_dtypes.finfo(dtype).max)
        # overflow threshold: max + half an ulp of max rounds to inf (ties to even -> inf)
        ulp = big - float(np.nextafter(np.array(big, dtype=np.float64), 0)) if dtype == np.float64 else None
        if ulp is None:
            below = _neighbours(np.array([big], dtype=dtype)[0], dtype)[0]
            ulp = big - float(below)
        if abs(q) < Fraction(big) + Fraction(ulp) / 2:
            return np.copysign(big, float(q))
        return np.copysign(np.inf, float(q))
    best = None
    for c in _neighbours(approx, dtype):
        if not np.isfinite(c):
            continue
        err = abs(Fraction(float(c)) - q)
        even = int(np.array([c], dtype=dtype).view(UINT_VIEW[dtype.itemsize])[0]) % 2 == 0
        key = (err, not even)
        if best is None or key < best[0]:
            best = (key, float(c))
    return best[1]


def round_exact(values: np.ndarray, dtype) -> np.ndarray:
    """Elementwise correctly rounded conversion of float64 values (NaN, inf kept)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.empty(values.shape, dtype=np.float64)
    # unique by bit pattern, so -0.0 keeps its sign
    uniq, inv = np.unique(values.view(np.uint64), return_inverse=True)
    res = np.array(
        [
            v if not np.isfinite(v) or v == 0 else round_exact_scalar(Fraction(float(v)), dtype)
            for v in uniq.view(np.float64)
        ],
        dtype=np.float64,
    )
    out[...] = res[inv.reshape(values.shape)]
    return out.astype(np.dtype(dtype))


def convert(values, name: str) -> np.ndarray:
    """Reference conversion into registry dtype ``name``: correct rounding, integer saturation."""
    target = NP[name]
    values = np.asarray(values)
    if target.kind in "ui":
        v = values.astype(np.float64)
        info = np.iinfo(target)
        r = np.clip(np.rint(np.nan_to_num(v, nan=0.0)), info.min, info.max)
        return r.astype(target)
    if name in MINIFLOATS:
        if values.dtype == np.float64:
            return minifloat_reference(values, name)
        with np.errstate(over="ignore", invalid="ignore"):
            return values.astype(target)  # float32 and narrower: ml_dtypes, proven on all 2^32 patterns
    if values.dtype == np.float64 and name == "bfloat16":
        return round_exact(values, target)  # exact, whatever ml_dtypes' release does
    with np.errstate(over="ignore"):
        return values.astype(target)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-for-bit equality, except that any NaN equals any NaN."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind in "ui":
        return np.array_equal(a, b)
    fa, fb = a.astype(np.float64), b.astype(np.float64)
    nan = np.isnan(fa)
    if not np.array_equal(nan, np.isnan(fb)):
        return False
    ua = a.view(UINT_VIEW[a.dtype.itemsize])
    ub = b.view(UINT_VIEW[b.dtype.itemsize])
    return bool(np.array_equal(ua[~nan], ub[~nan]))


def derived(params, formula: str, compute: str):
    """The transform's constants in the compute dtype, per the design's table."""
    c = NP[compute].type
    t = params.transform

    def C(v):
        return np.asarray(v, dtype=np.float64).astype(NP[compute])

    def nz(v):
        return np.where(v == 0, c(1), v).astype(NP[compute])

    if t == "minmax":
        lo, hi = C(params["min"]), C(params["max"])
        a, b = params.options["feature_range"]
        a_c = C(np.full(params.nfeat, a))
        w = (C(np.full(params.nfeat, b)) - a_c).astype(NP[compute])
        rng, post = nz((hi - lo).astype(NP[compute])), (a, b) != (0.0, 1.0)
    elif t == "standardize":
        lo, rng = C(params["mean"]), nz(C(params["std"]))
        a_c, w, post = C(np.zeros(params.nfeat)), C(np.ones(params.nfeat)), False
    elif t == "scale":
        lo, rng = C(np.zeros(params.nfeat)), C(params["divisor"])
        a_c, w, post = lo, C(np.ones(params.nfeat)), False
    elif t == "maxabs":
        lo, rng = C(np.zeros(params.nfeat)), nz(C(params["maxabs"]))
        a_c, w, post = lo, C(np.ones(params.nfeat)), False
    return lo, rng, a_c, w, post


def reference_transform(x: np.ndarray, params, formula: str, compute: str, out: str) -> np.ndarray:
    """transform() written op by op in numpy, each op in the compute dtype."""
    cd = NP[compute]
    xin = x.astype(np.float64) if x.dtype == NP["bfloat16"] else x
    xc = convert(xin, compute) if x.dtype != cd else x.copy()
    t = params.transform
    with np.errstate(all="ignore"):
        if t == "quantize":
            scale = convert(params["scale"], compute)
            zp = convert(params["zero_point"], compute)
            # the clip bounds are exact: qmax = 65535 is no bfloat16/float16 value, so the
            # clip happens in float64 and the output rounds once from there
            info = np.iinfo(NP[params.options["qdtype"]])
            qmin, qmax = float(info.min), float(info.max)
            q = (np.rint((xc / scale).astype(cd)).astype(cd) + zp).astype(cd).astype(np.float64)
            q = np.where(q < qmin, qmin, q)
            y = np.where(q > qmax, qmax, q)
            return convert(y, out)
        elif t == "dequantize":
            scale = convert(params["scale"], compute)
            zp = convert(params["zero_point"], compute)
            y = ((xc - zp).astype(cd) * scale).astype(cd)
        else:
            lo, rng, a, w, post = derived(params, formula, compute)
            if formula in ("sub_div", "div"):
                y = ((xc - lo).astype(cd) / rng).astype(cd)
            elif formula in ("sub_mul", "mul"):
                r = (cd.type(1) / rng).astype(cd)
                y = ((xc - lo).astype(cd) * r).astype(cd)
            else:
                s = (w / rng).astype(cd)
                tt = (a - (lo * s).astype(cd)).astype(cd)
                if formula == "mul_add":
                    y = ((xc * s).astype(cd) + tt).astype(cd)
                else:  # fma: exact x*s + t, one rounding
                    flat = [
                        round_exact_scalar(Fraction(float(v)) * Fraction(float(ss)) + Fraction(float(tv)), cd)
                        if np.isfinite(v) and np.isfinite(ss) and np.isfinite(tv)
                        else float(v) * float(ss) + float(tv)  # IEEE: inf * 0 is NaN
                        for v, ss, tv in zip(
                            xc.reshape(-1).astype(np.float64),
                            np.broadcast_to(s, xc.shape).reshape(-1).astype(np.float64),
                            np.broadcast_to(tt, xc.shape).reshape(-1).astype(np.float64),
                        )
                    ]
                    y = np.array(flat, dtype=np.float64).reshape(xc.shape).astype(cd)
            if post and formula not in ("mul_add", "fma"):
                y = ((y * w).astype(cd) + a).astype(cd)
    y64 = y.astype(np.float64) if cd == NP["bfloat16"] else y
    return convert(y64, out) if cd != NP[out] else y


def numpy_distinct(y) -> int:
    """Distinct non-NaN values by value (-0.0 == +0.0), with numpy alone."""
    v = np.asarray(y).astype(np.float64) + 0.0
    return int(np.unique(v[~np.isnan(v)]).size)


# --------------------------------------------------------------------------
# float32 -> 16-bit floats with integer arithmetic on the bits
# --------------------------------------------------------------------------


@njit(parallel=True, cache=False)
def f32_to_f16_bits_reference(bits, out):
    """Round every float32 pattern in ``bits`` (uint32) to float16 bits, nearest even.

    finite: the value is m * 2**E (m the significand with its hidden bit); the
    float16 quantum is 2**-24 below 2**-14 and 2**(k-10) in [2**k, 2**(k+1)), so
    normal inputs drop 13 bits and smaller ones 126 - e; the kept bits are
    rounded half to even, and a carry walks into the exponent (and to inf, 0x7C00)
    by plain integer addition.  NaN: the project's documented rule, a quiet NaN
    with the sign and the top 10 payload bits (x86's vcvtps2ph gives the same).
    """
    for i in prange(bits.size):
        b = np.uint32(bits[i])
        sign = (b >> np.uint32(16)) & np.uint32(0x8000)
        e = np.int64((b >> np.uint32(23)) & np.uint32(0xFF))
        f = np.int64(b & np.uint32(0x7FFFFF))
        if e == 255:
            h = np.int64(0x7C00) if f == 0 else np.int64(0x7E00) | (f >> 13)
        elif e >= 143:  # >= 2**16: past float16's range whatever the rounding
            h = np.int64(0x7C00)
        else:
            if e >= 113:  # float16 normal range: drop 13 bits, rebias 127 -> 15
                shift = np.int64(13)
                base = (e - 112) << 10
                m = f
            else:  # float16 subnormal or zero: the code is |x| / 2**-24
                m = f if e == 0 else f | (1 << 23)
                shift = np.int64(125) if e == 0 else 126 - e
                base = np.int64(0)
            if shift > 25:  # m < 2**24 <= half of the dropped weight: rounds to 0
                h = np.int64(0)
            else:
                q = m >> shift
                rem = m & ((np.int64(1) << shift) - 1)
                half = np.int64(1) << (shift - 1)
                h = base + q + (1 if rem > half or (rem == half and (q & 1) == 1) else 0)
        out[i] = np.uint16(np.int64(sign) | h)


@njit(parallel=True, cache=False)
def f32_to_bf16_bits_reference(bits, out):
    """Round every float32 pattern to bfloat16 bits, nearest even (drop 16 bits).
    NaN: the project's documented rule, the top 16 bits with the quiet bit set."""
    for i in prange(bits.size):
        b = np.int64(bits[i])
        if (b & 0x7F800000) == 0x7F800000 and (b & 0x7FFFFF) != 0:
            out[i] = np.uint16((b >> 16) | 0x40)
        else:
            q = b >> 16
            rem = b & 0xFFFF
            out[i] = np.uint16(q + (1 if rem > 0x8000 or (rem == 0x8000 and (q & 1) == 1) else 0))


# --- the formats of 8 bits and below: rounding by Fractions over the format's values ---
# The overflow rules are the table (ml_dtypes without saturation, ONNX's
# clip-then-cast with it); everything else is decided by exact comparison.
_NO_NAN_NO_INF = ("float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn")
_HAS_INF = ("float8_e5m2",)


class _Minifloat:
    """The finite values of a format (from ml_dtypes' decoding of every code) as Fractions."""

    def __init__(self, name):
        self.name, dt = name, NP[name]
        bits = 8 if name.startswith("float8") else int(name[5])
        codes = np.arange(1 << bits, dtype=np.uint8)
        vals = codes.view(dt).astype(np.float64)
        self.code_of = {}
        for c, v in zip(codes, vals):
            if not np.isnan(v):
                self.code_of.setdefault((float(v), bool(np.signbit(v))), int(c))
        self.pos = sorted({Fraction(float(v)) for v in vals if np.isfinite(v) and v >= 0})
        fi = ml_dtypes.finfo(dt)
        self.vmax = self.pos[-1]
        # the value one quantum past the largest: where rounding away from it overflows
        self.vnext = self.vmax + Fraction(2) ** (int(fi.maxexp) - 1 - int(fi.nmant))
        self.unsigned = name == "float8_e8m0fnu"
        self.fnuz = name.endswith("fnuz")

    def overflow(self, saturate):
        if saturate or self.name in _NO_NAN_NO_INF:
            return float(self.vmax)
        return float("inf") if self.name in _HAS_INF else float("nan")

    def round_magnitude(self, a: Fraction, negative: bool, rounding: str, saturate: bool):
        import bisect

        if a > self.vmax:
            lo, hi = self.vmax, self.vnext
        else:
            i = bisect.bisect_left(self.pos, a)
            if self.pos[i] == a:
                return float(a)
            if i == 0:  # below the smallest (e8m0 has no zero): the smallest, as ml_dtypes
                return float(self.pos[0])
            lo, hi = self.pos[i - 1], self.pos[i]
        toward_zero = rounding == "toward_zero" or rounding == ("up" if negative else "down")
        away = rounding == ("down" if negative else "up")
        if toward_zero:
            pick = lo
        elif away:
            pick = hi
        elif a - lo != hi - a:
            pick = lo if a - lo < hi - a else hi
        elif rounding == "nearest_away":
            pick = hi
        else:  # a tie: the even multiple of the gap
            gap = hi - lo
            pick = lo if (lo / gap).numerator % 2 == 0 and (lo / gap).denominator == 1 else hi
        return self.overflow(saturate) if pick == self.vnext else float(pick)

    def round(self, v: float, rounding="nearest_even", saturate=False) -> float:
        negative = bool(np.signbit(v))
        if np.isnan(v) or (self.unsigned and (negative or v == 0)):
            return float("nan")
        if np.isinf(v):
            r = float(self.vmax) if saturate or self.name in _NO_NAN_NO_INF else (
                float("inf") if self.name in _HAS_INF else float("nan"))
        else:
            r = self.round_magnitude(abs(Fraction(v)), negative, rounding, saturate)
        if r == 0 and self.fnuz:
            return 0.0
        return -r if negative else r

    def code(self, r: float) -> int:
        """The code of a rounded value (-1 for NaN)."""
        if np.isnan(r):
            return -1
        return self.code_of[(abs(r) if r == 0 and not np.signbit(r) else r, bool(np.signbit(r)))]


_MINI = {}


def minifloat_codes_reference(values, name: str, rounding="nearest_even", saturate=False) -> np.ndarray:
    """The code (int, -1 for NaN) that correct rounding of each float value into ``name`` gives."""
    fmt = _MINI.get(name) or _MINI.setdefault(name, _Minifloat(name))
    vals = np.asarray(values, dtype=np.float64).ravel()
    return np.array([fmt.code(fmt.round(float(v), rounding, saturate)) for v in vals], dtype=np.int64)


def minifloat_reference(values, name: str, rounding="nearest_even", saturate=False) -> np.ndarray:
    """``minifloat_codes_reference`` as an array of ``name`` (NaN as the format's first NaN code)."""
    codes = minifloat_codes_reference(values, name, rounding, saturate)
    dt = NP[name]
    nan_codes = np.flatnonzero(np.isnan(np.arange(256, dtype=np.uint8).view(dt).astype(np.float32)))
    out = np.where(codes < 0, nan_codes[0] if nan_codes.size else 0, codes).astype(np.uint8)
    return out.reshape(np.shape(values)).view(dt)


# --- every rounding mode into float16 / bfloat16 / float32 (IEEE formats with inf) ---
DETERMINISTIC_ROUNDINGS = ("nearest_even", "toward_zero", "up", "down", "nearest_away")


def _pick(negative: bool, rounding: str, a, lo, hi, lo_even: bool):
    """The magnitude ``rounding`` gives for ``lo < a < hi`` (a of sign ``negative``)."""
    if rounding == "toward_zero" or rounding == ("up" if negative else "down"):
        return lo
    if rounding in ("up", "down"):
        return hi
    if a - lo != hi - a:
        return lo if a - lo < hi - a else hi
    return hi if rounding == "nearest_away" or not lo_even else lo


def round_mode_scalar(q: Fraction, dtype, rounding="nearest_even", saturate=False) -> float:
    """The value of IEEE ``dtype`` (float16, bfloat16, float32) that ``rounding`` gives
    for the nonzero rational ``q``, by Fractions over the neighbours of numpy's
    nearest value; overflow: +-inf, or +-max with ``saturate``.  The directed
    modes never overflow on the side they round toward zero (IEEE 754)."""
    dtype = np.dtype(dtype)
    negative, a = q < 0, abs(q)
    uint = UINT_VIEW[dtype.itemsize]
    big_f = float(ml_dtypes.finfo(dtype).max)
    big = Fraction(big_f)
    big_bits = int(np.array([big_f], dtype=dtype).view(uint)[0])
    over = big_f if saturate else float("inf")
    bits_of = lambda v: int(np.array([v], dtype=dtype).view(uint)[0])  # noqa: E731
    value_of = lambda b: float(np.array([b], dtype=uint).view(dtype)[0])  # noqa: E731
    if a > big:
        nxt = 2 * Fraction(value_of(big_bits)) - Fraction(value_of(big_bits - 1))  # max + its ulp
        lo, hi, lo_even = big, nxt, big_bits % 2 == 0
    else:
        c = Fraction(float(np.array([float(a)], dtype=np.float64).astype(dtype)[0]))
        if c == a:
            return float(-a if negative else a)
        b = bits_of(float(c))
        if c > a:
            lo, hi, lo_even = Fraction(value_of(b - 1)), c, (b - 1) % 2 == 0
        else:
            lo, hi, lo_even = c, Fraction(value_of(b + 1)) if b < big_bits else None, b % 2 == 0
            if hi is None:
                hi = 2 * big - Fraction(value_of(big_bits - 1))
    r = _pick(negative, rounding, a, lo, hi, lo_even)
    r = over if r > big else float(r)
    return -r if negative else r


def round_mode_reference(values, dtype, rounding="nearest_even", saturate=False) -> np.ndarray:
    """Vectorised :func:`round_mode_scalar` on float64/float32 values, into ``dtype``.

    Exact without Fractions: the neighbours lo < a < hi of a float16/bfloat16/float32
    result and their midpoint are float64 numbers, so every comparison with a
    float64 input is exact.  The bracket starts from numpy's (ml_dtypes') nearest
    value, which is within one pattern whatever that library's double rounding.
    NaN -> NaN, +-0 kept, +-inf -> +-inf (+-max with ``saturate``)."""
    dtype = np.dtype(dtype)
    uint = UINT_VIEW[dtype.itemsize]
    x = np.asarray(values).astype(np.float64).ravel()
    neg = np.signbit(x)
    a = np.abs(x)
    big = float(ml_dtypes.finfo(dtype).max)
    big_bits = np.array([big], dtype=dtype).view(uint)[0].astype(np.int64)
    below_big = float(np.array([big_bits - 1], dtype=uint).view(dtype)[0])
    past_big = 2 * big - below_big  # max + ulp(max): where rounding away from max overflows
    finite = np.isfinite(a)
    with np.errstate(over="ignore", invalid="ignore"):
        c = np.where(finite & (a <= big), a, 0.0).astype(dtype)
    cb = c.view(uint).astype(np.int64)
    cf = c.astype(np.float64)

    def val(bits):
        return np.clip(bits, 0, big_bits).astype(uint).view(dtype).astype(np.float64)

    above = cf > a
    lo_b = np.where(above, cb - 1, cb)
    lo = val(lo_b)
    hi = np.where(above, cf, np.where(lo_b >= big_bits, past_big, val(lo_b + 1)))
    over_side = a > big
    lo = np.where(over_side, big, lo)
    hi = np.where(over_side, past_big, hi)
    lo_b = np.where(over_side, big_bits, lo_b)
    mid = lo / 2 + hi / 2
    if rounding in ("nearest_even", "nearest_away"):
        tie_hi = (lo_b % 2 == 1) if rounding == "nearest_even" else np.ones_like(neg)
        pick_hi = (a > mid) | ((a == mid) & tie_hi)
    elif rounding == "toward_zero":
        pick_hi = np.zeros_like(neg)
    elif rounding == "up":
        pick_hi = ~neg
    elif rounding == "down":
        pick_hi = neg
    else:
        raise ValueError(rounding)
    r = np.where(pick_hi, hi, lo)
    r = np.where(r > big, big if saturate else np.inf, r)
    exact = (cf == a) & ~over_side
    r = np.where(exact, a, r)
    r = np.where(np.isinf(a), big if saturate else np.inf, r)
    r = np.where(np.isnan(x), np.nan, r)
    r = np.where(neg, -r, r)
    r = np.where(x == 0, x, r)
    with np.errstate(over="ignore"):
        return r.astype(dtype).reshape(np.shape(values))
