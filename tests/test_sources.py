"""Lazy sources (kernels/sources.py): Zarr stores and sets of files as dask arrays, read only when computed."""

import os
import time

import dask.array as da  # the dask extra is part of the test extra: installed in CI
import numpy as np
import pytest
import zarr

from kernels.files import AuditError
from kernels.sources import is_lazy_source, open_source, scheduler


def _npy_set(d, shapes, dtype=np.uint16):
    d.mkdir()
    arrays = []
    for i, shape in enumerate(shapes):
        a = (np.arange(int(np.prod(shape))) * (i + 3)).astype(dtype).reshape(shape)
        np.save(d / f"t{i:02d}.npy", a)
        arrays.append(a)
    return arrays


def test_zarr_array_keeps_its_chunks_and_values(tmp_path):
    x = np.random.default_rng(0).integers(0, 4096, 10_000).astype(np.uint16)
    z = zarr.create_array(str(tmp_path / "s.zarr"), shape=x.shape, chunks=(3_000,), dtype=x.dtype)
    z[:] = x
    d = open_source(str(tmp_path / "s.zarr"))
    assert isinstance(d, da.Array) and d.chunks == ((3000, 3000, 3000, 1000),)
    np.testing.assert_array_equal(d.compute(), x)


def test_zarr_group_takes_its_only_array_or_the_key(tmp_path):
    g = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    g.create_array("a", shape=(4,), dtype="f4")[:] = 1.5
    assert open_source(str(tmp_path / "g.zarr")).compute().tolist() == [1.5] * 4
    g.create_array("b", shape=(2,), dtype="u1")[:] = 7
    with pytest.raises(AuditError, match="2 arrays.*--key"):
        open_source(str(tmp_path / "g.zarr"))
    assert open_source(str(tmp_path / "g.zarr"), key="b").compute().tolist() == [7, 7]
    with pytest.raises(AuditError, match="no array 'c'.*a, b"):
        open_source(str(tmp_path / "g.zarr"), key="c")


def test_files_of_one_trailing_shape_concatenate_along_axis_0_one_chunk_each(tmp_path):
    arrays = _npy_set(tmp_path / "d", [(3, 4), (3, 4), (5, 4), (3, 4), (1, 4)])
    d = open_source(str(tmp_path / "d"))
    assert d.shape == (15, 4) and d.chunks == ((3, 3, 5, 3, 1), (4,))
    np.testing.assert_array_equal(d.compute(), np.concatenate(arrays))
    assert is_lazy_source(str(tmp_path / "d")) and is_lazy_source(str(tmp_path / "d" / "*.npy"))


def test_npy_files_of_different_shapes_concatenate_their_values(tmp_path):
    arrays = _npy_set(tmp_path / "d", [(5,), (2, 3), (0,), (7, 1)], np.float32)
    d = open_source(str(tmp_path / "d" / "t*.npy"))
    assert d.chunks == ((5, 6, 7),)  # dask drops the empty file's chunk
    np.testing.assert_array_equal(d.compute(), np.concatenate([a.ravel() for a in arrays]))


def test_opening_reads_nothing_a_damaged_file_fails_when_read_naming_it(tmp_path):
    _npy_set(tmp_path / "d", [(6,)] * 3)
    d = open_source(str(tmp_path / "d"))
    bad = tmp_path / "d" / "t01.npy"
    with open(bad, "r+b") as f:  # truncate the data, keep the header: opening does not notice
        f.truncate(os.path.getsize(bad) - 4)
    with pytest.raises(AuditError, match="t01.npy: truncated"):
        d.compute(scheduler="synchronous")


def test_images_share_the_first_files_shape_or_fail_naming_the_file(tmp_path):
    from PIL import Image
    (tmp_path / "img").mkdir()
    for i in range(3):
        Image.fromarray(np.full((4, 5), 40 * i, np.uint8)).save(tmp_path / "img" / f"p{i}.png")
    d = open_source(str(tmp_path / "img" / "*.png"))
    assert d.shape == (12, 5) and d.dtype == np.uint8
    assert d.max().compute() == 80
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "img" / "p3.png")
    with pytest.raises(AuditError, match=r"p3.png: shape \(2, 2\).*first file has \(4, 5\)"):
        open_source(str(tmp_path / "img")).compute(scheduler="synchronous")


@pytest.mark.parametrize("case", ["nothing matches", "two dtypes", "key on files"])
def test_bad_sources_are_refused_by_name(tmp_path, case):
    (tmp_path / "d").mkdir()
    if case == "nothing matches":
        (tmp_path / "d" / "notes.txt").write_text("x")
        with pytest.raises(AuditError, match="matching no .npy"):
            open_source(str(tmp_path / "d"))
    elif case == "two dtypes":
        np.save(tmp_path / "d" / "a.npy", np.zeros(3, np.uint8))
        np.save(tmp_path / "d" / "b.npy", np.zeros(3, np.uint16))
        with pytest.raises(AuditError, match="2 dtypes"):
            open_source(str(tmp_path / "d"))
    else:
        np.save(tmp_path / "d" / "a.npy", np.zeros(3, np.uint8))
        with pytest.raises(AuditError, match="--key"):
            open_source(str(tmp_path / "d"), key="x")


@pytest.mark.parametrize("spec", ["threads", "processes", "synchronous"])
def test_local_schedulers_compute_the_same_values(tmp_path, spec):
    arrays = _npy_set(tmp_path / "d", [(100,)] * 4)
    with scheduler(spec):
        total = open_source(str(tmp_path / "d")).sum(dtype=np.int64).compute()
    assert total == sum(int(a.sum(dtype=np.int64)) for a in arrays)


def test_unknown_scheduler_and_silent_address_are_value_errors_within_the_timeout():
    with pytest.raises(ValueError, match="threads, processes, synchronous, sync"):
        with scheduler("fast"):
            pass
    t = time.monotonic()
    with pytest.raises(ValueError, match="no distributed scheduler answered within 1 s"):
        with scheduler("tcp://127.0.0.1:9", timeout=1):  # port 9 (discard): nothing listens
            pass
    assert time.monotonic() - t < 30  # a bound on the hang, not a speed claim


@pytest.mark.parametrize("axis", [None, (0,)], ids=["whole", "per-channel"])
def test_audit_of_a_zarr_store_and_of_a_folder_equals_the_audit_of_the_file(tmp_path, axis):
    """audit reads a lazy source chunk by chunk (dask) and reports what it reports for
    the same values in one .npy: every figure but the path."""
    from kernels.audit import audit

    x = np.random.default_rng(1).integers(0, 4096, (9_000, 3)).astype(np.uint16)
    np.save(tmp_path / "x.npy", x)
    z = zarr.create_array(str(tmp_path / "x.zarr"), shape=x.shape, chunks=(2_000, 3), dtype=x.dtype)
    z[:] = x
    (tmp_path / "rows").mkdir()
    for k, (a, b) in enumerate([(0, 4_000), (4_000, 4_000), (4_000, 9_000)]):  # an empty file among them
        np.save(tmp_path / "rows" / f"r{k}.npy", x[a:b])

    def figures(path):
        d = audit(str(path), axis=axis).to_dict()
        d.pop("path")
        return d

    whole = figures(tmp_path / "x.npy")
    with scheduler("threads"):
        assert figures(tmp_path / "x.zarr") == whole
        assert figures(tmp_path / "rows") == whole


def test_cli_audit_takes_a_zarr_store_and_a_scheduler(tmp_path, capsys):
    import json

    from kernels.cli import main

    x = np.arange(5_000, dtype=np.uint16) % 1000
    z = zarr.create_array(str(tmp_path / "s.zarr"), shape=x.shape, chunks=(1_200,), dtype=x.dtype)
    z[:] = x
    assert main(["audit", str(tmp_path / "s.zarr"), "--scheduler", "threads", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["distinct"] == 1000
    assert main(["audit", str(tmp_path / "none" / "*.npy"), "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "matching no .npy" in err[0]


TIMING = {"seconds", "fit_seconds", "elements_per_s", "bytes_per_s", "roofline_fraction", "timed_elements",
          "chunk_sizes_computed", "source", "note"}


def _report_data(tmp_path, kind):
    """(the .npy, the Zarr store, the folder) of one report --data source: 12-bit
    counts (the integer variants) or float32 features with NaN (the float variants)."""
    rng = np.random.default_rng(7)
    if kind == "uint16":
        x = rng.integers(0, 4096, 30_000).astype(np.uint16)
    else:
        x = rng.normal(size=30_000).astype(np.float32)
        x[[5, 17_000]] = np.nan
    np.save(tmp_path / "x.npy", x)
    z = zarr.create_array(str(tmp_path / "x.zarr"), shape=x.shape, chunks=(7_000,), dtype=x.dtype)
    z[:] = x
    (tmp_path / "parts").mkdir()
    for k, (a, b) in enumerate([(0, 12_000), (12_000, 12_000), (12_000, 30_000)]):  # an empty file among them
        np.save(tmp_path / "parts" / f"p{k}.npy", x[a:b])
    return tmp_path / "x.npy", tmp_path / "x.zarr", tmp_path / "parts"


def _file_sources(plan):
    return [(s, v) for s, v in plan if s.kind == "file"]  # the domains come first, whatever --data is


@pytest.mark.parametrize("kind", ["uint16", "float32"])
def test_report_suite_on_a_zarr_store_and_a_folder_equals_the_suite_on_the_file(tmp_path, kind):
    """report --data with a lazy source: the same variants as for the file, and each
    record (measured chunk by chunk on dask, MX outputs included) equal to the
    file's in every figure but the timings and the source's name."""
    from kernels import report_suite as S
    from kernels.dask_array import is_dask
    from kernels.report import measure_variant

    npy, store, folder = _report_data(tmp_path, kind)
    (mem_src, mem_variants), = _file_sources(S.suite(True, data=[str(npy)]))
    want = [measure_variant(mem_src.load(), v, repeat=1, exact_points=512).to_dict() for v in mem_variants]
    assert {S.MX_REPORT_OUTPUTS[0], S.MX_REPORT_OUTPUTS[1]} <= {v.output for v in mem_variants}
    with scheduler("threads"):
        for lazy in (store, folder):
            (src, variants), = _file_sources(S.suite(True, data=[str(lazy)]))
            assert variants == mem_variants and src.spec == ("lazy", str(lazy), None) and src.kind == "file"
            x = src.load()
            assert is_dask(x)
            for v, w in zip(variants, want):
                got = measure_variant(x, v, repeat=1, exact_points=512).to_dict()
                diff = {k: (got[k], w[k]) for k in w if k not in TIMING and got[k] != w[k]
                        and not (got[k] != got[k] and w[k] != w[k])}  # NaN == NaN here
                assert not diff, (lazy.name, v)


def test_cli_report_takes_a_zarr_store_and_a_scheduler(tmp_path, capsys, monkeypatch):
    import json

    from kernels import report as R
    from kernels.cli import main

    _, store, _ = _report_data(tmp_path, "uint16")
    full = R.suite

    def only_data(quick=False, data=None, key=None):  # the domains are not what this test is about
        return [(s, v[:3] + [w for w in v if w.output in R.MX_REPORT_OUTPUTS]) for s, v in full(quick, data, key)
                if s.kind == "file"]

    monkeypatch.setattr(R, "suite", only_data)
    out = tmp_path / "rep"
    assert main(["report", "--quick", "--no-warm-up", "--out", str(out), "--data", str(store),
                 "--scheduler", "threads"]) == 0, capsys.readouterr().err
    recs = json.loads((out / "report.json").read_text())["records"]
    assert len(recs) == 5 and {r["source"] for r in recs} == {"x.zarr"} and all(r["n"] == 30_000 for r in recs)
    assert {r["output_dtype"] for r in recs} >= set(R.MX_REPORT_OUTPUTS)


@pytest.mark.parametrize("bad", ["inf", "only NaN", "empty", "complex"])
def test_report_refuses_a_lazy_source_no_variant_could_fit_naming_it(tmp_path, capsys, bad):
    """Checked in one pass over the chunks before anything is measured: one line, exit 2, nothing written."""
    from kernels.cli import main

    x = {"inf": np.r_[np.ones(5_000, np.float32), np.float32(np.inf)], "only NaN": np.full(6_000, np.nan, np.float32),
         "empty": np.zeros(0, np.uint16), "complex": np.ones(10, np.complex64)}[bad]
    z = zarr.create_array(str(tmp_path / "s.zarr"), shape=x.shape, chunks=(max(1, x.size // 3),), dtype=x.dtype)
    z[:] = x
    assert main(["report", "--quick", "--out", str(tmp_path / "rep"), "--data", str(tmp_path / "s.zarr")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "s.zarr" in err[0] and "Traceback" not in err[0], err
    assert not (tmp_path / "rep").exists()


def test_report_warm_up_loads_a_lazy_source_in_a_worker(tmp_path):
    """The warm-up's spec of a lazy source opens it (dask) in the worker, which
    measures its leading rows as the report will: chunk by chunk."""
    from kernels import report_suite as S
    from kernels.report_warmup import _load, _warm_source

    _, store, _ = _report_data(tmp_path, "uint16")
    (src, variants), = _file_sources(S.suite(True, data=[str(store)]))
    assert _load(src.spec).shape == (30_000,) and type(_load(src.spec)).__module__.startswith("dask")
    assert _warm_source(src.spec, src.axis, src.name, variants[:2])[0] == 2


def test_progress_shows_dasks_bar_for_a_computation_over_a_second(capsys):
    import dask

    with scheduler("threads", progress=True):
        dask.delayed(time.sleep)(1.3).compute()
    err = capsys.readouterr().err
    assert "100% Completed" in err and "#" in err


_TIMING = {"seconds", "fit_seconds", "elements_per_s", "bytes_per_s", "roofline_fraction", "timed_elements",
           "chunk_sizes_computed", "source"}


@pytest.mark.parametrize("stored, input_dtype, how", [
    ("float32", "float16", ["--transform", "minmax", "--output-dtype", "uint8"]),
    ("uint16", "uint8", ["--transform", "standardize", "--output-dtype", "float16"]),
    ("float32", "bfloat16", ["--pipeline", "minmax(); cast(output_dtype=float16)"]),
], ids=["float32-as-float16", "uint16-as-uint8-saturating", "float32-as-bfloat16-pipeline"])
def test_cli_measure_input_dtype_casts_a_lazy_source_as_it_casts_a_file(tmp_path, capsys, stored, input_dtype, how):
    """--input-dtype casts --data first; a Zarr store or a folder of .npy files is
    cast block by block (kernels.cast of a dask array): the Record of the file's."""
    import json

    from kernels.cli import main

    rng = np.random.default_rng(4)
    if stored == "uint16":
        x = rng.integers(0, 700, (6_000, 2)).astype(np.uint16)  # above 255: saturates in uint8
    else:
        x = (rng.normal(0, 300, (6_000, 2)) * rng.choice([1.0, 1e-4], (6_000, 2))).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    zarr.create_array(str(tmp_path / "x.zarr"), shape=x.shape, chunks=(1_700, 2), dtype=x.dtype)[:] = x
    (tmp_path / "rows").mkdir()
    for k in range(3):
        np.save(tmp_path / "rows" / f"r{k}.npy", x[k * 2_000:(k + 1) * 2_000])

    def record(path):
        assert main(["measure", "--data", str(path), "--input-dtype", input_dtype, *how, "--repeat", "1",
                     "--json"]) == 0
        r = json.loads(capsys.readouterr().out)
        r = r[0] if isinstance(r, list) else r
        return {k: v for k, v in r.items() if k not in _TIMING}

    whole = record(tmp_path / "x.npy")
    assert whole["input_dtype"] == input_dtype
    assert record(tmp_path / "x.zarr") == whole
    assert record(tmp_path / "rows") == whole


def test_cast_of_a_dask_array_is_the_in_memory_cast_block_by_block():
    import warnings

    import dask

    from kernels import cast

    x = (np.random.default_rng(5).normal(0, 1e5, 10_000)).astype(np.float32)  # past 65504: inf in float16
    dx = da.from_array(x, chunks=3_000)
    with dask.config.set(scheduler="threads"):
        for kw in ({}, {"rounding": "toward_zero"}, {"saturate": True}):
            y = cast(dx, "float16", **kw)
            assert isinstance(y, da.Array) and y.dtype == np.float16
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # the in-memory cast's overflow warning
                np.testing.assert_array_equal(y.compute().view(np.uint16), cast(x, "float16", **kw).view(np.uint16))
        assert cast(dx, "float32") is dx
        np.testing.assert_array_equal(cast(dx, "uint8").compute(), cast(x, "uint8"))
    with pytest.raises(ValueError, match="stochastic.*flat index"):
        cast(dx, "float16", rounding="stochastic", seed=1)
    with pytest.raises(TypeError, match="out="):
        cast(dx, "float16", out=np.empty(x.shape, np.float16))
    with pytest.raises(ValueError, match="rounding"):
        cast(dx, "uint8", rounding="toward_zero")  # the in-memory check, before any task


def test_speed_dask_child_failure_is_one_line_and_status_2(tmp_path, capsys, monkeypatch):
    """The in-memory row runs in a new process: its failure (here a MemoryError)
    is one line naming it, status 2, not a CalledProcessError traceback."""
    import subprocess

    from kernels import speed_dask
    from kernels.cli import main

    def failing(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "Traceback (most recent call last):\n  ...\n"
                                           "numpy._core._exceptions._ArrayMemoryError: Unable to allocate 2.00 GiB\n")

    monkeypatch.setattr(speed_dask.subprocess, "run", failing)
    monkeypatch.setattr(speed_dask.tempfile, "mkdtemp", lambda **kw: str(tmp_path / "store"))
    assert main(["speed", "--dask", "--max-log2", "16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "speed --dask: the in-memory process failed (exit status 1)" in err[0]
    assert "Unable to allocate" in err[0] and "--max-log2" in err[0]
    assert not (tmp_path / "store").exists()  # the store is removed
