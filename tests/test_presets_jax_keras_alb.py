"""The jax.numpy, keras and albumentations presets against the libraries themselves, bit for bit.

Installed versions verified: jax 0.10.2 (CPU), keras 3.15.1 (jax backend),
albumentations 2.0.8 with albucore 0.0.24.  Domains: every uint8 code, every
12-bit code and every uint16 code (where the library takes uint16), float
images (random [0, 1], edge values, rounding ties) of shape (H, W, 3).
XLA:CPU flushes float32 subnormals to zero (measured below), which the
program vocabulary has no op for: jax/keras float32 data is kept normal.
"""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")

import ml_dtypes
import numpy as np
import pytest

from kernels.presets import get
from kernels.presets._base import Exact
from kernels.program import run_program

import jax  # the peers extra: a missing library fails, never skips
jnp = jax.numpy
import keras  # the peers extra: a missing library fails, never skips
import albumentations as A  # the peers extra: a missing library fails, never skips

assert keras.backend.backend() == "jax", "KERAS_BACKEND must be jax (set before keras is imported)"

IMAGENET = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def np_dtype(name):
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def bits(a):
    a = np.asarray(a)
    return a.view({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_same(ours, theirs):
    """Same dtype, NaN where the library has NaN (payloads not compared), identical bits elsewhere."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    if ours.dtype.kind == "f" or ours.dtype == np_dtype("bfloat16"):
        nan = np.isnan(theirs.astype(np.float32))
        assert (np.isnan(ours.astype(np.float32)) == nan).all()
        ours, theirs = ours[~nan], theirs[~nan]
    diff = int((bits(ours) != bits(theirs)).sum())
    assert diff == 0, f"{diff} of {ours.size} elements differ"


def ours(name, x, **opts):
    built = get(name).build(np_name(x), None, **opts)
    return run_program(x, built.ops, built.output_dtype)


def np_name(x):
    return "bfloat16" if x.dtype == np_dtype("bfloat16") else x.dtype.name


def image_of_codes(n, dtype):
    """Every code 0..n-1 in each of 3 channels (shifted per channel), shape (H, W, 3)."""
    codes = np.arange(n, dtype=np.int64)
    img = np.stack([codes, np.roll(codes, n // 3), np.roll(codes, 2 * n // 3)], axis=-1).astype(dtype)
    w = 16 if n <= 256 else 64
    return img.reshape(-1, w, 3)


def float_image(dtype="float32", *, subnormals=False, nan=False, tiny=True, seed=0):
    """Random [0, 1], edge values and ties of x*255 (k + 0.5)/255, as (H, W, 3).

    ``tiny=False`` leaves out the smallest normal float32, whose scaled result is
    subnormal (XLA:CPU flushes it to zero: not modelled)."""
    rng = np.random.default_rng(seed)
    k = np.arange(256)
    edges = [0.0, -0.0, 1.0, 0.5, np.nextafter(np.float32(1), np.float32(0)), 2.0, -1.0]
    if tiny:
        edges += [np.finfo(np.float32).tiny]
    if subnormals:
        edges += [1e-45, 1e-40]
    if nan:
        edges += [np.nan]
    vals = np.concatenate([rng.random(3 * 4000), k / 255, (k + 0.5) / 255, edges]).astype(np.float32)
    vals = vals.astype(np_dtype(dtype))
    vals = np.concatenate([vals, np.zeros((-vals.size) % 48, vals.dtype)])
    return vals.reshape(-1, 16, 3)


INT_DOMAINS = {"uint8": (256, "uint8"), "12bit": (4096, "uint16"), "uint16": (65536, "uint16")}


def domain(kind):
    if kind in INT_DOMAINS:
        return image_of_codes(*INT_DOMAINS[kind])
    return float_image(kind)


# ------------------------------------------------------------------- jax.numpy


def jax_normalize(x, mean, std, dtype, jit):
    d = np_dtype(dtype)

    def f(a):
        m = mean if isinstance(mean, float) else jnp.asarray(mean, dtype=d)
        s = std if isinstance(std, float) else jnp.asarray(std, dtype=d)
        return (a.astype(d) - m) / s

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # float64 with x64 off: jax warns and uses float32
        return np.asarray(jax.jit(f)(x) if jit else f(jnp.asarray(x)))


JAX_STATS = {"imagenet": IMAGENET, "scalar": dict(mean=0.485, std=0.229), "pixels": dict(mean=127.5, std=58.395)}


JAX_STATS["double_rounding"] = dict(mean=-(1 + 2**-8 + 2**-30), std=1 + 2**-11 + 2**-30)
MODES = {"jit": True, "eager": False}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("stats", list(JAX_STATS))
@pytest.mark.parametrize("data", ["uint8", "12bit", "uint16", "float32"])
def test_jax_normalize_bits(data, stats, dtype, mode):
    x = domain(data)
    opts = dict(**JAX_STATS[stats], dtype=dtype)
    assert_same(ours(f"jax.{mode}.normalize", x, **opts), jax_normalize(x, jit=MODES[mode], **opts))


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_jax_normalize_16bit_inputs(dtype, mode):
    x = float_image(dtype, subnormals=True, nan=True)  # 16-bit subnormals are normal float32 values: kept
    for stats in JAX_STATS.values():
        opts = dict(**stats, dtype=dtype)
        assert_same(ours(f"jax.{mode}.normalize", x, **opts), jax_normalize(x, jit=MODES[mode], **opts))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_jax_eager_rounds_python_scalars_twice(dtype):
    """The same expression, eager vs jax.jit, on a Python float constant built to double-round."""
    v = {"float16": 1 + 2**-11 + 2**-30, "bfloat16": 1 + 2**-8 + 2**-30}[dtype]
    x = np.zeros((1, 1, 3), np_dtype(dtype))
    jit = float(np.asarray(jax.jit(lambda a: a + v)(x)).ravel()[0])
    eager = float(np.asarray(jnp.asarray(x) + v).ravel()[0])
    print(f"jax {dtype} 0 + {v!r}: jit {jit}, eager {eager}")
    assert jit == float(np.asarray(v).astype(np_dtype(dtype))) != eager == 1.0
    f = float_image()
    differ = int((bits(jax_normalize(f, mean=-v, std=v, dtype=dtype, jit=True))
                  != bits(jax_normalize(f, mean=-v, std=v, dtype=dtype, jit=False))).sum())
    print(f"jax {dtype} normalize(mean={-v!r}, std={v!r}): {differ} of {f.size} differ, jit vs eager")
    assert differ > 0


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_jax_jit_divides_by_reciprocal(dtype):
    """XLA turns / std into * (1/std) for float32 and float16, not bfloat16: counted on uint8 + float data."""
    x = np.concatenate([image_of_codes(256, "uint8").reshape(-1, 3).astype(np.float32) / 255,
                        float_image().reshape(-1, 3)]).reshape(-1, 16, 3)
    d = np_dtype(dtype)
    got = jax_normalize(x, **IMAGENET, dtype=dtype, jit=True)
    m, s = np.asarray(IMAGENET["mean"]).astype(d).astype(np.float32), np.asarray(IMAGENET["std"]).astype(d).astype(np.float32)
    sub = (x.astype(d).astype(np.float32) - m).astype(d).astype(np.float32)
    divided = (sub / s).astype(d)
    reciprocal = (sub * (np.float32(1) / s).astype(d).astype(np.float32)).astype(d)
    n_div, n_rec = int((bits(got) != bits(divided)).sum()), int((bits(got) != bits(reciprocal)).sum())
    print(f"jax.jit {dtype}: {n_div} of {x.size} differ from a true division, {n_rec} from * (1/std)")
    if dtype == "bfloat16":
        assert n_div == 0 and n_rec > 0
    else:
        assert n_rec == 0 and n_div > 0
    assert_same(ours("jax.jit.normalize", x, **IMAGENET, dtype=dtype), got)


def test_jax_flushes_float32_subnormals():
    """Documents why float32 data is kept normal: XLA:CPU reads subnormal inputs as zero."""
    x = np.array([1e-45, 1e-40, -1e-40, np.finfo(np.float32).tiny], np.float32)
    got = np.asarray(jax.jit(lambda a: a * 2.0**30)(x))  # a normal result unless the input is read as 0
    flushed = int((got[:3] == 0).sum())
    print(f"jax.jit float32: {flushed} of 3 subnormal inputs read as zero")
    assert flushed == 3 and got[3] == x[3] * np.float32(2.0**30)


# ----------------------------------------------------------------------- keras

KERAS_POLICIES = ["float32", "float16", "bfloat16", "mixed_float16"]
RESCALE = {"1/255": dict(scale=1 / 255), "1/127.5-1": dict(scale=1 / 127.5, offset=-1.0),
           "per_channel": dict(scale=(1 / 255, 1 / 4095, 2.0), offset=(0.0, -0.5, 0.25))}


@pytest.mark.parametrize("policy", KERAS_POLICIES)
@pytest.mark.parametrize("case", list(RESCALE))
@pytest.mark.parametrize("data", ["uint8", "12bit", "uint16", "float32", "float16"])
def test_keras_rescaling_bits(data, case, policy):
    x = domain(data) if data in INT_DOMAINS else float_image(data, tiny=False)
    layer = keras.layers.Rescaling(**RESCALE[case], dtype=policy)
    assert_same(ours("keras.Rescaling", x, **RESCALE[case], dtype=policy), layer(x))


@pytest.mark.parametrize("policy", ["float16", "bfloat16"])
def test_keras_rescaling_scale_rounding(policy):
    """A double-rounding case: float16 rounds the Python float once, bfloat16 via float32."""
    v = {"float16": 1 + 2**-11 + 2**-30, "bfloat16": 1 + 2**-8 + 2**-30}[policy]
    x = np.ones((1, 1, 3), np.float32)
    got = np.asarray(keras.layers.Rescaling(v, dtype=policy)(x)).astype(np.float64)
    once = float(np.asarray(v).astype(np_dtype(policy)))
    print(f"keras.Rescaling({v!r}, dtype={policy}): {float(got[0, 0, 0])}; one rounding gives {once}")
    # float16: rounded once; bfloat16: through float32 (convert_to_tensor's bfloat16 branch)
    assert got[0, 0, 0] == (once if policy == "float16" else 1.0) and once != 1.0
    assert_same(ours("keras.Rescaling", x, scale=v, dtype=policy), keras.layers.Rescaling(v, dtype=policy)(x))


NORM = {
    "imagenet_pixels": dict(mean=(123.675, 116.28, 103.53), variance=(58.395**2, 57.12**2, 57.375**2)),
    "unit": dict(mean=(0.485, 0.456, 0.406), variance=(0.229**2, 0.224**2, 0.225**2)),
    "scalar": dict(mean=2047.5, variance=1182.0**2),
    "zero_variance": dict(mean=(0.0, 1.0, 2.0), variance=(0.0, 1e-20, 4.0)),  # epsilon clamps the first two
}


@pytest.mark.parametrize("policy", KERAS_POLICIES)
@pytest.mark.parametrize("case", list(NORM))
@pytest.mark.parametrize("data", ["uint8", "12bit", "uint16", "float32"])
def test_keras_normalization_bits(data, case, policy):
    x = domain(data)
    if data == "float32":
        x = x * np.float32(255)
    layer = keras.layers.Normalization(**NORM[case], dtype=policy)
    assert_same(ours("keras.Normalization", x, **NORM[case], dtype=policy), layer(x))


def test_keras_normalization_mean_rounded_twice():
    """mean goes to float32 first, then float16: 1 + 2**-11 + 2**-30 becomes 1.0, not 1 + 2**-10."""
    v = 1 + 2**-11 + 2**-30
    got = np.asarray(keras.layers.Normalization(mean=-v, variance=1.0, dtype="float16")(np.zeros((1, 1, 1), np.float32)))
    once = float(np.float16(v))
    print(f"keras float16 mean {v!r}: layer gives {float(got.ravel()[0])}, one rounding would give {once}")
    assert float(got.ravel()[0]) == 1.0 != once
    mine = ours("keras.Normalization", np.zeros((1, 1, 1), np.float32), mean=-v, variance=1.0, dtype="float16")
    assert_same(mine, got)


# -------------------------------------------------------------- albumentations


def alb(transform, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transform(image=x)["image"]


ALB_NORM = {
    "imagenet": {},
    "inception": dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    "scalar": dict(mean=0.5, std=0.25),
    "12bit": dict(max_pixel_value=4095.0),
    "uint16": dict(max_pixel_value=65535.0),
    "float_images": dict(max_pixel_value=1.0),
}


@pytest.mark.parametrize("case", list(ALB_NORM))
@pytest.mark.parametrize("data", ["uint8", "12bit", "uint16", "float32", "float16", "float64"])
def test_albumentations_normalize_bits(data, case):
    x = domain(data) if data in INT_DOMAINS else float_image(data, subnormals=True, nan=True)
    assert_same(ours("albumentations.Normalize", x, **ALB_NORM[case]), alb(A.Normalize(**ALB_NORM[case]), x))


def test_albumentations_same_pixel_different_bits_by_dtype():
    """One pixel, two storages: uint8 code k (max_pixel_value=255) vs float32 k/255 (max_pixel_value=1).

    Both follow the library bit for bit; they disagree with each other on some codes."""
    u8 = image_of_codes(256, "uint8")
    f32 = alb(A.ToFloat(), u8)
    a = alb(A.Normalize(), u8)
    b = alb(A.Normalize(max_pixel_value=1.0), f32)
    differ = int((bits(a) != bits(b)).sum())
    print(f"albumentations.Normalize: {differ} of {a.size} (code, channel) pairs differ between uint8 and float32 input")
    assert differ > 0
    assert_same(ours("albumentations.Normalize", u8), a)
    assert_same(ours("albumentations.Normalize", f32, max_pixel_value=1.0), b)
    # the same *number* as uint8 and float32 (0..255 stored as float) takes the same ops: no difference
    assert_same(alb(A.Normalize(), u8.astype(np.float32)), a)


TO_FLOAT = {"default": {}, "4095": dict(max_value=4095), "255.0": dict(max_value=255.0), "2.0": dict(max_value=2.0)}


@pytest.mark.parametrize("case", list(TO_FLOAT))
@pytest.mark.parametrize("data", ["uint8", "12bit", "uint16", "float32", "float16", "bfloat16", "float64"])
def test_albumentations_to_float_bits(data, case):
    x = domain(data) if data in INT_DOMAINS else float_image(data, subnormals=True, nan=True)
    opts = TO_FLOAT[case]
    if data == "bfloat16" and not opts:
        with pytest.raises(RuntimeError) as lib:
            alb(A.ToFloat(), x)
        with pytest.raises(TypeError) as mine:
            get("albumentations.ToFloat").build("bfloat16", None)
        assert str(lib.value) == str(mine.value)
        return
    assert_same(ours("albumentations.ToFloat", x, **opts), alb(A.ToFloat(**opts), x))


def test_albumentations_to_float_uint16_rounds_twice():
    """uint16 / 65535 in float64, then float32: counted against one float32 division."""
    x = image_of_codes(65536, "uint16")
    got = alb(A.ToFloat(), x)
    f32_div = x.astype(np.float32) / np.float32(65535)
    differ = int((bits(got) != bits(f32_div)).sum())
    print(f"albumentations.ToFloat uint16: {differ} of {x.size} differ from a float32 division")
    assert_same(ours("albumentations.ToFloat", x), got)


def test_albumentations_to_float_ignores_max_value_for_float32():
    x = float_image()
    assert_same(alb(A.ToFloat(max_value=255.0), x), x)
    assert_same(ours("albumentations.ToFloat", x, max_value=255.0), x)


FROM_FLOAT = {"uint8": {}, "uint16": dict(dtype="uint16"), "uint8_max_1": dict(max_value=1.0),
              "uint16_4095": dict(dtype="uint16", max_value=4095)}


@pytest.mark.parametrize("case", list(FROM_FLOAT))
@pytest.mark.parametrize("data", ["float32", "float64", "float16", "bfloat16"])
def test_albumentations_from_float_bits(data, case):
    opts = FROM_FLOAT[case]
    # values up to 300 reach saturation; NaN is excluded: float->uint of NaN is undefined (float32 path)
    x = np.concatenate([float_image("float64").reshape(-1), np.linspace(-2, 300, 4800)]).astype(np_dtype(data))
    x = x[: x.size // 48 * 48].reshape(-1, 16, 3)
    if data in ("float16", "bfloat16") and opts.get("dtype") == "uint16":
        with pytest.raises(ValueError):
            get("albumentations.FromFloat").build(data, None, **opts)
        return
    assert_same(ours("albumentations.FromFloat", x, **opts), alb(A.FromFloat(**opts), x))


def test_albumentations_from_float_rounds_half_to_even():
    k = np.arange(255, dtype=np.float32)  # 254.5 is the last tie below saturation
    x = np.stack([k + 0.5, k + 0.5, k], axis=-1).reshape(-1, 1, 3)  # ties, exact in float32
    got = alb(A.FromFloat(max_value=1.0), x)
    even = int((got[..., 0].astype(np.int64) % 2 == 0).sum())
    up = int((got[..., 0].astype(np.float64) == k.reshape(-1, 1) + 1.0).sum())
    print(f"albumentations.FromFloat ties: {even} of {k.size} went to the even neighbour, {up} rounded up")
    assert even == k.size
    assert_same(ours("albumentations.FromFloat", x, max_value=1.0), got)


def test_albumentations_from_float_float64_stays_float():
    x = float_image("float64")
    got = alb(A.FromFloat(), x)
    assert got.dtype == np.float64
    assert_same(ours("albumentations.FromFloat", x), got)


# --------------------------------------------------------------- contract


ALL = ["jax.jit.normalize", "jax.eager.normalize", "keras.Rescaling", "keras.Normalization",
       "albumentations.Normalize", "albumentations.ToFloat", "albumentations.FromFloat"]
MINIMAL = {"jax.jit.normalize": IMAGENET, "jax.eager.normalize": IMAGENET, "keras.Rescaling": dict(scale=0.5),
           "keras.Normalization": dict(mean=1.0, variance=4.0), "albumentations.ToFloat": dict(max_value=255)}


@pytest.mark.parametrize("name", ALL)
def test_unknown_option_lists_valid(name):
    with pytest.raises(TypeError, match="options"):
        get(name).build("uint8", None, nope=1, **MINIMAL.get(name, {}))


@pytest.mark.parametrize(
    "name,opts,exc",
    [
        ("jax.jit.normalize", dict(IMAGENET, dtype="int8"), ValueError),
        ("jax.jit.normalize", dict(mean=0.5), TypeError),
        ("jax.jit.normalize", dict(mean=0.5, std=0.0), ValueError),
        ("keras.Rescaling", dict(scale="1/255"), TypeError),
        ("keras.Rescaling", dict(scale=0.5, dtype="float8"), ValueError),
        ("keras.Normalization", dict(mean=1.0, variance=1.0, axis=0), ValueError),
        ("keras.Normalization", dict(mean=1.0, variance=1.0, invert=True), ValueError),
        ("keras.Normalization", dict(mean=(1.0, 2.0), variance=(1.0,)), ValueError),
        ("albumentations.Normalize", dict(normalization="min_max"), ValueError),
        ("albumentations.Normalize", dict(normalization="bogus"), ValueError),
        ("albumentations.FromFloat", dict(dtype="int8"), ValueError),
        ("albumentations.ToFloat", dict(max_value=True), TypeError),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_values(name, opts, exc):
    with pytest.raises(exc):
        get(name).build("float32", None, **opts)


@pytest.mark.parametrize("name", ALL)
def test_ideal_is_exact(name):
    opts = MINIMAL.get(name, {})
    ideal = get(name).ideal(None, **opts)
    assert ideal and all(isinstance(e, Exact) for e in ideal)


def test_ideal_values():
    from fractions import Fraction

    (e,) = get("albumentations.Normalize").ideal(None)
    assert e.values[0][0] == 1 / (Fraction(0.229) * 255) and e.values[1][2] == -Fraction(0.406) / Fraction(0.225)
    (e,) = get("jax.eager.normalize").ideal(None, mean=0.5, std=0.25)
    assert e.values == ((Fraction(4),), (Fraction(-2),))
    assert get("keras.Normalization").ideal(None, mean=1.0, variance=2.0)[0].kind == "sqrt"
    with pytest.raises(ValueError, match="max_value"):
        get("albumentations.ToFloat").ideal(None)
