"""Measure a pipeline holding block steps (``scaled_cast``, ``mx``) (layer 6).

A block step's scale depends on the other elements of its block, channel or
tensor, so one input value can come out as several outputs and the counting
by distinct values of :mod:`kernels.measure_pipeline` does not apply.  Here
every metric is counted on the whole array, from its distinct
``(input, output)`` pairs, with the dequantized value (float32) as the output's
identity:

- ``distinct_out``: distinct outputs (-0.0 == +0.0, NaN apart);
  ``collisions = distinct_in - distinct_out`` (negative when blocks spread one
  input value over several outputs); ``max_preimage``: most distinct inputs
  sharing one output; ``max_merged_span_in``: max - min of the inputs sharing
  one output; entropies over element frequencies.
- ``distinct_codes``: distinct element values (by value, NaN apart) and
  ``distinct_scales``: distinct scales (NaN scale apart) of the last block step.
- ``roundtrip_exact``: share of distinct inputs all of whose elements come back
  exactly through the pipeline's inverse (a block step's inverse is the identity:
  its output is already in input units).
- ``max_abs_error_in`` / ``mean_abs_error_in``: ``|y - ideal| / slope`` in
  input units, ``underflow_out``: a nonzero ideal output as 0.  A block step or
  cast has the identity as its ideal, so when every step is one of those it is
  ``|y - x|`` over the distinct (x, y) pairs, each weighted by its elements (the
  mean is that weighted sum, not a sum over elements in array order: it may
  differ from the per-element mean in the last bit); the other steps (``minmax``, ``scale``, ...)
  compose their exact maps as :mod:`kernels.measure_pipeline` does, per channel
  at up to ``exact_points`` distinct inputs, each weighted by its elements (NaN
  when no exact ideal exists).  ULP errors are not defined for a block format's
  output (NaN); ``saturated`` is not counted (0).

Every count comes from per-chunk partials (:func:`partials`: the distinct inputs,
the distinct (x, y) pairs with element counts of every step's prefix, the last
block step's distinct codes and scales, the inputs that fail the round trip)
merged exactly (:func:`merge`: sums and sorted unions), then one function builds
the Record (:func:`blocked_record`).  An array in memory is the single-chunk
case; a dask array (:mod:`kernels.dask_blocked`) merges its chunks' partials in
a tree, and its Record equals the in-memory one bit for bit but the timings.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from .codecs import REGISTRY, lookup
from .domain import Domain
from .measure import (EXACT_POINTS, Record, _error_points, _Feature, _record_from, error_in_units, time_apply,
                      timing_input, warn_timing)
from .metrics import Distinct, distinct, entropy_bits, from_histogram, group_outputs, histogram, merge_distinct
from .pipeline import run_segments  # noqa: F401  (kernels.dask_blocked runs chunks with it)


# --------------------------------------------------------------------------
# partials and their exact merge
# --------------------------------------------------------------------------


def _unique_pairs(xs: np.ndarray, ys: np.ndarray, counts: np.ndarray):
    """Distinct (x, y) float64 pairs, sorted by x then y (NaN y equal, last), counts summed."""
    if not xs.size:
        return np.empty((0, 2)), np.empty(0, np.int64)
    order = np.lexsort((ys, xs))
    xs, ys, counts = xs[order], ys[order], counts[order]
    new = np.ones(xs.size, bool)
    new[1:] = (xs[1:] != xs[:-1]) | ~((ys[1:] == ys[:-1]) | (np.isnan(ys[1:]) & np.isnan(ys[:-1])))
    starts = np.flatnonzero(new)
    return np.stack([xs[starts], ys[starts]], axis=1), np.add.reduceat(counts, starts).astype(np.int64)


def _pairs(x: np.ndarray, y: np.ndarray):
    """Distinct (x, y) pairs of the non-NaN inputs, sorted, with element counts
    (-0.0 folded; NaN outputs equal to each other, last)."""
    xf = x.reshape(-1).astype(np.float64) + 0.0
    yf = y.reshape(-1).astype(np.float64) + 0.0
    keep = ~np.isnan(xf)
    return _unique_pairs(xf[keep], yf[keep], np.ones(int(keep.sum()), np.int64))


def _merge_pairs(parts):
    pu = np.concatenate([p[0] for p in parts])
    return _unique_pairs(pu[:, 0], pu[:, 1], np.concatenate([p[1] for p in parts]))


def _values(a: np.ndarray) -> np.ndarray:
    """Sorted distinct non-NaN values of ``a`` as float64 (-0.0 folded)."""
    v = np.asarray(a).astype(np.float64).reshape(-1) + 0.0
    return np.unique(v[~np.isnan(v)])


def _dpart(flat: np.ndarray, row):
    """A distinct-values partial: the bit-pattern histogram (8/16-bit data) or the Distinct."""
    return ("hist", histogram(flat, row)) if row.itemsize <= 2 else ("d", distinct(flat))


def _dmerge(parts):
    if parts[0][0] == "hist":
        return "hist", np.sum([p[1] for p in parts], axis=0)
    return "d", merge_distinct(*(p[1] for p in parts))


def _dfinal(p, row) -> Distinct:
    return from_histogram(p[1], row) if p[0] == "hist" else p[1]


def _all_block_or_cast(pipe) -> bool:
    return all(s.is_block or s.kind == "cast" for s in pipe.steps)


def error_channels(pipe, in_name: str) -> int:
    """Channels of the per-channel ideal of the elementwise steps (1 for an all-block/cast pipeline)."""
    from .measure_pipeline import _nfeat
    from .pipeline import Pipeline

    if _all_block_or_cast(pipe):
        return 1
    return _nfeat(Pipeline([s for s in pipe.steps if not s.is_block]).program(in_name)[0])


def partials(pipe, x: np.ndarray, amax: dict | None = None, nfeat: int = 1) -> dict:
    """What the Record needs of one chunk ``x`` of the (fitted) pipeline's input
    (``amax`` as :func:`run_segments`; ``nfeat``: :func:`error_channels`)."""
    from .pipeline import Pipeline

    amax = amax or {}
    row = lookup(x.dtype)
    y = run_segments(pipe, x, amax)
    outs, cur = [], x  # each step's prefix output (steps run one by one: the fused pass's bits)
    for k, s in enumerate(pipe.steps[:-1]):
        cur = s.apply_block(cur, amax.get(k)) if s.is_block else Pipeline((s,)).transform(cur)
        outs.append(cur)
    outs.append(y)
    k_last = max(k for k, s in enumerate(pipe.steps) if s.is_block)
    codes, scales = pipe.steps[k_last].quantize(x if k_last == 0 else outs[k_last - 1], amax.get(k_last))
    try:
        back = pipe.inverse_transform(y, input_dtype=row.name)
    except (ValueError, TypeError):
        back = None
    bad = None
    if back is not None:
        xf = x.reshape(-1).astype(np.float64)
        ok = back.reshape(-1).astype(np.float64) == xf
        bad = np.unique(xf[~ok & ~np.isnan(xf)] + 0.0)
    flat = np.ascontiguousarray(x).reshape(-1)
    part = dict(d=_dpart(flat, row), pairs=[_pairs(x, o) for o in outs], dtypes=[lookup(o.dtype).name for o in outs],
                codes=_values(codes.astype(np.float32)), scales=_values(scales.astype(np.float32)), bad=bad, chan=None)
    if not _all_block_or_cast(pipe) and nfeat > 1:
        cols, ycols = x.reshape(-1, nfeat), y.reshape(-1, nfeat)
        part["chan"] = [(_dpart(np.ascontiguousarray(cols[:, j]), row), _pairs(cols[:, j], ycols[:, j]))
                        for j in range(nfeat)]
    return part


def merge(*parts) -> dict:
    """The partials of consecutive chunks merged (exact: sums and sorted unions)."""
    if len(parts) == 1:
        return parts[0]
    p0 = parts[0]
    bads = [p["bad"] for p in parts]
    out = dict(d=_dmerge([p["d"] for p in parts]),
               pairs=[_merge_pairs([p["pairs"][k] for p in parts]) for k in range(len(p0["pairs"]))],
               dtypes=p0["dtypes"], codes=np.unique(np.concatenate([p["codes"] for p in parts])),
               scales=np.unique(np.concatenate([p["scales"] for p in parts])),
               bad=None if any(b is None for b in bads) else np.unique(np.concatenate(bads)), chan=None)
    if p0["chan"] is not None:
        out["chan"] = [(_dmerge([p["chan"][j][0] for p in parts]), _merge_pairs([p["chan"][j][1] for p in parts]))
                       for j in range(len(p0["chan"]))]
    return out


# --------------------------------------------------------------------------
# the Record of the merged partials
# --------------------------------------------------------------------------


def _errors_in(pipe, in_row, m: dict, d: Distinct, exact_points: int):
    """(|y - ideal| / slope at the error points, their element counts, sampled,
    underflow) in input units.  The ideal of a block step or cast is the identity,
    so a pipeline of only those compares ``y`` with ``x`` over the distinct (x, y)
    pairs, weighted by their elements; any other step composes its exact map
    (:func:`kernels.measure_pipeline.ideal_values`) per channel, at up to
    ``exact_points`` distinct inputs of each."""
    from .measure_pipeline import ideal_values

    if _all_block_or_cast(pipe):
        pu, pc = m["pairs"][-1]
        xs, ys = pu[:, 0], pu[:, 1]
        fin = np.isfinite(xs)
        underflow = int(pc[(ys == 0) & (xs != 0) & fin].sum())
        return np.abs(ys[fin] - xs[fin]), pc[fin].astype(np.float64), False, underflow
    chans = [(d, m["pairs"][-1])] if m["chan"] is None else [(_dfinal(c, in_row), p) for c, p in m["chan"]]
    errs, weights, sampled, underflow = [], [], False, 0
    for j, (dj, (pu, pc)) in enumerate(chans):
        pts, _, samp = _error_points(dj, exact_points)
        sampled |= samp
        fin = np.isfinite(dj.values.astype(np.float64))
        uu, cc = dj.values[fin], dj.counts[fin]
        try:
            nearest, odd, tail, slope = ideal_values(pipe, j, uu, cc, np.searchsorted(uu.astype(np.float64),
                                                                                       pts.astype(np.float64)), False)
        except (ValueError, TypeError, ZeroDivisionError, KeyError):
            return np.full(1, np.nan), np.ones(1), sampled, 0  # no exact ideal (e.g. statistics after a sqrt)
        # (x, y) pairs of the channel: a block spreads one x over several y
        ptf = pts.astype(np.float64) + 0.0
        at = np.searchsorted(ptf, pu[:, 0]).clip(0, max(ptf.size - 1, 0))
        keep = ptf[at] == pu[:, 0] if ptf.size else np.zeros(len(pu), bool)  # finite inputs at the error points
        at, ys, w = at[keep], pu[keep, 1], pc[keep]
        errs.append(error_in_units(ys, (nearest[at], odd[at], tail[at]), slope))
        weights.append(w.astype(np.float64))
        underflow += int(w[(ys == 0) & (nearest[at] != 0) & np.isfinite(nearest[at])].sum())
    return np.concatenate(errs), np.concatenate(weights), sampled, underflow


def blocked_record(pipe, in_row, m: dict, exact_points: int, label: str, *, n: int, **timing) -> Record:
    """The Record of the merged partials ``m`` of a fitted pipeline over ``n`` elements;
    ``timing``: seconds, fit_seconds, nbytes, roofline, timed_elements."""
    d = _dfinal(m["d"], in_row)
    out_row = REGISTRY[m["dtypes"][-1]]
    step_rows, prev = [], len(d)
    for s, (pu, pc), dt in zip(pipe.steps, m["pairs"], m["dtypes"]):
        g = group_outputs(pu[:, 1], pc, pu[:, 0])
        step_rows.append(dict(spec=s.spec, output_dtype=dt, compute_dtype=s.compute_dtype or "-",
                              distinct_out=g.distinct_out, collisions=prev - g.distinct_out,
                              max_merged_span_in=g.max_merged_span_in))
        prev = g.distinct_out
    err_in, weights, sampled, underflow = _errors_in(pipe, in_row, m, d, exact_points)
    pu, pc = m["pairs"][-1]
    overflow = int(pc[np.isinf(pu[:, 1]) & np.isfinite(pu[:, 0])].sum())
    roundtrip = math.nan if m["bad"] is None else len(d) - m["bad"].size
    # one feature: every count is over the whole array; ULPs of a block format are not defined (NaN)
    feat = _Feature(
        n=int(n), nan_in=d.nan, inf_in=int(d.counts[np.isinf(d.values.astype(np.float64))].sum()),
        distinct_in=len(d), distinct_out=g.distinct_out, max_preimage=g.max_preimage, entropy_in=entropy_bits(d.counts),
        entropy_out=g.entropy_out_bits, roundtrip=roundtrip, y_min=g.y_min, y_max=g.y_max,
        overflow=overflow, underflow=underflow, saturated=0,
        ulps=np.full(err_in.shape, np.nan), ulps_apply=np.full(err_in.shape, np.nan), weights=weights,
        sampled=sampled, span_in=g.max_merged_span_in, err_in=err_in,
    )
    rec = _record_from(
        [feat], label, in_row, out_row, n=n, transform="pipeline", formula=pipe.spec, compute_dtype="float32",
        accumulator="-", acc_dtype="-", nfeat=1, options={"pipeline": pipe.spec}, steps=tuple(step_rows), **timing,
    )
    return dataclasses.replace(rec, distinct_codes=int(m["codes"].size), distinct_scales=int(m["scales"].size))


def measure_blocked(source, pipe, *, repeat: int = 3, exact_points: int = EXACT_POINTS, name: str | None = None) -> Record:
    """The Record of a pipeline with block steps on an array (module docstring): the
    partials of the whole array as one chunk."""
    from ._validate import check_array
    from .measure_pipeline import fit_timed

    if isinstance(source, Domain):
        raise ValueError("a pipeline with block steps (scaled_cast, mx) measures arrays: its scales depend on "
                         "the data's layout; pass an array (e.g. domain.values() reshaped into blocks)")
    x, in_row = check_array(source, "source")
    label = name or f"array {x.dtype}{list(x.shape)}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pipe, fit_seconds = fit_timed(pipe, x)
        nfeat = error_channels(pipe, in_row.name)
        if nfeat > 1 and (x.ndim < 2 or x.shape[-1] != nfeat):
            raise ValueError(f"pipeline {pipe.spec!r} has {nfeat} channels; the source has shape {x.shape} "
                             "(channels last)")
        m = partials(pipe, x, None, nfeat)
        out_row = REGISTRY[m["dtypes"][-1]]
        # timing: the whole pipeline on the source repeated to TIMING_MIN (whole rows), or the source itself
        xt, out = timing_arrays(pipe, x, out_row)
        seconds, roofline, note = time_apply(lambda: pipe.transform(xt, out=out), xt, out, repeat)
    warn_timing(note, stacklevel=3)
    return blocked_record(pipe, in_row, m, exact_points, label, n=x.size, seconds=seconds, fit_seconds=fit_seconds,
                          nbytes=xt.nbytes + out.nbytes, roofline=roofline, timed_elements=xt.size)


def timing_arrays(pipe, x: np.ndarray, out_row):
    """(input, output buffer) of the timed pass: ``x`` repeated to TIMING_MIN, or ``x``
    itself when the repeated array breaks the blocks."""
    try:
        xt = timing_input(x)
        out = np.empty(xt.shape, out_row.dtype)
        pipe.transform(xt, out=out)
    except ValueError:
        xt = x
        out = np.empty(xt.shape, out_row.dtype)
    return xt, out
