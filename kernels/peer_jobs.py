"""The table of shared jobs for ``precision-bench speed --peers`` (:mod:`kernels.speed_peers`).

Each :class:`Job` is our callable, an inputs maker and its :class:`Peer` list
(numpy, numexpr, OpenCV, torch with 2 threads, jax.jit, pychop).  A peer's
``setup(x, out)`` converts the inputs once (``torch.from_numpy``,
``jax.device_put``, a preallocated output) and returns the call that is timed,
which returns the peer's output array.  ``same`` is the table's claim that the
peer computes our bits (asserted in ``tests/test_speed_peers.py``); ``variant``
names another of our formulas whose bits the peer computes (OpenCV's
``normalize`` is our ``fma``; XLA turns ``x / c`` into ``x * (1 / c)``, our
``sub_mul`` / ``mul``), against which it is compared in bits and in time.
"""

from __future__ import annotations

import dataclasses
import warnings
import functools
from typing import Callable

import ml_dtypes
import numpy as np

from .cast import cast
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


def _cv2_has(name: str) -> bool:
    """Whether the installed OpenCV defines ``name`` (False when it does not import)."""
    try:
        import cv2
    except ImportError:
        return False
    return hasattr(cv2, name)


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
    if x.dtype.name in _TORCH_FLOAT8:  # the float8 formats, through their bits
        return torch.from_numpy(x.view(np.uint8)).view(getattr(torch, x.dtype.name))
    return torch.from_numpy(x)


_TORCH_FLOAT8 = ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz")


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


# ----- rounding modes against pychop (issue 16, section 4) --------------------

ROUNDING_MODES = ("nearest_even", "toward_zero", "up", "down", "nearest_away", "stochastic")
PYCHOP_RMODE = {"nearest_even": 1, "up": 2, "down": 3, "toward_zero": 4, "stochastic": 5, "nearest_away": 8}
_PYCHOP_FORMAT = {"bfloat16": (8, 7), "float8_e4m3fn": (4, 3)}
_ROUNDING_SCALE = {"bfloat16": 1000.0, "float8_e4m3fn": 40.0}


def rounding_data(name):
    """n -> float32 data for the rounding jobs into ``name``: normal values, every 16th
    replaced by a midpoint between two neighbours of ``name`` (a tie for the nearest
    modes); |x| <= 240 for float8_e4m3fn, where pychop's IEEE-style e4m3 (no 448,
    no NaN-only top code) and ml_dtypes' e4m3fn agree."""

    def make(n):
        x = np.random.default_rng(0).normal(0, _ROUNDING_SCALE[name], n).astype(np.float32)
        if name == "float8_e4m3fn":
            x = np.clip(x, np.float32(-240), np.float32(240))
        lo = cast(x[::16], name, rounding="toward_zero").astype(np.float64)
        hi = cast(x[::16], name, rounding="up").astype(np.float64)
        hi = np.where(lo < 0, cast(x[::16], name, rounding="down").astype(np.float64), hi)
        x[::16] = np.where(hi != lo, (lo + hi) / 2, x[::16]).astype(np.float32)  # exact: one more bit
        return x

    return make


def _pychop_cast(name, rounding, backend):
    """pychop's ``Chop(exp_bits, sig_bits, rmode)`` of the format, on float32 data in the
    backend's arrays (numpy: dask blocks of 2**20, its fastest measured here; pychop
    runs its stateful stochastic mode without dask); the output holds the format's
    values in float32."""

    def setup(x, out):
        import pychop  # its "auto" backend follows the array type

        e, m = _PYCHOP_FORMAT[name]
        ch = pychop.Chop(exp_bits=e, sig_bits=m, rmode=PYCHOP_RMODE[rounding], chunk_size=1 << 20, random_state=0)
        xb = _torch().from_numpy(x) if backend == "torch" else x
        return lambda: ch(xb)

    return setup


def _rounding_job(name, rounding):
    short = {"bfloat16": "bf16", "float8_e4m3fn": "e4m3fn"}[name]
    # rmodes 1-4 give our bits except where pychop's float32 floor(log2|x|) rounds up to
    # the next power of two (|x| within a few ulps below one: ~1 element in 1e6, each a
    # coarser quantum; tests/test_rounding.py names it) and on -0.0 (pychop returns +0.0)
    same = rounding not in ("stochastic", "nearest_away")
    why = {"stochastic": "other random bits (the distribution is tested in tests/test_rounding.py)",
           "nearest_away": "pychop's rmode 8 rounds negative ties toward zero"}.get(rounding)
    kw = {"seed": 0} if rounding == "stochastic" else {}
    return Job(
        f"cast f32->{short} rounding={rounding}",
        _with_out(rounding_data(name), NP_DTYPES[name]),
        lambda x, out: cast(x, name, out=out, rounding=rounding, **kw),
        f"cast rounding={rounding}",
        [
            Peer("pychop Chop (numpy backend)", _pychop_cast(name, rounding, "numpy"), ("pychop",), same=same, why_not=why),
            Peer("pychop Chop (torch backend)", _pychop_cast(name, rounding, "torch"), ("pychop", "torch"), same=same,
                 why_not=why),
        ],
        target_roofline=None,
    )


NP_DTYPES = {"bfloat16": ml_dtypes.bfloat16, "float8_e4m3fn": ml_dtypes.float8_e4m3fn}
ROUNDING_JOBS = [_rounding_job(name, r) for name in _PYCHOP_FORMAT for r in ROUNDING_MODES]


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

def _float8_job(name: str) -> Job:
    """float32 -> a float8 format: ml_dtypes' and jax's non-saturating cast are ours;
    torch's ``copy_`` saturates (as ONNX's ``saturate=1``), our ``saturate=True``.
    The data overflows e4m3fn often (its max is 448): the overflow warning is muted."""

    def ours(x, out):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            cast(x, name, out=out)

    return Job(
        f"cast f32->{name.replace('float8_', 'f8')}",
        _with_out(_f32, getattr(ml_dtypes, name)),
        ours,
        "cast",
        [
            Peer("ml_dtypes astype", _np_cast),
            Peer("torch copy_ (saturating)", _torch_copy, ("torch",), variant="saturate"),
            Peer("jax.jit astype", _jit(lambda a: a.astype(name)), ("jax",)),
        ],
        variants={"saturate": lambda x, out: cast(x, name, out=out, saturate=True)},
    )


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
            Peer("cv2.multiply(x, 1, dtype=CV_16BF)", _cv2_mul_one("CV_16BF") if _cv2_has("CV_16BF") else None, ("cv2",),
                 same=False, why_not="this OpenCV has no CV_16BF (bfloat16 arrived in OpenCV 5.1)"),
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
    _float8_job("float8_e4m3fn"),
    _float8_job("float8_e5m2"),
    *ROUNDING_JOBS,
]


PARAMS: dict = {}  # (transform, input dtype, n) -> Params fitted outside the timed call
