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
    assert "distinct_out" in out and "max_ulp_error" in out


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
