"""The CPU-sized diffusion network ("lite"): the blur-dissipated decoder a laptop can run.

Same process (docs/methods.md §7.2, per-frequency blur in the DCT domain), same conditioning (§7.3:
the MSE picture x̂_mse, the synthesis transform's features, ŷ), a different budget. The
full-resolution U-Net (:class:`~.unet.CondUNet` at H, 7.3 M parameters) costs ~90 GFLOP per step at
256²; a 768×512 decode with tens of steps took minutes on a 2-core CPU (issue 13). Here:

* **x̂0 = x̂_mse + residual.** The network predicts only what the MSE decoder cannot give (texture,
  sharp edges); an untrained ("zero-initialised") network reproduces the MSE picture. The
  residual is clipped with x̂0 to [−1, 1] by the sampler.
* **The U-Net runs at H/r** (``unshuffle`` r = 4): x_t and x̂_mse are pixel-unshuffled (every
  r×r block becomes 3·r² channels, a lossless re-arrangement), the g_s features at H/2 are
  unshuffled to H/4 as well, the coarser features and ŷ enter at their own level. The output
  (3·r² channels) is pixel-shuffled back, so every pixel of a block still has its own value.
* **A light full-resolution head** (``head_dim`` channels: conv3×3 → ReLU → conv3×3 on
  ``[residual, x_t, x̂_mse]``) smooths the r×r block structure the unshuffled U-Net could leave.

* **ReLU** instead of SiLU (``act``): on the exact path a ReLU is the clamp of the rounding
  that follows every layer anyway, while a SiLU costs a deterministic exp per value (measured:
  a third of the exact network's time at 768×512).

The core network is :class:`~.unet.CondUNet` itself on the unshuffled tensors, so its exact
mirror (:class:`~.exact.ExactCondUNet`) is reused; pixel (un)shuffles are exact copies.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .unet import CondUNet, DiffusionConfig, _fit

__all__ = ["LiteUNet", "core_contexts"]


def core_contexts(cond_channels: Sequence[int], cond_scales: Sequence[int], r: int
                  ) -> tuple[list[int], list[int]]:
    """Channels and scales of the contexts as the core U-Net (at H/r) sees them: a context finer
    than H/r is unshuffled by r/s (c·(r/s)² channels at H/r), a coarser one keeps its size."""
    chans, scales = [], []
    for c, s in zip(cond_channels, cond_scales):
        f = max(1, r // int(s))
        chans.append(int(c) * f * f)
        scales.append(max(1, int(s) // r))
    return chans, scales


class LiteUNet(nn.Module):
    """x̂0(x_t, t, contexts) at CPU cost; ``forward``/``adapt`` as :class:`~.unet.CondUNet`."""

    def __init__(self, cfg: DiffusionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.r = r = int(cfg.unshuffle)
        if not cfg.use_x_mse:
            raise ValueError("the lite diffusion network is conditioned on the MSE picture "
                             "(use_x_mse=True)")
        chans, scales = core_contexts(cfg.cond_channels, cfg.cond_scales, r)
        self.core = CondUNet(cfg, channels=3 * r * r, cond_channels=chans, cond_scales=scales)
        self.head_in: Optional[nn.Conv2d] = None
        self.head_out: Optional[nn.Conv2d] = None
        if cfg.head_dim:
            self.head_in = nn.Conv2d(9, cfg.head_dim, 3, padding=1)
            self.head_out = nn.Conv2d(cfg.head_dim, 3, 3, padding=1)
            nn.init.zeros_(self.head_out.weight)  # start as x̂0 = x̂_mse + core residual
            nn.init.zeros_(self.head_out.bias)

    @property
    def multiple(self) -> int:
        """Image sizes are padded (replicate) to a multiple of this and cropped back."""
        return self.r

    def _padded(self, h: int, w: int) -> tuple[int, int]:
        m = self.multiple
        return -(-h // m) * m, -(-w // m) * m

    def _unshuffle_contexts(self, contexts: Sequence[Tensor], hp: int, wp: int) -> list[Tensor]:
        out = []
        for c, s in zip(contexts, self.cfg.cond_scales):
            f = max(1, self.r // int(s))
            if f > 1:
                c = F.pixel_unshuffle(_fit(c, (hp // s, wp // s)), f)
            out.append(c)
        return out

    def adapt(self, contexts: Sequence[Tensor], hw: tuple[int, int]) -> dict:
        """Project the contexts once for an image of size ``hw`` (reused at every step); keeps
        x̂_mse (context 0, in [−1, 1]) for the residual."""
        hp, wp = self._padded(*hw)
        levels = self.core.adapt(self._unshuffle_contexts(contexts, hp, wp),
                                 (hp // self.r, wp // self.r))
        return {"levels": levels, "x_mse": _fit(contexts[0], (hp, wp))}

    def forward(self, x: Tensor, t: Tensor, contexts: Optional[Sequence[Tensor]] = None,
                adapted: Optional[dict] = None) -> Tensor:
        h0, w0 = x.shape[-2:]
        hp, wp = self._padded(h0, w0)
        if adapted is None:
            adapted = self.adapt(contexts, (h0, w0))
        x = _fit(x, (hp, wp))
        x_mse = adapted["x_mse"]
        if x_mse.shape[0] != x.shape[0]:
            x_mse = x_mse.expand(x.shape[0], -1, -1, -1)
        res = F.pixel_shuffle(self.core(F.pixel_unshuffle(x, self.r), t,
                                        adapted=adapted["levels"]), self.r)
        if self.head_in is not None:
            hid = F.relu(self.head_in(torch.cat([res, x, x_mse.to(x.dtype)], dim=1)))
            res = res + self.head_out(hid)
        out = x_mse.to(res.dtype) + res if self.cfg.residual else res
        return out[..., :h0, :w0]

