"""How kernels compile (layer 0): one decorator, two compilations of one function.

A user's first call pays numba's compile time for every specialisation it
touches, and a ``parallel=True`` compile costs two to three times a serial one
(measured here: 1.1-1.6 s against 0.5 s for the transform kernel: the parfor
passes and the gufunc wrapper).  Small inputs gain nothing from threads: a
thread launch costs more than 65,536 elements take.  So :func:`kernel`
compiles the same Python function twice, lazily, each only when first needed:

==============================  ================================================
first argument's ``size``       runs
==============================  ================================================
<= :data:`SERIAL_MAX`           the serial compilation (``prange`` is ``range``):
                                the code tables of 8/16-bit inputs, a domain's
                                distinct values, small user arrays
> :data:`SERIAL_MAX`            the ``parallel=True`` compilation
==============================  ================================================

Same source, the same operations per element, so the same bits (a ``prange``
reduction here is exact: max, min, integer counts; floating-point partials are
per fixed chunk, see :mod:`kernels.accumulators`).  The serial twin is a copy of the
function under another ``__qualname__``, because numba's disk cache keys on the
name and not on the compile flags.

(Running serial kernels on slices from Python threads instead, which would
compile once, was measured and rejected: 5-25 % slower than ``prange`` on the
memory-bound casts and transforms at 5e7 elements, see issue 15's note.)
"""

from __future__ import annotations

import types as pytypes

from numba import njit

# error_model="numpy": float division by zero gives inf/NaN as IEEE says (the default
# "python" model raises ZeroDivisionError and adds a test to every division)
JIT = dict(cache=True, fastmath=False, nogil=True, error_model="numpy")

SERIAL_MAX = 1 << 16  # elements: at most this many run the serial compilation


def _twin(fn, suffix: str):
    """A copy of ``fn`` that numba caches under its own name."""
    twin = pytypes.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__)
    twin.__qualname__ = fn.__qualname__ + suffix
    twin.__module__ = fn.__module__
    twin.__doc__ = fn.__doc__
    return twin


class Kernel:
    """A kernel compiled serially for small inputs and in parallel for large ones
    (the module table); call it as the function.  ``serial`` and ``parallel`` are
    the two numba dispatchers; other attributes (``stats``, ``signatures``) are
    the parallel one's."""

    def __init__(self, fn, serial_max: int = SERIAL_MAX):
        self.parallel = njit(parallel=True, **JIT)(fn)
        self.serial = njit(**JIT)(_twin(fn, "__serial"))
        self.serial_max = serial_max
        self.__doc__, self.__name__, self.__qualname__ = fn.__doc__, fn.__name__, fn.__qualname__
        self.__module__ = fn.__module__

    def __call__(self, x, *args):
        return (self.serial if x.size <= self.serial_max else self.parallel)(x, *args)

    def __getattr__(self, name):
        return getattr(self.parallel, name)

    def __reduce__(self):  # pickled by reference, as numba's dispatchers are
        return f"{self.__module__}.{self.__qualname__}"


def kernel(fn=None, *, serial_max: int = SERIAL_MAX):
    """Decorator: a :class:`Kernel` (``@kernel`` or ``@kernel(serial_max=...)``)."""
    if fn is None:
        return lambda f: Kernel(f, serial_max)
    return Kernel(fn, serial_max)
