"""PSNR on 8-bit RGB and the per-pixel error maps of the studio's heatmaps.

PSNR = 10·log10(255² / MSE) with the MSE taken over all pixels *and* the three channels, as
CompressAI's ``psnr-rgb`` (``compressai.utils.eval_model``) and the anchors in ../shared do.
Identical images give ``float('inf')`` unless a finite ``cap`` is requested (e.g. for averaging).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ._common import check_pair

PEAK = 255.0


#: pixels per block of :func:`mse`: its differences live one block at a time (issue 28)
MSE_BLOCK_PIXELS = 1 << 20


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over all pixels and channels, in 8-bit units.

    The squared differences are integers (≤ 255²) and their sum stays below 2^53 for any image
    under 138 gigapixels, so it is summed exactly, in blocks of rows as int64 (two float64
    copies of a 48 MP photo would take 2.3 GB), and divided once: the same number as the mean
    of the float64 squares."""
    a, b = check_pair(a, b)
    rows = max(1, MSE_BLOCK_PIXELS // max(1, a.shape[1]))
    total = 0
    for r0 in range(0, a.shape[0], rows):
        d = a[r0:r0 + rows].astype(np.int32) - b[r0:r0 + rows].astype(np.int32)
        total += int(np.einsum("ijk,ijk->", d, d, dtype=np.int64))
    return float(total / a.size)


def psnr(a: np.ndarray, b: np.ndarray, cap: Optional[float] = None) -> float:
    """PSNR in dB of two ``uint8 H×W×3`` images (peak 255).

    Returns ``inf`` for identical images; with ``cap`` the value is ``min(psnr, cap)`` so that
    identical images give ``cap`` instead (useful before averaging over a data set).
    """
    m = mse(a, b)
    value = math.inf if m == 0.0 else 10.0 * math.log10(PEAK * PEAK / m)
    return value if cap is None else min(value, float(cap))


def abs_error_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``H×W`` float32 map of |a − b| averaged over the RGB channels (8-bit units, 0..255)."""
    a, b = check_pair(a, b)
    return np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)


def sq_error_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``H×W`` float32 map of (a − b)² averaged over the RGB channels; its mean is :func:`mse`."""
    a, b = check_pair(a, b)
    d = a.astype(np.float32) - b.astype(np.float32)
    return (d * d).mean(axis=2)
