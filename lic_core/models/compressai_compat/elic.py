"""ELIC as CompressAI 1.2.8 builds it (``elic2022-official``, ``elic2022-chandelier``),
state-dict compatible and coded with our table coder.

He et al. 2022, "ELIC: Efficient Learned Image Compression with Unevenly Grouped Space-Channel
Contextual Adaptive Coding" (CVPR 2022): y is split along channels into uneven groups (16, 16,
32, 64, M − 128 by default: the first channels carry most of the energy, so small groups there
buy the most context for the fewest sequential steps).  Group k is predicted from

* the hyperprior (h_s(ẑ)),
* a *channel context* g_ch^(k): 5×5 convolutions over the groups decoded before it, and
* a *spatial context* g_sp^(k): the checkerboard context of He et al. 2021, "Checkerboard
  Context Model for Efficient Learned Image Compression" (CVPR 2021) — the "anchor" half of the
  positions ((i + j) even) is coded without spatial context, then the other half from a masked
  5×5 convolution over the decoded anchors,

joined by a pointwise "parameter aggregation" network into a mean and a scale per latent.

The two CompressAI variants differ in four places: the last layer of h_s (Official: a 3×3
transposed conv to 2N channels; Chandelier: a 3×3 conv to 2M), the channel context's input
(Official: all previous groups; Chandelier: the first and the latest group), the aggregation
network (Official: a linear channel ramp; Chandelier: 2M → 512 → 2·g), and the order of the
two parameter halves (Official: scales then means; Chandelier: means then scales).

Module names follow CompressAI's latent codec tree (``latent_codec.y.latent_codec.y0.…``,
``latent_codec.hyper.h_s.…``) so a user's checkpoint loads as it is.  :meth:`code` reproduces the
tensor shapes and float32 operation order of CompressAI's ``compress()``/``decompress()`` (the
checkerboard halves are packed to half width exactly as CompressAI packs them before the
aggregation network), so ŷ and ẑ are bit-identical to CompressAI's; only the entropy coder
differs.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn

from ...errors import CheckpointError
from .base import Coded, CompatModel
from .entropy import EntropyBottleneck, GaussianConditional
from .layers import AttentionBlock, MaskedConv2d, conv, conv1x1, conv3x3, deconv

#: y is the picture downsampled 16×, z another 4× (CompressAI's 64-multiple padding covers both)
Y_STRIDE, Z_STRIDE = 16, 64
#: the fixed widths of ELIC's channel-context networks (224 and 128 in both variants)
CHANNEL_CONTEXT_WIDTHS = (224, 128)
#: the first four group sizes of the default uneven split; the last group takes the rest
DEFAULT_GROUP_HEAD = (16, 16, 32, 64)

_STEPS = ("anchor", "non-anchor")
_PREFIX = "latent_codec.y.latent_codec"


def default_groups(M: int) -> list[int]:
    """He et al. 2022's uneven split of M channels: [16, 16, 32, 64, M − 128]."""
    return [*DEFAULT_GROUP_HEAD, M - sum(DEFAULT_GROUP_HEAD)]


# ---------------------------------------------------------------------------------- layers
class ResidualBottleneckBlock(nn.Module):
    """1×1 (to half width) → ReLU → 3×3 → ReLU → 1×1, plus the input: the cheap residual block
    ELIC stacks three at a time in g_a and g_s (He et al. 2022)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        mid = min(in_ch, out_ch) // 2
        self.conv1 = conv1x1(in_ch, mid)
        self.relu1 = nn.ReLU()
        self.conv2 = conv3x3(mid, mid)
        self.relu2 = nn.ReLU()
        self.conv3 = conv1x1(mid, out_ch)
        # parameter-free when the widths agree (CompressAI stores nothing under ``skip`` then)
        self.skip = conv1x1(in_ch, out_ch) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self.relu2(self.conv2(self.relu1(self.conv1(x)))))
        return out + self.skip(x)


class CheckerboardMaskedConv2d(MaskedConv2d):
    """The spatial context g_sp of He et al. 2021: a convolution that sees only the positions of
    the other checkerboard colour, i.e. where (i + j) is odd relative to the kernel centre (the
    anchors, when it predicts a non-anchor).  The mask is the checkpoint's ``mask`` buffer."""

    def __init__(self, *args, mask_type: str = "A", **kwargs) -> None:
        super().__init__(*args, mask_type=mask_type, **kwargs)
        kh, kw = self.mask.shape[-2:]
        i = torch.arange(kh).reshape(-1, 1)
        j = torch.arange(kw).reshape(1, -1)
        mask = ((i + j) % 2 == 1).to(self.mask.dtype).expand_as(self.mask).clone()
        mask[:, :, kh // 2, kw // 2] = float(mask_type == "B")
        self.mask.copy_(mask)


# ------------------------------------------------------------------------ checkerboard packing
def split_checkerboard(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """B×C×h×w → (anchors, non-anchors), each B×C×h×(w/2): row r keeps the columns of its colour
    (anchors: (r + col) even).  CompressAI runs the aggregation network and the Gaussian
    conditional on this packed layout, so we do too (same shapes, same float results)."""
    B, C, h, w = t.shape
    cells = t.reshape(B, C, h // 2, 2, w // 2, 2)  # 2×2 cells: [row parity, col parity]
    anchors = torch.stack((cells[:, :, :, 0, :, 0], cells[:, :, :, 1, :, 1]), dim=3)
    others = torch.stack((cells[:, :, :, 0, :, 1], cells[:, :, :, 1, :, 0]), dim=3)
    return anchors.reshape(B, C, h, w // 2), others.reshape(B, C, h, w // 2)


def merge_checkerboard(anchors: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`split_checkerboard`."""
    B, C, h, half = anchors.shape
    a = anchors.reshape(B, C, h // 2, 2, half)
    o = others.reshape(B, C, h // 2, 2, half)
    even_rows = torch.stack((a[:, :, :, 0], o[:, :, :, 0]), dim=-1)  # anchor first
    odd_rows = torch.stack((o[:, :, :, 1], a[:, :, :, 1]), dim=-1)   # non-anchor first
    return torch.stack((even_rows, odd_rows), dim=3).reshape(B, C, h, 2 * half)


def anchor_mask(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """h×w booleans, True at the anchors ((i + j) even)."""
    i = torch.arange(h, device=device).reshape(-1, 1)
    j = torch.arange(w, device=device).reshape(1, -1)
    return (i + j) % 2 == 0


# ------------------------------------------------------------------ latent codec tree (names)
class _GaussianLeaf(nn.Module):
    """Where CompressAI's ``GaussianConditionalLatentCodec`` keeps its Gaussian conditional;
    ``chunks`` says which half of the parameters is the scale."""

    def __init__(self, chunks: tuple[str, str]) -> None:
        super().__init__()
        self.gaussian_conditional = GaussianConditional()
        self.entropy_parameters = nn.Identity()
        self.chunks = chunks

    def scales_means(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first, second = params.chunk(2, 1)
        return (first, second) if self.chunks == ("scales", "means") else (second, first)


class _SpaceChannelGroup(nn.Module):
    """One group's checkerboard codec (CompressAI's ``CheckerboardLatentCodec``): the spatial
    context g_sp^(k), the parameter aggregation, and the Gaussian leaf under ``y``."""

    def __init__(self, context_prediction: nn.Module, entropy_parameters: nn.Module,
                 leaf: _GaussianLeaf) -> None:
        super().__init__()
        self.entropy_parameters = entropy_parameters
        self.context_prediction = context_prediction
        self.y = leaf


class _ChannelGroups(nn.Module):
    """CompressAI's ``ChannelGroupsLatentCodec``: g_ch^(k) for k ≥ 1 and one codec per group."""

    def __init__(self, channel_context: dict, groups: dict) -> None:
        super().__init__()
        self.channel_context = nn.ModuleDict(channel_context)
        self.latent_codec = nn.ModuleDict(groups)


class _HyperSide(nn.Module):
    """CompressAI's ``HyperLatentCodec``: z = h_a(y) under the entropy bottleneck, h_s(ẑ)."""

    def __init__(self, entropy_bottleneck: EntropyBottleneck, h_a: nn.Module,
                 h_s: nn.Module) -> None:
        super().__init__()
        self.entropy_bottleneck = entropy_bottleneck
        self.h_a = h_a
        self.h_s = h_s


class _Hyperprior(nn.Module):
    """CompressAI's ``HyperpriorLatentCodec``: the ``y`` codec and the ``hyper`` side branch."""

    def __init__(self, y: _ChannelGroups, hyper: _HyperSide) -> None:
        super().__init__()
        self.y = y
        self.hyper = hyper


# ------------------------------------------------------------------------------------ models
class _Elic(CompatModel):
    """What both ELIC variants share: the transforms, the codec tree and the coding procedure.
    Subclasses choose the four variant-specific pieces (see the module docstring)."""

    gaussian = True
    #: which half of the aggregated parameters is the scale
    chunks: tuple[str, str] = ("scales", "means")

    def __init__(self, N: int = 192, M: int = 320, groups: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        self.N, self.M = int(N), int(M)
        self.groups = [int(g) for g in (groups if groups is not None else default_groups(M))]
        if sum(self.groups) != self.M or min(self.groups) < 1:
            raise ValueError(f"channel groups {self.groups} must be positive and sum to M={M}")
        self.g_a = self._analysis(self.N, self.M)
        self.g_s = self._synthesis(self.N, self.M)
        h_a = nn.Sequential(conv(M, N, 3, 1), nn.ReLU(), conv(N, N), nn.ReLU(), conv(N, N))
        h_s = nn.Sequential(deconv(N, N), nn.ReLU(), deconv(N, N * 3 // 2), nn.ReLU(),
                            self._hyper_last(N, M))
        side = self._side_channels()
        channel_context = {
            f"y{k}": nn.Sequential(
                conv(self._channel_context_width(k), CHANNEL_CONTEXT_WIDTHS[0], 5, 1), nn.ReLU(),
                conv(*CHANNEL_CONTEXT_WIDTHS, 5, 1), nn.ReLU(),
                conv(CHANNEL_CONTEXT_WIDTHS[1], 2 * g, 5, 1))
            for k, g in enumerate(self.groups) if k > 0}
        per_group = {
            f"y{k}": _SpaceChannelGroup(
                CheckerboardMaskedConv2d(g, 2 * g, kernel_size=5, stride=1, padding=2),
                # input: spatial context, channel context (k > 0), hyperprior parameters
                self._aggregation(2 * g + (k > 0) * 2 * g + side, 2 * g),
                _GaussianLeaf(self.chunks))
            for k, g in enumerate(self.groups)}
        self.latent_codec = _Hyperprior(_ChannelGroups(channel_context, per_group),
                                        _HyperSide(EntropyBottleneck(N), h_a, h_s))

    # ------------------------------------------------------------ the variant-specific pieces
    def _hyper_last(self, N: int, M: int) -> nn.Module:
        raise NotImplementedError

    def _side_channels(self) -> int:
        """Channels of h_s(ẑ)."""
        raise NotImplementedError

    def _aggregation(self, c_in: int, c_out: int) -> nn.Sequential:
        raise NotImplementedError

    def _channel_context_width(self, k: int) -> int:
        raise NotImplementedError

    def _channel_context_input(self, decoded: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------------- transforms
    @staticmethod
    def _analysis(N: int, M: int) -> nn.Sequential:
        """g_a: four stride-2 5×5 convs, three residual bottlenecks after each of the first
        three, attention after the second stage and at the end (He et al. 2022)."""
        rb = lambda: [ResidualBottleneckBlock(N, N) for _ in range(3)]
        return nn.Sequential(conv(3, N), *rb(), conv(N, N), *rb(), AttentionBlock(N),
                             conv(N, N), *rb(), conv(N, M), AttentionBlock(M))

    @staticmethod
    def _synthesis(N: int, M: int) -> nn.Sequential:
        """g_s: the mirror of g_a with stride-2 transposed convs."""
        rb = lambda: [ResidualBottleneckBlock(N, N) for _ in range(3)]
        return nn.Sequential(AttentionBlock(M), deconv(M, N), *rb(), deconv(N, N),
                             AttentionBlock(N), *rb(), deconv(N, N), *rb(), deconv(N, 3))

    # ---------------------------------------------------------------------------- sizing
    @classmethod
    def sizes_from_state_dict(cls, sd: dict) -> dict:
        """Constructor kwargs (N, M, groups) read from the shapes of a cleaned state dict."""
        return _sizes(sd, cls.arch)

    # ----------------------------------------------------------------------------- pieces
    def _group(self, k: int) -> _SpaceChannelGroup:
        return self.latent_codec.y.latent_codec[f"y{k}"]

    def _group_params(self, k: int, side: torch.Tensor,
                      decoded: list[torch.Tensor]) -> torch.Tensor:
        """The input parameters of group k: [g_ch^(k)(previous groups), h_s(ẑ)] (the hyperprior
        alone for the first group), in CompressAI's concatenation order."""
        if k == 0:
            return side
        net = self.latent_codec.y.channel_context[f"y{k}"]
        return torch.cat((net(self._channel_context_input(decoded)), side), dim=1)

    # ------------------------------------------------------------------------------ coding
    @torch.no_grad()
    def code(self, coder, x: Optional[torch.Tensor], padded_hw: tuple[int, int]) -> Coded:
        """Encode ``x`` (1×3×H×W, H and W multiples of 64) or decode (x None): ẑ, then group by
        group the anchors and the non-anchors, labels ``z``, ``y{k}/anchor``,
        ``y{k}/non-anchor``."""
        H, W = padded_hw
        if H % Z_STRIDE or W % Z_STRIDE:
            raise ValueError(f"ELIC codes pictures padded to multiples of {Z_STRIDE}, not {H}×{W}")
        hyper = self.latent_codec.hyper
        y = None if x is None else self.g_a(x)
        B = 1 if x is None else x.shape[0]
        z = None if y is None else hyper.h_a(y)
        z_shape = (B, self.N, H // Z_STRIDE, W // Z_STRIDE) if z is None else tuple(z.shape)
        z_hat = hyper.entropy_bottleneck.code(coder, "z", z, z_shape)
        side = hyper.h_s(z_hat)
        h, w = H // Y_STRIDE, W // Y_STRIDE
        parts = [None] * len(self.groups) if y is None else torch.split(y, self.groups, dim=1)
        decoded, means, scales, likelihoods = [], [], [], []
        for k, (g, part) in enumerate(zip(self.groups, parts)):
            params = self._group_params(k, side, decoded)
            y_hat, mu, sigma = self._code_group(coder, k, part, params, (B, g, h, w))
            decoded.append(y_hat)
            means.append(mu)
            scales.append(sigma)
            gc = self._group(k).y.gaussian_conditional
            likelihoods.append(gc.likelihood(y_hat, sigma, mu))
        return Coded(y_hat=torch.cat(decoded, dim=1), z_hat=z_hat,
                     means=torch.cat(means, dim=1), scales=torch.cat(scales, dim=1),
                     likelihoods={"y": torch.cat(likelihoods, dim=1),
                                  "z": hyper.entropy_bottleneck.likelihood(z_hat)},
                     groups=list(self.groups))

    def _code_group(self, coder, k: int, y: Optional[torch.Tensor], params: torch.Tensor,
                    shape: tuple[int, int, int, int]):
        """Code one group in the two checkerboard passes; returns full-size (ŷ, μ, σ).

        Like CompressAI, the anchors' spatial context is all zeros (the masked conv sees
        nothing yet), and the non-anchors' context is the masked conv over the full-size grid
        holding the decoded anchors and zeros elsewhere."""
        group = self._group(k)
        leaf = group.y
        B, C, h, w = shape
        packed_params = split_checkerboard(params)
        packed_y = (None, None) if y is None else split_checkerboard(y)
        context = params.new_zeros((B, 2 * C, h, w // 2))
        hats, mus, sigmas = [], [], []
        for i, step in enumerate(_STEPS):
            if i == 1:
                grid = merge_checkerboard(hats[0], torch.zeros_like(hats[0]))
                context = split_checkerboard(group.context_prediction(grid))[1]
            p = leaf.entropy_parameters(
                group.entropy_parameters(torch.cat((context, packed_params[i]), dim=1)))
            sigma, mu = leaf.scales_means(p)
            hats.append(leaf.gaussian_conditional.code(coder, f"y{k}/{step}", packed_y[i],
                                                       sigma, mu))
            mus.append(mu)
            sigmas.append(sigma)
        return merge_checkerboard(*hats), merge_checkerboard(*mus), merge_checkerboard(*sigmas)

    # ----------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> dict:
        """CompressAI's forward in eval mode (rounding around the medians and means, the
        checkerboard's "twopass" method on full-size tensors): {"x_hat", "likelihoods"}."""
        y = self.g_a(x)
        hyper = self.latent_codec.hyper
        eb = hyper.entropy_bottleneck
        z = hyper.h_a(y)
        med = eb.medians().reshape(1, -1, 1, 1)
        z_hat = torch.round(z - med) + med
        side = hyper.h_s(z_hat)
        decoded, likelihoods = [], []
        for k, part in enumerate(torch.split(y, self.groups, dim=1)):
            y_hat, lik = self._forward_group(k, part, self._group_params(k, side, decoded))
            decoded.append(y_hat)
            likelihoods.append(lik)
        return {"x_hat": self.g_s(torch.cat(decoded, dim=1)),
                "likelihoods": {"y": torch.cat(likelihoods, dim=1), "z": eb.likelihood(z_hat)}}

    def _forward_group(self, k: int, y: torch.Tensor,
                       params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        group = self._group(k)
        leaf = group.y
        B, C, h, w = y.shape
        anchors = anchor_mask(h, w, y.device)
        context = y.new_zeros((B, 2 * C, h, w))
        p_anchor = group.entropy_parameters(torch.cat((context, params), dim=1))
        _, mu = leaf.scales_means(p_anchor)
        y_anchor = torch.where(anchors, torch.round(y - mu) + mu, 0.0)
        context = group.context_prediction(y_anchor)
        p_other = group.entropy_parameters(torch.cat((context, params), dim=1))
        _, mu = leaf.scales_means(p_other)
        y_hat = y_anchor + torch.where(anchors, 0.0, torch.round(y - mu) + mu)
        # the likelihood uses each position's own pass's parameters
        sigma, mu = leaf.scales_means(torch.where(anchors, p_anchor, p_other))
        gc = leaf.gaussian_conditional
        return y_hat, gc.likelihood(torch.round(y - mu) + mu, sigma, mu)


class Elic2022Official(_Elic):
    """ELIC, CompressAI's ``elic2022-official``: the channel context of group k sees every
    earlier group, as in He et al. 2022; parameters are (scales, means)."""

    arch = "elic2022-official"
    chunks = ("scales", "means")

    def _hyper_last(self, N: int, M: int) -> nn.Module:
        return deconv(N * 3 // 2, N * 2, 3, 1)

    def _side_channels(self) -> int:
        return 2 * self.N

    def _aggregation(self, c_in: int, c_out: int) -> nn.Sequential:
        widths = channel_ramp(c_in, c_out, floor=2 * self.N)
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(a, b, kernel_size=1), nn.ReLU()]
        return nn.Sequential(*layers[:-1])

    def _channel_context_width(self, k: int) -> int:
        return sum(self.groups[:k])

    def _channel_context_input(self, decoded: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(decoded, dim=1)


class Elic2022Chandelier(_Elic):
    """ELIC as re-implemented by Chandelier (2023), CompressAI's ``elic2022-chandelier``: the
    channel context of group k sees only the first and the latest decoded group, h_s ends in a
    conv to 2M channels, parameters are (means, scales)."""

    arch = "elic2022-chandelier"
    chunks = ("means", "scales")

    def _hyper_last(self, N: int, M: int) -> nn.Module:
        return conv(N * 3 // 2, M * 2, 3, 1)

    def _side_channels(self) -> int:
        return 2 * self.M

    def _aggregation(self, c_in: int, c_out: int) -> nn.Sequential:
        return nn.Sequential(conv1x1(c_in, 2 * self.M), nn.ReLU(), conv1x1(2 * self.M, 512),
                             nn.ReLU(), conv1x1(512, c_out))

    def _channel_context_width(self, k: int) -> int:
        return self.groups[0] + (self.groups[k - 1] if k > 1 else 0)

    def _channel_context_input(self, decoded: list[torch.Tensor]) -> torch.Tensor:
        # the first group alone for k = 1 (CompressAI passes that tensor through uncopied)
        return decoded[0] if len(decoded) == 1 else torch.cat((decoded[0], decoded[-1]), dim=1)


def channel_ramp(c_in: int, c_out: int, floor: int, layers: int = 3) -> list[int]:
    """Widths of Official ELIC's aggregation network: ``layers + 1`` values stepping linearly
    from c_in to c_out (float32 linspace, floored, as CompressAI's ``sequential_channel_ramp``
    computes them), the hidden ones at least ``floor``."""
    w = torch.linspace(c_in, c_out, layers + 1).floor().int().tolist()
    return [w[0], *(max(v, floor) for v in w[1:-1]), w[-1]]


# ------------------------------------------------------------------------ recognizing a file
def _group_count(sd: dict) -> int:
    k = 0
    while f"{_PREFIX}.y{k}.context_prediction.weight" in sd:
        k += 1
    return k


def _sizes(sd: dict, arch: str) -> dict:
    def need(key: str) -> torch.Tensor:
        v = sd.get(key)
        if not isinstance(v, torch.Tensor) or v.dim() < 2:
            raise CheckpointError(f"not a {arch} checkpoint: expected a tensor '{key}' to size "
                                  f"the model, found {len(sd)} tensors")
        return v

    N = need("g_a.0.weight").shape[0]
    M = need("g_a.13.weight").shape[0]
    K = _group_count(sd)
    if K == 0:
        need(f"{_PREFIX}.y0.context_prediction.weight")
    # the spatial context of group k maps its g channels to 2g
    groups = [need(f"{_PREFIX}.y{k}.context_prediction.weight").shape[1] for k in range(K)]
    if sum(groups) != M:
        raise CheckpointError(f"not a {arch} checkpoint: its channel groups {groups} do not sum "
                              f"to the {M} latent channels")
    return {"N": int(N), "M": int(M), "groups": [int(g) for g in groups]}


def looks_like(sd: dict) -> tuple[str, str] | None:
    """(arch, reason) when ``sd`` is one of CompressAI's two ELIC variants, else None.

    ELIC is the only CompressAI architecture with both a channel-groups codec
    (``latent_codec.y.channel_context``) and residual bottleneck blocks in g_a; the variants
    differ in h_s's last layer: a transposed conv to 2N (Official) or a conv to 2M
    (Chandelier)."""
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    keys = ("latent_codec.y.channel_context.y1.0.weight", f"{_PREFIX}.y0.context_prediction.weight",
            "g_a.1.conv1.weight", "g_a.0.weight", "g_a.13.weight",
            "latent_codec.hyper.h_s.4.weight")
    if not all(isinstance(sd.get(k), torch.Tensor) for k in keys):
        return None
    N, M = sd["g_a.0.weight"].shape[0], sd["g_a.13.weight"].shape[0]
    groups = [sd[f"{_PREFIX}.y{k}.context_prediction.weight"].shape[1]
              for k in range(_group_count(sd))]
    last = tuple(sd["latent_codec.hyper.h_s.4.weight"].shape[:2])
    split = f"{len(groups)} channel groups {groups} with checkerboard spatial context"
    if last == (N * 3 // 2, 2 * N):
        return (Elic2022Official.arch,
                f"ELIC (He et al. 2022): {split}; channel context from all earlier groups")
    if last == (2 * M, N * 3 // 2):
        return (Elic2022Chandelier.arch,
                f"ELIC, Chandelier's re-implementation: {split}; channel context from the first "
                "and the latest group")
    return None
