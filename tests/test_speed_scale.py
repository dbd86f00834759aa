"""precision-bench speed --scale: the table's shape, the memory stop, the CLI (no timed assertions)."""

from kernels import speed_scale
from kernels.cli import main


def quiet(lines):
    return lambda s: lines.append(s)


def test_a_row_per_size_and_job_with_positive_rates(monkeypatch):
    import importlib

    monkeypatch.setattr(importlib.import_module("kernels.measure"), "TIMING_MIN", 1 << 14)  # measure times 2**24 elements otherwise: seconds
    lines = []
    rows, stops = speed_scale.scale(("uint8",), min_log2=10, max_log2=14, step=2, repeat=1, min_sample=0.0,
                                    calibrate_log2=12, echo=quiet(lines))
    assert stops == []
    assert sorted((r.log2, r.job) for r in rows) == sorted((k, j) for k in (10, 12, 14) for j in speed_scale.JOBS)
    bad = [r for r in rows if not (r.elements_per_s > 0 and r.probe_elements_per_s > 0 and r.ratio > 0)]
    assert not bad, bad
    from kernels.roofline import probes

    assert all(r.probe in probes(64, 256) for r in rows if r.job == "apply")
    assert any("knee (the smallest size where apply's elements/s < 60%" in s for s in lines)


def test_memory_stop_rule_stops_with_the_message(monkeypatch):
    lines = []
    monkeypatch.setattr(speed_scale, "mem_available", lambda: 40 * 1024)  # 40 KiB: 2^12 float32 inputs (16 KiB) fit, 2^14 not
    rows, stops = speed_scale.scale(("float32",), min_log2=10, max_log2=16, step=2, repeat=1, min_sample=0.0,
                                    jobs=("fit minmax",), calibrate_log2=12, echo=quiet(lines))
    assert [r.log2 for r in rows] == [10, 12]
    assert [(s.log2, s.job) for s in stops] == [(14, "fit minmax")]
    msg = next(s for s in lines if s.startswith("stopped at 2^14: needs "))
    assert "GiB available" in msg


def test_knee_is_the_first_drop_below_the_rule():
    R = speed_scale.Row
    rows = [R("uint8", k, "apply", 1.0, eps, "p", 1.0, 1, 1) for k, eps in ((10, 5.0), (12, 10.0), (14, 7.0), (16, 5.9), (18, 1.0))]
    assert speed_scale.knee(rows).log2 == 16  # 5.9 < 0.6 * 10; 7.0 is not
    assert speed_scale.knee(rows[:3]) is None


def test_cache_sizes_parses_sysfs(tmp_path):
    for i, (level, kind, size) in enumerate((("1", "Data", "32K"), ("2", "Unified", "1024K"), ("3", "Unified", "32M"))):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(level)
        (d / "type").write_text(kind)
        (d / "size").write_text(size + "\n")
    assert speed_scale.cache_sizes(tmp_path) == {"L1d": 32 << 10, "L2": 1 << 20, "L3": 32 << 20}


def test_cli_scale_exits_0(monkeypatch, capsys):
    monkeypatch.setattr(speed_scale, "JOBS", ("apply", "fit minmax"))
    monkeypatch.setattr(speed_scale, "CALIBRATE_LOG2", 12)
    assert main(["speed", "--scale", "--input-dtype", "uint8", "--max-log2", "12", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "2^12 apply" in out and "2^10 fit minmax" in out


def test_cli_scale_one_job_one_thread(capsys):
    import numba

    before = numba.get_num_threads()
    assert main(["speed", "--scale", "--input-dtype", "uint8", "--max-log2", "10", "--repeat", "1", "--job", "fit minmax",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "numba threads 1" in out and "2^10 fit minmax" in out and "apply" not in out.split("threads 1", 1)[1].split("knee")[0]
    assert numba.get_num_threads() == before  # restored


def test_cli_scale_refuses_bad_sizes(capsys):
    assert main(["speed", "--scale", "--max-log2", "8"]) == 2
    err = capsys.readouterr().err
    assert "--max-log2 8" in err and len(err.strip().splitlines()) == 1
