"""Blurring-diffusion schedules (docs/methods.md §7.2; Hoogeboom & Salimans, ICLR 2023).

For t ∈ [0, 1] and an H×W image:

* blur: ``σ_B(t) = σ_B,max · sin²(πt/2)``, dissipation time ``τ_t = σ_B(t)²/2``,
  ``d_t(k, l) = (1 − d_min)·exp(−λ_kl τ_t) + d_min`` with the heat-equation eigenvalues
  ``λ_kl = (πk/H)² + (πl/W)²`` of the *actual* H, W (blur is in pixel units, so the process is
  resolution-consistent);
* noise: cosine schedule in log-SNR, ``logsnr(t) = −2 log tan(a t + b)`` on [logsnr_min, logsnr_max],
  ``a_t = √sigmoid(logsnr)``, ``σ_t = √sigmoid(−logsnr)`` (variance preserving);
* per-frequency signal scale ``α_t(k, l) = a_t · d_t(k, l)``; σ_t is a scalar (isotropic noise).

Everything is computed in float64 (float32 on devices without float64) and cast at the end: the
schedule tensors are only H×W, and the transition variance uses the cancellation-free form
``σ²_{t|s} = σ_t² · (−expm1(logsnr_t − logsnr_s + 2 log(d_t/d_s)))``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["BlurSchedule", "heat_eigenvalues", "as_time"]


def _calc_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def as_time(t: float | Tensor, device: torch.device | str | None = None) -> Tensor:
    """t as a 1-D float64 tensor (a float becomes shape [1])."""
    dev = torch.device(device) if device is not None else (
        t.device if isinstance(t, Tensor) else torch.device("cpu"))
    # Python floats go straight to float64 (torch.as_tensor(float) would round through float32)
    tt = torch.as_tensor(t, dtype=_calc_dtype(dev), device=dev)
    return tt.reshape(-1)


def heat_eigenvalues(h: int, w: int, dtype: torch.dtype = torch.float64,
                     device: torch.device | str | None = None) -> Tensor:
    """``λ_kl = (πk/H)² + (πl/W)²`` for the H×W DCT frequencies (docs/methods.md §7.2)."""
    k = torch.arange(h, dtype=dtype, device=device) * (math.pi / h)
    l_ = torch.arange(w, dtype=dtype, device=device) * (math.pi / w)
    return k.square().unsqueeze(1) + l_.square().unsqueeze(0)


@dataclass(frozen=True)
class BlurSchedule:
    """The blur + cosine-logSNR schedule of blurring diffusion (docs/methods.md §7.2).

    ``sigma_b_max = 0`` turns off the blur and gives standard VP cosine diffusion.
    """

    sigma_b_max: float = 20.0
    d_min: float = 1e-3
    logsnr_min: float = -10.0
    logsnr_max: float = 10.0

    # ---- noise (scalar per t) -------------------------------------------------------------
    def logsnr(self, t: float | Tensor) -> Tensor:
        """Cosine log-SNR, ``−2 log tan(a t + b)``; logsnr(0) = logsnr_max, logsnr(1) = logsnr_min."""
        t = as_time(t)
        b = math.atan(math.exp(-0.5 * self.logsnr_max))
        a = math.atan(math.exp(-0.5 * self.logsnr_min)) - b
        return -2.0 * torch.log(torch.tan(a * t + b))

    def noise_scales(self, t: float | Tensor) -> tuple[Tensor, Tensor]:
        """(a_t, σ_t) with a_t² + σ_t² = 1, shape [B]."""
        ls = self.logsnr(t)
        return torch.sigmoid(ls).sqrt(), torch.sigmoid(-ls).sqrt()

    # ---- blur (per frequency) ---------------------------------------------------------------
    def blur_sigma(self, t: float | Tensor) -> Tensor:
        """``σ_B(t) = σ_B,max · sin²(πt/2)`` in pixels, shape [B]."""
        t = as_time(t)
        return self.sigma_b_max * torch.sin(0.5 * math.pi * t).square()

    def dissipation_time(self, t: float | Tensor) -> Tensor:
        """``τ_t = σ_B(t)² / 2``, shape [B]."""
        return 0.5 * self.blur_sigma(t).square()

    def frequency_scaling(self, t: float | Tensor, h: int, w: int) -> Tensor:
        """``d_t(k, l)``, shape [B, 1, H, W] (float64 on the device of t)."""
        tau = self.dissipation_time(t)
        lam = heat_eigenvalues(h, w, tau.dtype, tau.device)
        d = (1.0 - self.d_min) * torch.exp(-lam.unsqueeze(0) * tau.view(-1, 1, 1)) + self.d_min
        return d.unsqueeze(1)

    # ---- combined -------------------------------------------------------------------------
    def alpha_sigma(self, t: float | Tensor, h: int, w: int,
                    dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
        """``α_t = a_t·d_t`` ([B,1,H,W]) and ``σ_t`` ([B,1,1,1]); cast to ``dtype`` if given."""
        a, s = self.noise_scales(t)
        alpha = a.view(-1, 1, 1, 1) * self.frequency_scaling(t, h, w)
        sigma = s.view(-1, 1, 1, 1)
        if dtype is not None:
            alpha, sigma = alpha.to(dtype), sigma.to(dtype)
        return alpha, sigma

    def transition(self, t: float | Tensor, s: float | Tensor, h: int, w: int
                   ) -> tuple[Tensor, Tensor]:
        """``α_{t|s} = α_t/α_s`` and ``σ²_{t|s} = σ_t² − α_{t|s}² σ_s²`` (s < t), both [B,1,H,W].

        Computed without cancellation through log-SNR differences (see module docstring).
        """
        t = as_time(t)
        s = as_time(s, t.device)
        d_t = self.frequency_scaling(t, h, w)
        d_s = self.frequency_scaling(s, h, w)
        a_t, sig_t = self.noise_scales(t)
        a_s, _ = self.noise_scales(s)
        alpha_ts = (a_t / a_s).view(-1, 1, 1, 1) * (d_t / d_s)
        dl = (self.logsnr(t) - self.logsnr(s)).view(-1, 1, 1, 1) + 2.0 * torch.log(d_t / d_s)
        var_ts = sig_t.square().view(-1, 1, 1, 1) * (-torch.expm1(dl))
        return alpha_ts, var_ts
