"""The diffusion decoder on the exact path: the same picture from the same file everywhere.

The float sampler (:mod:`.blurring`, :class:`.decoder.DiffusionDecoder`) is kept for training and
previews; files decode through this module (format v2, docs/bitstream.md "Reproducible decoding"):

* **contexts** from :class:`lic_core.models.lgem_exact.ExactSynthesis` (x̂_mse and the g_s
  features, exact);
* **U-Net** (:class:`ExactCondUNet`, docs/methods.md §7.3): convolutions as exact sums on the
  activation grid, GroupNorm as :class:`~lic_core.exact.nets.ExactNorm`, SiLU and GELU from
  :mod:`lic_core.exact.dmath`, the linear attention with integer softmax weights and exact
  ``Σ k·v`` / ``Σ ctx·q``, nearest and bilinear up-sampling as exact copies/weighted sums;
* **DCT** (:class:`ExactDCT`): the orthonormal DCT-II matrices quantized per row like a linear
  layer, applied to grid values, so both matrix products are exact sums;
* **schedule** (docs/methods.md §7.2): a_t, σ_t, d_t, the transition and the posterior coefficients
  from the deterministic log/exp/expm1/sin/cos/atan/sigmoid — no libm call, no float32;
* **noise**: Philox4x32-10 + Box–Muller (:mod:`lic_core.exact.rng`), draw 0 for the start and
  draw i + 1 for step i, seeded by the header's seed;
* the posterior step as single elementwise IEEE operations in a fixed order (docs/methods.md §7.2,
  x̂0 or ε form), the last step's mean rescaled by 1/a_0, then clamp, ×255 and rounding to uint8.

A picture larger than one sampler tile can be decoded by the **tiled sampler**
(:meth:`ExactDiffusion.decode_tiled`, :mod:`.tiles`): the same sampler per tile (noise stream of
the tile), contexts of the tile's region, the tiles' last values blended with integer weights.
"""
from __future__ import annotations

import math
import zlib
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from torch import Tensor, nn

from ...exact import dmath
from ...exact.cache import cached
from ...exact.fixed import (
    EXACT_LIMIT,
    ExactLinear,
    Grid,
    apply_real,
    picture_from_real,
    quantize_rows,
    snap,
    to_grid,
)
from ...exact.nets import (
    DEFAULT_CONFIG,
    ExactConfig,
    ExactNorm,
    add,
    silu,
    softmax_integer_weights,
    upsample_bilinear,
    upsample_nearest2,
)
from ...exact.rng import normal
from ...memory import release_free_memory
from ...models.lgem_exact import ExactSynthesis
from .blurring import step_pairs
from .fits import check_diffusion_fits, check_tiled_diffusion_fits
from .lite import LiteUNet
from .tiles import BLEND_BITS, TileGrid
from .unet import CondUNet, LinearAttention, ResBlock

#: grids of the DCT: pixel domain (|x| ≤ 32), after the first 1-D pass, DCT domain (|u| ≤ 2^14)
PIXEL_GRID = Grid(20, 5)
HALF_GRID = Grid(16, 11)
DCT_GRID = Grid(14, 14)
StepCallback = Callable[[int, int], None]
#: ``on_x0(step_index, total_steps, x0_picture)``: the x̂0 estimate of a step as uint8 B×3×H×W
X0Callback = Callable[[int, int, Tensor], None]


# ------------------------------------------------------------------------------------------ DCT


class _ExactMatrix:
    """``M @ X`` along one axis for a constant matrix M (rows quantized like a linear layer)."""

    def __init__(self, m: Tensor, in_grid: Grid, name: str) -> None:
        self.in_grid = in_grid
        _, self.w, _, self.bound = quantize_rows(m, None, in_grid, 24, 8, name)

    def to(self, device) -> "_ExactMatrix":
        self.w = self.w.to(device)
        return self


class ExactDCT:
    """Orthonormal 2-D DCT-II and its inverse on an H×W grid, exact sums (docs/methods.md §7.2)."""

    def __init__(self, h: int, w: int, device="cpu") -> None:
        ch, cw = _dct_exact(h), _dct_exact(w)  # the deterministic cos, never torch.cos
        self.fwd_h = _ExactMatrix(ch, PIXEL_GRID, "dct_h").to(device)
        self.fwd_w = _ExactMatrix(cw, HALF_GRID, "dct_w").to(device)
        self.inv_h = _ExactMatrix(ch.t().contiguous(), DCT_GRID, "idct_h").to(device)
        self.inv_w = _ExactMatrix(cw.t().contiguous(), HALF_GRID, "idct_w").to(device)

    def dct2(self, x: Tensor) -> Tensor:
        """u = C_H x C_Wᵀ of real x (float64): pixel grid → half grid → DCT grid, real out."""
        a = to_grid(x, PIXEL_GRID)
        h = snap(torch.matmul(self.fwd_h.w, a).mul_(HALF_GRID.scale * PIXEL_GRID.step),
                 HALF_GRID, inplace=True)
        u = torch.matmul(h, self.fwd_w.w.t()).mul_(DCT_GRID.scale * HALF_GRID.step)
        return snap(u, DCT_GRID, inplace=True).mul_(DCT_GRID.step)

    def idct2(self, u: Tensor) -> Tensor:
        """x = C_Hᵀ u C_W of real u: DCT grid → half grid → real values on the pixel grid."""
        a = to_grid(u, DCT_GRID)
        h = snap(torch.matmul(self.inv_h.w, a).mul_(HALF_GRID.scale * DCT_GRID.step),
                 HALF_GRID, inplace=True)
        x = torch.matmul(h, self.inv_w.w.t()).mul_(PIXEL_GRID.scale * HALF_GRID.step)
        return snap(x, PIXEL_GRID, inplace=True).mul_(PIXEL_GRID.step)


def _dct_exact(n: int) -> Tensor:
    """The n×n orthonormal DCT-II matrix from the deterministic cos and sqrt (float64)."""
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    # angle π(2i+1)k/(2n) in turns = (2i+1)k/(4n): an exact rational reduced exactly mod 1
    num = torch.remainder((2.0 * i + 1.0) * k, 4.0 * n)  # exact integers
    turns = dmath.div(num, float(4 * n))
    c = dmath.cos(turns * (2.0 * math.pi)) * math.sqrt(2.0 / n)
    c[0] = c[0] * (1.0 / math.sqrt(2.0))
    return c


# ------------------------------------------------------------------------------------ schedule


def _sq(x: Tensor) -> Tensor:
    """x·x as one multiplication (``Tensor.square`` dispatches to ``pow``)."""
    return x * x


class ExactSchedule:
    """The blur + cosine-logSNR schedule (docs/methods.md §7.2) from deterministic math only."""

    def __init__(self, sigma_b_max: float, d_min: float, logsnr_min: float,
                 logsnr_max: float) -> None:
        self.sigma_b_max, self.d_min = float(sigma_b_max), float(d_min)
        t = torch.tensor([-0.5 * logsnr_max, -0.5 * logsnr_min], dtype=torch.float64)
        at = dmath.atan(dmath.exp(t))
        self.b = float(at[0])
        self.a = float(at[1]) - self.b

    def _t(self, t: float) -> Tensor:
        return torch.tensor([float(t)], dtype=torch.float64)

    def logsnr(self, t: float) -> Tensor:
        """−2 log tan(a t + b)."""
        return dmath.log(dmath.tan(self._t(t) * self.a + self.b)) * -2.0

    def noise_scales(self, t: float) -> tuple[Tensor, Tensor]:
        ls = self.logsnr(t)
        return torch.sqrt(dmath.sigmoid(ls)), torch.sqrt(dmath.sigmoid(-ls))

    def frequency_scaling(self, t: float, lam: Tensor) -> Tensor:
        """d_t = (1 − d_min)·exp(−λ τ_t) + d_min with τ_t = σ_B(t)²/2, σ_B = σ_max sin²(πt/2)."""
        sb = self.sigma_b_max * _sq(dmath.sin(self._t(t) * (0.5 * math.pi)))
        tau = _sq(sb) * 0.5
        return dmath.exp(-(lam * tau)) * (1.0 - self.d_min) + self.d_min

    def alpha_sigma(self, t: float, lam: Tensor) -> tuple[Tensor, Tensor]:
        a, s = self.noise_scales(t)
        return a * self.frequency_scaling(t, lam), s

    def posterior(self, t: float, s: float, lam: Tensor) -> dict[str, Tensor]:
        """Coefficients of the exact reverse step t → s (see blurring.posterior_step)."""
        d_t, d_s = self.frequency_scaling(t, lam), self.frequency_scaling(s, lam)
        a_t, sig_t = self.noise_scales(t)
        a_s, sig_s = self.noise_scales(s)
        ratio = dmath.div(d_t, d_s)
        alpha_ts = dmath.div(a_t, a_s) * ratio
        dl = (self.logsnr(t) - self.logsnr(s)) + dmath.log(ratio) * 2.0
        var_ts = _sq(sig_t) * -dmath.expm1(dl)
        var_s = _sq(sig_s)
        one = torch.ones_like(var_ts)
        var_post = dmath.div(one, dmath.div(one, var_s.expand_as(var_ts))
                             + dmath.div(_sq(alpha_ts), var_ts))
        c_t = dmath.div(alpha_ts * var_post, var_ts)
        alpha_s = a_s * d_s
        c_0 = dmath.div(alpha_s * var_ts, _sq(sig_t).expand_as(var_ts))
        c_x = dmath.div(var_post, alpha_ts * var_s)
        return {"c_t": c_t, "c_0": c_0, "c_x": c_x, "sig_t": sig_t,
                "noise": torch.sqrt(var_post)}


def heat_eigenvalues_exact(h: int, w: int) -> Tensor:
    """λ_kl = (πk/H)² + (πl/W)² (single IEEE operations)."""
    k = torch.arange(h, dtype=torch.float64) * (math.pi / h)
    l_ = torch.arange(w, dtype=torch.float64) * (math.pi / w)
    return _sq(k).unsqueeze(1) + _sq(l_).unsqueeze(0)


# ---------------------------------------------------------------------------------------- U-Net


def _fit(a: Tensor, size: tuple[int, int]) -> Tensor:
    """Replicate-pad or crop at the bottom/right (copies: exact)."""
    import torch.nn.functional as F

    h, w = a.shape[-2:]
    a = a[..., : size[0], : size[1]]
    ph, pw = max(0, size[0] - h), max(0, size[1] - w)
    if ph or pw:
        a = F.pad(a, (0, pw, 0, ph), mode="replicate")
    return a


def _activate(act: str, a: Tensor, g: Grid) -> Tensor:
    """SiLU of grid integers (deterministic exp), or ReLU (a clamp of integers: exact)."""
    if act == "relu":
        return a.clamp_min_(0.0)
    return apply_real(silu, a, g)


class _ExactResBlock:
    """GroupNorm → act → conv3×3, + time bias, GroupNorm → act → conv3×3, + skip."""

    def __init__(self, blk: ResBlock, cfg: ExactConfig, name: str) -> None:
        g, wb = cfg.grid, cfg.max_weight_bits
        self.grid = g
        self.act = blk.act
        self.g1, self.g2 = blk.norm1.num_groups, blk.norm2.num_groups
        self.norm1 = ExactNorm(blk.norm1.weight, blk.norm1.bias, blk.norm1.eps, g)
        self.conv1 = ExactLinear(blk.conv1, g, wb, name=f"{name}.conv1")
        self.temb = ExactLinear(blk.temb, g, wb, name=f"{name}.temb")
        self.norm2 = ExactNorm(blk.norm2.weight, blk.norm2.bias, blk.norm2.eps, g)
        self.conv2 = ExactLinear(blk.conv2, g, wb, name=f"{name}.conv2")
        self.skip = (None if isinstance(blk.skip, nn.Identity)
                     else ExactLinear(blk.skip, g, wb, name=f"{name}.skip"))

    def parts(self) -> list:
        return [p for p in (self.norm1, self.conv1, self.temb, self.norm2, self.conv2, self.skip)
                if p is not None]

    def to(self, device):
        for p in self.parts():
            p.to(device)
        return self

    def __call__(self, x: Tensor, temb: Tensor) -> Tensor:
        g = self.grid
        h = _activate(self.act, self.norm1(x, groups=self.g1), g)
        h = snap(self.conv1(h), g, inplace=True)
        tb = snap(self.temb(temb), g, inplace=True)
        h = add(h, tb[:, :, None, None], g)
        h = _activate(self.act, self.norm2(h, groups=self.g2), g)
        h = snap(self.conv2(h), g, inplace=True)
        sk = x if self.skip is None else snap(self.skip(x), g, inplace=True)
        return add(h, sk, g)


class _ExactLinearAttention:
    """Linear attention: softmax over features for q (×dh^−½), over positions for k."""

    def __init__(self, att: LinearAttention, cfg: ExactConfig, name: str) -> None:
        g = cfg.grid
        self.grid, self.P = g, cfg.softmax_bits
        self.heads, self.dim_head = att.heads, att.dim_head
        self.norm = ExactNorm(att.norm.weight, att.norm.bias, att.norm.eps, g)
        self.qkv = ExactLinear(att.qkv, g, cfg.max_weight_bits, name=f"{name}.qkv")
        self.out = ExactLinear(att.out, g, cfg.max_weight_bits, name=f"{name}.out")
        self.q_scale = g.scale / math.sqrt(self.dim_head)  # 2^F/√dh: correctly rounded

    def parts(self) -> list:
        return [self.norm, self.qkv, self.out]

    def to(self, device):
        for p in self.parts():
            p.to(device)
        return self

    def __call__(self, x: Tensor) -> Tensor:
        g = self.grid
        b, c, h, w = x.shape
        n = h * w
        lim = g.max_int
        if n * 2 ** self.P >= EXACT_LIMIT or (g.scale + n) * lim >= EXACT_LIMIT:
            raise ValueError("image too large for the exact linear attention")
        qkv = snap(self.qkv(self.norm(x, groups=1)), g, inplace=True)
        q, k, v = qkv.reshape(b, 3, self.heads, self.dim_head, n).unbind(1)
        eq = softmax_integer_weights(q * g.step, -2, self.P)  # over the dh features
        qn = dmath.div(eq, eq.sum(dim=-2, keepdim=True)).mul_(self.q_scale).round_()
        ek = softmax_integer_weights(k * g.step, -1, self.P)  # over the n positions
        kn = dmath.div(ek, ek.sum(dim=-1, keepdim=True)).mul_(g.scale).round_()
        # Σ_n kn·v ≤ (2^F + n)·2^(R+F) < 2^53 and Σ_d ctx·qn likewise: exact sums
        ctx = snap(torch.matmul(kn, v.transpose(-1, -2)).mul_(g.step), g, inplace=True)
        out = snap(torch.matmul(ctx.transpose(-1, -2), qn).mul_(g.step), g, inplace=True)
        out = snap(self.out(out.reshape(b, -1, h, w)), g, inplace=True)
        return add(x, out, g)


class ExactCondUNet:
    """:class:`~lic_core.decoder.diffusion.unet.CondUNet` on the exact path."""

    def __init__(self, unet: CondUNet, cfg: ExactConfig = DEFAULT_CONFIG) -> None:
        g, wb = cfg.grid, cfg.max_weight_bits
        self.grid, self.n_levels, self.multiple = g, unet.n_levels, unet.multiple
        tm = list(unet.time.net)
        if not isinstance(tm[1], nn.GELU) or tm[1].approximate != "none":
            raise NotImplementedError("the exact time embedding needs an erf GELU")
        self.t1 = ExactLinear(tm[0], g, wb, name="time.0")
        self.t2 = ExactLinear(tm[2], g, wb, name="time.2")
        ad = unet.adapter
        self.ad_levels, self.ad_factors = list(ad.levels), list(ad.factors)
        self.ad_proj = [ExactLinear(p, g, wb, name=f"adapter.{i}") for i, p in enumerate(ad.proj)]
        self.init = ExactLinear(unet.init, g, wb, name="init")
        self.down = [[_ExactResBlock(b, cfg, f"down{i}.{j}") for j, b in enumerate(lv.blocks)]
                     for i, lv in enumerate(unet.down)]
        self.downsample = [ExactLinear(m, g, wb, name=f"downsample{i}")
                           for i, m in enumerate(unet.downsample)]
        self.mid1 = _ExactResBlock(unet.mid1, cfg, "mid1")
        self.attn = _ExactLinearAttention(unet.attn, cfg, "attn")
        self.mid2 = _ExactResBlock(unet.mid2, cfg, "mid2")
        self.up = [[_ExactResBlock(b, cfg, f"up{i}.{j}") for j, b in enumerate(lv.blocks)]
                   for i, lv in enumerate(unet.up)]
        self.upsample = [ExactLinear(m, g, wb, name=f"upsample{i}")
                         for i, m in enumerate(unet.upsample)]
        self.act = unet.cfg.act
        self.out_groups = unet.out_norm.num_groups
        self.out_norm = ExactNorm(unet.out_norm.weight, unet.out_norm.bias, unet.out_norm.eps, g)
        self.out = ExactLinear(unet.out, g, wb, name="out")

    @property
    def n_contexts(self) -> int:
        return len(self.ad_proj)

    def parts(self) -> list:
        out: list = [self.t1, self.t2, *self.ad_proj, self.init, *self.downsample, self.mid1,
                     self.attn, self.mid2, *self.upsample, self.out_norm, self.out]
        for lv in self.down + self.up:
            out.extend(lv)
        return out

    def to(self, device) -> "ExactCondUNet":
        for p in self.parts():
            p.to(device)
        return self

    def level_sizes(self, h: int, w: int) -> list[tuple[int, int]]:
        m = self.multiple
        hp, wp = -(-h // m) * m, -(-w // m) * m
        return [(hp >> i, wp >> i) for i in range(self.n_levels)]

    def adapt(self, contexts: list[Tensor], hw: tuple[int, int]) -> list[Optional[Tensor]]:
        """Project the (grid) contexts once per image, per level (ConditionAdapter)."""
        sizes = self.level_sizes(*hw)
        out: list[Optional[Tensor]] = [None] * self.n_levels
        for ctx, proj, lv, f in zip(contexts, self.ad_proj, self.ad_levels, self.ad_factors):
            h = snap(proj(ctx), self.grid, inplace=True)
            h = upsample_bilinear(h, f, self.grid)
            h = _fit(h, sizes[lv])
            out[lv] = h if out[lv] is None else add(out[lv], h, self.grid)
        return out

    def time_embedding(self, t: float, batch: int, device) -> Tensor:
        tt = to_grid(torch.full((batch, 1), float(t), dtype=torch.float64, device=device), self.grid)
        h = apply_real(dmath.gelu, self.t1(tt), self.grid)
        return snap(self.t2(h), self.grid, inplace=True)

    def __call__(self, x: Tensor, t: float, adapted: list[Optional[Tensor]]) -> Tensor:
        """The network's real output (x̂0 or ε) for real x (float64)."""
        g = self.grid
        h0, w0 = x.shape[-2:]
        sizes = self.level_sizes(h0, w0)
        a = _fit(to_grid(x, g), sizes[0])
        temb = self.time_embedding(t, a.shape[0], a.device)
        h = snap(self.init(a), g, inplace=True)
        skips = []
        for i, blocks in enumerate(self.down):
            if adapted[i] is not None:
                ctx = adapted[i]
                if ctx.shape[0] != h.shape[0]:
                    ctx = ctx.expand(h.shape[0], -1, -1, -1)
                h = torch.cat([h, ctx], dim=1)
            for blk in blocks:
                h = blk(h, temb)
            skips.append(h)
            if i < self.n_levels - 1:
                h = snap(self.downsample[i](h), g, inplace=True)
        h = self.mid2(self.attn(self.mid1(h, temb)), temb)
        for j, blocks in enumerate(self.up):
            i = self.n_levels - 1 - j
            h = torch.cat([h, skips[i]], dim=1)
            for blk in blocks:
                h = blk(h, temb)
            if i > 0:
                h = snap(self.upsample[j](upsample_nearest2(h)), g, inplace=True)
        h = _activate(self.act, self.out_norm(h, groups=self.out_groups), g)
        return (self.out(h) * g.step)[..., :h0, :w0]


class ExactLiteUNet:
    """:class:`~lic_core.decoder.diffusion.lite.LiteUNet` on the exact path: pixel (un)shuffles
    are copies, the core is :class:`ExactCondUNet`, the head two exact convolutions and a ReLU,
    x̂0 = x̂_mse + residual one exact addition on the grid."""

    def __init__(self, net: LiteUNet, cfg: ExactConfig = DEFAULT_CONFIG) -> None:
        g, wb = cfg.grid, cfg.max_weight_bits
        self.grid, self.r = g, net.r
        self.scales = [int(s) for s in net.cfg.cond_scales]
        self.residual = bool(net.cfg.residual)
        self.core = ExactCondUNet(net.core, cfg)
        self.head_in = (None if net.head_in is None
                        else ExactLinear(net.head_in, g, wb, name="head_in"))
        self.head_out = (None if net.head_out is None
                         else ExactLinear(net.head_out, g, wb, name="head_out"))

    @property
    def n_contexts(self) -> int:
        return self.core.n_contexts

    def parts(self) -> list:
        return self.core.parts() + [p for p in (self.head_in, self.head_out) if p is not None]

    def to(self, device) -> "ExactLiteUNet":
        self.core.to(device)
        for p in (self.head_in, self.head_out):
            if p is not None:
                p.to(device)
        return self

    def _padded(self, h: int, w: int) -> tuple[int, int]:
        return -(-h // self.r) * self.r, -(-w // self.r) * self.r

    def adapt(self, contexts: list[Tensor], hw: tuple[int, int]) -> dict:
        """Unshuffle the fine (grid) contexts to H/r, project them once per image."""
        import torch.nn.functional as F

        hp, wp = self._padded(*hw)
        ctx = []
        for c, s in zip(contexts, self.scales):
            f = max(1, self.r // s)
            ctx.append(F.pixel_unshuffle(_fit(c, (hp // s, wp // s)), f) if f > 1 else c)
        return {"levels": self.core.adapt(ctx, (hp // self.r, wp // self.r)),
                "x_mse": _fit(contexts[0], (hp, wp))}

    def __call__(self, x: Tensor, t: float, adapted: dict) -> Tensor:
        """x̂0 (real float64) for real x."""
        import torch.nn.functional as F

        g = self.grid
        h0, w0 = x.shape[-2:]
        hp, wp = self._padded(h0, w0)
        xg = _fit(to_grid(x, g), (hp, wp))
        x_mse = adapted["x_mse"]
        if x_mse.shape[0] != xg.shape[0]:
            x_mse = x_mse.expand(xg.shape[0], -1, -1, -1)
        core = self.core(F.pixel_unshuffle(xg, self.r) * g.step, t, adapted["levels"])
        res = to_grid(F.pixel_shuffle(core, self.r), g)
        if self.head_in is not None:
            hid = snap(self.head_in(torch.cat([res, xg, x_mse], dim=1)), g, relu=True,
                       inplace=True)
            res = add(res, snap(self.head_out(hid), g, inplace=True), g)
        out = add(x_mse, res, g) if self.residual else res
        return out[..., :h0, :w0] * g.step


# ------------------------------------------------------------------------------------- decoder


class ExactDiffusion:
    """A :class:`~lic_core.decoder.diffusion.DiffusionDecoder` as an exact function of ŷ."""

    def __init__(self, decoder: Any, cfg: ExactConfig = DEFAULT_CONFIG, device="cpu") -> None:
        self.config = decoder.config
        self.cfg, self.grid = cfg, cfg.grid
        self.unet = (ExactLiteUNet(decoder.unet, cfg) if isinstance(decoder.unet, LiteUNet)
                     else ExactCondUNet(decoder.unet, cfg))
        c = self.config
        self.schedule = ExactSchedule(c.sigma_b_max, c.d_min, c.logsnr_min, c.logsnr_max)
        self._dct: dict[tuple[int, int], ExactDCT] = {}
        self.to(device)

    def to(self, device) -> "ExactDiffusion":
        self.device = torch.device(device)
        self.unet.to(device)
        self._dct = {}
        return self

    def dct(self, h: int, w: int) -> ExactDCT:
        hit = self._dct.get((h, w))
        if hit is None:
            hit = self._dct[(h, w)] = ExactDCT(h, w, self.device)
        return hit

    def contexts(self, synth: ExactSynthesis, y_hat_gained: Tensor,
                 code: int) -> tuple[list[Tensor], Optional[Tensor], Tensor]:
        """(grid contexts for the adapter, x̂_mse in [−1, 1] (real) or None, the MSE picture)."""
        acc, feats = synth.run(y_hat_gained.to(self.device), code, keep_features=True)
        return self._contexts(synth, acc, feats, y_hat_gained, code)

    def region_contexts(self, synth: ExactSynthesis, y_hat_gained: Tensor, code: int,
                        region: tuple[tuple[int, int], tuple[int, int]]
                        ) -> tuple[list[Tensor], Optional[Tensor], Tensor]:
        """:meth:`contexts` of the picture pixels ``region`` ((R0, R1), (C0, C1), on the latent
        grid): the same values as that part of the whole picture's (the exact g_s with halos)."""
        (r0, r1), (c0, c1) = region
        acc, feats = synth.run_region(y_hat_gained.to(self.device), code, region,
                                      keep_features=True)
        return self._contexts(synth, acc, feats,
                              y_hat_gained[..., r0 // 16:-(-r1 // 16), c0 // 16:-(-c1 // 16)], code)

    def _contexts(self, synth: ExactSynthesis, acc: Tensor, feats: list[Tensor],
                  y_hat_gained: Tensor, code: int
                  ) -> tuple[list[Tensor], Optional[Tensor], Tensor]:
        x_mse = synth.real_output(acc)
        mse_picture = picture_from_real(x_mse)
        ctx: list[Tensor] = []
        x_init = None
        if self.config.use_x_mse:
            x_init = torch.clamp(x_mse, 0.0, 1.0).mul_(2.0).sub_(1.0)  # exact on the 2^−F grid
            ctx.append(to_grid(x_init, self.grid))
        ctx.extend(feats[::-1])  # fine-to-coarse, like g_s.forward_features
        if self.config.use_y_hat:
            ctx.append(synth.input_grid(y_hat_gained.to(self.device), code))
        if len(ctx) != self.unet.n_contexts:
            raise ValueError(f"the diffusion decoder expects {self.unet.n_contexts} contexts, "
                             f"got {len(ctx)}")
        return ctx, x_init, mse_picture

    @torch.no_grad()
    def decode(self, synth: ExactSynthesis, y_hat_gained: Tensor, code: int, steps: int, seed: int,
               callback: Optional[StepCallback] = None,
               on_x0: Optional[X0Callback] = None) -> tuple[Tensor, Tensor]:
        """(uint8 B×3×H×W sample of x ~ p(x | ŷ), uint8 MSE picture) — docs/methods.md §7.2–7.3.

        ``callback(i, steps)`` runs before step i (it may raise to cancel); ``on_x0(i, steps,
        picture)`` receives the network's x̂0 of step i as a uint8 picture (the studio's step
        scrubber); neither changes the result."""
        steps = int(steps)
        if steps < 1:
            raise ValueError(f"diffusion steps must be >= 1, got {steps}")
        check_diffusion_fits(16 * y_hat_gained.shape[-2], 16 * y_hat_gained.shape[-1])
        ctx, x_init, mse_picture = self.contexts(synth, y_hat_gained, code)
        b = y_hat_gained.shape[0]
        h, w = 16 * y_hat_gained.shape[-2], 16 * y_hat_gained.shape[-1]
        adapted = self.unet.adapt(ctx, (h, w))
        del ctx  # the projected contexts are all the sampler needs
        x = self._sample(adapted, x_init, (b, 3, h, w), steps, seed, 0, callback, on_x0)
        return self._picture(x), mse_picture

    def _sample(self, adapted: Any, x_init: Optional[Tensor], shape: tuple[int, ...],
                steps: int, seed: int, stream: int, callback: Optional[StepCallback] = None,
                on_x0: Optional[X0Callback] = None) -> Tensor:
        """The sampler on one picture (or tile) of ``shape`` given its contexts projected by
        ``unet.adapt``: the last step's values (real, on the pixel grid, before the 1/a_0
        rescaling), noise from Philox ``stream``."""
        c = self.config
        h, w = shape[-2:]
        dct = self.dct(h, w)
        lam = heat_eigenvalues_exact(h, w)  # the schedule runs on the CPU (H×W elementwise)
        sch = self.schedule
        shape = tuple(shape)
        alpha1, sigma1 = (v.to(self.device) for v in sch.alpha_sigma(1.0, lam))
        x = normal(shape, seed, 0, self.device, stream) * sigma1
        if x_init is not None:
            x = x + dct.idct2(dct.dct2(x_init) * alpha1)
        pairs = step_pairs(steps)
        for i, (t, s) in enumerate(pairs):
            if callback is not None:
                callback(i, steps)
            out = self.unet(x, t, adapted)
            last = i == len(pairs) - 1
            co = {k: v.to(self.device) for k, v in sch.posterior(t, s, lam).items()}
            u_t = dct.dct2(x)
            if c.param == "x":
                x0 = torch.clamp(out, -1.0, 1.0) if c.clip_x0 else out
                if on_x0 is not None:
                    on_x0(i, steps, picture_from_real((x0 + 1.0) * 0.5))
                mean = co["c_t"] * u_t + co["c_0"] * dct.dct2(x0)
            else:
                mean = co["c_t"] * u_t + co["c_x"] * (u_t - co["sig_t"] * dct.dct2(out))
            if not last:
                mean = mean + co["noise"] * normal(shape, seed, i + 1, self.device, stream)
            x = dct.idct2(mean)
        return x

    def _picture(self, x: Tensor) -> Tensor:
        """uint8 picture of the sampler's last values: round(clamp((x/a_0 + 1)/2, 0, 1)·255)."""
        a0, _ = self.schedule.noise_scales(0.0)
        x = dmath.div(x, a0.to(x.device))
        return picture_from_real((x + 1.0) * 0.5)

    @torch.no_grad()
    def decode_tiled(self, synth: ExactSynthesis, y_hat_gained: Tensor, code: int, steps: int,
                     seed: int, tile: int, overlap: int, size: Optional[tuple[int, int]] = None,
                     callback: Optional[StepCallback] = None, mse: Union[bool, str] = True
                     ) -> tuple[np.ndarray, Union[np.ndarray, int, None]]:
        """(H×W×3 uint8 picture of the tiled sampler, the MSE picture's: H×W×3 uint8 picture
        (``mse=True``), None (``False``) or its CRC32 (``"crc"``, the value
        :func:`~lic_core.bitstream.checks.picture_crc` gives)) of one image, cropped to ``size``
        (default: the padded size) — docs/diffusion.md "Big pictures".

        The tiles of :class:`~.tiles.TileGrid` (padded size, ``tile``, ``overlap``) one at a time:
        contexts of the tile's region (:meth:`region_contexts`), :meth:`_sample` with the tile's
        noise stream, its last values ×2^20 (grid integers) times its integer blend weights added
        into a band of tile rows; a band's rows no later tile touches are final: ×2^−(20+2B)
        (exact) and :meth:`_picture`, written into the output.  Memory: one tile's sampler, the
        band (3 float64 per pixel of T rows) and the pictures (``mse="crc"``: the MSE picture's
        rows of the band only).  ``callback(i, total)`` before every step of every tile
        (total = steps × tiles)."""
        steps = int(steps)
        if steps < 1:
            raise ValueError(f"diffusion steps must be >= 1, got {steps}")
        if isinstance(mse, str) and mse != "crc":
            raise ValueError(f"mse must be True, False or 'crc', got {mse!r}")
        if y_hat_gained.shape[0] != 1:
            raise ValueError("the tiled sampler decodes one image")
        hp, wp = 16 * y_hat_gained.shape[-2], 16 * y_hat_gained.shape[-1]
        hh, ww = size if size is not None else (hp, wp)
        grid = TileGrid(hp, wp, int(tile), int(overlap))
        check_tiled_diffusion_fits(hp, wp, grid.tile_size)
        th, tw = grid.tile_size
        tiles = grid.tiles()
        total = steps * len(tiles)
        out = np.empty((hh, ww, 3), dtype=np.uint8)
        mse_out = np.empty((hh, ww, 3), dtype=np.uint8) if mse and mse != "crc" else None
        # mse="crc" (a coder needs only the MSE picture's check value): only its rows of the
        # current band of tile rows, CRC'd once final — not a whole picture beside the sampler
        # (3 bytes per pixel: 0.14 GB at 48 MP); a CRC32 chained over consecutive rows is the
        # whole C-order picture's.  The next row of tiles writes all of the band's rows again
        # (its tiles cover every column; overlaps get the same exact values), so none move.
        mse_band = np.empty((th, ww, 3), dtype=np.uint8) if mse == "crc" else None
        mse_crc = 0
        pix = PIXEL_GRID.scale  # last values are integers × 2^−20
        unscale = 2.0 ** -(PIXEL_GRID.frac_bits + 2 * BLEND_BITS)
        band: Optional[Tensor] = None
        band_top = 0

        def flush(stop: int) -> None:
            """Write the band's rows [band_top, stop) into the picture, FLUSH_ROWS at a time (the
            float64 temporaries of a whole band row of a 48 MP picture are ~0.15 GB each)."""
            nonlocal mse_crc
            n = min(stop, hh) - band_top
            for a in range(0, max(n, 0), FLUSH_ROWS):
                b = min(a + FLUSH_ROWS, n)
                x = band[..., a:b, :ww] * unscale  # exact: a power of two
                out[band_top + a:band_top + b] = self._picture(x)[0].permute(1, 2, 0).cpu().numpy()
            if mse_band is not None and n > 0:
                mse_crc = zlib.crc32(mse_band[:n], mse_crc)

        for t in tiles:
            if t.c0 == 0:  # a new row of tiles: the rows above its start are final
                if band is not None:
                    flush(t.r0)
                    # shift the kept rows up in place (a copy of the overlap only, not a second
                    # band: the band of a 48 MP picture is ~0.2 GB)
                    keep = band[..., t.r0 - band_top:, :].clone()
                    band.zero_()
                    band[..., :keep.shape[-2], :] = keep
                    del keep
                    # the flush's float64 temporaries (several of FLUSH_ROWS × width × 3) back to
                    # the system before this tile's sampler: without this, measured at 12 MP
                    # (`lic compress`, 1 thread, 1 step, T = 768), a tile row's first tile
                    # started 0.14–0.16 GB above the row's other tiles (0.06–0.09 GB at 3 MP)
                    release_free_memory()
                else:
                    band = torch.zeros((1, 3, th, wp), dtype=torch.float64, device=self.device)
                band_top = t.r0
            region = ((t.r0, t.r0 + th), (t.c0, t.c0 + tw))
            ctx, x_init, mse_pic = self.region_contexts(synth, y_hat_gained, code, region)
            if mse_out is not None or mse_band is not None:
                r1, c1 = min(t.r0 + th, hh), min(t.c0 + tw, ww)
                if t.r0 < r1 and t.c0 < c1:
                    rows = (mse_out[t.r0:r1] if mse_out is not None
                            else mse_band[t.r0 - band_top:r1 - band_top])
                    rows[:, t.c0:c1] = (mse_pic[0, :, :r1 - t.r0, :c1 - t.c0]
                                        .permute(1, 2, 0).cpu().numpy())
            del mse_pic

            def cb(i: int, _total: int, k: int = t.index) -> None:
                if callback is not None:
                    callback(k * steps + i, total)

            adapted = self.unet.adapt(ctx, (th, tw))
            del ctx
            x = self._sample(adapted, x_init, (1, 3, th, tw), steps, seed, t.stream, cb)
            del adapted, x_init
            x = x.mul_(pix).mul_(t.weights().to(x.device))  # grid integers × weights: exact
            band[..., t.r0 - band_top:t.r0 - band_top + th, t.c0:t.c0 + tw] += x
            del x
            # hand the tile sampler's freed pages back before the next tile: a CLI process keeps
            # up to 1 GB of freed heap for reuse (lic_core.memory.reuse_freed_memory), which the
            # next tile's differently sized temporaries only partly reuse — measured at 48 MP
            # (T = 768), resident memory crept up by 0.9 GB over the tiles without this.  The cost
            # of faulting those pages in again was not measured on its own; it is a part of
            # the 7.7 s a 48 MP tile takes (benchmarks/scale.py: whole compress 737 s, 96 tiles)
            release_free_memory()
        flush(hp)
        return out, (mse_crc & 0xFFFFFFFF if mse_band is not None else mse_out)


#: picture rows the tiled sampler converts to uint8 at a time (bounds its float64 temporaries)
FLUSH_ROWS = 128


def exact_diffusion(decoder: Any, device="cpu") -> ExactDiffusion:
    """The exact version of a diffusion decoder, built once per weights and device."""
    dev = torch.device(device)
    return cached(decoder, f"diffusion:{dev}", (decoder,),
                  lambda: ExactDiffusion(decoder, device=dev))
