"""Argument checks shared by the public wrappers; kernels assume valid input."""

from __future__ import annotations

import numpy as np

from .codecs import DType, lookup


def check_array(x, argument: str = "x") -> tuple[np.ndarray, DType]:
    """Return (C-contiguous array, registry row); never modifies ``x``.

    Non-contiguous arrays are copied (the result is the same as for a
    contiguous copy); 0-d and empty arrays are refused.
    """
    if not isinstance(x, np.ndarray):
        if isinstance(x, (str, bytes)) or x is None:
            raise TypeError(f"{argument} must be a numpy array, got {type(x).__name__}")
        x = np.asarray(x)
    row = lookup(x.dtype, f"{argument}.dtype")
    if x.ndim == 0:
        raise ValueError(f"{argument} is 0-d; pass an array with at least one dimension (np.atleast_1d)")
    if x.size == 0:
        raise ValueError(f"{argument} is empty (shape {x.shape}); pass at least one element")
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    return x, row


def check_out(out, shape, row: DType, x: np.ndarray) -> np.ndarray:
    """Validate a user-supplied ``out=`` array, or allocate one."""
    if out is None:
        return np.empty(shape, dtype=row.dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.dtype != row.dtype:
        raise TypeError(f"out.dtype is {out.dtype}, expected {row.name}; allocate it with dtype={row.name!r}")
    if out.shape != tuple(shape):
        raise ValueError(f"out.shape is {out.shape}, expected {tuple(shape)}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writeable C-contiguous array (np.empty(shape, dtype))")
    exact_alias = (
        out.__array_interface__["data"][0] == x.__array_interface__["data"][0]
        and out.dtype.itemsize == x.dtype.itemsize
    )
    if np.shares_memory(out, x) and not exact_alias:
        raise ValueError("out overlaps x partially; pass a separate array or x itself")
    return out


def check_choice(value, choices, argument: str) -> str:
    if value not in choices:
        raise ValueError(f"{argument}={value!r} is not one of: {', '.join(map(str, choices))}")
    return value
