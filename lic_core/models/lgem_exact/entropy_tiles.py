"""The exact LGEM entropy parameters computed tile by tile (issue 28; docs/methods.md §3.2–3.4).

Why: per latent position the context networks hold several hundred float64 channels and the
window attention w² logits per head, about 10 KB — 2 GB for the 187 000 latent positions of a
48 MP photo if each pass ran on the whole latent at once.

Every network of the entropy model is local: h_s and the context convolutions reach k//2
positions, LayerNorm and the heads are per position, and the window attention (shifted or not)
mixes the positions of one w×w window only.  So each step is computed on tiles of the latent grid:

* cores start on multiples of the attention window w (even, so the checkerboard parity of a tile
  is the image's, and the windows of a tile are the image's windows — for a shifted block the
  tile's wrapped last window only ever holds halo positions);
* each core's window reaches ``margin`` positions further (a multiple of w), where ``margin``
  bounds how far an output depends on its inputs: branches take the larger reach, chains add
  up, a self-attention block reaches w − 1 further, a cross-attention block's keys and values
  (the intra context's fixed anchor tensor) reach w − 1 from where they come;
* clipped at the image border, a window has exactly the padding the whole latent has there.

Every value of a core then comes from the same inputs through the same single IEEE operations
and exact sums as on the whole latent: the parameters are the same bits for every tile size
(``tests/core/test_tiles.py`` checks it at small tiles).  Between steps the features every pass
needs — Φ_h, and Φ_ch, Φ_inter of the current group — are kept whole as int32 (grid integers
are below 2^(R+F) = 2^28, so the conversion is exact), 4 bytes per channel instead of 8.

The parameters of a pass are returned gathered (``B×C×N``, raster order of the pass,
:func:`lic_core.entropy_model.checkerboard.gather`): a core's positions of one latent row are one
run of that order, so each tile writes its rows straight into place.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from ...entropy_model.checkerboard import ANCHOR_PARITY, anchor_mask, gather_parity
from ...exact.fixed import ExactLinear, ExactSequential
from ...exact.nets import ExactTransformerBlock
from ...transform.tiling import tile_budget
from .entropy import ExactEntropyParameters

#: bytes a tile's window needs per latent position and per channel of the widest non-anchor
#: input (shared context + local + intra features, the head's hidden layers, the intra blocks;
#: measured on lic-lgem-cpu with VmHWM on a 200×200 window: 9.0 KB for its 384 channels)
BYTES_PER_CHANNEL = 24.0


def _conv_reach(lin: ExactLinear) -> int:
    """How far (latent positions) a stride-1 convolution's output depends on its input."""
    kh, kw = lin.weight.shape[-2:]
    return max(kh // 2, kw // 2)


def _seq_reach(seq: ExactSequential) -> int:
    return sum(_conv_reach(layer.linear) for layer in seq.layers)


def _blocks_reach(blocks: list[ExactTransformerBlock], reach: int, kv_reach: int = 0) -> int:
    """Reach of a chain of Transformer blocks whose input reaches ``reach``: a self-attention
    block mixes one (shifted) window, w − 1 positions further; a cross-attention block adds
    nothing to its queries' reach — its keys and values (reaching ``kv_reach``) come from one
    fixed tensor, seen through one window.  Norms and MLPs are per position."""
    for blk in blocks:
        w = blk.attn.window - 1
        reach = max(reach, kv_reach + w) if blk.cross else reach + w
    return reach


class TiledEntropy:
    """Tile plan and tiled steps of an :class:`ExactEntropyParameters` (same bits as whole)."""

    def __init__(self, exact: ExactEntropyParameters) -> None:
        self.exact = exact
        windows = {b.attn.window for net in exact.nets
                   for b in ([net.inter] if net.has_prev else []) + list(net.intra)}
        self.align = math.lcm(2, *windows)

        def up(m: int) -> int:
            return -(-m // self.align) * self.align

        self.shared_margin, self.nonanchor_margin = [], []
        for net in exact.nets:
            sh = max(_seq_reach(net.channel_ctx), _blocks_reach([net.inter], 0)) \
                if net.has_prev else 0
            # queries: intra_q (1×1) + the depthwise conv of kv; kv: intra_kv (1×1) of ŷ
            intra = _blocks_reach(net.intra, _conv_reach(net.intra_dw), 0)
            self.shared_margin.append(up(sh))
            self.nonanchor_margin.append(up(max(_conv_reach(net.local), intra)))
        self.widest = max(lin.weight.shape[0] for lin in exact.linears() if lin.kind != "linear")
        self.widest = max(self.widest, max(self._nonanchor_channels(g)
                                           for g in range(len(exact.nets))))

    def _nonanchor_channels(self, g: int) -> int:
        return int(self.exact.nets[g].ep_nonanchor.layers[0].linear.weight.shape[1])

    # -- plan --------------------------------------------------------------------------------
    def tile_size(self, budget: int = 0) -> int:
        """Core side (latents, a multiple of the alignment) whose non-anchor window fits
        ``budget`` bytes (0: half of :func:`~lic_core.transform.tiling.tile_budget` — while y is
        coded the latents themselves are held too: ŷ⊙G, y, Φ_h and the group features)."""
        per_pos = BYTES_PER_CHANNEL * self.widest
        side = math.isqrt(int((budget or tile_budget() // 2) / per_pos))
        side -= 2 * max(self.nonanchor_margin)
        return max(self.align, side // self.align * self.align)

    def spans(self, n: int, tile: int, margin: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """(core, window) along an axis of n latents: cores cut at multiples of ``tile``."""
        tile = max(self.align, tile // self.align * self.align)
        out = []
        for c0 in range(0, n, tile):
            c1 = min(n, c0 + tile)
            out.append(((c0, c1), (max(0, c0 - margin), min(n, c1 + margin))))
        return out

    def tiles(self, h: int, w: int, tile: int, margin: int):
        return [(r, c) for r in self.spans(h, tile, margin) for c in self.spans(w, tile, margin)]

    # -- whole-latent features, tile by tile ----------------------------------------------------
    def hyper(self, z_hat: torch.Tensor, gains: dict, tile: int) -> torch.Tensor:
        """Φ_h (int32 B×C×h×w, h = 4·hz) = h_s(ẑ ⊙ H') on the grid, tile by tile."""
        ex = self.exact
        up, m = ex.h_s_up, ex.h_s_margin
        B, _, hz, wz = z_hat.shape
        out: Optional[torch.Tensor] = None
        zt = max(1, tile // up)
        for (r0, r1), (a0, a1) in self.spans_z(hz, zt, m):
            for (c0, c1), (b0, b1) in self.spans_z(wz, zt, m):
                phi = ex.hyper(z_hat[..., a0:a1, b0:b1], gains)
                if out is None:
                    out = torch.empty((B, phi.shape[1], hz * up, wz * up), dtype=torch.int32,
                                      device=phi.device)
                out[..., r0 * up:r1 * up, c0 * up:c1 * up] = \
                    phi[..., (r0 - a0) * up:(r1 - a0) * up, (c0 - b0) * up:(c1 - b0) * up]
                del phi
        assert out is not None
        return out

    @staticmethod
    def spans_z(n: int, tile: int, margin: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        return [((c0, min(n, c0 + tile)), (max(0, c0 - margin), min(n, c0 + tile + margin)))
                for c0 in range(0, n, tile)]

    def group_features(self, g: int, y_prev_gained: torch.Tensor, gains: dict,
                       tile: int) -> torch.Tensor:
        """[Φ_ch, Φ_inter] of group g > 0 (int32 B×2c×h×w) from ŷ⊙G of the earlier groups."""
        ex = self.exact
        B, K, h, w = y_prev_gained.shape
        G = gains["G"][:, :K]
        out: Optional[torch.Tensor] = None
        for (r0, r1), (a0, a1) in self.spans(h, tile, self.shared_margin[g]):
            for (c0, c1), (b0, b1) in self.spans(w, tile, self.shared_margin[g]):
                y_prev = ex.context_input(y_prev_gained[..., a0:a1, b0:b1], G)
                feats = torch.cat(ex.group_features(g, y_prev), dim=1)
                del y_prev
                if out is None:
                    out = torch.empty((B, feats.shape[1], h, w), dtype=torch.int32,
                                      device=feats.device)
                out[..., r0:r1, c0:c1] = feats[..., r0 - a0:r1 - a0, c0 - b0:c1 - b0]
                del feats
        assert out is not None
        return out

    # -- passes ---------------------------------------------------------------------------------
    def _pass_mask(self, rows: tuple[int, int], cols: tuple[int, int], parity: int, device):
        """Pass positions of a core (its own h×w grid; the core starts on even coordinates)."""
        m = anchor_mask(rows[1] - rows[0], cols[1] - cols[0], device)
        return m if parity == ANCHOR_PARITY else ~m

    @staticmethod
    def _place(outs: list, parts: tuple, rows: tuple[int, int], cols: tuple[int, int],
               w: int, parity: int) -> None:
        """Write a core's gathered values (raster order of the core) into the pass's B×C×N
        tensors: row i's positions of the pass are the columns j ≡ i + parity (mod 2), ranked
        j // 2 after the ⌈…⌉/⌊…⌋ positions of every earlier row.  Rows whose runs follow each
        other in the pass's order (a core as wide as the latent: all of them) are written as one
        run — the same values in the same places, one copy instead of one per row."""
        n_even = (w - parity % 2 + 1) // 2  # positions of the pass in an even row
        runs: list[list[int]] = []  # [start in the pass, length]
        for i in range(*rows):
            j0 = (i + parity) % 2  # first column of the pass in row i
            before = (i // 2) * w + (i % 2) * n_even  # positions in the rows above
            first = cols[0] + ((j0 - cols[0]) % 2)
            n = max(0, (cols[1] - first + 1) // 2)
            if n == 0:
                continue
            start = before + first // 2
            if runs and runs[-1][0] + runs[-1][1] == start:
                runs[-1][1] += n
            else:
                runs.append([start, n])
        k = 0
        for start, n in runs:
            for out, part in zip(outs, parts):
                if out is not None:
                    out[..., start:start + n] = part[..., k:k + n]
            k += n

    def _pass_outputs(self, B: int, C: int, n: int, device, scales: bool) -> list:
        # the scale index (< 64) as int16: a quarter of int64's memory, the step runner widens
        # each slice it hands to the quantizer; μ as its grid integers (int32, exact), μ·G is
        # made per channel slice when the step needs it
        return [torch.empty((B, C, n), dtype=torch.int16, device=device),
                torch.empty((B, C, n), dtype=torch.int32, device=device),
                torch.empty((B, C, n), dtype=torch.float64, device=device) if scales else None]

    @staticmethod
    def pass_size(h: int, w: int, parity: int) -> int:
        """Positions of a checkerboard pass on an h×w grid."""
        n_par = (h * w + 1) // 2  # anchors ((i + j) even) are the larger half
        return n_par if parity == ANCHOR_PARITY else h * w - n_par

    def anchor(self, g: int, phi: torch.Tensor, feats: Optional[torch.Tensor], gains: dict,
               tile: int, scales: bool = True):
        """(scale index (int16), μ's grid integers (int32), σ·G or None) of group g's anchors,
        gathered B×C_g×N."""
        ex = self.exact
        B, _, h, w = phi.shape
        C = ex.groups[g]
        outs = self._pass_outputs(B, C, self.pass_size(h, w, ANCHOR_PARITY), phi.device, scales)
        head = ex.nets[g].ep_anchor
        for rows, cols in ((r, c) for r, _ in self.spans(h, tile, 0)
                           for c, _ in self.spans(w, tile, 0)):
            # the core's anchors (its own checkerboard, :meth:`_pass_mask`), raster order:
            # strided copies of the core, the values of ``[..., rows, cols][:, :, mask]``
            core = (..., slice(*rows), slice(*cols))
            x = [gather_parity(phi[core], ANCHOR_PARITY)]
            if feats is not None:
                x.append(gather_parity(feats[core], ANCHOR_PARITY))
            parts = ex.head_params(g, head, torch.cat(x, dim=1).to(torch.float64), gains,
                                   grid_mean=True)
            del x
            self._place(outs, parts, rows, cols, w, ANCHOR_PARITY)
        return tuple(outs)

    def nonanchor(self, g: int, phi: torch.Tensor, feats: Optional[torch.Tensor],
                  y_group_gained: torch.Tensor, gains: dict, tile: int, scales: bool = True):
        """(scale index (int16), μ's grid integers (int32), σ·G or None) of group g's
        non-anchors, gathered B×C_g×N, from the group's decoded anchors ``y_group_gained``
        (ŷ⊙G at the anchors, zeros elsewhere)."""
        ex = self.exact
        B, _, h, w = phi.shape
        C = ex.groups[g]
        parity = 1 - ANCHOR_PARITY
        outs = self._pass_outputs(B, C, self.pass_size(h, w, parity), phi.device, scales)
        head = ex.nets[g].ep_nonanchor
        Gg = gains["G"][:, ex.group_slice(g)]
        m = self.nonanchor_margin[g]
        for (rows, (a0, a1)), (cols, (b0, b1)) in self.tiles(h, w, tile, m):
            # the shared features stay int32 windows: only their values at the core's pass
            # positions enter the head (gathered, then widened to float64 — exact)
            shared = [phi[..., a0:a1, b0:b1]]
            if feats is not None:
                shared.append(feats[..., a0:a1, b0:b1])
            y_anchor = ex.context_input(y_group_gained[..., a0:a1, b0:b1], Gg)
            core = (slice(rows[0] - a0, rows[1] - a0), slice(cols[0] - b0, cols[1] - b0))
            pos = self._pass_mask(rows, cols, parity, phi.device)
            x = ex.nonanchor_inputs(g, shared, y_anchor, core, pos, owned=True)
            del y_anchor, shared
            parts = ex.head_params(g, head, x, gains, grid_mean=True)
            del x
            self._place(outs, parts, rows, cols, w, parity)
        return tuple(outs)

