"""The layers of CompressAI's image architectures, with CompressAI's parameter and buffer names.

A user's checkpoint is a flat dict of tensors keyed by module path, so every submodule here sits
under the attribute name CompressAI gives it (``beta_reparam.lower_bound.bound``,
``conv_a.0.conv.2.weight``, …) even where a shorter structure would compute the same thing.
The arithmetic follows CompressAI's operation order too: the coders compare symbols bit for bit,
and a latent that lands on the other side of a rounding boundary would decode to another
picture.

* :class:`GDN` — generalized divisive normalization (Ballé, Laparra & Simoncelli 2016), the
  nonlinearity of Ballé et al. 2018 "Variational image compression with a scale hyperprior" and
  Minnen et al. 2018 "Joint autoregressive and hierarchical priors".
* :class:`MaskedConv2d` — the causal 5×5 context model of Minnen et al. 2018.
* the residual, sub-pixel and attention blocks of Cheng et al. 2020 "Learned image compression
  with discretized Gaussian mixture likelihoods and attention modules".
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .entropy import LowerBound

#: CompressAI's GDN reparametrization offset: parameters are stored as sqrt(value + offset²)
REPARAM_OFFSET = 2.0 ** -18


class NonNegative(nn.Module):
    """Maps a stored parameter p to max(p, bound)² − pedestal ≥ minimum.

    GDN's β and γ must stay non-negative while training; storing their square roots (shifted by
    a pedestal) keeps gradients alive near zero.  The buffers ``pedestal`` and
    ``lower_bound.bound`` are part of every CompressAI checkpoint."""

    def __init__(self, minimum: float = 0.0, offset: float = REPARAM_OFFSET) -> None:
        super().__init__()
        self.register_buffer("pedestal", torch.Tensor([offset ** 2]))
        self.lower_bound = LowerBound((minimum + offset ** 2) ** 0.5)

    def stored(self, value: torch.Tensor) -> torch.Tensor:
        """The stored form of a non-negative value (used only to initialize)."""
        return torch.sqrt(torch.clamp(value + self.pedestal, min=float(self.pedestal)))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return self.lower_bound(p) ** 2 - self.pedestal


class GDN(nn.Module):
    """y_i = x_i / sqrt(β_i + Σ_j γ_ij x_j²) (or × for the inverse, IGDN, used in g_s).

    A divisive normalization Gaussianizes the local joint statistics of image responses, which
    is why Ballé et al. use it instead of a pointwise nonlinearity."""

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6,
                 gamma_init: float = 0.1) -> None:
        super().__init__()
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegative(minimum=beta_min)
        self.gamma_reparam = NonNegative()
        self.beta = nn.Parameter(self.beta_reparam.stored(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_reparam.stored(gamma_init * torch.eye(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C = x.shape[1]
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(C, C, 1, 1)
        # the weighted sum of squares is a 1×1 convolution with γ as weights and β as bias
        norm = F.conv2d(x ** 2, gamma, beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))


def IGDN(channels: int) -> GDN:
    """Inverse GDN of the synthesis transforms."""
    return GDN(channels, inverse=True)


class MaskedConv2d(nn.Conv2d):
    """A convolution that sees only the positions before the centre in raster order.

    Minnen et al. 2018 predict each latent from the already decoded ones; the ``mask`` buffer
    (stored in checkpoints) zeroes the weights of the centre and everything after it (type "A"),
    or everything after the centre (type "B")."""

    def __init__(self, *args, mask_type: str = "A", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask type must be 'A' or 'B', not {mask_type!r}")
        mask = torch.ones_like(self.weight.data)
        h, w = mask.shape[-2:]
        mask[:, :, h // 2, w // 2 + (mask_type == "B"):] = 0
        mask[:, :, h // 2 + 1:] = 0
        self.register_buffer("mask", mask)

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # CompressAI multiplies the stored weight by the mask in place before convolving; the
        # product is the same, without mutating the parameters
        return self._conv_forward(x, self.masked_weight(), self.bias)


def conv(in_ch: int, out_ch: int, kernel_size: int = 5, stride: int = 2) -> nn.Conv2d:
    """Strided 'same' convolution of the Ballé/Minnen transforms (halves H and W)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2)


def deconv(in_ch: int, out_ch: int, kernel_size: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    """Transposed convolution that exactly doubles H and W (inverse of :func:`conv`)."""
    return nn.ConvTranspose2d(in_ch, out_ch, kernel_size, stride=stride,
                              padding=kernel_size // 2, output_padding=stride - 1)


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride)


def subpel_conv3x3(in_ch: int, out_ch: int, r: int = 1) -> nn.Sequential:
    """3×3 convolution to r²·out channels, then pixel shuffle: Cheng et al.'s upsampling, which
    avoids the checkerboard artefacts of transposed convolutions."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch * r * r, kernel_size=3, padding=1),
                         nn.PixelShuffle(r))


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions with leaky ReLUs and a skip (1×1 when the widths differ)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch)
        self.leaky_relu = nn.LeakyReLU()
        self.conv2 = conv3x3(out_ch, out_ch)
        self.skip = conv1x1(in_ch, out_ch) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.leaky_relu(self.conv2(self.leaky_relu(self.conv1(x))))
        return out + (self.skip(x) if self.skip is not None else x)


class ResidualBlockWithStride(nn.Module):
    """Cheng et al.'s downsampling block: strided 3×3, leaky ReLU, 3×3, GDN, plus a (strided
    1×1) skip."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 2) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride=stride)
        self.leaky_relu = nn.LeakyReLU()
        self.conv2 = conv3x3(out_ch, out_ch)
        self.gdn = GDN(out_ch)
        self.skip = conv1x1(in_ch, out_ch, stride=stride) \
            if stride != 1 or in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.gdn(self.conv2(self.leaky_relu(self.conv1(x))))
        return out + (self.skip(x) if self.skip is not None else x)


class ResidualBlockUpsample(nn.Module):
    """Cheng et al.'s upsampling block: sub-pixel conv, leaky ReLU, 3×3, IGDN, plus a sub-pixel
    skip (``upsample``)."""

    def __init__(self, in_ch: int, out_ch: int, upsample: int = 2) -> None:
        super().__init__()
        self.subpel_conv = subpel_conv3x3(in_ch, out_ch, upsample)
        self.leaky_relu = nn.LeakyReLU()
        self.conv = conv3x3(out_ch, out_ch)
        self.igdn = GDN(out_ch, inverse=True)
        self.upsample = subpel_conv3x3(in_ch, out_ch, upsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.igdn(self.conv(self.leaky_relu(self.subpel_conv(x))))
        return out + self.upsample(x)


class _ResidualUnit(nn.Module):
    """1×1 → 3×3 → 1×1 bottleneck (half width inside), added to its input, then ReLU."""

    def __init__(self, N: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(conv1x1(N, N // 2), nn.ReLU(), conv3x3(N // 2, N // 2),
                                  nn.ReLU(), conv1x1(N // 2, N))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) + x)


class AttentionBlock(nn.Module):
    """Cheng et al.'s simplified attention: a trunk (``conv_a``) gated by the sigmoid of a mask
    branch (``conv_b``), plus the input.  It lets the transforms spend bits on complex regions
    (the paper's motivation) without the cost of non-local attention."""

    def __init__(self, N: int) -> None:
        super().__init__()
        self.conv_a = nn.Sequential(_ResidualUnit(N), _ResidualUnit(N), _ResidualUnit(N))
        self.conv_b = nn.Sequential(_ResidualUnit(N), _ResidualUnit(N), _ResidualUnit(N),
                                    conv1x1(N, N))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_a(x) * torch.sigmoid(self.conv_b(x)) + x
