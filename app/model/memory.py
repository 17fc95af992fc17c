"""Memory of big images: what opening one will need, what the process holds, giving it back
(issue 28 item 3; Qt-free).

The studio keeps the original and every pane's reconstruction (3 bytes a pixel each) and runs,
in its workers, encodes and metrics whose working memory grows with the pixels.  The estimate
below is made from the pixel count alone, before the picture is decoded, so a picture that
cannot fit is refused in one line instead of taking the machine into swap (issue 28: a
6000×4000 photo peaked at 15.4 GB with no warning).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from lic_core.errors import LicError

GIB = 1024 ** 3

# Working memory per pixel of one job, measured at 24 MP (6000×4000) on this project's
# machines; the estimate scales them linearly (what they are is said next to each).
#: PSNR (lic_core.metrics.psnr): +0.04 GB at 24 MP (1.6 B/px, 2026-12-07), rounded up
PSNR_BYTES_PER_PIXEL = 4
#: MS-SSIM in bands of rows (lic_core.metrics.msssim.ms_ssim: a band's float64 maps and the
#: float32 half-size copies of both pictures): +0.38 GB at 24 MP (16.8 B/px, 14 s; it was
#: +6.4 GB when each scale's maps were made whole); the studio scores one at a time.  Below
#: the encodes' figures now, so ``check``'s "turn off MS-SSIM" warning is a kept fallback for a
#: heavier metric, not a case that arises with these numbers
MS_SSIM_BYTES_PER_PIXEL = 17
#: a classical codec through Pillow: the RGB buffer, the file, the decoded picture
CLASSICAL_BYTES_PER_PIXEL = 16
#: a learned codec's encode + decode in a pane: 0.55 GB per megapixel before lic_core's tiles
#: (issue 28's table); with the tiled transforms a 12 MP ``lic compress`` peaks ~0.9 GB above
#: the process (~75 B/px), and the studio also decodes and keeps the inspection's latents
#: (~20 B/px).  benchmarks/gui_stall.py, 24 MP with lic-lgem-cpu + JPEG and MS-SSIM after:
#: peak 2.87 GB, 2.15 GB above the process before opening (90 B/px for everything; it was
#: 9.2 GB before the banded MS-SSIM and the tiled encoder); 100 B/px keeps a margin
LEARNED_BYTES_PER_PIXEL = 100
#: the interpreter, torch, Qt and the weights before any picture is opened
BASE_BYTES = 1 * GIB
#: encodes that run at once (the studio's worker pool: one per compared pane)
PARALLEL_ENCODES = 2


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes the studio would need for one picture: ``minimum`` to open it and compare it with
    classical codecs, ``with_codecs`` with the chosen codecs of the shown panes."""

    pixels: int
    minimum: int
    with_codecs: int


def estimate(height: int, width: int, families: Iterable[str] = ("classical", "classical"),
             ms_ssim: bool = True) -> MemoryEstimate:
    """What opening an ``height × width`` picture and encoding it in panes of the codec
    ``families`` ("learned" / "classical") needs, from the pixel count alone."""
    px = int(height) * int(width)
    fams = list(families) or ["classical"]
    hold = px * 3 * (1 + len(fams)) + px  # original, reconstructions, previews and crops

    def need(per_pixel: list[int]) -> int:
        per_pixel = sorted(per_pixel, reverse=True)[:PARALLEL_ENCODES]
        encodes = sum(p + PSNR_BYTES_PER_PIXEL for p in per_pixel) * px
        scoring = MS_SSIM_BYTES_PER_PIXEL * px if ms_ssim else 0
        return BASE_BYTES + hold + max(encodes, scoring)

    chosen = [LEARNED_BYTES_PER_PIXEL if f == "learned" else CLASSICAL_BYTES_PER_PIXEL
              for f in fams]
    minimum = need([CLASSICAL_BYTES_PER_PIXEL] * len(fams))
    return MemoryEstimate(px, minimum, max(minimum, need(chosen)))


def _meminfo(key: str) -> Optional[int]:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def total_ram() -> int:
    """Physical memory of the machine in bytes."""
    got = _meminfo("MemTotal")
    if got:
        return got
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 16 * GIB  # unknown platform: assume an ordinary laptop


def available_ram() -> int:
    """Memory the machine can give now without swapping (``MemAvailable``)."""
    return _meminfo("MemAvailable") or total_ram()


def rss() -> int:
    """Resident memory of this process in bytes."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # peak: best known


def gb(n: float) -> str:
    return f"{n / GIB:.1f} GB"


def check(height: int, width: int, families: Iterable[str] = ("classical", "classical"),
          name: str = "the image", ms_ssim: bool = True,
          total: Optional[int] = None, available: Optional[int] = None) -> str:
    """Refuse (one-line :class:`LicError`) a picture the machine cannot hold even with classical
    codecs; return a one-line warning when the chosen codecs would need more than is free now,
    else ``""``."""
    est = estimate(height, width, families, ms_ssim)
    bare = estimate(height, width, families, ms_ssim=False)
    total = total_ram() if total is None else total
    mpx = est.pixels / 1e6
    if bare.minimum > total:
        raise LicError(f"{name} is {width}×{height} ({mpx:.0f} MP): the studio would need about "
                       f"{gb(bare.minimum)} to open and compare it, and this machine has "
                       f"{gb(total)}; downscale it first")
    if est.minimum > total:
        return (f"{name} ({mpx:.0f} MP): its MS-SSIM would need about {gb(est.minimum)}, more "
                f"than this machine's {gb(total)}; turn off View → Compute MS-SSIM")
    available = available_ram() if available is None else available
    if est.with_codecs > available:
        return (f"{name} ({mpx:.0f} MP) may need about {gb(est.with_codecs)} with these codecs; "
                f"{gb(available)} is free now (close other programs, or use fewer or "
                "classical panes)")
    return ""


def image_size(path: str | Path) -> Optional[tuple[int, int]]:
    """``(height, width)`` from the file's header (nothing decoded), None when Pillow cannot
    tell (the loader then says why)."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            w, h = im.size
        return int(h), int(w)
    except Exception:  # noqa: BLE001 - any unreadable file is the loader's to explain
        return None


_libc = None


def release(background: bool = True) -> None:
    """Give freed memory back to the system.

    Big arrays are freed by reference counting the moment the last view drops them; what is
    left is glibc keeping the freed pages of its arenas (the mid-sized blocks torch and numpy
    free in worker threads), which ``malloc_trim(0)`` returns.  It runs in a short-lived thread
    by default (ctypes releases the GIL: the window never waits for it).  Only the young
    generations are collected here: a full ``gc.collect()`` takes ~0.4 s with torch loaded,
    a stall the studio must not have; reference cycles holding pictures are not expected.
    """
    global _libc
    gc.collect(1)
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            _libc = ctypes.CDLL(name) if name else False
        except OSError:
            _libc = False
    trim = getattr(_libc, "malloc_trim", None) if _libc else None
    if trim is None:
        return
    if background:
        threading.Thread(target=trim, args=(0,), name="malloc_trim", daemon=True).start()
    else:
        trim(0)
