"""Integer codecs (uint8, uint16, int8, int16): held as themselves, decoded
exactly to float32, encoded by round half to even and saturation to the
dtype's range [min, max] (NaN -> 0).  A signed value is its own order key
(negative keys included); so is an unsigned one."""

from __future__ import annotations

import numpy as np
from numba.core import types
from numba.extending import overload

from .._jit import JIT
from ._bits import lrint32, maxnum, minnum
from .registry import Family


def _saturating(minval, maxval, int_type):
    """A Numba-callable float -> int_type cast: round half to even, clip to [minval, maxval]."""

    def saturate(v):
        raise NotImplementedError

    @overload(saturate, jit_options=JIT)
    def _ov(v):
        ftype = np.float64 if v == types.float64 else np.float32
        lo, hi = ftype(minval), ftype(maxval)  # constants of v's type: no float64 promotion

        zero = ftype(0)
        # clip first, then round: rint(clip(v)) == clip(rint(v)) because the bounds
        # are integers, and minval <= c <= maxval fits int32.  maxnum(NaN, lo) is lo:
        # 0 for unsigned dtypes, so NaN -> 0 costs nothing; signed ones select 0
        if minval == 0:

            def impl(v):
                return int_type(lrint32(minnum(maxnum(v, lo), hi)))

        else:

            def impl(v):
                c = minnum(maxnum(v, lo), hi)
                return int_type(lrint32(c if v == v else zero))

        return impl

    return saturate


class IntegerFamily(Family):
    """uint8, uint16, int8, int16: every value exact in float32; the raw value is its own order key."""

    def __init__(self, names):
        # one overloaded saturating cast per dtype, made at import (not while typing)
        self._saturate = {}
        for n in names:
            info = np.iinfo(np.dtype(n))
            self._saturate[n] = _saturating(int(info.min), int(info.max), np.dtype(n).type)

    def decode(self, name):
        return lambda codec, raw: np.float32(raw)

    def encode(self, name, wide):
        sat = self._saturate[name]
        return lambda codec, v: sat(v)

    def order_key(self, name):
        return lambda codec, raw: raw  # already ordered (signed too); narrow keys mean more SIMD lanes

    def key_to_raw(self, name):
        t = np.dtype(name).type
        return lambda codec, k: t(k)

    def key_is_nan(self, name):
        return lambda codec, k, kneg, kpos: False  # no NaN: no test emitted

    def value_to_key_np(self, name, a):
        return a.astype(np.int64)

    def keys_to_values_np(self, name, k):
        return k.astype(np.dtype(name))

    def key_range(self, name):
        # the bounds of the key type: no value lies outside
        t = np.dtype(name)
        info = np.iinfo(t)
        return t.type(info.min), t.type(info.max)
