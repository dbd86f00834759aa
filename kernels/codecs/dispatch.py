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
from .registry import DEFAULT_POLICY, parse_tag_name
from .rows import EXACT_IN, REGISTRY


def _row_policy(codec, operation):
    name, policy = parse_tag_name(tag_name(codec, "codec"))
    if name not in REGISTRY:
        raise TypingError(f"no {operation} for {name}")
    return REGISTRY[name], policy


def _row(codec, operation):
    """The row of a codec tag for an operation that ignores the encoding policy."""
    return _row_policy(codec, operation)[0]


def _compute_row(codec):
    r, policy = _row_policy(codec, "compute")
    if not r.can_compute:
        raise TypingError(f"{r.name} is not a compute dtype")
    return r, policy


def _unsupported(r, policy, operation):
    raise TypingError(f"{operation} of {r.name} has no {policy} implementation")


def arith_type(name: str):
    return types.float64 if name == "float64" else types.float32


@overload(ops.decode, jit_options=JIT)
def _ov_decode(codec, raw):
    r = _row(codec, "decode")
    return r.family.decode(r.name)


@overload(ops.encode, jit_options=JIT)
def _ov_encode(codec, v):
    r, policy = _row_policy(codec, "encode")
    if policy == DEFAULT_POLICY:
        return r.family.encode(r.name, v == types.float64)
    return r.family.encode_policy(r.name, v == types.float64, policy) or _unsupported(r, policy, "encode")


@overload(ops.encode_u, jit_options=JIT)
def _ov_encode_u(codec, v, u):
    r, policy = _row_policy(codec, "encode")
    return r.family.encode_random(r.name, v == types.float64, policy) or _unsupported(r, policy, "encode_u")


@overload(ops.to_compute, jit_options=JIT)
def _ov_to_compute(codec, v):
    r, policy = _compute_row(codec)
    if policy == DEFAULT_POLICY:
        return r.family.to_compute(r.name)
    return r.family.to_compute_policy(r.name, policy) or _unsupported(r, policy, "to_compute")


@overload(ops.to_compute_from, jit_options=JIT)
def _ov_to_compute_from(cin, codec, v):
    if _row(codec, "to_compute").name in EXACT_IN[_row(cin, "decode").name]:
        return lambda cin, codec, v: ops.as_arith(codec, v)
    return lambda cin, codec, v: ops.to_compute(codec, v)


@overload(ops.rnd, jit_options=JIT)
def _ov_rnd(codec, v):
    r, policy = _compute_row(codec)
    if policy == DEFAULT_POLICY:
        return r.family.rnd(r.name)
    return r.family.rnd_policy(r.name, policy) or _unsupported(r, policy, "rnd")


@overload(ops.add_c, jit_options=JIT)
def _ov_add_c(codec, a, b):
    r, policy = _compute_row(codec)
    if policy == DEFAULT_POLICY:
        return lambda codec, a, b: ops.rnd(codec, a + b)
    return r.family.add_c_policy(r.name, policy) or _unsupported(r, policy, "add_c")


@overload(ops.sub_c, jit_options=JIT)
def _ov_sub_c(codec, a, b):
    r, policy = _compute_row(codec)
    if policy == DEFAULT_POLICY:
        return lambda codec, a, b: ops.rnd(codec, a - b)
    return r.family.sub_c_policy(r.name, policy) or _unsupported(r, policy, "sub_c")


@overload(ops.as_arith, jit_options=JIT)
def _ov_as_arith(codec, v):
    r, policy = _row_policy(codec, "as_arith")
    # a compute codec under a rounding policy holds its values in float64 (see _round.compute_ops)
    if r.name == "float64" or policy != DEFAULT_POLICY:
        return lambda codec, v: np.float64(v)
    return lambda codec, v: np.float32(v)


@overload(ops.fma_c, jit_options=JIT)
def _ov_fma_c(codec, a, b, c):
    r, policy = _compute_row(codec)
    if policy == DEFAULT_POLICY:
        return r.family.fma_c(r.name)
    return r.family.fma_c_policy(r.name, policy) or _unsupported(r, policy, "fma_c")


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
    r, policy = _row_policy(codec, "is_overflow")
    if not r.family.counts_overflow(r.name, policy):
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


def counts_overflow(codec_tag) -> bool:
    """Whether encoding into this codec tag can turn a finite value into inf (so
    ``is_overflow`` is checked and counted)."""
    name, policy = parse_tag_name(codec_tag.name)
    return REGISTRY[name].family.counts_overflow(name, policy)
