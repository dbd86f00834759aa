"""precision-bench --pipeline / --preset on measure, choose, audit and report, and
the presets command.  Figures are checked against kernels.measure of the same
pipeline (the library the CLI calls), never against numbers written here."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kernels
from kernels.advise import Requirement, pipeline_candidates
from kernels.cli import main

SCALE_F16 = "scale(divisor=4095, formula=mul); cast(output_dtype=float16)"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, out, err):
    assert code == 2 and out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("precision-bench: error: ")
    return lines[0]


@pytest.mark.parametrize("spec", [SCALE_F16, "minmax; cast(output_dtype=bfloat16)", "minmax; clip(lo=0, hi=1); cast(output_dtype=float16)"],
                         ids=["scale-mul-f16", "minmax-bf16", "minmax-clip-f16"])
def test_measure_pipeline_json_steps_agree_with_library(spec, capsys):
    code, out, err = run(capsys, "measure", "--domain", "--input-dtype", "uint16", "--range", "0", "4095",
                         "--pipeline", spec, "--repeat", "1", "--json")
    assert code == 0, err
    d = json.loads(out)
    r = kernels.measure(kernels.domain("uint16", 0, 4095), spec, repeat=1)
    assert d["formula"] == r.formula and d["output_dtype"] == r.output_dtype
    assert d["distinct_out"] == r.distinct_out
    assert [s["distinct_out"] for s in d["steps"]] == [s["distinct_out"] for s in r.steps]
    assert [s["collisions"] for s in d["steps"]] == [s["collisions"] for s in r.steps]
    assert [s["spec"] for s in d["steps"]] == [s.spec for s in kernels.pipeline(spec).steps]


def test_measure_pipeline_table_has_per_step_rows(capsys):
    spec = "standardize(mean=imagenet, std=imagenet); cast(output_dtype=float16)"
    x = np.random.default_rng(0).random((64, 3)).astype(np.float32)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as t:
        path = Path(t) / "rgb.npy"
        np.save(path, x)
        code, out, err = run(capsys, "measure", "--data", str(path), "--pipeline", spec, "--repeat", "1")
    assert code == 0, err
    # the same verdict line and grouped table as one transform, then the per-step rows
    assert out.splitlines()[0].startswith(("lossless: ", "loses ")) and "float32 units" in out.splitlines()[0]
    for heading in ("input", "survival", "error (vs the exact value)", "range events", "speed"):
        assert f" {heading} " in out
    assert "per step" in out and "collisions" in out and "merged span in float32 units" in " ".join(out.split())
    assert "distinct_out" not in out and "max_ulp_error" not in out


def test_measure_both_transform_and_pipeline_is_a_usage_error(capsys):
    line = one_line_error(*run(capsys, "measure", "--domain", "--input-dtype", "uint8", "--transform", "minmax",
                               "--pipeline", "minmax"))
    assert "not both" in line


def test_measure_transform_flag_next_to_pipeline_is_refused(capsys):
    line = one_line_error(*run(capsys, "measure", "--domain", "--input-dtype", "uint8", "--pipeline", "minmax",
                               "--accumulator", "naive"))
    assert "--accumulator" in line


BAD_SPECS = {
    "bad-dtype": ("minmax; cast(output_dtype=flot16)", "step 2 'cast(output_dtype=flot16)'", "flot16"),
    "bad-option": ("scale(divisor=255, formula=mul); cast(dtipe=float16)", "step 2", "dtipe"),
    "unknown-step": ("zscore", "step 1 'zscore'", "unknown step"),
    "no-parse": ("minmax(", "step 1", "does not parse"),
    "empty-step": ("minmax;; cast(output_dtype=float16)", "step 2", "empty"),
    "bad-rounding": ("clip(lo=0, hi=1); cast(output_dtype=uint8, rounding=sideways)", "step 2", "rounding"),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
@pytest.mark.parametrize("command", ["measure", "choose", "audit"])
def test_bad_pipeline_spec_one_line_names_the_step(command, case, capsys, tmp_path):
    spec, where, what = BAD_SPECS[case]
    if command == "audit":
        path = tmp_path / "x.npy"
        np.save(path, np.arange(10, dtype=np.uint8))
        argv = ["audit", str(path), "--pipeline", spec]
    else:
        argv = [command, "--domain", "--input-dtype", "uint8", "--pipeline", spec]
        if command == "choose":
            argv.append("--lossless")
    line = one_line_error(*run(capsys, *argv))
    assert f"--pipeline {where}" in line and what in line


def test_unknown_preset_lists_valid_names(capsys):
    line = one_line_error(*run(capsys, "measure", "--domain", "--input-dtype", "uint8", "--preset", "nosuch.Preset"))
    assert "unknown preset 'nosuch.Preset'" in line
    for name in kernels.PRESETS:
        assert name in line
    if not kernels.PRESETS:
        assert "none are registered" in line


@pytest.mark.parametrize("requirement", [["--lossless"], ["--min-survival", "0.7"]], ids=["lossless", "survival-0.7"])
def test_choose_pipeline_consistent_with_measuring_each_candidate(requirement, capsys):
    base = "scale(divisor=4095, formula=mul)"
    code, out, err = run(capsys, "choose", "--domain", "--input-dtype", "uint16", "--range", "0", "4095",
                         "--pipeline", base, *requirement, "--repeat", "1", "--json")
    assert code == 0, err
    d = json.loads(out)
    req = Requirement(lossless=requirement[0] == "--lossless",
                      min_survival=float(requirement[1]) if len(requirement) > 1 else None)
    src = kernels.domain("uint16", 0, 4095)
    meets = {}
    for o, p in pipeline_candidates(kernels.pipeline(base)):
        r = kernels.measure(src, p, repeat=1)
        meets[o] = (req.failure(r) is None, kernels.REGISTRY[o].itemsize, r.distinct_out)
    by_out = {c["output_dtype"]: c for c in d["candidates"]}
    assert set(by_out) == set(meets)
    for o, (ok, _, distinct_out) in meets.items():
        assert by_out[o]["distinct_out"] == distinct_out
        assert (by_out[o]["verdict"] != "rejected") == ok
    passing = [o for o, (ok, _, _) in meets.items() if ok]
    assert d["recommended"] in passing
    assert kernels.REGISTRY[d["recommended"]].itemsize == min(meets[o][1] for o in passing)


def test_choose_pipeline_replaces_a_final_cast():
    cands = dict(pipeline_candidates(kernels.pipeline("minmax; cast(output_dtype=float16, rounding=toward_zero)")))
    assert cands["bfloat16"].spec == "minmax; cast(output_dtype=bfloat16, rounding=toward_zero)"
    assert all(len(p) == 2 for p in cands.values())


def test_audit_pipeline_on_npy(tmp_path, capsys):
    x = np.random.default_rng(3).integers(0, 4096, 20_000).astype(np.uint16)
    path = tmp_path / "sensor.npy"
    np.save(path, x)
    code, out, err = run(capsys, "audit", str(path), "--pipeline", SCALE_F16, "--json")
    assert code == 0, err
    d = json.loads(out)
    r = kernels.measure(x, SCALE_F16, repeat=1)
    assert d["pipeline"] == kernels.pipeline(SCALE_F16).spec
    assert d["record"]["distinct_in"] == r.distinct_in
    assert [s["distinct_out"] for s in d["record"]["steps"]] == [s["distinct_out"] for s in r.steps]
    code, out, err = run(capsys, "audit", str(path), "--pipeline", SCALE_F16)
    assert code == 0, err
    assert "per step" in out and "sensor.npy" in out


def test_report_quick_pipeline_writes_section_with_a_tiny_suite(tmp_path, capsys, monkeypatch):
    """The grid suite is shrunk to one variant (monkeypatched) so the test stays quick;
    the pipeline still runs on the report's three integer domains."""
    import kernels.report as report

    tiny = report.suite(True)[:1]
    monkeypatch.setattr(report, "suite", lambda quick=False, data=None, key=None: [(tiny[0][0], tiny[0][1][:1])])
    # the Library conventions section has its own test (tests/test_report_presets.py)
    monkeypatch.setattr(report, "run_conventions", lambda quick=False: {"rows": [], "missing": [], "refused": []})
    out_dir = tmp_path / "rep"
    spec = "scale(divisor=255, formula=mul); cast(output_dtype=float16)"
    code, out, err = run(capsys, "report", "--quick", "--out", str(out_dir), "--pipeline", spec)
    assert code == 0, err
    rep = json.loads((out_dir / "report.json").read_text())
    sources = [s.name for s in report.pipeline_sources()]
    assert [p["source"] for p in rep["pipelines"]] == sources
    for p in rep["pipelines"]:
        r = kernels.measure(report.pipeline_sources()[sources.index(p["source"])].load(), spec, repeat=1)
        assert [s["collisions"] for s in p["steps"]] == [s["collisions"] for s in r.steps]
    md = (out_dir / "report.md").read_text()
    assert "## Pipelines" in md and f"### `{kernels.pipeline(spec).spec}`" in md
    assert "<h2>Pipelines</h2>" in (out_dir / "report.html").read_text()


def test_report_bad_pipeline_fails_before_measuring(tmp_path, capsys):
    line = one_line_error(*run(capsys, "report", "--quick", "--out", str(tmp_path / "r"), "--pipeline", "cast(output_dtype=f16)"))
    assert "--pipeline step 1" in line
    assert not (tmp_path / "r").exists()


def test_presets_table_prints_even_when_empty(capsys):
    code, out, err = run(capsys, "presets")
    assert code == 0, err
    assert "library presets" in out and "verified" in out


@pytest.mark.parametrize("name", list(kernels.PRESETS))
def test_presets_lists_every_registry_entry(name, capsys):
    code, out, err = run(capsys, "presets", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    p = kernels.PRESETS[name]
    assert rows[name]["library"] == p.library and rows[name]["verified"] == p.verified
    assert rows[name]["summary"] == p.summary and set(rows[name]["options"]) == set(p.options)
    code, out, _ = run(capsys, "presets")
    assert name in out.replace("\n", "") or name.split(".")[-1] in out


def test_presets_json_matches_registry(capsys):
    code, out, err = run(capsys, "presets", "--json")
    assert code == 0, err
    assert [r["name"] for r in json.loads(out)] == [*kernels.PRESETS, *kernels.presets.ALIASES]


@pytest.mark.parametrize("name", list(kernels.presets.ALIASES))
def test_presets_lists_the_aliases_with_their_options(name, capsys, monkeypatch):
    """An alias (torchao.float8 -> scaled_cast) is listed as a preset is, with every
    option and its default from the alias's one table (REQUIRED as <required>)."""
    from kernels.presets import REQUIRED

    a = kernels.presets.ALIASES[name]
    code, out, err = run(capsys, "presets", "--json")
    assert code == 0, err
    row = {r["name"]: r for r in json.loads(out)}[name]
    assert (row["kind"], row["library"], row["verified"]) == (f"alias of {a.step}", a.library, a.verified)
    assert row["options"] == {k: "<required>" if v is REQUIRED else v for k, v in a.options.items()}
    monkeypatch.setenv("COLUMNS", "400")  # wide cells: words unbroken (cells still wrap between words)
    code, out, _ = run(capsys, "presets")
    words = set(out.replace("│", " ").replace(",", " ").split())
    assert {name, f"{a.step})"} <= words and all(any(w.startswith(f"{k}=") for w in words) for k in a.options)


def test_preset_accepts_a_torchao_alias(capsys, tmp_path):
    """--preset torchao.mx(...) measures what the expanded mx step measures; an unknown
    name lists the aliases among the valid ones."""
    x = (np.arange(256) / 255).astype(np.float16).reshape(8, 32)
    f = tmp_path / "x.npy"
    np.save(f, x)
    code, out, err = run(capsys, "measure", "--data", str(f), "--preset", "torchao.mx(elem_dtype=float4_e2m1fn)",
                         "--repeat", "1", "--json")
    assert code == 0, err
    d = json.loads(out)
    r = kernels.measure(x, "mx(dtype=float4_e2m1fn, block=32, axis=-1, scale_rule=floor)", repeat=1)
    assert (d["distinct_out"], d["distinct_codes"], d["formula"]) == (r.distinct_out, r.distinct_codes, r.formula)
    code, _, err = run(capsys, "measure", "--data", str(f), "--preset", "torchao.nope", "--json")
    assert code == 2 and "torchao.float8" in err and "torchao.mx" in err


def test_preset_is_a_one_step_pipeline_with_a_fake_preset(capsys, monkeypatch):
    """A tiny fake preset (monkeypatched into the registry: none may be registered
    yet): --preset must measure exactly what the one-step pipeline measures."""
    from kernels import presets
    from kernels.presets import Built, Preset, affine
    from kernels.program import Op

    fake = Preset(
        name="fakelib.Half", library="fakelib", verified="fake 0.0 (test only)", source="-",
        summary="x.astype(float16)", options={},
        build=lambda in_dtype, stats, **o: Built((Op("round", "float16"),), "float16", "float32"),
        ideal=lambda st, **o: (affine(1),),
    )
    monkeypatch.setitem(presets.PRESETS, fake.name, fake)
    # 32,769 float32 values: enough to merge into float16, small enough to check exactly
    code, out, err = run(capsys, "measure", "--domain", "--input-dtype", "float32", "--range", "0.5", "0.501953125",
                         "--preset", "fakelib.Half", "--repeat", "1", "--json")
    assert code == 0, err
    d = json.loads(out)
    r = kernels.measure(kernels.domain("float32", 0.5, 0.501953125), "fakelib.Half", repeat=1)
    assert (d["distinct_out"], len(d["steps"])) == (r.distinct_out, 1)
    code, out, err = run(capsys, "presets", "--json")
    assert "fakelib.Half" in [x["name"] for x in json.loads(out)]


def test_measure_pipeline_with_a_rounding_mode(capsys):
    """A transform step's rounding= on the command line: the library's figures; a mode
    the compute dtype cannot take is one line and exit 2."""
    spec = "minmax(compute_dtype=float16, rounding=up)"
    code, out, err = run(capsys, "measure", "--domain", "--input-dtype", "uint16", "--range", "0", "4095",
                         "--pipeline", spec, "--repeat", "1", "--json")
    assert code == 0, err
    d = json.loads(out)
    r = kernels.measure(kernels.domain("uint16", 0, 4095), spec, repeat=1)
    assert d["distinct_out"] == r.distinct_out and d["steps"][0]["spec"] == spec
    # the step measures what transform(rounding=) does (one transform, no pipeline)
    y = kernels.transform(kernels.domain("uint16", 0, 4095).values(), "minmax", compute_dtype="float16", rounding="up")
    assert r.distinct_out == np.unique(y).size
    line = one_line_error(*run(capsys, "measure", "--domain", "--input-dtype", "uint16", "--range", "0", "4095",
                               "--pipeline", "minmax(compute_dtype=float16, rounding=sideways)", "--repeat", "1"))
    assert "rounding='sideways'" in line and "nearest_even, toward_zero, up, down, nearest_away" in line
