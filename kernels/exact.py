"""The exact reference (layer 4): the ideal transform in exact arithmetic, correctly rounded.

The ideal transform uses exact statistics and exact arithmetic; the formula
does not matter (all formulas agree in exact arithmetic):

==============  ===================================================================
transform       ideal y (exact rationals unless noted)
==============  ===================================================================
minmax          ``a + (x - lo) * (b - a) / rng``, ``rng = hi - lo`` (1 when 0)
standardize     ``(x - mean) / sqrt(var)`` (var 0 -> 1); irrational in general
scale, maxabs   ``x / d``, ``x / m`` (m 0 -> 1)
quantize        ``clip(round_half_even(x / scale) + zero_point, qmin, qmax)``, exact
                ``scale = (max(hi, 0) - min(lo, 0)) / (qmax - qmin)`` (1 when 0) and
                ``zero_point = clip(round_half_even(qmin - min(lo, 0) / scale), qmin, qmax)``
                (0 when the scale is); ``symmetric``: onnxruntime's range and zero
                point (:func:`kernels.stats.quantize_scale_zp`), exactly
dequantize      ``(q - zero_point) * scale``
==============  ===================================================================

Why the rounding is correct: for every point this module returns two float64
values of the exact y, ``nearest`` (round to nearest even, what a float64 output
should hold) and ``odd`` (round to odd: y itself when y is a float64, else the
neighbour of y whose last significand bit is 1).  Rounding to odd at 53 bits
keeps enough information for any later round-to-nearest into a format of p <= 51
bits to equal the direct rounding of y (Boldo & Melquiond, "Emulation of FMA and
correctly rounded sums: proved algorithms using rounding to odd", IEEE TC 2008):
so ``odd`` cast to float32, float16 or bfloat16 (rounding once, see
:mod:`kernels.codecs`) is the correctly rounded reference.  Integer outputs
round half-to-even from ``odd``: an integer grid needs 2 extra bits, which
float64 has below 2**51, and every larger value saturates.

Both are found with exact integer arithmetic: ``int / int`` true division in
Python is correctly rounded, and exactness is decided by cross-multiplying.
For standardize, ``|y| = |t| / sqrt(v)`` is bracketed between adjacent float64
values by comparing squares exactly (``f**2 * v`` against ``t**2``), so no
approximation of the square root is ever trusted.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .stats import Params


def _odd_of(q: float, num: int, den: int) -> float:
    """Round-to-odd of num/den given q = RN(num/den) (den > 0)."""
    if not math.isfinite(q):
        return q
    qn, qd = q.as_integer_ratio()
    cmp = num * qd - qn * den  # sign of (exact - q)
    if cmp == 0:
        return q
    bits = np.float64(q).view(np.uint64)
    if bits & 1:
        return q
    return math.nextafter(q, math.inf if cmp > 0 else -math.inf)


def _rational(num: int, den: int) -> tuple[float, float]:
    """(nearest, odd) float64 of num/den, den > 0."""
    try:
        q = num / den
    except OverflowError:
        q = math.copysign(math.inf, num)
    return q, _odd_of(q, num, den)


def _sqrt_ratio(tn: int, td: int, vn: int, vd: int) -> tuple[float, float]:
    """(nearest, odd) of t / sqrt(v), t = tn/td, v = vn/vd > 0, td > 0."""
    if tn == 0:
        return 0.0, 0.0
    sign = -1.0 if tn < 0 else 1.0
    # |y|**2 = tn**2 * vd / (td**2 * vn) = A / B
    a_, b_ = tn * tn * vd, td * td * vn
    # a start within a few ulps; the exact bracketing below does the rest
    log2_y = (math.log2(a_) - math.log2(b_)) / 2
    if log2_y > 1024:
        return sign * math.inf, sign * math.inf
    try:
        q = a_ / b_
    except OverflowError:
        q = math.inf
    f = math.sqrt(q) if 0.0 < q < math.inf and q >= 2.0**-1000 else 2.0**log2_y

    def below(z: float) -> bool:  # z**2 <= A/B, exactly
        zn, zd = z.as_integer_ratio()
        return zn * zn * b_ <= a_ * zd * zd

    # bracket: f <= |y| < next(f)
    while not below(f):
        f = math.nextafter(f, 0.0)
    while below(math.nextafter(f, math.inf)):
        f = math.nextafter(f, math.inf)
    up = math.nextafter(f, math.inf)
    fn, fd = f.as_integer_ratio()
    if fn * fn * b_ == a_ * fd * fd:
        return sign * f, sign * f  # exact
    odd = f if np.float64(f).view(np.uint64) & 1 else up
    # nearest: compare |y| with the midpoint m = (f + up) / 2, m**2 against A/B
    mn, md = (Fraction(f) + Fraction(up)).as_integer_ratio()
    md *= 2
    lhs, rhs = mn * mn * b_, a_ * md * md  # m**2 vs |y|**2
    if lhs < rhs:
        nearest = up
    elif lhs > rhs:
        nearest = f
    else:  # an irrational |y| is never a midpoint; a rational one can be
        nearest = f if np.float64(f).view(np.uint64) & 1 == 0 else up
    return sign * nearest, sign * odd


def _sqrt_tail(t: Fraction, var: Fraction, nearest: float) -> float:
    """``t / sqrt(var) - nearest`` to float64: sqrt(var) in 256 fraction bits, so the
    difference keeps about 256 - 53 correct bits after any cancellation."""
    if not math.isfinite(nearest) or t == 0:
        return 0.0
    k = 256
    root = math.isqrt((var.numerator << (2 * k)) // var.denominator)  # sqrt(var) * 2**k, truncated
    return float(t * (1 << k) / root - Fraction(nearest))


LIMB = 13  # bits per limb: limb products < 2**26, so int64 group sums stay exact up to 2**34 elements


def exact_moments(values: np.ndarray, counts: np.ndarray) -> tuple[Fraction, Fraction]:
    """Exact (mean, population variance) of finite values with multiplicities, as Fractions.

    Vectorised: each value is ``m * 2**e`` with an integer ``|m| < 2**53``, split
    into five 13-bit limbs; per exponent, the sums of ``c * limb`` and of
    ``c * limb_i * limb_j`` are exact in int64, and only the (at most ~2,100)
    exponent groups are combined in Python integers.  Past 2**34 elements the
    sums switch to Python integers.
    """
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(counts, dtype=np.int64)
    mant, exp = np.frexp(v)
    m = (mant * 2.0**53).astype(np.int64)  # exact: frexp's mantissa has 53 bits
    e = exp.astype(np.int64) - 53
    order = np.argsort(e, kind="stable")
    m, e, c = m[order], e[order], c[order]
    sign = np.where(m < 0, -1, 1).astype(np.int64)
    m = np.abs(m)
    mask = (1 << LIMB) - 1
    limbs = [(m >> (LIMB * i)) & mask for i in range(5)]
    if int(c.sum()) >= 1 << 34:  # beyond int64's exact range: Python integers (slow, exact)
        c, sign, limbs = c.astype(object), sign.astype(object), [x.astype(object) for x in limbs]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(e)) + 1]) if e.size else np.zeros(0, np.int64)
    exps = e[starts].tolist()

    def group_sums(terms):
        return np.add.reduceat(terms, starts).tolist() if e.size else []

    sc = sign * c
    s1_limbs = [group_sums(sc * limbs[i]) for i in range(5)]
    s2_diag = []
    for k in range(9):  # m**2 = sum_k 2**(13k) * sum_{i+j=k} limb_i * limb_j
        term = limbs[0] * 0
        for i in range(max(0, k - 4), min(4, k) + 1):
            term += limbs[i] * limbs[k - i]
        s2_diag.append(group_sums(c * term))
    emin = exps[0] if exps else 0
    s1 = s2 = 0
    for g, eg in enumerate(exps):
        shift = eg - emin
        s1 += sum(int(s1_limbs[i][g]) << (LIMB * i) for i in range(5)) << shift
        s2 += sum(int(s2_diag[k][g]) << (LIMB * k) for k in range(9)) << (2 * shift)
    n = int(c.sum())
    scale = Fraction(2) ** emin
    mean = Fraction(s1, n) * scale
    var = Fraction(s2 * n - s1 * s1, n * n) * scale * scale
    return mean, var


class Ideal:
    """The ideal transform of one feature, in exact arithmetic.

    ``stats`` holds exact statistics as Fractions (``min``, ``max``, ``mean``,
    ``var``, ``maxabs``, ``divisor``, ``scale``, ``zero_point``) and ``options``
    the transform's options (``feature_range``; ``qmax`` and ``qmin``, the ``qdtype``'s
    range, ``qmin`` 0 when not given).
    """

    def __init__(self, transform: str, stats: dict, options: dict, inverse: bool = False):
        self.transform = transform
        self.inverse = inverse
        self.kind = "affine"
        one = Fraction(1)
        if transform == "minmax":
            lo, hi = stats["min"], stats["max"]
            a, b = (Fraction(v) for v in options.get("feature_range", (0.0, 1.0)))
            rng = (hi - lo) or one
            self.lo, self.s, self.a = lo, (b - a) / rng, a
        elif transform == "standardize":
            self.kind = "sqrt"
            self.mean = stats["mean"]
            self.var = stats["var"] or one
        elif transform in ("scale", "maxabs"):
            d = stats["divisor"] if transform == "scale" else (stats["maxabs"] or one)
            self.lo, self.s, self.a = Fraction(0), one / d, Fraction(0)
        elif transform in ("quantize", "dequantize"):
            self.scale, self.zp, self.qmax = stats["scale"] or one, stats["zero_point"], options["qmax"]
            self.qmin = options.get("qmin", 0)
            self.kind = "quantize" if (transform == "quantize") != inverse else "dequantize"
        else:
            raise ValueError(f"no ideal for transform={transform!r}")
        if inverse and self.kind == "affine":
            # x = (y - a) / s + lo
            self.lo, self.s, self.a = self.a, one / self.s, self.lo
        if inverse and self.kind == "sqrt":
            raise ValueError("the exact inverse of standardize is not needed by any metric")

    @property
    def slope(self) -> float:
        """``|dy/dx|`` of the ideal map (its affine part; quantize: ``1/scale``):
        dividing an output error by it gives the error in input units."""
        if self.kind == "affine":
            return abs(float(self.s))
        if self.kind == "sqrt":
            return 1.0 / math.sqrt(float(self.var))
        if self.kind == "quantize":
            return abs(float(1 / self.scale))
        return abs(float(self.scale))

    def point(self, x: float, tail: bool = False) -> tuple:
        """(nearest, odd) float64 of the ideal y at one finite input x; with
        ``tail``, also ``y - nearest`` rounded to float64 (so an error
        ``|out - y|`` is ``|(out - nearest) - tail|``, free of nearest's rounding).
        quantize: y is the real level ``clip(x / scale + zero_point)`` before its
        rounding, nearest the correctly rounded integer."""
        if self.kind == "affine":
            q = (Fraction(x) - self.lo) * self.s + self.a
        elif self.kind == "sqrt":
            t = Fraction(x) - self.mean
            r = _sqrt_ratio(t.numerator, t.denominator, self.var.numerator, self.var.denominator)
            return (*r, _sqrt_tail(t, self.var, r[0])) if tail else r
        elif self.kind == "quantize":
            real = Fraction(x) / self.scale + self.zp
            q = round(Fraction(x) / self.scale) + self.zp  # round(): half to even
            q = min(max(q, self.qmin), self.qmax)
            # the tail reaches the unrounded level: an error in input units is then the
            # quantization error (up to scale / 2), not 0 for a correct rounding
            return (float(q), float(q), float(min(max(real, self.qmin), self.qmax) - q)) if tail else (float(q), float(q))
        else:
            q = (Fraction(x) - self.zp) * self.scale
        r = _rational(q.numerator, q.denominator)
        return (*r, float(q - Fraction(r[0])) if math.isfinite(r[0]) else 0.0) if tail else r

    def __call__(self, x: np.ndarray, tail: bool = False) -> tuple:
        """(nearest, odd) float64 arrays (and ``tail``, see :meth:`point`); NaN
        stays NaN, +-inf maps as the limit."""
        x = np.asarray(x, dtype=np.float64)
        cols = [np.empty(x.shape) for _ in range(3 if tail else 2)]
        for i, v in enumerate(x.tolist()):
            if math.isfinite(v):
                got = self.point(v, tail)
            else:
                lim = self.limit(v)
                got = (lim, lim, 0.0)
            for c, g in zip(cols, got):
                c[i] = g
        return tuple(cols)

    def limit(self, v: float) -> float:
        if math.isnan(v):
            return math.nan
        if self.kind == "affine":
            return v * float(np.sign(float(self.s)))
        if self.kind == "sqrt":
            return v
        if self.kind == "quantize":
            return float(self.qmax) if v > 0 else float(self.qmin)
        return v * float(np.sign(float(self.scale)))


def exact_stats(params: Params, feature: int, values: np.ndarray, counts: np.ndarray) -> dict:
    """Exact statistics of one feature (Fractions), from its distinct values and counts.

    min/max come from the data; mean and variance are exact sums; quantize's
    scale and zero point are recomputed exactly by the ONNX rule unless they
    were given."""
    fv = np.asarray(values).astype(np.float64)
    if not np.isfinite(fv).all():
        raise ValueError("the data hold inf: no finite reference")
    lo, hi = Fraction(float(fv.min())), Fraction(float(fv.max()))
    out = {"min": lo, "max": hi, "maxabs": max(abs(lo), abs(hi))}
    if params.transform == "standardize":
        out["mean"], out["var"] = exact_moments(fv, counts)
    if "divisor" in params.stats:
        out["divisor"] = Fraction(float(params["divisor"][feature]))
    if params.transform in ("quantize", "dequantize"):
        qmin, qmax = qrange_of(params)
        if params.options["scale_given"]:
            out["scale"] = Fraction(float(params["scale"][feature]))
            out["zero_point"] = int(params["zero_point"][feature])
        else:
            rmin, rmax = min(lo, Fraction(0)), max(hi, Fraction(0))
            lo_q, hi_q = qmin, qmax
            if params.options.get("symmetric", False):
                if qmin < 0:  # onnxruntime's symmetric range of a signed type: [-qmax, qmax]
                    lo_q = -qmax
                rmax = max(-rmin, rmax)
                rmin = -rmax
            scale = (rmax - rmin) / (hi_q - lo_q)
            if scale == 0:
                out["scale"], out["zero_point"] = Fraction(1), 0
            else:
                out["scale"] = scale
                z = Fraction(lo_q + hi_q, 2) if params.options.get("symmetric", False) else lo_q - rmin / scale
                out["zero_point"] = min(max(round(z), qmin), qmax)  # round(): half to even
    return out


def fitted_stats(params: Params, feature: int) -> dict:
    """The fitted float64 statistics of one feature, as exact Fractions (for the
    apply-only reference: exact arithmetic, fitted parameters)."""
    out = {}
    for k, v in params.stats.items():
        val = float(v[feature])
        if not math.isfinite(val):
            raise ValueError(f"fitted {k} is {val}: no finite reference")
        out[k] = int(val) if k == "zero_point" else Fraction(val)
    if "std" in out:
        out["var"] = out["std"] ** 2  # the kernels divide by the fitted std itself
    return out


def qmax_of(params: Params) -> int | None:
    q = params.options.get("qdtype")
    return int(np.iinfo(np.dtype(q)).max) if q else None


def qrange_of(params: Params) -> tuple[int, int] | None:
    """(qmin, qmax) of a quantize/dequantize's ``qdtype`` (-128, 127 for int8), else None."""
    q = params.options.get("qdtype")
    if not q:
        return None
    info = np.iinfo(np.dtype(q))
    return int(info.min), int(info.max)
