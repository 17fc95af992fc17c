"""Checkerboard two-pass context utilities (He et al., CVPR 2021; docs/methods.md §3.3).

Format constant: **anchors are the positions where (i + j) is even** (``ANCHOR_PARITY = 0``).
Pass 1 decodes all anchors in parallel, pass 2 all non-anchors with the anchors as context.
Elements of one pass are gathered in raster order into a ``B×C×N`` tensor (:func:`gather`) —
this order is part of the bitstream spec (docs/bitstream.md).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ANCHOR_PARITY = 0


def anchor_mask(h: int, w: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Boolean ``h×w`` mask, True at anchors ((i + j) % 2 == ANCHOR_PARITY)."""
    i = torch.arange(h, device=device)[:, None]
    j = torch.arange(w, device=device)[None, :]
    return ((i + j) % 2) == ANCHOR_PARITY


def gather(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``B×C×h×w`` → ``B×C×N``: the elements where ``mask`` is True, raster order."""
    return x[:, :, mask]


def scatter(values: torch.Tensor, mask: torch.Tensor, like: torch.Tensor | None = None,
            shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Inverse of :func:`gather`: a ``B×C×h×w`` tensor holding ``values`` at ``mask``, 0 elsewhere."""
    if like is not None:
        out = torch.zeros_like(like, dtype=values.dtype)
    else:
        out = values.new_zeros(shape)
    out[:, :, mask] = values
    return out


def checkerboard_kernel_mask(k: int) -> torch.Tensor:
    """``k×k`` float mask keeping only taps whose offset (di + dj) is odd.

    A non-anchor centre plus an odd offset lands on an anchor, so the masked conv sees only
    anchors; the centre tap (offset 0, even) is always excluded.
    """
    c = k // 2
    i = torch.arange(k)[:, None] - c
    j = torch.arange(k)[None, :] - c
    return (((i + j).abs() % 2) == 1).float()


class CheckerboardMaskedConv2d(nn.Conv2d):
    """Conv whose kernel is multiplied by the checkerboard mask at every call (mask as buffer)."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 5, bias: bool = True,
                 groups: int = 1) -> None:
        super().__init__(cin, cout, kernel_size, padding=kernel_size // 2, bias=bias,
                         groups=groups)
        self.register_buffer("mask", checkerboard_kernel_mask(kernel_size)[None, None],
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding,
                        groups=self.groups)
