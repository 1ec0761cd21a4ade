"""Handing freed heap memory back to the operating system after a large transient allocation.

glibc keeps freed memory for reuse, and after a large free it raises its mmap threshold, so later
large allocations come from the heap too and the process stays at its peak: measured here, 16
near-limit PNGs left the server 540 MB larger for good, and compiling a version's fixed-shape passes
~10 MB. `malloc_trim` returns what is free (about 0.1 ms); elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util


def _load_libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None  # glibc only.


_LIBC = _load_libc()


def release_freed() -> None:
    """Return the heap's free memory to the operating system (glibc's malloc_trim)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
