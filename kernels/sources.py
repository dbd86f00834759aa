"""Sources larger than memory (layer 6): a Zarr store or many files, opened lazily as a dask array.

Used by ``audit``, ``measure --data`` and ``report --data`` beside :mod:`kernels.files`
(which reads one file).  Nothing is read when a source is opened; each chunk is read
by the task that needs it, on whatever dask scheduler is active
(:func:`scheduler`).

=====================================  ==============================================
``--data``                             opened as
=====================================  ==============================================
a Zarr store (a directory holding      ``dask.array.from_zarr``: the store's own chunks
``zarr.json``, ``.zarray`` or          (a group: ``--key`` names the array, or its only
``.zgroup``)                           array is taken)
a directory of ``.npy`` / image files  one chunk per file, in name order, concatenated
or a glob (``tiles/*.tif``)            along axis 0 (rows of a table, image rows: the
                                       last axes, features or channels, stay); files
                                       whose trailing shapes differ (``.npy`` only: their
                                       headers give the shapes without reading the data)
                                       are flattened and concatenated (values only)
=====================================  ==============================================

Every file is read by :func:`kernels.files.load_file`, so a damaged file gets the same
one-sentence error, raised by the task that reads it.  Image files are taken to share
the first file's shape and dtype (as ``dask.array.image.imread`` does: probing every
image would read the whole set twice); a file that does not is an error when it is read,
naming the file.
"""

from __future__ import annotations

import contextlib
import glob as _glob
import sys
from pathlib import Path

import numpy as np

from .files import IMAGE_SUFFIXES, AuditError, _npy_header, load_file

ARRAY_SUFFIXES = (".npy", *IMAGE_SUFFIXES)  # one array per file (an .npz holds several)
ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")
SCHEDULERS = ("threads", "processes", "synchronous", "sync")
CONNECT_TIMEOUT = 10  # seconds a --scheduler ADDRESS has to answer
PROGRESS_MINIMUM = 1.0  # seconds a computation runs before its progress bar shows (dask's ``minimum``)


def is_lazy_source(path: str) -> bool:
    """True when ``path`` names a Zarr store, a directory or a glob rather than one file."""
    return any(c in path for c in "*?[") or Path(path).is_dir()


def is_zarr(path: str) -> bool:
    p = Path(path)
    return p.is_dir() and any((p / m).exists() for m in ZARR_MARKERS)


def open_source(path: str, key: str | None = None):
    """The dask array of ``path`` (the module docstring's table), nothing read yet.

    Raises :class:`~kernels.files.AuditError` naming the path and the fix.
    """
    if is_zarr(path):
        return _open_zarr(path, key)
    files = _files(path)
    if key is not None:
        raise AuditError(f"{path}: --key names an array of a Zarr group or an .npz file; a set of files has none")
    return _open_files(path, files)


def _open_zarr(path: str, key: str | None):
    import dask.array as da
    import zarr

    try:
        node = zarr.open(path, mode="r")
    except Exception as e:  # zarr raises several types for an unreadable store
        raise AuditError(f"{path}: not a readable Zarr store ({e}); write it with zarr.create_array or dask.array.to_zarr") from None
    if isinstance(node, zarr.Group):
        names = sorted(node.array_keys())
        if key is None:
            if len(names) != 1:
                raise AuditError(f"{path}: a Zarr group holding {len(names)} arrays ({', '.join(names) or 'none'}); "
                                 "give --key NAME")
            key = names[0]
        elif key not in names:
            raise AuditError(f"{path}: the Zarr group has no array {key!r}; its arrays: {', '.join(names) or 'none'}")
        return da.from_zarr(path, component=key)
    if key is not None:
        raise AuditError(f"{path}: a Zarr array, not a group: --key has nothing to choose")
    return da.from_zarr(path)


def _files(path: str) -> list[str]:
    if Path(path).is_dir():
        found = [str(p) for p in sorted(Path(path).iterdir()) if p.suffix.lower() in ARRAY_SUFFIXES and p.is_file()]
        where = f"{path}: a directory"
    else:
        found = [f for f in sorted(_glob.glob(path)) if Path(f).suffix.lower() in ARRAY_SUFFIXES and Path(f).is_file()]
        where = f"{path}: a glob"
    if not found:
        raise AuditError(f"{where} matching no .npy, .png or .tif(f) file; give a Zarr store, a directory of such "
                         "files or a glob of them")
    return found


def _read(path: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """One file as a chunk: read in full (a memory map would outlive its task)."""
    a = np.array(load_file(path), copy=True)
    if a.shape != shape or a.dtype != dtype:
        raise AuditError(f"{path}: shape {a.shape} and dtype {a.dtype}; the set's first file has {shape} and {dtype}: "
                         "give files of one shape and dtype (or .npy files, whose shapes may differ)")
    return a


def _open_files(path: str, files: list[str]):
    import dask
    import dask.array as da

    if all(f.lower().endswith(".npy") for f in files):
        heads = []
        for f in files:
            with open(f, "rb") as h:
                shape, _, dtype = _npy_header(h, f)
            heads.append((tuple(shape), dtype.newbyteorder("=")))
    else:  # images: the first one's shape and dtype stand for all (module docstring)
        first = load_file(files[0])
        heads = [(first.shape, first.dtype)] * len(files)
    dtypes = {d for _, d in heads}
    if len(dtypes) > 1:
        raise AuditError(f"{path}: files of {len(dtypes)} dtypes ({', '.join(sorted(map(str, dtypes)))}); "
                         "give files of one dtype")
    read = dask.delayed(_read, pure=True)
    chunks = [da.from_delayed(read(f, s, d), shape=s, dtype=d) for f, (s, d) in zip(files, heads)]
    if len({s[1:] for s, _ in heads}) == 1 and all(len(s) for s, _ in heads):
        return da.concatenate(chunks, axis=0) if len(chunks) > 1 else chunks[0]
    return da.concatenate([c.reshape(-1) for c in chunks])


@contextlib.contextmanager
def scheduler(spec: str | None, progress: bool = False, timeout: float = CONNECT_TIMEOUT):
    """Run the ``with`` body's dask computations on ``spec``: ``threads``, ``processes``,
    ``synchronous``, or the address of a running ``distributed`` scheduler
    (``tcp://host:8786``), which must answer within ``timeout`` seconds
    (else ``ValueError``).  ``None`` keeps dask's active scheduler.  ``progress``
    shows a progress bar on stderr for computations running over
    ``PROGRESS_MINIMUM`` seconds: dask's local ``ProgressBar`` for the local
    schedulers, distributed's (:func:`_progress_get`) for an address."""
    import dask

    with contextlib.ExitStack() as stack:
        if spec in SCHEDULERS:
            stack.enter_context(dask.config.set(scheduler=spec))
        elif spec is not None:
            if "://" not in spec and ":" not in spec:
                raise ValueError(f"--scheduler {spec!r}: give one of {', '.join(SCHEDULERS)} or a scheduler address "
                                 "such as tcp://127.0.0.1:8786")
            try:
                from distributed import Client
            except ImportError:
                raise ValueError(f"--scheduler {spec}: an address needs the distributed package: pip install distributed") from None
            try:
                client = Client(spec, timeout=f"{timeout}s", set_as_default=False)
            except (OSError, TimeoutError, ValueError) as e:
                raise ValueError(f"--scheduler {spec}: no distributed scheduler answered within {timeout:g} s "
                                 f"({' '.join(str(e).split())[:160]}); start one (dask scheduler) or use "
                                 "--scheduler threads") from None
            stack.callback(client.close)
            get = _progress_get(client, sys.stderr, PROGRESS_MINIMUM) if progress else client.get
            stack.enter_context(dask.config.set(scheduler=get))
        if progress and (spec is None or spec in SCHEDULERS):
            from dask.diagnostics import ProgressBar

            stack.enter_context(ProgressBar(out=sys.stderr, minimum=PROGRESS_MINIMUM))
        yield


def _progress_get(client, out, minimum):
    """``client.get`` with distributed's progress bar on ``out`` (dask's local
    ``ProgressBar`` does not see a ``distributed`` scheduler): the graph is
    submitted as futures; when they are not done within ``minimum`` seconds,
    :func:`_distributed_bar` follows them on the scheduler until they finish;
    then the results are gathered (a task's exception raised as ``client.get``
    raises it)."""
    import time

    from distributed import futures_of

    def get(dsk, keys, **kwargs):
        t0 = time.perf_counter()
        packed = client.get(dsk, keys, sync=False, **kwargs)
        futures = futures_of(packed)
        try:
            while not all(f.done() for f in futures):
                if time.perf_counter() - t0 >= minimum:
                    _distributed_bar(futures, client.scheduler.address, out, t0)
                    break
                time.sleep(0.02)
            return client.gather(packed)
        finally:
            for f in futures:
                f.release()

    return get


def _distributed_bar(futures, address, out, t0):
    """distributed's ``TextProgressBar`` (it follows the futures on the scheduler,
    blocking until they finish) drawn on ``out`` the way dask's local bar is,
    timed from ``t0``, its last state left on the line."""
    import time

    from dask.utils import format_time
    from distributed.diagnostics.progressbar import TextProgressBar

    class Bar(TextProgressBar):
        @property
        def elapsed(self):
            return time.perf_counter() - t0

        def _draw_bar(self, remaining, all, **kwargs):
            frac = (1 - remaining / all) if all else 1.0
            with contextlib.suppress(ValueError):  # out closed
                out.write(f"\r[{'#' * int(self.width * frac):<{self.width}}] | {int(100 * frac)}% Completed | "
                          f"{format_time(self.elapsed)}")
                out.flush()

        def _draw_stop(self, **kwargs):
            with contextlib.suppress(ValueError):
                out.write("\n")
                out.flush()

    return Bar(futures, scheduler=address)
