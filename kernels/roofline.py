"""The memory roofline: copy and read probes of the same bytes (layer 0).

``roofline_fraction = (bytes_in + bytes_out) / copy_bandwidth / seconds``: a
kernel that moves its bytes as fast as the fastest probe scores 1.  The copy
bandwidth is the fastest of several probes moving the kernel's bytes, timed in
the same process and interleaved with the kernel (:func:`time_against_roofline`):

* ``prange copy``: a parallel copy, half the bytes read and half written;
* ``non-temporal copy``: a parallel copy whose stores are non-temporal
  (``vmovnt*`` on 64-byte vectors, from an LLVM store with ``!nontemporal``
  metadata): the written lines go to memory without first being read into the
  cache, so a copy moves its bytes and no more; the fastest probe on this
  machine, ahead of torch's ``copy_`` with 2 threads;
* ``threaded copyto``: ``np.copyto`` of each half from its own Python thread
  (numpy drops the GIL; glibc's ``memcpy`` streams large copies);

Every probe copies ``(bytes_in + bytes_out) / 2`` bytes, so it reads and writes
the kernel's total.  Two probes measured and dropped (issue 15, n = 5e7 float32
-> float16 bytes, 15 interleaved rounds, never the fastest): single-threaded
``np.copyto`` (11.6-12.3 ms against the non-temporal copy's 6.5-7.9 ms) and a
parallel pass reading ``bytes_in`` and writing ``bytes_out`` (46 ms: its
ordinary stores read every written line first).

The probe time and the kernel time are the best of the same number of
alternating rounds, so a change of load on a shared machine hits both.  A
kernel much faster than every probe means a probe was slowed (on a loaded
2-core machine a parallel pass waits whole scheduler ticks, 4 ms, for a core):
:func:`roofline_fraction` gives None above :data:`MAX_FRACTION`, never a figure.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from ._threads import launch
from .codecs import JIT

MAX_FRACTION = 1.3  # above this the probe, not the kernel, was measured: no figure
_BLOCK = 8192  # uint64 words per non-temporal copy block (64 KiB)
_VEC = 8  # uint64 words per non-temporal store (64 bytes: one cache line, one zmm register)


@njit(parallel=True, **JIT)
def copy_probe(src, dst):
    """The roofline: a parallel copy of src into dst (uint64 words)."""
    for i in prange(src.size):
        dst[i] = src[i]


@intrinsic
def _store_nt(typingctx, dst, src, i):
    """``dst[i:i+8] = src[i:i+8]`` (uint64 words) as one 64-byte load and one
    non-temporal store; ``dst``'s data at word ``i`` must be 64-byte aligned."""

    def codegen(context, builder, sig, args):
        d = context.make_array(sig.args[0])(context, builder, args[0])
        s = context.make_array(sig.args[1])(context, builder, args[1])
        vec = ir.VectorType(ir.IntType(64), _VEC).as_pointer()
        v = builder.load(builder.bitcast(builder.gep(s.data, [args[2]]), vec), align=8)
        st = builder.store(v, builder.bitcast(builder.gep(d.data, [args[2]]), vec), align=8 * _VEC)
        st.set_metadata("nontemporal", builder.module.add_metadata([ir.IntType(32)(1)]))
        return context.get_dummy_value()

    return types.void(dst, src, i), codegen


@njit(parallel=True, **JIT)
def _copy_nt(src, dst, nblocks):
    nv = src.size // _VEC
    for b in prange(nblocks):
        for v in range(b * nv // nblocks, (b + 1) * nv // nblocks):
            _store_nt(dst, src, v * _VEC)
    for i in range(nv * _VEC, src.size):
        dst[i] = src[i]


copy_probe_nt = _copy_nt  # its inspect_asm() shows the vmovnt* stores


def copy_nt(src: np.ndarray, dst: np.ndarray) -> None:
    """``dst[...] = src`` with non-temporal stores, in parallel (1-d contiguous
    uint64 arrays of one size; the words before ``dst``'s first 64-byte boundary
    are copied plainly)."""
    for name, a in (("src", src), ("dst", dst)):
        if a.dtype != np.uint64 or a.ndim != 1 or not a.flags.c_contiguous:
            raise TypeError(f"copy_nt: {name} must be a 1-d contiguous uint64 array, got {a.dtype} with shape {a.shape}")
    if src.size != dst.size:
        raise ValueError(f"copy_nt: src and dst differ in size ({src.size} and {dst.size}): pass arrays of one size")
    head = min((-dst.ctypes.data % 64) // 8, dst.size)
    dst[:head] = src[:head]
    _copy_nt(src[head:], dst[head:], max((src.size - head) // _BLOCK, 1))


def copyto_threads(src: np.ndarray, dst: np.ndarray, threads: int = 2) -> None:
    """``np.copyto(dst, src)`` in ``threads`` contiguous parts, each from its own
    Python thread (numpy releases the GIL for the copy)."""
    n = src.size
    parts = [(k * n // threads, (k + 1) * n // threads) for k in range(threads)]
    ts = [threading.Thread(target=np.copyto, args=(dst[a:b], src[a:b])) for a, b in parts[1:]]
    for t in ts:
        t.start()
    a, b = parts[0]
    np.copyto(dst[a:b], src[a:b])
    for t in ts:
        t.join()


def _aligned(n: int, fill=None) -> np.ndarray:
    """n uint64 words starting on a 64-byte boundary."""
    raw = np.empty(n + _VEC, np.uint64)
    off = (-raw.ctypes.data % 64) // 8
    a = raw[off : off + n]
    if fill is not None:
        a[...] = fill
    return a


@njit(parallel=True, **JIT)
def read_probe(src):
    """The read roofline: a parallel sum over uint64 words."""
    acc = np.uint64(0)
    for i in prange(src.size):
        acc += src[i]
    return acc


def _seconds(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def probes(bytes_in: int, bytes_out: int) -> dict:
    """{name: callable} of the copy probes for a kernel reading ``bytes_in`` and
    writing ``bytes_out`` (every probe moves ``bytes_in + bytes_out`` in total)."""
    launch()  # numba's threads start with the wait policy the kernels run with
    half = max((bytes_in + bytes_out) // 16, 1)
    a = _aligned(half, 1)  # touched: untouched pages read as the zero page
    b = _aligned(half)
    out = {
        "prange copy": lambda: copy_probe(a, b),
        "non-temporal copy": lambda: copy_nt(a, b),
        "threaded copyto": lambda: copyto_threads(a, b),
    }
    return out


def time_against_roofline(run, bytes_in: int, bytes_out: int, repeat: int = 3) -> tuple[float, float, str]:
    """(kernel seconds, probe seconds, probe name): ``run`` and every probe of
    :func:`probes` each warmed once, then timed in ``repeat`` alternating rounds;
    the best kernel time and the fastest probe's best time."""
    ps = probes(bytes_in, bytes_out)
    run()  # compiles, and faults in the output's pages
    for p in ps.values():
        p()
    best_k = np.inf
    best_p = dict.fromkeys(ps, np.inf)
    for _ in range(max(1, repeat)):
        best_k = min(best_k, _seconds(run))
        for name, p in ps.items():
            best_p[name] = min(best_p[name], _seconds(p))
    name = min(best_p, key=best_p.get)
    return best_k, best_p[name], name


def roofline_fraction(kernel_seconds: float, probe_seconds: float, probe: str = "copy probe") -> tuple[float | None, str | None]:
    """(fraction, None), or (None, why) when the fraction exceeds :data:`MAX_FRACTION`
    (the probe was slowed: a measurement error, not a result)."""
    if not (kernel_seconds > 0 and np.isfinite(kernel_seconds) and np.isfinite(probe_seconds)):
        return None, None
    frac = probe_seconds / kernel_seconds
    if frac <= MAX_FRACTION:
        return float(frac), None
    return None, (
        f"roofline fraction {frac:.2f} > {MAX_FRACTION}: the kernel ({kernel_seconds * 1e3:.3g} ms) beat the fastest "
        f"copy probe of the same bytes ({probe}, {probe_seconds * 1e3:.3g} ms), so the probe was slowed (load on a "
        "shared machine?): a measurement error, so roofline_fraction is None"
    )

