"""Command line: ``precision-bench`` (also ``python -m kernels``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .codecs import REGISTRY
from .cli_show import _describe_overflow, _num, dtype_facts, print_record, speed_cell, verdict  # noqa: F401  (re-exported)


def _dtypes(args) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dtype registry (overflow: what 4 x max and +inf become, measured by cast)")
    for col in ("name", "bytes", "kind", "largest finite", "smallest subnormal", "NaN codes", "inf codes",
                "overflow", "overflow, saturate=True", "compute dtype"):
        table.add_column(col)
    for row in REGISTRY.values():
        f = dtype_facts(row)
        table.add_row(
            row.name,
            str(row.itemsize),
            f["kind"],
            f"{row.max:g}",
            "-" if f["smallest_subnormal"] is None else f"{f['smallest_subnormal']:g}",
            str(f["nan_codes"]),
            str(f["inf_codes"]),
            _describe_overflow(f["overflow"][False], row),
            _describe_overflow(f["overflow"][True], row),
            "yes" if row.can_compute else "no",
        )
    Console(width=200).print(table)
    return 0


def _speed(args) -> int:
    from .speed import main as speed_main
    from .speed import select_cases

    if args.report and not args.cold:
        raise UsageError("--report applies with --cold only (it adds report --quick and the full report, cold)")
    if args.cold:
        if args.sweep or args.case or args.peers or args.scale:
            raise UsageError("--cold runs its own cases (each in a new process, empty cache); drop --sweep/--case/--peers/--scale")
        from .speed_cold import main as cold_main

        cold_main(report=args.report)
        return 0
    if args.dask:
        if args.sweep or args.case or args.peers or args.scale:
            raise UsageError("--dask runs its own job (a Zarr array on 1 and 2 worker processes); drop --sweep/--case/--peers/--scale")
        if not 16 <= args.max_log2 <= 32:
            raise UsageError(f"--dask --max-log2 {args.max_log2}: the store's size, 2^K uint16 values, needs 16 <= K <= 32")
        from .speed_dask import ChildFailed, main as dask_main

        try:
            dask_main(log2=args.max_log2)
        except ChildFailed as e:  # one line and status 2, not a traceback
            raise UsageError(f"speed --dask: {e}") from None
        return 0
    if args.scale:
        if args.sweep or args.case or args.peers:
            raise UsageError("--scale takes none of --sweep, --case, --peers (narrow it with --input-dtype and --max-log2)")
        from .speed_scale import DEFAULT_INPUTS, scale

        if not 10 <= args.min_log2 <= args.max_log2 or args.step < 1:
            raise UsageError(f"--min-log2 {args.min_log2} --max-log2 {args.max_log2} --step {args.step}: "
                             "need 10 <= min <= max and a step of at least 1")
        scale(tuple(args.input_dtype or DEFAULT_INPUTS), min_log2=args.min_log2, max_log2=args.max_log2, step=args.step,
              repeat=args.repeat or 5, budget=args.budget, threads=args.threads, jobs=args.job)
        return 0
    if args.repeat is None:
        args.repeat = 7
    if args.sweep and args.case:
        raise UsageError("--case applies without --sweep only (--sweep times every apply variant; narrow it with --input-dtype)")
    if args.sweep and args.peers:
        raise UsageError("--peers and --sweep are two runs: give one (--peers times each shared job against the peers)")
    if args.peers:
        from .speed_peers import main as peers_main
        from .speed_peers import select_jobs

        try:
            select_jobs(args.case)  # names checked before anything is timed
        except ValueError as e:
            raise UsageError(f"--case: {e}") from None
        peers_main(n=args.n, repeat=args.repeat, jobs=args.case or None)
        return 0
    try:
        select_cases(args.case)  # names checked before anything is timed
    except ValueError as e:
        raise UsageError(f"--case: {e}") from None
    if args.sweep:
        from .speed import sweep_apply

        sweep_apply(n=args.n, repeat=min(args.repeat, 5), **({"inputs": args.input_dtype} if args.input_dtype else {}))
    else:
        speed_main(n=args.n, repeat=args.repeat, cases=args.case or None, domain_sweep_too=not args.case)
    return 0


QUICK_DURATION = "measured: 2 min 31 s with a cold numba cache on a quiet 2-core machine, about 35 s warm"


class UsageError(Exception):
    """A bad argument or file: reported on one line, exit status 2."""


class _HelpFormatter(argparse.HelpFormatter):
    """Every option with a default says it (argparse's ``%(default)s``), unless its
    help already states the default (options whose default depends on the input);
    choices are listed by argparse itself."""

    def _get_help_string(self, action):
        text = action.help or ""
        if not action.option_strings or action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)  # sub-commands too: add_parser builds this class
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, no usage dump
        raise UsageError(message)


class _Renamed(argparse.Action):
    """A flag that was renamed: refused with the new name (one line, status 2)."""

    def __call__(self, parser, namespace, values, option_string=None):
        raise UsageError(f"{option_string} is now {self.const}: give {self.const} {values or ''}".rstrip())


def load_array(path: str, key: str | None = None):
    """The array of ``--data``: .npy (memory-mapped), .npz (``--key``) or an image;
    never unpickles (see :mod:`kernels.files`)."""
    from .audit import AuditError, load_file
    from .codecs import lookup
    from .sources import is_lazy_source, open_source

    try:
        # a Zarr store, a folder or glob of .npy files: a dask array, read chunk by chunk
        x = open_source(path, key) if is_lazy_source(path) else load_file(path, key)
        lookup(x.dtype, "data dtype")  # refused here, naming the file, not later as "source.dtype"
    except AuditError as e:
        raise UsageError(f"--data {e}") from None
    except TypeError as e:
        raise UsageError(f"--data {path}: {e}") from None
    if x.ndim == 0 or x.size == 0:
        raise UsageError(f"--data {path}: the array is {'0-d' if x.ndim == 0 else 'empty'}; save an array of at least one value")
    return x


def _measure(args) -> int:
    import json

    from . import cli_pipeline
    from .measure import measure

    pipe = cli_pipeline.resolve(args)
    source = _source(args)
    if pipe is not None:
        return cli_pipeline.measure_cmd(args, pipe, source)
    options = _fit_options(args)
    axis = None if args.axis is None else tuple(args.axis)
    record = measure(
        source,
        args.transform,
        formula=args.formula,
        compute_dtype=args.compute_dtype,
        output_dtype=args.output_dtype,
        accumulator=args.accumulator,
        acc_dtype=args.acc_dtype,
        axis=axis,
        nan_policy=args.nan_policy,
        repeat=args.repeat,
        exact_points=args.exact_points,
        name=args.data,
        **options,
    )
    if args.json:
        print(json.dumps(record.to_dict()))
        return 0
    print_record(record, f"{record.transform}/{record.formula} compute {record.compute_dtype}")
    return 0


def _source(args):
    """The array or domain named by the shared source flags."""
    from .cast import cast
    from .domain import domain

    if args.domain == bool(args.data):
        raise UsageError("give exactly one source: --domain (with --input-dtype) or --data FILE")
    if args.domain:
        if args.input_dtype is None:
            raise UsageError("--domain needs --input-dtype (uint8, uint16, int8, int16, float16, bfloat16 or float32)")
        lo, hi = _domain_range(args.input_dtype, args.range) if args.range else (None, None)
        return domain(args.input_dtype, lo, hi)
    if args.range:
        raise UsageError("--range applies to --domain only")
    source = load_array(args.data, args.key)
    if args.input_dtype is not None:  # a lazy source (a dask array) is cast block by block, the same bits
        source = cast(source, args.input_dtype)
    return source


def _domain_range(dtype: str, bounds) -> tuple[float, float]:
    """``--range LO HI`` checked against what ``dtype`` can represent, so the
    message names the flag (and no bound reaches the domain builder unchecked)."""
    import math

    lo, hi = bounds
    row = REGISTRY[dtype]
    vmin, vmax = row.min, row.max
    held = f"{dtype} holds {vmin:g} to {vmax:g}"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise UsageError(f"--range {lo:g} {hi:g}: bounds must be finite numbers ({held})")
    if lo > hi:
        raise UsageError(f"--range {lo:g} {hi:g}: bounds must satisfy lo <= hi")
    if hi < vmin or lo > vmax:
        raise UsageError(f"--range {lo:g} {hi:g}: no {dtype} value lies in it ({held})")
    return lo, hi


def _fit_options(args) -> dict:
    options = {}
    if args.divisor is not None:
        options["divisor"] = args.divisor
    if args.feature_range is not None:
        options["feature_range"] = tuple(args.feature_range)
    return options


def _report(args) -> int:
    from .audit import AuditError
    from .report import ReportError, check_out_dir, run_suite, write_report

    try:
        from .cli_pipeline import report_pipelines

        pipes = report_pipelines(args)  # specs checked before anything is measured
        check_out_dir(Path(args.out), args.force)
        report = run_suite(quick=args.quick, data=args.data or None, pipelines=pipes, key=args.key, warm=not args.no_warm_up)
        written = write_report(report, Path(args.out), force=args.force)
    except (ReportError, AuditError) as e:
        raise UsageError(f"--data {e}" if isinstance(e, AuditError) else str(e)) from None
    n = len(report["records"])
    n_p = len(report["pipelines"])
    print(f"{n} records{f' + {n_p} pipeline records' if n_p else ''} ({report['mode']} suite) -> {', '.join(str(p) for p in written[:3])} and {len(written) - 3} plots")
    return 0


def _sensitivity(args) -> int:
    import json

    from .cli_pipeline import parse_pipeline
    from .datasets import Unavailable
    from .sensitivity import SCHEMA, sensitivity

    pipes = [parse_pipeline(t) for t in args.pipeline] if args.pipeline else None  # checked before any data is loaded
    try:
        rows = [r.to_dict() for r in sensitivity(args.data or None, pipes, seed=args.seed)]
    except Unavailable as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps({"schema": SCHEMA, "rows": rows}))
        return 0
    from rich.console import Console
    from rich.table import Table

    from .report_sensitivity import pct

    table = Table(title="one-step input moves through each pipeline into the model: share unchanged",
                  caption=f"model {rows[0]['model']}, trained on the exact (float64) inputs; accuracy on all samples")
    for col in ("data", "pipeline", "dtype", "moves", "input unchanged %", "output unchanged %", "class unchanged %",
                "accuracy exact", "accuracy stored"):
        if col == "pipeline":
            table.add_column(col, overflow="fold")
        else:  # figures never wrap; the long specs fold instead
            table.add_column(col, justify="left" if col in ("data", "dtype") else "right", no_wrap=True)
    for r in rows:
        table.add_row(r["data"], r["pipeline"], r["storage_dtype"], f"{r['moves']:,}", pct(r["input_unchanged"]),
                      pct(r["output_unchanged"]), pct(r["class_unchanged"]), f"{r['accuracy_exact']:.4f}",
                      f"{r['accuracy_stored']:.4f}")
    console = Console()
    if not console.is_terminal:  # piped or redirected: no screen to fit, so no folded specs
        console = Console(width=160)
    console.print(table)
    return 0


def _choose(args) -> int:
    import json

    from .advise import Requirement, choose

    given = [args.lossless, args.max_error_in is not None, args.max_span_in is not None, args.max_ulp is not None,
             args.min_survival is not None]
    if sum(given) != 1:
        raise UsageError("give exactly one requirement: --lossless, --max-error-in N, --max-span-in N, --max-ulp N or --min-survival F")
    try:
        req = Requirement(lossless=args.lossless, max_ulp=args.max_ulp, min_survival=args.min_survival,
                          max_error_in=args.max_error_in, max_span_in=args.max_span_in)
    except ValueError as e:
        flag = {"max_error_in": "--max-error-in", "max_span_in": "--max-span-in", "max_ulp": "--max-ulp",
                "min_survival": "--min-survival"}
        name = str(e).split("=", 1)[0]
        raise UsageError(f"{flag.get(name, name)}: {e}") from None
    from . import cli_pipeline

    pipe = cli_pipeline.resolve(args)
    source = _source(args)
    if pipe is not None:
        return cli_pipeline.choose_cmd(args, pipe, source, req)
    kw = dict(accumulator=args.accumulator, acc_dtype=args.acc_dtype, nan_policy=args.nan_policy, **_fit_options(args))
    if args.axis is not None:
        kw["axis"] = tuple(args.axis)
    best, cands = choose(
        source, args.transform, req, compute_dtypes=args.compute_dtype, formulas=args.formula, allow=tuple(args.allow),
        repeat=args.repeat, exact_points=args.exact_points, **kw,
    )
    unit = cands[0].units if cands else "input units"
    if args.json:
        print(json.dumps({"recommended": best.output_dtype if best else None,
                          "compute_dtype": best.compute_dtype if best else None,
                          "formula": best.formula if best else None, "units": unit,
                          "requirement": req.describe(unit), "candidates": [c.to_dict() for c in cands]}))
        return 0
    from rich.console import Console
    from rich.table import Table

    from .advise import fmt

    table = Table(title=f"{args.transform}: {req.describe(unit)} (ranked by bytes, then error in {unit})")
    cols = ("output", "compute", "formula", "bytes", "survival", f"max span ({unit})", f"max error ({unit})",
            f"mean error ({unit})", "max ULP (of its output dtype)", "M elem/s (not deciding)", "verdict", "why")
    for col in cols:
        table.add_column(col)
    for c in cands:
        r = c.record
        table.add_row(c.output_dtype, c.compute_dtype, c.formula, str(c.bytes_per_element), f"{r.survival:.4g}",
                      fmt(r.max_merged_span_in), fmt(r.max_abs_error_in), fmt(r.mean_abs_error_in),
                      f"{fmt(r.max_ulp_error)} ({c.output_dtype})", speed_cell(r.elements_per_s), c.verdict, c.reason)
    console = Console()
    console.print(table)
    console.print(f"recommended: {best.output_dtype} (compute {best.compute_dtype}, {best.formula}); max error "
                  f"{fmt(best.record.max_abs_error_in)} {unit}" if best else "no candidate meets the requirement")
    return 0


def _audit(args) -> int:
    import json

    from . import cli_pipeline
    from .audit import AuditError, audit

    pipe = cli_pipeline.resolve(args)
    if pipe is not None:
        if args.axis is not None:
            raise UsageError("--axis does not apply with --pipeline / --preset: give it to the steps, e.g. 'minmax(axis=(0, 1))'")
        return cli_pipeline.audit_cmd(args, pipe)
    try:
        a = audit(args.file, args.key, axis=args.axis, exact_points=args.exact_points)
    except AuditError as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps(a.to_dict()))
        return 0
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    bits = f", {a.effective_bits_in:.3g} effective bits"
    if a.bits_used is not None:
        bits += f", {a.bits_used} of {a.dtype_bits} bits used"
    console.print(f"[bold]{a.path}[/]: {a.dtype}, shape {a.shape}, {a.n:,} values in [{a.lo:g}, {a.hi:g}], "
                  f"{a.distinct:,} distinct{bits}, {a.nan:,} NaN, {a.inf:,} inf", soft_wrap=True)
    if a.note:
        console.print(a.note, soft_wrap=True)
    if a.channels:
        ch = Table(title=f"per channel (statistics over axis {' '.join(str(k) for k in a.axis)})")
        for col in ("channel", "min", "max", "mean", "std", "distinct"):
            ch.add_column(col, justify="right")
        for j, c in enumerate(a.channels):
            ch.add_row(str(j), f"{c.lo:g}", f"{c.hi:g}", f"{c.mean:.6g}", f"{c.std:.6g}", f"{c.distinct:,}")
        console.print(ch)
    units = "counts" if a.bits_used is not None else f"{a.dtype} units"
    per = ", summed over channels" if a.channels else ""
    table = Table(title=f"what survives each pipeline (span and errors in input units: {units}{per}; ULP of the output)",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("pipeline", "output", "compute", "bytes", "distinct out", "survival", "merged span",
                "max error", "mean error", "max ULP"):
        table.add_column(col, justify="left" if col in ("pipeline", "output", "compute") else "right",
                         no_wrap=True, min_width=len(col))  # headers on one line
    for p in a.pipelines:
        mark = " *" if p is a.recommendation else ""
        table.add_row(p.name + mark, p.output, p.compute, str(p.bytes_per_element), f"{p.distinct_out:,}",
                      f"{p.survival:.4g}", _num(p.max_merged_span_in, 3), _num(p.max_abs_error_in, 3),
                      _num(p.mean_abs_error_in, 3), _num(p.max_ulp_error, 3))
    Console(width=max(console.width, 128)).print(table)  # 10 columns: never squeezed into ellipses
    console.print(a.recommendation_text + (" (* in the table)" if a.recommendation is not None else ""), soft_wrap=True)
    return 0


def _add_variant_args(p, *, formula=True, output=True):
    from .codecs import COMPUTE_DTYPES
    from .stats import ACC_DTYPES, ACCUMULATORS, NAN_POLICIES, TRANSFORMS

    src = p.add_argument_group("source (one of)")
    src.add_argument("--domain", action="store_true", help="every representable value of --input-dtype (in --range)")
    src.add_argument("--data", metavar="FILE", help=".npy, .npz (--key), .png or .tif(f) file (never unpickled)")
    p.add_argument("--key", help="array name inside an .npz file (default: its only array)")
    p.add_argument("--input-dtype", choices=list(REGISTRY), help="domain dtype, or cast --data to it first (default: the file's dtype)")
    p.add_argument("--range", nargs=2, type=float, metavar=("LO", "HI"), help="domain bounds (default: all finite values)")
    p.add_argument("--transform", choices=TRANSFORMS, help="one transform (or give --pipeline / --preset)")
    if formula:
        from .transforms import DEFAULT_FORMULA, FORMULAS

        listed = "; ".join(f"{t}: {', '.join(FORMULAS[t])}" for t in TRANSFORMS)
        p.add_argument("--formula", help=f"kernel formula ({listed}) (default: the transform's scikit-learn formula: "
                                         f"{', '.join(f'{t} {f}' for t, f in DEFAULT_FORMULA.items())})")
        p.add_argument("--compute-dtype", choices=COMPUTE_DTYPES, help="the dtype the arithmetic happens in (default: float32)")
    if output:
        p.add_argument("--output-dtype", choices=list(REGISTRY), help="the dtype written (default: float64 for float64 input, else float32; quantize: uint8)")
    # defaults (pairwise, float64, raise) are filled in by cli_pipeline.resolve: None
    # here, so that a flag given next to --pipeline is refused rather than ignored
    p.add_argument("--accumulator", choices=ACCUMULATORS, help="mean/variance summation (default: pairwise)")
    p.add_argument("--acc-dtype", choices=ACC_DTYPES, help="dtype of the sums (default: float64)")
    p.add_argument("--divisor", type=float, help="scale: divide by this (default: the integer dtype's max)")
    p.add_argument("--feature-range", nargs=2, type=float, metavar=("A", "B"), help="minmax target range (default: 0 1)")
    p.add_argument("--axis", nargs="+", type=int, help="per-feature statistics: 0 for columns of 2-D data, 0 1 for HWC images (default: one set over all values)")
    p.add_argument("--nan-policy", choices=NAN_POLICIES, help="what NaN in the data does (default: raise)")
    p.add_argument("--repeat", type=int, default=3, help="timed apply passes; the best is kept")
    p.add_argument("--exact-points", type=int, default=65536, help="distinct inputs checked exactly")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    from .cli_pipeline import add_args

    add_args(p)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="precision-bench",
        description="How many distinct values survive a dtype transform, how wrong, how fast.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("dtypes", help="list the supported dtypes")
    p.set_defaults(func=_dtypes)
    p = sub.add_parser(
        "speed",
        help="time the kernels against numpy and the memory roofline, side by side in one process",
    )
    p.add_argument("--n", type=int, default=50_000_000, help="elements per array")
    p.add_argument("--repeat", type=int, default=None,
                   help="interleaved repeats; the best and the median are printed (default 7; --scale: 5)")
    p.add_argument("--case", action="append", help="run only this case (with --peers: this job; repeatable; default: every case)")
    p.add_argument(
        "--peers",
        action="store_true",
        help="each shared job against numpy, numexpr, OpenCV, torch, jax.jit and pychop: bits, best and median times, ratios",
    )
    p.add_argument(
        "--sweep", action="store_true", help="roofline fraction and in-cache ceiling of every apply-kernel variant (about 8 minutes)"
    )
    import inspect

    from .speed import sweep_apply

    sweep_inputs = inspect.signature(sweep_apply).parameters["inputs"].default  # speed.py's own default, not a copy
    p.add_argument(
        "--input-dtype",
        action="append",
        choices=list(REGISTRY),
        help=f"with --sweep or --scale: only this input dtype (repeatable; default: {', '.join(sweep_inputs)}; "
             "--scale: uint8, uint16, float32)",
    )
    p.add_argument("--input", action=_Renamed, const="--input-dtype", help=argparse.SUPPRESS)
    p.add_argument("--cold", action="store_true",
                   help="cold start: each first call in a new process with an empty numba cache, then warm (about 1 min)")
    p.add_argument("--report", action="store_true", help="with --cold: also report --quick and the full report, cold (many minutes)")
    p.add_argument("--dask", action="store_true",
                   help="fit + distinct + measure of a generated 2^K uint16 Zarr array (--max-log2, default 30: 2 GiB) on a "
                        "LocalCluster of 1 and 2 worker processes against the in-memory path: time, peak memory per worker")
    p.add_argument("--scale", action="store_true",
                   help="elements/s of apply, fit, distinct and measure from 2^10 elements up, against a memory probe "
                        "at each size, the cache knee, and where memory stops the sweep")
    p.add_argument("--max-log2", type=int, default=30, help="with --scale: the largest size, 2^K elements; with --dask: the store's size")
    p.add_argument("--min-log2", type=int, default=10, help="with --scale: the smallest size, 2^K elements")
    p.add_argument("--step", type=int, default=2, help="with --scale: step of log2 size")
    p.add_argument("--budget", type=float, default=8.0,
                   help="with --scale: seconds per job and size after which fewer than --repeat rounds are kept")
    from .speed_scale import JOBS as SCALE_JOBS

    p.add_argument("--job", action="append", choices=list(SCALE_JOBS),
                   help="with --scale: only this job (repeatable; default: every job)")
    p.add_argument("--threads", type=int, default=None,
                   help="with --scale: numba threads for the run (default: numba's, every core)")
    p.set_defaults(func=_speed)

    p = sub.add_parser("measure", help="measure one transform variant: survival, error against the exact value, speed")
    _add_variant_args(p)
    add_scheduler_args(p)
    p.set_defaults(func=_measure)

    p = sub.add_parser("report", help="run the default suite and write the precision report (the main job)")
    from .datasets import NAMES

    from .report import suite

    full, quick = (sum(len(v) for _, v in suite(q)) for q in (False, True))
    # QUICK_DURATION: measured with `time precision-bench report --quick` (see the README)
    p.add_argument("--quick", action="store_true", help=f"a smaller suite: {quick} of the {full} records, and the library "
                   f"presets on the uint8 and float16 domains only ({QUICK_DURATION})")
    p.add_argument("--out", default="reports", metavar="DIR", help="output directory")
    p.add_argument("--data", action="append", metavar="NAME|FILE",
                   help=f"real data instead of the bundled sets: a bundled name ({', '.join(NAMES)}), a .npy, .npz "
                        "(--key), .png or .tif(f) file, or a Zarr store or a folder or glob of .npy/image files, "
                        "measured chunk by chunk (repeatable; default: every bundled set)")
    p.add_argument("--key", help="array name inside every --data .npz file or Zarr group (default: its only array)")
    p.add_argument("--no-warm-up", action="store_true",
                   help="do not compile the kernels in one worker process per core before measuring (on by default)")
    p.add_argument("--force", action="store_true", help="write into a DIR that holds other files")
    from .cli_pipeline import add_args, presets_cmd

    add_args(p, repeatable=True)
    add_scheduler_args(p)
    p.set_defaults(func=_report)

    from .codecs import COMPUTE_DTYPES

    p = sub.add_parser("choose", help="the cheapest output dtype that meets a requirement")
    _add_variant_args(p, formula=False, output=False)
    req = p.add_argument_group("requirement (one of)")
    req.add_argument("--lossless", action="store_true", help="no two distinct inputs may merge")
    req.add_argument("--max-error-in", type=float, metavar="N",
                     help="max error in input units (counts for integer inputs): |y - exact| / slope of the ideal map")
    req.add_argument("--max-span-in", type=float, metavar="N",
                     help="widest range of input values (input units) allowed to merge into one output")
    req.add_argument("--max-ulp", type=float, metavar="N",
                     help="max ULP error against the exact value (ULPs of each output dtype: not comparable across dtypes)")
    req.add_argument("--min-survival", type=float, metavar="F", help="share of distinct values that must survive")
    p.add_argument("--compute-dtype", action="append", choices=COMPUTE_DTYPES, help="only these compute dtypes (repeatable; default all)")
    p.add_argument("--formula", action="append", help="only these formulas (repeatable; default all)")
    from .advise import LOW_PRECISION

    p.add_argument("--allow", action="append", choices=list(LOW_PRECISION), default=[],
                   help="also consider these outputs of 8 bits and below (repeatable): "
                        + "; ".join(f"{k}: {', '.join(v)}" for k, v in LOW_PRECISION.items()))
    p.set_defaults(func=_choose)

    p = sub.add_parser("audit", help="dtype, range, distinct values and survival per pipeline of your file")
    from .audit import AUDIT_EXACT_POINTS

    p.add_argument("file", help=".npy, .npz, .png or .tif(f); or a Zarr store, a folder or a glob of .npy/image files (read lazily)")
    p.add_argument("--key", help="array name inside an .npz file (default: its only array)")
    p.add_argument("--axis", nargs="+", type=int,
                   help="per-channel statistics over these axes, every axis but the last: 0 1 for HWC images, 0 for "
                        "columns of 2-D data (default: one set over all values)")
    p.add_argument("--exact-points", type=int, default=AUDIT_EXACT_POINTS,
                   help="distinct inputs whose error is checked exactly (evenly spaced beyond it)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_args(p)
    add_scheduler_args(p)
    p.set_defaults(func=_audit)

    from .sensitivity import DEFAULT_DATA, NAMES

    p = sub.add_parser(
        "sensitivity",
        help="a model in the loop: the share of one-step input moves that leave the stored input, "
             "the model's output and its class unchanged",
        description="Train a logistic regression (fixed seed) on each data set's exact (float64) normalised inputs, "
                    "move every raw input one step (the next distinct value of its feature, or one count), and count "
                    "the moves that leave the stored input, the float32 probabilities and the class unchanged "
                    "(method: kernels/sensitivity.py). The default run (5 data sets, 23 pipelines, 2,742,157 moves) took 8 to 12 s on a busy "
                    "2-core machine, numba's cache warm.",
    )
    p.add_argument("--data", action="append", metavar="NAME|FILE",
                   help=f"bundled: {', '.join(NAMES)} (default: {', '.join(DEFAULT_DATA)}); or an .npz with arrays "
                        "X (samples x features) and y (labels) (repeatable)")
    p.add_argument("--pipeline", action="append", metavar="'STEP; STEP'",
                   help="replaces the default pipelines on every data set (repeatable; tabular data needs axis=0 for "
                        "per-feature statistics); default: standardize(axis=0) into float16/bfloat16/float32 and "
                        "minmax(axis=0) into float16/bfloat16 for float data, scale(divisor=RANGE) into "
                        "float16/bfloat16/float32 and minmax(feature_range=(0, 255)) into uint8 for the 12/16-bit cameras")
    p.add_argument("--seed", type=int, default=0, help="the model's random_state (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=_sensitivity)

    p = sub.add_parser("presets", help="list the library presets: name, library, version verified, semantics")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects on stdout")
    p.set_defaults(func=presets_cmd)
    return parser


def add_scheduler_args(p) -> None:
    p.add_argument("--scheduler", metavar="threads|processes|ADDRESS",
                   help="dask scheduler for lazy --data sources (a Zarr store, a folder or glob of .npy/image files): threads, processes, or the ADDRESS of a "
                        "running distributed scheduler (tcp://host:8786) (default: dask's, threads)")
    p.add_argument("--scheduler-timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for --scheduler ADDRESS to answer (default: 10.0)")


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:  # a command is required: the help, as an error
            parser.print_help(sys.stderr)
            return 2
        if getattr(args, "n", 1) <= 0 or (getattr(args, "repeat", 1) or 1) <= 0:
            raise UsageError("--n and --repeat must be positive")
        if not hasattr(args, "scheduler"):
            return args.func(args)
        from .sources import is_lazy_source, scheduler

        paths = getattr(args, "data", None) or getattr(args, "file", None)
        paths = [paths] if isinstance(paths, str) else list(paths or ())  # report --data repeats
        if args.scheduler is None and not any(isinstance(p, str) and is_lazy_source(p) for p in paths):
            return args.func(args)  # no dask in this run
        # a progress bar on a terminal: dask's for the local schedulers, distributed's for an ADDRESS
        # (not for the report: it has its own, per record)
        bar = sys.stderr.isatty() and args.command != "report"
        with scheduler(args.scheduler, progress=bar, timeout=args.scheduler_timeout):
            return args.func(args)
    except (UsageError, ValueError, TypeError, OSError) as e:
        # bad arguments, files or data: one line, status 2, no traceback
        msg = " ".join(str(e).split())
        print(f"precision-bench: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C: one line and the shell's status for SIGINT; the report writer has
        # already removed its temporary files (kernels.report.write_report)
        print("precision-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
