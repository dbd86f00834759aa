"""How kernels compile and run in parallel (layer 0).

Kernels are compiled once each, serially (``@njit(**JIT)``, ``nogil=True``),
and :func:`chunked` runs one over slices of its arrays on numba's threads
(``numba.get_num_threads()``, so ``NUMBA_NUM_THREADS`` and
``numba.set_num_threads`` apply), the slices handed out one at a time to
whichever thread is free.  Two measured reasons, both on this 2-core machine
(issue 15):

* compile time, which a user's first call pays: a ``parallel=True`` compile of
  the transform kernel took 1.1-1.6 s against 0.5 s serially (the parfor passes
  and the gufunc wrapper), and a fresh install compiles every specialisation
  it touches;
* noise: ``prange`` splits the loop evenly over the threads once, so when a
  neighbour slows one core the call waits for the slow half; slices taken from
  a shared counter let the fast thread take more.

=================================  ===========================================
input                              runs
=================================  ===========================================
at most :data:`SERIAL_MAX` elems   the kernel on the calling thread, whole
larger                             ``threads * SLICES_PER_THREAD`` slices (each
                                   at least :data:`MIN_SLICE` elements, a
                                   multiple of ``align``), dynamic
=================================  ===========================================

A slice is a contiguous view, so every element sees the same operations as in
one pass: the same bits.  Reductions combine per-slice results in slice order
(exact ones: max, min, integer sums; float partials keep their own fixed
chunking inside the kernel, see :mod:`kernels.stats`).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import get_num_threads

# error_model="numpy": float division by zero gives inf/NaN as IEEE says (the default
# "python" model raises ZeroDivisionError and adds a test to every division)
JIT = dict(cache=True, fastmath=False, nogil=True, error_model="numpy")

SERIAL_MAX = 1 << 16  # elements: a thread hand-off costs more than this many take
MIN_SLICE = 1 << 15  # elements per slice at least
SLICES_PER_THREAD = 4  # enough for the fast thread to take over a slowed one's share

_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE < workers:
            old = _POOL
            _POOL, _POOL_SIZE = ThreadPoolExecutor(workers, thread_name_prefix="precision-bench"), workers
            if old is not None:
                old.shutdown(wait=False)
        return _POOL


def bounds(n: int, align: int = 1, threads: int | None = None) -> np.ndarray:
    """Slice boundaries over ``[0, n)``: multiples of ``align`` but the last (module table)."""
    threads = get_num_threads() if threads is None else threads
    if n <= SERIAL_MAX or threads <= 1:
        return np.array([0, n], np.int64)
    nslices = int(max(1, min(threads * SLICES_PER_THREAD, n // MIN_SLICE)))
    b = np.linspace(0, n, nslices + 1).astype(np.int64)
    b = (b // align) * align
    b[-1] = n
    return np.unique(b)


def chunked(run, n: int, align: int = 1) -> list:
    """``[run(start, stop) for each slice]`` of :func:`bounds`, in slice order,
    the slices run on numba's thread count (the calling thread is one of them).
    ``run`` should call a ``nogil`` kernel on views ``a[start:stop]``."""
    b = bounds(n, align)
    nslices = b.size - 1
    if nslices == 1:
        return [run(0, n)]
    results = [None] * nslices
    taken = iter(range(nslices))
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                k = next(taken, None)
            if k is None:
                return
            results[k] = run(int(b[k]), int(b[k + 1]))

    helpers = min(get_num_threads(), nslices) - 1
    futures = [_pool(helpers).submit(work) for _ in range(helpers)]
    try:
        work()
    finally:
        for f in futures:
            f.result()  # waits; re-raises a helper's exception
    return results


def chunked_max(run, n: int, align: int = 1):
    """:func:`chunked`, then the largest result (overflow flags)."""
    return max(chunked(run, n, align))


class Kernel:
    """A serial ``nogil`` kernel whose first ``split`` arguments are arrays of one
    length, sliced together and run by :func:`chunked`; ``combine`` reduces the
    per-slice results (in slice order), ``align(args)`` gives the slice multiple.
    Calling it runs it; ``dispatcher`` is the numba dispatcher (``.stats``,
    ``.signatures``, ``.inspect_asm`` pass through to it)."""

    def __init__(self, fn, split: int = 2, combine=None, align=None):
        from numba import njit

        self.dispatcher = njit(**JIT)(fn)
        self.split, self.combine, self.align = split, combine, align
        self.__doc__, self.__name__, self.__qualname__ = fn.__doc__, fn.__name__, fn.__qualname__
        self.__module__ = fn.__module__

    def __call__(self, *args):
        n = args[0].size
        if n <= SERIAL_MAX or get_num_threads() <= 1:
            return self.dispatcher(*args)
        k, disp = self.split, self.dispatcher
        rest = args[k:]
        results = chunked(lambda a, b: disp(*(arr[a:b] for arr in args[:k]), *rest), n,
                          1 if self.align is None else int(self.align(args)))
        return None if self.combine is None else self.combine(results)

    def __getattr__(self, name):
        return getattr(self.dispatcher, name)

    def __reduce__(self):  # pickled by reference, as numba's dispatchers are
        return f"{self.__module__}.{self.__qualname__}"


def kernel(fn=None, *, split: int = 2, combine=None, align=None):
    """Decorator: a :class:`Kernel` (``@kernel`` or ``@kernel(split=..., combine=..., align=...)``)."""
    if fn is None:
        return lambda f: Kernel(f, split, combine, align)
    return Kernel(fn, split, combine, align)
