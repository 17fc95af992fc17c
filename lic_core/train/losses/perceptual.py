"""Pluggable perceptual (LPIPS-like) losses (docs/methods.md §8.4 "Offline LPIPS").

The training code takes any callable ``perceptual(x_hat, x) -> scalar`` on ``B×3×H×W`` tensors in
[0, 1].  The product uses LPIPS-Alex (:class:`lic_core.metrics.lpips_metric.LpipsLoss`, weights
from the project's own artifact, never downloaded); tests use :class:`TinyPerceptual`, a small
*randomly initialised* frozen feature net with the LPIPS structure (unit-normalized features,
squared differences, spatial mean), so the loss plumbing is exercised without any weights.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

PerceptualFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class TinyPerceptual(nn.Module):
    """Random frozen 3-stage conv feature net with an LPIPS-style distance (tests only)."""

    def __init__(self, widths: tuple[int, ...] = (8, 16, 16), seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.stages = nn.ModuleList()
        cin = 3
        for w in widths:
            conv = nn.Conv2d(cin, w, 3, stride=2, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2.0 / (9 * cin)) ** 0.5)
                conv.bias.zero_()
            self.stages.append(nn.Sequential(conv, nn.ReLU()))
            cin = w
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        a, b = x_hat * 2 - 1, x * 2 - 1
        d = x_hat.new_zeros(())
        for stage in self.stages:
            a, b = stage(a), stage(b)
            na = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            nb = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            d = d + (na - nb).pow(2).sum(1).mean()
        return d


def default_perceptual(weights: Optional[str] = None) -> nn.Module:
    """LPIPS-Alex as a loss (frozen; raises the metric module's LicError when weights are absent)."""
    from ...metrics.lpips_metric import LpipsLoss

    return LpipsLoss(weights=weights)
