"""Give freed memory back to the system between the stages of a big coding job (issue 28), and
let a short-lived `lic` process reuse freed blocks instead of faulting them in anew.

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


#: glibc's mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
#: blocks up to this size come from the heap under :func:`reuse_freed_memory`
REUSE_LIMIT = 1 << 30


def reuse_freed_memory(limit: int = REUSE_LIMIT) -> bool:
    """For a short-lived coding process (the CLI's compress and decompress): glibc serves blocks
    up to ``limit`` bytes from its heap and keeps freed heap pages for the next blocks.

    Why (issue 28 item 2): by default glibc maps every block above its mmap threshold (at most
    32 MB) fresh from the kernel and unmaps it when freed, and hands the heap's top back above
    64 MB, so the exact networks' per-layer tensors — allocated and freed layer after layer —
    cost a page fault and a zeroing for every 4 KB they touch.  Measured with `lic` beside other
    jobs (lic-lgem-cpu, u = 0.5): 1 MP decompress 205 000–270 000 → 135 000–150 000 faults,
    median 2.95 → 2.82 s on 1 thread; 12 MP decompress (2 threads) 1.1–1.4 M → 0.53–0.59 M
    faults, system time 2.8–4.0 → 1.5–1.9 s, three pairs 47.3, 31.6, 28.9 → 31.4, 30.0, 26.6 s;
    48 MP decompress 3.3 M → 0.79 M faults, 216 → 153 s.  Peak RSS +0.1 GB at 1 and 12 MP
    (0.78 → 0.89, 1.06 → 1.17 GB); 48 MP decompress 1.70 → 1.75 GB, compress 2.13 → 2.03 GB
    (issue 28: ≤ 2.5 GB).  Freed pages still go back at the stage boundaries of a big job
    (:func:`release_free_memory`: ``malloc_trim`` releases any free heap page).

    One arena for every thread (``M_ARENA_MAX`` = 1): with 2 threads the exact g_s's tiles run
    in Python threads, and glibc gives each thread its own arena, whose freed blocks the other
    threads cannot reuse — the tiled diffusion sampler's resident size crept up tile after tile.
    Measured (`lic-lgem-cpu`, u = 0.5, 24 MP, diffusion compress, 2 threads, 1 step, the same
    glibc setting made through the ``MALLOC_ARENA_MAX=1`` environment variable): peak
    2.21 → 1.91 GB, 158 → 141 s; with this call (benchmarks/scale.py, 6 steps) the 48 MP
    diffusion compress peaked at 2.56 GB, 2.99 GB with arenas per thread.  Returns whether it applied (glibc only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    fn.argtypes, fn.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    limit = min(int(limit), 2 ** 31 - 1)
    # the mmap threshold first: setting the trim threshold alone also stops glibc's dynamic
    # mmap threshold, which would then map every block above 128 KB
    if not fn(_M_MMAP_THRESHOLD, limit):
        return False
    fn(_M_ARENA_MAX, 1)  # before the coding threads start (see above)
    return bool(fn(_M_TRIM_THRESHOLD, limit))


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
