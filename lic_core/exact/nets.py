"""Exact counterparts of the blocks of the entropy model and of g_s (docs/determinism.md).

Each class takes the float module, quantizes it once (:class:`~lic_core.exact.fixed.ExactLinear`)
and evaluates it with exact integer sums held in float64 plus single IEEE operations:

* :class:`ExactLayerNorm` — centred sums ``n·x − Σx`` (exact integers), a per-row power-of-two
  right shift before squaring (keeps ``Σ c² < 2^53``), one division, one sqrt, one division.
* :class:`ExactWindowAttention` — q, k, v re-quantized to grids whose products stay below 2^53;
  softmax = exact row max, deterministic exp, probabilities as integers (2^P for the max), exact
  ``Σ e·v`` and ``Σ e``, one division.  The Laplacian bias a²·exp(−L1/2b²) is a float64 constant
  computed with :func:`lic_core.exact.dmath.exp`.
* :class:`ExactTransformerBlock`, :class:`ExactResidualBottleneck`, :class:`ExactAttentionBlock`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..entropy_model.attention import TransformerBlock, WindowAttention, _region_map, _unwindows, _windows
from ..transform.layers import AttentionBlock, ResidualBottleneck
from . import dmath
from .fixed import EXACT_LIMIT, ExactLinear, ExactSequential, Grid, snap


@dataclass(frozen=True)
class ExactConfig:
    """Precision choices of the exact path (docs/determinism.md, "choice of F, R, W").

    frac_bits/range_bits: the activation grid 2^−F·ℤ ∩ [−2^R, 2^R].
    max_weight_bits: cap on per-layer weight precision (the 2^53 bound may choose fewer).
    qk_frac_bits/qk_range_bits: grid of attention queries and keys (their products are summed).
    v_range_bits: range of attention values (fraction bits = frac_bits).
    softmax_bits: P, the integer weight of the largest key in a softmax row is 2^P.
    """

    frac_bits: int = 16
    range_bits: int = 12
    max_weight_bits: int = 24
    qk_frac_bits: int = 16
    qk_range_bits: int = 8
    v_range_bits: int = 10
    softmax_bits: int = 20

    @property
    def grid(self) -> Grid:
        return Grid(self.frac_bits, self.range_bits)


def _add(a: torch.Tensor, b: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Sum of two grid tensors (exact), clamped back to the grid range."""
    lim = float(2 ** grid.range_bits)
    return torch.clamp(a + b, -lim, lim)


class ExactLayerNorm:
    """LayerNorm over the channel axis (dim 1 of B×C×H×W, or the last axis of tokens)."""

    def __init__(self, ln: torch.nn.LayerNorm, grid: Grid) -> None:
        self.grid = grid
        self.n = int(ln.normalized_shape[0])
        self.gamma = ln.weight.detach().to("cpu", torch.float64)
        self.beta = ln.bias.detach().to("cpu", torch.float64)
        n = self.n
        self.log2n = max(1, math.ceil(math.log2(n)))
        # |n·x − Σx| ≤ 2n·2^(R+F) must itself be exact
        if 2 * n * grid.max_int >= EXACT_LIMIT:
            raise ValueError("LayerNorm width too large for the activation grid")
        # eps·n²·4^F: the variance regularizer in the integer units used below
        self.eps_term = float(ln.eps) * float(n * n) * float(4 ** grid.frac_bits)
        self.keep_bits = (52 - self.log2n) // 2  # n · (2^keep)² ≤ 2^52

    def to(self, device) -> "ExactLayerNorm":
        self.gamma, self.beta = self.gamma.to(device), self.beta.to(device)
        return self

    def __call__(self, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
        n, g = self.n, self.grid
        xi = x * float(2 ** g.frac_bits)  # integers, exact
        c = xi * float(n) - xi.sum(dim=dim, keepdim=True)  # n·(x − mean) in integer units, exact
        _, e = torch.frexp(c.abs().amax(dim=dim, keepdim=True))  # max|c| < 2^e
        s = torch.clamp_min(e.to(torch.int64) - self.keep_bits, 0)
        cs = torch.round(c * dmath.pow2(-s))  # exact scaling, then one rounding
        v = (cs * cs).sum(dim=dim, keepdim=True)  # exact: n·(2^keep)² ≤ 2^52
        # (x − μ)/sqrt(var + eps) = c / sqrt(Σc²/n + eps·n²·4^F), Σc² ≈ v·4^s
        den = torch.sqrt(dmath.div(v * dmath.pow2(2 * s), float(n)) + self.eps_term)
        y = dmath.div(c, den)
        shape = [1] * x.dim()
        shape[dim] = n
        y = y * self.gamma.view(shape)
        y = y + self.beta.view(shape)
        return snap(y, g)


class ExactWindowAttention:
    """:class:`~lic_core.entropy_model.attention.WindowAttention` with exact sums."""

    def __init__(self, att: WindowAttention, cfg: ExactConfig, name: str = "") -> None:
        g = cfg.grid
        self.grid = g
        self.dim, self.heads, self.window, self.shift = att.dim, att.heads, att.window, att.shift
        self.hd = att.dim // att.heads
        self.q = ExactLinear(att.q, g, cfg.max_weight_bits, name=f"{name}.q")
        self.kv = ExactLinear(att.kv, g, cfg.max_weight_bits, name=f"{name}.kv")
        self.proj = ExactLinear(att.proj, g, cfg.max_weight_bits, name=f"{name}.proj")
        self.qk_grid = Grid(cfg.qk_frac_bits, cfg.qk_range_bits)
        self.v_grid = Grid(g.frac_bits, cfg.v_range_bits)
        self.P = cfg.softmax_bits
        w2 = self.window * self.window
        if self.hd * self.qk_grid.max_int ** 2 >= EXACT_LIMIT:
            raise ValueError(f"{name}: q·k sums may exceed 2^53 (head dim {self.hd})")
        if w2 * 2 ** self.P * self.v_grid.max_int >= EXACT_LIMIT:
            raise ValueError(f"{name}: softmax·v sums may exceed 2^53")
        self.bounds = {"qk_log2": math.log2(self.hd * self.qk_grid.max_int ** 2),
                       "pv_log2": math.log2(w2 * 2 ** self.P * self.v_grid.max_int)}
        a = att.bias.a.detach().to("cpu", torch.float64)
        b = att.bias.b.detach().to("cpu", torch.float64)
        l1 = att.bias.l1.detach().to("cpu", torch.float64)
        # a²·exp(−L1/(2b²)): squares and the division are single IEEE ops, exp is deterministic
        self.bias = (a * a) * dmath.exp(-dmath.div(l1, (b * b) * 2.0))
        self.sqrt_hd = math.sqrt(self.hd)  # correctly rounded (IEEE sqrt)

    def linears(self) -> list[ExactLinear]:
        return [self.q, self.kv, self.proj]

    def to(self, device) -> "ExactWindowAttention":
        for lin in self.linears():
            lin.to(device)
        self.bias = self.bias.to(device)
        return self

    def __call__(self, q_feat: torch.Tensor, kv_feat: torch.Tensor,
                 key_allowed: torch.Tensor) -> torch.Tensor:
        B, d, H, W = q_feat.shape
        w, s = self.window, self.shift
        Hp, Wp = math.ceil(H / w) * w, math.ceil(W / w) * w
        pad = (0, Wp - W, 0, Hp - H)
        qf, kf = F.pad(q_feat, pad), F.pad(kv_feat, pad)
        allowed = F.pad(key_allowed.to(torch.float64), pad)
        if s:
            qf = torch.roll(qf, (-s, -s), dims=(2, 3))
            kf = torch.roll(kf, (-s, -s), dims=(2, 3))
            allowed = torch.roll(allowed, (-s, -s), dims=(0, 1))
        region = _region_map(Hp, Wp, w, s, q_feat.device)
        qt, kt = _windows(qf, w), _windows(kf, w)
        nW = (Hp // w) * (Wp // w)
        allowed_t = _windows(allowed[None, None], w)[..., 0] > 0.5
        region_t = _windows(region[None, None].to(torch.float64), w)[..., 0]
        mask = allowed_t[:, None, :] & (region_t[:, :, None] == region_t[:, None, :])  # nW×w²×w²

        hd, heads, w2 = self.hd, self.heads, w * w
        q = snap(self.q(qt), self.qk_grid).reshape(-1, w2, heads, hd).transpose(1, 2)
        kv = self.kv(kt).reshape(-1, w2, 2, heads, hd).permute(2, 0, 3, 1, 4)
        k, v = snap(kv[0], self.qk_grid), snap(kv[1], self.v_grid)
        logits = dmath.div(q @ k.transpose(-2, -1), self.sqrt_hd) + self.bias  # exact q·k
        logits = logits.reshape(B, nW, heads, w2, w2)
        m = mask[None, :, None].expand_as(logits)
        logits = logits.masked_fill(~m, float("-inf"))
        row_max = logits.amax(dim=-1, keepdim=True)
        row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
        diff = torch.where(m, logits - row_max, torch.full_like(logits, dmath.EXP_MIN))
        e = torch.where(m, torch.round(dmath.exp(diff) * float(2 ** self.P)), torch.zeros_like(diff))
        e = e.reshape(-1, heads, w2, w2)
        den = e.sum(dim=-1, keepdim=True)  # exact integers
        num = e @ v  # exact: Σ e·|v| ≤ w²·2^P·2^(Rv+F) < 2^53
        out = torch.where(den > 0, dmath.div(num, torch.clamp_min(den, 1.0)), torch.zeros_like(num))
        out = snap(out, self.grid).transpose(1, 2).reshape(-1, w2, d)
        out = snap(self.proj(out), self.grid)
        out = _unwindows(out, B, Hp, Wp, w)
        if s:
            out = torch.roll(out, (s, s), dims=(2, 3))
        return out[:, :, :H, :W]


class ExactTransformerBlock:
    """x ← x + Attn(LN(x), kv) ; x ← x + MLP(LN(x)) (pre-norm, as TransformerBlock)."""

    def __init__(self, blk: TransformerBlock, cfg: ExactConfig, name: str = "") -> None:
        g = cfg.grid
        self.grid, self.cross = g, blk.cross
        self.norm_q = ExactLayerNorm(blk.norm_q.ln, g)
        self.norm_kv = ExactLayerNorm(blk.norm_kv.ln, g) if blk.cross else None
        self.attn = ExactWindowAttention(blk.attn, cfg, name=f"{name}.attn")
        self.norm_mlp = ExactLayerNorm(blk.norm_mlp.ln, g)
        self.mlp = ExactSequential(blk.mlp, g, cfg.max_weight_bits, name=f"{name}.mlp")

    def linears(self) -> list[ExactLinear]:
        return self.attn.linears() + self.mlp.linears()

    def to(self, device) -> "ExactTransformerBlock":
        for part in (self.norm_q, self.norm_kv, self.attn, self.norm_mlp, self.mlp):
            if part is not None:
                part.to(device)
        return self

    def __call__(self, x: torch.Tensor, key_allowed: torch.Tensor,
                 kv: torch.Tensor | None = None) -> torch.Tensor:
        q = self.norm_q(x)
        kvn = self.norm_kv(kv) if self.cross else q
        x = _add(x, self.attn(q, kvn, key_allowed), self.grid)
        return _add(x, self.mlp(self.norm_mlp(x)), self.grid)


class ExactResidualBottleneck:
    def __init__(self, rb: ResidualBottleneck, cfg: ExactConfig, name: str = "") -> None:
        self.grid = cfg.grid
        self.body = ExactSequential(rb.body, cfg.grid, cfg.max_weight_bits, name=f"{name}.body")

    def linears(self) -> list[ExactLinear]:
        return self.body.linears()

    def to(self, device):
        self.body.to(device)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _add(x, self.body(x), self.grid)


class ExactAttentionBlock:
    """x + a(x)·sigmoid(b(x)) (Cheng et al. 2020) with the deterministic sigmoid."""

    def __init__(self, ab: AttentionBlock, cfg: ExactConfig, name: str = "") -> None:
        g = cfg.grid
        self.grid = g
        self.a = [ExactResidualBottleneck(m, cfg, f"{name}.a{i}") for i, m in enumerate(ab.a)]
        mods = list(ab.b)
        self.b = [ExactResidualBottleneck(m, cfg, f"{name}.b{i}") for i, m in enumerate(mods[:-1])]
        self.b_out = ExactLinear(mods[-1], g, cfg.max_weight_bits, name=f"{name}.b_out")

    def linears(self) -> list[ExactLinear]:
        out = [lin for rb in self.a + self.b for lin in rb.linears()]
        return out + [self.b_out]

    def to(self, device):
        for rb in self.a + self.b:
            rb.to(device)
        self.b_out.to(device)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        a = x
        for rb in self.a:
            a = rb(a)
        b = x
        for rb in self.b:
            b = rb(b)
        gate = snap(dmath.sigmoid(self.b_out(b)), self.grid)
        return _add(x, snap(a * gate, self.grid), self.grid)  # a·gate: ≤ 2^(2(R+F)) integers, exact
