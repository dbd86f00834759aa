"""jax.numpy preset (data only; jax is not imported here).

``jax.jit.normalize`` and ``jax.eager.normalize`` (mean, std, dtype) name the expression people write,
``(jnp.asarray(x).astype(dtype) - mean) / std``, on the CPU backend with
64-bit mode off (jax's default).  Read from jax 0.10.2 (``jax/_src/numpy/ufuncs.py``:
``true_divide`` is ``lax.div`` after ``promote_args_inexact``; every jnp ufunc is
itself jitted) and measured against it (tests/test_presets_jax_keras_alb.py):

- XLA's algebraic simplifier rewrites ``a / broadcast(b)`` into
  ``a * broadcast(1 / b)`` for float32 and float16, *eagerly too* (the jitted
  ufunc contains the broadcast), for a Python scalar and for a per-channel
  array alike; bfloat16 is left a true division.  So eager and ``jax.jit`` give
  the same bits and one preset serves both (both are tested).
- XLA:CPU flushes float32 subnormals (inputs read as zero, results written as
  zero): not modelled; the tests keep float32 data normal.
- With 64-bit mode off, ``dtype='float64'`` computes in float32 (jax warns) and
  a float64 input becomes float32 when it becomes a jax array.
- A Python float constant is weakly typed, and here eager and jit differ:
  under ``jax.jit`` it is rounded once into ``dtype``; eagerly it becomes a
  float32 array first and is then rounded into float16/bfloat16 (two roundings:
  ``1 + 2**-11 + 2**-30`` gives float16 1.0 eagerly, ``1 + 2**-10`` under jit).
  Hence two presets, ``jax.jit.normalize`` and ``jax.eager.normalize``.
  A per-channel tuple is taken as ``jnp.asarray(mean, dtype=dtype)`` (one
  rounding, both modes); ``jnp.asarray(mean)`` without a dtype is float32 and
  would promote a float16/bfloat16 result to float32 (jax's type promotion).
"""

from __future__ import annotations

import numbers
from fractions import Fraction

import numpy as np

from ..cast import cast
from ..program import Op
from ._base import REQUIRED, Built, Preset, affine

_IN_DTYPES = ("uint8", "uint16", "float16", "bfloat16", "float32", "float64")
_DTYPES = ("float16", "bfloat16", "float32", "float64")
# the dtypes XLA rewrites division by a broadcast into multiplication by its reciprocal
RECIPROCAL_DTYPES = ("float16", "float32")


def options(name: str, defaults: dict, given: dict) -> dict:
    """``defaults`` updated by ``given``; unknown or missing options are TypeErrors naming the valid ones."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise TypeError(f"{name}: unknown option(s) {', '.join(unknown)}; its options are: {', '.join(defaults)}")
    out = {**defaults, **given}
    missing = [k for k, v in out.items() if v is REQUIRED]
    if missing:
        raise TypeError(f"{name}: option(s) {', '.join(missing)} required (options: {', '.join(defaults)})")
    return out


def reals(value, argument: str, *, positive: bool = False) -> np.ndarray:
    """A finite real or a flat tuple of them (one per channel) as float64 of shape (n,)."""
    items = value if isinstance(value, (tuple, list, np.ndarray)) else (value,)
    items = list(np.asarray(items, dtype=object).reshape(-1)) if isinstance(items, np.ndarray) else list(items)
    if not items or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) for v in items):
        raise TypeError(f"{argument}={value!r} must be a real number or a tuple of them (one per channel)")
    a = np.array([float(v) for v in items], dtype=np.float64)
    if not np.isfinite(a).all() or (positive and not (a > 0).all()):
        raise ValueError(f"{argument}={value!r} must be finite{' and > 0' if positive else ''}")
    return a


def choice(value, choices, argument: str):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{argument}={value!r} is not one of: {', '.join(choices)}")
    return value


def in_dtype(value, valid, name: str) -> str:
    if value not in valid:
        raise ValueError(f"{name}: input dtype {value!r} is not modelled; valid input dtypes: {', '.join(valid)}")
    return value


def rounded(values: np.ndarray, dtype: str) -> np.ndarray:
    """float64 values rounded once into ``dtype`` (held exactly in float64)."""
    return cast(np.ascontiguousarray(values, dtype=np.float64), dtype).astype(np.float64)


def divide_ops(std: np.ndarray, dtype: str) -> Op:
    """``v / std`` as XLA evaluates it in ``dtype``: ``v * RN(1 / std)`` (float16, float32) or a true division.

    ``std`` is already a value of ``dtype``; 1/std in float64 then one rounding is the
    correctly rounded reciprocal (53 >= 2*24 + 2 bits: the double rounding is innocuous),
    which is what XLA's float32 (and float16-via-float32) division gives."""
    if dtype in RECIPROCAL_DTYPES:
        return Op("mul", dtype, (rounded(1.0 / std, dtype),))
    return Op("div", dtype, (std,))


_DEFAULTS = {"mean": REQUIRED, "std": REQUIRED, "dtype": "float32"}


def _is_scalar(value) -> bool:
    return not isinstance(value, (tuple, list, np.ndarray))


def _parse(opts: dict, name: str = "jax.jit.normalize"):
    o = options(name, _DEFAULTS, opts)
    mean, std = reals(o["mean"], "mean"), reals(o["std"], "std", positive=True)
    if mean.size != std.size and 1 not in (mean.size, std.size):
        raise ValueError(f"mean has {mean.size} values and std {std.size}: pass one, or one per channel each")
    dtype = choice(o["dtype"], _DTYPES, "dtype")
    return mean, std, dtype


def _constant(values, given, compute: str, eager: bool) -> np.ndarray:
    """A constant as jax rounds it into ``compute``: eagerly a Python float goes through float32 first."""
    if eager and _is_scalar(given):
        values = rounded(values, "float32")
    return rounded(values, compute)


def _builder(name: str, eager: bool):
    def build(in_dtype_: str, stats=None, **opts) -> Built:
        mean, std, dtype = _parse(opts, name)
        in_dtype(in_dtype_, _IN_DTYPES, name)
        compute = "float32" if dtype == "float64" else dtype  # 64-bit mode off
        ops = []
        if in_dtype_ == "float64":
            ops.append(Op("round", "float32"))  # jnp.asarray(x): float64 -> float32
        ops += [
            Op("round", compute),  # .astype(dtype)
            Op("sub", compute, (_constant(mean, opts["mean"], compute, eager),)),
            divide_ops(_constant(std, opts["std"], compute, eager), compute),
        ]
        return Built(tuple(ops), compute, compute)

    return build


def _ideal(stats=None, **opts):
    mean, std, _ = _parse(opts)
    return (affine(tuple(1 / Fraction(s) for s in std), tuple(-Fraction(m) / Fraction(s) for m, s in zip(
        np.broadcast_to(mean, max(mean.size, std.size)), np.broadcast_to(std, max(mean.size, std.size))))),)


PRESETS = [
    Preset(
        name=f"jax.{mode}.normalize",
        library="jax",
        verified=f"jax 0.10.2 CPU, {'eager' if mode == 'eager' else 'under jax.jit'}, bit for bit "
        "(tests/test_presets_jax_keras_alb.py)",
        source="jax 0.10.2 jax/_src/numpy/ufuncs.py (true_divide, subtract), XLA algebraic simplifier (measured)",
        summary="(x.astype(dtype) - mean) / std; XLA computes / std as * (1/std) in float16/float32, not bfloat16"
        + ("; a Python float constant is rounded to float32 first" if mode == "eager" else ""),
        options=_DEFAULTS,
        build=_builder(f"jax.{mode}.normalize", mode == "eager"),
        ideal=_ideal,
    )
    for mode in ("jit", "eager")
]
