"""Statistics (layer 2): parallel min/max and mean/variance with a chosen accumulator.

Work is split into fixed chunks of rows (``CHUNK`` elements), independent of
the thread count, so results are reproducible on any machine.  Per chunk and
feature each accumulator produces ``(count, mean, M2)``; chunks are merged in
order by Chan's formula.  min/max merge exactly.

Accumulators (every sum, product, mean and M2 is rounded to ``acc_dtype``
after each operation; counts are exact integers):

==========  ================================================================
naive       one sequential pass: ``s += x``, ``q += x*x``; ``mean = s/n``,
            ``M2 = q - s*mean`` (the textbook formula: cancellation, and a
            float16 sum of ones stalls at 2048)
pairwise    two passes per chunk: blocks of 128 summed in 16 interleaved
            lanes, blocks combined in a binary tree (numpy's scheme, wider);
            ``M2 = sum((x - mean)**2)`` the same way
kahan       two passes per chunk, each a Kahan-compensated sum in 16
            interleaved lanes, lanes combined by a compensated sum
welford     one pass, Welford's update in 16 interleaved lanes, lanes
            merged by Chan's formula
==========  ================================================================

NaN policy: ``raise`` (ValueError), ``omit`` (NaN values are skipped, the
count excludes them), ``propagate`` (statistics become NaN).
"""

from __future__ import annotations

import warnings

import numpy as np
from numba import njit, prange
from numba.core import types
from numba.extending import overload

from ._tags import Tag, tag_name
from ._threads import serialised
from .params import Frozen, Params, normalize_axis  # noqa: F401  (re-exported: kernels.stats.Params)
from .given import GIVEN, GIVEN_AXIS, params  # noqa: F401  (re-exported)
from ._validate import check_array, check_choice, check_dtype, check_real, check_reals
from ._jit import kernel
from .codecs import COMPUTE_DTYPES, JIT, as_arith, decode, key_is_nan, key_range, key_to_value, order_key, rnd, to_compute

CHUNK = 1 << 16
LANES = 16  # interleaved accumulators: independent chains the CPU overlaps
PW_LANES = 8  # pairwise: numpy's 8 accumulators per block of 128
ACCUMULATORS = ("naive", "pairwise", "kahan", "welford")
ACC_DTYPES = COMPUTE_DTYPES
NAN_POLICIES = ("raise", "omit", "propagate")
TRANSFORMS = ("minmax", "standardize", "scale", "maxabs", "quantize", "dequantize")
_ACC_TAGS = {a: Tag("acc", a) for a in ACCUMULATORS}
_X, _DEV2 = Tag("term", "x"), Tag("term", "dev2")
_NAN_KEEP, _NAN_OMIT = Tag("nan", "keep"), Tag("nan", "omit")


# --------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------


@kernel
def _key_extremes(x, cin, kmin, kmax):
    """(min key, max key) over a flat array, NaN keys included: the hot path of a
    min/max fit is two reductions in the key's own width (16 lanes per 256 bits for
    16-bit floats), without the NaN bookkeeping that widens the lanes."""
    for i in prange(x.size):
        k = order_key(cin, x[i])
        kmin = min(kmin, k)
        kmax = max(kmax, k)
    return kmin, kmax


@kernel
def _minmax_flat(x, cin, kneg, kpos):
    """(min key, max key, NaN count) over a flat array, in order-key space."""
    kmin = kpos
    kmax = kneg
    nan = 0
    for i in prange(x.size):
        k = order_key(cin, x[i])
        isnan = key_is_nan(cin, k, kneg, kpos)
        nan += isnan
        kmin = min(kmin, kpos if isnan else k)
        kmax = max(kmax, kneg if isnan else k)
    return kmin, kmax, nan


@kernel
def _minmax_features(x, nfeat, cin, kneg, kpos):
    """Per-feature (min key, max key, NaN count): row chunks in parallel, merged exactly."""
    rows = x.size // nfeat
    per = max(1, CHUNK // nfeat)
    nchunks = (rows + per - 1) // per
    lo = np.empty((nchunks, nfeat), dtype=np.int64)
    hi = np.empty((nchunks, nfeat), dtype=np.int64)
    nans = np.zeros((nchunks, nfeat), dtype=np.int64)
    for c in prange(nchunks):
        for j in range(nfeat):
            lo[c, j] = kpos
            hi[c, j] = kneg
        for r in range(c * per, min(rows, c * per + per)):
            for j in range(nfeat):
                k = order_key(cin, x[r * nfeat + j])
                isnan = key_is_nan(cin, k, kneg, kpos)
                nans[c, j] += isnan
                lo[c, j] = min(lo[c, j], kpos if isnan else k)
                hi[c, j] = max(hi[c, j], kneg if isnan else k)
    out_lo = np.empty(nfeat, dtype=np.int64)
    out_hi = np.empty(nfeat, dtype=np.int64)
    out_nan = np.empty(nfeat, dtype=np.int64)
    for j in range(nfeat):  # loops, not lo[:, j].min(): no strided-array reductions to compile
        out_lo[j], out_hi[j], out_nan[j] = lo[0, j], hi[0, j], nans[0, j]
        for c in range(1, nchunks):
            out_lo[j] = min(out_lo[j], lo[c, j])
            out_hi[j] = max(out_hi[j], hi[c, j])
            out_nan[j] += nans[c, j]
    return out_lo, out_hi, out_nan


def _minmax(flat, nfeat, row):
    """Exact per-feature min, max (float64; NaN where every value is NaN) and NaN counts."""
    kneg, kpos = key_range(row.name)
    if nfeat == 1:
        kt = np.iinfo(type(kneg))
        lo, hi = _key_extremes(flat, row.tag, type(kneg)(kt.max), type(kneg)(kt.min))
        nan = 0
        if lo < kneg or hi > kpos:  # a NaN key lies outside [key(-inf), key(+inf)]: count them
            lo, hi, nan = _minmax_flat(flat, row.tag, kneg, kpos)
        lo, hi, nan = np.array([lo]), np.array([hi]), np.array([nan])
    else:
        lo, hi, nan = _minmax_features(flat, nfeat, row.tag, kneg, kpos)
    count = flat.size // nfeat
    lo_v = np.where(nan == count, np.nan, key_to_value(row.name, lo))
    hi_v = np.where(nan == count, np.nan, key_to_value(row.name, hi))
    return lo_v, hi_v, nan


def _term(x, i, cin, ac, mean, square, nan):
    """One summand in acc arithmetic, and whether it counts.

    ``square`` (tag ``term:x`` or ``term:dev2``) picks x or (x - mean)**2;
    ``nan`` (tag ``nan:keep`` or ``nan:omit``) says whether a NaN becomes a
    zero that does not count.  Both are compile-time, so the inner loops carry
    no branches and vectorise.
    """


@overload(_term, jit_options=JIT)
def _ov_term(x, i, cin, ac, mean, square, nan):
    omit = tag_name(nan, "nan") == "omit"
    if isinstance(square, types.Boolean):
        # a run-time choice: the two passes of a two-pass sum share one compiled
        # loop (LLVM unswitches the invariant branch), half the compile of a cold fit
        def impl(x, i, cin, ac, mean, square, nan):
            v = to_compute(ac, decode(cin, x[i]))
            valid = True
            if omit:
                valid = v == v
            if square:
                d = rnd(ac, v - mean)
                v = rnd(ac, d * d)
            if omit and not valid:
                v = as_arith(ac, 0.0)
            return v, valid

        return impl
    dev2 = tag_name(square, "term") == "dev2"

    def impl(x, i, cin, ac, mean, square, nan):
        v = to_compute(ac, decode(cin, x[i]))
        valid = True
        if omit:
            valid = v == v
        if dev2:
            d = rnd(ac, v - mean)
            v = rnd(ac, d * d)
        if omit and not valid:
            v = as_arith(ac, 0.0)
        return v, valid

    return impl


@njit(**JIT)
def _chan(ac, na, ma, m2a, nb, mb, m2b):
    """Merge (n, mean, M2) partials: Chan et al.; counts are exact."""
    if na == 0:
        return nb, mb, m2b
    if nb == 0:
        return na, ma, m2a
    n = na + nb
    d = rnd(ac, mb - ma)
    mean = rnd(ac, ma + rnd(ac, d * as_arith(ac, nb / n)))
    m2 = rnd(ac, rnd(ac, m2a + m2b) + rnd(ac, rnd(ac, d * d) * as_arith(ac, na * nb / n)))
    return n, mean, m2


def _moments(acc, x, cin, ac, nan, nlanes):
    """(count, mean, M2) of the 1-D view x with accumulator ``acc``.

    A contiguous view has unit stride known at compile time, so the lane
    loops vectorise; a per-feature (strided) view compiles separately.
    """


@njit(**JIT)
def _naive(x, cin, ac, nan):
    zero = as_arith(ac, 0.0)
    s = zero
    q = zero
    k = 0
    for r in range(x.size):
        v, valid = _term(x, r, cin, ac, zero, _X, nan)
        s = rnd(ac, s + v)
        q = rnd(ac, q + rnd(ac, v * v))
        k += valid
    if k == 0:
        return 0.0, zero, zero
    mean = rnd(ac, s / as_arith(ac, k))
    m2 = rnd(ac, q - rnd(ac, s * mean))
    if m2 < 0:  # cancellation can make it negative
        m2 = zero
    return float(k), mean, m2


@njit(**JIT)
def _pairwise_sum(x, cin, ac, mean, square, nan, nlanes):
    """Blocks of 128 summed in ``PW_LANES`` interleaved lanes (lanes combined
    as a balanced tree), blocks combined bottom-up in a binary tree."""
    zero = as_arith(ac, 0.0)
    nl = min(nlanes, PW_LANES)  # a runtime value: see _moments_kernel
    lanes = np.full(nl, zero)
    unl = np.uint64(nl)
    stack = np.empty(64, dtype=np.float64)
    level = np.empty(64, dtype=np.int64)
    top = 0
    k = 0
    cnt = x.size
    for b0 in range(0, cnt, 128):
        blen = min(128, cnt - b0)
        full = blen - blen % nl
        lanes[:] = zero
        r = np.uint64(b0)
        while r < np.uint64(b0 + full):
            for lane in range(unl):
                t, v = _term(x, r + lane, cin, ac, mean, square, nan)
                lanes[lane] = rnd(ac, lanes[lane] + t)
                k += v
            r += unl
        w = nl
        while w > 1:
            w //= 2
            for lane in range(w):
                lanes[lane] = rnd(ac, lanes[lane] + lanes[lane + w])
        s = lanes[0]
        for r in range(full, blen):
            t, v = _term(x, b0 + r, cin, ac, mean, square, nan)
            s = rnd(ac, s + t)
            k += v
        # push, then merge equal levels: a balanced tree over the blocks
        stack[top] = s
        level[top] = 0
        top += 1
        while top >= 2 and level[top - 1] == level[top - 2]:
            merged = rnd(ac, as_arith(ac, stack[top - 2]) + as_arith(ac, stack[top - 1]))
            top -= 1
            stack[top - 1] = merged
            level[top - 1] += 1
    total = zero
    while top > 0:  # the unpaired subtrees, smallest (last pushed) first
        top -= 1
        total = rnd(ac, as_arith(ac, stack[top]) + total)
    return total, k


@njit(**JIT)
def _kahan_step(s, c, t, ac):
    y = rnd(ac, t - c)
    u = rnd(ac, s + y)
    c = rnd(ac, rnd(ac, u - s) - y)
    return u, c


@njit(**JIT)
def _kahan_sum(x, cin, ac, mean, square, nan, nlanes):
    """Kahan-compensated sums in ``nlanes`` interleaved lanes; the lane sums and
    then their compensations go through one more compensated sum."""
    zero = as_arith(ac, 0.0)
    sums = np.full(nlanes, zero)
    comps = np.full(nlanes, zero)
    k = 0
    cnt = x.size
    full = cnt - cnt % nlanes
    unl = np.uint64(nlanes)
    r = np.uint64(0)
    while r < np.uint64(full):
        for lane in range(unl):
            t, v = _term(x, r + lane, cin, ac, mean, square, nan)
            sums[lane], comps[lane] = _kahan_step(sums[lane], comps[lane], t, ac)
            k += v
        r += unl
    s, c = zero, zero
    for lane in range(nlanes):
        s, c = _kahan_step(s, c, sums[lane], ac)
    for lane in range(nlanes):
        s, c = _kahan_step(s, c, -comps[lane], ac)
    for r in range(full, cnt):
        t, v = _term(x, r, cin, ac, mean, square, nan)
        s, c = _kahan_step(s, c, t, ac)
        k += v
    return s, k


def _sum(acc, x, cin, ac, mean, square, nan, nlanes):
    """Sum of x (or of (x - mean)**2) with the two-pass accumulators."""


@overload(_sum, jit_options=JIT)
def _ov_sum(acc, x, cin, ac, mean, square, nan, nlanes):
    impl = {"pairwise": _pairwise_sum, "kahan": _kahan_sum}[tag_name(acc, "acc")]
    return lambda acc, x, cin, ac, mean, square, nan, nlanes: impl(x, cin, ac, mean, square, nan, nlanes)


@njit(**JIT)
def _two_pass(acc, x, cin, ac, nan, nlanes):
    zero = as_arith(ac, 0.0)
    s, k = _sum(acc, x, cin, ac, zero, False, nan, nlanes)
    if k == 0:
        return 0.0, zero, zero
    mean = rnd(ac, s / as_arith(ac, k))
    m2, _ = _sum(acc, x, cin, ac, mean, True, nan, nlanes)
    return float(k), mean, m2


@njit(**JIT)
def _welford_step(n, m, m2, t, valid, ac):
    if valid:
        n += 1.0
        d = rnd(ac, t - m)
        m = rnd(ac, m + rnd(ac, d / as_arith(ac, n)))
        m2 = rnd(ac, m2 + rnd(ac, d * rnd(ac, t - m)))
    return n, m, m2


@njit(**JIT)
def _welford(x, cin, ac, nan, nlanes):
    """Welford's update in ``nlanes`` interleaved lanes (the tail in lane 0), lanes merged by Chan."""
    zero = as_arith(ac, 0.0)
    ns = np.zeros(nlanes)
    means = np.full(nlanes, zero)
    m2s = np.full(nlanes, zero)
    cnt = x.size
    full = cnt - cnt % nlanes
    unl = np.uint64(nlanes)
    r = np.uint64(0)
    while r < np.uint64(full):
        for lane in range(unl):
            t, v = _term(x, r + lane, cin, ac, zero, _X, nan)
            ns[lane], means[lane], m2s[lane] = _welford_step(ns[lane], means[lane], m2s[lane], t, v, ac)
        r += unl
    n, m, q = ns[0], means[0], m2s[0]
    for r in range(full, cnt):
        t, v = _term(x, r, cin, ac, zero, _X, nan)
        n, m, q = _welford_step(n, m, q, t, v, ac)
    for lane in range(1, nlanes):
        n, m, q = _chan(ac, n, m, q, ns[lane], means[lane], m2s[lane])
    return n, m, q


@overload(_moments, jit_options=JIT)
def _ov_moments(acc, x, cin, ac, nan, nlanes):
    name = tag_name(acc, "acc")
    if name == "naive":
        return lambda acc, x, cin, ac, nan, nlanes: _naive(x, cin, ac, nan)
    if name in ("pairwise", "kahan"):
        return lambda acc, x, cin, ac, nan, nlanes: _two_pass(acc, x, cin, ac, nan, nlanes)
    if name == "welford":
        return lambda acc, x, cin, ac, nan, nlanes: _welford(x, cin, ac, nan, nlanes)
    raise TypeError(name)


@kernel
def _moment_partials(x, nfeat, cin, ac, acc, nan, nlanes):
    """Per chunk of ``CHUNK // nfeat`` rows and per feature: (count, mean, M2),
    every op in the accumulator dtype.  The chunks, and so the bits, do not
    depend on the thread count.

    ``nlanes`` (always LANES) arrives at run time on purpose: Numba leaves
    LLVM's SLP vectoriser off, so a lane loop with a constant trip count is
    fully unrolled and stays scalar; with a runtime trip count and unsigned
    indices the loop vectoriser takes it.
    """
    rows = x.size // nfeat
    per = max(1, CHUNK // nfeat)
    nchunks = (rows + per - 1) // per
    cnt = np.zeros((nchunks, nfeat))
    mean = np.zeros((nchunks, nfeat))
    m2 = np.zeros((nchunks, nfeat))
    for c in prange(nchunks):
        r0 = c * per
        r1 = min(rows, r0 + per)
        if nfeat == 1:
            k, m, q = _moments(acc, x[r0:r1], cin, ac, nan, nlanes)
            cnt[c, 0] = k
            mean[c, 0] = m
            m2[c, 0] = q
        else:
            # a feature's column is copied to a contiguous buffer, so the accumulators
            # compile for one array layout only (a strided view compiled them twice:
            # about 2 s of a cold fit) and vectorise; same values in the same order
            col = np.empty(r1 - r0, x.dtype)
            for j in range(nfeat):
                for r in range(r1 - r0):
                    col[r] = x[(r0 + r) * nfeat + j]
                k, m, q = _moments(acc, col, cin, ac, nan, nlanes)
                cnt[c, j] = k
                mean[c, j] = m
                m2[c, j] = q
    return cnt, mean, m2


@njit(**JIT)
def _merge_moments(cnt, mean, m2, ac):
    """Chan's merge of the chunk partials, in chunk order: (count, mean, var, std) per feature."""
    nchunks, nfeat = cnt.shape
    out = np.empty((4, nfeat))
    for j in range(nfeat):
        n, m, q = cnt[0, j], as_arith(ac, mean[0, j]), as_arith(ac, m2[0, j])
        for c in range(1, nchunks):
            n, m, q = _chan(ac, n, m, q, cnt[c, j], as_arith(ac, mean[c, j]), as_arith(ac, m2[c, j]))
        var = rnd(ac, q / as_arith(ac, n)) if n > 0 else as_arith(ac, np.nan)
        out[0, j] = n
        out[1, j] = m if n > 0 else np.nan
        out[2, j] = var
        out[3, j] = rnd(ac, np.sqrt(var))
    return out


def _moments_kernel(x, nfeat, cin, ac, acc, nan, nlanes):
    """Per-feature (count, mean, var, std): chunk partials in parallel, merged in order."""
    cnt, mean, m2 = _moment_partials(x, nfeat, cin, ac, acc, nan, nlanes)
    return _merge_moments(cnt, mean, m2, ac)


# --------------------------------------------------------------------------
# public: fit and its immutable result
# --------------------------------------------------------------------------


def _nfeat(shape, axis) -> int:
    return 1 if axis is None else int(shape[-1])


def _feature_range(options) -> tuple[float, float]:
    fr = options.get("feature_range", (0.0, 1.0))
    if isinstance(fr, (str, bytes)) or not np.iterable(fr) or len(fr) != 2:
        raise TypeError(f"feature_range={fr!r} must be two numbers (a, b) with a < b")
    a, b = (check_real(v, "feature_range") for v in fr)
    if not (np.isfinite(a) and np.isfinite(b) and a < b):
        raise ValueError(f"feature_range={fr!r} must be two finite numbers with a < b")
    return a, b


_OPTIONS = {
    "minmax": {"feature_range"},
    "standardize": set(),
    "scale": {"divisor"},
    "maxabs": set(),
    "quantize": {"qdtype", "scale", "zero_point", "symmetric"},
    "dequantize": {"qdtype", "scale", "zero_point"},
}


QDTYPES = ("uint8", "uint16", "int8", "int16")  # quantize targets (ONNX QuantizeLinear's integer types)
# onnxruntime's symmetric range of a signed type (quant_utils.ONNX_INT_TYPE_SYMMETRIC_RANGE)
_SYMMETRIC_RANGE = {"int8": (-127.0, 127.0), "int16": (-32767.0, 32767.0)}


def quantize_scale_zp(lo, hi, qrow, symmetric: bool, input_dtype: str):
    """(scale, zero_point) float64 arrays from per-feature min/max, as onnxruntime's
    ``quantization.quant_utils.compute_scale_zp`` (1.32.0) computes them: the range
    extended to hold 0 (and made [-m, m] when ``symmetric``), ``scale = (rmax -
    rmin) / (qmax - qmin)`` in float64, ``zero_point = round(qmin - rmin / scale)``
    (ties to even; ``round((qmin + qmax) / 2)`` when symmetric), and scale 1, zero
    point 0 when the scale is below ``input_dtype``'s smallest normal.  For uint8
    this is ONNX DynamicQuantizeLinear's rule, in float64."""
    qmin, qmax = qrow.min, qrow.max
    if symmetric:
        qmin, qmax = _SYMMETRIC_RANGE.get(qrow.name, (qmin, qmax))
    rmin = np.minimum(np.asarray(lo, dtype=np.float64), 0.0)
    rmax = np.maximum(np.asarray(hi, dtype=np.float64), 0.0)
    if symmetric:
        absmax = np.maximum(np.abs(rmin), np.abs(rmax))
        rmin, rmax = -absmax, absmax
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        scale = (rmax - rmin) / (qmax - qmin)
        if symmetric:
            zp = np.full(scale.shape, np.rint((qmin + qmax) / 2.0))
        else:
            zp = np.clip(np.rint(qmin - rmin / scale), qrow.min, qrow.max)
    # onnxruntime's floor: the data dtype's smallest normal (float16: the stored
    # float16 scale must not be 0); x's of other dtypes are float32 to it
    if input_dtype == "float16":
        tiny = scale.astype(np.float16) == 0
    else:
        tiny = scale < np.finfo(np.float64 if input_dtype == "float64" else np.float32).tiny
    return np.where(tiny, 1.0, scale), np.where(tiny, 0.0, zp)


def fit(x, transform, *, axis=None, accumulator="pairwise", acc_dtype="float64", nan_policy="raise", **options) -> Params:
    """Fit the statistics ``transform`` needs on ``x``; returns an immutable :class:`Params`.

    ========== ==================================================================
    transform  statistics (per feature when ``axis`` is given)
    ========== ==================================================================
    minmax     ``min``, ``max``; option ``feature_range=(0, 1)``
    standardize ``mean``, ``var``, ``std`` (ddof 0) with ``accumulator`` in ``acc_dtype``
    scale      option ``divisor`` (default: the integer input dtype's max, 255 or 65535)
    maxabs     ``maxabs = max(|min|, |max|)``
    quantize   ``scale = (max(hi,0) - min(lo,0)) / (qmax - qmin)`` and
               ``zero_point = rint(qmin - min(lo,0) / scale)`` in float64 (ONNX
               DynamicQuantizeLinear for uint8; onnxruntime's ``compute_scale_zp``
               for every qdtype), or both given; ``qdtype`` uint8, uint16, int8 or
               int16; ``symmetric=True``: the range is [-m, m], ``m = max(|lo|, |hi|)``,
               over [-127, 127] (int8) / [-32767, 32767] (int16) / [0, qmax]
               (unsigned), with ``zero_point`` 0 / 0 / 128 or 32768 (onnxruntime's
               symmetric quantizer).  A scale below the smallest normal (float32's;
               float64's for float64 x; for float16 x, one that is 0 in float16) is
               replaced by scale 1, zero point 0, as onnxruntime does
    dequantize ``scale`` and ``zero_point`` given (or the params of a quantize)
    ========== ==================================================================

    ``axis=None`` fits one set over all elements; ``axis`` naming every axis but
    the last fits per column (2-D, as scikit-learn) or per channel (channel-last
    images).  Zero range or zero std is kept as fitted; transforms then scale
    by 1 (scikit-learn's convention).  min/max are exact; mean and variance are
    rounded as the accumulator table in this module says.  An accumulator that
    overflows on finite data (float16 past 65504) gives inf/NaN statistics, the
    measured behaviour, with a ``RuntimeWarning`` naming ``acc_dtype``.  A
    ``dask.array.Array`` is fitted chunk by chunk on the active dask scheduler
    (:mod:`kernels.dask_array`), with the same partials merged in the same order:
    the same bits.

    Rounding: every accumulator operation rounds to nearest even in ``acc_dtype``
    (min/max are exact); fit takes no ``rounding=``.  The rounding modes of
    :func:`kernels.transform` and of pipeline steps (``rounding=``) apply to the
    transform's compute dtype, after the statistics, which are fitted as above
    and rounded to nearest even into the compute dtype (``kernel_plan``).
    """
    if type(x).__module__.startswith("dask."):  # a dask array: its chunks, on the active scheduler
        from .dask_array import fit as fit_dask

        return fit_dask(x, transform, axis=axis, accumulator=accumulator, acc_dtype=acc_dtype, nan_policy=nan_policy,
                        **options)
    return _fit_array(x, transform, axis=axis, accumulator=accumulator, acc_dtype=acc_dtype, nan_policy=nan_policy,
                      **options)


class _InMemory:
    """The statistics of one C-contiguous array, computed by this module's kernels."""

    def __init__(self, x, row):
        self.flat = x.view(row.storage).reshape(-1)
        self.row = row

    def minmax(self, nfeat):
        return _minmax(self.flat, nfeat, self.row)

    def moments(self, nfeat, acc_row, accumulator, nan_tag):
        return _moments_kernel(self.flat, nfeat, self.row.tag, acc_row.tag, _ACC_TAGS[accumulator], nan_tag, LANES)


@serialised
def _fit_array(x, transform, **kw) -> Params:
    transform = check_choice(transform, TRANSFORMS, "transform")
    x, row = check_array(x)
    return fit_from(x.shape, row, _InMemory(x, row), transform, **kw)


def fit_from(shape, row, source, transform, *, axis=None, accumulator="pairwise", acc_dtype="float64",
             nan_policy="raise", stacklevel=5, **options) -> Params:
    """:func:`fit` of data of ``shape`` and dtype ``row`` whose statistics ``source``
    computes (``minmax(nfeat)`` and ``moments(nfeat, acc_row, accumulator, nan_tag)``,
    as :class:`_InMemory` does): every check, option and rule of :func:`fit`."""
    transform = check_choice(transform, TRANSFORMS, "transform")
    size = int(np.prod(shape))
    given = {k: options.pop(k) for k in GIVEN[transform] if k in options and transform not in ("scale", "quantize", "dequantize")}
    if given:
        # statistics given instead of fitted: nothing is computed from x
        p = params(transform, input_dtype=row.name, **given, **options)
        if p.nfeat > 1 and shape[-1] != p.nfeat:
            raise ValueError(f"{', '.join(given)} give {p.nfeat} features; x has shape {tuple(shape)} (features last)")
        return p
    axis = normalize_axis(axis, len(shape))
    accumulator = check_choice(accumulator, ACCUMULATORS, "accumulator")
    acc_row = check_dtype(acc_dtype, "acc_dtype")
    if not acc_row.can_compute:
        raise TypeError(f"acc_dtype={acc_row.name!r} {acc_row.family.compute_refusal(acc_row.name)}; "
                        f"use one of: {', '.join(ACC_DTYPES)}")
    nan_policy = check_choice(nan_policy, NAN_POLICIES, "nan_policy")
    unknown = set(options) - _OPTIONS[transform]
    if unknown:
        raise TypeError(f"fit() got option(s) {sorted(unknown)} that {transform!r} does not take; "
                        f"it takes: {sorted(_OPTIONS[transform]) or 'none'}")
    nfeat = _nfeat(shape, axis)
    stats: dict[str, np.ndarray] = {}
    opts: dict = {}

    need_minmax = transform in ("minmax", "maxabs") or (
        transform == "quantize" and options.get("scale") is None
    )
    nan_count = np.zeros(nfeat, dtype=np.int64)
    if need_minmax or transform == "standardize" or not row.is_integer:
        lo, hi, nan_count = source.minmax(nfeat)
        if nan_count.any() and nan_policy == "raise":
            raise ValueError(
                f"x contains {int(nan_count.sum())} NaN value(s); pass nan_policy='omit' to skip them "
                "or nan_policy='propagate' to get NaN statistics"
            )
        if (np.isinf(lo).any() or np.isinf(hi).any()) and nan_policy != "propagate":
            raise ValueError(
                "x contains inf, so the fitted statistics are not finite; pass finite data, params "
                "fitted elsewhere, or nan_policy='propagate' to accept inf/NaN statistics"
            )
        if nan_policy == "propagate":
            lo = np.where(nan_count > 0, np.nan, lo)
            hi = np.where(nan_count > 0, np.nan, hi)
        if need_minmax:
            stats["min"], stats["max"] = lo, hi
    stats["count"] = size // nfeat - nan_count
    if nan_policy == "omit" and (stats["count"] == 0).any():
        raise ValueError("x has no non-NaN values to fit (in at least one feature); pass data or params")

    if transform == "minmax":
        opts["feature_range"] = _feature_range(options)
    elif transform == "maxabs":
        stats["maxabs"] = np.maximum(np.abs(stats["min"]), np.abs(stats["max"]))
    elif transform == "standardize":
        nan_tag = _NAN_OMIT if nan_policy == "omit" and nan_count.any() else _NAN_KEEP
        res = source.moments(nfeat, acc_row, accumulator, nan_tag)
        stats["count"], stats["mean"], stats["var"], stats["std"] = res
        # finite data whose sums overflow a 16-bit accumulator give inf/NaN here:
        # that is the accumulator's measured behaviour, kept, but never silent
        finite_data = ((nan_count == 0) | (nan_policy == "omit")) & np.isfinite(lo) & np.isfinite(hi)
        if not np.all(np.isfinite(stats["var"]) | ~finite_data):
            # bfloat16 has float32's range, so only float64 is wider than either
            wider = {"float16": "'float32'", "bfloat16": "'float64'", "float32": "'float64'"}.get(acc_row.name)
            fix = (f"use a wider acc_dtype such as {wider}" if wider else
                   "no wider acc_dtype exists: scale x down first (e.g. x / 2.0**600), then fit")
            warnings.warn(
                f"standardize statistics overflowed acc_dtype={acc_row.name!r} (largest finite "
                f"{acc_row.max:g}): mean/var are inf or NaN; {fix}",
                RuntimeWarning,
                stacklevel=stacklevel,  # fit's caller
            )
    elif transform == "scale":
        divisor = options.get("divisor")
        if divisor is None:
            if not row.is_integer:
                raise ValueError(f"scale of {row.name} data needs divisor=, e.g. divisor=255")
            divisor = row.max
        divisor = check_real(divisor, "divisor")
        if not np.isfinite(divisor) or divisor == 0:
            raise ValueError(f"divisor={divisor!r} must be finite and nonzero")
        stats["divisor"] = np.full(nfeat, divisor)
    elif transform in ("quantize", "dequantize"):
        qrow = check_dtype(options.get("qdtype", "uint8"), "qdtype")
        if qrow.name not in QDTYPES:
            raise TypeError(f"qdtype={qrow.name!r} must be one of: {', '.join(QDTYPES)}")
        opts["qdtype"] = qrow.name
        qmin, qmax = qrow.min, qrow.max
        scale, zp = options.get("scale"), options.get("zero_point")
        symmetric = options.get("symmetric", False)
        if not isinstance(symmetric, (bool, np.bool_)):
            raise TypeError(f"symmetric={symmetric!r} must be True or False")
        if (scale is None) != (zp is None):
            raise ValueError("give both scale= and zero_point=, or neither to fit them from min/max")
        if symmetric and scale is not None:
            raise ValueError("symmetric=True fits scale and zero_point: give it without scale= and zero_point=")
        opts["scale_given"] = scale is not None
        if symmetric:
            opts["symmetric"] = True
        if scale is None:
            if transform == "dequantize":
                raise ValueError("dequantize needs scale= and zero_point= (or the params of a quantize fit)")
            scale, zp = quantize_scale_zp(stats["min"], stats["max"], qrow, bool(symmetric), row.name)
        scale, zp = check_reals(scale, "scale", nfeat), check_reals(zp, "zero_point", nfeat)
        if not (np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError(f"scale={scale!r} must be finite and > 0")
        if not ((zp >= qmin).all() and (zp <= qmax).all() and (zp == np.rint(zp)).all()):
            raise ValueError(f"zero_point={zp!r} must be whole numbers in [{qmin:g}, {qmax:g}] ({qrow.name})")
        stats["scale"], stats["zero_point"] = scale, zp

    return Params(
        transform=transform,
        input_dtype=row.name,
        axis=axis,
        nfeat=nfeat,
        stats=Frozen(stats, arrays=True),
        options=Frozen(opts),
        accumulator=accumulator,
        acc_dtype=acc_row.name,
        nan_policy=nan_policy,
    )
