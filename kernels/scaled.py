"""Scaled casts (layer 3): amax scaling into the small float formats, per tensor,
per channel, or per block of the OCP microscaling (MX) formats, and the inverses.

Per tensor / per channel, as torchao's float8 training computes it
(``torchao/float8/float8_utils.py``: ``amax_to_scale``, ``to_fp8_saturated``;
``torchao/float8/float8_training_tensor.py``: ``_ToFloat8ConstrFunc``)::

    amax  = max |x| over ``axis``                  exact (NaN if any element is NaN)
    scale = float32(fmax / max(amax, eps))          the division in float64, then rounded to float32
    scale = 2**floor(log2(scale))                   when ``pow2`` (exact, on the float32 bits)
    code  = encode_sat(float32(float32(x) * scale)) clipped to +-fmax, rounded to nearest even

``fmax`` is the largest finite value of the format; ``dequantize`` is
``float32(value(code) / scale)``.  (torchao rounds the scale down to a power of
two with ``exp2(floor(log2(scale)))`` in float32, whose ``log2`` rounds up to
the next integer for scales within about 1e-7 below a power of two; here the
power of two is the exact one.)

MX blocks (``mx_quantize``): ``block`` consecutive elements along ``axis`` share
one ``float8_e8m0fnu`` scale ``X = 2**s``, ``s`` an integer in [-127, 127]
(OCP Microscaling Formats v1.0, sections 5 and 6.3; torchao's ``to_mx`` in
``torchao/prototype/mx_formats/mx_tensor.py``).  With ``a = float32(amax of
the block)``, ``emax`` the exponent of the element format's largest value and
``fmax`` that value:

==========  ============================================================  =======================
rule        s                                                             source
==========  ============================================================  =======================
``floor``   ``floor(log2 a) - emax``                                      OCP MX v1.0, 6.3
``ceil``    ``ceil(log2 a) - emax``                                       torchao CEIL
``even``    ``floor(log2 a') - emax``, ``a'`` = ``a`` rounded to the      torchao EVEN
            element's mantissa bits, ties away from zero
``rceil``   ``ceil(log2 float32(a / fmax))``                              torchao RCEIL (cuBLAS'
                                                                          block scaling)
==========  ============================================================  =======================

then clamped to [-127, 127]; a zero block gets ``2**-127``; a block whose amax
is NaN or inf gets the NaN scale (code 0xFF), which makes the whole block NaN
(OCP 5.3).  Elements: ``code = encode_sat(float32(float32(x) * 2**-s))``
(exact but for float32 subnormals, far below every element's smallest value),
saturated to +-fmax as OCP 6.3 asks for normal values.  ``mx_dequantize`` is
``value(code) * 2**s`` in float32, exact but where ceil/even round a block
near float32's max up to ``2**128`` (inf).  The
dequantized value is the output's identity: two inputs survive as distinct
when their dequantized values differ.

Inputs are float16, bfloat16, float32 or float64; float64 data is rounded to
float32 first, as torchao's ``.to(torch.float32)`` does (its amax is not: the
per-tensor scale comes from the float64 amax, as torchao's).

Known differences from torchao 0.18.0 (the release that installs beside
torch 2.13; measured in tests/test_scaled.py): its floor/ceil/even divide by
``max(X, 2**-126)``, so a block given the scale ``2**-127`` holds codes twice
too large for its scale (the dequantized block is half the input); a block
with an inf gets a finite scale there; its rceil takes ``ceil(log2(d))`` in
float32, which misses the round-up for ``d`` just above a power of two, and
multiplies the elements of a ``2**-127`` block by 1 instead of ``2**127``.
"""

from __future__ import annotations

import math
import operator

import ml_dtypes
import numpy as np
from numba import njit, prange

from ._jit import JIT, kernel
from ._threads import serialised
from ._validate import check_array
from .codecs import REGISTRY, Policy, as_storage, decode, encode, encoding_tag, f32_bits, lookup
from .codecs.minifloat import FORMATS

SCALE_RULES = ("floor", "ceil", "even", "rceil")
PADS = (None, "zeros")
INPUT_DTYPES = ("float16", "bfloat16", "float32", "float64")
# element formats: every minifloat row but the scale itself
ELEMENT_DTYPES = tuple(n for n in FORMATS if n != "float8_e8m0fnu")
EPS = 1e-12  # torchao.float8.float8_utils.EPS
E8M0 = REGISTRY["float8_e8m0fnu"]


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------


def _element_row(dtype, argument: str = "dtype"):
    try:
        r = lookup(dtype, argument)
    except TypeError:
        r = None
    if r is None or r.name not in ELEMENT_DTYPES:
        raise ValueError(f"{argument}={dtype!r} is not an element format of a scaled cast; "
                         f"use one of: {', '.join(ELEMENT_DTYPES)}")
    return r


def _input(x, argument: str = "x"):
    x, row = check_array(x, argument)
    if row.name not in INPUT_DTYPES:
        raise TypeError(f"{argument}.dtype={row.name} is not a float input of a scaled cast; "
                        f"pass one of: {', '.join(INPUT_DTYPES)} (e.g. {argument}.astype(np.float32))")
    return x, row


def _axis(axis, ndim: int, argument: str = "axis") -> int:
    if isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"{argument}={axis!r}: a bool is not an axis; pass an integer such as {argument}=-1")
    try:
        a = operator.index(axis)
    except TypeError:
        raise TypeError(f"{argument}={axis!r} must be an integer axis") from None
    if not -ndim <= a < ndim:
        raise ValueError(f"{argument}={axis!r} is out of range for a {ndim}-D array (axes -{ndim}..{ndim - 1})")
    return a % ndim


def _reduced_axes(axis, ndim: int) -> tuple[int, int]:
    """(first, last + 1) of the consecutive axes an amax reduces (None: all)."""
    if axis is None:
        return 0, ndim
    items = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    if not items:
        raise ValueError("axis=() reduces nothing; pass axis=None (per tensor) or the axes to reduce")
    axes = sorted({_axis(a, ndim) for a in items})
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise ValueError(f"axis={axis!r}: the reduced axes must be consecutive (e.g. (0, 1) of an HWC image, "
                         "one scale per channel); move the axes with np.moveaxis first")
    return axes[0], axes[-1] + 1


def _layout(shape, lo: int, hi: int) -> tuple[int, int, int]:
    """(pre, n, post): the array as pre x n x post with axes [lo, hi) in the middle."""
    pre = int(np.prod(shape[:lo], dtype=np.int64))
    n = int(np.prod(shape[lo:hi], dtype=np.int64))
    post = int(np.prod(shape[hi:], dtype=np.int64))
    return pre, n, post


def _block(block) -> int:
    if isinstance(block, (bool, np.bool_)) or not isinstance(block, (int, np.integer)):
        raise TypeError(f"block={block!r} must be a positive integer (OCP MX: 32)")
    if block < 1:
        raise ValueError(f"block={block!r} must be a positive integer (OCP MX: 32)")
    return int(block)


def _choice(value, choices, argument):
    if not any(value is c or (isinstance(value, str) and value == c) for c in choices):
        raise ValueError(f"{argument}={value!r} is not one of: {', '.join(map(str, choices))}")
    return value


def _blocks_along(shape, axis, block, pad) -> int:
    n = shape[axis]
    if n % block and pad is None:
        raise ValueError(f"axis {axis} has length {n}, not a multiple of block={block}: pass pad='zeros' "
                         f"(the last block of each row is completed with zeros) or a block that divides {n}")
    return -(-n // block)


def bytes_per_element(dtype, block: int | None = None) -> float:
    """Storage per element of ``dtype``, bits packed (float6: 0.75, float4: 0.5),
    plus the share of one 1-byte e8m0 scale per ``block`` elements (MXFP8: 1 + 1/32)."""
    r = lookup(dtype, "dtype")
    if r.name in FORMATS:
        f = FORMATS[r.name]
        bits = f.ebits + f.mbits + int(f.signed)
    else:
        bits = 8 * r.itemsize
    return bits / 8 + (0.0 if block is None else 1.0 / _block(block))


def element_emax(dtype) -> int:
    """The exponent of the largest finite value of an element format (OCP's emax_elem)."""
    return int(np.floor(np.log2(float(_element_row(dtype).max))))


# --------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------


@kernel
def _amax_kernel(x, cin, n, post, nchunk, out):
    """out[g * nchunk + c] = max |x| over chunk c of the n elements of group g
    (group g = (p, q) of the pre x n x post layout); NaN if one is NaN."""
    clen = (n + nchunk - 1) // nchunk
    for t in prange(out.size):
        g, c = t // nchunk, t % nchunk
        base = (g // post) * n * post + g % post
        m = 0.0
        nan = False
        for k in range(c * clen, min((c + 1) * clen, n)):
            a = abs(np.float64(decode(cin, x[base + k * post])))
            if a != a:
                nan = True
            elif a > m:
                m = a
        out[t] = np.nan if nan else m


@kernel
def _scale_kernel(x, out, scale, n, post, cin, cout):
    """out[i] = encode(cout, float32(x[i]) * scale of its group): one float32 product, one rounding."""
    for i in prange(x.size):
        s = scale[(i // (n * post)) * post + i % post]
        out[i] = encode(cout, np.float32(decode(cin, x[i])) * s)


@kernel
def _unscale_kernel(codes, out, scale, n, post, ccode):
    """out[i] = float32(value(codes[i]) / scale of its group)."""
    for i in prange(codes.size):
        s = scale[(i // (n * post)) * post + i % post]
        out[i] = np.float32(decode(ccode, codes[i])) / s


@njit(**JIT)
def _e8m0_exponent(a, rule, emax, mbits, fmax):
    """The biased e8m0 code (s + 127, or 255 for NaN) of a block with float32 amax ``a``."""
    if not np.isfinite(a):
        return np.uint8(255)
    if rule == 3:  # rceil: the power of two at or above float32(a / fmax)
        b = np.int64(f32_bits(np.float32(a / fmax)))
        field, mant = b >> 23, b & 0x7FFFFF
        if field == 0:  # 0 and subnormals: 2**-126 above 2**-127, else 2**-127
            s = np.int64(-126) if mant > 0x400000 else np.int64(-127)
        else:
            s = field - 127 + (1 if mant != 0 else 0)
    else:
        b = np.int64(f32_bits(np.float32(a)))
        if rule == 2:  # even: round the mantissa to the element's bits, ties away (a carry may reach 2**128)
            b = (b + (np.int64(1) << (22 - mbits))) & np.int64(0xFF800000)
        field = b >> 23  # 0 for zero and subnormals: clamped below in any case
        s = field - 127 - emax
        if rule == 1 and (b & 0x7FFFFF) != 0:  # ceil
            s += 1
    s = max(min(s, np.int64(127)), np.int64(-127))
    return np.uint8(s + 127)


@kernel
def _mx_kernel(x, codes, scales, n, post, block, rule, emax, mbits, fmax, cin, cout):
    """Per block (pre x nblocks x post): its e8m0 scale and its elements' codes."""
    nb = (n + block - 1) // block
    for g in prange(scales.size):
        p, r = g // (nb * post), g % (nb * post)
        b, q = r // post, r % post
        base = p * n * post + q
        k0, k1 = b * block, min(b * block + block, n)
        m = np.float32(0)
        nan = False
        for k in range(k0, k1):
            a = abs(np.float32(decode(cin, x[base + k * post])))
            if a != a:
                nan = True
            elif a > m:
                m = a
        e = _e8m0_exponent(np.float32(np.nan) if nan else m, rule, emax, mbits, fmax)
        scales[g] = e
        inv = np.float32(np.nan) if e == 255 else np.float32(math.ldexp(1.0, 127 - np.int64(e)))
        for k in range(k0, k1):
            i = base + k * post
            codes[i] = encode(cout, np.float32(decode(cin, x[i])) * inv)


@kernel
def _mx_dequantize_kernel(codes, out, scales, n, post, block, ccode):
    """out[i] = value(codes[i]) * 2**s of its block (float32, exact); NaN for the NaN scale."""
    nb = (n + block - 1) // block
    for g in prange(scales.size):  # per block, as _mx_kernel: one scale, no divisions per element
        p, r = g // (nb * post), g % (nb * post)
        b, q = r // post, r % post
        base = p * n * post + q
        e = scales[g]
        x = np.float32(np.nan) if e == 255 else np.float32(math.ldexp(1.0, np.int64(e) - 127))
        for k in range(b * block, min(b * block + block, n)):
            i = base + k * post
            out[i] = np.float32(decode(ccode, codes[i])) * x


# --------------------------------------------------------------------------
# per tensor / per channel
# --------------------------------------------------------------------------


def amax(x, axis=None) -> np.ndarray:
    """max |x| over ``axis`` (None, an axis or consecutive axes), keepdims, float64; NaN where a NaN is."""
    x, row = _input(x)
    lo, hi = _reduced_axes(axis, x.ndim)
    pre, n, post = _layout(x.shape, lo, hi)
    nchunk = int(min(max(n // (1 << 16), 1), max(64 // (pre * post), 1)))
    part = np.empty(pre * post * nchunk, np.float64)
    _amax_kernel(as_storage(x, row).reshape(-1), row.tag, n, post, nchunk, part)
    out = part.reshape(-1, nchunk).max(axis=1)  # np.max propagates NaN
    shape = tuple(1 if lo <= k < hi else d for k, d in enumerate(x.shape))
    return out.reshape(shape)


def amax_to_scale(a, dtype, *, eps: float = EPS, pow2: bool = False) -> np.ndarray:
    """torchao's ``amax_to_scale``: float32(fmax / max(amax, eps)) in float64, optionally
    rounded down to a power of two (exactly: the float32 exponent bits kept)."""
    r = _element_row(dtype)
    eps = _eps(eps)
    a = np.asarray(a, np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = (np.float64(r.max) / np.maximum(a, eps)).astype(np.float32)
    if pow2:
        s = _pow2_down(s)
    return s


def _eps(eps) -> float:
    if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise TypeError(f"eps={eps!r} must be a positive number (torchao: 1e-12)")
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps={eps!r} must be a positive finite number (torchao: 1e-12)")
    return float(eps)


def _pow2_down(s: np.ndarray) -> np.ndarray:
    """The largest power of two <= s for positive float32 s (subnormals too); 0, inf, NaN kept."""
    b = s.view(np.uint32)
    normal = (b & np.uint32(0x7F800000)) != 0
    top = np.where(normal, b & np.uint32(0xFF800000), np.uint32(0))
    sub = ~normal & (b != 0)
    if sub.any():  # keep the highest set bit of a subnormal's mantissa
        m = b[sub].astype(np.uint64)
        top[sub] = (np.uint64(1) << np.floor(np.log2(m.astype(np.float64))).astype(np.uint64)).astype(np.uint32)
    top = np.where(np.isfinite(s), top, b)
    return top.view(np.float32)


@serialised
def scaled_cast(x, dtype, *, axis=None, eps: float = EPS, pow2: bool = False, saturate: bool = True,
                tensor_amax=None):
    """(codes, scale): ``x`` scaled by its amax into element format ``dtype`` (module table).

    ``axis``: None (one scale), an axis or consecutive axes reduced (torchao's
    ``axiswise_dim``: ``axis=-1`` gives one scale per row).  ``codes`` is an
    array of ``dtype`` (ml_dtypes) of ``x``'s shape, ``scale`` float32 of the
    reduced shape (keepdims).  ``saturate=False`` rounds without clipping
    (the format's own overflow; torchao always saturates).  ``tensor_amax``: the
    amax (keepdims, as :func:`amax` returns) to scale by instead of ``x``'s own,
    when ``x`` is one chunk of a larger tensor (:mod:`kernels.dask_blocked`)."""
    x, row = _input(x)
    r = _element_row(dtype)
    if not isinstance(pow2, (bool, np.bool_)) or not isinstance(saturate, (bool, np.bool_)):
        raise TypeError(f"pow2={pow2!r} and saturate={saturate!r} must be True or False")
    lo, hi = _reduced_axes(axis, x.ndim)
    shape = tuple(1 if lo <= k < hi else d for k, d in enumerate(x.shape))
    a = amax(x, axis) if tensor_amax is None else np.asarray(tensor_amax, np.float64).reshape(shape)
    scale = amax_to_scale(a, r, eps=eps, pow2=bool(pow2))
    _, n, post = _layout(x.shape, lo, hi)
    codes = np.empty(x.shape, r.dtype)
    tag = encoding_tag(r, Policy(saturate=bool(saturate)))
    _scale_kernel(as_storage(x, row).reshape(-1), as_storage(codes, r).reshape(-1), scale.reshape(-1), n, post,
                  row.tag, tag)
    return codes, scale


@serialised
def scaled_dequantize(codes, scale, *, axis=None) -> np.ndarray:
    """float32(value(codes) / scale): the inverse of :func:`scaled_cast` (same ``axis``)."""
    codes, r = check_array(codes, "codes")
    _element_row(r.dtype, "codes.dtype")
    lo, hi = _reduced_axes(axis, codes.ndim)
    shape = tuple(1 if lo <= k < hi else d for k, d in enumerate(codes.shape))
    scale = np.ascontiguousarray(np.asarray(scale, np.float32))
    if scale.size == 1 and axis is None:
        scale = scale.reshape(shape)
    if scale.shape != shape:
        raise ValueError(f"scale has shape {scale.shape}; codes of shape {codes.shape} with axis={axis!r} "
                         f"need {shape} (as scaled_cast returns)")
    _, n, post = _layout(codes.shape, lo, hi)
    out = np.empty(codes.shape, np.float32)
    _unscale_kernel(as_storage(codes, r).reshape(-1), out.reshape(-1), scale.reshape(-1), n, post, r.tag)
    return out


# --------------------------------------------------------------------------
# MX blocks
# --------------------------------------------------------------------------


def _mx_args(r, scale_rule):
    f = FORMATS[r.name]
    rule = SCALE_RULES.index(_choice(scale_rule, SCALE_RULES, "scale_rule"))
    return rule, element_emax(r), f.mbits, np.float32(r.max)


@serialised
def mx_quantize(x, dtype, *, block: int = 32, axis: int = -1, scale_rule: str = "floor", pad=None):
    """(codes, scales): MX blocks of ``block`` elements along ``axis`` (module table).

    ``codes``: array of element format ``dtype`` (ml_dtypes), ``x``'s shape;
    ``scales``: ``float8_e8m0fnu`` array, ``x``'s shape with ``ceil(n / block)``
    along ``axis``.  A length not a multiple of ``block`` needs ``pad='zeros'``
    (the last block is completed with zeros, which change no amax)."""
    x, row = _input(x)
    r = _element_row(dtype)
    block = _block(block)
    ax = _axis(axis, x.ndim)
    _choice(pad, PADS, "pad")
    nb = _blocks_along(x.shape, ax, block, pad)
    rule, emax, mbits, fmax = _mx_args(r, scale_rule)
    _, n, post = _layout(x.shape, ax, ax + 1)
    codes = np.empty(x.shape, r.dtype)
    scales = np.empty(x.shape[:ax] + (nb,) + x.shape[ax + 1 :], ml_dtypes.float8_e8m0fnu)
    tag = encoding_tag(r, Policy(saturate=True))
    _mx_kernel(as_storage(x, row).reshape(-1), as_storage(codes, r).reshape(-1), scales.view(np.uint8).reshape(-1),
               n, post, block, rule, emax, mbits, fmax, row.tag, tag)
    return codes, scales


@serialised
def mx_dequantize(codes, scales, *, block: int = 32, axis: int = -1, pad=None) -> np.ndarray:
    """value(code) * scale of its block, float32 (exact): the inverse of :func:`mx_quantize`."""
    codes, r = check_array(codes, "codes")
    _element_row(r.dtype, "codes.dtype")
    block = _block(block)
    ax = _axis(axis, codes.ndim)
    _choice(pad, PADS, "pad")
    nb = _blocks_along(codes.shape, ax, block, pad)
    scales = np.asarray(scales)
    if scales.dtype != np.dtype(ml_dtypes.float8_e8m0fnu):
        raise TypeError(f"scales.dtype={scales.dtype} must be float8_e8m0fnu (as mx_quantize returns)")
    want = codes.shape[:ax] + (nb,) + codes.shape[ax + 1 :]
    if scales.shape != want:
        raise ValueError(f"scales has shape {scales.shape}; codes of shape {codes.shape} in blocks of {block} "
                         f"along axis {ax} need {want}")
    scales = np.ascontiguousarray(scales)
    _, n, post = _layout(codes.shape, ax, ax + 1)
    out = np.empty(codes.shape, np.float32)
    _mx_dequantize_kernel(as_storage(codes, r).reshape(-1), out.reshape(-1), scales.view(np.uint8).reshape(-1),
                          n, post, block, r.tag)
    return out
