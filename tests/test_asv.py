"""The asv suite: `asv check`, quick runs, proof that every track_ class records
its own figures, and proof that `asv compare` flags a precision regression
planted in a second commit."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import kernels as K
from kernels import datasets
from kernels.report_presets import SPECS, convention_record

ROOT = Path(__file__).resolve().parents[1]
ASV = [sys.executable, "-m", "asv"]
# the planted regression: float16 encoding by truncation (the low 13 float32
# significand bits cleared) instead of round-to-nearest-even
ROUNDING = "            return lambda codec, v: f32_to_f16_bits(v)\n"
TRUNCATION_IMPORT = "from ._bits import f32_bits, f32_from_bits\n"  # the names TRUNCATION uses
TRUNCATION = "            return lambda codec, v: f32_to_f16_bits(f32_from_bits(f32_bits(v) & np.uint32(0xFFFFE000)))\n"

# The track_ grid, written out here rather than imported from benchmarks/, so a
# class or case dropped from the suite fails the proof instead of shrinking it.
OUTPUTS = ["float16", "bfloat16", "float32"]
DOMAIN_CLASSES = {
    "TrackDomainUint8": ("uint8", 0, 255),
    "TrackDomain12bit": ("uint16", 0, 4095),
    "TrackDomainUint16": ("uint16", 0, 65535),
}
DOMAIN_TRANSFORMS = {"minmax": ("minmax", {}), "standardize": ("standardize", {}), "scale-by-255": ("scale", {"divisor": 255.0})}
LOW_OUTPUTS = ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"]
LOW_CLASSES = {
    "TrackFloat8Uint8": ("uint8", 0, 255),
    "TrackFloat8_12bit": ("uint16", 0, 4095),
    "TrackFloat8Float16Unit": ("float16", 0, 1),
}
LOW_TRANSFORMS = {"minmax": ("minmax", {}), "standardize": ("standardize", {})}
# the MX formats: each domain's values as float32, one 1-D array in value order, then mx(block=32, pad=zeros)
MX_OUTPUTS = {"MXFP8 (e4m3)": "float8_e4m3fn", "MXFP8 (e5m2)": "float8_e5m2", "MXFP6 (e2m3)": "float6_e2m3fn",
              "MXFP6 (e3m2)": "float6_e3m2fn", "MXFP4": "float4_e2m1fn"}
MX_CLASSES = {
    "TrackMXUint8": ("uint8", 0, 255),
    "TrackMX12bit": ("uint16", 0, 4095),
    "TrackMXFloat16Unit": ("float16", 0, 1),
}
MX_TRANSFORMS = {"values": "cast(output_dtype=float32)"}
REAL = ["breast_cancer", "wine", "diabetes", "camera", "astronaut"]
REAL_TRANSFORMS = {**DOMAIN_TRANSFORMS, "maxabs": ("maxabs", {})}
# TrackPresets: the report's conventions (kernels.report_presets.SPECS, the one table
# shared by report, benchmarks and this test) on these domains
PRESET_DOMAINS = {"uint8": ("uint8", 0, 255), "float16-unit": ("float16", 0, 1)}
# each track_ benchmark as a function of the Record (the table in bench_track's docstring)
METRICS = {
    "track_values_lost": lambda r: r.collisions,
    "track_max_ulp_error_plus_1": lambda r: r.max_ulp_error + 1,
    "track_info_bits_lost": lambda r: r.info_lost_bits,
    "track_roundtrip_failures": lambda r: round(r.distinct_in * (1 - r.roundtrip_exact)),
    "track_max_merged_span_in": lambda r: r.max_merged_span_in,
    "track_max_error_in": lambda r: r.max_abs_error_in,
}
GRID_SIZE = len(METRICS) * (
    len(DOMAIN_CLASSES) * len(DOMAIN_TRANSFORMS) * len(OUTPUTS) + len(LOW_CLASSES) * len(LOW_TRANSFORMS) * len(LOW_OUTPUTS)
    + len(MX_CLASSES) * len(MX_TRANSFORMS) * len(MX_OUTPUTS)
    + len(REAL) * len(REAL_TRANSFORMS) * len(OUTPUTS)
    + len(SPECS) * len(PRESET_DOMAINS)
)


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


@pytest.fixture(scope="module")
def track_results(clone):
    """asv's own results JSON after one quick run of every track_ benchmark at the
    clone's HEAD: {benchmark: {param reprs: value}} (NaN where asv skipped a case)."""
    repo, env = clone
    commit = git(repo, "rev-parse", "HEAD")
    # the clone's HEAD is this checkout's: when this checkout's code is that commit (CI's clean
    # clone), the benchmarks import it, and so share its numba cache with this test session
    # (the reference grid below compiles the same kernels) instead of compiling all into the clone
    clean = not git(ROOT, "status", "--porcelain", "--untracked-files=all", "--", "kernels", "benchmarks")
    if clean and git(ROOT, "rev-parse", "HEAD") == commit:
        env = {**env, "ASV_PYTHONPATH": str(ROOT)}
    # forkserver: one import of the suite instead of one per case (about 1.5 instead
    # of 5 minutes here); the cache keys, and so which grid each class gets, are the same
    cmd = [*ASV, "run", "--python=same", "--quick", "--launch-method", "forkserver", "--bench", "track_"]
    run([*cmd, "--set-commit-hash", commit], repo, env, timeout=1800)
    (path,) = (repo / ".asv" / "results" / "ci").glob(f"{commit[:8]}-*.json")
    data = json.loads(path.read_text())
    assert data["commit_hash"] == commit
    grid = {}
    for name, row in data["results"].items():  # asv 0.6: one row per benchmark, columns named in result_columns
        entry = dict(zip(data["result_columns"], row))
        # "result" is flat over the product of "params" (each a list of reprs), last varying fastest
        grid[name] = dict(zip(itertools.product(*entry["params"]), entry["result"]))
    return commit, grid


def _reference(source, transform, out, axis=None) -> dict:
    name, opts = transform
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rec = K.measure(source, name, output_dtype=out, axis=axis, repeat=1, **opts)
    return {bench: fn(rec) for bench, fn in METRICS.items()}


def _reference_grid() -> dict:
    """{class: {param reprs: {track_: value} or None where the case does not apply}},
    from kernels.measure called directly."""
    ref = {}
    for cls, dom in DOMAIN_CLASSES.items():
        src = K.domain(*dom)
        ref[cls] = {(repr(t), repr(o)): _reference(src, tr, o) for t, tr in DOMAIN_TRANSFORMS.items() for o in OUTPUTS}
    for cls, dom in LOW_CLASSES.items():
        src = K.domain(*dom)
        ref[cls] = {(repr(t), repr(o)): _reference(src, tr, o) for t, tr in LOW_TRANSFORMS.items() for o in LOW_OUTPUTS}
    from kernels.measure_pipeline import measure_pipeline

    for cls, dom in MX_CLASSES.items():
        values = K.domain(*dom).values()
        ref[cls] = {}
        for (t, prefix), (o, elem) in itertools.product(MX_TRANSFORMS.items(), MX_OUTPUTS.items()):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                rec = measure_pipeline(values, K.pipeline(prefix, f"mx(dtype={elem}, block=32, pad=zeros)"), repeat=1)
            ref[cls][(repr(t), repr(o))] = {bench: fn(rec) for bench, fn in METRICS.items()}
    ref["TrackRealData"] = {}
    for name in REAL:
        try:
            ds = datasets.load(name)
        except datasets.Unavailable:  # not installed: asv must have skipped it too
            ds = None
        for (t, tr), o in itertools.product(REAL_TRANSFORMS.items(), OUTPUTS):
            applies = ds is not None and (t != "scale-by-255" or ds.kind == "image")
            ref["TrackRealData"][(repr(name), repr(t), repr(o))] = _reference(ds.data, tr, o, ds.axis) if applies else None
    # the presets: None where the library refuses the input (or the preset is absent), as asv's setup does
    ref["TrackPresets"] = {}
    for label, spec in SPECS:
        for d, dom in PRESET_DOMAINS.items():
            try:
                rec = convention_record(K.pipeline(spec), d, K.domain(*dom), quick=True)
            except (TypeError, ValueError):
                rec = None
            ref["TrackPresets"][(repr(label), repr(d))] = None if rec is None else {b: fn(rec) for b, fn in METRICS.items()}
    return ref


def test_asv_records_each_track_class_its_own_figures(track_results):
    """Every value asv recorded for every track_ benchmark of every class equals
    kernels.measure's own, so no class is served another's setup_cache."""
    commit, recorded = track_results
    ref = _reference_grid()
    grids = [ref[cls] for cls in DOMAIN_CLASSES]
    # the domains' grids differ pairwise, so one grid served to two classes cannot pass
    assert all(a != b for a, b in itertools.combinations(grids, 2))
    expected = {f"bench_track.{cls}.{bench}" for cls in ref for bench in METRICS}
    assert {name for name in recorded if ".track_" in name} == expected
    checked, wrong = 0, []
    for cls, cases in ref.items():
        for bench in METRICS:
            name = f"bench_track.{cls}.{bench}"
            assert set(recorded[name]) == set(cases), name
            for key, metrics in cases.items():
                got = recorded[name][key]
                skipped = got is None or (isinstance(got, float) and math.isnan(got))
                undefined = metrics is not None and isinstance(metrics[bench], float) and math.isnan(metrics[bench])
                if skipped and undefined:  # a NaN figure (ULPs of a block format): asv records no value
                    checked += 1
                    continue
                if (skipped and metrics is not None) or (not skipped and (metrics is None or got != metrics[bench])):
                    wrong.append(f"{name}({', '.join(key)}): asv {got}, kernels.measure {None if metrics is None else metrics[bench]}")
                checked += 1
    assert not wrong, f"{len(wrong)} of {checked} differ (asv ran commit {commit[:8]}, the reference this checkout):\n" + "\n".join(wrong)
    assert checked == GRID_SIZE


def test_asv_check(clone):
    repo, env = clone
    out = run([*ASV, "check", "--python=same"], repo, env)
    assert "No problems found" in out


def test_asv_compare_flags_planted_regression(clone, track_results):
    repo, env = clone
    first, _ = track_results  # the shared run recorded every track_ benchmark of the first commit
    codecs = repo / "kernels" / "codecs" / "half.py"
    src = codecs.read_text()
    assert src.count(ROUNDING) == 1, "the float16 encode line moved: update the planted regression"
    codecs.write_text(src.replace(ROUNDING, TRUNCATION) + TRUNCATION_IMPORT)
    git(repo, "commit", "--quiet", "-am", "plant: float16 encoding by truncation")
    second = git(repo, "rev-parse", "HEAD")
    bench = "TrackDomainUint8.track_max_ulp_error_plus_1"
    run([*ASV, "run", "--python=same", "--quick", "--bench", bench, "--set-commit-hash", second], repo, env)
    out = run([*ASV, "compare", "--split", "--factor", "1.1", first, second], repo, env)
    assert "Benchmarks that have got worse" in out, out
    # asv marks a regression with "+" in the Change column
    flagged = [line for line in out.splitlines() if line.startswith("| +") and bench in line]
    assert {line.split("(")[-1].split(")")[0] for line in flagged} == {
        "'minmax', 'float16'",
        "'standardize', 'float16'",
        "'scale-by-255', 'float16'",
    }, out
    # (bfloat16 and float32 outputs do not go through the float16 encoder: unchanged)
