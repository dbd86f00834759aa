"""Each shared job against every peer installed (``precision-bench speed --peers``).

One table of jobs.  A job is our callable, an inputs maker and its peers
(numpy, numexpr, OpenCV, torch with 2 threads, jax.jit, pychop).  A peer's
``setup(x, out)`` converts the inputs once (``torch.from_numpy``,
``jax.device_put``, a preallocated output) and returns the call that is timed,
which returns the peer's output array.  A peer that cannot run says why: its
module is not importable, the library has no such operation (``why_not``), or
its setup raised.

Each peer's output is checked against ours bit for bit: ``same bits`` or
``differs: k of n elements``.  Where a peer computes the bits of another of our
formulas (OpenCV's ``normalize`` is our ``fma``; XLA turns ``x / c`` into
``x * (1 / c)``, our ``sub_mul``), the peer names that variant and is compared
with it, in bits and in time.  A peer that differs is still timed, but marked;
the job's verdict is against the fastest bit-identical peer, with the fastest of
all shown too.  ``same`` in each :class:`Peer` is the table's claim, which
``tests/test_speed_peers.py`` asserts.

Times: best and median of R interleaved rounds (ours, each variant, each peer,
each copy probe of :func:`kernels.roofline.probes`, round robin), so a change
of load hits all alike.  The roofline fraction is ours against the fastest
probe of the same bytes (:func:`kernels.roofline.roofline_fraction`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import statistics
import time
from typing import Callable

import ml_dtypes
import numpy as np

from .cast import cast
from .roofline import probes, roofline_fraction
from .stats import fit
from .transforms import transform

THREADS = 2  # torch, numexpr and OpenCV threads: the machine's cores


@dataclasses.dataclass
class Peer:
    name: str
    setup: Callable | None  # (x, out) -> (() -> array); None: the library cannot do this job
    needs: tuple = ()  # modules that must import
    same: bool = True  # the table's claim: the peer computes our bits (tested)
    variant: str | None = None  # which of our variants it is compared with (None: ours)
    why_not: str | None = None  # said when setup is None
    max_n: int | None = None  # above this n the peer is too slow to time (why_not says so)


@dataclasses.dataclass
class Job:
    name: str
    make: Callable  # n -> (x, out)
    ours: Callable  # (x, out) -> None
    label: str  # what ours is (formula, compute dtype)
    peers: list
    variants: dict = dataclasses.field(default_factory=dict)  # name -> (x, out) -> None
    target_roofline: float | None = 0.8  # None: compute-bound (held against peers only)


def _u8(n):
    return np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8)


def _f32(n):
    return np.random.default_rng(0).normal(0, 1000, n).astype(np.float32)


def _f16(n):
    return np.random.default_rng(0).normal(0, 100, n).astype(np.float16)


def _with_out(make_x, dtype):
    def make(n):
        x = make_x(n)
        return x, np.empty(x.shape, dtype)

    return make


@functools.cache
def _torch():
    import torch

    torch.set_num_threads(THREADS)
    return torch


def _jax():
    import jax

    return jax, jax.numpy


def _numexpr():
    import numexpr

    numexpr.set_num_threads(THREADS)
    return numexpr


def _cv2():
    import cv2

    cv2.setNumThreads(THREADS)
    return cv2


def _t(x):
    """A torch tensor sharing x's memory (bfloat16 through its bits)."""
    torch = _torch()
    if x.dtype == ml_dtypes.bfloat16:
        return torch.from_numpy(x.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(x)


def _jit(f):
    """(x, out) -> call: jax.jit(f) on x already on the device."""

    def setup(x, out):
        jax, _ = _jax()
        g, xd = jax.jit(f), jax.device_put(x)
        return lambda: g(xd)

    return setup


# ----- the jobs' peers -------------------------------------------------------


def _np_cast(x, out):
    return lambda: np.copyto(out, x, casting="unsafe") or out


def _torch_copy(x, out):
    t, o = _t(x), _t(out)
    return lambda: o.copy_(t)


def _cv2_mul_one(depth):
    def setup(x, out):
        cv2 = _cv2()
        d = getattr(cv2, depth)
        cv2.multiply(x, 1.0, dtype=d)  # raises here when OpenCV has no such conversion
        return lambda: cv2.multiply(x, 1.0, dtype=d)

    return setup


def _np_minmax_u8(x, out):
    def run():
        lo = np.float32(x.min())
        r = np.float32(1) / (np.float32(x.max()) - lo)
        np.subtract(x, lo, out=out)
        return np.multiply(out, r, out=out)

    return run


def _ne_minmax_u8(x, out):
    ne = _numexpr()

    def run():
        lo = np.float32(x.min())
        r = np.float32(1) / (np.float32(x.max()) - lo)
        return ne.evaluate("(x - lo) * r", local_dict={"x": x, "lo": lo, "r": r}, out=out, casting="unsafe")

    return run


def _torch_minmax_u8(x, out):
    torch = _torch()
    t, o = _t(x), _t(out)

    def run():
        mn, mx = torch.aminmax(t)
        lo = mn.to(torch.float32)
        return torch.sub(t, lo, out=o).mul_(1 / (mx.to(torch.float32) - lo))

    return run


def _jax_minmax(a):
    lo, hi = a.min(), a.max()
    if a.dtype.name == "uint8":
        lo, hi, a = lo.astype("float32"), hi.astype("float32"), a.astype("float32")
    return (a - lo) * (1 / (hi - lo))


def _cv2_normalize(x, out):
    cv2 = _cv2()
    return lambda: cv2.normalize(x, out, 0, 1, cv2.NORM_MINMAX, cv2.CV_32F)


def _np_minmax_f16(x, out):
    def run():
        lo = x.min()
        r = np.float16(1) / (x.max() - lo)
        np.subtract(x, lo, out=out)
        return np.multiply(out, r, out=out)

    return run


def _torch_minmax_f16(x, out):
    torch = _torch()
    t, o = _t(x), _t(out)

    def run():
        mn, mx = torch.aminmax(t)
        return torch.sub(t, mn, out=o).mul_(1 / (mx - mn))

    return run


def _pychop(backend):
    """pychop's float16 (5 exponent, 10 fraction bits, nearest even) rounding after
    every operation, on float32 data in the backend's arrays; the output holds
    float16 values in float32."""

    def setup(x, out):
        import pychop

        ch = pychop.Chop(exp_bits=5, sig_bits=10, rmode=1)
        x32 = x.astype(np.float32)
        if backend == "torch":
            torch = _torch()
            xb = torch.from_numpy(x32)
            lohi = lambda: torch.aminmax(xb)  # noqa: E731
        elif backend == "jax":
            jax, _ = _jax()
            xb = jax.device_put(x32)
            lohi = lambda: (xb.min(), xb.max())  # noqa: E731
        else:
            xb = x32
            lohi = lambda: (xb.min(), xb.max())  # noqa: E731

        def run():
            lo, hi = lohi()
            r = ch(1 / ch(hi - lo))
            return ch(ch(xb - lo) * r)

        return run

    return setup


def _np_scale(x, out):
    return lambda: np.divide(x, np.float32(255), out=out)


def _ne_scale(x, out):
    ne = _numexpr()
    k = np.float32(255)
    return lambda: ne.evaluate("x / k", local_dict={"x": x, "k": k}, out=out, casting="unsafe")


def _torch_scale(x, out):
    t, o = _t(x), _t(out)
    return lambda: o.copy_(t).div_(255)


def _cv2_scale(op):
    def setup(x, out):
        cv2 = _cv2()
        if op == "divide":
            return lambda: cv2.divide(x, 255.0, dtype=cv2.CV_32F)
        return lambda: cv2.multiply(x, 1 / 255, dtype=cv2.CV_32F)

    return setup


def _std_params(x):
    return PARAMS[("standardize", x.dtype.name, x.size)]


def _std_consts(x):
    p = _std_params(x)
    return np.float32(p["mean"][0]), np.float32(p["std"][0])


def _np_std(x, out):
    m, s = _std_consts(x)
    return lambda: np.divide(np.subtract(x, m, out=out), s, out=out)


def _ne_std(x, out):
    ne = _numexpr()
    m, s = _std_consts(x)
    return lambda: ne.evaluate("(x - m) / s", local_dict={"x": x, "m": m, "s": s}, out=out)


def _torch_std(x, out):
    torch = _torch()
    m, s = (float(v) for v in _std_consts(x))
    t, o = _t(x), _t(out)
    return lambda: torch.sub(t, m, out=o).div_(s)


def _jax_std(x, out):
    jax, _ = _jax()
    m, s = _std_consts(x)
    g, xd = jax.jit(lambda a, m, s: (a - m) / s), jax.device_put(x)
    return lambda: g(xd, m, s)


def _images(n):
    from .speed import _images as make

    return make(n)


def _imagenet_consts():
    from .steps import CONSTANTS

    c = CONSTANTS["imagenet"]
    return np.float32(1 / 255), np.array(c["mean"], np.float32), np.array(c["std"], np.float32)


def _np_imagenet(x, out):
    k, m, s = _imagenet_consts()

    def run():
        y = np.multiply(x, k, dtype=np.float32)
        np.subtract(y, m, out=y)
        np.divide(y, s, out=y)
        return np.copyto(out, y, casting="unsafe") or out

    return run


def _jax_imagenet(a):
    k, m, s = _imagenet_consts()
    return ((a.astype("float32") * k - m) / s).astype("float16")


def _torch_imagenet(x, out):
    from .speed import _torch_imagenet as run

    _torch()
    return lambda: run(x).permute(0, 2, 3, 1)


def _ours_minmax(formula, **kw):
    return lambda x, out: transform(x, "minmax", formula=formula, out=out, **kw)


@functools.cache
def _pipeline():
    from .speed import _imagenet_pipeline

    return _imagenet_pipeline()


_NO_F16_NUMEXPR = "numexpr has no float16 (its types: bool, int32, int64, float32, float64, complex)"
_NO_BF16_NUMEXPR = "numexpr has no bfloat16 (its types: bool, int32, int64, float32, float64, complex)"
_F16_ARITH = "float16 arithmetic"

JOBS = [
    Job(
        "cast f32->f16",
        _with_out(_f32, np.float16),
        lambda x, out: cast(x, "float16", out=out),
        "cast",
        [
            Peer("numpy astype", _np_cast),
            Peer("numexpr", None, why_not=_NO_F16_NUMEXPR),
            Peer("cv2.multiply(x, 1, dtype=CV_16F)", _cv2_mul_one("CV_16F"), ("cv2",)),
            Peer("torch copy_", _torch_copy, ("torch",)),
            Peer("jax.jit astype", _jit(lambda a: a.astype("float16")), ("jax",)),
        ],
    ),
    Job(
        "cast f32->bf16",
        _with_out(_f32, ml_dtypes.bfloat16),
        lambda x, out: cast(x, "bfloat16", out=out),
        "cast",
        [
            Peer("ml_dtypes astype", _np_cast),
            Peer("numexpr", None, why_not=_NO_BF16_NUMEXPR),
            Peer("cv2.multiply(x, 1, dtype=CV_16BF)", _cv2_mul_one("CV_16BF"), ("cv2",), same=False),
            Peer("torch copy_", _torch_copy, ("torch",)),
            Peer("jax.jit astype", _jit(lambda a: a.astype("bfloat16")), ("jax",)),
        ],
    ),
    Job(
        "minmax u8->f32 fit+apply",
        _with_out(_u8, np.float32),
        _ours_minmax("sub_mul"),
        "formula=sub_mul",
        [
            Peer("numpy", _np_minmax_u8),
            Peer("numexpr", _ne_minmax_u8, ("numexpr",)),
            Peer("cv2.normalize NORM_MINMAX", _cv2_normalize, ("cv2",), variant="fma"),
            Peer("torch", _torch_minmax_u8, ("torch",)),
            Peer("jax.jit", _jit(_jax_minmax), ("jax",)),
        ],
        variants={"fma": _ours_minmax("fma")},
    ),
    Job(
        "scale u8->f32 /255",
        _with_out(_u8, np.float32),
        lambda x, out: transform(x, "scale", formula="div", out=out),
        "formula=div",
        [
            Peer("numpy", _np_scale),
            Peer("numexpr", _ne_scale, ("numexpr",)),
            Peer("cv2.divide(x, 255, dtype=CV_32F)", _cv2_scale("divide"), ("cv2",)),
            Peer("cv2.multiply(x, 1/255, dtype=CV_32F)", _cv2_scale("multiply"), ("cv2",), same=False, variant="mul"),
            Peer("torch", _torch_scale, ("torch",)),
            Peer("jax.jit", _jit(lambda a: a.astype("float32") / 255), ("jax",), variant="mul"),
        ],
        variants={"mul": lambda x, out: transform(x, "scale", formula="mul", out=out)},
    ),
    Job(
        "standardize f32->f32",
        _with_out(_f32, np.float32),
        lambda x, out: transform(x, "standardize", params=_std_params(x), formula="sub_div", out=out),
        "formula=sub_div",
        [
            Peer("numpy", _np_std),
            Peer("numexpr", _ne_std, ("numexpr",)),
            Peer("torch", _torch_std, ("torch",)),
            Peer("jax.jit", _jax_std, ("jax",), variant="sub_mul"),
        ],
        variants={"sub_mul": lambda x, out: transform(x, "standardize", params=_std_params(x), formula="sub_mul", out=out)},
    ),
    Job(
        "minmax f16->f16 fit+apply, f16 compute",
        _with_out(_f16, np.float16),
        _ours_minmax("sub_mul", compute_dtype="float16", output_dtype="float16"),
        "formula=sub_mul compute=float16",
        [
            Peer("numpy float16", _np_minmax_f16),
            Peer("numexpr", None, why_not=_NO_F16_NUMEXPR),
            Peer("torch eager float16", _torch_minmax_f16, ("torch",)),
            Peer("jax.jit float16", _jit(_jax_minmax), ("jax",)),
            Peer("pychop Chop (torch backend)", _pychop("torch"), ("pychop", "torch")),
            Peer("pychop Chop (jax backend)", _pychop("jax"), ("pychop", "jax")),
            Peer("pychop Chop (numpy backend)", _pychop("numpy"), ("pychop",), max_n=1 << 21,
                 why_not="about 4 us an element (0.37 s for 1e5)"),
        ],
        target_roofline=None,
    ),
    Job(
        "imagenet u8->f16 pipeline",
        _images,
        lambda x, out: _pipeline().transform(x, out=out),
        "pipeline " + " | ".join(("ToDtype(scale)", "Normalize(imagenet)", "cast float16")),
        [
            Peer("numpy", _np_imagenet),
            Peer("torch eager (torchvision's ops)", _torch_imagenet, ("torch",)),
            Peer("jax.jit", _jit(_jax_imagenet), ("jax",)),
        ],
    ),
]

PARAMS: dict = {}  # (transform, input dtype, n) -> Params fitted outside the timed call


def _array(y) -> np.ndarray:
    """A peer's output as numpy (torch tensors through their bits; jax arrays
    with ``np.asarray``; float32 holding float16 values, pychop's, cast exactly)."""
    if hasattr(y, "detach"):
        torch = _torch()
        y = y.detach()
        if y.dtype == torch.bfloat16:
            return y.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        return y.contiguous().numpy()
    return np.asarray(y)


def _ready(y):
    if hasattr(y, "block_until_ready"):
        y.block_until_ready()
    return y


def compare(ref: np.ndarray, y) -> int:
    """Elements whose bits differ (a shape or width mismatch: all of them)."""
    y = _array(y)
    if ref.dtype != y.dtype and y.dtype == np.float32 and ref.dtype in (np.float16, ml_dtypes.bfloat16):
        y = y.astype(ref.dtype)  # exact: float32 holding values of ref's format (pychop)
    if y.size != ref.size or y.dtype.itemsize != ref.dtype.itemsize:
        return ref.size
    a = ref.reshape(-1).view(f"u{ref.dtype.itemsize}")
    b = np.ascontiguousarray(y).reshape(-1).view(f"u{ref.dtype.itemsize}")
    return int(np.count_nonzero(a != b))


def bits_cell(k: int, n: int) -> str:
    return "same bits" if k == 0 else f"differs: {k:,} of {n:,} elements"


def _skip_reason(peer: Peer, n: int) -> str | None:
    if peer.setup is None:
        return peer.why_not
    for mod in peer.needs:
        try:
            importlib.import_module(mod)
        except Exception as e:  # not installed, or broken
            return f"{mod} not importable ({type(e).__name__}: {e})"
    if peer.max_n is not None and n > peer.max_n:
        return f"not timed above n={peer.max_n:,}: {peer.why_not}"
    return None


def prepare(job: Job, n: int) -> dict:
    """Inputs, our output, each variant's, and each runnable peer's call and bit
    check; every callable warmed once (no JIT is timed)."""
    x, out = job.make(n)
    if job.name.startswith("standardize"):
        PARAMS.setdefault(("standardize", x.dtype.name, x.size), fit(x, "standardize"))
    job.ours(x, out)
    ref = out.copy()
    variants = {}
    for name, fn in job.variants.items():
        vout = np.empty_like(out)
        fn(x, vout)
        variants[name] = (fn, vout)
    peer_out = np.empty_like(out)  # peers never write into ours
    peers = []
    for peer in job.peers:
        entry = {"peer": peer, "call": None, "skip": _skip_reason(peer, x.size), "differs": None}
        if entry["skip"] is None:
            try:
                call = peer.setup(x, peer_out)
                y = _ready(call())
            except Exception as e:  # the library cannot do it: say what it said
                entry["skip"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
            else:
                want = ref if peer.variant is None else variants[peer.variant][1]
                entry["call"], entry["differs"] = call, compare(want, y)
                y = None
        peers.append(entry)
    return {"x": x, "out": out, "variants": variants, "peers": peers}


def _time(fn) -> float:
    t = time.perf_counter()
    _ready(fn())
    return time.perf_counter() - t


def measure(job: Job, n: int, repeat: int = 7) -> dict:
    """Best and median seconds of ``repeat`` interleaved rounds of ours, each
    variant, each runnable peer and each copy probe; the verdicts."""
    p = prepare(job, n)
    x, out = p["x"], p["out"]
    ps = probes(x.nbytes, out.nbytes)
    for probe in ps.values():
        probe()
    calls = {"ours": lambda: job.ours(x, out)}
    for name, (fn, vout) in p["variants"].items():
        calls[f"ours {name}"] = (lambda f, o: lambda: f(x, o))(fn, vout)
    for e in p["peers"]:
        if e["call"] is not None:
            calls[e["peer"].name] = e["call"]
    calls.update({f"probe {k}": v for k, v in ps.items()})
    times = {k: [] for k in calls}
    for _ in range(max(1, repeat)):  # round robin: drift hits all alike
        for k, fn in calls.items():
            times[k].append(_time(fn))
    best = {k: min(v) for k, v in times.items()}
    median = {k: statistics.median(v) for k, v in times.items()}
    probe = min(ps, key=lambda k: best[f"probe {k}"])
    fraction, _ = roofline_fraction(best["ours"], best[f"probe {probe}"], probe)
    rows = []
    for e in p["peers"]:
        peer = e["peer"]
        ours_key = "ours" if peer.variant is None else f"ours {peer.variant}"
        r = {"peer": peer.name, "skip": e["skip"], "variant": peer.variant, "claim_same": peer.same}
        if e["call"] is not None:
            r.update(best_s=best[peer.name], median_s=median[peer.name], differs=e["differs"],
                     vs_ours=best[peer.name] / best[ours_key])
        rows.append(r)
    timed = [r for r in rows if r["skip"] is None]
    same = [r for r in timed if r["differs"] == 0]
    return {
        "job": job.name, "label": job.label, "n": x.size, "nbytes": x.nbytes + out.nbytes,
        "ours_best_s": best["ours"], "ours_median_s": median["ours"],
        "variants": {k: (best[f"ours {k}"], median[f"ours {k}"]) for k in p["variants"]},
        "peers": rows,
        "fastest_same": min(same, key=lambda r: r["best_s"]) if same else None,
        "fastest_any": min(timed, key=lambda r: r["best_s"]) if timed else None,
        "roofline_fraction": fraction, "probe": probe, "probe_s": best[f"probe {probe}"],
        "target_roofline": job.target_roofline,
    }


def _ms(s) -> str:
    return f"{s * 1e3:.2f}"


def format_job(r: dict) -> list[str]:
    """One job's lines as printed: ours, each variant, each peer, the verdict."""
    frac = "-" if r["roofline_fraction"] is None else f"{r['roofline_fraction']:.2f}"
    target = "no target: compute-bound" if r["target_roofline"] is None else f"target >= {r['target_roofline']:g}"
    w = max([len(p["peer"]) for p in r["peers"]] + [len(r["label"]) + 6, 24])
    lines = [f"{r['job']}  (n={r['n']:,}, {r['nbytes'] / 1e6:.1f} MB moved)",
             f"  {'who':<{w}}  {'best ms':>9}  {'median ms':>9}  {'x':>7}  bits vs ours",
             f"  {'ours, ' + r['label']:<{w}}  {_ms(r['ours_best_s']):>9}  {_ms(r['ours_median_s']):>9}  {'':>7}  "
             f"roofline {frac} ({target}; probe {r['probe']} {_ms(r['probe_s'])} ms)"]
    for name, (b, m) in r["variants"].items():
        lines.append(f"  {'ours, formula=' + name:<{w}}  {_ms(b):>9}  {_ms(m):>9}")
    for p in r["peers"]:
        if p["skip"] is not None:
            lines.append(f"  {p['peer']:<{w}}  {'-':>9}  {'-':>9}  {'-':>7}  not run: {p['skip']}")
            continue
        bits = bits_cell(p["differs"], r["n"]) + (f" (vs ours, formula={p['variant']})" if p["variant"] else "")
        over = "; beats the probe" if p["best_s"] < r["probe_s"] else ""
        lines.append(f"  {p['peer']:<{w}}  {_ms(p['best_s']):>9}  {_ms(p['median_s']):>9}  {p['vs_ours']:>6.2f}x  {bits}"
                     f"  [roofline {r['probe_s'] / p['best_s']:.2f}{over}]")
    fs, fa = r["fastest_same"], r["fastest_any"]
    verdict = (f"fastest bit-identical peer: {fs['peer']}, {fs['vs_ours']:.2f}x "
               f"({'ahead' if fs['vs_ours'] >= 1 else 'BEHIND'})") if fs else "no bit-identical peer ran"
    if fa is not None and fa is not fs:
        verdict += f"; fastest of all: {fa['peer']}, {fa['vs_ours']:.2f}x ({bits_cell(fa['differs'], r['n'])})"
    if any(p["skip"] is None and p["best_s"] < r["probe_s"] for p in r["peers"]):
        verdict += "; a peer beat the fastest copy probe: the probe is not this machine's limit"
    lines.append(f"  -> {verdict}")
    return lines


def select_jobs(names: list[str] | None) -> list[Job]:
    """The jobs named (all when none), in table order; an unknown name is a
    ``ValueError`` listing the valid ones."""
    if not names:
        return list(JOBS)
    valid = [j.name for j in JOBS]
    unknown = [nm for nm in names if nm not in valid]
    if unknown:
        raise ValueError(
            f"unknown job{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; valid: {', '.join(map(repr, valid))}"
        )
    return [j for j in JOBS if j.name in names]


def main(n: int = 50_000_000, repeat: int = 7, jobs: list[str] | None = None) -> list[dict]:
    """Measure and print each job (all when ``jobs`` is None), one block each."""
    from numba import get_num_threads

    selected = select_jobs(jobs)
    print(f"precision-bench speed --peers: n={n:,}, best and median of {repeat} interleaved rounds, "
          f"threads={get_num_threads()} (peers {THREADS}), cpus={os.cpu_count()}; "
          "x = peer time / ours (>= 1: ours ahead)", flush=True)
    results = []
    for job in selected:
        r = measure(job, n, repeat)
        results.append(r)
        print("\n".join(format_job(r)), flush=True)
    return results
