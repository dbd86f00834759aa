"""The report's survival and throughput plots (layer 6), drawn from records.

:mod:`kernels.report` calls these from ``render_plots`` with pyplot already on
the Agg backend; titles use the table headings ("survival (share)", "M elem/s").
"""

from __future__ import annotations

import io

import numpy as np

from . import report_verdict as V


def png(fig) -> bytes:
    """The figure as PNG bytes (no timestamp metadata), closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


PLOT_OUTPUTS = ("float16", "bfloat16", "float32", "float64", "uint8")  # bar order (registry names)
SURVIVAL_BREAK = 0.75  # survival axis: log below, linear above, so 0.75..1 is readable
TOP_THROUGHPUT = 6  # fastest timed cases per source


def survival_plot(plt, recs: list[dict]) -> bytes:
    """Survival (share) per source, one panel row per transform, a bar for every
    output dtype measured for that transform; a source that lacks one is
    annotated "not measured".  The variant plotted is the first of its source,
    transform and output that is not a failure demonstration (hatched when
    only a demonstration was measured)."""
    transforms = list(dict.fromkeys(r["transform"] for r in recs))
    panels = []
    for t in transforms:
        rs = [r for r in recs if r["transform"] == t]
        outs = [o for o in PLOT_OUTPUTS if any(r["output_dtype"] == o for r in rs)]
        outs += [o for o in dict.fromkeys(r["output_dtype"] for r in rs) if o not in outs]
        sources = list(dict.fromkeys(r["source"] for r in rs))
        pick = {}
        for r in rs:
            k = (r["source"], r["output_dtype"])
            if k not in pick or (V.demonstration(pick[k]) and not V.demonstration(r)):
                pick[k] = r
        panels.append((t, outs, sources, pick))
    heights = [max(1.2, 0.16 * len(src) * len(outs) + 0.6) for _, outs, src, _ in panels] or [1.0]
    gap, margin = 0.9, 0.7  # inches between panel rows, above and below
    total = sum(heights) + gap * (len(heights) - 1) + 2 * margin
    fig, axes = plt.subplots(
        len(heights), 2, figsize=(11, total), squeeze=False,
        gridspec_kw={"height_ratios": heights, "width_ratios": [1, 1.6], "wspace": 0.03,
                     "hspace": gap / (sum(heights) / len(heights)), "top": 1 - margin / total, "bottom": margin / total},
    )
    colors = dict(zip(PLOT_OUTPUTS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    floor = 1e-6
    for (t, outs, sources, pick), (lo_ax, hi_ax) in zip(panels, axes):
        h = 0.8 / len(outs)
        for k, o in enumerate(outs):
            pos = np.arange(len(sources)) + (k - (len(outs) - 1) / 2) * h
            vals = [pick[(s, o)]["survival"] if (s, o) in pick else np.nan for s in sources]
            hatch = ["//" if (s, o) in pick and V.demonstration(pick[(s, o)]) else "" for s in sources]
            for ax in (lo_ax, hi_ax):
                bars = ax.barh(pos, [max(v, floor) if v == v else 0 for v in vals], height=h, label=o, color=colors.get(o))
                for bar, hh in zip(bars, hatch):
                    bar.set_hatch(hh)
            for p, v in zip(pos, vals):
                if v != v:
                    hi_ax.text(SURVIVAL_BREAK + 0.005, p, f"{o}: not measured", va="center", fontsize=6, color="0.4")
                elif v < 1:  # the figure itself, as the table prints it
                    ax = hi_ax if v >= SURVIVAL_BREAK else lo_ax
                    ax.text(max(v, floor), p, f" {v:.4g}", va="center", fontsize=6)
        lo_ax.set_xscale("log")
        lo_ax.set_xlim(floor, SURVIVAL_BREAK)
        hi_ax.set_xlim(SURVIVAL_BREAK, 1.0)
        lo_ax.set_yticks(np.arange(len(sources)), sources, fontsize=8)
        hi_ax.set_yticks([])
        for ax in (lo_ax, hi_ax):
            ax.invert_yaxis()
        lo_ax.spines["right"].set_visible(False)
        hi_ax.spines["left"].set_linestyle(":")
        lo_ax.set_title(f"{t}: survival (share), log below {SURVIVAL_BREAK:g}", fontsize=9, loc="left")
        hi_ax.set_title(f"linear from {SURVIVAL_BREAK:g} to 1", fontsize=9, loc="left")
        hi_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    axes[-1][0].set_xlabel("survival (share): distinct out / distinct in")
    axes[-1][1].set_xlabel("hatched = failure demonstration; 0 plotted at the left edge")
    fig.suptitle("survival (share) by output dtype", x=0.1, y=1 - 0.25 / total, ha="left")
    return png(fig)


def throughput_plot(plt, recs: list[dict]) -> bytes:
    """M elem/s of the fastest timed cases of each source (a panel per source),
    with the roofline (share of copy) written beside each bar."""
    groups: dict[str, list[dict]] = {}
    for r in recs:
        if V.timed(r):
            groups.setdefault(r["source"], []).append(r)
    groups = {s: sorted(rs, key=lambda r: -V.num(r["elements_per_s"]))[:TOP_THROUGHPUT] for s, rs in groups.items()}
    if not groups:
        fig, ax = plt.subplots(figsize=(9, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, f"M elem/s: no source timed with at least {V.MIN_TIMED_N:,} elements", ha="center", va="center")
        return png(fig)
    fig, axes = plt.subplots(len(groups), 1, figsize=(9, sum(0.3 * len(rs) + 0.7 for rs in groups.values())), squeeze=False,
                             gridspec_kw={"height_ratios": [len(rs) + 1 for rs in groups.values()]})
    top = max(V.num(r["elements_per_s"]) for rs in groups.values() for r in rs) / 1e6
    for (s, rs), ax in zip(groups.items(), axes[:, 0]):
        v = [V.num(r["elements_per_s"]) / 1e6 for r in rs]
        ax.barh(np.arange(len(rs)), v, color="tab:blue")
        ax.set_yticks(np.arange(len(rs)), [V.variant_text(r) for r in rs], fontsize=8)
        for i, (x, r) in enumerate(zip(v, rs)):
            ax.text(x, i, f" {x:.4g} (roofline {V.num(r['roofline_fraction']):.2f})", va="center", fontsize=7)
        ax.set_xlim(0, top * 1.35)
        ax.invert_yaxis()
        ax.set_title(f"{s} (n = {rs[0]['n']:,})", fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("M elem/s (millions of elements per second); roofline = share of a parallel copy's speed")
    fig.suptitle(f"M elem/s: the {TOP_THROUGHPUT} fastest timed cases per source", x=0.1, ha="left")
    fig.tight_layout()
    return png(fig)
