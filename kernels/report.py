"""The published precision report (layer 6): ``precision-bench report``.

The default suite needs no arguments and no network: the uint8, 12-bit and
uint16 domains, the float16 and float32 [0, 1] domains (every float32 value of
[0, 1], streamed, in full mode; [0.5, 1] in quick mode), real data bundled with
scikit-image and scikit-learn, and synthetic float32 features.  Each source
runs the transforms that apply to it (minmax, standardize, scale by the integer
range, quantize) into float16, bfloat16, float32, float64 and uint8 outputs,
with the compute dtypes and accumulators that change the answer.

Outputs, in DIR (default ``reports/``): ``report.md`` (GitHub tables),
``report.html`` (self-contained, plots inline), ``report.json`` (every record
and the provenance) and PNG plots.  Each file is written atomically (a
temporary file in DIR, then a rename); a DIR that holds anything but a
precision-bench report is refused unless ``force``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import json
import math
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from . import datasets
from ._format import fmt, num
from ._progress import start_bar
from .codecs import REGISTRY
from .domain import Domain, domain  # noqa: F401  (R.domain: the tests' stub sources)
from .measure import SCHEMA as RECORD_SCHEMA
from .measure import Record, error_profile, measure, provenance
from .report_pipelines import pipelines_html as _pipelines_html
from .report_pipelines import pipelines_markdown as _pipelines_markdown
from . import report_plots as _plots
from . import report_verdict as _V
from .report_sensitivity import render_sensitivity_html, render_sensitivity_markdown, run_sensitivity
from .report_suite import (FLOAT8_OUTPUTS, MX_REPORT_OUTPUTS, Source, Variant, _candidate_universe,  # noqa: F401  (the report's API)
                           _dataset_source, _file_source, _float_variants, _integer_variants, pipeline_sources, suite)

SCHEMA = "precision-bench/report/1"
FILES = ("report.md", "report.html", "report.json", "survival.png", "merges.png", "throughput.png", "errors.png")


class ReportError(Exception):
    """A report cannot be written where asked (the CLI exits with status 2)."""


# --------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------


from .report_presets import render_conventions, run_conventions  # noqa: E402  (a consumer, as this module)


def measure_variant(x, v: Variant, *, axis=None, repeat: int = 3, exact_points: int = 65536, name: str | None = None):
    """The Record of one suite variant on ``x`` (an array or a Domain).  An MX output
    (:data:`MX_REPORT_OUTPUTS`) is measured as the advisor measures it (the transform
    into float32, then the ``mx`` step, on the values; :func:`kernels.advise.measure_mx`)
    and recorded under its own name, transform and formula, so that the ranking
    counts its bytes with the scales."""
    from .advise import MX_OUTPUTS, measure_mx
    from .transforms import DEFAULT_FORMULA

    kw = dict(accumulator=v.accumulator, acc_dtype=v.acc_dtype, axis=axis, repeat=repeat, exact_points=exact_points,
              name=name, **dict(v.options))
    if v.output not in MX_OUTPUTS:
        return measure(x, v.transform, formula=v.formula, compute_dtype=v.compute, output_dtype=v.output,
                       progress=False, **kw)
    formula = v.formula or DEFAULT_FORMULA[v.transform]
    r = measure_mx(x, v.transform, v.output, v.compute, formula, **kw)
    return dataclasses.replace(r, transform=v.transform, formula=formula, output_dtype=v.output,
                               accumulator=v.accumulator, acc_dtype=v.acc_dtype)


def run_suite(quick: bool = False, data: list[str] | None = None, progress: bool | None = None, pipelines=(),
              key: str | None = None, warm: bool = False) -> dict:
    """Measure the suite; returns the report dict (records in suite order).

    ``warm``: first compile every record's kernels in worker processes, one per
    core (:mod:`kernels.report_warmup`), then measure in this one.

    ``pipelines`` (Pipeline objects or specs): each is measured on
    :func:`pipeline_sources` and listed in ``report["pipelines"]`` with its
    per-step losses (kept apart from ``records``: no transform/formula grid)."""
    from .measure_pipeline import as_pipeline, measure_pipeline

    plan = suite(quick, data, key)
    pipes = [as_pipeline(p) for p in pipelines]
    psources = pipeline_sources(data, key) if pipes else []
    exact_points = 8192 if quick else 65536
    repeat = 1 if quick else 3
    total = sum(len(v) for _, v in plan) + len(pipes) * len(psources)
    records, skipped = [], []
    if warm:
        from .report_warmup import warm_up

        wbar = None if progress is False else start_bar("compiling kernels on every core",
                                                        sum(len(v) for s, v in plan if s.spec is not None))
        try:
            warm_up(plan, on_done=(lambda n: wbar[0].advance(wbar[1], n)) if wbar else None,
                    sections=("conventions", "sensitivity"), quick=quick)
        finally:
            if wbar:
                wbar[0].stop()
    bar = _progress(total, progress)
    try:
        for src, variants in plan:
            try:
                x = src.load()
            except datasets.Unavailable as e:
                skipped.append({"source": src.name, "reason": str(e)})
                if bar:
                    bar[0].advance(bar[1], len(variants))
                continue
            for v in variants:
                if bar:
                    bar[0].update(bar[1], description=f"{src.name}: {v.label} -> {v.output}")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    r = measure_variant(x, v, axis=src.axis, repeat=repeat, exact_points=exact_points, name=src.name)
                d = r.to_dict()
                d["kind"] = src.kind
                d["label"] = v.label
                records.append(d)
                if bar:
                    bar[0].advance(bar[1])
        prec = []
        for src in psources:
            try:
                x = src.load()
            except datasets.Unavailable as e:
                skipped.append({"source": src.name, "reason": str(e)})
                if bar:
                    bar[0].advance(bar[1], len(pipes))
                continue
            for pipe in pipes:
                if bar:
                    bar[0].update(bar[1], description=f"{src.name}: {pipe.spec}")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    r = measure_pipeline(x, pipe, repeat=repeat, exact_points=exact_points, name=src.name)
                d = r.to_dict()
                d["kind"] = src.kind
                d["label"] = pipe.spec
                prec.append(d)
                if bar:
                    bar[0].advance(bar[1])
    finally:
        if bar:
            bar[0].stop()
    return {
        "schema": SCHEMA,
        "record_schema": RECORD_SCHEMA,
        "mode": "quick" if quick else "full",
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "provenance": provenance(),
        "records": records,
        "pipelines": prec,
        "skipped": skipped,
        "recommendations": recommendations(records),
        "conventions": run_conventions(quick),
        "sensitivity": run_sensitivity(quick),
    }


def _progress(total: int, progress: bool | None):
    return None if progress is False else start_bar("report", total)


_num = num



def recommendations(records: list[dict]) -> list[dict]:
    """Per (source, transform): the advisor's ranking (:func:`kernels.advise.recommend_records`)
    of the measured variants: the smallest lossless output, then the lower max and
    mean error in input units, then the fixed preference; speed never decides.
    Candidates of the full grid that were not measured and could have changed the
    answer are named (``not_measured``).  Records of an older report.json without
    the *_in fields rank as if their error were infinite."""
    from .advise import recommend_records

    universe = {}
    for r in records:
        key = (r["source"], r["label"])
        if key not in universe:
            universe[key] = _candidate_universe(r["transform"], REGISTRY[r["input_dtype"]].is_integer)
    return recommend_records(records, universe)


# --------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------

COLUMNS = [
    ("output", lambda r: r["output_dtype"]),
    ("compute", lambda r: r["compute_dtype"]),
    ("formula", lambda r: r["formula"]),
    ("accumulator", lambda r: f"{r['accumulator']}/{r['acc_dtype']}" if r["transform"] == "standardize" else ""),
    ("distinct in (values)", lambda r: f"{r['distinct_in']:,}"),
    ("distinct out (values)", lambda r: f"{r['distinct_out']:,}"),
    ("survival (share)", lambda r: f"{r['survival']:.4g}"),
    ("collisions (values)", lambda r: f"{r['collisions']:,}"),
    ("span (input units)", lambda r: _V.fmt(r.get("max_merged_span_in"))),
    ("max error (input units)", lambda r: _V.fmt(r.get("max_abs_error_in"))),
    ("mean error (input units)", lambda r: _V.fmt(r.get("mean_abs_error_in"))),
    ("bits lost (bits/element)", lambda r: f"{_num(r['info_lost_bits']):.3g}"),
    ("round trip (share)", lambda r: f"{_num(r['roundtrip_exact']):.4g}"),
    ("max ULP (of output dtype)", lambda r: _fmt(r["max_ulp_error"]) + ("*" if r["error_sampled"] else "")),
    ("max ULP apply (of output dtype)", lambda r: _fmt(r["max_ulp_error_apply"])),
    ("M elem/s", lambda r: _speed(r["elements_per_s"], 1e-6, ".4g")),
    ("roofline (fraction of copy)", lambda r: _speed(r["roofline_fraction"], 1, ".2f")),
    ("note", _V.note),
]


def _speed(v, unit: float, spec: str) -> str:
    """A speed figure as printed: ``-`` where none was measured (None, NaN)."""
    v = math.nan if v is None else _num(v)
    return "-" if math.isnan(v) else format(v * unit, spec)


def _fmt(v) -> str:
    return fmt(v, "n/a")


def _sections(report: dict):
    """[(source, kind, [(label, [records], recommendation text)])] in report order."""
    recs = {(r["source"], r["transform"]): r["text"] for r in report["recommendations"]}
    order: dict = {}
    for r in report["records"]:
        src = order.setdefault(r["source"], {"kind": r.get("kind", ""), "n": r["n"], "dtype": r["input_dtype"], "t": {}})
        src["t"].setdefault(r["label"], []).append(r)
    return [
        (name, s, [(label, rs, recs.get((name, label), "")) for label, rs in s["t"].items()]) for name, s in order.items()
    ]


def render_markdown(report: dict) -> str:
    p = report["provenance"]
    lines = ["# precision-bench report", ""] + _V.verdict_markdown(report) + [
        f"Generated by `precision-bench report{' --quick' if report['mode'] == 'quick' else ''}` "
        f"({report['mode']} suite) on {p.get('cpu')} ({p.get('threads')} threads), "
        f"commit `{(p.get('commit') or 'unknown')[:12]}`, numpy {p.get('numpy')}, numba {p.get('numba')}. "
        "Do not edit by hand: regenerate it.",
        "",
        _V.explanation(),
        "",
        "![survival (share) by output dtype](survival.png)",
        "",
        "## Recommendations",
        "",
        "| source | transform | recommended output |",
        "|---|---|---|",
    ]
    for r in report["recommendations"]:
        lines.append(f"| {r['source']} | {r['transform']} | {r['text']} |")
    for name, meta, groups in _sections(report):
        lines += ["", f"## {name}", "", f"{meta['kind']}, {meta['dtype']}, n = {meta['n']:,}", ""]
        for label, rs, rec in groups:
            lines += [f"### {label}", "", "| " + " | ".join(c for c, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
            for r in rs:
                lines.append("| " + " | ".join(f(r) for _, f in COLUMNS) + " |")
            lines += ["", f"**Recommendation:** {rec}", ""]
    lines += render_conventions(report)
    lines += _pipelines_markdown(report.get("pipelines") or [])
    if report.get("sensitivity"):  # absent from reports written before it existed
        lines += ["", render_sensitivity_markdown(report["sensitivity"])]
    if report.get("skipped"):
        lines += ["", "## Skipped", ""] + [f"- {s['source']}: {s['reason']}" for s in report["skipped"]]
    lines += [
        "",
        "## Plots",
        "",
        "![where values merge](merges.png)",
        "",
        "![M elem/s](throughput.png)",
        "",
        "![error distribution](errors.png)",
        "",
    ]
    lines += _V.glossary_markdown()
    return "\n".join(lines)


def render_html(report: dict, images: dict[str, bytes]) -> str:
    def img(name):
        if name not in images:
            return ""
        return f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(images[name]).decode()}">'

    e = html.escape
    p = report["provenance"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>precision-bench report</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child,th:first-child{text-align:left}"
        "img{max-width:100%}caption{text-align:left;font-weight:bold;padding:6px 0}</style></head><body>",
        "<h1>precision-bench report</h1>",
        *_V.verdict_html(report),
        f"<p>{e(report['mode'])} suite on {e(str(p.get('cpu')))} ({p.get('threads')} threads), commit "
        f"<code>{e((p.get('commit') or 'unknown')[:12])}</code>, generated {e(report['generated'])}.</p>",
        f"<p>{e(_V.explanation())}</p>",
        img("survival.png"),
        "<h2>Recommendations</h2><table><tr><th>source</th><th>transform</th><th>recommended output</th></tr>",
    ]
    for r in report["recommendations"]:
        parts.append(f"<tr><td>{e(r['source'])}</td><td>{e(r['transform'])}</td><td>{e(r['text'])}</td></tr>")
    parts.append("</table>")
    for name, meta, groups in _sections(report):
        parts.append(f"<h2>{e(name)}</h2><p>{e(meta['kind'])}, {e(meta['dtype'])}, n = {meta['n']:,}</p>")
        for label, rs, rec in groups:
            parts.append(f"<h3>{e(label)}</h3><table><tr>" + "".join(f"<th>{e(c)}</th>" for c, _ in COLUMNS) + "</tr>")
            for r in rs:
                parts.append("<tr>" + "".join(f"<td>{e(f(r))}</td>" for _, f in COLUMNS) + "</tr>")
            parts.append(f"</table><p><b>Recommendation:</b> {e(rec)}</p>")
    parts += _pipelines_html(report.get("pipelines") or [])
    if report.get("sensitivity"):
        parts.append(render_sensitivity_html(report["sensitivity"]))
    parts += ["<h2>Plots</h2>", img("merges.png"), img("throughput.png"), img("errors.png")]
    parts += _V.glossary_html() + ["</body></html>"]
    return "\n".join(parts)


_png = _plots.png


def render_plots(report: dict) -> dict[str, bytes]:
    """The four PNG plots, as bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = report["records"]
    images = {}

    images["survival.png"] = _plots.survival_plot(plt, recs)

    # where along the input range values merge: uint16 into float16 / bfloat16
    from .transforms import transform

    fig, ax = plt.subplots(figsize=(9, 4))
    x = np.arange(65536, dtype=np.uint16)
    for o in ("float16", "bfloat16"):
        y = transform(x, "minmax", output_dtype=o).astype(np.float64)
        _, inv, counts = np.unique(y, return_inverse=True, return_counts=True)
        ax.plot(x, counts[inv], lw=0.8, label=f"uint16 -> minmax -> {o}")
    ax.set_yscale("log")
    ax.set_xlabel("input value")
    ax.set_ylabel("max preimage (values): inputs merged into its output")
    ax.set_title("where values merge along the input range: uint16 (all 65536), minmax")
    ax.legend()
    images["merges.png"] = _png(fig)

    images["throughput.png"] = _plots.throughput_plot(plt, recs)

    # error distribution: standardize of gaussian float32 features
    fig, ax = plt.subplots(figsize=(9, 4))
    g = np.random.default_rng(0).standard_normal(200_000).astype(np.float32)
    for o, acc, ad in (
        ("float16", "pairwise", "float64"),
        ("bfloat16", "pairwise", "float64"),
        ("float32", "pairwise", "float64"),
        ("float32", "naive", "float16"),
    ):
        _, ulps, w = error_profile(g, "standardize", output_dtype=o, accumulator=acc, acc_dtype=ad, exact_points=16384)
        finite = np.isfinite(ulps)
        ax.hist(np.log2(ulps[finite] + 1), bins=40, weights=w[finite], histtype="step", label=f"-> {o}, {acc}/{ad} accumulator")
    ax.set_title("standardize, 200,000 gaussian float32 values (16,384 checked exactly)")
    ax.set_xlabel("bits of error, log2(ULP + 1)")
    ax.set_ylabel("elements")
    ax.set_yscale("log")
    ax.legend()
    images["errors.png"] = _png(fig)
    return images


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------


def _own_temp(p: Path) -> bool:
    """A temporary file of ours (``.report.json.x1y2.tmp``, a probe): left behind
    only by a killed run, so never a reason to refuse the directory."""
    n = p.name
    return n.endswith(".tmp") and (n.startswith(PROBE) or any(n.startswith(f".{f}.") for f in FILES))


PROBE = ".precision-bench-probe."


def check_out_dir(out: Path, force: bool) -> None:
    """Refuse a DIR that holds anything but a precision-bench report (unless force)
    or cannot be created and written; called before any measuring.  Leaves
    nothing behind: writability is proven by creating and removing a probe."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(not _own_temp(p) for p in out.iterdir()) and not force:
        try:
            ok = json.loads((out / "report.json").read_text()).get("schema") == SCHEMA
        except (OSError, ValueError, AttributeError):
            ok = False
        if not ok:
            raise ReportError(f"--out {out}: holds files that are not a precision-bench report; pass --force or choose another directory")
    base = out if out.is_dir() else next((p for p in out.absolute().parents if p.exists()), Path("."))
    if not base.is_dir():
        raise ReportError(f"--out {out}: {base} is a file, not a directory")
    try:  # the real test (os.access is wrong for root, ACLs, read-only mounts)
        probe = tempfile.mkdtemp(dir=base, prefix=PROBE, suffix=".tmp")
        os.rmdir(probe)
    except OSError as e:
        raise ReportError(f"--out {out}: {base} is not writable ({e.strerror})") from None


def _write_temp(path: Path, data: bytes) -> str:
    """``data`` in a temporary file beside ``path``, flushed to disk; its name."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a report is for reading
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _sigint_blocked():
    """Ctrl-C held back (delivered right after) while the finished files are
    renamed into place, so an earlier report is replaced whole, not half."""
    import contextlib
    import signal
    import threading

    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def blocked():
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    return blocked()


def write_report(report: dict, out: Path, force: bool = False) -> list[Path]:
    """Render everything in memory, write every file to a temporary beside it,
    then rename them all into place.  An interrupt or error before the renames
    removes the temporaries and leaves an earlier report untouched; temporaries
    a killed run left behind are removed first."""
    out = Path(out)
    check_out_dir(out, force)
    images = render_plots(report)
    files = {
        "report.json": (json.dumps(report, indent=1, allow_nan=False) + "\n").encode(),
        "report.md": render_markdown(report).encode(),
        "report.html": render_html(report, images).encode(),
        **images,
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(f"--out {out}: cannot create it ({e.strerror})") from None
    for p in out.iterdir():
        if _own_temp(p) and p.is_file():
            p.unlink(missing_ok=True)
    temps: dict[str, str] = {}
    try:
        for name in FILES:
            try:
                temps[name] = _write_temp(out / name, files[name])
            except OSError as e:
                raise ReportError(f"--out {out}: cannot write {name} ({e.strerror})") from None
        with _sigint_blocked():
            for name in FILES:
                os.replace(temps.pop(name), out / name)
    finally:
        for tmp in temps.values():  # not renamed: an interrupt or an error
            Path(tmp).unlink(missing_ok=True)
    return [out / name for name in FILES]


def load_report(path: Path) -> dict:
    d = json.loads(Path(path).read_text())
    if d.get("schema") != SCHEMA:
        raise ReportError(f"{path}: not a precision-bench report")
    return d


__all__ = ["Domain", "Record", "run_suite", "write_report", "render_markdown", "render_html", "render_plots", "suite"]
