"""The registry's rows.  Adding a dtype is a row here, in its family."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from .half import HalfFamily
from .ieee import IeeeFamily
from .integer import IntegerFamily
from .minifloat import FORMATS, MinifloatFamily
from .registry import DType, holds_exactly, row

_INTEGER = IntegerFamily(("uint8", "uint16", "int8", "int16"))
_HALF = HalfFamily()
_IEEE = IeeeFamily()
_MINIFLOAT = MinifloatFamily()

REGISTRY: dict[str, DType] = {
    r.name: r
    for r in (
        row("uint8", np.uint8, np.uint8, _INTEGER),
        row("uint16", np.uint16, np.uint16, _INTEGER),
        row("int8", np.int8, np.int8, _INTEGER),
        row("int16", np.int16, np.int16, _INTEGER),
        row("float16", np.float16, np.uint16, _HALF, can_compute=True),
        row("bfloat16", ml_dtypes.bfloat16, np.uint16, _HALF, can_compute=True),
        row("float32", np.float32, np.float32, _IEEE, can_compute=True),
        row("float64", np.float64, np.float64, _IEEE, can_compute=True),
        *(row(name, getattr(ml_dtypes, name), np.uint8, _MINIFLOAT) for name in FORMATS),
    )
}
COMPUTE_DTYPES = tuple(n for n, r in REGISTRY.items() if r.can_compute)

# input dtype -> compute dtypes that hold every one of its values exactly
EXACT_IN = {n: tuple(c for c in COMPUTE_DTYPES if holds_exactly(r, REGISTRY[c])) for n, r in REGISTRY.items()}


def supported() -> str:
    return ", ".join(REGISTRY)


def lookup(dtype, argument: str = "dtype") -> DType:
    """Registry row for a dtype given by name, numpy dtype, scalar type or array.

    Raises TypeError naming ``argument`` and listing the supported dtypes.
    """
    if isinstance(dtype, DType):
        return dtype
    if isinstance(dtype, str) and dtype in REGISTRY:
        return REGISTRY[dtype]
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:
        np_dtype = None
    if np_dtype is not None:
        for r in REGISTRY.values():
            if r.dtype == np_dtype:
                return r
    raise TypeError(f"{argument}={dtype!r} is not supported; use one of: {supported()}")


def as_storage(a: np.ndarray, r: DType) -> np.ndarray:
    """View an array as the bit patterns the kernels read and write."""
    return a.view(r.storage)
