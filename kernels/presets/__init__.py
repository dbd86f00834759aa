"""Library presets (layer 4): every preset, by name, and how to run one.

Each module here describes one library's conventions as data
(:class:`~kernels.presets._base.Preset`); none imports its library.
:data:`PRESETS` maps ``"library.Name"`` to its Preset; :data:`ALIASES` maps the
names of library casts that are not elementwise (torchao's float8 and MX) to an
:class:`~kernels.presets.torchao.Alias`, which :func:`kernels.step` expands into
the block step computing the same (``scaled_cast``, ``mx``).
"""

from __future__ import annotations

import importlib

from ._base import REQUIRED, Built, Exact, Preset, affine

_MODULES = (
    "scikit_learn",
    "scikit_image",
    "torchvision",
    "pytorch",
    "timm",
    "jax_numpy",
    "keras",
    "opencv",
    "onnx",
    "albumentations",
    "torchao",
)


def _collect(attr: str = "PRESETS") -> dict:
    out = {}
    for m in _MODULES:
        try:
            mod = importlib.import_module(f"{__name__}.{m}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{m}":
                raise
            continue  # a library's module not written yet
        for p in getattr(mod, attr, ()):
            if p.name in out:
                raise AssertionError(f"preset {p.name} defined twice")
            out[p.name] = p
    return dict(sorted(out.items()))


PRESETS: dict[str, Preset] = _collect()
ALIASES: dict = _collect("ALIASES")
if set(PRESETS) & set(ALIASES):
    raise AssertionError(f"names both a preset and an alias: {set(PRESETS) & set(ALIASES)}")


def get(name: str) -> Preset:
    """The preset called ``name``; a ValueError lists the valid names."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown preset {name!r}; presets are: {', '.join(PRESETS)}") from None


__all__ = ["ALIASES", "PRESETS", "Preset", "Built", "Exact", "REQUIRED", "affine", "get"]
