"""The report's "A model in the loop" section: rows of :func:`kernels.sensitivity.sensitivity`.

``run_sensitivity(quick)`` computes the rows :func:`kernels.report.run_suite`
stores in ``report["sensitivity"]`` (quick mode: breast_cancer and the 16-bit
camera, float16 and float32 only); ``render_sensitivity_markdown`` and
``render_sensitivity_html`` render them, with a paragraph whose figures are
computed from the rows.  Kept apart from :mod:`kernels.report` so each module
stays one job.
"""

from __future__ import annotations

import html
import math
import re

TITLE = "A model in the loop"

QUICK = (
    ("breast_cancer", ("standardize(axis=0, output_dtype=float16)", "standardize(axis=0, output_dtype=float32)")),
    ("camera16", ("scale(divisor=65535, output_dtype=float16)", "scale(divisor=65535, output_dtype=float32)")),
)


def run_sensitivity(quick: bool = False) -> list[dict]:
    """The section's rows as dicts (JSON-ready): the default run, or the QUICK subset;
    none (the section is left out) without scikit-learn or scikit-image."""
    from .datasets import Unavailable
    from .sensitivity import sensitivity

    try:
        if not quick:
            return [r.to_dict() for r in sensitivity()]
        return [r.to_dict() for name, specs in QUICK for r in sensitivity([name], list(specs))]
    except Unavailable:
        return []


def pct(v) -> str:
    """A share as a percentage: two decimals, more where two would round to 0 or 100."""
    v = float(v)
    if math.isnan(v):
        return "n/a"
    s = f"{100 * v:.2f}"
    if (s == "100.00" and v != 1) or (s == "0.00" and v != 0):
        s = f"{100 * v:.6g}"
    return s


COLUMNS = [
    ("data", lambda r: r["data"]),
    ("pipeline", lambda r: f"`{r['pipeline']}`"),
    ("dtype", lambda r: r["storage_dtype"]),
    ("moves", lambda r: f"{r['moves']:,}"),
    ("input unchanged %", lambda r: pct(r["input_unchanged"])),
    ("output unchanged %", lambda r: pct(r["output_unchanged"])),
    ("class unchanged %", lambda r: pct(r["class_unchanged"])),
    ("accuracy exact", lambda r: f"{r['accuracy_exact']:.4f}"),
    ("accuracy stored", lambda r: f"{r['accuracy_stored']:.4f}"),
]


def _rows(rows) -> list[dict]:
    return [r.to_dict() if hasattr(r, "to_dict") else r for r in rows]


def summary(rows) -> str:
    """The section's paragraph, every figure taken from ``rows``."""
    rows = _rows(rows)
    moved = [r for r in rows if r["moves"]]
    if not moved:
        return "No data set had a move to make."
    models = sorted({r["model"] for r in rows})
    worst = max(moved, key=lambda r: r["input_unchanged"])
    visible = [r for r in moved if r["input_unchanged"] == 0]
    flips = max(moved, key=lambda r: 1 - r["class_unchanged"])
    out_gain = max(moved, key=lambda r: r["output_unchanged"] - r["input_unchanged"])
    text = (
        f"A small classifier ({', '.join(models)}) is trained on each data set's exact (float64) normalised inputs; "
        f"then every raw input of every sample is moved one step (to the next distinct value its feature takes, "
        f"or by one count for integer images) and passed through each pipeline, {sum(r['moves'] for r in moved):,} "
        f"moves in all. "
    )
    if worst["input_unchanged"] > 0:
        text += (f"The worst pipeline erases {pct(worst['input_unchanged'])}% of the moves before the model "
                 f"sees them ({worst['data']}, `{worst['pipeline']}`): the stored input is bit for bit the same")
        floats = [r for r in moved if "float" in r["storage_dtype"]]
        if floats and "float" not in worst["storage_dtype"]:
            wf = max(floats, key=lambda r: r["input_unchanged"])
            text += f"; among float storage, {pct(wf['input_unchanged'])}% ({wf['data']}, `{wf['pipeline']}`)"
        text += ". "
    text += f"{len(visible)} of {len(moved)} pipelines keep every move visible in the stored input"
    if visible:
        dts = sorted({r["storage_dtype"] for r in visible})
        text += f" (storing {', '.join(dts)})"
    text += ". "
    if out_gain["output_unchanged"] > out_gain["input_unchanged"]:
        text += (
            f"A move that changes the stored input can still leave the float32 probabilities bit for bit unchanged "
            f"(a saturated sigmoid, a product lost in the sum): up to "
            f"{pct(out_gain['output_unchanged'] - out_gain['input_unchanged'])}% of the moves on {out_gain['data']}, "
            f"`{out_gain['pipeline']}`. "
        )
    if flips["class_unchanged"] == 1:
        text += "The predicted class never changes."
    else:
        text += (f"The predicted class changes in at most {pct(1 - flips['class_unchanged'])}% of the moves "
                 f"({flips['data']}, `{flips['pipeline']}`).")
    return text


def _tasks(rows: list[dict]) -> list[tuple[str, str]]:
    seen: dict = {}
    for r in rows:
        seen.setdefault(r["data"], f"{r['n_samples']:,} x {r['n_features']} features; {r['task']}")
    return list(seen.items())


def render_sensitivity_markdown(rows) -> str:
    """The section in GitHub markdown ("" without rows)."""
    rows = _rows(rows)
    if not rows:
        return ""
    lines = [f"## {TITLE}", "", summary(rows), "", "Tasks (method: `kernels/sensitivity.py`):", ""]
    lines += [f"- **{name}**: {what}" for name, what in _tasks(rows)]
    lines += ["", "| " + " | ".join(c for c, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(f(r).replace("|", "\\|") for _, f in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def render_sensitivity_html(rows) -> str:
    """The section as an HTML fragment ("" without rows)."""
    rows = _rows(rows)
    if not rows:
        return ""
    e = html.escape
    para = re.sub(r"`([^`]*)`", r"<code>\1</code>", e(summary(rows)))
    parts = [f"<h2>{e(TITLE)}</h2>", f"<p>{para}</p>", "<ul>"]
    parts += [f"<li><b>{e(name)}</b>: {e(what)}</li>" for name, what in _tasks(rows)]
    parts += ["</ul>", "<table><tr>" + "".join(f"<th>{e(c)}</th>" for c, _ in COLUMNS) + "</tr>"]
    parts += ["<tr>" + "".join(f"<td>{e(f(r).strip('`'))}</td>" for _, f in COLUMNS) + "</tr>" for r in rows]
    parts.append("</table>")
    return "\n".join(parts)
