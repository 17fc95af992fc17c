"""Exact synthesis transform g_s: ŷ_G ⊙ G' → uint8 picture, the same bytes everywhere.

Mirror of :class:`~lic_core.transform.elic.SynthesisTransform` (METHODS §2.1): transposed convs,
residual bottlenecks and Cheng's attention blocks (sigmoid from :mod:`lic_core.exact.dmath`),
every layer an exact sum on the activation grid (docs/determinism.md).  The picture is the exact
final accumulator clamped to [0, 1], times 255, rounded half-even — the semantics of
:func:`lic_core.image.tensor.to_uint8`.
"""
from __future__ import annotations

import torch
from torch import nn

from ..model import LicModel
from ..transform.elic import SynthesisTransform
from ..transform.layers import AttentionBlock, ResidualBottleneck
from .entropy import exact_gain
from .fixed import ExactLinear, snap
from .nets import ExactAttentionBlock, ExactConfig, ExactResidualBottleneck
from ..rate.gain import quantize_slider


class ExactSynthesis:
    """Exact g_s of a :class:`LicModel` (or of a fine-tuned g_s + G' table)."""

    def __init__(self, g_s: SynthesisTransform, inv_gain, cfg: ExactConfig = ExactConfig(),
                 device="cpu") -> None:
        self.cfg, self.grid = cfg, cfg.grid
        self.inv_gain = inv_gain
        self.ops: list = []
        for i, stage in enumerate(g_s.stages):
            mods = list(stage) if isinstance(stage, nn.Sequential) else [stage]
            for j, m in enumerate(mods):
                name = f"g_s.{i}.{j}"
                if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)):
                    self.ops.append(ExactLinear(m, self.grid, cfg.max_weight_bits, name=name))
                elif isinstance(m, ResidualBottleneck):
                    self.ops.append(ExactResidualBottleneck(m, cfg, name))
                elif isinstance(m, AttentionBlock):
                    self.ops.append(ExactAttentionBlock(m, cfg, name))
                else:
                    raise NotImplementedError(f"no exact version of {type(m).__name__} in g_s")
        self.to(device)

    @classmethod
    def from_model(cls, model: LicModel, cfg: ExactConfig = ExactConfig(),
                   device="cpu") -> "ExactSynthesis":
        return cls(model.g_s, model.gains.inv_gain, cfg, device)

    def to(self, device) -> "ExactSynthesis":
        self.device = torch.device(device)
        for op in self.ops:
            op.to(device)
        return self

    def linears(self) -> list[ExactLinear]:
        out = []
        for op in self.ops:
            out.extend([op] if isinstance(op, ExactLinear) else op.linears())
        return out

    def inverse_gain(self, u: float) -> torch.Tensor:
        code, _ = quantize_slider(u)
        return exact_gain(self.inv_gain, code).to(self.device)

    @torch.no_grad()
    def features(self, y_hat_gained: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
        """The exact final accumulator x̂ (float64, B×3×H×W, not clamped)."""
        h = snap(y_hat_gained.to(self.device, torch.float64) * g_inv, self.grid)
        for k, op in enumerate(self.ops):
            last = k == len(self.ops) - 1
            h = op(h)
            if isinstance(op, ExactLinear) and not last:
                h = snap(h, self.grid)
        return h

    @torch.no_grad()
    def picture(self, y_hat_gained: torch.Tensor, u: float) -> torch.Tensor:
        """uint8 B×3×H×W: clamp(x̂, 0, 1)·255, rounded half-even (exact ops)."""
        x = self.features(y_hat_gained, self.inverse_gain(u))
        return torch.round(torch.clamp(x, 0.0, 1.0) * 255.0).to(torch.uint8)
