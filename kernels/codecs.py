"""dtype registry and the Numba-callable codec of each dtype (layer 1).

Numba has no float16 or bfloat16 type on the CPU, so 16-bit floats live in
kernels as their ``uint16`` bit patterns and are widened to ``float32`` for
arithmetic.  float32 <-> float16 goes through LLVM ``fptrunc``/``fpext`` to
``half`` inside a Numba ``@intrinsic``; on x86 with F16C these compile to
``vcvtps2ph``/``vcvtph2ps``.  Targets without F16C run the same conversions as
integer code (``F16C`` says which), bit for bit the same.

Conversion semantics (every codec, every direction; ``cast`` and the output
stage of every transform):

===========  ==========================================================
into         rule
===========  ==========================================================
float16      round to nearest, ties to even; ``|x| >= 65520`` -> +-inf; the
             value of ``astype(float16)``.  NaN -> quiet NaN keeping the sign
             and the top 10 payload bits (``vcvtps2ph``'s rule; numpy keeps
             other payload bits)
bfloat16     round to nearest, ties to even on the float32 bits; overflow
             -> +-inf; the value of ``astype(ml_dtypes.bfloat16)``.  NaN ->
             the top 16 bits with the quiet bit set (ml_dtypes gives other
             payload bits for most of the 2^24 NaN patterns)
float32      round to nearest, ties to even (float64 input); exactly numpy
float64      exact
uint8/16     round half to even, then saturate to [0, max]; NaN -> 0;
             -inf -> 0, +inf -> max (numpy's cast is undefined there)
===========  ==========================================================

float64 -> float16/bfloat16 rounds once: the float64 value is first rounded
*to odd* into float32 (24 bits >= 11 + 2 and >= 8 + 2), which makes the
following round-to-nearest-even exactly the correctly rounded result.  For
float16 the round-to-odd is three integer operations on the float64 bits
(``f64_to_f16_bits``); bfloat16, whose range reaches float32's subnormals,
uses ``round_to_odd_f32``.

Compute codecs: float16/bfloat16 *arithmetic* is emulated by float32 operations
rounded to the 16-bit format after every operation (float32's 24-bit
significand is >= 2p + 2, so the double rounding is innocuous for + - * / and
sqrt); ``rnd`` is that rounding.
"""

from __future__ import annotations

import dataclasses

import llvmlite.binding as llvm
import ml_dtypes
import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils, types
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

from ._jit import JIT, kernel
from ._tags import Tag, tag_name


@dataclasses.dataclass(frozen=True)
class DType:
    """One row of the dtype registry."""

    name: str
    dtype: np.dtype  # the numpy dtype at the Python boundary
    storage: np.dtype  # how kernels hold it (16-bit floats as uint16 bits)
    is_integer: bool
    scalar: type  # numpy scalar type, for constants computed in Python
    tag: Tag

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def max(self) -> float:
        info = np.iinfo(self.dtype) if self.is_integer else ml_dtypes.finfo(self.dtype)
        return float(info.max)

    @property
    def can_compute(self) -> bool:
        return not self.is_integer


def _row(name, np_dtype, storage, is_integer):
    np_dtype = np.dtype(np_dtype)
    return DType(name, np_dtype, np.dtype(storage), is_integer, np_dtype.type, Tag("codec", name))


REGISTRY: dict[str, DType] = {
    r.name: r
    for r in (
        _row("uint8", np.uint8, np.uint8, True),
        _row("uint16", np.uint16, np.uint16, True),
        _row("float16", np.float16, np.uint16, False),
        _row("bfloat16", ml_dtypes.bfloat16, np.uint16, False),
        _row("float32", np.float32, np.float32, False),
        _row("float64", np.float64, np.float64, False),
    )
}
COMPUTE_DTYPES = tuple(n for n, r in REGISTRY.items() if r.can_compute)


def supported() -> str:
    return ", ".join(REGISTRY)


def lookup(dtype, argument: str = "dtype") -> DType:
    """Registry row for a dtype given by name, numpy dtype, scalar type or array.

    Raises TypeError naming ``argument`` and listing the supported dtypes.
    """
    if isinstance(dtype, DType):
        return dtype
    if isinstance(dtype, str) and dtype in REGISTRY:
        return REGISTRY[dtype]
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:
        np_dtype = None
    if np_dtype is not None:
        for row in REGISTRY.values():
            if row.dtype == np_dtype:
                return row
    raise TypeError(
        f"{argument}={dtype!r} is not supported; use one of: {supported()}"
    )


def as_storage(a: np.ndarray, row: DType) -> np.ndarray:
    """View an array as the bit patterns the kernels read and write."""
    return a.view(row.storage)


# --------------------------------------------------------------------------
# LLVM intrinsics: half conversions, bit casts, fma
# --------------------------------------------------------------------------


def target_has(feature: str) -> bool:
    """Whether Numba's target CPU has an x86 feature ("f16c", "avx512vbmi"): the
    host's, unless NUMBA_CPU_NAME or NUMBA_CPU_FEATURES name another target
    (portable caches), which is then trusted."""
    from numba.core import config

    if config.CPU_FEATURES is not None:
        return f"+{feature}" in config.CPU_FEATURES.split(",")
    if config.CPU_NAME not in (None, "host"):
        return False
    return bool(llvm.get_host_cpu_features().get(feature, False))


@intrinsic
def _f32_to_f16_half(typingctx, v):
    """float32 -> float16 bits, round to nearest even (F16C vcvtps2ph)."""
    if v != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.fptrunc(args[0], ir.HalfType()), ir.IntType(16))

    return types.uint16(types.float32), codegen


@intrinsic
def _f16_to_f32_half(typingctx, b):
    """float16 bits -> float32, exact (F16C vcvtph2ps)."""
    if b != types.uint16:
        return None

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return types.float32(types.uint16), codegen


def _make_bitcast(src, dst):
    """Reinterpret bits.  An integer source of any width is first truncated or
    zero-extended to the target's width (Numba widens uint32 arithmetic)."""

    @intrinsic
    def bitcast(typingctx, v):
        from_int = isinstance(src, types.Integer)
        if not (v == src or (from_int and isinstance(v, types.Integer))):
            return None

        def codegen(context, builder, signature, args):
            val = args[0]
            if from_int and v.bitwidth != src.bitwidth:
                ity = ir.IntType(src.bitwidth)
                val = builder.trunc(val, ity) if v.bitwidth > src.bitwidth else builder.zext(val, ity)
            return builder.bitcast(val, context.get_value_type(dst))

        return dst(v), codegen

    return bitcast


f32_bits = _make_bitcast(types.float32, types.uint32)
f32_from_bits = _make_bitcast(types.uint32, types.float32)
f64_bits = _make_bitcast(types.float64, types.uint64)
f64_from_bits = _make_bitcast(types.uint64, types.float64)


def _float_intrinsic(name, nargs, result=None):
    """A Numba-callable ``llvm.<name>`` on float32 or float64 arguments of one type,
    returning that type, or the integer type ``result`` (``llvm.<name>.i<bits>.f<bits>``).
    LLVM vectorises these calls like plain arithmetic."""

    def signature(a):
        if a not in (types.float32, types.float64):
            return None, None
        rty = a if result is None else result
        mangled = (f"i{rty.bitwidth}." if result is not None else "") + ("f64" if a == types.float64 else "f32")

        def codegen(context, builder, sig, llargs):
            fnty = ir.FunctionType(context.get_value_type(rty), [v.type for v in llargs])
            fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.{name}.{mangled}")
            return builder.call(fn, llargs)

        return rty, codegen

    if nargs == 1:

        @intrinsic
        def call1(typingctx, a):
            rty, codegen = signature(a)
            return None if rty is None else (rty(a), codegen)

        return call1

    if nargs == 2:

        @intrinsic
        def call2(typingctx, a, b):
            rty, codegen = signature(a) if a == b else (None, None)
            return None if rty is None else (rty(a, b), codegen)

        return call2

    @intrinsic
    def call3(typingctx, a, b, c):
        rty, codegen = signature(a) if a == b == c else (None, None)
        return None if rty is None else (rty(a, b, c), codegen)

    return call3


@njit(**JIT)
def _f32_to_f16_soft(f):
    """``_f32_to_f16_half`` in integer code, for targets without F16C (same bits).

    Normal results: rebias the exponent (127 -> 15) and round the 13 dropped
    fraction bits to nearest even; a carry out of the fraction bumps the exponent.
    From 65520 up: inf.  Below 2**-14: the subnormal code is ``|f| * 2**24``
    rounded to an integer, which float32 arithmetic does exactly (the scaling is
    exact, and adding 2**23 rounds to nearest even); 1024 is the smallest normal.
    NaN: a quiet NaN keeping the payload's top bits.
    """
    b = f32_bits(f)
    sign = (b >> np.uint32(16)) & np.uint32(0x8000)
    a = b & np.uint32(0x7FFFFFFF)
    normal = (a - np.uint32(0x38000000) + np.uint32(0xFFF) + ((a >> np.uint32(13)) & np.uint32(1))) >> np.uint32(13)
    big = np.float32(8388608.0)
    sub = np.uint32((abs(f) * np.float32(16777216.0) + big) - big)
    h = normal if a >= np.uint32(0x38800000) else sub
    h = np.uint32(0x7C00) if a >= np.uint32(0x477FF000) else h
    h = (np.uint32(0x7E00) | ((a >> np.uint32(13)) & np.uint32(0x3FF))) if a > np.uint32(0x7F800000) else h
    return np.uint16(sign | h)


@njit(**JIT)
def _f16_to_f32_soft(raw):
    """``_f16_to_f32_half`` in integer code, for targets without F16C (same bits)."""
    h = np.uint32(raw)
    sign = (h & np.uint32(0x8000)) << np.uint32(16)
    a = h & np.uint32(0x7FFF)
    bits = (a << np.uint32(13)) + np.uint32(0x38000000)  # rebias 15 -> 127
    bits = ((a << np.uint32(13)) | np.uint32(0x7F800000)) if a >= np.uint32(0x7C00) else bits  # inf, NaN
    sub = f32_bits(np.float32(a) * np.float32(2.0**-24))  # zero and subnormals: exact
    return f32_from_bits(sign | (sub if a < np.uint32(0x400) else bits))


# Without F16C (x86 before 2012, or NUMBA_CPU_NAME=generic for portable caches) LLVM
# lowers half conversions to calls of __truncsfhf2/__extendhfsf2, which Numba's JIT
# cannot resolve: the process aborts.  There the integer versions run instead.
F16C = target_has("f16c")
f32_to_f16_bits = _f32_to_f16_half if F16C else _f32_to_f16_soft
f16_bits_to_f32 = _f16_to_f32_half if F16C else _f16_to_f32_soft

# a * b + c with one rounding
fma = _float_intrinsic("fma", 3)
# maxnum(NaN, c) is c.  With a constant (never NaN) operand LLVM emits one x86
# max/min instruction; a compare-and-select chain with constants was instead sunk
# past the integer conversion into mask arithmetic (twice the instructions).
maxnum = _float_intrinsic("maxnum", 2)
minnum = _float_intrinsic("minnum", 2)
# round in the current mode (nearest even) and convert in one instruction (cvtps2dq)
lrint32 = _float_intrinsic("lrint", 1, types.int32)
# round to an integral float, nearest even (one vrndscale)
_llvm_rint = _float_intrinsic("rint", 1)

# --------------------------------------------------------------------------
# scalar helpers (njit, inlined by LLVM)
# --------------------------------------------------------------------------


@njit(**JIT)
def round_to_odd_f32(d):
    """float64 -> float32 rounded to odd: exact values stay, inexact get an odd last bit.

    Round-to-odd is truncation with the inexact flag OR-ed into the last bit.
    The truncation is recovered from the nearest-even result ``f``: when ``|f| > |d|``
    RNE rounded away from zero, and one pattern down (patterns are sign-magnitude)
    is the truncation.  ``f`` and ``d`` share a sign, so ``|f| > |d|`` is an unsigned
    comparison of the raw bits.  Branch-free, so the kernels that call it vectorise;
    NaN passes through unchanged (both tests are false for it).
    """
    f = np.float32(d)
    back = np.float64(f)
    away = (f64_bits(back) > f64_bits(d)) & (d == d)
    inexact = (back != d) & (d == d)
    return f32_from_bits((f32_bits(f) - np.uint32(away)) | np.uint32(inexact))


_LOW29 = np.uint64((1 << 29) - 1)  # the float64 fraction bits that float32 lacks
_KEEP = np.uint64(~((1 << 29) - 1) & ((1 << 64) - 1))
_STICKY = np.uint64(1 << 29)  # float32's last fraction bit, in float64's layout


@njit(**JIT)
def f64_to_f16_bits(d):
    """float64 -> float16 bits, rounded once to nearest even (as numpy's astype).

    Round to odd into float32 with integer operations on the float64 bits:
    clear the 29 fraction bits float32 lacks (truncation) and set float32's last
    bit if any was set (sticky).  The result converts to float32 exactly, and
    float16's round-to-nearest-even of it is then the correct rounding of d.
    This is exact wherever float32 is normal; below that every value becomes
    +-0 in float16 anyway, and from 2**128 up inf, as it must.  Three integer
    operations instead of ``round_to_odd_f32``'s conversion back and compares.
    """
    bits = f64_bits(d)
    odd = (bits & _KEEP) | (_STICKY if (bits & _LOW29) != np.uint64(0) else np.uint64(0))
    return f32_to_f16_bits(np.float32(f64_from_bits(odd)))


@njit(**JIT)
def f32_to_bf16_bits(f):
    """float32 -> bfloat16 bits, round to nearest even; NaN -> its top 16 bits, quiet."""
    bits = f32_bits(f)
    if f != f:
        return np.uint16((bits >> np.uint32(16)) | np.uint32(0x40))
    bits += np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return np.uint16(bits >> np.uint32(16))


@njit(**JIT)
def bf16_bits_to_f32(b):
    return f32_from_bits(np.uint32(b) << np.uint32(16))


def _sum_to_odd(ftype, utype, to_bits, from_bits):
    """a + b rounded to odd in ``ftype``: TwoSum gives the exact error of the
    rounded sum; an inexact finite sum whose last bit RNE left even moves one
    pattern toward the exact value.  Branch-free, so callers vectorise.  Inf and
    NaN sums pass through (their TwoSum error is NaN)."""
    one, minus_one, zero = utype(1), utype(-1 % (1 << (8 * np.dtype(utype).itemsize))), utype(0)

    @njit(**JIT)
    def sum_to_odd(a, b):
        s = a + b
        bb = s - a
        err = (a - (s - bb)) + (b - bb)
        bits = to_bits(s)
        adjust = (err != ftype(0)) & (err == err) & ((bits & one) == zero)
        # patterns are sign-magnitude: +1 moves away from zero, -1 toward it
        step = one if (err > ftype(0)) == (s > ftype(0)) else minus_one
        return from_bits(utype(bits + (step if adjust else zero)))

    return sum_to_odd


# float16 fma: the float32 product of two 11-bit significands is exact and no float16
# product leaves float32's normal range, so TwoSum in float32 (16 SIMD lanes) suffices;
# bfloat16 has float32's exponent range, so its products need float64
sum_to_odd_f32 = _sum_to_odd(np.float32, np.uint32, f32_bits, f32_from_bits)
sum_to_odd_f64 = _sum_to_odd(np.float64, np.uint64, f64_bits, f64_from_bits)


def rint(codec, v):
    """Round half to even, as ``np.rint``, a value of compute codec ``codec``.

    float32/float64/bfloat16 compute: ``llvm.rint`` (one ``vrndscale`` per vector).
    float16 compute: ``(v + M) - M`` with ``M = copysign(2**23, v)``, which rounds
    ``|v| < 2**23`` to an integer in the current (nearest-even) mode; larger
    values, inf and NaN are integers already and pass through.  Written out
    because LLVM narrows ``rint(fpext(half))`` to a half-precision ``rint``,
    which x86 without AVX512-FP16 runs one element at a time.
    """
    return np.rint(v)


@overload(rint, jit_options=JIT)
def _ov_rint(codec, v):
    if tag_name(codec, "codec") != "float16":
        return lambda codec, v: _llvm_rint(v)
    big = 4503599627370496.0 if v == types.float64 else 8388608.0
    ftype = np.float64 if v == types.float64 else np.float32

    def impl(codec, v):
        b = ftype(big)
        m = b if v >= 0 else -b
        r = (v + m) - m
        return r if abs(v) < b else v

    return impl


def _saturating(maxval, int_type):
    """A Numba-callable float -> int_type cast: round half to even, clip to [0, maxval]."""

    def saturate(v):
        raise NotImplementedError

    @overload(saturate, jit_options=JIT)
    def _ov(v):
        ftype = np.float64 if v == types.float64 else np.float32
        lo, hi = ftype(0), ftype(maxval)  # constants of v's type: no float64 promotion

        def impl(v):
            # clip first (NaN becomes 0), then round: rint(clip(v)) == clip(rint(v))
            # because the bounds are integers, and 0 <= c <= maxval fits int32
            c = minnum(maxnum(v, lo), hi)
            return int_type(lrint32(c))

        return impl

    return saturate


_sat_u8 = _saturating(255, np.uint8)
_sat_u16 = _saturating(65535, np.uint16)


# --------------------------------------------------------------------------
# codec overloads: decode, encode, to_compute, rnd
# --------------------------------------------------------------------------


def decode(codec, raw):
    """Storage value -> float32 (float64 for float64), exact."""


def encode(codec, v):
    """float32/float64 value -> storage value, one correctly rounded step."""


def to_compute(codec, v):
    """A decoded value rounded into a compute dtype, held in its arithmetic type."""


def to_compute_from(cin, codec, v):
    """``to_compute`` for a value decoded from codec ``cin``; the rounding is
    skipped at compile time when every ``cin`` value is exact in the compute
    dtype (uint8 in float16, float16 in float32, ...)."""


# input dtype -> compute dtypes that hold every one of its values exactly
EXACT_IN = {
    "uint8": ("float16", "bfloat16", "float32", "float64"),
    "uint16": ("float32", "float64"),
    "float16": ("float16", "float32", "float64"),
    "bfloat16": ("bfloat16", "float32", "float64"),
    "float32": ("float32", "float64"),
    "float64": ("float64",),
}


def rnd(codec, v):
    """Round an arithmetic result to the compute dtype (emulated 16-bit arithmetic)."""


def arith_type(name: str):
    return types.float64 if name == "float64" else types.float32


@overload(decode, jit_options=JIT)
def _ov_decode(codec, raw):
    name = tag_name(codec, "codec")
    if name in ("uint8", "uint16", "float32"):
        return lambda codec, raw: np.float32(raw)
    if name == "float64":
        return lambda codec, raw: raw
    if name == "float16":
        return lambda codec, raw: f16_bits_to_f32(raw)
    if name == "bfloat16":
        return lambda codec, raw: bf16_bits_to_f32(raw)
    raise TypingError(f"no decode for {name}")


@overload(encode, jit_options=JIT)
def _ov_encode(codec, v):
    name = tag_name(codec, "codec")
    wide = v == types.float64
    if name == "uint8":
        return lambda codec, v: _sat_u8(v)
    if name == "uint16":
        return lambda codec, v: _sat_u16(v)
    if name == "float32":
        return lambda codec, v: np.float32(v)
    if name == "float64":
        return lambda codec, v: np.float64(v)
    if name == "float16":
        if wide:
            return lambda codec, v: f64_to_f16_bits(v)
        return lambda codec, v: f32_to_f16_bits(v)
    if name == "bfloat16":
        if wide:
            return lambda codec, v: f32_to_bf16_bits(round_to_odd_f32(v))
        return lambda codec, v: f32_to_bf16_bits(v)
    raise TypingError(f"no encode for {name}")


@overload(to_compute, jit_options=JIT)
def _ov_to_compute(codec, v):
    name = tag_name(codec, "codec")
    if name == "float64":
        return lambda codec, v: np.float64(v)
    if name == "float32":
        return lambda codec, v: np.float32(v)
    if name == "float16":
        return lambda codec, v: f16_bits_to_f32(encode(codec, v))
    if name == "bfloat16":
        return lambda codec, v: bf16_bits_to_f32(encode(codec, v))
    raise TypingError(f"{name} is not a compute dtype")


@overload(to_compute_from, jit_options=JIT)
def _ov_to_compute_from(cin, codec, v):
    if tag_name(codec, "codec") in EXACT_IN[tag_name(cin, "codec")]:
        return lambda cin, codec, v: as_arith(codec, v)
    return lambda cin, codec, v: to_compute(codec, v)


@overload(rnd, jit_options=JIT)
def _ov_rnd(codec, v):
    name = tag_name(codec, "codec")
    if name in ("float32", "float64"):
        return lambda codec, v: v
    if name == "float16":
        return lambda codec, v: f16_bits_to_f32(f32_to_f16_bits(v))
    if name == "bfloat16":
        return lambda codec, v: bf16_bits_to_f32(f32_to_bf16_bits(v))
    raise TypingError(f"{name} is not a compute dtype")


def as_arith(codec, v):
    """A number converted to the arithmetic type of a compute codec (no 16-bit rounding)."""


@overload(as_arith, jit_options=JIT)
def _ov_as_arith(codec, v):
    name = tag_name(codec, "codec")
    if name == "float64":
        return lambda codec, v: np.float64(v)
    return lambda codec, v: np.float32(v)


def fma_c(codec, a, b, c):
    """a * b + c rounded once to the compute dtype."""


@overload(fma_c, jit_options=JIT)
def _ov_fma_c(codec, a, b, c):
    name = tag_name(codec, "codec")
    if name in ("float32", "float64"):
        return lambda codec, a, b, c: fma(a, b, c)

    # 16-bit: the product is exact (float32 for float16, float64 for bfloat16); the
    # sum is rounded to odd (>= 2 extra bits), then once more correctly to 16 bits
    if name == "float16":
        return lambda codec, a, b, c: to_compute(codec, sum_to_odd_f32(a * b, c))
    return lambda codec, a, b, c: to_compute(codec, sum_to_odd_f64(np.float64(a) * np.float64(b), np.float64(c)))


def order_key(codec, raw):
    """A signed integer whose order is the value order (integer min/max vectorise,
    float min/max without fast-math do not).  NaNs land outside ``key_range``."""


@overload(order_key, jit_options=JIT)
def _ov_order_key(codec, raw):
    name = tag_name(codec, "codec")
    if name in ("uint8", "uint16"):
        return lambda codec, raw: raw  # already ordered; narrow keys mean more SIMD lanes
    if name in ("float16", "bfloat16"):

        def impl16(codec, raw):
            # sign-magnitude -> unsigned order in 16 bits (16 SIMD lanes):
            # positive patterns get the top bit set, negative ones are inverted
            return np.uint16(raw ^ (np.uint16(0x8000) | np.uint16(0) - (raw >> np.uint16(15))))

        return impl16
    if name == "float32":

        def impl32(codec, raw):
            b = np.int32(f32_bits(raw))
            return np.int32(b ^ ((b >> np.int32(31)) & np.int32(0x7FFFFFFF)))

        return impl32
    if name == "float64":

        def impl64(codec, raw):
            b = np.int64(f64_bits(raw))
            return np.int64(b ^ ((b >> np.int64(63)) & np.int64(0x7FFFFFFFFFFFFFFF)))

        return impl64
    raise TypingError(name)


def key_to_raw(codec, k):
    """Inverse of ``order_key``: the storage value whose key is k (enumerates domains)."""


@overload(key_to_raw, jit_options=JIT)
def _ov_key_to_raw(codec, k):
    name = tag_name(codec, "codec")
    if name == "uint8":
        return lambda codec, k: np.uint8(k)
    if name == "uint16":
        return lambda codec, k: np.uint16(k)
    if name in ("float16", "bfloat16"):

        def impl16(codec, k):
            u = np.uint16(k)
            return np.uint16(u ^ np.uint16(0x8000)) if u >= np.uint16(0x8000) else np.uint16(u ^ np.uint16(0xFFFF))

        return impl16
    if name == "float32":

        def impl32(codec, k):
            b = np.int32(k)
            return f32_from_bits(np.uint32(b ^ ((b >> np.int32(31)) & np.int32(0x7FFFFFFF))))

        return impl32
    if name == "float64":

        def impl64(codec, k):
            b = np.int64(k)
            return f64_from_bits(np.uint64(b ^ ((b >> np.int64(63)) & np.int64(0x7FFFFFFFFFFFFFFF))))

        return impl64
    raise TypingError(name)


def value_to_key(name: str, values) -> np.ndarray:
    """order_key of values already in dtype ``name`` (numpy), as int64."""
    a = np.asarray(values, dtype=REGISTRY[name].dtype)
    if name in ("uint8", "uint16"):
        return a.astype(np.int64)
    if name in ("float16", "bfloat16"):
        raw = a.view(np.uint16).astype(np.int64)
        return np.where(raw & 0x8000, raw ^ 0xFFFF, raw | 0x8000)
    if name == "float32":
        b = a.view(np.int32).astype(np.int64)
        return np.where(b < 0, b ^ 0x7FFFFFFF, b)
    b = a.view(np.int64)
    return np.where(b < 0, b ^ 0x7FFFFFFFFFFFFFFF, b)


def key_is_nan(codec, k, kneg, kpos):
    """Whether an order key is a NaN's (never, for integer codecs: no test emitted)."""


@overload(key_is_nan, jit_options=JIT)
def _ov_key_is_nan(codec, k, kneg, kpos):
    if tag_name(codec, "codec") in ("uint8", "uint16"):
        return lambda codec, k, kneg, kpos: False
    return lambda codec, k, kneg, kpos: (k > kpos) | (k < kneg)


def key_range(name: str):
    """(key of -inf, key of +inf) in the key's integer type: keys outside are NaN.
    For integer codecs, the bounds of the key type (no value lies outside)."""
    if name in ("uint8", "uint16"):
        info = np.iinfo(REGISTRY[name].dtype)
        return REGISTRY[name].dtype.type(info.min), REGISTRY[name].dtype.type(info.max)
    if name in ("float16", "bfloat16"):
        pos_inf = 0x7C00 if name == "float16" else 0x7F80
        return np.uint16(pos_inf ^ 0xFFFF ^ 0x8000), np.uint16(pos_inf | 0x8000)  # keys of -inf, +inf
    pos_inf = {"float32": 0x7F800000, "float64": 0x7FF0000000000000}[name]
    kt = np.int64 if name == "float64" else np.int32
    return kt(-pos_inf - 1), kt(pos_inf)


def keys_to_values(name: str, keys) -> np.ndarray:
    """Inverse of order_key on arrays: the values (numpy, in dtype ``name``) of int keys."""
    row = REGISTRY[name]
    k = np.asarray(keys, dtype=np.int64)
    if name in ("uint8", "uint16"):
        return k.astype(row.dtype)
    if name in ("float16", "bfloat16"):
        return np.where(k >= 0x8000, k ^ 0x8000, k ^ 0xFFFF).astype(np.uint16).view(row.dtype)
    if name == "float32":
        k32 = k.astype(np.int32)
        return (k32 ^ ((k32 >> 31) & 0x7FFFFFFF)).view(np.float32)
    return (k ^ ((k >> 63) & 0x7FFFFFFFFFFFFFFF)).view(np.float64)


def key_to_value(name: str, keys: np.ndarray) -> np.ndarray:
    """Inverse of order_key, as float64 values."""
    return keys_to_values(name, keys).astype(np.float64)


# --------------------------------------------------------------------------
# the cast kernel
# --------------------------------------------------------------------------


@kernel
def _copy_kernel(x, out):
    """A cast into the same dtype is a copy: bits, NaN payloads included, as numpy's astype."""
    for i in prange(x.size):
        out[i] = x[i]


@kernel
def _cast_kernel(x, out, cin, cout):
    """out[i] = encode(decode(x[i])): one rounding; returns 1 when a finite
    value became inf, else 0 (``count_overflow`` then counts them)."""
    overflowed = np.uint8(0)
    for i in prange(x.size):
        v = decode(cin, x[i])
        y = encode(cout, v)
        out[i] = y
        overflowed = max(overflowed, np.uint8(is_overflow(cout, v, y)))
    return overflowed


@kernel
def count_overflow(x, out, cin, cout):
    """How many finite inputs ``x`` ended as inf in ``out``, for the warning.

    Kernels only keep a uint8 flag (a max reduction, nearly free), and this
    second pass runs when it is set: a count inside a kernel is an int64
    reduction, which made float16 outputs 1.2-1.6x slower on cached data."""
    n = 0
    for i in prange(x.size):
        n += np.int64(is_overflow(cout, decode(cin, x[i]), out[i]))
    return n


IN_PLACE_BLOCK = 1 << 20  # elements per temporary block of an in-place call


def write_counting_overflow(run, flat_x, flat_out, cin, cout, row_len: int = 1) -> int:
    """Call ``run(src, dest)``, a kernel writing the outputs of ``src`` into ``dest``
    and returning its overflow flag, on ``flat_x`` and ``flat_out``; return how
    many finite inputs became inf.

    The count (``count_overflow``) reads the inputs after the outputs exist, so
    when ``flat_out`` is ``flat_x`` itself (``out=x``) and the output dtype has
    an inf, the work goes in blocks of about ``IN_PLACE_BLOCK`` elements (whole
    rows of ``row_len``, so per-feature parameters stay aligned) through one
    block-sized temporary, each copied into ``flat_out`` once counted.
    """
    in_place = flat_out.__array_interface__["data"][0] == flat_x.__array_interface__["data"][0]
    if not (in_place and cout.name in _HAS_INF):
        return count_overflow(flat_x, flat_out, cin, cout) if run(flat_x, flat_out) else 0
    block = max(IN_PLACE_BLOCK // row_len, 1) * row_len
    tmp = np.empty(min(block, flat_out.size), flat_out.dtype)
    overflow = 0
    for start in range(0, flat_x.size, block):
        src = flat_x[start : start + block]
        dest = tmp[: src.size]
        if run(src, dest):
            overflow += count_overflow(src, dest, cin, cout)
        _copy_kernel(dest, flat_out[start : start + block])
    return overflow


# the output codecs whose overflows are counted; float64 outputs are not checked
_HAS_INF = ("float16", "bfloat16", "float32")


def is_overflow(codec, v, y):
    """True when a finite input value v ended as an infinite encoded output y
    (branch-free, so the loops that reduce it vectorise)."""


@overload(is_overflow, jit_options=JIT)
def _ov_is_overflow(codec, v, y):
    name = tag_name(codec, "codec")
    if name not in _HAS_INF:
        return lambda codec, v, y: False
    if name == "float32":
        return lambda codec, v, y: np.isinf(y) & np.isfinite(v)
    if name in ("float16", "bfloat16"):
        exp_mask = 0x7C00 if name == "float16" else 0x7F80

        def impl(codec, v, y):
            return ((y & 0x7FFF) == exp_mask) & np.isfinite(v)

        return impl
    raise TypingError(name)
