"""Image quality metrics: PSNR, MS-SSIM, LPIPS (offline AlexNet trunk) and per-pixel maps.

All functions take ``numpy.uint8`` ``H×W×3`` RGB arrays (the codec-interface convention) and run
on CPU. LPIPS is built lazily (first call ≈ 0.1 s) and never downloads anything.

* :func:`compute_metrics` -> ``{"psnr", "ms_ssim", "lpips"}`` (the keys asked for);
* :func:`metric_maps` -> ``{"abs_error", "sq_error", "lpips"}`` ``H×W`` float32 maps for the
  studio's heatmaps.

Conventions: PSNR of identical images is ``inf`` (see :mod:`.psnr`); MS-SSIM of an image smaller
than 161 px on the short side is ``nan`` in :func:`compute_metrics` (it is undefined with 5
scales; :func:`ms_ssim` itself raises :class:`~lic_core.errors.ImageError`); likewise LPIPS below
31 px (AlexNet's pooling runs out of pixels).
"""
from __future__ import annotations

import math
from typing import Dict, Iterable

import numpy as np

from ._common import check_pair
from .msssim import MIN_SIDE as MS_SSIM_MIN_SIDE
from .msssim import ms_ssim, ms_ssim_db, ms_ssim_torch
from .psnr import abs_error_map, mse, psnr, sq_error_map

METRICS = ("psnr", "ms-ssim", "lpips")
# Accepted spellings -> result key.
_KEYS = {"psnr": "psnr", "ms-ssim": "ms_ssim", "ms_ssim": "ms_ssim", "msssim": "ms_ssim",
         "lpips": "lpips"}

__all__ = [
    "METRICS", "compute_metrics", "metric_maps", "psnr", "mse", "ms_ssim", "ms_ssim_db",
    "ms_ssim_torch", "abs_error_map", "sq_error_map", "lpips_distance", "lpips_map",
    "LpipsMetric", "LpipsLoss", "MS_SSIM_MIN_SIDE",
]


def __getattr__(name: str):
    # LPIPS pulls in lpips + torchvision; import it only when someone asks for it.
    if name in ("lpips_distance", "lpips_map", "LpipsMetric", "LpipsLoss", "get_lpips_metric"):
        from . import lpips_metric

        return getattr(lpips_metric, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def compute_metrics(original_uint8: np.ndarray, recon_uint8: np.ndarray,
                    which: Iterable[str] = METRICS) -> Dict[str, float]:
    """Quality of ``recon`` against ``original`` (``uint8 H×W×3``).

    ``which`` picks among ``"psnr"``, ``"ms-ssim"``, ``"lpips"``; the result has the keys
    ``"psnr"`` (dB, inf if identical), ``"ms_ssim"`` (in [0, 1]; nan below 161 px),
    ``"lpips"`` (AlexNet v0.1; lower is better; nan below 31 px).
    """
    a, b = check_pair(original_uint8, recon_uint8)
    out: Dict[str, float] = {}
    for name in which:
        key = _KEYS.get(str(name).lower())
        if key is None:
            raise ValueError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
        if key == "psnr":
            out[key] = psnr(a, b)
        elif key == "ms_ssim":
            if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
                out[key] = math.nan
            else:
                out[key] = ms_ssim(a, b)
        else:
            from .lpips_metric import MIN_SIDE as LPIPS_MIN_SIDE
            from .lpips_metric import lpips_distance

            out[key] = math.nan if min(a.shape[:2]) < LPIPS_MIN_SIDE else lpips_distance(a, b)
    return out


def metric_maps(original: np.ndarray, recon: np.ndarray,
                lpips: bool = True) -> Dict[str, np.ndarray]:
    """``H×W`` float32 maps for heatmaps: ``abs_error`` and ``sq_error`` (channel means, 8-bit
    units) and, unless ``lpips=False``, the spatial LPIPS map (all NaN below 31 px)."""
    a, b = check_pair(original, recon)
    maps = {"abs_error": abs_error_map(a, b), "sq_error": sq_error_map(a, b)}
    if lpips:
        from .lpips_metric import MIN_SIDE as LPIPS_MIN_SIDE
        from .lpips_metric import lpips_map

        if min(a.shape[:2]) < LPIPS_MIN_SIDE:
            maps["lpips"] = np.full(a.shape[:2], np.nan, np.float32)
        else:
            maps["lpips"] = lpips_map(a, b)
    return maps


# ImageError re-exported for callers that catch metric input errors.
__all__.append("ImageError")
