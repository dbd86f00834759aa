"""The README's "Try it on your own data" block runs as written, in a fresh directory:
each example creates the files it uses."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(heading: str) -> list[str]:
    text = README.read_text()
    section = text[text.index(heading):]
    body = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in body.splitlines() if line.strip()]


def test_try_it_block_runs_as_written(tmp_path):
    lines = _block("## Try it on your own data")
    assert any(line.startswith("python -c") for line in lines) and any(line.startswith("precision-bench") for line in lines)
    env = {**os.environ, "PYTHONPATH": str(README.parent), "COLUMNS": "160"}
    for line in lines:
        argv = shlex.split(line)
        if argv[0] == "python":
            argv[0] = sys.executable
        else:
            assert argv[0] == "precision-bench", line
            argv = [sys.executable, "-m", "kernels", *argv[1:]]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        if argv[1] == "-m":
            assert done.stdout.strip(), line
    assert {p.name for p in tmp_path.iterdir()} >= {"pixels.npy", "photo.tif"}
    # the 12-bit file is recognised as such
    audit = subprocess.run([sys.executable, "-m", "kernels", "audit", "pixels.npy"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=900)
    assert "4095" in audit.stdout


def test_low_precision_block_runs_as_written(tmp_path):
    """The "Formats of 8 bits and below" block: every command succeeds and prints."""
    lines = _block("## Formats of 8 bits and below")
    assert any("--allow mx" in line for line in lines) and any("scaled_cast(" in line for line in lines)
    env = {**os.environ, "PYTHONPATH": str(README.parent), "COLUMNS": "160"}
    for line in lines:
        argv = shlex.split(line)
        argv = [sys.executable, *argv[1:]] if argv[0] == "python" else [sys.executable, "-m", "kernels", *argv[1:]]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        assert done.stdout.strip() or "np.save" in line, line
    assert (tmp_path / "act.npy").exists()


def test_cold_start_benchmark_times_the_readme_example_as_written():
    """``speed --cold`` times README's "Use" example: the two texts agree."""
    from kernels.speed_cold import README_EXAMPLE

    text = README.read_text()
    section = text[text.index("## Use"):]
    body = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert body == README_EXAMPLE
    exec(compile(README_EXAMPLE, "README example", "exec"), {})  # and it runs
