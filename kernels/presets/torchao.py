"""torchao presets: the float8 training cast and MX block quantization, as named
*aliases* of the block steps ``scaled_cast`` and ``mx``.

A :class:`~kernels.presets._base.Preset` is a chain of elementwise ops
(:class:`~kernels.program.Op`); torchao's casts are not elementwise (the scale
of an element depends on the amax of its tensor, row or block), so they cannot
be one.  They are :class:`Alias` rows instead: torchao's own option names and
defaults, expanded by :func:`kernels.step` into the block step that implements
the same arithmetic (:mod:`kernels.scaled`), whose output is the dequantized
float32 value.  ``kernels.step("torchao.float8(scaling_granularity=axiswise)")``
is the step ``scaled_cast(dtype=float8_e4m3fn, axis=-1, eps=1e-12, pow2=False,
saturate=True)``; its spec prints the expansion.

- ``torchao.float8``: ``hp_tensor_to_float8_dynamic`` then
  ``Float8TrainingTensor.to_original_precision`` (torchao/float8/
  float8_scaling_utils.py, float8_utils.py ``amax_to_scale`` / ``to_fp8_saturated``,
  float8_training_tensor.py): ``scale = float32(fmax / max(amax, 1e-12))`` per
  tensor (``scaling_granularity=tensorwise``) or over ``axiswise_dim``
  (``axiswise``: one scale per row for -1), optionally rounded down to a power
  of two; codes ``sat(float32(x) * scale)``; dequantized ``codes / scale``.
- ``torchao.mx``: ``MXTensor.to_mx(x, elem_dtype, block_size, scaling_mode)``
  then ``.dequantize(torch.float32)`` (torchao/prototype/mx_formats/mx_tensor.py):
  blocks of ``block_size`` along the last axis, an e8m0 scale per block by
  ``scaling_mode`` (floor, ceil, even, rceil).  torchao 0.18.0 departs from the
  OCP text for blocks of amax below about ``2**-127 * 2**emax`` and blocks
  holding inf (see :mod:`kernels.scaled`); the alias follows OCP there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from ._base import REQUIRED

VERSION = "torchao 0.18.0 (torch 2.13.0, CPU)"
GRANULARITIES = ("tensorwise", "axiswise")  # torchao.float8.config.ScalingGranularity, lower case


@dataclasses.dataclass(frozen=True)
class Alias:
    """A library name for a built-in step with the library's option names and defaults.

    ``options`` is the one table of the alias's options (name -> default,
    REQUIRED when none): :meth:`expand` validates against it, fills the
    defaults, and ``to_step`` maps the full set onto the built-in step ``step``;
    ``precision-bench presets`` lists it."""

    name: str
    library: str
    verified: str
    source: str
    summary: str
    step: str  # the built-in step it expands into
    options: Mapping  # option name -> default (REQUIRED when none)
    to_step: Callable  # to_step(every option, defaults filled) -> the step's options

    def expand(self, **options) -> tuple[str, dict]:
        """(step name, step options) of this alias called with ``options``."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(f"{self.name} has no option {', '.join(unknown)}; its options are: {', '.join(self.options)}")
        o = {**self.options, **options}
        missing = [k for k, v in o.items() if v is REQUIRED]
        if missing:
            raise ValueError(f"{self.name} needs option(s): {', '.join(m + '=' for m in missing)}")
        return self.step, self.to_step(o)


def _float8(o: dict) -> dict:
    g = o["scaling_granularity"]
    if not isinstance(g, str) or g.lower() not in GRANULARITIES:
        raise ValueError(f"scaling_granularity={g!r} is not one of: {', '.join(GRANULARITIES)}")
    axis = None if g.lower() == "tensorwise" else o["axiswise_dim"]
    return {"dtype": o["float8_dtype"], "axis": axis, "eps": 1e-12, "pow2": o["round_scales_to_power_of_2"],
            "saturate": True}


def _mx(o: dict) -> dict:
    mode = o["scaling_mode"]
    return {"dtype": o["elem_dtype"], "block": o["block_size"], "axis": -1,
            "scale_rule": mode.lower() if isinstance(mode, str) else mode}


ALIASES = [
    Alias(
        name="torchao.float8",
        library="torchao",
        verified=f"{VERSION}: hp_tensor_to_float8_dynamic + to_original_precision, tensorwise and axiswise, "
                 "pow2 on and off, on the uint8, 12-bit and float16 [0, 1] domains, bit for bit",
        source="torchao/float8/float8_scaling_utils.py, float8_utils.py, float8_training_tensor.py (0.18.0)",
        summary="scaled_cast: scale = float32(fmax / max(amax, 1e-12)) per tensor or row, sat(x * scale), / scale",
        step="scaled_cast",
        options={"float8_dtype": "float8_e4m3fn", "scaling_granularity": "tensorwise", "axiswise_dim": -1,
                 "round_scales_to_power_of_2": False},
        to_step=_float8,
    ),
    Alias(
        name="torchao.mx",
        library="torchao",
        verified=f"{VERSION}: MXTensor.to_mx + dequantize, every element format and scaling mode, "
                 "on the uint8, 12-bit and float16 [0, 1] domains, bit for bit",
        source="torchao/prototype/mx_formats/mx_tensor.py (0.18.0)",
        summary="mx: blocks of block_size along the last axis, one e8m0 scale each, dequantized",
        step="mx",
        options={"elem_dtype": REQUIRED, "block_size": 32, "scaling_mode": "floor"},
        to_step=_mx,
    ),
]
