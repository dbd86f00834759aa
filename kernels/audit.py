"""Audit a user's file (layer 6): ``precision-bench audit FILE``.

Reads .npy (memory-mapped), .npz (``key`` picks the array), PNG and TIFF
(see :mod:`kernels.files`: exactly, at the stored bit depth, or not at all) and reports its
dtype, range, distinct values and, for the pipelines people run on such data,
how many distinct values survive in each candidate dtype.  Files larger than
memory are read through the memory map in chunks: distinct values are counted
chunk by chunk and merged, and the survival of each pipeline is computed on the
distinct values alone (``unique(T(x)) == unique(T(unique(x)))``).

==============  ============================================================
data            pipelines
==============  ============================================================
uint8/uint16    scale by the dtype's max, minmax, standardize -> float16,
                bfloat16, float32
float           minmax, standardize -> float16, bfloat16, float32; quantize
                -> uint8; cast -> float16, bfloat16, float32
==============  ============================================================
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from .codecs import REGISTRY, lookup
from .files import AuditError, load_file  # noqa: F401 (AuditError: re-exported for the CLI)
from .metrics import Distinct, distinct, group_outputs
from .stats import fit
from .transforms import transform

CHUNK = 1 << 24  # elements per chunk when a file does not fit comfortably in memory


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
    values = np.zeros(0, row.dtype)
    counts = np.zeros(0, np.int64)
    nan = 0
    for start in range(0, flat.size, chunk):
        d = distinct(np.ascontiguousarray(flat[start : start + chunk], dtype=native))
        nan += d.nan
        allv = np.concatenate([values, d.values]).astype(np.float64)
        uniq, inv = np.unique(allv, return_inverse=True)
        merged = np.zeros(uniq.size, np.int64)
        np.add.at(merged, inv, np.concatenate([counts, d.counts]))
        values, counts = uniq.astype(row.dtype), merged
    return Distinct(row.name, values, counts, nan)


@dataclasses.dataclass(frozen=True)
class Pipeline:
    name: str
    output: str
    distinct_out: int
    survival: float


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
    pipelines: list

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["shape"] = list(self.shape)
        for k in ("lo", "hi"):
            d[k] = d[k] if math.isfinite(d[k]) else str(d[k])
        return d


def _survival(d: Distinct, name: str, y: np.ndarray) -> Pipeline:
    g = group_outputs(y, d.counts)
    return Pipeline(name, str(y.dtype), g.distinct_out, g.distinct_out / len(d) if len(d) else math.nan)


def audit(path: str, key: str | None = None) -> Audit:
    x = load_file(path, key, native=False)  # a big-endian memory map is converted chunk by chunk
    try:
        row = lookup(x.dtype.newbyteorder("="), "data dtype")
    except TypeError as e:
        raise AuditError(f"{path}: {e}") from None
    if x.size == 0:
        raise AuditError(f"{path}: the array is empty")
    d = distinct_chunked(x, CHUNK)  # CHUNK read now (tests shrink it)
    u = d.values
    finite = np.isfinite(u.astype(np.float64))
    inf = int(d.counts[~finite].sum())
    if not finite.any():
        raise AuditError(f"{path}: no finite values to audit")
    uf = u[finite]
    lo, hi = float(uf[0]), float(uf[-1])
    pipes = []
    outs = ("float16", "bfloat16", "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # statistics of the whole file, from its distinct values and counts (exact
        # min/max; mean/std of the values repeated by their counts, in float64)
        w = d.counts[finite].astype(np.float64)
        mean = float((uf.astype(np.float64) * w).sum() / w.sum())
        std = float(np.sqrt((w * (uf.astype(np.float64) - mean) ** 2).sum() / w.sum()))
        pm = fit(np.array([lo, hi]).astype(row.dtype), "minmax")
        ps = _standardize_params(row.name, mean, std)
        if row.is_integer:
            ps_scale = fit(uf[:1], "scale", divisor=row.max)
            for o in outs:
                pipes.append(_survival(d, f"scale /{row.max:g}", transform(u, "scale", params=ps_scale, output_dtype=o)))
        for o in outs:
            pipes.append(_survival(d, "minmax", transform(u, "minmax", params=pm, output_dtype=o)))
        for o in outs:
            pipes.append(_survival(d, "standardize", transform(u, "standardize", params=ps, output_dtype=o)))
        if not row.is_integer:
            pq = fit(np.array([lo, hi]).astype(row.dtype), "quantize")
            pipes.append(_survival(d, "quantize", transform(u, "quantize", params=pq)))
            from .cast import cast

            for o in outs:
                if o != row.name:
                    pipes.append(_survival(d, "cast", cast(u, o)))
    return Audit(str(path), row.name, tuple(x.shape), int(x.size), d.nan, inf, lo, hi, len(d), pipes)


def _standardize_params(dtype: str, mean: float, std: float):
    """Params of standardize with the given mean and std (fit needs the data; the
    file's moments come from its distinct values)."""
    import dataclasses as dc
    import types

    base = fit(np.array([0, 1], dtype=REGISTRY[dtype].dtype), "standardize")
    stats = {k: np.array([v]) for k, v in {"count": base["count"][0], "mean": mean, "var": std * std, "std": std}.items()}
    for v in stats.values():
        v.setflags(write=False)
    return dc.replace(base, stats=types.MappingProxyType(stats))
