"""sensitivity: the one-step move counts against a naive loop over every sample and
feature, the two traps (float32 keeps every move of uint8-derived data visible;
float16 erases most one-count moves of a 16-bit image, as an independent count
says), the data it builds, determinism, the CLI and the report section."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kernels as K
from kernels import report as R
from kernels import sensitivity as S
from kernels.cli import main
from kernels.report_sensitivity import pct, render_sensitivity_html, render_sensitivity_markdown, summary

# ---------------------------------------------------------------- an independent reference


def _next_value(col: np.ndarray, v):
    """The next larger distinct value of the column, or the next smaller from the largest (plain Python)."""
    values = sorted(set(col.tolist()))
    k = values.index(v)
    return values[k + 1] if k + 1 < len(values) else values[k - 1]


def _naive_proba(row32: np.ndarray, w: np.ndarray, b: np.ndarray) -> list:
    """Float32 scalar arithmetic, feature by feature, as the module docstring states."""
    z = []
    for k in range(b.size):
        acc = np.float32(b[k])
        for j in range(row32.size):
            acc = np.float32(acc + np.float32(row32[j] * w[k, j]))
        z.append(acc)
    one = np.float32(1)
    if len(z) == 1:
        p1 = np.float32(one / np.float32(one + np.exp(np.float32(-z[0]))))
        return [np.float32(one - p1), p1]
    m = max(z)
    e = [np.exp(np.float32(zk - m)) for zk in z]
    s = e[0]
    for ek in e[1:]:
        s = np.float32(s + ek)
    return [np.float32(ek / s) for ek in e]


def _bits(v) -> int:
    return int(np.asarray(v).view(f"u{np.asarray(v).dtype.itemsize}"))


def naive_counts(x: np.ndarray, y: np.ndarray, spec: str, reference: str, top=None, seed=0):
    """(moves, input, output, class unchanged) by a loop over every sample and feature,
    each moved sample pushed through the pipeline on its own."""
    pipe = K.pipeline(spec).fit(x)
    model = S.train(K.pipeline(reference).fit(x).transform(x), y, seed)
    w, b = model.coef_.astype(np.float32), model.intercept_.astype(np.float32)
    moves = same_in = same_out = same_cls = 0
    for i in range(x.shape[0]):
        base = pipe.transform(x[i : i + 1])[0]
        p = _naive_proba(base.astype(np.float32), w, b)
        for j in range(x.shape[1]):
            col = x[:, j]
            if top is None:
                if len(set(col.tolist())) < 2:
                    continue  # no step for a constant feature
                v = _next_value(col, x[i, j])
            else:
                v = int(x[i, j]) - 1 if int(x[i, j]) >= top else int(x[i, j]) + 1
            row = x[i].copy()
            row[j] = v
            stored = pipe.transform(row[None, :])[0]
            moves += 1
            if _bits(stored[j]) == _bits(base[j]):
                same_in += 1
            q = _naive_proba(stored.astype(np.float32), w, b)
            same_out += all(_bits(a) == _bits(c) for a, c in zip(p, q))
            same_cls += int(np.argmax(p)) == int(np.argmax(q))
    return moves, same_in, same_out, same_cls


def _float_file(tmp_path, classes: int):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(30, 4)).round(1)  # repeated values: "next distinct value" matters
    x[:, 1] = 1 + rng.integers(0, 12, 30) * 1e-4  # a tight cluster and one outlier: neighbours merge in 16 bits
    x[0, 1] = 1000.0
    x[:, 2] = 3.25  # a constant feature: no step
    x[:, 3] = rng.uniform(0, 1, 30).round(3)  # fine steps: bfloat16 merges some
    score = x[:, 0] - 40 * (x[:, 1] - 1) + x[:, 3]
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    path = tmp_path / f"float{classes}.npz"
    np.savez(path, X=x, y=y)
    return path, x, y


def _int_file(tmp_path, dtype):
    rng = np.random.default_rng(3)
    top = np.iinfo(dtype).max
    x = rng.integers(0, top + 1, size=(24, 3)).astype(dtype)
    x[0, 0] = x[5, 1] = top  # the top of the range moves down
    x[1, 2] = 0
    y = (x.astype(np.int64).sum(axis=1) > np.median(x.astype(np.int64).sum(axis=1))).astype(np.int64)
    path = tmp_path / f"{np.dtype(dtype).name}.npz"
    np.savez(path, X=x, y=y)
    return path, x, y, top


@pytest.mark.parametrize("spec", [
    "standardize(axis=0, output_dtype=float16)",
    "standardize(axis=0, output_dtype=bfloat16)",
    "minmax(axis=0, output_dtype=float16)",
    "standardize(axis=0, output_dtype=float32)",
], ids=["standardize-float16", "standardize-bfloat16", "minmax-float16", "standardize-float32"])
@pytest.mark.parametrize("classes", [2, 3], ids=["binary", "3-classes"])
def test_float_data_matches_a_naive_loop(tmp_path, spec, classes):
    path, x, y = _float_file(tmp_path, classes)
    (row,) = S.sensitivity([str(path)], [spec])
    moves, n_in, n_out, n_cls = naive_counts(x, y, spec, row.reference)
    assert row.moves == moves == x.shape[0] * (x.shape[1] - 1)  # the constant feature has no step
    assert (row.input_unchanged, row.output_unchanged, row.class_unchanged) == (n_in / moves, n_out / moves, n_cls / moves)
    assert (row.n_samples, row.n_features) == x.shape


@pytest.mark.parametrize("dtype, spec", [
    (np.uint16, "scale(divisor=65535, output_dtype=float16)"),
    (np.uint16, "minmax(feature_range=(0, 255), output_dtype=uint8)"),
    (np.uint8, "scale(divisor=255, output_dtype=bfloat16)"),
], ids=["uint16-scale-float16", "uint16-minmax-uint8", "uint8-scale-bfloat16"])
def test_integer_data_matches_a_naive_loop(tmp_path, dtype, spec):
    path, x, y, top = _int_file(tmp_path, dtype)
    (row,) = S.sensitivity([str(path)], [spec])
    moves, n_in, n_out, n_cls = naive_counts(x, y, spec, row.reference, top=top)
    assert row.moves == moves == x.size
    assert (row.input_unchanged, row.output_unchanged, row.class_unchanged) == (n_in / moves, n_out / moves, n_cls / moves)


def test_float32_probabilities_are_the_models():
    """The float32 formula is scikit-learn's predict_proba, up to float32 rounding."""
    for name in ("breast_cancer", "wine"):
        task = S.load_task(name)
        x_ref = K.pipeline("standardize(axis=0, compute_dtype=float64, output_dtype=float64)").fit(task.x).transform(task.x)
        model = S.train(x_ref, task.y)
        m32 = S.Float32Model.of(model)
        p = m32.proba(m32.prefix_logits(x_ref.astype(np.float32), keep=False)[1])
        assert p.dtype == np.float32
        np.testing.assert_allclose(p, model.predict_proba(x_ref), atol=1e-5)


# ---------------------------------------------------------------- the traps


@pytest.mark.parametrize("name, divisor", [("camera", 255), ("camera12", 4095), ("camera16", 65535)],
                         ids=["camera-8bit", "camera-12bit", "camera-16bit"])
def test_trap_float32_keeps_every_move_of_uint8_derived_data_visible(name, divisor):
    (row,) = S.sensitivity([name], [f"scale(divisor={divisor}, output_dtype=float32)"])
    assert row.input_unchanged == 0.0
    assert row.output_unchanged >= row.input_unchanged and row.class_unchanged >= row.output_unchanged


def test_trap_float16_erases_most_one_count_moves_of_the_16bit_camera():
    """An independent count on the whole image (every pixel is one move; patches only
    regroup them): numpy's float32 x / 65535 rounded to float16, before and after one count."""
    from skimage import data

    x = data.camera().astype(np.int64) * 257
    moved = np.where(x >= 65535, x - 1, x + 1)

    def stored(v):
        return (v.astype(np.float32) / np.float32(65535)).astype(np.float16)

    share = float(np.mean(stored(x) == stored(moved)))
    exact = float(np.mean((x / 65535).astype(np.float16) == (moved / 65535).astype(np.float16)))
    (row,) = S.sensitivity(["camera16"], ["scale(divisor=65535, output_dtype=float16)"])
    assert row.input_unchanged == share
    assert abs(share - exact) < 1e-3  # float32 arithmetic first changes at most a few ties
    assert share > 0.5  # most moves never reach the model
    assert row.output_unchanged >= row.input_unchanged


# ---------------------------------------------------------------- the data


def test_cameras_are_exact_rescales_cut_into_patches():
    from skimage import data
    from skimage.util import view_as_blocks

    image = data.camera()
    x8 = image.astype(np.int64)
    assert np.array_equal(S.rescale_camera(image, 16), x8 * 257)
    assert np.array_equal(S.rescale_camera(image, 12), np.rint(x8 * 4095 / 255).astype(np.int64))  # 255 odd: no ties
    assert np.unique(S.rescale_camera(image, 12)).size == np.unique(image).size  # one-to-one
    for name, scaled in (("camera", image), ("camera12", S.rescale_camera(image, 12)), ("camera16", S.rescale_camera(image, 16))):
        task = S.load_task(name)
        assert np.array_equal(task.x, view_as_blocks(scaled, (8, 8)).reshape(-1, 64))
        sums = view_as_blocks(x8, (8, 8)).sum(axis=(2, 3)).reshape(-1)
        assert np.array_equal(task.y, (sums > np.median(sums)).astype(np.int64))


def test_one_step_float_and_integer():
    x = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 2.0], [1.0, 5.0, 7.0], [9.0, 5.0, 7.0]])
    moved, movable = S.one_step(x)
    assert movable.tolist() == [True, False, True]
    assert moved[:, 0].tolist() == [3.0, 9.0, 3.0, 3.0] and moved[:, 2].tolist() == [7.0, 7.0, 2.0, 2.0]
    xi = np.array([[0, 4095], [4094, 7]], np.uint16)
    moved, movable = S.one_step(xi, top=4095)
    assert moved.dtype == np.uint16 and moved.tolist() == [[1, 4094], [4095, 8]] and movable.all()


def test_reference_drops_casts_and_computes_in_float64():
    ref = S.reference_pipeline(K.pipeline("scale(divisor=4095, compute_dtype=float16); cast(output_dtype=bfloat16)"))
    assert ref.spec == "scale(divisor=4095, compute_dtype=float64, output_dtype=float64)"
    assert S.reference_pipeline(K.pipeline("cast(output_dtype=float16)")).spec == "cast(output_dtype=float64)"


def test_runs_are_deterministic():
    args = (["breast_cancer", "camera12"], ["standardize(axis=0, output_dtype=bfloat16)"])
    a, b = S.sensitivity(*args), S.sensitivity(*args)
    assert a == b and [r.to_dict() for r in a] == [r.to_dict() for r in b]


@pytest.mark.parametrize("data, pipelines, match", [
    (["no_such_set"], None, "breast_cancer, wine, digits"),
    (["wine"], ["standardise(axis=0)"], "unknown step 'standardise'"),
    (["wine"], [], "pipelines= is empty"),
], ids=["unknown-name", "bad-spec", "no-pipelines"])
def test_bad_arguments_raise_value_error(data, pipelines, match):
    with pytest.raises(ValueError, match=match):
        S.sensitivity(data, pipelines)


def test_bad_files_raise_value_error(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 2)))
    with pytest.raises(ValueError, match="needs labels"):
        S.sensitivity([str(tmp_path / "x.npy")])
    np.savez(tmp_path / "nolabels.npz", X=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="no array y"):
        S.sensitivity([str(tmp_path / "nolabels.npz")])
    np.savez(tmp_path / "oneclass.npz", X=np.arange(6.0).reshape(3, 2), y=np.zeros(3))
    with pytest.raises(ValueError, match="one class"):
        S.sensitivity([str(tmp_path / "oneclass.npz")])


# ---------------------------------------------------------------- CLI


def test_cli_json(capsys):
    assert main(["sensitivity", "--data", "wine", "--pipeline", "minmax(axis=0, output_dtype=bfloat16)", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema"] == S.SCHEMA
    (row,) = out["rows"]
    assert row == S.sensitivity(["wine"], ["minmax(axis=0, output_dtype=bfloat16)"])[0].to_dict()


@pytest.mark.parametrize("argv, match", [
    (["sensitivity", "--data", "no_such_set"], "is not one of"),
    (["sensitivity", "--data", "wine", "--pipeline", "cast(dtype=float16)"], "--pipeline step 1"),
    (["sensitivity", "--data", "missing.npz"], "missing.npz"),
], ids=["unknown-data", "bad-pipeline", "missing-file"])
def test_cli_errors_are_one_line_exit_2(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and match in err and "Traceback" not in err


# ---------------------------------------------------------------- the report section


@pytest.fixture(scope="module")
def fixture_rows():
    """Real rows (the renderers never see pasted figures)."""
    rows = S.sensitivity(["wine"], ["standardize(axis=0, output_dtype=float32)", "minmax(axis=0, output_dtype=bfloat16)"])
    return [r.to_dict() for r in rows]


def _report(rows=None) -> dict:
    records = [dict(K.measure(K.domain("uint8"), "minmax", output_dtype="float16", repeat=1, name="uint8").to_dict(),
                    kind="domain", label="minmax")]
    rep = {"schema": R.SCHEMA, "record_schema": K.SCHEMA, "mode": "quick", "generated": "2026-01-01T00:00:00+00:00",
           "provenance": records[0]["provenance"], "records": records, "skipped": [],
           "recommendations": R.recommendations(records)}
    if rows is not None:
        rep["sensitivity"] = rows
    return rep


def test_section_figures_come_from_the_rows(fixture_rows):
    md = render_sensitivity_markdown(fixture_rows)
    worst = max(fixture_rows, key=lambda r: r["input_unchanged"])
    assert md.startswith("## A model in the loop")
    assert f"erases {pct(worst['input_unchanged'])}% of the moves" in md and worst["pipeline"] in md
    assert f"{sum(r['moves'] for r in fixture_rows):,} moves in all" in md
    assert summary(fixture_rows) in md
    for r in fixture_rows:
        assert f"| {r['data']} | `{r['pipeline']}` | {r['storage_dtype']} | {r['moves']:,} | {pct(r['input_unchanged'])} |" in md
    page = render_sensitivity_html(fixture_rows)
    assert "<h2>A model in the loop</h2>" in page and f"<code>{worst['pipeline']}</code>" in page
    assert render_sensitivity_markdown([]) == "" and render_sensitivity_html([]) == ""


def test_report_renders_the_section_and_old_reports_still_load(fixture_rows, tmp_path):
    with_rows = _report(fixture_rows)
    assert "## A model in the loop" in R.render_markdown(with_rows)
    assert "<h2>A model in the loop</h2>" in R.render_html(with_rows, {})
    old = tmp_path / "report.json"
    old.write_text(json.dumps(_report()))  # written before the section existed
    loaded = R.load_report(old)
    assert "A model in the loop" not in R.render_markdown(loaded) and "A model in the loop" not in R.render_html(loaded, {})
    assert json.loads(json.dumps(with_rows, allow_nan=False))["sensitivity"] == fixture_rows  # JSON-ready


def test_percentages_never_round_to_the_ends():
    assert pct(1.0) == "100.00" and pct(0.0) == "0.00" and pct(0.5) == "50.00"
    assert pct(1 - 4e-6) != "100.00" and pct(3e-6) != "0.00"


def test_run_restores_the_thread_count():
    import numba

    before = numba.get_num_threads()
    S.sensitivity(["wine"], ["minmax(axis=0, output_dtype=float16)"])
    assert numba.get_num_threads() == before


def test_a_model_that_does_not_converge_is_an_error(monkeypatch):
    monkeypatch.setattr(S, "MAX_ITER", 1)  # one lbfgs iteration: never converged
    task = S.load_task("wine")
    with pytest.raises(ValueError, match="did not converge in 1 iterations"):
        S.train(task.x, task.y)


def test_without_scikit_learn_the_cli_says_so_and_the_report_leaves_the_section_out(monkeypatch, capsys):
    import sys

    from kernels.report_sensitivity import run_sensitivity

    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.setitem(sys.modules, name, None)  # an import of it raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn", None)
    assert main(["sensitivity", "--data", "wine"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "pip install scikit-learn" in err
    assert run_sensitivity(quick=True) == []
