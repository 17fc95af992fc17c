"""HiFiC transforms: encoder E, generator G, ChannelNorm and the mean-scale hyperprior.

Mentzer et al., "High-Fidelity Generative Image Compression", NeurIPS 2020 (docs/methods.md §8.1),
with the "small HiFiC" widths of docs/methods.md §8.4 and gain units for one-model variable rate
(§5.1).

Data flow of one forward pass at slider ``u`` (§5.1 applied to HiFiC)::

    x ∈ [0,1] ─► E ─► y ─► ȳ = y⊙G_u ─► h_a ─► z ─► z̄ = z⊙H_u ─► Q ─► ẑ⊙H'_u ─► h_s^μ, h_s^σ
                                    │                                           │ μ, σ (gained domain)
                                    └────────► Q around μ ─► ŷ̄ ─► ŷ = ŷ̄⊙G'_u ─► G ─► x̂ ∈ [0,1]

E and G work on [−1, 1] internally (the convention of the official code); the [0, 1] ↔ [−1, 1]
conversion happens at the module boundary (docs/methods.md §1.1).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..config import HificConfig
from ..entropy_model.factorized import FactorizedPrior
from ..entropy_model.gaussian import SCALE_BOUND, gaussian_likelihood, lower_bound
from ..errors import ModelNotFoundError
from ..paths import weights_path
from ..rate.gain import GainUnits
from ..weights import load_weights
from .registry import model_config, model_names

#: total downsampling of the codec (E: 16, hyper-analysis: 4 more); images are padded to this
PAD_MULTIPLE = 64


# ----------------------------------------------------------------------------------- config
# HificConfig lives in lic_core.config (plain data); "hific-small" and "hific-tiny" are entries of
# the one model registry (lic_core.models.registry, which says why these sizes).


def get_config(name: str, **overrides) -> HificConfig:
    """A registered HiFiC config (``"hific-small"``, ``"hific-tiny"``) with optional field
    overrides: the model registry's entry, checked to be of the ``hific`` family."""
    if name not in model_names("hific"):
        raise ModelNotFoundError(f"unknown HiFiC config '{name}' "
                                 f"(known: {', '.join(model_names('hific'))})")
    return model_config(name, **overrides)


#: the product baseline's config (the defaults of :class:`HificConfig`)
HIFIC_SMALL = get_config("hific-small")


# ----------------------------------------------------------------------------------- layers


class ChannelNorm(nn.Module):
    """Normalize every spatial position over its channels, then a learned per-channel affine.

    ``(x − mean_C(x)) / sqrt(var_C(x) + ε)·γ + β`` with ε = 1e-3 and the unbiased (N−1) variance
    over channels (official HiFiC ``LayerNorm`` in models/hific/archs.py, docs/methods.md §8.1).
    Always computed in float32 (§8.4: AMP is allowed everywhere else) because the variance of fp16
    activations over hundreds of channels under/overflows.
    """

    def __init__(self, channels: int, eps: float = 1e-3, affine: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.affine = affine
        if affine:
            self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
            self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """The normalization alone (before the affine), in float32."""
        x32 = x.float()
        centred = x32 - x32.mean(dim=1, keepdim=True)
        # unbiased (N−1) variance as in the official LayerNorm; written as a sum of squares
        # instead of Tensor.var, which is ~4× slower on CPU
        var = centred.pow(2).sum(dim=1, keepdim=True) / max(x.shape[1] - 1, 1)
        return centred * torch.rsqrt(var + self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = self.normalize(x)
            if self.affine:
                out = out * self.gamma.float() + self.beta.float()
        return out.to(x.dtype)


class ReflectConv2d(nn.Conv2d):
    """'Same' convolution with reflection padding (HiFiC pads by reflection throughout, §8.1).

    Reflection needs the padding to be smaller than the side; on the tiny grids of very small
    inputs (a 1×1 latent of a 16×16 image) it falls back to replicate padding, so every H, W
    multiple of 16 works.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1) -> None:
        super().__init__(cin, cout, k, stride=stride, padding=0)
        self.pad = k // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.pad
        if p:
            mode = "reflect" if min(x.shape[-2:]) > p else "replicate"
            x = F.pad(x, (p, p, p, p), mode=mode)
        return super().forward(x)


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    return ReflectConv2d(cin, cout, k, stride)


class ResidualBlock(nn.Module):
    """conv3×3 → CN → ReLU → conv3×3 → CN, plus identity (HiFiC generator block, §8.1)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(ch, ch, 3), ChannelNorm(ch), nn.ReLU(inplace=True),
                                  _conv(ch, ch, 3), ChannelNorm(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class HificEncoder(nn.Module):
    """E: conv7×7 → 4× [conv3×3 s2, CN, ReLU] → conv3×3 to C_y; ``x ∈ [0,1] → y`` at H/16."""

    def __init__(self, widths: Sequence[int], C_y: int) -> None:
        super().__init__()
        w = list(widths)
        layers: list[nn.Module] = [_conv(3, w[0], 7), ChannelNorm(w[0]), nn.ReLU(inplace=True)]
        for cin, cout in zip(w[:-1], w[1:]):
            layers += [_conv(cin, cout, 3, stride=2), ChannelNorm(cout), nn.ReLU(inplace=True)]
        layers.append(_conv(w[-1], C_y, 3))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2.0 - 1.0)


class HificGenerator(nn.Module):
    """G: CN → conv3×3 → CN → residual blocks (+ global skip) → 4× [deconv s2, CN, ReLU] → conv7×7.

    ``ŷ (B×C_y×h×w) → x̂ (B×3×16h×16w)`` in [0, 1] (not clamped: training losses see the raw
    output; the codec clamps and rounds to uint8).
    """

    def __init__(self, widths: Sequence[int], C_y: int, n_res: int) -> None:
        super().__init__()
        w = list(widths)[::-1]
        self.head = nn.Sequential(ChannelNorm(C_y), _conv(C_y, w[0], 3), ChannelNorm(w[0]))
        self.res = nn.Sequential(*[ResidualBlock(w[0]) for _ in range(n_res)])
        up: list[nn.Module] = []
        for cin, cout in zip(w[:-1], w[1:]):
            up += [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
                   ChannelNorm(cout), nn.ReLU(inplace=True)]
        self.up = nn.Sequential(*up)
        self.tail = _conv(w[-1], 3, 7)

    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        h = self.head(y_hat)
        h = h + self.res(h)  # global skip around the residual trunk (official generator)
        return (self.tail(self.up(h)) + 1.0) * 0.5


class HyperAnalysis(nn.Module):
    """h_a: conv3×3 s1 → ReLU → conv5×5 s2 → ReLU → conv5×5 s2 (§8.1; ȳ → z at H/64)."""

    def __init__(self, C_y: int, width: int, N: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(C_y, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 5, stride=2, padding=2), nn.ReLU(inplace=True),
            nn.Conv2d(width, N, 5, stride=2, padding=2))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


class HyperSynthesis(nn.Module):
    """One h_s head: deconv5×5 s2 → ReLU → deconv5×5 s2 → ReLU → conv3×3 to C_y (§8.1)."""

    def __init__(self, N: int, width: int, C_y: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(N, width, 5, stride=2, padding=2, output_padding=1),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, width, 5, stride=2, padding=2, output_padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, C_y, 3, padding=1))

    def forward(self, z_hat: torch.Tensor) -> torch.Tensor:
        return self.net(z_hat)


# ------------------------------------------------------------------------------------- model


def _as_u(u: Union[float, torch.Tensor], batch: int, device) -> torch.Tensor:
    if isinstance(u, torch.Tensor):
        u = u.to(device=device, dtype=torch.float32).reshape(-1)
        return u.expand(batch) if u.numel() == 1 else u
    return torch.full((batch,), float(u), device=device)


class HificModel(nn.Module):
    """E + G + mean-scale hyperprior + gain units (the part of HiFiC that ships).

    ``forward(x, u)`` is the training forward (CompressAI-style dict, docs/ARCHITECTURE.md):
    ``{"x_hat", "likelihoods": {"y", "z"}, "y_hat", "bpp_noisy", "bpp_quantized"}``:

    * rate proxy: additive uniform noise on ȳ (likelihoods["y"], ``bpp_noisy``, differentiable);
    * synthesis input: ``ŷ = (μ + round(ȳ − μ))⊙G'`` with a straight-through gradient (§4.1);
    * ``bpp_quantized``: bits of the *rounded* latents (no gradient), per sample — the quantity the
      HiFiC rate-target switch looks at (§8.2).

    ``y_hat`` is what G and the discriminator are conditioned on.  ``u`` is the rate slider in
    [0, 1] (float or a per-sample tensor; training samples one level per batch, §8.4).
    """

    def __init__(self, config: HificConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder = HificEncoder(c.widths, c.C_y)
        self.generator = HificGenerator(c.widths, c.C_y, c.n_res)
        self.h_a = HyperAnalysis(c.C_y, c.hyper_width, c.N)
        self.h_s_mean = HyperSynthesis(c.N, c.hyper_width, c.C_y)
        self.h_s_scale = HyperSynthesis(c.N, c.hyper_width, c.C_y)
        self.entropy_bottleneck = FactorizedPrior(c.N)
        self.gains = GainUnits(c.levels, c.C_y, c.N)
        #: synthesis-input proxy while training: "ste" (HiFiC / §4.1) or "noise"
        self.decoder_proxy = "ste"

    # -- pieces shared by forward() and the codec (one quantization path, docs/methods.md §10) --
    def gain_vectors(self, u: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.gains(u)

    def entropy_parameters(self, z_hat_gained: torch.Tensor,
                           h_inv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, σ) for ȳ from the dequantized hyper-latent ``ẑ`` (σ ≥ 0.11, §8.1)."""
        z_in = z_hat_gained * h_inv
        means = self.h_s_mean(z_in)
        scales = lower_bound(self.h_s_scale(z_in), SCALE_BOUND)
        return means, scales

    def forward(self, x: torch.Tensor, u: Union[float, torch.Tensor]) -> dict:
        B, _, H, W = x.shape
        g = self.gain_vectors(_as_u(u, B, x.device))
        y = self.encoder(x)
        # The entropy model (hyperprior, likelihoods, rates) always runs in float32, also under
        # AMP: bf16 likelihoods would make the rate term and the rate-target switch unreliable.
        with torch.autocast(device_type=x.device.type, enabled=False):
            y_bar = y.float() * g["G"]
            z_bar = self.h_a(y_bar) * g["H"]
            z_hat, z_lik = self.entropy_bottleneck(z_bar, training=self.training)
            means, scales = self.entropy_parameters(z_hat, g["H_inv"])
            if self.training:
                y_noisy = y_bar + torch.empty_like(y_bar).uniform_(-0.5, 0.5)
            else:
                y_noisy = torch.round(y_bar - means) + means
            y_lik = gaussian_likelihood(y_noisy, scales, means)
            if self.training and self.decoder_proxy == "noise":
                y_q = y_noisy  # Ballé-style proxy (optional warm-up); default is STE (§4.1)
            else:  # STE around the mean: forward rounds, backward is the identity (§4.1)
                y_q = y_bar + (torch.round(y_bar - means) + means - y_bar).detach()
            y_hat = y_q * g["G_inv"]
            n_pix = H * W
            bpp_noisy = -(torch.log2(y_lik).sum(dim=(1, 2, 3))
                          + torch.log2(z_lik).sum(dim=(1, 2, 3))) / n_pix
            with torch.no_grad():  # the rate the real coder would spend (rate switch, §8.2)
                zq, zq_lik = self.entropy_bottleneck(z_bar.detach(), training=False)
                means_q, scales_q = self.entropy_parameters(zq, g["H_inv"])
                yq = torch.round(y_bar - means_q) + means_q
                yq_lik = gaussian_likelihood(yq, scales_q, means_q)
                bpp_q = -(torch.log2(yq_lik).sum(dim=(1, 2, 3))
                          + torch.log2(zq_lik).sum(dim=(1, 2, 3))) / n_pix
        x_hat = self.generator(y_hat)
        return {"x_hat": x_hat, "likelihoods": {"y": y_lik, "z": z_lik}, "y_hat": y_hat,
                "bpp_noisy": bpp_noisy, "bpp_quantized": bpp_q}

    def aux_loss(self) -> torch.Tensor:
        return self.entropy_bottleneck.loss()

    def aux_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n.endswith("quantiles")]

    def main_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.endswith("quantiles")]


def build_hific(name: str = "hific-small", **overrides) -> HificModel:
    """A randomly initialised HiFiC model of a named config (``"hific-small"``/``"hific-tiny"``)."""
    return HificModel(get_config(name, **overrides))


def load_hific(name: str = "hific-small", path: Optional[Path] = None) -> HificModel:
    """A trained HiFiC model from ``<weights dir>/<name>.safetensors`` (ModelNotFoundError if
    missing; :func:`lic_core.paths.weights_path`).

    The config is read from the file's metadata (``"config"`` JSON) when present.  fp16 tensors
    are widened to fp32; float64 coding tables (z pmfs) are kept as stored.
    """
    path = Path(path) if path else weights_path(name)
    if not path.is_file():
        raise ModelNotFoundError(f"HiFiC weights not found: {path} (tools/campaign.sh --stage hific "
                                 "trains them)")
    sd, meta = load_weights(path)
    cfg_raw = meta.get("config") if isinstance(meta, dict) else None
    if isinstance(cfg_raw, str):
        cfg_raw = json.loads(cfg_raw)
    config = HificConfig.from_dict(cfg_raw) if isinstance(cfg_raw, dict) else get_config(name)
    model = HificModel(config)
    card = meta.get("card") if isinstance(meta, dict) else None
    if isinstance(card, str):
        card = json.loads(card)
    model.card = card if isinstance(card, dict) else {}  # model card (provenance) for describe()
    sd = {k: (v.float() if v.dtype in (torch.float16, torch.bfloat16) else v) for k, v in sd.items()}
    try:
        model.load_state_dict(sd)
    except RuntimeError as exc:
        raise ModelNotFoundError(f"HiFiC weights {path.name} do not match the model: "
                                 f"{str(exc).splitlines()[0]}") from None
    return model.eval()


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
