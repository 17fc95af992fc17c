"""Scalar quantizers for inference: rounding, dead-zone, RDOQ (docs/methods.md §4.2, §6.3–6.4).

All three share one decoder: an index ``q`` reconstructs to ``ŷ − μ = q·Δ`` with Δ = 1 (the gain
units already scale the latent, §5), and ``q`` is coded under a **zero-mean** discretized Gaussian
whose std is the *table* value ``scale_table()[scale_index(σ)]`` (float64), never the raw network
σ: a table index flips far more rarely than a float changes (§6.4).

Coding layout (part of the bitstream spec): per (group, pass) one zero-mean
:class:`~lic_core.entropy_model.symbols.QuantizedGaussianModel` over ``[−K, K]`` for all
``B·C·N`` symbols, flattened in C-contiguous order of the ``B×C×N`` tensor (batch, then channel,
then position). Symbols are clamped to ``[−K, K]`` (K = 4096) before coding and before
reconstruction, and clamps are counted.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import torch

from ..entropy_model.symbols import QuantizedGaussianModel, SymbolPlan
from ..exact.tables import table_std  # the one home of index → float64 coding std
from .base import Quantizer, check_shapes

#: symbol range of the scalar coder, [−K, K] (docs/methods.md §6.3: K = 2¹²)
SYMBOL_BOUND = 4096
#: smallest probability constriction's leaky models give a symbol in range (24-bit precision,
#: §6.2); used as the floor of ``bits`` so estimated and spent bits agree on outliers too
MIN_CODED_PROB = 2.0 ** -24


def gaussian_bits(q: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """−log2 of the unit-bin mass of integer ``q`` under N(0, std²), float64.

    Mass ``Φ((|q|+½)/σ) − Φ((|q|−½)/σ)`` written with ``erfc`` of the absolute value so tails keep
    precision (CompressAI's formulation, §3.1), floored at constriction's minimum probability.
    """
    a = q.to(torch.float64).abs()
    s = std.to(torch.float64) * math.sqrt(2.0)
    mass = 0.5 * (torch.erfc((a - 0.5) / s) - torch.erfc((a + 0.5) / s))
    return -torch.log2(mass.clamp_min(MIN_CODED_PROB))


class _ScalarQuantizer(Quantizer):
    """Shared decoder and coder of the scalar quantizers (reconstruction ``q·Δ``, Δ = 1)."""

    elementwise = True  # each decision, reconstruction and pmf depends on its own element only

    def params(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def _clamp(indices: torch.Tensor) -> torch.Tensor:
        return indices.clamp(-SYMBOL_BOUND, SYMBOL_BOUND)

    def dequantize(self, indices: torch.Tensor,
                   index: Optional[torch.Tensor] = None) -> torch.Tensor:
        # clamp here too, so the encoder's reconstruction equals what the decoder can decode
        return self._clamp(indices).to(torch.float32)

    def bits(self, indices: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        check_shapes(indices, index)
        return gaussian_bits(self._clamp(indices).cpu(), table_std(index.cpu())).to(indices.device)

    def symbol_plan(self, index: torch.Tensor,
                    indices: Optional[torch.Tensor] = None) -> SymbolPlan:
        check_shapes(indices, index)
        if index.numel() == 0:
            return torch.zeros(index.shape, dtype=torch.int64, device=index.device), 0
        model = QuantizedGaussianModel(np.ascontiguousarray(table_std(index.cpu()).reshape(-1).numpy()),
                                       SYMBOL_BOUND)
        if indices is None:  # decoding
            got = yield model, None
            return torch.from_numpy(got).reshape(index.shape).to(index.device), 0
        q = indices.detach().cpu().to(torch.int64)
        clamped = int(((q < -SYMBOL_BOUND) | (q > SYMBOL_BOUND)).sum())
        q = self._clamp(q)
        yield model, q.reshape(-1).numpy()
        return q.to(indices.device), clamped


class RoundQuantizer(_ScalarQuantizer):
    """``q = round(r)`` around the mean (CompressAI ``compress``, docs/methods.md §4.2 item 1)."""

    name = "round"

    def quantize(self, residual: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        check_shapes(residual, index)
        return torch.round(residual.detach()).to(torch.int64)


class DeadZoneQuantizer(_ScalarQuantizer):
    """``q = sign(r)·⌊|r| + f⌋`` with rounding offset ``f ∈ [0, ½]`` (docs/methods.md §4.2 item 2).

    f = ½ is rounding (up to ties, which it rounds away from zero); f < ½ widens the zero bin
    (H.264/HEVC encoders use about 1/3 intra). The decoder is unchanged.
    """

    name = "deadzone"

    def __init__(self, offset: float = 1.0 / 3.0) -> None:
        offset = float(offset)
        if not 0.0 <= offset <= 0.5:
            raise ValueError(f"dead-zone offset must be in [0, 0.5], got {offset}")
        self.offset = offset

    def params(self) -> dict[str, Any]:
        return {"offset": self.offset}

    def quantize(self, residual: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        check_shapes(residual, index)
        r = residual.detach()
        return (torch.sign(r) * torch.floor(r.abs() + self.offset)).to(torch.int64)


class RdoqQuantizer(_ScalarQuantizer):
    """Rate-distortion optimized scalar quantization (docs/methods.md §4.2 item 3).

    Per element choose ``q ∈ {round(r), round(r) − sign(round(r)), 0}`` minimizing
    ``J = (r − q)² + λ·bits(q | σ_table[index])`` with ``λ = c·Δ²`` (Δ = 1). The textbook start
    (docs/methods.md §4.2) is ``c = ln2/6 ≈ 0.1155``, the high-rate slope ``−dD/dR`` of
    entropy-coded uniform quantization; the default is 0.03, because on the campaign codec every
    decision away from rounding costs far more picture quality than its latent error says
    (docs/quantizers.md). ``bits`` is the same table pmf the coder uses. Ties keep the earlier
    candidate, so c = 0 is exactly rounding.
    """

    name = "rdoq"

    def __init__(self, c: float = 0.03) -> None:
        c = float(c)
        if not (c >= 0.0 and math.isfinite(c)):
            raise ValueError(f"RDOQ c must be a finite number ≥ 0, got {c}")
        self.c = c

    def params(self) -> dict[str, Any]:
        return {"c": self.c}

    def quantize(self, residual: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        check_shapes(residual, index)
        r = residual.detach().cpu().to(torch.float64)
        std = table_std(index.cpu())
        raw = torch.round(r)
        q0 = self._clamp(raw)
        best_q = q0
        best_j = (r - q0) ** 2 + self.c * gaussian_bits(q0, std)
        for cand in (q0 - torch.sign(q0), torch.zeros_like(q0)):
            j = (r - cand) ** 2 + self.c * gaussian_bits(cand, std)
            better = j < best_j  # strict: ties keep the earlier (closer) candidate
            best_q = torch.where(better, cand, best_q)
            best_j = torch.where(better, j, best_j)
        # outliers beyond ±K stay unclamped here so encode() can count them (dequantize clamps)
        best_q = torch.where(raw == q0, best_q, raw)
        return best_q.to(torch.int64).to(residual.device)
