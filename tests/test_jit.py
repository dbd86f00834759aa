"""kernels._jit: one kernel function, compiled serially for small inputs and in
parallel for large ones, with the same bits either way and its own cache entry."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import kernels
from kernels import _jit, accumulators, codecs, lut, metrics, program, stats, transforms
from kernels.metrics import distinct
from kernels.transforms import _apply_kernel


def _data(n):
    rng = np.random.default_rng(7)
    return {
        "uint8": rng.integers(0, 256, n, dtype=np.uint8),
        "uint16": rng.integers(0, 4096, n, dtype=np.uint16),
        "float16": rng.normal(0, 100, n).astype(np.float16),
        "bfloat16": rng.normal(0, 100, n).astype(ml_dtypes.bfloat16),
        "float32": rng.normal(0, 100, n).astype(np.float32),
        "float64": rng.normal(0, 100, n),
    }


def _everything(x):
    """Every kernel family on x: apply, program, cast, min/max, moments, histogram."""
    f3 = x[: (x.size // 3) * 3].reshape(-1, 3)
    p = kernels.fit(x, "standardize")
    pf = kernels.fit(f3, "standardize", axis=0, accumulator="kahan", acc_dtype="float32")
    m = kernels.fit(f3, "minmax", axis=0)
    return (
        kernels.transform(x, "minmax", output_dtype="float16").view(np.uint16),
        kernels.transform(x, "standardize", params=p, compute_dtype="float16", output_dtype="bfloat16").view(np.uint16),
        kernels.transform(f3, "minmax", params=m, output_dtype="float32"),
        kernels.cast(x, "float16").view(np.uint16),
        np.concatenate([p.mean, p.std, pf.mean, pf.std, m.min, m.max]),
        distinct(x).counts,
        kernels.pipeline("scale(divisor=255)", "cast(output_dtype=bfloat16)").transform(x).view(np.uint16),
    )


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16", "bfloat16", "float32", "float64"])
def test_serial_and_parallel_compilations_give_the_same_bits(dtype, monkeypatch):
    """The same data through the parallel compilations (default: 3e5 elements
    is above SERIAL_MAX) and through the serial ones (threshold raised)."""
    x = _data(3 * 10**5 + 7)[dtype]
    assert x.size > _jit.SERIAL_MAX
    parallel = _everything(x)
    for mod in (accumulators, codecs, lut, metrics, program, stats, transforms):
        for v in vars(mod).values():
            if isinstance(v, _jit.Kernel):
                monkeypatch.setattr(v, "serial_max", 1 << 40)
    serial = _everything(x)
    for a, b in zip(parallel, serial):
        assert np.array_equal(a, b, equal_nan=True)


def test_small_inputs_run_the_serial_twin_large_ones_the_parallel_kernel():
    small, large = np.arange(256, dtype=np.float32), np.arange(_jit.SERIAL_MAX + 1, dtype=np.float32)
    kernels.transform(small, "minmax", output_dtype="float16")
    kernels.transform(large, "minmax", output_dtype="float16")
    sig = lambda d: {s[0].dtype.name for s in d.signatures}  # noqa: E731  input dtypes compiled so far
    assert "float32" in sig(_apply_kernel.serial) and "float32" in sig(_apply_kernel.parallel)
    assert _apply_kernel.serial.py_func.__qualname__ != _apply_kernel.parallel.py_func.__qualname__  # two cache entries
    assert _apply_kernel.signatures == _apply_kernel.parallel.signatures  # attributes pass through
