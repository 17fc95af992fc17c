"""Multi-scale SSIM (Wang, Simoncelli, Bovik, Asilomar 2003), as CompressAI reports it.

Same computation as ``pytorch_msssim.ms_ssim(x, y, data_range=255)`` that CompressAI's
``eval_model`` uses for ``ms-ssim-rgb`` on images rounded to [0, 255]:

* Gaussian window 11, σ = 1.5, applied separably with no padding ("valid");
* C1 = (K1·L)², C2 = (K2·L)², K1 = 0.01, K2 = 0.03, L = 255;
* 5 scales with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333): the contrast-structure term
  ``cs`` (spatial mean, ReLU'd) at scales 1–4, the full SSIM at scale 5; between scales a 2×2
  average pool with stride 2 (zero padding of 1 on odd sides, counted in the mean, exactly as
  pytorch-msssim does);
* ``MS-SSIM = Π_j v_j^{w_j}`` per channel, then the mean over the three channels.

Five scales with an 11-px window need a short side > (11 − 1)·2⁴ = 160 px; smaller images raise
:class:`~lic_core.errors.ImageError` (``compute_metrics`` turns that into NaN, documented there).
Computed in float64 on CPU (scipy). :func:`ms_ssim_torch` is the same formula on tensors,
differentiable, for MS-SSIM-optimized training.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import correlate1d

from ..errors import ImageError
from ._common import check_pair

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN_SIZE = 11
WIN_SIGMA = 1.5
K1, K2 = 0.01, 0.03
MIN_SIDE = (WIN_SIZE - 1) * 2 ** (len(WEIGHTS) - 1) + 1  # 161


def gaussian_window(size: int = WIN_SIZE, sigma: float = WIN_SIGMA,
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Normalized 1-D Gaussian of ``size`` taps centred on ``size // 2``."""
    coords = torch.arange(size, dtype=dtype) - size // 2
    g = torch.exp(-(coords ** 2) / (2.0 * sigma ** 2))
    return g / g.sum()


def _filter(x: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """Separable depthwise 'valid' Gaussian filtering of ``B×C×H×W``."""
    c = x.shape[1]
    x = F.conv2d(x, win.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, win.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _ssim_cs(x: torch.Tensor, y: torch.Tensor, win: torch.Tensor, data_range: float):
    """Per-channel spatial means of the SSIM map and of the contrast-structure map (B×C)."""
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    # One depthwise pass over the five maps (x, y, x², y², xy) instead of five calls.
    mu1, mu2, xx, yy, xy = _filter(torch.cat([x, y, x * x, y * y, x * y], 1), win).chunk(5, 1)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s1 = xx - mu1_sq
    s2 = yy - mu2_sq
    s12 = xy - mu12
    cs_map = (2 * s12 + c2) / (s1 + s2 + c2)
    ssim_map = (2 * mu12 + c1) / (mu1_sq + mu2_sq + c1) * cs_map
    return ssim_map.flatten(2).mean(-1), cs_map.flatten(2).mean(-1)


def ms_ssim_torch(x: torch.Tensor, y: torch.Tensor, data_range: float = 255.0,
                  reduction: str = "mean") -> torch.Tensor:
    """MS-SSIM of ``B×C×H×W`` tensors (any float dtype), differentiable.

    ``reduction="mean"`` averages over batch and channels (pytorch-msssim ``size_average``);
    ``"none"`` returns the per-image value (mean over channels), shape ``B``.
    """
    if min(x.shape[-2:]) < MIN_SIDE:
        raise ImageError(f"MS-SSIM needs images at least {MIN_SIDE} px on the short side "
                         f"(5 scales × 11-px window), got {x.shape[-1]}×{x.shape[-2]}")
    win = gaussian_window(dtype=x.dtype).to(x.device)
    weights = torch.tensor(WEIGHTS, dtype=x.dtype, device=x.device)
    mcs = []
    for level in range(len(WEIGHTS)):
        ssim, cs = _ssim_cs(x, y, win, data_range)
        if level < len(WEIGHTS) - 1:
            mcs.append(torch.relu(cs))
            pad = [s % 2 for s in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
    stack = torch.stack(mcs + [torch.relu(ssim)], dim=0)  # levels×B×C
    val = torch.prod(stack ** weights.view(-1, 1, 1), dim=0)  # B×C
    return val.mean() if reduction == "mean" else val.mean(dim=1)


def _filter_np(x: np.ndarray, win: np.ndarray) -> np.ndarray:
    """Separable 'valid' Gaussian filtering over the last two axes (float64, scipy)."""
    r = len(win) // 2
    x = correlate1d(x, win, axis=-1, mode="constant")[..., r:-r]
    return correlate1d(x, win, axis=-2, mode="constant")[..., r:-r, :]


def _pool_np(x: np.ndarray) -> np.ndarray:
    """torch ``avg_pool2d(x, 2, padding=s % 2)`` (zero pad counted) on ``C×H×W``."""
    ph, pw = x.shape[-2] % 2, x.shape[-1] % 2
    if ph or pw:
        x = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
    oh, ow = x.shape[-2] // 2, x.shape[-1] // 2
    x = x[:, : 2 * oh, : 2 * ow]
    return x.reshape(x.shape[0], oh, 2, ow, 2).mean(axis=(2, 4))


#: pixels per band of :func:`ms_ssim` (its 15 float64 maps of a band: ~300 bytes a pixel)
BAND_PIXELS = 1 << 19


def _pool_band(x: np.ndarray, p0: int, p1: int) -> np.ndarray:
    """Rows [p0, p1) of :func:`_pool_np` (x), read from the rows of x they average."""
    h, w = x.shape[-2:]
    ph, pw = h % 2, w % 2
    r0, r1 = 2 * p0 - ph, 2 * p1 - ph  # padded-row coordinates → rows of x
    part = x[:, max(0, r0):min(h, r1)].astype(np.float64)
    part = np.pad(part, ((0, 0), (max(0, -r0), max(0, r1 - h)), (pw, pw)))
    ow = (w + 2 * pw) // 2
    return part[:, :, :2 * ow].reshape(x.shape[0], p1 - p0, 2, ow, 2).mean(axis=(2, 4))


def _pooled(x: np.ndarray) -> np.ndarray:
    """:func:`_pool_np` of a whole level, band by band, kept as float32: the pooled values of
    8-bit pixels are multiples of 4^−level below 256, exact in float32 (half of float64)."""
    h, w = x.shape[-2:]
    oh, ow = (h + 2 * (h % 2)) // 2, (w + 2 * (w % 2)) // 2
    out = np.empty((x.shape[0], oh, ow), dtype=np.float32)
    rows = max(1, BAND_PIXELS // max(1, ow))
    for p0 in range(0, oh, rows):
        out[:, p0:p0 + rows] = _pool_band(x, p0, min(oh, p0 + rows))
    return out


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM of two ``uint8 H×W×3`` RGB images on [0, 255] (1.0 for identical images).

    Same arithmetic as :func:`ms_ssim_torch`, done in float64 with scipy's separable filters
    (torch's float64 depthwise convolution is ~15× slower on CPU).  Each scale's maps are made in
    bands of rows (the 11-tap window reads 10 rows more than it writes), every pixel with the
    same operations as on the whole picture, and the map means are sums over the bands divided
    once: bounded memory for a big photo (issue 28: 320 bytes a pixel before — 15 GB at 48 MP),
    the same value but for the order of the final float64 sums.
    """
    a, b = check_pair(a, b)
    if min(a.shape[:2]) < MIN_SIDE:
        raise ImageError(f"MS-SSIM needs images at least {MIN_SIDE} px on the short side "
                         f"(5 scales × 11-px window), got {a.shape[1]}×{a.shape[0]}")
    win = gaussian_window().numpy()
    c1, c2 = (K1 * 255.0) ** 2, (K2 * 255.0) ** 2
    x, y = a.transpose(2, 0, 1), b.transpose(2, 0, 1)  # views: each band is made float64
    n = len(WEIGHTS)
    val = np.ones(3)
    r = WIN_SIZE - 1
    for level, w in enumerate(WEIGHTS):
        h = x.shape[-2]
        rows = max(1, BAND_PIXELS // max(1, x.shape[-1]))
        cs_sum, ssim_sum, count = np.zeros(3), np.zeros(3), 0
        for o0 in range(0, h - r, rows):
            o1 = min(h - r, o0 + rows)
            xb = x[:, o0:o1 + r].astype(np.float64)
            yb = y[:, o0:o1 + r].astype(np.float64)
            mu1, mu2, xx, yy, xy = np.split(
                _filter_np(np.concatenate([xb, yb, xb * xb, yb * yb, xb * yb]), win), 5)
            del xb, yb
            cs_map = (2 * (xy - mu1 * mu2) + c2) / ((xx - mu1 * mu1) + (yy - mu2 * mu2) + c2)
            cs_sum += cs_map.sum(axis=(1, 2))
            count += cs_map.shape[1] * cs_map.shape[2]
            if level == n - 1:
                lum = (2 * mu1 * mu2 + c1) / (mu1 * mu1 + mu2 * mu2 + c1)
                ssim_sum += (lum * cs_map).sum(axis=(1, 2))
        if level < n - 1:
            val *= np.maximum(cs_sum / count, 0.0) ** w
            x, y = _pooled(x), _pooled(y)
        else:
            val *= np.maximum(ssim_sum / count, 0.0) ** w
    return float(val.mean())


def ms_ssim_db(value: float) -> float:
    """``−10·log10(1 − MS-SSIM)``, the dB scale of CompressAI's ``ms-ssim-db-rgb`` curves."""
    return math.inf if value >= 1.0 else -10.0 * math.log10(1.0 - value)
