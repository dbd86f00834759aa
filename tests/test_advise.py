"""The advisor's one ranking: bytes, then error in input units, then a fixed
preference; never ULPs across dtypes, never speed.  Used by ``choose``, pipelines
and the report's recommendations (quick and full suites agree)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

import kernels as K
from kernels import advise as A
from kernels import datasets
from kernels import report as R
from kernels.advise import Requirement, choose
from kernels.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _order(d: dict) -> list[tuple]:
    return [(c["output_dtype"], c["compute_dtype"], c["formula"], c["verdict"], c["reason"]) for c in d["candidates"]]


# ---------------------------------------------------------------- determinism


def test_choose_gives_the_same_answer_three_times(capsys):
    """Issue 14: three identical runs recommended float64/fma, float32/sub_div, float64/fma."""
    argv = ["choose", "--domain", "--input-dtype", "uint16", "--range", "0", "4095", "--transform", "minmax",
            "--lossless", "--json"]
    runs = []
    for _ in range(3):
        code, out, err = run(capsys, *argv)
        assert code == 0, err
        runs.append(json.loads(out))
    answers = [(d["recommended"], d["compute_dtype"], d["formula"]) for d in runs]
    assert answers[0] == answers[1] == answers[2]
    assert _order(runs[0]) == _order(runs[1]) == _order(runs[2])
    # lossless 12-bit minmax needs 4 bytes (float16 and bfloat16 merge values): the
    # smallest lossless size, then the least error in counts among them
    d = runs[0]
    lossless = [c for c in d["candidates"] if c["verdict"] != "rejected"]
    size = min(c["bytes_per_element"] for c in lossless)
    assert d["recommended"] == "float32" and size == 4 and d["units"] == "counts"
    errs = [A._num(c["max_abs_error_in"]) for c in lossless if c["bytes_per_element"] == size]
    assert A._num(d["candidates"][0]["max_abs_error_in"]) == min(errs)


@pytest.fixture(scope="module")
def recorded():
    """Every 12-bit minmax candidate, measured once (the ranking tests reorder speed only)."""
    cache = {}
    real = A.measure

    def measure(source, transform, **kw):
        key = (transform, tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = real(source, transform, **kw)
        return cache[key]

    return measure


@pytest.mark.parametrize("speeds", ["ascending", "descending"])
def test_ranking_ignores_speed(speeds, recorded, monkeypatch):
    dom = K.domain("uint16", 0, 4095)
    monkeypatch.setattr(A, "measure", recorded)
    want_best, want = choose(dom, "minmax", Requirement(lossless=True), repeat=1)
    calls = iter(range(1, 1000))

    def timed(source, transform, **kw):
        k = next(calls)
        r = recorded(source, transform, **kw)
        return dataclasses.replace(r, elements_per_s=float(k if speeds == "ascending" else 1000 - k) * 1e6)

    monkeypatch.setattr(A, "measure", timed)
    best, got = choose(dom, "minmax", Requirement(lossless=True), repeat=1)
    assert (best.output_dtype, best.compute_dtype, best.formula) == (want_best.output_dtype, want_best.compute_dtype, want_best.formula)
    assert [(c.output_dtype, c.compute_dtype, c.formula, c.verdict, c.reason) for c in got] == \
        [(c.output_dtype, c.compute_dtype, c.formula, c.verdict, c.reason) for c in want]
    assert not any("slower" in c.reason or "faster" in c.reason for c in got)


def test_reasons_name_the_ranking_terms(recorded, monkeypatch):
    monkeypatch.setattr(A, "measure", recorded)
    best, cands = choose(K.domain("uint16", 0, 4095), "minmax", Requirement(lossless=True), repeat=1)
    for c in cands:
        if c.verdict != "meets (costlier)":
            continue
        if c.bytes_per_element > best.bytes_per_element:
            assert c.reason == f"{c.bytes_per_element} bytes per element > {best.bytes_per_element}"
        elif c.record.max_abs_error_in != best.record.max_abs_error_in:
            assert c.record.max_abs_error_in > best.record.max_abs_error_in
            assert c.reason.startswith("max error ") and " counts > " in c.reason and c.reason.endswith("at the same size")
        elif c.record.mean_abs_error_in != best.record.mean_abs_error_in:
            assert c.reason.startswith("mean error ")
        else:
            assert c.reason.startswith("same size")
    # float32 compute comes before float64 whenever precision ties exactly
    for c in cands:
        if (c.verdict == "meets (costlier)" and c.bytes_per_element == best.bytes_per_element
                and c.rank_key[1:3] == best.rank_key[1:3] and best.compute_dtype == "float64"):
            assert c.compute_dtype != "float32"


def test_breast_cancer_standardize_ranks_by_error_in_input_units():
    """Issue 14: ranked by ULPs, float32 won with 4.368e+04 ULP while float16 showed
    6 ULP.  Now the recommended candidate has the least error in input units among
    the lossless candidates of the smallest lossless size."""
    x = datasets.load("breast_cancer").data
    # float32 compute, two formulas: every output dtype, in a few seconds each (30 features exactly)
    best, cands = choose(x, "standardize", Requirement(lossless=True), axis=0, repeat=1, exact_points=256,
                         compute_dtypes=["float32"], formulas=["sub_div", "mul_add"])
    lossless = [c for c in cands if c.record.collisions == 0]
    assert best is not None and lossless
    size = min(c.bytes_per_element for c in lossless)
    assert best.bytes_per_element == size
    errs = [c.record.max_abs_error_in for c in lossless if c.bytes_per_element == size]
    assert best.record.max_abs_error_in == min(errs)
    assert best.units == "input units"
    # a lossy smaller dtype with few ULPs does not win
    for c in cands:
        if c.bytes_per_element < size:
            assert c.verdict == "rejected" and "collisions" in c.reason


# ---------------------------------------------------------------- requirements in input units


@pytest.fixture(scope="module")
def scale12():
    """12-bit counts / 4095 into every float output (float32 compute, div): records."""
    _, cands = choose(K.domain("uint16", 0, 4095), "scale", Requirement(lossless=True), divisor=4095.0,
                      compute_dtypes=["float32"], formulas=["div"], repeat=1)
    return {c.output_dtype: c.record for c in cands}


@pytest.mark.parametrize("field, kw", [("max_abs_error_in", "max_error_in"), ("max_merged_span_in", "max_span_in")],
                         ids=["max-error-in", "max-span-in"])
def test_input_unit_requirements_accept_and_reject(field, kw, scale12):
    bound = getattr(scale12["float16"], field)
    assert math.isfinite(bound)
    req = Requirement(**{kw: bound})
    for o, r in scale12.items():
        why = req.failure(r)
        assert (why is None) == (getattr(r, field) <= bound), (o, why)
        if why is not None:
            assert "counts >" in why and f"{bound:g}" in why
    assert req.failure(scale12["bfloat16"]) is not None  # bfloat16 merges and errs more than float16
    assert req.failure(scale12["float32"]) is None


def test_max_error_in_on_the_cli(scale12, capsys):
    bound = scale12["float16"].max_abs_error_in
    code, out, err = run(capsys, "choose", "--domain", "--input-dtype", "uint16", "--range", 0, 4095, "--transform", "scale",
                         "--divisor", 4095, "--compute-dtype", "float32", "--formula", "div", "--repeat", 1,
                         "--max-error-in", repr(bound), "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["recommended"] == "float16" and d["units"] == "counts"
    assert d["requirement"] == f"max error <= {bound:g} counts"
    verdicts = {c["output_dtype"]: c["verdict"] for c in d["candidates"]}
    assert verdicts["bfloat16"] == "rejected" and verdicts["float32"] == "meets (costlier)"
    code, out, err = run(capsys, "choose", "--domain", "--input-dtype", "uint16", "--range", 0, 4095, "--transform", "scale",
                         "--divisor", 4095, "--compute-dtype", "float32", "--formula", "div", "--repeat", 1,
                         "--max-span-in", "0")
    assert code == 0, err
    assert "max span (counts)" in out.replace("\n", "") or "counts" in out
    assert "recommended: float32" in out


@pytest.mark.parametrize("kw, value, exc", [
    ("max_error_in", -1.0, ValueError), ("max_error_in", math.nan, ValueError),
    ("max_span_in", -0.5, ValueError), ("max_span_in", math.nan, ValueError),
    ("max_error_in", "1", TypeError), ("max_span_in", True, TypeError),
], ids=["error-negative", "error-nan", "span-negative", "span-nan", "error-str", "span-bool"])
def test_bad_bounds_raise(kw, value, exc):
    with pytest.raises(exc, match=kw):
        Requirement(**{kw: value})


@pytest.mark.parametrize("flag, value", [("--max-error-in", "-1"), ("--max-error-in", "nan"), ("--max-span-in", "-2"),
                                         ("--max-span-in", "nan")], ids=["error-negative", "error-nan", "span-negative", "span-nan"])
def test_bad_bounds_on_the_cli_exit_2_one_line(flag, value, capsys):
    code, out, err = run(capsys, "choose", "--domain", "--input-dtype", "uint8", "--transform", "scale", flag, value)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and flag in err and "Traceback" not in err


def test_exactly_one_requirement(capsys):
    with pytest.raises(ValueError, match="exactly one"):
        Requirement(lossless=True, max_error_in=1)
    code, _, err = run(capsys, "choose", "--domain", "--input-dtype", "uint8", "--transform", "scale", "--lossless",
                       "--max-span-in", "1")
    assert code == 2 and "--max-span-in" in err


# ---------------------------------------------------------------- the report's recommendations


def _records(source, variants, name, *, exact_points=512):
    out = []
    for v in variants:
        d = R.measure_variant(source, v, repeat=1, exact_points=exact_points, name=name).to_dict()  # as the report does
        d["label"] = v.label
        out.append(d)
    return out


@pytest.fixture(scope="module")
def integer_suites():
    """(quick records, full records) of the report's integer domains, each variant measured once."""
    quick, full = R.suite(True)[:3], R.suite(False)[:3]
    assert [s.name for s, _ in quick] == [s.name for s, _ in full]
    assert all(s.kind == "domain" and s.integer_range for s, _ in full)
    q_recs, f_recs = [], []
    for (src, qv), (_, fv) in zip(quick, full):
        x = src.load()
        measured = dict(zip(fv, _records(x, fv, src.name)))
        extra = [v for v in qv if v not in measured]
        measured.update(zip(extra, _records(x, extra, src.name)))
        q_recs += [measured[v] for v in qv]
        f_recs += [measured[v] for v in fv]
    return q_recs, f_recs


def test_quick_suite_recommends_what_the_full_suite_recommends(integer_suites):
    q_recs, f_recs = integer_suites
    assert len(q_recs) < len(f_recs)
    quick = {(r["source"], r["transform"]): r for r in R.recommendations(q_recs)}
    full = {(r["source"], r["transform"]): r for r in R.recommendations(f_recs)}
    assert set(quick) == set(full)
    keys = ("recommended", "compute_dtype", "formula", "bytes_per_element", "max_abs_error_in", "max_merged_span_in", "text")
    for k in full:
        assert {f: quick[k][f] for f in keys} == {f: full[k][f] for f in keys}, k
        assert quick[k]["not_measured"] == full[k]["not_measured"], k
        if full[k]["recommended"] is not None:
            assert full[k]["not_measured"] == [], k  # the grid measures every candidate up to the answer's size
    # quantize to uint8 merges 12-bit values; uint16 quantize (not in the suite) is named
    q = quick[("12-bit sensor (0..4095)", "quantize")]
    assert q["recommended"] is None and q["not_measured"] == ["uint16"] and "not measured: uint16)" in q["text"]
    # 12-bit scale /4095 needs float32 to keep every value, and the quick suite measures it
    sc = quick[("12-bit sensor (0..4095)", "scale /4095")]
    assert sc["recommended"] == "float32" and sc["units"] == "counts"


def test_recommendation_text_and_alternatives(integer_suites):
    _, f_recs = integer_suites
    rec = {(r["source"], r["transform"]): r for r in R.recommendations(f_recs)}
    r = rec[("uint8 (all 256)", "minmax")]
    assert r["recommended"] in ("float16", "bfloat16") and r["bytes_per_element"] == 2
    assert r["text"].startswith(f"{r['recommended']} (compute {r['compute_dtype']}, {r['formula']}): keeps all 256 distinct values; max error ")
    assert r["text"].endswith("counts (2 bytes per element)")
    group = [d for d in f_recs if (d["source"], d["label"]) == ("uint8 (all 256)", "minmax") and d["collisions"] == 0]
    assert len(r["alternatives"]) == len(group) - 1
    for alt in r["alternatives"]:
        assert alt["why"]
        if alt["bytes_per_element"] == 2:
            assert alt["max_abs_error_in"] >= r["max_abs_error_in"]


def test_nothing_lossless_names_what_was_not_measured():
    dom = K.domain("uint16", 0, 4095)
    recs = _records(dom, [R.Variant("minmax", "float16"), R.Variant("minmax", "bfloat16")], "12-bit")
    (r,) = R.recommendations(recs)
    assert r["recommended"] is None and r["compute_dtype"] is None and r["alternatives"] == []
    assert "float32" in r["not_measured"] and "float64" in r["not_measured"] and "uint8" in r["not_measured"]
    assert "float16 (compute float16)" in r["not_measured"]
    f16 = next(d for d in recs if d["output_dtype"] == "float16")
    assert r["text"].startswith("no measured output keeps every value (measured: float16, bfloat16; not measured: ")
    assert f"float16 keeps the most: {f16['distinct_out']:,} of 4,096" in r["text"]


def test_old_report_records_without_input_unit_fields_still_rank():
    dom = K.domain("uint8")
    recs = _records(dom, [R.Variant("minmax", "float16"), R.Variant("minmax", "float32")], "uint8")
    for d in recs:
        for f in ("max_abs_error_in", "mean_abs_error_in", "max_merged_span_in", "effective_bits_in"):
            del d[f]
    (r,) = R.recommendations(recs)
    assert r["recommended"] == "float16" and r["max_abs_error_in"] == "nan"
    json.dumps(r, allow_nan=False)  # report.json is written without NaN literals


def test_report_recommendations_use_the_advisor_ranking(integer_suites):
    """One ranking: the report's pick is the advisor's rank_key minimum over the lossless records."""
    _, f_recs = integer_suites
    for r in R.recommendations(f_recs):
        group = [d for d in f_recs if (d["source"], d["label"]) == (r["source"], r["transform"]) and d["collisions"] == 0]
        if not group:
            assert r["recommended"] is None
            continue
        best = min(group, key=A._record_key)
        assert (r["recommended"], r["compute_dtype"], r["formula"]) == (best["output_dtype"], best["compute_dtype"], best["formula"])
        assert np.isclose(A._num(r["max_abs_error_in"]), A._num(best["max_abs_error_in"]), equal_nan=True)


def test_choose_considers_float8_only_when_allowed():
    """float16 [0, 1] to within 0.05: every float8 format's half-ulp below 1 is 2**-5
    or less, so a 1-byte output meets it, but only ``allow=("float8",)`` measures one."""
    from kernels.advise import LOW_PRECISION, Requirement, choose
    from kernels.domain import domain

    req = Requirement(max_error_in=0.05)
    dom = domain("float16", 0, 1)
    best, cands = choose(dom, "scale", req, compute_dtypes=("float32",), formulas=("mul",), divisor=1, repeat=1)
    assert not {c.output_dtype for c in cands} & set(LOW_PRECISION["float8"])
    best8, cands8 = choose(dom, "scale", req, compute_dtypes=("float32",), formulas=("mul",), allow=("float8",),
                           divisor=1, repeat=1)
    assert set(LOW_PRECISION["float8"]) <= {c.output_dtype for c in cands8}
    assert best8.output_dtype in LOW_PRECISION["float8"] and best8.bytes_per_element == 1
    assert best8.record.max_abs_error_in <= 0.05
    with pytest.raises(ValueError, match="allow='float7'.*float8"):
        choose(dom, "scale", req, allow=("float7",), divisor=1)


def test_quantize_candidates_include_signed_targets():
    """int8/int16 are quantize targets of the same size as uint8/uint16: measured, and on a
    tie the ranking's last resort (registry order) keeps the unsigned first."""
    from kernels.advise import candidates, preference

    outs = {o for o, _, _ in candidates("quantize")}
    assert outs == {"uint8", "uint16", "int8", "int16"}
    assert preference("quantize", "uint8", "float32", "round") < preference("quantize", "int8", "float32", "round")


# ---------------------------------------------------------------- MX outputs


def test_mx_bytes_per_element_include_the_scales():
    """Each MX output costs its element's bits (from the format's name) plus one byte
    per block of 32; plain formats their bits, packed (float6 0.75, float4 0.5)."""
    import re
    from fractions import Fraction

    for name, elem in A.MX_OUTPUTS.items():
        e, m = map(int, re.search(r"e(\d)m(\d)", elem).groups())
        want = Fraction(1 + e + m, 8) + Fraction(1, 32)
        assert Fraction(A.output_bytes(name)) == want, name
        assert Fraction(A.output_bytes(elem)) == Fraction(1 + e + m, 8)
    assert A.output_bytes("MXFP8 (e4m3)") == 1 + 1 / 32 and A.output_bytes("float16") == 2
    assert A.allowed_outputs(("mx",))[: len(A.MX_OUTPUTS)] == tuple(A.MX_OUTPUTS)


def _mx_setup():
    """float16 [0, 1] (every value, 1-D in value order for the block candidates) through an
    identity-valued pipeline, each candidate measured on its own, outside the advisor."""
    from kernels.measure_pipeline import measure_pipeline

    dom = K.domain("float16", 0, 1)
    pipe = K.pipeline("cast(output_dtype=float32)")
    outs = ("float8_e4m3fn", "float8_e5m2", *A.MX_OUTPUTS)
    own = {}
    for o, p in A.pipeline_candidates(pipe, outs):
        src = dom.values() if o in A.MX_OUTPUTS else dom
        own[o] = measure_pipeline(src, p, repeat=1)
    return dom, pipe, outs, own


@pytest.fixture(scope="module")
def mx_setup():
    return _mx_setup()


def _expected(own: dict, req: Requirement, outputs) -> str | None:
    meets = [o for o in outputs if req.failure(own[o]) is None]
    key = lambda o: (A.output_bytes(o), A._num(own[o].max_abs_error_in), A._num(own[o].mean_abs_error_in))  # noqa: E731
    return min(meets, key=key) if meets else None


def test_mx_candidates_are_pipelines_ending_in_the_mx_step(mx_setup):
    _, pipe, outs, own = mx_setup
    specs = dict((o, p.spec) for o, p in A.pipeline_candidates(pipe, outs))
    assert specs["MXFP8 (e4m3)"] == "mx(dtype=float8_e4m3fn, block=32, pad=zeros)"  # the final cast replaced
    assert specs["float8_e4m3fn"] == "cast(output_dtype=float8_e4m3fn)"
    assert own["MXFP4"].distinct_scales is not None and own["float8_e4m3fn"].distinct_scales is None


def test_choose_mx_survival_mxfp8_meets_float8_does_not(mx_setup):
    """A survival between plain e4m3fn's and MXFP8 (e4m3)'s (both measured): MXFP8 meets,
    float8 does not; with every MX format the cheapest that meets wins, by fractional bytes."""
    dom, pipe, outs, own = mx_setup
    s8, smx = own["float8_e4m3fn"].survival, own["MXFP8 (e4m3)"].survival
    assert smx > s8  # the per-block scales keep more of [0, 1]'s small values
    req = Requirement(min_survival=(s8 + smx) / 2)
    two = ("float8_e4m3fn", "MXFP8 (e4m3)")
    best, cands = A.choose_pipeline(dom, pipe, req, outputs=two, repeat=1)
    assert best.output_dtype == "MXFP8 (e4m3)" == _expected(own, req, two)
    assert {c.output_dtype: c.verdict for c in cands}["float8_e4m3fn"] == "rejected"
    assert best.bytes_per_element == 1 + 1 / 32 and best.to_dict()["bytes_per_element"] == 1.03125
    best_all, _ = A.choose_pipeline(dom, pipe, req, outputs=outs, repeat=1)
    assert best_all.output_dtype == _expected(own, req, outs)


def test_choose_mx_span_float8_meets_mxfp8_does_not(mx_setup):
    """Vice versa: the floor rule saturates a block whose max has a larger mantissa than
    448's, so MXFP8 (e4m3) merges a wider span near 1 than plain e4m3fn; a span between
    the two (measured) is met by float8 only, which the ranking then recommends."""
    dom, pipe, _, own = mx_setup
    sp8, spmx = own["float8_e4m3fn"].max_merged_span_in, own["MXFP8 (e4m3)"].max_merged_span_in
    assert sp8 < spmx
    req = Requirement(max_span_in=(sp8 + spmx) / 2)
    two = ("float8_e4m3fn", "MXFP8 (e4m3)")
    best, cands = A.choose_pipeline(dom, pipe, req, outputs=two, repeat=1)
    assert best.output_dtype == "float8_e4m3fn" == _expected(own, req, two)
    assert {c.output_dtype: c.verdict for c in cands}["MXFP8 (e4m3)"] == "rejected"


def test_cli_choose_allow_mx(mx_setup, capsys):
    _, _, _, own = mx_setup
    s8, smx = own["float8_e4m3fn"].survival, own["MXFP8 (e4m3)"].survival
    code, out, err = run(capsys, "choose", "--domain", "--input-dtype", "float16", "--range", "0", "1",
                         "--pipeline", "cast(output_dtype=float32)", "--allow", "float8", "--allow", "mx",
                         "--min-survival", (s8 + smx) / 2, "--repeat", "1", "--json")
    assert code == 0, err
    d = json.loads(out)
    outputs = {c["output_dtype"] for c in d["candidates"]}
    assert set(A.MX_OUTPUTS) <= outputs and "float8_e4m3fn" in outputs
    req = Requirement(min_survival=(s8 + smx) / 2)
    assert d["recommended"] == _expected(own, req, [o for o in outputs if o in own])
    others = [c for c in d["candidates"] if c["output_dtype"] not in own and c["verdict"] != "rejected"]
    assert all(c["bytes_per_element"] > A.output_bytes(d["recommended"]) for c in others)


def test_choose_transform_allow_mx_measures_the_mx_pipelines():
    """choose() with a transform: an MX candidate is the transform into float32 then mx."""
    dom = K.domain("float16", 0, 1)
    best, cands = choose(dom, "scale", Requirement(min_survival=0.0), compute_dtypes=("float32",), formulas=("mul",),
                         allow=("mx",), divisor=1, repeat=1)
    mx = [c for c in cands if c.output_dtype in A.MX_OUTPUTS]
    assert {c.output_dtype for c in mx} == set(A.MX_OUTPUTS)
    assert all(c.record.formula.endswith("mx(dtype=%s, block=32, pad=zeros)" % A.MX_OUTPUTS[c.output_dtype]) for c in mx)
    assert best.output_dtype == "MXFP4"  # every candidate meets survival >= 0: the fewest bytes win


def test_choose_max_error_in_keeps_mx_candidates_after_a_transform():
    """Regression: an MX candidate after minmax had max_abs_error_in NaN, so any
    max_error_in requirement rejected it.  A bound of the whole uint8 range (255
    counts) is met by every candidate, and the fewest bytes (MXFP4: 0.5 + 1/32) win."""
    best, cands = choose(K.domain("uint8"), "minmax", Requirement(max_error_in=255), compute_dtypes=("float32",),
                         formulas=("mul_add",), allow=("mx",), repeat=1)
    mx = [c for c in cands if c.output_dtype in A.MX_OUTPUTS]
    assert {c.output_dtype for c in mx} == set(A.MX_OUTPUTS)
    assert all(c.verdict != "rejected" and math.isfinite(c.record.max_abs_error_in) for c in mx)
    assert best.output_dtype == min(A.MX_OUTPUTS, key=A.output_bytes) == "MXFP4"
