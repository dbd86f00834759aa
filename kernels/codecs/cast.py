"""The cast kernels: a copy, one rounding per element, and the overflow count."""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import kernel
from ._round import random_bits
from .ops import decode, encode, encode_u, is_overflow
from .dispatch import counts_overflow


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
def _cast_kernel_random(x, out, cin, cout, key, offset):
    """``_cast_kernel`` for a stochastic policy: element ``i`` rounds with the random
    bits ``random_bits(key, offset + i)``, a function of the seed's key and the
    element's flat index alone (not of threads or blocks)."""
    overflowed = np.uint8(0)
    for i in prange(x.size):
        v = decode(cin, x[i])
        y = encode_u(cout, v, random_bits(key, offset + i))
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
    if not (in_place and counts_overflow(cout)):
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
