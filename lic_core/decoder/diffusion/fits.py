"""Refuse a diffusion decode the machine cannot hold, in one line, before it starts (issue 28).

Why: unlike g_s, the blur-dissipated diffusion decoder is global — its blur is a whole-picture
DCT (dense H×H and W×W matrices), its U-Net normalises with GroupNorm statistics over the whole
picture and attends over it (linear attention) — so tiles with halos cannot reproduce its picture,
and its memory grows with the picture: about 1.1 GB per megapixel beside ~0.8 GB fixed (measured
with ``benchmarks/stage_memory.py``: 1.1 GB at 0.25 MP, 1.95 GB at 1 MP). Running out of memory
halfway through a 24 MP decode would cost the user minutes and end in a killed process; the
honest answer is to say so first.

The tiled sampler (:mod:`.tiles`, issue 28) holds one tile's sampler at a time: its estimate,
:func:`tiled_diffusion_bytes`, is one tile's decode plus the blend band and what is held per
picture pixel. Files whose picture it made record its tiling (format v3); files of the
whole-picture sampler (format v2) keep this check and its refusal.
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


#: held beside one tile's sampler by the tiled sampler, per pixel of the padded picture: ŷ⊙G
#: (float64, 10 B), the picture and the MSE picture (uint8, 3 B each; an upper bound when the
#: caller asks only for the MSE picture's CRC, as the codec does)
TILED_BYTES_PER_PICTURE_PIXEL = 16.0
#: the blend band: 3 float64 per pixel of a row of tiles
BAND_BYTES_PER_PIXEL = 24.0


def tiled_diffusion_bytes(height: int, width: int, tile_size: tuple[int, int]) -> float:
    """Estimated peak bytes of the tiled sampler (issue 28) on an ``height``×``width`` (padded)
    picture with tiles of ``tile_size``: one tile's decode as :func:`diffusion_bytes` estimates it,
    the band of blended rows and what is held per picture pixel."""
    th, tw = tile_size
    return (diffusion_bytes(th, tw) + BAND_BYTES_PER_PIXEL * th * width
            + TILED_BYTES_PER_PICTURE_PIXEL * height * width)


def check_tiled_diffusion_fits(height: int, width: int, tile_size: tuple[int, int],
                               available: float | None = None) -> None:
    """:func:`check_diffusion_fits` for the tiled sampler (its memory is per tile)."""
    free = available_bytes() if available is None else available
    need = tiled_diffusion_bytes(height, width, tile_size)
    if free is None or need <= free:
        return
    raise LicError(f"the diffusion decoder's tiled sampler needs about {need / 1e9:.1f} GB for a "
                   f"{height * width / 1e6:.1f}-megapixel picture and this machine has "
                   f"{free / 1e9:.1f} GB free; use the mse or gan decoder, or a machine with more "
                   "memory")
