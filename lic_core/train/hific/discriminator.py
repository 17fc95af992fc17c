"""HiFiC's conditional PatchGAN critic (a training-only part; the generator is in lic_core.models.hific).

Mentzer et al. 2020, docs/methods.md §8.1.  The discriminator sees an image and the *quantized*
latent ŷ it was decoded from (conditional GAN): ŷ is projected to a few channels, upsampled ×16 by
nearest neighbour to the image grid and concatenated with the image; four spectrally normalized 4×4
stride-2 convolutions and a 1×1 conv give **one logit per 16×16 patch**.  The training code must
pass ŷ detached in the D step (:func:`lic_core.train.hific.losses.discriminator_loss` does).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ...models.hific import HificConfig

__all__ = ["HificDiscriminator", "build_discriminator"]


class HificDiscriminator(nn.Module):
    """Conditional PatchGAN D(x, ŷ) → logits ``B×1×H/16×W/16`` (x in [0, 1], ŷ at H/16).

    ``widths`` default to the official (64, 128, 256, 512); the small config halves them.
    """

    def __init__(self, C_y: int, cond_channels: int = 12,
                 widths: Sequence[int] = (64, 128, 256, 512)) -> None:
        super().__init__()
        self.cond = nn.Conv2d(C_y, cond_channels, 3, padding=1)
        layers: list[nn.Module] = []
        cin = 3 + cond_channels
        for w in widths:
            layers += [spectral_norm(nn.Conv2d(cin, w, 4, stride=2, padding=1)),
                       nn.LeakyReLU(0.2)]
            cin = w
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(cin, 1, 1)
        self.factor = 2 ** len(widths)

    def forward(self, x: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        c = F.leaky_relu(self.cond(y_hat), 0.2)
        c = F.interpolate(c, size=x.shape[-2:], mode="nearest")  # ×16 when x is 16·ŷ
        h = torch.cat([x * 2.0 - 1.0, c], dim=1)
        return self.out(self.body(h))


def build_discriminator(config: HificConfig) -> HificDiscriminator:
    """The discriminator matching a :class:`HificConfig` (§8.4: widths halved for the small one)."""
    return HificDiscriminator(config.C_y, config.disc_cond, config.disc_widths)
