"""Read a user's array file (layer 6): .npy, .npz, PNG and TIFF, exactly or not at all.

Used by ``audit`` and by ``--data`` (``measure``, ``choose``, ``report``).  A
file is identified by its first bytes, not only its name, so a damaged,
truncated or misnamed file gets one sentence saying what it is and what to do,
never a traceback from numpy, zipfile or Pillow.  Nothing is ever unpickled.

- ``.npy`` is memory-mapped after its header is checked against the file's size
  (a truncated file is refused, not read short).
- ``.npz``: members that are ``.npy`` arrays; ``key`` picks one.  A member is
  read to its end, so its CRC is checked.
- PNG (Pillow) is read at its stored bit depth: 16-bit grey as uint16, 1/2/4-bit
  grey as its stored codes (Pillow scales them to 0..255; the scaling is undone
  exactly).  Refused: 16-bit colour (Pillow keeps only the high byte of each
  channel, so the values read would not be the file's), palette images (their
  pixels are indices into a colour table, not data: which colours a pipeline
  sees depends on how it converts them, so the user converts them
  explicitly), and animated PNG.
- TIFF (tifffile) is read at its stored dtype and byte order; a multi-page
  TIFF whose pages share shape and dtype is read whole, pages stacked along a
  new leading axis (shape ``(pages, *page_shape)``); pages that differ are
  refused, as are palette TIFFs.
- Arrays are returned in native byte order (big-endian files are converted,
  chunk by chunk for a memory-mapped ``.npy``) unless ``native=False``, which
  ``audit`` uses to convert chunk by chunk itself.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
SUFFIXES = (".npy", ".npz", *IMAGE_SUFFIXES)
NPY_MAGIC = b"\x93NUMPY"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an archive, an empty archive
CONVERT_CHUNK = 1 << 22  # elements per step when a memory-mapped file changes byte order
_COLOUR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}


class AuditError(Exception):
    """A file that cannot be read or audited (the CLI exits with status 2)."""


def load_file(path: str, key: str | None = None, *, native: bool = True) -> np.ndarray:
    """The array held by ``path`` (.npy memory-mapped, .npz ``key``, PNG, TIFF).

    Raises :class:`AuditError` naming the file, what is wrong and the fix.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise AuditError(f"{path}: expected .npy, .npz, .png or .tif(f)")
    if not p.exists():
        raise AuditError(f"{path}: no such file")
    if not p.is_file():
        raise AuditError(f"{path}: not a file")
    try:
        with open(p, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise AuditError(f"{path}: cannot read ({e.strerror or e})") from None
    if suffix == ".npy":
        _expect(path, head, head.startswith(NPY_MAGIC), "a .npy file", "save the array with np.save")
        a = _load_npy(p, path)
    elif suffix == ".npz":
        _expect(path, head, head.startswith(ZIP_MAGIC), "an .npz (zip) archive", "save the arrays with np.savez")
        a = _load_npz(p, path, key)
        key = None
    elif suffix == ".png":
        _expect(path, head, head.startswith(PNG_MAGIC), "a PNG image", "save the image as PNG")
        a = _load_png(p, path)
    else:
        _expect(path, head, head.startswith(TIFF_MAGIC), "a TIFF image", "save the image as TIFF")
        a = _load_tiff(p, path)
    if key is not None:
        raise AuditError(f"--key {key}: {path} holds one array; drop --key")
    if native and not a.dtype.isnative:
        a = to_native(a)
    return a


def to_native(a: np.ndarray, chunk: int = CONVERT_CHUNK) -> np.ndarray:
    """``a`` in native byte order, same shape and memory order; a memory map is
    converted ``chunk`` elements at a time (no temporary of the file's size)."""
    out = np.empty(a.shape, a.dtype.newbyteorder("="), order="F" if _fortran(a) else "C")
    src, dst = a.ravel(order="K"), out.ravel(order="K")  # views, in storage order
    for start in range(0, src.size, chunk):
        dst[start : start + chunk] = src[start : start + chunk]
    return out


def _fortran(a: np.ndarray) -> bool:
    return a.ndim > 1 and a.flags.f_contiguous and not a.flags.c_contiguous


def _expect(path: str, head: bytes, ok: bool, what: str, fix: str) -> None:
    if ok:
        return
    looks = _looks_like(head)
    hint = {
        "a zip archive": "rename it to .npz",
        "a .npy array": "rename it to .npy",
        "a PNG image": "rename it to .png",
        "a TIFF image": "rename it to .tif",
        "a Python pickle": "pickles are never loaded (they can run code); " + fix,
        "text": "parse it (e.g. np.loadtxt) and " + fix,
    }.get(looks, fix)
    raise AuditError(f"{path}: not {what}: it is {looks}; {hint}")


def _looks_like(head: bytes) -> str:
    if not head:
        return "empty (0 bytes)"
    if head.startswith(NPY_MAGIC):
        return "a .npy array"
    if head.startswith(ZIP_MAGIC):
        return "a zip archive"
    if head.startswith(PNG_MAGIC):
        return "a PNG image"
    if head.startswith(TIFF_MAGIC):
        return "a TIFF image"
    if head[:1] == b"\x80":  # pickle protocol 2+ (0 and 1 are text-like: called text below)
        return "a Python pickle"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.replace("\n", "").replace("\r", "").replace("\t", "").isprintable():
        return "text"
    return f"unrecognised bytes ({head[:8]!r}...)"


# ---------------------------------------------------------------- .npy / .npz


def _npy_header(f, where: str) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) of the .npy stream ``f``, left at its data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:  # 3.0 (utf-8 field names): numpy has no public reader for it
            from numpy.lib import _format_impl

            shape, fortran, dtype = _format_impl._read_array_header(f, version)
    except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error) as e:
        raise AuditError(f"{where}: not a readable .npy array ({' '.join(str(e).split())}); save it again with np.save") from None
    if dtype.hasobject:
        raise AuditError(f"{where} holds Python objects (dtype {dtype}); such files are refused, never unpickled: "
                         "save a numeric array (np.save(path, x.astype(np.float32)))")
    return shape, fortran, dtype


def _load_npy(p: Path, path: str) -> np.ndarray:
    with open(p, "rb") as f:
        shape, fortran, dtype = _npy_header(f, path)
        offset = f.tell()
    nbytes = math.prod(shape) * dtype.itemsize
    have = p.stat().st_size - offset
    if have < nbytes:
        raise AuditError(f"{path}: truncated: its header promises {nbytes:,} bytes of data and the file holds {have:,}; "
                         "copy or save it again")
    if nbytes == 0:
        return np.empty(shape, dtype)  # nothing to map (audit and measure refuse empty arrays by name)
    return np.memmap(p, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def _load_npz(p: Path, path: str, key: str | None) -> np.ndarray:
    damaged = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError)
    try:
        zf = zipfile.ZipFile(p)
    except damaged as e:
        raise AuditError(f"{path}: not a readable .npz archive ({e}); it may be truncated: save it again with np.savez") from None
    with zf:
        members = zf.namelist()
        arrays = {m[: -len(".npy")]: m for m in members if m.endswith(".npy")}
        if not arrays:
            held = ", ".join(members[:5]) or "nothing"
            raise AuditError(f"{path} holds no .npy arrays (it holds: {held}); write it with np.savez")
        names = list(arrays)
        if key is None:
            if len(names) != 1:
                raise AuditError(f"{path} holds {len(names)} arrays ({', '.join(names)}); choose one with --key")
            key = names[0]
        if key not in arrays:
            raise AuditError(f"--key {key}: not in {path} (it holds: {', '.join(names)})")
        where = f"{path}[{key}]"
        try:
            with zf.open(arrays[key]) as f:
                shape, fortran, dtype = _npy_header(f, where)
                a = np.empty(shape, dtype, order="F" if fortran else "C")
                buf = a.ravel(order="K").view(np.uint8)  # a view: a is fresh, C or F
                got = 0
                while got < buf.size:
                    n = f.readinto(memoryview(buf[got:]))
                    if not n:
                        break
                    got += n
                trailing = f.read(1)  # reading to the end makes zipfile check the CRC
        except AuditError:
            raise
        except damaged as e:
            raise AuditError(f"{where}: damaged ({e}); save the archive again with np.savez") from None
        if got < buf.size:
            raise AuditError(f"{where}: truncated: its header promises {buf.size:,} bytes and the member holds {got:,}; "
                             "save the archive again with np.savez")
        if trailing:
            raise AuditError(f"{where}: more bytes than its header describes; save the archive again with np.savez")
        return a


# ---------------------------------------------------------------- images


def _load_png(p: Path, path: str) -> np.ndarray:
    with open(p, "rb") as f:
        ihdr = f.read(33)
    if len(ihdr) < 33 or ihdr[12:16] != b"IHDR":
        raise AuditError(f"{path}: damaged PNG (no IHDR header); save the image again")
    bits, colour = ihdr[24], ihdr[25]
    kind = _COLOUR_TYPES.get(colour, f"colour type {colour}")
    if colour == 3:
        raise AuditError(f"{path}: palette PNG: its pixels are indices into a colour table, not data; convert it first "
                         "(PIL: Image.open(f).convert('RGB').save(...)) or save the array you use with np.save")
    if bits == 16 and colour != 0:
        raise AuditError(f"{path}: 16-bit {kind} PNG: Pillow reads only the high byte of each channel, so the values would "
                         "not be the file's; save it as a 16-bit TIFF (tifffile.imwrite) or .npy (np.save) instead")
    im_mode, a = _pillow(p, path)
    if bits < 8:  # Pillow gives 1-bit as bool and 2/4-bit scaled to 0..255: back to the stored codes
        if im_mode == "1":
            a = a.astype(np.uint8)
        elif im_mode == "L":
            step = 255 // ((1 << bits) - 1)
            if (a % step).any():
                raise AuditError(f"{path}: {bits}-bit grey PNG not read exactly; save it as 8-bit")
            a = a // np.uint8(step)
        else:
            raise AuditError(f"{path}: {bits}-bit {kind} PNG (mode {im_mode}) is not supported; save it as 8-bit")
    return a


def _pillow(p: Path, path: str) -> tuple[str, np.ndarray]:
    try:
        from PIL import Image
    except ImportError:
        raise AuditError(f"{path}: reading PNG needs Pillow (pip install pillow)") from None
    try:
        with Image.open(p) as im:
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                raise AuditError(f"{path}: animated PNG with {frames} frames; save the frames as one .npy (np.save)")
            mode = im.mode
            a = np.array(im)
    except AuditError:
        raise
    except Exception as e:  # Pillow raises many types for a bad image
        raise AuditError(f"{path}: cannot read the image ({' '.join(str(e).split())}); save it again") from None
    if a.dtype == np.int32 and a.size and a.min() >= 0 and a.max() <= 65535:
        a = a.astype(np.uint16)  # Pillow's 32-bit mode "I" for 16-bit grey
    return mode, a


def _load_tiff(p: Path, path: str) -> np.ndarray:
    try:
        import tifffile
    except ImportError:
        raise AuditError(f"{path}: reading TIFF needs tifffile (pip install tifffile)") from None
    try:
        with tifffile.TiffFile(p) as tf:
            pages = list(tf.pages)
            if not pages:
                raise AuditError(f"{path}: a TIFF with no images")
            if any(pg.photometric == tifffile.PHOTOMETRIC.PALETTE for pg in pages):
                raise AuditError(f"{path}: palette TIFF: its pixels are indices into a colour table, not data; "
                                 "convert it to RGB first (PIL: Image.open(f).convert('RGB'))")
            kinds = {(pg.shape, str(pg.dtype)) for pg in pages}
            if len(kinds) > 1:
                shown = "; ".join(f"{s} {d}" for s, d in sorted(kinds)[:4])
                raise AuditError(f"{path}: {len(pages)} pages of different shapes or dtypes ({shown}); "
                                 "save one page per file or one .npy (np.save)")
            if len(pages) == 1:
                return pages[0].asarray()
            return tf.asarray(key=range(len(pages)))  # stacked: (pages, *page shape)
    except AuditError:
        raise
    except Exception as e:  # tifffile raises many types for a bad or unsupported file
        raise AuditError(f"{path}: cannot read the TIFF ({' '.join(str(e).split())}); save it again "
                         "(uncompressed or deflate)") from None
