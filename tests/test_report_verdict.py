"""The report's verdict, decision table, glossary and failure labels: rendered
from records the real ``measure`` produced on small domains, every figure in
the verdict traced back to a record field (or a dtype constant)."""

from __future__ import annotations

import html
import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import kernels as K
from kernels import report as R
from kernels import report_verdict as V
from kernels.codecs import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "reports" / "report.json"

VARIANTS = (
    ("minmax", {"output_dtype": "float16"}),
    ("minmax", {"output_dtype": "float32"}),
    ("minmax", {"output_dtype": "float16", "compute_dtype": "float16"}),
    ("minmax", {"output_dtype": "uint8"}),
    ("standardize", {"output_dtype": "float32", "accumulator": "naive", "acc_dtype": "float16"}),
    ("scale", {"output_dtype": "float16"}),
)


def _report(records: list[dict]) -> dict:
    return {
        "schema": R.SCHEMA, "record_schema": K.SCHEMA, "mode": "quick", "generated": "2026-01-01T00:00:00+00:00",
        "provenance": records[0]["provenance"] if records else {}, "records": records, "skipped": [],
        "recommendations": R.recommendations(records),
    }


@pytest.fixture(scope="module")
def records():
    out = []
    rng = np.random.default_rng(0)
    sources = [
        ("uint8 (all 256)", K.domain("uint8"), 255.0),
        ("12-bit", K.domain("uint16", 0, 4095), 4095.0),
        ("uint16", K.domain("uint16"), 65535.0),
        ("gaussian", rng.standard_normal(2048).astype(np.float32), None),
        ("heavy_tailed", rng.standard_cauchy(2048).astype(np.float32), None),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, x, hi in sources:
            for t, kw in VARIANTS:
                if hi is None and (t != "minmax" or kw["output_dtype"] == "uint8"):
                    continue
                opts = {"divisor": hi} if t == "scale" else {}
                d = K.measure(x, t, repeat=1, exact_points=512, name=name, **kw, **opts).to_dict()
                d["kind"] = "domain" if hi else "synthetic"
                d["label"] = f"scale /{hi:g}" if t == "scale" else t
                out.append(d)
    return json.loads(json.dumps(out))  # as report.json holds them


def _allowed(records: list[dict]) -> set[str]:
    """Every string a record field (or a dtype constant) formats to."""
    ok = {f"{V.F16_EXACT_INT:,}", f"{V.F16_MAX:,.0f}", f"{V.MIN_TIMED_N:,}", f"{V.AVOID_SURVIVAL:g}"}
    ok |= {str(row.itemsize) for row in REGISTRY.values()}
    for r in records:
        ok.add(V.mps(r))
        for v in r.values():
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                continue
            f = V.num(v) if not isinstance(v, str) or v in ("inf", "-inf") else math.nan
            if math.isnan(f):
                continue
            ok.add(V.fmt(f))
            if math.isfinite(f) and f == int(f):
                ok.add(V.count(f))
    # avoid rows sum overflow_out over a group: sums of records' overflow counts
    ok.add(V.count(sum(r.get("overflow_out") or 0 for r in records)))
    return ok


def _numbers(text: str, records: list[dict]) -> list[str]:
    """The figures of ``text``: names (sources, dtypes, labels, formulas) removed first."""
    names = {r["source"] for r in records} | set(REGISTRY) | {r["label"] for r in records} | {str(r["formula"]) for r in records}
    for n in sorted(names, key=len, reverse=True):
        text = text.replace(n, " ")
    return re.findall(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?(?:e[+-]?\d+)?", text)


def test_every_figure_of_the_verdict_is_a_record_field(records):
    text = "\n".join(V.verdict_markdown(_report(records)))
    allowed = _allowed(records)
    figures = _numbers(text, records)
    assert figures  # the claims are there, with figures
    assert [f for f in figures if f not in allowed] == []


def test_verdict_states_the_measured_failures(records):
    text = "\n".join(V.verdict_markdown(_report(records)))
    assert text.startswith(f"## {V.QUESTION}")
    assert "invertible" in text
    u16 = next(r for r in records if r["source"] == "uint16" and r["compute_dtype"] == "float16")
    assert f"minmax -> float16 (compute float16, {u16['formula']}) keeps, of the distinct (non-NaN) values: " in text
    assert f"uint16 {u16['distinct_out']:,} of 65,536" in text
    acc = next(r for r in records if r["source"] == "uint16" and r["acc_dtype"] == "float16")
    assert "naive/float16 accumulator) keeps" in text and f"uint16 {acc['distinct_out']:,} of 65,536" in text
    f16 = next(r for r in records if r["source"] == "uint16" and r["output_dtype"] == "float16" and r["compute_dtype"] == "float32" and r["transform"] == "minmax")
    assert f"float16 merges up to {V.fmt(f16['max_merged_span_in'])} counts" in text
    assert "Outliers compress minmax" in text
    assert "### Decision table" in text and "avoid: uint8 output" in text


@pytest.mark.parametrize(
    "drop, claim",
    [
        pytest.param(lambda r: r["acc_dtype"] == "float16", "float16 accumulators", id="no-float16-accumulator"),
        pytest.param(lambda r: r["compute_dtype"] == "float16", "float16 compute on 16-bit data", id="no-float16-compute"),
        pytest.param(lambda r: r["source"] == "heavy_tailed", "Outliers compress minmax", id="no-heavy-tailed"),
        pytest.param(lambda r: r["output_dtype"] != "float32" or r["source"] == "heavy_tailed", "Which sources and dtypes merge", id="nothing-merges"),
    ],
)
def test_a_claim_is_absent_when_its_records_are(records, drop, claim):
    assert claim in "\n".join(V.verdict_markdown(_report(records)))
    kept = [r for r in records if not drop(r)]
    assert claim not in "\n".join(V.verdict_markdown(_report(kept)))
    assert claim not in "".join(V.verdict_html(_report(kept)))


def test_no_records_leaves_only_the_question_and_the_principle():
    text = "\n".join(V.verdict_markdown({"records": [], "recommendations": []}))
    assert V.QUESTION in text and "invertible" in text and "Decision table" not in text
    assert re.findall(r"\d", text.replace("float16", "")) == ["0"]  # b != 0


@pytest.mark.parametrize(
    "where, expect",
    [
        pytest.param({"transform": "minmax", "output_dtype": "uint8"}, "minmax into uint8", id="minmax-uint8"),
        pytest.param({"compute_dtype": "float16", "input_dtype": "uint16"}, "float16 compute on 16-bit data", id="f16-compute-u16"),
        pytest.param({"acc_dtype": "float16"}, "naive float16 accumulator", id="f16-accumulator"),
        pytest.param({"transform": "minmax", "output_dtype": "float16"}, None, id="plain-minmax"),
    ],
)
def test_failure_demonstrations_are_labelled(where, expect):
    r = {"transform": "scale", "output_dtype": "float32", "compute_dtype": "float32", "input_dtype": "uint8", "acc_dtype": "float64", **where}
    d = V.demonstration(r)
    assert (d[0] if d else None) == expect
    assert V.note(r) == (f"failure demonstration: {expect}" if expect else "")


def test_both_formats_have_verdict_glossary_explanation_and_labels(records):
    rep = _report(records)
    md = R.render_markdown(rep)
    page = R.render_html(rep, {})
    for text in (md, page):
        assert text.index(V.QUESTION) < text.index("Recommendations")
        assert "Glossary" in text
        assert "failure demonstration: minmax into uint8" in text
        assert "max error (input units)" in text and "max ULP (of output dtype)" in text
        for term, _ in V.GLOSSARY:
            assert html.escape(term) in text
    assert V.explanation() in md and html.escape(V.explanation()) in page
    # the input-unit columns come before the ULP columns
    header = next(line for line in md.splitlines() if line.startswith("| output |"))
    assert header.index("max error (input units)") < header.index("max ULP (of output dtype)")


def test_published_report_renders_old_records_as_dashes():
    rep = json.loads(PUBLISHED.read_text())
    md = R.render_markdown(rep)
    page = R.render_html(rep, {})
    assert V.QUESTION in md and V.QUESTION in page and "Glossary" in page
    if "max_merged_span_in" not in rep["records"][0]:  # recorded before the input-unit fields
        row = next(line for line in md.splitlines() if line.startswith("| float16 | float32 | mul_add |"))
        assert "| - | - | - |" in row


def test_speed_is_a_dash_where_it_means_nothing():
    r = {"roofline_fraction": None, "elements_per_s": 5e8, "n": 10**9}
    assert V.mps(r) == "-"
    assert V.mps({**r, "roofline_fraction": 0.5, "n": 256}) == "-"
    assert V.mps({**r, "roofline_fraction": 0.5, "elements_per_s": "nan"}) == "-"
    assert V.mps({**r, "roofline_fraction": 0.5}) == "500"


def test_decision_speed_comes_from_a_timed_run_of_the_same_variant():
    base = {"input_dtype": "uint8", "transform": "minmax", "output_dtype": "float16", "compute_dtype": "float32",
            "formula": "mul_add", "accumulator": "pairwise", "acc_dtype": "float64"}
    small = {**base, "source": "uint8 (all 256)", "n": 256, "roofline_fraction": 0.5, "elements_per_s": 1e8}
    big = {**base, "source": "camera", "n": 262_144, "roofline_fraction": 0.2, "elements_per_s": 3.2e9}
    other = {**big, "source": "coffee", "output_dtype": "float32", "elements_per_s": 9e9}
    assert V._speed([small, big, other], small) == "3200 (on camera, n = 262,144)"
    assert V._speed([small, other], small) == "-"
    assert V._speed([small, big], big) == "3200"
