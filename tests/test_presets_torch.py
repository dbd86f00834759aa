"""The torch, torchvision and timm presets, bit for bit against torch 2.13 (CPU).

torchvision and timm cannot be installed beside torch 2.13 here (PyPI's
torchvision does not import with it; timm depends on torchvision), so their
presets are verified against the libraries' *source formulas* (transcribed
below, see the preset modules for file and commit) evaluated in torch ops, the
libraries' own array type.  ``torch.to``/``torch.eager``/``torch.compile`` are
verified against torch itself.

Domains: every uint8 code, every 12-bit code (0..4095 as uint16), every uint16
code, every float16/bfloat16 code in [0, 1] (or all codes for casts), float32
and float64 data (random, 0, 1, ties, subnormals).  Float -> integer casts are
undefined in C++ outside the integer range: those inputs are left out except
in the named trap test, which states the x86 behaviour the issue documents.
"""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import torch  # the peers extra: a missing library fails, never skips
torch.set_num_threads(2)

from kernels.presets import get  # noqa: E402
from kernels.presets.torchvision import CONSTANTS, ideal_for  # noqa: E402
from kernels.program import Op, run_program  # noqa: E402

TD = {
    "uint8": torch.uint8, "uint16": torch.uint16, "float16": torch.float16,
    "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64,
}
ND = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16,
      "float32": np.float32, "float64": np.float64}
FLOATS = ("float16", "bfloat16", "float32", "float64")
INTS = ("uint8", "uint16")
MAXV = {"uint8": 255, "uint16": 65535}
RNG = np.random.default_rng(20261202)


# ----------------------------------------------------------------- helpers


def to_torch(a: np.ndarray):
    if a.dtype == ml_dtypes.bfloat16:
        return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
    if a.dtype == np.uint16:
        return torch.from_numpy(a.astype(np.int32)).to(torch.uint16)
    return torch.from_numpy(a.copy())


def to_numpy(t) -> np.ndarray:
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    if t.dtype == torch.uint16:
        return t.to(torch.int32).numpy().astype(np.uint16)
    return t.contiguous().numpy()


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_bits(ours: np.ndarray, theirs: np.ndarray, keep=None):
    """Same dtype, same bits (NaN: both NaN, payload not compared) where ``keep``."""
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    if keep is not None:
        ours, theirs = ours[keep], theirs[keep]
    if ours.dtype.kind == "f" or ours.dtype == ml_dtypes.bfloat16:
        with np.errstate(invalid="ignore"):  # ml_dtypes warns casting bfloat16 NaN
            nan_o = np.isnan(ours.astype(np.float64))
            nan_t = np.isnan(theirs.astype(np.float64))
        np.testing.assert_array_equal(nan_o, nan_t)
        ours, theirs = ours[~nan_o], theirs[~nan_t]
    bad = np.flatnonzero(bits(ours) != bits(theirs))
    assert bad.size == 0, (
        f"{bad.size} of {ours.size} differ, e.g. ours {ours.ravel()[bad[:5]]} vs torch {theirs.ravel()[bad[:5]]}"
    )


def run(built, x):
    return run_program(x, built.ops, built.output_dtype)


def _f16_codes(lo=0.0, hi=1.0):
    v = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    with np.errstate(invalid="ignore"):
        f = v.astype(np.float64)
    return v[(f >= lo) & (f <= hi)]


def _bf16_codes(lo=0.0, hi=1.0):
    v = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(ml_dtypes.bfloat16)
    with np.errstate(invalid="ignore"):
        f = v.astype(np.float64)
    return v[(f >= lo) & (f <= hi)]


def _ties32():
    """float32 values in [0, 1] that are exact ties of float16 and bfloat16, and k/255."""
    h = _f16_codes().astype(np.float64)
    b = _bf16_codes().astype(np.float64)
    mids = np.concatenate([(h[1:] + h[:-1]) / 2, (b[1:] + b[:-1]) / 2])
    return np.concatenate([mids, np.arange(256) / 255.0]).astype(np.float32)


def float_data(dtype: str, lo=0.0, hi=1.0) -> np.ndarray:
    """[lo, hi] data in ``dtype``: all codes for the 16-bit floats, else random + edges + ties."""
    if dtype == "float16":
        return _f16_codes(lo, hi)
    if dtype == "bfloat16":
        return _bf16_codes(lo, hi)
    edges = np.array([0.0, 1.0, 0.5, 2.0**-149, 2.0**-126, 2.0**-24, 2.0**-14, np.nextafter(np.float32(1), 0)])
    base = np.concatenate([RNG.random(20000), edges, _ties32().astype(np.float64)])
    if dtype == "float64":
        # just past a float16/bfloat16 tie: one rounding goes up, via float32 it is a tie (to even)
        t = _ties32().astype(np.float64)
        base = np.concatenate([base, t + t * 2.0**-40, t - t * 2.0**-40])
    v = lo + (hi - lo) * base
    return np.clip(v, lo, hi).astype(ND[dtype])


INT_DOMAINS = {
    "uint8": lambda: np.arange(256, dtype=np.uint8),
    "uint12": lambda: np.arange(4096, dtype=np.uint16),
    "uint16": lambda: np.arange(65536, dtype=np.uint32).astype(np.uint16),
}


def domain(name: str) -> np.ndarray:
    return INT_DOMAINS[name]() if name in INT_DOMAINS else float_data(name)


def dtype_of(domain_name: str) -> str:
    return "uint16" if domain_name == "uint12" else domain_name


# ------------------------------------------------ the libraries' formulas


def _tv_max_value(dtype):  # torchvision/transforms/_functional_tensor.py
    return {torch.uint8: 255, torch.uint16: 65535}.get(dtype, 1)


def _tv_value_bits(dtype):
    return {torch.uint8: 8, torch.uint16: 16}[dtype]


def tv_to_dtype_image(image, dtype, scale=False):
    """torchvision to_dtype_image's arithmetic (v2/functional/_misc.py)."""
    if image.dtype == dtype:
        return image
    if not scale:
        return image.to(dtype)
    if image.is_floating_point():
        if dtype.is_floating_point:
            return image.to(dtype)
        return image.mul(float(_tv_max_value(dtype)) + 1.0 - 1e-3).to(dtype)
    if dtype.is_floating_point:
        return image.to(dtype).mul_(1.0 / _tv_max_value(image.dtype))
    shift = abs(_tv_value_bits(image.dtype) - _tv_value_bits(dtype))
    if _tv_value_bits(image.dtype) > _tv_value_bits(dtype):
        return (image / 2**shift).to(dtype)  # the uint16 branch (no bit shifts for uint16)
    return image.to(dtype) * 2**shift


def tv_normalize_image(image, mean, std):
    """torchvision normalize_image's arithmetic, on (..., C, H, W)."""
    mean = torch.as_tensor(mean, dtype=image.dtype).view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=image.dtype).view(-1, 1, 1)
    return image.sub(mean).div_(std)


def channels_first(fn, x_last):
    """Apply a (C, H, W) function to our channel-last (N, C) array."""
    t = to_torch(x_last).permute(1, 0).unsqueeze(-1)
    return to_numpy(fn(t).squeeze(-1).permute(1, 0))


def timm_prefetch(x, mean, std, img_dtype):
    """timm PrefetchLoader's arithmetic (data/loader.py), on (N, C, H, W)."""
    m = torch.tensor([v * 255 for v in mean], dtype=img_dtype).view(1, len(mean), 1, 1)
    s = torch.tensor([v * 255 for v in std], dtype=img_dtype).view(1, len(std), 1, 1)
    return x.to(img_dtype).sub_(m).div_(s)


# ------------------------------------------------------- torchvision.ToDtype

TODTYPE_CASES = [
    (src, dst, scale)
    for src in ("uint8", "uint12", "uint16") + FLOATS
    for dst in INTS + FLOATS
    for scale in (True, False)
    if not (src in ("uint8", "uint12", "uint16") and dst in INTS and not scale and dtype_of(src) == dst)
]


@pytest.mark.parametrize("src,dst,scale", TODTYPE_CASES, ids=[f"{s}-to-{d}-scale{int(c)}" for s, d, c in TODTYPE_CASES])
def test_torchvision_todtype(src, dst, scale):
    x = domain(src)
    built = get("torchvision.ToDtype").build(dtype_of(src), None, dtype=dst, scale=scale)
    theirs = to_numpy(tv_to_dtype_image(to_torch(x), TD[dst], scale))
    keep = None
    if src in FLOATS and dst in INTS:
        # defined domain only: the value torch converts must lie in (-1, 2**bits)
        pre = to_torch(x).mul(float(MAXV[dst]) + 1.0 - 1e-3) if scale else to_torch(x)
        pre = pre.double().numpy()
        keep = (pre > -1) & (pre < MAXV[dst] + 1)
    assert_bits(run(built, x), theirs, keep)


def test_torchvision_float16_one_becomes_zero_uint8():
    """pytorch/vision#6799: 1.0 * 255.999 rounds to 256 in float16 and the uint8
    cast wraps it to 0 (out of range: undefined in C++, wraps on x86 where this
    runs); codes k/255 near the top come back one higher."""
    x = (np.arange(256) / 255.0).astype(np.float16)
    built = get("torchvision.ToDtype").build("float16", None, dtype="uint8", scale=True)
    ours = run(built, x)
    theirs = to_numpy(tv_to_dtype_image(to_torch(x), torch.uint8, True))
    assert_bits(ours, theirs)
    assert ours[255] == 0 and theirs[255] == 0
    high = np.flatnonzero(ours.astype(int) == np.arange(256) + 1)
    assert high.size > 0 and set(high) == set(np.flatnonzero(theirs.astype(int) == np.arange(256) + 1))
    print("float16 k/255 -> k+1 for k in", high.tolist())


@pytest.mark.parametrize("dst", ["float32", "float16", "bfloat16"])
def test_torchvision_reciprocal_not_division(dst):
    """ToDtype multiplies by 1/255 (a Python float); x / 255 is another program.
    Count the uint8 codes where the two differ in torch, and check the preset is
    the multiplication and a division program reproduces torch's div."""
    x = np.arange(256, dtype=np.uint8)
    t = to_torch(x).to(TD[dst])
    mul, div = to_numpy(t.mul(1.0 / 255)), to_numpy(t.div(255))
    built = get("torchvision.ToDtype").build("uint8", None, dtype=dst, scale=True)
    assert_bits(run(built, x), mul)
    differ = int((bits(mul) != bits(div)).sum())
    div_prog = [Op("round", dst), Op("div", "float32", (255.0,))] + ([Op("round", dst)] if dst != "float32" else [])
    ours_div = run_program(x, div_prog, dst)
    assert_bits(ours_div, div)
    assert int((bits(run(built, x)) != bits(ours_div)).sum()) == differ
    print(f"{dst}: mul(1/255) and div(255) differ on {differ} of 256 uint8 codes")
    if dst == "float32":
        assert differ > 0


def test_todtype_ideal_fraction():
    (ex,) = ideal_for("uint8", dtype="float32", scale=True)
    assert ex.values[0] == (Fraction(1, 255),)
    (ex,) = get("torchvision.ToDtype").ideal(None, dtype="float32", scale=True)
    assert ex.kind == "affine" and ex.values[0] == (Fraction(1, 255),)


# ------------------------------------------------------ torchvision.Normalize

NORM_CASES = [(d, c) for d in FLOATS for c in CONSTANTS]


@pytest.mark.parametrize("dtype,name", NORM_CASES, ids=[f"{d}-{c}" for d, c in NORM_CASES])
def test_torchvision_normalize(dtype, name):
    mean, std = CONSTANTS[name]["mean"], CONSTANTS[name]["std"]
    v = float_data(dtype)
    x = np.stack([v, v[::-1], np.roll(v, 7)], axis=-1)  # (N, 3), channel-last
    built = get("torchvision.Normalize").build(dtype, None, mean=mean, std=std)
    theirs = channels_first(lambda t: tv_normalize_image(t, mean, std), x)
    assert_bits(run(built, x), theirs)


def test_torchvision_normalize_scalar_stats():
    x = float_data("float16")[:, None]
    built = get("torchvision.Normalize").build("float16", None, mean=0.5, std=0.25)
    assert_bits(run(built, x), channels_first(lambda t: tv_normalize_image(t, 0.5, 0.25), x))


def test_torchvision_normalize_refuses_integers_with_its_message():
    with pytest.raises(TypeError, match=f"Input tensor should be a float tensor. Got {torch.uint8}."):
        get("torchvision.Normalize").build("uint8", None, mean=0.5, std=0.5)
    with pytest.raises(ValueError, match="std evaluated to zero"):
        get("torchvision.Normalize").build("float32", None, mean=0.5, std=(0.5, 0.0, 0.5))


def test_normalize_ideal_fraction():
    mean, std = CONSTANTS["imagenet"]["mean"], CONSTANTS["imagenet"]["std"]
    (ex,) = get("torchvision.Normalize").ideal(None, mean=mean, std=std)
    slope, icpt = ex.values
    for c in range(3):
        x = Fraction(3, 7)
        assert slope[c] * x + icpt[c] == (x - Fraction(mean[c])) / Fraction(std[c])


# ----------------------------------------------------------------- torch.to

TO_CASES = (
    [(s, d) for s in ("uint8", "uint12", "uint16") for d in FLOATS]
    + [("uint16", "uint8"), ("uint8", "uint16")]
    + [(s, d) for s in FLOATS for d in FLOATS if s != d]
    + [(s, d) for s in FLOATS for d in INTS]
)


def _to_domain(src, dst):
    if src in INT_DOMAINS:
        return domain(src)
    if dst in INTS:  # the defined domain of a C++ float -> unsigned cast: (-1, 2**bits)
        hi = MAXV[dst] + 1
        if src in ("float16", "bfloat16"):
            v = _f16_codes(-1, hi) if src == "float16" else _bf16_codes(-1, hi)
            return v[(v.astype(np.float64) > -1) & (v.astype(np.float64) < hi)]
        v = np.concatenate([RNG.uniform(-1, hi, 20000), np.arange(hi) + 0.5, np.arange(hi), [-0.5, -0.0, 2.0**-149]])
        v = v.astype(ND[src])
        return v[(v.astype(np.float64) > -1) & (v.astype(np.float64) < hi)]
    if src in ("float16", "bfloat16"):  # every code, NaN and inf included
        return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(ND[src])
    v = float_data(src)
    rnd = RNG.standard_normal(5000) * 10.0 ** RNG.integers(-45, 39, 5000)
    special = np.array([np.nan, np.inf, -np.inf, 65504.0, 65520.0, 65519.99, -0.0, 1e-8, 3.4e38])
    return np.concatenate([v.astype(np.float64), rnd, special]).astype(ND[src])


@pytest.mark.parametrize("src,dst", TO_CASES, ids=[f"{s}-to-{d}" for s, d in TO_CASES])
def test_torch_to(src, dst):
    import warnings

    x = _to_domain(src, dst)
    built = get("torch.to").build(dtype_of(src), None, dtype=dst)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy casts of inf/huge float64 in set-up
        theirs = to_numpy(to_torch(x).to(TD[dst]))
    assert_bits(run(built, x), theirs)


def test_torch_to_float64_to_float16_rounds_twice():
    """Via float32: a value just past a float16 tie lands on the tie, then goes to even."""
    x = float_data("float64")
    built = get("torch.to").build("float64", None, dtype="float16")
    theirs = to_numpy(to_torch(x).to(torch.float16))
    assert_bits(run(built, x), theirs)
    once = x.astype(np.float16)  # numpy: one rounding
    assert int((bits(once) != bits(theirs)).sum()) > 0


# -------------------------------------------------------- torch.eager/compile

EAGER_STATS = [(0.485, 0.229), (0.48145466, 0.26862954), (0.5, 0.5)]
EAGER_CASES = [(s, d, m, sd) for s in ("uint8", "uint12", "uint16", "float32") for d in ("float16", "bfloat16", "float32")
               for m, sd in EAGER_STATS]


@pytest.mark.parametrize("src,dtype,mean,std", EAGER_CASES, ids=[f"{a}-{b}-{c}-{d}" for a, b, c, d in EAGER_CASES])
def test_torch_eager(src, dtype, mean, std):
    x = domain(src)
    built = get("torch.eager").build(dtype_of(src), None, dtype=dtype, mean=mean, std=std)
    theirs = to_numpy((to_torch(x).to(TD[dtype]) - mean) / std)
    assert_bits(run(built, x), theirs)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_torch_eager_float16_scalar_stays_float32(dtype):
    """In ``t * c`` and ``t / c`` on a 16-bit tensor the Python scalar stays
    float32 (opmath); in ``t - c`` it is rounded to the tensor's dtype first.
    Each alternative program is measured against torch on all uint8 codes."""
    x = np.arange(256, dtype=np.uint8)
    t = to_torch(x).to(TD[dtype])
    c = 0.485
    c_low = float(np.float32(c).astype(ND[dtype]))
    for kind, fn in (("mul", lambda: t * c), ("div", lambda: t / c)):
        theirs = to_numpy(fn())
        kept = run_program(x, [Op("round", dtype), Op(kind, "float32", (c,)), Op("round", dtype)], dtype)
        rounded = run_program(x, [Op("round", dtype), Op(kind, "float32", (c_low,)), Op("round", dtype)], dtype)
        assert_bits(kept, theirs)
        assert int((bits(rounded) != bits(theirs)).sum()) > 0
    n = 0  # how often a float32 scalar would be wrong for '-', over a few constants
    for c in (0.485, 0.456, 0.406, 0.48145466, 0.4578275, 0.40821073, 0.1, 0.3):
        c_low = float(np.float32(c).astype(ND[dtype]))
        theirs = to_numpy(t - c)
        kept = run_program(x, [Op("round", dtype), Op("sub", "float32", (c,)), Op("round", dtype)], dtype)
        rounded = run_program(x, [Op("round", dtype), Op("sub", dtype, (c_low,))], dtype)
        assert_bits(rounded, theirs)
        n += int((bits(kept) != bits(theirs)).sum())
    print(f"{dtype}: t - c with a float32 scalar would differ on {n} of 8 x 256 (constant, code) pairs")
    assert n > 0


def _compile_available():
    try:
        f = torch.compile(lambda a: a + 1)
        f(torch.ones(4))
        return True
    except Exception:  # noqa: BLE001 - no compiler / inductor failure: skip with the reason
        return False


def test_torch_compile_fuses_in_float32():
    """torch.compile (inductor, C++ backend) of (x.to(float16) - mean) / std on
    all uint8 and uint16 codes, and of the float32 expression on uint8 (one
    compile per case; slow, so kept to one test)."""
    if not _compile_available():
        pytest.skip("inductor cannot compile here")
    mean, std = 0.485, 0.229

    def f(a):
        return (a.to(torch.float16) - mean) / std

    cf = torch.compile(f, dynamic=False)
    for src in ("uint8", "uint16"):
        x = domain(src)
        theirs = to_numpy(cf(to_torch(x)))
        built = get("torch.compile").build(src, None, dtype="float16", mean=mean, std=std)
        assert_bits(run(built, x), theirs)
        eager = to_numpy(f(to_torch(x)))
        recip = run_program(
            x, [Op("round", "float32"), Op("sub", "float32", (mean,)),
                Op("mul", "float32", (float(np.float32(1) / np.float32(std)),)), Op("round", "float16")], "float16")
        print(f"{src}: compile vs eager differ on {int((bits(theirs) != bits(eager)).sum())} of {x.size} codes; "
              f"vs a reciprocal multiply on {int((bits(theirs) != bits(recip)).sum())}")

    # float32 output tells a true division from a reciprocal multiply (16-bit rounding hides it)
    def g(a):
        return (a.to(torch.float32) - mean) / std

    x = domain("uint8")
    theirs = to_numpy(torch.compile(g, dynamic=False)(to_torch(x)))
    built = get("torch.compile").build("uint8", None, dtype="float32", mean=mean, std=std)
    assert_bits(run(built, x), theirs)
    recip = run_program(x, [Op("sub", "float32", (mean,)),
                            Op("mul", "float32", (float(np.float32(1) / np.float32(std)),))], "float32")
    n = int((bits(theirs) != bits(recip)).sum())
    print(f"float32: compile vs a reciprocal multiply differ on {n} of 256 codes")
    assert n > 0


# ---------------------------------------------------------------- timm

TIMM_CASES = [(s, d, c) for s in ("uint8", "uint16") for d in ("float16", "bfloat16", "float32") for c in ("imagenet", "clip")]


@pytest.mark.parametrize("src,img_dtype,name", TIMM_CASES, ids=[f"{a}-{b}-{c}" for a, b, c in TIMM_CASES])
def test_timm_prefetch_loader(src, img_dtype, name):
    mean, std = CONSTANTS[name]["mean"], CONSTANTS[name]["std"]
    v = domain(src)
    x = np.stack([v, v[::-1], np.roll(v, 5)], axis=-1)
    built = get("timm.PrefetchLoader").build(src, None, mean=mean, std=std, img_dtype=img_dtype)
    t = to_torch(x).permute(1, 0).reshape(1, 3, -1, 1)
    theirs = to_numpy(timm_prefetch(t, mean, std, TD[img_dtype]).reshape(3, -1).permute(1, 0))
    assert_bits(run(built, x), theirs)


def test_timm_fp16_flag_and_ideal():
    a = get("timm.PrefetchLoader").build("uint8", None, fp16=True)
    b = get("timm.PrefetchLoader").build("uint8", None, img_dtype="float16")
    assert repr(a.ops) == repr(b.ops) and a.output_dtype == b.output_dtype == "float16"
    (ex,) = get("timm.PrefetchLoader").ideal(None)
    slope, icpt = ex.values
    assert slope[0] * 255 + icpt[0] == (1 - Fraction(0.485)) / Fraction(0.229)


# ------------------------------------------------------------ bad options


@pytest.mark.parametrize(
    "name,kwargs,exc",
    [
        ("torchvision.ToDtype", {"dtype": "float32", "bogus": 1}, ValueError),
        ("torchvision.ToDtype", {"dtype": "int64"}, TypeError),
        ("torchvision.ToDtype", {"dtype": "float32", "scale": "yes"}, TypeError),
        ("torchvision.ToDtype", {}, TypeError),
        ("torchvision.Normalize", {"mean": (0.5,), "std": "x"}, TypeError),
        ("torchvision.Normalize", {"mean": (0.5, 0.5), "std": (0.5, 0.5, 0.5)}, ValueError),
        ("torch.to", {"dtype": np.float32}, TypeError),
        ("torch.eager", {"dtype": "float16", "mean": (0.5, 0.4), "std": 0.2}, TypeError),
        ("torch.compile", {"dtype": "uint8", "mean": 0.5, "std": 0.2}, TypeError),
        ("timm.PrefetchLoader", {"img_dtype": "uint8"}, TypeError),
        ("timm.PrefetchLoader", {"channels": 3}, ValueError),
    ],
    ids=["unknown", "bad-dtype", "bad-bool", "missing", "bad-std", "lengths", "numpy-dtype", "eager-tuple",
         "compile-int", "timm-int", "timm-unknown"],
)
def test_bad_options(name, kwargs, exc):
    with pytest.raises(exc):
        get(name).build("float32", None, **kwargs)


# ----------------------------------------------------------------- torchao (aliases of the block steps)
#
# Domains as 1-D value order, cut into rows of 32 (one MX block, one axiswise row each):
# every uint8 code / 255, every 12-bit code / 4095, and every float16 value in (0, 1]
# (15,360 of them: 0 is left out so that the count is a multiple of 32), as float32.


def _torchao_domains():
    f16 = np.arange(65536, dtype=np.uint16).view(np.float16)
    f16 = np.sort(f16[(f16 > 0) & (f16 <= 1)].astype(np.float32))
    return {
        "uint8": (np.arange(256, dtype=np.float32) / np.float32(255)).reshape(-1, 32),
        "12bit": (np.arange(4096, dtype=np.float32) / np.float32(4095)).reshape(-1, 32),
        "float16_01": f16.reshape(-1, 32),
    }


_AO_DOMAINS = _torchao_domains()


@pytest.fixture(scope="module")
def torchao_mods():
    import logging

    logging.getLogger("torchao").setLevel(logging.ERROR)
    import torchao.float8.float8_scaling_utils as fsu
    from torchao.float8.config import ScalingGranularity
    from torchao.float8.float8_training_tensor import LinearMMConfig
    from torchao.prototype.mx_formats.config import ScaleCalculationMode
    from torchao.prototype.mx_formats.constants import DTYPE_FP6_E2M3, DTYPE_FP6_E3M2
    from torchao.prototype.mx_formats.mx_tensor import MXTensor

    elems = {"float8_e4m3fn": torch.float8_e4m3fn, "float8_e5m2": torch.float8_e5m2,
             "float6_e2m3fn": DTYPE_FP6_E2M3, "float6_e3m2fn": DTYPE_FP6_E3M2, "float4_e2m1fn": torch.float4_e2m1fn_x2}
    return fsu, ScalingGranularity, LinearMMConfig, ScaleCalculationMode, MXTensor, elems


def _same_bits(a, b) -> bool:
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a.shape == b.shape and bool(((a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))).all())


@pytest.mark.parametrize("pow2", [False, True], ids=["scale", "pow2"])
@pytest.mark.parametrize("granularity", ["tensorwise", "axiswise"])
@pytest.mark.parametrize("fdtype", ["float8_e4m3fn", "float8_e5m2"])
@pytest.mark.parametrize("domain", list(_AO_DOMAINS))
def test_torchao_float8_alias_matches_torchao(torchao_mods, domain, fdtype, granularity, pow2):
    import kernels

    fsu, SG, LinearMMConfig, *_ = torchao_mods
    x = _AO_DOMAINS[domain]
    t = fsu.hp_tensor_to_float8_dynamic(
        torch.from_numpy(x.copy()), getattr(torch, fdtype), LinearMMConfig(),
        scaling_granularity=getattr(SG, granularity.upper()), axiswise_dim=-1 if granularity == "axiswise" else None,
        round_scales_to_power_of_2=pow2)
    lib = t.to_original_precision().numpy()
    spec = (f"torchao.float8(float8_dtype={fdtype}, scaling_granularity={granularity}, "
            f"round_scales_to_power_of_2={pow2})")
    pipe = kernels.pipeline(spec)
    assert [s.name for s in pipe.steps] == ["scaled_cast"]  # the alias is the block step
    ours = pipe.fit(x).transform(x)
    assert _same_bits(lib, ours)


@pytest.mark.parametrize("mode", ["floor", "ceil", "even", "rceil"])
@pytest.mark.parametrize("elem", ["float8_e4m3fn", "float8_e5m2", "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn"])
@pytest.mark.parametrize("domain", list(_AO_DOMAINS))
def test_torchao_mx_alias_matches_torchao(torchao_mods, domain, elem, mode):
    """MXTensor.to_mx(...).dequantize(float32) against the alias's pipeline output (every block
    of these domains is finite with amax far above 2**-127, where torchao 0.18.0 follows OCP)."""
    import kernels

    *_, SCM, MXTensor, elems = torchao_mods
    x = _AO_DOMAINS[domain]
    lib = MXTensor.to_mx(torch.from_numpy(x.copy()), elems[elem], 32, getattr(SCM, mode.upper())).dequantize(torch.float32)
    pipe = kernels.pipeline(f"torchao.mx(elem_dtype={elem}, scaling_mode={mode})")
    assert [s.name for s in pipe.steps] == ["mx"]
    assert _same_bits(lib.numpy(), pipe.fit(x).transform(x))


def test_torchao_aliases_expand_and_refuse_unknown_options():
    import kernels
    from kernels.steps import SpecError

    s = kernels.step("torchao.float8(scaling_granularity=axiswise, axiswise_dim=0)")
    assert s.spec == "scaled_cast(dtype=float8_e4m3fn, axis=0, eps=1e-12, pow2=False, saturate=True)"
    assert kernels.step("torchao.mx(elem_dtype=float4_e2m1fn)").spec == "mx(dtype=float4_e2m1fn, block=32, axis=-1, scale_rule=floor)"
    with pytest.raises(SpecError, match="elem_dtype"):
        kernels.step("torchao.mx")
    with pytest.raises(SpecError, match="scaling_granularity"):
        kernels.step("torchao.float8(scaling_granularity=rowwise)")
    with pytest.raises(SpecError, match="its options are"):
        kernels.step("torchao.mx(elem_dtype=float8_e4m3fn, block=16)")
