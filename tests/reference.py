"""Naive, independent references: numpy / ml_dtypes arithmetic op by op, and Fractions.

numpy's float16 array arithmetic (and ml_dtypes' bfloat16) computes each
operation in float32 and rounds the result, so it is the reference for the
emulated 16-bit compute dtypes.  Conversions whose numpy/ml_dtypes cast is not
correctly rounded (float64 -> bfloat16 rounds twice in ml_dtypes) go through
:func:`round_exact`, which decides between neighbours with Fractions.
"""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np

NP = {
    "uint8": np.dtype(np.uint8),
    "uint16": np.dtype(np.uint16),
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}
UINT_VIEW = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _neighbours(v, dtype):
    """v's bit pattern and the two adjacent patterns of the same sign."""
    bits = np.array([v], dtype=dtype).view(UINT_VIEW[dtype.itemsize])[0]
    out = []
    for d in (-1, 0, 1):
        b = int(bits) + d
        if 0 <= b < 2 ** (8 * dtype.itemsize):
            out.append(np.array([b], dtype=UINT_VIEW[dtype.itemsize]).view(dtype)[0])
    return out


def round_exact_scalar(q: Fraction, dtype) -> float:
    """The value of dtype nearest to the rational q, ties to the even pattern; overflow -> inf."""
    dtype = np.dtype(dtype)
    approx = np.array([float(q)], dtype=np.float64).astype(dtype)[0]  # within an ulp
    if not np.isfinite(approx):
        big = float(ml_dtypes.finfo(dtype).max)
        # overflow threshold: max + half an ulp of max rounds to inf (ties to even -> inf)
        ulp = big - float(np.nextafter(np.array(big, dtype=np.float64), 0)) if dtype == np.float64 else None
        if ulp is None:
            below = _neighbours(np.array([big], dtype=dtype)[0], dtype)[0]
            ulp = big - float(below)
        if abs(q) < Fraction(big) + Fraction(ulp) / 2:
            return np.copysign(big, float(q))
        return np.copysign(np.inf, float(q))
    best = None
    for c in _neighbours(approx, dtype):
        if not np.isfinite(c):
            continue
        err = abs(Fraction(float(c)) - q)
        even = int(np.array([c], dtype=dtype).view(UINT_VIEW[dtype.itemsize])[0]) % 2 == 0
        key = (err, not even)
        if best is None or key < best[0]:
            best = (key, float(c))
    return best[1]


def round_exact(values: np.ndarray, dtype) -> np.ndarray:
    """Elementwise correctly rounded conversion of float64 values (NaN, inf kept)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.empty(values.shape, dtype=np.float64)
    # unique by bit pattern, so -0.0 keeps its sign
    uniq, inv = np.unique(values.view(np.uint64), return_inverse=True)
    res = np.array(
        [
            v if not np.isfinite(v) or v == 0 else round_exact_scalar(Fraction(float(v)), dtype)
            for v in uniq.view(np.float64)
        ],
        dtype=np.float64,
    )
    out[...] = res[inv.reshape(values.shape)]
    return out.astype(np.dtype(dtype))


def convert(values, name: str) -> np.ndarray:
    """Reference conversion into registry dtype ``name``: correct rounding, integer saturation."""
    target = NP[name]
    values = np.asarray(values)
    if name in ("uint8", "uint16"):
        v = values.astype(np.float64)
        r = np.clip(np.rint(np.nan_to_num(v, nan=0.0)), 0, np.iinfo(target).max)
        return r.astype(target)
    if values.dtype == np.float64 and name == "bfloat16":
        return round_exact(values, target)  # ml_dtypes rounds float64 twice
    with np.errstate(over="ignore"):
        return values.astype(target)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-for-bit equality, except that any NaN equals any NaN."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind in "ui":
        return np.array_equal(a, b)
    fa, fb = a.astype(np.float64), b.astype(np.float64)
    nan = np.isnan(fa)
    if not np.array_equal(nan, np.isnan(fb)):
        return False
    ua = a.view(UINT_VIEW[a.dtype.itemsize])
    ub = b.view(UINT_VIEW[b.dtype.itemsize])
    return bool(np.array_equal(ua[~nan], ub[~nan]))


def derived(params, formula: str, compute: str):
    """The transform's constants in the compute dtype, per the design's table."""
    c = NP[compute].type
    t = params.transform

    def C(v):
        return np.asarray(v, dtype=np.float64).astype(NP[compute])

    def nz(v):
        return np.where(v == 0, c(1), v).astype(NP[compute])

    if t == "minmax":
        lo, hi = C(params["min"]), C(params["max"])
        a, b = params.options["feature_range"]
        a_c = C(np.full(params.nfeat, a))
        w = (C(np.full(params.nfeat, b)) - a_c).astype(NP[compute])
        rng, post = nz((hi - lo).astype(NP[compute])), (a, b) != (0.0, 1.0)
    elif t == "standardize":
        lo, rng = C(params["mean"]), nz(C(params["std"]))
        a_c, w, post = C(np.zeros(params.nfeat)), C(np.ones(params.nfeat)), False
    elif t == "scale":
        lo, rng = C(np.zeros(params.nfeat)), C(params["divisor"])
        a_c, w, post = lo, C(np.ones(params.nfeat)), False
    elif t == "maxabs":
        lo, rng = C(np.zeros(params.nfeat)), nz(C(params["maxabs"]))
        a_c, w, post = lo, C(np.ones(params.nfeat)), False
    return lo, rng, a_c, w, post


def reference_transform(x: np.ndarray, params, formula: str, compute: str, out: str) -> np.ndarray:
    """transform() written op by op in numpy, each op in the compute dtype."""
    cd = NP[compute]
    xin = x.astype(np.float64) if x.dtype == NP["bfloat16"] else x
    xc = convert(xin, compute) if x.dtype != cd else x.copy()
    t = params.transform
    with np.errstate(all="ignore"):
        if t == "quantize":
            scale = convert(params["scale"], compute)
            zp = convert(params["zero_point"], compute)
            # the clip bounds are exact: qmax = 65535 is no bfloat16/float16 value, so the
            # clip happens in float64 and the output rounds once from there
            qmax = float(np.iinfo(NP[params.options["qdtype"]]).max)
            q = (np.rint((xc / scale).astype(cd)).astype(cd) + zp).astype(cd).astype(np.float64)
            q = np.where(q < 0, 0.0, q)
            y = np.where(q > qmax, qmax, q)
            return convert(y, out)
        elif t == "dequantize":
            scale = convert(params["scale"], compute)
            zp = convert(params["zero_point"], compute)
            y = ((xc - zp).astype(cd) * scale).astype(cd)
        else:
            lo, rng, a, w, post = derived(params, formula, compute)
            if formula in ("sub_div", "div"):
                y = ((xc - lo).astype(cd) / rng).astype(cd)
            elif formula in ("sub_mul", "mul"):
                r = (cd.type(1) / rng).astype(cd)
                y = ((xc - lo).astype(cd) * r).astype(cd)
            else:
                s = (w / rng).astype(cd)
                tt = (a - (lo * s).astype(cd)).astype(cd)
                if formula == "mul_add":
                    y = ((xc * s).astype(cd) + tt).astype(cd)
                else:  # fma: exact x*s + t, one rounding
                    flat = [
                        round_exact_scalar(Fraction(float(v)) * Fraction(float(ss)) + Fraction(float(tv)), cd)
                        if np.isfinite(v) and np.isfinite(ss) and np.isfinite(tv)
                        else float(v) * float(ss) + float(tv)  # IEEE: inf * 0 is NaN
                        for v, ss, tv in zip(
                            xc.reshape(-1).astype(np.float64),
                            np.broadcast_to(s, xc.shape).reshape(-1).astype(np.float64),
                            np.broadcast_to(tt, xc.shape).reshape(-1).astype(np.float64),
                        )
                    ]
                    y = np.array(flat, dtype=np.float64).reshape(xc.shape).astype(cd)
            if post and formula not in ("mul_add", "fma"):
                y = ((y * w).astype(cd) + a).astype(cd)
    y64 = y.astype(np.float64) if cd == NP["bfloat16"] else y
    return convert(y64, out) if cd != NP[out] else y


def numpy_distinct(y) -> int:
    """Distinct non-NaN values by value (-0.0 == +0.0), with numpy alone."""
    v = np.asarray(y).astype(np.float64) + 0.0
    return int(np.unique(v[~np.isnan(v)]).size)
