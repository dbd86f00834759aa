"""time_ benchmarks: throughput of the kernels and their peers, compile time.

Every ``setup`` builds its inputs and runs the timed call once, so JIT
compilation (or loading from the disk cache) never lands in a timed sample.
Parameters are readable strings.  Peers (numpy, OpenCV ``convertTo``, numexpr)
are a parameter of the same benchmark, so ``asv compare`` and the html view
show them side by side; a peer that is not installed is skipped.
"""

import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

import kernels as K
from kernels import speed

SIZES = {"1e5": 100_000, "1e7": 10_000_000}
PAIRS = ["uint8->float16", "uint8->float32", "uint16->float32", "float32->float16", "float32->uint8"]
VARIANTS = [f"{t}/{f}" for t in ("minmax", "standardize", "scale", "maxabs") for f in K.FORMULAS[t]] + ["quantize/round"]


def _data(dtype: str, n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dtype == "uint8":
        return rng.integers(0, 256, n, dtype=np.uint8)
    if dtype == "uint16":
        return rng.integers(0, 4096, n, dtype=np.uint16)
    return rng.normal(0, 100, n).astype(np.float32)


def _options(transform: str, dtype: str) -> dict:
    return {"divisor": 255.0} if transform == "scale" and not dtype.startswith("uint") else {}


class TimeTransform:
    """transform() with params fitted beforehand and out= given."""

    params = [VARIANTS, PAIRS, list(SIZES)]
    param_names = ["transform/formula", "input->output", "n"]
    timeout = 300

    def setup(self, variant, pair, size):
        t, f = variant.split("/")
        src, dst = pair.split("->")
        if t == "quantize" and dst != "uint8":
            raise NotImplementedError("quantize writes uint8/uint16")
        self.x = _data(src, SIZES[size])
        self.p = K.fit(self.x, t, **_options(t, src))
        self.kw = dict(params=self.p, formula=f, output_dtype=dst, out=np.empty(self.x.shape, K.REGISTRY[dst].dtype))
        self.t = t
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.time_transform(variant, pair, size)

    def time_transform(self, variant, pair, size):
        K.transform(self.x, self.t, **self.kw)


def _peer_minmax(impl, x, out, lo, r):
    """(x - lo) * r into out (float32), by each implementation."""
    if impl == "kernels":
        return None
    if impl == "numpy":
        return lambda: np.multiply(np.subtract(x, lo, dtype=np.float32), r, out=out)
    if impl == "numexpr":
        import numexpr

        return lambda: numexpr.evaluate("(x - lo) * r", local_dict={"x": x, "lo": lo, "r": r}, out=out, casting="unsafe")
    if impl == "opencv":
        import cv2

        # convertTo's x * alpha + beta into float32; Mat.convertTo is not in the Python
        # bindings, addWeighted(x, alpha, x, 0, beta, dtype=CV_32F) is the same one pass
        src, dst = x.reshape(1, -1), out.reshape(1, -1)
        alpha, beta = float(r), float(-lo * r)
        return lambda: cv2.addWeighted(src, alpha, src, 0.0, beta, dst=dst, dtype=cv2.CV_32F)
    raise NotImplementedError(impl)


class TimePeers:
    """minmax uint8 -> float32 against the peers a user would otherwise call."""

    params = [["kernels", "numpy", "numexpr", "opencv"], list(SIZES)]
    param_names = ["impl", "n"]

    def setup(self, impl, size):
        self.x = _data("uint8", SIZES[size])
        self.out = np.empty(self.x.shape, np.float32)
        self.p = K.fit(self.x, "minmax")
        lo = np.float32(self.p["min"][0])
        r = np.float32(1) / (np.float32(self.p["max"][0]) - lo)
        try:
            self.fn = _peer_minmax(impl, self.x, self.out, lo, r)
        except ImportError:
            raise NotImplementedError(f"{impl} is not installed") from None
        if self.fn is None:
            self.fn = lambda: K.transform(self.x, "minmax", params=self.p, formula="sub_mul", out=self.out)
        self.fn()

    def time_minmax_uint8_float32(self, impl, size):
        self.fn()


class TimeCast:
    params = [["float32->float16", "float32->bfloat16", "float64->float16", "float32->uint8", "uint8->float16"], ["kernels", "numpy"], list(SIZES)]
    param_names = ["input->output", "impl", "n"]

    def setup(self, pair, impl, size):
        src, dst = pair.split("->")
        self.x = _data(src, SIZES[size]) if src != "float64" else _data("float32", SIZES[size]).astype(np.float64)
        self.out = np.empty(self.x.shape, K.REGISTRY[dst].dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if impl == "kernels":
                self.fn = lambda: K.cast(self.x, dst, out=self.out)
            else:
                self.fn = lambda: self.out.__setitem__(..., self.x.astype(self.out.dtype))
            self.fn()

    def time_cast(self, pair, impl, size):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.fn()


class TimeFit:
    params = [list(K.ACCUMULATORS), ["float32", "float64"], list(SIZES)]
    param_names = ["accumulator", "acc_dtype", "n"]

    def setup(self, acc, acc_dtype, size):
        self.x = _data("float32", SIZES[size])
        self.time_fit_standardize(acc, acc_dtype, size)

    def time_fit_standardize(self, acc, acc_dtype, size):
        K.fit(self.x, "standardize", accumulator=acc, acc_dtype=acc_dtype)

    def time_fit_minmax(self, acc, acc_dtype, size):
        K.fit(self.x, "minmax")


class TimeDistinct:
    params = [["uint16", "float16", "float32", "float64"], ["kernels", "numpy"]]
    param_names = ["dtype", "impl"]

    def setup(self, dtype, impl):
        x = _data("float32", 10_000_000)
        self.x = {"uint16": _data("uint16", 10_000_000), "float16": x.astype(np.float16), "float32": x, "float64": x.astype(np.float64)}[dtype]
        self.fn = (lambda: K.distinct(self.x)) if impl == "kernels" else (lambda: np.unique(self.x, return_counts=True))
        self.fn()

    def time_distinct(self, dtype, impl):
        self.fn()


class TimeDomainSweep:
    """Every uint16 value through minmax -> float16, streamed and counted."""

    def setup(self):
        self.dom = K.domain("uint16")
        self.time_uint16_sweep()

    def time_uint16_sweep(self):
        K.measure(self.dom, "minmax", output_dtype="float16", stream=True, progress=False, exact_points=2, repeat=1)


class TimeSpeedCases:
    """The case table of `precision-bench speed` (shared with tests/test_speed.py)."""

    params = [[c.name for c in speed.CASES]]
    param_names = ["case"]

    def setup(self, name):
        self.case = next(c for c in speed.CASES if c.name == name)
        self.x, self.out = speed.prepare(self.case, 1_000_000)

    def time_case(self, name):
        self.case.ours(self.x, self.out)


_FIRST_CALL = (
    "import numpy as np, kernels; "
    "kernels.transform(np.arange(256, dtype=np.uint8), 'minmax', output_dtype='float16')"
)


class TimeCompile:
    """Compile time is a user-facing cost: a fresh process's first transform call."""

    number = 1
    repeat = 3
    timeout = 600

    def setup(self):
        subprocess.run([sys.executable, "-c", _FIRST_CALL], check=True)  # warm the disk cache

    def time_first_call_cache_warm(self):
        subprocess.run([sys.executable, "-c", _FIRST_CALL], check=True)

    def time_first_call_cache_cold(self):
        with tempfile.TemporaryDirectory() as d:
            subprocess.run([sys.executable, "-c", _FIRST_CALL], check=True, env={**os.environ, "NUMBA_CACHE_DIR": d})


class TimeImageNetPipeline:
    """torchvision's ImageNet preprocessing then .half(): ours (one fused pass, a
    per-channel lookup table) against the same pipeline in torch eager on 2 threads,
    on uint8 (N, 224, 224, 3) with about 5e7 elements (``out=`` given)."""

    params = [["ours", "torch-eager"]]
    param_names = ["impl"]
    timeout = 300

    def setup(self, impl):
        from kernels import speed

        self.x, self.out = speed._images(50_000_000)
        self.fn = (lambda: speed._imagenet_pipeline().transform(self.x, out=self.out)) if impl == "ours" else (
            lambda: speed._torch_imagenet(self.x))
        self.fn()

    def time_imagenet_u8_to_f16(self, impl):
        self.fn()
