"""The CPU-sized diffusion decoder (issue 13, docs/diffusion.md): the "lite" network (U-Net at
H/4 on pixel-unshuffled input, x̂0 = MSE picture + residual, light full-resolution head), its
exact mirror, and the codec invariants users rely on — same seed same picture, another seed
another, the step count read from the header, the x̂0 of every step for the studio's scrubber."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lic_core.bitstream import pack, unpack
from lic_core.codecs import EncodeParams
from lic_core.codecs.learned import LearnedCodec
from lic_core.decoder.diffusion import DiffusionConfig, DiffusionDecoder
from lic_core.decoder.diffusion.exact import ExactDiffusion
from lic_core.decoder.diffusion.lite import LiteUNet
from lic_core.decoder.diffusion.unet import CondUNet, count_parameters
from lic_core.exact.fixed import to_grid
from lic_core.models import build_model


def _contexts(cfg: DiffusionConfig, h: int, w: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x_mse = torch.rand(1, 3, h, w, generator=g) * 2 - 1
    return [x_mse] + [torch.randn(1, c, h // s, w // s, generator=g) * 0.5
                      for c, s in zip(cfg.cond_channels[1:], cfg.cond_scales[1:])]


def _perturbed(cfg: DiffusionConfig, seed: int = 0) -> DiffusionDecoder:
    """A decoder with every weight moved (the zero-initialised outputs too)."""
    torch.manual_seed(seed)
    dec = DiffusionDecoder(cfg).eval()
    with torch.no_grad():
        for p in dec.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return dec


def test_the_default_decoder_is_the_cpu_sized_one():
    cfg = DiffusionConfig(cond_channels=(3, 64, 64, 64, 320))  # the preview codec's contexts
    assert cfg.arch == "lite" and cfg.unshuffle == 4 and cfg.residual and cfg.act == "relu"
    n = count_parameters(DiffusionDecoder(cfg))
    assert 1_000_000 < n <= 8_000_000
    full = DiffusionConfig.full(cond_channels=cfg.cond_channels)
    assert full.arch == "unet" and isinstance(DiffusionDecoder(full).unet, CondUNet)
    # files written before the lite network existed describe a full-resolution U-Net
    old = {k: v for k, v in full.to_dict().items() if k not in ("arch", "act")}
    assert DiffusionConfig.from_dict(old).arch == "unet"
    assert DiffusionConfig.from_dict(old).act == "silu"


@pytest.mark.parametrize("hw", [(64, 96), (48, 80), (128, 64)])
def test_untrained_network_predicts_the_mse_picture(hw):
    cfg = DiffusionConfig.tiny_lite()
    net = LiteUNet(cfg).eval()
    ctx = _contexts(cfg, *hw)
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        out = net(x, torch.tensor([0.2, 0.8]), ctx)
    assert out.shape == x.shape
    assert torch.equal(out, ctx[0].expand_as(out))  # zero-initialised outputs: x̂0 = x̂_mse


def test_contexts_reach_their_levels_after_unshuffling():
    cfg = DiffusionConfig.tiny_lite()
    net = LiteUNet(cfg).eval()
    h, w = 64, 96
    ctx = _contexts(cfg, h, w)
    a = net.adapt(ctx, (h, w))["levels"]
    assert [t.shape[-2:] for t in a] == [(16, 24), (8, 12)]  # H/4 and H/8 (2 levels)
    # x̂_mse (H) and the H/2 feature are unshuffled to H/4: they change level 0 only;
    # ŷ (H/16) is upsampled into the coarsest level only
    for i, changed in ((0, [0]), (1, [0]), (4, [1])):
        moved = list(ctx)
        moved[i] = moved[i] + 1.0
        b = net.adapt(moved, (h, w))["levels"]
        assert [j for j in range(2) if not torch.equal(a[j], b[j])] == changed, i


def test_exact_mirror_matches_the_float_network():
    cfg = DiffusionConfig.tiny_lite()
    dec = _perturbed(cfg)
    h, w = 64, 96
    ctx = _contexts(cfg, h, w)
    x = torch.randn(1, 3, h, w)
    with torch.no_grad():
        ref = dec.unet(x, torch.tensor([0.4]), ctx).double()
    ex = ExactDiffusion(dec)
    got = ex.unet(x.double(), 0.4, ex.unet.adapt([to_grid(c.double(), ex.grid) for c in ctx],
                                                 (h, w)))
    assert float((got - ref).abs().max()) < 1e-3


def _img(h: int = 64, w: int = 80) -> np.ndarray:
    rng = np.random.RandomState(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 90 * np.sin(xx / (4 + c)) * np.cos(yy / (6 + c)) for c in range(3)], -1)
    return np.clip(base + rng.randn(h, w, 3) * 8, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def codecs():
    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny").eval()
    m.prior.update_tables()
    with torch.no_grad():
        m.gains.gain.weight.mul_(6.0)  # spread a random g_a's latents
    cfg = DiffusionConfig.tiny_lite(cond_channels=(3, 16, 16, 16, 32))
    trained_ish = LearnedCodec("lic-lgem-tiny", model=m, diffusion=_perturbed(cfg),
                               use_finetuned=False)
    untrained = LearnedCodec("lic-lgem-tiny", model=m, diffusion=DiffusionDecoder(cfg).eval(),
                             use_finetuned=False)
    return trained_ish, untrained


def test_same_seed_same_picture_another_seed_another(codecs):
    codec, _ = codecs
    r = codec.encode(_img(), EncodeParams(rate=0.5, decoder="diffusion", seed=11))
    header, sections = unpack(r.data)
    assert header.diffusion_seed == 11
    a = codec.decode(r.data).reconstruction
    assert np.array_equal(a, r.reconstruction) and np.array_equal(a, codec.decode(r.data)
                                                                   .reconstruction)
    other = codec.decode(pack(dataclasses.replace(header, diffusion_seed=12), sections))
    assert not np.array_equal(other.reconstruction, a)
    assert not other.info["picture_checked"]  # no check value for a picture nobody encoded
    # the seed override of the studio's variance map gives the same picture as a re-marked file
    assert np.array_equal(codec.decode(r.data, seed=12).reconstruction, other.reconstruction)


def test_step_count_comes_from_the_header(codecs):
    codec, _ = codecs
    r = codec.encode(_img(), EncodeParams(rate=0.5, decoder="diffusion"))
    header, sections = unpack(r.data)
    assert header.diffusion_steps == codec.diffusion_decoder().config.steps == 3  # its default
    for steps in (3, 5):
        frames = []
        data = pack(dataclasses.replace(header, diffusion_steps=steps), sections)
        codec.decode(data, on_x0=lambda i, n, pic, f=frames: f.append((i, n, pic)))
        assert [(i, n) for i, n, _ in frames] == [(i, steps) for i in range(steps)]
        assert all(p.shape == (64, 80, 3) and p.dtype == np.uint8 for _, _, p in frames)
    # an MSE-marked file carries the step count too (`--decoder diffusion` decodes with it)
    r2 = codec.encode(_img(), EncodeParams(rate=0.5, decoder="mse", diffusion_steps=4))
    assert unpack(r2.data)[0].diffusion_steps == 4


def test_untrained_decoder_gives_the_mse_picture(codecs):
    """x̂0 = x̂_mse + 0: the sampler's last mean is the MSE picture up to the tiny posterior
    weight of the noisy state, so an untrained decoder never invents anything."""
    _, untrained = codecs
    r = untrained.encode(_img(), EncodeParams(rate=0.5, decoder="diffusion"))
    mse = untrained.decode(r.data, decoder="mse").reconstruction.astype(int)
    diff = np.abs(r.reconstruction.astype(int) - mse)
    assert diff.max() <= 2 and (diff <= 1).mean() > 0.99
