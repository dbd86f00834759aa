"""Audit a user's file (layer 6): ``precision-bench audit FILE``.

Reads .npy (memory-mapped), .npz (``key`` picks the array), PNG and TIFF
(see :mod:`kernels.files`: exactly, at the stored bit depth, or not at all) and reports its
dtype, range, distinct values, the bits the data uses and, for the pipelines
people run on such data, what each candidate output dtype keeps and how wrong
it is, in the input's own units (counts for integer data), then a
recommendation.  Files larger than memory are read through the memory map in
chunks, and a Zarr store or a folder or glob of files (:mod:`kernels.sources`) as a dask array on
the active scheduler (``--scheduler``): distinct values are counted chunk by chunk and merged, and every row is
computed on the distinct values and their counts alone
(``unique(T(x)) == unique(T(unique(x)))``), with the metrics of
:func:`kernels.measure` (errors against the exact reference).

==============  ============================================================
data            rows (each output with its compute dtype)
==============  ============================================================
unsigned int    scale by 2**bits - 1 (the bits the data uses: 4095 for a
                12-bit sensor in uint16) and by the dtype's max when that
                differs, minmax, standardize -> float16, bfloat16, float32
                (compute float32), float32 (compute float64), float64
                (compute float64); quantize -> uint8
signed int      the same, scaled by 2**(bits - 1) - 1 (bits counting the sign:
                2047 for 12-bit signed data in int16) and by the dtype's max;
                quantize -> uint8 (int8 keeps the same levels, shifted by 128)
float           minmax, standardize -> the same outputs; quantize -> uint8,
                uint16; cast -> every other float dtype
==============  ============================================================

``axis`` (every axis but the last, e.g. ``(0, 1)`` for HWC images) fits
minmax, standardize and quantize per channel and counts each channel's
distinct values apart, as ``measure(axis=...)`` does; the audit lists each
channel's statistics.

The recommendation (:func:`recommend`): the cheapest row (bytes per element)
that keeps every distinct value, ties broken by ``max_abs_error_in`` then
``mean_abs_error_in``, then float32 compute before float64 (advise's shared
ranking, :func:`kernels.advise.rank_key`), then the table's order.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from .codecs import REGISTRY, lookup
from .files import AuditError, load_file  # noqa: F401 (AuditError: re-exported for the CLI)
from .metrics import Distinct, distinct

CHUNK = 1 << 24  # elements per chunk when a file does not fit comfortably in memory
# distinct inputs whose error is checked exactly (evenly spaced beyond): every value
# of 12-bit data; measure's 65,536 made an audit of float data take minutes
AUDIT_EXACT_POINTS = 4096
# (output dtype, compute dtype) of every transform row
FLOAT_ROWS = (("float16", "float32"), ("bfloat16", "float32"), ("float32", "float32"), ("float32", "float64"),
              ("float64", "float64"))


def _merge(parts, row) -> Distinct:
    """One Distinct from the Distincts of disjoint parts of an array."""
    values = np.zeros(0, row.dtype)
    counts = np.zeros(0, np.int64)
    nan = 0
    for d in parts:
        nan += d.nan
        allv = np.concatenate([values, d.values]).astype(np.float64)
        uniq, inv = np.unique(allv, return_inverse=True)
        merged = np.zeros(uniq.size, np.int64)
        np.add.at(merged, inv, np.concatenate([counts, d.counts]))
        values, counts = uniq.astype(row.dtype), merged
    return Distinct(row.name, values, counts, nan)


def distinct_chunked(x: np.ndarray, chunk: int = CHUNK) -> Distinct:
    """:func:`kernels.distinct` over chunks of a (memory-mapped) array, merged:
    memory grows with the number of distinct values, not with the file.

    The array is read in storage order (a Fortran-order file is not copied to C
    order: the counts do not depend on the order), and each chunk is converted
    to native byte order on its own (big-endian files)."""
    flat = x.ravel(order="K")  # a view for C- or Fortran-ordered files
    native = flat.dtype.newbyteorder("=")
    if flat.size <= chunk:
        return distinct(np.ascontiguousarray(flat, dtype=native))
    row = lookup(native, "data dtype")
    return _merge((distinct(np.ascontiguousarray(flat[s : s + chunk], dtype=native)) for s in range(0, flat.size, chunk)), row)


def distinct_channel(x: np.ndarray, j: int, chunk: int = CHUNK) -> Distinct:
    """Distinct values of channel ``x[..., j]``, read in blocks along the first
    axis (a strided channel of a memory map is never copied whole)."""
    native = x.dtype.newbyteorder("=")
    row = lookup(native, "data dtype")
    per_index = max(1, x[:1].size // x.shape[-1])  # channel elements per index of the first axis
    step = max(1, chunk // per_index)
    parts = (distinct(np.ascontiguousarray(x[s : s + step, ..., j], dtype=native)) for s in range(0, x.shape[0], step))
    return _merge(parts, row)


@dataclasses.dataclass(frozen=True)
class Row:
    """One pipeline into one output dtype: what survives, how wrong (input units)."""

    name: str  # "scale /4095", "minmax", "standardize", "quantize", "cast"
    output: str
    compute: str  # "-" for a cast (no arithmetic)
    bytes_per_element: int
    distinct_out: int
    collisions: int
    survival: float
    max_merged_span_in: float
    max_abs_error_in: float
    mean_abs_error_in: float
    max_ulp_error: float

    @property
    def lossless(self) -> bool:
        return self.collisions == 0


Pipeline = Row  # the name of this row type before it carried errors


@dataclasses.dataclass(frozen=True)
class Channel:
    """Statistics of one channel (``axis`` given) or of the whole file."""

    lo: float
    hi: float
    mean: float
    std: float
    distinct: int


@dataclasses.dataclass(frozen=True)
class Audit:
    path: str
    dtype: str
    shape: tuple
    n: int
    nan: int
    inf: int
    lo: float
    hi: float
    distinct: int
    effective_bits_in: float  # log2(distinct values), of the widest channel when per channel
    dtype_bits: int  # bits of an integer dtype (None for floats)
    bits_used: int | None  # ceil(log2(max + 1)) for unsigned data (None for floats)
    divisor: float | None  # scale divisor the rows use: 2**bits_used - 1 (None for floats)
    note: str | None  # the data uses fewer bits than its dtype: what to do
    axis: tuple | None
    channels: list  # Channel per channel (axis given), else []
    pipelines: list  # Row
    recommendation: Row | None
    recommendation_text: str

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["shape"] = list(self.shape)
        d["axis"] = None if self.axis is None else list(self.axis)
        return _plain(d)


def _plain(v):
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no inf/nan: "inf", "nan"
    return v


def _moments(d: Distinct) -> Channel:
    """min, max, mean, std (ddof 0) of the finite values, from distinct values and counts (float64)."""
    u = d.values.astype(np.float64)
    finite = np.isfinite(u)
    uf, w = u[finite], d.counts[finite].astype(np.float64)
    if uf.size == 0:
        return Channel(math.nan, math.nan, math.nan, math.nan, len(d))
    mean = float((uf * w).sum() / w.sum())
    std = float(np.sqrt((w * (uf - mean) ** 2).sum() / w.sum()))
    return Channel(float(uf[0]), float(uf[-1]), mean, std, len(d))


def _row(name: str, feats: list, params: list, compute: str, output: str, exact_points: int, label: str) -> Row:
    """Measure one row on every channel's distinct values (measure's metrics, no timing)."""
    from .measure import _feature_metrics, _record_from
    from .transforms import DEFAULT_FORMULA

    in_row, out_row = REGISTRY[feats[0].dtype], REGISTRY[output]
    crow = "float64" if compute == "-" else compute  # a cast is x / 1 in float64: exact, then one rounding
    formula = DEFAULT_FORMULA[params[0].transform]
    metrics = [_feature_metrics(d, p, formula, crow, out_row, exact_points) for d, p in zip(feats, params)]
    r = _record_from(metrics, label, in_row, out_row, n=sum(d.n for d in feats), seconds=0.0, fit_seconds=0.0, nbytes=0,
                     roofline=None, transform=params[0].transform, formula=formula, compute_dtype=crow,
                     accumulator=params[0].accumulator, acc_dtype=params[0].acc_dtype, nfeat=len(feats), options={})
    return Row(name, output, compute, out_row.itemsize, r.distinct_out, r.collisions, r.survival, r.max_merged_span_in,
               r.max_abs_error_in, r.mean_abs_error_in, r.max_ulp_error)


def rank_key(row: Row, index: int = 0):
    """The recommendation's order, :func:`kernels.advise.rank_key` (the ranking
    ``choose`` and the report use): bytes per element, then max and mean error in
    input units (NaN last), then the fixed preference (float32 compute first; a
    cast, which computes nothing, after both), then the table's order (``index``)."""
    from .advise import preference
    from .advise import rank_key as shared
    from .transforms import DEFAULT_FORMULA

    transform = row.name.split()[0]  # "scale /4095" -> "scale"
    pref = preference(transform, row.output, row.compute, DEFAULT_FORMULA.get(transform, "-"))
    return (*shared(row.bytes_per_element, row.max_abs_error_in, row.mean_abs_error_in, pref), index)


def recommend(rows: list) -> Row | None:
    """The cheapest row that keeps every distinct value (:func:`rank_key`), or None."""
    keep = [(rank_key(r, i), r) for i, r in enumerate(rows) if r.lossless]
    return min(keep, key=lambda t: t[0])[1] if keep else None


def _recommendation_text(best: Row | None, rows: list, dtype: str, distinct_in: int) -> str:
    units = "counts" if REGISTRY[dtype].is_integer else f"{dtype} units"
    if best is not None:
        how = f"compute {best.compute}" if best.compute != "-" else "a cast"
        return (f"recommended: {best.name} -> {best.output} ({how}, {best.bytes_per_element} bytes per element): "
                f"all {distinct_in:,} distinct values survive, max error {_fmt(best.max_abs_error_in)} {units}")
    most = max(rows, key=lambda r: (r.distinct_out, -r.bytes_per_element)) if rows else None
    tail = f"; the most survive in {most.name} -> {most.output} ({most.distinct_out:,} of {distinct_in:,})" if most else ""
    return f"no candidate keeps every distinct value: keep the data in {dtype}{tail}"


def _fmt(v: float) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"


def _check_axis(axis, shape) -> tuple | None:
    if axis is None:
        return None
    from .params import normalize_axis

    try:
        return normalize_axis(tuple(axis), len(shape))
    except (TypeError, ValueError) as e:
        raise AuditError(f"--axis {' '.join(str(a) for a in axis)}: {e} (shape {tuple(shape)})") from None


def audit(path: str, key: str | None = None, *, axis=None, exact_points: int = AUDIT_EXACT_POINTS) -> Audit:
    """Audit the array in ``path``; ``axis`` (every axis but the last) gives
    per-channel statistics; ``exact_points`` as :func:`kernels.measure`'s."""
    from ._validate import check_int
    from .given import params as given_params
    from .stats import fit

    from .sources import is_lazy_source, open_source

    exact_points = check_int(exact_points, "exact_points", 2)
    # a Zarr store, a folder or glob of files: a dask array, counted chunk by chunk on the
    # active dask scheduler (kernels.dask_array); a file: a big-endian memory map is
    # converted chunk by chunk
    lazy = is_lazy_source(str(path))
    x = open_source(str(path), key) if lazy else load_file(path, key, native=False)
    if lazy and any(math.isnan(c) for cs in x.chunks for c in cs):
        x = x.compute_chunk_sizes()
    try:
        row = lookup(x.dtype.newbyteorder("="), "data dtype")
    except TypeError as e:
        raise AuditError(f"{path}: {e}") from None
    if x.size == 0:
        raise AuditError(f"{path}: the array is empty")
    axis = _check_axis(axis, x.shape)
    d = distinct(x) if lazy else distinct_chunked(x, CHUNK)  # CHUNK read now (tests shrink it)
    u = d.values
    finite = np.isfinite(u.astype(np.float64))
    inf = int(d.counts[~finite].sum())
    if not finite.any():
        raise AuditError(f"{path}: no finite values to audit")
    whole = _moments(d)
    feats = [d] if axis is None else [distinct(x[..., j]) if lazy else distinct_channel(x, j, CHUNK)
                                      for j in range(x.shape[-1])]
    chans = [whole] if axis is None else [_moments(f) for f in feats]
    used = [len(f) for f in feats if len(f)]
    effective_bits = math.log2(max(used)) if used else math.nan

    bits_used = divisor = note = None
    dtype_bits = row.itemsize * 8 if row.is_integer else None
    if row.is_integer and row.min < 0:  # two's complement: magnitude bits plus the sign
        bits_used = max(1, max(int(whole.hi), -int(whole.lo) - 1).bit_length()) + 1
        divisor = float(2 ** (bits_used - 1) - 1)
        if bits_used < dtype_bits:
            note = (f"the data uses {bits_used} of {dtype_bits} bits ({whole.lo:g}..{whole.hi:g} within "
                    f"+-2**{bits_used - 1}): scale by {divisor:g}, not {row.max:g}")
    elif row.is_integer:
        bits_used = max(1, int(whole.hi).bit_length())  # ceil(log2(max + 1)), at least 1
        divisor = float(2**bits_used - 1)
        if bits_used < dtype_bits:
            note = (f"the data uses {bits_used} of {dtype_bits} bits (max {whole.hi:g} <= 2**{bits_used}-1): "
                    f"scale by {divisor:g}, not {row.max:g}")

    label = str(path)
    rows: list[Row] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo_hi = np.array([[c.lo for c in chans], [c.hi for c in chans]]).astype(row.dtype)

        def per_channel(p):
            return [p] * len(feats) if p.nfeat == 1 else [p.feature(j) for j in range(p.nfeat)]

        fit_axis = None if axis is None else 0
        plans = []
        if row.is_integer:
            for dv in dict.fromkeys([divisor, row.max]):  # the bits used first, then the dtype's max if it differs
                plans.append((f"scale /{dv:g}", fit(lo_hi[:1, :1], "scale", divisor=dv), FLOAT_ROWS))
        plans.append(("minmax", fit(lo_hi if axis is not None else lo_hi[:, :1], "minmax", axis=fit_axis), FLOAT_ROWS))
        means, stds = [c.mean for c in chans], [c.std for c in chans]
        plans.append(("standardize", given_params("standardize", input_dtype=row.name, mean=means if axis is not None else means[0],
                                                  std=stds if axis is not None else stds[0]), FLOAT_ROWS))
        # unsigned targets only: an asymmetric int8/int16 quantization keeps the same
        # levels as uint8/uint16 (the zero point shifted by 128 / 32768), so no new row
        for q in ("uint8",) if row.is_integer else ("uint8", "uint16"):
            pq = fit(lo_hi if axis is not None else lo_hi[:, :1], "quantize", axis=fit_axis, qdtype=q)
            plans.append(("quantize", pq, ((q, "float32"),)))
        if not row.is_integer:
            casts = tuple((o, "-") for o in ("float16", "bfloat16", "float32", "float64") if o != row.name)
            plans.append(("cast", fit(lo_hi[:1, :1], "scale", divisor=1.0), casts))
        for name, p, outs in plans:
            for output, compute in outs:
                rows.append(_row(name, feats, per_channel(p), compute, output, exact_points, label))
    best = recommend(rows)
    distinct_in = sum(len(f) for f in feats)
    return Audit(
        path=label, dtype=row.name, shape=tuple(x.shape), n=int(x.size), nan=d.nan, inf=inf, lo=whole.lo, hi=whole.hi,
        distinct=len(d), effective_bits_in=effective_bits, dtype_bits=dtype_bits, bits_used=bits_used, divisor=divisor,
        note=note, axis=axis, channels=chans if axis is not None else [], pipelines=rows, recommendation=best,
        recommendation_text=_recommendation_text(best, rows, row.name, distinct_in),
    )
