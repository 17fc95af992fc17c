"""Window attention with a Laplacian-shaped relative position bias (LGEM, Khoshkhahtinat et al.,
CVPR 2024; docs/methods.md §3.4).

The bias added to every attention logit between query i and key j of one window is

    B(i, j) = a² · exp( −(|Δr_ij| + |Δc_ij|) / (2 b²) )                      (docs/methods.md §3.4)

with learnable scalars a, b per attention module (hence per channel group): a² is how much
nearby positions are favoured, b² the effective receptive field.  It is shared by the heads.

Windows of size ``w`` tile the (zero-padded) latent; a Swin shift of ``w/2`` alternates between
blocks.  The attention mask combines (1) keys that may be seen at all (``key_allowed``: all
decoded positions for the inter context, anchors only for the intra context), (2) padding, and
(3) the shifted-window region mask.  A query that has no allowed key gets a zero output, never a
uniform average over forbidden keys (that would leak undecoded values).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LaplacianBias(nn.Module):
    """``a²·exp(−L1/(2b²))`` over the ``w²×w²`` query/key offsets of a window."""

    def __init__(self, window: int) -> None:
        super().__init__()
        self.window = window
        self.a = nn.Parameter(torch.ones(()))
        self.b = nn.Parameter(torch.ones(()))
        r = torch.arange(window).repeat_interleave(window)
        c = torch.arange(window).repeat(window)
        dist = (r[:, None] - r[None, :]).abs() + (c[:, None] - c[None, :]).abs()
        self.register_buffer("l1", dist.float(), persistent=False)

    def forward(self) -> torch.Tensor:
        return self.a.square() * torch.exp(-self.l1 / (2 * self.b.square()))


def _windows(x: torch.Tensor, w: int) -> torch.Tensor:
    """B×C×H×W (H, W multiples of w) → (B·nW)×w²×C."""
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // w, w, W // w, w).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(-1, w * w, C)


def _unwindows(t: torch.Tensor, B: int, H: int, W: int, w: int) -> torch.Tensor:
    C = t.shape[-1]
    t = t.reshape(B, H // w, W // w, w, w, C).permute(0, 5, 1, 3, 2, 4)
    return t.reshape(B, C, H, W)


def _region_map(H: int, W: int, w: int, s: int, device) -> torch.Tensor:
    """Swin region ids on the rolled grid (tokens of different regions must not attend)."""
    ids = torch.zeros(H, W, dtype=torch.long, device=device)
    if s == 0:
        return ids
    cnt = 0
    for hs in (slice(0, H - w), slice(H - w, H - s), slice(H - s, H)):
        for ws in (slice(0, W - w), slice(W - w, W - s), slice(W - s, W)):
            ids[hs, ws] = cnt
            cnt += 1
    return ids


class WindowAttention(nn.Module):
    """Multi-head (shifted) window attention from query features to key/value features."""

    def __init__(self, dim: int, heads: int, window: int, shift: int = 0) -> None:
        super().__init__()
        assert dim % heads == 0
        self.dim, self.heads, self.window, self.shift = dim, heads, window, shift
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias = LaplacianBias(window)

    def forward(self, q_feat: torch.Tensor, kv_feat: torch.Tensor,
                key_allowed: torch.Tensor) -> torch.Tensor:
        """q_feat, kv_feat: B×d×H×W; key_allowed: H×W bool. Returns B×d×H×W."""
        B, d, H, W = q_feat.shape
        w, s = self.window, self.shift
        Hp, Wp = math.ceil(H / w) * w, math.ceil(W / w) * w
        pad = (0, Wp - W, 0, Hp - H)
        qf = F.pad(q_feat, pad)
        kf = F.pad(kv_feat, pad)
        allowed = F.pad(key_allowed.float(), pad)  # padding → not allowed
        if s:
            qf = torch.roll(qf, (-s, -s), dims=(2, 3))
            kf = torch.roll(kf, (-s, -s), dims=(2, 3))
            allowed = torch.roll(allowed, (-s, -s), dims=(0, 1))
        region = _region_map(Hp, Wp, w, s, q_feat.device)
        qt = _windows(qf, w)  # (B·nW)×w²×d
        kt = _windows(kf, w)
        nW = (Hp // w) * (Wp // w)
        allowed_t = _windows(allowed[None, None], w)[..., 0] > 0.5  # nW×w²
        region_t = _windows(region[None, None].float(), w)[..., 0]  # nW×w²
        mask = allowed_t[:, None, :] & (region_t[:, :, None] == region_t[:, None, :])  # nW×w²×w²
        has_any = mask.any(-1)  # nW×w²

        hd = d // self.heads
        q = self.q(qt).reshape(-1, w * w, self.heads, hd).transpose(1, 2)
        k, v = self.kv(kt).reshape(-1, w * w, 2, self.heads, hd).permute(2, 0, 3, 1, 4)
        logits = (q @ k.transpose(-2, -1)) / math.sqrt(hd) + self.bias()
        logits = logits.reshape(B, nW, self.heads, w * w, w * w)
        m = mask[None, :, None]
        logits = logits.masked_fill(~m, float("-inf"))
        logits = logits.masked_fill(~has_any[None, :, None, :, None], 0.0)
        attn = torch.softmax(logits, dim=-1)
        # rows with no allowed key: zero output; other rows: forbidden keys already weight 0
        attn = torch.where(m, attn, torch.zeros_like(attn))
        attn = attn.reshape(-1, self.heads, w * w, w * w)
        out = (attn @ v).transpose(1, 2).reshape(-1, w * w, d)
        out = self.proj(out)
        out = _unwindows(out, B, Hp, Wp, w)
        if s:
            out = torch.roll(out, (s, s), dims=(2, 3))
        return out[:, :, :H, :W]


class _ChannelNorm(nn.Module):
    """LayerNorm over channels of a B×C×H×W tensor (a per-position op: causal by design)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class TransformerBlock(nn.Module):
    """Pre-norm block: x ← x + Attn(LN(x), kv) ; x ← x + MLP(LN(x)).

    With ``cross=True`` keys/values come from a separate (fixed) tensor — the intra context
    attends from non-anchor queries to decoded anchors only.
    """

    def __init__(self, dim: int, heads: int, window: int, shift: int, cross: bool) -> None:
        super().__init__()
        self.cross = cross
        self.norm_q = _ChannelNorm(dim)
        self.norm_kv = _ChannelNorm(dim) if cross else None
        self.attn = WindowAttention(dim, heads, window, shift)
        self.norm_mlp = _ChannelNorm(dim)
        self.mlp = nn.Sequential(nn.Conv2d(dim, 2 * dim, 1), nn.GELU(), nn.Conv2d(2 * dim, dim, 1))

    def forward(self, x: torch.Tensor, key_allowed: torch.Tensor,
                kv: torch.Tensor | None = None) -> torch.Tensor:
        q = self.norm_q(x)
        kvn = self.norm_kv(kv) if self.cross else q
        x = x + self.attn(q, kvn, key_allowed)
        return x + self.mlp(self.norm_mlp(x))
