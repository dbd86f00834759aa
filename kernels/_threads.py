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
"""

from __future__ import annotations

import functools
import threading

_LOCK = threading.RLock()
_needed: bool | None = None  # None: numba has not chosen its layer yet

# requests that can never resolve to workqueue (numba raises if they cannot load)
_SAFE_REQUESTS = ("tbb", "omp", "safe", "threadsafe")


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
        if not lock_needed():
            return fn(*args, **kwargs)
        with _LOCK:
            return fn(*args, **kwargs)

    return call
