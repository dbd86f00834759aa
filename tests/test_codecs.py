"""dtype codecs and cast: exhaustive bit-exactness against numpy and ml_dtypes."""

import warnings

import ml_dtypes
import numpy as np
import pytest
from conftest import DTYPES, sample
from reference import NP, convert, same_bits

import kernels
from kernels import REGISTRY, cast

SWEEP_CHUNK = 1 << 26


@pytest.mark.exhaustive
@pytest.mark.parametrize("target", ["float16", "bfloat16"])
def test_every_float32_pattern_casts_like_numpy(target):
    """All 2^32 float32 bit patterns encode exactly as astype(float16 / ml_dtypes.bfloat16)."""
    base = np.arange(SWEEP_CHUNK, dtype=np.uint32)
    bits = np.empty(SWEEP_CHUNK, dtype=np.uint32)
    ours = np.empty(SWEEP_CHUNK, dtype=NP[target])
    ref = np.empty(SWEEP_CHUNK, dtype=NP[target])
    nan_patterns = 0
    for start in range(0, 1 << 32, SWEEP_CHUNK):
        np.add(base, np.uint32(start), out=bits)
        x = bits.view(np.float32)
        with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # overflow to inf is expected near the top
            cast(x, target, out=ours)
            np.copyto(ref, x, casting="unsafe")
        differ = ours.view(np.uint16) != ref.view(np.uint16)
        if differ.any():
            # NaN payloads may differ; NaN must stay NaN
            nan_x = np.isnan(x)
            bad = differ & ~nan_x
            assert not bad.any(), f"first mismatch at float32 bits 0x{int(bits[np.argmax(bad)]):08x}"
            assert np.isnan(ours[nan_x].astype(np.float32)).all()
            nan_patterns += int(differ.sum())
    assert nan_patterns <= 2 * (1 << 23)  # only NaN patterns may differ


@pytest.mark.parametrize("source", ["float16", "bfloat16"])
def test_every_16bit_pattern_decodes_exactly(source):
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    x = bits.view(NP[source])
    for target in ("float32", "float64"):
        assert same_bits(cast(x, target), x.astype(NP[target]))
    # and back: 16-bit -> float32 -> 16-bit is the identity on every non-NaN pattern
    back = cast(cast(x, "float32"), source).view(np.uint16)
    nan = np.isnan(x.astype(np.float32))
    assert np.array_equal(back[~nan], bits[~nan])
    assert np.isnan(cast(cast(x, "float32"), source)[nan].astype(np.float32)).all()


@pytest.mark.parametrize("target", DTYPES)
@pytest.mark.parametrize("source", DTYPES)
def test_cast_matches_reference(source, target):
    x = sample(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ours = cast(x, target)
    ref = convert(x.astype(np.float64) if source == "bfloat16" else x, target)
    assert same_bits(ours, ref)


def test_float64_to_float16_rounds_once():
    # 1 + 2^-11 + 2^-40 is just above a float16 tie; through float32 it would land on the tie and round to 1.0
    x = np.array([1 + 2**-11 + 2**-40, -(1 + 2**-11 + 2**-40)])
    assert cast(x, "float16").tolist() == [1 + 2**-10, -(1 + 2**-10)]
    assert same_bits(cast(x, "float16"), x.astype(np.float16))


def test_ml_dtypes_float64_to_bfloat16_rounds_twice_we_do_not():
    x = np.array([1 + 2**-8 + 2**-40])
    assert float(x.astype(ml_dtypes.bfloat16)[0]) == 1.0  # ml_dtypes: via float32, double rounding
    assert float(cast(x, "bfloat16")[0]) == 1 + 2**-7  # correctly rounded


def test_float16_overflow_past_65504_warns_and_gives_inf():
    x = np.array([65504, 65519.99, 65520, -65520, 1e6], dtype=np.float32)
    with pytest.warns(RuntimeWarning, match="3 finite value"):
        y = cast(x, "float16")
    assert y.tolist() == [65504, 65504, np.inf, -np.inf, np.inf]


def test_bfloat16_nan_stays_nan_and_inf_stays_inf():
    x = np.array([np.nan, -np.nan, np.inf, -np.inf], dtype=np.float32)
    y = cast(x, "bfloat16").astype(np.float32)
    assert np.isnan(y[:2]).all() and y[2:].tolist() == [np.inf, -np.inf]


@pytest.mark.parametrize("target,top", [("uint8", 255), ("uint16", 65535)])
def test_integer_outputs_saturate_with_round_half_even(target, top):
    x = np.array([-1e9, -0.5, 0.5, 1.5, 2.5, top - 0.5, top + 0.4, 1e30, np.inf, -np.inf, np.nan], np.float64)
    assert cast(x, target).tolist() == [0, 0, 0, 2, 2, top - 1 if (top - 1) % 2 == 0 else top, top, top, top, 0, 0]


def test_cast_never_modifies_input_and_honours_out():
    x = sample("float32")
    before = x.copy()
    out = np.empty(x.shape, np.float16)
    res = cast(x, "float16", out=out)
    assert res is out
    assert np.array_equal(x, before)


def test_cast_2d_and_non_contiguous():
    x = sample("float32")[:3000].reshape(100, 30)
    assert same_bits(cast(x, "float16"), x.astype(np.float16))
    assert same_bits(cast(x[:, ::3], "float16"), x[:, ::3].astype(np.float16))
    assert same_bits(cast(x.T, "float16"), x.T.astype(np.float16))


def test_registry_rows_round_trip_their_numpy_dtype():
    for name, row in REGISTRY.items():
        assert kernels.codecs.lookup(row.dtype) is row
        assert kernels.codecs.lookup(name) is row
