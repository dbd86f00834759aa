"""Block steps (``scaled_cast``, ``mx``) on dask arrays (layer 6, beside measure).

:func:`kernels.dask_array.pipeline_transform` and
:func:`kernels.dask_array.measure_pipeline` hand a pipeline with a block step
here.  Results equal the in-memory computation on ``x.compute()`` bit for bit:

* chunks: the array is rechunked so that every chunk boundary along an ``mx``
  step's axis falls on a multiple of its block (the least common multiple when
  several ``mx`` steps share an axis; chunk sizes rounded to whole blocks, the
  last chunk the array's end, remainder included); the last axis is made one
  chunk only when a step has per-channel constants; empty chunks are dropped.  Each chunk then holds whole
  MX blocks, and the in-memory ``mx_quantize`` of a chunk is the whole array's
  on those elements (``pad='zeros'`` completes the last block of each row, which
  lies in the chunk holding the axis end, exactly as in memory).
* ``scaled_cast``: its amax (``max |x|`` over ``axis``: None for the whole
  tensor, or consecutive axes per slice; NaN propagates, as
  :func:`kernels.scaled.amax`) is computed per chunk of the step's input (the
  steps before it, on the chunk) and reduced with ``max`` over the reduced axes
  (exact: a max does not round); the per-slice result is broadcast back to each
  chunk, whose elements are scaled by it (``scaled_cast(tensor_amax=)``).
* every other step is elementwise and runs on the chunk as in memory
  (:func:`kernels.pipeline.run_segments`, one ``map_blocks``: the steps
  before and after a block step fused with it).
* measure: the per-chunk partials of :func:`kernels.measure_blocked.partials`
  (distinct values, distinct (x, y) pairs with counts per step, the last block
  step's distinct codes and scales, inputs failing the round trip) merged
  exactly in a ``split_every`` tree (:func:`kernels.measure_blocked.merge`),
  then the in-memory Record (:func:`kernels.measure_blocked.blocked_record`).
  Steps are fitted chunk by chunk first (:func:`kernels.dask_array.pipe_fit`);
  the apply pass is timed on the first chunk.

``rounding='stochastic'`` stays refused (its bits follow the flat index).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .codecs import lookup


def _block_axes(pipe, ndim: int) -> dict:
    """{axis: lcm of the blocks of the mx steps along it}."""
    from . import scaled

    out = {}
    for s in pipe.steps:
        if s.name == "mx":
            a = scaled._axis(s.options.get("axis", -1), ndim)
            b = scaled._block(s.options.get("block", 32))
            out[a] = math.lcm(out.get(a, 1), b)
    return out


def _channels(pipe, in_name: str) -> int:
    """The most per-channel constants of an elementwise run of the pipeline (1: none)."""
    from .measure_pipeline import _nfeat
    from .pipeline import Pipeline

    nfeat, dtype, run = 1, in_name, []
    for s in (*pipe.steps, None):
        if s is not None and not s.is_block:
            run.append(s)
            continue
        if run:
            ops, dtype, _ = Pipeline(tuple(run)).program(dtype)
            nfeat = max(nfeat, _nfeat(ops))
            run = []
        if s is not None:
            dtype = "float32"
    return nfeat


def check(pipe, x, in_row):
    """The in-memory checks (lengths, dtypes, options) on a small probe, before any task:
    (nfeat, output dtype)."""
    from . import scaled

    for s in pipe.steps:
        if s.name == "mx":
            ax = scaled._axis(s.options.get("axis", -1), x.ndim)
            scaled._blocks_along(x.shape, ax, scaled._block(s.options.get("block", 32)), s.options.get("pad"))
    nfeat = _channels(pipe, in_row.name)
    if nfeat > 1 and (x.ndim < 2 or x.shape[-1] != nfeat):
        raise ValueError(f"pipeline {pipe.spec!r} has {nfeat} channels; the source has shape {x.shape} (channels last)")
    # a probe of whole blocks and channels, never a whole axis (1-D data: the whole array)
    shape = [1] * (x.ndim - 1) + [x.shape[-1] if nfeat > 1 else min(x.shape[-1], 1)]
    for a, b in _block_axes(pipe, x.ndim).items():
        if not (a == x.ndim - 1 and nfeat > 1):
            shape[a] = min(x.shape[a], b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        meta = pipe.transform(np.zeros(shape, in_row.dtype))
    return nfeat, meta.dtype


def aligned(pipe, x, nfeat: int):
    """``x`` rechunked: chunk boundaries on whole MX blocks along each mx axis, the
    last axis whole when there are per-channel constants (the module doc)."""
    spec = {a: tuple(c for c in ch if c) for a, ch in enumerate(x.chunks) if 0 in ch}  # no empty chunks (amax)
    if nfeat > 1 and len(x.chunks[-1]) > 1:
        spec[x.ndim - 1] = -1
    for a, b in _block_axes(pipe, x.ndim).items():
        if spec.get(a) == -1:
            continue
        edges = np.cumsum(x.chunks[a])[:-1]
        if np.all(edges % b == 0):
            continue
        typical = int(np.median([c for c in x.chunks[a] if c] or [b]))
        spec[a] = max(b, round(typical / b) * b)
    return x.rechunk(spec) if spec else x


def _amax_block(b, axis):
    from . import scaled

    lo, hi = scaled._reduced_axes(axis, b.ndim)
    shape = tuple(1 if lo <= k < hi else d for k, d in enumerate(b.shape))
    if b.size == 0:
        return np.zeros(shape, np.float64)  # |x| >= 0: the identity of the max
    return scaled.amax(np.asarray(b), axis).reshape(shape)


def amaxes(pipe, xr, split_every=None) -> dict:
    """{step index: dask array of the scaled_cast step's amax (keepdims)} on the aligned ``xr``."""
    from . import scaled
    from .pipeline import Pipeline

    out = {}
    for k, s in enumerate(pipe.steps):
        if s.name != "scaled_cast":
            continue
        cur = xr if k == 0 else lazy(Pipeline(pipe.steps[:k]), xr, dict(out))
        axis = s.options.get("axis")
        lo, hi = scaled._reduced_axes(axis, xr.ndim)
        chunks = tuple((1,) * len(c) if lo <= i < hi else c for i, c in enumerate(cur.chunks))
        a = cur.map_blocks(_amax_block, axis, chunks=chunks, dtype=np.float64, meta=np.empty((0,) * xr.ndim))
        out[k] = a.max(axis=tuple(range(lo, hi)), keepdims=True, split_every=split_every)
    return out


def _run_block(b, *amax_blocks, pipe, keys, out_dtype):
    from .pipeline import run_segments

    if b.size == 0:
        return np.empty(b.shape, out_dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow is the caller's to report
        return run_segments(pipe, np.asarray(b), dict(zip(keys, amax_blocks)))


def lazy(pipe, xr, amax: dict, out_dtype=None):
    """The pipeline on the aligned ``xr`` as a dask array, given its scaled_cast amaxes."""
    import dask
    import dask.array as da

    if out_dtype is None:
        out_dtype = check(pipe, xr, lookup(xr.dtype))[1]
    keys = sorted(k for k in amax if k < len(pipe.steps))
    shared = dask.delayed(pipe, pure=True)
    return da.map_blocks(_run_block, xr, *[amax[k] for k in keys], pipe=shared, keys=keys, out_dtype=out_dtype,
                         dtype=out_dtype, meta=np.empty((0,) * xr.ndim, out_dtype))


def pipeline_transform(pipe, x, row, split_every=None):
    """``Pipeline.transform`` of a dask array ``x`` (known chunks) with block steps (module doc)."""
    nfeat, out_dtype = check(pipe, x, row)
    xr = aligned(pipe, x, nfeat)
    return lazy(pipe, xr, amaxes(pipe, xr, split_every), out_dtype)


def _partial_block(b, keys, *amax_blocks, pipe, nfeat):
    from .measure_blocked import partials

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return partials(pipe, np.asarray(b), dict(zip(keys, amax_blocks)), nfeat)


def measure_pipeline(x, pipe, in_row, *, repeat: int, exact_points: int, name=None, split_every=None):
    """:func:`kernels.measure_pipeline` of a dask array ``x`` (known chunks) and a
    pipeline with block steps: the Record of :mod:`kernels.measure_blocked` from
    the chunks' partials merged in a tree (module doc); the apply pass is timed on
    the first (aligned) chunk."""
    import dask
    import importlib

    from .dask_array import _first_rows, _tree
    from .measure_blocked import blocked_record, error_channels, merge, timing_arrays
    from .measure_pipeline import fit_timed

    M = importlib.import_module("kernels.measure")
    label = name or f"array {x.dtype}{list(x.shape)}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pipe, fit_seconds = fit_timed(pipe, x)
        nfeat_t, out_dtype = check(pipe, x, in_row)
        nfeat = error_channels(pipe, in_row.name)
        if nfeat > 1 and (x.ndim < 2 or x.shape[-1] != nfeat):
            raise ValueError(f"pipeline {pipe.spec!r} has {nfeat} channels; the source has shape {x.shape} "
                             "(channels last)")
        xr = aligned(pipe, x, max(nfeat_t, nfeat))
        am = amaxes(pipe, xr, split_every)
        keys = sorted(am)
        am_blocks = [am[k].to_delayed() for k in keys]
        blocks = xr.to_delayed()
        shared = dask.delayed(pipe, pure=True)
        parts = []
        for idx in np.ndindex(*xr.numblocks):
            subs = [a[tuple(min(i, nb - 1) for i, nb in zip(idx, a.shape))] for a in am_blocks]
            parts.append(dask.delayed(_partial_block, pure=True)(blocks[idx], keys, *subs, pipe=shared, nfeat=nfeat))
        (m,) = dask.compute(_tree(parts, merge, split_every))
        xt, out = timing_arrays(pipe, _first_rows(xr), lookup(out_dtype))
        seconds, roofline, note = M.time_apply(lambda: pipe.transform(xt, out=out), xt, out, repeat)
    M.warn_timing(note, stacklevel=4)
    return blocked_record(pipe, in_row, m, exact_points, label, n=x.size, seconds=seconds, fit_seconds=fit_seconds,
                          nbytes=xt.nbytes + out.nbytes, roofline=roofline, timed_elements=xt.size)
