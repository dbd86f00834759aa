"""Accumulator kernels (layer 2, under :mod:`kernels.stats`): parallel min/max and mean/variance.

Work is split into fixed chunks of rows (``CHUNK`` elements), independent of
the thread count, so results are reproducible on any machine.  Per chunk and
feature each accumulator produces ``(count, mean, M2)`` (:func:`_moment_partials`);
chunks are merged in order by Chan's formula (:func:`_merge_moments`; the dask
path merges the same partials in the same order).  min/max merge exactly, as
order keys (:func:`_minmax_flat`, :func:`_minmax_features`).

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

NaN tags: ``_NAN_KEEP`` (NaN enters the sums: ``propagate``) and ``_NAN_OMIT``
(skipped, the count excludes it); ``raise`` is checked by :mod:`kernels.stats`
before the moments, from the min/max pass's NaN count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.core import types
from numba.extending import overload

from ._jit import kernel
from ._tags import Tag, tag_name
from .codecs import JIT, as_arith, decode, key_is_nan, key_range, key_to_value, order_key, rnd, to_compute

CHUNK = 1 << 16
LANES = 16  # interleaved accumulators: independent chains the CPU overlaps
PW_LANES = 8  # pairwise: numpy's 8 accumulators per block of 128
ACCUMULATORS = ("naive", "pairwise", "kahan", "welford")
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
