"""HiFiC transforms and discriminator: shapes, ChannelNorm statistics, parameter budget
(docs/methods.md §8.1, §8.4; §11 item 27)."""
from __future__ import annotations

import pytest
import torch

from lic_core.models.hific import (
    ChannelNorm,
    HificEncoder,
    HificGenerator,
    build_hific,
    count_parameters,
    get_config,
)
from lic_core.train.hific.discriminator import HificDiscriminator, build_discriminator


def test_encoder_256_gives_cy_by_16x16():
    cfg = get_config("hific-tiny")
    enc = HificEncoder(cfg.widths, cfg.C_y)
    y = enc(torch.rand(1, 3, 256, 256))
    assert y.shape == (1, cfg.C_y, 16, 16)


def test_small_encoder_output_channels():
    cfg = get_config("hific-small")
    assert cfg.C_y == 128
    enc = HificEncoder(cfg.widths, cfg.C_y)
    with torch.no_grad():
        assert enc(torch.rand(1, 3, 64, 64)).shape == (1, 128, 4, 4)


@pytest.mark.parametrize("hw", [(16, 16), (48, 80), (64, 32), (112, 16)])
def test_generator_restores_shape_for_multiples_of_16(hw):
    torch.manual_seed(0)
    cfg = get_config("hific-tiny")
    enc, gen = HificEncoder(cfg.widths, cfg.C_y), HificGenerator(cfg.widths, cfg.C_y, cfg.n_res)
    x = torch.rand(2, 3, *hw)
    assert gen(enc(x)).shape == x.shape


def test_discriminator_one_logit_per_16x16_patch():
    torch.manual_seed(0)
    cfg = get_config("hific-tiny")
    d = build_discriminator(cfg)
    x = torch.rand(2, 3, 64, 96)
    y_hat = torch.randn(2, cfg.C_y, 4, 6)
    assert d(x, y_hat).shape == (2, 1, 4, 6)
    # official widths also give one logit per 16×16 patch
    d_full = HificDiscriminator(cfg.C_y)
    assert d_full(torch.rand(1, 3, 32, 48), torch.randn(1, cfg.C_y, 2, 3)).shape == (1, 1, 2, 3)


def test_discriminator_is_spectrally_normalized():
    d = build_discriminator(get_config("hific-tiny"))
    names = [n for n, _ in d.named_parameters()]
    assert sum("parametrizations.weight.original" in n for n in names) == 4


def test_channelnorm_zero_mean_unit_variance_over_channels():
    torch.manual_seed(0)
    cn = ChannelNorm(64)
    x = torch.randn(3, 64, 5, 7) * 4.0 + torch.randn(3, 1, 5, 7) * 10.0  # per-position offsets
    n = cn.normalize(x)
    assert torch.allclose(n.mean(dim=1), torch.zeros(3, 5, 7), atol=1e-5)
    # unbiased variance over channels is 1 up to ε (ε = 1e-3 against a variance of ~16)
    var = n.var(dim=1, unbiased=True)
    assert torch.allclose(var, torch.ones_like(var), atol=1e-3)
    # the module (γ=1, β=0 at init) equals the bare normalization
    assert torch.allclose(cn(x), n, atol=1e-6)


def test_channelnorm_invariant_to_per_position_scaling():
    torch.manual_seed(1)
    cn = ChannelNorm(32)
    with torch.no_grad():
        cn.gamma.normal_()
        cn.beta.normal_()
    x = torch.randn(2, 32, 6, 6) * 3.0
    s = torch.rand(2, 1, 6, 6) * 20.0 + 0.5  # positive scale per position
    assert torch.allclose(cn(x * s), cn(x), atol=2e-3)
    # the affine is per channel: it changes the output channel by channel
    assert not torch.allclose(cn(x), cn.normalize(x))


def test_channelnorm_runs_in_fp32_and_returns_input_dtype():
    cn = ChannelNorm(16)
    x = (torch.randn(1, 16, 4, 4) * 100).to(torch.bfloat16)
    out = cn(x)
    assert out.dtype == torch.bfloat16
    ref = cn(x.float())
    assert torch.allclose(out.float(), ref, atol=3e-2)


def test_hific_small_fits_the_parameter_budget():
    model = build_hific("hific-small")
    n = count_parameters(model)
    assert n <= 8_000_000, n
    cfg = model.config
    assert cfg.n_res == 5 and cfg.levels == 3 and cfg.targets == (0.14, 0.30, 0.45)
    d = build_discriminator(cfg)
    assert tuple(cfg.disc_widths) == (32, 64, 128, 256)  # official widths halved
    assert count_parameters(d) < 2_000_000


def test_forward_dict_and_rate_terms():
    torch.manual_seed(0)
    model = build_hific("hific-tiny")
    x = torch.rand(2, 3, 64, 128)
    out = model(x, torch.tensor([0.0, 1.0]))
    assert out["x_hat"].shape == x.shape
    assert out["y_hat"].shape == (2, model.config.C_y, 4, 8)
    assert out["likelihoods"]["z"].shape == (2, model.config.N, 1, 2)
    for k in ("y", "z"):
        lik = out["likelihoods"][k]
        assert float(lik.detach().min()) >= 1e-9 * (1 - 1e-6) and float(lik.detach().max()) <= 1.0
    assert out["bpp_noisy"].shape == (2,) and out["bpp_noisy"].requires_grad
    assert out["bpp_quantized"].shape == (2,) and not out["bpp_quantized"].requires_grad
    # in eval mode the noisy proxy is replaced by rounding: both rates agree
    model.eval()
    with torch.no_grad():
        ev = model(x, 0.5)
    assert torch.allclose(ev["bpp_noisy"], ev["bpp_quantized"], rtol=1e-5)


def test_ste_synthesis_input_is_rounded_around_the_mean_with_identity_gradient():
    torch.manual_seed(0)
    model = build_hific("hific-tiny")
    x = torch.rand(1, 3, 64, 64)
    out = model(x, 1.0)
    out["x_hat"].sum().backward()
    enc_grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in enc_grads)
    assert any(float(g.abs().sum()) > 0 for g in enc_grads)
