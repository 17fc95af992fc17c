"""Laplacian-guided entropy model (LGEM; Khoshkhahtinat et al., CVPR 2024) on ELIC's uneven
channel groups with a checkerboard two-pass context (docs/methods.md §3.2–3.4; the steps below
are those of the table in §3.4).

Per group g (C_g channels; ŷ^{<g} = all earlier groups, already decoded):

====  ===========================================================  =========================
 ①    channel context  Φ_ch  = g_ch(ŷ^{<g})                          (g > 0)
 ②    global inter     Φ_inter = Transformer over ŷ^{<g}, Laplacian bias (g > 0)
 ③    anchor params    EP_a([Φ_h, Φ_ch, Φ_inter]) → (σ, μ)
 ④    quantize/decode the anchors of g                                (done by the caller)
 ⑤    local            Φ_local = checkerboard-masked 5×5 conv over the anchors of g
 ⑥    global intra     queries at non-anchors from [Φ_h, Φ_ch, Φ_inter] + depthwise 3×3 over
                       the anchors; keys/values = anchors of g only; Laplacian bias (a_g, b_g)
 ⑦    non-anchor params EP_n([Φ_h, Φ_ch, Φ_inter, Φ_local, Φ_intra]) → (σ, μ)
 ⑧    quantize/decode the non-anchors of g                            (done by the caller)
====  ===========================================================  =========================

Causality is exact: the anchor parameters of g see only Φ_h and ŷ^{<g}; the non-anchor
parameters additionally see the *anchor-only* tensor of group g (non-anchor positions are zero)
through the masked conv (odd taps only) and attention whose keys are masked to anchors.  The
caller is responsible for passing anchor-only tensors; :meth:`LGEMContext.nonanchor_params`
re-applies the mask defensively.  tests/core/test_entropy_model_causality.py proves it.

All predictions are made in the *y domain* (independent of the rate); the codec multiplies μ
and σ by the gain of the chosen rate (docs/methods.md §5.1) before quantizing.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .attention import TransformerBlock
from .checkerboard import CheckerboardMaskedConv2d, anchor_mask
from .gaussian import SCALE_BOUND


def _ep_head(cin: int, cout: int, hidden: int) -> nn.Sequential:
    """Entropy-parameter head: three 1×1 convs (ELIC's parameter aggregation)."""
    return nn.Sequential(nn.Conv2d(cin, hidden, 1), nn.GELU(),
                         nn.Conv2d(hidden, hidden, 1), nn.GELU(),
                         nn.Conv2d(hidden, cout, 1))


class _GroupContext(nn.Module):
    """All context networks of one channel group."""

    def __init__(self, cfg: ModelConfig, g: int) -> None:
        super().__init__()
        C = cfg.groups[g]
        K = sum(cfg.groups[:g])
        c = min(2 * C, cfg.ctx_max)
        d = cfg.attn_dim
        self.has_prev = g > 0
        hidden = min(max(2 * C, 64), cfg.ep_hidden_max)
        a_in = cfg.hyper_out + (2 * c if self.has_prev else 0)
        if self.has_prev:
            mid = max(min(K, cfg.ctx_max), 2 * c // 2)
            self.channel_ctx = nn.Sequential(nn.Conv2d(K, mid, 3, padding=1), nn.ReLU(),
                                             nn.Conv2d(mid, c, 3, padding=1))
            self.inter_in = nn.Conv2d(K, d, 1)
            self.inter = TransformerBlock(d, cfg.attn_heads, cfg.attn_window, 0, cross=False)
            self.inter_out = nn.Conv2d(d, c, 1)
        # local: project without bias (zeros at non-anchors stay zeros), then masked conv
        lp = min(C, 32)
        self.local_in = nn.Conv2d(C, lp, 1, bias=False)
        self.local = CheckerboardMaskedConv2d(lp, c, cfg.local_kernel)
        # intra: cross-attention from non-anchor queries to anchor keys
        self.intra_q = nn.Conv2d(a_in, d, 1)
        self.intra_kv = nn.Conv2d(C, d, 1, bias=False)
        self.intra_dw = CheckerboardMaskedConv2d(d, d, 3, bias=False, groups=d)  # depthwise
        self.intra = nn.ModuleList([
            TransformerBlock(d, cfg.attn_heads, cfg.attn_window,
                             (cfg.attn_window // 2) * (i % 2), cross=True)
            for i in range(cfg.intra_depth)])
        self.intra_out = nn.Conv2d(d, c, 1)
        self.ep_anchor = _ep_head(a_in, 2 * C, hidden)
        self.ep_nonanchor = _ep_head(a_in + 2 * c, 2 * C, hidden)


def _split_params(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Head output → (σ, μ) with σ = softplus(·) bounded below at 0.11 (docs/methods.md §3.4)."""
    s, m = p.chunk(2, dim=1)
    return F.softplus(s).clamp_min(SCALE_BOUND), m


class LGEMContext(nn.Module):
    """The context model over all groups; stateless between calls (pure functions of inputs)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.groups = list(cfg.groups)
        self.offsets = [sum(self.groups[:g]) for g in range(len(self.groups) + 1)]
        self.nets = nn.ModuleList([_GroupContext(cfg, g) for g in range(len(self.groups))])

    def group_slice(self, g: int) -> slice:
        return slice(self.offsets[g], self.offsets[g + 1])

    def shared_context(self, g: int, phi_h: torch.Tensor,
                       y_prev: torch.Tensor | None) -> torch.Tensor:
        """[Φ_h, Φ_ch, Φ_inter] for group g (steps ①②). ``y_prev``: ŷ^{<g} (None for g = 0)."""
        net = self.nets[g]
        if not net.has_prev:
            return phi_h
        ch = net.channel_ctx(y_prev)
        everywhere = torch.ones(y_prev.shape[-2:], dtype=torch.bool, device=y_prev.device)
        inter = net.inter_out(net.inter(net.inter_in(y_prev), everywhere))
        return torch.cat([phi_h, ch, inter], dim=1)

    def anchor_params(self, g: int, shared: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(σ, μ) of group g, valid at anchor positions (step ③)."""
        return _split_params(self.nets[g].ep_anchor(shared))

    def nonanchor_params(self, g: int, shared: torch.Tensor,
                         y_anchor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(σ, μ) of group g, valid at non-anchor positions (steps ⑤–⑦).

        ``y_anchor``: B×C_g×h×w holding the decoded anchors of g (zeros elsewhere).
        """
        net = self.nets[g]
        h, w = y_anchor.shape[-2:]
        amask = anchor_mask(h, w, y_anchor.device)
        y_anchor = y_anchor * amask  # defensive: nothing at non-anchors may enter
        local = net.local(net.local_in(y_anchor))
        kv = net.intra_kv(y_anchor)
        q = net.intra_q(shared) + net.intra_dw(kv)
        for blk in net.intra:
            q = blk(q, amask, kv)
        intra = net.intra_out(q)
        return _split_params(net.ep_nonanchor(torch.cat([shared, local, intra], dim=1)))
