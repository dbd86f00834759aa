"""Transforms (layer 3): one fused, parallel kernel per formula, and the inverses.

Every transform is an affine map evaluated in the compute dtype, followed by
one round-to-nearest-even into the output dtype (saturating, half-to-even, for
integer outputs).  Parameters are fitted (:func:`kernels.fit`), rounded once to
the compute dtype, and the derived constants are computed from them in the
compute dtype (numpy float16 / ml_dtypes bfloat16 scalar arithmetic rounds
after every operation, exactly as the kernels do).

==============  =========  ============================================================
transform       formula    y = (each operation rounded to the compute dtype)
==============  =========  ============================================================
minmax (a, b)   sub_div    ``(x - lo) / rng``, then ``* w + a`` when (a, b) != (0, 1)
                sub_mul    ``(x - lo) * r``, ``r = 1 / rng``, then ``* w + a`` likewise
                mul_add    ``x * s + t``, ``s = w / rng``, ``t = a - lo * s`` (scikit-learn)
                fma        ``fma(x, s, t)``: one rounding
standardize     all four   the same shapes with ``lo = mean``, ``rng = std``, (a, b) = (0, 1)
scale (d)       div / mul  ``x / d`` / ``x * (1 / d)``
maxabs          div / mul  ``x / m`` / ``x * (1 / m)``, ``m = max |x|``
quantize        round      ``clip(rint(x / scale) + zero_point, qmin, qmax)``
dequantize      affine     ``(q - zero_point) * scale``
==============  =========  ============================================================

``rng = hi - lo`` and ``w = b - a``; quantize's clip bounds qmin and qmax (the
qdtype's range: 0 and 255 for uint8, -128 and 127 for int8) are exact (65535 is
not a bfloat16 or float16 value: the clip keeps outputs in [qmin, qmax]); ``rng == 0`` or ``std == 0`` (in the compute
dtype) is replaced by 1 (scikit-learn's convention).  Inverses:
``inverse(sub_div|sub_mul) = ((y - a) / w) * rng + lo`` (``y * rng + lo`` for
(0, 1)), ``inverse(mul_add|fma) = (y - t) / s`` (scikit-learn's order),
``inverse(div|mul) = y * d``, ``inverse(quantize) = dequantize`` and back.

8-bit inputs (uint8, int8; one feature, at least ``LUT_MIN_SIZE`` elements) run the same
kernel on the 256 possible values and then look every element up in that
table (:mod:`kernels.lut`): the same bits, at memory speed whatever the
compute dtype.

Output dtype when ``output_dtype`` (``output_dtype`` for :func:`kernels.measure`)
is None -- one rule for transform, inverse_transform and measure:

====================================  =========================================
operation                             default output dtype
====================================  =========================================
quantize (and inverse of dequantize)  the ``qdtype`` (uint8/uint16/int8/int16)
every other transform and inverse     float64 for float64 input, else float32
====================================  =========================================

"Input" is the array passed (``y`` for inverse_transform).  :func:`kernels.cast`
has no default: its ``dtype`` is required.

Statistics or derived constants that overflow the compute dtype (hi - lo,
s = w / rng, ...) raise a ``RuntimeWarning`` naming ``compute_dtype``.

Integer inputs are converted to the compute dtype before any arithmetic, so
``x - lo`` never wraps; uint16 values past 65504 become inf in a float16
compute dtype, as they would in numpy.
"""

from __future__ import annotations

import functools
import warnings

import ml_dtypes  # noqa: F401  (registers bfloat16 scalars used through the registry)
import numpy as np
from numba import prange
from numba.extending import overload

from . import lut
from ._tags import Tag, tag_name
from ._threads import serialised
from ._validate import check_array, check_choice, check_dtype, check_out, default_out_dtype
from ._jit import kernel
from .codecs import (
    COMPUTE_DTYPES,
    JIT,
    Policy,
    float_rounding,
    add_c,
    as_storage,
    decode,
    encode,
    fma_c,
    is_overflow,
    lookup,
    rint,
    encoding_tag,
    rnd,
    sub_c,
    to_compute_from,
    write_counting_overflow,
)
from .program import Op, check_compute_rounding
from .stats import GIVEN_AXIS, Params, fit, normalize_axis

FORMULAS = {
    "minmax": ("sub_div", "sub_mul", "mul_add", "fma"),
    "standardize": ("sub_div", "sub_mul", "mul_add", "fma"),
    "scale": ("div", "mul"),
    "maxabs": ("div", "mul"),
    "quantize": ("round",),
    "dequantize": ("affine",),
}
# scikit-learn's choices: MinMaxScaler x*s+t, StandardScaler (x-mean)/std, MaxAbsScaler x/m
DEFAULT_FORMULA = {
    "minmax": "mul_add",
    "standardize": "sub_div",
    "scale": "div",
    "maxabs": "div",
    "quantize": "round",
    "dequantize": "affine",
}
_KERNEL_FORMULAS = ("div", "mul", "sub_div", "sub_div_post", "sub_mul", "sub_mul_post", "mul_add", "fma", "quantize")
_FORMULA_TAGS = {f: Tag("formula", f) for f in _KERNEL_FORMULAS}


# --------------------------------------------------------------------------
# kernel
# --------------------------------------------------------------------------


def evaluate(formula, cc, v, p0, p1, p2, p3):
    """The formula applied to one value in compute dtype ``cc``."""


@overload(evaluate, jit_options=JIT)
def _ov_evaluate(formula, cc, v, p0, p1, p2, p3):
    name = tag_name(formula, "formula")
    if name == "div":
        return lambda formula, cc, v, p0, p1, p2, p3: rnd(cc, v / p1)
    if name == "mul":
        return lambda formula, cc, v, p0, p1, p2, p3: rnd(cc, v * p1)
    if name == "sub_div":
        return lambda formula, cc, v, p0, p1, p2, p3: rnd(cc, sub_c(cc, v, p0) / p1)
    if name == "sub_mul":
        return lambda formula, cc, v, p0, p1, p2, p3: rnd(cc, sub_c(cc, v, p0) * p1)
    if name == "sub_div_post":
        return lambda formula, cc, v, p0, p1, p2, p3: add_c(
            cc, rnd(cc, rnd(cc, sub_c(cc, v, p0) / p1) * p2), p3
        )
    if name == "sub_mul_post":
        return lambda formula, cc, v, p0, p1, p2, p3: add_c(
            cc, rnd(cc, rnd(cc, sub_c(cc, v, p0) * p1) * p2), p3
        )
    if name == "mul_add":
        return lambda formula, cc, v, p0, p1, p2, p3: add_c(cc, rnd(cc, v * p0), p1)
    if name == "fma":
        return lambda formula, cc, v, p0, p1, p2, p3: fma_c(cc, v, p0, p1)
    if name == "quantize":

        def impl(formula, cc, v, p0, p1, p2, p3):
            q = add_c(cc, rint(cc, rnd(cc, v / p0)), p1)
            q = p3 if q < p3 else q  # NaN passes through (and encodes to 0)
            return p2 if q > p2 else q

        return impl
    raise TypeError(name)


@kernel
def _apply_kernel(x, out, params, cin, cc, formula, cout):
    """out = encode(formula(to_compute(decode(x)))) per element, in one pass.

    ``params`` has one row of (p0, p1, p2, p3) per feature; features are the
    fastest-varying index of the flat array.  With one feature the loop is a
    flat unit-stride ``prange`` that LLVM vectorises.  Returns 1 when a finite
    input became inf, else 0 (``count_overflow`` then counts them): a uint8 max
    is the one reduction that costs the loop next to nothing.
    """
    nfeat = params.shape[0]
    overflowed = np.uint8(0)
    if nfeat == 1:
        p0 = params[0, 0]
        p1 = params[0, 1]
        p2 = params[0, 2]
        p3 = params[0, 3]
        for i in prange(x.size):
            v = decode(cin, x[i])
            e = encode(cout, evaluate(formula, cc, to_compute_from(cin, cc, v), p0, p1, p2, p3))
            out[i] = e
            overflowed = max(overflowed, np.uint8(is_overflow(cout, v, e)))
    else:
        for r in prange(x.size // nfeat):
            for j in range(nfeat):
                i = r * nfeat + j
                v = decode(cin, x[i])
                e = encode(
                    cout,
                    evaluate(formula, cc, to_compute_from(cin, cc, v), params[j, 0], params[j, 1], params[j, 2], params[j, 3]),
                )
                out[i] = e
                overflowed = max(overflowed, np.uint8(is_overflow(cout, v, e)))
    return overflowed


# --------------------------------------------------------------------------
# parameters in the compute dtype
# --------------------------------------------------------------------------


def _in(crow, values):
    """float64 values rounded once to the compute dtype (numpy / ml_dtypes array)."""
    return np.asarray(values, dtype=np.float64).astype(crow.dtype)


def _nonzero(a, crow):
    return np.where(a == 0, crow.dtype.type(1), a).astype(crow.dtype)


def _affine_base(params: Params, crow, not_finite: list):
    """(lo, rng, a, w, post) in the compute dtype for the affine transforms."""
    t = params.transform
    z = _in(crow, np.zeros(params.nfeat))
    if t == "minmax":
        lo, hi = _in(crow, params["min"]), _in(crow, params["max"])
        a_, b_ = params.options["feature_range"]
        a = _in(crow, np.full(params.nfeat, a_))
        w = (_in(crow, np.full(params.nfeat, b_)) - a).astype(crow.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            rng = (hi - lo).astype(crow.dtype)
        not_finite.extend(["hi - lo"] if not _finite(rng) else [])
        return lo, _nonzero(rng, crow), a, w, (a_, b_) != (0.0, 1.0)
    one = _in(crow, np.ones(params.nfeat))
    if t == "standardize":
        return _in(crow, params["mean"]), _nonzero(_in(crow, params["std"]), crow), z, one, False
    if t == "scale":
        return z, _in(crow, params["divisor"]), z, one, False
    if t == "maxabs":
        return z, _nonzero(_in(crow, params["maxabs"]), crow), z, one, False
    raise AssertionError(t)


# the statistics each kernel plan reads
_USED_STATS = {
    "minmax": ("min", "max"),
    "standardize": ("mean", "std"),
    "scale": ("divisor",),
    "maxabs": ("maxabs",),
    "quantize": ("scale", "zero_point"),
    "dequantize": ("scale", "zero_point"),
}


def _finite(v) -> bool:
    return bool(np.isfinite(np.asarray(v).astype(np.float64)).all())


def kernel_plan(params: Params, formula: str, crow, inverse: bool = False):
    """(kernel formula name, params table (nfeat, 4) in the arithmetic type).

    Finite statistics that do not fit the compute dtype (1e300 in float32, 65535
    in float16), or constants derived from them that overflow (hi - lo), are kept,
    because that is the effect being measured, but never silently.  A constant
    such as s = w / inf = 0 is finite, so the statistics and every intermediate
    are checked in the compute dtype, not only the final table."""
    used = _USED_STATS[params.transform]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # our own warning follows
        not_finite = [k for k in used if not _finite(_in(crow, params[k]))]
        name, table = _plan(params, formula, crow, inverse, not_finite)
    if not _finite(table):
        not_finite.append("derived constants")
    if not_finite and _finite(np.concatenate([params[k] for k in used])):
        warnings.warn(
            f"fitted parameters overflow compute_dtype={crow.name!r} (largest finite {crow.max:g}): "
            f"{', '.join(dict.fromkeys(not_finite))} not finite there, so outputs are wrong (inf/NaN/0); "
            "use a wider compute_dtype such as 'float32' or 'float64'",
            RuntimeWarning,
            stacklevel=3,
        )
    return name, table


def _plan(params: Params, formula: str, crow, inverse: bool, not_finite: list):
    t = params.transform
    if t in ("quantize", "dequantize"):
        scale, zp = _in(crow, params["scale"]), _in(crow, params["zero_point"])
        # the clip bound is exact (in the float32/float64 arithmetic type), not rounded
        # to the compute dtype: bfloat16(65535) is 65536, float16(65535) is inf
        qrow = lookup(params.options["qdtype"])
        qmin, qmax = np.full(params.nfeat, qrow.min), np.full(params.nfeat, qrow.max)
        z = _in(crow, np.zeros(params.nfeat))
        if (t == "quantize") != inverse:
            name, cols = "quantize", (scale, zp, qmax, qmin)
        else:
            name, cols = "sub_mul", (zp, scale, z, z)
    else:
        lo, rng, a, w, post = _affine_base(params, crow, not_finite)
        one = crow.dtype.type(1)
        if formula in ("mul_add", "fma"):
            s = (w / rng).astype(crow.dtype)
            tt = (a - (lo * s).astype(crow.dtype)).astype(crow.dtype)
            if inverse:
                name, cols = "sub_div", (tt, s, s, s)
            else:
                name, cols = formula, (s, tt, s, s)
        elif inverse:  # sub_div, sub_mul, div, mul
            name, cols = ("sub_div_post", (a, w, rng, lo)) if post else ("mul_add", (rng, lo, lo, lo))
        elif formula in ("sub_div", "div"):
            # div is sub_div with lo = 0; x - 0 == x exactly (-0.0 too), so skip it
            name = "div" if formula == "div" else ("sub_div_post" if post else "sub_div")
            name, cols = name, (lo, rng, w, a)
        else:  # sub_mul, mul
            r = (one / rng).astype(crow.dtype)
            name = "mul" if formula == "mul" else ("sub_mul_post" if post else "sub_mul")
            name, cols = name, (lo, r, w, a)
    arith = np.float64 if crow.name == "float64" else np.float32
    table = np.ascontiguousarray(np.stack([np.asarray(c).astype(arith) for c in cols], axis=1))
    return name, table


# --------------------------------------------------------------------------
# public wrappers
# --------------------------------------------------------------------------


# 8-bit inputs of at least this many elements go through a 256-entry table
# (kernels.lut); below it, building the table costs more than it saves
LUT_MIN_SIZE = 1 << 12


def default_output(params: Params, in_row, inverse: bool = False) -> str:
    """The output dtype when none is given (the module docstring's table)."""
    if (params.transform == "quantize") != inverse and params.transform in ("quantize", "dequantize"):
        return params.options["qdtype"]
    return default_out_dtype(in_row)


def _run(x, params: Params, kname: str, table, crow, output_dtype, out, what: str, inverse: bool = False,
         ctag=None):
    x, row_in = check_array(x)
    if output_dtype is None:
        output_dtype = default_output(params, row_in, inverse)
    orow = check_dtype(output_dtype, "output_dtype")
    if params.axis is not None:
        if x.ndim < 2 or x.shape[-1] != params.nfeat:
            raise ValueError(
                f"params were fitted per feature ({params.nfeat} features along the last axis); "
                f"x has shape {x.shape}"
            )
    out = check_out(out, x.shape, orow, x)
    flat_x, flat_out = as_storage(x, row_in).reshape(-1), as_storage(out, orow).reshape(-1)
    plan = (table, row_in.tag, crow.tag if ctag is None else ctag, _FORMULA_TAGS[kname], orow.tag)
    overflow = -1
    if lut.AVAILABLE and row_in.itemsize == 1 and table.shape[0] == 1 and x.size >= LUT_MIN_SIZE:
        # 8-bit data: run the kernel on the 256 possible inputs, then look each element
        # up by its bit pattern (int8 as uint8: same bits, memory speed).  A table entry
        # that overflows sends us back to the direct kernel, whose overflowing elements
        # are then counted for the warning.
        values = np.empty(256, orow.storage)
        if not _apply_kernel(np.arange(256, dtype=np.uint8).view(row_in.storage), values, *plan):
            lut.apply_table(flat_x.view(np.uint8), values, flat_out)
            overflow = 0
    if overflow < 0:
        overflow = write_counting_overflow(
            lambda src, dest: _apply_kernel(src, dest, *plan), flat_x, flat_out, row_in.tag, orow.tag, table.shape[0]
        )
    _warn_overflow(overflow, what, orow, crow)
    return out


def _compute_row(compute_dtype):
    crow = check_dtype(compute_dtype, "compute_dtype")
    if not crow.can_compute:
        raise TypeError(
            f"compute_dtype={crow.name!r} {crow.family.compute_refusal(crow.name)}; use one of: {', '.join(COMPUTE_DTYPES)}"
        )
    return crow


def compute_tag(crow, rounding):
    """The compute codec tag of ``crow`` under ``rounding`` (every arithmetic operation,
    and the conversion of each input into the compute dtype, rounds in that mode),
    or a ValueError naming the valid choices."""
    rounding = float_rounding(rounding)
    check_compute_rounding(crow.name, rounding)
    policy = Policy(rounding)
    return encoding_tag(crow, policy)


def kernel_ops(kname: str, table: np.ndarray, c: str, rounding: str = "nearest_even", seed: int = 0) -> tuple:
    """The program ops (:class:`kernels.program.Op`) of one kernel formula of :func:`evaluate`
    in compute dtype ``c``, each float op rounding in ``rounding`` (``stochastic``: with
    ``seed``, each op its own draws of the element's bits), the same operations in the
    same order: a pipeline step's ops."""
    p = [table[:, k].astype(np.float64) for k in range(4)]
    R = functools.partial(Op, rounding=rounding, seed=seed)  # a float op in the mode
    ops = {
        "div": [R("div", c, (p[1],))],
        "mul": [R("mul", c, (p[1],))],
        "sub_div": [R("sub", c, (p[0],)), R("div", c, (p[1],))],
        "sub_mul": [R("sub", c, (p[0],)), R("mul", c, (p[1],))],
        "sub_div_post": [R("sub", c, (p[0],)), R("div", c, (p[1],)), R("mul", c, (p[2],)), R("add", c, (p[3],))],
        "sub_mul_post": [R("sub", c, (p[0],)), R("mul", c, (p[1],)), R("mul", c, (p[2],)), R("add", c, (p[3],))],
        "mul_add": [R("mul", c, (p[0],)), R("add", c, (p[1],))],
        "fma": [R("fma", c, (p[0], p[1]))],
        "quantize": [R("div", c, (p[0],)), Op("rint"), R("add", c, (p[1],)), Op("clip", None, (p[3], p[2]))],
    }[kname]
    return (R("round", c), *ops)


def _run_program(x, params: Params, formula, crow, output_dtype, out, what: str, rounding, seed, inverse: bool):
    """transform / inverse_transform with ``rounding`` (stochastic) as program ops, with
    transform's output rule and overflow warning."""
    from .cast import check_seed
    from .program import Program

    rounding = float_rounding(rounding)
    check_compute_rounding(crow.name, rounding, allow_stochastic=True)
    seed = check_seed(seed, rounding)
    x, row_in = check_array(x)
    if output_dtype is None:
        output_dtype = default_output(params, row_in, inverse)
    orow = check_dtype(output_dtype, "output_dtype")
    if params.axis is not None and (x.ndim < 2 or x.shape[-1] != params.nfeat):
        raise ValueError(f"params were fitted per feature ({params.nfeat} features along the last axis); "
                         f"x has shape {x.shape}")
    kname, table = kernel_plan(params, formula, crow, inverse=inverse)
    prog = Program(kernel_ops(kname, table, crow.name, rounding, seed), orow.name, table.shape[0])
    out = check_out(out, x.shape, orow, x)
    overflow = prog.run(as_storage(x, row_in).reshape(-1), row_in, as_storage(out, orow).reshape(-1), orow)
    _warn_overflow(overflow, what, orow, crow)
    return out


def _warn_overflow(overflow, what, orow, crow):
    """The overflow warning of an apply pass, attributed to the first caller outside
    this package (transform, inverse_transform, a pipeline, a dask block: each reaches
    here through a different number of frames)."""
    if overflow:
        warnings.warn(
            f"overflow in {what}: {overflow} finite value(s) became inf in {orow.name} "
            f"(largest finite {orow.max:g}) or in the compute dtype {crow.name}",
            RuntimeWarning,
            stacklevel=_outside_package(),
        )


def _outside_package() -> int:
    """The ``stacklevel`` (for a ``warnings.warn`` in our caller) of the first frame
    whose code is not in ``kernels/``."""
    import os
    import sys

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _formula(transform, formula):
    if formula is None:
        return DEFAULT_FORMULA[transform]
    return check_choice(formula, FORMULAS[transform], "formula")


def transform(x, transform, **kwargs):
    """Apply ``transform`` to ``x`` (see :func:`_transform_array`); a dask array
    gives a dask array, block by block (:mod:`kernels.dask_array`)."""
    if type(x).__module__.startswith("dask."):
        from .dask_array import transform as transform_dask

        return transform_dask(x, transform, **kwargs)
    return _transform_array(x, transform, **kwargs)


@serialised
def _transform_array(
    x,
    transform,
    *,
    params=None,
    formula=None,
    compute_dtype="float32",
    output_dtype=None,
    axis=None,
    out=None,
    rounding="nearest_even",
    seed=None,
    **fit_options,
):
    """Apply ``transform`` to ``x`` in one fused parallel pass (see the module table).

    ``params=None`` fits on ``x`` (``fit_options`` and ``axis`` go to
    :func:`kernels.fit`); params fitted elsewhere apply as they are, so values
    outside the fitted range map outside [a, b].  ``formula`` defaults to
    scikit-learn's (minmax ``mul_add``, standardize ``sub_div``, scale/maxabs
    ``div``).  ``output_dtype=None``: float64 for float64 ``x``, else float32;
    quantize: its ``qdtype`` (the module docstring's table).  Values that overflow to inf raise a ``RuntimeWarning`` (float16
    tops out at 65504); integer outputs saturate.  ``x`` is never modified.

    ``rounding`` (``nearest_even``, ``toward_zero``, ``up``, ``down``, ``nearest_away``)
    is the rounding mode of the compute dtype's arithmetic: the conversion of each
    input into it and every operation of the formula round once in that mode
    (float16/bfloat16/float32 emulated exactly in float64, see
    ``codecs._round.compute_ops``).  The parameters and derived constants are
    still rounded to nearest even (as fitted), and the output dtype's encoding
    is its default.  float64 compute takes only ``nearest_even`` (a ValueError).
    ``rounding="stochastic"`` (``seed=``, default 0) runs the formula as program ops
    (:func:`kernel_ops`, one fused kernel with the element index): each op draws
    ``random_bits(key, i * K + draw)`` for element ``i``, so the bits do not depend on
    threads or chunks and equal the pipeline step's (``minmax(rounding=stochastic,
    seed=1)``).  The
    integer spellings of ``codecs.ROUNDING_TABLE`` (``half_even``, ``ceil``,
    ``floor``, ``half_away``) are accepted too.
    """
    x, _ = check_array(x)
    if params is None:
        params = fit(x, transform, axis=axis, **fit_options)
    else:
        if not isinstance(params, Params):
            raise TypeError(f"params must be the result of kernels.fit, got {type(params).__name__}")
        if params.transform != transform:
            raise ValueError(f"params were fitted for {params.transform!r}, not {transform!r}")
        if fit_options:
            raise TypeError(f"fit options {sorted(fit_options)} given together with params; pass one or the other")
        if axis is not None and params.axis != GIVEN_AXIS and normalize_axis(axis, x.ndim) != params.axis:
            raise ValueError(f"axis={axis!r} differs from the axis the params were fitted with ({params.axis})")
    formula = _formula(transform, formula)
    crow = _compute_row(compute_dtype)
    if float_rounding(rounding) == "stochastic" or seed is not None:
        return _run_program(x, params, formula, crow, output_dtype, out, transform, rounding, seed, False)
    ctag = compute_tag(crow, rounding)
    kname, table = kernel_plan(params, formula, crow)
    return _run(x, params, kname, table, crow, output_dtype, out, transform, ctag=ctag)


@serialised
def inverse_transform(
    y, transform, params, *, formula=None, compute_dtype="float32", output_dtype=None, out=None, rounding="nearest_even",
    seed=None,
):
    """Undo ``transform`` with the same ``params`` (and ``formula``) used forward.

    ``inverse(sub_div | sub_mul)`` is ``((y - a) / w) * rng + lo``,
    ``inverse(mul_add | fma)`` is ``(y - t) / s``, ``inverse(div | mul)`` is
    ``y * d``, quantize and dequantize invert each other.  Each operation rounds
    in ``compute_dtype``; a round trip of minmax through compute dtype c (unit
    roundoff u) returns x within ``8 * u * (|x| + |lo| + (hi - lo))`` plus c's
    smallest normal (tested with hypothesis in float32 and float64).
    ``output_dtype=None``: float64 for float64 ``y``, else float32; the inverse of
    dequantize gives its ``qdtype`` (the module docstring's table).  ``rounding``: as
    :func:`transform`'s.
    """
    if not isinstance(params, Params):
        raise TypeError(f"params must be the result of kernels.fit, got {type(params).__name__}")
    if params.transform != transform:
        raise ValueError(f"params were fitted for {params.transform!r}, not {transform!r}")
    formula = _formula(transform, formula)
    crow = _compute_row(compute_dtype)
    if float_rounding(rounding) == "stochastic" or seed is not None:
        return _run_program(y, params, formula, crow, output_dtype, out, f"inverse {transform}", rounding, seed, True)
    ctag = compute_tag(crow, rounding)
    kname, table = kernel_plan(params, formula, crow, inverse=True)
    return _run(y, params, kname, table, crow, output_dtype, out, f"inverse {transform}", inverse=True, ctag=ctag)
