"""scikit-image's dtype conversions as data (verified against scikit-image 0.26.0).

Read from ``skimage/util/dtype.py`` (``_convert``, ``_scale``, ``_dtype_itemsize``),
scikit-image 0.26.0; this module does not import scikit-image.

* unsigned int -> float: ``np.multiply(image, 1.0 / imax_in, dtype=C)`` where
  ``C`` is the first of (output dtype, float32, float64) at least as wide as the
  input: the float64 constant ``1.0/imax`` is cast to ``C`` (float32: a second
  rounding of 1/255), then one multiply in ``C``.
* float -> float: ``astype``; ``img_as_float`` keeps float16/float32 as they are
  (``np.issubdtype(dtype_in, np.floating)``), so float16 stays float16.
* float -> unsigned int: refuses data outside [-1, 1] (``ValueError``), then
  ``rint(np.multiply(image, imax_out, dtype=C))``, ``clip(0, imax_out)``,
  ``astype``, where ``C`` is the first of (input dtype, float32, float64) at least
  as wide as the output.  For float16 input to ``img_as_uint`` that is float16:
  65535 rounds to inf, every positive value becomes inf, 0 becomes NaN, the clip
  bound is inf too, and the final cast of inf/NaN to uint16 is undefined in C
  (x86 gives 0: modelled with the ``wrap`` overflow, tested only where defined).
* uint8 -> uint16: ``* 257`` exactly; uint16 -> uint8: ``// 256``, except when the
  data's max is below 256: then the values are kept (``astype``, a warning).  That
  branch depends on the data, so ``img_as_ubyte`` and ``img_as_uint`` have a
  ``fit`` (the data's max; it also raises the library's ValueError for float data
  outside [-1, 1]).
* bfloat16 is not in skimage's supported types: the library raises
  ``ValueError("Cannot convert from bfloat16 to ...")``; ``build`` raises a
  TypeError with that message.

``ideal`` cannot be stated without the input dtype (1/255 for uint8, 1/65535 for
uint16, 1 for floats): ``ideal(None, ...)`` raises and points to
:func:`ideal_for`.
"""

from __future__ import annotations

import functools

from fractions import Fraction

import numpy as np

from ..program import Op
from ._base import Built, Exact, Preset, affine

VERSION = "scikit-image 0.26.0"
SOURCE = "skimage/util/dtype.py (_convert, _scale, _dtype_itemsize), scikit-image 0.26.0"
VERIFIED = f"{VERSION}: tests/test_presets_sklearn.py, every uint8/12-bit/uint16 code and float data, bit for bit"
_OPTIONS = {"force_copy": False}
_FLOATS = ("float16", "float32", "float64")
_IMAX = {"uint8": 255, "uint16": 65535}
_IN_DTYPES = ("uint8", "uint16", "float16", "bfloat16", "float32", "float64")
# preset name -> the dtype skimage converts to ("floating": float64 unless already a float)
_TARGET = {
    "skimage.img_as_float": "floating",
    "skimage.img_as_float32": "float32",
    "skimage.img_as_ubyte": "uint8",
    "skimage.img_as_uint": "uint16",
}


def _check(name: str, options: dict) -> None:
    unknown = [k for k in options if k not in _OPTIONS]
    if unknown:
        raise ValueError(f"{name} has no option {', '.join(map(repr, unknown))}; its options: {', '.join(_OPTIONS)}")
    fc = options.get("force_copy", False)
    if not isinstance(fc, (bool, np.bool_)):
        raise TypeError(f"{name} option force_copy={fc!r} must be a bool (True or False)")


def _in_name(name: str, in_dtype) -> str:
    d = in_dtype.name if isinstance(in_dtype, np.dtype) else in_dtype
    if not isinstance(d, str) or d not in _IN_DTYPES:
        raise TypeError(f"in_dtype={in_dtype!r} is not supported; use one of: {', '.join(_IN_DTYPES)}")
    if d == "bfloat16":  # not in skimage's _supported_types (its own message, from _convert)
        out = "float64" if _TARGET[name] == "floating" else _TARGET[name]
        raise TypeError(f"Cannot convert from {d} to {out}.")
    return d


def _itemsize(d: str) -> int:
    return np.dtype(d).itemsize


def _first_wide(itemsize: int, *dtypes: str) -> str:
    """skimage's ``_dtype_itemsize``: the first dtype at least ``itemsize`` bytes wide."""
    return next(d for d in dtypes if _itemsize(d) >= itemsize)


def _build(name):
    def build(in_dtype, stats=None, **options):
        _check(name, options)
        src = _in_name(name, in_dtype)
        target = _TARGET[name]
        if target == "floating":
            target = src if src in _FLOATS else "float64"
        if src == target:  # np.issubdtype(dtype_in, dtype): returned as is
            return Built((), src, src)
        if src in _FLOATS and target in _FLOATS:
            return Built((Op("round", target),), target, target)
        if target in _FLOATS:  # uint -> float
            c = _first_wide(_itemsize(src), target, "float32", "float64")
            ops = (Op("mul", c, (1.0 / _IMAX[src],)),) + (() if c == target else (Op("round", target),))
            return Built(ops, target, c)
        if src in _FLOATS:  # float -> uint
            c = _first_wide(_itemsize(target), src, "float32", "float64")
            imax = _IMAX[target]
            with np.errstate(over="ignore"):  # np.clip's bound, cast into c (float16: inf)
                hi = float(np.array(imax).astype(c))
            ops = (
                Op("mul", c, (float(imax),)),
                Op("clip", None, (0.0, hi)),
                # rint, then numpy's astype: exact inside [0, imax]; inf/NaN (float16 -> uint16
                # only) become 0 as x86's cvttss2si gives (undefined in C)
                Op("int", target, rounding="half_even", overflow="wrap"),
            )
            return Built(ops, target, c)
        if src == "uint8":  # _scale(a, 8, 16): np.multiply(a, 257, dtype=uint16), exact
            return Built((Op("mul", "float64", (257.0,)), Op("int", "uint16")), "uint16", "float64")
        # uint16 -> uint8: _scale(a, 16, 8) looks at the data's max
        if stats is None or "max" not in stats:
            raise ValueError(f"{name} on uint16 depends on the data's max (skimage's _scale keeps values below "
                             "256 as they are): pass stats=preset.fit(x)")
        if float(np.max(stats["max"])) < 256:
            return Built((Op("int", "uint8"),), "uint8", "uint8")
        return Built((Op("mul", "float64", (1.0 / 256,)), Op("int", "uint8", rounding="floor")), "uint8", "float64")

    return build


def _fit(name):
    def fit(x, **options):
        _check(name, options)
        x = np.asarray(x)
        if x.dtype.kind == "f" and (np.min(x) < -1.0 or np.max(x) > 1.0):
            raise ValueError("Images of type float must be between -1 and 1.")  # _convert's message
        return {"max": np.array([np.max(x)], dtype=np.float64)}

    return fit


def ideal_for(name: str, in_dtype: str, **options) -> tuple:
    """The exact map ``name`` means for input ``in_dtype``: integer codes [0, max]
    stand for [0, 1]; float -> uint clips negatives to 0 (skimage's docstring)."""
    _check(name, options)
    src = _in_name(name, in_dtype)
    target = _TARGET[name]
    num = 1 if target in _FLOATS or target == "floating" else _IMAX[target]
    if src in _FLOATS:
        return (affine(num),) + (() if num == 1 else (Exact("clip", (0, num)),))
    return (affine(Fraction(num, _IMAX[src])),)


def _ideal(name):
    def ideal(exact_stats=None, **options):
        _check(name, options)
        raise ValueError(f"{name}'s ideal depends on the input dtype (1/255 for uint8, 1/65535 for uint16, 1 for "
                         f"floats): use kernels.presets.scikit_image.ideal_for({name!r}, in_dtype)")

    return ideal


_SUMMARY = {
    "skimage.img_as_float": "uint -> float64: x * (1.0/imax) in float64; floats unchanged (float16 stays float16)",
    "skimage.img_as_float32": "uint -> float32: x * float32(1.0/imax) in float32; floats astype(float32)",
    "skimage.img_as_ubyte": "float in [-1,1] -> clip(rint(x * 255), 0, 255) in the input's float dtype; uint16 // 256",
    "skimage.img_as_uint": "float in [-1,1] -> clip(rint(x * 65535), 0, 65535) in float32+ (float16: overflows); uint8 * 257",
}

PRESETS = [
    Preset(
        name=n,
        library="skimage",
        verified=VERIFIED,
        source=SOURCE,
        summary=_SUMMARY[n],
        options=_OPTIONS,
        build=_build(n),
        ideal=_ideal(n),
        ideal_for=functools.partial(ideal_for, n),
        fit=_fit(n) if _TARGET[n] in _IMAX else None,
        fit_from_extremes=True,  # np.min, np.max
    )
    for n in _TARGET
]
