"""SIGINT and SIGKILL during ``precision-bench report``: one line and status 130 on
Ctrl-C, no partial file, an earlier report intact, and the next run works.

The child is ``kernels.cli.main(["report", ...])`` in a fresh process with one
test hook: ``kernels.report.suite`` returns a one-source plan (so ``run_suite``,
``write_report`` and the file system calls are the real ones), and ``PAUSE``
stops the child at a chosen point (the second measurement, or after the third
temporary file is flushed) after creating a marker file the test waits for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernels import report as R

ROOT = Path(__file__).resolve().parents[1]

DRIVER = r"""
import os, sys, time
from pathlib import Path
import kernels.report as R
from kernels.cli import main

pause, marker = os.environ.get("PAUSE", ""), Path(os.environ["MARKER"])

def wait_here():
    marker.write_text("ready")
    while True:
        time.sleep(0.05)

R.suite = lambda quick=False, data=None, key=None: [
    (R.Source("uint8 (all 256)", "domain", lambda: R.domain("uint8"), integer_range=255.0),
     [R.Variant("minmax", "float16"), R.Variant("minmax", "float32")])
]
R.run_conventions = lambda quick=False: {"rows": [], "missing": [], "refused": []}  # the presets section: not under test here
R.run_sensitivity = lambda quick=False: []  # the model-in-the-loop section: not under test here
if pause == "measure":
    real_measure, calls = R.measure, []
    def measure(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            wait_here()
        return real_measure(*a, **k)
    R.measure = measure
elif pause == "write":
    real_fsync, flushed = os.fsync, []
    def fsync(fd):
        real_fsync(fd)
        flushed.append(fd)
        if len(flushed) == 3:
            wait_here()
    os.fsync = fsync
sys.exit(main(["report", "--quick", "--out", sys.argv[1]]))
"""


def _as_from_a_shell():
    """The child starts as a shell starts it: SIGINT unblocked, default disposition.
    A test worker's signal mask and handlers are inherited through fork and exec,
    and in CI (2 loaded workers) the child twice never saw the SIGINT sent to it."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(out: Path, tmp_path: Path, pause: str = ""):
    marker = tmp_path / f"ready-{pause}"
    marker.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PAUSE": pause, "MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_from_a_shell)
    return proc, marker


def _run(out: Path, tmp_path: Path):
    proc, _ = _start(out, tmp_path)
    stdout, stderr = proc.communicate(timeout=600)
    return proc.returncode, stdout, stderr


def _interrupt(out: Path, tmp_path: Path, pause: str, sig) -> tuple[int, str]:
    proc, marker = _start(out, tmp_path, pause)
    try:
        while not marker.exists():  # no timing: wait until the child is where we want it
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stderr


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.fixture(scope="module")
def earlier(tmp_path_factory):
    """A complete report written by the same path, to be kept intact."""
    tmp = tmp_path_factory.mktemp("earlier")
    out = tmp / "rep"
    code, _, err = _run(out, tmp)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted(R.FILES)
    return _snapshot(out)


def _restore(out: Path, files: dict[str, bytes]) -> None:
    out.mkdir()
    for name, data in files.items():
        (out / name).write_bytes(data)


@pytest.mark.parametrize("pause", ["measure", "write"])
def test_sigint_one_line_130_nothing_partial_earlier_report_intact(pause, earlier, tmp_path):
    new, old = tmp_path / "new", tmp_path / "old"
    _restore(old, earlier)
    for out, before in ((new, None), (old, earlier)):
        code, err = _interrupt(out, tmp_path, pause, signal.SIGINT)
        assert code == 130, err
        assert err.strip() == "precision-bench: interrupted"
        if before is None:
            assert not out.exists() or list(out.iterdir()) == []
        else:
            assert _snapshot(out) == before  # no temporaries, every file the earlier one


def test_sigkill_while_writing_leaves_a_folder_the_next_run_takes(earlier, tmp_path):
    new, old = tmp_path / "new", tmp_path / "old"
    _restore(old, earlier)
    for out, before in ((new, None), (old, earlier)):
        code, _ = _interrupt(out, tmp_path, "write", signal.SIGKILL)
        assert code == -signal.SIGKILL
        left = {p.name for p in out.iterdir()} - set(before or ())
        assert len(left) == 3 and all(R._own_temp(out / n) for n in left), left  # the flushed temporaries
        if before is not None:
            assert {n: d for n, d in _snapshot(out).items() if n in before} == before
        code, stdout, err = _run(out, tmp_path)  # the next run: takes its own folder, cleans up
        assert code == 0, err
        assert sorted(p.name for p in out.iterdir()) == sorted(R.FILES)
        assert "records" in stdout
