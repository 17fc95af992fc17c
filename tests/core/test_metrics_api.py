"""``compute_metrics`` / ``metric_maps`` on a real Kodak image (JPEG at two qualities)."""
from __future__ import annotations

import io

import numpy as np
import pytest

from lic_core.metrics import compute_metrics, metric_maps


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.mark.slow
@pytest.mark.shared
def test_kodak_jpeg_quality_ordering(kodak_dir):
    from PIL import Image

    path = sorted(kodak_dir.glob("*.png"))[0]
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape[:2] in ((512, 768), (768, 512))
    lo, hi = _jpeg(img, 20), _jpeg(img, 90)
    m_lo, m_hi = compute_metrics(img, lo), compute_metrics(img, hi)
    assert set(m_lo) == {"psnr", "ms_ssim", "lpips"}
    # Better JPEG quality is better on every metric (higher PSNR/MS-SSIM, lower LPIPS).
    assert m_hi["psnr"] > m_lo["psnr"] and m_hi["ms_ssim"] > m_lo["ms_ssim"]
    assert m_hi["lpips"] < m_lo["lpips"]
    # Plausible ranges for JPEG on Kodak.
    assert 22 < m_lo["psnr"] < 32 < m_hi["psnr"] < 45
    assert 0.85 < m_lo["ms_ssim"] < m_hi["ms_ssim"] < 1.0
    assert 0.0 < m_hi["lpips"] < m_lo["lpips"] < 0.7
    maps = metric_maps(img, lo)
    assert {k: v.shape for k, v in maps.items()} == {k: img.shape[:2] for k in
                                                      ("abs_error", "sq_error", "lpips")}
    assert float(maps["sq_error"].mean()) == pytest.approx(
        255.0 ** 2 / 10 ** (m_lo["psnr"] / 10), rel=1e-4)
    assert float(maps["lpips"].mean()) == pytest.approx(m_lo["lpips"], rel=0.05)
