"""Dask arrays (kernels/dask_array.py): every result equals the in-memory one on
``x.compute()``, bit for bit, on a 2-process distributed.LocalCluster and on the
threads scheduler; data larger than one chunk, chunks of different sizes, an
empty chunk, NaN-only chunks, per-feature statistics along a chunked axis."""

from __future__ import annotations

import os
import re
import sys

import cloudpickle
import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster

import kernels
from kernels import dask_array

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module

TIMING = {"seconds", "fit_seconds", "elements_per_s", "bytes_per_s", "roofline_fraction", "timed_elements",
          "chunk_sizes_computed"}


@pytest.fixture(scope="module")
def client():
    with dask.config.set({"distributed.scheduler.allowed-failures": 3}):
        cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                               silence_logs=50)
        c = Client(cluster, set_as_default=False)
        try:
            yield c
        finally:
            c.close()
            cluster.close()


@pytest.fixture(params=["distributed", "threads"])
def scheduler(request, client):
    """Both schedulers (the cheap tests)."""
    with dask.config.set(scheduler=client.get if request.param == "distributed" else "threads"):
        yield request.param


@pytest.fixture
def distributed(client):
    with dask.config.set(scheduler=client.get):
        yield client


@pytest.fixture
def threads():
    with dask.config.set(scheduler="threads"):
        yield


def irregular(x, sizes=(3000, 0, 7001, 4096)):
    """``x`` as a dask array of chunks of different sizes (an empty one among them), cycling ``sizes``."""
    chunks, left, k = [], x.shape[0], 0
    while left:
        c = min(sizes[k % len(sizes)], left)
        chunks.append(c)
        left -= c
        k += 1
    return da.from_array(x, chunks=(tuple(chunks),) + x.shape[1:])


def bits(a):
    a = np.asarray(a)
    return a.view(f"u{a.dtype.itemsize}") if a.dtype.kind == "f" or a.dtype.itemsize <= 2 else a


def same_params(a, b):
    assert a.nfeat == b.nfeat and set(a.stats) == set(b.stats)
    for k in a.stats:
        np.testing.assert_array_equal(bits(np.asarray(a.stats[k], np.float64)), bits(np.asarray(b.stats[k], np.float64)),
                                      err_msg=k)


def same_record(a, b):
    da_, db = a.to_dict(), b.to_dict()
    diff = {k: (da_[k], db[k]) for k in da_ if k not in TIMING and da_[k] != db[k]}
    assert not diff


def data(dtype, n=70_000, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "uint8":
        return rng.integers(0, 256, n).astype(np.uint8)
    if dtype == "uint16":
        return rng.integers(0, 65536, n).astype(np.uint16)
    x = (rng.normal(3.0, 7.0, n) * rng.choice([1.0, 1e-3, 1e3], n)).astype(dtype)
    x[:5] = [0.0, -0.0, 1.0, -1.0, 0.5]
    return x


# --------------------------------------------------------------------- fit


@pytest.mark.parametrize("dtype,accumulator", [("float64", a) for a in kernels.ACCUMULATORS]
                         + [("float32", "pairwise"), ("uint16", "welford")])
def test_standardize_bit_for_bit(client, dtype, accumulator):
    x = data(dtype, 150_000)
    with dask.config.set(scheduler=client.get):
        got = kernels.fit(irregular(x), "standardize", accumulator=accumulator)
    same_params(kernels.fit(x, "standardize", accumulator=accumulator), got)


@pytest.mark.parametrize("acc_dtype", ["float16"])  # a sum that overflows: inf/NaN statistics alike
def test_standardize_narrow_accumulator(threads, acc_dtype):
    x = data("float32", 80_000)
    with np.errstate(all="ignore"):
        same_params(kernels.fit(x, "standardize", accumulator="welford", acc_dtype=acc_dtype),
                    kernels.fit(irregular(x), "standardize", accumulator="welford", acc_dtype=acc_dtype))


@pytest.mark.parametrize("transform", ["minmax", "maxabs", "quantize"])
def test_minmax_exact(distributed, transform):
    x = data("float16", 40_000)
    x[7], x[9] = -np.inf if transform == "minmax" else 2.0, 65504.0
    kw = {"nan_policy": "propagate"} if transform == "minmax" else {}
    same_params(kernels.fit(x, transform, **kw), kernels.fit(irregular(x), transform, **kw))


def test_split_every_changes_nothing(threads):
    x = data("float64", 300_000)
    ref = kernels.fit(x, "standardize", accumulator="kahan")
    for s in (2, 3, 16):
        same_params(ref, dask_array.fit(irregular(x, (70_000, 0, 65_536)), "standardize", accumulator="kahan",
                                                split_every=s))


@pytest.mark.parametrize("nan_policy", kernels.NAN_POLICIES)
def test_nan_only_chunks(scheduler, nan_policy):
    x = data("float64", 20_000)
    x[3000:10001] = np.nan  # the second chunk of irregular() and more: NaN only
    dx = irregular(x)
    if nan_policy == "raise":
        with pytest.raises(ValueError) as mem:
            kernels.fit(x, "standardize")
        with pytest.raises(ValueError) as dsk:
            kernels.fit(dx, "standardize")
        assert str(mem.value) == str(dsk.value)
        return
    for t in ("standardize", "minmax"):
        same_params(kernels.fit(x, t, nan_policy=nan_policy), kernels.fit(dx, t, nan_policy=nan_policy))
    d = kernels.distinct(dx)
    assert d.nan == kernels.distinct(x).nan == 7001


def test_all_nan_feature_propagate(threads):
    x = data("float32", 9000).reshape(-1, 3)
    x[:, 1] = np.nan
    dx = da.from_array(x, chunks=((1000, 0, 2000), (1, 2)))
    for t in ("standardize", "minmax"):
        same_params(kernels.fit(x, t, axis=0, nan_policy="propagate"), kernels.fit(dx, t, axis=0, nan_policy="propagate"))


@pytest.mark.parametrize("accumulator", ["pairwise"])
def test_per_feature_along_chunked_axis(distributed, accumulator):
    x = data("float64", 3 * 50_000).reshape(-1, 3)
    dx = da.from_array(x, chunks=((5000, 0, 30_000, 15_000), (2, 1)))  # rows and features both chunked
    same_params(kernels.fit(x, "standardize", axis=0, accumulator=accumulator),
                kernels.fit(dx, "standardize", axis=0, accumulator=accumulator))
    img = data("float64", 64 * 50 * 3).reshape(64, 50, 3)  # channel-last images, per channel
    dimg = da.from_array(img, chunks=((10, 54), (20, 30), (3,)))
    same_params(kernels.fit(img, "standardize", axis=(0, 1)), kernels.fit(dimg, "standardize", axis=(0, 1)))


# --------------------------------------------------------------------- distinct


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16", "float32", "float64"])
def test_distinct(scheduler, dtype):
    x = data(dtype, 60_000)
    if x.dtype.kind == "f":
        x[100:110] = np.nan
        x[200] = -0.0
    a, b = kernels.distinct(x), kernels.distinct(irregular(x))
    assert (a.dtype, a.nan) == (b.dtype, b.nan)
    np.testing.assert_array_equal(bits(a.values), bits(b.values))
    np.testing.assert_array_equal(a.counts, b.counts)


def test_distinct_2d(distributed):
    x = data("float32", 30_000).reshape(100, 300)
    a, b = kernels.distinct(x), kernels.distinct(da.from_array(x, chunks=(33, 77)))
    np.testing.assert_array_equal(bits(a.values), bits(b.values))
    np.testing.assert_array_equal(a.counts, b.counts)


def test_distinct_is_a_tree(client):
    """No task holds more than two blocks' runs: the graph is a tree, not dask's one-task unique."""
    from kernels.codecs import REGISTRY

    x = irregular(data("float64", 40_000))
    g = dict(dask_array.distinct_graph(x, REGISTRY["float64"], 2).dask)
    def named(prefix):
        return [k for k in g if str(k[0] if isinstance(k, tuple) else k).startswith(prefix)]

    assert len(named("_unique_block")) == x.npartitions and len(named("merge_distinct")) == x.npartitions - 1


# --------------------------------------------------------------------- transform


@pytest.mark.parametrize("transform,kw", [("minmax", {"output_dtype": "float16"}),
                                          ("standardize", {"formula": "fma"}),
                                          ("quantize", {"qdtype": "uint8"})])
def test_transform_bit_for_bit(scheduler, transform, kw):
    x = data("float32", 50_000)
    y = kernels.transform(irregular(x), transform, **kw)
    assert isinstance(y, da.Array)
    ref = kernels.transform(x, transform, **kw)
    got = y.compute()
    assert got.dtype == ref.dtype
    np.testing.assert_array_equal(bits(got), bits(ref))


def test_transform_per_feature_sliced_per_block(distributed):
    x = data("uint16", 4 * 10_000).reshape(-1, 4)
    dx = da.from_array(x, chunks=((3000, 0, 7000), (1, 3)))
    p = kernels.fit(dx, "standardize", axis=0)
    y = kernels.transform(dx, "standardize", params=p, output_dtype="float16")
    assert y.chunks == dx.chunks
    np.testing.assert_array_equal(bits(y.compute()), bits(kernels.transform(x, "standardize", axis=0, output_dtype="float16")))


def test_pipeline(distributed):
    x = (data("uint16", 3 * 20_000) % 500).reshape(-1, 3)  # few distinct values: the exact statistics are rationals
    dx = da.from_array(x, chunks=((5000, 15_000), (2, 1)))
    pipe = kernels.pipeline("standardize(axis=0)", "cast(output_dtype=float16)")
    mem, dsk = pipe.fit(x), pipe.fit(dx)
    y = dsk.transform(dx)
    assert isinstance(y, da.Array)
    np.testing.assert_array_equal(bits(y.compute()), bits(mem.transform(x)))
    same_record(kernels.measure_outputs(x, mem.transform(x), ideal=pipe, exact_points=256),
                kernels.measure_outputs(dx, y, ideal=pipe, exact_points=256))


@pytest.mark.parametrize("spec", ["standardize(axis=0); cast(output_dtype=float16)",
                                  "minmax(axis=0, output_dtype=bfloat16)",
                                  "scale(divisor=499, output_dtype=float16); cast(output_dtype=uint8)"])
def test_measure_pipeline(distributed, spec):
    """measure(dask array, pipeline): the steps fitted and the distinct inputs counted
    chunk by chunk; every field but the timings equals the in-memory Record's,
    per-step rows included."""
    x = (data("uint16", 3 * 20_000) % 500).reshape(-1, 3)
    dx = da.from_array(x, chunks=((5000, 0, 15_000), (2, 1)))
    mem, dsk = kernels.measure(x, spec, exact_points=256), kernels.measure(dx, spec, exact_points=256)
    assert dsk.steps and dsk.steps == mem.steps
    same_record(mem, dsk)


def _preset_data(dtype, shape, seed=0, nan=True):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if dtype == "uint16":
        return rng.integers(0, 65536, n).astype(np.uint16).reshape(shape)
    if dtype == "unit":  # float32 in [0, 1] (skimage's float images)
        return rng.random(n).astype(np.float32).reshape(shape)
    x = (rng.normal(3.0, 7.0, n) + 0.25).astype(dtype).reshape(shape)
    if nan:
        x.reshape(-1)[::997] = np.nan  # NaN in every feature (nanmin/nanmax omit it)
    return x


# every preset whose fit is a min/max: (spec, input dtype, shape); fitted on a chunked dask array
PRESET_FITS = [
    ("sklearn.MinMaxScaler()", "float32", (9_001, 3)),
    ("sklearn.MinMaxScaler(feature_range=(-1, 2), clip=True)", "float16", (3_000, 2, 3)),
    ("sklearn.MaxAbsScaler()", "uint16", (9_000, 2)),
    ("sklearn.MaxAbsScaler(clip=True)", "float64", (9_000, 3)),
    ("onnx.DynamicQuantizeLinear()", "finite", (20_000,)),
    ("opencv.normalize(norm_type=NORM_MINMAX, alpha=0, beta=255)", "uint16", (9_000, 3)),
    ("opencv.normalize(norm_type=NORM_INF)", "finite", (20_000,)),
    ("skimage.img_as_ubyte()", "uint16", (20_000,)),
    ("skimage.img_as_uint()", "unit", (20_000,)),
]
# every other fittable preset (or option) is refused by name, with the fix
PRESET_REFUSED = ["sklearn.StandardScaler()", "sklearn.RobustScaler()", "opencv.normalize(norm_type=NORM_L2)"]


def test_every_fittable_preset_is_covered_on_dask():
    from kernels.presets import PRESETS

    fittable = {n for n, p in PRESETS.items() if p.fit is not None}
    assert {s.split("(")[0] for s, _, _ in PRESET_FITS} | {s.split("(")[0] for s in PRESET_REFUSED} == fittable


@pytest.mark.parametrize("spec, dtype, shape", PRESET_FITS, ids=[c[0] for c in PRESET_FITS])
def test_preset_fit_on_a_dask_array_is_the_in_memory_fit(threads, spec, dtype, shape):
    """A preset whose fit is a min/max is fitted chunk by chunk: the same fitted
    state, bit for bit, and the same transform bits as on x.compute()."""
    x = _preset_data("float32" if dtype == "finite" else dtype, shape, nan=dtype != "finite")
    dx = irregular(x, (3000, 0, 4001, 2000))
    mem, dsk = kernels.pipeline(spec).fit(dx.compute()), kernels.pipeline(spec).fit(dx)
    a, b = mem.steps[0].state, dsk.steps[0].state
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(bits(np.asarray(a[k], np.float64)), bits(np.asarray(b[k], np.float64)), err_msg=k)
    y = dsk.transform(dx)
    assert isinstance(y, da.Array)
    np.testing.assert_array_equal(bits(y.compute()), bits(mem.transform(x)))


@pytest.mark.parametrize("spec", PRESET_REFUSED)
def test_preset_fit_needing_every_value_is_refused_on_dask_by_name(threads, spec):
    dx = da.from_array(_preset_data("float32", (4_000, 2)), chunks=1_000)
    name = spec.split("(")[0]
    with pytest.raises(TypeError, match=rf"{re.escape(name)}'s fit is not a min/max.*x\.compute\(\)"):
        kernels.pipeline(spec).fit(dx)


def test_preset_after_a_step_and_measured_on_a_distributed_dask_array(distributed):
    """The preset fitted on the previous step's output (chunk by chunk), and
    measure(dask array, preset pipeline) equals the in-memory Record."""
    x = (data("uint16", 3 * 20_000) % 500).reshape(-1, 3)
    dx = da.from_array(x, chunks=((5000, 0, 15_000), (2, 1)))
    spec = "cast(output_dtype=float32); sklearn.MinMaxScaler(feature_range=(-1, 1))"
    mem, dsk = kernels.pipeline(spec).fit(x), kernels.pipeline(spec).fit(dx)
    np.testing.assert_array_equal(bits(dsk.transform(dx).compute()), bits(mem.transform(x)))
    rm, rd = kernels.measure(x, spec, exact_points=256), kernels.measure(dx, spec, exact_points=256)
    assert rd.steps and rd.steps == rm.steps
    same_record(rm, rd)


def test_measure_pipeline_refuses_options(threads):
    dx = da.from_array(data("float32", 4096), chunks=1024)
    with pytest.raises(TypeError, match="takes no output_dtype"):
        kernels.measure(dx, "minmax; cast(output_dtype=float16)", output_dtype="float16")


# --------------------------------------------------------------------- measure


@pytest.mark.parametrize("dtype,transform,kw", [("uint16", "minmax", {"output_dtype": "float16"}),
                                                ("float32", "standardize", {"accumulator": "pairwise"}),
                                                ("uint8", "scale", {"output_dtype": "bfloat16"})])
def test_measure_record(distributed, dtype, transform, kw):
    kw = dict(kw, exact_points=512)
    x = data(dtype, 70_000)
    r = kernels.measure(irregular(x), transform, repeat=1, **kw)
    same_record(kernels.measure(x, transform, repeat=1, **kw), r)
    assert r.chunk_sizes_computed is False


def test_measure_per_feature(threads):
    x = data("uint16", 3 * 20_000).reshape(-1, 3)
    dx = da.from_array(x, chunks=((5000, 0, 15_000), (1, 2)))
    kw = dict(axis=0, output_dtype="float16", repeat=1, exact_points=512)
    same_record(kernels.measure(x, "minmax", **kw), kernels.measure(dx, "minmax", **kw))


def test_measure_outputs_not_a_function(threads):
    x = irregular(data("uint8", 20_000))
    y = da.from_array(np.arange(20_000, dtype=np.float32), chunks=x.chunks)
    with pytest.raises(ValueError, match="not a function of x"):
        kernels.measure_outputs(x, y)


def test_unknown_chunks_computed_once_and_said(distributed):
    x = data("uint16", 30_000)
    dx = irregular(x)
    masked = dx[dx > 1000]  # nan chunk sizes
    assert np.isnan(masked.shape[0])
    r = kernels.measure(masked, "minmax", repeat=1, exact_points=512)
    assert r.chunk_sizes_computed is True
    same_record(kernels.measure(x[x > 1000], "minmax", repeat=1, exact_points=512), r)
    same_params(kernels.fit(x[x > 1000], "standardize"), kernels.fit(masked, "standardize"))


# --------------------------------------------------------------------- bad input and failures


def _never(block):
    raise AssertionError("a task ran")


@pytest.mark.parametrize("dtype", ["complex64", "int32"])
def test_unsupported_dtype_before_any_task(scheduler, dtype):
    x = da.zeros(10_000, chunks=1000, dtype=dtype).map_blocks(_never, dtype=dtype)
    for call in (lambda a: kernels.fit(a, "minmax"), kernels.distinct, lambda a: kernels.transform(a, "minmax"),
                 lambda a: kernels.measure(a, "minmax")):
        with pytest.raises(TypeError) as mem:
            call(np.zeros(10, dtype))
        with pytest.raises(TypeError) as dsk:
            call(x)
        assert str(dsk.value) == str(mem.value)


def test_out_refused(threads):
    with pytest.raises(TypeError, match="out="):
        kernels.transform(irregular(data("uint8", 1000)), "minmax", out=np.empty(1000, np.float32))


def _kill_once(block, flag):
    if block.size and not os.path.exists(flag):
        open(flag, "w").close()
        os._exit(1)  # the worker process dies mid-computation
    return block


def test_worker_killed_is_retried(client, tmp_path):
    x = data("float64", 150_000)
    flag = str(tmp_path / "killed")
    dx = irregular(x).map_blocks(_kill_once, flag, dtype=x.dtype)
    with dask.config.set(scheduler=client.get):
        got = kernels.fit(dx, "standardize", accumulator="welford")
    assert os.path.exists(flag)  # a worker did die
    same_params(kernels.fit(x, "standardize", accumulator="welford"), got)


def test_no_dask_import_for_ndarrays():
    """dask is imported only inside functions (kernels imports without it): no module of
    the package imports it at its top level."""
    import ast
    from pathlib import Path

    for path in Path(kernels.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
        assert not [m for m in names if m.split(".")[0] in ("dask", "distributed", "zarr")], path


# --------------------------------------------------------------------- sources and the CLI


def test_zarr_and_npy_folder_sources(tmp_path, distributed):
    import zarr

    from kernels.sources import open_source as open_lazy

    x = data("uint16", 50_000)
    z = zarr.open_array(str(tmp_path / "store.zarr"), mode="w", shape=x.shape, chunks=(7000,), dtype=x.dtype)
    z[:] = x
    dz = open_lazy(str(tmp_path / "store.zarr"))
    assert isinstance(dz, da.Array) and dz.numblocks == (8,)
    same_params(kernels.fit(x, "standardize"), kernels.fit(dz, "standardize"))
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    for k, (a, b) in enumerate([(0, 20_000), (20_000, 20_000), (20_000, 50_000)]):  # an empty tile among them
        np.save(tiles / f"t{k}.npy", x[a:b])
    for src in (str(tiles), str(tiles / "t*.npy")):
        dn = open_lazy(src)
        assert dn.shape == x.shape and sum(c > 0 for c in dn.chunks[0]) == 2  # one chunk per non-empty file
        d = kernels.distinct(dn)
        np.testing.assert_array_equal(d.counts, kernels.distinct(x).counts)


def test_cli_measure_zarr_and_unreachable_scheduler(tmp_path, client, capsys):
    import json

    import zarr

    from kernels.cli import main

    x = data("uint8", 30_000)
    z = zarr.open_array(str(tmp_path / "s.zarr"), mode="w", shape=x.shape, chunks=(4000,), dtype=x.dtype)
    z[:] = x
    np.save(tmp_path / "x.npy", x)
    args = ["--transform", "scale", "--output-dtype", "float16", "--repeat", "1", "--json"]
    assert main(["measure", "--data", str(tmp_path / "s.zarr"), "--scheduler", client.scheduler.address, *args]) == 0
    lazy = json.loads(capsys.readouterr().out)
    assert main(["measure", "--data", str(tmp_path / "x.npy"), *args]) == 0
    mem = json.loads(capsys.readouterr().out)
    lazy, mem = (r[0] if isinstance(r, list) else r for r in (lazy, mem))
    assert {k: v for k, v in lazy.items() if k not in TIMING | {"source"}} == \
        {k: v for k, v in mem.items() if k not in TIMING | {"source"}}
    assert main(["measure", "--data", str(tmp_path / "s.zarr"), "--scheduler", "tcp://127.0.0.1:9",
                 "--scheduler-timeout", "1", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no distributed scheduler answered" in err[0]


def test_progress_bar_on_a_distributed_scheduler(client, capsys):
    """dask's local ProgressBar does not see Client.get: with --scheduler ADDRESS the
    bar is distributed's (followed on the scheduler), on stderr, only for a
    computation over PROGRESS_MINIMUM; the results are the same, a task's error is
    raised as client.get raises it."""
    import time

    from kernels import sources

    x = da.from_array(np.arange(10_000, dtype=np.int64), chunks=3_000)
    with sources.scheduler(client.scheduler.address, progress=True):
        slept, total = dask.compute(dask.delayed(time.sleep)(1.3), x.sum())
    assert slept is None and total == 10_000 * 9_999 // 2
    cap = capsys.readouterr()
    assert "100% Completed" in cap.err and "#" in cap.err and "Completed" not in cap.out
    with sources.scheduler(client.scheduler.address, progress=True):
        assert x.sum().compute() == total  # under a second: no bar
        with pytest.raises(ZeroDivisionError):
            dask.delayed(lambda v: 1 // v)(0).compute()
    assert "Completed" not in capsys.readouterr().err


def test_cli_measure_on_a_distributed_scheduler_shows_its_progress_on_a_terminal(tmp_path, client, capsys,
                                                                               monkeypatch):
    import json
    import sys

    import zarr

    from kernels import sources
    from kernels.cli import main

    x = data("uint16", 30_000)
    zarr.create_array(str(tmp_path / "s.zarr"), shape=x.shape, chunks=(4000,), dtype=x.dtype)[:] = x
    args = ["measure", "--data", str(tmp_path / "s.zarr"), "--scheduler", client.scheduler.address,
            "--transform", "minmax", "--output-dtype", "float16", "--repeat", "1", "--json"]
    assert main(args) == 0
    plain = capsys.readouterr()
    assert "Completed" not in plain.err  # not a terminal: no bar
    monkeypatch.setattr(sources, "PROGRESS_MINIMUM", 0.0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(args) == 0
    shown = capsys.readouterr()
    assert "100% Completed" in shown.err and "#" in shown.err
    a, b = (json.loads(c.out) for c in (plain, shown))
    a, b = (r[0] if isinstance(r, list) else r for r in (a, b))
    assert {k: v for k, v in a.items() if k not in TIMING} == {k: v for k, v in b.items() if k not in TIMING}


def test_stochastic_rounding_on_a_dask_array_is_refused_before_any_task():
    """Its random bits follow the element's flat index, which a block does not know:
    a ValueError, for the transform and for a pipeline step, not other bits."""
    x = da.from_array(np.arange(100, dtype=np.float32), chunks=30)
    with pytest.raises(ValueError, match="stochastic.*flat index"):
        kernels.transform(x, "minmax", compute_dtype="float16", rounding="stochastic", seed=1)
    pipe = kernels.pipeline("minmax(compute_dtype=float16, rounding=stochastic, seed=3)").fit(x)
    with pytest.raises(ValueError, match="stochastic.*flat index"):
        pipe.transform(x)
    up = kernels.pipeline("minmax(compute_dtype=float16, rounding=up)").fit(x)
    np.testing.assert_array_equal(up.transform(x).compute(), up.transform(x.compute()))


def test_measure_times_the_first_chunk_of_1d_data_not_the_whole_array():
    """Named trap: the timing input of 1-D data was "every column of the last axis",
    the whole array, computed in one task (8 GiB per worker on a 2 GiB store)."""
    from kernels.dask_array import _first_rows

    x = da.from_array(np.arange(10_000, dtype=np.uint16), chunks=3_000)
    assert _first_rows(x).shape == (3_000,)
    x2 = da.from_array(np.zeros((900, 4), np.float32), chunks=(200, 2))
    assert _first_rows(x2).shape == (200, 4)


# --------------------------------------------------------------------- block steps (kernels/dask_blocked.py)


def floats(n, seed=1):
    rng = np.random.default_rng(seed)
    x = (rng.normal(0, 1, n) * rng.choice([1.0, 1e-3, 1e3], n)).astype(np.float32)
    x[:4] = [0.0, -0.0, 1.0, 1.0]  # repeated values across blocks
    return x


def _rows(x, rows, cols=None):
    """A 2-D ``x`` chunked into row chunks of ``irregular`` sizes and the column chunks ``cols``."""
    d = irregular(x, rows)
    return d.rechunk({1: cols}) if cols else d


_nan_block = floats(96 * 104)
_nan_block[200] = np.nan  # one MX block (one row of scaled_cast axis=-1) all NaN
BLOCK_CASES = {
    # id: (spec, x, dask array): chunks not multiples of the block, an empty chunk in each
    "mxfp8-e4m3-1d-pad": ("mx(dtype=float8_e4m3fn, pad=zeros)", floats(10_000), lambda x: irregular(x, (3000, 0, 4001))),
    "mxfp4-1d": ("mx(dtype=float4_e2m1fn, block=32)", floats(9984), lambda x: irregular(x, (3000, 0, 4001))),
    "mxfp8-2d-axis-1": ("mx(dtype=float8_e4m3fn)", floats(96 * 104).reshape(104, 96),
                        lambda x: _rows(x, (7, 0, 50), (40, 56))),
    "mxfp4-2d-axis-1-nan": ("mx(dtype=float4_e2m1fn, scale_rule=rceil)", _nan_block.reshape(104, 96),
                            lambda x: _rows(x, (7, 0, 50), (40, 56))),
    "mxfp6-2d-axis0-pad": ("mx(dtype=float6_e2m3fn, axis=0, pad=zeros)", floats(96 * 104).reshape(104, 96),
                           lambda x: _rows(x, (7, 0, 50))),
    "scaled-e4m3-tensor": ("scaled_cast(dtype=float8_e4m3fn)", floats(10_000), lambda x: irregular(x, (3000, 0, 4001))),
    "scaled-e5m2-rows-nan": ("scaled_cast(dtype=float8_e5m2, axis=-1)", _nan_block.reshape(104, 96),
                             lambda x: _rows(x, (7, 0, 50), (40, 56))),
    "scaled-e4m3-axis0-pow2": ("scaled_cast(dtype=float8_e4m3fn, axis=0, pow2=True)", floats(96 * 104).reshape(104, 96),
                               lambda x: _rows(x, (7, 0, 50), (40, 56))),
    "minmax-mxfp8-float16": ("minmax; mx(dtype=float8_e4m3fn, pad=zeros); cast(output_dtype=float16)",
                             data("uint16", 10_000), lambda x: irregular(x, (3000, 0, 4001))),
    "scale-mxfp4-2d": ("scale(divisor=255); mx(dtype=float4_e2m1fn)", data("uint8", 64 * 96).reshape(64, 96),
                       lambda x: _rows(x, (7, 0, 20), (40, 56))),
    "mxfp8-then-minmax": ("mx(dtype=float8_e4m3fn, pad=zeros); minmax(output_dtype=float16)", floats(10_000),
                          lambda x: irregular(x, (3000, 0, 4001))),  # a step fitted on the block step's output
    "perchannel-scaled": ("minmax(axis=0); scaled_cast(dtype=float8_e5m2)", data("uint8", 64 * 3).reshape(64, 3),
                          lambda x: _rows(x, (7, 0, 20), (2, 1))),
}


@pytest.mark.parametrize("case", list(BLOCK_CASES))
def test_block_step_transform_bit_for_bit(threads, case):
    """Pipeline.transform of a dask array with a block step: the in-memory bits, NaN
    blocks included; every chunk boundary along an mx axis on a whole block."""
    spec, x, chunked = BLOCK_CASES[case]
    pipe, dx = kernels.pipeline(spec), chunked(x)
    y = pipe.fit(dx).transform(dx)
    assert isinstance(y, da.Array)
    np.testing.assert_array_equal(bits(y.compute()), bits(pipe.fit(x).transform(x)))
    for s in kernels.pipeline(spec).steps:
        if s.name == "mx":
            ax = s.options.get("axis", -1) % x.ndim
            assert all(e % s.options.get("block", 32) == 0 for e in np.cumsum(y.chunks[ax])[:-1])


@pytest.mark.parametrize("case", list(BLOCK_CASES))
def test_block_step_measure_record(threads, case):
    """measure(dask array, pipeline with a block step): the chunks' partials merged in a
    tree give the in-memory Record in every field but the timings, step rows included."""
    spec, x, chunked = BLOCK_CASES[case]
    mem, dsk = kernels.measure(x, spec, exact_points=256), kernels.measure(chunked(x), spec, exact_points=256)
    assert dsk.steps == mem.steps and dsk.distinct_codes == mem.distinct_codes
    same_record(mem, dsk)


def test_block_step_on_the_cluster(distributed):
    spec, x, chunked = BLOCK_CASES["scaled-e5m2-rows-nan"]
    dx = chunked(x)
    np.testing.assert_array_equal(bits(kernels.pipeline(spec).transform(dx).compute()),
                                  bits(kernels.pipeline(spec).transform(x)))
    spec, x, chunked = BLOCK_CASES["minmax-mxfp8-float16"]
    same_record(kernels.measure(x, spec), kernels.measure(chunked(x), spec))


@pytest.mark.parametrize("split_every", [2, 3])
def test_block_step_split_every_changes_nothing(threads, split_every):
    spec, x, _ = BLOCK_CASES["mxfp8-e4m3-1d-pad"]
    dx = irregular(x, (700, 0, 1100))
    same_record(kernels.measure(x, spec), dask_array.measure_pipeline(dx, spec, split_every=split_every))


def test_measure_mx_of_a_dask_array(threads):
    """The report's and choose's MX candidate (minmax into float32, then MXFP8 in
    blocks of 32, pad=zeros) on a dask array of uint16: the in-memory Record."""
    from kernels import advise

    x = data("uint16", 10_000)
    mem = advise.measure_mx(x, "minmax", "MXFP8 (e4m3)", "float32", "mul_add")
    dsk = advise.measure_mx(irregular(x, (3000, 0, 4001)), "minmax", "MXFP8 (e4m3)", "float32", "mul_add")
    assert dsk.distinct_codes == mem.distinct_codes and dsk.steps == mem.steps
    same_record(mem, dsk)


def test_block_step_refusals_match_the_in_memory_ones(threads):
    """A length not a multiple of the block: the in-memory ValueError, before any task;
    stochastic rounding before a block step: refused as for any pipeline."""
    x = floats(100).reshape(2, 50)
    dx = da.from_array(x, chunks=(1, 25)).map_blocks(_never, dtype=x.dtype)
    with pytest.raises(ValueError) as mem:
        kernels.pipeline("mx(dtype=float8_e4m3fn)").transform(x)
    with pytest.raises(ValueError) as dsk:
        kernels.pipeline("mx(dtype=float8_e4m3fn)").transform(dx)
    assert str(mem.value) == str(dsk.value)
    with pytest.raises(ValueError, match="stochastic.*flat index"):
        kernels.pipeline("cast(output_dtype=bfloat16, rounding=stochastic); mx(dtype=float8_e4m3fn, pad=zeros)"
                         ).transform(dx)


@pytest.mark.parametrize("spec", ["minmax; cast(output_dtype=float16)", "minmax; mx(dtype=float8_e4m3fn)"],
                         ids=["elementwise", "block"])
def test_a_1d_pipeline_transform_keeps_its_chunks_and_probes_no_whole_axis(threads, spec, monkeypatch):
    """1-D data's last axis is the whole array: a pipeline without per-channel
    constants runs on the array's own chunks (it was rechunked into one), and the
    dtype probe is a few elements, not the axis."""
    from kernels.pipeline import Pipeline

    x = data("float32", 64 * 1024)
    dx = da.from_array(x, chunks=16 * 1024)
    pipe = kernels.pipeline(spec).fit(x)
    sizes = []
    real = Pipeline.transform

    def watch(self, a, *args, **kw):
        if isinstance(a, np.ndarray):  # not the dask array's own call
            sizes.append(a.size)
        return real(self, a, *args, **kw)

    monkeypatch.setattr(Pipeline, "transform", watch)
    y = pipe.transform(dx)
    assert y.chunks == dx.chunks
    assert max(sizes) <= 32, sizes  # the probes, before any task
    np.testing.assert_array_equal(bits(y.compute()), bits(real(pipe, x)))
