"""The LGEM learned codec as one ``nn.Module`` (docs/methods.md §3, §5).

::

    x ─► g_a ─► y ─────────────────────────────┬──► ⊙G ─► Q around μ·G ─► ŷ_G ─► ⊙G' ─► g_s ─► x̂
                │                              │                ▲
                └► h_a ─► ⊙H ─► Q ─► ẑ ─► ⊙H' ─► h_s ─► Φ_h ─► LGEM context (10 passes) ─► μ, σ

G, G', H, H' are gain vectors interpolated from the slider u (lic_core.rate.gain).  The context
model predicts μ, σ in the y domain; multiplied by G they become the parameters of the gained
latent ȳ = y⊙G, which is quantized with unit step (so the effective step is 1/G per channel).

Training (:meth:`LicModel.forward`) uses the "mixed" proxies of docs/methods.md §4.1: additive noise
for the likelihoods, straight-through rounding around the mean for the values that feed the
contexts and g_s (two-pass checkerboard, so the predicted μ, σ equal those of the sequential
coder).  Inference codes the latents with :mod:`lic_core.latent_codecs` (the single quantization
path shared by ``compress()``, ``decompress()`` and decoder fine-tuning), which reads μ and σ from
this model through :class:`lic_core.latent_codecs.LgemFloatParameters`.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from ..entropy_model.checkerboard import anchor_mask
from ..entropy_model.factorized import FactorizedPrior
from ..entropy_model.gaussian import gaussian_likelihood
from ..entropy_model.lgem import LGEMContext
from ..rate.gain import GainUnits
from ..transform.elic import AnalysisTransform, HyperAnalysis, HyperSynthesis, SynthesisTransform


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """round(x) forward, identity gradient."""
    return x + (torch.round(x) - x).detach()


class LicModel(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.g_a = AnalysisTransform(cfg)
        self.g_s = SynthesisTransform(cfg)
        self.h_a = HyperAnalysis(cfg)
        self.h_s = HyperSynthesis(cfg)
        self.gains = GainUnits(cfg.levels, cfg.M, cfg.hyper_N)
        self.prior = FactorizedPrior(cfg.hyper_N)
        self.context = LGEMContext(cfg)

    # -- parameter groups -------------------------------------------------------------------
    def aux_parameters(self) -> list[nn.Parameter]:
        return [self.prior.quantiles]

    def main_parameters(self) -> list[nn.Parameter]:
        aux = {id(p) for p in self.aux_parameters()}
        return [p for p in self.parameters() if id(p) not in aux]

    def aux_loss(self) -> torch.Tensor:
        return self.prior.loss()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- helpers ------------------------------------------------------------------------------
    def _gains(self, u, batch: int, device) -> dict[str, torch.Tensor]:
        u = torch.as_tensor(u, dtype=torch.float32, device=device).reshape(-1)
        if u.numel() == 1:
            u = u.expand(batch)
        return self.gains(u)

    # -- training forward -----------------------------------------------------------------------
    def forward(self, x: torch.Tensor, u) -> dict:
        """Training/validation forward.

        Returns ``{"x_hat", "likelihoods": {"y", "z"}, "y_hat", "means", "scales"}`` (means and
        scales in the gained domain, as the coder uses them).
        """
        B = x.shape[0]
        gains = self._gains(u, B, x.device)
        y = self.g_a(x)
        z = self.h_a(y) * gains["H"]
        z_hat, z_lik = self.prior(z, training=self.training)
        phi = self.h_s(z_hat * gains["H_inv"])
        h, w = y.shape[-2:]
        amask = anchor_mask(h, w, x.device)
        G = gains["G"]
        y_hat_g = []
        liks, means, scales = [], [], []
        y_prev = None
        for g in range(len(self.context.groups)):
            sl = self.context.group_slice(g)
            yg, Gg = y[:, sl], G[:, sl]
            shared = self.context.shared_context(g, phi, y_prev)
            sa, ma = self.context.anchor_params(g, shared)
            ya = self._ste_quant(yg, ma, Gg)
            y_anchor = (ya / Gg) * amask
            sn, mn = self.context.nonanchor_params(g, shared, y_anchor)
            yn = self._ste_quant(yg, mn, Gg)
            yq = torch.where(amask, ya, yn)  # gained-domain reconstruction
            s = torch.where(amask, sa, sn) * Gg
            m = torch.where(amask, ma, mn) * Gg
            liks.append(self._likelihood(yg * Gg, m, s))
            means.append(m)
            scales.append(s)
            y_hat_g.append(yq)
            y_prev = yq / Gg if y_prev is None else torch.cat([y_prev, yq / Gg], dim=1)
        y_hat_gained = torch.cat(y_hat_g, dim=1)
        x_hat = self.g_s(y_hat_gained * gains["G_inv"])
        return {"x_hat": x_hat, "likelihoods": {"y": torch.cat(liks, dim=1), "z": z_lik},
                "y_hat": y_hat_gained / G,
                "means": torch.cat(means, dim=1), "scales": torch.cat(scales, dim=1)}

    def _ste_quant(self, y: torch.Tensor, mean: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        """Gained-domain STE quantization around the mean: μG + round((y − μ)G)."""
        mg = mean * gain
        return mg + ste_round(y * gain - mg)

    def _likelihood(self, y_gained, mean_gained, scale_gained):
        if self.training:
            noisy = y_gained + torch.empty_like(y_gained).uniform_(-0.5, 0.5)
            return gaussian_likelihood(noisy - mean_gained, scale_gained)
        return gaussian_likelihood(torch.round(y_gained - mean_gained), scale_gained)

    @torch.no_grad()
    def decoder_latents(self, x: torch.Tensor, u) -> torch.Tensor:
        """ŷ as every decoder receives it: ``ŷ_G ⊙ G'`` (the quantized gained latent times the
        learned inverse gain, §5.1), from the rounding forward pass. Not ``y_hat`` of
        :meth:`forward`, which is ``ŷ_G / G``: G' is learned and differs from 1/G, so g_s fed
        with ``ŷ_G / G`` is not the codec's MSE decoder."""
        out = self.forward(x, u)
        gains = self._gains(u, x.shape[0], x.device)
        return out["y_hat"] * gains["G"] * gains["G_inv"]

    @torch.no_grad()
    def synthesize(self, y_hat_gained: torch.Tensor, gains: dict) -> torch.Tensor:
        """x̂ = g_s(ŷ_G ⊙ G') — the MSE decoder."""
        return self.g_s(y_hat_gained * gains["G_inv"])
