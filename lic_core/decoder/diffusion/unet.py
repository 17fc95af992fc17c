"""Conditional U-Net ε̂_θ(x_t, t, c) for the blur-dissipated decoder (docs/methods.md §7.3).

CDC/LGEM layout scaled down to the 8 M-parameter budget:

* time: the scalar t ∈ [0, 1] → ``Linear(1, 4·dim) → GELU → Linear(4·dim, dim)`` (docs/methods.md
  §7.3), injected into every ResNet block as a per-channel bias;
* levels at H, H/2, H/4, … with widths ``dim·mults``; ``blocks`` ResNet blocks per level on the
  way down and up (skip per level), stride-2 conv down, nearest + conv up;
* conditioning: :class:`ConditionAdapter` projects each context tensor (the MSE reconstruction
  x̂, the synthesis-transform features at H/2, H/4, H/8 and ŷ at H/16) to the U-Net width of the
  level with the matching resolution; the result is concatenated to the features *before the first
  ResNet block of that level* (finest first, CDC ``Unet.encode``);
* one cheap linear attention (O(N) in pixels) in the middle block at the lowest resolution only.

Input sizes need not be multiples of anything: x is replicate-padded at the bottom/right to a
multiple of 2^(levels−1) and the output cropped back; contexts are padded the same way so that
they stay pixel-aligned with x.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .schedules import BlurSchedule

__all__ = ["DiffusionConfig", "ConditionAdapter", "CondUNet", "count_parameters"]


@dataclass
class DiffusionConfig:
    """Everything that defines a diffusion decoder (stored as JSON in its safetensors file).

    cond_channels / cond_scales: one entry per context tensor, in the order the decoder assembles
    them (``[x̂_mse, *g_s features fine-to-coarse, ŷ]``); scale = image size / context size.
    param: what the U-Net predicts, "x" (x̂0, default) or "eps" (ε, docs/methods.md §7.2). See
    docs/diffusion.md: with an imperfect network the ε form amplifies errors by σ_t/α_t in the
    frequencies a step un-dissipates, which ruined samples in a CPU experiment; the x form does
    not divide by α. clip_x0: clip x̂0 to [−1, 1] while sampling (x form).
    loss / min_snr: "l2" | "l1"; eps: min-SNR-γ weight ``min(SNR,γ)/SNR``; x: ``min(SNR,γ)``.

    arch: the network. "lite" (the default, sized for a CPU decode, :mod:`.lite`): the U-Net runs
    at H/``unshuffle`` on pixel-unshuffled input, a light full-resolution head (``head_dim``
    channels) follows, and with ``residual`` it predicts x̂0 as the MSE picture plus a residual,
    so it only learns what the MSE decoder cannot give. "unet" (:class:`CondUNet` at full
    resolution, 7.3 M parameters, :meth:`full`): the first design, ~40× the decode cost.
    """

    name: str = "lic-diffusion"
    codec: str = "lic-lgem"
    arch: str = "lite"
    dim: int = 48
    mults: tuple[int, ...] = (1, 2, 2)
    blocks: int = 1
    attn_heads: int = 4
    attn_dim_head: int = 32
    unshuffle: int = 4
    head_dim: int = 16
    residual: bool = True
    act: str = "relu"
    sigma_b_max: float = 20.0
    d_min: float = 1e-3
    logsnr_min: float = -10.0
    logsnr_max: float = 10.0
    steps: int = 6
    cond_channels: tuple[int, ...] = (3, 128, 128, 128, 320)
    cond_scales: tuple[int, ...] = (1, 2, 4, 8, 16)
    use_x_mse: bool = True
    use_y_hat: bool = True
    param: str = "x"
    clip_x0: bool = True
    loss: str = "l2"
    min_snr: Optional[float] = None
    inv_alpha_max: float = 10.0
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mults = tuple(int(m) for m in self.mults)
        self.cond_channels = tuple(int(c) for c in self.cond_channels)
        self.cond_scales = tuple(int(s) for s in self.cond_scales)
        if len(self.cond_channels) != len(self.cond_scales):
            raise ValueError("cond_channels and cond_scales must have the same length")
        for s in self.cond_scales:
            if s < 1 or s & (s - 1):
                raise ValueError(f"context scales must be powers of two, got {s}")
        if self.param not in ("x", "eps"):
            raise ValueError(f"param must be 'x' or 'eps', got {self.param!r}")
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {tuple(ACTIVATIONS)}, got {self.act!r}")
        if self.arch == "lite":
            r = int(self.unshuffle)
            if r < 1 or r & (r - 1):
                raise ValueError(f"unshuffle must be a power of two, got {r}")
            if self.residual and (not self.use_x_mse or self.param != "x"):
                raise ValueError("a residual decoder predicts x̂0 around the MSE picture: it "
                                 "needs use_x_mse and param 'x'")

    @property
    def schedule(self) -> BlurSchedule:
        return BlurSchedule(self.sigma_b_max, self.d_min, self.logsnr_min, self.logsnr_max)

    @property
    def level_channels(self) -> list[int]:
        return [self.dim * m for m in self.mults]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DiffusionConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        d = dict(d)
        d.setdefault("arch", "unet")  # files written before the "lite" network existed
        d.setdefault("act", "silu")
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def full(cls, **overrides) -> "DiffusionConfig":
        """The first, full-resolution design (7.3 M parameters, 25 steps): GPU-sized."""
        base = dict(FULL_SIZE)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def tiny(cls, **overrides) -> "DiffusionConfig":
        """A tiny full-resolution U-Net for tests (matches lic-lgem-tiny: N=16, M=32)."""
        base = dict(name="lic-diffusion-tiny", codec="lic-lgem-tiny", arch="unet", act="silu", dim=8,
                    mults=(1, 2, 2, 3), blocks=1, attn_heads=2, attn_dim_head=8, steps=4,
                    residual=False, cond_channels=(3, 16, 16, 16, 32),
                    cond_scales=(1, 2, 4, 8, 16))
        base.update(overrides)
        return cls(**base)

    @classmethod
    def tiny_lite(cls, **overrides) -> "DiffusionConfig":
        """A tiny CPU-sized ("lite") decoder for tests and smoke runs (lic-lgem-tiny contexts)."""
        base = dict(name="lic-diffusion-tiny", codec="lic-lgem-tiny", arch="lite", dim=8,
                    mults=(1, 2), blocks=1, attn_heads=2, attn_dim_head=8, head_dim=4, steps=3,
                    cond_channels=(3, 16, 16, 16, 32), cond_scales=(1, 2, 4, 8, 16))
        base.update(overrides)
        return cls(**base)


#: the networks a config can name
ARCHS = ("lite", "unet")
#: the architecture fields of the full-resolution U-Net (:meth:`DiffusionConfig.full`)
FULL_SIZE: dict = dict(name="lic-diffusion-full", arch="unet", act="silu", dim=48,
                       mults=(1, 2, 3, 3), blocks=2, attn_heads=4, attn_dim_head=32, steps=25,
                       residual=False)
#: the ResBlocks' nonlinearity: SiLU (CDC, the full U-Net) or ReLU (the CPU network: on the
#: exact path a ReLU is the clamp of the rounding, while SiLU costs a deterministic exp per value)
ACTIVATIONS = {"silu": F.silu, "relu": F.relu}
#: fields that say what network a config builds (copied by ``--diffusion-config`` presets)
ARCH_FIELDS = ("name", "arch", "act", "dim", "mults", "blocks", "attn_heads", "attn_dim_head",
               "unshuffle", "head_dim", "residual", "steps")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _groups(c: int) -> int:
    for g in (8, 4, 2, 1):
        if c % g == 0:
            return g
    return 1


class ResBlock(nn.Module):
    """GroupNorm → act → conv3×3, + time bias, GroupNorm → act → conv3×3, residual
    (act: SiLU, or ReLU for the CPU network)."""

    def __init__(self, cin: int, cout: int, tdim: int, act: str = "silu") -> None:
        super().__init__()
        self.act = act
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(tdim, cout)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        act = ACTIVATIONS[self.act]
        h = self.conv1(act(self.norm1(x)))
        h = h + self.temb(temb)[:, :, None, None]
        h = self.conv2(act(self.norm2(h)))
        return h + self.skip(x)


class LinearAttention(nn.Module):
    """Linear attention (softmax over features for q, over positions for k): O(N·d²)."""

    def __init__(self, c: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        hidden = heads * dim_head
        self.norm = nn.GroupNorm(1, c)
        self.qkv = nn.Conv2d(c, 3 * hidden, 1, bias=False)
        self.out = nn.Conv2d(hidden, c, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, self.dim_head, h * w).unbind(1)
        q = q.softmax(dim=-2) * self.dim_head ** -0.5
        k = k.softmax(dim=-1)
        ctx = torch.einsum("bhdn,bhen->bhde", k, v)
        out = torch.einsum("bhde,bhdn->bhen", ctx, q)
        return x + self.out(out.reshape(b, -1, h, w))


def _fit(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Replicate-pad or crop at the bottom/right to ``size`` (keeps the top-left alignment)."""
    h, w = x.shape[-2:]
    x = x[..., : size[0], : size[1]]
    ph, pw = max(0, size[0] - h), max(0, size[1] - w)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


class ConditionAdapter(nn.Module):
    """Projects each context tensor to the U-Net width of its level (docs/methods.md §7.3).

    Context i with scale s_i goes to level ``min(log2 s_i, levels−1)``; a context coarser than its
    level (ŷ at H/16 → the H/8 level) is upsampled bilinearly by the exact power of two. Then it is
    padded/cropped to the level's (padded) size. Contexts of the same level are summed.
    """

    def __init__(self, cond_channels: Sequence[int], cond_scales: Sequence[int],
                 level_channels: Sequence[int]) -> None:
        super().__init__()
        n_levels = len(level_channels)
        self.levels = [min(int(round(math.log2(s))), n_levels - 1) for s in cond_scales]
        self.factors = [int(s) // (2 ** lv) for s, lv in zip(cond_scales, self.levels)]
        self.n_levels = n_levels
        self.proj = nn.ModuleList(
            nn.Conv2d(c, level_channels[lv], 3, padding=1) for c, lv in zip(cond_channels, self.levels))

    @property
    def active_levels(self) -> list[bool]:
        return [lv in self.levels for lv in range(self.n_levels)]

    def forward(self, contexts: Sequence[Tensor], level_sizes: Sequence[tuple[int, int]]
                ) -> list[Optional[Tensor]]:
        if len(contexts) != len(self.proj):
            raise ValueError(f"expected {len(self.proj)} context tensors, got {len(contexts)}")
        out: list[Optional[Tensor]] = [None] * self.n_levels
        for ctx, proj, lv, f in zip(contexts, self.proj, self.levels, self.factors):
            h = proj(ctx)
            if f > 1:
                h = F.interpolate(h, scale_factor=f, mode="bilinear", align_corners=False)
            h = _fit(h, level_sizes[lv])
            out[lv] = h if out[lv] is None else out[lv] + h
        return out


class TimeEmbedding(nn.Module):
    """``Linear(1, 4·dim) → GELU → Linear(4·dim, dim)`` on the scalar t (docs/methods.md §7.3)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        return self.net(t.reshape(-1, 1))


class _Level(nn.Module):
    def __init__(self, cin: int, cout: int, blocks: int, tdim: int, act: str = "silu") -> None:
        super().__init__()
        self.blocks = nn.ModuleList([ResBlock(cin, cout, tdim, act)]
                                    + [ResBlock(cout, cout, tdim, act) for _ in range(blocks - 1)])

    def forward(self, h: Tensor, temb: Tensor) -> Tensor:
        for blk in self.blocks:
            h = blk(h, temb)
        return h


class CondUNet(nn.Module):
    """ε̂_θ(x_t, t, contexts). ``forward(x, t, contexts=None, adapted=None)``; see module doc.

    ``channels`` (input = output channels, 3) and ``cond_channels``/``cond_scales`` (default: the
    config's) let :class:`~.lite.LiteUNet` run the same network on pixel-unshuffled tensors.
    """

    def __init__(self, cfg: DiffusionConfig, channels: int = 3,
                 cond_channels: Optional[Sequence[int]] = None,
                 cond_scales: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        self.cfg = cfg
        chs = cfg.level_channels
        n = len(chs)
        self.n_levels = n
        tdim = cfg.dim
        self.time = TimeEmbedding(cfg.dim)
        self.adapter = ConditionAdapter(cfg.cond_channels if cond_channels is None else cond_channels,
                                        cfg.cond_scales if cond_scales is None else cond_scales, chs)
        active = self.adapter.active_levels
        self.init = nn.Conv2d(channels, chs[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = chs[0]
        for i, c in enumerate(chs):
            self.down.append(_Level(prev + (c if active[i] else 0), c, cfg.blocks, tdim, cfg.act))
            if i < n - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
            prev = c
        self.mid1 = ResBlock(chs[-1], chs[-1], tdim, cfg.act)
        self.attn = LinearAttention(chs[-1], cfg.attn_heads, cfg.attn_dim_head)
        self.mid2 = ResBlock(chs[-1], chs[-1], tdim, cfg.act)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(n)):
            self.up.append(_Level(chs[i] * 2, chs[i], cfg.blocks, tdim, cfg.act))
            if i > 0:
                self.upsample.append(nn.Conv2d(chs[i], chs[i - 1], 3, padding=1))
        self.out_norm = nn.GroupNorm(_groups(chs[0]), chs[0])
        self.out = nn.Conv2d(chs[0], channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # start as ε̂ = 0 (standard for ε-prediction)
        nn.init.zeros_(self.out.bias)

    @property
    def multiple(self) -> int:
        return 2 ** (self.n_levels - 1)

    def level_sizes(self, h: int, w: int) -> list[tuple[int, int]]:
        m = self.multiple
        hp, wp = -(-h // m) * m, -(-w // m) * m
        return [(hp >> i, wp >> i) for i in range(self.n_levels)]

    def adapt(self, contexts: Sequence[Tensor], hw: tuple[int, int]) -> list[Optional[Tensor]]:
        """Project the contexts once for an image of size ``hw`` (reused at every step)."""
        return self.adapter(contexts, self.level_sizes(*hw))

    def forward(self, x: Tensor, t: Tensor, contexts: Optional[Sequence[Tensor]] = None,
                adapted: Optional[list[Optional[Tensor]]] = None) -> Tensor:
        h0, w0 = x.shape[-2:]
        sizes = self.level_sizes(h0, w0)
        if adapted is None:
            adapted = self.adapter(contexts, sizes) if len(self.adapter.proj) else [None] * self.n_levels
        x = _fit(x, sizes[0])
        temb = self.time(t.to(x.dtype).expand(x.shape[0]) if t.numel() == 1 else t.to(x.dtype))
        h = self.init(x)
        skips = []
        for i, level in enumerate(self.down):
            if adapted[i] is not None:
                ctx = adapted[i]
                if ctx.shape[0] != h.shape[0]:
                    ctx = ctx.expand(h.shape[0], -1, -1, -1)
                h = torch.cat([h, ctx.to(h.dtype)], dim=1)
            h = level(h, temb)
            skips.append(h)
            if i < self.n_levels - 1:
                h = self.downsample[i](h)
        h = self.mid2(self.attn(self.mid1(h, temb)), temb)
        for j, level in enumerate(self.up):
            i = self.n_levels - 1 - j
            h = level(torch.cat([h, skips[i]], dim=1), temb)
            if i > 0:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
                h = self.upsample[j](h)
        out = self.out(ACTIVATIONS[self.cfg.act](self.out_norm(h)))
        return out[..., :h0, :w0]
