"""PSNR on 8-bit RGB (MSE over all channels, peak 255) and the per-pixel error maps."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lic_core.errors import ImageError, LicError
from lic_core.metrics import abs_error_map, compute_metrics, metric_maps, mse, psnr, sq_error_map


def _img(seed: int, h: int = 40, w: int = 56) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_psnr_known_values():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a + 1  # MSE exactly 1
    assert mse(a, b) == 1.0
    assert psnr(a, b) == pytest.approx(20 * math.log10(255.0), abs=1e-12)  # 48.1308 dB
    c = a.copy()
    c[..., 0] = 110  # one channel off by 10 -> MSE = 100 / 3 over all channels
    assert psnr(a, c) == pytest.approx(10 * math.log10(255.0 ** 2 / (100.0 / 3.0)), abs=1e-12)


def test_psnr_matches_numpy_formula_and_is_symmetric():
    a, b = _img(0), _img(1)
    ref = 10 * np.log10(255.0 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2))
    assert psnr(a, b) == pytest.approx(ref, abs=1e-10)
    assert psnr(a, b) == psnr(b, a)


def test_psnr_identical_is_inf_or_cap():
    a = _img(2)
    assert psnr(a, a) == math.inf
    assert psnr(a, a, cap=100.0) == 100.0
    b = a.copy()
    b[0, 0, 0] ^= 1
    assert math.isfinite(psnr(a, b)) and psnr(a, b, cap=100.0) == psnr(a, b)


def test_psnr_decreases_with_error():
    a = _img(3)
    values = []
    for k in (1, 3, 9, 27):
        b = np.clip(a.astype(int) + k, 0, 255).astype(np.uint8)
        values.append(psnr(a, b))
    assert all(x > y for x, y in zip(values, values[1:]))


def test_error_maps_shape_and_consistency():
    a, b = _img(4), _img(5)
    ab, sq = abs_error_map(a, b), sq_error_map(a, b)
    assert ab.shape == sq.shape == a.shape[:2]
    assert ab.dtype == np.float32 and sq.dtype == np.float32
    d = a.astype(np.float64) - b.astype(np.float64)
    np.testing.assert_allclose(ab, np.abs(d).mean(2), rtol=1e-6)
    np.testing.assert_allclose(sq, (d * d).mean(2), rtol=1e-6)
    assert float(sq.astype(np.float64).mean()) == pytest.approx(mse(a, b), rel=1e-6)
    assert np.all(abs_error_map(a, a) == 0)
    maps = metric_maps(a, b, lpips=False)
    assert set(maps) == {"abs_error", "sq_error"}


def test_bad_inputs_raise_lic_error():
    a = _img(6)
    with pytest.raises(ImageError):
        psnr(a, a[:-1])
    with pytest.raises(ImageError):
        psnr(a.astype(np.float32), a.astype(np.float32))
    with pytest.raises(LicError):
        psnr(a[..., 0], a[..., 0])
    with pytest.raises(ValueError):
        compute_metrics(a, a, which=("psnr", "vmaf"))


def test_compute_metrics_keys_and_small_image_msssim_nan():
    a, b = _img(7), _img(8)  # 40x56: too small for 5-scale MS-SSIM
    out = compute_metrics(a, b, which=("psnr", "ms-ssim"))
    assert set(out) == {"psnr", "ms_ssim"}
    assert out["psnr"] == pytest.approx(psnr(a, b))
    assert math.isnan(out["ms_ssim"])


def test_mse_in_blocks_is_the_float_mean(monkeypatch):
    """Issue 28: the squared errors are summed exactly in blocks of rows (bounded memory for a
    big photo) — the same number as the mean of the float64 squares."""
    import importlib

    P = importlib.import_module("lic_core.metrics.psnr")  # (the package exports a psnr function)

    rng = np.random.RandomState(3)
    a = (rng.rand(301, 257, 3) * 255).astype(np.uint8)
    b = (rng.rand(301, 257, 3) * 255).astype(np.uint8)
    d = a.astype(np.float64) - b.astype(np.float64)
    monkeypatch.setattr(P, "MSE_BLOCK_PIXELS", 1000)
    assert P.mse(a, b) == float(np.mean(d * d))
