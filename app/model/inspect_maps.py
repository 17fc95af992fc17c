"""Numpy helpers behind the "inside the codec" views (Qt-free).

Bits per latent element are ``−log2 p(ŷ)`` as the codec reports them (``Inspection.bits_y``,
``bits_z``).  The per-pixel heatmap sums over channels and upsamples nearest-neighbour by the
latent stride (16 for y, 64 for z; ARCHITECTURE "Latents"), the visualisation CompressAI#265
suggests; the map covers the padded image and is cropped back to H×W.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from lic_core.codecs import Inspection

Y_STRIDE = 16
Z_STRIDE = 64
QUANTITIES = ("y_hat", "means", "scales", "bits_y", "residual")

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


def channel_order(bits_y: np.ndarray) -> np.ndarray:
    """Channel indices sorted by total bits, most expensive first (stable for ties)."""
    totals = bits_y.reshape(bits_y.shape[0], -1).sum(1)
    return np.argsort(-totals, kind="stable")


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


def channel_mosaic(arr: np.ndarray, order: np.ndarray, count: int = 16,
                   cols: int = 4, gap: int = 1) -> np.ndarray:
    """Tile the first ``count`` channels of ``order`` into one 2-D image.

    Each tile is normalised to [0, 1] on its own (channels have very different ranges); gaps are
    NaN so they render black.  Shape: ``rows*(h+gap)-gap × cols*(w+gap)-gap``.
    """
    m, h, w = arr.shape
    sel = [int(c) for c in order[:count] if 0 <= int(c) < m]
    cols = max(1, min(cols, len(sel) or 1))
    rows = max(1, -(-len(sel) // cols))
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, np.float32)
    for k, c in enumerate(sel):
        r, q = divmod(k, cols)
        tile = arr[c].astype(np.float32)
        lo, hi = float(tile.min()), float(tile.max())
        tile = (tile - lo) / (hi - lo) if hi > lo else np.zeros_like(tile)
        out[r * (h + gap): r * (h + gap) + h, q * (w + gap): q * (w + gap) + w] = tile
    return out


def bits_map(insp: Inspection, kind: str = "bits_y", channel: Optional[int] = None) -> np.ndarray:
    """Bits per latent position: summed over channels, or one channel (``kind`` y or z)."""
    arr = insp.bits_y if kind == "bits_y" else insp.bits_z
    if channel is not None:
        return arr[int(channel) % arr.shape[0]].astype(np.float64)
    return arr.sum(0).astype(np.float64)


def upsample_to_image(latent_map: np.ndarray, height: int, width: int,
                      stride: int) -> np.ndarray:
    """Nearest-neighbour upsample by ``stride`` then crop to the image size (padding removed).

    Values are divided by ``stride²`` so the map reads as bits per *pixel* and its sum over the
    padded grid equals the latent total.
    """
    up = np.repeat(np.repeat(latent_map, stride, axis=0), stride, axis=1) / float(stride * stride)
    if up.shape[0] < height or up.shape[1] < width:  # defensive: never index past the map
        up = np.pad(up, ((0, max(0, height - up.shape[0])), (0, max(0, width - up.shape[1]))),
                    mode="edge")
    return up[:height, :width]


def heatmap_for_image(insp: Inspection, height: int, width: int, kind: str = "bits_y",
                      channel: Optional[int] = None) -> np.ndarray:
    """Bits-per-pixel map aligned with the image (H×W float)."""
    m = bits_map(insp, kind, channel)
    # stride from shapes, robust to models with another downsampling factor
    stride = max(1, int(round(max(height / m.shape[0], width / m.shape[1]))))
    pow2 = 1 << (stride - 1).bit_length()
    stride = pow2 if m.shape[0] * pow2 >= height and m.shape[1] * pow2 >= width else stride
    return upsample_to_image(m, height, width, stride)


def rate_breakdown(insp: Inspection, total_bytes: Optional[int] = None) -> list[dict[str, Any]]:
    """Rows ``{part, estimated_bits, real_bits}``: header, z, y per group/pass, totals.

    Real bits exist only per section (header / z / y) because the range coder writes one stream
    per section; per-group rows carry the model's estimate only.
    """
    rows: list[dict[str, Any]] = [
        {"part": "header", "estimated_bits": None, "real_bits": 8 * insp.header_bytes},
        {"part": "z (side info)", "estimated_bits": float(insp.bits_z.sum()),
         "real_bits": 8 * insp.z_bytes},
    ]
    for name in sorted(insp.group_bits):
        rows.append({"part": f"y {name}", "estimated_bits": float(insp.group_bits[name]),
                     "real_bits": None})
    rows.append({"part": "y (all)", "estimated_bits": float(insp.bits_y.sum()),
                 "real_bits": 8 * insp.y_bytes})
    real_total = 8 * (total_bytes if total_bytes is not None
                      else insp.header_bytes + insp.z_bytes + insp.y_bytes)
    rows.append({"part": "total", "estimated_bits": float(insp.estimated_bits),
                 "real_bits": real_total})
    return rows


def diff_values(a: np.ndarray, b: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """Per-pixel |a − b| averaged over RGB, times ``gain``, in 0..255 (float32)."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(axis=2, dtype=np.float32)
    return np.clip(d * float(gain), 0, 255)
