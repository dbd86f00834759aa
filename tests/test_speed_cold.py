"""speed --cold: each case in a new process with an empty numba cache, then warm."""

from __future__ import annotations

import subprocess
import sys

from kernels import speed_cold


def test_a_cold_case_compiles_into_its_own_empty_cache_and_the_warm_run_loads_it(tmp_path):
    case = speed_cold.ColdCase("tiny transform", "x = np.arange(300, dtype=np.uint16)\n",
                               "kernels.transform(x, 'scale', divisor=7.0, output_dtype='bfloat16')", 60.0)
    cache = tmp_path / "cache"
    cache.mkdir()
    cold, cold_calls = speed_cold.run_case(case, str(cache))
    written = {p: p.stat().st_mtime_ns for p in cache.rglob("*.nb*")}
    assert any(p.suffix == ".nbc" for p in written), "the cold run compiled into the empty cache"
    warm, warm_calls = speed_cold.run_case(case, str(cache))
    assert 0 < cold_calls < cold and 0 < warm_calls < warm
    # the warm run loaded what the cold one compiled: no kernel written again (no timing asserted)
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.nb*")} == written


def test_rows_judge_each_goal_on_what_it_names(monkeypatch):
    times = iter([(9.0, 1.0), (3.0, 0.2), (9.0, 4.0), (3.0, 0.2)])
    monkeypatch.setattr(speed_cold, "run_case", lambda case, cache, out=None: next(times))
    rows = speed_cold.measure_cold([speed_cold.ColdCase("calls", "", "pass", 1.5),
                                    speed_cold.ColdCase("process", "", "pass", 5.0, goal_on="process")])
    assert [r["goal_met"] for r in rows] == [True, False]


def test_cli_report_needs_cold():
    res = subprocess.run([sys.executable, "-m", "kernels", "speed", "--report"], capture_output=True, text=True)
    assert res.returncode == 2 and "--cold" in res.stderr and len(res.stderr.strip().splitlines()) == 1
