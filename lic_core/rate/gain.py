"""Gain units for a continuous rate from one model (Cui et al., CVPR 2021; docs/methods.md §5.1).

Four learned tables of shape ``levels × C`` (used through ``|·|``): G (on y), G' (on ŷ before
g_s), H (on z) and H' (on ẑ before h_s).  A slider value ``u ∈ [0, 1]`` maps to the continuous
level ``v = u·(n−1)``; with ``s = ⌊v⌋`` and ``l = v − s`` the gains are interpolated
exponentially (geometric mean):

    G_v = |G_s|^(1−l) ⊙ |G_{s+1}|^l                                    (Cui et al., Eq. 8)

so ``l = 0`` gives level s and ``l = 1`` level s+1 exactly.  The slider is quantized to u16
*before* use (:func:`quantize_slider`), so encoder and decoder use identical gains.
"""
from __future__ import annotations

import torch
from torch import nn

SLIDER_SCALE = 65535


def quantize_slider(u: float) -> tuple[int, float]:
    """(u16 code, dequantized u) — the value the header stores and both sides use."""
    if not (0.0 <= float(u) <= 1.0):
        raise ValueError(f"rate must be in [0, 1], got {u}")
    code = int(round(float(u) * SLIDER_SCALE))
    return code, code / SLIDER_SCALE


def slider_from_code(code: int) -> float:
    return int(code) / SLIDER_SCALE


class GainTable(nn.Module):
    """One ``levels × C`` gain table with exponential interpolation between levels."""

    def __init__(self, levels: int, channels: int, init: torch.Tensor | None = None) -> None:
        super().__init__()
        w = torch.ones(levels, channels) if init is None else init.clone()
        self.weight = nn.Parameter(w)
        self.levels = levels

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Gains ``B×C×1×1`` for slider values ``u`` (shape ``B``), always positive."""
        u = u.reshape(-1).to(self.weight.dtype).clamp(0.0, 1.0)
        v = u * (self.levels - 1)
        s = torch.clamp(v.floor().long(), max=self.levels - 2) if self.levels > 1 else v.long() * 0
        if self.levels == 1:
            g = self.weight.abs()[s]
            return g[:, :, None, None]
        l = (v - s.to(v.dtype))[:, None]
        lo = self.weight.abs()[s]
        hi = self.weight.abs()[s + 1]
        # Exact endpoints: x^0 = 1 and x^1 = x in floating point, so l∈{0,1} reproduces a level.
        g = lo.pow(1.0 - l) * hi.pow(l)
        return g[:, :, None, None]


class GainUnits(nn.Module):
    """The four gain tables of one codec (G, G', H, H')."""

    def __init__(self, levels: int, M: int, N: int) -> None:
        super().__init__()
        # Initialise so that higher levels quantize more finely (gain grows ×~1.6 per level),
        # a good start for the λ ladder (each λ step roughly doubles; step ∝ λ^{-1/2}·const).
        ramp = torch.logspace(-0.5, 0.7, levels, base=2.0)[:, None]
        self.gain = GainTable(levels, M, ramp.expand(levels, M))
        self.inv_gain = GainTable(levels, M, (1.0 / ramp).expand(levels, M))
        self.hyper_gain = GainTable(levels, N)
        self.inv_hyper_gain = GainTable(levels, N)

    def forward(self, u: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"G": self.gain(u), "G_inv": self.inv_gain(u),
                "H": self.hyper_gain(u), "H_inv": self.inv_hyper_gain(u)}
