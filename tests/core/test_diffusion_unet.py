"""docs/methods.md §11.5 conditioning plumbing: shapes, context levels (hooks), parameter budget."""
from __future__ import annotations

import pytest
import torch

from lic_core.decoder.diffusion.unet import CondUNet, DiffusionConfig, count_parameters


def _contexts(cfg: DiffusionConfig, b: int, h: int, w: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, c, -(-h // s), -(-w // s), generator=g)
            for c, s in zip(cfg.cond_channels, cfg.cond_scales)]


def test_full_config_parameter_budget() -> None:
    n = count_parameters(CondUNet(DiffusionConfig()))
    print(f"full diffusion U-Net parameters: {n}")
    assert 2_000_000 < n <= 8_000_000


@pytest.mark.parametrize("hw", [(37, 53), (64, 64), (24, 100), (50, 17)])
def test_output_shape_equals_input_shape(hw: tuple[int, int]) -> None:
    torch.manual_seed(0)
    cfg = DiffusionConfig.tiny()
    net = CondUNet(cfg)
    torch.nn.init.normal_(net.out.weight, std=0.02)  # non-zero output to see cropping works
    x = torch.randn(2, 3, *hw)
    out = net(x, torch.tensor([0.1, 0.7]), _contexts(cfg, 2, *hw))
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    assert out.abs().sum() > 0


def test_contexts_arrive_at_expected_levels() -> None:
    torch.manual_seed(0)
    cfg = DiffusionConfig.tiny()
    net = CondUNet(cfg)
    h, w = 37, 53
    sizes = net.level_sizes(h, w)
    assert sizes[0] == (40, 56) and sizes[3] == (5, 7)  # padded to a multiple of 8
    seen: dict[int, torch.Tensor] = {}
    handles = [lvl.blocks[0].register_forward_hook(
        lambda m, inp, out, i=i: seen.__setitem__(i, inp[0].detach()))
        for i, lvl in enumerate(net.down)]
    ctx = _contexts(cfg, 1, h, w)
    adapted = net.adapt(ctx, (h, w))
    net(torch.randn(1, 3, h, w), torch.tensor([0.5]), adapted=adapted)
    for hd in handles:
        hd.remove()
    chs = cfg.level_channels
    # x̂ (scale 1) → level 0, features at H/2, H/4, H/8 → levels 1..3, ŷ (H/16) → level 3
    assert net.adapter.levels == [0, 1, 2, 3, 3]
    for i in range(4):
        inp = seen[i]
        prev = chs[0] if i == 0 else chs[i - 1]
        assert inp.shape[1] == prev + chs[i], f"level {i}: context not concatenated"
        assert tuple(inp.shape[-2:]) == sizes[i]
        # the concatenated part is exactly the adapted context of that level
        assert torch.equal(inp[:, prev:], adapted[i])
    # changing only ŷ changes level 3's context and nothing finer
    ctx2 = list(ctx)
    ctx2[4] = ctx2[4] + 1.0
    adapted2 = net.adapt(ctx2, (h, w))
    for i in range(3):
        assert torch.equal(adapted2[i], adapted[i])
    assert not torch.equal(adapted2[3], adapted[3])


def test_contexts_change_the_prediction_and_time_matters() -> None:
    torch.manual_seed(1)
    cfg = DiffusionConfig.tiny()
    net = CondUNet(cfg)
    torch.nn.init.normal_(net.out.weight, std=0.05)
    x = torch.randn(1, 3, 32, 32)
    c1, c2 = _contexts(cfg, 1, 32, 32, 1), _contexts(cfg, 1, 32, 32, 2)
    t = torch.tensor([0.3])
    a = net(x, t, c1)
    assert not torch.allclose(a, net(x, t, c2))
    assert not torch.allclose(a, net(x, torch.tensor([0.9]), c1))
    with pytest.raises(ValueError):
        net(x, t, c1[:-1])


def test_config_round_trip() -> None:
    cfg = DiffusionConfig(sigma_b_max=32.0, min_snr=5.0)
    again = DiffusionConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert again.schedule.sigma_b_max == 32.0
    with pytest.raises(ValueError):
        DiffusionConfig(cond_channels=(3,), cond_scales=(3,))
