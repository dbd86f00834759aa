"""The dtype advisor (layer 6): the cheapest output dtype that meets a requirement.

Candidates are the output dtypes a transform can write, each with the compute
dtypes and formulas that can change its answer (float16 compute only for
16-bit outputs).  Every candidate is measured (:func:`kernels.measure`), then:

1. a candidate *meets* the requirement when ``--lossless``: no collisions
   (``distinct_out == distinct_in``); ``--max-ulp N``: ``max_ulp_error <= N``;
   ``--min-survival F``: ``survival >= F``;
2. among those that meet it, the cheapest wins: fewest bytes per element, then
   lower ``max_ulp_error``, then more elements per second.

Every other candidate gets the reason it lost.
"""

from __future__ import annotations

import dataclasses
import math

from .measure import Record, measure
from .transforms import FORMULAS

FLOAT_OUTPUTS = ("float16", "bfloat16", "float32", "float64")


@dataclasses.dataclass(frozen=True)
class Requirement:
    lossless: bool = False
    max_ulp: float | None = None
    min_survival: float | None = None

    def __post_init__(self):
        given = sum([self.lossless, self.max_ulp is not None, self.min_survival is not None])
        if given != 1:
            raise ValueError("give exactly one requirement: lossless, max_ulp=N or min_survival=F")
        if self.max_ulp is not None and not (self.max_ulp >= 0):
            raise ValueError(f"max_ulp={self.max_ulp!r} must be >= 0")
        if self.min_survival is not None and not (0 <= self.min_survival <= 1):
            raise ValueError(f"min_survival={self.min_survival!r} must be in [0, 1]")

    def describe(self) -> str:
        if self.lossless:
            return "lossless (no collisions)"
        if self.max_ulp is not None:
            return f"max ULP error <= {self.max_ulp:g}"
        return f"survival >= {self.min_survival:g}"

    def failure(self, r: Record) -> str | None:
        """Why the record fails the requirement, or None."""
        if self.lossless and r.collisions != 0:
            return f"{r.collisions:,} collisions (survival {r.survival:.4g})"
        if self.max_ulp is not None and not (r.max_ulp_error <= self.max_ulp):
            return f"max ULP error {r.max_ulp_error:g} > {self.max_ulp:g}"
        if self.min_survival is not None and not (r.survival >= self.min_survival):
            return f"survival {r.survival:.4g} < {self.min_survival:g}"
        return None


@dataclasses.dataclass(frozen=True)
class Candidate:
    output_dtype: str
    compute_dtype: str
    formula: str
    record: Record
    verdict: str  # "recommended", "meets (costlier)" or "rejected"
    reason: str

    @property
    def bytes_per_element(self) -> int:
        from .codecs import REGISTRY

        return REGISTRY[self.output_dtype].itemsize

    def to_dict(self) -> dict:
        r = self.record
        return {
            "output_dtype": self.output_dtype,
            "compute_dtype": self.compute_dtype,
            "formula": self.formula,
            "bytes_per_element": self.bytes_per_element,
            "distinct_in": r.distinct_in,
            "distinct_out": r.distinct_out,
            "survival": r.survival,
            "max_ulp_error": r.max_ulp_error if math.isfinite(r.max_ulp_error) else str(r.max_ulp_error),
            "elements_per_s": r.elements_per_s,
            "verdict": self.verdict,
            "reason": self.reason,
        }


def candidates(transform: str, compute_dtypes=None, formulas=None) -> list[tuple[str, str, str]]:
    """(output dtype, compute dtype, formula) triples worth measuring, optionally
    restricted to the given compute dtypes and formulas."""
    if transform == "quantize":
        triples = [(q, c, "round") for q in ("uint8", "uint16") for c in ("float32", "float64")]
    else:
        triples = [
            (o, c, f)
            for o in FLOAT_OUTPUTS
            for c in ["float32", "float64"] + ([o] if o in ("float16", "bfloat16") else [])
            for f in FORMULAS[transform]
        ]
    if compute_dtypes is not None:
        triples = [t for t in triples if t[1] in compute_dtypes]
    if formulas is not None:
        unknown = set(formulas) - set(FORMULAS[transform])
        if unknown:
            raise ValueError(f"formula {sorted(unknown)} not one of: {', '.join(FORMULAS[transform])}")
        triples = [t for t in triples if t[2] in formulas]
    if not triples:
        raise ValueError("no candidate left: widen the compute dtypes or formulas")
    return triples


def _rank_key(c: Candidate):
    ulp = c.record.max_ulp_error
    return (c.bytes_per_element, ulp if not math.isnan(ulp) else math.inf, -c.record.elements_per_s)


def choose(
    source, transform: str, requirement: Requirement, *, compute_dtypes=None, formulas=None, progress=None, **measure_kw
) -> tuple[Candidate | None, list[Candidate]]:
    """Measure every candidate; return (the recommended one or None, all of them ranked)."""
    import warnings

    from .measure import _normalise_source

    source = _normalise_source(source)
    triples = candidates(transform, compute_dtypes, formulas)
    measured = []
    for i, (o, c, f) in enumerate(triples):
        if progress:
            progress(i, len(triples), f"{o} (compute {c}, {f})")
        kw = dict(measure_kw)
        if transform == "quantize":
            kw["qdtype"] = o
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            r = measure(source, transform, formula=f, compute_dtype=c, output_dtype=o, **kw)
        measured.append((o, c, f, r))
    return _rank(measured, requirement)


def _rank(measured: list, requirement: Requirement) -> tuple[Candidate | None, list[Candidate]]:
    """Verdicts and reasons for measured (output, compute, formula, Record) tuples."""
    meets = [(o, c, f, r) for o, c, f, r in measured if requirement.failure(r) is None]
    provisional = [Candidate(o, c, f, r, "", "") for o, c, f, r in meets]
    best = min(provisional, key=_rank_key) if provisional else None
    out = []
    for o, c, f, r in measured:
        why = requirement.failure(r)
        if why is not None:
            out.append(Candidate(o, c, f, r, "rejected", why))
        elif best is not None and (o, c, f) == (best.output_dtype, best.compute_dtype, best.formula):
            out.append(Candidate(o, c, f, r, "recommended", f"cheapest that meets {requirement.describe()}"))
        else:
            cand = Candidate(o, c, f, r, "", "")
            if cand.bytes_per_element > best.bytes_per_element:
                why = f"{cand.bytes_per_element} bytes per element > {best.bytes_per_element}"
            elif _rank_key(cand)[1] > _rank_key(best)[1]:
                why = f"max ULP error {r.max_ulp_error:g} > {best.record.max_ulp_error:g} at the same size"
            else:
                why = "slower at the same size and error"
            out.append(Candidate(o, c, f, r, "meets (costlier)", why))
    out.sort(key=lambda c: ({"recommended": 0, "meets (costlier)": 1, "rejected": 2}[c.verdict], _rank_key(c)))
    rec = out[0] if out and out[0].verdict == "recommended" else None
    return rec, out


def pipeline_candidates(pipe, outputs=None) -> list:
    """(output dtype, Pipeline) pairs: ``pipe`` then ``cast(output_dtype=D)`` for each
    candidate D; a final cast has its dtype replaced (its rounding and overflow kept)."""
    from .pipeline import Pipeline
    from .steps import step

    last = pipe.steps[-1]
    if outputs is None:
        outputs = FLOAT_OUTPUTS
    out = []
    for o in outputs:
        if last.name == "cast":
            steps = (*pipe.steps[:-1], step("cast", **{**dict(last.options), "output_dtype": o}))
        else:
            steps = (*pipe.steps, step("cast", output_dtype=o))
        out.append((o, Pipeline(steps)))
    return out


def choose_pipeline(source, pipe, requirement: Requirement, *, outputs=None, progress=None, repeat: int = 3,
                    exact_points: int | None = None) -> tuple[Candidate | None, list[Candidate]]:
    """The cheapest final dtype for a pipeline: each candidate of
    :func:`pipeline_candidates` measured end to end, ranked as :func:`choose` ranks."""
    import warnings

    from .measure import _normalise_source
    from .measure_pipeline import as_pipeline, measure_pipeline

    source = _normalise_source(source)
    pipe = as_pipeline(pipe)
    if outputs is None:
        in_dtype = source.dtype if hasattr(source, "dtype") else None
        natural = pipe.program(str(in_dtype))[1] if in_dtype is not None else None
        outputs = FLOAT_OUTPUTS if natural is None or natural in FLOAT_OUTPUTS else ("uint8", "uint16", *FLOAT_OUTPUTS)
    cands = pipeline_candidates(pipe, outputs)
    measured = []
    kw = {} if exact_points is None else {"exact_points": exact_points}
    for i, (o, p) in enumerate(cands):
        if progress:
            progress(i, len(cands), p.spec)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            r = measure_pipeline(source, p, repeat=repeat, **kw)
        measured.append((o, r.compute_dtype, p.spec, r))
    return _rank(measured, requirement)
