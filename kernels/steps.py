"""Steps (layer 4): one element of a pipeline, written as a call, turned into program ops.

A step is a transform (``minmax``, ``standardize``, ``scale``, ``maxabs``,
``quantize``, ``dequantize``), a ``cast``, a ``clip``, or a library preset
(``torchvision.ToDtype``, see ``precision-bench presets``).  Steps are written
in call syntax, the same strings in Python and on the command line:

=====================================================  =======================================
spec                                                   meaning
=====================================================  =======================================
``standardize(mean=imagenet, std=imagenet)``           given statistics (per channel)
``minmax(feature_range=(-1, 1), compute_dtype=float16)`` fitted min/max, float16 arithmetic
``cast(output_dtype=uint8, rounding=toward_zero, overflow=wrap)``  C's truncating cast, modulo 256
``clip(lo=0, hi=1)``                                   NaN passes through
``scaled_cast(dtype=float8_e4m3fn, axis=0)``           amax-scaled cast (torchao float8), dequantized
``mx(dtype=float4_e2m1fn, block=32, scale_rule=rceil)`` MX blocks, dequantized (kernels.scaled)
``torchvision.ToDtype(dtype=float32, scale=True)``     a preset, the library's own option names
``torchao.mx(elem_dtype=float8_e4m3fn)``                an alias: expands to ``mx(...)`` (torchao's names)
=====================================================  =======================================

Values are numbers, ``True``/``False``/``None``, tuples ``(a, b)``, quoted
strings, or bare names (dtype names, ``NORM_MINMAX``); the names ``imagenet``,
``clip`` and ``inception`` stand for their mean and std (:data:`CONSTANTS`).

Every step rounds into its own output dtype; ``compute_dtype`` and
``output_dtype`` of a transform step default as :func:`kernels.transform`'s.

``rounding=`` is one option with one table (``codecs.ROUNDING_TABLE``), both
spellings accepted everywhere:

================  ===============  ============================================
float name        integer name     a transform step's compute dtype / a cast
================  ===============  ============================================
``nearest_even``  ``half_even``    the default (ties to even; ``np.rint``)
``toward_zero``   ``toward_zero``  truncation (C's casts to integers)
``up``            ``ceil``         toward +inf
``down``          ``floor``        toward -inf
``nearest_away``  ``half_away``    ties away from zero (C's ``round``)
``stochastic``    --               with ``seed=`` (float dtypes only)
================  ===============  ============================================

A transform step (``minmax(compute_dtype=float16, rounding=toward_zero)``) rounds
the input's conversion and every operation of its formula in that mode, as
``transform(rounding=)`` does (float16, bfloat16, float32; float64 computes in
``nearest_even`` only).  A ``cast`` rounds in the mode into float16, bfloat16,
float32 and the storage formats (float8/6/4, as ``kernels.cast(rounding=)``);
into float64 every mode is exact; into an integer dtype it goes with ``overflow=``.
``stochastic`` takes ``seed=`` (default 0): op ``k`` of the program draws the bits
``random_bits(key, i * K + k')`` of element ``i`` (``K`` draws per element: one per
round, two per arithmetic op), so results do not depend on threads or chunks; a
cast step that is the pipeline's only stochastic op has ``kernels.cast(x, dtype,
rounding='stochastic', seed=)``'s bits.  Any other
combination is a ValueError listing the valid choices.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from fractions import Fraction

import numpy as np

from . import presets as _presets
from .codecs import REGISTRY, lookup
from .params import Frozen
from .cast import check_seed
from .program import INT_TYPES, OVERFLOWS, Op, check_compute_rounding, float_rounding, int_rounding
from .stats import GIVEN, TRANSFORMS, Params, fit, params
from .transforms import DEFAULT_FORMULA, _compute_row, default_output, kernel_ops, kernel_plan

CONSTANTS = {
    "imagenet": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
    # OpenAI CLIP's preprocessing (open_clip/constants.py)
    "clip": {"mean": (0.48145466, 0.4578275, 0.40821073), "std": (0.26862954, 0.26130258, 0.27577711)},
    # Inception / timm's IMAGENET_INCEPTION_MEAN and _STD
    "inception": {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
}

_FIT_OPTIONS = ("axis", "accumulator", "acc_dtype", "nan_policy")
_TRANSFORM_OPTIONS = {
    "minmax": ("feature_range",),
    "standardize": (),
    "scale": (),
    "maxabs": (),
    "quantize": ("qdtype", "symmetric"),
    "dequantize": ("qdtype",),
}
_BUILTIN = {
    **{t: ("formula", "compute_dtype", "output_dtype", "rounding", "seed", *_TRANSFORM_OPTIONS[t], *GIVEN[t],
           *_FIT_OPTIONS) for t in TRANSFORMS},
    "cast": ("output_dtype", "rounding", "overflow", "seed"),
    "clip": ("lo", "hi"),
    # block steps (kernels.scaled): not elementwise; the output is the dequantized float32 value
    "scaled_cast": ("dtype", "axis", "eps", "pow2", "saturate"),
    "mx": ("dtype", "block", "axis", "scale_rule", "pad"),
}
BLOCK_STEPS = ("scaled_cast", "mx")


class SpecError(ValueError):
    """A step spec that does not parse or names an unknown step or option."""


# --------------------------------------------------------------------------
# parsing and printing the call syntax
# --------------------------------------------------------------------------


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    raise SpecError(f"{ast.unparse(node)!r} is not a step name")


def _value(node, option: str):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _value(node.operand, option)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_value(e, option) for e in node.elts)
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = _dotted(node)
        if name in ("inf", "nan"):
            return float(name)
        if name in CONSTANTS and option in CONSTANTS[name]:
            return CONSTANTS[name][option]
        return name  # dtype names, NORM_MINMAX, half_even, ...
    raise SpecError(f"option {option}={ast.unparse(node)!r}: use a number, a name, a tuple or a quoted string")


def parse(spec: str) -> tuple[str, dict]:
    """``"name(opt=value, ...)"`` -> (name, options); a bare ``name`` has no options."""
    if not isinstance(spec, str):
        raise TypeError(f"a step spec must be a string such as 'cast(output_dtype=float16)', got {type(spec).__name__}")
    text = spec.strip()
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as e:
        raise SpecError(f"step {spec!r} does not parse ({e.msg}); write name(option=value, ...)") from None
    if isinstance(node, (ast.Name, ast.Attribute)):
        return _dotted(node), {}
    if not isinstance(node, ast.Call):
        raise SpecError(f"step {spec!r} is not a call; write name(option=value, ...)")
    name = _dotted(node.func)
    if node.args:
        raise SpecError(f"step {spec!r}: options are given by name (option=value), not by position")
    options = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise SpecError(f"step {spec!r}: ** is not allowed")
        options[kw.arg] = _value(kw.value, kw.arg)
    return name, options


def _format(v) -> str:
    if isinstance(v, (tuple, list)):
        inner = ", ".join(_format(e) for e in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, np.ndarray):
        return _format(tuple(v.tolist())) if v.ndim else _format(v.item())
    if isinstance(v, str):
        return v if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", v) else repr(v)
    return repr(v)


def format_spec(name: str, options) -> str:
    if not options:
        return name
    return f"{name}({', '.join(f'{k}={_format(v)}' for k, v in options.items())})"


# --------------------------------------------------------------------------
# the step
# --------------------------------------------------------------------------


def _valid_names() -> str:
    return ", ".join([*_BUILTIN, *_presets.PRESETS, *_presets.ALIASES])


@dataclasses.dataclass(frozen=True, eq=False)
class Step:
    """One pipeline step: ``name``, its ``options`` and, once fitted, its state.

    Immutable and picklable; :meth:`fit` returns a fitted copy.  ``spec`` is
    the canonical call string (it parses back to an equal step)."""

    name: str
    options: Frozen
    state: object = None  # Params (transforms), a dict of float64 arrays (presets), or None
    input_dtype: str | None = None

    @property
    def spec(self) -> str:
        return format_spec(self.name, self.options)

    def __repr__(self) -> str:
        return f"Step({self.spec!r}{', fitted' if self.state is not None else ''})"

    def __eq__(self, other):
        return isinstance(other, Step) and self.spec == other.spec and self.input_dtype == other.input_dtype

    def __hash__(self):
        return hash(self.spec)

    @property
    def output_dtype(self) -> str | None:
        """The dtype this step rounds into: known once fitted (or for a cast, or a
        transform given ``output_dtype=``); None while it depends on the input."""
        if self.kind == "cast":
            return lookup(self.options["output_dtype"], "output_dtype").name
        if self.is_block:
            return "float32"
        if self.kind == "transform" and self.options.get("output_dtype"):
            return lookup(self.options["output_dtype"], "output_dtype").name
        return self.build(self.input_dtype)[1] if self.input_dtype else None

    @property
    def compute_dtype(self) -> str | None:
        """The dtype its arithmetic happens in (as :attr:`output_dtype`, None while unknown)."""
        if self.kind == "transform":
            return _compute_row(self.options.get("compute_dtype", "float32")).name
        if self.kind == "cast" or self.is_block:
            return self.output_dtype
        return self.build(self.input_dtype)[2] if self.input_dtype else None

    @property
    def is_block(self) -> bool:
        """A block step (``scaled_cast``, ``mx``): its scales depend on other elements,
        so it runs on whole arrays (:meth:`quantize`), never in a fused program."""
        return self.name in BLOCK_STEPS

    def _block_options(self) -> dict:
        return {k: v for k, v in self.options.items() if k != "dtype"}

    def quantize(self, x, amax=None):
        """(codes, scales) of a block step on ``x`` (:mod:`kernels.scaled`); ``amax``:
        a scaled_cast's amax when ``x`` is one chunk of the tensor (keepdims)."""
        from . import scaled

        if self.name == "scaled_cast":
            return scaled.scaled_cast(x, self.options["dtype"], tensor_amax=amax, **self._block_options())
        return scaled.mx_quantize(x, self.options["dtype"], **self._block_options())

    def apply_block(self, x, amax=None) -> np.ndarray:
        """The dequantized float32 values of a block step on ``x``: its output's identity
        (``amax`` as :meth:`quantize`)."""
        from . import scaled

        codes, scales = self.quantize(x, amax)
        if self.name == "scaled_cast":
            return scaled.scaled_dequantize(codes, scales, axis=self.options.get("axis"))
        opts = {k: v for k, v in self._block_options().items() if k != "scale_rule"}
        return scaled.mx_dequantize(codes, scales, **opts)

    @property
    def kind(self) -> str:
        return "preset" if self.name in _presets.PRESETS else ("transform" if self.name in TRANSFORMS else self.name)

    @property
    def needs_fit(self) -> bool:
        """True when the step computes statistics from its input."""
        if self.kind == "transform":
            given = GIVEN[self.name]
            return self.name not in ("scale", "dequantize") and not all(k in self.options for k in given)
        if self.kind == "preset":
            return _presets.get(self.name).fit is not None
        return False

    # ---------------------------------------------------------------- fitting

    def fit(self, x) -> Step:
        """A copy fitted on ``x`` (the output of the steps before it)."""
        from ._validate import check_array

        if type(x).__module__.startswith("dask."):  # a dask array: fitted chunk by chunk, never loaded whole
            from .dask_array import prepare

            x, row, _ = prepare(x)
            if self.kind == "preset":  # from the chunks' min/max when the preset's fit is one (else a TypeError)
                from .dask_array import preset_fit

                p = _presets.get(self.name)
                state = preset_fit(p, x, row, self.spec, **self.options) if p.fit is not None else None
                return dataclasses.replace(self, state=state, input_dtype=row.name)
        else:
            x, row = check_array(x)
        if self.kind == "transform":
            opts = dict(self.options)
            for k in ("formula", "compute_dtype", "output_dtype", "rounding", "seed"):
                opts.pop(k, None)
            state = fit(x, self.name, **opts)
        elif self.kind == "preset":
            p = _presets.get(self.name)
            state = p.fit(x, **self.options) if p.fit is not None else None
        else:
            state = None
        return dataclasses.replace(self, state=state, input_dtype=row.name)

    def _params(self, in_dtype: str) -> Params:
        """The transform's Params: fitted, or built from the given statistics."""
        if isinstance(self.state, Params):
            return self.state
        if self.needs_fit:
            raise ValueError(f"step {self.spec!r} computes statistics from its input: fit the pipeline first "
                             "(pipeline.fit(x) or fit_transform), or give them (e.g. mean=, std=)")
        given = {k: self.options[k] for k in GIVEN[self.name] if k in self.options}
        extra = {k: self.options[k] for k in _TRANSFORM_OPTIONS[self.name] if k in self.options}
        if extra.pop("symmetric", False):
            raise ValueError(f"step {self.spec!r}: symmetric=True fits scale and zero_point; give it without them")
        if self.name == "scale":
            x = np.zeros(1, REGISTRY[in_dtype].dtype)
            return fit(x, "scale", **given, **extra)
        return params(self.name, input_dtype=in_dtype, **given, **extra)

    # ---------------------------------------------------------------- ops

    def build(self, in_dtype: str):
        """(ops, output_dtype, compute_dtype, inverse ops or None) for input ``in_dtype``."""
        in_row = lookup(in_dtype, "input dtype")
        if self.kind == "transform":
            p = self._params(in_row.name)
            formula = self.options.get("formula") or DEFAULT_FORMULA[self.name]
            crow = _compute_row(self.options.get("compute_dtype", "float32"))
            out = self.options.get("output_dtype") or default_output(p, in_row)
            out = lookup(out, "output_dtype").name
            rounding = float_rounding(self.options.get("rounding", "nearest_even"))
            seed = self.options.get("seed") or 0
            kname, table = kernel_plan(p, formula, crow)
            ikname, itable = kernel_plan(p, formula, crow, inverse=True)
            ops = kernel_ops(kname, table, crow.name, rounding, seed)
            inv = kernel_ops(ikname, itable, crow.name, rounding, seed)
            return ops, out, crow.name, inv
        if self.kind == "cast":
            dtype = lookup(self.options["output_dtype"], "cast output_dtype").name
            rounding = self.options.get("rounding", "nearest_even")
            overflow = self.options.get("overflow", "saturate")
            if REGISTRY[dtype].is_integer or dtype in INT_TYPES:
                ops = (Op("int", dtype, rounding=int_rounding(rounding), overflow=overflow),)
            else:
                # a storage format (float8/6/4) is rounded into by the output encoder (last step only),
                # or under a rounding mode by a round op into it (decode(encode(v)) in that mode)
                r = float_rounding(rounding)
                seed = self.options.get("seed") or 0
                ops = ((Op("round", dtype, rounding=r, seed=seed),) if REGISTRY[dtype].can_compute or r != "nearest_even"
                       else ())
            return ops, dtype, dtype, ()
        if self.is_block:  # no elementwise ops: the pipeline runs it on the whole array
            return (), "float32", "float32", ()
        if self.kind == "clip":
            lo = self.options.get("lo", -np.inf)
            hi = self.options.get("hi", np.inf)
            return (Op("clip", None, (lo, hi)),), in_row.name, in_row.name, ()
        p = _presets.get(self.name)
        if p.fit is not None and self.state is None:
            raise ValueError(f"step {self.spec!r} computes statistics from its input: fit the pipeline first")
        built = p.build(in_row.name, self.state, **self.options)
        inv = tuple(built.inverse.ops) if built.inverse is not None else None
        return tuple(built.ops), built.output_dtype, built.compute_dtype, inv

    def ideal(self, exact_stats=None, in_dtype: str | None = None) -> tuple:
        """The exact map of this step (a tuple of presets.Exact), given the exact
        statistics of its (ideal) input when it fits any."""
        if self.kind == "cast" or self.is_block:
            return ()  # a cast means the identity; its rounding is the loss
        if self.kind == "clip":
            lo, hi = self.options.get("lo"), self.options.get("hi")
            return (_presets.Exact("clip", (lo, hi)),)
        if self.kind == "preset":
            p = _presets.get(self.name)
            if p.ideal_for is not None and in_dtype is not None:
                return tuple(p.ideal_for(in_dtype, **self.options))
            return tuple(p.ideal(exact_stats, **self.options))
        return _transform_ideal(self, exact_stats)


def _transform_ideal(step: Step, st) -> tuple:
    E, affine = _presets.Exact, _presets.affine
    o = step.options
    f = Fraction
    if step.name == "minmax":
        a, b = (f(v) for v in o.get("feature_range", (0, 1)))
        lo, hi = st["min"], st["max"]
        rng = (hi - lo) or f(1)
        s = (b - a) / rng
        return (affine(s, a - lo * s),)
    if step.name == "standardize":
        return (E("sqrt", (st["mean"], st["var"])),)
    if step.name == "maxabs":
        return (affine(f(1) / (st["maxabs"] or f(1))),)
    if step.name == "scale":
        return (affine(f(1) / st["divisor"]),)
    raise ValueError(f"no exact ideal for {step.name}")


def _check_options(name: str, options: dict) -> None:
    if name in _BUILTIN:
        allowed = _BUILTIN[name]
        required = {"cast": ("output_dtype",), "scaled_cast": ("dtype",), "mx": ("dtype",)}.get(name, ())
    else:
        preset = _presets.get(name) if name in _presets.PRESETS else None
        if preset is None:
            raise SpecError(f"unknown step {name!r}; valid steps: {_valid_names()}")
        allowed = tuple(preset.options)
        required = tuple(k for k, v in preset.options.items() if v is _presets.REQUIRED)
    unknown = [k for k in options if k not in allowed]
    if name == "cast" and unknown == ["dtype"]:
        raise SpecError("step 'cast' takes output_dtype=, as transform() and measure() do: cast(output_dtype=float16)")
    if unknown:
        raise SpecError(f"step {name!r} has no option {', '.join(unknown)}; its options: {', '.join(allowed) or 'none'}")
    missing = [k for k in required if k not in options]
    if missing:
        raise SpecError(f"step {name!r} needs {', '.join(missing)}=")
    if name in BLOCK_STEPS:
        _check_block_options(name, options)
    if name in TRANSFORMS and ("rounding" in options or "seed" in options):
        try:
            r = float_rounding(options.get("rounding", "nearest_even"), f"step {name!r} rounding")
            check_compute_rounding(_compute_row(options.get("compute_dtype", "float32")).name, r, allow_stochastic=True)
            check_seed(options.get("seed"), r)
        except TypeError as e:
            if "seed" in str(e):
                raise
            # a bad compute_dtype is reported where it is used, as without rounding=
        except ValueError as e:
            raise SpecError(f"step {name!r}: {e}") from None
    if name == "cast":
        if options.get("overflow", "saturate") not in OVERFLOWS[:2]:
            raise SpecError(f"cast overflow={options['overflow']!r} is not one of: saturate, wrap")
        d = options["output_dtype"]
        if not (isinstance(d, str) and d in INT_TYPES) and not isinstance(d, np.dtype):
            try:
                lookup(d, "output_dtype")
            except TypeError as e:
                raise SpecError(f"step 'cast': {e}") from None
        _check_cast_rounding(options)


def _check_cast_rounding(options: dict) -> None:
    """A cast step's ``rounding=`` (either spelling of ROUNDING_TABLE) and ``overflow=``
    against its output dtype: a SpecError (a ValueError) listing the valid ones."""
    rounding = options.get("rounding", "nearest_even")
    try:
        row = lookup(options["output_dtype"], "output_dtype")
    except TypeError:
        return  # reported by lookup above (INT_TYPES names are registry rows too)
    try:
        if row.is_integer:
            int_rounding(rounding, "cast rounding")
            if options.get("seed") is not None:
                raise ValueError("seed= only applies to rounding='stochastic' of a float dtype")
            return
        r = float_rounding(rounding, "cast rounding")
        if options.get("overflow", "saturate") != "saturate":
            raise ValueError(f"overflow={options['overflow']!r} applies to integer dtypes; a cast into {row.name} "
                             "overflows as the format defines (kernels.cast(saturate=) for the other policy)")
        check_seed(options.get("seed"), r)
        # a cast into float64 is exact (the carrier holds float64 values): every mode gives the same
    except ValueError as e:
        raise SpecError(f"step 'cast': {e}") from None


def _check_block_options(name: str, options: dict) -> None:
    """The options of a block step, checked as kernels.scaled checks them (ValueError, TypeError)."""
    from . import scaled

    try:
        scaled._element_row(options["dtype"])
        if name == "mx":
            scaled._block(options.get("block", 32))
            scaled._choice(options.get("scale_rule", "floor"), scaled.SCALE_RULES, "scale_rule")
            scaled._choice(options.get("pad"), scaled.PADS, "pad")
        else:
            scaled._eps(options.get("eps", scaled.EPS))
    except (ValueError, TypeError) as e:
        raise SpecError(f"step {name!r}: {e}") from None


def step(name, **options) -> Step:
    """A pipeline step: a transform, ``cast``, ``clip`` or a preset (module table).

    ``name`` may also be a whole spec string, ``step("cast(output_dtype=float16)")``.
    Unknown steps or options raise ``ValueError`` listing the valid ones."""
    if isinstance(name, Step):
        if options:
            raise TypeError("step(Step, ...) takes no options; build a new step instead")
        return name
    if not isinstance(name, str):
        raise TypeError(f"step name must be a string, got {type(name).__name__}")
    if "(" in name or options == {} and name not in _BUILTIN and name not in _presets.PRESETS and "." not in name:
        parsed, opts = parse(name)
        if options and opts:
            raise TypeError("give options in the spec string or as keywords, not both")
        name, options = parsed, opts or options
    if name in _presets.ALIASES:  # a library's name for a built-in step (torchao.float8 -> scaled_cast)
        try:
            name, options = _presets.ALIASES[name].expand(**options)
        except ValueError as e:
            raise SpecError(str(e)) from None
    options = {k: CONSTANTS[v][k] if isinstance(v, str) and v in CONSTANTS and k in CONSTANTS[v] else v for k, v in options.items()}
    options = {k: tuple(np.asarray(v).tolist()) if isinstance(v, (list, np.ndarray)) else v for k, v in options.items()}
    _check_options(name, options)
    s = Step(name, Frozen(options))
    if s.kind == "preset":
        _presets.get(name).build  # options are validated when built, with the input dtype
    return s
