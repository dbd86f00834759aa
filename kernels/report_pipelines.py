"""The report's ``Pipelines`` section (``precision-bench report --pipeline``): per
pipeline and source, the end-to-end record and what each step lost.

Kept apart from :mod:`kernels.report` (which renders the transform grid) so each
module stays one job; the records come from :func:`kernels.report.run_suite`.
"""

from __future__ import annotations

import html
import math


def _num(v) -> float:
    if isinstance(v, str):
        return {"inf": math.inf, "-inf": -math.inf}.get(v, math.nan)
    return float(v)


def _fmt(v) -> str:
    v = _num(v)
    return "n/a" if math.isnan(v) else ("inf" if math.isinf(v) else f"{v:.4g}")


STEP_COLUMNS = [
    ("step", lambda s: s["spec"]),
    ("output", lambda s: s["output_dtype"]),
    ("compute", lambda s: s["compute_dtype"]),
    ("distinct out", lambda s: f"{s['distinct_out']:,}"),
    ("collisions", lambda s: f"{s['collisions']:,}"),
    ("max merged span (input units)", lambda s: f"{_num(s['max_merged_span_in']):.4g}"),
]


def _pipeline_groups(precs: list[dict]) -> dict:
    out: dict = {}
    for r in precs:
        out.setdefault(r["label"], []).append(r)
    return out


def _pipeline_caption(r: dict) -> str:
    return (f"{r['source']}: {r['distinct_in']:,} distinct in, {r['distinct_out']:,} out "
            f"(survival {r['survival']:.4g}), max error {_fmt(r['max_ulp_error'])} ULP")


def pipelines_markdown(precs: list[dict]) -> list[str]:
    """The ``Pipelines`` section: per pipeline and source, the losses of each step."""
    if not precs:
        return []
    lines = ["", "## Pipelines", "", "Each step rounds into its output dtype; collisions = distinct values that step merged."]
    for label, rs in _pipeline_groups(precs).items():
        lines += ["", f"### `{label}`"]
        for r in rs:
            lines += ["", _pipeline_caption(r), "", "| " + " | ".join(c for c, _ in STEP_COLUMNS) + " |",
                      "|" + "---|" * len(STEP_COLUMNS)]
            lines += ["| " + " | ".join(f(s).replace("|", "\\|") for _, f in STEP_COLUMNS) + " |" for s in r["steps"]]
    return lines + [""]


def pipelines_html(precs: list[dict]) -> list[str]:
    if not precs:
        return []
    e = html.escape
    parts = ["<h2>Pipelines</h2>"]
    for label, rs in _pipeline_groups(precs).items():
        parts.append(f"<h3><code>{e(label)}</code></h3>")
        for r in rs:
            parts.append(f"<p>{e(_pipeline_caption(r))}</p><table><tr>" + "".join(f"<th>{e(c)}</th>" for c, _ in STEP_COLUMNS) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{e(f(s))}</td>" for _, f in STEP_COLUMNS) + "</tr>" for s in r["steps"]]
            parts.append("</table>")
    return parts
