"""precision-bench measure: JSON output, readable table, and one-line errors with status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from kernels.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_measure_domain_json(capsys):
    code, out, err = run(
        capsys, "measure", "--domain", "--input-dtype", "uint16", "--range", "0", "4095",
        "--transform", "minmax", "--output-dtype", "bfloat16", "--json",
    )
    assert code == 0, err
    d = json.loads(out)
    x = np.arange(4096, dtype=np.float32)
    s = np.float32(1) / np.float32(4095)
    import ml_dtypes

    expected = np.unique((x * s + np.float32(0)).astype(ml_dtypes.bfloat16).astype(np.float64)).size
    assert d["schema"] == "precision-bench/record/1"
    assert (d["distinct_in"], d["distinct_out"]) == (4096, expected)


def test_measure_data_file_table(tmp_path, capsys):
    path = tmp_path / "features.npz"
    x = np.random.default_rng(0).normal(0, 1, (500, 3)).astype(np.float32)
    np.savez(path, train=x, other=x[:10])
    code, out, err = run(
        capsys, "measure", "--data", str(path), "--key", "train", "--transform", "standardize",
        "--axis", "0", "--output-dtype", "float16",
    )
    assert code == 0, err
    assert out.splitlines()[0].startswith("loses ")  # the verdict first
    for heading in ("input", "survival", "error (vs the exact value)", "range events", "speed"):
        assert f" {heading} " in out
    assert "float32 units" in out and "ULP of float16" in out and "M elem/s" in out
    assert not FIELD_NAMES & set(out.replace("│", " ").split())  # no dump of Record field names


FIELD_NAMES = {"distinct_out", "max_ulp_error", "max_abs_error_in", "max_merged_span_in", "effective_bits_in", "elements_per_s",
               "roofline_fraction", "overflow_out", "info_lost_bits"}


@pytest.mark.parametrize("argv, first", [
    (["--transform", "scale", "--output-dtype", "float32"], "lossless: all 4,096 distinct values survive; max error "),
    (["--transform", "scale", "--output-dtype", "bfloat16"], "loses 3,327 of 4,096 values; inputs up to 15 counts apart merge"),
], ids=["lossless-float32", "lossy-bfloat16"])
def test_measure_table_verdict_line_in_input_units(argv, first, capsys):
    code, out, err = run(capsys, "measure", "--domain", "--input-dtype", "uint16", "--range", "0", "4095", "--divisor", "4095",
                         "--repeat", "1", *argv)
    assert code == 0, err
    verdict = out.splitlines()[0]
    assert verdict.startswith(first) and verdict.rstrip().endswith("counts")
    import kernels as K

    r = K.measure(K.domain("uint16", 0, 4095), "scale", divisor=4095, output_dtype=argv[-1], repeat=1)
    assert f"{r.collisions:,}" in out and f"{r.distinct_in:,} -> {r.distinct_out:,}" in out
    assert "roofline fraction" in out and "counts (widest merged range)" in out


def test_measure_data_npy_json_matches_library(tmp_path, capsys):
    import kernels as K

    x = np.random.default_rng(4).integers(0, 256, 10_000).astype(np.uint8)
    path = tmp_path / "pixels.npy"
    np.save(path, x)
    code, out, _ = run(capsys, "measure", "--data", str(path), "--transform", "scale", "--output-dtype", "float16", "--json")
    assert code == 0
    d = json.loads(out)
    r = K.measure(x, "scale", output_dtype="float16")
    assert (d["distinct_out"], d["max_ulp_error"]) == (r.distinct_out, r.max_ulp_error)


BAD = {
    "no-source": (["measure", "--transform", "minmax"], "exactly one source"),
    "both-sources": (["measure", "--domain", "--input-dtype", "uint8", "--data", "x.npy", "--transform", "minmax"], "exactly one source"),
    "missing-file": (["measure", "--data", "/nonexistent/x.npy", "--transform", "minmax"], "no such file"),
    "wrong-suffix": (["measure", "--data", "x.csv", "--transform", "minmax"], "expected .npy, .npz"),
    "bad-transform": (["measure", "--domain", "--input-dtype", "uint8", "--transform", "zscore"], "invalid choice"),
    "bad-formula": (["measure", "--domain", "--input-dtype", "uint8", "--transform", "minmax", "--formula", "div"], "formula"),
    "bad-range": (["measure", "--domain", "--input-dtype", "uint8", "--range", "9", "3", "--transform", "minmax"], "lo <= hi"),
    "float64-domain": (["measure", "--domain", "--input-dtype", "float64", "--transform", "minmax"], "dtype"),
    "feature-range": (["measure", "--domain", "--input-dtype", "uint8", "--transform", "minmax", "--feature-range", "1", "0"], "feature_range"),
    "scale-float": (["measure", "--domain", "--input-dtype", "float16", "--transform", "scale"], "divisor"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_arguments_one_line_status_2(case, capsys):
    argv, needle = BAD[case]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err
    assert "Traceback" not in err


def test_pickled_npy_is_refused_without_traceback(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([1, "a", None], dtype=object), allow_pickle=True)
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros(0, np.float32))
    for f in (path, empty):
        proc = subprocess.run(
            [sys.executable, "-m", "kernels", "measure", "--data", str(f), "--transform", "minmax"],
            capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def cli(*argv, timeout=300):
    return subprocess.run([sys.executable, "-m", "kernels", *argv], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "dtype, lo, hi, needle",
    [("uint8", "300", "400", "no uint8 value"), ("uint8", "inf", "inf", "finite"), ("uint8", "-10", "-5", "no uint8 value"),
     ("uint16", "10", "inf", "finite"), ("float16", "1e10", "2e10", "no float16 value")],
)
def test_domain_range_outside_the_dtype_one_line_status_2(dtype, lo, hi, needle):
    # used to loop forever (300 400) or raise OverflowError (inf inf): a timeout guards
    res = cli("measure", "--domain", "--input-dtype", dtype, "--range", lo, hi, "--transform", "minmax", timeout=120)
    assert res.returncode == 2 and res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1 and "--range" in res.stderr and needle in res.stderr


def test_speed_unknown_case_lists_valid_names(capsys):
    from kernels.speed import CASES

    code, out, err = run(capsys, "speed", "--case", "nope", "--n", "1000")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "unknown case 'nope'" in err
    assert all(repr(c.name) in err for c in CASES)


def test_no_command_prints_help_to_stderr_status_2(capsys):
    code, out, err = run(capsys)
    assert code == 2 and out == ""
    assert err.startswith("usage: precision-bench") and "report" in err


def test_report_out_under_a_file_fails_before_measuring(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    blocker.chmod(0o755)  # an executable file passed the old os.access check
    res = cli("report", "--quick", "--out", str(blocker / "sub"), timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "is a file, not a directory" in res.stderr
    assert blocker.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# ---------------------------------------------------------------- speed: one flag name


def test_speed_takes_input_dtype_and_refuses_the_old_flag(capsys):
    from kernels.cli import build_parser

    assert build_parser().parse_args(["speed", "--sweep", "--input-dtype", "uint8"]).input_dtype == ["uint8"]
    code, out, err = run(capsys, "speed", "--sweep", "--input", "uint8")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "--input is now --input-dtype" in err


# ---------------------------------------------------------------- every --help: choices and defaults


def _subparsers():
    import argparse

    from kernels.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


# options that have no default: what to run is given or not (and every option of a
# "(one of)" group: a source, a requirement)
NO_DEFAULT = {"--transform", "--pipeline", "--preset"}


@pytest.mark.parametrize("command", list(_subparsers()))
def test_help_shows_every_default_and_choice(command):
    import argparse

    sub = _subparsers()[command]
    text = " ".join(sub.format_help().split())
    one_of = {a.dest for g in sub._action_groups if "(one of)" in (g.title or "") for a in g._group_actions}
    for a in sub._actions:
        if not a.option_strings or a.help == argparse.SUPPRESS or isinstance(a, argparse._HelpAction):
            continue
        flag = a.option_strings[0]
        if a.default not in (None, False):
            assert f"default: {a.default}" in text, f"{command} {flag}: default {a.default!r} not in --help"
        elif a.nargs != 0 and flag not in NO_DEFAULT and a.dest not in one_of:
            assert "default" in (a.help or ""), f"{command} {flag}: --help does not say what happens without it"
        for c in a.choices or ():
            assert c in text, f"{command} {flag}: choice {c!r} not in --help"


def test_report_help_lists_the_bundled_sets_and_key():
    from kernels.datasets import NAMES

    text = " ".join(_subparsers()["report"].format_help().split())
    assert all(n in text for n in NAMES) and "--key" in text
    assert "--quick" in text and "measured" in text


def test_report_key_picks_the_npz_array(tmp_path, capsys, monkeypatch):
    import kernels.report as R

    f = tmp_path / "two.npz"
    a, b = np.arange(300, dtype=np.float32), np.linspace(0, 1, 77, dtype=np.float32)
    np.savez(f, a=a, b=b)
    full = R.suite
    monkeypatch.setattr(R, "suite", lambda quick=False, data=None, key=None: [(s, v[:1]) for s, v in full(quick, data, key)
                                                                               if s.kind == "file"])
    code, out, err = run(capsys, "report", "--quick", "--out", str(tmp_path / "rep"), "--data", str(f), "--key", "b")
    assert code == 0, err
    recs = json.loads((tmp_path / "rep" / "report.json").read_text())["records"]
    assert recs and all(r["source"] == "two.npz" and r["distinct_in"] == b.size for r in recs)
    code, out, err = run(capsys, "report", "--quick", "--out", str(tmp_path / "rep2"), "--data", str(f))
    assert code == 2 and "choose one with --key" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- audit


def sensor_image():
    """A synthetic 12-bit sensor image in uint16: every code 0..4095 once per channel, shuffled."""
    rng = np.random.default_rng(12)
    return np.stack([rng.permutation(4096) for _ in range(3)], axis=-1).reshape(64, 64, 3).astype(np.uint16)


def save(img, path):
    if path.suffix == ".npy":
        np.save(path, img)
    else:
        import tifffile

        tifffile.imwrite(path, img, photometric="rgb")
    return path


@pytest.mark.parametrize("suffix", [".npy", ".tif"], ids=["npy", "tif"])
def test_audit_12bit_sensor_in_uint16_suggests_4095(suffix, tmp_path, capsys):
    img = sensor_image()
    f = save(img, tmp_path / f"sensor{suffix}")
    code, out, err = run(capsys, "audit", str(f), "--json")
    assert code == 0, err
    d = json.loads(out)
    assert (d["dtype"], d["distinct"], d["bits_used"], d["dtype_bits"], d["divisor"]) == ("uint16", 4096, 12, 16, 4095.0)
    assert d["effective_bits_in"] == 12.0 and "scale by 4095, not 65535" in d["note"]
    rows = {(r["name"], r["output"], r["compute"]): r for r in d["pipelines"]}
    assert {o for _, o, _ in rows} == {"float16", "bfloat16", "float32", "float64", "uint8"}
    assert ("scale /4095", "float64", "float64") in rows and ("scale /65535", "float16", "float32") in rows
    x = img.reshape(-1).astype(np.float32)
    for divisor in (4095, 65535):
        want = numpy_distinct((x / np.float32(divisor)).astype(np.float16))
        assert rows[(f"scale /{divisor}", "float16", "float32")]["distinct_out"] == want
    assert rows[("quantize", "uint8", "float32")]["distinct_out"] == 256
    best = d["recommendation"]
    lossless = [r for r in d["pipelines"] if r["collisions"] == 0]
    assert best in lossless and best["bytes_per_element"] == min(r["bytes_per_element"] for r in lossless)
    same = [r for r in lossless if r["bytes_per_element"] == best["bytes_per_element"]]
    assert best["max_abs_error_in"] == min(r["max_abs_error_in"] for r in same)
    code, out, err = run(capsys, "audit", str(f))
    assert code == 0, err
    assert "12 of 16 bits" in out and "scale by 4095, not 65535" in out and "counts" in out
    assert out.strip().splitlines()[-1].startswith(f"recommended: {best['name']} -> {best['output']} (compute {best['compute']}")
    for col in ("compute", "bytes", "merged span", "max error", "max ULP"):
        assert col in out


def numpy_distinct(y):
    return np.unique(np.asarray(y).astype(np.float64)).size


def test_audit_axis_per_channel_matches_measure(tmp_path, capsys):
    import kernels as K

    img = sensor_image()
    img[..., 1] //= 16  # channel 1: 8 bits of data
    f = save(img, tmp_path / "hwc.npy")
    code, out, err = run(capsys, "audit", str(f), "--axis", "0", "1", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["axis"] == [0, 1] and [(c["lo"], c["hi"], c["distinct"]) for c in d["channels"]] == [
        (float(img[..., j].min()), float(img[..., j].max()), numpy_distinct(img[..., j])) for j in range(3)]
    rows = {(r["name"], r["output"], r["compute"]): r for r in d["pipelines"]}
    for t in ("minmax", "standardize"):
        r = K.measure(img, t, axis=(0, 1), output_dtype="float16", repeat=1)
        assert rows[(t, "float16", "float32")]["distinct_out"] == r.distinct_out
    code, out, err = run(capsys, "audit", str(f), "--axis", "0", "1")
    assert code == 0 and "per channel" in out
    code, out, err = run(capsys, "audit", str(f), "--axis", "1")
    assert code == 2 and "--axis 1" in err and len(err.strip().splitlines()) == 1


def test_audit_float64_rows_keep_float64(tmp_path, capsys):
    x = np.random.default_rng(5).normal(0, 1, 3000)
    f = tmp_path / "f64.npy"
    np.save(f, x)
    code, out, err = run(capsys, "audit", str(f), "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["bits_used"] is None and d["note"] is None
    rows = {(r["name"], r["output"], r["compute"]): r for r in d["pipelines"]}
    assert ("minmax", "float64", "float64") in rows and ("quantize", "uint8", "float32") in rows
    assert ("cast", "float32", "-") in rows and not any(k[0] == "cast" and k[1] == "float64" for k in rows)
    assert rows[("cast", "float32", "-")]["distinct_out"] == numpy_distinct(x.astype(np.float32))
    # 3,000 normal values all survive float32 (numpy agrees): a 4-byte row wins, not float64
    assert numpy_distinct(x.astype(np.float32)) == x.size
    assert d["recommendation"]["bytes_per_element"] == 4 and d["recommendation"]["collisions"] == 0
