"""HiFiC's networks on the exact path (docs/methods.md §8.1; docs/bitstream.md, "Reproducible
decoding"): the generator G and the mean-scale hyperprior h_s^μ, h_s^σ.

:class:`ExactHificGenerator` mirrors :class:`~lic_core.models.hific.HificGenerator`, built from
:mod:`lic_core.exact` primitives: reflect-padded convolutions and transposed convolutions as exact
sums on the activation grid, ChannelNorm as :class:`~lic_core.exact.nets.ExactNorm` (unbiased
variance over channels, ε = 1e-3), ReLU as the clamp at 0, residual blocks and the global skip as
exact integer additions.  The output ``(tail + 1)/2`` becomes the uint8 picture with one addition, an exact
halving, a clamp, ×255 and a rounding — the same bits on every machine.

:class:`ExactMeanScaleHyperprior` mirrors ``HificModel``'s ``h_s_mean``/``h_s_scale`` heads: ẑ⊙H'
on the grid, both heads as exact sums, μ and σ in the gained domain, σ bounded below and indexed
in the frozen table (:func:`lic_core.exact.tables.sigma_index`).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..exact.fixed import ExactLinear, ExactSequential, picture_from_real, snap, to_grid
from ..exact.gains import cached_exact_gains
from ..exact.nets import DEFAULT_CONFIG, ExactConfig, ExactNorm, add
from ..exact.tables import sigma_index
from .hific import ChannelNorm, HificGenerator, ReflectConv2d, ResidualBlock


class _Chain:
    """A sequence of exact ops (convs, norms, ReLUs) mirroring an ``nn.Sequential``."""

    def __init__(self, mods, cfg: ExactConfig, name: str) -> None:
        self.grid = cfg.grid
        self.ops: list = []
        for i, m in enumerate(mods):
            nm = f"{name}.{i}"
            if isinstance(m, ReflectConv2d):
                self.ops.append(ExactLinear(m, self.grid, cfg.max_weight_bits, name=nm, pad=m.pad))
            elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                self.ops.append(ExactLinear(m, self.grid, cfg.max_weight_bits, name=nm))
            elif isinstance(m, ChannelNorm):
                self.ops.append(ExactNorm(m.gamma if m.affine else None,
                                          m.beta if m.affine else None, m.eps, self.grid, ddof=1))
            elif isinstance(m, nn.ReLU):
                self.ops.append("relu")
            else:
                raise NotImplementedError(f"no exact version of {type(m).__name__} in HiFiC's G")

    def linears(self) -> list[ExactLinear]:
        return [op for op in self.ops if isinstance(op, ExactLinear)]

    def to(self, device) -> "_Chain":
        for op in self.ops:
            if op != "relu":
                op.to(device)
        return self

    def __call__(self, a: torch.Tensor, final_raw: bool = False) -> torch.Tensor:
        """Run the chain; ``final_raw`` leaves the last linear layer's accumulator unsnapped."""
        n = len(self.ops)
        for k, op in enumerate(self.ops):
            if op == "relu":
                a = a.clamp_(min=0.0)  # ReLU of grid integers: exact, in place on a fresh tensor
            elif isinstance(op, ExactLinear):
                a = op(a)
                if not (final_raw and k == n - 1):
                    a = snap(a, self.grid, inplace=True)
            else:
                a = op(a)
        return a


class ExactHificGenerator:
    """G: CN → conv → CN → residual blocks (+ global skip) → 4× [deconv, CN, ReLU] → conv7×7."""

    def __init__(self, gen: HificGenerator, cfg: ExactConfig = DEFAULT_CONFIG,
                 device="cpu") -> None:
        self.cfg, self.grid = cfg, cfg.grid
        self.head = _Chain(list(gen.head), cfg, "G.head")
        self.res = []
        for i, blk in enumerate(gen.res):
            if not isinstance(blk, ResidualBlock):
                raise NotImplementedError(f"no exact version of {type(blk).__name__}")
            self.res.append(_Chain(list(blk.body), cfg, f"G.res{i}"))
        self.up = _Chain(list(gen.up), cfg, "G.up")
        self.tail = _Chain([gen.tail], cfg, "G.tail")
        self.to(device)

    def linears(self) -> list[ExactLinear]:
        out = self.head.linears() + self.up.linears() + self.tail.linears()
        return out + [lin for r in self.res for lin in r.linears()]

    def to(self, device) -> "ExactHificGenerator":
        self.device = torch.device(device)
        for part in [self.head, *self.res, self.up, self.tail]:
            part.to(device)
        return self

    @torch.no_grad()
    def picture(self, y_hat_gained: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
        """uint8 B×3×H×W from ŷ⊙G (the latent codec's output) and G' (exact gains)."""
        y = y_hat_gained.to(self.device, torch.float64) * g_inv.to(self.device)  # one rounding
        h = self.head(to_grid(y, self.grid))
        r = h
        for blk in self.res:
            r = add(r, blk(r), self.grid)  # residual block: x + body(x)
        h = add(h, r, self.grid)  # global skip around the trunk
        acc = self.tail(self.up(h), final_raw=True)
        x = (acc * self.grid.step).add_(1.0).mul_(0.5)  # (G(ŷ) + 1)/2: one rounding, exact halving
        return picture_from_real(x)


class ExactMeanScaleHyperprior:
    """A mean-scale hyperprior (HiFiC, docs/methods.md §8.1): ẑ⊙H' → h_s^μ, h_s^σ, exactly.

    ``mean_net``/``scale_net`` are the heads' ``nn.Sequential`` s; μ and σ come out in the gained
    domain directly (σ bounded below at 0.11, then the frozen-table index)."""

    def __init__(self, mean_net, scale_net, units: Any, cfg: ExactConfig = DEFAULT_CONFIG,
                 device="cpu") -> None:
        self.cfg, self.grid = cfg, cfg.grid
        self.mean = ExactSequential(mean_net, self.grid, cfg.max_weight_bits, "h_s_mean")
        self.scale = ExactSequential(scale_net, self.grid, cfg.max_weight_bits, "h_s_scale")
        self._units = units
        self._gain_cache: dict[int, dict] = {}
        self.to(device)

    def to(self, device) -> "ExactMeanScaleHyperprior":
        self.device = torch.device(device)
        self.mean.to(device)
        self.scale.to(device)
        self._gain_cache = {}
        return self

    def linears(self) -> list[ExactLinear]:
        return self.mean.linears() + self.scale.linears()

    def gains_for_code(self, code: int) -> dict[str, torch.Tensor]:
        return cached_exact_gains(self._gain_cache, self._units, code, self.device)

    def params(self, z_hat: torch.Tensor, gains: dict):
        """(scale index, μ, σ) of every element of ȳ (gained domain, full size)."""
        a = to_grid(z_hat.to(self.device, torch.float64) * gains["H_inv"], self.grid)
        mean = self.mean(a) * self.grid.step
        idx, sg = sigma_index(self.scale(a) * self.grid.step, None)
        return idx, mean, sg
