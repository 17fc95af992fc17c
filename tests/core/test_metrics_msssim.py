"""MS-SSIM (Wang et al. 2003) as pytorch-msssim / CompressAI compute it, checked against an
independent numpy/scipy implementation written here from the paper's definition."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import fftconvolve

from lic_core.errors import ImageError
from lic_core.metrics import compute_metrics, ms_ssim, ms_ssim_db, ms_ssim_torch
from lic_core.metrics.msssim import MIN_SIDE


# ---- independent reference -------------------------------------------------------------------
def _ref_window() -> np.ndarray:
    x = np.arange(11) - 5.0
    g = np.exp(-x ** 2 / (2 * 1.5 ** 2))
    g /= g.sum()
    return np.outer(g, g)  # full 2-D window, applied by FFT convolution (symmetric kernel)


def _ref_ssim_cs(x: np.ndarray, y: np.ndarray):
    w = _ref_window()
    f = lambda im: fftconvolve(im, w, mode="valid")  # noqa: E731
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx ** 2, f(y * y) - my ** 2, f(x * y) - mx * my
    cs = (2 * cxy + c2) / (vx + vy + c2)
    l = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
    return float((l * cs).mean()), float(cs.mean())


def _ref_pool(x: np.ndarray) -> np.ndarray:
    # 2x2 mean, stride 2; an odd side is zero-padded by one on *both* ends and the zeros count
    # (torch avg_pool2d(padding=s % 2, count_include_pad=True), as pytorch-msssim does).
    ph, pw = x.shape[0] % 2, x.shape[1] % 2
    x = np.pad(x, ((ph, ph), (pw, pw)))
    oh, ow = (x.shape[0] - 2) // 2 + 1, (x.shape[1] - 2) // 2 + 1
    x = x[: 2 * oh, : 2 * ow]
    return x.reshape(oh, 2, ow, 2).mean(axis=(1, 3))


def _ref_msssim(a: np.ndarray, b: np.ndarray) -> float:
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    per_channel = []
    for c in range(3):
        x, y = a[..., c].astype(np.float64), b[..., c].astype(np.float64)
        val = 1.0
        for j, wj in enumerate(weights):
            ssim, cs = _ref_ssim_cs(x, y)
            if j < 4:
                val *= max(cs, 0.0) ** wj
                x, y = _ref_pool(x), _ref_pool(y)
            else:
                val *= max(ssim, 0.0) ** wj
        per_channel.append(val)
    return float(np.mean(per_channel))


# ---- test images -----------------------------------------------------------------------------
def _natural_like(seed: int, h: int, w: int) -> np.ndarray:
    """Smooth random texture (1/f-ish) so every scale carries structure."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3))
    for s in (2, 6, 18, 54):
        small = rng.normal(size=(h // s + 2, w // s + 2, 3))
        img += np.kron(small, np.ones((s, s, 1)))[:h, :w] * s ** 0.5
    img = (img - img.min()) / (img.max() - img.min()) * 235 + 10
    return img.astype(np.uint8)


def _noisy(img: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    n = np.random.default_rng(seed).normal(0, sigma, img.shape)
    return np.clip(img + n, 0, 255).round().astype(np.uint8)


def test_identical_is_one():
    a = _natural_like(0, 170, 200)
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ms_ssim_db(ms_ssim(a, a)) == float("inf")


@pytest.mark.parametrize("shape", [(171, 193), (176, 224), (161, 161)])
def test_matches_independent_reference(shape):
    a = _natural_like(1, *shape)
    for sigma in (3.0, 25.0):
        b = _noisy(a, sigma)
        ours, ref = ms_ssim(a, b), _ref_msssim(a, b)
        assert abs(ours - ref) < 1e-5, (shape, sigma, ours, ref)
        assert 0.0 < ours < 1.0


def test_monotone_in_noise():
    a = _natural_like(2, 192, 256)
    values = [ms_ssim(a, _noisy(a, s)) for s in (1, 3, 8, 20, 50)]
    assert all(x > y for x, y in zip(values, values[1:])), values


def test_symmetric():
    a = _natural_like(3, 180, 180)
    b = _noisy(a, 10)
    assert ms_ssim(a, b) == pytest.approx(ms_ssim(b, a), abs=1e-12)


def test_too_small_raises_clear_error():
    assert MIN_SIDE == 161
    a = _natural_like(4, 160, 300)
    with pytest.raises(ImageError, match="161"):
        ms_ssim(a, a)
    ok = _natural_like(4, 161, 300)
    assert ms_ssim(ok, ok) == pytest.approx(1.0)


def test_torch_version_differentiable_and_float32_close():
    a = _natural_like(5, 176, 176)
    b = _noisy(a, 12)
    ta = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
    tb = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 255
    tb.requires_grad_(True)
    v = ms_ssim_torch(ta, tb, data_range=1.0)
    v.backward()
    assert tb.grad is not None and torch.isfinite(tb.grad).all() and tb.grad.abs().sum() > 0
    # Scale invariance of the formula (C1, C2 scale with L²) and float32 ≈ float64.
    assert float(v.detach()) == pytest.approx(ms_ssim(a, b), abs=1e-4)
    per_image = ms_ssim_torch(torch.cat([ta, ta]), torch.cat([tb.detach(), ta]), 1.0, "none")
    assert per_image.shape == (2,) and float(per_image[1]) == pytest.approx(1.0, abs=1e-6)


def test_numpy_and_torch_paths_agree_float64():
    a = _natural_like(7, 171, 197)  # odd sides exercise the padded pooling
    b = _noisy(a, 9)
    t = lambda z: torch.from_numpy(z).permute(2, 0, 1)[None].double()  # noqa: E731
    assert float(ms_ssim_torch(t(a), t(b))) == pytest.approx(ms_ssim(a, b), abs=1e-10)
    with pytest.raises(ImageError):
        ms_ssim_torch(t(a)[..., :160, :], t(b)[..., :160, :])


def test_compute_metrics_uses_msssim():
    a = _natural_like(6, 170, 190)
    b = _noisy(a, 6)
    assert compute_metrics(a, b, which=("ms-ssim",))["ms_ssim"] == pytest.approx(ms_ssim(a, b))


def test_ms_ssim_in_bands_of_rows(monkeypatch):
    """Issue 28: every scale's maps are made in bands of rows (bounded memory for a big photo);
    each pixel is computed as before, only the order of the final sums may differ (an ulp)."""
    import importlib

    M = importlib.import_module("lic_core.metrics.msssim")
    rng = np.random.RandomState(7)
    a = (rng.rand(333, 181, 3) * 255).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.randint(-20, 21, a.shape), 0, 255).astype(np.uint8)
    whole = M.ms_ssim(a, b)
    monkeypatch.setattr(M, "BAND_PIXELS", 997)  # bands of 5 rows at the first scale
    assert M.ms_ssim(a, b) == pytest.approx(whole, rel=1e-14, abs=0)
