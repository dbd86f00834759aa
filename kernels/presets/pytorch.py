"""PyTorch's own arithmetic as presets: ``Tensor.to``, and an elementwise
normalisation evaluated eagerly or under ``torch.compile`` (torch 2.13, CPU).

The rules here (how a cast rounds, where a Python scalar is rounded) are also
the building blocks of the torchvision and timm presets, which run on torch.

What torch 2.13 does on the CPU, measured by tests/test_presets_torch.py:

* ``Tensor.to``: float -> float rounds to nearest even, but float64 -> float16
  or bfloat16 goes through float32 (``c10::Half``/``c10::BFloat16`` are built
  from a float): two roundings.  float -> uint8/uint16 truncates toward zero
  (out of range is undefined in C++; x86 wraps modulo 2**bits).  int -> float is
  exact or one rounding (uint16 65520.. -> float16 inf).  uint16 -> uint8 wraps.
* A float16/bfloat16 tensor with a Python scalar: ``*`` and ``/`` compute in
  float32 with the scalar rounded to float32 (``original_scalar_value<opmath_t>``)
  and round the result once to the tensor's dtype; ``+`` and ``-`` first round
  the scalar to the tensor's dtype (the ufunc ``scalar_t`` path), then compute.
* ``torch.compile`` (inductor, C++ backend) fuses ``(x.to(d) - m) / s`` into
  float32 arithmetic on the *input* converted straight to float32 (the
  intermediate ``.to(d)`` rounding is elided: ``emulate_precision_casts`` is
  off by default) and rounds once into ``d`` at the end; ``/`` stays a true
  division.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..program import Op
from ._base import REQUIRED, Built, Preset, affine

TORCH_VERSION = "torch 2.13.0 (CPU)"
DTYPES = ("uint8", "uint16", "float16", "bfloat16", "float32", "float64")
FLOATS = ("float16", "bfloat16", "float32", "float64")
LOW = ("float16", "bfloat16")  # torch's reduced floating types: arithmetic in float32 "opmath"
INT_MAX = {"uint8": 255, "uint16": 65535}


# --------------------------------------------------------------------------
# option validation (shared by the torch, torchvision and timm presets)
# --------------------------------------------------------------------------


def check_options(name: str, defaults: Mapping, given: Mapping) -> dict:
    """Defaults filled in; unknown or missing options raise, naming the valid ones."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {', '.join(unknown)}; valid options: {', '.join(defaults)}")
    out = {k: given.get(k, v) for k, v in defaults.items()}
    missing = [k for k, v in out.items() if v is REQUIRED]
    if missing:
        raise TypeError(f"{name}: missing required option(s) {', '.join(missing)}; valid options: {', '.join(defaults)}")
    return out


def check_dtype_name(value, argument: str, choices=DTYPES) -> str:
    if not isinstance(value, str) or value not in choices:
        raise TypeError(f"{argument}={value!r} is not supported; use one of: {', '.join(choices)}")
    return value


def check_bool(value, argument: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{argument}={value!r} must be True or False")
    return bool(value)


def check_floats(value, argument: str, *, scalar_only: bool = False) -> tuple:
    """A Python float (or int) or a non-empty tuple/list of them: a tuple of floats."""
    seq = value if isinstance(value, (tuple, list)) and not scalar_only else (value,)
    if not seq or not all(isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) for v in seq):
        kind = "a Python float" if scalar_only else "a float or a non-empty tuple of floats (one per channel)"
        raise TypeError(f"{argument}={value!r} must be {kind}")
    out = tuple(float(v) for v in seq)
    if not all(np.isfinite(out)):
        raise ValueError(f"{argument}={value!r} must be finite")
    return out


def check_lengths(*named) -> None:
    """Per-channel tuples broadcast like torch: each has one value or the common count."""
    n = {len(v) for _, v in named} - {1}
    if len(n) > 1:
        raise ValueError("per-channel " + " and ".join(f"{k} ({len(v)} values)" for k, v in named) + " differ in length")


# --------------------------------------------------------------------------
# torch's rounding rules as ops
# --------------------------------------------------------------------------


def tensor_const(values, dtype: str) -> np.ndarray:
    """Python floats as ``torch.tensor(values, dtype=dtype)`` holds them (float64 array).

    torch stores a Python float into float16/bfloat16 through float32 (double
    rounding); the op then rounds the float32 value once more, exactly as torch."""
    v = np.asarray(values, np.float64)
    return v.astype(np.float32).astype(np.float64) if dtype in LOW + ("float32",) else v


def to_ops(src: str, dst: str) -> list:
    """``Tensor.to(dst)`` on a ``src`` tensor."""
    if src == dst:
        return []
    if dst in INT_MAX:
        if src in INT_MAX:  # uint16 -> uint8 keeps the low byte (C++ unsigned conversion); uint8 -> uint16 exact
            return [Op("int", dst, rounding="toward_zero", overflow="wrap")]
        # float -> unsigned: C++ static_cast truncates; out of range is undefined (x86: wraps)
        return [Op("int", dst, rounding="toward_zero", overflow="wrap")]
    if src == "float64" and dst in LOW:
        return [Op("round", "float32"), Op("round", dst)]  # c10::Half(float(double)): two roundings
    return [Op("round", dst)]


def scalar_ops(kind: str, dtype: str, c: float) -> list:
    """``tensor <kind> python_scalar`` on a ``dtype`` tensor, eager CPU."""
    if dtype not in LOW:
        return [Op(kind, dtype, (c,))]
    if kind in ("add", "sub"):  # the scalar is rounded to the tensor dtype first (double -> float -> half)
        return [Op(kind, dtype, (tensor_const(c, dtype),))]
    return [Op(kind, "float32", (c,)), Op("round", dtype)]  # scalar kept in float32 opmath


# --------------------------------------------------------------------------
# presets
# --------------------------------------------------------------------------

_TO_OPTIONS = {"dtype": REQUIRED}


def _build_to(in_dtype, stats=None, **options):
    o = check_options("torch.to", _TO_OPTIONS, options)
    dst = check_dtype_name(o["dtype"], "dtype")
    src = check_dtype_name(in_dtype, "in_dtype")
    return Built(tuple(to_ops(src, dst)), dst, dst if dst in FLOATS else src)


def _ideal_to(stats=None, **options):
    check_options("torch.to", _TO_OPTIONS, options)
    return (affine(1),)


_EXPR_OPTIONS = {"dtype": REQUIRED, "mean": REQUIRED, "std": REQUIRED}


def _expr_options(name, options):
    o = check_options(name, _EXPR_OPTIONS, options)
    dtype = check_dtype_name(o["dtype"], "dtype", FLOATS)
    (mean,) = check_floats(o["mean"], "mean", scalar_only=True)
    (std,) = check_floats(o["std"], "std", scalar_only=True)
    if std == 0:
        raise ValueError(f"{name}: std must be nonzero")
    return dtype, mean, std


def _build_eager(in_dtype, stats=None, **options):
    dtype, mean, std = _expr_options("torch.eager", options)
    src = check_dtype_name(in_dtype, "in_dtype")
    ops = to_ops(src, dtype) + scalar_ops("sub", dtype, mean) + scalar_ops("div", dtype, std)
    return Built(tuple(ops), dtype, "float32" if dtype in LOW else dtype)


def _build_compile(in_dtype, stats=None, **options):
    dtype, mean, std = _expr_options("torch.compile", options)
    check_dtype_name(in_dtype, "in_dtype")
    # inductor loads the input straight into its compute type (float32 for the
    # 16-bit floats; the .to(dtype) rounding is elided), fuses, rounds once at the end
    cd = "float32" if dtype in LOW else dtype
    ops = [Op("round", cd), Op("sub", cd, (mean,)), Op("div", cd, (std,))]
    if cd != dtype:
        ops.append(Op("round", dtype))
    return Built(tuple(ops), dtype, cd)


def _ideal_expr(name):
    def ideal(stats=None, **options):
        _, mean, std = _expr_options(name, options)
        from fractions import Fraction

        m, s = Fraction(mean), Fraction(std)
        return (affine(1 / s, -m / s),)

    return ideal


PRESETS = [
    Preset(
        name="torch.to",
        library="torch",
        verified=f"{TORCH_VERSION}: bit for bit against Tensor.to on every code / float data",
        source="aten/src/ATen/native/cpu/CopyKernel.cpp, c10/util/Half.h, c10/util/BFloat16.h (torch 2.13.0)",
        summary="Tensor.to(dtype): float->float RNE (float64->16-bit via float32), float->uint truncation, int->float exact/RNE",
        options=_TO_OPTIONS,
        build=_build_to,
        ideal=_ideal_to,
    ),
    Preset(
        name="torch.eager",
        library="torch",
        verified=f"{TORCH_VERSION}: bit for bit against eager (x.to(dtype) - mean) / std",
        source="aten/src/ATen/native/cpu/BinaryOpsKernel.cpp (div_true_kernel: float32 opmath scalar), "
        "ufunc add codegen (scalar_t scalar) (torch 2.13.0)",
        summary="(x.to(dtype) - mean) / std eagerly: each op rounds to dtype; 16-bit: '-' rounds the scalar to dtype, '/' keeps it float32",
        options=_EXPR_OPTIONS,
        build=_build_eager,
        ideal=_ideal_expr("torch.eager"),
    ),
    Preset(
        name="torch.compile",
        library="torch",
        verified=f"{TORCH_VERSION}: bit for bit against torch.compile (inductor C++ backend, gcc) of the same expression",
        source="torch/_inductor/config.py emulate_precision_casts=False; inductor cpp codegen (torch 2.13.0)",
        summary="(x.to(dtype) - mean) / std under torch.compile: fused in float32 from the raw input, one rounding to dtype",
        options=_EXPR_OPTIONS,
        build=_build_compile,
        ideal=_ideal_expr("torch.compile"),
    ),
]
