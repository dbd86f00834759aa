"""File loading (kernels.files) and the chunked audit: every broken file is one line
and status 2 from every command, and every readable file is read exactly (checked
against the values written, or numpy/tifffile read independently)."""

from __future__ import annotations

import json
import pickle
import struct
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image
from reference import numpy_distinct

import kernels.audit as A
from kernels import report as R
from kernels.audit import audit
from kernels.cli import main
from kernels.files import AuditError, load_file, to_native

RNG = np.random.default_rng(12)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_png(path, a, bits, colour):
    """A PNG written byte by byte (filter 0): the file holds exactly ``a``, whatever Pillow can write."""
    h, w = a.shape[:2]
    if bits == 16:
        rows = a.astype(">u2").reshape(h, -1).view(np.uint8)
    elif bits == 8:
        rows = a.reshape(h, -1).astype(np.uint8)
    else:  # pack sub-byte codes, most significant first
        b = np.unpackbits(a.astype(np.uint8)[..., None], axis=-1)[..., 8 - bits :].reshape(h, -1)
        rows = np.packbits(b, axis=1)
    raw = b"".join(b"\x00" + r.tobytes() for r in rows)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    ihdr = struct.pack(">IIBBBBB", w, h, bits, colour, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# ---------------------------------------------------------------- the corpus of broken files


def _npz_bytes(**arrays):
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _bad_crc(path):
    b = bytearray(_npz_bytes(a=np.arange(50_000, dtype=np.float32)))
    b[b.find(b"\x93NUMPY") + 150_000] ^= 0xFF  # inside the data, far past the header
    path.write_bytes(bytes(b))


def _zip(path, name, data):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(name, data)


def _truncated_npy(path):
    np.save(path, np.arange(1000, dtype=np.float32))
    path.write_bytes(path.read_bytes()[:-100])


def _pages_differ(path):
    with tifffile.TiffWriter(path) as w:
        w.write(np.zeros((4, 5), np.uint16), photometric="minisblack")
        w.write(np.zeros((6, 5), np.uint16), photometric="minisblack")


def _palette(path):
    im = Image.new("P", (8, 8))
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    im.putdata(list(RNG.integers(0, 4, 64)))
    im.save(path)  # PNG or TIFF, by the suffix


def _png_truncated(path):
    Image.fromarray(RNG.integers(0, 256, (64, 64), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])


BROKEN = {  # name -> (file name, writer, words the one-line error must hold)
    "0-byte npy": ("x.npy", lambda p: p.write_bytes(b""), "empty"),
    "truncated npy": ("x.npy", _truncated_npy, "truncated"),
    "text named npy": ("x.npy", lambda p: p.write_text("1,2,3\n4,5,6\n"), "text"),
    "pickle named npy": ("x.npy", lambda p: p.write_bytes(pickle.dumps([1.0, 2.0])), "pickle"),
    "npz named npy": ("x.npy", lambda p: p.write_bytes(_npz_bytes(a=np.ones(3))), "rename it to .npz"),
    "object npy": ("x.npy", lambda p: np.save(p, np.array([1, "a"], dtype=object), allow_pickle=True), "Python objects"),
    "int64 npy": ("x.npy", lambda p: np.save(p, np.arange(5)), "not supported"),
    "empty npy": ("x.npy", lambda p: np.save(p, np.zeros((0, 3), np.float32)), "empty"),
    "truncated npz": ("x.npz", lambda p: p.write_bytes(_npz_bytes(a=np.ones(100))[:300]), "truncated"),
    "bad crc npz": ("x.npz", _bad_crc, "CRC"),
    "member not npy": ("x.npz", lambda p: _zip(p, "a.npy", b"hello, this is text"), "x.npz[a]"),
    "no npy member": ("x.npz", lambda p: _zip(p, "readme.txt", b"hello"), "no .npy arrays"),
    "text named npz": ("x.npz", lambda p: p.write_text("a,b\n"), "text"),
    "16-bit RGB png": ("x.png", lambda p: write_png(p, RNG.integers(0, 65536, (4, 5, 3)), 16, 2), "16-bit RGB"),
    "16-bit RGBA png": ("x.png", lambda p: write_png(p, RNG.integers(0, 65536, (4, 5, 4)), 16, 6), "16-bit RGBA"),
    "16-bit grey+alpha png": ("x.png", lambda p: write_png(p, RNG.integers(0, 65536, (4, 5, 2)), 16, 4), "16-bit grey+alpha"),
    "palette png": ("x.png", _palette, "palette"),
    "truncated png": ("x.png", _png_truncated, "x.png"),
    "npy named png": ("x.png", lambda p: np.save(open(p, "wb"), np.ones(3)), "rename it to .npy"),
    "palette tiff": ("x.tif", lambda p: _palette(p), "palette"),
    "pages differ tiff": ("x.tif", _pages_differ, "different shapes"),
    "truncated tiff": ("x.tif", lambda p: p.write_bytes(b"II*\x00\x08\x00\x00\x00\x05"), "x.tif"),
}

COMMANDS = {
    "audit": lambda f, out: ["audit", f],
    "measure": lambda f, out: ["measure", "--data", f, "--transform", "minmax"],
    "choose": lambda f, out: ["choose", "--data", f, "--transform", "minmax", "--lossless"],
    "report": lambda f, out: ["report", "--quick", "--out", out, "--data", f],
}


@pytest.fixture
def no_measuring(monkeypatch):
    """Any measuring fails the test: a bad file must be refused before the first record."""

    def refuse(*a, **k):
        raise AssertionError("measured before the file was checked")

    import sys

    import kernels.advise

    for mod in (R, sys.modules["kernels.measure"], kernels.advise):  # kernels.measure is also the function
        monkeypatch.setattr(mod, "measure", refuse)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", BROKEN)
def test_broken_file_one_line_status_2_nothing_written(case, command, tmp_path, capsys, no_measuring):
    name, write, needle = BROKEN[case]
    f = tmp_path / name
    write(f)
    before = f.read_bytes()
    out = tmp_path / "rep"
    code, stdout, err = run(capsys, *COMMANDS[command](f, out))
    assert code == 2, err
    assert stdout == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert needle in err and str(f) in err, err
    assert not out.exists()  # report wrote nothing
    assert f.read_bytes() == before  # the input is never touched


def test_report_checks_every_data_file_before_measuring(tmp_path, capsys, no_measuring):
    good, bad = tmp_path / "good.npy", tmp_path / "bad.npy"
    np.save(good, np.arange(10, dtype=np.float32))
    bad.write_bytes(b"")
    code, _, err = run(capsys, "report", "--quick", "--out", tmp_path / "rep", "--data", good, "--data", bad)
    assert code == 2 and str(bad) in err and not (tmp_path / "rep").exists()


@pytest.mark.parametrize("command", ["measure", "choose"])
def test_0d_data_names_the_file(command, tmp_path, capsys, no_measuring):
    f = tmp_path / "x.npy"
    np.save(f, np.float32(1))
    code, _, err = run(capsys, *COMMANDS[command](f, tmp_path / "rep"))
    assert code == 2 and f"--data {f}: the array is 0-d" in err, err


@pytest.mark.parametrize("bad", ["inf", "all-nan", "0-d"])
def test_report_refuses_unfittable_data_naming_the_file(bad, tmp_path, capsys, no_measuring):
    f = tmp_path / "x.npy"
    np.save(f, {"inf": np.array([1, np.inf], np.float32), "all-nan": np.full(3, np.nan, np.float32),
                "0-d": np.float32(1)}[bad])
    code, _, err = run(capsys, "report", "--quick", "--out", tmp_path / "rep", "--data", f)
    assert code == 2 and str(f) in err and len(err.strip().splitlines()) == 1, err
    assert "nan_policy" not in err  # report has no such option


# ---------------------------------------------------------------- files read exactly


def test_npz_crc_is_checked_past_the_header(tmp_path):
    f = tmp_path / "x.npz"
    _bad_crc(f)
    with pytest.raises(AuditError, match="CRC"):
        load_file(str(f))


def test_tiff_16bit_rgb_both_byte_orders_read_at_stored_depth(tmp_path):
    img = RNG.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    for order in "<>":
        f = tmp_path / f"rgb{'le' if order == '<' else 'be'}.tif"
        tifffile.imwrite(f, img, photometric="rgb", byteorder=order)
        a = load_file(str(f))
        assert a.dtype == np.uint16 and a.dtype.isnative
        np.testing.assert_array_equal(a, img)
        res = audit(str(f))
        assert (res.dtype, res.distinct, res.hi) == ("uint16", numpy_distinct(img), float(img.max()))


@pytest.mark.parametrize("writer", ["tifffile", "pillow"])
def test_multipage_tiff_is_read_whole_pages_stacked(writer, tmp_path):
    f = tmp_path / "pages.tif"
    if writer == "tifffile":
        pages = RNG.integers(0, 65536, (3, 6, 7), dtype=np.uint16)
        with tifffile.TiffWriter(f) as w:
            for pg in pages:
                w.write(pg, photometric="minisblack")
    else:
        pages = RNG.integers(0, 256, (4, 6, 7), dtype=np.uint8)
        ims = [Image.fromarray(pg) for pg in pages]
        ims[0].save(f, save_all=True, append_images=ims[1:])
    a = load_file(str(f))
    assert a.dtype == pages.dtype
    np.testing.assert_array_equal(a, pages)  # every page, not page 1
    assert audit(str(f)).n == pages.size


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_low_bit_grey_png_reads_the_stored_codes(bits, tmp_path):
    codes = RNG.integers(0, 1 << bits, (5, 11)).astype(np.uint8)
    f = tmp_path / "g.png"
    write_png(f, codes, bits, 0)
    a = load_file(str(f))
    assert a.dtype == np.uint8
    np.testing.assert_array_equal(a, codes)


def test_16bit_grey_png_reads_uint16(tmp_path):
    img = RNG.integers(0, 65536, (9, 13)).astype(np.uint16)
    f = tmp_path / "g16.png"
    write_png(f, img, 16, 0)
    np.testing.assert_array_equal(load_file(str(f)), img)
    assert load_file(str(f)).dtype == np.uint16


def test_big_endian_npy_and_npz_are_read_in_native_order(tmp_path):
    x = RNG.normal(0, 3, (40, 30)).astype(">f4")
    np.save(tmp_path / "be.npy", x)
    np.savez(tmp_path / "be.npz", a=x)
    for f in ("be.npy", "be.npz"):
        a = load_file(str(tmp_path / f))
        assert a.dtype == np.float32 and a.dtype.isnative
        np.testing.assert_array_equal(a, x.astype(np.float32))
    mm = np.load(tmp_path / "be.npy", mmap_mode="r")
    np.testing.assert_array_equal(to_native(mm, chunk=7), x.astype(np.float32))  # chunk by chunk
    np.testing.assert_array_equal(to_native(np.asfortranarray(x), chunk=7), x.astype(np.float32))


def test_big_endian_files_through_measure_and_choose(tmp_path, capsys):
    x = RNG.integers(0, 4096, 5000).astype(">u2")
    f = tmp_path / "be.npy"
    np.save(f, x)
    code, out, err = run(capsys, "measure", "--data", f, "--transform", "minmax", "--output-dtype", "float16", "--json")
    assert code == 0, err
    assert json.loads(out)["distinct_in"] == numpy_distinct(x)
    code, out, err = run(capsys, "choose", "--data", f, "--transform", "scale", "--lossless", "--json", "--repeat", "1")
    assert code == 0, err
    assert json.loads(out)["recommended"] is not None


def test_audit_big_endian_chunked_equals_native(tmp_path, monkeypatch):
    x = RNG.normal(0, 10, 20_000).astype(np.float32).round(1)
    np.save(tmp_path / "le.npy", x)
    np.save(tmp_path / "be.npy", x.astype(">f4"))
    want = audit(str(tmp_path / "le.npy"))
    monkeypatch.setattr(A, "CHUNK", 1000)
    got = audit(str(tmp_path / "be.npy"))
    assert (got.dtype, got.distinct, got.lo, got.hi, got.pipelines) == (want.dtype, want.distinct, want.lo, want.hi, want.pipelines)


# ---------------------------------------------------------------- Fortran order: storage order, in chunks


def test_audit_fortran_npy_chunked_equals_in_memory(tmp_path, monkeypatch):
    c = RNG.integers(0, 3000, (700, 300)).astype(np.uint16)
    np.save(tmp_path / "c.npy", c)
    np.save(tmp_path / "f.npy", np.asfortranarray(c))
    assert np.load(tmp_path / "f.npy", mmap_mode="r").flags.f_contiguous
    want = audit(str(tmp_path / "c.npy"))
    monkeypatch.setattr(A, "CHUNK", 1 << 12)
    got = audit(str(tmp_path / "f.npy"))
    assert got.distinct == want.distinct == numpy_distinct(c)
    assert (got.shape, got.lo, got.hi, got.pipelines) == (want.shape, want.lo, want.hi, want.pipelines)


def test_audit_fortran_npy_makes_no_full_copy(tmp_path, monkeypatch):
    shape = (2048, 2048)  # 8 MiB of uint16
    x = np.asfortranarray(RNG.integers(0, 1000, shape).astype(np.uint16))
    np.save(tmp_path / "f.npy", x)
    del x
    np.save(tmp_path / "warm.npy", np.asfortranarray(np.arange(600, dtype=np.uint16).reshape(20, 30)))
    monkeypatch.setattr(A, "CHUNK", 1 << 16)
    audit(str(tmp_path / "warm.npy"))  # compile first: the JIT's allocations are not the file's
    tracemalloc.start()
    try:
        res = audit(str(tmp_path / "f.npy"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.n == shape[0] * shape[1]
    assert peak < shape[0] * shape[1] * 2 / 4, peak  # a C-order copy alone would be 8 MiB


# ---------------------------------------------------------------- report --data with NaN


def test_report_data_with_nan_skips_nan_and_counts_it(tmp_path, capsys, monkeypatch):
    x = np.linspace(0, 1, 500, dtype=np.float32)
    x[[3, 77]] = np.nan
    f = tmp_path / "nan.npy"
    np.save(f, x)
    full = R.suite

    def only_files(quick=False, data=None, key=None):  # the domains are not what this test is about
        return [(s, v) for s, v in full(quick, data, key) if s.kind == "file"]

    monkeypatch.setattr(R, "suite", only_files)
    out = tmp_path / "rep"
    code, _, err = run(capsys, "report", "--quick", "--out", out, "--data", f)
    assert code == 0, err
    recs = json.loads((out / "report.json").read_text())["records"]
    assert recs and all(r["source"] == "nan.npy" and r["nan_in"] == 2 for r in recs)
    finite = x[~np.isnan(x)]
    assert all(r["distinct_in"] == numpy_distinct(finite) for r in recs)
