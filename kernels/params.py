"""Fitted parameters (layer 2): the immutable, picklable :class:`Params`, and axis checks."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Mapping

import numpy as np


def _readonly(a) -> np.ndarray:
    """A float64 copy that nobody can make writeable: its memory is an immutable
    ``bytes`` object (numpy refuses ``flags.writeable = True`` on such arrays,
    while an array that owns its memory can always be flipped back)."""
    a = np.array(a, dtype=np.float64, copy=True).reshape(-1)
    return np.frombuffer(a.tobytes(), dtype=np.float64)


class Frozen(Mapping):
    """A read-only mapping that pickles and deep-copies (a mappingproxy does
    neither); ``arrays=True`` stores values as :func:`_readonly` arrays, also
    after unpickling."""

    __slots__ = ("_items", "_arrays")

    def __init__(self, items=(), arrays: bool = False):
        items = dict(items)
        if arrays:
            items = {k: _readonly(v) for k, v in items.items()}
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_arrays", arrays)

    def __getitem__(self, key):
        return self._items[key]

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __setattr__(self, name, value):
        raise AttributeError("Frozen mappings are immutable")

    def __reduce__(self):
        items = {k: np.array(v) for k, v in self._items.items()} if self._arrays else dict(self._items)
        return (Frozen, (items, self._arrays))

    def __repr__(self) -> str:
        return f"Frozen({self._items!r})"


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    return a == b


@dataclasses.dataclass(frozen=True, eq=False)
class Params:
    """Fitted parameters of one transform; immutable (arrays are read-only and
    cannot be made writeable), picklable, and equal to another Params with the
    same fields (arrays compared by value, NaN equal to NaN).

    ``stats`` maps names to float64 arrays with one entry per feature:
    ``min``/``max`` (minmax, maxabs, quantize), ``mean``/``var``/``std``
    (standardize), ``maxabs``, ``divisor`` (scale), ``scale``/``zero_point``
    (quantize, dequantize); ``count`` is the number of non-NaN values.
    """

    transform: str
    input_dtype: str
    axis: tuple | None
    nfeat: int
    stats: Mapping
    options: Mapping
    accumulator: str
    acc_dtype: str
    nan_policy: str

    def __post_init__(self):
        # any mapping given (dataclasses.replace, callers building params) is frozen here
        if not (isinstance(self.stats, Frozen) and self.stats._arrays):
            object.__setattr__(self, "stats", Frozen(self.stats, arrays=True))
        if not isinstance(self.options, Frozen):
            object.__setattr__(self, "options", Frozen(self.options))

    def __getitem__(self, name) -> np.ndarray:
        return self.stats[name]

    def __getattr__(self, name):
        # p.mean, p.std, p.min, ...: the statistics by attribute (only called when
        # normal lookup fails; "stats" itself is absent while unpickling)
        if name.startswith("__") or name == "stats":
            raise AttributeError(name)
        try:
            return self.stats[name]
        except KeyError:
            raise AttributeError(f"Params({self.transform!r}) has no statistic {name!r}; it has {', '.join(self.stats)}") from None

    def __eq__(self, other):
        if not isinstance(other, Params):
            return NotImplemented
        fields = [f.name for f in dataclasses.fields(self)]
        if any(not isinstance(getattr(self, f), Mapping) and getattr(self, f) != getattr(other, f) for f in fields):
            return False
        return all(
            a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
            for a, b in ((self.stats, other.stats), (self.options, other.options))
        )

    def __hash__(self):
        return hash((self.transform, self.input_dtype, self.axis, self.nfeat, tuple(self.stats)))

    def feature(self, j: int) -> Params:
        """The parameters of feature ``j`` alone, as if fitted with ``axis=None``."""
        return dataclasses.replace(
            self, axis=None, nfeat=1, stats=Frozen({k: v[j : j + 1] for k, v in self.stats.items()}, arrays=True)
        )

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v if v.size > 1 else v[0]!r}" for k, v in self.stats.items())
        return f"Params({self.transform!r}, {shown})"


def normalize_axis(axis, ndim: int):
    """None, or the leading axes (all but the last): per-column / per-channel.

    Each axis must be an integer (not a bool) in [-ndim, ndim)."""
    if axis is None:
        return None
    items = tuple(axis) if isinstance(axis, (tuple, list, range)) else (axis,)
    axes = []
    for a in items:
        if isinstance(a, (bool, np.bool_)):
            raise TypeError(f"axis={axis!r}: a bool is not an axis; pass an integer such as axis=0")
        try:
            a = operator.index(a)
        except TypeError:
            raise TypeError(f"axis={axis!r} must be an integer or a tuple of integers (got {type(a).__name__})") from None
        if not -ndim <= a < ndim:
            raise ValueError(f"axis={axis!r} is out of range for a {ndim}-D array (axes -{ndim}..{ndim - 1})")
        axes.append(a % ndim)
    leading = tuple(range(ndim - 1))
    if ndim < 2 or tuple(sorted(axes)) != leading:
        raise ValueError(
            f"axis={axis!r} is not supported for a {ndim}-D array: use axis=None (one set of statistics) "
            f"or axis={leading[0] if len(leading) == 1 else leading} (per column of 2-D data, per channel "
            "of channel-last images)"
        )
    return leading
