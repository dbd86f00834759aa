"""Cold start, as a new user meets it (``precision-bench speed --cold``).

A fresh install compiles every kernel specialisation its first calls touch
(numba's disk cache starts empty).  Each case here runs in a new Python process
with an empty ``NUMBA_CACHE_DIR``, timed end to end (interpreter start, import,
compile, run); then once more on the cache the first run filled (warm), so the
difference is the compile time.  Goals (issue 15): the README's example
<= 5 s, any single first ``fit`` or ``transform`` <= 1.5 s, ``report --quick``
<= 60 s and the full report <= 3 min.

How the kernels keep this short: :mod:`kernels._jit` (a serial compilation for
inputs of at most 65,536 elements: a third of a parallel compile) and one array
layout per accumulator (:mod:`kernels.accumulators`).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time

# The README's "Use" example, verbatim (tests/test_readme.py checks they agree).
README_EXAMPLE = '''\
import numpy as np, kernels

x = np.arange(256, dtype=np.uint8)
y = kernels.transform(x, "minmax", output_dtype="float16")          # fit on x, then apply
train = np.random.default_rng(0).normal(5, 2, (1000, 4))
p = kernels.fit(train, "standardize", axis=0, accumulator="kahan", acc_dtype="float32")
z = kernels.transform(train[:10], "standardize", params=p, compute_dtype="float16", output_dtype="bfloat16")
back = kernels.inverse_transform(z, "standardize", p, output_dtype="float32")
h = kernels.cast(train, "float16", out=np.empty(train.shape, np.float16))
'''

N = 1 << 24  # elements of the single-call cases: large enough for the parallel kernels
_MAKE = "import numpy as np, kernels, ml_dtypes; rng = np.random.default_rng(0)\n"
_U8 = f"x = rng.integers(0, 256, {N}, dtype=np.uint8)\n"
_F32 = f"x = rng.normal(0, 1000, {N}).astype(np.float32)\n"


@dataclasses.dataclass(frozen=True)
class ColdCase:
    name: str
    setup: str  # untimed inside the process (data), after import
    code: str  # the first call(s), timed inside the process
    goal_s: float | None  # the goal, None: no goal
    argv: tuple = ()  # a command instead of code (the CLI cases)
    goal_on: str = "calls"  # "calls": the timed calls alone; "process": end to end


CASES = [
    ColdCase("import kernels", "", "import kernels", None),
    ColdCase("README example", "", README_EXAMPLE, 5.0, goal_on="process"),
    ColdCase("transform u8->f16 minmax", _U8, "kernels.transform(x, 'minmax', output_dtype='float16')", 1.5),
    ColdCase("transform f32->f16 minmax", _F32, "kernels.transform(x, 'minmax', output_dtype='float16')", 1.5),
    ColdCase("fit f32 standardize", _F32, "kernels.fit(x, 'standardize')", 1.5),
    ColdCase("fit u8 minmax", _U8, "kernels.fit(x, 'minmax')", 1.5),
    ColdCase("cast f32->f16", _F32, "kernels.cast(x, 'float16')", 1.5),
    ColdCase("cast f32->bf16", _F32, "kernels.cast(x, 'bfloat16')", 1.5),
    ColdCase(
        "imagenet pipeline, one image",
        "x = rng.integers(0, 256, (1, 224, 224, 3), dtype=np.uint8)\n"
        "p = kernels.pipeline('torchvision.ToDtype(dtype=float32, scale=True)', "
        "'torchvision.Normalize(mean=imagenet, std=imagenet)', 'cast(output_dtype=float16)')\n",
        "p.transform(x)",
        None,
    ),
]
REPORT_CASES = [
    ColdCase("report --quick", "", "", 60.0, ("report", "--quick"), "process"),
    ColdCase("report (full)", "", "", 180.0, ("report",), "process"),
]


def _script(case: ColdCase) -> str:
    # the timed part starts before `import kernels` unless the setup needs kernels first
    if case.name == "import kernels":
        return "import time; t = time.perf_counter()\nimport kernels\nprint('TIMED', time.perf_counter() - t)\n"
    setup = case.setup if case.setup else ""
    if setup:
        return f"{_MAKE}{setup}import time; t = time.perf_counter()\n{case.code}\nprint('TIMED', time.perf_counter() - t)\n"
    return f"import time; t = time.perf_counter()\n{case.code}\nprint('TIMED', time.perf_counter() - t)\n"


def run_case(case: ColdCase, cache_dir: str, out_dir: str | None = None) -> tuple[float, float | None]:
    """(process seconds, seconds of the timed calls inside it) for one run of
    ``case`` with numba's cache in ``cache_dir``."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    if case.argv:
        cmd = [sys.executable, "-m", "kernels", *case.argv, "--out", out_dir, "--force"]
    else:
        cmd = [sys.executable, "-c", _script(case)]
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise RuntimeError(f"cold case {case.name!r} failed (exit {res.returncode}): {res.stderr.strip()[-400:]}")
    inner = [float(line.split()[1]) for line in res.stdout.splitlines() if line.startswith("TIMED ")]
    return wall, (inner[-1] if inner else None)


def measure_cold(cases=None, report: bool = False) -> list[dict]:
    """Each case cold (a new empty cache directory) then warm (the same
    directory, filled by the cold run)."""
    rows = []
    for case in list(cases or CASES) + (REPORT_CASES if report else []):
        with tempfile.TemporaryDirectory(prefix="pb-cold-") as cache, tempfile.TemporaryDirectory(prefix="pb-out-") as out:
            cold, cold_in = run_case(case, cache, out)
            warm, warm_in = run_case(case, cache, out)
        judged = cold if case.goal_on == "process" else cold_in
        rows.append({"case": case.name, "cold_s": cold, "cold_calls_s": cold_in, "warm_s": warm,
                     "warm_calls_s": warm_in, "goal_s": case.goal_s, "goal_on": case.goal_on,
                     "goal_met": None if case.goal_s is None else bool(judged <= case.goal_s)})
    return rows


def main(report: bool = False) -> list[dict]:
    from rich.console import Console
    from rich.table import Table

    rows = measure_cold(report=report)
    table = Table(title="precision-bench speed --cold: each case in a new process, numba cache empty, then warm")
    for col in ("case", "cold s", "first calls s", "warm s", "warm calls s", "compile s", "goal", ""):
        table.add_column(col, justify="left" if col in ("case", "") else "right")
    for r in rows:
        ok = "" if r["goal_met"] is None else ("met" if r["goal_met"] else "MISSED")
        table.add_row(
            r["case"], f"{r['cold_s']:.2f}", "-" if r["cold_calls_s"] is None else f"{r['cold_calls_s']:.2f}",
            f"{r['warm_s']:.2f}", "-" if r["warm_calls_s"] is None else f"{r['warm_calls_s']:.2f}",
            f"{r['cold_s'] - r['warm_s']:.2f}",
            "" if r["goal_s"] is None else f"{'process' if r['goal_on'] == 'process' else 'calls'} <= {r['goal_s']:g} s", ok,
        )
    console = Console(soft_wrap=True, width=max(Console().width, 150))
    console.print(table)
    console.print(f"cold s: the whole process (interpreter, import, compile, run) with an empty cache; "
                  f"first calls s: the calls alone, after import and data; each goal says which it judges; "
                  f"{os.cpu_count()} cpus, python {sys.version.split()[0]}")
    return rows
