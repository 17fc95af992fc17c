"""A deeper synthesis transform that starts as the one it deepens (the GAN decoder's generator).

Why: the GAN decoder (docs/gan.md) is g_s retrained with HiFiC's generator objective on frozen
latents; at g_s's own size (0.55 M parameters) its LPIPS plateaus, while HiFiC's generator puts
its capacity in a stack of wide residual blocks at the latent resolution before up-sampling
(Mentzer et al. 2020, the generator of their architecture figure). The same place is the cheapest one for us too: a
residual bottleneck (ELIC §3.3, the blocks g_s already uses) on the M = 320 latent channels adds
0.33 M parameters for 1.3 k multiply-adds per picture pixel (the H/16 grid has 256× fewer points),
where a block of the same size at H/8 would cost four times as much per parameter.

So a deepened g_s has a *trunk*: ``extra`` such blocks in a new first stage (no up-sampling),
before g_s's own stages, which move one place down (``stages.i`` → ``stages.i+1``;
:func:`deep_key` / :func:`base_key` translate names).

Function-preserving start (Net2DeeperNet's identity layers, Chen, Goodfellow and Shlens,
"Net2Net", ICLR 2016; the zero-initialised residual branch of Goyal et al. 2017): each block's
last 1×1 convolution starts at zero, so the block is the identity and the deepened g_s draws
exactly the picture of the g_s it came from; training then grows the blocks from there.

The blocks are the ones :class:`~lic_core.models.lgem_exact.ExactSynthesis` already evaluates
exactly (and tiles: the trunk's 3×3 convolutions widen the latent margin by one each), so a
deepened decoder's pictures are the same on every machine like any other.
"""
from __future__ import annotations

import re
from typing import Optional

import torch
from torch import nn

from .layers import ResidualBottleneck

#: attribute a deepened g_s carries: how many trunk blocks it has
EXTRA_ATTR = "extra_blocks"
_STAGE = re.compile(r"^((?:g_s\.)?stages\.)(\d+)(\..*)$")


def extra_blocks(g_s: nn.Module) -> int:
    """How many trunk blocks :func:`deepen_synthesis` gave ``g_s`` (0: none)."""
    return int(getattr(g_s, EXTRA_ATTR, 0))


def deepen_synthesis(g_s: nn.Module, extra: int) -> nn.Module:
    """Give ``g_s`` a trunk of ``extra`` identity-initialised residual bottlenecks at the latent
    resolution (in place; returns ``g_s``). The picture is unchanged until trained. Deepening an
    already deepened g_s again is refused (its files would name the wrong depth)."""
    extra = int(extra)
    if extra < 0:
        raise ValueError(f"extra blocks must be ≥ 0, got {extra}")
    if extra_blocks(g_s):
        raise ValueError(f"g_s is deepened already ({extra_blocks(g_s)} trunk blocks)")
    if extra == 0:
        return g_s
    first = next(m for m in g_s.stages[0].modules()
                 if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)))
    ch, ref = int(first.in_channels), first.weight
    trunk = nn.Sequential()
    for _ in range(extra):
        block = ResidualBottleneck(ch).to(device=ref.device, dtype=ref.dtype)
        last = block.body[-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()
        trunk.append(block)
    g_s.stages.insert(0, trunk)
    feats = getattr(g_s, "feature_channels", None)
    if feats is not None:  # forward_features now also returns the trunk's output (coarsest)
        g_s.feature_channels = [*feats, ch]
    setattr(g_s, EXTRA_ATTR, extra)
    return g_s


def deep_key(key: str) -> str:
    """The name of a g_s parameter of the undeepened g_s in a deepened one (``stages.i.…`` →
    ``stages.i+1.…``; also with the ``g_s.`` prefix of a model's state dict)."""
    m = _STAGE.match(key)
    return f"{m.group(1)}{int(m.group(2)) + 1}{m.group(3)}" if m else key


def base_key(key: str) -> Optional[str]:
    """The inverse of :func:`deep_key`: the undeepened name, or None for a trunk parameter."""
    m = _STAGE.match(key)
    if not m:
        return key
    i = int(m.group(2))
    return None if i == 0 else f"{m.group(1)}{i - 1}{m.group(3)}"


def trunk_block(key: str) -> Optional[int]:
    """Which trunk block (0 … extra − 1) a parameter ``key`` *of a deepened g_s* belongs to
    (None: one of g_s's own). Names alone cannot say whether a g_s is deepened: ask
    :func:`extra_blocks` first."""
    m = _STAGE.match(key)
    if not m or int(m.group(2)) != 0:
        return None
    rest = m.group(3).split(".")
    return int(rest[1]) if len(rest) > 1 and rest[1].isdigit() else None
