"""Dask arrays (layer 6, beside measure): fit, distinct, measure and transform on chunks.

``kernels.fit``, ``kernels.distinct``, ``kernels.measure``,
``kernels.measure_outputs`` and ``kernels.transform`` hand a ``dask.array.Array``
here (a ``type(x).__module__`` check: dask is imported only when given one).
Everything is computed on the active scheduler (``dask.compute`` without a
``scheduler=``: threads by default, processes, or a ``distributed.Client``).
Results equal the in-memory computation on ``x.compute()``, bit for bit:

* min/max: per block, the order-key extremes and NaN count of
  :mod:`kernels.accumulators`' kernels, merged exactly (min, max, sum) in a tree of
  ``split_every`` blocks.
* mean/variance: the in-memory fit cuts the flattened rows into fixed chunks of
  ``stats.CHUNK // nfeat`` rows and merges their ``(count, mean, M2)`` by Chan's
  formula *in chunk order*.  Chan's merge is not associative in floating point,
  so a Chan tree would differ from it by rounding (up to a few units in the last
  place of the accumulator per level).  Here the rows are rechunked so every
  block starts on a multiple of that chunk (block size: the data's typical
  chunk rounded to whole stats chunks, at least one); each block computes the
  very partials of those chunks with the accumulator's own kernel; the tree
  (``split_every``) concatenates partials in block order (exact); the root
  merges them in chunk order with ``stats._merge_moments``.  The merge order is
  therefore the single-machine order for every accumulator and dtype, and the
  result is identical to the last bit (tested for naive/pairwise/kahan/welford).
  The root holds 3 floats per feature per 2**16 elements (48 MiB for 10**11
  elements), every other task one block.
* a preset step's fit (:func:`preset_fit`): when the library's statistics are a
  min/max (``Preset.fit_from_extremes``), each feature's exact min, max and NaN
  count, then the library's own fit on three rows holding them; a fit needing
  every value (sums in numpy's order, medians) is a TypeError naming the fix.
* distinct: 8/16-bit data, a bit-pattern histogram per block, summed in the
  tree; wider data, :func:`kernels.distinct` of each block (sorted values, -0.0
  folded into +0.0, NaN counted apart) merged pairwise in the tree by value.
  dask's own ``unique`` is not used: it concatenates every chunk in one task.
* measure: statistics and distinct values as above, then the in-memory
  metrics on the distinct values (the metrics only need them and their counts);
  the apply pass is timed on the first row block, repeated to ``TIMING_MIN``.
* transform: ``map_blocks`` of the in-memory transform; parameters fitted first
  (or given) and put in the graph once (a ``dask.delayed``), sliced per block
  along the feature axis.
* block steps (``scaled_cast``, ``mx``) in a pipeline: :mod:`kernels.dask_blocked`.
  ``mx``: chunk boundaries moved onto whole blocks along its axis, then
  ``map_blocks`` of the in-memory pass; ``scaled_cast``: its amax reduced exactly
  over the chunks (NaN propagates) and broadcast back to each chunk.  measure:
  per-chunk partials of :mod:`kernels.measure_blocked` (distinct values, distinct
  (x, y) pairs with counts, codes, scales, round-trip failures) merged exactly in
  the tree, then the in-memory Record.

Unknown chunk sizes (``nan`` in the shape) are computed once
(``compute_chunk_sizes``) and a Record says so (``chunk_sizes_computed``).  An
unsupported dtype raises the ndarray's TypeError before any task runs.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings

import numpy as np

from ._threads import serialised
from .codecs import REGISTRY, key_range, key_to_value, lookup
from .metrics import Distinct, distinct as distinct_array, from_histogram, histogram, merge_distinct
from . import stats as _stats

SPLIT_EVERY = 8  # partials merged per tree task


def is_dask(x) -> bool:
    return type(x).__module__.startswith("dask.")


def prepare(x, argument: str = "x"):
    """(x with known chunks, registry row, whether chunk sizes had to be computed)."""
    row = lookup(x.dtype, f"{argument}.dtype")  # the ndarray's TypeError, before any task
    computed = False
    if any(math.isnan(s) for s in x.shape):
        x = x.compute_chunk_sizes()
        computed = True
    if x.ndim == 0:
        raise ValueError(f"{argument} is 0-d; pass an array with at least one dimension (np.atleast_1d)")
    if x.size == 0:
        raise ValueError(f"{argument} is empty (shape {x.shape}); pass at least one element")
    return x, row, computed


def _tree(parts, combine, split_every):
    """Reduce delayed ``parts`` in order, ``split_every`` at a time, to one delayed."""
    import dask

    split_every = max(2, int(split_every or SPLIT_EVERY))
    parts = list(parts)
    while len(parts) > 1:
        groups = [parts[i:i + split_every] for i in range(0, len(parts), split_every)]
        parts = [g[0] if len(g) == 1 else dask.delayed(combine, pure=True)(*g) for g in groups]
    return parts[0]


def _blocks(x):
    return list(x.to_delayed().ravel())


# --------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------


@serialised
def _fit_block(b, row_name, nfeat, moments, acc_name, accumulator, omit):
    """Partials of one (rows, nfeat) block: key extremes, NaN counts and, when
    ``moments``, the (count, mean, M2) of each stats chunk of its rows."""
    row = REGISTRY[row_name]
    kneg, kpos = key_range(row.name)
    flat = np.ascontiguousarray(b).view(row.storage).reshape(-1)
    if flat.size == 0:
        lo, hi, nan = np.full(nfeat, kpos, np.int64), np.full(nfeat, kneg, np.int64), np.zeros(nfeat, np.int64)
    elif nfeat == 1:
        k = _stats._minmax_flat(flat, row.tag, kneg, kpos)
        lo, hi, nan = (np.array([int(v)], np.int64) for v in k)
    else:
        lo, hi, nan = _stats._minmax_features(flat, nfeat, row.tag, kneg, kpos)
    out = {"lo": lo.astype(np.int64), "hi": hi.astype(np.int64), "nan": nan.astype(np.int64)}
    if moments:
        acc_row = REGISTRY[acc_name]
        tag = _stats._NAN_OMIT if omit else _stats._NAN_KEEP
        if flat.size == 0:
            cnt = mean = m2 = np.zeros((0, nfeat))
        else:
            cnt, mean, m2 = _stats._moment_partials(flat, nfeat, row.tag, acc_row.tag, _stats._ACC_TAGS[accumulator],
                                                    tag, _stats.LANES)
        out.update(cnt=cnt, mean=mean, m2=m2)
    return out


def _fit_combine(*parts):
    out = {"lo": np.min([p["lo"] for p in parts], axis=0), "hi": np.max([p["hi"] for p in parts], axis=0),
           "nan": np.sum([p["nan"] for p in parts], axis=0)}
    if "cnt" in parts[0]:  # in block order: concatenation is exact
        for k in ("cnt", "mean", "m2"):
            out[k] = np.concatenate([p[k] for p in parts])
    return out


def _aligned_rows(x2, per):
    """``x2`` (rows, nfeat) rechunked so every block but the last holds whole stats chunks."""
    rows = x2.chunks[0]
    if all(r % per == 0 for r in rows[:-1]) and len(x2.chunks[1]) == 1:
        return x2
    typical = int(np.median([r for r in rows if r] or [per]))
    size = max(per, typical // per * per)
    return x2.rechunk({0: size, 1: -1})


class _DaskStats:
    """:func:`kernels.stats.fit_from`'s statistics source for a dask array: one
    pass computes min/max and (for standardize) the moment partials."""

    def __init__(self, x, row, transform, nan_policy, accumulator, acc_dtype, split_every):
        self.x, self.row, self.transform = x, row, transform
        self.nan_policy, self.accumulator, self.acc_dtype = nan_policy, accumulator, acc_dtype
        self.split_every = split_every
        self._done = None

    def _compute(self, nfeat):
        import dask

        if self._done is None:
            x2 = self.x.reshape(-1, nfeat) if nfeat > 1 or self.x.ndim != 1 else self.x[:, None]
            moments = self.transform == "standardize"
            per = max(1, _stats.CHUNK // nfeat)
            x2 = _aligned_rows(x2, per) if moments else x2.rechunk({1: -1})
            acc = _stats.check_dtype(self.acc_dtype, "acc_dtype").name
            parts = [dask.delayed(_fit_block, pure=True)(b, self.row.name, nfeat, moments, acc, self.accumulator,
                                                         self.nan_policy == "omit") for b in _blocks(x2)]
            (self._done,) = dask.compute(_tree(parts, _fit_combine, self.split_every))
        return self._done

    def minmax(self, nfeat):
        r = self._compute(nfeat)
        count = int(np.prod(self.x.shape)) // nfeat
        lo_v = np.where(r["nan"] == count, np.nan, key_to_value(self.row.name, r["lo"]))
        hi_v = np.where(r["nan"] == count, np.nan, key_to_value(self.row.name, r["hi"]))
        return lo_v, hi_v, r["nan"]

    def moments(self, nfeat, acc_row, accumulator, nan_tag):
        r = self._compute(nfeat)
        if r["cnt"].shape[0] == 0:
            return _stats._merge_moments(np.zeros((1, nfeat)), np.zeros((1, nfeat)), np.zeros((1, nfeat)), acc_row.tag)
        return _stats._merge_moments(r["cnt"], r["mean"], r["m2"], acc_row.tag)


def fit(x, transform, *, axis=None, accumulator="pairwise", acc_dtype="float64", nan_policy="raise", split_every=None,
        **options):
    """:func:`kernels.fit` of a dask array (module doc: the merge order and why it
    is the in-memory one); ``split_every`` partials per tree task (default 8)."""
    x, row, _ = prepare(x)
    source = _DaskStats(x, row, transform, nan_policy, accumulator, acc_dtype, split_every)
    return _stats.fit_from(x.shape, row, source, transform, axis=axis, accumulator=accumulator, acc_dtype=acc_dtype,
                           nan_policy=nan_policy, stacklevel=4, **options)


def preset_fit(preset, x, row, spec, **options):
    """A preset's ``fit`` of the dask array ``x`` (known chunks), bit for bit the
    in-memory ``preset.fit(x.compute(), **options)``, for a preset whose fit is a
    min/max (``Preset.fit_from_extremes``: scikit-learn's MinMaxScaler and
    MaxAbsScaler, ONNX DynamicQuantizeLinear, cv2.normalize NORM_MINMAX/NORM_INF,
    skimage's max): each feature's min and max (NaN omitted) and NaN count are
    computed chunk by chunk (:class:`_DaskStats`, exact), then ``preset.fit`` runs
    on a three-row array of x's dtype and number of dimensions holding, per
    feature, the min, the max and a NaN (when the feature has one, else the min):
    its library arithmetic (min, max, abs, the finite checks) sees the very values
    it sees in x.  A signed zero's sign among equal zeros may differ (as between
    numpy's own reductions).  Any other fit (sums, medians) is a TypeError naming
    the preset and the fix."""
    ok = preset.fit_from_extremes
    if callable(ok):
        ok = ok(**options)
    if not ok:
        hint = f"; {preset.dask_fit_hint}" if preset.dask_fit_hint else ""
        raise TypeError(f"step {spec!r}: {preset.name}'s fit is not a min/max of the data (it needs every value), so it "
                        "is not computed chunk by chunk on a dask array; fit the pipeline on an array in memory "
                        f"(pipe.fit(x.compute()) or a sample, x[:n].compute()){hint}")
    nfeat = x.shape[-1] if x.ndim >= 2 else 1
    lo, hi, nan = _DaskStats(x, row, "minmax", "omit", "pairwise", "float64", None).minmax(nfeat)
    rows = np.stack([lo, hi, lo if row.is_integer else np.where(nan > 0, np.nan, lo)])
    tiny = rows.astype(row.dtype).reshape((3,) + (1,) * max(0, x.ndim - 2) + ((nfeat,) if x.ndim >= 2 else ()))
    return preset.fit(tiny, **options)


# --------------------------------------------------------------------------
# distinct
# --------------------------------------------------------------------------


@serialised
def _hist_block(b, row_name):
    row = REGISTRY[row_name]
    flat = np.ascontiguousarray(b).reshape(-1)
    if flat.size == 0:
        return np.zeros(1 << (8 * row.itemsize), np.int64)
    return histogram(flat, row)


def _hist_combine(*parts):
    return np.sum(parts, axis=0)


def _unique_block(b, row_name):
    flat = np.ascontiguousarray(b).reshape(-1)
    if flat.size == 0:
        return Distinct(row_name, np.empty(0, REGISTRY[row_name].dtype), np.empty(0, np.int64), 0)
    return distinct_array(flat)


def distinct_graph(x, row, split_every=None):
    """A delayed Distinct of the dask array ``x`` (known chunks)."""
    import dask

    if row.itemsize <= 2:
        parts = [dask.delayed(_hist_block, pure=True)(b, row.name) for b in _blocks(x)]
        root = _tree(parts, _hist_combine, split_every)
        return dask.delayed(from_histogram, pure=True)(root, row)
    parts = [dask.delayed(_unique_block, pure=True)(b, row.name) for b in _blocks(x)]
    return _tree(parts, merge_distinct, split_every or 2)


def distinct(x, split_every=None) -> Distinct:
    """:func:`kernels.distinct` of a dask array, chunk by chunk (the module doc)."""
    import dask

    x, row, _ = prepare(x)
    (d,) = dask.compute(distinct_graph(x, row, split_every))
    return d


# --------------------------------------------------------------------------
# transform
# --------------------------------------------------------------------------


def _slice_params(params, start, stop):
    if params.nfeat <= 1 or (start, stop) == (0, params.nfeat):
        return params
    stats = _stats.Frozen({k: np.asarray(v)[start:stop] for k, v in params.stats.items()}, arrays=True)
    return dataclasses.replace(params, nfeat=stop - start, stats=stats)


def _transform_block(b, params, name, kw, out_dtype, block_info=None):
    from .transforms import _transform_array

    if b.size == 0:
        return np.empty(b.shape, out_dtype)
    if params.nfeat > 1:
        start, stop = block_info[0]["array-location"][-1]
        params = _slice_params(params, start, stop)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow is reported by the caller's sample, not per block
        return _transform_array(np.asarray(b), name, params=params, **kw)


def transform(x, transform, *, params=None, formula=None, compute_dtype="float32", output_dtype=None, axis=None,
              out=None, rounding="nearest_even", seed=None, **fit_options):
    """:func:`kernels.transform` of a dask array: a dask array of the outputs
    (``map_blocks``), equal block for block to the in-memory transform.
    ``rounding='stochastic'`` is refused: its random bits are a function of the
    element's flat index, which a block does not know."""
    import dask

    from .transforms import _transform_array

    if out is not None:
        raise TypeError("out= is not taken for a dask array: the result is a new dask array (store it with .to_zarr)")
    _refuse_stochastic(rounding)
    x, row, _ = prepare(x)
    if params is None:
        params = fit(x, transform, axis=axis, **fit_options)
        axis = None
    kw = dict(formula=formula, compute_dtype=compute_dtype, output_dtype=output_dtype, rounding=rounding)
    # the checks of the in-memory call (formula, dtypes, params, axis), on one row, before any task
    probe = np.zeros((1,) * (x.ndim - 1) + (x.shape[-1],), row.dtype)
    meta = _transform_array(probe, transform, params=params, axis=axis, **kw)
    shared = dask.delayed(params, pure=True)
    return x.map_blocks(_transform_block, shared, transform, kw, meta.dtype, dtype=meta.dtype,
                        meta=np.empty((0,) * x.ndim, meta.dtype))


def _cast_block(b, output_dtype, rounding, saturate):
    from .cast import cast as cast_array

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow: the values became inf, counted where measured
        return cast_array(np.asarray(b), output_dtype, rounding=rounding, saturate=saturate)


def cast(x, output_dtype, *, out=None, rounding="nearest_even", saturate=False, seed=None):
    """:func:`kernels.cast` of a dask array: a dask array of the casts, block by
    block (``map_blocks``), the in-memory cast's bits (it is elementwise).  The
    arguments are checked on one element before any task; ``rounding='stochastic'``
    is refused (its random bits follow the flat index); a block's overflow warning
    is not raised (the values are +-inf, which a Record counts as ``inf_in``)."""
    from .cast import cast as cast_array

    if out is not None:
        raise TypeError("out= is not taken for a dask array: the result is a new dask array (store it with .to_zarr)")
    x, row, _ = prepare(x)
    meta = cast_array(np.zeros(1, row.dtype), output_dtype, rounding=rounding, saturate=saturate, seed=seed)
    _refuse_stochastic(rounding)
    if meta.dtype == x.dtype:  # into its own dtype: the same bits
        return x
    return x.map_blocks(_cast_block, output_dtype, rounding, saturate, dtype=meta.dtype,
                        meta=np.empty((0,) * x.ndim, meta.dtype))


def _refuse_stochastic(rounding):
    if rounding == "stochastic":
        raise ValueError("rounding='stochastic' on a dask array: its random bits follow each element's flat index, "
                         "which a block does not know; compute the array first (x.compute()) or use a deterministic mode")


def pipeline_transform(pipe, x):
    """``Pipeline.transform`` of a dask array: ``map_blocks`` of the in-memory pass,
    on the array's own chunks; a pipeline with per-channel constants sees whole
    channel rows (the last axis rechunked to one block).  A pipeline with a block step (``scaled_cast``,
    ``mx``): :func:`kernels.dask_blocked.pipeline_transform` (same bits)."""
    import dask

    x, row, _ = prepare(x)
    for step in pipe.steps:
        _refuse_stochastic(getattr(step, "options", {}).get("rounding"))
    if pipe.has_blocks:
        from .dask_blocked import pipeline_transform as blocked_transform

        return blocked_transform(pipe, x, row)
    from .measure_pipeline import _nfeat

    nfeat = _nfeat(pipe.program(row.name)[0])
    # the in-memory checks on a probe of one row (nfeat + 1 columns at most: enough for a
    # per-channel pipeline to refuse a wrong channel count); the last axis whole only for per-channel constants,
    # never for 1-D data, where it is the whole array
    probe = np.zeros((1,) * (x.ndim - 1) + (min(x.shape[-1], nfeat + 1) if nfeat > 1 else 1,), row.dtype)
    meta = pipe.transform(probe)
    if nfeat > 1 and len(x.chunks[-1]) > 1:
        x = x.rechunk({x.ndim - 1: -1})
    shared = dask.delayed(pipe, pure=True)
    return x.map_blocks(_pipe_block, shared, meta.dtype, dtype=meta.dtype, meta=np.empty((0,) * x.ndim, meta.dtype))


def _pipe_block(b, pipe, out_dtype):
    if b.size == 0:
        return np.empty(b.shape, out_dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return pipe.transform(np.asarray(b))


# --------------------------------------------------------------------------
# measure
# --------------------------------------------------------------------------


def _first_rows(x):
    """The first block of rows (every column of the last axis), computed; of 1-D
    data, its first chunk (not the whole array: it is only timed)."""
    if x.ndim == 1:
        return np.asarray(x[: max(1, x.chunks[0][0])].compute())
    index = tuple(slice(0, max(1, c[0])) for c in x.chunks[:-1]) + (slice(None),)
    return np.asarray(x[index].compute())


def _feature_distincts(x, row, nfeat, split_every=None):
    import dask

    if nfeat == 1:
        graphs = [distinct_graph(x, row, split_every)]
    else:
        graphs = [distinct_graph(x[..., j], row, split_every) for j in range(nfeat)]
    return list(dask.compute(*graphs))


def measure(source, transform, *, formula=None, compute_dtype="float32", output_dtype=None, accumulator="pairwise",
            acc_dtype="float64", axis=None, nan_policy="raise", params=None, repeat: int = 3, exact_points=None,
            stream=None, progress=None, name=None, split_every=None, **options):
    """:func:`kernels.measure` of a dask array: fit and distinct values chunk by
    chunk, then the in-memory metrics on the distinct values; every field equals
    the in-memory Record's but the timings (the apply pass is timed on the first
    row block repeated to ``TIMING_MIN``, ``fit_seconds`` is the dask fit's wall
    time) and ``chunk_sizes_computed``."""
    import importlib

    from ._validate import check_choice, check_int
    from .measure_pipeline import is_pipeline_spec
    from .transforms import DEFAULT_FORMULA, FORMULAS, _compute_row, _transform_array

    M = importlib.import_module("kernels.measure")  # the module (``kernels.measure`` is also the function)
    x, in_row, computed = prepare(source, "source")
    if is_pipeline_spec(transform):
        M.check_pipeline_args(formula=formula, output_dtype=output_dtype, params=params, axis=axis,
                              compute_dtype=compute_dtype, **options)
        return measure_pipeline(x, transform, repeat=check_int(repeat, "repeat", 1), name=name, split_every=split_every,
                                exact_points=check_int(M.EXACT_POINTS if exact_points is None else exact_points,
                                                       "exact_points", 2), computed=computed)
    if stream:
        raise ValueError("stream=True sweeps a domain; a dask array is counted chunk by chunk")
    tname = check_choice(transform, _stats.TRANSFORMS, "transform")
    formula = DEFAULT_FORMULA[tname] if formula is None else check_choice(formula, FORMULAS[tname], "formula")
    crow = _compute_row(compute_dtype)
    repeat = check_int(repeat, "repeat", 1)
    exact_points = check_int(M.EXACT_POINTS if exact_points is None else exact_points, "exact_points", 2)
    label = name or f"array {x.dtype}{list(x.shape)}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if params is None:
            t = time.perf_counter()
            params = fit(x, tname, axis=axis, accumulator=accumulator, acc_dtype=acc_dtype, nan_policy=nan_policy,
                         split_every=split_every, **options)
            fit_seconds = time.perf_counter() - t
        else:
            fit_seconds = 0.0
        out_row = M._out_row(params, output_dtype, in_row)
        xt = M.timing_input(_first_rows(x))
        out = np.empty(xt.shape, out_row.dtype)

        def run():
            _transform_array(xt, tname, params=params, formula=formula, compute_dtype=crow.name,
                             output_dtype=out_row.name, out=out)

        run()  # checks and compiles before the timing
        seconds, roofline, note = M.time_apply(run, xt, out, repeat)
        ds = _feature_distincts(x, in_row, params.nfeat, split_every)
        feats = [M._feature_metrics(d, params if params.nfeat == 1 else params.feature(j), formula, crow.name, out_row,
                                    exact_points) for j, d in enumerate(ds)]
        record = M._record(feats, label, in_row, params, formula, crow, out_row, x.size, seconds, fit_seconds,
                           xt.nbytes + out.nbytes, roofline, False, timed_elements=xt.size)
    M.warn_timing(note, stacklevel=2)
    return dataclasses.replace(record, chunk_sizes_computed=computed)


def measure_pipeline(source, pipe, *, repeat: int = 3, exact_points=None, name=None, split_every=None, computed=None):
    """:func:`kernels.measure_pipeline` of a dask array (an elementwise pipeline):
    the steps fitted chunk by chunk (:func:`pipe_fit`), each feature's distinct
    inputs counted chunk by chunk, then the in-memory metrics on them
    (:func:`kernels.measure_pipeline.pipeline_features`); the apply pass is timed
    on the first row block repeated to ``TIMING_MIN``.  A pipeline with a block
    step (``scaled_cast``, ``mx``): :func:`kernels.dask_blocked.measure_pipeline`
    (the partials of :mod:`kernels.measure_blocked` per chunk, merged in a tree)."""
    import importlib

    from .measure_pipeline import _nfeat, as_pipeline, fit_timed, pipeline_features, pipeline_record

    M = importlib.import_module("kernels.measure")
    if computed is None:
        x, in_row, computed = prepare(source, "source")
    else:
        x, in_row = source, lookup(source.dtype)
    pipe = as_pipeline(pipe)
    exact_points = M.EXACT_POINTS if exact_points is None else exact_points
    if pipe.has_blocks:
        from .dask_blocked import measure_pipeline as measure_blocked

        rec = measure_blocked(x, pipe, in_row, repeat=repeat, exact_points=exact_points, name=name,
                              split_every=split_every)
        return dataclasses.replace(rec, chunk_sizes_computed=computed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pipe, fit_seconds = fit_timed(pipe, x)
        ops, output_dtype, _ = pipe.program(in_row.name)
        nfeat = _nfeat(ops)
        if nfeat > 1 and (x.ndim < 2 or x.shape[-1] != nfeat):
            raise ValueError(f"pipeline {pipe.spec!r} has {nfeat} channels; the source has shape {x.shape} (channels last)")
        xt = M.timing_input(_first_rows(x))
        out = np.empty(xt.shape, REGISTRY[output_dtype].dtype)
        seconds, roofline, note = M.time_apply(lambda: pipe.transform(xt, out=out), xt, out, repeat)
        feats, step_rows = pipeline_features(pipe, in_row, _feature_distincts(x, in_row, nfeat, split_every), exact_points)
    M.warn_timing(note, stacklevel=3)
    rec = pipeline_record(pipe, in_row, feats, step_rows, name or f"array {x.dtype}{list(x.shape)}", n=x.size,
                          seconds=seconds, fit_seconds=fit_seconds, nbytes=xt.nbytes + out.nbytes, roofline=roofline,
                          timed_elements=xt.size)
    return dataclasses.replace(rec, chunk_sizes_computed=computed)


def measure_outputs(x, y, ideal=None, inverse=None, *, exact_points=None, name=None, split_every=None):
    """:func:`kernels.measure_outputs` of dask arrays ``x`` and ``y`` (either may be
    an ndarray): the distinct (x, y) pairs per feature chunk by chunk, then the
    in-memory metrics on them."""
    import dask
    import dask.array as da

    import importlib

    from .measure_pipeline import outputs_record, as_pipeline, _nfeat

    M = importlib.import_module("kernels.measure")
    if not is_dask(x):
        x = da.from_array(np.asarray(x), chunks=y.chunks if is_dask(y) else "auto")
    x, in_row, cx = prepare(x, "x")
    if not is_dask(y):
        y = da.from_array(np.asarray(y), chunks=x.chunks)
    y, out_row, cy = prepare(y, "y")
    if y.shape != x.shape:
        raise ValueError(f"y has shape {y.shape}, x {x.shape}: an elementwise output has the input's shape")
    y = y.rechunk(x.chunks)
    exact_points = M.EXACT_POINTS if exact_points is None else exact_points
    pipe = None
    if ideal is not None:
        pipe = as_pipeline(ideal)
        if pipe.needs_fit:
            pipe = pipe_fit(pipe, x)
    nfeat = _nfeat(pipe.program(in_row.name)[0]) if pipe is not None else 1
    if nfeat > 1 and x.shape[-1] != nfeat:
        raise ValueError(f"ideal has {nfeat} channels; x has shape {x.shape} (channels last)")
    graphs = []
    for j in range(nfeat):
        xj, yj = (x, y) if nfeat == 1 else (x[..., j], y[..., j])
        parts = [dask.delayed(_pairs_block, pure=True)(a, b, in_row.name, out_row.name)
                 for a, b in zip(_blocks(xj), _blocks(yj))]
        graphs.append(_tree(parts, _pairs_combine, split_every or 2))
    pairs = dask.compute(*graphs)
    per_feature = []
    for p in pairs:
        xs, ys, counts, nan = p
        if xs.size and np.any(xs[1:] == xs[:-1]):
            bad = int(np.sum(xs[1:] == xs[:-1]))
            raise ValueError(f"y is not a function of x value by value: {bad} distinct x value(s) have more than one y "
                             "(per channel: give ideal= with per-channel constants)")
        d = Distinct(in_row.name, xs, counts, nan)
        per_feature.append((d, ys))
    rec = outputs_record(per_feature, pipe, inverse, in_row, out_row, exact_points,
                         name or f"array {x.dtype}{list(x.shape)}", x.size, x.nbytes + y.nbytes, nfeat)
    return dataclasses.replace(rec, chunk_sizes_computed=cx or cy)


def pipe_fit(pipe, x):
    """``Pipeline.fit`` on a dask array: each step fitted on the previous steps' output."""
    from .pipeline import Pipeline

    fitted, cur = [], x
    for k, s in enumerate(pipe.steps):
        s = s.fit(cur)
        fitted.append(s)
        if k + 1 < len(pipe.steps) and any(t.needs_fit for t in pipe.steps[k + 1:]):
            cur = pipeline_transform(Pipeline((s,)), cur)
    return Pipeline(tuple(fitted))


def _pairs_block(a, b, in_name, out_name):
    """Distinct (x, y) pairs of a block, x sorted by value (-0.0 folded, NaN x counted
    apart), y compared by bit pattern."""
    in_row, out_row = REGISTRY[in_name], REGISTRY[out_name]
    xs = np.ascontiguousarray(a).reshape(-1)
    ys = np.ascontiguousarray(b).reshape(-1)
    xf = xs.astype(np.float64)
    nan = np.isnan(xf)
    xs, ys, xf = xs[~nan], ys[~nan], xf[~nan] + 0.0
    return _unique_pairs(xf, xs, ys, np.ones(xs.size, np.int64), int(nan.sum()), in_row, out_row)


def _unique_pairs(xf, xs, ys, counts, nan, in_row, out_row):
    ybits = ys.view(f"u{ys.dtype.itemsize}").astype(np.int64)
    order = np.lexsort((ybits, xf))
    xf, xs, ys, ybits, counts = xf[order], xs[order], ys[order], ybits[order], counts[order]
    new = np.ones(xf.size, bool)
    new[1:] = (xf[1:] != xf[:-1]) | (ybits[1:] != ybits[:-1])
    starts = np.flatnonzero(new)
    summed = np.add.reduceat(counts, starts) if starts.size else np.empty(0, np.int64)
    xv = np.where(xf[starts] == 0, in_row.dtype.type(0), xs[starts]).astype(in_row.dtype) if xs.size else xs
    return xv, ys[starts], summed.astype(np.int64), nan


def _pairs_combine(*parts):
    xs = np.concatenate([p[0] for p in parts])
    ys = np.concatenate([p[1] for p in parts])
    counts = np.concatenate([p[2] for p in parts])
    in_row, out_row = lookup(xs.dtype), lookup(ys.dtype)
    return _unique_pairs(xs.astype(np.float64) + 0.0, xs, ys, counts, sum(p[3] for p in parts), in_row, out_row)
