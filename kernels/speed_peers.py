"""Each shared job against every peer installed (``precision-bench speed --peers``).

One table of jobs (:data:`kernels.peer_jobs.JOBS`).  A job is our callable, an inputs maker and its peers
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

import importlib
import os
import statistics
import time
import warnings

import ml_dtypes
import numpy as np

from .peer_jobs import JOBS, PARAMS, THREADS, Job, Peer, _torch
from .roofline import probes, roofline_fraction
from .stats import fit

__all__ = ["JOBS", "PARAMS", "Job", "Peer", "compare", "bits_cell", "prepare", "measure", "select_jobs", "main"]


def _array(y) -> np.ndarray:
    """A peer's output as numpy (torch tensors through their bits; jax arrays
    with ``np.asarray``; float32 holding float16 values, pychop's, cast exactly)."""
    if hasattr(y, "detach"):
        torch = _torch()
        y = y.detach()
        if y.dtype == torch.bfloat16:
            return y.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        if str(y.dtype).startswith("torch.float8"):
            return y.contiguous().view(torch.uint8).numpy().view(getattr(ml_dtypes, str(y.dtype)[6:]))
        return y.contiguous().numpy()
    return np.asarray(y)


def _ready(y):
    if hasattr(y, "block_until_ready"):
        y.block_until_ready()
    return y


def compare(ref: np.ndarray, y) -> int:
    """Elements whose bits differ (a shape or width mismatch: all of them)."""
    y = _array(y)
    if ref.dtype != y.dtype and y.dtype == np.float32 and ref.dtype.itemsize < 4 and ref.dtype.kind in "fV":
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
        with warnings.catch_warnings():  # a peer's own overflow warnings (pychop's numpy backend) are not ours to print
            warnings.simplefilter("ignore", RuntimeWarning)
            r = measure(job, n, repeat)
        results.append(r)
        print("\n".join(format_job(r)), flush=True)
    return results
