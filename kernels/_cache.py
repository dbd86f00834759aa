"""Numba's disk cache, keyed on the whole package's source (imported first).

Numba invalidates a cached kernel only when the file that defines it changes,
but our kernels inline codecs and formulas from other modules: after a change
to ``codecs/`` alone, a kernel in ``transforms.py`` would load stale machine
code (asv comparing two commits in one checkout, or a developer switching
branches, would measure the wrong code).  These locators keep numba's cache
locations and add a hash of every module of the package that uses numba to
each kernel's source stamp, so any change to kernel code recompiles every
kernel once.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from numba.core import caching

PACKAGE_DIR = Path(__file__).resolve().parent


def _package_hash() -> str:
    """Hash of every module that uses numba (kernels, overloads, intrinsics) and of
    the codecs package: the code a kernel can inline.  Pure-Python consumers (report, cli, ...) are left
    out, so editing them does not recompile the kernels."""
    h = hashlib.sha256()
    for p in sorted(PACKAGE_DIR.rglob("*.py")):
        src = p.read_bytes()
        # codecs/ is all kernel code (its family modules hold njit-compiled lambdas)
        if p.parent != PACKAGE_DIR or re.search(rb"^(from|import) numba", src, re.MULTILINE):
            h.update(p.relative_to(PACKAGE_DIR).as_posix().encode())
            h.update(src)
    return h.hexdigest()


PACKAGE_HASH = _package_hash()


def _ours(py_file) -> bool:
    try:
        return PACKAGE_DIR in Path(py_file).resolve().parents
    except OSError:
        return False


def _versioned(base):
    class Locator(base):
        def get_source_stamp(self):
            return (super().get_source_stamp(), PACKAGE_HASH)

        @classmethod
        def from_function(cls, py_func, py_file):
            if not _ours(py_file):
                return None
            return super().from_function(py_func, py_file)

    Locator.__name__ = Locator.__qualname__ = f"PackageVersioned{base.__name__}"
    return Locator


def _numba(name: str):
    """numba >= 0.62 names these publicly; older releases with a leading underscore."""
    return getattr(caching, name, None) or getattr(caching, "_" + name)


_LOCATORS = [
    _versioned(_numba("UserProvidedCacheLocator")),  # NUMBA_CACHE_DIR, when set
    _versioned(_numba("InTreeCacheLocator")),  # __pycache__ next to the sources
    _versioned(_numba("UserWideCacheLocator")),  # ~/.cache when the tree is read-only
]


def install() -> None:
    classes = _numba("CacheImpl")._locator_classes
    if not any(c.__name__.startswith("PackageVersioned") for c in classes):
        classes[:0] = _LOCATORS


install()
