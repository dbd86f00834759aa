"""`cast`: a parallel, correctly rounded conversion between any two registry dtypes."""

from __future__ import annotations

import warnings

import numpy as np

from ._threads import serialised
from ._validate import check_array, check_dtype, check_out
from .codecs import (
    Policy,
    _cast_kernel,
    _cast_kernel_random,
    _copy_kernel,
    as_storage,
    encoding_tag,
    float_rounding,
    write_counting_overflow,
)
from .codecs._round import seed_key


def check_policy(row, rounding, saturate, argument="output_dtype") -> Policy:
    """The encoding policy of ``rounding``/``saturate`` for registry row ``row``, or a
    ValueError naming the valid choices (TypeError for a non-bool ``saturate``)."""
    rounding = float_rounding(rounding)  # either spelling of codecs.ROUNDING_TABLE
    if not isinstance(saturate, (bool, np.bool_)):
        raise TypeError(f"saturate={saturate!r} must be True or False")
    policy = Policy(rounding, bool(saturate))
    if not row.family.supports(row.name, policy):
        what = ", ".join(f"{k}={v!r}" for k, v in (("rounding", rounding), ("saturate", bool(saturate))))
        raise ValueError(f"{argument}={row.name!r} has no encoding with {what}")
    return policy


def check_seed(seed, rounding) -> int:
    """The seed of a stochastic rounding (0 when None); TypeError for a non-integer,
    ValueError outside [0, 2**64) or given with a deterministic rounding mode."""
    if seed is None:
        return 0
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed={seed!r} must be an int in [0, 2**64), e.g. seed=0")
    if not 0 <= int(seed) < 1 << 64:
        raise ValueError(f"seed={seed!r} is outside [0, 2**64); pass a non-negative 64-bit integer")
    if rounding != "stochastic":
        raise ValueError(f"seed= only applies to rounding='stochastic' (rounding={rounding!r} uses no random bits); "
                         "drop seed= or pass rounding='stochastic'")
    return int(seed)


@serialised
def cast(x, output_dtype, *, out=None, rounding="nearest_even", saturate=False, seed=None) -> np.ndarray:
    """Convert ``x`` to ``output_dtype`` in one parallel pass.

    Semantics (see :mod:`kernels.codecs` for the full table):

    - into float16 / bfloat16 / float32: round to nearest, ties to even, in one
      step (float64 -> float16 is *not* double-rounded through float32); values
      past the largest finite become +-inf with a ``RuntimeWarning`` as numpy's
      cast gives; NaN stays NaN.
    - into uint8 / uint16: round half to even, then saturate to [0, max];
      NaN -> 0, so negative values (int8 -5 too) become 0.  (numpy's ``astype``
      wraps or is undefined there.)
    - into int8 / int16: round half to even, then saturate to [min, max]
      (-2.5 -> -2, -128.7 -> -128 in int8); NaN -> 0.
    - float16 / bfloat16 / integers into float32 / float64: exact (and 8-bit
      integers into float16 / bfloat16).
    - into x's own dtype: a copy of the bits (NaN payloads included), as ``astype``.

    ``rounding`` (one of ``codecs.ROUNDINGS``, or its integer spelling in
    ``codecs.ROUNDING_TABLE``: ``half_even``, ``ceil``, ``floor``, ``half_away``)
    and ``saturate`` (overflow to +-max instead of the format's own overflow) choose the encoding policy; a dtype
    without that policy is a ValueError.  Every float output (float16, bfloat16,
    float32 from float64, the float8/6/4 formats) takes every mode; integers
    only the default.  The directed modes (``toward_zero``, ``up``, ``down``)
    overflow to +-max on the side they round toward zero, as IEEE 754 says.

    ``rounding="stochastic"`` rounds an inexact value up (in magnitude) with
    probability its distance to the lower neighbour in quanta (CPFloat's mode 5,
    pychop's rmode 5), from 64 random bits per element that are a hash of
    ``seed`` and the element's flat index (splitmix64, ``codecs._round.random_bits``):
    the same ``seed`` gives the same bits on any number of threads; ``seed``
    defaults to 0 (``seed=None``), so a call is reproducible unless a seed is
    chosen; pass a different seed per call (or per chunk of a larger array, whose
    indices restart at 0) for independent roundings.  ``seed`` with a
    deterministic mode is a ValueError, a non-integer seed a TypeError.

    ``output_dtype`` (the keyword of :func:`kernels.transform` and :func:`kernels.measure`)
    is required (None is a TypeError).  ``x`` is never modified; ``out`` (C-contiguous, of ``output_dtype`` and ``x``'s
    shape) receives the result when given and is returned.

    A ``dask.array.Array`` gives a dask array of the same bits, block by block
    (:func:`kernels.dask_array.cast`).
    """
    if type(x).__module__.startswith("dask."):  # a dask array of the casts, block by block
        from .dask_array import cast as cast_dask

        return cast_dask(x, output_dtype, out=out, rounding=rounding, saturate=saturate, seed=seed)
    x, row_in = check_array(x)
    if output_dtype is None:
        raise TypeError("cast(x, output_dtype) needs a dtype (None is not one), e.g. cast(x, 'float16')")
    row_out = check_dtype(output_dtype, "output_dtype")
    policy = check_policy(row_out, rounding, saturate)
    rounding = policy.rounding
    key = seed_key(check_seed(seed, rounding))
    tag_out = encoding_tag(row_out, policy)
    out = check_out(out, x.shape, row_out, x)
    flat_x, flat_out = as_storage(x, row_in).reshape(-1), as_storage(out, row_out).reshape(-1)
    if row_in is row_out:
        _copy_kernel(flat_x, flat_out)
        return out
    if rounding == "stochastic":
        base, size = flat_x.__array_interface__["data"][0], flat_x.itemsize

        def run(src, dest):  # src is flat_x or a block of it (in place): its index offset
            offset = (src.__array_interface__["data"][0] - base) // size
            return _cast_kernel_random(src, dest, row_in.tag, tag_out, key, np.int64(offset))
    else:

        def run(src, dest):
            return _cast_kernel(src, dest, row_in.tag, tag_out)

    overflow = write_counting_overflow(run, flat_x, flat_out, row_in.tag, tag_out)
    if overflow:
        warnings.warn(
            f"overflow in cast to {row_out.name}: {overflow} finite value(s) of x exceed "
            f"{row_out.max:g} and became {row_out.family.overflow_to(row_out.name)}",
            RuntimeWarning,
            stacklevel=2,
        )
    return out
