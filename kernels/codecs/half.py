"""16-bit float codecs (float16, bfloat16): held as their uint16 bit patterns,
widened to float32 for arithmetic, rounded back after every operation when
they are the compute dtype (float32's 24-bit significand is >= 2p + 2, so the
double rounding is innocuous for + - * / and sqrt).

Under a non-default :class:`~kernels.codecs.registry.Policy` (a rounding mode
other than nearest_even, or ``saturate=True``) both encode with the generic
integer-arithmetic rounding of :mod:`kernels.codecs._round` (one rounding from
float32 or float64, every mode; stochastic through ``encode_random``), and as
compute dtypes they hold values in float64 (``_round.compute_ops``).  The
default policy keeps the F16C / bit paths below.  NaN under a policy: a quiet
NaN keeping the sign, payload dropped (0x7E00 / 0x7FC0 with the sign bit);
the default path keeps the top payload bits.  ``saturate=True``: finite
overflow and +-inf give +-max (65504 / 3.39e38), NaN stays NaN."""

from __future__ import annotations

import numpy as np

from ._bits import (
    bf16_bits_to_f32,
    f16_bits_to_f32,
    f32_to_bf16_bits,
    f32_to_f16_bits,
    f64_to_f16_bits,
    round_to_odd_f32,
    sum_to_odd_f32,
    sum_to_odd_f64,
)
from ._round import Format, compute_ops, encoder
from .ops import encode, to_compute
from .registry import DEFAULT_POLICY, Family

_POS_INF = {"float16": 0x7C00, "bfloat16": 0x7F80}
FORMATS = {"float16": Format(5, 10, 15, "ieee", np.uint16), "bfloat16": Format(8, 7, 127, "ieee", np.uint16)}
_DECODE_BITS = {"float16": f16_bits_to_f32, "bfloat16": bf16_bits_to_f32}


class HalfFamily(Family):
    def counts_overflow(self, name, policy):
        return not policy.saturate

    def supports(self, name, policy):
        return True  # every rounding mode (stochastic in cast only), saturate or not

    def encode_policy(self, name, wide, policy):
        if policy.rounding == "stochastic":
            return None  # needs random bits: encode_random
        enc = encoder(FORMATS[name], policy)
        return lambda codec, v: enc(v, np.uint64(0))

    def encode_random(self, name, wide, policy):
        enc = encoder(FORMATS[name], policy)
        return lambda codec, v, u: enc(v, u)

    def _compute_ops(self, name, policy):
        if policy.rounding == "stochastic" or policy.saturate or policy == DEFAULT_POLICY:
            return (None,) * 5
        return compute_ops(encoder(FORMATS[name], policy), _DECODE_BITS[name])

    def decode(self, name):
        if name == "float16":
            return lambda codec, raw: f16_bits_to_f32(raw)
        return lambda codec, raw: bf16_bits_to_f32(raw)

    def encode(self, name, wide):
        if name == "float16":
            if wide:
                return lambda codec, v: f64_to_f16_bits(v)
            return lambda codec, v: f32_to_f16_bits(v)
        if wide:
            return lambda codec, v: f32_to_bf16_bits(round_to_odd_f32(v))
        return lambda codec, v: f32_to_bf16_bits(v)

    def to_compute(self, name):
        if name == "float16":
            return lambda codec, v: f16_bits_to_f32(encode(codec, v))
        return lambda codec, v: bf16_bits_to_f32(encode(codec, v))

    def rnd(self, name):
        if name == "float16":
            return lambda codec, v: f16_bits_to_f32(f32_to_f16_bits(v))
        return lambda codec, v: bf16_bits_to_f32(f32_to_bf16_bits(v))

    def fma_c(self, name):
        # the product is exact (float32 for float16, float64 for bfloat16); the
        # sum is rounded to odd (>= 2 extra bits), then once more correctly to 16 bits
        to_c = to_compute
        if name == "float16":
            # no float16 product leaves float32's normal range: TwoSum in float32 (16 SIMD lanes)
            return lambda codec, a, b, c: to_c(codec, sum_to_odd_f32(a * b, c))
        # bfloat16 has float32's exponent range, so its products need float64
        return lambda codec, a, b, c: to_c(codec, sum_to_odd_f64(np.float64(a) * np.float64(b), np.float64(c)))

    def order_key(self, name):
        def impl16(codec, raw):
            # sign-magnitude -> unsigned order in 16 bits (16 SIMD lanes):
            # positive patterns get the top bit set, negative ones are inverted
            return np.uint16(raw ^ (np.uint16(0x8000) | np.uint16(0) - (raw >> np.uint16(15))))

        return impl16

    def key_to_raw(self, name):
        def impl16(codec, k):
            u = np.uint16(k)
            return np.uint16(u ^ np.uint16(0x8000)) if u >= np.uint16(0x8000) else np.uint16(u ^ np.uint16(0xFFFF))

        return impl16

    def is_overflow(self, name):
        exp_mask = _POS_INF[name]

        def impl(codec, v, y):
            return ((y & 0x7FFF) == exp_mask) & np.isfinite(v)

        return impl

    def value_to_key_np(self, name, a):
        raw = a.view(np.uint16).astype(np.int64)
        return np.where(raw & 0x8000, raw ^ 0xFFFF, raw | 0x8000)

    def keys_to_values_np(self, name, k):
        return np.where(k >= 0x8000, k ^ 0x8000, k ^ 0xFFFF).astype(np.uint16)

    def key_range(self, name):
        pos_inf = _POS_INF[name]
        return np.uint16(pos_inf ^ 0xFFFF ^ 0x8000), np.uint16(pos_inf | 0x8000)  # keys of -inf, +inf

