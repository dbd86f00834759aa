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
(float ops)    ``rounding=`` mode              ``RN`` above is the default ``nearest_even``;
                                               ``toward_zero``, ``up``, ``down``,
                                               ``nearest_away`` round the operand's
                                               conversion and the result in that mode
                                               (float16/bfloat16/float32; float64: RN only)
``abs``        ``|v|``                         exact
``rint``       round half to even, as a float  exact; NaN and inf pass through
``clip a b``   ``min(max(v, a), b)``           exact; NaN passes through (numpy, torch)
``int T r o``  v to integer type T             rounding r: ``half_even`` (``rint``),
                                               ``toward_zero`` (C casts), ``floor``,
                                               ``half_away`` (C ``round``), ``ceil``
                                               (or their float names, ROUNDING_TABLE);
                                               overflow o: ``saturate`` (clip to T,
                                               NaN -> 0), ``wrap`` (modulo 2**bits, as
                                               x86's ``cvttss2si`` then truncation; NaN
                                               and |v| >= 2**63 -> 0), ``cv`` (OpenCV's
                                               ``saturate_cast``: ``lrint`` to int32,
                                               NaN/inf/out of int32 -> INT_MIN, then
                                               saturate: 0 for unsigned T),
                                               ``saturate_nan_min`` (clip to T, NaN
                                               -> T's min: onnxruntime's QuantizeLinear)
=============  ==============================  =========================================

Rounding modes have one name per concept and two spellings (:data:`ROUNDING_TABLE`):
``nearest_even`` = ``half_even``, ``toward_zero``, ``up`` = ``ceil``, ``down`` =
``floor``, ``nearest_away`` = ``half_away``; every op takes either.  A float op under
a non-default mode is specialised on its dtype's codec tag extended with the policy
(``codecs.encoding_tag``): one generic function per op kind, no kernel per mode.  Such
programs always run fused (the interpreter has the default compute codecs only).

Arithmetic in D: float64 natively; float32 natively (numba float32 ops);
float16/bfloat16 by float32 operations rounded to the 16-bit format (exact, as
in :mod:`kernels.codecs`).  Constants are rounded into D once, in Python, with
:func:`kernels.cast` (one correct rounding); a preset that wants a constant
computed another way computes it itself.  The last value is encoded into the
output dtype with the conversion rule of :mod:`kernels.codecs`.

8-bit integer inputs run the program on their 256 codes (per feature) and look every
element up by bit pattern (:mod:`kernels.lut`); 16-bit ones on their 65,536 codes when the
array is larger than the table.  Same bits, fewer operations.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from numba import njit, prange
from numba.core import types
from numba.core.errors import TypingError
from numba.extending import overload, register_jitable

from . import lut
from ._tags import Tag, TagType
from ._jit import kernel
from .codecs._bits import sum_to_odd_f64
from .codecs._round import random_bits
from .codecs import (
    DEFAULT_POLICY,
    INT_ROUNDINGS,
    JIT,
    REGISTRY,
    ROUNDING_TABLE,  # noqa: F401  (re-exported: the one table of rounding names)
    Policy,
    add_c,
    decode,
    encode,
    encoding_tag,
    float_rounding,
    fma_c,
    int_rounding,
    is_overflow,
    lookup,
    encode_u,
    parse_tag_name,
    rnd,
    sub_c,
    to_compute,
)


def check_compute_rounding(dtype: str, rounding: str, allow_stochastic: bool = False) -> None:
    """ValueError unless compute dtype ``dtype`` can round its arithmetic in ``rounding``
    (a float name): float64 has only nearest_even (no wider type to emulate it in);
    ``stochastic`` needs an element index (program ops have one: ``allow_stochastic``)."""
    if rounding != "nearest_even" and dtype == "float64":
        raise ValueError(
            f"compute_dtype='float64' has only rounding='nearest_even' (directed float64 arithmetic would need "
            f"a wider type to emulate it); got rounding={rounding!r}: use compute_dtype float32, bfloat16 or float16"
        )
    if rounding == "stochastic" and not allow_stochastic:
        raise ValueError(
            "rounding='stochastic' is not offered here: the transform kernels (measure, its domain sweeps) "
            "have no element index to draw reproducible random bits from; transform(x, ..., "
            "rounding='stochastic', seed=1) and pipeline steps (measure(x, 'minmax(compute_dtype=float16, "
            "rounding=stochastic, seed=1)')) run it as program ops, which have one"
        )


ARITH = ("add", "sub", "mul", "div", "rsub", "rdiv")
KINDS = ARITH + ("round", "fma", "abs", "rint", "clip", "int")
# ops that round into a float dtype (and so take a float rounding mode)
FLOAT_OPS = ARITH + ("round", "fma")
ROUNDINGS = INT_ROUNDINGS  # the int op's own names, in code order (ROUNDING_TABLE gives both spellings)
OVERFLOWS = ("saturate", "wrap", "cv", "saturate_nan_min")
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
    seed: int = 0  # rounding="stochastic": the seed of the op's random bits

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"op kind {self.kind!r} is not one of: {', '.join(KINDS)}")
        if len(self.const) != _NCONST.get(self.kind, 0):
            raise ValueError(f"op {self.kind!r} takes {_NCONST.get(self.kind, 0)} constants, got {len(self.const)}")
        if self.kind == "int":
            if self.dtype not in INT_TYPES:
                raise ValueError(f"int op dtype {self.dtype!r} is not one of: {', '.join(INT_TYPES)}")
            object.__setattr__(self, "rounding", int_rounding(self.rounding, "int op rounding"))
            if self.overflow not in OVERFLOWS:
                raise ValueError(f"int op overflow={self.overflow!r} is not one of: {', '.join(OVERFLOWS)}")
        elif self.kind in FLOAT_OPS:
            row = lookup(self.dtype, "op dtype")
            r = float_rounding(self.rounding, f"op {self.kind!r} rounding")
            storage_round = self.kind == "round" and not row.is_integer and not row.can_compute
            if not (row.can_compute or storage_round):
                raise ValueError(f"op {self.kind!r} rounds into a float dtype, not {self.dtype!r}")
            if self.kind == "round" and row.name == "float64":
                r = "nearest_even"  # the float64 carrier is already a float64 value: exact in every mode
                object.__setattr__(self, "seed", 0)
            object.__setattr__(self, "rounding", r)
            if storage_round:
                if not row.family.supports(row.name, Policy(r)):
                    raise ValueError(f"op 'round' into {row.name} has no rounding={r!r}")
            else:
                check_compute_rounding(row.name, r, allow_stochastic=True)
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool) or not 0 <= int(self.seed) < 1 << 64:
            raise ValueError(f"op seed={self.seed!r} must be an integer in [0, 2**64)")
        if self.seed and self.rounding != "stochastic":
            raise ValueError(f"op seed={self.seed!r} only applies to rounding='stochastic'")
        consts = tuple(np.array(c, dtype=np.float64).reshape(-1) for c in self.const)
        object.__setattr__(self, "const", consts)

    @property
    def policy(self) -> Policy:
        """The encoding policy a float op rounds under (the default for every other op)."""
        return Policy(self.rounding) if self.kind in FLOAT_OPS else DEFAULT_POLICY

    @property
    def codec_tag(self):
        """The codec tag (dtype and policy, ``codecs.encoding_tag``) a float op is
        specialised on when it rounds under a non-default mode or into a storage format
        (float8/6/4: decode(encode(v))); None for ops run by ``apply_op``'s codes."""
        if self.kind not in FLOAT_OPS:
            return None
        row = REGISTRY[lookup(self.dtype).name]
        if self.policy == DEFAULT_POLICY and row.can_compute:
            return None
        return encoding_tag(row, self.policy)

    @property
    def tag_name(self) -> str:
        if self.kind == "int":
            return f"int/{self.dtype}/{self.rounding}/{self.overflow}"
        return f"{self.kind}/{self.dtype}{self.policy.suffix()}"

    def rounded_consts(self) -> list[np.ndarray]:
        """The constants rounded once into the op's dtype (exact in float64)."""
        if self.kind in ARITH + ("fma",) and self.dtype != "float64":
            from .cast import cast  # layer 3 helper; imported late to keep import order simple

            return [cast(c, "float32" if self.dtype == "float32" else self.dtype).astype(np.float64) for c in self.const]
        return list(self.const)

    def __repr__(self) -> str:
        c = ", ".join(np.array2string(v, separator=",") if v.size > 1 else repr(float(v[0])) for v in self.const)
        extra = f", {self.rounding}, {self.overflow}" if self.kind == "int" else ""
        if self.policy != DEFAULT_POLICY:
            extra = f", {self.rounding}"
        return f"Op({self.kind}{' ' + self.dtype if self.dtype else ''}{' ' + c if c else ''}{extra})"


# --------------------------------------------------------------------------
# one generic function per op, by integer codes; a fused program calls it with
# literal codes (LLVM folds the branches away), the interpreter with runtime ones
# --------------------------------------------------------------------------

KIND_CODE = {k: i for i, k in enumerate(KINDS)}
FLOAT_CODE = {"float16": 0, "bfloat16": 1, "float32": 2, "float64": 3}
INT_CODE = {k: i for i, k in enumerate(INT_TYPES)}
ROUND_CODE = {k: i for i, k in enumerate(ROUNDINGS)}
OVER_CODE = {k: i for i, k in enumerate(OVERFLOWS)}
# per int code: lowest, highest, 2**bits, signed
_INT_TABLE = np.array(
    [
        [-(2.0 ** (b - 1)) if sg else 0.0, 2.0 ** (b - 1) - 1 if sg else 2.0**b - 1, 2.0**b, float(sg)]
        for b, sg in INT_TYPES.values()
    ]
)
_F16, _BF16 = REGISTRY["float16"].tag, REGISTRY["bfloat16"].tag


@njit(**_INNER)
def _arith(kind, a, b):
    """One arithmetic op on two operands of one type, rounded in that type."""
    if kind == 0:
        return a + b
    if kind == 1:
        return a - b
    if kind == 2:
        return a * b
    if kind == 3:
        return a / b
    if kind == 4:
        return b - a
    return b / a


@njit(**_INNER)
def _in_float(d, v):
    """float64 carrier -> the value rounded into float dtype code d (float64 back)."""
    if d == 3:
        return v
    if d == 2:
        return np.float64(np.float32(v))
    if d == 0:
        return np.float64(to_compute(_F16, v))  # float64 -> 16 bits rounds once
    return np.float64(to_compute(_BF16, v))


@njit(**_INNER)
def _int_value(v, d, rounding, overflow):
    lo, hi, modulus, signed = _INT_TABLE[d, 0], _INT_TABLE[d, 1], _INT_TABLE[d, 2], _INT_TABLE[d, 3]
    if rounding == 0:
        r = np.rint(v)
    elif rounding == 1:
        r = np.trunc(v)
    elif rounding == 2:
        r = np.floor(v)
    elif rounding == 4:
        r = np.ceil(v)
    else:  # half away from zero, C's round(); v - trunc(v) is exact, floor(|v| + 0.5) is not
        t = np.trunc(v)
        r = t + np.copysign(1.0, v) if abs(v - t) >= 0.5 else t
    if overflow == 0 or overflow == 3:  # saturate; NaN -> 0 (saturate) or lo (saturate_nan_min)
        if r != r:
            return 0.0 if overflow == 0 else lo
        return lo if r < lo else (hi if r > hi else r)
    if overflow == 1:  # wrap: NaN, inf and past int64 are x86's 'indefinite' value, 0 here
        if not abs(r) < 9.223372036854775808e18:
            return 0.0
        m = r - np.floor(r / modulus) * modulus  # r mod 2**bits, exact for |r| < 2**63
        return m - modulus if signed != 0.0 and m >= modulus / 2 else m
    # cv: lrint to int32; NaN, inf and |v| >= 2**31 become INT_MIN, then saturate
    if not (-2147483648.0 <= r < 2147483648.0):
        r = -2147483648.0
    return lo if r < lo else (hi if r > hi else r)


@njit(**_INNER)
def apply_op(kind, d, rounding, overflow, v, c0, c1):
    """One op (codes of :data:`KIND_CODE` ...) on the float64 carrier ``v``.

    Constants ``c0``/``c1`` are already rounded into the op's dtype (exact in
    its arithmetic type)."""
    if kind <= 5:
        if d == 3:
            return _arith(kind, v, c0)
        if d == 2:
            return np.float64(_arith(kind, np.float32(v), np.float32(c0)))
        if d == 0:
            return np.float64(rnd(_F16, _arith(kind, to_compute(_F16, v), np.float32(c0))))
        return np.float64(rnd(_BF16, _arith(kind, to_compute(_BF16, v), np.float32(c0))))
    if kind == 6:
        return _in_float(d, v)
    if kind == 7:
        if d == 3:
            return np.float64(fma_c(REGISTRY_F64, v, c0, c1))
        if d == 2:
            return np.float64(fma_c(REGISTRY_F32, np.float32(v), np.float32(c0), np.float32(c1)))
        if d == 0:
            return np.float64(fma_c(_F16, to_compute(_F16, v), np.float32(c0), np.float32(c1)))
        return np.float64(fma_c(_BF16, to_compute(_BF16, v), np.float32(c0), np.float32(c1)))
    if kind == 8:
        return abs(v)
    if kind == 9:
        return np.rint(v)
    if kind == 10:  # comparisons, not min/max: NaN compares false and passes through
        return c0 if v < c0 else (c1 if v > c1 else v)
    return _int_value(v, d, rounding, overflow)


REGISTRY_F32, REGISTRY_F64 = REGISTRY["float32"].tag, REGISTRY["float64"].tag


# A float op (kinds 0-7 of KIND_CODE) in compute codec ``cc``, a codec tag carrying a
# rounding policy (``encoding_tag``): the operand's conversion and the result each round
# once in that mode.  Values are held in float64 (``codecs._round.compute_ops``); the
# constants are already in the dtype.  One generic function per op kind (a fused
# program calls the one its op names, so only that op's rounding is compiled).
@njit(**_INNER)
def _p_add(cc, v, c0, c1):
    return add_c(cc, to_compute(cc, v), c0)


@njit(**_INNER)
def _p_sub(cc, v, c0, c1):
    return sub_c(cc, to_compute(cc, v), c0)


@njit(**_INNER)
def _p_mul(cc, v, c0, c1):
    return rnd(cc, to_compute(cc, v) * c0)


@njit(**_INNER)
def _p_div(cc, v, c0, c1):
    return rnd(cc, to_compute(cc, v) / c0)


@njit(**_INNER)
def _p_rsub(cc, v, c0, c1):
    return sub_c(cc, c0, to_compute(cc, v))


@njit(**_INNER)
def _p_rdiv(cc, v, c0, c1):
    return rnd(cc, c0 / to_compute(cc, v))


@njit(**_INNER)
def _p_round(cc, v, c0, c1):
    return to_compute(cc, v)


@njit(**_INNER)
def _p_fma(cc, v, c0, c1):
    return fma_c(cc, to_compute(cc, v), c0, c1)


# The stochastic ops: the operand's conversion draws ``u0``, the result ``u1`` (64 random
# bits each, ``random_bits(key, i * K + draw)``: a function of the element's flat index
# and the op's place in the program alone).  The distance to the lower neighbour is
# that of the float64 value (exact for products; sums rounded to odd and quotients
# within 2**-53 relative: the probabilities are exact to about 2**(p - 53)).
@register_jitable
def _rnd_u(cc, v, u):
    return np.float64(decode(cc, encode_u(cc, np.float64(v), u)))


@njit(**_INNER)
def _s_add(cc, v, c0, c1, u0, u1):
    return _rnd_u(cc, sum_to_odd_f64(_rnd_u(cc, v, u0), c0), u1)


@njit(**_INNER)
def _s_sub(cc, v, c0, c1, u0, u1):
    return _rnd_u(cc, sum_to_odd_f64(_rnd_u(cc, v, u0), -c0), u1)


@njit(**_INNER)
def _s_mul(cc, v, c0, c1, u0, u1):
    return _rnd_u(cc, _rnd_u(cc, v, u0) * c0, u1)


@njit(**_INNER)
def _s_div(cc, v, c0, c1, u0, u1):
    return _rnd_u(cc, _rnd_u(cc, v, u0) / c0, u1)


@njit(**_INNER)
def _s_rsub(cc, v, c0, c1, u0, u1):
    return _rnd_u(cc, sum_to_odd_f64(c0, -_rnd_u(cc, v, u0)), u1)


@njit(**_INNER)
def _s_rdiv(cc, v, c0, c1, u0, u1):
    return _rnd_u(cc, c0 / _rnd_u(cc, v, u0), u1)


@njit(**_INNER)
def _s_round(cc, v, c0, c1, u0, u1):
    return _rnd_u(cc, v, u0)


@njit(**_INNER)
def _s_fma(cc, v, c0, c1, u0, u1):
    return _rnd_u(cc, sum_to_odd_f64(_rnd_u(cc, v, u0) * c0, c1), u1)


_STOCHASTIC_OPS = {"add": _s_add, "sub": _s_sub, "mul": _s_mul, "div": _s_div, "rsub": _s_rsub, "rdiv": _s_rdiv,
                   "round": _s_round, "fma": _s_fma}
_DRAWS = 2  # random draws per stochastic arithmetic op and element (a round draws one)

_POLICY_OPS = {"add": _p_add, "sub": _p_sub, "mul": _p_mul, "div": _p_div, "rsub": _p_rsub, "rdiv": _p_rdiv,
               "round": _p_round, "fma": _p_fma}


@njit(**_INNER)
def _storage_round(cc, v):
    """``v`` rounded into a storage format (float8/6/4) under codec tag ``cc``'s policy, as float64."""
    return np.float64(decode(cc, encode(cc, v)))


def op_codes(op: Op, slot: int) -> tuple:
    """(kind, dtype, rounding, overflow, constant slot) of one op, as integers."""
    d = INT_CODE[op.dtype] if op.kind == "int" else FLOAT_CODE.get(op.dtype, 0)
    r = ROUND_CODE[op.rounding] if op.kind == "int" else 0
    return (KIND_CODE[op.kind], d, r, OVER_CODE[op.overflow], slot)


def op_tag(op: Op, codes) -> Tag:
    """The compile-time tag of one op in a fused program: its codes, and after ``;``
    the name of its codec tag when it has one (:attr:`Op.codec_tag`)."""
    cc = op.codec_tag
    return Tag("op", ",".join(map(str, codes)) + (f";{cc.name}" if cc is not None else ""))


def run_ops(prog, consts, j, v, i, keys):
    """Apply a fused program's ops (a tuple of tags naming their codes) to ``v`` of feature
    ``j``, element ``i`` of the whole array (stochastic ops draw from ``keys`` and ``i``)."""


@overload(run_ops, jit_options=_INNER)
def _ov_run_ops(prog, consts, j, v, i, keys):
    if not isinstance(prog, types.BaseTuple) or not all(isinstance(t, TagType) for t in prog.types):
        raise TypingError("run_ops needs a tuple of op tags")
    lines = ["def impl(prog, consts, j, v, i, keys):", "    v = np.float64(v)"]
    ns = {"np": np, "apply_op": apply_op, "_storage_round": _storage_round, "_rnd_u": _rnd_u,
          "random_bits": random_bits, "decode": decode, "encode_u": encode_u}
    ns.update({f"_p_{kind}": fn for kind, fn in _POLICY_OPS.items()})
    ns.update({f"_s_{kind}": fn for kind, fn in _STOCHASTIC_OPS.items()})
    # draws per element: one for a round (its only rounding), two for an arithmetic op
    # (operand, result); a program whose one stochastic op is a round draws
    # random_bits(key, i), kernels.cast's bits
    random = [t.tag for t in prog.types if t.tag.endswith("|rounding=stochastic")]
    draws = sum(1 if int(t.split(",")[0]) == KIND_CODE["round"] else _DRAWS for t in random)
    q, first = 0, 0  # the stochastic op's place (its key in ``keys``) and its first draw
    for n, t in enumerate(prog.types):
        codes, _, codec = t.tag.partition(";")
        k, d, r, o, s = (int(c) for c in codes.split(","))
        if codec.endswith("|rounding=stochastic"):
            ns[f"_cc{n}"] = Tag("codec", codec)
            u0 = f"random_bits(keys[{q}], np.uint64(i) * np.uint64({draws}) + np.uint64({first}))"
            if k == KIND_CODE["round"]:
                lines.append(f"    v = _rnd_u(_cc{n}, v, {u0})")
                first += 1
            else:
                u1 = f"random_bits(keys[{q}], np.uint64(i) * np.uint64({draws}) + np.uint64({first + 1}))"
                lines.append(f"    v = _s_{KINDS[k]}(_cc{n}, v, consts[j, {s}], consts[j, {s + 1}], {u0}, {u1})")
                first += _DRAWS
            q += 1
        elif codec:  # the op's own codec tag: its dtype under a rounding policy
            ns[f"_cc{n}"] = Tag("codec", codec)
            if REGISTRY[parse_tag_name(codec)[0]].can_compute:
                lines.append(f"    v = _p_{KINDS[k]}(_cc{n}, v, consts[j, {s}], consts[j, {s + 1}])")
            else:
                lines.append(f"    v = _storage_round(_cc{n}, v)")
        else:
            lines.append(f"    v = apply_op({k}, {d}, {r}, {o}, v, consts[j, {s}], consts[j, {s + 1}])")
    lines.append("    return v")
    exec("\n".join(lines), ns)
    return ns["impl"]


@kernel
def _program_kernel(x, out, consts, cin, prog, cout, keys, offset):
    """out = encode(cout, program(decode(x))) per element, one parallel pass.

    Features are the fastest-varying index (channel-last); ``consts`` has one
    row per feature.  Returns 1 when a finite input became inf in the output.
    ``keys`` (one per stochastic op) and ``offset`` (the index of ``x[0]`` in the
    whole array) give stochastic ops their random bits."""
    nfeat = consts.shape[0]
    overflowed = np.uint8(0)
    if nfeat == 1:
        for i in prange(x.size):
            v = decode(cin, x[i])
            e = encode(cout, run_ops(prog, consts, 0, v, offset + i, keys))
            out[i] = e
            overflowed = max(overflowed, np.uint8(is_overflow(cout, v, e)))
    else:
        for r in prange(x.size // nfeat):
            for j in range(nfeat):
                i = r * nfeat + j
                v = decode(cin, x[i])
                e = encode(cout, run_ops(prog, consts, j, v, offset + i, keys))
                out[i] = e
                overflowed = max(overflowed, np.uint8(is_overflow(cout, v, e)))
    return overflowed


@njit(**JIT)
def _interpret_kernel(x, out, consts, code, cin, cout):
    """The same program read from an integer table, one element after another:
    compiled once per (input, output) dtype pair, for small inputs (the codes of
    an 8/16-bit dtype, a domain's distinct values) where compiling a fused kernel
    would cost far more than it saves.  Same ``apply_op``, so the same bits."""
    nfeat = consts.shape[0]
    overflowed = np.uint8(0)
    for i in range(x.size):
        j = i % nfeat
        v = decode(cin, x[i])
        w = np.float64(v)
        for k in range(code.shape[0]):
            s = code[k, 4]
            w = apply_op(code[k, 0], code[k, 1], code[k, 2], code[k, 3], w, consts[j, s], consts[j, s + 1])
        e = encode(cout, w)
        out[i] = e
        overflowed = max(overflowed, np.uint8(is_overflow(cout, v, e)))
    return overflowed


@kernel
def _gather_kernel(x, out, table):
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
    output_dtype: str
    nfeat: int = 1

    def __post_init__(self):
        object.__setattr__(self, "ops", tuple(self.ops))
        lookup(self.output_dtype, "output_dtype")
        for op in self.ops:
            for c in op.const:
                if c.size not in (1, self.nfeat):
                    raise ValueError(f"{op!r} has {c.size} constants for {self.nfeat} features")

    @property
    def needs_fused(self) -> bool:
        """Whether an op rounds under a non-default mode: the interpreter has only the
        default compute codecs (one compile per dtype pair), so such programs always
        run fused (the code tables of 8/16-bit inputs too)."""
        return any(op.codec_tag is not None for op in self.ops)

    @property
    def is_random(self) -> bool:
        """Whether an op rounds stochastically (each element its own bits: no code tables)."""
        return any(op.rounding == "stochastic" for op in self.ops if op.kind in FLOAT_OPS)

    @functools.cached_property
    def _keys(self) -> np.ndarray:
        from .codecs._round import seed_key

        keys = [seed_key(int(op.seed)) for op in self.ops if op.kind in FLOAT_OPS and op.rounding == "stochastic"]
        return np.array(keys or [0], dtype=np.uint64)

    @functools.cached_property
    def _compiled(self):
        cols, code = [], []
        for op in self.ops:
            code.append(op_codes(op, len(cols)))
            cols.extend(op.rounded_consts())
        # two spare columns: every op reads two constants (unused ones are 0)
        table = np.zeros((self.nfeat, len(cols) + 2), np.float64)
        for k, c in enumerate(cols):
            table[:, k] = np.broadcast_to(c, (self.nfeat,))
        code = np.array(code or np.zeros((0, 5)), dtype=np.int64).reshape(-1, 5)
        # a unique position per tag keeps a tuple of equal ops a Tuple (not UniTuple)
        tags = tuple(op_tag(op, row) for op, row in zip(self.ops, code.tolist()))
        return table, code, tags

    def run(self, flat_x: np.ndarray, in_row, flat_out: np.ndarray, out_row, fused: bool | None = None) -> int:
        """Write the program's output of ``flat_x`` (storage views) into ``flat_out``.

        ``fused=None``: the fused parallel kernel for inputs of at least
        ``FUSE_MIN`` elements, the interpreter below (and for the code tables of
        8/16-bit inputs).  Returns the number of finite inputs that became inf."""
        from .codecs import write_counting_overflow

        table, code, tags = self._compiled
        nfeat = table.shape[0]
        codes = 1 << (8 * in_row.itemsize)

        base, size = flat_x.__array_interface__["data"][0], flat_x.itemsize

        def kernel(src, dest, use_fused):
            if use_fused or self.needs_fused:
                # src is flat_x or a block of it (in place, or a code table): its index offset
                start = (src.__array_interface__["data"][0] - base) // size
                offset = np.int64(start) if 0 <= start < flat_x.size else np.int64(0)
                return _program_kernel(src, dest, table, in_row.tag, tags, out_row.tag, self._keys, offset)
            return _interpret_kernel(src, dest, table, code, in_row.tag, out_row.tag)

        if fused is None and in_row.is_integer and flat_x.size >= 4 * codes * nfeat and not self.is_random:
            # every possible code once, per feature; then look elements up
            # codes in bit-pattern order (int8 -128 is pattern 128), looked up by pattern
            bits = np.dtype(f"u{in_row.itemsize}")
            values = np.empty(codes * nfeat, out_row.storage)
            grid = np.repeat(np.arange(codes, dtype=bits).view(in_row.storage), nfeat)
            if not kernel(grid, values, False):
                values = values.reshape(codes, nfeat)
                index = flat_x.view(bits)
                if codes == 256 and lut.AVAILABLE and nfeat == 1:
                    lut.apply_table(index, np.ascontiguousarray(values[:, 0]), flat_out)
                elif codes == 256 and lut.AVAILABLE and nfeat <= lut.MAX_CHANNELS:
                    lut.apply_tables(index, values, flat_out)
                else:
                    _gather_kernel(index, flat_out, values)
                return 0
        use_fused = flat_x.size >= FUSE_MIN if fused is None else fused
        return write_counting_overflow(
            lambda src, dest: kernel(src, dest, use_fused), flat_x, flat_out, in_row.tag, out_row.tag, nfeat
        )


# below this many elements a program is interpreted (one compiled kernel per dtype
# pair) rather than fused (one compile per program, about a second each)
FUSE_MIN = 1 << 18


def run_program(x, ops, output_dtype, *, out=None, fused: bool | None = None) -> np.ndarray:
    """Run a chain of :class:`Op` on ``x`` (features along the last axis when any
    constant has more than one value) into ``output_dtype``; ``x`` is not modified."""
    from ._validate import check_array, check_dtype, check_out
    from .codecs import as_storage

    x, in_row = check_array(x)
    out_row = check_dtype(output_dtype, "output_dtype")
    nfeat = max([c.size for op in ops for c in op.const] or [1])
    if nfeat > 1 and (x.ndim < 2 or x.shape[-1] != nfeat):
        raise ValueError(f"the program has {nfeat} values per feature; x has shape {x.shape} (features last)")
    prog = Program(tuple(ops), out_row.name, nfeat)
    out = check_out(out, x.shape, out_row, x)
    prog.run(as_storage(x, in_row).reshape(-1), in_row, as_storage(out, out_row).reshape(-1), out_row, fused)
    return out
