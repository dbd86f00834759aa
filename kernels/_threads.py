"""Concurrent calls from Python threads: serialise kernel launches when numba's
threading layer cannot take them.

numba's ``workqueue`` layer (its fallback when neither TBB nor OpenMP loads) is
not thread-safe: two threads launching ``parallel=True`` kernels at once abort
the process (SIGABRT).  ``omp`` and ``tbb`` are thread-safe.  Every public entry
point that launches a parallel kernel is decorated with :func:`serialised`,
which holds one process-wide re-entrant lock around the call while the active
layer is ``workqueue`` (re-entrant: ``transform`` calls ``fit``, ``measure``
calls both).  Until the first parallel launch numba has not chosen a layer, so
a request that may resolve to ``workqueue`` locks until the choice is known.

The wait policy (why our times varied more than OpenCV's).  numba's ``omp``
layer runs on libgomp, whose workers by default *spin* for a while after each
parallel region (libgomp's default: ``GOMP_SPINCOUNT`` 300,000 spins before
sleeping).  On a 2-core machine a spinning worker holds a core that the next
call, another library (OpenCV's pool, torch) or a neighbouring process needs.
Measured (issue 15, uint8 -> float32 minmax apply, n = 5e7, out= given, 15
rounds interleaved with cv2.normalize, alternate processes, other jobs on the
machine): default policy, median 32-34 ms next to cv2's 26-27 ms; passive,
14.7-16.3 ms next to cv2's 14.9-15.2 ms; with ``yes`` pinned to core 0, 52-53 ms
default against 28-43 ms passive.  The cost: a sleeping worker takes longer to
wake, about 15-30 us more a call on 10^3-10^5 elements (72 against 59 us, 112
against 80 us).  Chunk sizes (``numba.set_parallel_chunksize`` 2^16, 2^20,
2^22) made no difference the noise did not swamp; the ``workqueue`` layer ran
as steadily as passive ``omp`` (medians 11.5-12 ms, 14-18 ms with the hog) but
is not thread-safe; TBB is not installed.  Bits are unchanged: only scheduling
differs.
libgomp reads the policy once, when it is loaded, so :func:`launch` loads
numba's threading layer with ``OMP_WAIT_POLICY=passive`` in the environment
(unless the user set ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``), then restores
the environment, so child processes and libraries loaded later see the user's.
Every :func:`serialised` entry point and the roofline probes call it first.  If
another library loaded libgomp first, the policy is the one it was loaded with.
"""

from __future__ import annotations

import functools
import os
import threading

_LOCK = threading.RLock()
_needed: bool | None = None  # None: numba has not chosen its layer yet

# requests that can never resolve to workqueue (numba raises if they cannot load)
_SAFE_REQUESTS = ("tbb", "omp", "safe", "threadsafe")
_launched = False


def launch() -> None:
    """Start numba's threading layer with libgomp's passive wait policy (see the
    module doc); idempotent, cheap after the first call."""
    global _launched
    if _launched:
        return
    with _LOCK:
        if _launched:
            return
        from numba.np.ufunc import parallel

        user = any(k in os.environ for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"))
        if not user:
            os.environ["OMP_WAIT_POLICY"] = "passive"
        try:
            parallel._launch_threads()
        finally:
            if not user:
                os.environ.pop("OMP_WAIT_POLICY", None)
        _launched = True


def lock_needed() -> bool:
    """Whether kernel launches must be serialised in this process."""
    global _needed
    if _needed is not None:
        return _needed
    # imported here, not at the top: a module importing numba at top level joins
    # the kernel-cache hash (kernels._cache), and this one holds no kernel
    import numba

    try:
        _needed = numba.threading_layer() == "workqueue"  # fixed for the process once chosen
        return _needed
    except ValueError:  # no parallel launch yet
        return str(numba.config.THREADING_LAYER).lower() not in _SAFE_REQUESTS


def serialised(fn):
    """Decorate a public function that launches parallel kernels (see the module doc)."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if _needed is False:  # the common case: one global read, no lock
            return fn(*args, **kwargs)
        launch()
        if not lock_needed():
            return fn(*args, **kwargs)
        with _LOCK:
            return fn(*args, **kwargs)

    return call
