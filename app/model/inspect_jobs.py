"""The inspector's maps, computed where they cost nothing to the window (Qt-free).

A 24 MP learned encoding has latents of 320 channels × 250 × 375 positions, four arrays of them:
a sum over channels, a sort of the channels by bits or the residual (ŷ − μ)/σ of every channel
is per-element work on ~30 M values.  So:

* :func:`prepare` (run by the encode worker) computes once per inspection what every view
  needs — channels ordered by bits, bits per channel, the bits map summed over channels — and
  caches it by the inspection's identity (it goes with the encoding);
* :func:`latent_view` draws the channel mosaic from the 16 channels shown only (never a
  quantity of all channels), with the tiles block-averaged to :data:`TILE_MAX` px so a big
  image's latents stay readable in a dock; the studio runs it in a worker when the
  inspection :func:`is_heavy`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from lic_core.codecs import Inspection
from lic_core.rate.accounting import latent_stride

from . import inspect_maps
from .display import IdentityCache

#: latent elements (M × h × w) above which the views compute their maps in a worker (a
#: 1 MP image's latents at M = 320 are ~1.3 M elements: those stay on the GUI thread)
HEAVY_ELEMENTS = 4_000_000
#: long side of one mosaic tile (block-averaged beyond it): a dock of ~450 px shows four
TILE_MAX = 160


@dataclass(frozen=True)
class LatentSummary:
    """Whole-latent reductions of one inspection (computed once)."""

    order: np.ndarray  # channel indices, most bits first
    channel_bits: np.ndarray  # bits of each channel (M)
    total_bits: float
    bits_sum: np.ndarray  # h × w: bits per position, summed over channels (float64)


_summaries: IdentityCache[LatentSummary] = IdentityCache()


def is_heavy(insp: Optional[Inspection]) -> bool:
    return insp is not None and int(insp.y_hat.size) > HEAVY_ELEMENTS


def summary(insp: Inspection) -> LatentSummary:
    """The cached :class:`LatentSummary` of ``insp`` (computed now when no worker did)."""
    hit = _summaries.get(insp)
    if hit is not None:
        return hit
    bits = insp.bits_y
    per_channel = bits.reshape(bits.shape[0], -1).sum(1, dtype=np.float64)
    order = np.argsort(-per_channel, kind="stable")  # = lic_core.rate.accounting.channel_order
    return _summaries.put(insp, LatentSummary(order, per_channel, float(per_channel.sum()),
                                              inspect_maps.bits_map(insp, "bits_y")))


def prepare(insp: Optional[Inspection]) -> None:
    """Compute ``insp``'s summary now (worker threads, right after the encode)."""
    if insp is not None and is_heavy(insp):
        summary(insp)


def bits_view(insp: Inspection, kind: str = "bits_y", channel: Optional[int] = None
              ) -> np.ndarray:
    """Bits per latent position (:func:`inspect_maps.bits_map`), the channel sum cached."""
    if kind == "bits_y" and channel is None:
        return summary(insp).bits_sum
    return inspect_maps.bits_map(insp, kind, channel)


def heatmap_lowres(insp: Inspection, height: int, width: int, kind: str = "bits_y"
                   ) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The bits-per-pixel overlay at latent resolution and the image rectangle it covers
    ``(x, y, w, h)``: the same picture as :func:`inspect_maps.heatmap_for_image` once drawn
    nearest-neighbour, without making an ``H×W`` array (the view stretches it and clips it
    to the image)."""
    m = bits_view(insp, kind)
    stride = latent_stride(m.shape, (height, width))
    pad = (getattr(insp, "extras", None) or {}).get("padding")
    left, top = (int(pad[0]), int(pad[2])) if pad else (0, 0)
    lh, lw = m.shape
    return (m / float(stride * stride),
            (-float(left), -float(top), float(lw * stride), float(lh * stride)))


def _plane(insp: Inspection, quantity: str, c: int) -> np.ndarray:
    """One channel of a latent quantity (the residual of that channel only)."""
    if quantity == "residual":
        return (insp.y_hat[c] - insp.means[c]) / np.maximum(insp.scales[c], 1e-6)
    return inspect_maps.latent_quantity(insp, quantity)[c]


def block_mean(plane: np.ndarray, k: int) -> np.ndarray:
    """``plane`` averaged over ``k × k`` blocks (a partial last block averages what it has)."""
    if k <= 1:
        return plane.astype(np.float32)
    h, w = plane.shape
    ph, pw = -(-h // k) * k, -(-w // k) * k
    p = np.full((ph, pw), np.nan, np.float64)
    p[:h, :w] = plane
    with np.errstate(invalid="ignore"):
        return np.nanmean(p.reshape(ph // k, k, pw // k, k), axis=(1, 3)).astype(np.float32)


@dataclass
class LatentView:
    """What the latent browser draws for one (quantity, rank, scale) choice."""

    mosaic: np.ndarray  # NaN in the gaps between tiles
    levels: tuple[float, float]
    channel_array: np.ndarray
    channel: int
    rank: int
    channels: int
    tile_factor: int
    info: str


def latent_view(insp: Inspection, quantity: str, rank: int, shared: bool,
                count: int = 16, cols: int = 4) -> LatentView:
    """The mosaic of ``count`` channels from ``rank`` (by bits) and the chosen channel large."""
    s = summary(insp)
    m, lh, lw = insp.y_hat.shape
    rank = min(max(int(rank), 0), m - 1)
    chosen = [int(c) for c in s.order[rank:rank + count]]
    k = max(1, math.ceil(max(lh, lw) / TILE_MAX))
    tiles = np.stack([block_mean(_plane(insp, quantity, c), k) for c in chosen])
    mosaic = inspect_maps.channel_mosaic(tiles, np.arange(len(chosen)), count, cols=cols,
                                         shared=shared)
    levels = inspect_maps.robust_range(mosaic) if shared else (0.0, 1.0)
    ch = chosen[0]
    channel_array = np.asarray(_plane(insp, quantity, ch), dtype=np.float32)
    bits = float(s.channel_bits[ch])
    groups = np.cumsum(insp.channel_groups) if insp.channel_groups else np.array([m])
    g = int(np.searchsorted(groups, ch, side="right"))
    shrink = f" · tiles at 1/{k}" if k > 1 else ""
    info = (f"ŷ: {m} channels × {lh}×{lw} · channel {ch} (group g{g}) carries {bits:.0f} bits "
            f"({100 * bits / max(s.total_bits, 1e-9):.1f} % of y){shrink}")
    return LatentView(mosaic, levels, channel_array, ch, rank, m, k, info)
