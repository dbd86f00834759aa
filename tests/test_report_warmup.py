"""report's warm-up: every record's kernels compiled in spawned workers first."""

from __future__ import annotations

import subprocess
import sys

from kernels import report as R
from kernels.report_warmup import _warm_source, warm_up


def _tiny_plan():
    src, variants = R.suite(True)[0]  # uint8 (all 256): a spec another process can load
    return [(src, variants[:2]), (R.suite(True)[1][0], variants[:1])]


def test_workers_warm_every_variant_into_a_fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))  # the spawned workers inherit it
    plan = _tiny_plan()
    done = []
    assert warm_up(plan, workers=2, on_done=done.append) == 3  # 0 would mean the workers failed
    assert sorted(done) == [1, 2]
    assert any(tmp_path.rglob("*.nbc")), "the workers wrote compiled kernels into the shared cache"


def test_a_worker_counts_what_it_compiled_and_a_warm_cache_compiles_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    src, variants = _tiny_plan()[0]
    code = ("import sys; from kernels import report as R; from kernels.report_warmup import _warm_source; "
            "s, v = R.suite(True)[0]; print(_warm_source(s.spec, s.axis, s.name, v[:2])[1])")
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(first.stdout) > 0 and int(again.stdout) == 0
    assert _warm_source(("domain", "uint8", 0, 255), None, src.name, variants[:1])[0] == 1


def test_sources_without_a_spec_are_not_warmed():
    src, variants = _tiny_plan()[0]
    stub = R.Source("stub", "domain", lambda: R.domain("uint8"))  # a lambda another process cannot load
    assert warm_up([(stub, variants)]) == 0


def test_the_module_entry_point_does_not_run_the_cli_on_import():
    """Spawned workers re-import the main module: ``python -m kernels`` must not run again."""
    res = subprocess.run([sys.executable, "-c", "import runpy; runpy.run_module('kernels.__main__', run_name='__mp_main__')"],
                         capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout == ""


def test_a_large_file_is_warmed_on_its_leading_rows(tmp_path, monkeypatch):
    import numpy as np

    from kernels import report_warmup as W

    path = tmp_path / "big.npy"
    np.save(path, np.random.default_rng(0).normal(0, 1, (5000, 3)).astype(np.float32))
    seen = []
    monkeypatch.setattr(W, "WARM_ROWS_MAX", 3000)
    orig = R.measure  # the name report.measure_variant calls (the workers measure through it)
    monkeypatch.setattr(R, "measure", lambda x, *a, **k: (seen.append(x.shape), orig(x, *a, **k))[1])
    v = [R.Variant("minmax", "float16")]
    assert W._warm_source(("file", str(path), None), 0, "big.npy", v)[0] == 1
    assert seen == [(1000, 3)]  # 3000 elements of leading rows, whole rows


def test_warming_in_this_process_leaves_its_timing_input_as_it_was():
    """_warm_source cuts the timed pass to WARM_TIMING for its own measuring only: a
    later record in the same process is timed on TIMING_MIN elements again (it was
    left cut, which made test_timing fail when it ran after this module)."""
    import importlib

    M = importlib.import_module("kernels.measure")
    before = M.TIMING_MIN
    src, variants = R.suite(True)[0]
    assert _warm_source(src.spec, src.axis, src.name, variants[:1])[0] == 1
    assert M.TIMING_MIN == before
