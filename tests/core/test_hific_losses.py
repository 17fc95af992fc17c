"""HiFiC loss: rate-target switch, schedules, GAN gradient isolation (docs/methods.md §8.2;
§11 items 28–29)."""
from __future__ import annotations

import math

import pytest
import torch

from lic_core.models.hific import build_hific
from lic_core.train.hific import HificTrainer
from lic_core.train.hific.discriminator import build_discriminator
from lic_core.train.hific.losses import (
    DEFAULT_LOSS,
    HificLossConfig,
    discriminator_loss,
    generator_loss,
    level_targets,
    mse_255,
    rate_weight,
    scheduled_lambdas,
    scheduled_target,
)
from lic_core.train.losses.gan import discriminator_loss_ns, generator_loss_ns
from lic_core.train.losses.perceptual import TinyPerceptual

C = 0.1 * 2 ** -5


def test_official_constants():
    c = DEFAULT_LOSS
    assert c.C == pytest.approx(C)
    assert c.C_D == 0.75 and c.w_P == 1.0 and c.C_P == 0.15
    assert c.C * c.C_D == pytest.approx(0.075 * 2 ** -5)
    assert c.C / c.lambda_a == pytest.approx(2.0)
    assert c.C / c.lambda_b == pytest.approx(2.0 ** -6)
    with pytest.raises(ValueError):
        HificLossConfig(lambda_a=1.0, lambda_b=0.5)


@pytest.mark.parametrize("step", [50_000, 60_000, 10 ** 6])
def test_rate_switch_after_schedule(step):
    target = 0.3
    assert float(rate_weight(0.31, target, step)) == pytest.approx(C / DEFAULT_LOSS.lambda_a)
    assert float(rate_weight(0.29, target, step)) == pytest.approx(C / DEFAULT_LOSS.lambda_b)
    assert float(rate_weight(0.30, target, step)) == pytest.approx(C / DEFAULT_LOSS.lambda_b)


@pytest.mark.parametrize("step", [0, 1, 49_999])
def test_schedule_before_50k_halves_rate_weight_and_raises_target(step):
    lam_a, lam_b = scheduled_lambdas(step)
    assert lam_a == pytest.approx(2 * DEFAULT_LOSS.lambda_a)
    assert lam_b == pytest.approx(2 * DEFAULT_LOSS.lambda_b)
    t = scheduled_target(0.14, step)
    assert t == pytest.approx(0.20)
    # 0.18 bpp is above the final target 0.14 but below the early one (0.20): weight C/λ_b/2
    assert float(rate_weight(0.18, 0.14, step)) == pytest.approx(C / DEFAULT_LOSS.lambda_b / 2)
    assert float(rate_weight(0.21, 0.14, step)) == pytest.approx(C / DEFAULT_LOSS.lambda_a / 2)
    # from step 50k the same 0.18 bpp is over target
    assert float(rate_weight(0.18, 0.14, 50_000)) == pytest.approx(C / DEFAULT_LOSS.lambda_a)
    assert scheduled_lambdas(50_000) == (DEFAULT_LOSS.lambda_a, DEFAULT_LOSS.lambda_b)


def test_rate_weight_is_per_sample():
    w = rate_weight(torch.tensor([0.5, 0.1]), torch.tensor([0.3, 0.3]), 100_000)
    assert w.tolist() == pytest.approx([2.0, 2.0 ** -6])


def _fake_out(qbpp: float, nbpp: torch.Tensor, x_hat: torch.Tensor) -> dict:
    return {"x_hat": x_hat, "y_hat": torch.zeros(1, 4, 1, 1),
            "bpp_noisy": nbpp, "bpp_quantized": torch.tensor([qbpp])}


def test_switch_reads_quantized_bpp_but_gradient_flows_through_noisy_bpp():
    x = torch.rand(1, 3, 16, 16)
    for qbpp, expected in ((0.5, 2.0), (0.1, 2.0 ** -6)):
        nbpp = torch.tensor([0.2], requires_grad=True)
        out = _fake_out(qbpp, nbpp, x.clone())
        loss, logs = generator_loss(out, x, target=0.3, step=100_000)
        loss.backward()
        assert float(nbpp.grad) == pytest.approx(expected)
        assert logs["rate_weight"] == pytest.approx(expected)


def test_generator_loss_terms():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    x_hat = (x + 0.05 * torch.randn_like(x)).requires_grad_(True)
    nbpp = torch.tensor([0.2, 0.2])
    perc = TinyPerceptual()
    out = _fake_out(0.1, nbpp, x_hat)
    loss, logs = generator_loss(out, x, 0.3, 100_000, perceptual=perc)
    with torch.no_grad():
        expected = 2.0 ** -6 * 0.2 + C * 0.75 * float(mse_255(x_hat, x)) + float(perc(x_hat, x))
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    assert mse_255(x, x + 1 / 255) == pytest.approx(1.0, rel=1e-4)
    assert float(perc(x, x)) == 0.0 and float(perc(x_hat.detach(), x)) > 0.0


def test_nonsaturating_losses_reference_values():
    z = torch.zeros(3)
    assert float(generator_loss_ns(z)) == pytest.approx(math.log(2))
    assert float(discriminator_loss_ns(z, z)) == pytest.approx(2 * math.log(2))
    big = torch.full((3,), 30.0)
    assert float(discriminator_loss_ns(big, -big)) == pytest.approx(0.0, abs=1e-6)


def test_level_targets_interpolate_geometrically():
    t = (0.14, 0.30, 0.45)
    got = level_targets(t, torch.tensor([0.0, 0.5, 1.0, 0.25]))
    assert got[:3].tolist() == pytest.approx(list(t))
    assert float(got[3]) == pytest.approx(math.sqrt(0.14 * 0.30))


# ---- GAN plumbing ---------------------------------------------------------------------------


def _stage2(seed: int = 0):
    torch.manual_seed(seed)
    model = build_hific("hific-tiny")
    disc = build_discriminator(model.config)
    return model, disc


def test_d_step_sends_no_gradient_to_encoder_or_generator():
    model, disc = _stage2()
    x = torch.rand(2, 3, 64, 64)
    out = model(x, 0.5)
    loss, _ = discriminator_loss(disc, x, out["x_hat"], out["y_hat"])
    loss.backward()
    assert all(p.grad is None for p in model.parameters())
    assert all(p.grad is not None for p in disc.parameters())


def test_d_conditioning_latent_is_detached():
    model, disc = _stage2()
    x = torch.rand(1, 3, 64, 64)
    y_hat = torch.randn(1, model.config.C_y, 4, 4, requires_grad=True)
    x_hat = torch.rand(1, 3, 64, 64, requires_grad=True)
    loss, _ = discriminator_loss(disc, x, x_hat, y_hat)
    loss.backward()
    assert y_hat.grad is None and x_hat.grad is None


def test_g_step_leaves_discriminator_parameters_unchanged():
    model, disc = _stage2()
    x = torch.rand(2, 3, 64, 64)
    out = model(x, 1.0)
    loss, logs = generator_loss(out, x, 0.3, 0, perceptual=None, discriminator=disc)
    assert "g_gan" in logs
    loss.backward()
    assert all(p.grad is None for p in disc.parameters())  # D frozen during the G loss
    assert all(p.requires_grad for p in disc.parameters())  # ... and unfrozen afterwards
    # the GAN term does reach the generator
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0
               for p in model.generator.parameters())


def test_trainer_stage2_updates_each_side_only_in_its_own_step():
    model, disc = _stage2(1)
    trainer = HificTrainer(model, "hific-2", perceptual=None, discriminator=disc, lr=1e-3)
    x = torch.rand(2, 3, 64, 64)
    d_before = {k: v.clone() for k, v in disc.state_dict().items() if "original" in k or "bias" in k}
    g_before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    out, logs = trainer.g_step(x, 1.0, 0.3)
    for k, v in disc.state_dict().items():
        if k in d_before:
            assert torch.equal(v, d_before[k]), k
    assert any(not torch.equal(v, g_before[k]) for k, v in model.generator.state_dict().items())
    g_after = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.d_step(x, out)
    for k, v in model.state_dict().items():
        assert torch.equal(v, g_after[k]), k
    assert any(not torch.equal(v, d_before[k]) for k, v in disc.state_dict().items()
               if k in d_before)
