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
  ``|y - x|`` over every element; the other steps (``minmax``, ``scale``, ...)
  compose their exact maps as :mod:`kernels.measure_pipeline` does, per channel
  at up to ``exact_points`` distinct inputs, each weighted by its elements (NaN
  when no exact ideal exists).  ULP errors are not defined for a block format's
  output (NaN); ``saturated`` is not counted (0).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from .codecs import lookup
from .domain import Domain
from .measure import (EXACT_POINTS, Record, _error_points, _Feature, _record_from, error_in_units, time_apply,
                      timing_input, warn_timing)
from .metrics import distinct, entropy_bits, group_outputs


def _pairs(x: np.ndarray, y: np.ndarray):
    """Distinct (x, y) pairs of the non-NaN inputs, sorted, with element counts
    (-0.0 folded; NaN outputs equal to each other, last)."""
    xf = x.reshape(-1).astype(np.float64) + 0.0
    yf = y.reshape(-1).astype(np.float64) + 0.0
    keep = ~np.isnan(xf)
    xk, yk = xf[keep], yf[keep]
    if not xk.size:
        return np.empty((0, 2)), np.empty(0, np.int64)
    order = np.lexsort((yk, xk))  # by x, then y (NaN last)
    xs, ys = xk[order], yk[order]
    new = np.ones(xs.size, bool)
    new[1:] = (xs[1:] != xs[:-1]) | ~((ys[1:] == ys[:-1]) | (np.isnan(ys[1:]) & np.isnan(ys[:-1])))
    starts = np.flatnonzero(new)
    return np.stack([xs[starts], ys[starts]], axis=1), np.diff(np.r_[starts, xs.size])


def _distinct_values(a: np.ndarray) -> int:
    v = np.asarray(a).astype(np.float64).reshape(-1) + 0.0
    return int(np.unique(v[~np.isnan(v)]).size)


def _groups(x, y, pairs=None):
    pu, pc = _pairs(x, y) if pairs is None else pairs
    return group_outputs(pu[:, 1], pc, pu[:, 0])


def _errors_in(pipe, x: np.ndarray, y: np.ndarray, exact_points: int, pairs=None):
    """(|y - ideal| / slope at the error points, their element counts, sampled,
    underflow) in input units.  The ideal of a block step or cast is the identity,
    so a pipeline of only those compares ``y`` with ``x`` on every element; any
    other step composes its exact map (:func:`kernels.measure_pipeline.ideal_values`)
    per channel, at up to ``exact_points`` distinct inputs of each."""
    from .measure_pipeline import _nfeat, ideal_values
    from .pipeline import Pipeline

    xf = x.reshape(-1).astype(np.float64)
    yf = y.reshape(-1).astype(np.float64)
    if all(s.is_block or s.kind == "cast" for s in pipe.steps):
        fin = np.isfinite(xf)
        underflow = int(((yf == 0) & (xf != 0) & fin).sum())
        return np.abs(yf[fin] - xf[fin]), np.ones(int(fin.sum())), False, underflow
    in_name = lookup(x.dtype).name
    nfeat = _nfeat(Pipeline([s for s in pipe.steps if not s.is_block]).program(in_name)[0])
    if nfeat > 1 and (x.ndim < 2 or x.shape[-1] != nfeat):
        raise ValueError(f"pipeline {pipe.spec!r} has {nfeat} channels; the source has shape {x.shape} (channels last)")
    errs, weights, sampled, underflow = [], [], False, 0
    for j in range(nfeat):
        xj, yj = x.reshape(-1, nfeat)[:, j], y.reshape(-1, nfeat)[:, j]
        d = distinct(np.ascontiguousarray(xj))
        pts, _, samp = _error_points(d, exact_points)
        sampled |= samp
        fin = np.isfinite(d.values.astype(np.float64))
        uu, cc = d.values[fin], d.counts[fin]
        try:
            nearest, odd, tail, slope = ideal_values(pipe, j, uu, cc, np.searchsorted(uu.astype(np.float64),
                                                                                       pts.astype(np.float64)), False)
        except (ValueError, TypeError, ZeroDivisionError, KeyError):
            return np.full(1, np.nan), np.ones(1), sampled, 0  # no exact ideal (e.g. statistics after a sqrt)
        # (x, y) pairs of the channel: a block spreads one x over several y
        pu, pc = pairs if nfeat == 1 and pairs is not None else _pairs(xj, yj)
        ptf = pts.astype(np.float64) + 0.0
        at = np.searchsorted(ptf, pu[:, 0]).clip(0, max(ptf.size - 1, 0))
        keep = ptf[at] == pu[:, 0] if ptf.size else np.zeros(len(pu), bool)  # finite inputs at the error points
        at, ys, w = at[keep], pu[keep, 1], pc[keep]
        errs.append(error_in_units(ys, (nearest[at], odd[at], tail[at]), slope))
        weights.append(w.astype(np.float64))
        underflow += int(w[(ys == 0) & (nearest[at] != 0) & np.isfinite(nearest[at])].sum())
    return np.concatenate(errs), np.concatenate(weights), sampled, underflow


def measure_blocked(source, pipe, *, repeat: int = 3, exact_points: int = EXACT_POINTS, name: str | None = None) -> Record:
    """The Record of a pipeline with block steps on an array (module docstring)."""
    from ._validate import check_array
    from .measure_pipeline import fit_timed
    from .pipeline import Pipeline

    if isinstance(source, Domain):
        raise ValueError("a pipeline with block steps (scaled_cast, mx) measures arrays: its scales depend on "
                         "the data's layout; pass an array (e.g. domain.values() reshaped into blocks)")
    x, in_row = check_array(source, "source")
    label = name or f"array {x.dtype}{list(x.shape)}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pipe, fit_seconds = fit_timed(pipe, x)
        y = pipe.transform(x)
        out_row = lookup(y.dtype)
        # per step: the prefix pipeline's output, its distinct outputs and merges
        step_rows = []
        d = distinct(x)
        prev_distinct = len(d)
        pairs = _pairs(x, y)
        for k, s in enumerate(pipe.steps):
            last_step = k == len(pipe.steps) - 1
            yk = y if last_step else Pipeline(pipe.steps[: k + 1]).transform(x)
            g = _groups(x, yk, pairs if last_step else None)
            step_rows.append(dict(spec=s.spec, output_dtype=lookup(yk.dtype).name, compute_dtype=s.compute_dtype or "-",
                                  distinct_out=g.distinct_out, collisions=prev_distinct - g.distinct_out,
                                  max_merged_span_in=g.max_merged_span_in))
            prev_distinct = g.distinct_out
        blocks = [s for s in pipe.steps if s.is_block]
        last = blocks[-1]
        k_last = pipe.steps.index(last)
        x_last = x if k_last == 0 else Pipeline(pipe.steps[:k_last]).transform(x)
        codes, scales = last.quantize(x_last)
        distinct_codes = _distinct_values(codes.astype(np.float32))
        distinct_scales = _distinct_values(scales.astype(np.float32))
        # timing: the whole pipeline on the source repeated to TIMING_MIN (whole rows), or the source itself
        try:
            xt = timing_input(x)
            out = np.empty(xt.shape, out_row.dtype)
            pipe.transform(xt, out=out)
        except ValueError:
            xt = x
            out = np.empty(xt.shape, out_row.dtype)
        seconds, roofline, note = time_apply(lambda: pipe.transform(xt, out=out), xt, out, repeat)
        try:
            back = pipe.inverse_transform(y, input_dtype=in_row.name)
        except (ValueError, TypeError):
            back = None
        err_in, weights, sampled, underflow = _errors_in(pipe, x, y, exact_points, pairs)
    warn_timing(note, stacklevel=3)

    # g: the last step's groups (of y)
    xf = x.reshape(-1).astype(np.float64)
    yf = y.reshape(-1).astype(np.float64)
    fin = np.isfinite(xf)
    if back is not None:
        ok = back.reshape(-1).astype(np.float64) == xf
        roundtrip = len(d) - np.unique(xf[~ok & ~np.isnan(xf)] + 0.0).size
    else:
        roundtrip = math.nan
    # one feature: every count is over the whole array; ULPs of a block format are not defined (NaN)
    feat = _Feature(
        n=int(x.size), nan_in=d.nan, inf_in=int(d.counts[np.isinf(d.values.astype(np.float64))].sum()),
        distinct_in=len(d), distinct_out=g.distinct_out, max_preimage=g.max_preimage, entropy_in=entropy_bits(d.counts),
        entropy_out=g.entropy_out_bits, roundtrip=roundtrip, y_min=g.y_min, y_max=g.y_max,
        overflow=int((np.isinf(yf) & fin).sum()), underflow=underflow, saturated=0,
        ulps=np.full(err_in.shape, np.nan), ulps_apply=np.full(err_in.shape, np.nan), weights=weights,
        sampled=sampled, span_in=g.max_merged_span_in, err_in=err_in,
    )
    rec = _record_from(
        [feat], label, in_row, out_row, n=x.size, seconds=seconds, fit_seconds=fit_seconds,
        nbytes=xt.nbytes + out.nbytes, roofline=roofline, timed_elements=xt.size, transform="pipeline",
        formula=pipe.spec, compute_dtype="float32", accumulator="-", acc_dtype="-", nfeat=1,
        options={"pipeline": pipe.spec}, steps=tuple(step_rows),
    )
    return dataclasses.replace(rec, distinct_codes=distinct_codes, distinct_scales=distinct_scales)
