"""The formats of 8 bits and below, as ml_dtypes defines them: held as their
bit pattern in one byte, decoded by a 256-entry table built from the exact
values (:meth:`Format.value`), encoded by the generic integer-arithmetic
rounding of :mod:`kernels.codecs._round` (one rounding from float32 or float64).

===================  =====  ========  ============  ==============  ======================  ==========================
format               bits   max       smallest      NaN codes       overflow,               overflow and +-inf,
                                      subnormal                     ``saturate=False``      ``saturate=True``
===================  =====  ========  ============  ==============  ======================  ==========================
float8_e4m3fn        8      448       2**-9         0x7F, 0xFF      NaN (inf -> NaN)        +-448
float8_e5m2          8      57344     2**-16        0x7D-0x7F, ...  +-inf (inf -> inf)      +-57344
float8_e4m3fnuz      8      240       2**-10        0x80 only       NaN; -0 -> +0           +-240
float8_e5m2fnuz      8      57344     2**-17        0x80 only       NaN; -0 -> +0           +-57344
float6_e2m3fn        6      7.5       2**-3         none            +-7.5; NaN -> -+0       +-7.5
float6_e3m2fn        6      28        2**-4         none            +-28; NaN -> -+0        +-28
float4_e2m1fn        4      6         0.5           none            +-6; NaN -> -+0         +-6
float8_e8m0fnu       8      2**127    2**-127 (*)   0xFF            NaN                     2**127
===================  =====  ========  ============  ==============  ======================  ==========================

(*) e8m0 is the MX scale: unsigned powers of two, no zero, no subnormals;
zero, negatives and NaN encode to NaN, values below ``2**-127`` to ``2**-127``
(ml_dtypes' rules).  The MX element types (float6, float4) have neither NaN
nor inf: ml_dtypes saturates their overflow and inf, and encodes a NaN as the
zero of the opposite sign bit (what it does today; the OCP MX spec leaves it
to the implementation).  ``saturate=True`` is ONNX Cast's ``saturate``
(``clip`` to +-max, then cast: NaN stays NaN, +-inf -> +-max, for every
format).  Every deterministic rounding mode is exact (:mod:`._round`); ``stochastic``
(cast only) rounds up with probability the distance to the lower neighbour in quanta.

None of these is a compute dtype: no library does arithmetic in them (every
one computes in a wider type and casts), so neither does this project.
"""

from __future__ import annotations

import numpy as np

from ._bits import round_to_odd_f32
from ._round import Format, make_encoder, make_nearest_even_encoder
from .registry import DEFAULT_POLICY, Family

FORMATS: dict[str, Format] = {
    "float8_e4m3fn": Format(4, 3, 7, "fn"),
    "float8_e5m2": Format(5, 2, 15, "ieee"),
    "float8_e4m3fnuz": Format(4, 3, 8, "fnuz"),
    "float8_e5m2fnuz": Format(5, 2, 16, "fnuz"),
    "float6_e2m3fn": Format(2, 3, 1, "none"),
    "float6_e3m2fn": Format(3, 2, 3, "none"),
    "float4_e2m1fn": Format(2, 1, 1, "none"),
    "float8_e8m0fnu": Format(8, 0, 127, "e8m0"),
}

COMPUTE_REFUSAL = (
    "is a storage format, not a compute dtype: every library does its arithmetic in a wider type "
    "(float16, bfloat16 or float32) and casts; compute in one of those and cast to it"
)


def _table(fmt: Format) -> np.ndarray:
    """float32 value of every byte (bits above the format's width are ignored)."""
    t = fmt.decode_table()
    return t[np.arange(256) % fmt.ncodes]


def _order_keys(fmt: Format) -> np.ndarray:
    """The order key (uint8) of every code: value order, NaN codes outside the
    range of :meth:`MinifloatFamily.key_range`."""
    c = np.arange(fmt.ncodes)
    if fmt.special == "e8m0":
        return c.astype(np.uint8)
    s = fmt.sign_bit
    k = np.where(c & s, (2 * s - 1) - c, c | s)
    if fmt.special == "fnuz":  # the negative-zero code is NaN: below every value
        k = np.where(c == s, 0, np.where(c > s, 2 * s - c, c | s))
    return k.astype(np.uint8)


class MinifloatFamily(Family):
    """Every format of :data:`FORMATS`; per dtype the constants are closure values."""

    def __init__(self):
        self._tables = {n: _table(f) for n, f in FORMATS.items()}
        self._keys = {n: _order_keys(f) for n, f in FORMATS.items()}
        self._raws = {}
        for n, k in self._keys.items():
            raw = np.zeros(256, np.uint8)
            raw[k] = np.arange(k.size, dtype=np.uint8)
            self._raws[n] = raw
        self._encoders = {}

    def _encoder(self, name, policy):
        key = (name, policy)
        if key not in self._encoders:
            self._encoders[key] = make_nearest_even_encoder(FORMATS[name], policy.saturate)
        return self._encoders[key]

    def supports(self, name, policy):
        return True  # every rounding mode (stochastic needs an element index: cast only, encode_random)

    def compute_refusal(self, name):
        return COMPUTE_REFUSAL

    def counts_overflow(self, name, policy):
        return not policy.saturate and FORMATS[name].special != "none"

    def overflow_to(self, name):
        return "inf" if FORMATS[name].special == "ieee" else "NaN"

    def decode(self, name):
        table = self._tables[name]
        return lambda codec, raw: table[raw]

    def encode(self, name, wide):
        return self.encode_policy(name, wide, DEFAULT_POLICY)

    def encode_policy(self, name, wide, policy):
        if policy.rounding == "stochastic":
            return None  # needs random bits: encode_random
        fmt = FORMATS[name]
        if policy.rounding == "nearest_even" and fmt.special != "e8m0":
            fast = self._encoder(name, policy)
            if wide:  # round to odd into float32 first: the second rounding is then exact
                return lambda codec, v: fast(round_to_odd_f32(v))
            return lambda codec, v: fast(v)
        enc = make_encoder(fmt, policy.rounding, policy.saturate)
        return lambda codec, v: enc(v, np.uint64(0))

    def encode_random(self, name, wide, policy):
        enc = make_encoder(FORMATS[name], policy.rounding, policy.saturate)
        return lambda codec, v, u: enc(v, u)

    def order_key(self, name):
        keys = self._keys[name]
        return lambda codec, raw: keys[raw & np.uint8(keys.size - 1)]

    def key_to_raw(self, name):
        raws = self._raws[name]
        return lambda codec, k: raws[k]

    def is_overflow(self, name):
        # on the code's bits, not the decoded value: a table gather would keep the
        # cast loop scalar (measured 45 against 18 ms at 5e7 float32 values)
        fmt = FORMATS[name]
        nan_or_inf = {"fn": fmt.max_code + 1, "ieee": fmt.max_code + 1, "fnuz": fmt.sign_bit, "e8m0": 0xFF}[fmt.special]
        if fmt.special == "e8m0":  # zero and negatives are NaN too, but not an overflow
            return lambda codec, v, y: (v > 0) & np.isfinite(v) & (y == np.uint8(0xFF))
        if fmt.special == "fnuz":
            return lambda codec, v, y: np.isfinite(v) & (y == np.uint8(nan_or_inf))
        mag_mask = fmt.sign_bit - 1
        return lambda codec, v, y: np.isfinite(v) & ((y & np.uint8(mag_mask)) >= np.uint8(nan_or_inf))

    def value_to_key_np(self, name, a):
        keys = self._keys[name]
        return keys[a.view(np.uint8) & (keys.size - 1)].astype(np.int64)

    def keys_to_values_np(self, name, k):
        return self._raws[name][k]

    def key_range(self, name):
        fmt, keys = FORMATS[name], self._keys[name]
        hi = fmt.max_code + (fmt.special == "ieee")  # the code of +inf, or of +max
        lo = hi | fmt.sign_bit if fmt.signed else 0
        return np.uint8(keys[lo]), np.uint8(keys[hi])
