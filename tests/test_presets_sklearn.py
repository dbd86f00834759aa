"""The scikit-learn and scikit-image presets against the libraries themselves, bit for bit.

Every figure here is computed by the library under test (scikit-learn 1.9.1,
scikit-image 0.26.0) and by the preset's ops (kernels.run_program) on the same
data: fitted attributes, transform and inverse_transform outputs compared as
bit patterns.  NaN positions must agree; NaN payloads are not compared.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest

import skimage  # noqa: E402
from sklearn import preprocessing as P  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402

from kernels.presets import get  # noqa: E402
from kernels.presets.scikit_image import ideal_for  # noqa: E402
from kernels.program import run_program  # noqa: E402

SCALERS = {
    "MinMaxScaler": P.MinMaxScaler,
    "StandardScaler": P.StandardScaler,
    "MaxAbsScaler": P.MaxAbsScaler,
    "RobustScaler": P.RobustScaler,
}
# option sets per scaler, with readable ids (the library's own option names)
OPTIONS = {
    "MinMaxScaler": [{}, {"feature_range": (-1, 2)}, {"feature_range": (0.1, 0.9), "clip": True}],
    "StandardScaler": [{}, {"with_mean": False}, {"with_std": False}, {"with_mean": False, "with_std": False}],
    "MaxAbsScaler": [{}, {"clip": True}],
    "RobustScaler": [
        {},
        {"quantile_range": (10.0, 90.0)},
        {"with_centering": False},
        {"with_scaling": False},
        {"unit_variance": True},
    ],
}
CASES = [(s, o) for s, opts in OPTIONS.items() for o in opts]


def _id(o: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in o.items()) or "defaults"


def assert_same_bits(got: np.ndarray, want: np.ndarray, what: str = "") -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if got.dtype.kind == "f":
        gn, wn = np.isnan(got), np.isnan(want)
        assert np.array_equal(gn, wn), f"{what}: NaN at different places"
        u = f"u{got.dtype.itemsize}"
        diff = (got.view(u) != want.view(u)) & ~gn
    else:
        diff = got != want
    assert not diff.any(), f"{what}: {int(diff.sum())} of {got.size} elements differ, first at {np.argwhere(diff)[0]}"


# ---------------------------------------------------------------- data


def _columns(n: int, seed: int) -> np.ndarray:
    """Several columns: normal, a constant one (zero range and std), ties, negative, wide."""
    rng = np.random.default_rng(seed)
    return np.stack(
        [
            rng.normal(3, 2, n),
            np.full(n, 7.25),  # constant: _handle_zeros_in_scale / _is_constant_feature
            rng.uniform(-1, 1, n),
            rng.integers(0, 5, n) * 0.5,  # many ties (median/percentile interpolation)
            -rng.exponential(100, n),  # negative only
            rng.uniform(0, 1, n) * 1e-3 + 1000,  # large offset: cancellation in the variance
        ],
        axis=1,
    )


def _codes(n_codes: int, dtype, seed: int) -> np.ndarray:
    """Every code 0..n_codes-1 in each column (shuffled), plus a constant column."""
    rng = np.random.default_rng(seed)
    codes = np.arange(n_codes)
    cols = [codes, rng.permutation(codes), np.full(n_codes, n_codes // 3)]
    return np.stack(cols, axis=1).astype(dtype)


def _data(kind: str) -> np.ndarray:
    if kind == "breast_cancer":
        return load_breast_cancer().data
    if kind == "columns":
        return _columns(1001, 0)
    if kind == "columns_nan":
        x = _columns(400, 1)
        x[::7, 0] = np.nan
        x[3::11, 3] = np.nan
        return x
    if kind == "uint8_codes":
        return _codes(256, np.uint8, 2)
    if kind == "u12_codes":
        return _codes(4096, np.uint16, 3)
    if kind == "uint16_codes":
        return _codes(65536, np.uint16, 4)
    raise KeyError(kind)


# (data, dtype to cast into): floats as float64/float32/float16, integer codes as they are
DATASETS = [
    ("breast_cancer", "float64"),
    ("breast_cancer", "float32"),
    ("breast_cancer", "float16"),
    ("columns", "float64"),
    ("columns", "float32"),
    ("columns_nan", "float64"),
    ("columns_nan", "float32"),
    ("uint8_codes", "uint8"),
    ("u12_codes", "uint16"),
    ("uint16_codes", "uint16"),
]


def _x(kind: str, dtype: str) -> np.ndarray:
    return _data(kind).astype(dtype)


def _fit_both(name: str, options: dict, x: np.ndarray):
    est = SCALERS[name](**options).fit(x)
    return est, get(f"sklearn.{name}")


# ---------------------------------------------------------------- scikit-learn


@pytest.mark.parametrize("data,dtype", DATASETS, ids=[f"{d}-{t}" for d, t in DATASETS])
@pytest.mark.parametrize("name,options", CASES, ids=[f"{s}({_id(o)})" for s, o in CASES])
def test_sklearn_fit_transform_inverse_bit_for_bit(name, options, data, dtype):
    x = _x(data, dtype)
    est, preset = _fit_both(name, options, x)
    stats = preset.fit(x, **options)
    for key, v in stats.items():
        lib = getattr(est, key)
        assert lib is not None, key
        assert_same_bits(v, np.asarray(lib, dtype=np.float64).reshape(-1), f"{name}.{key}")
    built = preset.build(dtype, stats, **options)
    want = est.transform(x)
    got = run_program(x, built.ops, built.output_dtype)
    assert_same_bits(got, want, f"{name}.transform")
    back = run_program(want, built.inverse.ops, built.inverse.output_dtype)
    assert_same_bits(back, est.inverse_transform(want), f"{name}.inverse_transform")


@pytest.mark.parametrize("name,options", CASES, ids=[f"{s}({_id(o)})" for s, o in CASES])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sklearn_transform_of_new_data_out_of_fitted_range(name, options, dtype):
    """Fit on one set, transform another with values outside it (clip=True matters)."""
    x = _x("columns", dtype)
    est, preset = _fit_both(name, options, x)
    built = preset.build(dtype, preset.fit(x, **options), **options)
    new = (_columns(300, 9) * 3 - 5).astype(dtype)
    new[0] = [0.0, -0.0, 1e30, -1e30, 5e-324 if dtype == "float64" else 1e-45, 1.0]
    assert_same_bits(run_program(new, built.ops, built.output_dtype), est.transform(new), "transform")


def test_standard_scaler_statistics_match_sklearn_breast_cancer():
    """mean_/var_/scale_ by _incremental_mean_and_var's own numpy calls: 0 of 17,070 outputs differ."""
    x = load_breast_cancer().data
    est = P.StandardScaler().fit(x)
    preset = get("sklearn.StandardScaler")
    stats = preset.fit(x)
    for key in ("mean_", "var_", "scale_"):
        assert_same_bits(stats[key], getattr(est, key), key)
    built = preset.build("float64", stats)
    assert_same_bits(run_program(x, built.ops, built.output_dtype), est.transform(x), "transform")


def test_minmax_scaler_fits_float32_data_in_float32():
    """scale_/min_ of float32 data are float32 (validate_data keeps float32), not float64."""
    x = _x("columns", "float32")
    est = P.MinMaxScaler(feature_range=(-1, 2)).fit(x)
    assert est.scale_.dtype == np.float32 and est.min_.dtype == np.float32
    stats = get("sklearn.MinMaxScaler").fit(x, feature_range=(-1, 2))
    assert_same_bits(stats["scale_"].astype(np.float32), est.scale_, "scale_")
    assert_same_bits(stats["min_"], est.min_.astype(np.float64), "min_")


def test_robust_scaler_divides_float32_data_in_float64():
    """center_ keeps X's dtype but scale_ (nanpercentile) is float64: the division is float64."""
    x = _x("columns", "float32")
    est = P.RobustScaler().fit(x)
    assert est.center_.dtype == np.float32 and est.scale_.dtype == np.float64
    built = get("sklearn.RobustScaler").build("float32", get("sklearn.RobustScaler").fit(x))
    assert [op.dtype for op in built.ops] == ["float32", "float64", "float32"]
    assert_same_bits(run_program(x, built.ops, built.output_dtype), est.transform(x), "transform")


@pytest.mark.parametrize("name", list(SCALERS))
def test_sklearn_integer_input_computes_in_float64(name):
    x = _x("uint8_codes", "uint8")
    est, preset = _fit_both(name, {}, x)
    built = preset.build("uint8", preset.fit(x))
    assert built.output_dtype == "float64" == est.transform(x).dtype.name


# ---------------------------------------------------------------- exact statistics and ideal


def _distinct(col: np.ndarray):
    v, c = np.unique(col[~np.isnan(col)], return_counts=True)
    return v, c


@pytest.mark.parametrize("data,dtype", [("columns", "float64"), ("u12_codes", "uint16")], ids=["columns", "u12"])
def test_standard_exact_fit_is_the_exact_mean_and_variance(data, dtype):
    x = _x(data, dtype).astype(np.float64)
    preset = get("sklearn.StandardScaler")
    fitted = preset.fit(x)
    for j in range(x.shape[1]):
        v, c = _distinct(x[:, j])
        ex = preset.exact_fit(v, c)
        fr = [Fraction(float(a)) for a in x[:, j]]
        mean = sum(fr) / len(fr)
        assert ex["mean_"] == mean
        assert ex["var_"] == sum((a - mean) ** 2 for a in fr) / len(fr)
        # sklearn's float64 mean (a recursive sum) is within the recursive-summation bound n*eps*mean|x|
        bound = len(fr) * np.finfo(np.float64).eps * np.mean(np.abs(x[:, j]))
        assert abs(float(ex["mean_"]) - fitted["mean_"][j]) <= bound


@pytest.mark.parametrize("q", [(25.0, 75.0), (10.0, 90.0), (0.0, 100.0), (33.0, 66.0)], ids=str)
def test_robust_exact_percentiles_match_numpy_on_integers(q):
    """On small integers numpy's 'linear' percentile is exact enough to compare: the exact
    Fraction, rounded to float64, equals np.percentile where the position is a dyadic fraction."""
    x = _x("uint8_codes", "uint8").astype(np.float64)[:37]
    preset = get("sklearn.RobustScaler")
    for j in range(x.shape[1]):
        v, c = _distinct(x[:, j])
        ex = preset.exact_fit(v, c, quantile_range=q)
        lo, hi = np.percentile(x[:, j], q)
        assert abs(float(ex["scale_"]) - ((hi - lo) or 1.0)) <= 1e-12 * max(1.0, hi - lo)
        assert float(ex["center_"]) == np.median(x[:, j])


@pytest.mark.parametrize("name,options", CASES, ids=[f"{s}({_id(o)})" for s, o in CASES])
def test_sklearn_ideal_with_fitted_stats_is_close_to_the_library(name, options):
    """The ideal, given sklearn's own fitted statistics (as exact Fractions, as the pipeline
    passes them) and evaluated exactly, is within a few roundings of sklearn's output; the
    tolerance is in the input's units (the library rounds x*scale and min_ apart)."""
    x = _x("columns", "float64")
    est, preset = _fit_both(name, options, x)
    want = est.transform(x)
    fitted = {k: [Fraction(float(v)) for v in a] for k, a in preset.fit(x, **options).items()}
    ideal = preset.ideal(fitted, **options)
    for j in range(x.shape[1]):
        for i in range(0, x.shape[0], 97):
            y, slope, shift = Fraction(float(x[i, j])), Fraction(1), Fraction(0)
            for e in ideal:
                vals = [t[j] if len(t) > 1 else t[0] for t in e.values]
                if e.kind == "affine":
                    y, slope = vals[0] * y + vals[1], slope * vals[0]
                    shift = -vals[1] / vals[0]
                elif e.kind == "clip":
                    y = min(max(y, Fraction(vals[0])), Fraction(vals[1]))
                else:  # sqrt: (x - mean) / sqrt(var), var 0 -> 1
                    s = np.sqrt(float(vals[1])) if vals[1] else 1.0
                    y, slope, shift = Fraction(float(y - vals[0])) / Fraction(s), Fraction(1 / s), vals[0]
            tol = 8 * (np.spacing(abs(x[i, j])) + np.spacing(abs(float(shift)))) * abs(float(slope))
            tol += 8 * np.spacing(abs(want[i, j]))
            assert abs(float(y) - want[i, j]) <= tol, (j, i, float(y), want[i, j])


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("name", list(SCALERS))
def test_sklearn_unknown_option_lists_the_valid_ones(name):
    preset = get(f"sklearn.{name}")
    with pytest.raises(ValueError, match=", ".join(preset.options)):
        preset.build("float64", None, bogus=1)


def test_sklearn_bad_option_values():
    with pytest.raises(TypeError, match="bool"):
        get("sklearn.StandardScaler").fit(np.ones((3, 2)), with_mean="yes")
    with pytest.raises(TypeError, match="two numbers"):
        get("sklearn.MinMaxScaler").fit(np.ones((3, 2)), feature_range=1)
    x = _x("columns", "float64")
    for preset, est, opts in [
        ("sklearn.MinMaxScaler", P.MinMaxScaler, {"feature_range": (1, 0)}),
        ("sklearn.RobustScaler", P.RobustScaler, {"quantile_range": (80.0, 20.0)}),
    ]:
        with pytest.raises(ValueError) as lib:
            est(**opts).fit(x)
        with pytest.raises(ValueError) as ours:
            get(preset).fit(x, **opts)
        assert str(ours.value) == str(lib.value)


def test_sklearn_unfitted_build_and_unsupported_dtype():
    with pytest.raises(ValueError, match="fit"):
        get("sklearn.StandardScaler").build("float64", None)
    with pytest.raises(TypeError, match="in_dtype"):
        get("sklearn.MinMaxScaler").build("int64", {"scale_": [1.0], "min_": [0.0]})
    with pytest.raises(ValueError, match="2D"):
        get("sklearn.MinMaxScaler").fit(np.ones(5))


# ---------------------------------------------------------------- scikit-image

IMG = ["img_as_float", "img_as_float32", "img_as_ubyte", "img_as_uint"]


def _float_data() -> np.ndarray:
    """float32 in [-1, 1]: random, 0 and -0, 1, -1, subnormals, the ties of x*255 and x*65535."""
    rng = np.random.default_rng(5)
    k = np.arange(255, dtype=np.float64)
    ties = np.concatenate([(k + 0.5) / 255, (np.arange(0, 65535, 97) + 0.5) / 65535]).astype(np.float32)
    return np.concatenate(
        [
            rng.uniform(-1, 1, 20000).astype(np.float32),
            rng.uniform(0, 1, 20000).astype(np.float32),
            ties,
            np.nextafter(ties, np.float32(0)),
            np.nextafter(ties, np.float32(1)),
            np.array([0.0, -0.0, 1.0, -1.0, 1e-45, -1e-45, 1.1754942e-38, 1.0 - 2**-24], np.float32),
        ]
    )


def _all_float16_in_unit() -> np.ndarray:
    """Every float16 bit pattern whose value is in [-1, 1]."""
    x = np.arange(65536, dtype=np.uint16).view(np.float16)
    return x[np.isfinite(x) & (np.abs(x) <= 1)]


IMAGE_INPUTS = {
    "uint8_all": lambda: np.arange(256, dtype=np.uint8).reshape(16, 16),
    "u12_all": lambda: np.arange(4096, dtype=np.uint16),
    "uint16_all": lambda: np.arange(65536, dtype=np.uint16).reshape(256, 256),
    "uint16_max_below_256": lambda: np.arange(256, dtype=np.uint16),
    "float16_all_in_unit": _all_float16_in_unit,
    "float32": _float_data,
    "float64": lambda: _float_data().astype(np.float64) * (1 - 2**-40),
}


def _library(fname: str, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # _scale's "Downcasting" warning; float16 overflow warnings
        return getattr(skimage, fname)(x)


def _preset_out(fname: str, x: np.ndarray) -> np.ndarray:
    p = get(f"skimage.{fname}")
    built = p.build(x.dtype.name, p.fit(x) if p.fit else None)
    return run_program(x, built.ops, built.output_dtype) if built.ops else x


@pytest.mark.parametrize("inp", list(IMAGE_INPUTS))
@pytest.mark.parametrize("fname", IMG)
def test_skimage_conversion_bit_for_bit(fname, inp):
    x = IMAGE_INPUTS[inp]()
    if fname == "img_as_uint" and x.dtype == np.float16:
        # float16 * 65535 is inf (0 * inf NaN) and the cast of inf/NaN to uint16 is undefined
        # in C: only negative inputs (-inf, clipped to 0) have a defined result
        x = x[x < 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the float16 overflow is the finding
        got = _preset_out(fname, x)
    assert_same_bits(got, _library(fname, x), f"{fname}({inp})")


def test_skimage_img_as_uint_float16_overflows_to_inf():
    """The multiply happens in float16 (the input dtype is wide enough by skimage's rule):
    65535 rounds to inf there, so every positive value is inf before the undefined cast."""
    p = get("skimage.img_as_uint")
    built = p.build("float16", p.fit(np.zeros(1, np.float16)))
    assert built.compute_dtype == "float16"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inside = np.multiply(np.array([0.5], np.float16), 65535, dtype=np.float16)
    assert np.isinf(inside).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # kernels.cast reports the overflow
        assert np.isinf(built.ops[0].rounded_consts()[0]).all()


def test_skimage_img_as_ubyte_uint16_depends_on_the_data_max():
    small = np.array([0, 17, 255], np.uint16)
    big = np.array([0, 17, 255, 256], np.uint16)
    assert_same_bits(_preset_out("img_as_ubyte", small), _library("img_as_ubyte", small), "max < 256: kept")
    assert_same_bits(_preset_out("img_as_ubyte", big), _library("img_as_ubyte", big), "max >= 256: // 256")
    with pytest.raises(ValueError, match="max"):
        get("skimage.img_as_ubyte").build("uint16", None)


@pytest.mark.parametrize("fname", ["img_as_ubyte", "img_as_uint"])
@pytest.mark.parametrize("bad", [1.5, -1.0000001, 2.0], ids=str)
def test_skimage_refuses_floats_outside_unit_range(fname, bad):
    x = np.array([0.0, 0.5, bad], np.float32)
    with pytest.raises(ValueError) as lib:
        getattr(skimage, fname)(x)
    with pytest.raises(ValueError) as ours:
        get(f"skimage.{fname}").fit(x)
    assert str(ours.value) == str(lib.value)


@pytest.mark.parametrize("fname", IMG)
def test_skimage_refuses_bfloat16_with_its_message(fname):
    import ml_dtypes
    with pytest.raises(ValueError) as lib:
        getattr(skimage, fname)(np.zeros(3, ml_dtypes.bfloat16))
    with pytest.raises(TypeError) as ours:
        get(f"skimage.{fname}").build("bfloat16", None)
    assert str(ours.value) == str(lib.value)


@pytest.mark.parametrize("fname", IMG)
def test_skimage_options(fname):
    p = get(f"skimage.{fname}")
    assert dict(p.options) == {"force_copy": False}
    assert _preset_out(fname, np.arange(3, dtype=np.uint8)).dtype == _library(fname, np.arange(3, dtype=np.uint8)).dtype
    p.build("uint8", None, force_copy=True)
    with pytest.raises(ValueError, match="force_copy"):
        p.build("uint8", None, copy=True)
    with pytest.raises(TypeError, match="bool"):
        p.build("uint8", None, force_copy="no")
    with pytest.raises(ValueError, match="ideal_for"):
        p.ideal(None)


@pytest.mark.parametrize("fname", IMG)
@pytest.mark.parametrize("in_dtype", ["uint8", "uint16", "float32"])
def test_skimage_ideal_for_is_close_to_the_library(fname, in_dtype):
    x = IMAGE_INPUTS[{"uint8": "uint8_all", "uint16": "uint16_all", "float32": "float32"}[in_dtype]]().reshape(-1)
    if in_dtype == "float32" and fname in ("img_as_ubyte", "img_as_uint"):
        x = x[x >= 0]
    want = _library(fname, x).astype(np.float64)
    (e, *rest) = ideal_for(f"skimage.{fname}", in_dtype)
    slope = float(e.values[0][0])
    exact = x.astype(np.float64) * slope
    if want.dtype.kind == "f" and _library(fname, x[:1]).dtype.kind == "f":
        assert np.all(np.abs(exact - want) <= 2 * np.spacing(np.abs(exact).astype(np.float32)))
    else:  # integer outputs: within one code (uint16 -> uint8 floors)
        assert np.all(np.abs(exact - want) <= 1.0)
