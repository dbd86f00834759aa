"""The dtype advisor (layer 6): the cheapest output dtype that meets a requirement.

Candidates are the output dtypes a transform can write, each with the compute
dtypes and formulas that can change its answer (float16 compute only for
16-bit outputs).  Every candidate is measured (:func:`kernels.measure`), then:

1. a candidate *meets* the requirement when ``--lossless``: no collisions
   (``distinct_out == distinct_in``); ``--max-error-in N``:
   ``max_abs_error_in <= N``; ``--max-span-in N``: ``max_merged_span_in <= N``
   (both in the input's own units: counts for integer inputs); ``--max-ulp N``:
   ``max_ulp_error <= N``; ``--min-survival F``: ``survival >= F``;
2. among those that meet it, one ranking (:func:`rank_key`) decides: fewest
   bytes per element, then the lower ``max_abs_error_in``, then the lower
   ``mean_abs_error_in`` (errors in input units compare across output dtypes;
   ULPs are each output dtype's own rounding quality and never rank), then a
   fixed preference: float32 compute before float64 before 16-bit compute, the
   transform's default formula before the others (``FORMULAS`` order), then
   registry order of the output.  Speed is reported, never a tie-break: the
   measured precision fields are deterministic, so the same command gives the
   same answer every run.

Bytes per element are the storage of the format, bits packed (float6: 0.75,
float4: 0.5), and for the MX outputs (``allow=("mx",)``: "MXFP8 (e4m3)",
"MXFP8 (e5m2)", "MXFP6 (e2m3)", "MXFP6 (e3m2)", "MXFP4") the element plus its
share of one e8m0 scale per block of 32 (MXFP8: 1 + 1/32 bytes;
:func:`kernels.scaled.bytes_per_element`).  An MX candidate is measured as a
pipeline ending in ``mx(dtype=..., block=32, pad=zeros)`` (blocks along the last
axis, the last one completed with zeros; :mod:`kernels.measure_blocked`), on the
source's values: a domain becomes its values as a 1-D array in value order.
Its output's identity is the dequantized float32 value; its error in input
units is ``|y - ideal| / slope`` against the transform's exact ideal (after only
casts and block steps: ``|y - x|``), so ``max_error_in`` ranks it as any other.

Every other candidate gets the reason it lost, in those terms.  The report's
recommendations (:func:`recommend_records`) use the same ranking on records
given as dicts (``Record.to_dict``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers

from ._format import fmt as _fmt
from ._format import num
from .codecs import REGISTRY
from .measure import Record, measure
from .stats import QDTYPES
from .transforms import DEFAULT_FORMULA, FORMULAS

FLOAT_OUTPUTS = ("float16", "bfloat16", "float32", "float64")
# outputs of 8 bits and below, considered when asked (``allow=``, ``choose --allow``):
# they rarely keep every value, and a pipeline that wants them says so
LOW_PRECISION = {
    "float8": ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"),
    "float6": ("float6_e2m3fn", "float6_e3m2fn"),
    "float4": ("float4_e2m1fn",),
}
# the OCP MX formats (Microscaling v1.0): element format of each, one e8m0 scale per MX_BLOCK
MX_BLOCK = 32
MX_OUTPUTS = {
    "MXFP8 (e4m3)": "float8_e4m3fn",
    "MXFP8 (e5m2)": "float8_e5m2",
    "MXFP6 (e2m3)": "float6_e2m3fn",
    "MXFP6 (e3m2)": "float6_e3m2fn",
    "MXFP4": "float4_e2m1fn",
}
LOW_PRECISION["mx"] = tuple(MX_OUTPUTS)


def output_bytes(output: str) -> int | float:
    """Storage per element of a candidate output: the format's bits packed, plus the
    share of the scales for an MX output (``MXFP8 (e4m3)``: 1 + 1/32)."""
    from .scaled import bytes_per_element

    b = bytes_per_element(MX_OUTPUTS[output], MX_BLOCK) if output in MX_OUTPUTS else bytes_per_element(output)
    return int(b) if b == int(b) else b  # whole bytes stay integers (as in reports before MX)


def mx_step(output: str):
    """The block step an MX output name stands for."""
    from .steps import step

    return step("mx", dtype=MX_OUTPUTS[output], block=MX_BLOCK, pad="zeros")


def _values(source):
    """An array for a block step: a domain's values in value order (1-D), an array as is."""
    from .domain import Domain

    if isinstance(source, Domain):
        if source.size > 1 << 26:
            raise ValueError(f"MX outputs on a domain of {source.size:,} values: use a range of at most 2**26 values")
        return source.values()
    return source


def allowed_outputs(allow=()) -> tuple[str, ...]:
    """FLOAT_OUTPUTS plus the formats of the ``allow`` families (keys of LOW_PRECISION)."""
    if isinstance(allow, str):
        allow = (allow,)
    unknown = [a for a in allow if a not in LOW_PRECISION]
    if unknown:
        raise ValueError(f"allow={unknown[0]!r} is not a format family; use any of: {', '.join(LOW_PRECISION)}")
    return tuple(o for a in allow for o in LOW_PRECISION[a]) + FLOAT_OUTPUTS
INT_OUTPUTS = tuple(n for n, r in REGISTRY.items() if r.is_integer)  # uint8, uint16, int8, int16
COMPUTE_ORDER = ("float32", "float64", "float16", "bfloat16")  # the fixed preference among compute dtypes
DEFAULT_ACCUMULATOR = ("pairwise", "float64")
_REGISTRY_ORDER = {name: i for i, name in enumerate(REGISTRY)}


def units(input_dtype: str) -> str:
    """What input-unit figures are measured in: counts of an integer input, else input units."""
    row = REGISTRY.get(str(input_dtype))
    return "counts" if row is not None and row.is_integer else "input units"


_num = num


def fmt(v) -> str:
    """A figure in a reason or recommendation text (``n/a`` when not measured)."""
    return _fmt(v, "n/a")


def _plain(v):
    """A float for JSON (allow_nan=False): non-finite values as "inf"/"-inf"/"nan"."""
    v = _num(v)
    return v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))


def _bound(value, name: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a number (e.g. {name}=1)")
    if not (value >= 0):  # NaN too
        raise ValueError(f"{name}={value!r} must be a number >= 0")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Requirement:
    lossless: bool = False
    max_ulp: float | None = None
    min_survival: float | None = None
    max_error_in: float | None = None  # input units (counts for integer inputs)
    max_span_in: float | None = None  # input units

    def __post_init__(self):
        given = sum([bool(self.lossless)] + [v is not None for v in (self.max_ulp, self.min_survival, self.max_error_in, self.max_span_in)])
        if given != 1:
            raise ValueError("give exactly one requirement: lossless, max_error_in=N, max_span_in=N, max_ulp=N or min_survival=F")
        for name in ("max_ulp", "max_error_in", "max_span_in"):
            object.__setattr__(self, name, _bound(getattr(self, name), name))
        if self.min_survival is not None:
            if isinstance(self.min_survival, bool) or not isinstance(self.min_survival, numbers.Real):
                raise TypeError(f"min_survival={self.min_survival!r} must be a number in [0, 1]")
            if not (0 <= self.min_survival <= 1):
                raise ValueError(f"min_survival={self.min_survival!r} must be in [0, 1]")

    def describe(self, unit: str = "input units") -> str:
        if self.lossless:
            return "lossless (no collisions)"
        if self.max_error_in is not None:
            return f"max error <= {self.max_error_in:g} {unit}"
        if self.max_span_in is not None:
            return f"max merged span <= {self.max_span_in:g} {unit}"
        if self.max_ulp is not None:
            return f"max ULP error <= {self.max_ulp:g} (ULPs of each output dtype)"
        return f"survival >= {self.min_survival:g}"

    def failure(self, r) -> str | None:
        """Why the record (a Record or its dict) fails the requirement, or None."""
        get = r.get if isinstance(r, dict) else (lambda k, d=None: getattr(r, k, d))
        u = units(get("input_dtype"))
        if self.lossless and get("collisions") != 0:
            return f"{get('collisions'):,} collisions (survival {_num(get('survival')):.4g})"
        if self.max_error_in is not None:
            e = _num(get("max_abs_error_in"))
            if not (e <= self.max_error_in):
                return f"max error {fmt(e)} {u} > {self.max_error_in:g}"
        if self.max_span_in is not None:
            s = _num(get("max_merged_span_in"))
            if not (s <= self.max_span_in):
                return f"max merged span {fmt(s)} {u} > {self.max_span_in:g}"
        if self.max_ulp is not None:
            ulp = _num(get("max_ulp_error"))
            if not (ulp <= self.max_ulp):
                return f"max ULP error {fmt(ulp)} > {self.max_ulp:g}"
        if self.min_survival is not None:
            s = _num(get("survival"))
            if not (s >= self.min_survival):
                return f"survival {s:.4g} < {self.min_survival:g}"
        return None


def preference(transform: str, output_dtype: str, compute_dtype: str, formula: str,
               accumulator: tuple = DEFAULT_ACCUMULATOR) -> tuple:
    """The fixed preference (the ranking's last resort, never speed): compute dtype
    (float32, float64, then 16-bit), the transform's default formula then
    ``FORMULAS`` order, the output's registry order, the default accumulator first."""
    order = [DEFAULT_FORMULA.get(transform)] + [f for f in FORMULAS.get(transform, ()) if f != DEFAULT_FORMULA.get(transform)]
    c = COMPUTE_ORDER.index(compute_dtype) if compute_dtype in COMPUTE_ORDER else len(COMPUTE_ORDER)
    f = order.index(formula) if formula in order else len(order)
    o = _REGISTRY_ORDER.get(output_dtype, len(_REGISTRY_ORDER))
    return (c, f, o, 0 if tuple(accumulator) == DEFAULT_ACCUMULATOR else 1)


def rank_key(bytes_per_element: float, max_abs_error_in, mean_abs_error_in, pref: tuple) -> tuple:
    """The one ranking: bytes, max then mean error in input units (NaN -> inf), preference."""
    def inf_if_nan(v):
        v = _num(v)
        return math.inf if math.isnan(v) else v

    return (bytes_per_element, inf_if_nan(max_abs_error_in), inf_if_nan(mean_abs_error_in), pref)


def _per_element(nbytes: float) -> str:
    return f"{nbytes:g} byte{'' if nbytes == 1 else 's'} per element"


def why_lost(key: tuple, best_key: tuple, unit: str, names: dict, best_names: dict) -> str:
    """Why a candidate with ``key`` ranks after the one with ``best_key``, in the ranking's terms.
    ``names``: its output_dtype, compute_dtype, formula and accumulator (for the preference)."""
    if key[0] != best_key[0]:
        return f"{_per_element(key[0])} > {best_key[0]:g}"
    if key[1] != best_key[1]:
        return f"max error {fmt(key[1])} {unit} > {fmt(best_key[1])} at the same size"
    if key[2] != best_key[2]:
        return f"mean error {fmt(key[2])} {unit} > {fmt(best_key[2])} at the same size and max error"
    p, bp = key[3], best_key[3]
    if p[0] != bp[0]:
        return f"same size and error; {best_names['compute_dtype']} compute preferred"
    if p[1] != bp[1]:
        default = " (the default)" if bp[1] == 0 else ""
        return f"same size, error and compute; formula {best_names['formula']}{default} preferred"
    if p[2] != bp[2]:
        return f"same size and error; {best_names['output_dtype']} preferred (registry order)"
    if p[3] != bp[3]:
        return f"same size and error; the {'/'.join(DEFAULT_ACCUMULATOR)} accumulator preferred"
    return "same size, error and preference; listed first"


@dataclasses.dataclass(frozen=True)
class Candidate:
    output_dtype: str
    compute_dtype: str
    formula: str
    record: Record
    verdict: str  # "recommended", "meets (costlier)" or "rejected"
    reason: str
    transform: str | None = None  # the transform an MX candidate's pipeline starts with (record: "pipeline")

    @property
    def bytes_per_element(self) -> float:
        return output_bytes(self.output_dtype)

    @property
    def units(self) -> str:
        return units(self.record.input_dtype)

    @property
    def rank_key(self) -> tuple:
        r = self.record
        pref = preference(self.transform or r.transform, self.output_dtype, self.compute_dtype, self.formula, (r.accumulator, r.acc_dtype))
        return rank_key(self.bytes_per_element, r.max_abs_error_in, r.mean_abs_error_in, pref)

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
            "units": self.units,
            "max_merged_span_in": _plain(r.max_merged_span_in),
            "max_abs_error_in": _plain(r.max_abs_error_in),
            "mean_abs_error_in": _plain(r.mean_abs_error_in),
            "effective_bits_in": _plain(r.effective_bits_in),
            # each output dtype's own rounding quality: reported, never ranked
            "max_ulp_error": _plain(r.max_ulp_error),
            "mean_ulp_error": _plain(r.mean_ulp_error),
            # reported, never ranked (timing noise must not change the answer)
            "elements_per_s": _plain(r.elements_per_s),
            "verdict": self.verdict,
            "reason": self.reason,
        }


def candidates(transform: str, compute_dtypes=None, formulas=None, allow=()) -> list[tuple[str, str, str]]:
    """(output dtype, compute dtype, formula) triples worth measuring, optionally
    restricted to the given compute dtypes and formulas; ``allow`` adds the
    float8/float6/float4 outputs (:data:`LOW_PRECISION`)."""
    if transform == "quantize":
        # int8/int16 cost what uint8/uint16 cost; with the asymmetric rule they keep the
        # same levels (the ranking then prefers the unsigned, registry order)
        triples = [(q, c, "round") for q in QDTYPES for c in ("float32", "float64")]
    else:
        triples = [
            (o, c, f)
            for o in allowed_outputs(allow)
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


def choose(
    source, transform: str, requirement: Requirement, *, compute_dtypes=None, formulas=None, allow=(), progress=None,
    **measure_kw
) -> tuple[Candidate | None, list[Candidate]]:
    """Measure every candidate; return (the recommended one or None, all of them ranked).
    ``allow`` (e.g. ``("float8",)``) adds the outputs of 8 bits and below."""
    import warnings

    from .measure import _normalise_source

    source = _normalise_source(source)
    triples = candidates(transform, compute_dtypes, formulas, allow)
    measured = []
    for i, (o, c, f) in enumerate(triples):
        if progress:
            progress(i, len(triples), f"{o} (compute {c}, {f})")
        kw = dict(measure_kw)
        if transform == "quantize":
            kw["qdtype"] = o
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if o in MX_OUTPUTS:
                r = measure_mx(source, transform, o, c, f, **kw)
            else:
                r = measure(source, transform, formula=f, compute_dtype=c, output_dtype=o, **kw)
        measured.append((o, c, f, r, transform))
    return _rank(measured, requirement)


_NOT_STEP_OPTIONS = ("repeat", "exact_points", "stream", "progress", "name")


def measure_mx(source, transform, output, compute_dtype, formula, **kw):
    """An MX candidate of :func:`choose` (and of the report's suite): the transform
    (into float32) then the mx step, measured on the source's values
    (:mod:`kernels.measure_blocked`; a dask array chunk by chunk,
    :mod:`kernels.dask_blocked`); options of None are left out."""
    from .measure_pipeline import measure_pipeline
    from .pipeline import Pipeline
    from .steps import _BUILTIN, step

    opts = {k: v for k, v in kw.items() if k not in _NOT_STEP_OPTIONS and v is not None}
    unknown = sorted(set(opts) - set(_BUILTIN[transform]))
    if unknown:
        raise ValueError(f"MX outputs: option(s) {', '.join(unknown)} have no step form; leave allow='mx' out "
                         "or give the transform as a pipeline")
    first = step(transform, formula=formula, compute_dtype=compute_dtype, output_dtype="float32", **opts)
    extra = {k: kw[k] for k in ("exact_points", "name") if kw.get(k) is not None}
    return measure_pipeline(_values(source), Pipeline((first, mx_step(output))), repeat=kw.get("repeat", 3), **extra)


def _names(c: Candidate) -> dict:
    return {"output_dtype": c.output_dtype, "compute_dtype": c.compute_dtype, "formula": c.formula}


def _rank(measured: list, requirement: Requirement) -> tuple[Candidate | None, list[Candidate]]:
    """Verdicts and reasons for measured (output, compute, formula, Record) tuples,
    ranked by :func:`rank_key` (ties keep the measuring order: deterministic)."""
    provisional = [Candidate(m[0], m[1], m[2], m[3], "", "", *m[4:]) for m in measured]
    meets = [c for c in provisional if requirement.failure(c.record) is None]
    best = min(meets, key=lambda c: c.rank_key) if meets else None
    out = []
    for cand in provisional:
        why = requirement.failure(cand.record)
        if why is not None:
            out.append(dataclasses.replace(cand, verdict="rejected", reason=why))
        elif cand is best:
            out.append(dataclasses.replace(cand, verdict="recommended",
                                           reason=f"cheapest that meets {requirement.describe(cand.units)}"))
        else:
            why = why_lost(cand.rank_key, best.rank_key, cand.units, _names(cand), _names(best))
            out.append(dataclasses.replace(cand, verdict="meets (costlier)", reason=why))
    verdicts = {"recommended": 0, "meets (costlier)": 1, "rejected": 2}
    out.sort(key=lambda c: (verdicts[c.verdict], c.rank_key))
    rec = out[0] if out and out[0].verdict == "recommended" else None
    return rec, out


def pipeline_candidates(pipe, outputs=None) -> list:
    """(output dtype, Pipeline) pairs: ``pipe`` then ``cast(output_dtype=D)`` for each
    candidate D; a final cast has its dtype replaced (its rounding and overflow kept).
    An MX output name (:data:`MX_OUTPUTS`) ends the pipeline with its ``mx`` step
    instead (replacing a final cast)."""
    from .pipeline import Pipeline
    from .steps import step

    last = pipe.steps[-1]
    if outputs is None:
        outputs = FLOAT_OUTPUTS
    out = []
    for o in outputs:
        if o in MX_OUTPUTS:
            steps = (*(pipe.steps[:-1] if last.name == "cast" else pipe.steps), mx_step(o))
        elif last.name == "cast":
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
        outputs = FLOAT_OUTPUTS if natural is None or natural in FLOAT_OUTPUTS else (*INT_OUTPUTS, *FLOAT_OUTPUTS)
    cands = pipeline_candidates(pipe, outputs)
    measured = []
    kw = {} if exact_points is None else {"exact_points": exact_points}
    for i, (o, p) in enumerate(cands):
        if progress:
            progress(i, len(cands), p.spec)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if o in MX_OUTPUTS:  # block steps measure arrays: a domain's values in value order
                r = measure_pipeline(_values(source), p, repeat=repeat)
            else:
                r = measure_pipeline(source, p, repeat=repeat, **kw)
        measured.append((o, r.compute_dtype, p.spec, r))
    return _rank(measured, requirement)


# --------------------------------------------------------------------------
# the report's recommendations: the same ranking on measured records (dicts)
# --------------------------------------------------------------------------


def _record_key(r: dict) -> tuple:
    pref = preference(r["transform"], r["output_dtype"], r["compute_dtype"], r["formula"],
                      (r.get("accumulator", DEFAULT_ACCUMULATOR[0]), r.get("acc_dtype", DEFAULT_ACCUMULATOR[1])))
    # records of an older report.json have no *_in fields: NaN, which ranks as inf
    return rank_key(output_bytes(r["output_dtype"]), r.get("max_abs_error_in"), r.get("mean_abs_error_in"), pref)


def _describe_variant(r: dict) -> str:
    acc = (r.get("accumulator"), r.get("acc_dtype"))
    extra = f", {acc[0]}/{acc[1]} accumulator" if r["transform"] == "standardize" and acc != DEFAULT_ACCUMULATOR else ""
    return f"compute {r['compute_dtype']}, {r['formula']}{extra}"


def recommend_records(records: list[dict], universe: dict | None = None) -> list[dict]:
    """Per (source, label): the recommended lossless record, ranked by :func:`rank_key`.

    ``records``: dicts from ``Record.to_dict`` plus ``"label"`` (the report's name
    of the transform).  ``universe``: ``{(source, label): [(output, compute), ...]}``,
    the candidates a complete suite would measure there; those that were not
    measured and could have changed the answer (every one when nothing is
    lossless, else those no larger than the recommendation) are listed in
    ``"not_measured"``: an output never measured by its name, one measured with
    other compute dtypes as "OUTPUT (compute C)"."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["source"], r["label"]), []).append(r)
    out = []
    for (source, label), rs in groups.items():
        unit = units(rs[0].get("input_dtype"))
        lossless = [r for r in rs if r.get("collisions") == 0]
        best = min(lossless, key=_record_key) if lossless else None
        measured_pairs = {(r["output_dtype"], r["compute_dtype"]) for r in rs}
        measured_outputs = list(dict.fromkeys(r["output_dtype"] for r in rs))
        skipped = []
        for o, c in (universe or {}).get((source, label), []):
            if (o, c) in measured_pairs:
                continue
            if best is not None and output_bytes(o) > output_bytes(best["output_dtype"]):
                continue  # larger than the recommendation: cannot win
            name = f"{o} (compute {c})" if o in measured_outputs else o
            if name not in skipped:
                skipped.append(name)
        entry = {"source": source, "transform": label, "units": unit, "not_measured": skipped}
        if best is not None:
            bkey = _record_key(best)
            alternatives = []
            for r in sorted((r for r in lossless if r is not best), key=_record_key):
                alternatives.append({
                    "output_dtype": r["output_dtype"], "compute_dtype": r["compute_dtype"], "formula": r["formula"],
                    "accumulator": r.get("accumulator"), "acc_dtype": r.get("acc_dtype"),
                    "bytes_per_element": output_bytes(r["output_dtype"]),
                    "max_abs_error_in": _plain(r.get("max_abs_error_in")),
                    "why": why_lost(_record_key(r), bkey, unit, r, best),
                })
            nbytes = output_bytes(best["output_dtype"])
            text = (f"{best['output_dtype']} ({_describe_variant(best)}): keeps all {best['distinct_in']:,} distinct values; "
                    f"max error {fmt(best.get('max_abs_error_in'))} {unit} ({_per_element(nbytes)})")
            if skipped:
                text += f"; not measured: {', '.join(skipped)}"
            entry.update(recommended=best["output_dtype"], compute_dtype=best["compute_dtype"], formula=best["formula"],
                         bytes_per_element=nbytes, max_abs_error_in=_plain(best.get("max_abs_error_in")),
                         max_merged_span_in=_plain(best.get("max_merged_span_in")), text=text, alternatives=alternatives)
        else:
            # the most values kept, then the ranking (fewer bytes, lower error, preference)
            most = min(rs, key=lambda r: (-_num(r["survival"]), _record_key(r)))
            text = (f"no measured output keeps every value (measured: {', '.join(measured_outputs)}; "
                    f"not measured: {', '.join(skipped) or 'none'}); {most['output_dtype']} keeps the most: "
                    f"{most['distinct_out']:,} of {most['distinct_in']:,} ({_describe_variant(most)}; max merged span "
                    f"{fmt(most.get('max_merged_span_in'))} {unit})")
            entry.update(recommended=None, compute_dtype=None, formula=None, bytes_per_element=None,
                         max_abs_error_in=None, max_merged_span_in=None, text=text, alternatives=[])
        out.append(entry)
    return out
