"""Speed ratios measured side by side in one process (``precision-bench speed``).

Apply cases use parameters fitted beforehand, so they time the transform
kernel alone against the numpy expression with the same constants; fit cases
time the statistics pass.

One table of cases serves this script and the pytest-benchmark guards in
``tests/test_speed.py``.  Each case names our kernel, the numpy expression a
user would otherwise write (or none), and the bytes it must move; the memory
roofline is the fastest copy probe of the same bytes (:mod:`kernels.roofline`;
for reductions, a parallel read), timed in the same process.  Times are the
best of several repeats, interleaved, because these machines are shared and
noisy; a roofline fraction above :data:`kernels.roofline.MAX_FRACTION` is a
measurement error, printed as ``-`` with a ``RuntimeWarning``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from typing import Callable

import ml_dtypes
import numpy as np
from numba import get_num_threads

from .cast import cast
from .metrics import distinct
from .roofline import MAX_FRACTION, probes, read_probe, roofline_fraction
from .stats import fit
from .transforms import transform


@dataclasses.dataclass
class Case:
    name: str
    make: Callable[[int], tuple]  # n -> (x, out)
    ours: Callable  # (x, out) -> None
    numpy: Callable | None  # (x, out) -> None
    reads_only: bool = False  # a reduction: roofline is the read probe
    target_numpy: float | None = None  # the speed-up over numpy
    target_roofline: float = 0.8
    peer: str = "numpy"  # what the ``numpy`` callable is (torch eager for pipelines)
    check: Callable | None = None  # (x, out) -> None: raises when ours and the peer's bits differ

    def nbytes(self, x, out) -> int:
        return x.nbytes + (0 if self.reads_only or out is None else out.nbytes)


def _u8(n):
    return np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8)


def _f32(n):
    return np.random.default_rng(0).normal(0, 1000, n).astype(np.float32)


def _minmax_np(x, out):
    """The numpy expression of the issue: ``(x.astype(float32) - lo) * r``, lo and r known."""
    p = PARAMS[("minmax", x.dtype.name, x.size)]
    lo = np.float32(p["min"][0])
    r = np.float32(1) / (np.float32(p["max"][0]) - lo)
    y = (x.astype(np.float32) - lo) * r
    if out.dtype == np.float32:
        out[...] = y
    else:
        out[...] = y.astype(out.dtype)


def _params(t, x):
    return PARAMS[(t, x.dtype.name, x.size)]


def _with_out(make_x, output_dtype):
    def make(n):
        x = make_x(n)
        return x, np.empty(x.shape, output_dtype)

    return make


CASES = [
    Case(
        "minmax u8->f32",
        _with_out(_u8, np.float32),
        lambda x, out: transform(x, "minmax", params=_params("minmax", x), formula="sub_mul", out=out),
        _minmax_np,
        target_numpy=5.0,
    ),
    Case(
        "minmax u8->f16",
        _with_out(_u8, np.float16),
        lambda x, out: transform(
            x, "minmax", params=_params("minmax", x), formula="sub_mul", output_dtype="float16", out=out
        ),
        _minmax_np,
        target_numpy=20.0,
    ),
    Case(
        "cast f32->f16",
        _with_out(_f32, np.float16),
        lambda x, out: cast(x, "float16", out=out),
        lambda x, out: out.__setitem__(..., x.astype(np.float16)),
        target_numpy=10.0,
    ),
    Case(
        "cast f32->bf16",
        _with_out(_f32, ml_dtypes.bfloat16),
        lambda x, out: cast(x, "bfloat16", out=out),
        lambda x, out: out.__setitem__(..., x.astype(ml_dtypes.bfloat16)),
    ),
    Case(
        "standardize f32->f32",
        _with_out(_f32, np.float32),
        lambda x, out: transform(x, "standardize", params=_params("standardize", x), out=out),
        lambda x, out: np.divide(np.subtract(x, np.float32(0.5), out=out), np.float32(1000), out=out),
    ),
    Case(
        "scale u8->f16 (f16 compute)",
        _with_out(_u8, np.float16),
        lambda x, out: transform(x, "scale", compute_dtype="float16", output_dtype="float16", out=out),
        lambda x, out: np.divide(x.astype(np.float16), np.float16(255), out=out),
    ),
    Case(
        # uint8 data: a 256-entry table makes even float64 arithmetic memory-bound
        "minmax u8->u8 (f64 compute)",
        _with_out(_u8, np.uint8),
        lambda x, out: transform(
            x, "minmax", params=_params("minmax", x), compute_dtype="float64", output_dtype="uint8", out=out
        ),
        lambda x, out: out.__setitem__(..., np.rint(x * (1 / 255)).clip(0, 255)),  # min 0, max 255
    ),
    Case(
        "quantize f32->u8",
        _with_out(_f32, np.uint8),
        lambda x, out: transform(x, "quantize", params=_params("quantize", x), out=out),
        lambda x, out: out.__setitem__(..., np.clip(np.rint(x / np.float32(8)) + 128, 0, 255)),
    ),
    Case(
        "fit min/max u8",
        _with_out(_u8, None),
        lambda x, out: fit(x, "minmax"),
        lambda x, out: (x.min(), x.max()),
        reads_only=True,
    ),
    Case(
        "fit min/max f16",
        _with_out(lambda n: _f32(n).astype(np.float16), None),
        lambda x, out: fit(x, "minmax"),
        lambda x, out: (x.min(), x.max()),
        reads_only=True,
    ),
    Case(
        "fit min/max f32",
        _with_out(_f32, None),
        lambda x, out: fit(x, "minmax"),
        lambda x, out: (x.min(), x.max()),
        reads_only=True,
    ),
]
for _acc in ("naive", "pairwise", "kahan", "welford"):
    CASES.append(
        Case(
            f"fit std {_acc} f64acc",
            _with_out(_f32, None),
            (lambda acc: lambda x, out: fit(x, "standardize", accumulator=acc))(_acc),
            (lambda x, out: (x.mean(dtype=np.float64), x.std(dtype=np.float64))) if _acc == "pairwise" else None,
            reads_only=True,
            target_roofline=0.0,
        )
    )

def _u16(n):
    # sensor-like counts: a 12-bit signal with noise, many repeats
    return np.random.default_rng(0).normal(2000, 400, n).clip(0, 65535).astype(np.uint16)


for _name, _make, _target in (
    ("distinct u16", _u16, 20.0),
    ("distinct f16", lambda n: _f32(n).astype(np.float16), 20.0),
    ("distinct f32", _f32, 1.0),
    ("distinct f64", lambda n: _f32(n).astype(np.float64), 1.0),
):
    CASES.append(
        Case(
            _name,
            _with_out(_make, None),
            lambda x, out: distinct(x),
            lambda x, out: np.unique(x, return_counts=True),
            reads_only=True,
            target_numpy=_target,
            target_roofline=0.0,  # sorting is not a streaming pass
        )
    )

IMAGENET = (
    "torchvision.ToDtype(dtype=float32, scale=True)",
    "torchvision.Normalize(mean=imagenet, std=imagenet)",
    "cast(output_dtype=float16)",
)


def _images(n):
    """uint8 (N, 224, 224, 3) with N * 224 * 224 * 3 about n (at least one image)."""
    k = max(n // (224 * 224 * 3), 1)
    x = np.random.default_rng(0).integers(0, 256, (k, 224, 224, 3), dtype=np.uint8)
    return x, np.empty(x.shape, np.float16)


@functools.cache
def _imagenet_pipeline():
    from .pipeline import pipeline

    return pipeline(*IMAGENET)


def _torch_imagenet(x, out=None):
    """The same pipeline in torch eager, 2 threads, as torchvision runs it on a
    (N, C, H, W) view: ``x.to(float32).mul_(1/255)``, ``sub_(mean).div_(std)``, ``.half()``."""
    import torch

    torch.set_num_threads(2)
    from .steps import CONSTANTS

    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    mean = torch.tensor(CONSTANTS["imagenet"]["mean"], dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(CONSTANTS["imagenet"]["std"], dtype=torch.float32).view(-1, 1, 1)
    return t.to(torch.float32).mul_(1 / 255).sub_(mean).div_(std).half()


def _check_imagenet(x, out):
    ref = _torch_imagenet(x).permute(0, 2, 3, 1).numpy()
    if not np.array_equal(ref.view(np.uint16), out.view(np.uint16)):
        raise AssertionError("the ImageNet pipeline and torch eager differ in bits")


CASES.append(
    Case(
        "imagenet u8->f16 pipeline",
        _images,
        lambda x, out: _imagenet_pipeline().transform(x, out=out),
        _torch_imagenet,
        target_numpy=5.0,
        peer="torch eager (2 threads)",
        check=_check_imagenet,
    )
)

PARAMS: dict = {}  # (transform, input dtype, n) -> Params fitted outside the timed call


def prepare(case: Case, n: int):
    """Build inputs and fitted params; warm every callable (JIT never timed)."""
    x, out = case.make(n)
    for t in ("minmax", "standardize", "quantize"):
        if (t, x.dtype.name, n) not in PARAMS and not (t != "minmax" and x.dtype == np.uint8):
            PARAMS[(t, x.dtype.name, n)] = fit(x, t)
    case.ours(x, out)
    if case.numpy is not None:
        case.numpy(x, out)
    if case.check is not None:
        case.check(x, out)
    return x, out


def best_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(case: Case, n: int, repeat: int = 7) -> dict:
    """One case timed against its peer and the roofline, interleaved; the
    ``roofline_fraction`` is None (and a RuntimeWarning says why) above MAX_FRACTION."""
    import warnings

    x, out = prepare(case, n)
    nbytes = case.nbytes(x, out)
    if case.reads_only:
        src = np.ones(max(nbytes // 8, 1), np.uint64)
        ps = {"parallel read": lambda: read_probe(src)}
    else:
        ps = probes(x.nbytes, out.nbytes)
    for p in ps.values():
        p()
    t_ours, t_np, t_probe = [], [], {name: [] for name in ps}
    for _ in range(repeat):  # interleaved so drift hits all alike
        t_ours.append(best_time(lambda: case.ours(x, out), 1))
        for name, p in ps.items():
            t_probe[name].append(best_time(p, 1))
        if case.numpy is not None:
            t_np.append(best_time(lambda: case.numpy(x, out), 1))
    ours = min(t_ours)
    probe = min(t_probe, key=lambda name: min(t_probe[name]))  # the probe that won: the machine's limit
    fraction, note = roofline_fraction(ours, min(t_probe[probe]), probe)
    if note:
        warnings.warn(f"{case.name}: {note}", RuntimeWarning, stacklevel=2)
    return {
        "case": case.name,
        "n": n,
        "ours_s": ours,
        "ours_median_s": float(np.median(t_ours)),
        "numpy_s": min(t_np) if t_np else None,
        "peer_median_s": float(np.median(t_np)) if t_np else None,
        "vs_numpy": (min(t_np) / ours) if t_np else None,
        "peer": case.peer,
        "roofline_fraction": fraction,
        "probe": probe,
        "gb_per_s": nbytes / ours / 1e9,
        "target_numpy": case.target_numpy,
        "target_roofline": case.target_roofline,
    }


def compile_time_first_call() -> float:
    """Seconds for a fresh process's first transform call (disk cache warm)."""
    import subprocess
    import sys

    code = (
        "import time, numpy as np; t=time.perf_counter(); import kernels; "
        "kernels.transform(np.arange(256, dtype=np.uint8), 'minmax', output_dtype='float16'); "
        "print(time.perf_counter()-t)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)  # warm the cache
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(res.stdout.strip().splitlines()[-1])


def domain_sweep(dtype: str = "float32", lo: float | None = None, hi: float | None = None) -> dict:
    """Seconds to stream every value of a domain (default: every finite float32, the
    2**32 patterns but NaN and +-inf) through minmax (float64 compute, as the range
    overflows float32) -> float16, counting survivors, inverse round trips and range
    events as it goes.  The sweep is timed here: a streamed measure's ``seconds``
    is its apply kernel on 2**24 of the values, as for any other source."""
    from .codecs import REGISTRY
    from .domain import domain, sweep
    from .transforms import DEFAULT_FORMULA, kernel_plan

    crow, out_row, formula = REGISTRY["float64"], REGISTRY["float16"], DEFAULT_FORMULA["minmax"]

    def run(dom):
        p = fit(np.array([dom.lo, dom.hi]).astype(dom.row.dtype), "minmax")  # a domain's min/max are its ends
        kname, table = kernel_plan(p, formula, crow)
        inv_kname, inv_table = kernel_plan(p, formula, crow, inverse=True)
        return sweep(dom, crow, kname, table, inv_kname, inv_table, out_row, progress=False)

    run(domain(dtype, 1, 2))  # compile
    r = run(domain(dtype, lo, hi))
    return {"values": r.values, "seconds": r.seconds, "distinct_out": r.distinct_out, "values_per_s": r.values / r.seconds}


IN_CACHE = 1 << 20  # elements: in + out of every variant fit the 32 MiB L3 at twice this


def _fraction(v) -> str:
    """A roofline fraction or ceiling as printed: ``-`` where there is none."""
    return "-" if v is None or v != v else f"{v:.2f}"


def sweep_apply(
    n: int = 50_000_000, repeat: int = 5, inputs=("uint8", "uint16", "float16", "float32")
) -> list[tuple[str, float | None, float]]:
    """Roofline fraction of every apply-kernel variant (each input dtype in
    ``inputs``, each transform, formula, compute dtype float16/32/64, output
    float16/float32/uint8), params fitted beforehand, ``out=`` given; printed
    worst first.  The fraction is against the fastest copy probe of the same
    bytes, interleaved with the kernel (:func:`kernels.roofline.time_against_roofline`);
    above :data:`~kernels.roofline.MAX_FRACTION` it is a measurement error: None, ``-``.

    Each row also has the variant's *in-cache ceiling*: the roofline fraction
    its arithmetic alone allows, ``min(1, t_copy / t_cache)``.  ``t_copy`` is
    the probe's time for the bytes of n elements, ``t_cache`` the kernel's time
    for n elements at its cache-resident rate, ``(t(2m) - t(m)) / m * n`` with
    ``m = IN_CACHE`` (the difference cancels the call's fixed cost).  As in a
    roofline model the attainable fraction is the lesser of the memory roof (1)
    and the compute roof, so a ceiling is at most 1: 1 means the instructions
    keep up with memory; below 0.8 the variant is compute-bound.  (Uncapped, the
    ratio is no fraction: a memory-bound kernel on cache-resident data runs
    several times faster than a copy through DRAM, and noise in a difference of
    two sub-millisecond times made it 75 and more.)  NaN, printed ``-``: n too
    small for the slices, or noise made ``t(2m) <= t(m)``.
    """
    import itertools
    import warnings

    from rich.console import Console

    from .codecs import REGISTRY
    from .roofline import time_against_roofline
    from .transforms import FORMULAS

    rng = np.random.default_rng(0)
    make = {
        "uint8": lambda: rng.integers(0, 256, n, dtype=np.uint8),
        "uint16": lambda: rng.integers(0, 4096, n, dtype=np.uint16),  # 12-bit sensor counts
        "float16": lambda: rng.normal(0, 100, n).astype(np.float16),
        "bfloat16": lambda: rng.normal(0, 100, n).astype(REGISTRY["bfloat16"].dtype),
        "float32": lambda: rng.normal(0, 100, n).astype(np.float32),
        "float64": lambda: rng.normal(0, 100, n),
    }
    rows = []
    errors = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for iname in inputs:
            x = make[iname]()
            # the in-cache slices: m elements and 2m; too few elements give no ceiling (NaN)
            m = min(IN_CACHE, n // 2)
            small, double = x[:m], x[: 2 * m]
            for t in ["minmax", "standardize", "scale", "maxabs", "quantize"]:
                opts = {"divisor": 255.0} if t == "scale" else ({"feature_range": (-1, 1)} if t == "minmax" else {})
                p = fit(x, t, **opts)
                for f, cd, od in itertools.product(FORMULAS[t], ["float16", "float32", "float64"], ["float16", "float32", "uint8"]):
                    if t == "quantize" and od != "uint8":
                        continue
                    out = np.empty(n, REGISTRY[od].dtype)

                    def run(data=x, dest=out):
                        transform(data, t, params=p, formula=f, compute_dtype=cd, output_dtype=od, out=dest)

                    t_kernel, t_copy, probe = time_against_roofline(run, x.nbytes, out.nbytes, repeat)
                    frac, note = roofline_fraction(t_kernel, t_copy, probe)
                    errors += note is not None
                    ceiling = float("nan")
                    if m >= 1 << 14:
                        t_small = t_double = float("inf")
                        for _ in range(8 * repeat):  # interleaved, as the roofline is
                            t_small = min(t_small, best_time(lambda: run(small, out[:m]), 1))
                            t_double = min(t_double, best_time(lambda: run(double, out[: 2 * m]), 1))
                        if t_double > t_small:  # else timing noise swamped the difference
                            ceiling = min(1.0, t_copy / ((t_double - t_small) / m * n))
                    rows.append((f"{iname}->{od} {t}/{f} compute={cd}", frac, ceiling))
            x = small = double = None  # free before the next input is made
    rows.sort(key=lambda r: (r[1] is None, r[1] or 0.0))
    console = Console(soft_wrap=True)
    fr = [r[1] for r in rows if r[1] is not None]
    below = [r for r in rows if r[1] is not None and r[1] < 0.8]
    summary = (f"roofline fraction min {fr[0]:.2f}, median {fr[len(fr) // 2]:.2f}, max {fr[-1]:.2f}; "
               if fr else "no roofline fraction; ")
    console.print(
        f"{len(rows)} apply variants, n={n:,}: {summary}{len(below)} below 0.8, "
        f"of which {sum(r[2] < 0.8 for r in below)} have an in-cache ceiling below 0.8 (compute-bound)"
    )
    if errors:
        console.print(f"{errors} variant(s) beat the fastest copy probe by more than {MAX_FRACTION}x: the probe was "
                      "slowed (load?), a measurement error, printed as -")
    console.print("  roofline  in-cache ceiling  variant")
    for name, frac, ceiling in rows:
        console.print(f"  {_fraction(frac):>8}  {_fraction(ceiling):>16}  {name}")
    return rows


def _spread(best: float | None, median: float | None) -> str:
    """``best / median`` in ms as printed in the speed table, ``-`` when not timed."""
    if not best:
        return "-"
    return f"{best * 1e3:.2f} / {median * 1e3:.2f}"


def select_cases(names: list[str] | None) -> list[Case]:
    """The cases named (all when none), in table order; an unknown name is a
    ``ValueError`` listing the valid ones (an empty table helps nobody)."""
    if not names:
        return list(CASES)
    valid = [c.name for c in CASES]
    unknown = [nm for nm in names if nm not in valid]
    if unknown:
        raise ValueError(
            f"unknown case{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; valid: {', '.join(map(repr, valid))}"
        )
    return [c for c in CASES if c.name in names]


def main(n: int = 50_000_000, repeat: int = 7, cases: list[str] | None = None, domain_sweep_too: bool = True) -> list[dict]:
    from rich.console import Console
    from rich.table import Table

    from ._threads import launch

    selected = select_cases(cases)  # before any measuring
    launch()  # before get_num_threads, which would start numba's threads with libgomp's default wait policy
    rows = []
    table = Table(title=f"precision-bench speed, n={n:,}, threads={get_num_threads()}, cpus={os.cpu_count()}")
    for col in ("case", "ours ms (best / median)", "peer ms (best / median)", "x peer", "target", "roofline", "probe", "GB/s"):
        table.add_column(col, justify="left" if col in ("case", "probe") else "right")
    for case in selected:
        r = measure(case, n, repeat)
        rows.append(r)
        table.add_row(
            r["case"],
            _spread(r["ours_s"], r["ours_median_s"]),
            _spread(r["numpy_s"], r["peer_median_s"]),
            (f"{r['vs_numpy']:.1f}x" + ("" if r["peer"] == "numpy" else f" ({r['peer']})")) if r["vs_numpy"] else "-",
            f">= {r['target_numpy']:g}x" if r["target_numpy"] else "",
            _fraction(r["roofline_fraction"]),
            r["probe"],
            f"{r['gb_per_s']:.1f}",
        )
    naive = next((r for r in rows if r["case"] == "fit std naive f64acc"), None)
    console = Console(width=max(Console().width, 132))  # one line a case: the probe and the spread unwrapped
    console.print(table)
    console.print(f"best and median of {repeat} interleaved rounds; roofline: ours against the fastest probe (named) "
                  "of the same bytes")
    if naive:
        for r in rows:
            if r["case"].startswith("fit std") and r is not naive:
                console.print(f"{r['case']}: {r['ours_s'] / naive['ours_s']:.2f}x naive's time")
    console.print(f"first call in a fresh process (cache warm): {compile_time_first_call():.2f} s")
    if domain_sweep_too:
        d = domain_sweep()
        console.print(
            f"domain sweep, every finite float32 ({d['values']:,} values) -> float16 minmax: "
            f"{d['seconds']:.1f} s ({d['values_per_s'] / 1e6:.0f} M values/s; {d['distinct_out']:,} distinct outputs; goal <= 30 s)"
        )
    return rows
