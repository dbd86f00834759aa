"""Pipelines (layer 4): steps chained, fitted in order, run as one fused program.

``kernels.pipeline("torchvision.ToDtype(dtype=float32, scale=True)",
"torchvision.Normalize(mean=imagenet, std=imagenet)", "cast(output_dtype=float16)")``
is the ImageNet preprocessing of torchvision, then ``.half()``.  A pipeline is
immutable and picklable; :meth:`Pipeline.fit` returns a fitted copy in which
each step is fitted on the output of the steps before it (as scikit-learn's
``Pipeline``).

Every step rounds into its own output dtype, so the whole pipeline is one chain
of rounded operations (:mod:`kernels.program`): it runs as a single parallel
pass over the data, with the same bits as running the steps one by one, and
uint8/uint16 inputs evaluate it once per possible code and look elements up.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from ._threads import serialised
from ._validate import check_array, check_out
from .codecs import REGISTRY, as_storage, lookup
from .program import Op, Program, run_program
from .steps import Step, step


def _join(ops: list, output_dtype: str) -> None:
    """After a step, the value must be one of its output dtype: round into it
    unless the step's last op already did."""
    row = REGISTRY[output_dtype]
    last = ops[-1] if ops else None
    if row.is_integer:
        if not (last is not None and last.kind == "int" and last.dtype == output_dtype):
            ops.append(Op("int", output_dtype))
    elif not (last is not None and last.kind in ("round", "fma", "add", "sub", "mul", "div", "rsub", "rdiv")
              and last.dtype == output_dtype):
        ops.append(Op("round", output_dtype))


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """Steps applied in order (see the module docstring)."""

    steps: tuple

    @property
    def spec(self) -> str:
        """The canonical spec: each step's call string, joined by ``; `` (the CLI's ``--pipeline``)."""
        return "; ".join(s.spec for s in self.steps)

    def __repr__(self) -> str:
        return f"Pipeline({self.spec!r})"

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def has_blocks(self) -> bool:
        """Whether a step is a block step (``scaled_cast``, ``mx``): then the pipeline
        runs as segments, each run of elementwise steps fused, each block step on
        the whole array between them."""
        return any(s.is_block for s in self.steps)

    @property
    def needs_fit(self) -> bool:
        return any(s.needs_fit and s.state is None for s in self.steps)

    def fit(self, x) -> Pipeline:
        """A fitted copy: step k is fitted on the output of steps 0..k-1 applied to ``x``."""
        if type(x).__module__.startswith("dask."):
            from .dask_array import pipe_fit

            return pipe_fit(self, x)
        x, _ = check_array(x)
        fitted = []
        cur = x
        for k, s in enumerate(self.steps):
            s = s.fit(cur)
            fitted.append(s)
            if k + 1 < len(self.steps) and any(t.needs_fit for t in self.steps[k + 1 :]):
                cur = Pipeline((s,)).transform(cur)
        return Pipeline(tuple(fitted))

    def program(self, in_dtype: str, stop: int | None = None) -> tuple[tuple, str, list]:
        """(ops, output_dtype, per-step (ops, output_dtype, compute_dtype)) for steps[:stop]."""
        blocks = [s.spec for s in self.steps[:stop] if s.is_block]
        if blocks:
            raise ValueError(f"step {blocks[0]!r} is a block step (its scales depend on other elements): it has "
                             "no elementwise program; run the pipeline with .transform(x)")
        ops: list = []
        dtype = lookup(in_dtype, "input dtype").name
        per_step = []
        steps = self.steps[:stop]
        for k, s in enumerate(steps):
            sops, out, compute, _ = s.build(dtype)
            ops.extend(sops)
            row = REGISTRY[out]
            if row.is_integer or row.can_compute:
                _join(ops, out)
            elif k + 1 < len(steps):
                # a storage format (float8/6/4): no op rounds into it; the output encoder does, once
                raise ValueError(f"step {s.spec!r} rounds into {out}, a storage format no op computes in: it can only "
                                 "be the last step (the output is encoded into it); end the pipeline there")
            per_step.append((sops, out, compute))
            dtype = out
        return tuple(ops), dtype, per_step

    def inverse_program(self, in_dtype: str) -> tuple[tuple, str]:
        """Ops undoing the pipeline, back into ``in_dtype``: each step's own inverse
        (the library's, for presets that have one; the exact inverse of the step's
        ideal map in float64 otherwise), last step first, each rounded into the
        step's input dtype."""
        dtypes = [lookup(in_dtype, "input dtype").name]
        built = []
        for s in self.steps:
            b = s.build(dtypes[-1])
            built.append((s, b))
            dtypes.append(b[1])
        ops: list = []
        for k in range(len(self.steps) - 1, -1, -1):
            s, (_, _, _, inv) = built[k]
            if inv is None:
                inv = _exact_inverse_ops(s, dtypes[k])
            ops.extend(inv)
            _join(ops, dtypes[k])
        return tuple(ops), dtypes[0]

    def _compiled(self, in_dtype: str) -> Program:
        """The pipeline's Program for one input dtype, built once (steps, presets and
        rounded constants are Python work: about a millisecond per call otherwise)."""
        cache = self.__dict__.setdefault("_programs", {})
        if in_dtype not in cache:
            ops, output_dtype, _ = self.program(in_dtype)
            nfeat = max([c.size for op in ops for c in op.const] or [1])
            cache[in_dtype] = Program(ops, output_dtype, nfeat)
        return cache[in_dtype]

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_programs"}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def transform(self, x, out=None) -> np.ndarray:
        """All steps in one fused pass; ``x`` is not modified (unless it is ``out``).
        A dask array gives a dask array (:func:`kernels.dask_array.pipeline_transform`)."""
        if type(x).__module__.startswith("dask."):
            from .dask_array import pipeline_transform

            if self.needs_fit:
                raise ValueError(f"pipeline {self.spec!r} has steps that compute statistics: call .fit(x) first")
            if out is not None:
                raise TypeError("out= is not taken for a dask array: the result is a new dask array")
            return pipeline_transform(self, x)
        return self._transform_array(x, out)

    @serialised
    def _transform_array(self, x, out=None) -> np.ndarray:
        if self.needs_fit:
            raise ValueError(f"pipeline {self.spec!r} has steps that compute statistics: call .fit(x) first "
                             "(or fit_transform)")
        x, row = check_array(x)
        if self.has_blocks:
            return self._transform_segments(x, out)
        prog = self._compiled(row.name)
        if prog.nfeat > 1 and (x.ndim < 2 or x.shape[-1] != prog.nfeat):
            raise ValueError(f"pipeline {self.spec!r} has {prog.nfeat} values per channel; x has shape {x.shape} "
                             "(channels last)")
        out_row = REGISTRY[prog.output_dtype]
        out = check_out(out, x.shape, out_row, x)
        overflow = prog.run(as_storage(x, row).reshape(-1), row, as_storage(out, out_row).reshape(-1), out_row)
        if overflow:  # as kernels.cast and kernels.transform: never a silent inf
            warnings.warn(f"overflow in pipeline {self.spec!r}: {overflow} finite value(s) became inf in {out_row.name} "
                          f"(largest finite {out_row.max:g})", RuntimeWarning, stacklevel=2)
        return out

    def _transform_segments(self, x, out):
        cur = run_segments(self, x)
        if out is None:
            return cur
        out = check_out(out, x.shape, lookup(cur.dtype), x)
        np.copyto(out, cur)
        return out

    def fit_transform(self, x) -> np.ndarray:
        return self.fit(x).transform(x)

    @serialised
    def inverse_transform(self, y, input_dtype=None) -> np.ndarray:
        """Undo the pipeline on its output ``y``, back into the input dtype the
        pipeline was fitted on (or ``input_dtype``)."""
        y, _ = check_array(y, "y")
        in_dtype = input_dtype or self.steps[0].input_dtype
        if in_dtype is None:
            raise ValueError("inverse_transform needs input_dtype= (the dtype the pipeline was applied to), "
                             "or a pipeline fitted with .fit(x)")
        ops, output_dtype = self.inverse_program(in_dtype)
        return run_program(y, ops, output_dtype)


def _exact_inverse_ops(s: Step, in_dtype: str) -> tuple:
    """The inverse of a step's ideal affine map, in float64 (the best decoder of
    its outputs); a clip or abs has no inverse and is passed through."""
    from fractions import Fraction

    slope, intercept = [Fraction(1)], [Fraction(0)]
    state = None
    if s.kind == "preset":
        from . import presets

        p = presets.get(s.name)
        if p.fit is not None:
            # the fitted float64 statistics stand in for the exact ones
            state = {k: [Fraction(float(v)) for v in np.asarray(a).reshape(-1)] for k, a in s.state.items()}
            state = {k: v[0] if len(v) == 1 else v for k, v in state.items()}
    try:
        ideal = s.ideal(state, in_dtype)
    except Exception:
        ideal = ()
    for e in ideal:
        if e.kind != "affine":
            continue
        a, b = e.values
        n = max(len(a), len(b), len(slope))
        a = a * n if len(a) == 1 else a
        b = b * n if len(b) == 1 else b
        sl = slope * n if len(slope) == 1 else slope
        ic = intercept * n if len(intercept) == 1 else intercept
        slope = [ai * si for ai, si in zip(a, sl)]
        intercept = [ai * ci + bi for ai, ci, bi in zip(a, ic, b)]
    if all(v == 1 for v in slope) and all(v == 0 for v in intercept):
        return ()
    return (
        Op("sub", "float64", (np.array([float(v) for v in intercept]),)),
        Op("div", "float64", (np.array([float(v) for v in slope]),)),
    )


def pipeline(*steps) -> Pipeline:
    """A :class:`Pipeline` of :class:`~kernels.steps.Step` objects or spec strings.

    A single string may hold several steps separated by ``;`` (the CLI's form)."""
    if not steps:
        raise ValueError("pipeline() needs at least one step, e.g. pipeline('cast(output_dtype=float16)')")
    out = []
    for s in steps:
        if isinstance(s, Pipeline):
            out.extend(s.steps)
        elif isinstance(s, str):
            parts = [p for p in _split(s) if p.strip()]
            if not parts:
                raise ValueError(f"empty step spec {s!r}")
            out.extend(step(p) for p in parts)
        else:
            out.append(step(s))
    return Pipeline(tuple(out))


def _split(text: str) -> list[str]:
    """Split on ``;`` outside parentheses and quotes."""
    parts, depth, cur, quote = [], 0, [], None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == ";" and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def run_segments(pipe, x: np.ndarray, amax: dict | None = None) -> np.ndarray:
    """``pipe.transform(x)`` (each run of elementwise steps fused, each block step on
    the whole of ``x``); ``amax``: {step index: amax} of scaled_cast steps when ``x``
    is one chunk of the tensor (:mod:`kernels.dask_blocked`)."""
    amax = amax or {}
    cur, run = x, []
    for k, s in enumerate((*pipe.steps, None)):
        if s is not None and not s.is_block:
            run.append(s)
            continue
        if run:
            cur = Pipeline(tuple(run)).transform(cur)
            run = []
        if s is not None:
            cur = s.apply_block(cur, amax.get(k))
    return cur
