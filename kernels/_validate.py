"""Argument checks shared by the public wrappers; kernels assume valid input."""

from __future__ import annotations

import numbers
import operator

import numpy as np

from .codecs import DType, lookup, supported


def check_array(x, argument: str = "x") -> tuple[np.ndarray, DType]:
    """Return (native-order C-contiguous array, registry row); never modifies ``x``.

    Non-contiguous and byte-swapped (big-endian) arrays are copied (the result
    is the same as for a native contiguous copy); ndarray subclasses are viewed
    as plain arrays; masked arrays, 0-d and empty arrays are refused.
    """
    if isinstance(x, np.ma.MaskedArray):
        # the kernels read the data under the mask: refuse rather than ignore it
        raise TypeError(
            f"{argument} is a numpy.ma.MaskedArray, whose mask the kernels cannot honour; pass "
            f"{argument}.compressed() (the unmasked values) or {argument}.filled(np.nan) with nan_policy='omit'"
        )
    if not isinstance(x, np.ndarray):
        if isinstance(x, (str, bytes)) or x is None:
            raise TypeError(f"{argument} must be a numpy array, got {type(x).__name__}")
        x = np.asarray(x)
    elif type(x) is not np.ndarray:
        x = np.asarray(x)  # np.matrix, memmap, ...: the same memory as a plain array
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    row = lookup(x.dtype, f"{argument}.dtype")
    if x.ndim == 0:
        raise ValueError(f"{argument} is 0-d; pass an array with at least one dimension (np.atleast_1d)")
    if x.size == 0:
        raise ValueError(f"{argument} is empty (shape {x.shape}); pass at least one element")
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    return x, row


def check_dtype(dtype, argument: str) -> DType:
    """Registry row of a dtype argument: None and non-native byte orders are named."""
    if dtype is None:
        raise TypeError(f"{argument}=None: pass a dtype, one of: {supported()}")
    try:
        np_dtype = None if isinstance(dtype, DType) else np.dtype(dtype)
    except TypeError:
        np_dtype = None
    if np_dtype is not None and not np_dtype.isnative:
        raise TypeError(
            f"{argument}={dtype!r} is a non-native (byte-swapped) byte order; the kernels write native "
            f"order: pass {argument}={np_dtype.newbyteorder('=').name!r} and byte-swap the result "
            f"(.astype({np_dtype.str!r})) if a file format needs it"
        )
    return lookup(dtype, argument)


def default_out_dtype(in_row: DType) -> str:
    """The output dtype when none is given: see the table in :mod:`kernels.transforms`."""
    return "float64" if in_row.name == "float64" else "float32"


def check_int(value, argument: str, minimum: int) -> int:
    """A Python/numpy integer (not bool) >= minimum."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{argument}={value!r} must be an integer, not a bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{argument}={value!r} must be an integer (got {type(value).__name__})") from None
    if value < minimum:
        raise ValueError(f"{argument}={value!r} must be at least {minimum}")
    return value


def check_real(value, argument: str) -> float:
    """One real number (Python or numpy scalar, or a 0-d array; not bool or str) as a float."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        shape = f" of shape {value.shape}" if isinstance(value, np.ndarray) else ""
        raise TypeError(f"{argument}={value!r} must be one real number, got {type(value).__name__}{shape}")
    return float(value)


def check_reals(value, argument: str, nfeat: int) -> np.ndarray:
    """One real number, or one per feature (``nfeat``), as float64 of shape (nfeat,)."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{argument}={value!r} must be a number or one number per feature")
    a = np.asarray(value)
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{argument}={value!r} must be a number or one number per feature (dtype {a.dtype})")
    if a.ndim > 1 or a.size not in (1, nfeat):
        raise ValueError(
            f"{argument} has shape {a.shape}; pass one number or {nfeat} (one per feature, fitted with axis=)"
        )
    return np.broadcast_to(a.astype(np.float64).reshape(-1), (nfeat,)).copy()


def check_out(out, shape, row: DType, x: np.ndarray) -> np.ndarray:
    """Validate a user-supplied ``out=`` array, or allocate one."""
    if out is None:
        return np.empty(shape, dtype=row.dtype)
    if not isinstance(out, np.ndarray) or isinstance(out, np.ma.MaskedArray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if not out.dtype.isnative and out.dtype.newbyteorder("=") == row.dtype:
        raise TypeError(f"out.dtype is {out.dtype.str} (byte-swapped); the kernels write native order: "
                        f"allocate out with dtype={row.name!r}")
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
