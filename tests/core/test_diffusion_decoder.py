"""DiffusionDecoder: seeded determinism, callback/cancel, variance map, save/load (docs/methods.md
§11.5)."""
from __future__ import annotations

import pytest
import torch

from lic_core.decoder.diffusion.decoder import DiffusionDecoder, config_for_codec
from lic_core.decoder.diffusion.unet import DiffusionConfig
from lic_core.errors import CancelledError, ModelNotFoundError


@pytest.fixture(scope="module")
def codec_and_latents():
    from lic_core.models import build_model

    torch.manual_seed(0)
    codec = build_model("lic-lgem-tiny").eval()
    x = torch.rand(1, 3, 64, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y_hat = codec(x, 0.5)["y_hat"]
        feats = codec.g_s.forward_features(y_hat)
    return codec, y_hat, feats


@pytest.fixture(scope="module")
def decoder(codec_and_latents):
    codec, _, _ = codec_and_latents
    torch.manual_seed(2)
    dec = DiffusionDecoder.for_codec(codec)
    torch.nn.init.normal_(dec.unet.out.weight, std=0.05)  # an "untrained but non-trivial" net
    return dec


def test_config_matches_codec(codec_and_latents, decoder) -> None:
    codec, y_hat, feats = codec_and_latents
    cfg = decoder.config
    assert cfg == config_for_codec(codec)
    assert cfg.cond_channels == (3, 16, 16, 16, 32)
    assert cfg.cond_scales == (1, 2, 4, 8, 16)
    ctx = decoder.contexts(y_hat, feats)
    assert [c.shape[-2] for c in ctx] == [64, 32, 16, 8, 4]


def test_decode_shape_range_and_seed_determinism(codec_and_latents, decoder) -> None:
    _, y_hat, feats = codec_and_latents
    a = decoder.decode(y_hat, feats, steps=3, seed=7, device="cpu")
    b = decoder.decode(y_hat, feats, steps=3, seed=7, device="cpu")
    c = decoder.decode(y_hat, feats, steps=3, seed=8, device="cpu")
    assert a.shape == (1, 3, 64, 128) and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b), "same seed must decode bit-identically"
    assert not torch.equal(a, c), "another seed must give another sample"
    big_seed = decoder.decode(y_hat, feats, steps=2, seed=2**64 - 1, device="cpu")  # u64 header
    assert torch.isfinite(big_seed).all()


def test_callback_progress_and_cancel(codec_and_latents, decoder) -> None:
    _, y_hat, feats = codec_and_latents
    seen = []
    decoder.decode(y_hat, feats, steps=4, seed=0, device="cpu",
                   callback=lambda i, n, x0: seen.append((i, n, tuple(x0.shape),
                                                          float(x0.min()), float(x0.max()))))
    assert [s[:3] for s in seen] == [(i, 4, (1, 3, 64, 128)) for i in range(4)]
    assert all(0.0 <= lo and hi <= 1.0 for *_, lo, hi in seen)

    def cancel(i, n, x0):
        if i == 1:
            raise CancelledError("cancelled")

    with pytest.raises(CancelledError):
        decoder.decode(y_hat, feats, steps=4, seed=0, device="cpu", callback=cancel)


def test_variance_map(codec_and_latents, decoder) -> None:
    _, y_hat, feats = codec_and_latents
    v = decoder.variance_map(y_hat, feats, steps=2, seeds=[0, 1, 2], device="cpu")
    assert v.shape == (64, 128)
    assert float(v.min()) >= 0.0 and float(v.max()) > 0.0
    xs = torch.stack([decoder.decode(y_hat, feats, 2, s, device="cpu")[0] for s in [0, 1, 2]])
    assert torch.allclose(v, xs.var(0).mean(0))


def test_save_load_round_trip(tmp_path, codec_and_latents, decoder) -> None:
    _, y_hat, feats = codec_and_latents
    p = tmp_path / "dec.safetensors"
    decoder.save(p, card={"note": "test"})
    again = DiffusionDecoder.load(p)
    assert again.config == decoder.config
    assert again.weights_id() == decoder.weights_id()
    assert torch.equal(again.decode(y_hat, feats, 2, 5, device="cpu"),
                       decoder.decode(y_hat, feats, 2, 5, device="cpu"))
    with pytest.raises(ModelNotFoundError):
        DiffusionDecoder.load(tmp_path / "missing.safetensors")
    with pytest.raises(ModelNotFoundError):
        DiffusionDecoder.load_default("no-such-diffusion-decoder")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelNotFoundError):
        DiffusionDecoder.load(tmp_path / "junk.safetensors")


def test_eps_parametrization_decodes_deterministically(codec_and_latents) -> None:
    codec, y_hat, feats = codec_and_latents
    torch.manual_seed(3)
    dec = DiffusionDecoder.for_codec(codec, param="eps")
    torch.nn.init.normal_(dec.unet.out.weight, std=0.05)
    a = dec.decode(y_hat, feats, steps=3, seed=1, device="cpu")
    assert torch.equal(a, dec.decode(y_hat, feats, steps=3, seed=1, device="cpu"))
    assert not torch.equal(a, dec.decode(y_hat, feats, steps=3, seed=2, device="cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA refusal")
def test_cuda_request_without_cuda_is_a_user_error(codec_and_latents, decoder) -> None:
    from lic_core.errors import CodecUnavailableError

    _, y_hat, feats = codec_and_latents
    with pytest.raises(CodecUnavailableError):
        decoder.decode(y_hat, feats, steps=1, device="cuda")


def test_wrong_contexts_are_refused(codec_and_latents) -> None:
    _, y_hat, feats = codec_and_latents
    dec = DiffusionDecoder(DiffusionConfig.tiny(cond_channels=(3, 16, 16, 16, 99)))
    with pytest.raises(ValueError):
        dec.decode(y_hat, feats, steps=1, device="cpu")
    with pytest.raises(ValueError):  # x̂_mse missing
        DiffusionDecoder(DiffusionConfig.tiny()).decode(y_hat, feats[1], steps=1, device="cpu")


@pytest.mark.slow
def test_overfit_one_image_then_sample_reproduces_it(tmp_path, codec_and_latents) -> None:
    """End-to-end consistency of training and sampling (x̂0 parametrization): a decoder trained
    150 steps on a single image decodes that image from its latents at > 20 dB (noise: ~9 dB).
    Catches convention mismatches (time scale, image range, posterior form) between the two."""
    import math

    from lic_core.train.diffusion import codec_latents, train_diffusion

    codec, _, _ = codec_and_latents
    low = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    x = torch.nn.functional.interpolate(low, size=(64, 64), mode="bilinear", align_corners=False)
    cfg = config_for_codec(codec, mults=(1, 2), param="x")
    s = train_diffusion(codec, x.repeat(2, 1, 1, 1), tmp_path / "fit", steps=150, batch=2, crop=64,
                        lr=3e-3, device="cpu", config=cfg, warmup=10, ema_decay=0.0,
                        log=lambda m: None)
    dec = DiffusionDecoder.load(s["ema_path"])
    y_hat, feats = codec_latents(codec, x, torch.tensor([0.5]))
    out = dec.decode(y_hat, feats, steps=10, seed=0, device="cpu")
    psnr = 10 * math.log10(1.0 / (out - x).square().mean().item())
    assert psnr > 20.0, psnr
