"""Building blocks of the ELIC-style transforms (docs/methods.md §2.1)."""
from __future__ import annotations

import torch
from torch import nn


def conv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    """'Same' convolution; stride 2 halves the resolution."""
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def deconv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    """Transposed convolution that exactly doubles the resolution (stride 2)."""
    return nn.ConvTranspose2d(cin, cout, k, stride=stride, padding=k // 2,
                              output_padding=stride - 1)


class ResidualBottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 bottleneck with half-width middle and identity skip (ELIC §3.3)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        mid = max(ch // 2, 1)
        self.body = nn.Sequential(
            nn.Conv2d(ch, mid, 1), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(mid, ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AttentionBlock(nn.Module):
    """Simplified attention block (Cheng et al. 2020): x + a(x)·sigmoid(b(x)).

    Both branches are stacks of residual bottlenecks; the mask branch ends in a 1×1 conv.
    """

    def __init__(self, ch: int, units: int = 2) -> None:
        super().__init__()
        self.a = nn.Sequential(*[ResidualBottleneck(ch) for _ in range(units)])
        self.b = nn.Sequential(*[ResidualBottleneck(ch) for _ in range(units)],
                               nn.Conv2d(ch, ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.a(x) * torch.sigmoid(self.b(x))
