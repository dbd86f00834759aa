"""ONNX presets: ``QuantizeLinear``, ``DequantizeLinear``, ``DynamicQuantizeLinear``.

Read from onnx 1.23.2's reference evaluator
(``onnx/reference/ops/op_quantize_linear.py``, ``op_dequantize_linear.py``,
``op_dynamic_quantize_linear.py``) and onnxruntime 1.32.0's CPU kernels
(``onnxruntime/core/providers/cpu/quantization/quantize_linear.cc``,
``dynamicquantizelinear.cc``, MLAS ``quantize.cpp``), and verified against both:

- QuantizeLinear: ``y = saturate(rint(x / y_scale) + y_zero_point)``, a float32
  *division* in both (onnxruntime's MLAS divides too: measured bit-identical,
  ties included).  Integer outputs ignore ``saturate`` (it is for float8).  The
  reference casts ``rint(x / s)`` to int32 before adding the zero point, so its
  result is undefined (numpy's cast) where ``|x / s| >= 2**31`` or NaN;
  onnxruntime clamps in float: +inf/huge -> qmax, -inf -> qmin, NaN -> qmin (0
  for uint8/uint16, -128 / -32768 for int8/int16; not the zero point).  The
  preset follows onnxruntime; both agree elsewhere.  Outputs uint8, uint16,
  int8, int16 (``output_dtype``, names or TensorProto numbers), zero points in
  the output type's range.
  For a float16 x onnxruntime divides in float32, the reference in float16 (the
  quotient rounded to float16 first): option ``evaluator`` ("onnxruntime", default,
  or "reference") picks one; measured counts of the difference are in the tests.
- QuantizeLinear to float8 (``float8_e4m3fn`` 17, ``float8_e4m3fnuz`` 18,
  ``float8_e5m2`` 19, ``float8_e5m2fnuz`` 20; opset 19+): ``y = cast(x / y_scale)``,
  the quotient in float32 (onnxruntime) or x's dtype (the reference), then one
  rounding to nearest even into the format; ``saturate=True`` (the default) is
  ``numpy_helper.saturate_cast``: ``clip(q, -max, max)`` first (+-inf -> +-max, NaN
  stays NaN); ``saturate=False`` is the format's own overflow (e4m3fn: NaN, e5m2:
  +-inf, fnuz: NaN).  The zero point is not added (the reference ignores it; the
  spec means it to be 0): only 0 is accepted.  onnxruntime 1.32.0 agrees with
  ``saturate=True`` everywhere; with ``saturate=False`` it departs from the spec at
  overflow (e4m3fn: quotients in [464, 512) give 448, e5m2: finite overflow gives
  NaN), measured in the tests, where the preset follows the reference.
- QuantizeLinear to float4 and float6 (``float4_e2m1fn``: TensorProto
  ``FLOAT4E2M1`` 23, opset 23+; ``float6_e2m3fn`` / ``float6_e3m2fn``:
  ``FLOAT6E2M3`` 27 / ``FLOAT6E3M2`` 28, opset 28 only, the newest of onnx
  1.23.2: opset 25's schema refuses them): the reference evaluator's
  ``(x / y_scale + zero_point).astype``, the quotient in x's dtype, the zero
  point (a 0 of the format) added in it (so -0.0 comes out +0.0), then one
  rounding to nearest even; these formats have no inf or NaN, so overflow and
  +-inf give +-max and ``saturate`` changes nothing (accepted, as ONNX does).
  onnxruntime 1.32.0 runs none of them (float4: NOT_IMPLEMENTED; float6: the
  type is not registered): on float32 x both evaluators would divide in
  float32; a float16 x needs ``evaluator="reference"``.  Any other format (e.g. ``float8_e8m0fnu``, a
  scale type) is refused with the valid output types.
- DequantizeLinear: ``(float32(x) - float32(zp)) * x_scale``, float32; x uint8,
  uint16, int8 or int16; from float8, float6 or float4: ``float32(x) * x_scale`` (zero point 0).
- DynamicQuantizeLinear (uint8): in float32, ``max = max(0, max x)``,
  ``min = min(0, min x)``, ``scale = (max == min ? 1 : max - min) / 255``,
  ``zp = rint(clip(0 - min / scale, 0, 255))`` (ties to even in both), then
  QuantizeLinear with them.  An all-zero x: onnxruntime's scale is 1.0, the
  reference's 1/255 (``evaluator`` option; y is all zero in both).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..codecs import lookup
from ..program import Op
from ._base import REQUIRED, Built, Exact, Preset, affine

VERSION = "onnx 1.23.2 (onnx.reference.ReferenceEvaluator) and onnxruntime 1.32.0 (CPUExecutionProvider)"
_SRC_Q = ("onnx/reference/ops/op_quantize_linear.py (onnx 1.23.2); onnxruntime "
          "core/providers/cpu/quantization/quantize_linear.cc + mlas/lib/quantize.cpp (1.32.0)")
_SRC_DQ = ("onnx/reference/ops/op_dequantize_linear.py (onnx 1.23.2); onnxruntime "
           "core/providers/cpu/quantization/quantize_linear.cc (1.32.0)")
_SRC_DYN = ("onnx/reference/ops/op_dynamic_quantize_linear.py (onnx 1.23.2); onnxruntime "
            "core/providers/cpu/quantization/dynamicquantizelinear.cc, core/util/qmath.h (1.32.0)")

# TensorProto data type numbers, so options may be given as ONNX integers too
_TENSOR_TYPES = {"uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "float8_e4m3fn": 17, "float8_e4m3fnuz": 18,
                 "float8_e5m2": 19, "float8_e5m2fnuz": 20, "float4_e2m1fn": 23, "float6_e2m3fn": 27,
                 "float6_e3m2fn": 28}
# the float8 types of QuantizeLinear / DequantizeLinear (opset 19+): zero point 0, ``saturate`` applies
FLOAT8 = ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz")
# float4 (opset 23+) and float6 (opset 28): zero point 0, no inf/NaN (overflow saturates)
FLOAT4_6 = ("float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn")
_MINIFLOAT = FLOAT8 + FLOAT4_6
# the quantized types this project's dtypes hold, and their ranges
_QUANT_OUT = {"uint8": (0, 255), "uint16": (0, 65535), "int8": (-128, 127), "int16": (-32768, 32767)}
_FLOAT_IN = ("float32", "float16")  # x dtypes QuantizeLinear takes that the project models


def _check_options(options: dict, valid: dict, op: str) -> dict:
    unknown = set(options) - set(valid)
    if unknown:
        raise ValueError(f"onnx.{op} has no option {', '.join(sorted(unknown))}; its options are: {', '.join(valid) or 'none'}")
    out = {**valid, **options}
    missing = [k for k, v in out.items() if v is REQUIRED]
    if missing:
        raise TypeError(f"onnx.{op} needs option(s): {', '.join(missing)}")
    return out


def _real(value, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{argument}={value!r} must be a real number (one value: per-tensor quantization)")
    return float(value)


def _scale(value, argument: str, dtype: str) -> float:
    s = float(np.asarray(_real(value, argument), dtype=np.float64).astype(dtype))
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"{argument}={value!r} must be a positive finite {dtype} (the op's result is undefined otherwise)")
    return s


def _qtype(value) -> str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = next((k for k, v in _TENSOR_TYPES.items() if v == int(value)), value)
    if isinstance(value, str) and (value in _QUANT_OUT or value in _MINIFLOAT):
        return value
    raise ValueError(f"output_dtype={value!r} is not a quantized type this project models; use one of: "
                     + ", ".join(f"{k} ({_TENSOR_TYPES[k]})" for k in (*_QUANT_OUT, *_MINIFLOAT)))


def _zero_point(value, qtype: str | None, argument: str) -> int:
    """An integer zero point in ``qtype``'s range (any quantized type's when None); 0 for float8 and float4."""
    if qtype in _MINIFLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)) or float(value) != 0:
            kind = "float8" if qtype in FLOAT8 else qtype
            raise ValueError(f"{argument}={value!r}: a {kind} zero point must be 0 (the spec's; the reference "
                             "evaluator ignores or refuses any other in DequantizeLinear)")
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)) or float(value) != int(value):
        raise TypeError(f"{argument}={value!r} must be an integer")
    lo, hi = _QUANT_OUT[qtype] if qtype else (-32768, 65535)
    if not lo <= int(value) <= hi:
        raise ValueError(f"{argument}={value!r} is outside {qtype or 'int16 and uint16'} [{lo}, {hi}]")
    return int(value)


_ONNX_TYPE = {**{f: f for f in _MINIFLOAT}, "uint8": "uint8", "uint16": "uint16", "int8": "int8", "int16": "int16", "float16": "float16", "bfloat16": "bfloat16",
              "float32": "float", "float64": "double"}
# x types each op's schema (opset 21) accepts, among the project's dtypes
_SCHEMA_X = {"QuantizeLinear": ("float32", "float16", "bfloat16"), "DequantizeLinear": ("uint8", "uint16", "int8", "int16", *_MINIFLOAT),
             "DynamicQuantizeLinear": ("float32",)}


def _x_type(in_dtype, op: str, modelled: tuple) -> str:
    """x's registry name: a type ONNX refuses is a TypeError with onnxruntime's message,
    a type it accepts but this project does not model a ValueError."""
    name = lookup(in_dtype, "in_dtype").name
    if name not in _SCHEMA_X[op]:
        raise TypeError(f"[ONNXRuntimeError] : 10 : INVALID_GRAPH : This is an invalid model. Type Error: Type "
                        f"'tensor({_ONNX_TYPE[name]})' of input parameter (x) of operator ({op}) in node () is invalid.")
    if name not in modelled:
        raise ValueError(f"onnx.{op}: x of type {name} is not modelled; use one of: {', '.join(modelled)}")
    return name


def _float_in(in_dtype, op: str) -> str:
    return _x_type(in_dtype, op, _FLOAT_IN if op == "QuantizeLinear" else ("float32",))


_RINT_C = 1.5 * 2.0**52  # RN64(q + C) - C is rint(q), ties to even, for |q| < 2**51 (NaN stays NaN)


EVALUATORS = ("onnxruntime", "reference")


def _evaluator(value) -> str:
    if value not in EVALUATORS:
        raise ValueError(f"evaluator={value!r} is not one of: {', '.join(EVALUATORS)}")
    return value


def _quantize_ops(x_dtype: str, scale: float, zp: int, qtype: str, evaluator: str = "onnxruntime") -> tuple:
    # the quotient in float32 (onnxruntime widens float16 to float32); then rint(q) *before*
    # the zero point is added (rint(q) + zp != rint(q + zp) at ties when zp is odd), done by
    # the float64 add/sub of 1.5 * 2**52 so NaN stays NaN until the saturating cast makes it
    # qmin (onnxruntime's NaN -> qmin: 0 for uint8, -128 for int8; not zp); |q| >= 2**51
    # saturates either way
    # the reference evaluator divides in x's dtype (numpy float16 / float16 rounds the quotient to float16)
    qdtype = x_dtype if evaluator == "reference" else "float32"
    return (
        Op("div", qdtype, (scale,)),
        Op("add", "float64", (_RINT_C,)),
        Op("sub", "float64", (_RINT_C,)),
        Op("add", "float64", (float(zp),)),
        Op("int", qtype, rounding="half_even", overflow="saturate_nan_min"),
    )


def _quantize_float8_ops(x_dtype: str, scale: float, qtype: str, saturate: bool, evaluator: str) -> tuple:
    # float8: the quotient (float32 in onnxruntime, x's dtype in the reference), clipped to
    # +-max when saturating (numpy_helper.saturate_cast: clip then astype), then one rounding
    # into the format by the output encoder; no zero point
    qdtype = x_dtype if evaluator == "reference" else "float32"
    fmax = float(lookup(qtype, "output_dtype").max)
    return (Op("div", qdtype, (scale,)),) + ((Op("clip", None, (-fmax, fmax)),) if saturate else ())


def _quantize_float4_6_ops(x_dtype: str, scale: float) -> tuple:
    # float4/float6: the reference's x / y_scale + zero_point (a 0 of the format: -0.0 -> +0.0)
    # in x's dtype, then one rounding by the output encoder (overflow, +-inf -> +-max)
    return (Op("div", x_dtype, (scale,)), Op("add", x_dtype, (0.0,)))


def _dequantize_built(scale: float, zp: int, x_dtype: str = "uint8") -> Built:
    if x_dtype in _MINIFLOAT:  # float32(x) * x_scale: float8/float4 -> float32 is exact
        return Built((Op("mul", "float32", (scale,)),), "float32", "float32")
    return Built((Op("sub", "float32", (float(zp),)), Op("mul", "float32", (scale,))), "float32", "float32")


# --------------------------------------------------------------------------
# QuantizeLinear
# --------------------------------------------------------------------------

# evaluator is not an ONNX attribute: onnxruntime and the reference evaluator differ for float16 x
_Q_OPTIONS = {"y_scale": REQUIRED, "y_zero_point": 0, "saturate": True, "output_dtype": "uint8", "evaluator": "onnxruntime"}


def _q_parse(options, x_dtype="float32"):
    o = _check_options(options, _Q_OPTIONS, "QuantizeLinear")
    if not isinstance(o["saturate"], (bool, np.bool_)):
        raise TypeError(f"saturate={o['saturate']!r} must be True or False")
    qtype = _qtype(o["output_dtype"])
    # y_scale has x's type (T1): a float16 x takes a float16 scale
    return (_scale(o["y_scale"], "y_scale", x_dtype), _zero_point(o["y_zero_point"], qtype, "y_zero_point"), qtype,
            _evaluator(o["evaluator"]))


def _q_build(in_dtype, stats=None, **options) -> Built:
    x_dtype = _float_in(in_dtype, "QuantizeLinear")
    scale, zp, qtype, ev = _q_parse(options, x_dtype)
    if qtype in FLOAT4_6:
        if ev == "onnxruntime" and x_dtype != "float32":
            raise ValueError(f"onnx.QuantizeLinear to {qtype} of {x_dtype} x: onnxruntime 1.32.0 has no such "
                             "QuantizeLinear kernel; give evaluator='reference' (the quotient in "
                             f"{x_dtype}, as onnx.reference computes it)")
        return Built(_quantize_float4_6_ops(x_dtype, scale), qtype, x_dtype, inverse=_dequantize_built(scale, 0, qtype))
    if qtype in FLOAT8:
        sat = bool(options.get("saturate", True))
        return Built(_quantize_float8_ops(x_dtype, scale, qtype, sat, ev), qtype,
                     x_dtype if ev == "reference" else "float32", inverse=_dequantize_built(scale, 0, qtype))
    return Built(_quantize_ops(x_dtype, scale, zp, qtype, ev), qtype, "float32", inverse=_dequantize_built(scale, zp))


def _q_ideal(exact_stats=None, **options):
    scale, zp, qtype, _ = _q_parse(options)
    if qtype in _MINIFLOAT:  # x / scale, clipped to +-max when saturating (float4/6: always; else the format's overflow)
        fmax = Fraction(float(lookup(qtype, "output_dtype").max))
        sat = (Exact("clip", (-fmax, fmax)),) if options.get("saturate", True) or qtype in FLOAT4_6 else ()
        return (affine(1 / Fraction(scale)),) + sat
    return (affine(1 / Fraction(scale), zp), Exact("clip", _QUANT_OUT[qtype]))


# --------------------------------------------------------------------------
# DequantizeLinear
# --------------------------------------------------------------------------

_DQ_OPTIONS = {"x_scale": REQUIRED, "x_zero_point": 0}


def _dq_parse(options, x_dtype=None):
    o = _check_options(options, _DQ_OPTIONS, "DequantizeLinear")
    return _scale(o["x_scale"], "x_scale", "float32"), _zero_point(o["x_zero_point"], x_dtype, "x_zero_point")


def _dq_build(in_dtype, stats=None, **options) -> Built:
    name = _x_type(in_dtype, "DequantizeLinear", (*_QUANT_OUT, *_MINIFLOAT))
    scale, zp = _dq_parse(options, name)
    return _dequantize_built(scale, zp, name)


def _dq_ideal(exact_stats=None, **options):
    scale, zp = _dq_parse(options)
    return (affine(Fraction(scale), -zp * Fraction(scale)),)


# --------------------------------------------------------------------------
# DynamicQuantizeLinear
# --------------------------------------------------------------------------


_DYN_OPTIONS = {"evaluator": "onnxruntime"}  # not an ONNX attribute; the two differ for an all-zero x


def _dyn_fit(x, **options) -> dict:
    """scale and zero point as ONNX computes them, every step in float32."""
    ev = _evaluator(_check_options(options, _DYN_OPTIONS, "DynamicQuantizeLinear")["evaluator"])
    x = np.asarray(x)
    _float_in(x.dtype, "DynamicQuantizeLinear")
    if x.size == 0:
        raise ValueError("onnx.DynamicQuantizeLinear of an empty tensor")
    if not np.isfinite(x).all():
        raise ValueError("onnx.DynamicQuantizeLinear: x has NaN or inf; its scale is undefined then")
    f32 = np.float32
    hi = np.maximum(f32(0), x.max())
    lo = np.minimum(f32(0), x.min())
    if hi == lo and ev == "onnxruntime":
        scale = f32(1)  # onnxruntime: max == min ? 1.0f : (max - min) / 255 (no division by 255)
    else:
        scale = (f32(1) if hi == lo else f32(hi - lo)) / f32(255)  # the reference: 1/255
    zp = np.rint(np.clip(f32(0) - lo / scale, f32(0), f32(255)))
    return {"scale": np.array([float(scale)]), "zero_point": np.array([float(zp)])}


def _dyn_fit_float64(x) -> dict:
    """The same statistics in float64 (scale then rounded to float32 by the op): the
    shortcut ONNX does *not* take; kept to measure how often it differs."""
    v = np.asarray(x, dtype=np.float64)
    hi, lo = max(0.0, v.max()), min(0.0, v.min())
    scale = (1.0 if hi == lo else hi - lo) / 255.0
    zp = np.rint(np.clip(-lo / scale, 0.0, 255.0))
    return {"scale": np.array([float(np.float32(scale))]), "zero_point": np.array([float(zp)])}


def _dyn_stats(stats):
    if stats is None or "scale" not in stats or "zero_point" not in stats:
        raise ValueError("onnx.DynamicQuantizeLinear needs stats {'scale', 'zero_point'} (from the preset's fit)")
    s = np.asarray(stats["scale"], dtype=np.float64).reshape(-1)
    z = np.asarray(stats["zero_point"], dtype=np.float64).reshape(-1)
    if s.size != 1 or z.size != 1:
        raise ValueError("onnx.DynamicQuantizeLinear is per tensor: one scale and one zero_point")
    return _scale(s[0], "scale", "float32"), _zero_point(z[0], "uint8", "zero_point")


def _dyn_build(in_dtype, stats=None, **options) -> Built:
    _check_options(options, _DYN_OPTIONS, "DynamicQuantizeLinear")
    _float_in(in_dtype, "DynamicQuantizeLinear")
    scale, zp = _dyn_stats(stats)
    return Built(_quantize_ops("float32", scale, zp, "uint8"), "uint8", "float32", inverse=_dequantize_built(scale, zp))


def _dyn_exact_fit(values, counts, **options) -> dict:
    _check_options(options, _DYN_OPTIONS, "DynamicQuantizeLinear")
    v = np.asarray(values, dtype=np.float64)
    return {"min": min(Fraction(0), Fraction(float(v[0]))), "max": max(Fraction(0), Fraction(float(v[-1])))}


def _dyn_ideal(exact_stats=None, **options):
    """x / scale + zp with the exact range; the zero point is rounded to an integer
    (the spec's intent: 0.0 is represented exactly), ties to even."""
    _check_options(options, _DYN_OPTIONS, "DynamicQuantizeLinear")
    if exact_stats is None:
        raise ValueError("onnx.DynamicQuantizeLinear's ideal needs exact statistics (exact_fit)")
    lo, hi = Fraction(exact_stats["min"]), Fraction(exact_stats["max"])
    scale = (hi - lo if hi != lo else Fraction(1)) / 255
    z = -lo / scale
    zp = round(min(max(z, Fraction(0)), Fraction(255)))  # Fraction.__round__: ties to even
    return (affine(1 / scale, zp), Exact("clip", (0, 255)))


PRESETS = [
    Preset(
        name="onnx.QuantizeLinear",
        library="onnx",
        verified=f"{VERSION}: float32 data (ties, NaN, inf, huge) and every float16 code, into uint8/uint16/int8/int16 "
                 "and the four float8 types (saturate on and off), bit for bit; into float4_e2m1fn (opset 23) "
                 "and the two float6 types (opset 28): the reference evaluator bit for bit (onnxruntime has no kernel)",
        source=_SRC_Q,
        summary="saturate(rint(x / y_scale) + y_zero_point): a float32 division, ties to even; "
                "to float8: cast(x / y_scale), clipped to +-max when saturate; to float4/float6: "
                "cast(x / y_scale + 0) (overflow -> +-max)",
        options=dict(_Q_OPTIONS),
        build=_q_build,
        ideal=_q_ideal,
    ),
    Preset(
        name="onnx.DequantizeLinear",
        library="onnx",
        verified=f"{VERSION}: every uint8, uint16, int8, int16 and float8 code, bit for bit; every float4 "
                 "and float6 code against the reference evaluator",
        source=_SRC_DQ,
        summary="(float32(x) - x_zero_point) * x_scale in float32 (float8/6/4 x: float32(x) * x_scale)",
        options=dict(_DQ_OPTIONS),
        build=_dq_build,
        ideal=_dq_ideal,
    ),
    Preset(
        name="onnx.DynamicQuantizeLinear",
        library="onnx",
        verified=f"{VERSION}: float32 data, scale/zero point and outputs bit for bit",
        source=_SRC_DYN,
        summary="uint8 QuantizeLinear with scale = (max(0,max) - min(0,min))/255 and zp = rint(-min/scale), all float32",
        options=dict(_DYN_OPTIONS),
        build=_dyn_build,
        ideal=_dyn_ideal,
        fit=_dyn_fit,
        exact_fit=_dyn_exact_fit,
        fit_from_extremes=True,  # x.min(), x.max(), isfinite
    ),
]
