"""Tiles with halos for the convolutional transforms (docs/methods.md §2.1, §6.4; issue 28).

Why: a 24–48 MP photo does not fit in memory as full-size activations (g_a at H/2 holds 64–128
float32 channels, the exact g_s 64 float64 channels), but every layer of g_a and g_s is local —
convolutions, residual bottlenecks and Cheng's attention blocks, no global pooling or norm.  An
output region therefore depends only on an input window around it, and computing the image tile
by tile, each tile on its window, gives the same values as computing it whole as long as

* every window reaches at least the receptive **margin** beyond its tile (:func:`input_margin`,
  derived per layer from kernel, stride and padding — no guessing), and
* window edges fall on the network's stride grid (multiples of the total stride), so every
  strided layer samples the same positions; a window clipped at the image border has exactly the
  zero padding the whole image has there.

For the exact g_s (integer sums held in float64) the tiled picture is then bit-identical by
construction: the terms outside the window are zeros in both computations and exact sums do not
depend on their order.  For the float g_a the values are the same as long as every layer runs the
same kernel on the tile as on the whole image — the reason for :data:`MIN_ANALYSIS_WINDOW`.

This module plans tiles (:func:`spans`, :func:`tile_grid`), computes margins of float modules and
runs the float g_a tiled (:func:`analysis_tiled`); :class:`lic_core.models.lgem_exact.ExactSynthesis`
runs the exact g_s tiled with the same plan.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterable, Union

import torch
from torch import nn

from ..image.tensor import PaddedImage
from .layers import AttentionBlock, ResidualBottleneck

#: the budget a tile's working set is sized for: a 48 MP photo then needs no more memory than a
#: 1 MP one beyond its input, latents and output picture (issue 28: ≤ 2.5 GB at every size);
#: ``$LIC_TILE_MB`` replaces it (a smaller machine, or tests that want many tiles)
DEFAULT_TILE_BUDGET = 384 << 20

#: smallest window (pixels per side, where the image is that large) the float g_a runs on: below
#: about 640 positions per channel ATen runs a batch-1 3×3 float32 convolution with its own
#: im2col + sgemm instead of oneDNN (``use_mkldnn``'s size heuristic), whose rounding differs; at
#: H/8 a 256-pixel window has 32×32 positions, safely above it for every width of the ELIC stages
MIN_ANALYSIS_WINDOW = 256


def tile_budget() -> int:
    """Bytes a tile's working set may use: ``$LIC_TILE_MB`` MiB, else :data:`DEFAULT_TILE_BUDGET`
    (read at every call, so a test or a benchmark can change it)."""
    env = os.environ.get("LIC_TILE_MB", "").strip()
    if env:
        try:
            return max(1, int(float(env) * (1 << 20)))
        except ValueError:
            pass
    return DEFAULT_TILE_BUDGET


@dataclass(frozen=True)
class Span:
    """One tile along one axis: ``core`` is the part of the output it owns, ``window`` the input
    it reads (core ± margin, clipped to the image), both as [start, stop) in the same units."""

    core: tuple[int, int]
    window: tuple[int, int]


def spans(n: int, tile: int, margin: int, min_window: int = 0) -> list[Span]:
    """Split [0, n) into ⌈n / tile⌉ cores of near-equal size, each with its window.

    ``min_window`` grows a window (inside [0, n)) to at least that size: more margin never
    changes a value, and it keeps every tile on the same kernels as the whole image."""
    if n <= 0:
        return []
    count = max(1, -(-n // max(1, tile)))
    cuts = [round(i * n / count) for i in range(count + 1)]
    out = []
    for c0, c1 in zip(cuts, cuts[1:]):
        w0, w1 = max(0, c0 - margin), min(n, c1 + margin)
        short = min_window - (w1 - w0)
        if short > 0:  # grow on both sides, then wherever room is left
            w0 = max(0, w0 - (short + 1) // 2)
            w1 = min(n, max(w1 + short // 2, w0 + min_window))
            w0 = max(0, min(w0, w1 - min_window))
        out.append(Span((c0, c1), (w0, w1)))
    return out


def tile_grid(h: int, w: int, tile: int, margin: int,
              min_window: int = 0) -> list[tuple[Span, Span]]:
    """Row-major (rows, columns) tiles of an h×w grid."""
    rows, cols = spans(h, tile, margin, min_window), spans(w, tile, margin, min_window)
    return [(r, c) for r in rows for c in cols]


# ------------------------------------------------------------------------------ receptive margins


def _conv_margin(k: int, s: int, p: int, m: int) -> int:
    """Input margin of a convolution for output margin m (input core = s × output core).

    Output o reads inputs s·o − p … s·o − p + k − 1: left s·m + p, right s·m + k − s − p."""
    return max(0, s * m + p, s * m + k - s - p)


def _deconv_margin(k: int, s: int, p: int, m: int) -> int:
    """Input margin of a transposed convolution for output margin m (output core = s × input
    core).  Output o receives input i where o = s·i − p + j, j < k: left ⌊(m + k − 1 − p)/s⌋,
    right ⌊(m + p − 1)/s⌋ + 1."""
    return max(0, (m + k - 1 - p) // s, (m + p - 1) // s + 1)


def input_margin(module: nn.Module, m: int = 0) -> int:
    """Margin (in the module's input pixels) around a tile's input core that makes the module's
    output exact within ``m`` output pixels around the output core.

    Knows the layers of the ELIC transforms: Conv2d, ConvTranspose2d, ResidualBottleneck,
    AttentionBlock, elementwise activations and Sequential/ModuleList chains of them."""
    if isinstance(module, (nn.Sequential, nn.ModuleList)):
        for sub in reversed(list(module)):
            m = input_margin(sub, m)
        return m
    if isinstance(module, nn.ConvTranspose2d):
        (kh, kw), (sh, sw), (ph, pw) = module.kernel_size, module.stride, module.padding
        return max(_deconv_margin(kh, sh, ph, m), _deconv_margin(kw, sw, pw, m))
    if isinstance(module, nn.Conv2d):
        if tuple(module.dilation) != (1, 1):
            raise NotImplementedError("margins of dilated convolutions")
        (kh, kw), (sh, sw), (ph, pw) = module.kernel_size, module.stride, module.padding
        return max(_conv_margin(kh, sh, ph, m), _conv_margin(kw, sw, pw, m))
    if isinstance(module, ResidualBottleneck):
        return input_margin(module.body, m)  # the skip needs m
    if isinstance(module, AttentionBlock):
        return max(input_margin(module.a, m), input_margin(module.b, m))
    if isinstance(module, (nn.ReLU, nn.GELU, nn.Identity, nn.LeakyReLU, nn.Sigmoid)):
        return m
    raise NotImplementedError(f"no receptive margin for {type(module).__name__}")


def scale_factor(module: nn.Module) -> tuple[int, int]:
    """(up, down): output pixels per input pixel is up/down (products of strides)."""
    up = down = 1
    mods: Iterable[nn.Module] = module.modules()
    for m in mods:
        if isinstance(m, nn.ConvTranspose2d):
            up *= int(m.stride[0])
        elif isinstance(m, nn.Conv2d):
            down *= int(m.stride[0])
    return up, down


def tile_for_budget(budget: int, bytes_per_unit2: float, margin: int, multiple: int = 1,
                    smallest: int = 1) -> int:
    """The largest tile side t (a multiple of ``multiple``, at least ``smallest``) whose window
    (t + 2·margin)² costs at most ``budget`` bytes at ``bytes_per_unit2`` bytes per window cell."""
    side = math.isqrt(max(0, int(budget / max(bytes_per_unit2, 1e-9)))) - 2 * margin
    return max(smallest, side // multiple * multiple)


# ------------------------------------------------------------------------------- float g_a tiled


def analysis_margin(net: nn.Module) -> tuple[int, int]:
    """(total stride, input margin rounded up to a multiple of it) of a down-sampling transform."""
    up, down = scale_factor(net)
    if up != 1:
        raise ValueError("analysis_tiled needs a transform without up-sampling")
    m = input_margin(net, 0)
    return down, -(-m // down) * down


def analysis_bytes_per_pixel(net: nn.Module) -> float:
    """Peak working set of a float32 down-sampling transform per input pixel of its window: its
    densest activation (channels per input pixel, after the strides so far) about four times
    over (input, branches and output of a residual block) plus the input's 3 channels.  For the
    ELIC g_a that is 64 channels at 1/4 of the pixels: 268 bytes; VmHWM measured 194–240 bytes
    (lic-lgem-cpu, 0.25–4 MP windows)."""
    density, down = 3.0, 1
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            down *= int(m.stride[0])
            density = max(density, m.out_channels / (down * down))
    return 4.0 * (3 + 4 * density)


@torch.no_grad()
def analysis_tiled(net: nn.Module, x: Union[torch.Tensor, PaddedImage], budget: int = 0,
                   tile: int = 0, min_window: int = MIN_ANALYSIS_WINDOW) -> torch.Tensor:
    """``net(x)`` computed tile by tile with bounded memory, the same values as ``net(x)``.

    ``x`` is B×C×H×W with H, W multiples of the total stride, or a
    :class:`~lic_core.image.tensor.PaddedImage` (a uint8 photo read window by window: no float
    copy of the whole picture).  ``tile`` (pixels, a multiple of the stride) overrides the size
    chosen from ``budget`` (bytes; 0: :func:`tile_budget`).  An image that fits one tile runs
    whole — exactly the untiled call."""
    stride, margin = analysis_margin(net)
    H, W = x.shape[-2:]
    if H % stride or W % stride:
        raise ValueError(f"analysis_tiled needs sizes that are multiples of {stride}")
    if tile <= 0:
        tile = tile_for_budget(budget or tile_budget(), analysis_bytes_per_pixel(net), margin,
                               stride, smallest=4 * stride)
    tile = max(stride, tile // stride * stride)
    if H <= tile and W <= tile:
        return net(x.full() if isinstance(x, PaddedImage) else x)
    n_h, n_w = H // stride, W // stride  # plan on the output grid: windows stay stride-aligned
    t, m, mw = tile // stride, margin // stride, -(-min_window // stride)
    rows = spans(n_h, t, m, mw)
    # a window's area matters (ATen's heuristic counts elements): a short image gets wider windows
    cols = spans(n_w, t, m, max(mw, -(-mw * mw // min(r1 - r0 for r0, r1 in (s.window for s in rows)))))
    rows = spans(n_h, t, m, max(mw, -(-mw * mw // min(c1 - c0 for c0, c1 in (s.window for s in cols)))))
    out = None
    for rs, cs in ((r, c) for r in rows for c in cols):
        (r0, r1), (c0, c1) = rs.core, cs.core
        (a0, a1), (b0, b1) = rs.window, cs.window
        rs, cs = (a0 * stride, a1 * stride), (b0 * stride, b1 * stride)
        part = net(x.window(*rs, *cs) if isinstance(x, PaddedImage) else
                   x[..., rs[0]:rs[1], cs[0]:cs[1]].contiguous())
        if out is None:
            out = part.new_empty((*part.shape[:2], n_h, n_w))
        out[..., r0:r1, c0:c1] = part[..., r0 - a0:r1 - a0, c0 - b0:c1 - b0]
        del part
    assert out is not None
    return out
