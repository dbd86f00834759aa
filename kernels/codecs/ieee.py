"""float32 and float64: held and computed as themselves (numpy's rounding).

float32 outputs from float64 inputs under a non-default policy (every rounding
mode, ``saturate``) go through the generic rounding of :mod:`._round` on a
uint32 pattern (NaN: the quiet NaN 0x7FC00000 with the sign); inputs that
float32 holds exactly (float32 itself, the 16-bit and smaller formats, the
integers) need no rounding in any mode.  float32 *compute* under a rounding
mode holds values in float64 (``_round.compute_ops``); float64 has no such
emulation (no wider type), so it refuses every policy."""

from __future__ import annotations

import numpy as np

from ._bits import f32_bits, f32_from_bits, f64_bits, f64_from_bits, fma
from ._round import Format, compute_ops, encoder
from .registry import DEFAULT_POLICY, Family

_POS_INF = {"float32": 0x7F800000, "float64": 0x7FF0000000000000}
FLOAT32 = Format(8, 23, 127, "ieee", np.uint32)


class IeeeFamily(Family):
    def counts_overflow(self, name, policy):
        return name == "float32" and not policy.saturate  # float64 outputs are not checked

    def supports(self, name, policy):
        return name == "float32" or policy == DEFAULT_POLICY

    def encode_policy(self, name, wide, policy):
        if name != "float32" or policy.rounding == "stochastic":
            return None
        if not wide:
            return lambda codec, v: np.float32(v)  # exact: nothing to round
        enc = encoder(FLOAT32, policy)
        return lambda codec, v: f32_from_bits(enc(v, np.uint64(0)))

    def encode_random(self, name, wide, policy):
        if name != "float32":
            return None
        if not wide:
            return lambda codec, v, u: np.float32(v)
        enc = encoder(FLOAT32, policy)
        return lambda codec, v, u: f32_from_bits(enc(v, u))

    def _compute_ops(self, name, policy):
        if name != "float32" or policy.rounding == "stochastic" or policy.saturate or policy == DEFAULT_POLICY:
            return (None,) * 5
        return compute_ops(encoder(FLOAT32, policy), f32_from_bits)

    def decode(self, name):
        if name == "float64":
            return lambda codec, raw: raw
        return lambda codec, raw: np.float32(raw)

    def encode(self, name, wide):
        if name == "float64":
            return lambda codec, v: np.float64(v)
        return lambda codec, v: np.float32(v)

    def to_compute(self, name):
        return self.encode(name, False)

    def rnd(self, name):
        return lambda codec, v: v

    def fma_c(self, name):
        return lambda codec, a, b, c: fma(a, b, c)

    def order_key(self, name):
        if name == "float32":

            def impl32(codec, raw):
                b = np.int32(f32_bits(raw))
                return np.int32(b ^ ((b >> np.int32(31)) & np.int32(0x7FFFFFFF)))

            return impl32

        def impl64(codec, raw):
            b = np.int64(f64_bits(raw))
            return np.int64(b ^ ((b >> np.int64(63)) & np.int64(0x7FFFFFFFFFFFFFFF)))

        return impl64

    def key_to_raw(self, name):
        if name == "float32":

            def impl32(codec, k):
                b = np.int32(k)
                return f32_from_bits(np.uint32(b ^ ((b >> np.int32(31)) & np.int32(0x7FFFFFFF))))

            return impl32

        def impl64(codec, k):
            b = np.int64(k)
            return f64_from_bits(np.uint64(b ^ ((b >> np.int64(63)) & np.int64(0x7FFFFFFFFFFFFFFF))))

        return impl64

    def is_overflow(self, name):
        if name == "float64":
            return lambda codec, v, y: False
        return lambda codec, v, y: np.isinf(y) & np.isfinite(v)

    def value_to_key_np(self, name, a):
        if name == "float32":
            b = a.view(np.int32).astype(np.int64)
            return np.where(b < 0, b ^ 0x7FFFFFFF, b)
        b = a.view(np.int64)
        return np.where(b < 0, b ^ 0x7FFFFFFFFFFFFFFF, b)

    def keys_to_values_np(self, name, k):
        if name == "float32":
            k32 = k.astype(np.int32)
            return (k32 ^ ((k32 >> 31) & 0x7FFFFFFF)).view(np.float32)
        return (k ^ ((k >> 63) & 0x7FFFFFFFFFFFFFFF)).view(np.float64)

    def key_range(self, name):
        pos_inf = _POS_INF[name]
        kt = np.int64 if name == "float64" else np.int32
        return kt(-pos_inf - 1), kt(pos_inf)
