"""The uint8 table path (kernels.lut): bit for bit against the numpy reference."""

import warnings

import numpy as np
import pytest
from reference import NP, reference_transform, same_bits

from kernels import COMPUTE_DTYPES, fit, lut, transform
from kernels import transforms as transforms_module

# every uint8 value, repeated, with a tail that is not a multiple of the 64-lane block
N = 256 * 21 + 37


@pytest.fixture
def table_calls(monkeypatch):
    """Counts calls of lut.apply_table made by transform()."""
    calls = []
    real = lut.apply_table

    def spy(*args):
        calls.append(args[0].size)
        return real(*args)

    monkeypatch.setattr(lut, "apply_table", spy)
    return calls


def _uint8_data():
    rng = np.random.default_rng(0)
    return rng.permutation(np.resize(np.arange(256, dtype=np.uint8), N))


# The table path depends on the output's width, not on the formula (the table is
# built by the direct kernel, tested against the reference for every variant in
# test_transforms): every output dtype, each compute dtype, a few formulas.  The
# sub_div / mul_add -> float16 / uint8 kernels are compiled by test_transforms
# already, which keeps CI's cold-cache compile time down.
VARIANTS = [
    ("minmax", "sub_div", "float16"),
    ("minmax", "sub_div", "uint8"),
    ("minmax", "mul_add", "float16"),
    ("minmax", "mul_add", "uint8"),
    ("minmax", "mul_add", "float32"),
    ("minmax", "mul_add", "float64"),
    ("minmax", "mul_add", "bfloat16"),
    ("quantize", "round", "uint16"),
]


@pytest.mark.parametrize("compute", COMPUTE_DTYPES)
def test_uint8_table_path_matches_reference(compute, table_calls):
    x = _uint8_data()
    every = np.arange(256, dtype=np.uint8)
    assert x.size >= transforms_module.LUT_MIN_SIZE
    for t, formula, out in VARIANTS:
        opts = {"qdtype": out} if t == "quantize" else {}
        params = fit(x, t, **opts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # qmax 65535 overflows float16 compute
            ours = transform(x, t, params=params, formula=formula, compute_dtype=compute, output_dtype=out)
        # the reference, written op by op in numpy, on the 256 values, then indexed
        ref = reference_transform(every, params, formula, compute, out)[x]
        assert same_bits(ours, ref), (t, formula, out)
    # the table path ran (once per variant) where the CPU has it, and only there
    assert len(table_calls) == (len(VARIANTS) if lut.AVAILABLE else 0)


def test_small_uint8_arrays_use_the_direct_kernel(table_calls):
    x = np.arange(256, dtype=np.uint8)
    transform(x, "minmax", output_dtype="float16")
    assert table_calls == []


def test_per_feature_uint8_uses_the_direct_kernel(table_calls):
    """Per-channel params give one table per channel; that path is the direct kernel."""
    img = np.resize(np.arange(256, dtype=np.uint8), (64, 64, 3))
    y = transform(img, "minmax", axis=(0, 1), output_dtype="float16")
    assert table_calls == []
    for c in range(3):
        yc = transform(np.ascontiguousarray(img[..., c]), "minmax", output_dtype="float16")
        assert same_bits(y[..., c], yc)


@pytest.mark.skipif(not lut.AVAILABLE, reason="kernels.lut needs AVX-512 VBMI; transform() falls back")
@pytest.mark.parametrize("itemsize", [1, 2, 4, 8])
def test_apply_table_matches_numpy_indexing(itemsize):
    dt = np.dtype(f"u{itemsize}")
    table = (np.arange(256, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)).astype(dt)  # every byte differs
    for n in (1, 63, 64, 65, 4096 + 5):
        x = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8)
        out = np.empty(n, dt)
        lut.apply_table(x, table, out)
        assert np.array_equal(out, table[x]), n


@pytest.mark.skipif(not lut.AVAILABLE, reason="kernels.lut needs AVX-512 VBMI; transform() falls back")
def test_apply_table_in_place():
    x = np.random.default_rng(1).integers(0, 256, 10_001, dtype=np.uint8)
    table = np.arange(256, dtype=np.uint8)[::-1].copy()
    expect = table[x]
    lut.apply_table(x, table, x)
    assert np.array_equal(x, expect)


def test_uint8_overflow_counts_every_element(table_calls):
    """A table entry that overflows float16 sends the call to the direct kernel,
    which counts the overflowing elements for the warning."""
    x = _uint8_data()
    params = fit(x, "scale", divisor=1 / 512)  # 128 * 512 = 65536 > 65504
    with pytest.warns(RuntimeWarning, match=r"overflow in scale: (\d+) finite") as rec:
        y = transform(x, "scale", params=params, output_dtype="float16")
    expected = int((x.astype(np.float32) * np.float32(512) >= 65520).sum())
    assert f": {expected} finite" in str(rec[0].message)
    assert np.isinf(y.astype(np.float32)).sum() == expected
    assert table_calls == []


def test_uint8_in_place_on_the_table_path():
    x = _uint8_data()
    expect = transform(x, "scale", divisor=2.0, output_dtype="uint8")
    y = transform(x, "scale", divisor=2.0, output_dtype="uint8", out=x)
    assert y is x and np.array_equal(x, expect)
    assert np.array_equal(expect, np.clip(np.rint(_uint8_data() / np.float32(2)), 0, 255).astype(NP["uint8"]))



def test_target_without_vbmi_falls_back_to_the_direct_kernel():
    """NUMBA_CPU_FEATURES without VBMI (a portable-cache target): no table lookup, same bits."""
    import os
    import subprocess
    import sys

    import llvmlite.binding as llvm

    features = llvm.get_host_cpu_features()
    features["avx512vbmi"] = False
    code = (
        "import numpy as np, kernels; from kernels import lut; "
        "x = np.resize(np.arange(256, dtype=np.uint8), 5000); "
        "y = kernels.transform(x, 'scale', divisor=255.0, output_dtype='float16'); "
        "print(lut.AVAILABLE, y.view(np.uint16).sum())"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU")}
    env["NUMBA_CPU_FEATURES"] = features.flatten()
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    available, checksum = res.stdout.split()
    x = np.resize(np.arange(256, dtype=np.uint8), 5000)
    assert available == "False"
    assert int(checksum) == int(transform(x, "scale", divisor=255.0, output_dtype="float16").view(np.uint16).sum())
