"""Measure (layer 5): run one transform variant on data or a domain; return a Record.

Fit and apply are timed apart (the JIT is warmed first, so compilation is never
timed).  Every timed apply pass runs on at least ``TIMING_MIN`` (2**24) elements:
a domain or an array smaller than that is timed on its values repeated
(``np.resize``, same dtype; rows repeated for multi-feature data, so each channel
keeps its column), because a few thousand elements time the call and the thread
launch, not the kernel.  ``timed_elements`` is that size; ``seconds``,
``elements_per_s``, ``bytes_per_s`` and ``roofline_fraction`` are per that array.
A streamed domain is timed the same way, on 2**24 of its values evenly spaced
(the sweep's own time is not a kernel speed).  The roofline is the fastest copy
probe of the same bytes, interleaved with the kernel (:mod:`kernels.roofline`); a
fraction above 1.3 is a measurement error: ``roofline_fraction`` is None and a
``RuntimeWarning`` says why.  Precision metrics follow :mod:`kernels.metrics`; errors are measured
against :mod:`kernels.exact`, on every distinct input up to ``exact_points``
(65,536 by default) and on that many evenly spaced distinct inputs (both ends
kept) beyond it; the record says which (``error_points``, ``error_sampled``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
import warnings
from collections import OrderedDict

import numpy as np

from ._threads import serialised
from ._validate import check_array, check_choice, check_dtype, check_int
from .cast import cast
from .codecs import REGISTRY, DType, float_rounding, keys_to_values, lookup
from .domain import Domain, from_domain_sample, sweep
from .exact import Ideal, exact_stats, fitted_stats, qrange_of
from .record import SCHEMA, Record, _plain, provenance  # noqa: F401  (re-exported: kernels.measure.Record)
from .metrics import Distinct, distinct, entropy_bits, from_sorted_unique, group_outputs, representable_between, ulp_distance
from .roofline import roofline_fraction, time_against_roofline
from .stats import TRANSFORMS, Params, fit
from .transforms import (
    DEFAULT_FORMULA,
    FORMULAS,
    _compute_row,
    compute_tag,
    default_output,
    inverse_transform,
    kernel_plan,
    transform,
)

EXACT_POINTS = 65_536
MATERIALIZE_LIMIT = 1 << 26  # larger domains stream (64 Mi values)
TIMING_MIN = 1 << 24  # every apply pass is timed on at least this many elements


def _best(fn, repeat: int) -> float:
    best = math.inf
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _as_float(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).astype(np.float64)


@dataclasses.dataclass
class _Feature:
    """Metrics of one feature, before aggregation."""

    n: int
    nan_in: int
    inf_in: int
    distinct_in: int
    distinct_out: int
    max_preimage: int
    entropy_in: float
    entropy_out: float
    roundtrip: int  # distinct inputs that round-trip exactly
    y_min: float
    y_max: float
    overflow: int
    underflow: int
    saturated: int
    ulps: np.ndarray  # at the error points
    ulps_apply: np.ndarray
    weights: np.ndarray  # element counts of the error points
    sampled: bool
    span_in: float = 0.0  # widest input range merged into one output
    err_in: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0))  # |y - ideal| / slope at the error points


_IDEAL_CACHE: OrderedDict = OrderedDict()
IDEAL_CACHE_BYTES = 64 << 20


def _ideal_at(transform: str, stats: dict, opts: dict, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nearest, odd, tail) of the ideal transform at ``points``; memoised, because every
    variant of one source and transform (formula, compute and output dtype) shares
    the same exact reference, and exact arithmetic is the slow part of a measure."""
    key = (
        transform,
        tuple(sorted(stats.items())),
        tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in opts.items())),
        points.dtype.str,
        hashlib.sha1(np.ascontiguousarray(points).tobytes()).hexdigest(),
    )
    if key in _IDEAL_CACHE:
        _IDEAL_CACHE.move_to_end(key)
        return _IDEAL_CACHE[key]
    value = Ideal(transform, stats, opts)(_as_float(points), tail=True)
    _IDEAL_CACHE[key] = value
    # bounded by bytes, not entries: a 30-feature table needs 30 small entries per
    # variant, a 65,536-point domain one large one
    while len(_IDEAL_CACHE) > 1 and sum(a.nbytes for v in _IDEAL_CACHE.values() for a in v) > IDEAL_CACHE_BYTES:
        _IDEAL_CACHE.popitem(last=False)
    return value


def _reference(ideal: tuple[np.ndarray, np.ndarray], out_row: DType) -> np.ndarray:
    """The correctly rounded ideal outputs, in the output dtype, from (nearest, odd)."""
    nearest, odd = ideal[:2]
    if out_row.name == "float64":
        return nearest
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return cast(odd, out_row.name)  # rounds once from round-to-odd: correct (see exact.py)


def error_in_units(y: np.ndarray, ideal: tuple, slope: float) -> np.ndarray:
    """``|y - ideal| / slope``: the output error in input units, from the ideal's
    (nearest, odd, tail) (inf where the output is NaN or infinite and the ideal is
    not; NaN where the ideal is NaN or the map is constant)."""
    nearest, tail = ideal[0], ideal[2]
    yf = np.asarray(y).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # y - nearest is exact when they are within a factor 2 (Sterbenz); the tail
        # removes nearest's own rounding, which would otherwise dominate tiny errors
        e = np.abs((yf - nearest) - tail) / slope if slope > 0 and math.isfinite(slope) else np.full(yf.shape, np.nan)
        e = np.where(np.isinf(yf) & (yf == nearest), 0.0, e)  # equal infinities
    e = np.where(np.isnan(yf) & ~np.isnan(nearest), np.inf, e)
    return np.where(np.isnan(nearest), np.nan, e)


def _error_points(d: Distinct, exact_points: int) -> tuple[np.ndarray, np.ndarray, bool]:
    finite = np.isfinite(_as_float(d.values))
    values, counts = d.values[finite], d.counts[finite]
    if values.size <= exact_points:
        return values, counts, False
    idx = np.unique(np.linspace(0, values.size - 1, exact_points).round().astype(np.int64))
    return values[idx], counts[idx], True


def _variant(params: Params, formula, compute_dtype, out_row: DType, rounding="nearest_even"):
    def apply(values):
        return transform(values, params.transform, params=params, formula=formula, compute_dtype=compute_dtype,
                         output_dtype=out_row.name, rounding=rounding)

    def before_output(values):  # the compute-dtype value, exact in float64
        return transform(values, params.transform, params=params, formula=formula, compute_dtype=compute_dtype,
                         output_dtype="float64", rounding=rounding)

    return apply, before_output


def _feature_metrics(d: Distinct, params: Params, formula, compute_dtype, out_row: DType, exact_points: int,
                     rounding="nearest_even") -> _Feature:
    """Every metric of one feature from its distinct inputs (the unique shortcut)."""
    in_row = REGISTRY[d.dtype]
    if len(d) == 0:
        # every value NaN (nan_policy='propagate'): distinct_in counts non-NaN values
        # only (DESIGN's metrics), so this feature has none, and no error points
        none = np.empty(0)
        return _Feature(d.n, d.nan, 0, 0, 0, 0, 0.0, 0.0, 0, math.inf, -math.inf, 0, 0, 0, none, none, none, False)
    apply, before_output = _variant(params, formula, compute_dtype, out_row, rounding)
    u, c = d.values, d.counts
    y = apply(u)
    g = group_outputs(y, c, u)
    yf, uf = _as_float(y), _as_float(u)
    pre = before_output(u)
    overflow = int(c[np.isinf(yf) & np.isfinite(uf)].sum())
    if out_row.is_integer:
        r = np.rint(pre)
        saturated = int(c[np.isnan(pre) | (r < out_row.min) | (r > out_row.max)].sum())
        underflow = 0
    else:
        saturated = 0
        underflow = int(c[(yf == 0) & (pre != 0) & ~np.isnan(pre)].sum())
    back = inverse_transform(y, params.transform, params, formula=formula, compute_dtype=compute_dtype,
                             output_dtype=in_row.name, rounding=rounding)
    roundtrip = int((_as_float(back) == uf).sum())
    points, weights, sampled = _error_points(d, exact_points)
    ulps = ulps_apply = err_in = np.full(points.size, np.nan)  # no reference: data or params not finite
    if points.size:
        y_pts = apply(points)
        qmin, qmax = qrange_of(params) or (0, None)
        opts = {"feature_range": params.options.get("feature_range", (0.0, 1.0)), "qmin": qmin, "qmax": qmax}
        try:
            stats = exact_stats(params, 0, u, c)
            ideal = _ideal_at(params.transform, stats, opts, points)
            ulps = ulp_distance(y_pts, _reference(ideal, out_row), out_row)
            err_in = error_in_units(y_pts, ideal, Ideal(params.transform, stats, opts).slope)
        except ValueError:
            pass
        try:
            applied = _ideal_at(params.transform, fitted_stats(params, 0), opts, points)
            ulps_apply = ulp_distance(y_pts, _reference(applied, out_row), out_row)
        except ValueError:
            pass
    return _Feature(
        n=d.n,
        nan_in=d.nan,
        inf_in=int(c[np.isinf(uf)].sum()),
        distinct_in=len(d),
        distinct_out=g.distinct_out,
        max_preimage=g.max_preimage,
        entropy_in=entropy_bits(c),
        entropy_out=g.entropy_out_bits,
        roundtrip=roundtrip,
        y_min=g.y_min,
        y_max=g.y_max,
        overflow=overflow,
        underflow=underflow,
        saturated=saturated,
        ulps=ulps,
        ulps_apply=ulps_apply,
        weights=weights,
        sampled=sampled,
        span_in=g.max_merged_span_in,
        err_in=err_in,
    )


def _feature_metrics_common(d: Distinct, y, back, out_row: DType, ulps, ulps_apply, weights, sampled,
                            underflow: int = 0, saturated: int = 0, err_in=None) -> _Feature:
    """A feature's metrics from its distinct inputs ``d``, their outputs ``y`` and
    round-tripped inputs ``back`` (pipelines and library outputs)."""
    u, c = d.values, d.counts
    if len(d) == 0:
        none = np.empty(0)
        return _Feature(d.n, d.nan, 0, 0, 0, 0, 0.0, 0.0, 0, math.inf, -math.inf, 0, 0, 0, none, none, none, False)
    g = group_outputs(y, c, u)
    yf, uf = _as_float(y), _as_float(u)
    return _Feature(
        n=d.n, nan_in=d.nan, inf_in=int(c[np.isinf(uf)].sum()), distinct_in=len(d), distinct_out=g.distinct_out,
        max_preimage=g.max_preimage, entropy_in=entropy_bits(c), entropy_out=g.entropy_out_bits,
        roundtrip=int((_as_float(back) == uf).sum()), y_min=g.y_min, y_max=g.y_max,
        overflow=int(c[np.isinf(yf) & np.isfinite(uf)].sum()), underflow=underflow, saturated=saturated,
        ulps=ulps, ulps_apply=ulps_apply, weights=weights, sampled=sampled, span_in=g.max_merged_span_in,
        err_in=np.full(np.shape(ulps), np.nan) if err_in is None else err_in,
    )


def _joint_entropy(parts: list[tuple[int, float]]) -> float:
    """Entropy of (feature, value) pairs from each feature's (elements, entropy)."""
    total = sum(m for m, _ in parts)
    if total == 0:
        return 0.0
    h_feature = -sum(m / total * math.log2(m / total) for m, _ in parts if m)
    return h_feature + sum(m / total * h for m, h in parts)


def _normalise_source(source):
    if isinstance(source, Domain):
        return source
    x, _ = check_array(source, "source")
    return x


def check_pipeline_args(*, formula=None, output_dtype=None, params=None, axis=None, rounding="nearest_even",
                        compute_dtype="float32", **options) -> None:
    """``measure(source, pipeline)``: the pipeline declares its own dtypes and options."""
    given = {k: v for k, v in dict(formula=formula, output_dtype=output_dtype, params=params, axis=axis).items() if v is not None}
    if rounding != "nearest_even":
        given["rounding"] = rounding
    if given or options or compute_dtype != "float32":
        raise TypeError(f"measure(source, pipeline) takes no {', '.join(sorted([*given, *options]) or ['compute_dtype'])}: "
                        "give them to the pipeline's steps")


def measure(source, transform, **kwargs) -> Record:
    """Measure one transform variant on ``source`` (see :func:`_measure_source`);
    a dask array is counted and fitted chunk by chunk (:mod:`kernels.dask_array`)."""
    if type(source).__module__.startswith("dask."):
        from .dask_array import measure as measure_dask

        return measure_dask(source, transform, **kwargs)
    return _measure_source(source, transform, **kwargs)


@serialised
def _measure_source(
    source,
    transform,
    *,
    formula=None,
    compute_dtype="float32",
    output_dtype=None,
    accumulator="pairwise",
    acc_dtype="float64",
    axis=None,
    nan_policy="raise",
    params=None,
    repeat: int = 3,
    exact_points: int = EXACT_POINTS,
    stream: bool | None = None,
    progress: bool | None = None,
    name: str | None = None,
    rounding: str = "nearest_even",
    **options,
) -> Record:
    """Measure one transform variant on ``source`` (an array or a :func:`kernels.domain`).

    ``params=None`` fits on the source (timed as ``fit_seconds``); the apply pass
    runs on the whole source with ``out=`` given, best of ``repeat``.  Domains of
    more than 2**26 values (or ``stream=True``) are swept streaming: fitted from
    the domain's ends (min/max are exact), counted as runs, errors on
    ``exact_points`` sampled values; ``standardize`` needs a materialised
    domain.  A source of fewer than 2**24 elements (a domain, a small array) is
    timed on its values repeated to 2**24, a streamed domain on 2**24 of its
    values, so ``seconds`` is per ``timed_elements`` (the module docstring).
    ``output_dtype=None`` follows :mod:`kernels.transforms`' table: float64 for
    float64 input, else float32; quantize: its qdtype.  All-NaN data under
    ``nan_policy='propagate'`` gives ``nan_in == n`` and ``distinct_in == 0``
    (NaN is counted apart, never as a distinct value).

    ``rounding`` goes to :func:`kernels.transform` (the compute dtype's rounding mode:
    the apply pass, the metrics and the round trip through ``inverse_transform``
    all run in it); a non-default mode is kept in ``Record.options['rounding']``.
    A pipeline gives it to its steps instead (``minmax(rounding=up)``).
    """
    from .measure_pipeline import is_pipeline_spec, measure_pipeline

    if is_pipeline_spec(transform):
        check_pipeline_args(formula=formula, output_dtype=output_dtype, params=params, axis=axis, rounding=rounding,
                            compute_dtype=compute_dtype, **options)
        return measure_pipeline(source, transform, repeat=check_int(repeat, "repeat", 1),
                                exact_points=check_int(exact_points, "exact_points", 2), name=name)
    transform_name = check_choice(transform, TRANSFORMS, "transform")
    formula = DEFAULT_FORMULA[transform_name] if formula is None else check_choice(formula, FORMULAS[transform_name], "formula")
    crow = _compute_row(compute_dtype)
    ctag = compute_tag(crow, rounding)  # a ValueError for a mode the compute dtype cannot take
    rounding = float_rounding(rounding)
    repeat = check_int(repeat, "repeat", 1)
    exact_points = check_int(exact_points, "exact_points", 2)
    source = _normalise_source(source)
    fit_kw = dict(accumulator=accumulator, acc_dtype=acc_dtype, nan_policy=nan_policy, **options)
    streamed = isinstance(source, Domain) and (stream or (stream is None and source.size > MATERIALIZE_LIMIT))
    if isinstance(source, Domain):
        label = name or source.describe()
        in_row = source.row
        if streamed and transform_name == "standardize":
            raise ValueError(
                f"standardize on a streamed domain of {source.size:,} values: mean and variance need the values; "
                "use a narrower range (at most 2**26 values) or stream=False"
            )
    else:
        label = name or f"array {source.dtype}{list(source.shape)}"
        in_row = lookup(source.dtype)
    with warnings.catch_warnings():
        # overflow and parameter warnings are what is being measured: they become fields
        warnings.simplefilter("ignore", RuntimeWarning)
        if streamed:
            record, note = _measure_stream(source, transform_name, formula, crow, output_dtype, params, fit_kw, repeat,
                                           exact_points, progress, label, rounding, ctag)
        else:
            x = source.values() if isinstance(source, Domain) else source
            record, note = _measure_array(
                x, in_row, transform_name, formula, crow, output_dtype, axis, params, fit_kw, repeat, exact_points, label,
                known_distinct=isinstance(source, Domain), rounding=rounding,
            )
    warn_timing(note)
    return record


def timing_input(x: np.ndarray) -> np.ndarray:
    """``x`` itself when it has at least ``TIMING_MIN`` elements, else its values
    repeated to at least that many, same dtype; N-D data repeats whole rows of its
    last axis, so every feature (channel) keeps its column."""
    if x.size >= TIMING_MIN:
        return x
    if x.ndim <= 1:
        return np.resize(x, TIMING_MIN)
    c = x.shape[-1]
    return np.resize(x.reshape(-1, c), (-(-TIMING_MIN // c), c))


def time_apply(run, xt: np.ndarray, out: np.ndarray, repeat: int) -> tuple[float, float | None, str | None]:
    """(best seconds of ``run``, roofline fraction or None, why None): ``run``
    timed interleaved with the copy probes of its bytes (:mod:`kernels.roofline`)."""
    seconds, probe_seconds, probe = time_against_roofline(run, xt.nbytes, out.nbytes, repeat)
    fraction, note = roofline_fraction(seconds, probe_seconds, probe)
    return seconds, fraction, note


def warn_timing(note: str | None, stacklevel: int = 4) -> None:
    """The roofline's RuntimeWarning, raised outside the block that silences the
    measured overflow warnings; ``stacklevel`` 4 names the caller of ``measure``
    (through its ``serialised`` wrapper)."""
    if note:
        warnings.warn(note, RuntimeWarning, stacklevel=stacklevel)


def _out_row(params: Params, output_dtype, in_row: DType) -> DType:
    if output_dtype is None:
        output_dtype = default_output(params, in_row)
    return check_dtype(output_dtype, "output_dtype")


def _measure_array(x, in_row, tname, formula, crow, output_dtype, axis, params, fit_kw, repeat, exact_points, label, known_distinct,
                   rounding="nearest_even"):
    if params is None:
        params = fit(x, tname, axis=axis, **fit_kw)  # compile outside the timing
        fit_seconds = _best(lambda: fit(x, tname, axis=axis, **fit_kw), 1)
    else:
        fit_seconds = 0.0
    out_row = _out_row(params, output_dtype, in_row)
    xt = timing_input(x)  # a few thousand elements would time the call, not the kernel
    out = np.empty(xt.shape, out_row.dtype)

    def run():
        transform(xt, tname, params=params, formula=formula, compute_dtype=crow.name, output_dtype=out_row.name, out=out,
                  rounding=rounding)

    seconds, roofline, note = time_apply(run, xt, out, repeat)
    nbytes = xt.nbytes + out.nbytes
    if params.nfeat == 1:
        d = from_sorted_unique(x.reshape(-1), in_row) if known_distinct else distinct(x)
        feats = [_feature_metrics(d, params, formula, crow.name, out_row, exact_points, rounding)]
    else:
        cols = x.reshape(-1, params.nfeat)
        feats = [
            _feature_metrics(distinct(np.ascontiguousarray(cols[:, j])), params.feature(j), formula, crow.name, out_row,
                             exact_points, rounding)
            for j in range(params.nfeat)
        ]
    record = _record(
        feats, label, in_row, params, formula, crow, out_row, x.size, seconds, fit_seconds, nbytes, roofline, False,
        timed_elements=xt.size, rounding=rounding,
    )
    return record, note


def _measure_stream(dom: Domain, tname, formula, crow, output_dtype, params, fit_kw, repeat, exact_points, progress, label,
                    rounding="nearest_even", ctag=None):
    t = time.perf_counter()
    ends = np.array([dom.lo, dom.hi]).astype(dom.row.dtype)
    if params is None:
        params = fit(ends, tname, **fit_kw)  # min/max of a domain are its ends, exactly
    fit_seconds = time.perf_counter() - t
    out_row = _out_row(params, output_dtype, dom.row)
    kname, table = kernel_plan(params, formula, crow)
    inv_kname, inv_table = kernel_plan(params, formula, crow, inverse=True)
    res = sweep(dom, crow, kname, table, inv_kname, inv_table, out_row, progress=progress, ctag=ctag)
    sample = from_domain_sample(dom, exact_points)
    feat = _feature_metrics(sample, params, formula, crow.name, out_row, exact_points, rounding)
    m = res.values - res.nan_out
    feat = dataclasses.replace(
        feat,
        n=res.values,
        nan_in=0,
        inf_in=int(np.isinf([dom.lo, dom.hi]).sum()),
        distinct_in=dom.size,
        distinct_out=res.distinct_out,
        max_preimage=res.max_preimage,
        entropy_in=math.log2(dom.size),
        entropy_out=res.entropy_out_bits if m else 0.0,
        roundtrip=res.roundtrip_exact,
        y_min=res.y_min,
        y_max=res.y_max,
        overflow=res.overflow_out,
        underflow=res.underflow_out,
        saturated=res.saturated,
        sampled=sample.values.size < dom.size,
        span_in=res.max_merged_span_in,
    )
    # the apply kernel timed on 2**24 of the domain's values, evenly spaced, as any
    # other source is timed (the sweep above also counts runs: not a kernel speed)
    xt = timing_input(keys_to_values(dom.dtype, _spread_keys(dom, TIMING_MIN)))
    out = np.empty(xt.shape, out_row.dtype)

    def run():
        transform(xt, tname, params=params, formula=formula, compute_dtype=crow.name, output_dtype=out_row.name, out=out,
                  rounding=rounding)

    seconds, roofline, note = time_apply(run, xt, out, repeat)
    record = _record([feat], label, dom.row, params, formula, crow, out_row, dom.size, seconds, fit_seconds,
                     xt.nbytes + out.nbytes, roofline, True, timed_elements=xt.size, rounding=rounding)
    return record, note


def _spread_keys(dom: Domain, count: int) -> np.ndarray:
    """At most ``count`` evenly spaced order keys of ``dom``, from its first, in
    integer arithmetic (float64 keys span 2**64; ``np.unique`` over 2**24 keys, as
    :meth:`Domain.keys` does, takes a minute).  -0.0 may be among them: timing only."""
    span = dom.key_hi - dom.key_lo
    step = max(span // max(count - 1, 1), 1)
    offsets = np.arange(min(count, span // step + 1), dtype=np.uint64) * np.uint64(step)
    return (offsets + np.uint64(dom.key_lo % (1 << 64))).view(np.int64)  # wraps mod 2**64: the signed key


def _record(feats, label, in_row, params, formula, crow, out_row, n, seconds, fit_seconds, nbytes, roofline, streamed, timed_elements=None,
            rounding="nearest_even") -> Record:
    options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.options.items()}
    if rounding != "nearest_even":
        options["rounding"] = rounding  # measure(..., **record.options) runs the same variant
    for k in ("divisor",):
        if k in params.stats:
            options[k] = float(params.stats[k][0])
    return _record_from(
        feats, label, in_row, out_row, n=n, seconds=seconds, fit_seconds=fit_seconds, nbytes=nbytes, roofline=roofline,
        streamed=streamed, timed_elements=timed_elements, transform=params.transform, formula=formula,
        compute_dtype=crow.name, accumulator=params.accumulator, acc_dtype=params.acc_dtype, nfeat=params.nfeat,
        options=options,
    )


def _record_from(feats, label, in_row, out_row, *, n, seconds, fit_seconds, nbytes, roofline, transform, formula,
                 compute_dtype, accumulator, acc_dtype, nfeat, options, streamed=False, timed_elements=None, steps=()) -> Record:
    distinct_in = sum(f.distinct_in for f in feats)
    distinct_out = sum(f.distinct_out for f in feats)
    h_in = _joint_entropy([(f.n - f.nan_in, f.entropy_in) for f in feats])
    h_out = _joint_entropy([(f.n - f.nan_in, f.entropy_out) for f in feats])
    representable = sum(
        representable_between(f.y_min, f.y_max, out_row) for f in feats if math.isfinite(f.y_min) or math.isfinite(f.y_max)
    )
    ulps = np.concatenate([f.ulps for f in feats])
    ulps_apply = np.concatenate([f.ulps_apply for f in feats])
    weights = np.concatenate([f.weights for f in feats]).astype(np.float64)
    # NaN (no reference) wins over inf (a NaN output where a number was due)
    max_ulp = float(np.max(ulps)) if ulps.size else math.nan
    mean_ulp = float((ulps * weights).sum() / weights.sum()) if ulps.size else math.nan
    err_in = np.concatenate([f.err_in for f in feats])
    used = [f.distinct_in for f in feats if f.distinct_in]
    return Record(
        source=label,
        input_dtype=in_row.name,
        transform=transform,
        formula=formula,
        compute_dtype=compute_dtype,
        output_dtype=out_row.name,
        accumulator=accumulator,
        acc_dtype=acc_dtype,
        n=int(n),
        nfeat=nfeat,
        options=options,
        nan_in=sum(f.nan_in for f in feats),
        inf_in=sum(f.inf_in for f in feats),
        distinct_in=distinct_in,
        distinct_out=distinct_out,
        collisions=distinct_in - distinct_out,
        survival=distinct_out / distinct_in if distinct_in else math.nan,
        max_preimage=max(f.max_preimage for f in feats),
        entropy_in_bits=h_in,
        entropy_out_bits=h_out,
        info_lost_bits=h_in - h_out,
        representable_in_range=representable,
        utilization=distinct_out / representable if representable else math.nan,
        roundtrip_exact=sum(f.roundtrip for f in feats) / distinct_in if distinct_in else math.nan,
        max_merged_span_in=max(f.span_in for f in feats),
        max_abs_error_in=float(np.max(err_in)) if err_in.size else math.nan,
        mean_abs_error_in=float((err_in * weights).sum() / weights.sum()) if err_in.size else math.nan,
        effective_bits_in=math.log2(max(used)) if used else math.nan,
        max_ulp_error=max_ulp,
        mean_ulp_error=mean_ulp,
        max_bits_error=math.log2(max_ulp + 1),
        max_ulp_error_apply=float(np.max(ulps_apply)) if ulps_apply.size else math.nan,
        error_points=int(ulps.size),
        error_sampled=any(f.sampled for f in feats),
        overflow_out=sum(f.overflow for f in feats),
        underflow_out=sum(f.underflow for f in feats),
        saturated=sum(f.saturated for f in feats),
        seconds=seconds,
        fit_seconds=fit_seconds,
        elements_per_s=(timed_elements or n) / seconds if seconds else math.nan,
        bytes_per_s=nbytes / seconds if seconds else math.nan,
        roofline_fraction=roofline,
        streamed=streamed,
        provenance=provenance(),
        steps=tuple(steps),
        timed_elements=int(timed_elements or 0),
    )


def error_profile(x, transform, *, params=None, formula=None, compute_dtype="float32", output_dtype=None, exact_points=EXACT_POINTS, **fit_options):
    """Per-point ULP errors of one variant on 1-D data: (distinct inputs checked,
    their ulps against the exact reference, their element counts) (for plots)."""
    x, in_row = check_array(x, "x")
    transform = check_choice(transform, TRANSFORMS, "transform")
    formula = DEFAULT_FORMULA[transform] if formula is None else formula
    crow = _compute_row(compute_dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if params is None:
            params = fit(x, transform, **fit_options)
        if params.nfeat != 1:
            raise ValueError("error_profile takes data fitted with axis=None")
        out_row = _out_row(params, output_dtype, in_row)
        d = distinct(x)
        f = _feature_metrics(d, params, formula, crow.name, out_row, exact_points)
        points, _, _ = _error_points(d, exact_points)
    return points, f.ulps, f.weights
