"""report / choose / audit: rendering from fixture records, the advisor against
independent figures, the published report against a re-measurement, and the CLI's errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from reference import numpy_distinct

import kernels as K
from kernels import report as R
from kernels.advise import Requirement, choose
from kernels.audit import audit, distinct_chunked
from kernels.cli import main

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "reports" / "report.json"


@pytest.fixture(scope="module")
def fixture_report():
    """A small report built from real records (the renderers never see pasted figures)."""
    records = []
    for name, dom in (("uint8 (all 256)", K.domain("uint8")), ("12-bit", K.domain("uint16", 0, 4095))):
        for t, out, opts in (("minmax", "float16", {}), ("minmax", "float32", {}), ("scale", "bfloat16", {"divisor": 255.0})):
            d = K.measure(dom, t, output_dtype=out, repeat=1, name=name, **opts).to_dict()
            d["kind"] = "domain"
            d["label"] = "scale /255" if t == "scale" else t
            records.append(d)
    return {
        "schema": R.SCHEMA,
        "record_schema": K.SCHEMA,
        "mode": "quick",
        "generated": "2026-01-01T00:00:00+00:00",
        "provenance": K.measure(K.domain("uint8"), "minmax", repeat=1).provenance,
        "records": records,
        "skipped": [],
        "recommendations": R.recommendations(records),
    }


def test_markdown_is_deterministic_and_in_record_order(fixture_report):
    md = R.render_markdown(fixture_report)
    assert md == R.render_markdown(json.loads(json.dumps(fixture_report)))
    assert md.index("## uint8 (all 256)") < md.index("## 12-bit")
    section = md[md.index("## 12-bit") :]
    table = section[section.index("### minmax") : section.index("### scale /255")]
    rows = [line for line in table.splitlines() if line.startswith("| float")]
    assert [r.split("|")[1].strip() for r in rows] == ["float16", "float32"]
    # the 12-bit minmax figures in the table are the records' own
    rec = [r for r in fixture_report["records"] if r["source"] == "12-bit" and r["output_dtype"] == "float16"][0]
    assert f"| {rec['distinct_out']:,} |" in rows[0]


def test_recommendation_is_the_cheapest_lossless(fixture_report):
    recs = {(r["source"], r["transform"]): r for r in fixture_report["recommendations"]}
    x = np.arange(4096, dtype=np.float32)
    f16 = numpy_distinct((x * (np.float32(1) / np.float32(4095))).astype(np.float16))
    assert f16 < 4096  # float16 merges 12-bit values, so the 4-byte float32 is needed
    assert recs[("12-bit", "minmax")]["recommended"] == "float32"
    assert recs[("uint8 (all 256)", "minmax")]["recommended"] == "float16"


def test_html_is_self_contained(fixture_report):
    images = R.render_plots(fixture_report)
    assert set(images) == {"survival.png", "merges.png", "throughput.png", "errors.png"}
    assert all(b[:8] == b"\x89PNG\r\n\x1a\n" for b in images.values())
    page = R.render_html(fixture_report, images)
    assert page.count("data:image/png;base64,") == 4
    assert "src=\"http" not in page and "<script" not in page


def test_write_report_atomically_and_refuse_foreign_dirs(fixture_report, tmp_path):
    out = tmp_path / "rep"
    written = R.write_report(fixture_report, out)
    assert {p.name for p in written} == set(R.FILES) == {p.name for p in out.iterdir()}
    assert json.loads((out / "report.json").read_text())["records"] == fixture_report["records"]
    R.write_report(fixture_report, out)  # an existing report may be replaced
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(R.ReportError, match="--force"):
        R.write_report(fixture_report, foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


# ---------------------------------------------------------------- advisor


def test_choose_lossless_12bit_minmax():
    x = np.arange(4096, dtype=np.float32)
    y = x * (np.float32(1) / np.float32(4095))
    survivors = {"float16": numpy_distinct(y.astype(np.float16)), "bfloat16": numpy_distinct(y.astype(ml_dtypes.bfloat16))}
    best, cands = choose(
        K.domain("uint16", 0, 4095), "minmax", Requirement(lossless=True), compute_dtypes=["float32"], formulas=["mul_add"], repeat=1
    )
    assert [c.verdict for c in cands[:2]] == ["recommended", "meets (costlier)"]
    assert {c.output_dtype for c in cands[2:]} == {"float16", "bfloat16"}
    assert best.output_dtype == "float32"
    for c in cands:
        if c.output_dtype in survivors and c.compute_dtype == "float32" and c.formula == "mul_add":
            assert c.verdict == "rejected" and c.record.distinct_out == survivors[c.output_dtype]


def test_choose_min_survival_takes_the_two_byte_dtype():
    x = np.arange(4096, dtype=np.float32)
    surv16 = numpy_distinct((x * (np.float32(1) / np.float32(4095))).astype(np.float16)) / 4096
    best, _ = choose(
        K.domain("uint16", 0, 4095), "minmax", Requirement(min_survival=surv16 - 0.01), compute_dtypes=["float32"], formulas=["mul_add"], repeat=1
    )
    assert best.output_dtype == "float16"


def test_requirement_needs_exactly_one():
    with pytest.raises(ValueError, match="exactly one"):
        Requirement()
    with pytest.raises(ValueError, match="exactly one"):
        Requirement(lossless=True, max_ulp=1)


def test_choose_cli_json(capsys):
    code = main(
        ["choose", "--domain", "--input-dtype", "uint8", "--transform", "scale", "--lossless", "--json", "--repeat", "1",
         "--compute-dtype", "float32", "--formula", "div"]
    )
    d = json.loads(capsys.readouterr().out)
    assert code == 0
    # every uint8 / 255 is distinct in float16 (numpy), so the 2-byte float16 can win
    assert numpy_distinct((np.arange(256, dtype=np.float32) / np.float32(255)).astype(np.float16)) == 256
    assert d["recommended"] in ("float16", "bfloat16")
    assert {c["verdict"] for c in d["candidates"]} >= {"recommended", "meets (costlier)"}


# ---------------------------------------------------------------- audit


def test_audit_png_16bit(tmp_path):
    from PIL import Image

    img = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    path = tmp_path / "sensor.png"
    Image.fromarray(img).save(path)
    a = audit(str(path))
    assert (a.dtype, a.distinct, a.lo, a.hi) == ("uint16", 4096, 0.0, 4095.0 * 16)
    p = {(q.name, q.output): q for q in a.pipelines}
    y = (img.reshape(-1).astype(np.float32) / np.float32(65535)).astype(np.float16)
    assert p[("scale /65535", "float16")].distinct_out == numpy_distinct(y)


def test_distinct_chunked_equals_distinct():
    x = np.random.default_rng(0).normal(0, 10, 100_000).astype(np.float32).round(2)
    a, b = distinct_chunked(x, chunk=7_000), K.distinct(x)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.counts, b.counts)


# ---------------------------------------------------------------- CLI errors


def run_cli(*argv, cwd=None):
    return subprocess.run([sys.executable, "-m", "kernels", *argv], capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.mark.parametrize(
    "make",
    ["missing", "pickle", "int32", "empty", "not-an-image"],
)
def test_audit_bad_files_one_line_status_2(make, tmp_path):
    path = tmp_path / "x.npy"
    if make == "pickle":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif make == "int32":
        np.save(path, np.arange(5, dtype=np.int32))
    elif make == "empty":
        np.save(path, np.zeros(0, np.float32))
    elif make == "not-an-image":
        path = tmp_path / "x.png"
        path.write_bytes(b"not a png")
    res = run_cli("audit", str(path))
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_report_refuses_foreign_and_unwritable_dirs_before_measuring(tmp_path):
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "index.md").write_text("mine")
    res = run_cli("report", "--quick", "--out", str(foreign))
    assert res.returncode == 2 and "--force" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert [p.name for p in foreign.iterdir()] == ["index.md"]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run_cli("report", "--quick", "--out", str(blocker / "sub"))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    res = run_cli("report", "--quick", "--out", str(tmp_path / "new"), "--data", str(tmp_path / "missing.npy"))
    assert res.returncode == 2 and "no such file" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "new").exists()  # nothing half-written
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        res = run_cli("report", "--quick", "--out", str(ro / "rep"))
        assert res.returncode == 2 and "not writable" in res.stderr


# ---------------------------------------------------------------- the published report


def test_published_report_matches_a_remeasurement():
    """Re-measure a few published cases: the committed report cannot drift from the code."""
    published = R.load_report(PUBLISHED)
    assert published["mode"] == "full"
    cases = {
        ("12-bit sensor (0..4095)", "minmax", "float16", "float32"): K.domain("uint16", 0, 4095),
        ("uint16 (all 65536)", "minmax", "bfloat16", "float32"): K.domain("uint16"),
        ("uint8 (all 256)", "standardize", "float16", "float32"): K.domain("uint8"),
        ("float16 [0, 1]", "minmax", "float16", "float32"): K.domain("float16", 0, 1),
    }
    fields = ("distinct_in", "distinct_out", "collisions", "max_preimage", "max_ulp_error", "roundtrip_exact", "overflow_out")
    for (src, t, out, comp), dom in cases.items():
        rec = next(
            r for r in published["records"]
            if (r["source"], r["transform"], r["output_dtype"], r["compute_dtype"], r["accumulator"], r["acc_dtype"])
            == (src, t, out, comp, "pairwise", "float64")
        )
        now = K.measure(dom, t, output_dtype=out, compute_dtype=comp, formula=rec["formula"], repeat=1).to_dict()
        assert {f: now[f] for f in fields} == {f: rec[f] for f in fields}, (src, t, out)


def test_report_suite_measures_mx_outputs_with_their_scales():
    """The suite's minmax grid, hence the advisor's candidate universe, holds MXFP8 (e4m3)
    and MXFP4 on integer and float sources; a variant is measured as the advisor measures
    it and recorded under its MX name, its bytes with the scale (element bits / 8 + 1/32).
    Reference: OCP MX on the 8 values k/7 (one block padded with zeros, amax 1: shared
    exponent 0 - emax, elements cast by ml_dtypes), error against the exact k/7."""
    from fractions import Fraction

    from kernels.advise import MX_OUTPUTS, output_bytes
    from kernels.scaled import element_emax

    for integer in (True, False):
        grid = R._integer_variants(255.0, True) if integer else R._float_variants(True)
        assert set(R.MX_REPORT_OUTPUTS) <= {v.output for v in grid if v.transform == "minmax"}
        assert set(R.MX_REPORT_OUTPUTS) <= {o for o, _ in R._candidate_universe("minmax", integer)}
    dom = K.domain("uint8", 0, 7)
    y01 = K.transform(dom.values(), "minmax", output_dtype="float32")  # the float32 step before mx
    records = []
    for v in R._integer_variants(7.0, True):
        if v.transform == "minmax" and v.output in R.FLOAT8_OUTPUTS + R.MX_REPORT_OUTPUTS:
            d = R.measure_variant(dom, v, repeat=1, name="uint8 0..7").to_dict()
            records.append(dict(d, kind="domain", label=v.label))
    for o in R.MX_REPORT_OUTPUTS:
        elem = getattr(ml_dtypes, MX_OUTPUTS[o])
        r = next(r for r in records if r["output_dtype"] == o)
        deq = (y01 * np.float32(2.0 ** element_emax(elem))).astype(elem).astype(np.float64) / 2.0 ** element_emax(elem)
        err = [abs(Fraction(float(q)) - Fraction(k, 7)) * 7 for k, q in enumerate(deq)]
        assert (r["transform"], r["distinct_out"]) == ("minmax", len(set(deq.tolist())))
        assert r["max_abs_error_in"] == pytest.approx(float(max(err)), rel=1e-12)
        assert output_bytes(o) == ml_dtypes.finfo(elem).bits / 8 + 1 / 32
    rec = R.recommendations(records)[0]
    lossless = [r for r in records if r["collisions"] == 0]
    assert rec["bytes_per_element"] == min(output_bytes(r["output_dtype"]) for r in lossless)
    alt = {a["output_dtype"]: a["bytes_per_element"] for a in rec["alternatives"]}
    assert all(alt[r["output_dtype"]] == output_bytes(r["output_dtype"]) for r in lossless if r["output_dtype"] in MX_OUTPUTS)
    assert any(r["output_dtype"] in MX_OUTPUTS for r in lossless)  # MXFP8 keeps the 8 values
