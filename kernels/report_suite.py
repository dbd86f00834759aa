"""What the report measures (layer 6, under :mod:`kernels.report`): its sources and their variants.

The default suite: the uint8, 12-bit and uint16 domains, the float16 and float32
[0, 1] domains, the bundled real data, and synthetic float32 features, each with
the variants of :func:`_integer_variants` or :func:`_float_variants`.  ``--data``
replaces the bundled data with the user's: a bundled name, one file (read into
memory, or memory-mapped), or a lazy source (a Zarr store, a folder or glob of
files: :mod:`kernels.sources`), which every variant measures chunk by chunk on
the active dask scheduler (:mod:`kernels.dask_array`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from . import datasets
from .codecs import lookup
from .domain import domain


@dataclasses.dataclass(frozen=True)
class Variant:
    transform: str
    output: str
    compute: str = "float32"
    formula: str | None = None
    accumulator: str = "pairwise"
    acc_dtype: str = "float64"
    options: tuple = ()

    @property
    def label(self) -> str:
        """The transform as the report names it (scale shows its divisor)."""
        opts = dict(self.options)
        if self.transform == "scale":
            return f"scale /{opts['divisor']:g}"
        return self.transform


@dataclasses.dataclass(frozen=True)
class Source:
    name: str
    kind: str  # domain, image, tabular, synthetic, file
    loader: object  # () -> ndarray | Domain
    integer_range: float | None = None  # divisor of "scale" for integer data
    axis: object = None
    spec: tuple | None = None  # how another process loads it (kernels.report_warmup); None: it cannot

    def load(self):
        return self.loader()


# the 1-byte float outputs the suite measures (issue 16): the two OCP float8 formats;
# the advisor ranks them with the rest (bytes first), so where one keeps every value it wins
FLOAT8_OUTPUTS = ("float8_e4m3fn", "float8_e5m2")
# the MX outputs it measures after minmax (kernels.advise.MX_OUTPUTS names): the 8-bit and
# the 4-bit block format, ranked by their bytes per element with the scales (1 + 1/32, 0.5 + 1/32)
MX_REPORT_OUTPUTS = ("MXFP8 (e4m3)", "MXFP4")


def _integer_variants(rng_max: float, quick: bool) -> list[Variant]:
    """Integer sources are small (at most 65,536 distinct values): quick mode
    measures every output and compute dtype of the full grid, so that its
    recommendations are the full suite's; it leaves out only the naive float32
    accumulator (an accumulator demo, same output and compute as pairwise)."""
    scale = (("divisor", float(rng_max)),)
    v = [Variant("minmax", o) for o in ("float16", "bfloat16", "float32", "float64")]
    v += [Variant("minmax", "float16", compute="float16")]
    v += [Variant("minmax", "float16", compute="float64"), Variant("minmax", "uint8")]
    v += [Variant("standardize", o) for o in ("float16", "bfloat16", "float32")]
    v += [Variant("standardize", "float32", accumulator="naive", acc_dtype="float16")]
    if not quick:
        v += [Variant("standardize", "float32", accumulator="naive", acc_dtype="float32")]
    v += [Variant("scale", o, options=scale) for o in ("float16", "bfloat16", "float32")]
    v += [Variant("scale", "float16", compute="float16", options=scale)]
    v += [Variant("minmax", o) for o in FLOAT8_OUTPUTS + MX_REPORT_OUTPUTS]
    v += [Variant("quantize", "uint8")]
    return v


def _float_variants(quick: bool, standardize: bool = True) -> list[Variant]:
    """As :func:`_integer_variants`: quick mode keeps every output and compute
    dtype (the first two, minmax to float16 and bfloat16, are what the quick
    float32 domain measures) and leaves out the float32 accumulator demos."""
    v = [Variant("minmax", o) for o in ("float16", "bfloat16", "float32")]
    v += [Variant("minmax", "float64", compute="float64"), Variant("minmax", "float16", compute="float16")]
    if standardize:
        v += [Variant("standardize", o) for o in ("float16", "bfloat16", "float32")]
        v += [Variant("standardize", "float32", accumulator="naive", acc_dtype="float16")]
        v += [Variant("standardize", "float64", compute="float64")]
        if not quick:
            v += [
                Variant("standardize", "float32", accumulator="naive", acc_dtype="float32"),
                Variant("standardize", "float32", accumulator="kahan", acc_dtype="float32"),
            ]
        v += [Variant("standardize", o) for o in FLOAT8_OUTPUTS]
    v += [Variant("minmax", o) for o in FLOAT8_OUTPUTS + MX_REPORT_OUTPUTS]
    v += [Variant("quantize", "uint8")]
    return v


def _dataset_source(name: str) -> Source:
    ds_kind = "tabular" if name in datasets.TABULAR else ("image" if name in datasets.IMAGES else "synthetic")
    return Source(
        name,
        ds_kind,
        lambda: datasets.load(name).data,
        integer_range=255.0 if ds_kind == "image" else None,
        axis=0 if ds_kind == "tabular" else None,
        spec=("dataset", name),
    )


def _file_source(path: str, key: str | None = None) -> Source:
    """A ``--data`` file, loaded and checked before anything is measured; a lazy
    source (a Zarr store, a folder or glob of files) opened as a dask array and
    checked in one pass over its chunks, then measured chunk by chunk by every
    variant (the report's pass per variant runs on the active dask scheduler).

    NaN is skipped (the file's variants fit with ``nan_policy="omit"``; records
    count it in ``nan_in``); a file that no variant could fit (unsupported
    dtype, empty, inf, only NaN) is refused naming the file."""
    from .audit import AuditError, load_file
    from .sources import is_lazy_source, open_source

    lazy = is_lazy_source(path)
    data = open_source(path, key) if lazy else load_file(path, key)  # key: a Zarr group's or an .npz's array
    try:
        row = lookup(data.dtype, "data dtype")
    except TypeError as e:
        raise AuditError(f"{path}: {e}") from None
    if lazy and any(np.isnan(s) for s in data.shape):
        data = data.compute_chunk_sizes()  # once here, not once per variant
    if data.ndim == 0 or data.size == 0:
        raise AuditError(f"{path}: the array is {'0-d' if data.ndim == 0 else 'empty'}; save an array of at least one value")
    if not row.is_integer:
        nan, inf = _nan_inf(data)
        if inf:
            raise AuditError(f"{path} holds {inf:,} inf value(s), which make min/max/mean meaningless: drop them "
                             f"(x[np.isfinite(x)]) and save again, or use: measure --data {path} --nan-policy propagate")
        if nan == data.size:
            raise AuditError(f"{path} holds only NaN; nothing to measure")
    name = Path(path.rstrip("/")).name if not any(c in path for c in "*?[") else path
    return Source(name, "file", lambda: data, integer_range=row.max if row.is_integer else None,
                  spec=("lazy" if lazy else "file", str(path), key))


def _nan_inf(data) -> tuple[int, int]:
    """(NaN count, inf count) of a float array: a dask array in one pass over its
    chunks, an ndarray (or memory map) in slices, with no full-size temporary."""
    from .dask_array import is_dask

    if is_dask(data):
        import dask
        import dask.array as da

        nan, inf = dask.compute(da.isnan(data).sum(), da.isinf(data).sum())
        return int(nan), int(inf)
    nan = inf = 0
    flat = data.ravel(order="K")
    for start in range(0, flat.size, 1 << 22):
        part = flat[start : start + (1 << 22)]
        nan, inf = nan + int(np.isnan(part).sum()), inf + int(np.isinf(part).sum())
    return nan, inf


def suite(quick: bool = False, data: list[str] | None = None, key: str | None = None) -> list[tuple[Source, list[Variant]]]:
    """The sources and their variants, in report order."""
    out: list[tuple[Source, list[Variant]]] = []
    doms = [("uint8 (all 256)", "uint8", 0, 255), ("12-bit sensor (0..4095)", "uint16", 0, 4095), ("uint16 (all 65536)", "uint16", 0, 65535)]
    for name, dt, lo, hi in doms:
        out.append((Source(name, "domain", (lambda dt=dt, lo=lo, hi=hi: domain(dt, lo, hi)), integer_range=float(hi),
                           spec=("domain", dt, lo, hi)), _integer_variants(hi, quick)))
    out.append((Source("float16 [0, 1]", "domain", lambda: domain("float16", 0, 1), spec=("domain", "float16", 0, 1)),
                _float_variants(quick)))
    if quick:
        out.append((Source("float32 [0.5, 1]", "domain", lambda: domain("float32", 0.5, 1), spec=("domain", "float32", 0.5, 1)),
                    _float_variants(True, standardize=False)[:2]))
    else:
        f32 = [Variant("minmax", "float16"), Variant("minmax", "bfloat16"), Variant("quantize", "uint8")]
        out.append((Source("float32 [0, 1] (all 1,065,353,217)", "domain", lambda: domain("float32", 0, 1)), f32))
    if data:
        names = list(data)
    elif quick:
        names = ["camera", "breast_cancer", "gaussian"]
    else:
        names = ["camera", "astronaut", "coffee", "breast_cancer", "wine", "diabetes", "digits", "gaussian", "heavy_tailed"]
    for name in names:
        src = _dataset_source(name) if name in datasets.NAMES else _file_source(name, key)
        omit = (("nan_policy", "omit"),) if src.kind == "file" else ()  # see _file_source
        variants = _integer_variants(src.integer_range, quick) if src.integer_range is not None else _float_variants(quick)
        out.append((src, [dataclasses.replace(v, options=v.options + omit) for v in variants]))
    return out



def pipeline_sources(data: list[str] | None = None, key: str | None = None) -> list[Source]:
    """Where ``report --pipeline`` runs each pipeline: the integer domains
    (uint8, 12-bit, uint16), or the ``--data`` sets and files instead."""
    if data:
        return [_dataset_source(n) if n in datasets.NAMES else _file_source(n, key) for n in data]
    doms = [("uint8 (all 256)", "uint8", 0, 255), ("12-bit sensor (0..4095)", "uint16", 0, 4095), ("uint16 (all 65536)", "uint16", 0, 65535)]
    return [Source(name, "domain", (lambda dt=dt, lo=lo, hi=hi: domain(dt, lo, hi)), integer_range=float(hi)) for name, dt, lo, hi in doms]



def _candidate_universe(transform: str, integer: bool) -> list[tuple[str, str]]:
    """(output, compute) pairs a complete suite measures for ``transform`` on an
    integer or float source: the full grid, and every float output at float32
    compute (not measured -> listed in a recommendation's ``not_measured``)."""
    grid = _integer_variants(1.0, False) if integer else _float_variants(False)
    pairs = [(v.output, v.compute) for v in grid if v.transform == transform]
    if transform == "quantize":
        pairs += [("uint16", "float32")]  # quantize(qdtype=uint16): not in the suite, may keep every value
    else:
        pairs += [(o, "float32") for o in ("float16", "bfloat16", "float32", "float64")]  # float8: where the grid has it
    return list(dict.fromkeys(pairs))

