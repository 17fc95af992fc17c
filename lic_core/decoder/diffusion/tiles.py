"""The tiled sampler of the diffusion decoder: tiles define the picture (issue 28).

The blurring-diffusion sampler is global (a whole-picture DCT, GroupNorm statistics and linear
attention over the whole picture), so it cannot be cut into tiles that reproduce its picture.
Instead, a picture larger than one tile is *defined* by tiles: each tile of the fixed grid below is
sampled on its own, for all steps, by the exact sampler of :mod:`.exact` (its own DCT of the tile
size, its own normalisation and attention statistics — the network learned on 128×128 crops, each
with its own DCT and statistics), conditioned on the contexts of its region (the exact g_s
features, computed with halos: the same values as the whole picture's), and the tiles' final
values are blended in their overlaps with fixed integer weights. Everything is exact, so the
picture is the same on every machine, thread count and device. docs/diffusion.md, "Big pictures:
the tiled sampler".

* **Grid** (a pure function of the padded size H×W and (T, O)): along an axis of n pixels, one
  tile of n pixels when n ≤ T; otherwise k = 1 + ⌈(n − T)/(T − O)⌉ tiles of T pixels whose starts
  are spread evenly from 0 to n − T on the 16-pixel lattice: a_i = 16·⌊i·(n − T)/16 / (k − 1)⌋.
  The first tile starts at 0, the last ends at n; neighbours overlap by at least O (and the steps
  differ by at most 16 pixels). Tiles are numbered in raster order (row of tiles, then column).
* **Noise**: tile i draws its Philox noise from stream i + 1 (the fourth counter word;
  :func:`lic_core.exact.rng.normal`) under the file's seed — the whole-picture sampler is stream 0.
* **Blend**: per axis, in the overlap of tiles i and i + 1 a ramp of O pixels centred in the
  overlap, tile i + 1 weighing ``up(j) = ⌊(2^B·(2j + 1) + O) / (2O)⌋`` at the ramp's pixel j and
  tile i ``2^B − up(j)``; 2^B before/after the ramp, 0 outside the tile (B = :data:`BLEND_BITS`).
  A tile's 2-D weight is the product of its row and column weights, so at every pixel the weights
  sum to exactly 2^(2B). The tiles' last-step values are on the pixel grid (integers × 2^−20,
  |x| ≤ 32); Σ weight·integer < 2^53 is an exact sum in any order, and the division by 2^(20+2B)
  is exact. Then, as for one picture, x/a_0 and the uint8 rounding.
* A picture whose padded size fits one tile (both sides ≤ T) uses the whole-picture sampler: its
  picture is the one the decoder always made.

``$LIC_DIFFUSION_TILE`` ("T" or "T,O") changes the tiling a new file is *encoded* with (tests use
small tiles); a file records the T and O its picture check was made with (format v3,
docs/bitstream.md) and decodes with them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ...bitstream.format import sampler_tiling_error
from ...errors import LicError

#: the product's tiling: 768 px tiles, 64 px overlaps (the blend ramp's width). Why 768 and not
#: 1024 (the first choice): peak memory at 48 MP, issue 28's 2.5 GB limit — `lic compress
#: --decoder diffusion` of a 48 MP photo (1 thread, 1 step) peaked at 2.28 GB with T = 768; the
#: same encode with T = 1024 reached 2.77 GB by tile 23 of 54 (one tile's sampler adds ~1 GB at
#: T = 768 to the ~1.3 GB the picture's latents, pictures and process hold). Kodak (768×512)
#: still fits one tile: its picture is the whole-picture sampler's, as before; files record their
#: T, so T = 1024 files decode as written.
TILE = 768
OVERLAP = 64
#: bits of the blend weights per axis (a tile's 2-D weights are products: they sum to 2^(2B))
BLEND_BITS = 10
#: the pixel lattice tile starts sit on (one latent: contexts at every scale stay aligned)
ALIGN = 16
ENV = "LIC_DIFFUSION_TILE"


def check_tiling(tile: int, overlap: int) -> None:
    """Raise :class:`LicError` (one line) for an invalid (T, O)."""
    why = sampler_tiling_error(tile, overlap)
    if why:
        raise LicError(f"invalid diffusion sampler tiling: {why}")


def sampler_tiling() -> tuple[int, int]:
    """(T, O) new files are encoded with: ``$LIC_DIFFUSION_TILE`` ("T" or "T,O"), else the
    product's (:data:`TILE`, :data:`OVERLAP`)."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return TILE, OVERLAP
    try:
        parts = [int(p) for p in raw.split(",")]
    except ValueError:
        raise LicError(f"${ENV} must be 'T' or 'T,O' (integers), got {raw!r}") from None
    if len(parts) not in (1, 2):
        raise LicError(f"${ENV} must be 'T' or 'T,O', got {raw!r}")
    tile = parts[0]
    overlap = parts[1] if len(parts) == 2 else OVERLAP
    check_tiling(tile, overlap)
    return tile, overlap


def fits_one_tile(height: int, width: int, tile: int) -> bool:
    """Whether an H×W (padded) picture is one tile: then the whole-picture sampler runs."""
    return height <= tile and width <= tile


def axis_starts(n: int, tile: int, overlap: int) -> list[int]:
    """Starts of the tiles along an axis of ``n`` pixels (see the module docstring)."""
    if n <= tile:
        return [0]
    if n % ALIGN or tile % ALIGN:
        raise ValueError(f"tiled axes are multiples of {ALIGN} pixels, got {n}")
    step = tile - overlap
    k = 1 + -(-(n - tile) // step)
    d = (n - tile) // ALIGN
    return [ALIGN * (i * d // (k - 1)) for i in range(k)]


def _ramp(overlap: int, bits: int) -> list[int]:
    """The rising weights of a ramp: up(j) for j in [0, O)."""
    return [((1 << bits) * (2 * j + 1) + overlap) // (2 * overlap) for j in range(overlap)]


def axis_weights(n: int, tile: int, overlap: int, bits: int = BLEND_BITS) -> list[torch.Tensor]:
    """Per tile of the axis, its integer weights (int64, one per pixel of the tile)."""
    starts = axis_starts(n, tile, overlap)
    size = min(n, tile)
    full = 1 << bits
    up = torch.tensor(_ramp(overlap, bits), dtype=torch.int64)
    # ramp i (between tiles i and i + 1): [lo_i, lo_i + O), centred in their overlap
    ramps = [(a + b + size) // 2 - overlap // 2 for a, b in zip(starts, starts[1:])]
    for i, lo in enumerate(ramps):
        if lo < starts[i + 1] or lo + overlap > starts[i] + size:
            raise AssertionError("blend ramp outside the overlap")
        if i and lo < ramps[i - 1] + overlap:
            raise AssertionError("blend ramps overlap")
    out = []
    for i, a in enumerate(starts):
        w = torch.full((size,), full, dtype=torch.int64)
        if i > 0:  # rising over the ramp with the previous tile, 0 before it
            lo = ramps[i - 1] - a
            w[:lo] = 0
            w[lo:lo + overlap] = up
        if i < len(starts) - 1:  # falling over the ramp with the next tile, 0 after it
            lo = ramps[i] - a
            w[lo:lo + overlap] = full - up
            w[lo + overlap:] = 0
        out.append(w)
    return out


@dataclass(frozen=True)
class Tile:
    """One tile: its index (raster order), its region [r0, r0+h) × [c0, c0+w) in padded picture
    pixels, and its row and column blend weights."""

    index: int
    r0: int
    c0: int
    h: int
    w: int
    row_weights: torch.Tensor
    col_weights: torch.Tensor

    @property
    def stream(self) -> int:
        """The Philox stream of its noise (the whole-picture sampler's is 0)."""
        return self.index + 1

    def weights(self) -> torch.Tensor:
        """h×w float64 integer weights (row × column: exact)."""
        return (self.row_weights[:, None] * self.col_weights[None, :]).to(torch.float64)


@dataclass(frozen=True)
class TileGrid:
    """The tiles of an H×W (padded) picture for (T, O), in raster order."""

    height: int
    width: int
    tile: int
    overlap: int

    def __post_init__(self) -> None:
        check_tiling(self.tile, self.overlap)

    @property
    def row_starts(self) -> list[int]:
        return axis_starts(self.height, self.tile, self.overlap)

    @property
    def col_starts(self) -> list[int]:
        return axis_starts(self.width, self.tile, self.overlap)

    @property
    def tile_size(self) -> tuple[int, int]:
        return min(self.height, self.tile), min(self.width, self.tile)

    def __len__(self) -> int:
        return len(self.row_starts) * len(self.col_starts)

    def tiles(self) -> list[Tile]:
        rw = axis_weights(self.height, self.tile, self.overlap)
        cw = axis_weights(self.width, self.tile, self.overlap)
        th, tw = self.tile_size
        cols = self.col_starts
        return [Tile(i * len(cols) + j, r0, c0, th, tw, rw[i], cw[j])
                for i, r0 in enumerate(self.row_starts) for j, c0 in enumerate(cols)]
