"""16-bit float codecs (float16, bfloat16): held as their uint16 bit patterns,
widened to float32 for arithmetic, rounded back after every operation when
they are the compute dtype (float32's 24-bit significand is >= 2p + 2, so the
double rounding is innocuous for + - * / and sqrt)."""

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
from .ops import encode, to_compute
from .registry import Family

_POS_INF = {"float16": 0x7C00, "bfloat16": 0x7F80}


class HalfFamily(Family):
    def counts_overflow(self, name, policy):
        return True

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

