"""Numba overloads of the codec operations (``ops``): each asks the codec's
registry row for its family's implementation, at compile time.  Also the
numpy-side views of the order keys."""

from __future__ import annotations

import numpy as np
from numba.core import types
from numba.core.errors import TypingError
from numba.extending import overload

from .._jit import JIT
from .._tags import tag_name
from . import ops
from .rows import EXACT_IN, REGISTRY


def _row(codec, operation):
    name = tag_name(codec, "codec")
    if name not in REGISTRY:
        raise TypingError(f"no {operation} for {name}")
    return REGISTRY[name]


def _compute_row(codec):
    r = _row(codec, "compute")
    if not r.can_compute:
        raise TypingError(f"{r.name} is not a compute dtype")
    return r


def arith_type(name: str):
    return types.float64 if name == "float64" else types.float32


@overload(ops.decode, jit_options=JIT)
def _ov_decode(codec, raw):
    r = _row(codec, "decode")
    return r.family.decode(r.name)


@overload(ops.encode, jit_options=JIT)
def _ov_encode(codec, v):
    r = _row(codec, "encode")
    return r.family.encode(r.name, v == types.float64)


@overload(ops.to_compute, jit_options=JIT)
def _ov_to_compute(codec, v):
    r = _compute_row(codec)
    return r.family.to_compute(r.name)


@overload(ops.to_compute_from, jit_options=JIT)
def _ov_to_compute_from(cin, codec, v):
    if tag_name(codec, "codec") in EXACT_IN[tag_name(cin, "codec")]:
        return lambda cin, codec, v: ops.as_arith(codec, v)
    return lambda cin, codec, v: ops.to_compute(codec, v)


@overload(ops.rnd, jit_options=JIT)
def _ov_rnd(codec, v):
    r = _compute_row(codec)
    return r.family.rnd(r.name)


@overload(ops.as_arith, jit_options=JIT)
def _ov_as_arith(codec, v):
    if tag_name(codec, "codec") == "float64":
        return lambda codec, v: np.float64(v)
    return lambda codec, v: np.float32(v)


@overload(ops.fma_c, jit_options=JIT)
def _ov_fma_c(codec, a, b, c):
    r = _compute_row(codec)
    return r.family.fma_c(r.name)


@overload(ops.order_key, jit_options=JIT)
def _ov_order_key(codec, raw):
    r = _row(codec, "order_key")
    return r.family.order_key(r.name)


@overload(ops.key_to_raw, jit_options=JIT)
def _ov_key_to_raw(codec, k):
    r = _row(codec, "key_to_raw")
    return r.family.key_to_raw(r.name)


@overload(ops.key_is_nan, jit_options=JIT)
def _ov_key_is_nan(codec, k, kneg, kpos):
    r = _row(codec, "key_is_nan")
    return r.family.key_is_nan(r.name)


@overload(ops.is_overflow, jit_options=JIT)
def _ov_is_overflow(codec, v, y):
    r = _row(codec, "is_overflow")
    if not r.family.counts_overflow(r.name):
        return lambda codec, v, y: False
    return r.family.is_overflow(r.name)


def value_to_key(name: str, values) -> np.ndarray:
    """order_key of values already in dtype ``name`` (numpy), as int64."""
    r = REGISTRY[name]
    return r.family.value_to_key_np(name, np.asarray(values, dtype=r.dtype))


def key_range(name: str):
    """(key of -inf, key of +inf) in the key's integer type: keys outside are NaN.
    For integer codecs, the bounds of the key type (no value lies outside)."""
    return REGISTRY[name].family.key_range(name)


def keys_to_values(name: str, keys) -> np.ndarray:
    """Inverse of order_key on arrays: the values (numpy, in dtype ``name``) of int keys."""
    r = REGISTRY[name]
    return r.family.keys_to_values_np(name, np.asarray(keys, dtype=np.int64)).view(r.dtype)


def key_to_value(name: str, keys: np.ndarray) -> np.ndarray:
    """Inverse of order_key, as float64 values."""
    return keys_to_values(name, keys).astype(np.float64)
