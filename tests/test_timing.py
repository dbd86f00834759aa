"""Speed figures only where they mean something: every timed apply runs on at least
2**24 elements, the roofline is the fastest copy probe, a fraction above 1.3 is no
result, and a missing figure prints as ``-``.  Behaviour only: nothing here asserts
how fast anything runs."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pytest

import kernels as K
from kernels import roofline
from kernels.cli import main, speed_cell
from kernels.measure import TIMING_MIN, timing_input
from kernels.report import COLUMNS
from kernels.speed import _fraction

SPEED_COLUMNS = {k: f for k, f in COLUMNS if k in ("M elem/s", "roofline (fraction of copy)")}


def _quiet(fn, *args, **kw):
    """Call fn with the roofline's measurement-error warning silenced (a loaded
    machine may give one; these tests assert what a record says, not the load)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kw)


@pytest.mark.parametrize(
    ("source", "kw"),
    [
        (lambda: K.domain("uint8"), {"transform": "minmax", "output_dtype": "float16"}),
        (lambda: np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8), {"transform": "minmax"}),
        (lambda: np.random.default_rng(0).normal(size=(1000, 3)).astype(np.float32), {"transform": "standardize", "axis": 0}),
        (lambda: np.arange(1000, dtype=np.uint16), {"transform": "cast(output_dtype=float16)"}),
    ],
    ids=["domain-256", "array-1000", "array-1000x3-per-feature", "pipeline-array-1000"],
)
def test_small_sources_are_timed_on_2_24_elements(source, kw):
    r = _quiet(K.measure, source(), exact_points=64, repeat=1, **kw)
    assert r.timed_elements >= TIMING_MIN
    assert r.to_dict()["timed_elements"] == r.timed_elements
    assert r.n < TIMING_MIN
    assert r.elements_per_s == pytest.approx(r.timed_elements / r.seconds)


@pytest.mark.parametrize(("dtype", "lo", "hi"), [("float32", 1, 4), ("float32", None, None), ("float16", -1, 1)], ids=["float32-1-4", "float32-all", "float16-signed"])
def test_spread_keys_are_in_the_domain(dtype, lo, hi):
    from kernels.measure import _spread_keys

    dom = K.domain(dtype, lo, hi)
    k = _spread_keys(dom, 1000)
    assert k.size <= 1000 and k[0] == dom.key_lo and (np.diff(k) > 0).all() and k[-1] <= dom.key_hi
    v = K.codecs.keys_to_values(dtype, k).astype(np.float64)
    assert (np.diff(v) >= 0).all() and v[0] == dom.lo and np.isfinite(v).all()


def test_streamed_domain_times_the_apply_kernel_on_2_24_values():
    r = _quiet(K.measure, K.domain("float32", 1, 4), "minmax", output_dtype="float16", stream=True, progress=False,
               exact_points=64, repeat=1)
    assert r.streamed and r.n > TIMING_MIN
    assert r.timed_elements == TIMING_MIN
    assert math.isfinite(r.elements_per_s)


def test_measure_outputs_is_not_timed():
    x = np.arange(256, dtype=np.uint8)
    r = K.measure_outputs(x, x.astype(np.float32))
    assert r.timed_elements == 0 and math.isnan(r.elements_per_s) and r.roofline_fraction is None


def test_timing_input_repeats_rows_per_channel():
    x = np.arange(3000, dtype=np.uint16).reshape(1000, 3)
    xt = timing_input(x)
    assert xt.dtype == x.dtype and xt.shape[1] == 3 and xt.size >= TIMING_MIN
    # every row is a row of x, in order: channel j only ever holds channel j's values
    assert np.array_equal(xt[:1000], x) and np.array_equal(xt[1000:2000], x)
    images = np.zeros((2, 4, 5, 3), np.uint8)
    assert timing_input(images).shape[1:] == (3,)
    big = np.zeros(TIMING_MIN, np.uint8)
    assert timing_input(big) is big


@pytest.mark.parametrize(
    ("source", "transform", "kw"),
    [
        (lambda: K.domain("uint8"), "minmax", {"output_dtype": "float16"}),
        (lambda: np.random.default_rng(0).normal(0, 100, 1000).astype(np.float32), "scale",
         {"divisor": 255.0, "output_dtype": "float16"}),
        (lambda: K.domain("uint16", 0, 4095), "minmax", {"output_dtype": "float32"}),
    ],
    ids=["uint8-float16-minmax", "float32-float16-scale", "uint16-float32-minmax"],
)
def test_roofline_fraction_is_none_or_at_most_1_3(source, transform, kw):
    r = _quiet(K.measure, source(), transform, exact_points=64, **kw)
    assert r.roofline_fraction is None or 0 < r.roofline_fraction <= roofline.MAX_FRACTION


def test_roofline_fraction_above_the_limit_is_none_with_a_reason():
    assert roofline.roofline_fraction(1.0, 0.5) == (0.5, None)
    frac, why = roofline.roofline_fraction(1.0, 2.0, "prange copy")
    assert frac is None and "measurement error" in why and "prange copy" in why


def _slow_probes(bytes_in, bytes_out):
    return {"slow copy": lambda: time.sleep(0.5)}  # far slower than any kernel on 2**24 elements


def test_slow_probe_gives_none_and_a_runtime_warning(monkeypatch):
    monkeypatch.setattr(roofline, "probes", _slow_probes)
    with pytest.warns(RuntimeWarning, match="measurement error"):
        r = K.measure(K.domain("uint8"), "minmax", output_dtype="float16", exact_points=64, repeat=1)
    assert r.roofline_fraction is None
    assert r.to_dict()["roofline_fraction"] is None


def test_probes_move_the_kernels_bytes():
    ps = roofline.probes(1000 * 8, 4000 * 8)  # uint8 -> float32 reads a quarter of what it writes
    copies = {"prange copy", "non-temporal copy", "threaded copyto"}
    assert set(ps) == copies and set(roofline.probes(8000, 8000)) == copies
    for p in ps.values():
        a, b = (c.cell_contents for c in p.__closure__)
        assert a.nbytes + b.nbytes == 5000 * 8  # bytes_in + bytes_out, read and written


@pytest.mark.parametrize("offset", [0, 1, 3], ids=["aligned", "8-bytes-off", "24-bytes-off"])
@pytest.mark.parametrize("size", [5, 8 * 8192 * 3 + 13], ids=["tail-only", "blocks-and-tail"])
def test_non_temporal_and_threaded_copies_copy(offset, size):
    src = np.random.default_rng(size).integers(0, 2**63, size + offset, dtype=np.uint64)[offset:]
    for copy in (roofline.copy_nt, roofline.copyto_threads):
        raw = np.zeros(size + offset + 1, np.uint64)
        dst = raw[offset : offset + size]
        copy(src, dst)
        assert np.array_equal(dst, src), copy.__name__
        assert raw[offset + size] == 0 and not raw[:offset].any()  # nothing written outside dst


def test_probes_copy_their_source():
    ps = roofline.probes(8 * 20000, 8 * 20000)
    for name in ("non-temporal copy", "threaded copyto", "prange copy"):
        cell = ps[name].__closure__  # the probe's (src, dst) views
        a, b = (c.cell_contents for c in cell)
        b[...] = 0
        ps[name]()
        assert np.array_equal(a, b) and a.nbytes + b.nbytes == 8 * 20000 * 2, name  # moves bytes_in + bytes_out


def test_copy_nt_rejects_bad_arrays():
    with pytest.raises(TypeError, match="uint64"):
        roofline.copy_nt(np.zeros(8, np.float64), np.zeros(8, np.uint64))
    with pytest.raises(ValueError, match="size"):
        roofline.copy_nt(np.zeros(8, np.uint64), np.zeros(9, np.uint64))


def test_launch_restores_the_environment():
    import os

    from kernels import _threads

    before = os.environ.get("OMP_WAIT_POLICY")
    _threads.launch()
    assert os.environ.get("OMP_WAIT_POLICY") == before


def test_cli_measure_table_prints_no_nan(capsys):
    assert main(["measure", "--domain", "--input-dtype", "uint8", "--transform", "minmax", "--output-dtype", "float16",
                 "--repeat", "1", "--exact-points", "64"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if any(k in line for k in ("M elem/s", "roofline fraction", " ms "))]
    assert len(rows) == 3  # the speed section: apply, roofline, fit
    assert not any("nan" in row.lower() or "None" in row for row in rows)


def test_cli_measure_table_prints_dash_for_no_roofline(monkeypatch, capsys):
    monkeypatch.setattr(roofline, "probes", _slow_probes)
    with pytest.warns(RuntimeWarning, match="measurement error"):
        assert main(["measure", "--domain", "--input-dtype", "uint8", "--transform", "minmax", "--repeat", "1",
                     "--exact-points", "64"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "roofline fraction" in line)
    assert "-" in row and "None" not in row and "nan" not in row.lower()


@pytest.mark.parametrize("missing", [None, math.nan, "nan"], ids=["none", "nan", "nan-json"])
def test_missing_speed_figures_print_as_dash(missing):
    assert _fraction(missing if missing != "nan" else math.nan) == "-"
    record = {"elements_per_s": missing if missing is not None else "nan", "roofline_fraction": missing}
    assert [f(record) for f in SPEED_COLUMNS.values()] == ["-", "-"]
    assert speed_cell(math.nan) == "-"


def test_speed_columns_carry_units():
    assert list(SPEED_COLUMNS) == ["M elem/s", "roofline (fraction of copy)"]
    assert [f({"elements_per_s": 2.5e9, "roofline_fraction": 0.8125}) for f in SPEED_COLUMNS.values()] == ["2500", "0.81"]
