"""Compile the report's kernels on every core before it measures (layer 6).

On a fresh install most of a report's time is numba compiling the kernels its
records touch, one after another on one core.  Compiling needs no quiet
machine, timing does: so before measuring, :func:`warm_up` runs every record of
the suite once in ``workers`` worker processes (spawned, numba's disk cache
shared through the environment), on the real data but with the timed pass cut
to a few thousand elements and few exact points, so a worker's time is mostly
compiling.  The report then measures on one quiet process with every kernel
loaded from the disk cache.  Nothing a worker computes is kept; a worker's
failure only loses its warm-up (the report then compiles that kernel itself).

Streamed domains (every float32 of [0, 1]) are left out: their sweep is the
measurement itself.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed

from ._jit import SERIAL_MAX

WARM_TIMING = SERIAL_MAX + 1  # elements of a worker's timed pass: just enough for the parallel compilation
WARM_EXACT_POINTS = 256
WARM_ROWS_MAX = 1 << 20  # elements of a large array a worker keeps (leading rows)


def _load(spec: tuple):
    from . import datasets
    from .domain import domain

    kind = spec[0]
    if kind == "domain":
        return domain(*spec[1:])
    if kind == "dataset":
        return datasets.load(spec[1]).data
    if kind == "lazy":  # a Zarr store or a set of files: its leading rows, as the report measures them (dask)
        from .sources import open_source

        return open_source(spec[1], spec[2])
    from .audit import load_file

    return load_file(spec[1], spec[2])


def _quiet_worker():
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the report's to handle: it stops the workers


def _warm_source(spec: tuple, axis, name: str, variants: list) -> int:
    """In a worker: every variant of one source, once (module doc)."""
    import importlib

    from . import datasets
    from .domain import Domain

    from .report import measure_variant

    M = importlib.import_module(f"{__package__}.measure")  # the module: kernels.measure is also the function

    try:
        x = _load(spec)
    except datasets.Unavailable:
        return 0, 0
    if isinstance(x, Domain) and x.size > M.MATERIALIZE_LIMIT:
        return 0, 0
    if not isinstance(x, Domain) and x.ndim and x.size > WARM_ROWS_MAX:
        # leading rows only: the same dtype and trailing shape compile the same kernels,
        # without repeating the report's full passes over a large --data file
        x = x[: max(1, WARM_ROWS_MAX // max(1, x.size // x.shape[0]))]
    before = _compiled()
    timing_min, M.TIMING_MIN = M.TIMING_MIN, WARM_TIMING  # restored: a caller in this process times as before
    try:
        for v in variants:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                measure_variant(x, v, axis=axis, repeat=1, exact_points=WARM_EXACT_POINTS, name=name)
    finally:
        M.TIMING_MIN = timing_min
    return len(variants), _compiled() - before


def _warm_section(name: str, quick: bool) -> tuple[int, int]:
    """In a worker: the report's library-conventions or model-in-the-loop section, result dropped."""
    import importlib

    before = _compiled()
    mod, fn = {"conventions": ("report_presets", "run_conventions"), "sensitivity": ("report_sensitivity", "run_sensitivity")}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(importlib.import_module(f"{__package__}.{mod}"), fn)(quick)
    return 0, _compiled() - before


def _compiled() -> int:
    """How many kernel specialisations this process compiled (not loaded from the disk cache)."""
    import sys

    from ._jit import Kernel

    n = 0
    for name, mod in list(sys.modules.items()):
        if name.startswith("kernels."):
            for v in list(vars(mod).values()):
                if isinstance(v, Kernel):
                    n += sum(sum(d.stats.cache_misses.values()) for d in (v.serial, v.parallel))
    return n


def warm_up(plan, workers: int | None = None, on_done=None, sections: tuple = (), quick: bool = False) -> int:
    """Warm every source of ``plan`` (:func:`kernels.report.suite`'s list) that
    has a ``spec``, in ``workers`` processes (default: one per CPU, at most one
    per source), and the report ``sections`` ("conventions", "sensitivity") each
    as one task; ``on_done(n)`` after each task with its variant count.
    When the first source to finish compiled nothing (the disk cache is warm)
    the rest are cancelled.  Returns the number of variants warmed.  Ctrl-C
    stops the workers and propagates."""
    tasks = [(src.spec, src.axis, src.name, list(variants)) for src, variants in plan if src.spec is not None]
    if not tasks:
        return 0
    workers = workers or min(os.cpu_count() or 1, len(tasks) + len(sections))
    if workers < 2:
        return 0  # one core (or one source): warming first would only add the workers' start-up
    done = 0
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that holds threads
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_quiet_worker)
    try:
        # the largest sources first, so no worker is left with a long one at the end
        futures = [pool.submit(_warm_section, name, quick) for name in sections]  # the longest tasks first
        futures += [pool.submit(_warm_source, *t) for t in sorted(tasks, key=lambda t: -len(t[3]))]
        first = True
        for f in as_completed(futures):
            try:
                n, compiled = f.result()
            except Exception:  # noqa: BLE001  a failed warm-up costs only its compile time later
                n, compiled = 0, 1
            done += n
            if on_done:
                on_done(n)
            if first and not compiled:
                break  # the first source found every kernel in the disk cache: it is warm, stop here
            first = False
    except BaseException:
        _stop(pool)
        raise
    _stop(pool)
    return done


def _stop(pool) -> None:
    """Cancel what is queued and end the workers now (a warm-up result is never needed)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(5)
