"""uint8 arrays <-> model tensors, padding to the latent grid (docs/ARCHITECTURE.md conventions).

Inside lic_core images are ``float32 1×3×H×W`` in [0, 1].  Learned codecs need H and W multiples
of 64 (y at /16, z at /64): the image is padded by **replicating** its last row/column (no hard
edge for the transforms to spend bits on) and cropped back after decoding.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``uint8 H×W×3`` -> ``float32 1×3×H×W`` in [0, 1]."""
    a = np.asarray(img)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected a uint8 H×W×3 array, got {a.dtype} {a.shape}")
    if not a.flags.writeable or not a.flags.c_contiguous:
        a = np.array(a, order="C")  # torch.from_numpy wants writable, contiguous memory
    t = torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0)
    return t.to(torch.float32).div_(255.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``1×3×H×W`` or ``3×H×W`` float in [0, 1] -> ``uint8 H×W×3`` (clamped, rounded half-even)."""
    t = x.detach()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected batch size 1, got {tuple(t.shape)}")
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"expected 3×H×W, got {tuple(t.shape)}")
    t = t.to(torch.float32).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return np.ascontiguousarray(t.permute(1, 2, 0).cpu().numpy())


def crop_hwc(picture: torch.Tensor, h: int, w: int) -> np.ndarray:
    """uint8 1×3×H×W (padded) → the cropped H×W×3 numpy picture (values unchanged)."""
    return np.ascontiguousarray(picture[0, :, :h, :w].permute(1, 2, 0).cpu().numpy())


def padded_size(h: int, w: int, multiple: int = 64) -> tuple[int, int]:
    """The smallest multiples of ``multiple`` that are ≥ (h, w)."""
    return -(-h // multiple) * multiple, -(-w // multiple) * multiple


def pad_to_multiple(x: torch.Tensor, multiple: int = 64) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad ``B×C×H×W`` at the bottom/right to multiples of ``multiple``.

    Returns ``(x_padded, (H, W))`` with the original size for :func:`crop`.
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    ph, pw = padded_size(h, w, multiple)
    if (ph, pw) == (h, w):
        return x, (h, w)
    # replicate padding needs a float tensor; it handles pads larger than the image too
    return F.pad(x, (0, pw - w, 0, ph - h), mode="replicate"), (h, w)


def crop(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Top-left ``h×w`` window of ``…×H×W`` (inverse of :func:`pad_to_multiple`)."""
    if h > x.shape[-2] or w > x.shape[-1]:
        raise ValueError(f"cannot crop {tuple(x.shape[-2:])} to {(h, w)}")
    return x[..., :h, :w]


class PaddedImage:
    """A ``uint8 H×W×3`` image seen as ``pad_to_multiple(to_tensor(img), multiple)``, window by
    window (issue 28).

    Why: the float32 picture and its padded copy cost 24 bytes per pixel (1.2 GB at 48 MP) while
    a tiled transform reads one window at a time.  A window's values are the same numbers as the
    padded tensor's there — the conversion is elementwise and replicate padding copies the edge —
    so a transform fed windows sees exactly what it would have cut from the whole tensor."""

    def __init__(self, img: np.ndarray, multiple: int = 64, device="cpu") -> None:
        a = np.asarray(img)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"expected a uint8 H×W×3 array, got {a.dtype} {a.shape}")
        self.img, self.multiple, self.device = a, int(multiple), torch.device(device)
        self.height, self.width = int(a.shape[0]), int(a.shape[1])
        self.padded = padded_size(self.height, self.width, self.multiple)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (1, 3, *self.padded)

    def full(self) -> torch.Tensor:
        """The whole padded float32 tensor (exactly what ``pad_to_multiple`` returns)."""
        return pad_to_multiple(to_tensor(self.img).to(self.device), self.multiple)[0]

    def window(self, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
        """Rows [r0, r1) × columns [c0, c1) of the padded tensor, contiguous float32."""
        rows = np.minimum(np.arange(r0, r1), self.height - 1)
        cols = np.minimum(np.arange(c0, c1), self.width - 1)
        if r1 <= self.height and c1 <= self.width:
            part = self.img[r0:r1, c0:c1]
        else:  # replicate padding: the last row/column repeated (index clamping copies them)
            part = self.img[rows[:, None], cols[None, :]]
        return to_tensor(np.ascontiguousarray(part)).to(self.device).contiguous()

