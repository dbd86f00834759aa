"""Bit-level building blocks of the codecs: LLVM intrinsics (half conversions,
bit casts, fma, min/max, rint) and the scalar rounding helpers every codec
family uses (round to odd, float16/bfloat16 from float32/float64, saturation)."""

from __future__ import annotations

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

from .._jit import JIT
from .._tags import tag_name

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
