"""pytest-benchmark guards over the same case table as `precision-bench speed`.

CI runs these with --benchmark-disable (each body runs once, as a plain test
of the case table); locally, `--benchmark-enable` times them and
`--benchmark-compare` compares two runs.  No timing is asserted here.
"""

import os

import numpy as np
import pytest

from kernels import speed

N = int(os.environ.get("PRECISION_BENCH_N", 1_000_000))


@pytest.mark.parametrize("case", speed.CASES, ids=[c.name for c in speed.CASES])
def test_ours(benchmark, case):
    x, out = speed.prepare(case, N)
    before = x.copy()
    benchmark(case.ours, x, out)
    assert np.array_equal(x, before)


@pytest.mark.parametrize("case", [c for c in speed.CASES if c.numpy], ids=[c.name for c in speed.CASES if c.numpy])
def test_numpy_peer(benchmark, case):
    x, out = speed.prepare(case, N)
    benchmark(case.numpy, x, out)


def test_roofline_probes_copy_and_read():
    from kernels import roofline

    src = np.arange(1000, dtype=np.uint64)
    dst = np.zeros_like(src)
    roofline.copy_probe(src, dst)
    assert np.array_equal(src, dst)
    assert roofline.read_probe(src) == src.sum()


SWEEP = os.environ.get("PRECISION_BENCH_SWEEP", "1 2")  # "-3.4028235e38 3.4028235e38": every finite float32


def test_domain_sweep(benchmark):
    """Streams a float32 domain through minmax -> float16 (the issue's goal: every
    float32 in <= 30 s; `precision-bench speed` prints that figure)."""
    import kernels as K

    lo, hi = (float(v) for v in SWEEP.split())
    dom = K.domain("float32", lo, hi)
    r = benchmark(K.measure, dom, "minmax", output_dtype="float16", compute_dtype="float64", stream=True, progress=False, exact_points=256)
    assert r.streamed
    if dom.size <= 1 << 26:  # the streamed count against numpy on the materialised domain
        from reference import numpy_distinct

        x = dom.values().astype(np.float64)
        s = np.float64(1) / (np.float64(dom.hi) - np.float64(dom.lo))
        y = (x * s + (np.float64(0) - np.float64(dom.lo) * s)).astype(np.float16)
        assert (r.distinct_in, r.distinct_out) == (x.size, numpy_distinct(y))


def test_measure_reports_the_spread_and_the_winning_probe():
    import warnings

    from kernels import roofline

    case = next(c for c in speed.CASES if c.name == "cast f32->f16")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a loaded machine may slow a probe
        r = speed.measure(case, 1 << 16, repeat=3)
    assert r["probe"] in roofline.probes(4 << 16, 2 << 16)
    assert 0 < r["ours_s"] <= r["ours_median_s"] and 0 < r["numpy_s"] <= r["peer_median_s"]
    assert speed._spread(r["ours_s"], r["ours_median_s"]).count("/") == 1 and speed._spread(None, None) == "-"
