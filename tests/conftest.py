import numpy as np

from kernels import REGISTRY

DTYPES = list(REGISTRY)
# The formats of 8 bits and below share one family (kernels/codecs/minifloat.py):
# tests/test_minifloat.py proves each of them on every float32 pattern.  Tests
# that cross every dtype with compute dtypes, formulas or other dtypes (one
# compiled kernel per combination) take one format of each kind of special
# codes: fn, ieee-like, fnuz, no NaN/inf, e8m0.
MINIFLOAT_SAMPLE = ["float8_e4m3fn", "float8_e5m2", "float8_e5m2fnuz", "float4_e2m1fn", "float8_e8m0fnu"]
CROSS_DTYPES = [n for n in DTYPES if REGISTRY[n].itemsize > 1 or REGISTRY[n].is_integer] + MINIFLOAT_SAMPLE
FLOATS = [n for n, r in REGISTRY.items() if not r.is_integer]


def sample(name: str, n: int = 3000, seed: int = 0) -> np.ndarray:
    """Values that exercise a dtype: every code of small integers, spread and special floats."""
    rng = np.random.default_rng(seed)
    row = REGISTRY[name]
    if name == "uint8":
        return np.arange(256, dtype=np.uint8)
    if name == "uint16":
        return np.concatenate([np.arange(0, 65536, 37), [0, 1, 65504, 65519, 65520, 65535]]).astype(np.uint16)
    if name == "int8":
        return np.arange(-128, 128, dtype=np.int8)
    if name == "int16":
        return np.concatenate([np.arange(-32768, 32768, 37), [-32768, -32767, -2049, -2048, -1, 0, 1, 2047, 2048, 32767]]).astype(np.int16)
    vals = np.concatenate(
        [
            rng.normal(0, 3, n // 3),
            rng.uniform(-300, 300, n // 3),
            rng.integers(0, 256, n // 3) + 0.5,  # ties when rounded to integers
            [0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 2.5, 254.5, 255.5, 65504.0, 65519.0, 65520.0],
        ]
    )
    return vals.astype(row.dtype)
