"""The reproducible entropy-parameter path: ẑ → gains → h_s → LGEM contexts → (scale index, μ).

:class:`ExactEntropyParameters` mirrors :class:`~lic_core.model.LicModel` (``_gains``,
``hyper_features``, ``LGEMContext.shared_context/anchor_params/nonanchor_params`` and
``latent_passes``; METHODS §2.2–2.4, §5.1) but computes everything the decoder must reproduce
with exact integer sums in float64 and single IEEE operations (docs/determinism.md).  Its
outputs are what the range coder needs, and they are the same bits on any thread count, CPU
vector width or GPU:

* ``scale_index`` (int64): smallest entry of the frozen table
  (:data:`lic_core.exact.tables.SCALE_TABLE_64`) ≥ σ·G, by comparison;
* ``mean`` μ·G (float64): μ on the activation grid times G (a float32 value) — the product has at
  most 52 significant bits, so it is exact;
* ŷ_G = μ·G + q (one IEEE addition) and the context input ŷ = snap(ŷ_G / G) (one division).

Gains (Cui et al. 2021, Eq. 8) come from the u16 slider code: s, l = divmod(code·(n−1), 65535),
G = exp((1−l)·ln|G_s| + l·ln|G_{s+1}|) with the deterministic exp/ln, rounded to float32 (the
levels themselves, l ∈ {0, 1}, are returned exactly).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ..entropy_model.checkerboard import anchor_mask, gather, scatter
from ..entropy_model.gaussian import SCALE_BOUND
from ..model import LicModel
from ..rate.gain import SLIDER_SCALE, GainTable, quantize_slider
from . import dmath
from .fixed import ExactLinear, ExactSequential, Grid, snap
from .nets import ExactConfig, ExactTransformerBlock, _add
from .tables import scale_index, table_std

# step(g, pass_index, residual or None, scale_index) -> integer reconstruction (B×C_g×N)
ExactStepFn = Callable[[int, int, Optional[torch.Tensor], torch.Tensor], torch.Tensor]


def exact_gain(table: GainTable, code: int) -> torch.Tensor:
    """Gains 1×C×1×1 (float64 holding float32 values) of a :class:`GainTable` at slider code."""
    w = table.weight.detach().to("cpu", torch.float64).abs()
    n = table.levels
    if n == 1:
        g = w[0]
    else:
        s, rem = divmod(int(code) * (n - 1), SLIDER_SCALE)
        if s >= n - 1:  # u = 1: level n−1 is the upper end of the last interval
            s, rem = n - 2, SLIDER_SCALE
        if rem == 0:
            g = w[s]
        elif rem == SLIDER_SCALE:
            g = w[s + 1]
        else:
            l = rem / SLIDER_SCALE  # one correctly rounded division (Python float = IEEE double)
            g = dmath.exp(dmath.log(w[s]) * (1.0 - l) + dmath.log(w[s + 1]) * l)
    g = g.to(torch.float32).to(torch.float64)  # one rounding to a float32 value (exact grid)
    return g[None, :, None, None]


class _ExactGroup:
    """Exact version of ``lic_core.entropy_model.lgem._GroupContext``."""

    def __init__(self, net, cfg: ExactConfig, name: str) -> None:
        g, wb = cfg.grid, cfg.max_weight_bits
        self.grid = g
        self.has_prev = net.has_prev
        if self.has_prev:
            self.channel_ctx = ExactSequential(net.channel_ctx, g, wb, f"{name}.channel_ctx")
            self.inter_in = ExactLinear(net.inter_in, g, wb, name=f"{name}.inter_in")
            self.inter = ExactTransformerBlock(net.inter, cfg, f"{name}.inter")
            self.inter_out = ExactLinear(net.inter_out, g, wb, name=f"{name}.inter_out")
        self.local_in = ExactLinear(net.local_in, g, wb, name=f"{name}.local_in")
        self.local = ExactLinear(net.local, g, wb, mask=net.local.mask.expand_as(net.local.weight),
                                 name=f"{name}.local")
        self.intra_q = ExactLinear(net.intra_q, g, wb, name=f"{name}.intra_q")
        self.intra_kv = ExactLinear(net.intra_kv, g, wb, name=f"{name}.intra_kv")
        self.intra_dw = ExactLinear(net.intra_dw, g, wb,
                                    mask=net.intra_dw.mask.expand_as(net.intra_dw.weight),
                                    name=f"{name}.intra_dw")
        self.intra = [ExactTransformerBlock(b, cfg, f"{name}.intra{i}") for i, b in enumerate(net.intra)]
        self.intra_out = ExactLinear(net.intra_out, g, wb, name=f"{name}.intra_out")
        self.ep_anchor = ExactSequential(net.ep_anchor, g, wb, f"{name}.ep_anchor")
        self.ep_nonanchor = ExactSequential(net.ep_nonanchor, g, wb, f"{name}.ep_nonanchor")

    def parts(self) -> list:
        out = [self.local_in, self.local, self.intra_q, self.intra_kv, self.intra_dw,
               *self.intra, self.intra_out, self.ep_anchor, self.ep_nonanchor]
        if self.has_prev:
            out = [self.channel_ctx, self.inter_in, self.inter, self.inter_out] + out
        return out

    def linears(self) -> list[ExactLinear]:
        lins = []
        for p in self.parts():
            lins.extend([p] if isinstance(p, ExactLinear) else p.linears())
        return lins

    def to(self, device) -> "_ExactGroup":
        for p in self.parts():
            p.to(device)
        return self


class ExactEntropyParameters:
    """The entropy-parameter path of a :class:`LicModel`, reproducible bit for bit everywhere."""

    def __init__(self, model: LicModel, cfg: ExactConfig = ExactConfig(), device="cpu") -> None:
        self.cfg = cfg
        self.grid: Grid = cfg.grid
        self.groups = list(model.context.groups)
        self.offsets = list(model.context.offsets)
        self._gain_tables = {"G": model.gains.gain, "G_inv": model.gains.inv_gain,
                             "H": model.gains.hyper_gain, "H_inv": model.gains.inv_hyper_gain}
        self.h_s = ExactSequential(model.h_s.net, self.grid, cfg.max_weight_bits, "h_s")
        self.nets = [_ExactGroup(net, cfg, f"context.{g}") for g, net in enumerate(model.context.nets)]
        self.device = torch.device("cpu")
        self.to(device)

    @classmethod
    def from_model(cls, model: LicModel, cfg: ExactConfig = ExactConfig(),
                   device="cpu") -> "ExactEntropyParameters":
        return cls(model, cfg, device)

    def to(self, device) -> "ExactEntropyParameters":
        self.device = torch.device(device)
        self.h_s.to(device)
        for net in self.nets:
            net.to(device)
        return self

    def linears(self) -> list[ExactLinear]:
        return self.h_s.linears() + [lin for net in self.nets for lin in net.linears()]

    def bound_report(self) -> dict:
        """Per-layer weight bits and log2 of the accumulator bound (all < 53 by construction)."""
        rows = [lin.report() for lin in self.linears()]
        return {"layers": rows,
                "max_acc_bound_log2": max(r["acc_bound_log2"] for r in rows),
                "min_weight_bits": min(r["weight_bits"] for r in rows)}

    def group_slice(self, g: int) -> slice:
        return slice(self.offsets[g], self.offsets[g + 1])

    # -- gains ----------------------------------------------------------------------------
    def gains(self, u: float) -> dict[str, torch.Tensor]:
        """G, G', H, H' (1×C×1×1 float64) for slider u, quantized to its u16 code first."""
        code, _ = quantize_slider(u)
        out = {k: exact_gain(t, code).to(self.device) for k, t in self._gain_tables.items()}
        out["code"] = torch.tensor([code])
        return out

    # -- hyper decoder ----------------------------------------------------------------------
    def hyper(self, z_hat: torch.Tensor, gains: dict) -> torch.Tensor:
        """Φ_h = h_s(ẑ ⊙ H').  ``z_hat`` = integer symbols + medians (exact in float32)."""
        x = snap(z_hat.to(self.device, torch.float64) * gains["H_inv"], self.grid)
        return self.h_s(x)

    # -- contexts -----------------------------------------------------------------------------
    def shared_context(self, g: int, phi: torch.Tensor, y_prev: Optional[torch.Tensor]) -> torch.Tensor:
        """[Φ_h, Φ_ch, Φ_inter] of group g; ``y_prev`` = ŷ^{<g} on the grid (None for g = 0)."""
        net = self.nets[g]
        if not net.has_prev:
            return phi
        ch = net.channel_ctx(y_prev)
        everywhere = torch.ones(y_prev.shape[-2:], dtype=torch.bool, device=y_prev.device)
        inter = snap(net.inter_in(y_prev), self.grid)
        inter = net.inter(inter, everywhere)
        inter = snap(net.inter_out(inter), self.grid)
        return torch.cat([phi, ch, inter], dim=1)

    def _params(self, head_out: torch.Tensor, Gg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, m = head_out.chunk(2, dim=1)
        sigma = torch.clamp_min(dmath.softplus(s), SCALE_BOUND)
        return scale_index(sigma * Gg), m * Gg  # μ·G exact (≤ 52 significant bits)

    def anchor_params(self, g: int, gains: dict, shared: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale index, μ·G) of group g, valid at the anchors (full B×C_g×h×w tensors)."""
        return self._params(self.nets[g].ep_anchor(shared), gains["G"][:, self.group_slice(g)])

    def nonanchor_params(self, g: int, gains: dict, shared: torch.Tensor,
                         y_anchor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale index, μ·G) of group g at the non-anchors; ``y_anchor``: decoded anchors on the grid."""
        net = self.nets[g]
        h, w = y_anchor.shape[-2:]
        amask = anchor_mask(h, w, y_anchor.device)
        y_anchor = y_anchor * amask  # defensive, as LGEMContext: nothing at non-anchors enters
        local = snap(net.local_in(y_anchor), self.grid)
        local = snap(net.local(local), self.grid)
        kv = snap(net.intra_kv(y_anchor), self.grid)
        q = _add(snap(net.intra_q(shared), self.grid), snap(net.intra_dw(kv), self.grid), self.grid)
        for blk in net.intra:
            q = blk(q, amask, kv)
        intra = snap(net.intra_out(q), self.grid)
        head = net.ep_nonanchor(torch.cat([shared, local, intra], dim=1))
        return self._params(head, gains["G"][:, self.group_slice(g)])

    def context_input(self, y_hat_gained: torch.Tensor, Gg: torch.Tensor) -> torch.Tensor:
        """ŷ = ŷ_G / G (one division) on the activation grid — what later contexts see."""
        return snap(dmath.div(y_hat_gained, Gg.expand_as(y_hat_gained)), self.grid)

    # -- the 10 sequential steps --------------------------------------------------------------
    @torch.no_grad()
    def latent_passes(self, phi: torch.Tensor, gains: dict, step: ExactStepFn,
                      y: Optional[torch.Tensor] = None) -> dict:
        """Exact counterpart of :meth:`LicModel.latent_passes` (METHODS §2.4).

        ``step(g, p, residual, scale_index)`` gets the gathered gained residual ``ȳ − μ·G``
        (float64; None when decoding) and the int64 scale indices of pass p, and returns the
        integer reconstruction q (any dtype holding integers).  Returns ``y_hat_gained``,
        ``means`` (μ·G), ``scale_index`` and ``scales`` (table σ), full-size.
        """
        B, _, h, w = phi.shape
        dev = phi.device
        amask = anchor_mask(h, w, dev)
        masks = (amask, ~amask)
        G = gains["G"]
        y_prev = None
        out_y, out_m, out_i = [], [], []
        for g in range(len(self.groups)):
            sl = self.group_slice(g)
            Gg = G[:, sl]
            shape = (B, Gg.shape[1], h, w)
            shared = self.shared_context(g, phi, y_prev)
            yq = torch.zeros(shape, dtype=torch.float64, device=dev)
            mean_full = torch.zeros(shape, dtype=torch.float64, device=dev)
            idx_full = torch.zeros(shape, dtype=torch.int64, device=dev)
            for p in (0, 1):
                if p == 0:
                    idx, mean = self.anchor_params(g, gains, shared)
                else:
                    y_anchor = self.context_input(yq, Gg) * amask
                    idx, mean = self.nonanchor_params(g, gains, shared, y_anchor)
                mg = gather(mean, masks[p])
                ig = gather(idx, masks[p])
                res = None
                if y is not None:
                    res = gather(y[:, sl].to(dev, torch.float64) * Gg, masks[p]) - mg
                rec = step(g, p, res, ig).to(dev, torch.float64)
                if not bool((rec == torch.round(rec)).all()):
                    raise ValueError("step must return integer reconstructions")
                yq = yq + scatter(mg + rec, masks[p], shape=shape)
                mean_full = mean_full + scatter(mg, masks[p], shape=shape)
                idx_full = idx_full + scatter(ig, masks[p], shape=shape)
            out_y.append(yq)
            out_m.append(mean_full)
            out_i.append(idx_full)
            ctx = self.context_input(yq, Gg)
            y_prev = ctx if y_prev is None else torch.cat([y_prev, ctx], dim=1)
        idx = torch.cat(out_i, 1)
        return {"y_hat_gained": torch.cat(out_y, 1), "means": torch.cat(out_m, 1),
                "scale_index": idx, "scales": table_std(idx)}
