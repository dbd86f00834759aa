"""The memory roofline: parallel copy and read probes of the same bytes (layer 0).

``roofline_fraction = (bytes_in + bytes_out) / copy_bandwidth / seconds``: a
kernel that moves its bytes as fast as a plain parallel copy scores 1.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit, prange

from .codecs import JIT


@njit(parallel=True, **JIT)
def copy_probe(src, dst):
    """The roofline: a parallel copy of src into dst (uint64 words)."""
    for i in prange(src.size):
        dst[i] = src[i]


@njit(parallel=True, **JIT)
def read_probe(src):
    """The read roofline: a parallel sum over uint64 words."""
    acc = np.uint64(0)
    for i in prange(src.size):
        acc += src[i]
    return acc


def copy_seconds(nbytes: int, repeat: int = 5) -> float:
    """Best time of a parallel copy moving ``nbytes`` in total (half read, half written)."""
    src = np.ones(max(nbytes // 16, 1), np.uint64)
    dst = np.empty_like(src)
    copy_probe(src, dst)
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        copy_probe(src, dst)
        best = min(best, time.perf_counter() - t)
    return best
