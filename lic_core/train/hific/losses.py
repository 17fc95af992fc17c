"""The HiFiC objective (Mentzer et al. 2020; docs/methods.md §8.2, official constants).

Generator / encoder / entropy-model side::

    L_EG = C·(1/λ')·r + C·C_D·MSE₂₅₅ + w_P·LPIPS − C_P·log D(x̂, ŷ)

* ``r`` is the **noisy** bpp (differentiable); ``1/λ' = 1/λ_a`` when the **quantized** bpp exceeds
  the target r_t, else ``1/λ_b`` (rate-constraint switch; λ_a < λ_b, so a rate above target is
  pushed down hard: C/λ_a = 2, C/λ_b = 2⁻⁶).
* ``MSE₂₅₅`` is the mean squared error on [0, 255] images.
* Schedules (official ``lambda_schedule`` / ``target_schedule``): before step 50k both λ are ×2
  (rate weight halved) and the target is ×0.20/0.14; from step 50k on they are ×1.

Discriminator side: ``L_D = −log(1 − D(x̂, ŷ)) − log D(x, ŷ)`` with x̂ and ŷ detached.  The
conditioning latent is detached in *both* steps (the official code stops its gradient always).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import nn

from ..losses.gan import discriminator_loss_ns, frozen, generator_loss_ns
from ..losses.perceptual import PerceptualFn

Number = Union[float, torch.Tensor]


@dataclass(frozen=True)
class HificLossConfig:
    """Official HiFiC loss constants (tensorflow/compression models/hific configs, §8.2)."""

    C: float = 0.1 * 2.0 ** -5
    C_D: float = 0.75
    w_P: float = 1.0
    C_P: float = 0.15
    lambda_a: float = 0.1 * 2.0 ** -6
    lambda_b: float = 0.1 * 2.0 ** 1
    schedule_step: int = 50_000
    early_lambda_factor: float = 2.0
    early_target_factor: float = 0.20 / 0.14

    def __post_init__(self) -> None:
        if not self.lambda_a < self.lambda_b:
            raise ValueError(f"expected lambda_a < lambda_b, got {self.lambda_a} >= {self.lambda_b}")


DEFAULT_LOSS = HificLossConfig()


def scheduled_lambdas(step: int, cfg: HificLossConfig = DEFAULT_LOSS) -> tuple[float, float]:
    """(λ_a, λ_b) at ``step``: ×2 before ``schedule_step`` (50k), ×1 after."""
    f = cfg.early_lambda_factor if step < cfg.schedule_step else 1.0
    return cfg.lambda_a * f, cfg.lambda_b * f


def scheduled_target(target: Number, step: int, cfg: HificLossConfig = DEFAULT_LOSS) -> Number:
    """Rate target r_t at ``step``: ×0.20/0.14 before 50k steps, as is after."""
    return target * (cfg.early_target_factor if step < cfg.schedule_step else 1.0)


def rate_weight(qbpp: Number, target: Number, step: int,
                cfg: HificLossConfig = DEFAULT_LOSS) -> torch.Tensor:
    """``C/λ'``: ``C/λ_a`` where the quantized bpp exceeds the (scheduled) target, else ``C/λ_b``.

    Works element-wise (per-sample targets) and on scalars; never carries a gradient.
    """
    qbpp = torch.as_tensor(qbpp, dtype=torch.float32).detach()
    t = torch.as_tensor(scheduled_target(target, step, cfg), dtype=torch.float32).to(qbpp.device)
    lam_a, lam_b = scheduled_lambdas(step, cfg)
    return torch.where(qbpp > t, torch.full_like(qbpp, cfg.C / lam_a),
                       torch.full_like(qbpp, cfg.C / lam_b))


def mse_255(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """MSE of images scaled to [0, 255] (inputs in [0, 1])."""
    return ((x_hat - x) * 255.0).pow(2).mean()


def generator_loss(out: dict, x: torch.Tensor, target: Number, step: int,
                   perceptual: Optional[PerceptualFn] = None,
                   discriminator: Optional[nn.Module] = None,
                   cfg: HificLossConfig = DEFAULT_LOSS) -> tuple[torch.Tensor, dict]:
    """``L_EG`` for one batch and a log dict (stage 1 when ``discriminator`` is None).

    ``out`` is :meth:`HificModel.forward`'s dict (needs ``x_hat``, ``y_hat``, ``bpp_noisy``,
    ``bpp_quantized``).  ``target`` is r_t (float, or a per-sample tensor).  The discriminator, when
    given, is frozen for this call (no gradient reaches its parameters) and sees ŷ detached.
    """
    x_hat = out["x_hat"]
    w = rate_weight(out["bpp_quantized"], target, step, cfg)
    nbpp = out["bpp_noisy"]
    rate_term = (w * nbpp).mean() if w.dim() else w * nbpp.mean()
    mse = mse_255(x_hat, x)
    loss = rate_term + cfg.C * cfg.C_D * mse
    logs = {"bpp_noisy": float(nbpp.detach().mean()), "bpp_quantized": float(out["bpp_quantized"].mean()),
            "rate_weight": float(w.float().mean()), "mse255": float(mse.detach())}
    if perceptual is not None and cfg.w_P:
        lp = perceptual(x_hat, x)
        loss = loss + cfg.w_P * lp
        logs["lpips"] = float(lp.detach())
    if discriminator is not None:
        with frozen(discriminator):
            logits = discriminator(x_hat, out["y_hat"].detach())
        g = generator_loss_ns(logits)
        loss = loss + cfg.C_P * g
        logs["g_gan"] = float(g.detach())
    logs["loss"] = float(loss.detach())
    return loss, logs


def discriminator_loss(discriminator: nn.Module, x: torch.Tensor, x_hat: torch.Tensor,
                       y_hat: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """``L_D`` with x̂ and ŷ detached: no gradient reaches E, G or the hyperprior (§8.2)."""
    y_c = y_hat.detach()
    real = discriminator(x, y_c)
    fake = discriminator(x_hat.detach(), y_c)
    loss = discriminator_loss_ns(real, fake)
    return loss, {"d_loss": float(loss.detach()), "d_real": float(torch.sigmoid(real.detach()).mean()),
                  "d_fake": float(torch.sigmoid(fake.detach()).mean())}


def level_targets(targets: tuple[float, ...], u: torch.Tensor) -> torch.Tensor:
    """Rate target for slider values ``u`` (B): geometric interpolation between the level targets.

    Matches the gain units' exponential interpolation (§5.1); at u = s/(n−1) it is exactly
    ``targets[s]``.
    """
    t = torch.as_tensor(targets, dtype=torch.float32)
    n = t.numel()
    v = u.float().clamp(0, 1) * (n - 1)
    s = v.floor().long().clamp(max=max(n - 2, 0))
    if n == 1:
        return t[0].expand_as(v)
    l = v - s.float()
    return t[s].pow(1 - l) * t[s + 1].pow(l)
