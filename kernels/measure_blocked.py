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
- When every step is a block step or a cast (an identity ideal):
  ``max_abs_error_in`` / ``mean_abs_error_in`` = ``|y - x|`` over the elements,
  and ``underflow_out`` (nonzero -> 0); NaN and 0 otherwise.  ULP errors are
  not defined for a block format's output (NaN); ``saturated`` is not counted (0).
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from .codecs import lookup
from .domain import Domain
from .measure import Record, provenance, time_apply, timing_input, warn_timing
from .metrics import distinct, entropy_bits, group_outputs, representable_between


def _pairs(x: np.ndarray, y: np.ndarray):
    """Distinct (x, y) pairs of the non-NaN inputs, with element counts (-0.0 folded)."""
    xf = x.reshape(-1).astype(np.float64) + 0.0
    yf = y.reshape(-1).astype(np.float64) + 0.0
    keep = ~np.isnan(xf)
    pairs = np.stack([xf[keep], yf[keep]], axis=1)
    if not pairs.size:
        return np.empty((0, 2)), np.empty(0, np.int64)
    # NaN outputs: np.unique sorts them last and keeps them equal (equal_nan default)
    uniq, counts = np.unique(pairs, axis=0, return_counts=True)
    return uniq, counts


def _distinct_values(a: np.ndarray) -> int:
    v = np.asarray(a).astype(np.float64).reshape(-1) + 0.0
    return int(np.unique(v[~np.isnan(v)]).size)


def _groups(x, y):
    pu, pc = _pairs(x, y)
    return group_outputs(pu[:, 1], pc, pu[:, 0])


def measure_blocked(source, pipe, *, repeat: int = 3, name: str | None = None) -> Record:
    """The Record of a pipeline with block steps on an array (module docstring)."""
    from ._validate import check_array

    if isinstance(source, Domain):
        raise ValueError("a pipeline with block steps (scaled_cast, mx) measures arrays: its scales depend on "
                         "the data's layout; pass an array (e.g. domain.values() reshaped into blocks)")
    x, in_row = check_array(source, "source")
    label = name or f"array {x.dtype}{list(x.shape)}"
    fit_seconds = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if pipe.needs_fit:
            t = time.perf_counter()
            pipe = pipe.fit(x)
            fit_seconds = time.perf_counter() - t
        y = pipe.transform(x)
        out_row = lookup(y.dtype)
        # per step: the prefix pipeline's output, its distinct outputs and merges
        from .pipeline import Pipeline

        step_rows = []
        d = distinct(x)
        prev_distinct = len(d)
        for k, s in enumerate(pipe.steps):
            yk = y if k == len(pipe.steps) - 1 else Pipeline(pipe.steps[: k + 1]).transform(x)
            g = _groups(x, yk)
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
    warn_timing(note, stacklevel=3)

    g = _groups(x, y)
    xf = x.reshape(-1).astype(np.float64)
    yf = y.reshape(-1).astype(np.float64)
    fin = np.isfinite(xf)
    if back is not None:
        bf = back.reshape(-1).astype(np.float64)
        ok = bf == xf
        bad = np.unique(xf[~ok & ~np.isnan(xf)] + 0.0)
        roundtrip = (len(d) - bad.size) / len(d) if len(d) else math.nan
    else:
        roundtrip = math.nan
    identity = all(s.is_block or s.kind == "cast" for s in pipe.steps)
    if identity and fin.any():
        err = np.abs(yf[fin] - xf[fin])
        max_err, mean_err = float(np.max(err)), float(np.mean(err))
        underflow = int(((yf == 0) & (xf != 0) & fin).sum())
    else:
        max_err = mean_err = math.nan
        underflow = 0
    h_in, h_out = entropy_bits(d.counts), g.entropy_out_bits
    representable = (representable_between(g.y_min, g.y_max, out_row)
                     if g.distinct_out and math.isfinite(g.y_min) and math.isfinite(g.y_max) else 0)
    nbytes = xt.nbytes + out.nbytes
    return Record(
        source=label, input_dtype=in_row.name, transform="pipeline", formula=pipe.spec,
        compute_dtype="float32", output_dtype=out_row.name, accumulator="-", acc_dtype="-", n=int(x.size), nfeat=1,
        options={"pipeline": pipe.spec}, nan_in=d.nan, inf_in=int(d.counts[np.isinf(d.values.astype(np.float64))].sum()),
        distinct_in=len(d), distinct_out=g.distinct_out, collisions=len(d) - g.distinct_out,
        survival=g.distinct_out / len(d) if len(d) else math.nan, max_preimage=g.max_preimage,
        entropy_in_bits=h_in, entropy_out_bits=h_out, info_lost_bits=h_in - h_out,
        representable_in_range=representable,
        utilization=g.distinct_out / representable if representable else math.nan,
        roundtrip_exact=roundtrip, max_merged_span_in=g.max_merged_span_in, max_abs_error_in=max_err,
        mean_abs_error_in=mean_err, effective_bits_in=math.log2(len(d)) if len(d) else math.nan,
        max_ulp_error=math.nan, mean_ulp_error=math.nan, max_bits_error=math.nan, max_ulp_error_apply=math.nan,
        error_points=0, error_sampled=False, overflow_out=int((np.isinf(yf) & fin).sum()), underflow_out=underflow,
        saturated=0, seconds=seconds, fit_seconds=fit_seconds,
        elements_per_s=xt.size / seconds if seconds else math.nan, bytes_per_s=nbytes / seconds if seconds else math.nan,
        roofline_fraction=roofline, streamed=False, provenance=provenance(), steps=tuple(step_rows),
        timed_elements=int(xt.size), distinct_codes=distinct_codes, distinct_scales=distinct_scales,
    )

