"""Decoder fine-tuning on real quantized latents (docs/methods.md §4.5; issue 'TCQ +
fine-tuning')."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lic_core.bitstream import unpack
from lic_core.codecs import EncodeParams
from lic_core.codecs.learned import LearnedCodec, quantized_latents
from lic_core.errors import LicFormatError
from lic_core.models import build_model
from lic_core.quantizer import build_quantizer
from lic_core.train.finetune import decoder_state, finetune, finetuned_path, save_finetuned


def _img(seed: int, h: int = 160, w: int = 160) -> np.ndarray:
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / (5 + 3 * c) + seed) * np.cos(yy / (7 + c)) for c in range(3)], -1)
    return np.clip(128 + 90 * base + rng.randn(h, w, 3) * 4, 0, 255).astype(np.uint8)


@pytest.fixture()
def data_dir(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    for i in range(3):
        Image.fromarray(_img(i)).save(d / f"p{i}.png")
    return d


@pytest.mark.slow
def test_finetuning_changes_only_the_decoder_and_lowers_its_error(data_dir, tmp_path):
    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny")
    m.prior.update_tables()
    frozen = {k: v.clone() for k, v in m.state_dict().items() if k not in decoder_state(m)}
    x = torch.from_numpy(_img(0)[:128, :128]).permute(2, 0, 1)[None].float() / 255
    q = build_quantizer("tcq")

    def err():
        with torch.no_grad():
            lat = quantized_latents(m, x, 1.0, q)
            g_inv = {"G_inv": lat["gains"]["G_inv"].float()}  # exact gains: float32 values
            return float(((m.synthesize(lat["y_hat_gained"].float(), g_inv) - x) ** 2).mean())

    before = err()
    finetune(m, data_dir, "tcq", steps=40, batch=2, crop=128, lr=3e-3, log=lambda s: None)
    after = err()
    assert after < before
    for k, v in m.state_dict().items():  # encoder, hyperprior, context, forward gains untouched
        if k in frozen:
            assert torch.equal(v, frozen[k]), k


def test_finetuned_decoder_round_trips_and_is_bound_to_its_file(data_dir, tmp_path):
    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny")
    m.eval()
    m.prior.update_tables()
    img = _img(5, 70, 90)
    base_codec = LearnedCodec("lic-lgem-tiny", model=m, finetuned_dir=tmp_path / "none")
    base_enc = base_codec.encode(img, EncodeParams(rate=0.5, quantizer="tcq"))
    base_file = base_enc.data

    ft_model = build_model("lic-lgem-tiny")
    ft_model.load_state_dict(m.state_dict())
    finetune(ft_model, data_dir, "tcq", steps=3, batch=1, crop=64, lr=1e-3, log=lambda s: None)
    save_finetuned(ft_model, finetuned_path("lic-lgem-tiny", "tcq", tmp_path), {"test": True})

    codec = LearnedCodec("lic-lgem-tiny", model=m, finetuned_dir=tmp_path)
    r = codec.encode(img, EncodeParams(rate=0.5, quantizer="tcq"))
    d = LearnedCodec("lic-lgem-tiny", model=m, finetuned_dir=tmp_path).decode(r.data)
    assert np.array_equal(d.reconstruction, r.reconstruction)
    # same bits for the latents, different decoder → different header hash
    assert r.data != base_file
    with pytest.raises(LicFormatError, match="weights mismatch"):
        base_codec.decode(r.data)
    # a file made with the base decoder (before the tuned one was installed) names the base
    # weights in its header; they are still here, so it decodes as made, not with the tuned g_s
    old = codec.decode(base_file)
    assert np.array_equal(old.reconstruction, base_enc.reconstruction)
    assert "finetuned_for" not in old.info
    assert not np.array_equal(old.reconstruction, d.reconstruction)
    # a header naming neither the base nor the tuned decoder is refused
    other = LearnedCodec("lic-lgem-tiny", model=build_model("lic-lgem-tiny"),
                         finetuned_dir=tmp_path / "none")
    with pytest.raises(LicFormatError, match="weights mismatch"):
        other.decode(base_file)
    # other quantizers keep the base decoder
    r2 = codec.encode(img, EncodeParams(rate=0.5, quantizer="round"))
    assert np.array_equal(base_codec.decode(r2.data).reconstruction, r2.reconstruction)


@pytest.mark.slow
def test_diffusion_files_condition_on_the_base_g_s_beside_a_tuned_one(tmp_path):
    """The diffusion decoder learned on the base g_s's features: a file marked for it names (and
    uses) the base weights even where a g_s tuned for its quantizer is installed, and a diffusion
    picture asked of an MSE file conditions on the base g_s too."""
    from lic_core.decoder.diffusion import DiffusionDecoder

    torch.manual_seed(0)
    m = build_model("lic-lgem-tiny").eval()
    m.prior.update_tables()
    dec = DiffusionDecoder.for_codec(m, mults=(1, 2)).eval()
    with torch.no_grad():  # its zero-initialised output conv drawn, so the conditioning matters
        dec.unet.out.weight.normal_(0.0, 0.2)
    ft_model = build_model("lic-lgem-tiny")
    ft_model.load_state_dict(m.state_dict())
    with torch.no_grad():  # a stand-in for a tuned g_s: same architecture, other weights
        for p in ft_model.g_s.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_finetuned(ft_model, finetuned_path("lic-lgem-tiny", "round", tmp_path), {"test": True})
    base = LearnedCodec("lic-lgem-tiny", model=m, diffusion=dec, finetuned_dir=tmp_path / "none")
    tuned = LearnedCodec("lic-lgem-tiny", model=m, diffusion=dec, finetuned_dir=tmp_path)
    img = _img(3, 48, 64)
    diff = dict(rate=0.5, quantizer="round", decoder="diffusion", diffusion_steps=2, seed=3)

    r_mse = tuned.encode(img, EncodeParams(rate=0.5, quantizer="round"))
    b_mse = base.encode(img, EncodeParams(rate=0.5, quantizer="round"))
    assert r_mse.data != b_mse.data  # the tuned g_s is in use for MSE files
    assert not np.array_equal(r_mse.reconstruction, b_mse.reconstruction)
    r_diff = tuned.encode(img, EncodeParams(**diff))
    assert r_diff.data == base.encode(img, EncodeParams(**diff)).data  # base hash, base pictures
    assert np.array_equal(tuned.decode(r_diff.data).reconstruction, r_diff.reconstruction)
    # its MSE picture is the base g_s's (the file's check value says so)
    d = tuned.decode(r_diff.data, decoder="mse")
    assert np.array_equal(d.reconstruction, b_mse.reconstruction) and d.info["picture_checked"]
    # a diffusion picture of the tuned MSE file: the same as of the base MSE file
    pic = tuned.decode(r_mse.data, decoder="diffusion")
    assert np.array_equal(pic.reconstruction,
                          base.decode(b_mse.data, decoder="diffusion").reconstruction)
    assert "finetuned_for" not in pic.info and "finetuned_for" not in d.info
    assert tuned.decode(r_mse.data).info["finetuned_for"] == "round"
    # a diffusion file written before this rule (tuned hash, conditioned on the tuned g_s) keeps
    # decoding as it was made: the header's hash picks the tuned g_s
    old_rule = LearnedCodec("lic-lgem-tiny", model=m, diffusion=dec, finetuned_dir=tmp_path)
    old_rule._encoder_synthesis = lambda q, decoder: old_rule._decoder(q)
    old_file = old_rule.encode(img, EncodeParams(**diff))
    assert unpack(old_file.data)[0].weights_hash == unpack(r_mse.data)[0].weights_hash
    assert not np.array_equal(old_file.reconstruction, r_diff.reconstruction)
    again = tuned.decode(old_file.data)
    assert np.array_equal(again.reconstruction, old_file.reconstruction)
    assert again.info["picture_checked"] and again.info["finetuned_for"] == "round"
    assert np.array_equal(tuned.decode(old_file.data, decoder="mse").reconstruction,
                          r_mse.reconstruction)
