"""The report's "Library conventions" section: each row is kernels.measure of that
preset on that domain, refusals are listed with the library's message, and rows
are sorted by what they lose.  (Every convention of the table runs in tests/test_asv.py.)"""

from __future__ import annotations

import kernels
from kernels import report_presets as RP

SPECS = [
    ("ImageNet -> float16", "torchvision.ToDtype(dtype=float32, scale=True); "
     "torchvision.Normalize(mean=imagenet, std=imagenet); cast(output_dtype=float16)"),
    ("torchvision float -> uint8", "torchvision.ToDtype(dtype=uint8, scale=True)"),
    ("ONNX DynamicQuantizeLinear", "onnx.DynamicQuantizeLinear"),
    ("not a preset", "nosuchlib.Thing"),
]


def test_conventions_rows_are_measures_sorted_by_loss(monkeypatch):
    monkeypatch.setattr(RP, "SPECS", SPECS)
    conv = RP.run_conventions(quick=True)
    assert [m["spec"] for m in conv["missing"]] == ["nosuchlib.Thing"]
    # DynamicQuantizeLinear takes float32 only: uint8 and float16 are refused, in onnxruntime's words
    assert {(r["label"], r["domain"]) for r in conv["refused"]} == {
        ("ONNX DynamicQuantizeLinear", "uint8"), ("ONNX DynamicQuantizeLinear", "float16 [0,1]")}
    assert all(("uint8" if r["domain"] == "uint8" else "float16") in r["reason"] for r in conv["refused"])
    rows = {(d["label"], d["domain"]): d for d in conv["rows"]}
    assert set(rows) == {(label, dom) for label, _ in SPECS[:2] for dom in ("uint8", "float16 [0,1]")}
    survival = [d["survival"] for d in conv["rows"]]
    assert survival == sorted(survival)
    # each row is the measure of that pipeline on every value of the domain (3 channels for ImageNet)
    dom = kernels.domain("float16", 0, 1)
    r = kernels.measure(dom.values(), SPECS[1][1], repeat=1, exact_points=4096)
    d = rows[("torchvision float -> uint8", "float16 [0,1]")]
    assert (d["distinct_in"], d["distinct_out"], d["roundtrip_exact"]) == (r.distinct_in, r.distinct_out, r.roundtrip_exact)
    # torchvision's x.mul(255.999).to(uint8): float16 1.0 rounds to 256 and wraps to 0 (pytorch/vision#6799)
    y = kernels.pipeline(SPECS[1][1]).transform(dom.values())
    assert y[-1] == 0 and dom.values()[-1] == 1.0
    md = "\n".join(RP.render_conventions({"conventions": conv}))
    assert "## Library conventions" in md and "ImageNet -> float16" in md and "nosuchlib.Thing" in md
