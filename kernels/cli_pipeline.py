"""Command line, pipeline half: ``--pipeline``/``--preset`` on measure, choose,
audit and report, and ``precision-bench presets``.

Kept out of :mod:`kernels.cli` so each module stays one job.  Bad specs are
reported on one line naming the flag, the step (1-based) and what is wrong,
before anything is measured: each step is parsed on its own, then built on the
dtype that reaches it.
"""

from __future__ import annotations

# flags that belong to a single transform; with a pipeline they go in its steps
_TRANSFORM_ONLY = (
    ("formula", "--formula"),
    ("output_dtype", "--output-dtype"),
    ("divisor", "--divisor"),
    ("feature_range", "--feature-range"),
    ("axis", "--axis"),
    ("accumulator", "--accumulator"),
    ("acc_dtype", "--acc-dtype"),
    ("nan_policy", "--nan-policy"),
)
# their defaults, filled in only when no pipeline is given (None in the parser,
# so that a flag given next to --pipeline is seen and refused)
DEFAULTS = {"accumulator": "pairwise", "acc_dtype": "float64", "nan_policy": "raise"}


def _usage(msg: str):
    from .cli import UsageError

    return UsageError(msg)


def add_args(p, *, repeatable: bool = False) -> None:
    """``--pipeline`` and ``--preset`` (repeatable on report)."""
    g = p.add_argument_group("pipeline (instead of --transform)" if not repeatable else "pipelines")
    kw = {"action": "append"} if repeatable else {}
    g.add_argument("--pipeline", metavar="'STEP; STEP'", **kw,
                   help="steps in call syntax, e.g. 'scale(divisor=255); standardize(mean=imagenet, std=imagenet); "
                        "cast(output_dtype=float16)'" + (" (repeatable)" if repeatable else ""))
    g.add_argument("--preset", metavar="NAME", **kw,
                   help="one library preset as a one-step pipeline, e.g. 'torchvision.ToDtype(dtype=float16, scale=True)' "
                        "(see `precision-bench presets`)" + (" (repeatable)" if repeatable else ""))


def parse_pipeline(text: str, flag: str = "--pipeline"):
    """A Pipeline from ``"STEP; STEP"``; a bad step is a UsageError naming it."""
    from .pipeline import Pipeline, _split
    from .steps import step

    parts = [s.strip() for s in _split(text)]
    if not any(parts):
        raise _usage(f"{flag} {text!r}: no steps; write e.g. 'minmax; cast(output_dtype=float16)'")
    steps = []
    for k, part in enumerate(parts, 1):
        if not part:
            raise _usage(f"{flag} step {k} is empty in {text!r} (two ';' in a row?)")
        try:
            steps.append(step(part))
        except (ValueError, TypeError) as e:
            raise _usage(f"{flag} step {k} {part!r}: {e}") from None
    return Pipeline(tuple(steps))


def parse_preset(text: str):
    """A one-step Pipeline from ``NAME`` or ``NAME(option=value, ...)``."""
    from . import presets
    from .pipeline import Pipeline
    from .steps import parse, step

    try:
        name, _ = parse(text)
    except (ValueError, TypeError) as e:
        raise _usage(f"--preset {text!r}: {e}") from None
    if name not in presets.PRESETS and name not in presets.ALIASES:  # an alias is a preset name too (torchao.mx)
        valid = ", ".join([*presets.PRESETS, *presets.ALIASES]) or "none are registered yet"
        raise _usage(f"--preset {text!r}: unknown preset {name!r}; presets: {valid}")
    try:
        return Pipeline((step(text),))
    except (ValueError, TypeError) as e:
        raise _usage(f"--preset {text!r}: {e}") from None


def check_build(pipe, in_dtype: str, flag: str = "--pipeline") -> None:
    """Build every step on the dtype that reaches it, so an option only the input
    dtype can refuse (a preset's) is reported naming its step, before measuring."""
    dtype = str(in_dtype)
    for k, s in enumerate(pipe.steps, 1):
        if s.needs_fit and s.state is None:
            return  # its output dtype needs the fitted statistics: measure reports later errors
        try:
            dtype = s.build(dtype)[1]
        except (ValueError, TypeError) as e:
            raise _usage(f"{flag} step {k} {s.spec!r} on {dtype} input: {e}") from None


def resolve(args):
    """The Pipeline of ``--pipeline``/``--preset`` on measure, choose or audit, or
    None for ``--transform``; refuses mixing them.  Fills the transform defaults."""
    pipe_text, preset = getattr(args, "pipeline", None), getattr(args, "preset", None)
    if pipe_text is not None and preset is not None:
        raise _usage("give --pipeline or --preset, not both (a preset is a step: put it in the --pipeline)")
    transform = getattr(args, "transform", None)
    if pipe_text is None and preset is None:
        if args.command in ("measure", "choose") and transform is None:
            raise _usage("give --transform NAME, --pipeline 'STEP; STEP' or --preset NAME")
        for k, v in DEFAULTS.items():
            if getattr(args, k, "") is None:
                setattr(args, k, v)
        if args.command == "measure" and args.compute_dtype is None:
            args.compute_dtype = "float32"
        return None
    flag = "--pipeline" if pipe_text is not None else "--preset"
    if transform is not None:
        raise _usage(f"give --transform or {flag}, not both (a transform is a step: --pipeline '{transform}; ...')")
    given = [f for k, f in _TRANSFORM_ONLY if getattr(args, k, None) is not None]
    if getattr(args, "compute_dtype", None) is not None:
        given.append("--compute-dtype")
    if getattr(args, "formula", None) is not None and "--formula" not in given:
        given.append("--formula")
    if given:
        raise _usage(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply with {flag}: give them as the steps' options, "
                     "e.g. 'minmax(compute_dtype=float16)'")
    return parse_pipeline(pipe_text) if pipe_text is not None else parse_preset(preset)


def report_pipelines(args) -> list:
    """Every ``--pipeline`` and ``--preset`` of report, parsed."""
    return [parse_pipeline(t) for t in args.pipeline or []] + [parse_preset(t) for t in args.preset or []]


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------


def step_table(record):
    from rich.table import Table

    from .codecs import REGISTRY

    units = "counts" if REGISTRY[record.input_dtype].is_integer else f"{record.input_dtype} units"
    table = Table(title=f"per step (each rounds into its output dtype; merged span in {units})")
    for col in ("#", "step", "output", "compute", "distinct out", "collisions", "merged span"):
        left = col in ("step", "output", "compute")
        table.add_column(col, justify="left" if left else "right", overflow="fold", ratio=3 if col == "step" else None)
    for k, s in enumerate(record.steps, 1):
        table.add_row(str(k), s["spec"], s["output_dtype"], s["compute_dtype"], f"{s['distinct_out']:,}",
                      f"{s['collisions']:,}", f"{s['max_merged_span_in']:.6g}")
    return table


def measure_cmd(args, pipe, source) -> int:
    import json

    from .measure_pipeline import measure_pipeline

    check_build(pipe, source.dtype, "--pipeline" if args.pipeline is not None else "--preset")
    record = measure_pipeline(source, pipe, repeat=args.repeat, exact_points=args.exact_points, name=args.data)
    if args.json:
        print(json.dumps(record.to_dict()))
        return 0
    from rich.console import Console

    from .cli_show import print_record

    console = Console()
    print_record(record, record.formula, console)
    console.print(step_table(record))
    return 0


def choose_cmd(args, pipe, source, req) -> int:
    import json

    from .advise import choose_pipeline, fmt

    check_build(pipe, source.dtype, "--pipeline" if args.pipeline is not None else "--preset")
    outputs = None
    if getattr(args, "allow", None):
        from .advise import allowed_outputs

        outputs = allowed_outputs(tuple(args.allow))
    best, cands = choose_pipeline(source, pipe, req, outputs=outputs, repeat=args.repeat, exact_points=args.exact_points)
    unit = cands[0].units if cands else "input units"
    if args.json:
        print(json.dumps({"recommended": best.output_dtype if best else None, "pipeline": best.formula if best else None,
                          "units": unit, "requirement": req.describe(unit), "candidates": [c.to_dict() for c in cands]}))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{pipe.spec}: {req.describe(unit)} (ranked by bytes, then error in {unit})")
    for col in ("output", "pipeline", "bytes", "survival", f"max span ({unit})", f"max error ({unit})",
                "max ULP (of its output dtype)", "verdict", "why"):
        table.add_column(col)
    for c in cands:
        r = c.record
        table.add_row(c.output_dtype, c.formula, str(c.bytes_per_element), f"{r.survival:.4g}", fmt(r.max_merged_span_in),
                      fmt(r.max_abs_error_in), f"{fmt(r.max_ulp_error)} ({c.output_dtype})", c.verdict, c.reason)
    console = Console()
    console.print(table)
    console.print(f"recommended: {best.output_dtype} ({best.formula})" if best else "no candidate meets the requirement")
    return 0


def audit_cmd(args, pipe) -> int:
    import json

    from .audit import AuditError, load_file
    from .codecs import lookup
    from .measure_pipeline import measure_pipeline

    try:
        x = load_file(args.file, args.key)
        lookup(x.dtype, "data dtype")
    except AuditError as e:
        raise _usage(str(e)) from None
    except TypeError as e:
        raise _usage(f"{args.file}: {e}") from None
    if x.size == 0:
        raise _usage(f"{args.file}: the array is empty")
    check_build(pipe, str(x.dtype), "--pipeline" if args.pipeline is not None else "--preset")
    record = measure_pipeline(x, pipe, repeat=1, name=str(args.file))
    if args.json:
        print(json.dumps({"path": str(args.file), "shape": list(x.shape), "pipeline": pipe.spec, "record": record.to_dict()}))
        return 0
    from rich.console import Console

    console = Console()
    console.print(f"[bold]{args.file}[/]: {record.input_dtype}, shape {tuple(x.shape)}, {record.n:,} values, "
                  f"{record.distinct_in:,} distinct, {record.nan_in:,} NaN")
    from .cli_show import verdict

    console.print(f"{pipe.spec} -> {record.output_dtype}: {verdict(record)} (max {record.max_ulp_error:g} ULP of {record.output_dtype})",
                  soft_wrap=True)
    console.print(step_table(record))
    return 0


def _jsonable(v):
    from .presets import REQUIRED

    if v is REQUIRED:
        return "<required>"
    if isinstance(v, (tuple, list)):
        return [_jsonable(e) for e in v]
    return v if isinstance(v, (str, int, float, bool, type(None))) else str(v)


def presets_cmd(args) -> int:
    """Every preset, then every alias (a library's name for a built-in step:
    torchao.float8 -> scaled_cast), with its options and their defaults."""
    import json

    from .presets import ALIASES, PRESETS

    rows = [{"name": p.name, "kind": "preset", "library": p.library, "verified": p.verified, "source": p.source,
             "summary": p.summary, "options": {k: _jsonable(v) for k, v in p.options.items()}} for p in PRESETS.values()]
    rows += [{"name": a.name, "kind": f"alias of {a.step}", "library": a.library, "verified": a.verified,
              "source": a.source, "summary": a.summary, "options": {k: _jsonable(v) for k, v in a.options.items()}}
             for a in ALIASES.values()]
    if args.json:
        print(json.dumps(rows))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"library presets ({len(PRESETS)}) and aliases ({len(ALIASES)}): use as steps, --preset NAME "
                        "or --pipeline 'NAME(option=value)'")
    table.add_column("name", no_wrap=True)  # names are what users type: never broken
    for col in ("library", "verified against", "semantics; options (defaults)"):
        table.add_column(col)
    for r in rows:
        summary = " ".join(r["summary"].split())
        if r["kind"] != "preset":
            summary = f"({r['kind']}) {summary}"
        if r["options"]:
            summary += "; options: " + ", ".join(f"{k}={v}" for k, v in r["options"].items())
        table.add_row(r["name"], r["library"], r["verified"], summary)
    Console().print(table)
    return 0


