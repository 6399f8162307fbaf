"""Giving the heap memory a run has freed back to the operating system.

Each training step allocates and frees tensors and Python objects of shapes that change from step to
step (completion lengths vary). glibc's allocator keeps what is freed in its arenas for reuse, and
over thousands of steps the arenas grow by fragmentation though the memory in use does not (a
2,000-step soak: +54 MB resident, with the live heap flat; docs/reliability.md). `malloc_trim(0)`
returns the free pages; elsewhere than glibc this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util


def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_MALLOC_TRIM = _malloc_trim()


def release_freed_memory() -> bool:
    """Return the allocator's free pages to the operating system; False where that is not possible."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True
