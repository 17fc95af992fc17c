"""The reproducible entropy-parameter path of an LGEM model: ẑ → gains → h_s → contexts →
(scale index, μ).

:class:`ExactEntropyParameters` mirrors the LGEM model (``LicModel``'s gains, ``h_s`` and
``LGEMContext.shared_context/anchor_params/nonanchor_params``; docs/methods.md §3.2–3.4, §5.1) and
computes everything a decoder must reproduce with exact integer sums in float64 and single IEEE
operations (docs/bitstream.md, "Reproducible decoding"; HiFiC's mean-scale hyperprior is its
sibling in :mod:`lic_core.models.hific_exact`).  Its outputs are the same bits on any thread
count, CPU vector width or GPU:

* the scale index (int64): smallest entry of the frozen table ≥ σ·G, by comparison;
* the gained mean μ·G (float64): μ on the activation grid times G (a float32 value) — the
  product has at most 52 significant bits, so it is exact;
* the context input ŷ = round(ŷ_G / G · 2^F) (one division, one rounding).

Gains come from the u16 slider code through :func:`lic_core.exact.gains.exact_gains`.

The networks are read by attribute (``model.h_s.net``, ``model.context.nets``, ``model.gains``), so
this module needs no import of the model classes.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

from ...entropy_model.checkerboard import anchor_mask, gather, gather_parity, mask_parity, scatter
from ...exact import dmath
from ...exact.fixed import ExactLinear, ExactSequential, Grid, snap, to_grid
from ...exact.gains import cached_exact_gains
from ...exact.nets import DEFAULT_CONFIG, ExactConfig, ExactTransformerBlock, add
from ...exact.tables import sigma_index
from ...transform.tiling import input_margin, scale_factor


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
    """The entropy-parameter path of an LGEM model, reproducible bit for bit everywhere.

    Activations are grid integers (:mod:`lic_core.exact.fixed`); methods take and return them,
    except :meth:`anchor_params`/:meth:`nonanchor_params` (scale index, real μ·G).
    """

    def __init__(self, model: Any, cfg: ExactConfig = DEFAULT_CONFIG, device="cpu") -> None:
        self.cfg = cfg
        self.grid: Grid = cfg.grid
        self.groups = list(model.context.groups)
        self.offsets = list(model.context.offsets)
        self._units = model.gains
        self.h_s = ExactSequential(model.h_s.net, self.grid, cfg.max_weight_bits, "h_s")
        # tiles (issue 28, :mod:`.entropy_tiles`): h_s's up-sampling and receptive margin in ẑ
        up, down = scale_factor(model.h_s.net)
        if down != 1:
            raise NotImplementedError("h_s must only up-sample")
        self.h_s_up, self.h_s_margin = up, input_margin(model.h_s.net, 0)
        self.nets = [_ExactGroup(net, cfg, f"context.{g}") for g, net in enumerate(model.context.nets)]
        self.device = torch.device("cpu")
        self._gain_cache: dict[int, dict] = {}
        self.to(device)

    @classmethod
    def from_model(cls, model: Any, cfg: ExactConfig = DEFAULT_CONFIG,
                   device="cpu") -> "ExactEntropyParameters":
        return cls(model, cfg, device)

    def to(self, device) -> "ExactEntropyParameters":
        self.device = torch.device(device)
        self.h_s.to(device)
        for net in self.nets:
            net.to(device)
        self._gain_cache = {}
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
    def gains_for_code(self, code: int) -> dict[str, torch.Tensor]:
        """G, G', H, H' (1×C×1×1 float64) at u16 slider ``code`` (cached per code)."""
        return cached_exact_gains(self._gain_cache, self._units, code, self.device)

    def gains(self, u: float) -> dict[str, torch.Tensor]:
        """Gains for slider u, quantized to its u16 code first."""
        from ...rate.gain import quantize_slider

        return self.gains_for_code(quantize_slider(u)[0])

    # -- hyper decoder ----------------------------------------------------------------------
    def hyper(self, z_hat: torch.Tensor, gains: dict) -> torch.Tensor:
        """Φ_h = h_s(ẑ ⊙ H') on the grid.  ``z_hat`` = integer symbols + medians (float32 exact)."""
        z = z_hat.to(self.device, torch.float64) * gains["H_inv"]  # one rounding
        return self.h_s(to_grid(z, self.grid))

    # -- contexts -----------------------------------------------------------------------------
    def shared_context(self, g: int, phi: torch.Tensor, y_prev: Optional[torch.Tensor]) -> torch.Tensor:
        """[Φ_h, Φ_ch, Φ_inter] of group g; ``y_prev`` = ŷ^{<g} on the grid (None for g = 0)."""
        if not self.nets[g].has_prev:
            return phi
        return torch.cat([phi, *self.group_features(g, y_prev)], dim=1)

    def group_features(self, g: int, y_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Φ_ch, Φ_inter) of group g > 0 from ŷ^{<g} on the grid (steps ① ②)."""
        net = self.nets[g]
        ch = net.channel_ctx(y_prev)
        everywhere = torch.ones(y_prev.shape[-2:], dtype=torch.bool, device=y_prev.device)
        inter = snap(net.inter_in(y_prev), self.grid, inplace=True)
        inter = net.inter(inter, everywhere)
        inter = snap(net.inter_out(inter), self.grid, inplace=True)
        return ch, inter

    def _params(self, head_out: torch.Tensor, Gg: torch.Tensor, grid_mean: bool = False):
        """(scale index, μ·G, σ·G) from a head's grid output ``[s, m]`` and the group's gains;
        with ``grid_mean`` μ is returned as its grid integers m (:meth:`gained_mean` of them is
        μ·G)."""
        s, m = head_out.chunk(2, dim=1)
        idx, sg = sigma_index(dmath.softplus(s * self.grid.step), Gg)
        return idx, (m if grid_mean else self.gained_mean(m, Gg)), sg

    def gained_mean(self, m: torch.Tensor, Gg: torch.Tensor) -> torch.Tensor:
        """μ·G = (m·2^−F)·G of grid integers m (any integer or float dtype holding them):
        exact scaling, one multiplication — μ·G is exact (≤ 52 significant bits)."""
        return (m.to(torch.float64) * self.grid.step) * Gg

    def _head(self, head, x: torch.Tensor, gains: dict, g: int, positions: Optional[torch.Tensor]):
        """An entropy-parameter head (1×1 convs: position-wise) and its parameters — on all
        positions, or only on ``positions`` (gathered B×C×N; the values there are the same bits)."""
        if positions is not None:
            x = gather(x, positions)[..., None]  # B×C×N×1: a 1-pixel-wide image
        out = self._params(head(x), gains["G"][:, self.group_slice(g)])
        return out if positions is None else tuple(t[..., 0] for t in out)

    def anchor_params(self, g: int, gains: dict, shared: torch.Tensor, gathered: bool = False):
        """(scale index, μ·G, σ·G) of group g, valid at the anchors (full B×C_g×h×w tensors, or
        with ``gathered`` B×C_g×N at the anchors only)."""
        pos = anchor_mask(*shared.shape[-2:], shared.device) if gathered else None
        return self._head(self.nets[g].ep_anchor, shared, gains, g, pos)

    def nonanchor_params(self, g: int, gains: dict, shared: torch.Tensor, y_anchor: torch.Tensor,
                         gathered: bool = False):
        """(scale index, μ·G, σ·G) of group g at the non-anchors; ``y_anchor``: decoded anchors
        of g on the grid (zeros elsewhere); ``gathered``: B×C_g×N at the non-anchors only, else
        B×C_g×h×w tensors valid at the non-anchors (zeros at the anchors)."""
        h, w = y_anchor.shape[-2:]
        pos = ~anchor_mask(h, w, y_anchor.device)
        x = self.nonanchor_inputs(g, shared, y_anchor, (slice(0, h), slice(0, w)), pos)
        out = self.head_params(g, self.nets[g].ep_nonanchor, x, gains)
        if gathered:
            return out
        return tuple(None if t is None else scatter(t, pos, shape=(*t.shape[:2], h, w))
                     for t in out)

    def nonanchor_inputs(self, g: int, shared, y_anchor: torch.Tensor,
                         core: tuple[slice, slice], pos: torch.Tensor,
                         owned: bool = False) -> torch.Tensor:
        """The non-anchor head's input [shared, Φ_local, Φ_intra] of group g (steps ⑤ ⑥),
        B×C×N float64 at the positions ``pos`` (a bool mask of the ``core`` of the window:
        the pass's positions there, raster order).  ``shared``: the window's shared context
        (float64 grid integers), or a list of its parts in channel order (any dtype holding
        the grid integers exactly, e.g. int32) — only their values at ``pos`` are read.
        ``owned``: ``y_anchor`` is the caller's fresh tensor, masked in place.

        The intra blocks are cross-attention (keys: the fixed kv of the anchors) and otherwise
        position-wise: a non-anchor's output depends on its own query alone, so the queries
        and everything after them (norms, MLPs, the output layer) run at ``pos`` only — the
        same values there as on the whole window (:meth:`ExactWindowAttention.gathered`)."""
        net = self.nets[g]
        h, w = y_anchor.shape[-2:]
        amask = anchor_mask(h, w, y_anchor.device)
        # defensive, as LGEMContext: nothing at non-anchors enters
        y_anchor = y_anchor.mul_(amask) if owned else y_anchor * amask
        gr = self.grid
        local = snap(net.local_in(y_anchor), gr, inplace=True)
        local = snap(net.local(local), gr, inplace=True)
        kv = snap(net.intra_kv(y_anchor), gr, inplace=True)
        del y_anchor
        dw = snap(net.intra_dw(kv), gr, inplace=True)
        sel = torch.zeros((h, w), dtype=torch.bool, device=kv.device)
        sel[core] = pos
        cols = sel.view(-1).nonzero()[:, 0]  # the core's pass positions, raster order
        where = torch.full((h * w,), -1, dtype=torch.int64, device=kv.device)
        where[cols] = torch.arange(cols.numel(), device=kv.device)

        parity = mask_parity(pos)  # a checkerboard pass (always, from the codecs): strided copies

        def at(t: torch.Tensor) -> torch.Tensor:
            if parity is not None:
                return gather_parity(t[..., core[0], core[1]], parity)
            return t.reshape(*t.shape[:2], -1).index_select(2, cols)

        parts = shared if isinstance(shared, (list, tuple)) else [shared]
        sh = at(parts[0]) if len(parts) == 1 else torch.cat([at(t) for t in parts], dim=1)
        sh = sh.to(torch.float64)  # grid integers: exact (a no-op for float64)
        del parts
        q = add(snap(net.intra_q(sh[..., None]), gr, inplace=True)[..., 0], at(dw), gr)
        del dw
        for blk in net.intra:
            q = blk.gathered(q, where.view(h, w), amask, kv)
        intra = snap(net.intra_out(q[..., None]), gr, inplace=True)[..., 0]
        return torch.cat([sh, at(local), intra], dim=1)

    def head_params(self, g: int, head, x: torch.Tensor, gains: dict, grid_mean: bool = False):
        """(scale index, μ·G, σ·G) of gathered head inputs ``x`` (B×C×N): the 1×1 head on a
        1-pixel-wide image, as :meth:`anchor_params` with ``gathered`` (``grid_mean``: μ's grid
        integers instead of μ·G)."""
        out = self._params(head(x[..., None]), gains["G"][:, self.group_slice(g)], grid_mean)
        return tuple(t[..., 0] for t in out)

    def context_input(self, y_hat_gained: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        """ŷ = ŷ_G / G (one division) on the activation grid — what later contexts see."""
        y = dmath.div(y_hat_gained.to(torch.float64), G.expand_as(y_hat_gained))
        # to_grid's ×2^F, rounding and clamp, in place on the fresh quotient (same operations)
        return snap(y.mul_(self.grid.scale), self.grid, inplace=True)
