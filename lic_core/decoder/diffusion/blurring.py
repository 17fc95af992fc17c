"""Blurring diffusion: forward process, ε-loss, exact posterior step, seeded sampler
(docs/methods.md §7.2).

Conventions: images are in [−1, 1] (converted at the decoder boundary), shape B×C×H×W. The model
predicts ε in *pixel* space (ε is isotropic, so pixel and DCT space are equivalent, ``û_ε = Vᵀε̂``).
Time t ∈ [0, 1] is continuous; a T-step sampler visits ``t_i = i/T`` for i = T … 1.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import Tensor

from .dct import dct2, idct2
from .schedules import BlurSchedule, as_time

__all__ = [
    "diffuse", "eps_loss", "x0_loss", "x0_estimate", "eps_from_x0", "posterior_step", "sample",
    "step_pairs", "ModelFn", "StepCallback", "PREDICTIONS",
]

#: What the network predicts: "eps" (ε, docs/methods.md §7.2) or "x" (x̂0; see posterior_step).
PREDICTIONS = ("eps", "x")
#: ``model_fn(x_t, t, cond) -> ε̂`` (or x̂0 when the sampler runs with ``pred="x"``), t a [B] tensor.
ModelFn = Callable[[Tensor, Tensor, Any], Tensor]
#: ``callback(step_index, x0_hat)``; may raise (e.g. lic_core.errors.CancelledError) to stop.
StepCallback = Callable[[int, Tensor], None]


def _t_batch(t: float | Tensor, b: int, device: torch.device) -> Tensor:
    tt = as_time(t, device)
    return tt.expand(b) if tt.numel() == 1 else tt


def diffuse(x0: Tensor, t: float | Tensor, schedule: BlurSchedule,
            noise: Optional[Tensor] = None, generator: Optional[torch.Generator] = None
            ) -> tuple[Tensor, Tensor]:
    """Forward process ``x_t = V(α_t ⊙ Vᵀx_0) + σ_t ε`` (ε drawn in pixel space). Returns (x_t, ε)."""
    b, _, h, w = x0.shape
    alpha, sigma = schedule.alpha_sigma(_t_batch(t, b, x0.device), h, w, dtype=x0.dtype)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype,
                            device=generator.device if generator is not None else x0.device
                            ).to(x0.device)
    return idct2(alpha * dct2(x0)) + sigma * noise, noise


def eps_loss(eps_hat: Tensor, eps: Tensor, t: float | Tensor, schedule: BlurSchedule,
             kind: str = "l2", min_snr: Optional[float] = None) -> Tensor:
    """ε-prediction loss ``E‖ε − ε̂‖`` (docs/methods.md §7.2), L2 (default) or L1 (LGEM/CDC config).

    ``min_snr=γ`` applies the min-SNR weighting to the ε-loss, ``w = min(SNR_t, γ)/SNR_t`` with the
    scalar noise SNR ``a_t²/σ_t²``: that equals CDC's ``min(SNR, 5)·‖x0 − x̂0‖²`` for VP diffusion.
    """
    err = eps_hat - eps
    per = err.square() if kind == "l2" else err.abs() if kind == "l1" else None
    if per is None:
        raise ValueError(f"unknown loss kind {kind!r} (use 'l2' or 'l1')")
    per = per.flatten(1).mean(1)
    if min_snr is not None:
        snr = torch.exp(schedule.logsnr(_t_batch(t, eps.shape[0], eps.device)))
        per = per * (torch.clamp(snr, max=min_snr) / snr).to(per.dtype)
    return per.mean()


def x0_loss(x0_hat: Tensor, x0: Tensor, t: float | Tensor, schedule: BlurSchedule,
            kind: str = "l2", min_snr: Optional[float] = None) -> Tensor:
    """x-prediction loss ``E w(t)‖x0 − x̂0‖`` in pixel space (all frequencies weighted equally).

    ``min_snr=γ`` gives CDC's weighting ``w = min(SNR_t, γ)`` (scalar noise SNR); None → w = 1.
    """
    err = x0_hat - x0
    per = err.square() if kind == "l2" else err.abs() if kind == "l1" else None
    if per is None:
        raise ValueError(f"unknown loss kind {kind!r} (use 'l2' or 'l1')")
    per = per.flatten(1).mean(1)
    if min_snr is not None:
        snr = torch.exp(schedule.logsnr(_t_batch(t, x0.shape[0], x0.device)))
        per = per * torch.clamp(snr, max=min_snr).to(per.dtype)
    return per.mean()


def eps_from_x0(x_t: Tensor, x0_hat: Tensor, t: float | Tensor, schedule: BlurSchedule) -> Tensor:
    """The ε implied by an x̂0: ``V((u_t − α_t ⊙ Vᵀx̂0)/σ_t)``."""
    b, _, h, w = x_t.shape
    alpha, sigma = schedule.alpha_sigma(_t_batch(t, b, x_t.device), h, w, dtype=x_t.dtype)
    return idct2((dct2(x_t) - alpha * dct2(x0_hat)) / sigma)


def x0_estimate(x_t: Tensor, eps_hat: Tensor, t: float | Tensor, schedule: BlurSchedule,
                inv_alpha_max: float = 10.0) -> Tensor:
    """One-step estimate ``x̂0 = V((u_t − σ_t û_ε)/α_t)``, ``1/α_t`` clamped (docs/methods.md §7.5).

    Clamping 1/α at ``inv_alpha_max`` keeps the dissipated high frequencies (α ≈ a_t·d_min) from
    amplifying the ε error by up to 1/(a_t·d_min); those frequencies come out attenuated instead.
    """
    b, _, h, w = x_t.shape
    alpha, sigma = schedule.alpha_sigma(_t_batch(t, b, x_t.device), h, w)
    inv = torch.clamp(1.0 / alpha, max=inv_alpha_max).to(x_t.dtype)
    return idct2((dct2(x_t) - sigma.to(x_t.dtype) * dct2(eps_hat)) * inv)


def posterior_step(x_t: Tensor, eps_hat: Optional[Tensor], t: float, s: float,
                   schedule: BlurSchedule, noise: Optional[Tensor] = None,
                   x0_hat: Optional[Tensor] = None) -> Tensor:
    """Exact reverse step t → s of blurring diffusion (docs/methods.md §7.2), per DCT frequency.

    ``σ²_→ = 1/(1/σ_s² + α_{t|s}²/σ²_{t|s})``,
    ``μ_→ = (α_{t|s}σ²_→/σ²_{t|s})·u_t + (σ²_→/(α_{t|s}σ_s²))·(u_t − σ_t û_ε)``,
    ``u_s = μ_→ + σ_→ ξ`` (``noise`` = ξ in DCT space; None → the mean, used on the last step).

    With ``x0_hat`` instead of ``eps_hat`` the same mean is computed in its x̂0 form,
    ``μ_→ = (α_{t|s}σ_s²/σ_t²)·u_t + (α_s σ²_{t|s}/σ_t²)·û0`` (identical when
    ``u_t − σ_t û_ε = α_t û0``). That form never divides by α: in a frequency that is dissipated
    at t but not at s, the ε form multiplies the ε error by ``σ_t/α_t`` (up to 1/(a_t·d_min)).
    """
    _, _, h, w = x_t.shape
    dev = x_t.device
    tt, ss = as_time(t, dev), as_time(s, dev)
    alpha_ts, var_ts = schedule.transition(tt, ss, h, w)
    _, sig_t = schedule.noise_scales(tt)
    _, sig_s = schedule.noise_scales(ss)
    var_s = sig_s.square().view(-1, 1, 1, 1)
    var_post = 1.0 / (1.0 / var_s + alpha_ts.square() / var_ts)
    c_t = (alpha_ts * var_post / var_ts).to(x_t.dtype)
    u_t = dct2(x_t)
    if x0_hat is not None:
        alpha_s, _ = schedule.alpha_sigma(ss, h, w)
        c_0 = (alpha_s * var_ts / sig_t.square().view(-1, 1, 1, 1)).to(x_t.dtype)
        mean = c_t * u_t + c_0 * dct2(x0_hat.to(x_t.dtype))
    else:
        c_x = (var_post / (alpha_ts * var_s)).to(x_t.dtype)
        mean = c_t * u_t + c_x * (u_t - sig_t.to(x_t.dtype).view(-1, 1, 1, 1) * dct2(eps_hat))
    if noise is not None:
        mean = mean + var_post.sqrt().to(x_t.dtype) * noise
    return idct2(mean)


def step_pairs(steps: int) -> list[tuple[float, float]]:
    """The (t, s) pairs of a ``steps``-step sampler: t = i/T → s = (i−1)/T, i = T … 1."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return [(i / steps, (i - 1) / steps) for i in range(steps, 0, -1)]


@torch.no_grad()
def sample(model_fn: ModelFn, cond: Any, shape: tuple[int, ...], steps: int, seed: int,
           schedule: BlurSchedule, device: torch.device | str | None = None,
           dtype: torch.dtype = torch.float32, callback: Optional[StepCallback] = None,
           x_init_mean: Optional[Tensor] = None, inv_alpha_max: float = 10.0,
           pred: str = "eps", clip_x0: bool = False) -> Tensor:
    """Seeded ancestral sampler, exact posterior (docs/methods.md §7.2). Returns x̂0 (B×C×H×W).

    Generator policy (reproducibility): all noise comes from one ``torch.Generator`` on the CPU
    seeded with ``seed`` and is then moved to ``device``, so a seed gives the same noise on every
    device; with the same device and kernels two runs are bit-identical. No noise on the last step.

    Start: ``u_1 = α_1 ⊙ Vᵀ x_init_mean + σ_1 ε`` (the process at t = 1; α_1 ≤ a_1 ≈ 6.7e-3, so
    without a mean this is ≈ pure noise). The last step returns the posterior mean at s = 0,
    rescaled by 1/α_0 (α_0 = a_0 ≈ 0.99998, d_0 ≡ 1).

    ``pred="x"``: ``model_fn`` returns x̂0 (clipped to [−1, 1] when ``clip_x0``) and the step uses
    the x̂0 form of the posterior mean (see :func:`posterior_step`).
    """
    if pred not in PREDICTIONS:
        raise ValueError(f"pred must be one of {PREDICTIONS}, got {pred!r}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    noise_dtype = torch.float64 if dtype == torch.float64 else torch.float32

    def randn() -> Tensor:
        return torch.randn(shape, generator=gen, dtype=noise_dtype).to(device=dev, dtype=dtype)

    b, _, h, w = shape
    alpha1, sigma1 = schedule.alpha_sigma(as_time(1.0, dev), h, w, dtype=dtype)
    x = sigma1 * randn()
    if x_init_mean is not None:
        x = x + idct2(alpha1 * dct2(x_init_mean.to(device=dev, dtype=dtype)))
    pairs = step_pairs(steps)
    for i, (t, s) in enumerate(pairs):
        tb = torch.full((b,), t, device=dev, dtype=dtype)
        out = model_fn(x, tb, cond).to(dtype)
        last = i == len(pairs) - 1
        if pred == "x":
            x0_hat = out.clamp(-1.0, 1.0) if clip_x0 else out
            if callback is not None:
                callback(i, x0_hat)
            x = posterior_step(x, None, t, s, schedule, noise=None if last else randn(),
                               x0_hat=x0_hat)
        else:
            if callback is not None:
                callback(i, x0_estimate(x, out, t, schedule, inv_alpha_max))
            x = posterior_step(x, out, t, s, schedule, noise=None if last else randn())
    a0, _ = schedule.noise_scales(as_time(0.0, dev))
    return x / a0.to(dtype)
