"""`cast`: a parallel, correctly rounded conversion between any two registry dtypes."""

from __future__ import annotations

import warnings

import numpy as np

from ._threads import serialised
from ._validate import check_array, check_dtype, check_out
from .codecs import ROUNDINGS, Policy, _cast_kernel, _copy_kernel, as_storage, encoding_tag, write_counting_overflow


def check_policy(row, rounding, saturate, argument="output_dtype") -> Policy:
    """The encoding policy of ``rounding``/``saturate`` for registry row ``row``, or a
    ValueError naming the valid choices (TypeError for a non-bool ``saturate``)."""
    if not isinstance(rounding, str) or rounding not in ROUNDINGS:
        raise ValueError(f"rounding={rounding!r} is not a rounding mode; use one of: {', '.join(ROUNDINGS)}")
    if not isinstance(saturate, (bool, np.bool_)):
        raise TypeError(f"saturate={saturate!r} must be True or False")
    policy = Policy(rounding, bool(saturate))
    if not row.family.supports(row.name, policy):
        what = ", ".join(f"{k}={v!r}" for k, v in (("rounding", rounding), ("saturate", bool(saturate))))
        raise ValueError(f"{argument}={row.name!r} has no encoding with {what}")
    return policy


@serialised
def cast(x, output_dtype, *, out=None, rounding="nearest_even", saturate=False) -> np.ndarray:
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

    ``rounding`` (one of ``codecs.ROUNDINGS``) and ``saturate`` (overflow to +-max
    instead of the format's own overflow) choose the encoding policy; a dtype
    without that policy is a ValueError.

    ``output_dtype`` (the keyword of :func:`kernels.transform` and :func:`kernels.measure`)
    is required (None is a TypeError).  ``x`` is never modified; ``out`` (C-contiguous, of ``output_dtype`` and ``x``'s
    shape) receives the result when given and is returned.
    """
    x, row_in = check_array(x)
    if output_dtype is None:
        raise TypeError("cast(x, output_dtype) needs a dtype (None is not one), e.g. cast(x, 'float16')")
    row_out = check_dtype(output_dtype, "output_dtype")
    tag_out = encoding_tag(row_out, check_policy(row_out, rounding, saturate))
    out = check_out(out, x.shape, row_out, x)
    flat_x, flat_out = as_storage(x, row_in).reshape(-1), as_storage(out, row_out).reshape(-1)
    if row_in is row_out:
        _copy_kernel(flat_x, flat_out)
        return out
    overflow = write_counting_overflow(
        lambda src, dest: _cast_kernel(src, dest, row_in.tag, tag_out), flat_x, flat_out, row_in.tag, tag_out
    )
    if overflow:
        warnings.warn(
            f"overflow in cast to {row_out.name}: {overflow} finite value(s) of x exceed "
            f"{row_out.max:g} and became {row_out.family.overflow_to(row_out.name)}",
            RuntimeWarning,
            stacklevel=2,
        )
    return out
