"""torchvision's v2 ``ToDtype`` and ``Normalize`` as presets.

Read from torchvision/transforms/v2/functional/_misc.py (``to_dtype_image``,
``normalize_image``) and torchvision/transforms/_functional_tensor.py
(``_max_value``), pytorch/vision main at commit 01460443 (0.2x series, with
uint16 support).  torchvision cannot be imported beside torch 2.13 here, so
the tests verify these formulas evaluated in torch itself.

``to_dtype_image(image, dtype, scale)``:

* same dtype: the image itself; ``scale=False``: ``image.to(dtype)``
* float -> float: ``image.to(dtype)``
* float -> int: ``image.mul(max + 1.0 - 1e-3).to(dtype)``: truncation; in
  float16/bfloat16 the product rounds, so 1.0 * 255.999 becomes 256 and wraps
  to 0, and codes near the top come back one higher (pytorch/vision#6799)
* int -> float: ``image.to(dtype).mul_(1.0 / max)``: a multiplication by the
  reciprocal (a Python float), not a division
* int -> int: uint16 -> uint8 ``(image / 2**8).to(uint8)`` (true division in
  float32, truncated); uint8 -> uint16 ``image.to(uint16) * 2**8``
"""

from __future__ import annotations

from fractions import Fraction

from ..program import Op
from ._base import REQUIRED, Built, Preset, affine
from .pytorch import (
    DTYPES,
    FLOATS,
    INT_MAX,
    LOW,
    TORCH_VERSION,
    check_bool,
    check_dtype_name,
    check_floats,
    check_lengths,
    check_options,
    scalar_ops,
    tensor_const,
    to_ops,
)

# the named statistics of the issue; sources: torchvision's docs/references and
# timm/data/constants.py (IMAGENET_DEFAULT_*, IMAGENET_INCEPTION_*, OPENAI_CLIP_*)
CONSTANTS = {
    "imagenet": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
    "inception": {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
    "clip": {"mean": (0.48145466, 0.4578275, 0.40821073), "std": (0.26862954, 0.26130258, 0.27577711)},
}

SOURCE = "torchvision/transforms/v2/functional/_misc.py (pytorch/vision@01460443, 0.2x)"
VERIFIED = f"source formula run in {TORCH_VERSION} (torchvision does not import beside torch 2.13), bit for bit"

_TODTYPE_OPTIONS = {"dtype": REQUIRED, "scale": False}


def _todtype_options(options):
    o = check_options("torchvision.ToDtype", _TODTYPE_OPTIONS, options)
    return check_dtype_name(o["dtype"], "dtype"), check_bool(o["scale"], "scale")


def _build_todtype(in_dtype, stats=None, **options):
    dst, scale = _todtype_options(options)
    src = check_dtype_name(in_dtype, "in_dtype")
    cd = dst if dst in FLOATS else (src if src in FLOATS else "float32")
    if src == dst or not scale or (src in FLOATS and dst in FLOATS):
        return Built(tuple(to_ops(src, dst)), dst, cd)
    if src in FLOATS:  # float -> int: multiply by max + 1 - eps in the input's dtype, truncate
        ops = scalar_ops("mul", src, float(INT_MAX[dst]) + 1.0 - 1e-3) + to_ops(src, dst)
    elif dst in FLOATS:  # int -> float: cast, then multiply by the reciprocal in the output dtype
        ops = to_ops(src, dst) + scalar_ops("mul", dst, 1.0 / INT_MAX[src])
    elif src == "uint16":  # uint16 / 256 is a true division into float32 (torch's default dtype)
        ops = [Op("div", "float32", (256.0,))] + to_ops("float32", dst)
    else:  # uint8 -> uint16: integer product, exact
        ops = [Op("mul", "float64", (256.0,))]
    return Built(tuple(ops), dst, cd)


def _ideal_todtype(stats=None, **options):
    dst, scale = _todtype_options(options)
    # without the input dtype, ``ideal`` states the float/int conventions: the
    # integer range [0, max] is the float range [0, 1] (identity when scale=False)
    if not scale:
        return (affine(1),)
    if dst in INT_MAX:
        return (affine(INT_MAX[dst]),)  # float [0, 1] -> [0, max]
    return (affine(Fraction(1, 255)),)  # uint8 input, the common case; see ideal_for


def ideal_for(in_dtype: str, **options) -> tuple:
    """The ideal of ``ToDtype`` for a known input dtype (max_out / max_in)."""
    dst, scale = _todtype_options(options)
    src = check_dtype_name(in_dtype, "in_dtype")
    if not scale or src == dst or (src in FLOATS and dst in FLOATS):
        return (affine(1),)
    return (affine(Fraction(INT_MAX.get(dst, 1), INT_MAX.get(src, 1))),)


_NORMALIZE_OPTIONS = {"mean": REQUIRED, "std": REQUIRED, "inplace": False}


def _normalize_options(options):
    o = check_options("torchvision.Normalize", _NORMALIZE_OPTIONS, options)
    mean, std = check_floats(o["mean"], "mean"), check_floats(o["std"], "std")
    check_lengths(("mean", mean), ("std", std))
    check_bool(o["inplace"], "inplace")
    if not all(std):
        raise ValueError("std evaluated to zero, leading to division by zero.")  # torchvision's message
    return mean, std


def _build_normalize(in_dtype, stats=None, **options):
    mean, std = _normalize_options(options)
    src = check_dtype_name(in_dtype, "in_dtype")
    if src not in FLOATS:
        raise TypeError(f"Input tensor should be a float tensor. Got torch.{src}.")  # torchvision's message
    # mean/std become tensors of the image's dtype; tensor-tensor sub/div round once into it
    ops = (Op("sub", src, (tensor_const(mean, src),)), Op("div", src, (tensor_const(std, src),)))
    return Built(ops, src, "float32" if src in LOW else src)


def _ideal_normalize(stats=None, **options):
    mean, std = _normalize_options(options)
    m = tuple(Fraction(v) for v in mean)
    s = tuple(Fraction(v) for v in std)
    n = max(len(m), len(s))
    m, s = (m * n if len(m) == 1 else m), (s * n if len(s) == 1 else s)  # torch broadcasting
    return (affine(tuple(1 / v for v in s), tuple(-a / b for a, b in zip(m, s))),)


PRESETS = [
    Preset(
        name="torchvision.ToDtype",
        library="torchvision",
        verified=VERIFIED,
        source=SOURCE + " to_dtype_image; torchvision/transforms/_functional_tensor.py _max_value",
        summary="scale: int->float x.to(d).mul_(1/max); float->int x.mul(max+1-1e-3).to(int) truncated; int->int shifts",
        options=_TODTYPE_OPTIONS,
        build=_build_todtype,
        ideal=_ideal_todtype,
        ideal_for=ideal_for,
    ),
    Preset(
        name="torchvision.Normalize",
        library="torchvision",
        verified=VERIFIED,
        source=SOURCE + " normalize_image",
        summary="float images only: mean/std as tensors of the image dtype, image.sub(mean).div_(std), per channel",
        options=_NORMALIZE_OPTIONS,
        build=_build_normalize,
        ideal=_ideal_normalize,
    ),
]

__all__ = ["PRESETS", "CONSTANTS", "ideal_for", "DTYPES"]
