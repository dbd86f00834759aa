"""What a preset is (layer 4): data describing one library's arithmetic.

A :class:`Preset` names a library function or class (``torchvision.ToDtype``),
the options it takes (the library's own names and defaults), and a ``build``
function that turns (input dtype, statistics, options) into a :class:`Built`:
the :class:`~kernels.program.Op` chain the library evaluates, with its
intermediate dtypes, the output dtype, and the exact ideal it approximates.
No preset has a kernel of its own: :mod:`kernels.program` runs every one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from fractions import Fraction

import numpy as np

REQUIRED = object()  # an option with no default


@dataclasses.dataclass(frozen=True)
class Exact:
    """One step of the ideal (exact) map, per feature.

    ``affine``: ``y = slope * x + intercept``; ``sqrt``: ``y = (x - mean) / sqrt(var)``
    (var 0 -> 1); ``clip``: ``min(max(x, lo), hi)``; ``abs``: ``|x|``.
    ``values`` are tuples of one Fraction per feature (or one for all)."""

    kind: str
    values: tuple = ()

    def __post_init__(self):
        if self.kind not in ("affine", "sqrt", "clip", "abs"):
            raise ValueError(f"Exact kind {self.kind!r}")
        # None: no bound (a clip with one side open)
        vals = tuple(
            tuple(None if v is None else Fraction(v) for v in np.atleast_1d(np.asarray(a, dtype=object)).tolist())
            for a in self.values
        )
        object.__setattr__(self, "values", vals)


def affine(slope, intercept=0) -> Exact:
    """The ideal ``slope * x + intercept``; floats are taken as their exact binary value."""
    return Exact("affine", (slope, intercept))


@dataclasses.dataclass(frozen=True)
class Built:
    """A preset specialised to an input dtype and statistics."""

    ops: tuple  # of kernels.program.Op
    output_dtype: str
    compute_dtype: str  # the dtype most of the arithmetic happens in (reported)
    inverse: Built | None = None  # the library's own inverse, when it has one


@dataclasses.dataclass(frozen=True)
class Preset:
    """One library convention (see the module docstring)."""

    name: str  # "library.Name", as spelled in the library
    library: str  # the import name, e.g. "torchvision"
    verified: str  # the version the tests verify against, and how
    source: str  # the library file(s) the arithmetic was read from
    summary: str  # the semantics in one line
    options: Mapping  # option name -> default (REQUIRED when none)
    build: Callable  # build(in_dtype: str, stats: Mapping | None, **options) -> Built
    # ideal(exact_stats: Mapping | None, **options) -> tuple of Exact: what the library
    # means to compute, with exact statistics (one feature) or the given options
    ideal: Callable
    # fit(x: ndarray, **options) -> {name: float64 array, one per feature}: the
    # library's own statistics, bit for bit; None when nothing is fitted
    fit: Callable | None = None
    # exact_fit(values, counts, **options) -> {name: Fraction}: the exact statistics of
    # one feature from its distinct values (sorted float64) and their counts
    exact_fit: Callable | None = None
    per_feature: bool = False  # statistics per feature along the last axis (scikit-learn columns)
    # True (or a function of the options returning True) when ``fit(x)`` depends on x only through
    # its dtype, its number of dimensions, each feature's (last axis) min and max, NaN omitted, and
    # whether the feature holds NaN: a dask array is then fitted from those, computed chunk by
    # chunk, bit for bit (kernels.dask_array.preset_fit); otherwise its fit needs x in memory
    fit_from_extremes: bool | Callable = False
    dask_fit_hint: str = ""  # when not fit_from_extremes: what to do instead, beyond fitting in memory
    # ideal_for(in_dtype, **options) -> tuple of Exact, for presets whose ideal depends on
    # the input dtype (torchvision's ToDtype scales by max_out / max_in); wins over ideal
    ideal_for: Callable | None = None
