"""Measure a pipeline end to end, or any library's output array (layer 6).

``kernels.measure(source, pipeline)`` gives one :class:`~kernels.measure.Record`
for the whole pipeline plus ``steps``: for each step its spec, output dtype,
``distinct_out`` (distinct values after it), ``collisions`` (values it merged)
and ``max_merged_span_in`` (the widest range of *input* values sharing one
output after it), so the step that lost the values is named.

The error is measured against the exact ideal of the whole pipeline: each
step's exact map (:meth:`kernels.steps.Step.ideal`) composed in exact rational
arithmetic, statistics computed exactly on the ideal values entering the step,
no intermediate rounding; a ``sqrt`` (standardize) continues in mpmath at
256 bits.  ``max_ulp_error_apply`` composes the same maps with the fitted
statistics.

``kernels.measure_outputs(x, y, ideal=None, inverse=None)``: the same metrics
for an output ``y`` that any library computed from ``x``.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from fractions import Fraction

import numpy as np

from .codecs import REGISTRY, lookup
from .domain import Domain
from .exact import _rational
from .measure import (EXACT_POINTS, Record, _error_points, _feature_metrics_common, _record_from, _reference,
                      error_in_units, time_apply, timing_input, warn_timing)
from .metrics import distinct, merged_span, ulp_distance
from .pipeline import Pipeline, pipeline
from .program import run_program
from .steps import Step

MP_BITS = 256


def as_pipeline(spec) -> Pipeline:
    """A Pipeline from a Pipeline, Step, spec string or preset name."""
    if isinstance(spec, Pipeline):
        return spec
    return pipeline(spec)


def is_pipeline_spec(transform) -> bool:
    from . import presets
    from .stats import TRANSFORMS

    if isinstance(transform, (Pipeline, Step)):
        return True
    return isinstance(transform, str) and transform not in TRANSFORMS and (
        "(" in transform or ";" in transform or transform in ("cast", "clip") or transform in presets.PRESETS
    )


def _feature_ops(ops, j: int) -> tuple:
    """The ops of feature ``j`` alone (per-feature constants sliced)."""
    out = []
    for op in ops:
        if any(c.size > 1 for c in op.const):
            op = dataclasses.replace(op, const=tuple(c[j : j + 1] if c.size > 1 else c for c in op.const))
        out.append(op)
    return tuple(out)


def _nfeat(ops) -> int:
    return max([c.size for op in ops for c in op.const] or [1])


# --------------------------------------------------------------------------
# the exact ideal
# --------------------------------------------------------------------------


def _pick(vals, j):
    return vals[j] if len(vals) > 1 else vals[0]


def _apply_exact(e, j: int, vs: list) -> list:
    import mpmath

    if e.kind == "affine":
        a, b = _pick(e.values[0], j), _pick(e.values[1], j)
        return [a * v + b if isinstance(v, Fraction) else mpmath.mpf(a.numerator) / a.denominator * v + mpmath.mpf(b.numerator) / b.denominator for v in vs]
    if e.kind == "abs":
        return [abs(v) for v in vs]
    if e.kind == "clip":
        lo, hi = _pick(e.values[0], j), _pick(e.values[1], j)
        return [min(max(v, lo) if lo is not None else v, hi) if hi is not None else (max(v, lo) if lo is not None else v) for v in vs]
    mean, var = _pick(e.values[0], j), _pick(e.values[1], j)
    var = var or Fraction(1)
    with mpmath.workprec(MP_BITS):
        s = mpmath.sqrt(mpmath.mpf(var.numerator) / var.denominator)
        m = mpmath.mpf(mean.numerator) / mean.denominator
        return [(mpmath.mpf(v.numerator) / v.denominator - m) / s if isinstance(v, Fraction) else (v - m) / s for v in vs]


def _exact_stats(step: Step, values: list, counts: np.ndarray) -> dict | None:
    """Exact statistics of one feature entering ``step`` (ideal values, Fractions)."""
    from . import presets

    if not all(isinstance(v, Fraction) for v in values):
        raise ValueError("statistics of irrational values (after a sqrt) are not computed exactly")
    if step.kind == "preset":
        p = presets.get(step.name)
        if p.exact_fit is None:
            return None
        floats = [float(v) for v in values]
        exact_floats = all(Fraction(f) == v for f, v in zip(floats, values))
        return p.exact_fit(np.array(floats) if exact_floats else values, counts, **step.options)
    if step.kind != "transform" or not step.needs_fit:
        return _given_stats(step)  # given (or a divisor): exact as given
    n = int(counts.sum())
    lo, hi = min(values), max(values)
    out = {"min": lo, "max": hi, "maxabs": max(abs(lo), abs(hi))}
    if step.name == "standardize":
        mean = sum(v * int(c) for v, c in zip(values, counts)) / n
        out["mean"] = mean
        out["var"] = sum((v - mean) ** 2 * int(c) for v, c in zip(values, counts)) / n
    return out


def _given_stats(step: Step) -> dict | None:
    if step.kind != "transform":
        return None
    p = step._params(step.input_dtype or "float32")
    return {"per_feature": p}


def _stats_for(step: Step, j: int, st):
    """The statistics dict of feature j for Step.ideal: exact or from Params."""
    if st is None:
        return None
    p = st.get("per_feature") if isinstance(st, dict) else None
    if p is not None:
        out = {}
        for k, v in p.stats.items():
            out[k] = Fraction(float(v[j] if v.size > 1 else v[0]))
        if "std" in out:
            out["var"] = out["std"] ** 2
        return out
    return st


def _fitted_stats(step: Step, j: int):
    """The fitted float64 statistics of feature j as Fractions (for the apply-only reference)."""
    from .params import Params

    if isinstance(step.state, Params):
        return _stats_for(step, j, {"per_feature": step.state})
    if isinstance(step.state, dict):
        return {k: Fraction(float(np.asarray(v).reshape(-1)[j if np.asarray(v).size > 1 else 0])) for k, v in step.state.items()}
    return _stats_for(step, j, _given_stats(step)) if step.kind == "transform" else None


def _raw_stats(step: Step, raw: np.ndarray) -> dict | None:
    """min, max and maxabs of a fitting transform straight from the input floats
    (exact as they are); None where more is needed (standardize: exact sums)."""
    if step.kind != "transform" or not step.needs_fit or step.name == "standardize" or not raw.size:
        return None
    lo, hi = Fraction(float(raw.min())), Fraction(float(raw.max()))
    return {"min": lo, "max": hi, "maxabs": max(abs(lo), abs(hi))}


def ideal_values(pipe: Pipeline, j: int, values: np.ndarray, counts: np.ndarray, points_idx: np.ndarray, fitted: bool):
    """(nearest, odd) float64 of the pipeline's exact ideal at ``values[points_idx]``,
    and ``|slope|`` of its affine part (clips and abs aside: the factor that turns
    an output error into input units).

    Exact values of every input are carried only while a later step computes
    statistics from them; from then on only the points (a minmax of a million
    distinct floats costs its min and max, not a million Fractions)."""
    raw = values.astype(np.float64)
    points_idx = np.asarray(points_idx, np.int64)
    vs = None  # the exact values once a step has changed them: of every input, or of the points (subset)
    subset = False
    slope = 1.0
    dtype = lookup(values.dtype).name
    need = [not fitted and (s.needs_fit or s.kind == "transform") for s in pipe.steps]
    for k, s in enumerate(pipe.steps):
        in_dtype, dtype = dtype, s.build(dtype)[1]
        if fitted:
            st = _fitted_stats(s, j)
        elif need[k]:
            st = _raw_stats(s, raw) if vs is None else None
            if st is None:
                full = vs if vs is not None else [Fraction(float(v)) for v in raw]
                st = _exact_stats(s, *_distinct_fractions(full, counts))
            st = _stats_for(s, j, st)
        else:
            st = None
        exact = s.ideal(st, in_dtype)
        if exact and not any(need[k + 1:]) and not subset:  # no later statistics: the points suffice
            vs = [Fraction(float(v)) for v in raw[points_idx]] if vs is None else [vs[i] for i in points_idx]
            subset = True
        elif exact and vs is None:
            vs = [Fraction(float(v)) for v in raw]
        for e in exact:
            jj = j if len(e.values) and any(len(v) > 1 for v in e.values) else 0
            vs = _apply_exact(e, jj, vs)
            if e.kind == "affine":
                slope *= abs(float(_pick(e.values[0], jj)))
            elif e.kind not in ("abs", "clip"):  # (x - mean) / sqrt(var)
                slope /= math.sqrt(float(_pick(e.values[1], jj) or 1))
    if vs is None:
        pts = [Fraction(float(v)) for v in raw[points_idx]]
    else:
        pts = vs if subset else [vs[i] for i in points_idx]
    nearest = np.empty(len(pts))
    odd = np.empty(len(pts))
    tail = np.empty(len(pts))
    for i, v in enumerate(pts):
        nearest[i], odd[i], tail[i] = _round64(v)
    return nearest, odd, tail, slope


def _distinct_fractions(vs: list, counts: np.ndarray):
    merged: dict = {}
    for v, c in zip(vs, counts.tolist()):
        merged[v] = merged.get(v, 0) + int(c)
    keys = sorted(merged)
    return keys, np.array([merged[k] for k in keys], dtype=np.int64)


def _round64(v) -> tuple[float, float, float]:
    """(nearest, odd, tail = v - nearest) float64 of an exact or 256-bit value."""
    if isinstance(v, Fraction):
        q, odd = _rational(v.numerator, v.denominator)
        return q, odd, float(v - Fraction(q)) if math.isfinite(q) else 0.0
    import mpmath

    with mpmath.workprec(MP_BITS):
        q = float(v)  # mpmath rounds to nearest
        tail = float(v - mpmath.mpf(q)) if math.isfinite(q) else 0.0
        if mpmath.mpf(q) == v or not math.isfinite(q) or (np.float64(q).view(np.uint64) & 1):
            return q, q, tail
        return q, math.nextafter(q, math.inf if v > mpmath.mpf(q) else -math.inf), tail


# --------------------------------------------------------------------------
# measure
# --------------------------------------------------------------------------


def _errors(pipe: Pipeline, j: int, d, y: np.ndarray, pts: np.ndarray, w: np.ndarray, out_row):
    """(ulps against the exact ideal, ulps with the fitted statistics, (underflow,
    saturated)) at the error points of feature j; NaN ulps where no exact ideal
    exists (statistics of irrational intermediates, non-finite data)."""
    ulps = ulps_apply = err_in = np.full(pts.size, np.nan)
    underflow = saturated = 0
    if not pts.size:
        return ulps, ulps_apply, (underflow, saturated), err_in
    fin = np.isfinite(d.values.astype(np.float64))
    uu, cc = d.values[fin], d.counts[fin]
    idx = np.searchsorted(uu.astype(np.float64), pts.astype(np.float64))
    y_pts = y[fin][idx]
    for fitted in (False, True):
        try:
            *ideal, slope = ideal_values(pipe, j, uu, cc, idx, fitted)
        except (ValueError, TypeError, ZeroDivisionError, KeyError):
            continue
        e = ulp_distance(y_pts, _reference(ideal, out_row), out_row)
        if fitted:
            ulps_apply = e
            continue
        ulps = e
        nearest = ideal[0]
        err_in = error_in_units(y_pts, ideal, slope)
        yf = y_pts.astype(np.float64)
        if out_row.is_integer:  # the ideal rounds outside [min, max]: the output saturated
            r = np.rint(nearest)
            saturated = int(w[(r < out_row.min) | (r > out_row.max)].sum())
        else:  # a nonzero ideal that came out as zero
            underflow = int(w[(yf == 0) & (nearest != 0) & np.isfinite(nearest)].sum())
    return ulps, ulps_apply, (underflow, saturated), err_in


def _spans(u: np.ndarray, y: np.ndarray) -> tuple[int, float]:
    """(distinct outputs, widest input range merged into one output) of a feature."""
    yf = y.astype(np.float64)
    yf = np.where(yf == 0, 0.0, yf)  # -0.0 == +0.0
    ok = ~np.isnan(yf)
    uf = u.astype(np.float64)[ok]
    yk = yf[ok]
    if yk.size == 0:
        return 0, 0.0
    keys, inv = np.unique(yk, return_inverse=True)
    return int(keys.size), merged_span(uf, inv, keys.size)


def fit_timed(pipe: Pipeline, x: np.ndarray) -> tuple[Pipeline, float]:
    """(the pipeline fitted on ``x`` when it computes statistics, the seconds that took)."""
    if not pipe.needs_fit:
        return pipe, 0.0
    t = time.perf_counter()
    pipe = pipe.fit(x)
    return pipe, time.perf_counter() - t


def measure_pipeline(source, pipe, *, repeat: int = 3, exact_points: int = EXACT_POINTS, name: str | None = None,
                     distinct_values: bool = False) -> Record:
    """Every source of fewer than ``TIMING_MIN`` (2**24) elements is timed on its
    values repeated to that many, whole rows for per-channel data
    (:func:`kernels.measure.timing_input`); ``distinct_values`` (the source holds
    each value once) is accepted for callers written when only domains were."""
    if type(source).__module__.startswith("dask."):  # counted chunk by chunk
        from .dask_array import measure_pipeline as measure_pipeline_dask

        return measure_pipeline_dask(source, pipe, repeat=repeat, exact_points=exact_points, name=name)
    pipe = as_pipeline(pipe)
    if pipe.has_blocks:
        from .measure_blocked import measure_blocked

        return measure_blocked(source, pipe, repeat=repeat, exact_points=exact_points, name=name)
    if isinstance(source, Domain):
        if source.size > 1 << 26:
            raise ValueError(f"a pipeline on a domain of {source.size:,} values: use a range of at most 2**26 values")
        x = source.values()
        label = name or source.describe()
    else:
        from ._validate import check_array

        x, _ = check_array(source, "source")
        label = name or f"array {x.dtype}{list(x.shape)}"
    in_row = lookup(x.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pipe, fit_seconds = fit_timed(pipe, x)
        ops, output_dtype, _ = pipe.program(in_row.name)
        out_row = REGISTRY[output_dtype]
        nfeat = _nfeat(ops)
        if nfeat > 1 and (x.ndim < 2 or x.shape[-1] != nfeat):
            raise ValueError(f"pipeline {pipe.spec!r} has {nfeat} channels; the source has shape {x.shape} (channels last)")
        xt = timing_input(x)
        out = np.empty(xt.shape, out_row.dtype)
        seconds, roofline, note = time_apply(lambda: pipe.transform(xt, out=out), xt, out, repeat)
        cols = x.reshape(-1, nfeat)
        feats, step_rows = pipeline_features(pipe, in_row, (distinct(np.ascontiguousarray(cols[:, j])) for j in range(nfeat)),
                                             exact_points)
    warn_timing(note, stacklevel=3)
    return pipeline_record(pipe, in_row, feats, step_rows, label, n=x.size, seconds=seconds, fit_seconds=fit_seconds,
                           nbytes=xt.nbytes + out.nbytes, roofline=roofline, timed_elements=xt.size)


def pipeline_features(pipe: Pipeline, in_row, distincts, exact_points: int) -> tuple[list, list]:
    """(per-feature metrics, per-step rows) of a fitted elementwise pipeline from
    each feature's distinct inputs (``distincts``, in feature order): every metric
    but the timing needs only them.  Shared by arrays and dask arrays
    (:func:`kernels.dask_array.measure`)."""
    ops, output_dtype, per_step = pipe.program(in_row.name)
    out_row = REGISTRY[output_dtype]
    inv_ops, _ = pipe.inverse_program(in_row.name)
    feats, step_rows = [], [dict(spec=s.spec, output_dtype=o, compute_dtype=c, distinct_out=0, collisions=0,
                                 max_merged_span_in=0.0) for s, (_, o, c) in zip(pipe.steps, per_step)]
    prefix = [pipe.program(in_row.name, stop=k + 1)[:2] for k in range(len(pipe.steps))]
    for j, d in enumerate(distincts):
        u = d.values
        prev = len(d)
        for k, (pops, pout) in enumerate(prefix):
            yk = run_program(u, _feature_ops(pops, j), pout)
            dk, span = _spans(u, yk)
            step_rows[k]["distinct_out"] += dk
            step_rows[k]["collisions"] += prev - dk
            step_rows[k]["max_merged_span_in"] = max(step_rows[k]["max_merged_span_in"], span)
            prev = dk
        y = run_program(u, _feature_ops(ops, j), output_dtype)
        back = run_program(y, _feature_ops(inv_ops, j), in_row.name)
        pts, w, sampled = _error_points(d, exact_points)
        ulps, ulps_apply, events, err_in = _errors(pipe, j, d, y, pts, w, out_row)
        feats.append(_feature_metrics_common(d, y, back, out_row, ulps, ulps_apply, w, sampled, *events, err_in=err_in))
    return feats, step_rows


def pipeline_record(pipe: Pipeline, in_row, feats, step_rows, label, **timing) -> Record:
    """The Record of :func:`pipeline_features`' results; ``timing``: n, seconds,
    fit_seconds, nbytes, roofline, timed_elements."""
    _, output_dtype, per_step = pipe.program(in_row.name)
    compute = sorted({c for _, _, c in per_step})
    return _record_from(
        feats, label, in_row, REGISTRY[output_dtype], transform="pipeline", formula=pipe.spec,
        compute_dtype=compute[0] if len(compute) == 1 else "+".join(compute), accumulator="-", acc_dtype="-",
        nfeat=len(feats), options={"pipeline": pipe.spec}, steps=tuple(step_rows), **timing,
    )


def measure_outputs(x, y, ideal=None, inverse=None, **kwargs) -> Record:
    """Every metric of an output ``y`` computed elementwise from ``x`` (see
    :func:`_measure_outputs_array`); dask arrays are counted chunk by chunk
    (:mod:`kernels.dask_array`)."""
    if type(x).__module__.startswith("dask.") or type(y).__module__.startswith("dask."):
        from .dask_array import measure_outputs as measure_outputs_dask

        return measure_outputs_dask(x, y, ideal, inverse, **kwargs)
    return _measure_outputs_array(x, y, ideal, inverse, **kwargs)


def _measure_outputs_array(x, y, ideal=None, inverse=None, *, exact_points: int = EXACT_POINTS, name: str | None = None) -> Record:
    """Every metric of an output ``y`` that any library computed elementwise from ``x``.

    ``ideal``: a transform step, spec or pipeline whose exact value is the
    reference for the error (fitted on ``x`` when it computes statistics);
    ``inverse``: a callable, step or pipeline mapping ``y`` back (round trip).
    ``y`` must be a function of ``x`` value by value (per channel when
    ``ideal`` has per-channel constants): equal inputs with different outputs
    raise ``ValueError``."""
    from ._validate import check_array

    x, in_row = check_array(x, "x")
    y, out_row = check_array(y, "y")
    if y.shape != x.shape:
        raise ValueError(f"y has shape {y.shape}, x {x.shape}: an elementwise output has the input's shape")
    pipe = None
    if ideal is not None:
        pipe = as_pipeline(ideal)
        if pipe.needs_fit:
            pipe = pipe.fit(x)
    nfeat = _nfeat(pipe.program(in_row.name)[0]) if pipe is not None else 1
    if nfeat > 1 and x.shape[-1] != nfeat:
        raise ValueError(f"ideal has {nfeat} channels; x has shape {x.shape} (channels last)")
    xc, yc = x.reshape(-1, nfeat), y.reshape(-1, nfeat)
    per_feature = []
    for j in range(nfeat):
        d = distinct(np.ascontiguousarray(xc[:, j]))
        xs = xc[:, j]
        order = np.argsort(xs.astype(np.float64), kind="stable")
        xsorted = xs[order].astype(np.float64)
        ysorted = yc[:, j][order]
        firsts = np.r_[0, np.flatnonzero(np.diff(xsorted) != 0) + 1] if xsorted.size else np.empty(0, np.int64)
        grp = np.repeat(np.arange(firsts.size), np.diff(np.r_[firsts, xsorted.size]))
        yv = ysorted.view(out_row.storage)
        if not np.array_equal(yv, yv[firsts][grp]) and not np.isnan(xsorted).all():
            bad = ~(yv == yv[firsts][grp])
            raise ValueError(f"y is not a function of x value by value: {int(bad.sum())} element(s) of equal x "
                             "have different y (per channel: give ideal= with per-channel constants)")
        keep = ~np.isnan(xsorted[firsts])
        per_feature.append((d, ysorted[firsts][keep]))
    return outputs_record(per_feature, pipe, inverse, in_row, out_row, exact_points,
                          name or f"array {x.dtype}{list(x.shape)}", x.size, x.nbytes + y.nbytes, nfeat)


def outputs_record(per_feature, pipe, inverse, in_row, out_row, exact_points, label, n, nbytes, nfeat) -> Record:
    """measure_outputs' Record from each feature's (Distinct inputs, the output of each)."""
    feats = []
    for j, (d, yu) in enumerate(per_feature):
        if inverse is None:
            back = np.full(yu.shape, np.nan)
        elif callable(inverse) and not isinstance(inverse, (Step, Pipeline)):
            back = np.asarray(inverse(yu))
        else:
            inv = as_pipeline(inverse)
            back = inv.transform(yu) if not inv.needs_fit else inv.fit(yu).transform(yu)
        pts, w, sampled = _error_points(d, exact_points)
        if pipe is None:
            ulps = ulps_apply = err_in = np.full(pts.size, np.nan)
            events = (0, 0)
        else:
            ulps, ulps_apply, events, err_in = _errors(pipe, j, d, yu, pts, w, out_row)
        feats.append(_feature_metrics_common(d, yu, back, out_row, ulps, ulps_apply, w, sampled, *events, err_in=err_in))
    rec = _record_from(
        feats, label, in_row, out_row, n=n, seconds=math.nan, fit_seconds=0.0,
        nbytes=nbytes, roofline=None, timed_elements=0, transform="outputs",
        formula=pipe.spec if pipe is not None else "-", compute_dtype="-", accumulator="-", acc_dtype="-", nfeat=nfeat,
        options={"ideal": pipe.spec} if pipe is not None else {}, steps=(),
    )
    # no inverse: the round trip is unknown, not 0
    return rec if inverse is not None else dataclasses.replace(rec, roundtrip_exact=math.nan)
