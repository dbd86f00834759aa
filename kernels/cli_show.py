"""How the command line shows things (layer 7, under :mod:`kernels.cli`): a Record
(the verdict line and the grouped table of ``measure``, ``audit`` and pipelines)
and a dtype's facts (``precision-bench dtypes``, measured by the codec itself)."""

from __future__ import annotations

from .codecs import REGISTRY


def dtype_facts(row) -> dict:
    """What a user asks of a format before choosing it, measured by the codec
    itself: the largest finite value, the smallest subnormal, how many codes are
    NaN and inf, and what a finite overflow and +inf become under each
    ``saturate`` policy (``cast`` of 4 x max and of inf)."""
    import warnings

    import numpy as np

    from .cast import cast
    from .codecs import Policy

    facts = {"name": row.name, "bytes": row.itemsize, "kind": "integer" if row.is_integer else "float",
             "max": row.max, "compute": row.can_compute}
    if row.is_integer:
        facts.update(smallest_subnormal=None, nan_codes="none", inf_codes="none", overflow={False: "saturates", True: "saturates"})
        return facts
    facts["smallest_subnormal"] = float(row.info.smallest_subnormal)
    if row.itemsize <= 2:
        n = 1 << (16 if row.itemsize == 2 else _code_bits(row))
        with np.errstate(invalid="ignore"):
            codes = np.arange(n, dtype=np.uint64).astype(row.storage).view(row.dtype).astype(np.float64)
        nan, inf = np.flatnonzero(np.isnan(codes)), np.flatnonzero(np.isinf(codes))
        facts.update(nan_codes=_codes_text(nan), inf_codes=_codes_text(inf))
        if not (codes[np.isfinite(codes)] == 0).any():
            facts["smallest_subnormal"] = None  # e8m0: no zero, no subnormals
    else:
        facts.update(nan_codes=2 * (2 ** int(row.info.nmant) - 1), inf_codes=2)
    facts["overflow"] = {}
    for saturate in (False, True):
        if not row.family.supports(row.name, Policy(saturate=saturate)):
            facts["overflow"][saturate] = None
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            y = cast(np.array([4 * row.max, np.inf], np.float64), row.name, saturate=saturate).astype(np.float64)
        facts["overflow"][saturate] = tuple(y.tolist())
    return facts


def _code_bits(row) -> int:
    """Bits per code of a 1-byte format (float6 and float4 use the low 6 and 4)."""
    import ml_dtypes

    fi = ml_dtypes.finfo(row.dtype)
    return min(8, int(fi.nexp) + int(fi.nmant) + (0 if row.name == "float8_e8m0fnu" else 1))


def _codes_text(codes) -> str:
    if codes.size == 0:
        return "none"
    if codes.size <= 6:
        return ", ".join(f"0x{int(c):02x}" for c in codes)
    return f"{codes.size} codes"


def _describe_overflow(o, row) -> str:
    if o is None:
        return "-"
    if isinstance(o, str):
        return o
    finite, inf = (("max" if v == row.max else "NaN" if v != v else f"{v:g}") for v in o)
    return finite if finite == inf else f"{finite}; inf -> {inf}"


def speed_cell(elements_per_s: float) -> str:
    """M elem/s as printed in a table, ``-`` where not measured."""
    return "-" if elements_per_s != elements_per_s else f"{elements_per_s / 1e6:.4g}"


def _units(record) -> str:
    """The input's own units: counts for integer inputs."""
    return "counts" if REGISTRY[record.input_dtype].is_integer else f"{record.input_dtype} units"


def verdict(record) -> str:
    """One line: lossless or how much is lost, and the error, in the input's units."""
    units = _units(record)
    events = [f"{v:,} {what}" for v, what in ((record.overflow_out, "overflow to inf"), (record.underflow_out, "underflow to 0"),
                                             (record.saturated, "saturate")) if v]
    tail = f"; {', '.join(events)}" if events else ""
    if record.distinct_in == 0:
        return f"no values to measure (all {record.nan_in:,} NaN){tail}"
    if record.collisions == 0:
        return (f"lossless: all {record.distinct_in:,} distinct values survive; "
                f"max error {_num(record.max_abs_error_in)} {units}{tail}")
    return (f"loses {record.collisions:,} of {record.distinct_in:,} values; inputs up to "
            f"{_num(record.max_merged_span_in)} {units} apart merge; max error {_num(record.max_abs_error_in)} {units}{tail}")


def record_table(record, what: str):
    """A Record grouped for reading: input, survival, error, range events, speed."""
    from rich.table import Table

    r, units = record, _units(record)
    share = "share of distinct inputs"
    table = Table(title=f"{r.source}: {what} -> {r.output_dtype}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("unit")
    sampled = "evenly spaced sample" if r.error_sampled else "every distinct input"
    sections = {
        "input": [("dtype", r.input_dtype, ""), ("elements", f"{r.n:,}", "elements"), ("NaN", f"{r.nan_in:,}", "elements"),
                  ("inf", f"{r.inf_in:,}", "elements"), ("distinct values", f"{r.distinct_in:,}", "values"),
                  ("effective bits", _num(r.effective_bits_in), "bits (log2 distinct)")],
        "survival": [("distinct in -> out", f"{r.distinct_in:,} -> {r.distinct_out:,}", "values"),
                     ("collisions", f"{r.collisions:,}", "values lost"), ("survival", _num(r.survival), share),
                     ("max preimage", f"{r.max_preimage:,}", "inputs in one output"),
                     ("merged span", _num(r.max_merged_span_in), f"{units} (widest merged range)"),
                     ("information lost", _num(r.info_lost_bits), "bits per element (entropy)"),
                     ("round trip exact", _num(r.roundtrip_exact), share)],
        "error (vs the exact value)": [
            ("max error", _num(r.max_abs_error_in), units), ("mean error", _num(r.mean_abs_error_in), f"{units}, per element"),
            ("max ULP", _num(r.max_ulp_error), f"ULP of {r.output_dtype}"), ("mean ULP", _num(r.mean_ulp_error), f"ULP of {r.output_dtype}"),
            ("max ULP, arithmetic only", _num(r.max_ulp_error_apply), "ULP (fitted parameters)"),
            ("bits error", _num(r.max_bits_error), "bits (log2 of max ULP + 1)"),
            ("checked at", f"{r.error_points:,}", sampled)],
        "range events": [("overflow to inf", f"{r.overflow_out:,}", "elements"), ("underflow to 0", f"{r.underflow_out:,}", "elements"),
                         ("saturated", f"{r.saturated:,}", "elements")],
        "speed": [("apply", speed_cell(r.elements_per_s), "M elem/s"),
                  ("roofline fraction", "-" if r.roofline_fraction is None else _num(r.roofline_fraction), "of a copy of the same bytes"),
                  ("fit", _num(r.fit_seconds * 1e3), "ms")],
    }
    for k, (name, rows) in enumerate(sections.items()):
        if k:
            table.add_section()
        table.add_row(f"[bold]{name}[/]", "", "")
        for metric, value, unit in rows:
            table.add_row(f"  {metric}", value, unit)
    return table


def print_record(record, what: str, console=None) -> None:
    """The verdict line, then the grouped table (measure, and pipelines before their steps)."""
    from rich.console import Console

    console = console or Console()
    console.print(verdict(record), soft_wrap=True)  # one line, whatever the width
    console.print(record_table(record, what))


def _num(v, digits: int = 4) -> str:
    """A metric for a table: ``digits`` significant digits, '-' when not measured."""
    import math

    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}g}"
