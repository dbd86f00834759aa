"""How measured figures print (layer 0): one rule for the advisor, the CLI and the report."""

from __future__ import annotations

import math


def num(v) -> float:
    """A record field as a float: JSON's "inf"/"-inf"/"nan" strings and None (NaN)."""
    if v is None:
        return math.nan
    if isinstance(v, str):
        return {"inf": math.inf, "-inf": -math.inf}.get(v, math.nan)
    return float(v)


def fmt(v, missing: str = "-") -> str:
    """A measured quantity: 4 significant digits, ``inf``/``-inf``, ``missing`` when absent or NaN."""
    v = num(v)
    if math.isnan(v):
        return missing
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.4g}"
