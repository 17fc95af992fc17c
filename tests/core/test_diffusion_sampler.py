"""docs/methods.md §11 items 24, 26: oracle reverse chain, seeded sampler determinism, loss."""
from __future__ import annotations

import math

import pytest
import torch

from lic_core.decoder.diffusion.blurring import (
    diffuse,
    eps_from_x0,
    eps_loss,
    posterior_step,
    sample,
    x0_estimate,
    x0_loss,
)
from lic_core.decoder.diffusion.dct import dct2, idct2
from lic_core.decoder.diffusion.schedules import BlurSchedule


def _smooth_image(h: int, w: int, dtype=torch.float64) -> torch.Tensor:
    """A deterministic natural-ish test image in [−1, 1] (smooth gradients + an edge + texture)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h, dtype=dtype),
                            torch.linspace(0, 1, w, dtype=dtype), indexing="ij")
    r = torch.sin(3 * xx) * torch.cos(2 * yy)
    g = (xx > 0.4).to(dtype) * 0.8 - 0.4
    b = 0.3 * torch.sin(17 * xx + 11 * yy)
    return torch.stack([r, g, b]).unsqueeze(0).clamp(-1, 1)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of images in [−1, 1] measured on the [0, 1] scale."""
    mse = ((a - b) / 2).square().mean().item()
    return 10 * math.log10(1.0 / mse)


def _oracle(x0: torch.Tensor, sch: BlurSchedule):
    """ε̂ = the true ε implied by the known x0: ε = V((u_t − α_t u_0)/σ_t)."""
    def model_fn(x_t, t, cond):
        alpha, sigma = sch.alpha_sigma(t, x_t.shape[-2], x_t.shape[-1], dtype=x_t.dtype)
        return idct2((dct2(x_t) - alpha * dct2(x0)) / sigma)
    return model_fn


@pytest.mark.parametrize("sigma_b_max", [20.0, 0.0])
def test_oracle_reverse_chain_recovers_x0(sigma_b_max: float) -> None:
    sch = BlurSchedule(sigma_b_max=sigma_b_max)
    x0 = _smooth_image(32, 48)
    out = sample(_oracle(x0, sch), None, tuple(x0.shape), steps=200, seed=3, schedule=sch,
                 dtype=torch.float64)
    assert _psnr(out, x0) > 45.0


def test_oracle_reverse_chain_x_form() -> None:
    sch = BlurSchedule(sigma_b_max=20.0)
    x0 = _smooth_image(32, 48)
    out = sample(lambda x, t, c: x0, None, tuple(x0.shape), steps=200, seed=3, schedule=sch,
                 dtype=torch.float64, pred="x")
    assert _psnr(out, x0) > 45.0
    with pytest.raises(ValueError):
        sample(lambda x, t, c: x0, None, tuple(x0.shape), 2, 0, sch, pred="v")


def test_x_form_equals_eps_form_for_consistent_predictions() -> None:
    """μ from x̂0 equals μ from the ε̂ implied by that x̂0 (float64), for any x̂0."""
    sch = BlurSchedule(sigma_b_max=20.0)
    g = torch.Generator().manual_seed(4)
    x0 = _smooth_image(16, 20)
    guess = torch.randn(x0.shape, generator=g, dtype=torch.float64) * 0.3  # a wrong x̂0
    for t, s in [(0.9, 0.85), (0.5, 0.46), (0.04, 0.0)]:
        xt, _ = diffuse(x0, t, sch, generator=g)
        eps_hat = eps_from_x0(xt, guess, t, sch)
        a = posterior_step(xt, eps_hat, t, s, sch)
        b = posterior_step(xt, None, t, s, sch, x0_hat=guess)
        assert (a - b).abs().max().item() < 1e-6 * max(1.0, b.abs().max().item())


def test_oracle_x0_estimate_exact_where_alpha_large() -> None:
    sch = BlurSchedule()
    x0 = _smooth_image(16, 24)
    g = torch.Generator().manual_seed(0)
    for t in [0.05, 0.2]:
        xt, eps = diffuse(x0, t, sch, generator=g)
        est = x0_estimate(xt, eps, t, sch, inv_alpha_max=1e12)
        assert (est - x0).abs().max().item() < 1e-8
    # with the clamp, dissipated high frequencies come out attenuated, never amplified
    xt, eps = diffuse(x0, 0.9, sch, generator=g)
    est = x0_estimate(xt, torch.zeros_like(eps), 0.9, sch, inv_alpha_max=10.0)
    assert est.abs().max().item() <= 10 * xt.abs().sum().item()
    assert torch.isfinite(est).all()


def test_posterior_step_matches_gaussian_conditioning() -> None:
    """Monte-Carlo free check: with the oracle ε the mean is the exact q(u_s|u_t,u_0) mean."""
    sch = BlurSchedule(sigma_b_max=5.0)
    x0 = _smooth_image(8, 12)
    g = torch.Generator().manual_seed(5)
    t, s = 0.6, 0.55
    xt, eps = diffuse(x0, t, sch, generator=g)
    mean = posterior_step(xt, eps, t, s, sch, noise=None)
    # reference: q(u_s | u_t, u_0) via joint Gaussian, per frequency, computed directly
    h, w = 8, 12
    at, st = sch.alpha_sigma(t, h, w)
    as_, ss = sch.alpha_sigma(s, h, w)
    ats = at / as_
    var_ts = st ** 2 - ats ** 2 * ss ** 2
    u0, ut = dct2(x0), dct2(xt)
    ref = as_ * u0 + (ats * ss ** 2 / st ** 2) * (ut - at * u0)
    assert (dct2(mean) - ref).abs().max().item() < 1e-9
    assert bool((var_ts > 0).all())


def test_seeded_sampler_bit_identical_and_seed_sensitive() -> None:
    sch = BlurSchedule()
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 3, 3, padding=1)

    def model_fn(x, t, cond):
        return net(x) * (1 + t.view(-1, 1, 1, 1)) + cond

    cond = torch.full((1, 3, 1, 1), 0.1)
    shape = (1, 3, 12, 20)
    calls: list[int] = []
    a = sample(model_fn, cond, shape, steps=6, seed=42, schedule=sch,
               callback=lambda i, x0: calls.append(i))
    torch.manual_seed(123)  # the global RNG must not matter
    b = sample(model_fn, cond, shape, steps=6, seed=42, schedule=sch)
    c = sample(model_fn, cond, shape, steps=6, seed=43, schedule=sch)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.isfinite(c).all()
    assert calls == list(range(6))


def test_eps_loss_variants() -> None:
    sch = BlurSchedule()
    g = torch.Generator().manual_seed(0)
    eps = torch.randn(4, 3, 8, 8, generator=g)
    hat = eps + 0.5
    t = torch.tensor([0.01, 0.3, 0.6, 0.99])
    assert eps_loss(hat, eps, t, sch).item() == pytest.approx(0.25, rel=1e-6)
    assert eps_loss(hat, eps, t, sch, kind="l1").item() == pytest.approx(0.5, rel=1e-6)
    # min-SNR weight: ≤ 1, equal to 1 where SNR ≤ 5 (high t), < 1 at low t
    w = eps_loss(hat, eps, t, sch, min_snr=5.0).item()
    assert w < 0.25
    hi = torch.tensor([0.9, 0.95, 0.99, 1.0])
    assert eps_loss(hat, eps, hi, sch, min_snr=5.0).item() == pytest.approx(0.25, rel=1e-6)
    with pytest.raises(ValueError):
        eps_loss(hat, eps, t, sch, kind="huber")
    # x-loss: unweighted MSE, or CDC's min(SNR, 5) weight (≤ 5, ~0 at t = 1)
    assert x0_loss(hat, eps, t, sch).item() == pytest.approx(0.25, rel=1e-6)
    assert x0_loss(hat, eps, torch.ones(4), sch, min_snr=5.0).item() < 1e-4
    assert x0_loss(hat, eps, torch.zeros(4), sch, min_snr=5.0).item() == pytest.approx(1.25)
