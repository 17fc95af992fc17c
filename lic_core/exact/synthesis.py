"""Exact synthesis transform g_s: ŷ_G ⊙ G' → uint8 picture, the same bytes everywhere.

Mirror of :class:`~lic_core.transform.elic.SynthesisTransform` (docs/methods.md §2.1): transposed
convs, residual bottlenecks and Cheng's attention blocks (sigmoid from :mod:`lic_core.exact.dmath`),
every layer an exact sum on the activation grid (docs/bitstream.md, "Reproducible decoding").
The picture is the exact final accumulator clamped to [0, 1], times 255, rounded half-even — the
semantics of :func:`lic_core.image.tensor.to_uint8`.
"""
from __future__ import annotations

import torch
from torch import nn

from ..transform.layers import AttentionBlock, ResidualBottleneck
from .entropy import exact_gain
from .fixed import ExactLinear, snap, to_grid
from .nets import DEFAULT_CONFIG, ExactAttentionBlock, ExactConfig, ExactResidualBottleneck


def picture_from_real(x: torch.Tensor) -> torch.Tensor:
    """uint8 from exact real values: clamp(x, 0, 1)·255, rounded half-even (single IEEE ops)."""
    return torch.round(torch.clamp(x, 0.0, 1.0) * 255.0).to(torch.uint8)


class ExactSynthesis:
    """Exact g_s of an LGEM model (or of a fine-tuned g_s + G' table).

    Built once per weights (quantization happens here); the inverse gains are cached per slider
    code."""

    def __init__(self, g_s, inv_gain, cfg: ExactConfig = DEFAULT_CONFIG, device="cpu") -> None:
        self.cfg, self.grid = cfg, cfg.grid
        self.inv_gain = inv_gain
        self.stages: list[list] = []
        for i, stage in enumerate(g_s.stages):
            mods = list(stage) if isinstance(stage, nn.Sequential) else [stage]
            ops: list = []
            for j, m in enumerate(mods):
                name = f"g_s.{i}.{j}"
                if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)):
                    ops.append(ExactLinear(m, self.grid, cfg.max_weight_bits, name=name))
                elif isinstance(m, ResidualBottleneck):
                    ops.append(ExactResidualBottleneck(m, cfg, name))
                elif isinstance(m, AttentionBlock):
                    ops.append(ExactAttentionBlock(m, cfg, name))
                else:
                    raise NotImplementedError(f"no exact version of {type(m).__name__} in g_s")
            self.stages.append(ops)
        self._gains: dict[int, torch.Tensor] = {}
        self.to(device)

    @classmethod
    def from_model(cls, model, cfg: ExactConfig = DEFAULT_CONFIG, device="cpu") -> "ExactSynthesis":
        return cls(model.g_s, model.gains.inv_gain, cfg, device)

    @property
    def ops(self) -> list:
        return [op for st in self.stages for op in st]

    def to(self, device) -> "ExactSynthesis":
        self.device = torch.device(device)
        for op in self.ops:
            op.to(device)
        self._gains = {}
        return self

    def linears(self) -> list[ExactLinear]:
        out = []
        for op in self.ops:
            out.extend([op] if isinstance(op, ExactLinear) else op.linears())
        return out

    def inverse_gain(self, code: int) -> torch.Tensor:
        """G' (1×M×1×1 float64 holding float32 values) at u16 slider ``code``."""
        code = int(code)
        hit = self._gains.get(code)  # one lookup: another thread may clear the cache
        if hit is None:
            if len(self._gains) > 32:
                self._gains.clear()
            hit = self._gains[code] = exact_gain(self.inv_gain, code).to(self.device)
        return hit

    def input_grid(self, y_hat_gained: torch.Tensor, code: int) -> torch.Tensor:
        """ŷ = ŷ_G ⊙ G' on the grid (one multiplication, one rounding) — g_s's input."""
        y = y_hat_gained.to(self.device, torch.float64) * self.inverse_gain(code)
        return to_grid(y, self.grid)

    @torch.no_grad()
    def run(self, y_hat_gained: torch.Tensor, code: int,
            keep_features: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(exact final accumulator x̂·2^F (B×3×H×W float64, not clamped), grid integers after
        each up-sampling stage but the last, coarse-to-fine — empty unless ``keep_features``)."""
        h = self.input_grid(y_hat_gained, code)
        feats = []
        last_stage = len(self.stages) - 1
        for si, ops in enumerate(self.stages):
            for k, op in enumerate(ops):
                h = op(h)
                final = si == last_stage and k == len(ops) - 1
                if isinstance(op, ExactLinear) and not final:
                    h = snap(h, self.grid, inplace=True)
            if keep_features and si < last_stage:
                feats.append(h)
        return h, feats

    def real_output(self, acc: torch.Tensor) -> torch.Tensor:
        """x̂ (float64 real values) of the final accumulator (exact scaling)."""
        return acc * self.grid.step

    @torch.no_grad()
    def picture(self, y_hat_gained: torch.Tensor, code: int) -> torch.Tensor:
        """uint8 B×3×H×W: clamp(x̂, 0, 1)·255, rounded half-even (exact ops)."""
        acc, _ = self.run(y_hat_gained, code)
        return picture_from_real(self.real_output(acc))
