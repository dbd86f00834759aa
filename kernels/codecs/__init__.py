"""dtype registry and the Numba-callable codec of each dtype (layer 1).

One module per job: ``registry`` (the row type and the family interface),
``rows`` (the rows: adding a dtype is one there), one module per codec family
(``integer``: uint8/uint16/int8/int16, ``half``, ``ieee``), ``ops`` and ``dispatch`` (the generic
operations kernels call and their overloads), ``_bits`` (intrinsics and
rounding helpers) and ``cast`` (the cast kernels).

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
int8/16      round half to even, then saturate to [min, max] (-2.5 -> -2,
             -128.7 -> -128 in int8); NaN -> 0; -inf -> min, +inf -> max
===========  ==========================================================

float64 -> float16/bfloat16 rounds once: the float64 value is first rounded
*to odd* into float32 (24 bits >= 11 + 2 and >= 8 + 2), which makes the
following round-to-nearest-even exactly the correctly rounded result.  For
float16 the round-to-odd is three integer operations on the float64 bits
(``f64_to_f16_bits``); bfloat16, whose range reaches float32's subnormals,
uses ``round_to_odd_f32``.

Encoding policies (``cast(rounding=, saturate=, seed=)``): every float output
(float16, bfloat16, float32 from float64, the minifloats) takes every mode of
``ROUNDINGS`` through the generic integer-arithmetic encoder of ``_round``;
``stochastic`` draws 64 bits per element from splitmix64 of (seed, flat index)
(``_cast_kernel_random``, the one kernel that has the index).  The default
policy is the fast path above, untouched.  A compute codec under a
deterministic mode (``transform(rounding=)``) holds values in float64 and
rounds each operation once in that mode (``_round.compute_ops``).

Compute codecs: float16/bfloat16 *arithmetic* is emulated by float32 operations
rounded to the 16-bit format after every operation (float32's 24-bit
significand is >= 2p + 2, so the double rounding is innocuous for + - * / and
sqrt); ``rnd`` is that rounding.
"""

from __future__ import annotations

from .._jit import JIT
from ._bits import (
    F16C,
    bf16_bits_to_f32,
    f16_bits_to_f32,
    f32_bits,
    f32_from_bits,
    f32_to_bf16_bits,
    f32_to_f16_bits,
    f64_bits,
    f64_from_bits,
    f64_to_f16_bits,
    fma,
    lrint32,
    maxnum,
    minnum,
    rint,
    round_to_odd_f32,
    sum_to_odd_f32,
    sum_to_odd_f64,
    target_has,
)
from .cast import IN_PLACE_BLOCK, _cast_kernel, _cast_kernel_random, _copy_kernel, count_overflow, write_counting_overflow
from .dispatch import arith_type, counts_overflow, key_range, key_to_value, keys_to_values, value_to_key
from .ops import (
    add_c,
    as_arith,
    decode,
    encode,
    encode_u,
    fma_c,
    is_overflow,
    key_is_nan,
    key_to_raw,
    order_key,
    rnd,
    sub_c,
    to_compute,
    to_compute_from,
)
from .registry import (
    DEFAULT_POLICY,
    INT_ROUNDINGS,
    ROUNDING_TABLE,
    ROUNDINGS,
    DType,
    Family,
    Policy,
    encoding_tag,
    float_rounding,
    int_rounding,
    parse_tag_name,
)
from .rows import COMPUTE_DTYPES, EXACT_IN, REGISTRY, as_storage, lookup, supported

__all__ = [
    "JIT",
    "F16C",
    "bf16_bits_to_f32",
    "f16_bits_to_f32",
    "f32_bits",
    "f32_from_bits",
    "f32_to_bf16_bits",
    "f32_to_f16_bits",
    "f64_bits",
    "f64_from_bits",
    "f64_to_f16_bits",
    "fma",
    "lrint32",
    "maxnum",
    "minnum",
    "rint",
    "round_to_odd_f32",
    "sum_to_odd_f32",
    "sum_to_odd_f64",
    "target_has",
    "IN_PLACE_BLOCK",
    "_cast_kernel",
    "_cast_kernel_random",
    "_copy_kernel",
    "count_overflow",
    "write_counting_overflow",
    "arith_type",
    "counts_overflow",
    "key_range",
    "key_to_value",
    "keys_to_values",
    "value_to_key",
    "add_c",
    "as_arith",
    "decode",
    "encode",
    "encode_u",
    "fma_c",
    "is_overflow",
    "key_is_nan",
    "key_to_raw",
    "order_key",
    "rnd",
    "sub_c",
    "to_compute",
    "to_compute_from",
    "DEFAULT_POLICY",
    "ROUNDINGS",
    "ROUNDING_TABLE",
    "INT_ROUNDINGS",
    "float_rounding",
    "int_rounding",
    "DType",
    "Family",
    "Policy",
    "encoding_tag",
    "parse_tag_name",
    "COMPUTE_DTYPES",
    "EXACT_IN",
    "REGISTRY",
    "as_storage",
    "lookup",
    "supported",
]
