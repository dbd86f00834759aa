"""The report's opening (layer 6): the question, its answer from this run's
records, the decision table per source, the glossary and the failure
demonstrations.

Every figure in the verdict and the decision table is a record field (or a
dtype constant computed from numpy), formatted by the functions here; a claim
whose records are absent is left out rather than written without figures.
Markdown and HTML are rendered from one list of blocks, so both formats say
the same thing.  :mod:`kernels.report` calls :func:`verdict_markdown`,
:func:`verdict_html`, :func:`glossary_markdown`, :func:`glossary_html` and
:func:`explanation`; this module never imports it.
"""

from __future__ import annotations

import html
import math
import re

import numpy as np

from ._format import fmt, num  # noqa: F401  (re-exported: tests format fields with them)
from .advise import MX_OUTPUTS, output_bytes
from .codecs import REGISTRY
from .measure import TIMING_MIN

QUESTION = "Can normalising inputs make a network blind to changes in its inputs?"

NORMALISING = ("minmax", "standardize", "scale")  # affine normalisations; quantize reduces levels by design
MIN_TIMED_N = 100_000  # records without timed_elements: fewer elements time the call overhead
AVOID_SURVIVAL = 0.5  # "avoid" rows: the variant merges more than half the distinct values
WORST_MERGES = 8  # merge claims listed in the verdict


# --------------------------------------------------------------------------
# formatting (the test formats record fields with these same functions)
# --------------------------------------------------------------------------


# the test formats record fields with these same functions


def count(v) -> str:
    """A count with thousands separators; ``-`` when absent."""
    return "-" if v is None else f"{int(v):,}"


def timed(r: dict) -> bool:
    """Whether the record's speed means something: a finite rate, measured on at
    least 2**24 elements (``timed_elements``: every measure since the field exists
    times that many); records written before it: timed with a roofline, at least
    MIN_TIMED_N elements."""
    if not math.isfinite(num(r.get("elements_per_s"))):
        return False
    if "timed_elements" in r:
        return r["timed_elements"] >= TIMING_MIN
    return r.get("roofline_fraction") is not None and r.get("n", 0) >= MIN_TIMED_N


def mps(r: dict) -> str:
    """Throughput in millions of elements per second, ``-`` where :func:`timed` is false."""
    return f"{num(r['elements_per_s']) / 1e6:.4g}" if timed(r) else "-"


def units(r: dict, v=None) -> str:
    """The input's own unit: counts for integer inputs (one count when ``v`` is 1)."""
    row = REGISTRY.get(r.get("input_dtype"))
    if row is not None and row.is_integer:
        return "count" if v is not None and num(v) == 1 else "counts"
    return "input units"


def variant_text(r: dict) -> str:
    """``minmax -> float16 (compute float32, mul_add)``, plus a non-default accumulator."""
    acc = f", {r['accumulator']}/{r['acc_dtype']} accumulator" if r["transform"] == "standardize" and r.get("acc_dtype") != "float64" else ""
    return f"{r.get('label', r['transform'])} -> {r['output_dtype']} (compute {r['compute_dtype']}, {r.get('formula')}{acc})"


# --------------------------------------------------------------------------
# failure demonstrations: deliberately bad variants the suite includes
# --------------------------------------------------------------------------

_F16 = np.finfo(np.float16)
F16_MAX = float(_F16.max)  # largest finite float16
F16_EXACT_INT = 2 ** (_F16.nmant + 1)  # float16 holds every integer up to this, not beyond

DEMONSTRATIONS = (
    # (name, rule on a record, why it fails)
    ("minmax into uint8",
     lambda r: r["transform"] == "minmax" and r["output_dtype"] == "uint8",
     "minmax maps the data to [0, 1], and uint8 holds only 0 and 1 there"),
    ("float16 compute on 16-bit data",
     lambda r: r["compute_dtype"] == "float16" and r["input_dtype"] in ("uint16", "int16"),
     f"float16 holds integers exactly only up to {F16_EXACT_INT:,} and nothing finite above {F16_MAX:,.0f}"),
    ("naive float16 accumulator",
     lambda r: r.get("acc_dtype") == "float16",
     f"a float16 running sum overflows past {F16_MAX:,.0f} and, beyond {F16_EXACT_INT:,}, rounds away addends smaller than its spacing"),
)


def demonstration(r: dict) -> tuple[str, str] | None:
    """(name, reason) when the record is a deliberate failure demonstration, else None."""
    for name, rule, why in DEMONSTRATIONS:
        if rule(r):
            return name, why
    return None


def note(r: dict) -> str:
    """The table's note column: labels a failure demonstration."""
    d = demonstration(r)
    return f"failure demonstration: {d[0]}" if d else ""


# --------------------------------------------------------------------------
# blocks: ("h", text) ("p", text) ("ul", [text]) ("table", caption, headers, rows)
# --------------------------------------------------------------------------


def _merges(records: list[dict]) -> list[str]:
    """Per source, the widest merge (input units) of each output dtype that merges,
    normalising transforms only, not demonstrations; the sources that lose the
    largest share first (spans are in each source's own units, so not compared)."""
    worst: dict[str, dict[str, dict]] = {}
    for r in records:
        span = num(r.get("max_merged_span_in"))
        if r["transform"] not in NORMALISING or demonstration(r) or not span > 0:
            continue
        by = worst.setdefault(r["source"], {})
        if r["output_dtype"] not in by or span > num(by[r["output_dtype"]]["max_merged_span_in"]):
            by[r["output_dtype"]] = r
    ranked = sorted(worst.values(), key=lambda by: min(r["survival"] for r in by.values()))[:WORST_MERGES]
    out = []
    for by in ranked:
        rs = sorted(by.values(), key=lambda r: num(r["max_merged_span_in"]))
        first = rs[0]
        parts = [
            f"{r['output_dtype']} merges up to {fmt(r['max_merged_span_in'])} {units(r, r['max_merged_span_in'])} into one output "
            f"({r.get('label', r['transform'])}, compute {r['compute_dtype']}: {count(r['distinct_out'])} of "
            f"{count(r['distinct_in'])} distinct values survive, max error {fmt(r.get('max_abs_error_in'))} {units(r, r.get('max_abs_error_in'))})"
            for r in rs
        ]
        out.append(f"{first['source']}: " + "; ".join(parts) + ".")
    return out


def _dtypes_that_merge(records: list[dict]) -> str | None:
    """Per output dtype, the sources on which it merged values (normalising, not demonstrations)."""
    by: dict[str, dict[str, bool]] = {}
    for r in records:
        if r["transform"] not in NORMALISING or demonstration(r):
            continue
        by.setdefault(r["output_dtype"], {})
        by[r["output_dtype"]][r["source"]] = by[r["output_dtype"]].get(r["source"], False) or r["collisions"] > 0
    if not by:
        return None
    parts = []
    for o, srcs in by.items():
        hit = [s for s, merged in srcs.items() if merged]
        parts.append(f"{o} merged values on {', '.join(hit)}" if hit else f"{o} kept every value on every source it was measured on")
    return "By output dtype (normalising transforms): " + "; ".join(parts) + "."


def _by_variant(rs: list[dict], overflow: bool = False) -> list[str]:
    """One line per variant: what each source keeps under it."""
    groups: dict[str, list[dict]] = {}
    for r in rs:
        groups.setdefault(variant_text(r), []).append(r)
    out = []
    for v, g in groups.items():
        each = []
        for r in g:
            ov = f", {count(r['overflow_out'])} outputs overflowed to inf" if overflow and r.get("overflow_out") else ""
            each.append(f"{r['source']} {count(r['distinct_out'])} of {count(r['distinct_in'])}{ov}")
        out.append(f"{v} keeps, of the distinct (non-NaN) values: " + "; ".join(each) + ".")
    return out


def _f16_compute(records: list[dict]) -> list[str]:
    return _by_variant([r for r in records if r["compute_dtype"] == "float16" and r["input_dtype"] in ("uint16", "int16")], overflow=True)


def _f16_acc(records: list[dict]) -> list[str]:
    return _by_variant([r for r in records if r.get("acc_dtype") == "float16"])


def _span(r: dict) -> str:
    """`` (merging up to S units)``, or nothing for a record without the field."""
    v = num(r.get("max_merged_span_in"))
    return "" if math.isnan(v) else f" (merging up to {fmt(v)} {units(r, v)})"


def _max_error(r: dict) -> str:
    v = num(r.get("max_abs_error_in"))
    return "" if math.isnan(v) else f", max error {fmt(v)} {units(r, v)}"


def _outliers(records: list[dict]) -> str | None:
    """heavy_tailed against gaussian, minmax into the same output dtype."""
    def find(source, o):
        m = [r for r in records if r["source"] == source and r["transform"] == "minmax" and r["output_dtype"] == o and not demonstration(r)]
        return m[0] if m else None

    for o in ("float16", "bfloat16", "float32"):
        h, g = find("heavy_tailed", o), find("gaussian", o)
        if h and g:
            return (
                f"Outliers compress minmax: into {o}, heavy_tailed keeps a share {fmt(h['survival'])} of its distinct values"
                f"{_span(h)}, gaussian keeps {fmt(g['survival'])}{_span(g)}: a few extreme values stretch [min, max], "
                "so the bulk of the data lands on fewer output values."
            )
    return None


def _find(records: list[dict], rec: dict) -> dict | None:
    """The record a recommendation names (old recommendations: compute parsed from their text)."""
    compute = rec.get("compute_dtype")
    if compute is None:
        m = re.search(r"\(compute (\w+)\)", rec.get("text", ""))
        compute = m.group(1) if m else None
    out = rec.get("recommended")
    if out is None:
        m = re.match(r"no measured output keeps every value; (\w+) \(compute", rec.get("text", ""))
        out = m.group(1) if m else None
    cands = [
        r for r in records
        if r["source"] == rec["source"] and r.get("label", r["transform"]) == rec["transform"] and r["output_dtype"] == out
        and (compute is None or r["compute_dtype"] == compute) and (rec.get("formula") is None or r.get("formula") == rec["formula"])
        and not demonstration(r)
    ]
    if not cands:
        return None
    return max(cands, key=lambda r: (r["collisions"] == 0, r["survival"], -num(r.get("max_abs_error_in"))))


def _speed(records: list[dict], r: dict) -> str:
    """M elem/s of the record, or, when it is not timed (streamed or small), of
    the same variant on the largest timed source of the same input dtype."""
    if timed(r):
        return mps(r)
    same = ("input_dtype", "transform", "output_dtype", "compute_dtype", "formula", "accumulator", "acc_dtype")
    others = [o for o in records if timed(o) and all(o.get(k) == r.get(k) for k in same)]
    if not others:
        return "-"
    o = max(others, key=lambda o: o["n"])
    return f"{mps(o)} (on {o['source']}, n = {count(o['n'])})"


DECISION_HEADERS = ("transform", "use", "bytes per element", "M elem/s", "loses")


def _decision_rows(records: list[dict], recs: list[dict], source: str) -> list[tuple]:
    rows = []
    for rec in recs:
        if rec["source"] != source:
            continue
        r = _find(records, rec)
        if rec.get("recommended") is None:
            use = f"no measured output keeps every value; best: {variant_text(r)}" if r else rec.get("text", "")
        else:
            use = variant_text(r) if r else f"{rec['recommended']} (compute {rec.get('compute_dtype', '?')})"
        nm = rec.get("not_measured")  # newer recommendations: dtypes the suite did not measure for this case
        if nm:
            use += "; not measured: " + (", ".join(map(str, nm)) if isinstance(nm, (list, tuple)) else str(nm))
        out = rec.get("recommended") or (r or {}).get("output_dtype")
        known = out in REGISTRY or out in MX_OUTPUTS
        nbytes = rec.get("bytes_per_element", output_bytes(out) if known else None)
        loses = (
            f"{count(r['collisions'])} collisions (survival {fmt(r['survival'])}){_max_error(r)}"
            if r else "-"
        )
        rows.append((rec["transform"], use, "-" if nbytes is None else str(nbytes), _speed(records, r) if r else "-", loses))
    # avoid: grouped by (output, compute, accumulator); quantize reduces levels by design
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if r["source"] != source or r["transform"] == "quantize":
            continue
        if r["survival"] < AVOID_SURVIVAL or (r.get("overflow_out") or 0) > 0:
            groups.setdefault((r["output_dtype"], r["compute_dtype"], r.get("acc_dtype") if r.get("acc_dtype") == "float16" else None), []).append(r)
    for (o, c, acc), rs in groups.items():
        worst = min(rs, key=lambda r: r["survival"])
        d = demonstration(worst)
        labels = ", ".join(dict.fromkeys(r.get("label", r["transform"]) for r in rs))
        what = f"avoid: {o} output, compute {c}" + (f", {acc} accumulator" if acc else "") + f" ({labels})"
        why = f"keeps as few as {count(worst['distinct_out'])} of {count(worst['distinct_in'])} distinct values"
        ov = sum(r.get("overflow_out") or 0 for r in rs)
        if ov:
            why += f"; {count(ov)} outputs overflow to inf"
        if d:
            why += f"; failure demonstration: {d[1]}"
        rows.append(("", what, str(output_bytes(o)), "-", why))  # MX outputs: the element plus the scale's share
    return rows


def verdict_blocks(report: dict) -> list[tuple]:
    records = report.get("records") or []
    blocks: list[tuple] = [
        ("h", QUESTION),
        ("p", "Not through the arithmetic: in exact arithmetic an affine normalisation y = (x - a) / b with b != 0 is "
              "invertible, so distinct inputs stay distinct and nothing is lost.  What blinds a model is the dtype the "
              "result is computed and stored in.  From this run's records:"),
    ]
    merges = _merges(records)
    if merges:
        blocks += [("p", "Which sources and dtypes merge values (the widest input range mapped to one output, in the input's own units; "
                         "the merges plot shows where along the range):"), ("ul", merges)]
    by = _dtypes_that_merge(records)
    if by:
        blocks.append(("p", by))
    f16 = _f16_compute(records)
    if f16:
        blocks += [("p", f"float16 compute on 16-bit data ({DEMONSTRATIONS[1][2]}):"), ("ul", f16)]
    acc = _f16_acc(records)
    if acc:
        blocks += [("p", "float16 accumulators (standardize's mean and variance summed naively in float16):"), ("ul", acc)]
    out = _outliers(records)
    if out:
        blocks.append(("p", out))
    recs = report.get("recommendations") or []
    sources = list(dict.fromkeys(r["source"] for r in records))
    if recs and sources:
        blocks += [
            ("h3", "Decision table"),
            ("p", "Per source: the recommended output, compute dtype and formula; its cost (bytes per element; "
                  f"M elem/s, timed on at least {TIMING_MIN:,} elements, the source repeated; else of the same variant on the "
                  "largest timed source of the same input dtype, else -); what it loses "
                  f"(collisions; max error in the input's units); and what to avoid (variants that keep less than a share "
                  f"{AVOID_SURVIVAL:g} of the distinct values, or overflow)."),
        ]
        for s in sources:
            rows = _decision_rows(records, recs, s)
            if rows:
                blocks.append(("table", s, DECISION_HEADERS, rows))
    return blocks


# --------------------------------------------------------------------------
# glossary and the explanatory paragraph
# --------------------------------------------------------------------------

GLOSSARY = (
    ("distinct in / out", "distinct non-NaN values of the input / output, compared by value (-0.0 == +0.0)"),
    ("collisions", "distinct in - distinct out: input values that can no longer be told apart"),
    ("survival (share)", "distinct out / distinct in; 1 = nothing merged"),
    ("max preimage (values)", "the most distinct inputs merged into one output"),
    ("span (input units)", "max_merged_span_in: the widest range max(x) - min(x) of inputs merged into one output, "
                           "in the input's units (counts for integers); comparable across output dtypes"),
    ("max / mean error (input units)", "|y - ideal(x)| divided by the slope of the ideal affine map: the error "
                                       "measured in the input's own units; comparable across output dtypes"),
    ("ULP error (of output dtype)", "distance in units in the last place of the output dtype to the correctly rounded "
                                    "exact value: per-dtype rounding quality, not comparable across dtypes; "
                                    "* = on sampled distinct inputs; apply = exact arithmetic with the fitted parameters"),
    ("bits error", "log2(ULP + 1) (Herbie's measure)"),
    ("entropy / bits lost (bits per element)", "Shannon entropy per element over value frequencies; bits lost = "
                                               "entropy in - entropy out (info_lost_bits)"),
    ("round trip (share)", "share of distinct inputs that the inverse transform, rounded to the input dtype, gives back exactly"),
    ("representable in range / utilization", "output-dtype values in [min y, max y], and the share of them the outputs use"),
    ("overflow / underflow / saturated (elements)", "finite -> inf; nonzero -> 0; clipped to an integer output's range"),
    ("roofline (fraction of copy)", "time of the fastest copy of the same bytes / time of the transform, both timed in "
                                    "alternating rounds; 1 = memory speed; - where the probe lost to the kernel by more "
                                    "than 1.3 (a measurement error, not a result)"),
    ("M elem/s", f"millions of elements transformed per second, timed on at least {TIMING_MIN:,} elements (small "
                 "sources repeated to that size); - where nothing was timed"),
    ("compute dtype", "the dtype the arithmetic runs in (each operation rounded to it); the output dtype stores the result"),
    ("accumulator", "how standardize sums for its mean and variance: pairwise / naive / kahan, in acc dtype"),
    ("formulas", "sub_div (x - lo) / rng; sub_mul (x - lo) * (1 / rng); mul_add x * s + t (scikit-learn); "
                 "fma fma(x, s, t), one rounding; div x / d; mul x * (1 / d)"),
    ("failure demonstration", "a variant the suite includes because it is known to fail: "
                              + "; ".join(f"{n} ({why})" for n, _, why in DEMONSTRATIONS)),
)


def explanation() -> str:
    """The paragraph under the title, in both formats."""
    return (
        "How many distinct input values survive each transform, how far each output is from the exact result (in the "
        "input's own units, comparable across output dtypes; and in ULPs of the output dtype, against the correctly "
        "rounded exact value; `*` = on sampled distinct inputs, `apply` = with the fitted parameters), and how fast it "
        "runs (timed on at least 2^24 elements, the source repeated; roofline: fraction of the fastest copy of the same "
        "bytes; `-` where no figure was measured). Every figure is measured by this run; the glossary defines each column."
    )


# --------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------


def _md_cell(s: str) -> str:
    return str(s).replace("|", "\\|")


def _markdown(blocks: list[tuple], level: int = 2) -> list[str]:
    lines: list[str] = []
    for b in blocks:
        if b[0] == "h":
            lines += ["#" * level + " " + b[1], ""]
        elif b[0] == "h3":
            lines += ["#" * (level + 1) + " " + b[1], ""]
        elif b[0] == "p":
            lines += [b[1], ""]
        elif b[0] == "ul":
            lines += [f"- {item}" for item in b[1]] + [""]
        else:
            _, caption, headers, rows = b
            if caption:
                lines += [f"**{caption}**", ""]
            lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows] + [""]
    return lines


def _html(blocks: list[tuple], level: int = 2) -> list[str]:
    e = html.escape
    parts: list[str] = []
    for b in blocks:
        if b[0] == "h":
            parts.append(f"<h{level}>{e(b[1])}</h{level}>")
        elif b[0] == "h3":
            parts.append(f"<h{level + 1}>{e(b[1])}</h{level + 1}>")
        elif b[0] == "p":
            parts.append(f"<p>{e(b[1])}</p>")
        elif b[0] == "ul":
            parts.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in b[1]) + "</ul>")
        else:
            _, caption, headers, rows = b
            parts.append(
                "<table>" + (f"<caption>{e(caption)}</caption>" if caption else "")
                + "<tr>" + "".join(f"<th>{e(h)}</th>" for h in headers) + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
                + "</table>"
            )
    return parts


def verdict_markdown(report: dict) -> list[str]:
    return _markdown(verdict_blocks(report))


def verdict_html(report: dict) -> list[str]:
    return _html(verdict_blocks(report))


def _glossary_blocks() -> list[tuple]:
    return [("h", "Glossary"), ("table", "", ("term", "meaning"), list(GLOSSARY))]


def glossary_markdown() -> list[str]:
    return _markdown(_glossary_blocks())


def glossary_html() -> list[str]:
    return _html(_glossary_blocks())
