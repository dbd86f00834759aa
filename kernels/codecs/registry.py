"""The dtype registry: one row per dtype, each pointing at its codec family.

A family (``integer``, ``half``, ``ieee``, ...) is one module holding the
Numba code of every dtype it covers; ``dispatch`` asks the row's family for
the implementation of each codec operation when a kernel is compiled.  Adding
a dtype is one row here (and, for a new kind of format, one family module);
no kernel, transform or preset changes.
"""

from __future__ import annotations

import dataclasses

import ml_dtypes
import numpy as np

from .._tags import Tag


class Family:
    """The codec operations of a group of dtypes held alike in kernels.

    Each method returns a Numba-compilable ``impl`` for the dtype ``name``
    (called at compile time, from the overloads in ``dispatch``), or works on
    numpy arrays at the Python boundary (the ``*_np`` and ``key_range``
    methods).  Compute families also implement ``to_compute``, ``rnd`` and
    ``fma_c``, and for rounding modes other than the default one hook,
    ``_compute_ops`` (the five ``*_policy`` accessors read it)."""

    def counts_overflow(self, name, policy) -> bool:
        """Whether outputs of ``name`` encoded under ``policy`` are checked for finite
        inputs that became inf (``is_overflow``); float64 outputs are not checked."""
        return False

    def compute_refusal(self, name) -> str:
        """Why ``name`` is not a compute dtype (asked of rows with ``can_compute=False``)."""
        return "is not a float dtype"

    def overflow_to(self, name) -> str:
        """What a finite value past the largest becomes under the default policy."""
        return "inf"

    def supports(self, name, policy) -> bool:
        """Whether ``name`` can encode under ``policy`` (checked before compiling)."""
        return policy == DEFAULT_POLICY

    # Encoding under a non-default Policy (rounding mode, saturation): an impl, or
    # None when the family has none for it (a TypingError names the policy).
    def encode_policy(self, name, wide: bool, policy):
        return None

    def _compute_ops(self, name, policy):
        """The hook of a compute family: ``(to_compute, rnd, add_c, sub_c, fma_c)`` impls of
        ``name`` under ``policy`` (``_round.compute_ops``), or ``(None,) * 5`` when it has
        no emulation for that policy.  The five accessors below read it."""
        return (None,) * 5

    def to_compute_policy(self, name, policy):
        return self._compute_ops(name, policy)[0]

    def rnd_policy(self, name, policy):
        return self._compute_ops(name, policy)[1]

    def add_c_policy(self, name, policy):  # impl(codec, a, b): a + b rounded once under policy
        return self._compute_ops(name, policy)[2]

    def sub_c_policy(self, name, policy):  # impl(codec, a, b): a - b rounded once under policy
        return self._compute_ops(name, policy)[3]

    def fma_c_policy(self, name, policy):
        return self._compute_ops(name, policy)[4]

    def encode_random(self, name, wide: bool, policy):
        """impl(codec, v, u) -> storage value, ``u`` 64 random bits (stochastic rounding),
        or None when the family has no such encoding."""
        return None

    def decode(self, name):  # impl(codec, raw) -> float32/float64, exact
        raise NotImplementedError

    def encode(self, name, wide: bool):  # impl(codec, v) -> storage value
        raise NotImplementedError

    def order_key(self, name):  # impl(codec, raw) -> integer key in value order
        raise NotImplementedError

    def key_to_raw(self, name):  # impl(codec, k) -> raw value, inverse of order_key
        raise NotImplementedError

    def key_is_nan(self, name):  # impl(codec, k, kneg, kpos) -> bool
        return lambda codec, k, kneg, kpos: (k > kpos) | (k < kneg)

    def is_overflow(self, name):  # impl(codec, v, y) -> bool: finite v became inf y
        return lambda codec, v, y: False

    def value_to_key_np(self, name, a: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def keys_to_values_np(self, name, k: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def key_range(self, name):
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class DType:
    """One row of the dtype registry."""

    name: str
    dtype: np.dtype  # the numpy dtype at the Python boundary
    storage: np.dtype  # how kernels hold it (16-bit floats as uint16 bits)
    is_integer: bool
    scalar: type  # numpy scalar type, for constants computed in Python
    tag: Tag
    family: Family = dataclasses.field(compare=False, repr=False, default=None)
    can_compute: bool = False  # whether arithmetic can be done (emulated) in this dtype

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def info(self):
        return np.iinfo(self.dtype) if self.is_integer else ml_dtypes.finfo(self.dtype)

    @property
    def max(self) -> float:
        return float(self.info.max)

    @property
    def min(self) -> float:
        """The lowest finite value (0 for unsigned integers, -max for floats)."""
        return float(self.info.min)


def row(name, np_dtype, storage, family: Family, can_compute=False) -> DType:
    np_dtype = np.dtype(np_dtype)
    is_integer = np.issubdtype(np_dtype, np.integer)
    return DType(name, np_dtype, np.dtype(storage), is_integer, np_dtype.type, Tag("codec", name), family, can_compute)


def holds_exactly(src: DType, dst: DType) -> bool:
    """Whether every finite value of ``src`` is a value of ``dst`` (so converting
    into ``dst`` needs no rounding): integers need ``dst``'s significand to span
    their range; floats need a significand, a top exponent and a smallest
    subnormal at least as wide."""
    if dst.is_integer:
        return src.name == dst.name
    d = dst.info
    if src.is_integer:
        i = src.info
        return max(abs(int(i.min)), int(i.max)) <= 2 ** (d.nmant + 1) and float(i.max) <= float(d.max)
    s = src.info
    return (
        s.nmant <= d.nmant
        and float(s.max) <= float(d.max)
        and float(s.smallest_subnormal) >= float(d.smallest_subnormal)
    )


ROUNDINGS = ("nearest_even", "toward_zero", "up", "down", "nearest_away", "stochastic")

# One ``rounding`` option, two spellings: (float name, integer-cast name).  The
# integer names are C's and numpy's (``rint``, ``trunc``, ``floor``, ``ceil``,
# C ``round``); casts, transforms, program ops and pipeline steps accept either.
ROUNDING_TABLE = (
    ("nearest_even", "half_even"),  # ties to even: np.rint, IEEE's default
    ("toward_zero", "toward_zero"),  # truncation: C casts
    ("up", "ceil"),  # toward +inf
    ("down", "floor"),  # toward -inf
    ("nearest_away", "half_away"),  # ties away from zero: C round()
    ("stochastic", None),  # float dtypes only (seeded)
)
# the integer names in the code order of kernels.program's ``int`` op
INT_ROUNDINGS = ("half_even", "toward_zero", "floor", "half_away", "ceil")
_TO_FLOAT = {**{f: f for f, _ in ROUNDING_TABLE}, **{i: f for f, i in ROUNDING_TABLE if i}}
_TO_INT = {**{i: i for _, i in ROUNDING_TABLE if i}, **{f: i for f, i in ROUNDING_TABLE if i}}


def float_rounding(rounding, what: str = "rounding") -> str:
    """The float name of ``rounding`` (either spelling of :data:`ROUNDING_TABLE`), or a
    ValueError listing the valid ones."""
    if not isinstance(rounding, str) or rounding not in _TO_FLOAT:
        raise ValueError(f"{what}={rounding!r} is not a rounding mode of a float dtype; use one of: "
                         f"{', '.join(_TO_FLOAT)}")
    return _TO_FLOAT[rounding]


def int_rounding(rounding, what: str = "rounding") -> str:
    """The integer-cast name of ``rounding`` (either spelling), or a ValueError listing the valid ones."""
    if not isinstance(rounding, str) or rounding not in _TO_INT:
        raise ValueError(f"{what}={rounding!r} is not a rounding mode of an integer cast; use one of: "
                         f"{', '.join(_TO_INT)}")
    return _TO_INT[rounding]



@dataclasses.dataclass(frozen=True)
class Policy:
    """How an encode rounds and what overflow gives: part of the output codec's
    compile-time tag (``encoding_tag``), so every kernel that encodes (cast,
    transforms, pipelines) takes it without a new argument.  The defaults are
    each format's own: round to nearest even, overflow as the format defines
    it (``saturate=False``)."""

    rounding: str = "nearest_even"
    saturate: bool = False

    def suffix(self) -> str:
        parts = []
        if self.rounding != "nearest_even":
            parts.append(f"rounding={self.rounding}")
        if self.saturate:
            parts.append("saturate")
        return "".join("|" + p for p in parts)


DEFAULT_POLICY = Policy()


def encoding_tag(r: DType, policy: Policy = DEFAULT_POLICY) -> Tag:
    """The codec tag of ``r`` encoding under ``policy`` (``r.tag`` for the default)."""
    return r.tag if policy == DEFAULT_POLICY else Tag("codec", r.name + policy.suffix())


def parse_tag_name(tag: str) -> tuple[str, Policy]:
    """(dtype name, policy) of a codec tag name made by ``encoding_tag``."""
    name, *parts = tag.split("|")
    kw = {}
    for p in parts:
        if p == "saturate":
            kw["saturate"] = True
        elif p.startswith("rounding="):
            kw["rounding"] = p[len("rounding="):]
    return name, Policy(**kw)
