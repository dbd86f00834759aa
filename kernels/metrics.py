"""Metrics (layer 4): distinct counting, entropy, ULP distance, representable range.

Values are compared by value: -0.0 equals +0.0, and NaN is never a value (it is
counted apart).  ``distinct`` counts 8- and 16-bit data with a parallel
histogram in O(n) and wider floats by sorting one slice per thread and merging; its result (distinct values,
sorted, with their counts) is all the other metrics need, because a
deterministic elementwise transform satisfies
``unique(T(x)) == unique(T(unique(x)))``.

==================== ==========================================================
metric               definition
==================== ==========================================================
distinct_in / _out   distinct non-NaN values (by value)
collisions           ``distinct_in - distinct_out``
survival             ``distinct_out / distinct_in``
max_preimage         most distinct inputs merged into one output
max_merged_span_in   widest range of input values merged into one output:
                     ``max(x) - min(x)`` over each output's preimage (input
                     units: counts for integer inputs; 0 when nothing merges)
entropy_*_bits       Shannon entropy per element over value frequencies (NaN
                     elements excluded)
info_lost_bits       ``entropy_in_bits - entropy_out_bits``
ulp distance         ``|ordinal(y) - ordinal(r)|`` in the output dtype, ordinals
                     numbering its values in order with -0.0 and +0.0 one value;
                     NaN against a number is ``inf``
bits error           ``log2(ulps + 1)`` (Herbie's measure)
==================== ==========================================================
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numba import get_num_threads, njit, prange

from ._threads import serialised
from ._validate import check_array
from ._jit import kernel
from .codecs import JIT, REGISTRY, DType, as_storage, lookup, value_to_key


@dataclasses.dataclass(frozen=True)
class Distinct:
    """Distinct non-NaN values of an array (sorted ascending, -0.0 folded into
    +0.0) with their counts, and the number of NaN elements."""

    dtype: str
    values: np.ndarray
    counts: np.ndarray
    nan: int

    @property
    def n(self) -> int:
        return int(self.counts.sum()) + self.nan

    def __len__(self) -> int:
        return int(self.values.size)


@kernel
def _histogram(raw, nbins, nparts):
    """Counts of each storage value; one private histogram per part, summed."""
    n = raw.size
    per = np.zeros((nparts, nbins), np.int64)
    for p in prange(nparts):
        h = per[p]
        for i in range(p * n // nparts, (p + 1) * n // nparts):
            h[raw[i]] += 1
    total = np.zeros(nbins, np.int64)
    for p in range(nparts):
        total += per[p]
    return total


@njit(**JIT)
def _merge_runs(parts, starts, stops):
    """Run-length encode the merge of sorted, NaN-free slices ``parts[starts[p]:stops[p]]``
    by value (== merges -0.0 and +0.0)."""
    k = starts.size
    n = 0
    for p in range(k):
        n += stops[p] - starts[p]
    vals = np.empty(n, parts.dtype)
    counts = np.zeros(n, np.int64)
    heads = starts.copy()
    m = 0
    for _ in range(n):
        best = -1
        for p in range(k):  # k is the thread count: a linear scan beats a heap
            if heads[p] < stops[p] and (best < 0 or parts[heads[p]] < parts[heads[best]]):
                best = p
        v = parts[heads[best]]
        heads[best] += 1
        if m > 0 and vals[m - 1] == v:
            counts[m - 1] += 1
        else:
            vals[m] = v + 0.0  # -0.0 + 0.0 is +0.0
            counts[m] = 1
            m += 1
    return vals[:m], counts[:m]


def _sorted_parts(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Sort one slice per thread (numpy's sort releases the GIL), NaNs trimmed off
    the end of each slice and counted."""
    from concurrent.futures import ThreadPoolExecutor

    k = max(1, min(get_num_threads(), flat.size // 262_144))
    bounds = [flat.size * p // k for p in range(k + 1)]
    out = np.empty_like(flat)

    def sort_part(p):
        a, b = bounds[p], bounds[p + 1]
        out[a:b] = flat[a:b]
        out[a:b].sort()
        nan = int(np.isnan(out[a:b]).sum()) if out.dtype.kind == "f" else 0
        return b - nan, nan

    with ThreadPoolExecutor(k) as pool:
        res = list(pool.map(sort_part, range(k)))
    starts = np.array(bounds[:-1], np.int64)
    stops = np.array([r[0] for r in res], np.int64)
    return out, starts, stops, sum(r[1] for r in res)


def distinct(x) -> Distinct:
    """Distinct values of ``x`` with counts: a parallel histogram for 8/16-bit
    dtypes (O(n)), a sort for float32/float64.  ``x`` is never modified.  A dask
    array is counted chunk by chunk (:mod:`kernels.dask_array`), same result."""
    if type(x).__module__.startswith("dask."):
        from .dask_array import distinct as distinct_dask

        return distinct_dask(x)
    return _distinct_array(x)


def histogram(flat: np.ndarray, row: DType) -> np.ndarray:
    """Counts of every bit pattern of 8/16-bit data (``1 << bits`` bins, int64)."""
    # bins by bit pattern: signed storage (int8, int16) is read as its unsigned
    # view, so a negative value is a bin like any other (no negative index)
    raw = as_storage(flat, row).view(np.dtype(f"u{row.itemsize}"))
    nbins = 1 << (8 * row.itemsize)
    nparts = max(1, min(get_num_threads() * 4, raw.size // 65536))
    return _histogram(raw, nbins, nparts)


@serialised
def _distinct_array(x) -> Distinct:
    x, row = check_array(x)
    flat = x.reshape(-1)
    if row.itemsize <= 2:
        return from_histogram(histogram(flat, row), row)
    parts, starts, stops, nan = _sorted_parts(flat)
    values, counts = _merge_runs(parts, starts, stops)
    return Distinct(row.name, values, counts, int(nan))


def from_histogram(hist: np.ndarray, row: DType) -> Distinct:
    """The Distinct of 8/16-bit data from its bit-pattern histogram (:func:`histogram`)."""
    bits = np.dtype(f"u{row.itemsize}")
    patterns = np.flatnonzero(hist)
    counts = hist[patterns]
    values = patterns.astype(bits).view(row.storage).view(row.dtype)
    if row.is_integer and row.min < 0:  # two's complement: negative patterns sort last
        order = np.argsort(values, kind="stable")
        values, counts = values[order], counts[order]
    nan = 0
    if not row.is_integer:
        is_nan = np.isnan(values.astype(np.float32))
        nan = int(counts[is_nan].sum())
        values, counts = values[~is_nan], counts[~is_nan]
        as32 = values.astype(np.float32)
        zero = as32 == 0
        if zero.sum() == 2:  # -0.0 and +0.0: one value
            keep = np.flatnonzero(zero)
            counts = counts.copy()
            counts[keep[0]] += counts[keep[1]]
            values = np.delete(values, keep[1])
            counts = np.delete(counts, keep[1])
            as32 = values.astype(np.float32)
        values = np.where(values.astype(np.float32) == 0, row.dtype.type(0), values).astype(row.dtype)
        order = np.argsort(as32, kind="stable")
        values, counts = values[order], counts[order]
    return Distinct(row.name, values, counts, nan)


def merge_distinct(*parts: Distinct) -> Distinct:
    """The Distinct of the concatenated data of ``parts`` (chunks of one array):
    values merged by value (each part sorted, NaN-free, -0.0 folded), counts and
    NaN counts summed; exact, in any grouping of the parts."""
    values = np.concatenate([p.values for p in parts])
    counts = np.concatenate([p.counts for p in parts])
    uniq, inverse = np.unique(values, return_inverse=True)
    summed = np.zeros(uniq.size, np.int64)
    np.add.at(summed, inverse.reshape(-1), counts)
    return Distinct(parts[0].dtype, uniq, summed, sum(p.nan for p in parts))


def from_sorted_unique(values: np.ndarray, row: DType) -> Distinct:
    """A Distinct of values known to be sorted, unique and NaN-free (a domain)."""
    return Distinct(row.name, values, np.ones(values.size, np.int64), 0)


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy per element, in bits, of a distribution given by counts."""
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    total = c.sum()
    if total == 0:
        return 0.0
    return float(math.log2(total) - (c * np.log2(c)).sum() / total)


def ordinal(y: np.ndarray, row: DType) -> np.ndarray:
    """The position of each value in the output dtype's order, as float64-safe int64:
    consecutive representable values differ by 1, -0.0 and +0.0 are both 0, +-inf
    sit one past the largest finite value.  NaN is undefined (masked by callers)."""
    y = np.asarray(y)
    if row.is_integer:
        return y.astype(np.int64)
    if row.itemsize == 1:  # the formats of 8 bits and below: their order keys, +-0 joined
        k = value_to_key(row.name, y)
        kpos0, kneg0 = (int(v) for v in value_to_key(row.name, np.array([0.0, -0.0]).astype(row.dtype)))
        if np.isnan(np.array(0.0).astype(row.dtype).astype(np.float64)):  # e8m0: no zero
            return k
        return np.where(k >= kpos0, k - kpos0, k - kneg0) if kneg0 < kpos0 else k - kpos0
    bits = y.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[row.itemsize]).astype(np.uint64)
    sign = np.uint64(1) << np.uint64(8 * row.itemsize - 1)
    mag = (bits & (sign - np.uint64(1))).astype(np.int64)
    return np.where(bits & sign, -mag, mag)


def ulp_distance(y: np.ndarray, ref: np.ndarray, row: DType) -> np.ndarray:
    """|ordinal(y) - ordinal(ref)| as float64; 0 where both are NaN, inf where one is."""
    y = np.asarray(y, dtype=row.dtype)
    ref = np.asarray(ref, dtype=row.dtype)
    d = np.abs(ordinal(y, row) - ordinal(ref, row)).astype(np.float64)
    if not row.is_integer:
        ny = np.isnan(y.astype(np.float64))
        nr = np.isnan(ref.astype(np.float64))
        d = np.where(ny | nr, np.where(ny & nr, 0.0, np.inf), d)
    return d


def representable_between(lo: float, hi: float, row: DType) -> int:
    """How many values of the dtype lie in [lo, hi] (lo, hi themselves values of it)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = max(lo, -row.max), min(hi, row.max)
    if hi < lo:
        return 0
    pair = np.array([lo, hi], dtype=np.float64).astype(row.dtype)
    o = ordinal(pair, row)
    return int(o[1] - o[0] + 1)


@dataclasses.dataclass(frozen=True)
class OutputGroups:
    """Outputs of the distinct inputs grouped by value."""

    distinct_out: int
    max_preimage: int
    entropy_out_bits: float
    nan_out: int  # elements whose output is NaN
    y_min: float
    y_max: float
    max_merged_span_in: float = 0.0  # needs the inputs (group_outputs' ``inputs``)


def group_outputs(y: np.ndarray, counts: np.ndarray, inputs: np.ndarray | None = None) -> OutputGroups:
    """Group T(distinct inputs) by value (NaN apart), with the input counts;
    ``inputs`` (the distinct inputs themselves) gives ``max_merged_span_in``."""
    y64 = np.asarray(y).astype(np.float64) + 0.0  # folds -0.0 into +0.0
    nan = np.isnan(y64)
    yv, cv = y64[~nan], np.asarray(counts)[~nan]
    if yv.size == 0:
        return OutputGroups(0, 0, 0.0, int(np.asarray(counts)[nan].sum()), math.nan, math.nan)
    uniq, inverse = np.unique(yv, return_inverse=True)
    preimage = np.bincount(inverse)
    elements = np.bincount(inverse, weights=cv.astype(np.float64))
    span = 0.0
    if inputs is not None and preimage.max() > 1:
        span = merged_span(np.asarray(inputs).astype(np.float64)[~nan], inverse, uniq.size)
    return OutputGroups(
        int(uniq.size),
        int(preimage.max()),
        entropy_bits(elements),
        int(np.asarray(counts)[nan].sum()),
        float(uniq[0]),
        float(uniq[-1]),
        span,
    )


def merged_span(x: np.ndarray, group: np.ndarray, ngroups: int) -> float:
    """``max(x) - min(x)`` over the widest group (``group[i]`` numbers the output of ``x[i]``)."""
    lo = np.full(ngroups, np.inf)
    hi = np.full(ngroups, -np.inf)
    np.minimum.at(lo, group, x)
    np.maximum.at(hi, group, x)
    with np.errstate(invalid="ignore"):
        width = np.where(hi == lo, 0.0, hi - lo)  # one value (inf included): nothing merged
    return float(width.max())


def row_of(dtype) -> DType:
    return REGISTRY[dtype] if isinstance(dtype, str) and dtype in REGISTRY else lookup(dtype)
