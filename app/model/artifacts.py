"""The artifact finder (issue 30 item 11): where do two pictures differ *perceptually*, ranked.

Between any two of the original and the panes' reconstructions, a per-pixel difference map —

* ``lpips``: the spatial LPIPS map (lic_core's AlexNet LPIPS with ``spatial=True``: each pixel's
  contribution to the distance; its mean is the LPIPS distance), or
* ``ssim``: 1 − SSIM (Gaussian window σ = 1.5, the constants of MS-SSIM), per pixel, mean
  over RGB —

is cut into tiles; each tile is scored by the map's mean over it and the tiles are ranked, most
different first.  The studio's "next artifact" walks this list with the synced view; the list
exports as CSV with a crop of both pictures per tile.  Everything here is Qt-free; the map is
computed in a worker (:func:`run_artifacts`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from lic_core.errors import CancelledError, LicError

from . import display
from .session import CancelToken

KINDS = {"lpips": "LPIPS (local)", "ssim": "1 − SSIM"}
#: below this many pixels on the short side the LPIPS map is undefined (AlexNet's pooling)
LPIPS_MIN_SIDE = 31
ProgressSink = Callable[[float, str], None]


def ssim_map(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Per-pixel 1 − SSIM of two ``uint8 H×W×3`` pictures (mean over RGB; 0 = identical).

    Gaussian-weighted local statistics (σ = 1.5, truncated at 3.5σ: the 11-tap window of
    MS-SSIM) with its constants K1 = 0.01, K2 = 0.03 on the 0…255 range; borders reflect."""
    from scipy.ndimage import gaussian_filter

    if a.shape != b.shape:
        raise LicError(f"pictures differ in size: {a.shape[1]}×{a.shape[0]} vs "
                       f"{b.shape[1]}×{b.shape[0]}")
    x = a.astype(np.float64)
    y = b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(v):
        return gaussian_filter(v, sigma=(sigma, sigma, 0), truncate=3.5, mode="reflect")

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return np.clip(1.0 - s.mean(axis=2), 0.0, 2.0).astype(np.float32)


def lpips_spatial_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The spatial LPIPS map (``H×W`` float32; lic_core.metrics.lpips_map)."""
    if min(a.shape[:2]) < LPIPS_MIN_SIDE:
        raise LicError(f"local LPIPS needs at least {LPIPS_MIN_SIDE} px on the short side "
                       f"(this image is {a.shape[1]}×{a.shape[0]}): choose 1 − SSIM")
    from lic_core.metrics import lpips_map

    return np.asarray(lpips_map(a, b), dtype=np.float32)


def difference_map(a: np.ndarray, b: np.ndarray, kind: str) -> np.ndarray:
    if kind == "lpips":
        return lpips_spatial_map(a, b)
    if kind == "ssim":
        return ssim_map(a, b)
    raise LicError(f"unknown difference '{kind}' (choose {', '.join(KINDS)})")


@dataclass(frozen=True)
class Tile:
    """One ranked tile: image pixels ``[x, x+w) × [y, y+h)`` and its mean difference."""

    rank: int
    x: int
    y: int
    w: int
    h: int
    score: float

    @property
    def rect(self) -> list[float]:
        return [float(self.x), float(self.y), float(self.x + self.w), float(self.y + self.h)]

    def view_rect(self, shape: tuple[int, int], context: float = 3.0) -> list[float]:
        """A square-ish view around the tile, ``context`` times its size, inside the image."""
        h, w = shape
        side = max(self.w, self.h) * context
        cx, cy = self.x + self.w / 2, self.y + self.h / 2
        x0 = min(max(0.0, cx - side / 2), max(0.0, w - side))
        y0 = min(max(0.0, cy - side / 2), max(0.0, h - side))
        return [x0, y0, min(float(w), x0 + side), min(float(h), y0 + side)]


def rank_tiles(dmap: np.ndarray, tile: int = 32, count: int = 20) -> list[Tile]:
    """The ``count`` tiles of a ``tile``-pixel grid with the largest mean difference, most
    different first (edge tiles are smaller; NaN pixels are ignored)."""
    h, w = dmap.shape
    tile = max(4, int(tile))
    found = []
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            block = dmap[y:y + tile, x:x + tile]
            if block.size == 0 or not np.isfinite(block).any():
                continue
            found.append((float(np.nanmean(block)), x, y, block.shape[1], block.shape[0]))
    found.sort(key=lambda t: (-t[0], t[2], t[1]))
    return [Tile(rank=k + 1, x=x, y=y, w=tw, h=th, score=sc)
            for k, (sc, x, y, tw, th) in enumerate(found[:max(1, int(count))])]


@dataclass
class ArtifactRequest:
    """Everything the worker needs: the two pictures (read-only arrays) and how to compare."""

    a: np.ndarray
    b: np.ndarray
    names: tuple[str, str]
    kind: str = "lpips"
    tile: int = 32
    count: int = 20
    image_id: str = ""
    token: CancelToken = field(default_factory=CancelToken)


@dataclass
class ArtifactResult:
    kind: str
    names: tuple[str, str]
    map: np.ndarray  # H×W float32, higher = more different
    tiles: list[Tile]
    tile: int
    image_id: str = ""
    #: the map as the tab draws it: block-averaged by ``shown_factor`` for a big picture (made
    #: in the worker: the GUI thread never touches an H×W map of 24 MP)
    shown: Optional[np.ndarray] = None
    shown_factor: int = 1
    _vmax: Optional[float] = None
    #: the map's mean (NaN ignored), computed by the worker
    mean: float = float("nan")

    @property
    def vmax(self) -> float:
        if self._vmax is None:
            finite = self.map[np.isfinite(self.map)]
            self._vmax = (float(finite.max()) if finite.size and float(finite.max()) > 0
                          else 1.0)
        return self._vmax

    def display_map(self) -> np.ndarray:
        """What the tab shows (NaN → 0): the map itself when small."""
        return self.shown if self.shown is not None else np.nan_to_num(self.map, nan=0.0)

    @property
    def title(self) -> str:
        return f"{KINDS.get(self.kind, self.kind)}: {self.names[0]} vs {self.names[1]}"

    def rows(self) -> list[dict]:
        """The ranked list as CSV rows."""
        return [{"rank": t.rank, "x": t.x, "y": t.y, "width": t.w, "height": t.h,
                 "score": round(t.score, 6), "measure": self.kind, "a": self.names[0],
                 "b": self.names[1]} for t in self.tiles]


def run_artifacts(req: ArtifactRequest, sink: Optional[ProgressSink] = None) -> ArtifactResult:
    """Difference map and ranked tiles (worker thread; cancellable between stages)."""
    def progress(f: float, msg: str) -> None:
        if req.token.cancelled:
            raise CancelledError("cancelled")
        if sink is not None:
            sink(f, msg)

    progress(0.0, f"{KINDS.get(req.kind, req.kind)} map")
    dmap = difference_map(req.a, req.b, req.kind)
    progress(0.8, "ranking tiles")
    tiles = rank_tiles(dmap, req.tile, req.count)
    result = ArtifactResult(kind=req.kind, names=tuple(req.names), map=dmap, tiles=tiles,
                            tile=int(req.tile), image_id=req.image_id)
    result.vmax  # noqa: B018 - computed here, in the worker, once
    result.mean = float(np.nanmean(dmap)) if np.isfinite(dmap).any() else float("nan")
    f = display.preview_factor(*dmap.shape)
    if f > 1:
        from .inspect_jobs import block_mean

        progress(0.9, "display map")
        result.shown = np.nan_to_num(block_mean(dmap, f), nan=0.0)
        result.shown_factor = f
    progress(1.0, "done")
    return result


def crop_strip(images: list[np.ndarray], tile: Tile, margin: int = 8, gap: int = 4,
               scale: int = 0) -> np.ndarray:
    """The tile (with ``margin`` pixels of context) cut from each picture, side by side on a
    white strip; small tiles are enlarged (nearest neighbour) to ≥ 128 px so the artifact is
    visible in the export."""
    h, w = images[0].shape[:2]
    x0, y0 = max(0, tile.x - margin), max(0, tile.y - margin)
    x1, y1 = min(w, tile.x + tile.w + margin), min(h, tile.y + tile.h + margin)
    crops = [np.ascontiguousarray(im[y0:y1, x0:x1, :3]) for im in images]
    k = scale or max(1, math.ceil(128 / max(1, max(y1 - y0, x1 - x0))))
    crops = [c.repeat(k, axis=0).repeat(k, axis=1) for c in crops]
    ch, cw = crops[0].shape[:2]
    out = np.full((ch, len(crops) * cw + (len(crops) - 1) * gap, 3), 255, np.uint8)
    for i, c in enumerate(crops):
        out[:, i * (cw + gap): i * (cw + gap) + cw] = c
    return out


def export_artifacts(folder: str | Path, result: ArtifactResult,
                     images: dict[str, np.ndarray], overwrite: bool = False) -> Path:
    """Write ``artifacts.csv`` (the ranked list) and one PNG per tile (``crops/rank_NN.png``:
    the tile in each picture of ``images``, side by side) into ``folder``; returns the CSV."""
    from . import export

    folder = Path(folder)
    names = list(images)
    rows = []
    for t, row in zip(result.tiles, result.rows()):
        rel = f"crops/rank_{t.rank:02d}.png"
        export.save_png(folder / rel, crop_strip([images[n] for n in names], t), overwrite)
        rows.append(dict(row, crop=rel, crop_order=" | ".join(names)))
    return export.atomic_write_bytes(folder / "artifacts.csv", export.csv_bytes(rows), overwrite)
