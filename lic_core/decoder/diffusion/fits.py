"""Refuse a diffusion decode the machine cannot hold, in one line, before it starts (issue 28).

Why: unlike g_s, the blur-dissipated diffusion decoder is global — its blur is a whole-picture
DCT (dense H×H and W×W matrices), its U-Net normalises with GroupNorm statistics over the whole
picture and attends over it (linear attention) — so tiles with halos cannot reproduce its picture,
and its memory grows with the picture: about 1.1 GB per megapixel beside ~0.8 GB fixed (measured
with ``benchmarks/stage_memory.py``: 1.1 GB at 0.25 MP, 1.95 GB at 1 MP). Running out of memory
halfway through a 24 MP decode would cost the user minutes and end in a killed process; the
honest answer is to say so first. A tiled diffusion decoder would change the picture, so it
would be a new decoder (new files), not a fix of this one.
"""
from __future__ import annotations

from ...errors import LicError
from ...memory import available_bytes

#: measured peak of the exact diffusion decode per picture pixel (bytes) and its fixed part
BYTES_PER_PIXEL = 1.15e3
FIXED_BYTES = 0.8e9


def diffusion_bytes(height: int, width: int) -> float:
    """Estimated peak bytes of the exact diffusion decode of an ``height``×``width`` picture."""
    return FIXED_BYTES + BYTES_PER_PIXEL * height * width


def check_diffusion_fits(height: int, width: int, available: float | None = None) -> None:
    """Raise :class:`LicError` when the estimate exceeds the memory available now (``available``:
    bytes, default the machine's ``MemAvailable``; unknown: no refusal)."""
    free = available_bytes() if available is None else available
    need = diffusion_bytes(height, width)
    if free is None or need <= free:
        return
    mp = height * width / 1e6
    raise LicError(f"the diffusion decoder holds the whole picture (about 1.1 GB per megapixel): a "
                   f"{mp:.1f}-megapixel picture needs about {need / 1e9:.1f} GB and this machine "
                   f"has {free / 1e9:.1f} GB free; use the mse or gan decoder, or a machine with "
                   "more memory")
