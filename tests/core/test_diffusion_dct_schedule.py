"""docs/methods.md §11 items 22, 23, 25, 26: DCT and blurring-diffusion schedules."""
from __future__ import annotations

import math

import pytest
import torch

from lic_core.decoder.diffusion.blurring import step_pairs
from lic_core.decoder.diffusion.dct import dct2, dct_matrix, idct2
from lic_core.decoder.diffusion.schedules import BlurSchedule, heat_eigenvalues

SIZES = [1, 2, 3, 7, 8, 16, 31, 64, 97]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_dct_orthonormal(n: int, dtype: torch.dtype, tol: float) -> None:
    c = dct_matrix(n, dtype)
    eye = torch.eye(n, dtype=dtype)
    assert (c @ c.T - eye).abs().max().item() <= tol
    assert (c.T @ c - eye).abs().max().item() <= tol


def test_dct_matches_definition_and_cache() -> None:
    n = 5
    c = dct_matrix(n, torch.float64)
    k, i = 2, 3
    ref = math.sqrt(2 / n) * math.cos(math.pi * (2 * i + 1) * k / (2 * n))
    assert c[k, i].item() == pytest.approx(ref, abs=1e-15)
    assert c[0, 0].item() == pytest.approx(1 / math.sqrt(n), abs=1e-15)
    assert dct_matrix(n, torch.float64) is c  # cached per (n, dtype, device)
    # constant image -> only the DC coefficient is non-zero
    u = dct2(torch.ones(1, 1, 6, 9, dtype=torch.float64))
    assert u[0, 0, 0, 0].item() == pytest.approx(math.sqrt(54), abs=1e-12)
    u[0, 0, 0, 0] = 0
    assert u.abs().max().item() < 1e-12


@pytest.mark.parametrize("hw", [(8, 8), (13, 29), (32, 48), (1, 5)])
def test_dct_round_trip(hw: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, *hw, generator=g, dtype=torch.float64)
    assert (idct2(dct2(x)) - x).abs().max().item() < 1e-12
    assert (dct2(idct2(x)) - x).abs().max().item() < 1e-12
    # Parseval: orthonormal transform preserves energy
    assert dct2(x).square().sum().item() == pytest.approx(x.square().sum().item(), rel=1e-12)
    x32 = x.float()
    assert (idct2(dct2(x32)) - x32).abs().max().item() < 1e-5


def test_noise_schedule_variance_preserving_and_range() -> None:
    sch = BlurSchedule()
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    a, s = sch.noise_scales(t)
    assert (a.square() + s.square() - 1).abs().max().item() < 1e-14
    ls = sch.logsnr(t)
    assert ls[0].item() == pytest.approx(10.0, abs=1e-9)
    assert ls[-1].item() == pytest.approx(-10.0, abs=1e-9)
    assert bool((ls[1:] < ls[:-1]).all())
    assert s[0].item() == pytest.approx(0.0067, abs=1e-4)  # σ_0 at logsnr 10 (docs/methods.md §7.2)


def test_d0_is_one_and_alpha_range_at_t1() -> None:
    sch = BlurSchedule(sigma_b_max=20.0)
    d0 = sch.frequency_scaling(0.0, 32, 48)
    assert (d0 - 1).abs().max().item() == 0.0
    alpha1, sigma1 = sch.alpha_sigma(1.0, 32, 48)
    assert alpha1.min().item() == pytest.approx(6.7e-6, rel=0.02)
    assert alpha1.max().item() == pytest.approx(6.7e-3, rel=0.02)
    assert sigma1.item() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("sigma_b_max", [1.0, 20.0, 64.0])
def test_alpha_monotone_in_t_and_frequency(sigma_b_max: float) -> None:
    sch = BlurSchedule(sigma_b_max=sigma_b_max)
    h, w = 24, 40
    t = torch.linspace(0, 1, 65, dtype=torch.float64)
    alpha, _ = sch.alpha_sigma(t, h, w)  # [T,1,H,W]
    assert bool((alpha[1:] <= alpha[:-1]).all()), "α must be non-increasing in t"
    # non-increasing along k and along l (hence in frequency magnitude) for every t
    assert bool((alpha[..., 1:, :] <= alpha[..., :-1, :]).all())
    assert bool((alpha[..., :, 1:] <= alpha[..., :, :-1]).all())
    # and as a function of λ: sort by λ, α must be non-increasing
    lam = heat_eigenvalues(h, w).flatten()
    order = torch.argsort(lam, stable=True)
    a_sorted = alpha.flatten(2)[..., order]
    assert bool((a_sorted[..., 1:] <= a_sorted[..., :-1] + 1e-15).all())


def test_eigenvalues_use_actual_size() -> None:
    lam = heat_eigenvalues(10, 30)
    assert lam.shape == (10, 30)
    assert lam[1, 0].item() == pytest.approx((math.pi / 10) ** 2)
    assert lam[0, 1].item() == pytest.approx((math.pi / 30) ** 2)
    sch = BlurSchedule()
    # same pixel blur: the frequency k/H of a 2x larger image is the same physical frequency
    d_small = sch.frequency_scaling(0.3, 16, 16)[0, 0, 2, 0]
    d_big = sch.frequency_scaling(0.3, 32, 32)[0, 0, 4, 0]
    assert d_small.item() == pytest.approx(d_big.item(), rel=1e-12)


@pytest.mark.parametrize("steps", [1, 5, 10, 25, 50, 200, 1000])
@pytest.mark.parametrize("sigma_b_max", [0.0, 20.0, 128.0])
def test_transition_variance_positive(steps: int, sigma_b_max: float) -> None:
    sch = BlurSchedule(sigma_b_max=sigma_b_max)
    h, w = 17, 23
    pairs = torch.tensor(step_pairs(steps), dtype=torch.float64)  # all pairs at once: [T, 2]
    t, s = pairs[:, 0], pairs[:, 1]
    alpha_ts, var_ts = sch.transition(t, s, h, w)
    assert bool((var_ts > 0).all())
    assert bool((alpha_ts <= 1 + 1e-12).all())
    # matches the direct definition where it is well conditioned
    at, st = sch.alpha_sigma(t, h, w)
    as_, ss = sch.alpha_sigma(s, h, w)
    direct = st.square() - (at / as_).square() * ss.square()
    assert torch.allclose(var_ts, direct, rtol=1e-6, atol=1e-12)


def _vp_cosine_reference(t: float, lmin: float = -10.0, lmax: float = 10.0) -> tuple[float, float]:
    """Independent VP cosine-logSNR implementation (plain math, no lic_core code)."""
    b = math.atan(math.exp(-lmax / 2))
    a = math.atan(math.exp(-lmin / 2)) - b
    logsnr = -2 * math.log(math.tan(a * t + b))
    alpha2 = 1 / (1 + math.exp(-logsnr))
    return math.sqrt(alpha2), math.sqrt(1 - alpha2)


def test_sigma_b_zero_is_vp_cosine_diffusion() -> None:
    sch = BlurSchedule(sigma_b_max=0.0)
    h, w = 9, 14
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(1, 3, h, w, generator=g, dtype=torch.float64)
    eps = torch.randn(1, 3, h, w, generator=g, dtype=torch.float64)
    from lic_core.decoder.diffusion.blurring import diffuse

    for t in [0.0, 0.1, 0.37, 0.5, 0.9, 1.0]:
        a_ref, s_ref = _vp_cosine_reference(t)
        alpha, sigma = sch.alpha_sigma(t, h, w)
        assert (alpha - a_ref).abs().max().item() < 1e-12
        assert abs(sigma.item() - s_ref) < 1e-12
        xt, _ = diffuse(x0, t, sch, noise=eps)
        assert (xt - (a_ref * x0 + s_ref * eps)).abs().max().item() < 1e-12
