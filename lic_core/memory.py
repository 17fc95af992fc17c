"""Give freed memory back to the system between the stages of a big coding job (issue 28).

Why: glibc serves allocations below its mmap threshold (which grows to 32 MB as big blocks are
freed) from its heap, and keeps freed heap pages resident.  A stage of a 12 MP photo frees a few
hundred MB of tile temporaries that the next stage, with other sizes, cannot always reuse, so the
resident size grew by that much per stage (measured: ~200 MB of free heap at 12 MP).
``malloc_trim(0)`` at a stage boundary hands those pages back (``madvise``); the next stage
touches only what it needs again.  Elsewhere (macOS, Windows, musl) this is a no-op.
"""
from __future__ import annotations

import ctypes
import sys
from typing import Callable, Optional

_TRIM: Optional[Callable[[int], int]] = None
_LOOKED = False


def _trim_function() -> Optional[Callable[[int], int]]:
    global _TRIM, _LOOKED
    if not _LOOKED:
        _LOOKED = True
        if sys.platform.startswith("linux"):
            try:
                _TRIM = ctypes.CDLL(None).malloc_trim
                _TRIM.argtypes, _TRIM.restype = [ctypes.c_size_t], ctypes.c_int
            except (OSError, AttributeError):  # not glibc
                _TRIM = None
    return _TRIM


#: below this many bytes of working data a trim is not worth its few milliseconds
TRIM_ABOVE = 64 << 20


def release_free_memory(working_bytes: int = TRIM_ABOVE) -> None:
    """Return the allocator's free pages to the system (glibc ``malloc_trim(0)``) when the job's
    ``working_bytes`` (e.g. its latent) are big enough for the stages to leave much behind."""
    if working_bytes < TRIM_ABOVE:
        return
    fn = _trim_function()
    if fn is not None:
        fn(0)


def available_bytes() -> Optional[int]:
    """Memory the machine can give now without swapping (Linux ``MemAvailable``), or None where
    it cannot be read (then callers do not refuse work on a guess)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
