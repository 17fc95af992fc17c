"""The Ballé/Minnen architectures of CompressAI's zoo, state-dict compatible.

* ``bmshj2018-factorized`` (:class:`FactorizedPrior`) and ``bmshj2018-factorized-relu``
  (:class:`FactorizedPriorReLU`) — Ballé et al. 2018, "Variational image compression with a
  scale hyperprior", baseline: y coded under one learned density per channel.
* ``bmshj2018-hyperprior`` (:class:`ScaleHyperprior`) — the same paper's main model: side
  information z = h_a(|y|) carries the scale of every latent, y is coded as N(0, σ).
* ``mbt2018-mean`` (:class:`MeanScaleHyperprior`) — Minnen et al. 2018, "Joint autoregressive
  and hierarchical priors for learned image compression", without the context model: h_s predicts
  a mean and a scale, y is coded as round(y − μ).
* ``mbt2018`` (:class:`JointAutoregressiveHierarchicalPriors`) — the full Minnen model: a masked
  5×5 convolution over the already decoded latents joins the hyperprior, so y is coded position
  by position in raster order.

Every ``code()`` reproduces the order of operations of CompressAI's ``compress()`` /
``decompress()`` in float32, so ŷ and ẑ are bit-identical to what CompressAI decodes from the
same padded picture; only the entropy coder (our table coder instead of rANS) differs.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import CheckpointError
from .base import Coded, CompatModel
from .entropy import EntropyBottleneck, GaussianConditional
from .layers import GDN, MaskedConv2d, conv, deconv

#: z is y downsampled twice more (stride-2 layers of h_a)
HYPER_STRIDE = 4
#: the context model of Minnen et al.: a causal 5×5 window
CONTEXT_KERNEL = 5


def round_around(x: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """round(x − c) + c: CompressAI's "dequantize" rounding (eval forward and decoded values)."""
    return torch.round(x - centre) + centre


def _shrink(n: int, factor: int) -> int:
    """Size after stride-2 'same' layers: each one is ceil(n / 2)."""
    while factor > 1:
        n, factor = (n + 1) // 2, factor // 2
    return n


def require_key(sd: dict, key: str, arch: str) -> torch.Tensor:
    """The tensor that sizes a model; its absence is a :class:`CheckpointError` line."""
    v = sd.get(key)
    if not isinstance(v, torch.Tensor) or v.dim() < 1:
        some = ", ".join(list(sd)[:3]) or "no tensors"
        raise CheckpointError(f"not a {arch} checkpoint: expected a tensor '{key}' to size the "
                              f"model, found {len(sd)} tensors ({some}, …)")
    return v


class FactorizedPrior(CompatModel):
    """Ballé et al. 2018's baseline: 4 strided 5×5 convolutions with GDN (y at 1/16 of the
    picture) and a factorized entropy bottleneck on y — no side information, so it is the
    reference point against which the paper shows what the hyperprior buys."""

    arch = "bmshj2018-factorized"
    gaussian = False
    #: the picture must be a multiple of this (four stride-2 layers)
    downsampling = 16

    def __init__(self, N: int = 128, M: int = 192) -> None:
        super().__init__()
        self.N, self.M = int(N), int(M)
        self.entropy_bottleneck = EntropyBottleneck(self._bottleneck_channels())
        self.g_a = self._analysis(self.N, self.M)
        self.g_s = self._synthesis(self.N, self.M)

    def _bottleneck_channels(self) -> int:
        # the factorized density models y itself
        return self.M

    @staticmethod
    def _analysis(N: int, M: int) -> nn.Sequential:
        return nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N),
                             conv(N, M))

    @staticmethod
    def _synthesis(N: int, M: int) -> nn.Sequential:
        return nn.Sequential(deconv(M, N), GDN(N, inverse=True), deconv(N, N),
                             GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
                             deconv(N, 3))

    @classmethod
    def sizes_from_state_dict(cls, sd: dict) -> dict:
        """N and M as CompressAI's ``from_state_dict`` reads them (first and last g_a conv)."""
        return {"N": int(require_key(sd, "g_a.0.weight", cls.arch).shape[0]),
                "M": int(require_key(sd, "g_a.6.weight", cls.arch).shape[0])}

    def _latent_hw(self, padded_hw: tuple[int, int]) -> tuple[int, int]:
        H, W = padded_hw
        if H % self.downsampling or W % self.downsampling:
            raise ValueError(f"{self.arch} codes pictures padded to a multiple of "
                             f"{self.downsampling}, not {H}×{W}")
        return _shrink(H, 16), _shrink(W, 16)

    def forward(self, x: torch.Tensor) -> dict:
        y = self.g_a(x)
        y_hat = round_around(y, self.entropy_bottleneck.medians().reshape(1, -1, 1, 1))
        return {"x_hat": self.g_s(y_hat),
                "likelihoods": {"y": self.entropy_bottleneck.likelihood(y_hat)}}

    @torch.no_grad()
    def code(self, coder, x: Optional[torch.Tensor], padded_hw: tuple[int, int]) -> Coded:
        h, w = self._latent_hw(padded_hw)
        y = self.g_a(x) if x is not None else None
        y_hat = self.entropy_bottleneck.code(coder, "y", y, (1, self.M, h, w))
        return Coded(y_hat, likelihoods={"y": self.entropy_bottleneck.likelihood(y_hat)},
                     groups=[self.M])


class FactorizedPriorReLU(FactorizedPrior):
    """:class:`FactorizedPrior` with ReLUs in place of GDN (the ablation CompressAI ships)."""

    arch = "bmshj2018-factorized-relu"

    @staticmethod
    def _analysis(N: int, M: int) -> nn.Sequential:
        return nn.Sequential(conv(3, N), nn.ReLU(), conv(N, N), nn.ReLU(), conv(N, N), nn.ReLU(),
                             conv(N, M))

    @staticmethod
    def _synthesis(N: int, M: int) -> nn.Sequential:
        return nn.Sequential(deconv(M, N), nn.ReLU(), deconv(N, N), nn.ReLU(), deconv(N, N),
                             nn.ReLU(), deconv(N, 3))


class ScaleHyperprior(FactorizedPrior):
    """Ballé et al. 2018's scale hyperprior: z = h_a(|y|) (the factorized bottleneck codes it)
    predicts σ = h_s(ẑ), and y is coded as round(y) under a zero-mean N(0, σ).  Coding the
    spatially varying scale as side information is the paper's point: it removes the
    dependencies the factorized prior cannot model, for a few percent of the bits."""

    arch = "bmshj2018-hyperprior"
    gaussian = True
    downsampling = 64

    def __init__(self, N: int = 128, M: int = 192) -> None:
        super().__init__(N, M)
        self.h_a = self._hyper_analysis(self.N, self.M)
        self.h_s = self._hyper_synthesis(self.N, self.M)
        self.gaussian_conditional = GaussianConditional(None)

    def _bottleneck_channels(self) -> int:
        # here the factorized density models z (N channels), y is Gaussian
        return self.N

    @staticmethod
    def _hyper_analysis(N: int, M: int) -> nn.Sequential:
        return nn.Sequential(conv(M, N, stride=1, kernel_size=3), nn.ReLU(), conv(N, N),
                             nn.ReLU(), conv(N, N))

    @staticmethod
    def _hyper_synthesis(N: int, M: int) -> nn.Sequential:
        # the final ReLU keeps the predicted scales non-negative
        return nn.Sequential(deconv(N, N), nn.ReLU(), deconv(N, N), nn.ReLU(),
                             conv(N, M, stride=1, kernel_size=3), nn.ReLU())

    def _hyper_input(self, y: torch.Tensor) -> torch.Tensor:
        # the scale hyperprior only needs magnitudes (its density is zero-mean)
        return torch.abs(y)

    def _hyper_hw(self, padded_hw: tuple[int, int]) -> tuple[int, int]:
        h, w = self._latent_hw(padded_hw)
        return _shrink(h, HYPER_STRIDE), _shrink(w, HYPER_STRIDE)

    def _code_z(self, coder, y: Optional[torch.Tensor], padded_hw: tuple[int, int]):
        zh, zw = self._hyper_hw(padded_hw)
        z = self.h_a(self._hyper_input(y)) if y is not None else None
        return self.entropy_bottleneck.code(coder, "z", z, (1, self.entropy_bottleneck.channels,
                                                            zh, zw))

    def _z_forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.h_a(self._hyper_input(y))
        z_hat = round_around(z, self.entropy_bottleneck.medians().reshape(1, -1, 1, 1))
        return z_hat, self.entropy_bottleneck.likelihood(z_hat)

    def forward(self, x: torch.Tensor) -> dict:
        y = self.g_a(x)
        z_hat, z_lik = self._z_forward(y)
        scales = self.h_s(z_hat)
        y_hat = torch.round(y)
        y_lik = self.gaussian_conditional.likelihood(y_hat, scales)
        return {"x_hat": self.g_s(y_hat), "likelihoods": {"y": y_lik, "z": z_lik}}

    @torch.no_grad()
    def code(self, coder, x: Optional[torch.Tensor], padded_hw: tuple[int, int]) -> Coded:
        y = self.g_a(x) if x is not None else None
        z_hat = self._code_z(coder, y, padded_hw)
        scales = self.h_s(z_hat)
        y_hat = self.gaussian_conditional.code(coder, "y", y, scales)
        return Coded(y_hat, z_hat, None, scales, groups=[self.M], likelihoods={
            "y": self.gaussian_conditional.likelihood(y_hat, scales),
            "z": self.entropy_bottleneck.likelihood(z_hat)})


class MeanScaleHyperprior(ScaleHyperprior):
    """Minnen et al. 2018's hierarchical prior without the context model: h_s predicts a mean
    and a scale per latent (2M channels), and y is coded as round(y − μ) under N(μ, σ).
    Predicting the mean as well lets the side information remove more redundancy than scales
    alone (the paper's "Mean & Scale Hyperprior")."""

    arch = "mbt2018-mean"

    @staticmethod
    def _hyper_analysis(N: int, M: int) -> nn.Sequential:
        return nn.Sequential(conv(M, N, stride=1, kernel_size=3), nn.LeakyReLU(), conv(N, N),
                             nn.LeakyReLU(), conv(N, N))

    @staticmethod
    def _hyper_synthesis(N: int, M: int) -> nn.Sequential:
        return nn.Sequential(deconv(N, M), nn.LeakyReLU(), deconv(M, M * 3 // 2),
                             nn.LeakyReLU(), conv(M * 3 // 2, M * 2, stride=1, kernel_size=3))

    def _hyper_input(self, y: torch.Tensor) -> torch.Tensor:
        # the means need the sign of y too
        return y

    def forward(self, x: torch.Tensor) -> dict:
        y = self.g_a(x)
        z_hat, z_lik = self._z_forward(y)
        scales, means = self.h_s(z_hat).chunk(2, 1)
        y_hat = round_around(y, means)
        y_lik = self.gaussian_conditional.likelihood(y_hat, scales, means)
        return {"x_hat": self.g_s(y_hat), "likelihoods": {"y": y_lik, "z": z_lik}}

    @torch.no_grad()
    def code(self, coder, x: Optional[torch.Tensor], padded_hw: tuple[int, int]) -> Coded:
        y = self.g_a(x) if x is not None else None
        z_hat = self._code_z(coder, y, padded_hw)
        scales, means = self.h_s(z_hat).chunk(2, 1)
        y_hat = self.gaussian_conditional.code(coder, "y", y, scales, means)
        return Coded(y_hat, z_hat, means, scales, groups=[self.M], likelihoods={
            "y": self.gaussian_conditional.likelihood(y_hat, scales, means),
            "z": self.entropy_bottleneck.likelihood(z_hat)})


class JointAutoregressiveHierarchicalPriors(MeanScaleHyperprior):
    """Minnen et al. 2018's full model: μ and σ of every latent come from the hyperprior
    features *and* a masked 5×5 convolution over the latents already decoded (the
    autoregressive context), merged by three 1×1 convolutions (``entropy_parameters``).  The
    context is what gives the paper its gain over the hyperprior alone; its price is a
    sequential decoder (one position at a time, raster order)."""

    arch = "mbt2018"

    def __init__(self, N: int = 192, M: int = 192) -> None:
        super().__init__(N, M)
        M = self.M
        self.entropy_parameters = nn.Sequential(
            nn.Conv2d(M * 12 // 3, M * 10 // 3, 1), nn.LeakyReLU(),
            nn.Conv2d(M * 10 // 3, M * 8 // 3, 1), nn.LeakyReLU(),
            nn.Conv2d(M * 8 // 3, M * 6 // 3, 1))
        self.context_prediction = MaskedConv2d(M, 2 * M, kernel_size=CONTEXT_KERNEL,
                                               padding=CONTEXT_KERNEL // 2, stride=1)

    def forward(self, x: torch.Tensor) -> dict:
        y = self.g_a(x)
        z_hat, z_lik = self._z_forward(y)
        params = self.h_s(z_hat)
        # CompressAI's eval forward feeds round(y) (not round(y − μ) + μ) to the context and
        # to g_s: μ is not known before the context has run
        y_hat = torch.round(y)
        ctx = self.context_prediction(y_hat)
        scales, means = self.entropy_parameters(torch.cat((params, ctx), dim=1)).chunk(2, 1)
        y_lik = self.gaussian_conditional.likelihood(round_around(y, means), scales, means)
        return {"x_hat": self.g_s(y_hat), "likelihoods": {"y": y_lik, "z": z_lik}}

    @torch.no_grad()
    def code(self, coder, x: Optional[torch.Tensor], padded_hw: tuple[int, int]) -> Coded:
        y = self.g_a(x) if x is not None else None
        z_hat = self._code_z(coder, y, padded_hw)
        params = self.h_s(z_hat)
        y_hat, means, scales = self._code_y_autoregressive(coder, y, params)
        return Coded(y_hat, z_hat, means, scales, groups=[self.M], likelihoods={
            "y": self.gaussian_conditional.likelihood(y_hat, scales, means),
            "z": self.entropy_bottleneck.likelihood(z_hat)})

    def _code_y_autoregressive(self, coder, y: Optional[torch.Tensor], params: torch.Tensor):
        """Code y position by position in raster order (CompressAI's ``_compress_ar`` /
        ``_decompress_ar``): at each position the masked 5×5 window of ŷ so far and the
        hyperprior features there give μ, σ of its M latents, which are coded as one block.

        Both directions read the context from a zero-initialized buffer of decoded values, so
        the encoder evaluates exactly what the decoder will; CompressAI's encoder reads the
        unquantized y instead, which the mask multiplies by zero — the same numbers."""
        h, w = params.shape[-2:]
        k = CONTEXT_KERNEL
        p = k // 2
        M = self.M
        y_hat = params.new_zeros((1, M, h + 2 * p, w + 2 * p))
        means = params.new_empty((1, M, h, w))
        scales = params.new_empty((1, M, h, w))
        weight = self.context_prediction.masked_weight()
        bias = self.context_prediction.bias
        gc = self.gaussian_conditional
        for r in range(h):
            for c in range(w):
                window = y_hat[:, :, r:r + k, c:c + k]
                ctx = F.conv2d(window, weight, bias=bias)
                # entropy_parameters is 1×1 convolutions: the hyperprior features of this
                # position suffice
                gp = self.entropy_parameters(torch.cat((params[:, :, r:r + 1, c:c + 1], ctx),
                                                       dim=1))
                s, m = gp.chunk(2, 1)
                cur = y[:, :, r:r + 1, c:c + 1] if y is not None else None
                y_hat[:, :, r + p:r + p + 1, c + p:c + p + 1] = gc.code(coder, "y", cur, s, m)
                means[:, :, r:r + 1, c:c + 1] = m
                scales[:, :, r:r + 1, c:c + 1] = s
        return y_hat[:, :, p:p + h, p:p + w].contiguous(), means, scales
