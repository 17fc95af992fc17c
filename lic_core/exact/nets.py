"""Exact counterparts of network blocks (docs/bitstream.md, "Reproducible decoding").

Each class takes the float module, quantizes it once (:class:`~lic_core.exact.fixed.ExactLinear`)
and evaluates it on grid integers with exact sums held in float64 plus single IEEE operations:

* :class:`ExactNorm` — LayerNorm / HiFiC's ChannelNorm (over channels) and GroupNorm (over a group
  of channels and all positions): centred sums ``n·a − Σa`` (exact integers), a per-row
  power-of-two right shift before squaring (keeps ``Σ c² < 2^53``), one division, one sqrt, one
  division, then the affine with ``γ·2^F``, ``β·2^F`` and a rounding;
* :class:`ExactWindowAttention` — q, k, v on grids whose products stay below 2^53; softmax =
  exact row max, deterministic exp, probabilities as integers (2^P for the max), exact ``Σ e·v``
  and ``Σ e``, one division.  The Laplacian bias a²·exp(−L1/2b²) uses the deterministic exp;
* :class:`ExactTransformerBlock`, :class:`ExactResidualBottleneck`, :class:`ExactAttentionBlock`
  (LGEM context and ELIC transforms);
* :func:`softmax_integer_weights`, :func:`silu`, :func:`upsample_nearest2`,
  :func:`upsample_bilinear` — pieces of the diffusion U-Net and HiFiC's generator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from ..entropy_model.attention import _region_map, _unwindows, _windows
from . import dmath
from .fixed import EXACT_LIMIT, ExactLinear, ExactSequential, Grid, apply_real, snap


@dataclass(frozen=True)
class ExactConfig:
    """Precision choices of the exact path (part of format v2; docs/bitstream.md).

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


#: the configuration format v2 decodes with
DEFAULT_CONFIG = ExactConfig()


def add(a: torch.Tensor, b: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Sum of two grid tensors (exact integers), clamped back to the grid range."""
    lim = float(grid.max_int)
    return torch.add(a, b).clamp_(-lim, lim)


# ------------------------------------------------------------------------------------ norms


class ExactNorm:
    """Normalization over ``n`` values per row with a per-channel affine, on grid integers.

    ``(x − mean)/sqrt(var + eps)·γ + β`` with ``var = Σ(x − mean)²/(n − ddof)``:
    LayerNorm (ddof 0, eps 1e-5), HiFiC's ChannelNorm (ddof 1, eps 1e-3), GroupNorm (ddof 0).

    In integer units (a = x·2^F): ``c = n·a − Σa`` is exact; the result is
    ``c / sqrt(Σc²/(n − ddof) + eps·n²·4^F)``.  ``Σc²`` is summed exactly after a per-row right
    shift ``c' = round(c·2^−s)`` with ``n·(2^keep)² ≤ 2^52``, and ``Σc² ≈ Σc'²·4^s``.  Very long
    rows (GroupNorm on a large image) first drop ``t`` low bits of ``a`` for the statistics so that
    ``2n·2^(R+F−t) < 2^53`` (t depends only on n).
    """

    def __init__(self, gamma: Optional[torch.Tensor], beta: Optional[torch.Tensor], eps: float,
                 grid: Grid, ddof: int = 0) -> None:
        self.grid, self.eps, self.ddof = grid, float(eps), int(ddof)
        C = None if gamma is None else gamma.numel()
        one = torch.ones(C or 1, dtype=torch.float64)
        g = one if gamma is None else gamma.detach().to("cpu", torch.float64).reshape(-1)
        b = torch.zeros_like(one) if beta is None else beta.detach().to("cpu", torch.float64).reshape(-1)
        self.gamma_s = g * grid.scale  # γ·2^F and β·2^F: exact power-of-two scalings
        self.beta_s = b * grid.scale

    @classmethod
    def layer_norm(cls, ln: torch.nn.LayerNorm, grid: Grid) -> "ExactNorm":
        return cls(ln.weight, ln.bias, ln.eps, grid)

    def to(self, device) -> "ExactNorm":
        self.gamma_s, self.beta_s = self.gamma_s.to(device), self.beta_s.to(device)
        return self

    def _normalize_rows(self, a: torch.Tensor, dim) -> torch.Tensor:
        """(x − mean)/sqrt(var + eps) of grid integers ``a`` reduced over ``dim`` (float64)."""
        g = self.grid
        n = 1
        for d in (dim if isinstance(dim, tuple) else (dim,)):
            n *= a.shape[d]
        d_n = n - self.ddof
        if d_n < 1:
            raise ValueError("normalization over a single value with ddof = 1")
        t = max(0, math.ceil(math.log2(2 * n)) + g.frac_bits + g.range_bits - 52)
        if t:
            a = torch.round(a * 2.0 ** -t)  # exact scaling, one rounding
        c = a * float(n)
        c.sub_(a.sum(dim=dim, keepdim=True))  # n·(a − mean): exact integers
        keep = (52 - max(1, math.ceil(math.log2(n)))) // 2  # n·(2^keep)² ≤ 2^52
        _, e = torch.frexp(c.abs().amax(dim=dim, keepdim=True))  # max|c| < 2^e
        s = torch.clamp_min(e.to(torch.int64) - keep, 0)
        cs = torch.round(c * dmath.pow2(-s))  # exact scaling, then one rounding
        v = (cs * cs).sum(dim=dim, keepdim=True)  # exact
        eps_term = self.eps * float(n * n) * float(4 ** (g.frac_bits - t))
        den = torch.sqrt(dmath.div(v * dmath.pow2(2 * s), float(d_n)) + eps_term)
        return dmath.div(c, den)

    def __call__(self, a: torch.Tensor, dim: int = 1, groups: int = 0) -> torch.Tensor:
        """Normalize over ``dim`` (1: channels of B×C×H×W; −1: last axis of tokens), or, with
        ``groups``, over each group of channels and all positions of B×C×H×W (GroupNorm)."""
        if groups:
            B, C, H, W = a.shape
            y = self._normalize_rows(a.reshape(B, groups, -1), dim=2).reshape(B, C, H, W)
            shape = (1, C, 1, 1)
        else:
            y = self._normalize_rows(a, dim)
            shape = [1] * a.dim()
            shape[dim] = a.shape[dim]
        y.mul_(self.gamma_s.view(shape)).add_(self.beta_s.view(shape))
        return snap(y, self.grid, inplace=True)


# -------------------------------------------------------------------------------- softmax


def mask_to_add(allowed: torch.Tensor) -> torch.Tensor:
    """A bool mask as an additive float64 mask: 0 where allowed, −inf elsewhere."""
    return torch.zeros(allowed.shape, dtype=torch.float64, device=allowed.device).masked_fill_(
        ~allowed, float("-inf"))


def softmax_integer_weights(logits: torch.Tensor, dim: int, bits: int,
                            inplace: bool = False) -> torch.Tensor:
    """Integer softmax weights ``round(exp(l − max)·2^bits)`` along ``dim`` (the max gets 2^bits).

    Masked entries are −inf in ``logits`` (add :func:`mask_to_add`): exp clamps them to e^−700,
    whose weight rounds to 0; a row with no finite entry is all zeros (its max is clamped to a
    finite number first).  Sums of n weights are exact while ``n·2^bits < 2^53``.  Written without
    branches (``where``/``masked_fill`` are slow on CPU float64 tensors).
    """
    row_max = logits.amax(dim=dim, keepdim=True).clamp_min_(-1e300)
    diff = logits.sub_(row_max) if inplace else logits - row_max
    return dmath.exp(diff).mul_(float(2 ** bits)).round_()


# ------------------------------------------------------------------------------- attention


class ExactWindowAttention:
    """:class:`~lic_core.entropy_model.attention.WindowAttention` with exact sums."""

    def __init__(self, att, cfg: ExactConfig, name: str = "") -> None:
        g = cfg.grid
        self.grid = g
        self.dim, self.heads, self.window, self.shift = att.dim, att.heads, att.window, att.shift
        self.hd = att.dim // att.heads
        self.q = ExactLinear(att.q, g, cfg.max_weight_bits, name=f"{name}.q")
        self.kv = ExactLinear(att.kv, g, cfg.max_weight_bits, name=f"{name}.kv")
        self.proj = ExactLinear(att.proj, g, cfg.max_weight_bits, name=f"{name}.proj")
        if cfg.qk_frac_bits != g.frac_bits:
            raise ValueError("queries and keys share the activation grid's fraction bits")
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
        # q·k in units of 4^F, scaled to real and divided by √hd in one correctly rounded division
        self.logit_div = math.sqrt(self.hd) * float(4 ** self.qk_grid.frac_bits)
        self._masks: dict = {}

    def linears(self) -> list[ExactLinear]:
        return [self.q, self.kv, self.proj]

    def to(self, device) -> "ExactWindowAttention":
        for lin in self.linears():
            lin.to(device)
        self.bias = self.bias.to(device)
        self._masks = {}
        return self

    def _mask(self, key_allowed: torch.Tensor, H: int, W: int):
        """(nW×w² keys allowed, nW×w² region ids, padded size) — cached per (allowed map, size)
        while small: which keys of its window a query may see (:meth:`_window_mask`)."""
        key = (H, W, key_allowed.device.type, hash(key_allowed.cpu().numpy().tobytes()))
        hit = self._masks.get(key)
        if hit is not None:
            return hit
        w, s = self.window, self.shift
        Hp, Wp = math.ceil(H / w) * w, math.ceil(W / w) * w
        pad = (0, Wp - W, 0, Hp - H)
        allowed = F.pad(key_allowed.to(torch.float64), pad)
        if s:
            allowed = torch.roll(allowed, (-s, -s), dims=(0, 1))
        region = _region_map(Hp, Wp, w, s, key_allowed.device)
        allowed_t = _windows(allowed[None, None], w)[..., 0] > 0.5
        region_t = _windows(region[None, None].to(torch.float64), w)[..., 0]
        hit = (allowed_t, region_t, Hp, Wp)
        # a tile of a big image has its own map each time: only small maps are worth keeping
        if allowed_t.numel() <= self.CACHE_POSITIONS:
            if len(self._masks) > 16:
                self._masks.clear()
            self._masks[key] = hit
        return hit

    #: window maps of at most this many positions are cached (the studio's repeated encodes)
    CACHE_POSITIONS = 1 << 16
    #: windows per chunk of the attention: its logits (heads·w²·w² float64 per window, 128 KB
    #: for 4 heads of 8×8) and softmax temporaries stay near 25 MB whatever the tile size
    WINDOWS_PER_CHUNK = 64

    def _window_mask(self, allowed_t: torch.Tensor, region_t: torch.Tensor,
                     qs: Optional[torch.Tensor], ks: Optional[torch.Tensor]) -> torch.Tensor:
        """n×1×Q×K additive mask of n windows (query slots ``qs``, key slots ``ks``; None: all
        w²): the Laplacian bias where a query may see a key (allowed, same Swin region), −inf
        elsewhere — bias and mask added in one addition, as adding them one after the other
        would give."""
        rq = region_t if qs is None else region_t[:, qs]
        rk = region_t if ks is None else region_t[:, ks]
        allowed = allowed_t if ks is None else allowed_t[:, ks]
        bias = self.bias if qs is None else self.bias[qs]
        bias = bias if ks is None else bias[:, ks]
        mask = allowed[:, None, :] & (rq[:, :, None] == rk[:, None, :])
        return (mask_to_add(mask) + bias)[:, None]

    def _slots(self, t: torch.Tensor) -> Optional[torch.Tensor]:
        """Window slots (of w²) set in any window of an n×w² bool map; None when all are."""
        used = t.any(0)
        return None if bool(used.all()) else used.nonzero()[:, 0]

    def _to_windows(self, x: torch.Tensor, pad: tuple, value: float = 0.0) -> torch.Tensor:
        """B×C×H×W → (B·nW)×w²×C on the padded (and, for a shifted block, rolled) grid."""
        x = F.pad(x, pad, value=value)
        if self.shift:
            x = torch.roll(x, (-self.shift, -self.shift), dims=(2, 3))
        return _windows(x, self.window)

    def _attend(self, qt: torch.Tensor, kv_feat: torch.Tensor, key_allowed: torch.Tensor,
                qs: Optional[torch.Tensor], store) -> None:
        """The attention of every window of ``qt`` ((B·nW)×Q×d queries, Q = the slots ``qs`` or
        all w²) on the keys of ``kv_feat``, before the output projection, handed to
        ``store(rows, att)`` chunk by chunk (:data:`WINDOWS_PER_CHUNK` windows: every window's
        logits, softmax and sums are its own, so the chunks change no value).

        Only the window slots where some window allows a key enter as keys: the others' softmax
        weights are exactly 0 (e^−∞ rounds to 0 at 2^P), so the exact sums and the row maximum
        are the same without them."""
        B, d, H, W = kv_feat.shape
        allowed_t, region_t, Hp, Wp = self._mask(key_allowed, H, W)
        ks = self._slots(allowed_t)
        kt = self._to_windows(kv_feat, (0, Wp - W, 0, Hp - H))
        if ks is not None:
            kt = kt.index_select(1, ks)  # the same rows as kt[:, ks], a faster gather
        nW = (Hp // self.window) * (Wp // self.window)
        for b in range(B):
            for i0 in range(0, nW, self.WINDOWS_PER_CHUNK):
                i1 = min(nW, i0 + self.WINDOWS_PER_CHUNK)
                rows = slice(b * nW + i0, b * nW + i1)
                store(rows, self._windows_attention(qt[rows], kt[rows], self._window_mask(
                    allowed_t[i0:i1], region_t[i0:i1], qs, ks)))

    def __call__(self, q_feat: torch.Tensor, kv_feat: torch.Tensor,
                 key_allowed: torch.Tensor) -> torch.Tensor:
        """Window attention of every position of ``q_feat`` (B×d×H×W) on ``kv_feat``'s keys
        (allowed at ``key_allowed``), computed in chunks of windows (:meth:`_attend`)."""
        B, d, H, W = q_feat.shape
        w, s = self.window, self.shift
        _, _, Hp, Wp = self._mask(key_allowed, H, W)
        qt = self._to_windows(q_feat, (0, Wp - W, 0, Hp - H))  # (B·nW)×w²×d
        out = torch.empty(qt.shape, dtype=torch.float64, device=qt.device)

        def store(rows, att):
            out[rows] = att

        self._attend(qt, kv_feat, key_allowed, None, store)
        del qt
        out = snap(self.proj(out), self.grid, inplace=True)
        out = _unwindows(out, B, Hp, Wp, w)
        if s:
            out = torch.roll(out, (s, s), dims=(2, 3))
        return out[:, :, :H, :W]

    def gathered(self, q: torch.Tensor, kv_feat: torch.Tensor, key_allowed: torch.Tensor,
                 where: torch.Tensor) -> torch.Tensor:
        """Window attention of N gathered queries ``q`` (B×d×N) — the query of position p of
        the H×W grid is column ``where[p]`` (−1: no query there) — on ``kv_feat``'s keys.

        A query's logits, softmax and sums are its own row's, so each output is the one the
        whole grid's attention gives at that position, and only the wanted queries are
        computed (the intra context's non-anchors of a tile's core: a quarter of the logits of
        the full attention, anchor keys × non-anchor queries, and half its projections).
        Returns B×d×N."""
        B, d, N = q.shape
        H, W = kv_feat.shape[-2:]
        _, _, Hp, Wp = self._mask(key_allowed, H, W)
        col = self._to_windows(where.view(1, 1, H, W), (0, Wp - W, 0, Hp - H), value=-1)[..., 0]
        qs = self._slots(col >= 0)
        if qs is not None:
            col = col[:, qs]
        nW = col.shape[0]
        # the queries in window order (a zero row for the slots without one)
        tokens = torch.cat([q.transpose(1, 2), q.new_zeros((B, 1, d))], dim=1)
        pick = torch.where(col >= 0, col, N)
        rows = pick.reshape(-1)  # tokens[b][pick] as one index_select (the same rows, faster)
        qt = [tokens[b].index_select(0, rows).view(nW, -1, d) for b in range(B)]
        qt = torch.cat(qt) if B > 1 else qt[0]
        out = torch.empty((B, N, d), dtype=torch.float64, device=q.device)

        def store(rows, att):
            b, i0 = divmod(rows.start, nW)
            c = col[i0:i0 + att.shape[0]]
            out[b, c[c >= 0]] = att[c >= 0]

        self._attend(qt, kv_feat, key_allowed, qs, store)
        del qt
        return snap(self.proj(out), self.grid, inplace=True).transpose(1, 2)

    def _windows_attention(self, qt: torch.Tensor, kt: torch.Tensor,
                           mask: torch.Tensor) -> torch.Tensor:
        """Attention of n windows (n×Q×d queries, n×K×d key/value features, n×1×Q×K mask)
        before the output projection, snapped to the grid (n×Q×d)."""
        n, nq, d = qt.shape
        nk = kt.shape[1]
        hd, heads = self.hd, self.heads
        q = snap(self.q(qt), self.qk_grid, inplace=True).reshape(n, nq, heads, hd).transpose(1, 2)
        kv = self.kv(kt).reshape(n, nk, 2, heads, hd).permute(2, 0, 3, 1, 4)
        k, v = snap(kv[0], self.qk_grid), snap(kv[1], self.v_grid)
        del kv
        logits = dmath.div(q @ k.transpose(-2, -1), self.logit_div)  # exact q·k, one division
        logits.add_(mask)  # Laplacian bias and mask
        e = softmax_integer_weights(logits, -1, self.P, inplace=True)
        del logits
        den = e.sum(dim=-1, keepdim=True)  # exact integers
        num = e @ v  # exact: Σ e·|v| ≤ w²·2^P·2^(Rv+F) < 2^53
        out = dmath.div(num, torch.clamp_min(den, 1.0))  # a row without keys: 0/1
        return snap(out, self.grid, inplace=True).transpose(1, 2).reshape(n, nq, d)


class ExactTransformerBlock:
    """x ← x + Attn(LN(x), kv) ; x ← x + MLP(LN(x)) (pre-norm, as TransformerBlock)."""

    def __init__(self, blk, cfg: ExactConfig, name: str = "") -> None:
        g = cfg.grid
        self.grid, self.cross = g, blk.cross
        self.norm_q = ExactNorm.layer_norm(blk.norm_q.ln, g)
        self.norm_kv = ExactNorm.layer_norm(blk.norm_kv.ln, g) if blk.cross else None
        self.attn = ExactWindowAttention(blk.attn, cfg, name=f"{name}.attn")
        self.norm_mlp = ExactNorm.layer_norm(blk.norm_mlp.ln, g)
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
        x = add(x, self.attn(q, kvn, key_allowed), self.grid)
        return add(x, self.mlp(self.norm_mlp(x)), self.grid)

    def gathered(self, x: torch.Tensor, where: torch.Tensor, key_allowed: torch.Tensor,
                 kv: torch.Tensor) -> torch.Tensor:
        """A cross-attention block on N gathered queries ``x`` (B×d×N; ``where``: their
        columns on the H×W grid of ``kv``, see :meth:`ExactWindowAttention.gathered`): norms,
        MLP and sums are per position, so each output is the whole grid's at that position."""
        if not self.cross:
            raise ValueError("gathered queries need a cross-attention block")
        kvn = self.norm_kv(kv)
        x = add(x, self.attn.gathered(self.norm_q(x), kvn, key_allowed, where), self.grid)
        return add(x, self.mlp(self.norm_mlp(x)[..., None])[..., 0], self.grid)


# ------------------------------------------------------------------------ ELIC transform blocks


class ExactResidualBottleneck:
    """x + body(x) (ELIC's 1×1 → 3×3 → 1×1 bottleneck with ReLUs)."""

    def __init__(self, rb, cfg: ExactConfig, name: str = "") -> None:
        self.grid = cfg.grid
        self.body = ExactSequential(rb.body, cfg.grid, cfg.max_weight_bits, name=f"{name}.body")

    def linears(self) -> list[ExactLinear]:
        return self.body.linears()

    def to(self, device):
        self.body.to(device)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x, residual=x)  # add(x, body(x)), fused into the last layer's epilogue


class ExactAttentionBlock:
    """x + a(x)·sigmoid(b(x)) (Cheng et al. 2020) with the deterministic sigmoid."""

    def __init__(self, ab, cfg: ExactConfig, name: str = "") -> None:
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
        gate = apply_real(dmath.sigmoid, self.b_out(b), self.grid)  # gate·2^F, in [0, 2^F]
        # a·gate: integers ≤ 2^(R+F)·2^F < 2^53, exact; ×2^−F exact; one rounding (in place on
        # the gate, a fresh tensor: the same operations on the same values)
        prod = gate.mul_(a).mul_(self.grid.step)
        return add(x, snap(prod, self.grid, inplace=True), self.grid)


# --------------------------------------------------------------- elementwise and resampling


def silu(x: torch.Tensor) -> torch.Tensor:
    """x·sigmoid(x) with the deterministic sigmoid (real values)."""
    return x * dmath.sigmoid(x)


def upsample_nearest2(a: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour ×2 (``F.interpolate(mode="nearest", scale_factor=2)``): copies."""
    return a.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


def _bilinear_axis(a: torch.Tensor, f: int, dim: int) -> torch.Tensor:
    """Linear ×f along ``dim`` with ``align_corners=False`` (edges clamped), exactly.

    Output i samples src = (i + ½)/f − ½ between its two neighbours with weights that are
    multiples of 1/(2f) — f a power of two, so every weighted term of grid integers is exact and
    the sum of the two terms is exact."""
    n = a.shape[dim]
    i = torch.arange(n * f, dtype=torch.float64)
    src = (i + 0.5) * (1.0 / f) - 0.5  # exact: f is a power of two
    lo = torch.floor(src)
    frac = src - lo  # exact
    lo_i = lo.to(torch.int64).clamp(0, n - 1)
    hi_i = (lo.to(torch.int64) + 1).clamp(0, n - 1)
    shape = [1] * a.dim()
    shape[dim] = n * f
    wf = frac.to(a.device).view(shape)
    x0 = a.index_select(dim, lo_i.to(a.device))
    x1 = a.index_select(dim, hi_i.to(a.device))
    return x0 * (1.0 - wf) + x1 * wf


def upsample_bilinear(a: torch.Tensor, factor: int, grid: Grid) -> torch.Tensor:
    """``F.interpolate(mode="bilinear", align_corners=False)`` by a power-of-two factor, on grid
    integers: exact weighted sums (weights multiples of 1/(2f)), then one rounding to the grid."""
    if factor & (factor - 1) or factor < 1:
        raise ValueError("bilinear factor must be a power of two")
    if factor == 1:
        return a
    h = _bilinear_axis(_bilinear_axis(a, factor, -2), factor, -1)
    return snap(h, grid, inplace=True)
