"""The asv suite: `asv check`, quick runs, and proof that `asv compare` flags a
precision regression planted in a second commit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASV = [sys.executable, "-m", "asv"]
# the planted regression: float16 encoding by truncation (the low 13 float32
# significand bits cleared) instead of round-to-nearest-even
ROUNDING = "        return lambda codec, v: f32_to_f16_bits(v)\n"
TRUNCATION = "        return lambda codec, v: f32_to_f16_bits(f32_from_bits(f32_bits(v) & np.uint32(0xFFFFE000)))\n"


def run(cmd, cwd, env, timeout=900) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{cmd}\n{res.stdout}\n{res.stderr}"
    return res.stdout


def git(cwd, *args) -> str:
    return run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", *args], cwd, None).strip()


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A clone of this repository, an isolated HOME for asv's machine file, and
    ASV_PYTHONPATH so `--python=same` benchmarks import the clone's checkout."""
    if not (ROOT / ".git").exists():
        pytest.fail("the asv tests need the project as a git checkout (CI clones it)")
    base = tmp_path_factory.mktemp("asv")
    repo = base / "repo"
    git(base, "clone", "--quiet", str(ROOT), str(repo))
    home = base / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "ASV_PYTHONPATH": str(repo)}
    env.pop("PYTHONPATH", None)
    run([*ASV, "machine", "--yes", "--machine", "ci"], repo, env)
    return repo, env


def test_asv_check(clone):
    repo, env = clone
    out = run([*ASV, "check", "--python=same"], repo, env)
    assert "No problems found" in out


def test_asv_compare_flags_planted_regression(clone):
    repo, env = clone
    first = git(repo, "rev-parse", "HEAD")
    codecs = repo / "kernels" / "codecs.py"
    src = codecs.read_text()
    assert src.count(ROUNDING) == 1, "the float16 encode line moved: update the planted regression"
    codecs.write_text(src.replace(ROUNDING, TRUNCATION))
    git(repo, "commit", "--quiet", "-am", "plant: float16 encoding by truncation")
    second = git(repo, "rev-parse", "HEAD")
    bench = "TrackDomainUint8.track_max_ulp_error_plus_1"
    for commit in (first, second):  # a quick asv run of each commit, in this environment
        git(repo, "checkout", "--quiet", commit)
        run([*ASV, "run", "--python=same", "--quick", "--bench", bench, "--set-commit-hash", commit], repo, env)
    out = run([*ASV, "compare", "--split", "--factor", "1.1", first, second], repo, env)
    assert "Benchmarks that have got worse" in out, out
    # asv marks a regression with "+" in the Change column
    flagged = [line for line in out.splitlines() if line.startswith("| +") and "track_max_ulp_error_plus_1" in line]
    assert {line.split("(")[-1].split(")")[0] for line in flagged} == {
        "'minmax', 'float16'",
        "'standardize', 'float16'",
        "'scale-by-255', 'float16'",
    }, out
    # (bfloat16 and float32 outputs do not go through the float16 encoder: unchanged)
