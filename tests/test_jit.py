"""kernels._jit: serial nogil kernels run in slices on numba's threads, with the
same bits as one pass, whatever the thread count and the slicing."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from numba import get_num_threads, set_num_threads

import kernels
from kernels import _jit
from kernels.metrics import distinct


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


def test_bounds_cover_the_range_in_aligned_slices():
    for n, align in ((_jit.SERIAL_MAX + 1, 1), (10**6 + 3, 3), (5 * 10**6, 64 * 3), (10**6, 1 << 16)):
        b = _jit.bounds(n, align, threads=2)
        assert b[0] == 0 and b[-1] == n and np.all(np.diff(b) > 0)
        assert np.all(b[:-1] % align == 0), (n, align)
        assert b.size - 1 <= 2 * _jit.SLICES_PER_THREAD
    assert list(_jit.bounds(_jit.SERIAL_MAX, 1, threads=2)) == [0, _jit.SERIAL_MAX]  # small: one slice
    assert list(_jit.bounds(10**7, 1, threads=1)) == [0, 10**7]


def test_chunked_returns_results_in_slice_order_and_raises_a_helpers_error():
    n = 10**6
    b = _jit.bounds(n)
    assert _jit.chunked(lambda a, z: (a, z), n) == [(int(b[k]), int(b[k + 1])) for k in range(b.size - 1)]
    assert b.size > 2, "needs numba's 2 threads (the CI machine has 2 cores)"

    def boom(a, z):
        if a > 0:  # a slice some thread other than the first runs may take
            raise ZeroDivisionError("slice failed")
        return a

    with pytest.raises(ZeroDivisionError, match="slice failed"):
        _jit.chunked(boom, n)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16", "bfloat16", "float32", "float64"])
def test_transform_fit_cast_distinct_bits_do_not_depend_on_the_thread_count(dtype):
    """Sliced over 2 threads or run whole on one: the same bits, for every
    kernel family (apply, program, cast, min/max, moments, histogram)."""
    n = 3 * 10**5 + 7  # several slices, a ragged last one
    x = _data(n)[dtype]
    f2 = x.reshape(-1, 1)[: (n // 3) * 3].reshape(-1, 3)

    def run():
        p = kernels.fit(x, "standardize")
        pf = kernels.fit(f2, "standardize", axis=0, accumulator="kahan", acc_dtype="float32")
        m = kernels.fit(f2, "minmax", axis=0)
        return (
            kernels.transform(x, "minmax", output_dtype="float16").view(np.uint16),
            kernels.transform(x, "standardize", params=p, compute_dtype="float16", output_dtype="bfloat16").view(np.uint16),
            kernels.transform(f2, "minmax", params=m, output_dtype="float32"),
            kernels.cast(x, "float16").view(np.uint16),
            np.concatenate([p.mean, p.std, pf.mean, pf.std, m.min, m.max]),
            distinct(x).counts,
            kernels.pipeline("scale(divisor=255)", "cast(output_dtype=bfloat16)").transform(x).view(np.uint16),
        )

    sliced = run()
    before = get_num_threads()
    set_num_threads(1)
    try:
        whole = run()
    finally:
        set_num_threads(before)
    for a, b in zip(sliced, whole):
        assert np.array_equal(a, b, equal_nan=True)


def test_moments_chunks_do_not_depend_on_the_slicing(monkeypatch):
    """The standardize partials are per CHUNK rows; slices start on chunk
    boundaries, so more, smaller slices change nothing."""
    x = _data(2 * 10**6 + 11)["float32"]
    ref = kernels.fit(x, "standardize", accumulator="pairwise", acc_dtype="float32")
    monkeypatch.setattr(_jit, "SLICES_PER_THREAD", 16)
    monkeypatch.setattr(_jit, "MIN_SLICE", 1 << 10)
    again = kernels.fit(x, "standardize", accumulator="pairwise", acc_dtype="float32")
    assert ref.mean[0] == again.mean[0] and ref.var[0] == again.var[0]


def test_kernel_keeps_numba_dispatcher_attributes():
    from kernels.transforms import _apply_kernel

    kernels.transform(np.arange(10, dtype=np.uint8), "minmax", output_dtype="float16")
    assert _apply_kernel.signatures  # numba's own attribute, passed through
    assert hasattr(_apply_kernel.stats, "cache_hits")
