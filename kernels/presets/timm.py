"""timm's GPU/CPU prefetcher normalisation (``PrefetchLoader``) as a preset.

Read from timm/data/loader.py (huggingface/pytorch-image-models@013851b, timm
1.0.x): the loader's ``fast_collate`` yields uint8 tensors, and
``PrefetchLoader`` normalises them with statistics scaled to the 0..255 range::

    self.mean = torch.tensor([x * 255 for x in mean], dtype=img_dtype).view(1, C, 1, 1)
    self.std = torch.tensor([x * 255 for x in std], dtype=img_dtype).view(1, C, 1, 1)
    next_input = next_input.to(self.img_dtype).sub_(self.mean).div_(self.std)

``x * 255`` is a Python (float64) product; torch stores it into float16/
bfloat16 through float32.  ``fp16=True`` (deprecated) means img_dtype=float16;
``img_dtype=None`` means float32.  timm cannot be installed beside torch 2.13
here, so the tests verify this formula evaluated in torch itself.
"""

from __future__ import annotations

from fractions import Fraction

from ..program import Op
from ._base import Built, Preset, affine
from .pytorch import (
    FLOATS,
    LOW,
    TORCH_VERSION,
    check_bool,
    check_dtype_name,
    check_floats,
    check_lengths,
    check_options,
    tensor_const,
    to_ops,
)

# timm/data/constants.py IMAGENET_DEFAULT_MEAN / IMAGENET_DEFAULT_STD: PrefetchLoader's defaults
_OPTIONS = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "img_dtype": None, "fp16": False}


def _options(options):
    o = check_options("timm.PrefetchLoader", _OPTIONS, options)
    mean, std = check_floats(o["mean"], "mean"), check_floats(o["std"], "std")
    check_lengths(("mean", mean), ("std", std))
    dtype = "float32" if o["img_dtype"] is None else check_dtype_name(o["img_dtype"], "img_dtype", FLOATS)
    if check_bool(o["fp16"], "fp16"):
        dtype = "float16"  # timm: "fp16 arg is deprecated, but will override dtype arg if set"
    if not all(std):
        raise ValueError("timm.PrefetchLoader: std must be nonzero")
    return mean, std, dtype


def _build(in_dtype, stats=None, **options):
    mean, std, dtype = _options(options)
    src = check_dtype_name(in_dtype, "in_dtype")
    m255 = [v * 255 for v in mean]  # float64 products, as in timm
    s255 = [v * 255 for v in std]
    ops = to_ops(src, dtype) + [
        Op("sub", dtype, (tensor_const(m255, dtype),)),  # tensor-tensor: one rounding into img_dtype
        Op("div", dtype, (tensor_const(s255, dtype),)),
    ]
    return Built(tuple(ops), dtype, "float32" if dtype in LOW else dtype)


def _ideal(stats=None, **options):
    """(x / 255 - mean) / std, exactly, per channel."""
    mean, std, _ = _options(options)
    n = max(len(mean), len(std))
    m = [Fraction(v) for v in (mean * n if len(mean) == 1 else mean)]
    s = [Fraction(v) for v in (std * n if len(std) == 1 else std)]
    return (affine(tuple(1 / (255 * b) for b in s), tuple(-a / b for a, b in zip(m, s))),)


PRESETS = [
    Preset(
        name="timm.PrefetchLoader",
        library="timm",
        verified=f"source formula run in {TORCH_VERSION} (timm not installable beside torch 2.13), bit for bit",
        source="timm/data/loader.py PrefetchLoader (huggingface/pytorch-image-models@013851b, timm 1.0.x)",
        summary="x.to(img_dtype).sub_(mean*255).div_(std*255): constants in float64, stored as img_dtype tensors",
        options=_OPTIONS,
        build=_build,
        ideal=_ideal,
    ),
]
