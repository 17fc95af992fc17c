"""Cheng et al. 2020, "Learned image compression with discretized Gaussian mixture likelihoods
and attention modules", as CompressAI ships it (``cheng2020-anchor``, ``cheng2020-attn``).

CompressAI's versions keep Minnen et al.'s entropy model — hyperprior, masked 5×5 context,
single Gaussian (not the paper's mixture) — and change the transforms: residual blocks of 3×3
convolutions instead of 5×5 ones (the same receptive field for fewer parameters), sub-pixel
convolutions for upsampling, and, in the attention variant, simplified attention modules that
steer bits towards complex regions.  Coding is therefore the raster-order procedure of
:class:`~.google.JointAutoregressiveHierarchicalPriors`, unchanged.  Latent and hyper-latent widths are both N.
"""
from __future__ import annotations

import torch.nn as nn

from .google import JointAutoregressiveHierarchicalPriors, require_key
from .layers import (
    AttentionBlock,
    ResidualBlock,
    ResidualBlockUpsample,
    ResidualBlockWithStride,
    conv3x3,
    subpel_conv3x3,
)


class Cheng2020Anchor(JointAutoregressiveHierarchicalPriors):
    """The paper's anchor: residual transforms, Minnen's context + hyperprior entropy model."""

    arch = "cheng2020-anchor"

    def __init__(self, N: int = 192) -> None:
        super().__init__(N=N, M=N)

    @staticmethod
    def _analysis(N: int, M: int) -> nn.Sequential:
        return nn.Sequential(
            ResidualBlockWithStride(3, N, stride=2), ResidualBlock(N, N),
            ResidualBlockWithStride(N, N, stride=2), ResidualBlock(N, N),
            ResidualBlockWithStride(N, N, stride=2), ResidualBlock(N, N),
            conv3x3(N, N, stride=2))

    @staticmethod
    def _synthesis(N: int, M: int) -> nn.Sequential:
        return nn.Sequential(
            ResidualBlock(N, N), ResidualBlockUpsample(N, N, 2),
            ResidualBlock(N, N), ResidualBlockUpsample(N, N, 2),
            ResidualBlock(N, N), ResidualBlockUpsample(N, N, 2),
            ResidualBlock(N, N), subpel_conv3x3(N, 3, 2))

    @staticmethod
    def _hyper_analysis(N: int, M: int) -> nn.Sequential:
        return nn.Sequential(
            conv3x3(N, N), nn.LeakyReLU(), conv3x3(N, N), nn.LeakyReLU(),
            conv3x3(N, N, stride=2), nn.LeakyReLU(), conv3x3(N, N), nn.LeakyReLU(),
            conv3x3(N, N, stride=2))

    @staticmethod
    def _hyper_synthesis(N: int, M: int) -> nn.Sequential:
        return nn.Sequential(
            conv3x3(N, N), nn.LeakyReLU(), subpel_conv3x3(N, N, 2), nn.LeakyReLU(),
            conv3x3(N, N * 3 // 2), nn.LeakyReLU(), subpel_conv3x3(N * 3 // 2, N * 3 // 2, 2),
            nn.LeakyReLU(), conv3x3(N * 3 // 2, N * 2))

    @classmethod
    def sizes_from_state_dict(cls, sd: dict) -> dict:
        """N as CompressAI's ``from_state_dict`` reads it (the first residual block's width)."""
        return {"N": int(require_key(sd, "g_a.0.conv1.weight", cls.arch).shape[0])}


class Cheng2020Attention(Cheng2020Anchor):
    """The anchor with two attention blocks in each of g_a and g_s."""

    arch = "cheng2020-attn"

    @staticmethod
    def _analysis(N: int, M: int) -> nn.Sequential:
        return nn.Sequential(
            ResidualBlockWithStride(3, N, stride=2), ResidualBlock(N, N),
            ResidualBlockWithStride(N, N, stride=2), AttentionBlock(N), ResidualBlock(N, N),
            ResidualBlockWithStride(N, N, stride=2), ResidualBlock(N, N),
            conv3x3(N, N, stride=2), AttentionBlock(N))

    @staticmethod
    def _synthesis(N: int, M: int) -> nn.Sequential:
        return nn.Sequential(
            AttentionBlock(N), ResidualBlock(N, N), ResidualBlockUpsample(N, N, 2),
            ResidualBlock(N, N), ResidualBlockUpsample(N, N, 2), AttentionBlock(N),
            ResidualBlock(N, N), ResidualBlockUpsample(N, N, 2), ResidualBlock(N, N),
            subpel_conv3x3(N, 3, 2))
