"""Programs (layer 3): a chain of elementwise operations, each rounded into its
own dtype, compiled into one fused parallel kernel.

A pipeline step or a library preset is *data*: a tuple of :class:`Op`, every
one rounding once into the dtype a library would hold the value in.  One
generic kernel runs any program; each program is its own machine-code
specialisation (its ops are compile-time :class:`~kernels._tags.Tag`\\ s), so
there is no interpretation in the inner loop.

Between operations a value is carried as float64, which holds every value of
every float format here (and every integer below 2**53) exactly.  An
operation "in D" rounds its operands into D, computes, and rounds the result
once into D:

=============  ==============================  =========================================
op             meaning                         notes
=============  ==============================  =========================================
``round D``    ``RN_D(v)``                     a cast into float dtype D (ties to even)
``add D c``    ``RN_D(v + c)``                 also ``sub`` (v - c), ``mul``, ``div`` (v / c),
                                               ``rsub`` (c - v), ``rdiv`` (c / v)
``fma D c d``  ``RN_D(v * c + d)``             one rounding (OpenCV's ``convertTo``)
``abs``        ``|v|``                         exact
``rint``       round half to even, as a float  exact; NaN and inf pass through
``clip a b``   ``min(max(v, a), b)``           exact; NaN passes through (numpy, torch)
``int T r o``  v to integer type T             rounding r: ``half_even`` (``rint``),
                                               ``toward_zero`` (C casts), ``floor``,
                                               ``half_away`` (C ``round``);
                                               overflow o: ``saturate`` (clip to T,
                                               NaN -> 0), ``wrap`` (modulo 2**bits, as
                                               x86's ``cvttss2si`` then truncation; NaN
                                               and |v| >= 2**63 -> 0), ``cv`` (OpenCV's
                                               ``saturate_cast``: ``lrint`` to int32,
                                               NaN/inf/out of int32 -> INT_MIN, then
                                               saturate: 0 for unsigned T)
=============  ==============================  =========================================

Arithmetic in D: float64 natively; float32 natively (numba float32 ops);
float16/bfloat16 by float32 operations rounded to the 16-bit format (exact, as
in :mod:`kernels.codecs`).  Constants are rounded into D once, in Python, with
:func:`kernels.cast` (one correct rounding); a preset that wants a constant
computed another way computes it itself.  The last value is encoded into the
output dtype with the conversion rule of :mod:`kernels.codecs`.

8-bit inputs run the program on their 256 codes (per feature) and look every
element up (:mod:`kernels.lut`); 16-bit inputs on their 65,536 codes when the
array is larger than the table.  Same bits, fewer operations.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from numba import njit, prange
from numba.core import types
from numba.core.errors import TypingError
from numba.extending import overload

from . import lut
from ._tags import Tag, TagType
from .codecs import (
    JIT,
    REGISTRY,
    as_arith,
    decode,
    encode,
    fma_c,
    is_overflow,
    lookup,
    rnd,
    to_compute,
)

ARITH = ("add", "sub", "mul", "div", "rsub", "rdiv")
KINDS = ARITH + ("round", "fma", "abs", "rint", "clip", "int")
ROUNDINGS = ("half_even", "toward_zero", "floor", "half_away")
OVERFLOWS = ("saturate", "wrap", "cv")
# integer types an ``int`` op may produce: (bits, signed)
INT_TYPES = {
    "uint8": (8, False),
    "uint16": (16, False),
    "int8": (8, True),
    "int16": (16, True),
    "int32": (32, True),
}
# op functions are built per program shape (some by exec); the kernel that inlines them is cached
_INNER = {**JIT, "cache": False}
_NCONST = {"fma": 2, "clip": 2, **{k: 1 for k in ARITH}}


@dataclasses.dataclass(frozen=True)
class Op:
    """One elementwise operation of a program (see the module table).

    ``const`` holds the operation's constants, each a float64 array with one
    value per feature (or one for all); ``dtype`` is the dtype it rounds into
    (float dtypes, or for ``int`` one of :data:`INT_TYPES`)."""

    kind: str
    dtype: str | None = None
    const: tuple = ()
    rounding: str = "half_even"
    overflow: str = "saturate"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"op kind {self.kind!r} is not one of: {', '.join(KINDS)}")
        if len(self.const) != _NCONST.get(self.kind, 0):
            raise ValueError(f"op {self.kind!r} takes {_NCONST.get(self.kind, 0)} constants, got {len(self.const)}")
        if self.kind == "int":
            if self.dtype not in INT_TYPES:
                raise ValueError(f"int op dtype {self.dtype!r} is not one of: {', '.join(INT_TYPES)}")
            if self.rounding not in ROUNDINGS or self.overflow not in OVERFLOWS:
                raise ValueError(f"int op rounding={self.rounding!r} / overflow={self.overflow!r} unknown")
        elif self.kind in ARITH + ("round", "fma"):
            row = lookup(self.dtype, "op dtype")
            if not row.can_compute:
                raise ValueError(f"op {self.kind!r} rounds into a float dtype, not {self.dtype!r}")
        consts = tuple(np.array(c, dtype=np.float64).reshape(-1) for c in self.const)
        object.__setattr__(self, "const", consts)

    @property
    def tag_name(self) -> str:
        if self.kind == "int":
            return f"int/{self.dtype}/{self.rounding}/{self.overflow}"
        return f"{self.kind}/{self.dtype}"

    def rounded_consts(self) -> list[np.ndarray]:
        """The constants rounded once into the op's dtype (exact in float64)."""
        if self.kind in ARITH + ("fma",) and self.dtype != "float64":
            from .cast import cast  # layer 3 helper; imported late to keep import order simple

            return [cast(c, "float32" if self.dtype == "float32" else self.dtype).astype(np.float64) for c in self.const]
        return list(self.const)

    def __repr__(self) -> str:
        c = ", ".join(np.array2string(v, separator=",") if v.size > 1 else repr(float(v[0])) for v in self.const)
        extra = f", {self.rounding}, {self.overflow}" if self.kind == "int" else ""
        return f"Op({self.kind}{' ' + self.dtype if self.dtype else ''}{' ' + c if c else ''}{extra})"


# --------------------------------------------------------------------------
# one Numba function per op shape, composed into the program at compile time
# --------------------------------------------------------------------------


def _in(tag, v):
    """float64 carrier -> arithmetic value of dtype ``tag`` (rounded into it)."""


@overload(_in, jit_options=JIT)
def _ov_in(tag, v):
    name = tag.tag
    if name == "float64":
        return lambda tag, v: v
    if name == "float32":
        return lambda tag, v: np.float32(v)
    return lambda tag, v: to_compute(tag, v)  # float64 -> 16 bits rounds once


@functools.cache
def _op_function(name: str):
    """A jitted ``f(v, c0, c1) -> float64`` for one op tag name."""
    parts = name.split("/")
    kind = parts[0]
    if kind == "abs":
        return njit(**_INNER)(lambda v, c0, c1: abs(v))
    if kind == "rint":
        return njit(**_INNER)(lambda v, c0, c1: np.rint(v))
    if kind == "clip":
        # comparisons, not min/max: NaN compares false and passes through
        return njit(**_INNER)(lambda v, c0, c1: c0 if v < c0 else (c1 if v > c1 else v))
    if kind == "int":
        return _int_function(*parts[1:])
    tag = REGISTRY[parts[1]].tag
    if kind == "round":
        return njit(**_INNER)(lambda v, c0, c1: np.float64(_in(tag, v)))
    if kind == "fma":
        return njit(**_INNER)(
            lambda v, c0, c1: np.float64(fma_c(tag, _in(tag, v), as_arith(tag, c0), as_arith(tag, c1)))
        )
    expr = {
        "add": "a + b", "sub": "a - b", "mul": "a * b", "div": "a / b", "rsub": "b - a", "rdiv": "b / a",
    }[kind]
    src = f"def f(v, c0, c1):\n    a = _in(tag, v)\n    b = as_arith(tag, c0)\n    return np.float64(rnd(tag, {expr}))\n"
    ns = {"_in": _in, "as_arith": as_arith, "rnd": rnd, "np": np, "tag": tag}
    exec(src, ns)
    return njit(**_INNER)(ns["f"])


@njit(**JIT)
def _rint(v):
    return np.rint(v)


@njit(**JIT)
def _trunc(v):
    return np.trunc(v)


@njit(**JIT)
def _floor(v):
    return np.floor(v)


def _int_function(dtype: str, rounding: str, overflow: str):
    bits, signed = INT_TYPES[dtype]
    lo = float(-(1 << (bits - 1))) if signed else 0.0
    hi = float((1 << (bits - 1)) - 1) if signed else float((1 << bits) - 1)
    modulus = float(1 << bits)
    if rounding == "half_away":  # C's round(); values past 2**52 are integers already

        @njit(**_INNER)
        def rounded(v):
            t = np.trunc(v)  # v - t is exact; floor(|v| + 0.5) is not (0.49999999999999994)
            return t + np.copysign(1.0, v) if abs(v - t) >= 0.5 else t

    else:
        rounded = {"half_even": _rint, "toward_zero": _trunc, "floor": _floor}[rounding]

    if overflow == "saturate":

        @njit(**_INNER)
        def f(v, c0, c1):
            r = rounded(v)
            if r != r:
                return 0.0
            return lo if r < lo else (hi if r > hi else r)

    elif overflow == "wrap":
        half = modulus / 2

        @njit(**_INNER)
        def f(v, c0, c1):
            r = rounded(v)
            if not abs(r) < 9.223372036854775808e18:  # NaN, inf, past int64: the x86 'indefinite' value
                return 0.0
            m = r - np.floor(r / modulus) * modulus  # r mod 2**bits, exact for |r| < 2**63
            return m - modulus if signed and m >= half else m

    else:  # cv: lrint to int32; NaN, inf and |v| >= 2**31 become INT_MIN, then saturate

        @njit(**_INNER)
        def f(v, c0, c1):
            r = rounded(v)
            if not (-2147483648.0 <= r < 2147483648.0):
                r = -2147483648.0
            return lo if r < lo else (hi if r > hi else r)

    return f


def run_ops(prog, consts, j, v):
    """Apply the program's ops (a tuple of tags) to the float64 value ``v`` of feature ``j``."""


@overload(run_ops, jit_options=_INNER)
def _ov_run_ops(prog, consts, j, v):
    if not isinstance(prog, types.BaseTuple) or not all(isinstance(t, TagType) for t in prog.types):
        raise TypingError("run_ops needs a tuple of op tags")
    ns = {"np": np}
    lines = ["def impl(prog, consts, j, v):", "    v = np.float64(v)"]
    slot = 0
    for k, t in enumerate(prog.types):
        name = t.tag.split("#")[0]
        ns[f"f{k}"] = _op_function(name)
        n = _NCONST.get(name.split("/")[0], 0)
        c0 = f"consts[j, {slot}]" if n >= 1 else "0.0"
        c1 = f"consts[j, {slot + 1}]" if n >= 2 else "0.0"
        slot += n
        lines.append(f"    v = f{k}(v, {c0}, {c1})")
    lines.append("    return v")
    exec("\n".join(lines), ns)
    return ns["impl"]


@njit(parallel=True, **JIT)
def _program_kernel(x, out, consts, cin, prog, cout):
    """out = encode(cout, program(decode(x))) per element, one parallel pass.

    Features are the fastest-varying index (channel-last); ``consts`` has one
    row per feature.  Returns 1 when a finite input became inf in the output."""
    nfeat = consts.shape[0]
    overflowed = np.uint8(0)
    if nfeat == 1:
        for i in prange(x.size):
            v = decode(cin, x[i])
            e = encode(cout, run_ops(prog, consts, 0, v))
            out[i] = e
            overflowed = max(overflowed, np.uint8(is_overflow(cout, v, e)))
    else:
        for r in prange(x.size // nfeat):
            for j in range(nfeat):
                i = r * nfeat + j
                v = decode(cin, x[i])
                e = encode(cout, run_ops(prog, consts, j, v))
                out[i] = e
                overflowed = max(overflowed, np.uint8(is_overflow(cout, v, e)))
    return overflowed


@njit(parallel=True, **JIT)
def _gather_kernel(x, table, out):
    """out[i] = table[x[i], i % nfeat]: the program's values looked up by code."""
    nfeat = table.shape[1]
    if nfeat == 1:
        for i in prange(x.size):
            out[i] = table[x[i], 0]
    else:
        for r in prange(x.size // nfeat):
            for j in range(nfeat):
                i = r * nfeat + j
                out[i] = table[x[i], j]


@dataclasses.dataclass(frozen=True)
class Program:
    """Ops and the dtype the last value is encoded into; ``nfeat`` constants per op."""

    ops: tuple
    out_dtype: str
    nfeat: int = 1

    def __post_init__(self):
        object.__setattr__(self, "ops", tuple(self.ops))
        lookup(self.out_dtype, "out_dtype")
        for op in self.ops:
            for c in op.const:
                if c.size not in (1, self.nfeat):
                    raise ValueError(f"{op!r} has {c.size} constants for {self.nfeat} features")

    @functools.cached_property
    def _compiled(self):
        cols = [c for op in self.ops for c in op.rounded_consts()]
        table = np.zeros((self.nfeat, max(len(cols), 1)), np.float64)
        for k, c in enumerate(cols):
            table[:, k] = np.broadcast_to(c, (self.nfeat,))
        # a unique suffix per position keeps a tuple of equal tags a Tuple (not UniTuple)
        tags = tuple(Tag("op", f"{op.tag_name}#{k}") for k, op in enumerate(self.ops))
        return table, tags

    def run(self, flat_x: np.ndarray, in_row, flat_out: np.ndarray, out_row) -> int:
        """Write the program's output of ``flat_x`` (storage views) into ``flat_out``.

        Returns the number of finite inputs that became inf (0 when none)."""
        from .codecs import write_counting_overflow

        table, tags = self._compiled
        nfeat = table.shape[0]
        codes = 1 << (8 * in_row.itemsize)
        if in_row.is_integer and flat_x.size >= 4 * codes * nfeat:
            # every possible code once, per feature; then look elements up
            values = np.empty(codes * nfeat, out_row.storage)
            grid = np.repeat(np.arange(codes, dtype=in_row.storage), nfeat)
            if not _program_kernel(grid, values, table, in_row.tag, tags, out_row.tag):
                values = values.reshape(codes, nfeat)
                if codes == 256 and lut.AVAILABLE and nfeat == 1:
                    lut.apply_table(flat_x, np.ascontiguousarray(values[:, 0]), flat_out)
                elif codes == 256 and lut.AVAILABLE and nfeat <= lut.MAX_CHANNELS:
                    lut.apply_tables(flat_x, values, flat_out)
                else:
                    _gather_kernel(flat_x, values, flat_out)
                return 0
        return write_counting_overflow(
            lambda src, dest: _program_kernel(src, dest, table, in_row.tag, tags, out_row.tag),
            flat_x, flat_out, in_row.tag, out_row.tag, nfeat,
        )


def run_program(x, ops, out_dtype, *, out=None) -> np.ndarray:
    """Run a chain of :class:`Op` on ``x`` (features along the last axis when any
    constant has more than one value) into ``out_dtype``; ``x`` is not modified."""
    from ._validate import check_array, check_dtype, check_out
    from .codecs import as_storage

    x, in_row = check_array(x)
    out_row = check_dtype(out_dtype, "out_dtype")
    nfeat = max([c.size for op in ops for c in op.const] or [1])
    if nfeat > 1 and (x.ndim < 2 or x.shape[-1] != nfeat):
        raise ValueError(f"the program has {nfeat} values per feature; x has shape {x.shape} (features last)")
    prog = Program(tuple(ops), out_row.name, nfeat)
    out = check_out(out, x.shape, out_row, x)
    prog.run(as_storage(x, in_row).reshape(-1), in_row, as_storage(out, out_row).reshape(-1), out_row)
    return out
