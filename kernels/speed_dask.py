"""``precision-bench speed --dask``: fit + distinct + measure of a Zarr array on a
``distributed.LocalCluster`` of 1 and 2 worker processes, against the in-memory path.

The benchmark writes its own store (``--log2 30``: 2**30 uint16 values, 2 GiB, in
chunks of 2**24 elements = 32 MiB; values a fixed-seed 12-bit sensor signal), then for
each worker count starts a new cluster, runs

    kernels.fit(x, "minmax")  ->  kernels.distinct(x)  ->  kernels.measure(x, "minmax", output_dtype="float16")

on the dask array and reads each worker's peak resident memory (``ru_maxrss`` of the
worker process, which lives only for this configuration).  The in-memory row runs the
same three calls on the array loaded whole, in a new process, whose peak memory is that
process's.  A worker's peak is bounded by its chunks in flight (a few chunks of 32 MiB
plus the histogram partials), not by the array: the table shows both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHUNK_LOG2 = 24


def make_store(path: str, log2: int, chunk_log2: int = CHUNK_LOG2) -> None:
    """A uint16 Zarr array of 2**log2 values in chunks of 2**chunk_log2: a fixed-seed
    12-bit signal (a slow ramp plus noise, as sensor counts), written chunk by chunk."""
    import dask.array as da
    import numpy as np

    n, c = 1 << log2, 1 << min(chunk_log2, log2)

    def block(block_info=None):
        lo = block_info[None]["array-location"][0][0]
        rng = np.random.default_rng(lo // c)
        ramp = (np.arange(lo, lo + c, dtype=np.float64) * (2048.0 / n)).astype(np.int64)
        return np.clip(ramp + rng.normal(1024, 300, c).astype(np.int64), 0, 4095).astype(np.uint16)

    x = da.map_blocks(block, chunks=((c,) * (n // c),), dtype=np.uint16)
    x.to_zarr(path, overwrite=True)


def _steps(x) -> dict:
    import kernels

    out = {}
    t = time.perf_counter()
    kernels.fit(x, "minmax")
    out["fit_s"] = time.perf_counter() - t
    t = time.perf_counter()
    d = kernels.distinct(x)
    out["distinct_s"] = time.perf_counter() - t
    t = time.perf_counter()
    r = kernels.measure(x, "minmax", output_dtype="float16", repeat=1)
    out["measure_s"] = time.perf_counter() - t
    out["distinct_in"], out["distinct_out"] = len(d), int(r.distinct_out)
    out["total_s"] = out["fit_s"] + out["distinct_s"] + out["measure_s"]
    return out


def _peak_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_distributed(path: str, workers: int, threads: int) -> dict:
    import dask.array as da
    from distributed import Client, KilledWorker, LocalCluster

    try:
        with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=None,
                          memory_limit=0) as cluster, Client(cluster) as client:
            client.run(lambda: __import__("kernels"))  # the import is not the work
            out = _steps(da.from_zarr(path))
            out["peak_mib_per_worker"] = max(client.run(_peak_mib).values())
    except KilledWorker as e:  # a worker process died (out of memory, killed) on every retry
        raise ChildFailed(f"a worker process of the {workers}-worker LocalCluster", None, str(e), memory=True) from None
    return out


def run_in_memory(path: str) -> dict:
    """The in-memory path in a new process (its peak memory is its own)."""
    code = ("import json, time, zarr, kernels, kernels.speed_dask as s\n"
            f"t = time.perf_counter(); x = zarr.open({path!r}, mode='r')[:]; load = time.perf_counter() - t\n"
            "out = s._steps(x); out['load_s'] = load; out['peak_mib_per_worker'] = s._peak_mib()\n"
            "print(json.dumps(out))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip():
        raise ChildFailed("the in-memory process", done.returncode, done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


class ChildFailed(RuntimeError):
    """A process of the benchmark failed: its exit status and its error's last line
    (the CLI reports it on one line, status 2)."""

    def __init__(self, who: str, status: int | None, stderr: str = "", memory: bool = False):
        lines = [s for s in (stderr or "").strip().splitlines() if s.strip()]
        why = lines[-1].strip()[:300] if lines else "no error message"
        memory = memory or "MemoryError" in why or status in (-9, 137)  # SIGKILL: the kernel's OOM killer
        status = "" if status is None else f" (exit status {status})"
        hint = "; a smaller store needs less memory: --max-log2 26" if memory else ""
        super().__init__(f"{who} failed{status}: {why}{hint}")


def main(log2: int = 30, workers=(1, 2), directory: str | None = None, keep: bool = False) -> list[dict]:
    cpus = os.cpu_count() or 1
    tmp = tempfile.mkdtemp(prefix="precision-bench-dask-", dir=directory)
    path = str(Path(tmp) / "sensor.zarr")
    try:
        t = time.perf_counter()
        make_store(path, log2)
        print(f"wrote {path}: 2**{log2} uint16 values ({(2 << log2) / 2**30:.2f} GiB), chunks of 2**{min(CHUNK_LOG2, log2)}, "
              f"in {time.perf_counter() - t:.1f} s", flush=True)
        rows = [dict(run_in_memory(path), who="in memory (one process)")]
        for w in workers:
            rows.append(dict(run_distributed(path, w, max(cpus // w, 1)), who=f"LocalCluster {w} worker process(es)"))
    finally:
        if not keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    base = rows[0]["total_s"]
    print(f"fit + distinct + measure(minmax -> float16), n=2**{log2} uint16, cpus={cpus}; x = time / in-memory time")
    print(f"  {'who':34s} {'fit s':>7s} {'distinct s':>10s} {'measure s':>9s} {'total s':>8s} {'x':>6s} {'peak MiB/worker':>15s}")
    for r in rows:
        print(f"  {r['who']:34s} {r['fit_s']:7.2f} {r['distinct_s']:10.2f} {r['measure_s']:9.2f} {r['total_s']:8.2f} "
              f"{r['total_s'] / base:6.2f} {r['peak_mib_per_worker']:15.0f}")
    same = {(r["distinct_in"], r["distinct_out"]) for r in rows}
    print(f"  distinct_in / distinct_out: {'equal in every row' if len(same) == 1 else 'DIFFER: ' + str(sorted(same))}"
          + (f"; in-memory load {rows[0]['load_s']:.2f} s (not in its total)" if "load_s" in rows[0] else ""))
    return rows
