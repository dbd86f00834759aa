"""The report's "Library conventions" section (layer 7): every preset, measured.

Each preset runs on the uint8, 12-bit and uint16 domains and on every float16
value in [0, 1] (the inputs its library accepts; a refusal is listed, not
hidden), with survival, round trip, error against the exact ideal and speed,
sorted by what each loses.  Per-channel pipelines (ImageNet) get the domain
in each of three channels.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from . import presets
from .domain import domain
from .measure_pipeline import measure_pipeline
from .pipeline import pipeline

# (label, spec); a spec whose preset is not in the registry is listed as missing
SPECS = [
    ("torchvision uint8 -> float32", "torchvision.ToDtype(dtype=float32, scale=True)"),
    ("torchvision -> float16", "torchvision.ToDtype(dtype=float16, scale=True)"),
    ("torchvision float -> uint8", "torchvision.ToDtype(dtype=uint8, scale=True)"),
    ("ImageNet -> float16", "torchvision.ToDtype(dtype=float32, scale=True); "
     "torchvision.Normalize(mean=imagenet, std=imagenet); cast(output_dtype=float16)"),
    ("ImageNet -> bfloat16", "torchvision.ToDtype(dtype=float32, scale=True); "
     "torchvision.Normalize(mean=imagenet, std=imagenet); cast(output_dtype=bfloat16)"),
    ("torch .to(float16)", "torch.to(dtype=float16)"),
    ("sklearn MinMaxScaler", "sklearn.MinMaxScaler"),
    ("sklearn StandardScaler", "sklearn.StandardScaler"),
    ("sklearn MaxAbsScaler", "sklearn.MaxAbsScaler"),
    ("sklearn RobustScaler", "sklearn.RobustScaler"),
    ("skimage img_as_float32", "skimage.img_as_float32"),
    ("skimage img_as_ubyte", "skimage.img_as_ubyte"),
    ("skimage img_as_uint", "skimage.img_as_uint"),
    ("OpenCV normalize MINMAX", "opencv.normalize(alpha=0, beta=1, norm_type=NORM_MINMAX, dtype=CV_32F)"),
    ("OpenCV convertTo 8U", "opencv.convertTo(rtype=CV_8U, alpha=255)"),
    ("OpenCV convertScaleAbs", "opencv.convertScaleAbs(alpha=255)"),
    ("ONNX DynamicQuantizeLinear", "onnx.DynamicQuantizeLinear"),
    ("ONNX QuantizeLinear 1/255", "onnx.QuantizeLinear(y_scale=0.00392156862745098)"),
    ("Keras Rescaling 1/255", "keras.Rescaling(scale=0.00392156862745098)"),
    ("albumentations ToFloat", "albumentations.ToFloat"),
    ("albumentations FromFloat", "albumentations.FromFloat"),
    ("albumentations Normalize", "albumentations.Normalize"),
]


def _domains(quick: bool):
    out = [("uint8", domain("uint8")), ("float16 [0,1]", domain("float16", 0, 1))]
    if not quick:  # each domain compiles and checks every preset again: the full report only
        out[1:1] = [("12-bit", domain("uint16", 0, 4095)), ("uint16", domain("uint16"))]
    return out


def _source(values: np.ndarray, nfeat: int, per_feature: bool) -> np.ndarray:
    if nfeat > 1:
        return np.ascontiguousarray(np.tile(values[:, None], (1, nfeat)))
    return values.reshape(-1, 1) if per_feature else values


def convention_record(pipe, dname: str, dom, *, quick: bool = False):
    """The Record of one convention on one domain; raises the library's refusal
    (TypeError / ValueError) when it does not take that input."""
    per_feature = any(s.kind == "preset" and presets.get(s.name).per_feature for s in pipe.steps)
    values = dom.values()
    fitted = pipe.fit(_source(values, 1, per_feature)) if pipe.needs_fit else pipe
    ops = fitted.program(dom.row.name)[0]
    nfeat = max([c.size for op in ops for c in op.const] or [1])
    x = _source(values, nfeat, per_feature)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return measure_pipeline(x, pipe, repeat=1 if quick else 3, exact_points=4096 if quick else 65536,
                                name=dname, distinct_values=True)


def run_conventions(quick: bool = False) -> dict:
    """{"rows": [...], "missing": [...], "refused": [...]} for the report."""
    rows, missing, refused = [], [], []
    for label, spec in SPECS:
        try:
            pipe = pipeline(spec)
        except ValueError:
            missing.append({"label": label, "spec": spec})
            continue
        for dname, dom in _domains(quick):
            try:
                r = convention_record(pipe, dname, dom, quick=quick)
            except (TypeError, ValueError) as e:
                refused.append({"label": label, "domain": dname, "reason": str(e).splitlines()[0]})
                continue
            d = r.to_dict()
            d["label"], d["domain"] = label, dname
            rows.append(d)
    rows.sort(key=lambda d: (_f(d["survival"]), _f(d["roundtrip_exact"]), -_f(d["max_ulp_error"])))
    return {"rows": rows, "missing": missing, "refused": refused}


def _f(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan if v == "nan" else (math.inf if v == "inf" else -math.inf)


def _pct(v) -> str:
    v = _f(v)
    return "-" if math.isnan(v) else f"{100 * v:.2f}%"


def render_conventions(report: dict) -> list[str]:
    conv = report.get("conventions")
    if not conv:
        return []
    lines = [
        "",
        "## Library conventions",
        "",
        "Each library's own arithmetic (presets, verified bit for bit against the library in the tests), on every "
        "value of each domain; sorted by what each loses.  `lost at` names the step that merged values.",
        "",
        "| convention | input | output | distinct in -> out | survival | round trip | max ULP | lost at | Melem/s | roofline |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for d in conv["rows"]:
        worst = max(d.get("steps") or [{}], key=lambda s: s.get("collisions", 0))
        lost = f"`{worst.get('spec', '')}` ({worst.get('collisions', 0):,})" if worst.get("collisions") else "-"
        roof = _f(d.get("roofline_fraction"))
        lines.append(
            f"| {d['label']} | {d['domain']} | {d['output_dtype']} | {d['distinct_in']:,} -> {d['distinct_out']:,} | "
            f"{_pct(d['survival'])} | {_pct(d['roundtrip_exact'])} | {d['max_ulp_error']} | {lost} | "
            f"{_f(d['elements_per_s']) / 1e6:.0f} | {'-' if math.isnan(roof) or roof == -math.inf else f'{roof:.2f}'} |"
        )
    if conv["refused"]:
        lines += ["", "Refused by the library (its own error):", ""]
        lines += [f"- {r['label']} on {r['domain']}: {r['reason']}" for r in conv["refused"]]
    if conv["missing"]:
        lines += ["", "Not in the preset registry: " + ", ".join(f"`{m['spec']}`" for m in conv["missing"])]
    return lines
