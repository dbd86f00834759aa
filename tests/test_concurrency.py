"""Python threads calling the kernels at once, under every threading layer numba
can load here: the process never aborts and every result equals the
single-threaded one (numba's workqueue layer aborted with SIGABRT on concurrent
launches before kernels._threads serialised them)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _loadable(layer: str) -> bool:
    """Whether numba can load ``layer`` here: workqueue is built in; omp needs
    numba's omppool extension and libgomp (or another OpenMP runtime); tbb needs
    the ``tbb`` package.  A layer that cannot load cannot be tested."""
    if layer == "workqueue":
        return True
    if layer == "tbb" and importlib.util.find_spec("tbb") is None:
        return False
    try:
        importlib.import_module(f"numba.np.ufunc.{layer}pool")
    except ImportError:
        return False
    return True


LAYERS = [layer for layer in ("omp", "workqueue", "tbb") if _loadable(layer)]

CHILD = r"""
import sys, threading
import ml_dtypes, numpy as np, numba
import kernels as K

rng = np.random.default_rng(0)
n = 100_003
u8 = rng.integers(0, 256, n, dtype=np.uint8)            # 256-entry table path
u16 = rng.integers(0, 4096, n).astype(np.uint16)
f16 = rng.normal(0, 50, n).astype(np.float16)
bf16 = rng.normal(0, 50, n).astype(ml_dtypes.bfloat16)
f32 = rng.normal(0, 1000, (n // 3, 3)).astype(np.float32)
f64 = rng.normal(0, 1e6, n)
p_std = K.fit(f32, "standardize", axis=0)

def params(p):
    return tuple(np.asarray(v) for v in p.stats.values())

CASES = {
    "transform u8 minmax f16": lambda: K.transform(u8, "minmax", output_dtype="float16"),
    "transform u16 scale bf16": lambda: K.transform(u16, "scale", divisor=4095.0, output_dtype="bfloat16"),
    "transform f16 standardize f16c": lambda: K.transform(f16, "standardize", compute_dtype="float16", output_dtype="float16"),
    "transform f32 axis0 given params": lambda: K.transform(f32, "standardize", params=p_std),
    "transform f64 quantize u8": lambda: K.transform(f64, "quantize"),
    "inverse f32 minmax": lambda: K.inverse_transform(K.transform(f32, "minmax", params=K.fit(f32, "minmax")), "minmax", K.fit(f32, "minmax")),
    "cast f32 f16": lambda: K.cast(f32, "float16"),
    "cast f64 bf16": lambda: K.cast(f64, "bfloat16"),
    "cast f64 u8": lambda: K.cast(f64, "uint8"),
    "cast bf16 f32": lambda: K.cast(bf16, "float32"),
    "fit u16 minmax": lambda: params(K.fit(u16, "minmax")),
    "fit f16 std kahan": lambda: params(K.fit(f16, "standardize", accumulator="kahan")),
    "fit f32 std welford axis0": lambda: params(K.fit(f32, "standardize", accumulator="welford", axis=0)),
    "distinct u16": lambda: (K.distinct(u16).values, K.distinct(u16).counts),
    "distinct f64": lambda: (K.distinct(f64).values, K.distinct(f64).counts),
}

def bits(r):
    parts = r if isinstance(r, tuple) else (r,)
    return [(a.dtype.str, a.shape, np.ascontiguousarray(a).tobytes()) for a in map(np.asarray, parts)]

ref = {k: bits(f()) for k, f in CASES.items()}  # single-threaded
names = list(CASES)
start = threading.Barrier(4)
failures = []

def work(i):
    try:
        start.wait()
        for rep in range(6):
            for k in names[i:] + names[:i]:  # each thread in a different order
                if bits(CASES[k]()) != ref[k]:
                    failures.append(k)
    except BaseException as e:
        failures.append(repr(e))

threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(numba.threading_layer(), "failures:", sorted(set(failures)))
sys.exit(1 if failures else 0)
"""


@pytest.mark.parametrize("layer", LAYERS)
def test_four_threads_match_single_threaded(layer):
    env = {**os.environ, "NUMBA_THREADING_LAYER": layer, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, (res.returncode, res.stdout, res.stderr[-3000:])
    assert res.stdout.split() == [layer, "failures:", "[]"], res.stdout


def test_lock_is_taken_only_for_workqueue():
    """The decision follows the layer numba chose (known after the first launch)."""
    code = (
        "import numpy as np, kernels as K, kernels._threads as T; "
        "K.cast(np.zeros(8, np.float32), 'float16'); print(T.lock_needed())"
    )
    for layer in LAYERS:
        expected = str(layer == "workqueue")
        env = {**os.environ, "NUMBA_THREADING_LAYER": layer, "PYTHONPATH": str(ROOT)}
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0 and res.stdout.split()[-1] == expected, (layer, res.stdout, res.stderr[-2000:])
