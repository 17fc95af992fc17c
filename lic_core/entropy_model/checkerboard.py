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


def gather_parity(x: torch.Tensor, parity: int) -> torch.Tensor:
    """:func:`gather` of ``B×C×h×w`` at the positions with (i + j) % 2 == ``parity`` (its own
    coordinates; ``parity`` = ANCHOR_PARITY: the anchors), raster order — the same values in
    the same order, as two strided copies (even rows, odd rows) instead of an indexed gather."""
    B, C, h, w = x.shape
    f0 = parity % 2  # first pass column of the even rows; the odd rows' is the other one
    f1 = 1 - f0
    n0, n1 = (w - f0 + 1) // 2, (w - f1 + 1) // 2  # pass positions of an even, an odd row
    pairs = h // 2
    body = pairs * (n0 + n1)
    out = x.new_empty((B, C, body + (h % 2) * n0))
    if pairs:
        v = out[..., :body].view(B, C, pairs, n0 + n1)  # row 2k, then row 2k + 1
        v[..., :n0] = x[..., 0:2 * pairs:2, f0::2]
        v[..., n0:] = x[..., 1:2 * pairs:2, f1::2]
    if h % 2:
        out[..., body:] = x[..., h - 1, f0::2]
    return out


def mask_parity(mask: torch.Tensor) -> int | None:
    """``parity`` if ``mask`` (h×w bool) is exactly the (i + j) % 2 == parity positions, else None
    (then :func:`gather_parity` is not :func:`gather` with it)."""
    h, w = mask.shape
    if h == 0 or w == 0:
        return None
    parity = 0 if bool(mask[0, 0]) else 1  # position (0, 0) has (i + j) % 2 == 0
    a = anchor_mask(h, w, mask.device)
    return parity if torch.equal(mask, a if parity == ANCHOR_PARITY else ~a) else None


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
