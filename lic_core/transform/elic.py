"""Analysis/synthesis and hyper transforms, ELIC-style (He et al. 2022; docs/methods.md §2.1).

::

    x ─► g_a ─► y (M × H/16 × W/16) ─► h_a ─► z (hyper_N × H/64 × W/64)
    ŷ ─► g_s ─► x̂                     ẑ ─► h_s ─► Φ_h (hyper_out × H/16 × W/16)
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .layers import AttentionBlock, ResidualBottleneck, conv, deconv


def _stage(ch: int, blocks: int) -> list[nn.Module]:
    return [ResidualBottleneck(ch) for _ in range(blocks)]


class AnalysisTransform(nn.Module):
    """g_a: four stride-2 5×5 convs with residual stages and two attention blocks, of width
    ``cfg.g_a_width`` (``N`` unless the encoder is wider than the decoder)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        N, M, r = cfg.g_a_width, cfg.M, cfg.res_blocks
        self.net = nn.Sequential(
            conv(3, N), *_stage(N, r),
            conv(N, N), *_stage(N, r), AttentionBlock(N),
            conv(N, N), *_stage(N, r), AttentionBlock(N),
            conv(N, M, 3))  # 3×3 (not 5×5) keeps the 8 M budget

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SynthesisTransform(nn.Module):
    """g_s: the mirror of g_a with transposed convs.

    :meth:`forward_features` also returns the intermediate outputs after each up-sampling
    (fine-to-coarse), which the diffusion decoder uses as "texture latents" (docs/methods.md §7.3).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        N, M, r = cfg.N, cfg.M, cfg.res_blocks
        self.stages = nn.ModuleList([
            nn.Sequential(deconv(M, N, 3), *_stage(N, r), AttentionBlock(N)),   # H/8
            nn.Sequential(deconv(N, N), *_stage(N, r), AttentionBlock(N)),   # H/4
            nn.Sequential(deconv(N, N), *_stage(N, r)),                      # H/2
            deconv(N, 3),                                                     # H
        ])
        self.feature_channels = [N, N, N]  # fine-to-coarse: H/2, H/4, H/8

    def forward_features(self, y_hat: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(x̂, [features at H/2, H/4, H/8]) — features ordered fine-to-coarse."""
        feats = []
        h = y_hat
        for stage in self.stages[:-1]:
            h = stage(h)
            feats.append(h)
        x = self.stages[-1](h)
        return x, feats[::-1]

    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        h = y_hat
        for stage in self.stages:
            h = stage(h)
        return h


class HyperAnalysis(nn.Module):
    """h_a: conv3×3 s1, ReLU, conv5×5 s2, ReLU, conv5×5 s2."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        M, Nh = cfg.M, cfg.hyper_N
        self.net = nn.Sequential(conv(M, Nh, 3, 1), nn.ReLU(inplace=True),
                                 conv(Nh, Nh), nn.ReLU(inplace=True), conv(Nh, Nh))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


class HyperSynthesis(nn.Module):
    """h_s: deconv5×5 s2, ReLU, deconv5×5 s2 (→ 3/2·N), ReLU, conv3×3 → Φ_h."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        Nh, out = cfg.hyper_N, cfg.hyper_out
        mid = Nh * 3 // 2
        self.net = nn.Sequential(deconv(Nh, Nh), nn.ReLU(inplace=True),
                                 deconv(Nh, mid), nn.ReLU(inplace=True), conv(mid, out, 3, 1))

    def forward(self, z_hat: torch.Tensor) -> torch.Tensor:
        return self.net(z_hat)
