"""How cost grows with size (``precision-bench speed --scale``).

For each size ``2**k`` (k from ``min_log2`` to ``max_log2`` by ``step``) and each
input dtype, five jobs are timed, each interleaved with its memory probe at the
same size in the same process:

* ``apply``: ``transform(x, "minmax", params=..., formula="sub_mul", out=out)``,
  params fitted beforehand; the probe is the fastest of
  :func:`kernels.roofline.probes` moving the same bytes (input + output);
* ``fit minmax`` and ``fit standardize``: :func:`kernels.fit`;
* ``distinct``: :func:`kernels.distinct`;
* ``measure``: ``measure(x, "minmax", output_dtype="float16")``, the whole call
  (fit, apply, distinct counts, errors against the exact value).  Below 2**24
  elements ``measure`` times its apply pass on the values repeated to 2**24,
  so its small sizes pay a fixed cost: that is the cost a user feels.

The four reductions are compared with a parallel read of the input
(:func:`kernels.roofline.read_probe` over the input's own bytes).  ``ratio`` is
our elements/s over the probe's elements/s at the same size: a drop in both
columns is the memory hierarchy, a drop in ``ratio`` alone is ours.

A sample is ``inner`` calls, enough to exceed :data:`MIN_SAMPLE` seconds; the
figure is the best of ``repeat`` interleaved rounds, fewer when a job's rounds
pass ``budget`` seconds (large sorts), and the row says how many.

Inputs are a random block of 2**20 values tiled to ``n`` (cheap at 2**30; the
data has at most 2**20 distinct values, which matters to ``distinct`` on floats).

Memory: bytes needed per job are the input, the output and probe buffers
(exact) plus the job's own working set per element, calibrated once per dtype
by the peak resident set of one run at 2**24 (``/proc/self/clear_refs`` and
``VmHWM``; tracemalloc where those are unavailable).  A job whose need times
:data:`MARGIN` exceeds ``MemAvailable`` stops there, with
``stopped at 2^k: needs X GiB, Y GiB available``; the run ends when every job
has stopped.

The knee (:func:`knee`): the smallest size at which apply's elements/s falls
below :data:`KNEE_DROP` of its best at any smaller size, printed with its bytes
against the L2 and L3 sizes read from ``/sys/devices/system/cpu/cpu0/cache``.
"""

from __future__ import annotations

import dataclasses
import math
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

from .codecs import REGISTRY
from .measure import measure
from .metrics import distinct
from .roofline import probes, read_probe
from .stats import fit
from .transforms import transform

JOBS = ("apply", "fit minmax", "fit standardize", "distinct", "measure")
DEFAULT_INPUTS = ("uint8", "uint16", "float32")
MIN_SAMPLE = 0.02  # seconds per timed sample: small sizes repeat the call
KNEE_DROP = 0.6  # the knee: apply below this fraction of its best at smaller sizes
MARGIN = 1.25  # a job runs when need * MARGIN <= MemAvailable
CALIBRATE_LOG2 = 24
BLOCK = 1 << 20
GIB = 1 << 30
CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")


@dataclasses.dataclass
class Row:
    input_dtype: str
    log2: int
    job: str
    seconds: float  # best seconds per call
    elements_per_s: float
    probe: str
    probe_elements_per_s: float
    rounds: int
    inner: int

    @property
    def n(self) -> int:
        return 1 << self.log2

    @property
    def ratio(self) -> float:
        """Our elements/s over the probe's at the same size."""
        return self.elements_per_s / self.probe_elements_per_s


@dataclasses.dataclass
class Stop:
    input_dtype: str
    log2: int
    job: str
    need: int
    available: int

    def message(self) -> str:
        return (f"stopped at 2^{self.log2}: needs {self.need / GIB:.3g} GiB, {self.available / GIB:.3g} GiB available "
                f"({self.input_dtype} {self.job}; margin {MARGIN}x)")


# ---------------------------------------------------------------- the machine


def cache_sizes(root: Path = CACHE_DIR) -> dict[str, int]:
    """{"L1d": bytes, "L2": bytes, "L3": bytes, ...} of cpu0, empty where unreadable."""
    out = {}
    for d in sorted(root.glob("index*")):
        try:
            level = (d / "level").read_text().strip()
            kind = (d / "type").read_text().strip()
            size = (d / "size").read_text().strip()
        except OSError:
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1:], 1)
        key = f"L{level}" + {"Data": "d", "Instruction": "i"}.get(kind, "")
        out[key] = int(size.rstrip("KMG")) * mult
    return out


def mem_available() -> int:
    """MemAvailable of /proc/meminfo in bytes (0 when unreadable)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _status(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_extra_bytes(fn) -> int:
    """Peak bytes ``fn()`` adds to the process: the resident-set high-water mark
    reset before (numba's allocations included), else tracemalloc's peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = _status("VmRSS")
        fn()
        peak = _status("VmHWM")
        if before is not None and peak is not None:
            return max(peak - before, 0)
    except OSError:
        pass
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------- inputs and jobs


def make_input(n: int, input_dtype: str, seed: int = 0) -> np.ndarray:
    """``n`` values of ``input_dtype``: a random block of :data:`BLOCK` values tiled."""
    row = REGISTRY[input_dtype]
    rng = np.random.default_rng(seed)
    b = min(n, BLOCK)
    if input_dtype == "uint16":  # sensor-like counts, as in kernels.speed
        block = rng.normal(2000, 400, b).clip(0, 65535).astype(np.uint16)
    elif row.is_integer:
        info = np.iinfo(row.dtype)
        block = rng.integers(info.min, int(info.max) + 1, b, dtype=row.dtype)
    else:
        block = rng.normal(0, 1000, b).astype(np.float32).astype(row.dtype)
    x = np.empty(n, row.dtype)
    for i in range(0, n, b):
        x[i:i + b] = block[: n - i]
    return x


def _read_probe(x):
    words = x.view(np.uint64) if x.nbytes % 8 == 0 else np.ones(max(x.nbytes // 8, 1), np.uint64)
    return {"parallel read": lambda: read_probe(words)}


def setup(job: str, x: np.ndarray, output_dtype: str = "float32"):
    """(run, {probe name: callable}, buffers): ``run()`` does the job once on ``x``;
    ``buffers`` keeps alive what the job and probes were given."""
    if job == "apply":
        params = fit(x, "minmax")
        out = np.empty(x.shape, REGISTRY[output_dtype].dtype)

        def run():
            transform(x, "minmax", params=params, formula="sub_mul", output_dtype=output_dtype, out=out)

        return run, probes(x.nbytes, out.nbytes), out
    if job == "fit minmax":
        return (lambda: fit(x, "minmax")), _read_probe(x), None
    if job == "fit standardize":
        return (lambda: fit(x, "standardize")), _read_probe(x), None
    if job == "distinct":
        return (lambda: distinct(x)), _read_probe(x), None
    if job == "measure":
        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                measure(x, "minmax", output_dtype="float16")

        return run, _read_probe(x), None
    raise ValueError(f"job must be one of {', '.join(JOBS)}, got {job!r}")


def buffer_bytes(job: str, n: int, itemsize: int, output_dtype: str = "float32") -> int:
    """Bytes :func:`setup` allocates for ``job`` besides the input (output and probe buffers)."""
    if job != "apply":
        return 0
    b_in, b_out = n * itemsize, n * REGISTRY[output_dtype].itemsize
    half = max((b_in + b_out) // 16, 1)
    src, dst = max(half, b_in // 8), max(half, b_out // 8)
    return b_out + 8 * (src + dst)


def _time(fn, inner: int) -> float:
    t = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t) / inner


def _inner(fn, min_sample: float) -> int:
    t = _time(fn, 1)
    return max(1, math.ceil(min_sample / t)) if t > 0 else 1000


def time_interleaved(run, ps: dict, repeat: int, min_sample: float = MIN_SAMPLE, budget: float = 10.0):
    """(best seconds per call of ``run``, fastest probe name, its best seconds, rounds, inner):
    rounds alternate ``run`` and every probe; each sample repeats its call to exceed
    ``min_sample``; rounds end after ``repeat`` or once ``budget`` seconds are spent."""
    run()  # compiles, faults pages in
    inner = _inner(run, min_sample)
    p_inner = {}
    for name, p in ps.items():
        p()
        p_inner[name] = _inner(p, min_sample)
    best = math.inf
    best_p = dict.fromkeys(ps, math.inf)
    start = time.perf_counter()
    rounds = 0
    while rounds < max(1, repeat):
        best = min(best, _time(run, inner))
        for name, p in ps.items():
            best_p[name] = min(best_p[name], _time(p, p_inner[name]))
        rounds += 1
        if time.perf_counter() - start > budget:
            break
    name = min(best_p, key=best_p.get)
    return best, name, best_p[name], rounds, inner


def calibrate(input_dtype: str, jobs=JOBS, log2: int = CALIBRATE_LOG2, output_dtype: str = "float32") -> dict[str, float]:
    """{job: working-set bytes per element beyond the input and :func:`buffer_bytes`},
    from the peak of one run at ``2**log2`` (after a warm-up at 2**12 that compiles)."""
    n = 1 << log2
    x = make_input(n, input_dtype)
    small = make_input(1 << 12, input_dtype)
    out = {}
    for job in jobs:
        setup(job, small, output_dtype)[0]()  # compile first: the JIT's memory is not the job's
        run, _, keep = setup(job, x, output_dtype)
        if job == "apply":
            run()  # faults in the output's pages: buffer_bytes counts them
        out[job] = peak_extra_bytes(run) / n
        del run, keep
    return out


# ---------------------------------------------------------------- the sweep


def knee(rows: list[Row], drop: float = KNEE_DROP) -> Row | None:
    """The smallest-size ``apply`` row whose elements/s is below ``drop`` times
    the best of the smaller sizes, or None."""
    best = 0.0
    for r in sorted((r for r in rows if r.job == "apply"), key=lambda r: r.log2):
        if best and r.elements_per_s < drop * best:
            return r
        best = max(best, r.elements_per_s)
    return None


def _gib(b: float) -> str:
    return f"{b / GIB:.3g} GiB" if b >= GIB else f"{b / (1 << 20):.3g} MiB" if b >= 1 << 20 else f"{b / 1024:.3g} KiB"


def scale(
    input_dtypes=DEFAULT_INPUTS,
    *,
    min_log2: int = 10,
    max_log2: int = 30,
    step: int = 2,
    repeat: int = 5,
    jobs=None,
    output_dtype: str = "float32",
    budget: float = 8.0,
    min_sample: float = MIN_SAMPLE,
    calibrate_log2: int | None = None,
    threads: int | None = None,
    echo=print,
) -> tuple[list[Row], list[Stop]]:
    """Time every job at every size for every input dtype (the module docstring);
    ``echo`` gets each line as it is measured; ``jobs=None`` is :data:`JOBS`,
    ``calibrate_log2=None`` is :data:`CALIBRATE_LOG2`; ``threads`` sets numba's
    thread count for the run (None: as it is).  Returns (rows, stops)."""
    import numba

    if threads is None:
        return _scale(input_dtypes, min_log2, max_log2, step, repeat, jobs, output_dtype, budget, min_sample, calibrate_log2, echo)
    if not 1 <= threads <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"threads must be between 1 and {numba.config.NUMBA_NUM_THREADS}, got {threads}")
    old = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        return _scale(input_dtypes, min_log2, max_log2, step, repeat, jobs, output_dtype, budget, min_sample, calibrate_log2, echo)
    finally:
        numba.set_num_threads(old)


def _scale(input_dtypes, min_log2, max_log2, step, repeat, jobs, output_dtype, budget, min_sample, calibrate_log2, echo):
    jobs = JOBS if jobs is None else tuple(jobs)
    calibrate_log2 = CALIBRATE_LOG2 if calibrate_log2 is None else calibrate_log2
    for name in input_dtypes:
        if name not in REGISTRY:
            raise ValueError(f"input dtype {name!r} is not in the registry; choose from {', '.join(REGISTRY)}")
    for job in jobs:
        if job not in JOBS:
            raise ValueError(f"job must be one of {', '.join(JOBS)}, got {job!r}")
    if not 1 <= min_log2 <= max_log2:
        raise ValueError(f"need 1 <= min_log2 <= max_log2, got {min_log2} and {max_log2}")
    if step < 1:
        raise ValueError(f"step must be at least 1, got {step}")
    caches = cache_sizes()
    import numba

    echo("caches (cpu0): " + (", ".join(f"{k} {_gib(v)}" for k, v in caches.items()) or "unreadable")
         + f"; MemAvailable {_gib(mem_available())}; numba threads {numba.get_num_threads()}")
    rows: list[Row] = []
    stops: list[Stop] = []
    header = f"{'dtype':8} {'n':>6} {'job':16} {'ms/call':>10} {'M elem/s':>10} {'probe M elem/s':>15} {'ratio':>7}  probe (rounds x inner)"
    for dt in input_dtypes:
        itemsize = REGISTRY[dt].itemsize
        per_elem = calibrate(dt, jobs, calibrate_log2, output_dtype)
        echo(f"\n{dt}: working set per element at 2^{calibrate_log2} (beyond input, output and probes): "
             + ", ".join(f"{j} {b:.3g} B" for j, b in per_elem.items()))
        echo(header)
        live = list(jobs)
        for k in range(min_log2, max_log2 + 1, step):
            n = 1 << k
            avail = mem_available()
            for job in list(live):
                need = n * itemsize + buffer_bytes(job, n, itemsize, output_dtype) + per_elem[job] * n
                if need * MARGIN > avail:
                    s = Stop(dt, k, job, int(need), avail)
                    stops.append(s)
                    live.remove(job)
                    echo(s.message())
            if not live:
                break
            x = make_input(n, dt)
            for job in live:
                run, ps, keep = setup(job, x, output_dtype)
                sec, pname, psec, rounds, inner = time_interleaved(run, ps, repeat, min_sample, budget)
                r = Row(dt, k, job, sec, n / sec, pname, n / psec, rounds, inner)
                rows.append(r)
                del run, ps, keep
                echo(f"{dt:8} {'2^' + str(k):>6} {job:16} {sec * 1e3:10.4g} {r.elements_per_s / 1e6:10.4g} "
                     f"{r.probe_elements_per_s / 1e6:15.4g} {r.ratio:7.3f}  {pname} ({rounds} x {inner})")
            del x
        echo("")
        for line in summary([r for r in rows if r.input_dtype == dt], caches, output_dtype):
            echo(line)
    return rows, stops


def summary(rows: list[Row], caches: dict, output_dtype: str = "float32") -> list[str]:
    """The knee and the cost ratios of one dtype's rows, as printed lines."""
    if not rows:
        return []
    dt = rows[0].input_dtype
    lines = []
    kr = knee(rows)
    rule = f"the smallest size where apply's elements/s < {KNEE_DROP:.0%} of its best at smaller sizes"
    if kr is None:
        lines.append(f"{dt}: knee ({rule}): none up to 2^{max(r.log2 for r in rows)}")
    else:
        prev = max((r for r in rows if r.job == "apply" and r.log2 < kr.log2), key=lambda r: r.elements_per_s)
        moved = kr.n * (REGISTRY[dt].itemsize + REGISTRY[output_dtype].itemsize)
        where = ", ".join(f"{moved / v:.3g}x {c}" for c, v in caches.items() if c in ("L2", "L3")) or "caches unreadable"
        lines.append(f"{dt}: knee ({rule}): 2^{kr.log2}, {kr.elements_per_s / prev.elements_per_s:.3f}x the rate at "
                     f"2^{prev.log2}; input + output {_gib(moved)} = {where}; probe there: "
                     f"{kr.probe_elements_per_s / prev.probe_elements_per_s:.3f}x its rate at 2^{prev.log2}")
    for job in JOBS:
        jr = {r.log2: r for r in rows if r.job == job}
        if not jr:
            continue
        top = max(jr)
        best = max(jr.values(), key=lambda r: r.elements_per_s)
        parts = [f"cost/element at 2^{top} / at best (2^{best.log2}) {best.elements_per_s / jr[top].elements_per_s:.3g}"]
        if 20 in jr and top != 20:
            parts.append(f"2^{top} / 2^20 {jr[20].elements_per_s / jr[top].elements_per_s:.3g}")
        parts.append(f"ratio to probe at 2^{top} {jr[top].ratio:.3g}")
        lines.append(f"{dt} {job}: " + "; ".join(parts))
    return lines


def main(**kw) -> int:
    scale(**kw)
    return 0
