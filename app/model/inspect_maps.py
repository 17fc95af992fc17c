"""Numpy helpers behind the "inside the codec" views (Qt-free): colormaps, channel mosaics,
latent quantities and difference images.

The rate accounting itself (bit maps, bits per pixel, the rate breakdown, latent strides) is
lic_core's (:mod:`lic_core.rate.accounting`); the views call it through the names below.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from lic_core.codecs import Inspection
from lic_core.rate.accounting import (
    bits_map,
    channel_order,
    heatmap_for_image,
    rate_breakdown,
    upsample_to_image,
)

__all__ = ["BITS_KINDS", "Inspection", "QUANTITIES", "add_colorbar", "bits_caption", "bits_kind",
           "bits_label", "bits_map", "channel_mosaic", "channel_order", "colorize",
           "colormap_lut", "diff_values", "heatmap_for_image", "heatmap_picture",
           "latent_quantity", "rate_breakdown", "robust_range", "upsample_to_image"]

QUANTITIES = ("y_hat", "means", "scales", "bits_y", "residual")
#: the entropy view's maps, in its chooser's order: (kind, per channel, label)
BITS_KINDS = (("bits_y", False, "bits_y (sum over channels)"),
              ("bits_y", True, "bits_y (one channel)"),
              ("bits_z", False, "bits_z (side info)"))

# Perceptually uniform colormaps as 10 evenly spaced anchors (matplotlib's published values);
# linear interpolation between them is visually indistinguishable for heatmaps.
_CMAP_HEX = {
    "viridis": "440154 482878 3e4989 31688e 26828e 1f9e89 35b779 6ece58 b5de2b fde725",
    "inferno": "000004 1b0c41 4a0c6b 781c6d a52c60 cf4446 ed6925 fb9b06 f7d13d fcffa4",
    "magma": "000004 180f3d 440f76 721f81 9e2f7f cd4071 f1605d fd9668 feca8d fcfdbf",
    "plasma": "0d0887 46039f 7201a8 9c179e bd3786 d8576b ed7953 fb9f3a fdca26 f0f921",
    "cividis": "00224e 123570 3b496c 575d6d 707173 8a8779 a69d75 c4b56c e4cf5b fee838",
    "turbo": "30123b 4662d7 36aaf9 1ae4b6 72fe5e c8ef34 faba39 f66b19 ca2a04 7a0403",
}


def colormap_lut(name: str, n: int = 256) -> np.ndarray:
    """``n×3`` uint8 lookup table for a colormap name (unknown names fall back to viridis)."""
    anchors = np.array([[int(h[i:i + 2], 16) for i in (0, 2, 4)]
                        for h in _CMAP_HEX.get(name, _CMAP_HEX["viridis"]).split()], float)
    xs = np.linspace(0, 1, len(anchors))
    t = np.linspace(0, 1, n)
    return np.stack([np.interp(t, xs, anchors[:, c]) for c in range(3)], 1).round().astype(
        np.uint8)


def colorize(values: np.ndarray, cmap: str = "viridis", vmin: Optional[float] = None,
             vmax: Optional[float] = None) -> np.ndarray:
    """Map a 2-D float array to uint8 RGB with ``cmap`` (NaN → black)."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    lo = float(np.min(v[finite])) if vmin is None and finite.any() else (vmin or 0.0)
    hi = float(np.max(v[finite])) if vmax is None and finite.any() else (vmax or 1.0)
    span = hi - lo if hi > lo else 1.0
    idx = np.clip((np.nan_to_num(v, nan=lo) - lo) / span * 255.0, 0, 255).astype(np.uint8)
    out = colormap_lut(cmap)[idx]
    out[~finite] = 0
    return out



def latent_quantity(insp: Inspection, quantity: str) -> np.ndarray:
    """``M×h×w`` array of ŷ, μ, σ, bits or the normalised residual (ŷ−μ)/σ."""
    if quantity == "y_hat":
        return insp.y_hat
    if quantity == "means":
        return insp.means
    if quantity == "scales":
        return insp.scales
    if quantity == "bits_y":
        return insp.bits_y
    if quantity == "residual":
        return (insp.y_hat - insp.means) / np.maximum(insp.scales, 1e-6)
    raise ValueError(f"unknown latent quantity '{quantity}'")


def robust_range(values: np.ndarray, lo_pct: float = 1.0, hi_pct: float = 99.0
                 ) -> tuple[float, float]:
    """(lo, hi) percentiles of the finite values: one outlier does not flatten the rest."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = (float(x) for x in np.percentile(v, (lo_pct, hi_pct)))
    if hi <= lo:
        lo, hi = float(v.min()), float(v.max())
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def channel_mosaic(arr: np.ndarray, order: np.ndarray, count: int = 16,
                   cols: int = 4, gap: int = 1, shared: bool = False) -> np.ndarray:
    """Tile the first ``count`` channels of ``order`` into one 2-D image.

    Per tile (default) each channel is scaled to [0, 1] between its own 1st and 99th
    percentiles (channels have very different ranges, and one outlier σ would otherwise paint a
    whole tile one colour); ``shared=True`` keeps the values as they are, for one colour scale
    over every tile (:func:`robust_range` of the result gives it), so magnitudes compare.  Gaps
    are NaN so they render black.  Shape: ``rows*(h+gap)-gap × cols*(w+gap)-gap``.
    """
    m, h, w = arr.shape
    sel = [int(c) for c in order[:count] if 0 <= int(c) < m]
    cols = max(1, min(cols, len(sel) or 1))
    rows = max(1, -(-len(sel) // cols))
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, np.float32)
    for k, c in enumerate(sel):
        r, q = divmod(k, cols)
        tile = arr[c].astype(np.float32)
        if not shared:
            lo, hi = robust_range(tile)
            tile = np.clip((tile - lo) / (hi - lo), 0.0, 1.0)
        out[r * (h + gap): r * (h + gap) + h, q * (w + gap): q * (w + gap) + w] = tile
    return out


def diff_values(a: np.ndarray, b: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """Per-pixel |a − b| averaged over RGB, times ``gain``, in 0..255 (float32)."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(axis=2, dtype=np.float32)
    return np.clip(d * float(gain), 0, 255)


def add_colorbar(rgb: np.ndarray, vmin: float, vmax: float, cmap: str = "viridis",
                 label: str = "", bar_width: int = 16) -> np.ndarray:
    """``rgb`` with a vertical colorbar to its right: the colormap from ``vmax`` (top) to
    ``vmin`` (bottom), five tick values and ``label`` (exported heatmaps and difference maps
    carry their scale; issue 30 item 10)."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = rgb.shape[:2]
    font = ImageFont.load_default()
    ticks = [vmin + (vmax - vmin) * k / 4 for k in range(5)]
    texts = [f"{t:.3g}" for t in ticks]
    probe = ImageDraw.Draw(Image.new("RGB", (4, 4)))
    text_w = max(int(probe.textlength(t, font=font)) for t in texts + [label])
    bar_h = max(h - 20, 40)
    width = w + 10 + bar_width + 6 + text_w + 6
    height = max(h, bar_h + 20)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    canvas.paste(Image.fromarray(np.ascontiguousarray(rgb[..., :3])), (0, 0))
    ramp = colormap_lut(cmap)[np.linspace(255, 0, bar_h).round().astype(int)]
    bar = np.repeat(ramp[:, None, :], bar_width, axis=1)
    x0, y0 = w + 10, 12
    canvas.paste(Image.fromarray(bar), (x0, y0))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([x0 - 1, y0 - 1, x0 + bar_width, y0 + bar_h], outline=(0, 0, 0))
    for t, text in zip(ticks, texts):
        y = y0 + (bar_h - 1) * (1 - (t - vmin) / (vmax - vmin if vmax > vmin else 1.0))
        draw.line([x0 + bar_width, y, x0 + bar_width + 4, y], fill=(0, 0, 0))
        draw.text((x0 + bar_width + 6, y - 5), text, fill=(0, 0, 0), font=font)
    if label:
        draw.text((x0, 0), label, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


# ---------------------------------------------------------------------------- bits heatmap

def bits_kind(choice: int, channel: int) -> tuple[str, Optional[int]]:
    """(kind, channel or None) of the entropy view's chooser entry ``choice``
    (:data:`BITS_KINDS`): the channel only counts for the per-channel map."""
    kind, per_channel, _ = BITS_KINDS[choice]
    return kind, (int(channel) if per_channel else None)


def bits_label(kind: str, channel: Optional[int], long: bool = False) -> str:
    """What a bits map shows: ``z``, ``y`` (summed over channels) or ``y ch 3``."""
    if kind == "bits_z":
        return "z"
    if channel is None:
        return "y"
    return f"y channel {channel}" if long else f"y ch {channel}"


def bits_caption(array: np.ndarray, kind: str, channel: Optional[int]) -> str:
    """The entropy view's line under a bits map (positions, estimated bits, the largest)."""
    hi = float(array.max()) if array.size else 1.0
    return (f"{bits_label(kind, channel, long=True)}: {array.shape[0]}×{array.shape[1]} "
            f"positions, {float(array.sum()):.0f} bits estimated, max {hi:.2f} bits/position")


def heatmap_picture(insp: Inspection, height: int, width: int, kind: str = "bits_y",
                    channel: Optional[int] = None, cmap: str = "viridis") -> np.ndarray:
    """File → Export heatmap's picture: the bits per pixel over the image (``height×width``,
    :func:`heatmap_for_image`) in ``cmap`` over its finite range, with a labelled colorbar
    (uint8 RGB).  H×W work: the caller runs it in a worker for a big picture."""
    hm = heatmap_for_image(insp, height, width, kind, channel)
    finite = hm[np.isfinite(hm)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    rgb = colorize(hm, cmap, lo, hi)
    return add_colorbar(rgb, lo, hi, cmap, f"bits/px ({bits_label(kind, channel)})")
