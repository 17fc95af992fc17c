"""Where the bits of a learned encoding go: per-element bit maps, bits per pixel, rate breakdown.

Bits per latent element are the ideal code lengths ``−log2 p(ŷ)`` the codec reports
(``Inspection.bits_y``, ``bits_z``; the range coder spends their sum within its flush overhead).
A per-pixel heatmap sums over channels and upsamples nearest-neighbour by the latent stride (16
for y, 64 for z; docs/ARCHITECTURE.md "Latents"), the visualisation CompressAI#265 suggests;
the map covers the padded image and is cropped back to H×W.

Qt-free and numpy-only: the studio's views and any report read the same numbers.  ``insp`` is a
:class:`lic_core.codecs.base.Inspection` (only its attributes are used).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

#: total downsampling of y (g_a) and z (g_a then h_a) in lic_core's learned codecs
Y_STRIDE = 16
Z_STRIDE = 64


def channel_order(bits_y: np.ndarray) -> np.ndarray:
    """Channel indices sorted by total bits, most expensive first (stable for ties)."""
    totals = bits_y.reshape(bits_y.shape[0], -1).sum(1)
    return np.argsort(-totals, kind="stable")


def bits_map(insp: Any, kind: str = "bits_y", channel: Optional[int] = None) -> np.ndarray:
    """Bits per latent position: summed over channels, or one channel (``kind`` y or z)."""
    arr = insp.bits_y if kind == "bits_y" else insp.bits_z
    if channel is not None:
        return arr[int(channel) % arr.shape[0]].astype(np.float64)
    return arr.sum(0).astype(np.float64)


def latent_stride(latent_hw: tuple[int, int], image_hw: tuple[int, int]) -> int:
    """The downsampling factor between an image and a latent grid covering its padded size.

    Read from the shapes (robust to a model with another factor): the smallest power of two
    whose grid covers the image, else the rounded ratio.
    """
    (h, w), (H, W) = latent_hw, image_hw
    stride = max(1, int(round(max(H / h, W / w))))
    pow2 = 1 << (stride - 1).bit_length()
    return pow2 if h * pow2 >= H and w * pow2 >= W else stride


def upsample_to_image(latent_map: np.ndarray, height: int, width: int,
                      stride: int, top: int = 0, left: int = 0) -> np.ndarray:
    """Nearest-neighbour upsample by ``stride`` then crop to the image size (padding removed):
    the image starts ``top`` rows and ``left`` columns into the padded grid (0, 0 for
    lic_core's codecs, which pad bottom/right; CompressAI's models pad centred).

    Values are divided by ``stride²`` so the map reads as bits per *pixel* and its sum over the
    padded grid equals the latent total.
    """
    up = np.repeat(np.repeat(latent_map, stride, axis=0), stride, axis=1) / float(stride * stride)
    top, left = max(0, int(top)), max(0, int(left))
    if up.shape[0] < top + height or up.shape[1] < left + width:  # never index past the map
        up = np.pad(up, ((0, max(0, top + height - up.shape[0])),
                         (0, max(0, left + width - up.shape[1]))), mode="edge")
    return up[top:top + height, left:left + width]


def heatmap_for_image(insp: Any, height: int, width: int, kind: str = "bits_y",
                      channel: Optional[int] = None) -> np.ndarray:
    """Bits-per-pixel map aligned with the image (H×W float).  An inspection whose codec pads
    elsewhere than bottom/right says so in ``extras["padding"]`` = (left, right, top,
    bottom) pixels (CompressAI's centred padding, :mod:`lic_core.codecs.compressai_codec`)."""
    m = bits_map(insp, kind, channel)
    pad = (getattr(insp, "extras", None) or {}).get("padding")
    left, top = (int(pad[0]), int(pad[2])) if pad else (0, 0)
    return upsample_to_image(m, height, width, latent_stride(m.shape, (height, width)),
                             top, left)


def rate_breakdown(insp: Any, total_bytes: Optional[int] = None) -> list[dict[str, Any]]:
    """Rows ``{part, estimated_bits, real_bits}``: header, z, y per coding step, totals.

    Real bits exist only per section (header / z / y) because the range coder writes one stream
    per section; per-step rows carry the model's estimate only.
    """
    rows: list[dict[str, Any]] = [
        {"part": "header", "estimated_bits": None, "real_bits": 8 * insp.header_bytes},
        {"part": "z (side info)", "estimated_bits": float(insp.bits_z.sum()),
         "real_bits": 8 * insp.z_bytes},
    ]
    for name in sorted(insp.group_bits):
        if name in ("y", "z"):  # whole-latent totals have their own rows
            continue
        rows.append({"part": f"y {name}", "estimated_bits": float(insp.group_bits[name]),
                     "real_bits": None})
    rows.append({"part": "y (all)", "estimated_bits": float(insp.bits_y.sum()),
                 "real_bits": 8 * insp.y_bytes})
    real_total = 8 * (total_bytes if total_bytes is not None
                      else insp.header_bytes + insp.z_bytes + insp.y_bytes)
    rows.append({"part": "total", "estimated_bits": float(insp.estimated_bits),
                 "real_bits": real_total})
    return rows
