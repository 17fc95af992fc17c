"""'Same file' in the "HiFiC vs ours" window (issue 26, item 2): one file of our codec, encoded
once, decoded with the MSE, GAN and diffusion decoders — three linked pictures with bpp, PSNR,
MS-SSIM and LPIPS each, the difference of any two (or one vs the original) with a colorbar, and
a decoder this install lacks named with why.

Tiny random weights: ``$LIC_WEIGHTS_DIR`` points at a temporary folder with a tiny
``lic-lgem-tiny`` and (or not) a GAN decoder file bound to it, made the way
``tests/core/test_gan_decoder.py`` makes them; the diffusion decoder and HiFiC are tiny in-memory
networks (as in ``test_generative_demo.py``)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from app.model import services
from app.model.generative_demo import DemoCodecs
from app.model.same_file import DECODERS, decoder_status, difference_map
from lic_core.codecs.hific import HificCodec
from lic_core.codecs.learned import LearnedCodec
from lic_core.decoder.diffusion import DiffusionConfig, DiffusionDecoder
from lic_core.models import build_model, load_model
from lic_core.models.hific import build_hific
from lic_core.paths import gan_weights_path
from lic_core.train.finetune import save_finetuned
from lic_core.train.gan_decoder import card_markdown
from lic_core.weights import save_weights
from studio_helpers import generated_image, make_window

TINY = "lic-lgem-tiny"


@pytest.fixture(scope="module")
def weight_dirs(tmp_path_factory) -> dict[str, Path]:
    """``{"gan": folder with tiny codec weights and a GAN decoder on them, "no_gan": the codec
    weights alone}``."""
    root = tmp_path_factory.mktemp("same-file-weights")
    no_gan, gan = root / "no_gan", root / "gan"
    no_gan.mkdir()
    torch.manual_seed(0)
    m = build_model(TINY).eval()
    m.prior.update_tables()
    with torch.no_grad():  # a random g_a is nearly flat: spread the latents so symbols vary
        m.gains.gain.weight.mul_(6.0)
    save_weights(m, no_gan / f"{TINY}.safetensors", {"model": TINY, "preview": True})
    shutil.copytree(no_gan, gan)
    model = load_model(TINY, gan / f"{TINY}.safetensors")  # knows its base hash
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # g_s moved off the base: the GAN picture differs from the MSE one
        for p in model.g_s.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    save_finetuned(model, gan_weights_path(TINY, gan), {"kind": "test GAN decoder",
                                                         "preview": True}, card_markdown)
    return {"gan": gan, "no_gan": no_gan}


@pytest.fixture(scope="module")
def tiny_parts():
    torch.manual_seed(0)
    h = build_hific("hific-tiny").eval()
    h.entropy_bottleneck.update_tables()
    dec = DiffusionDecoder(DiffusionConfig.tiny_lite()).eval()
    with torch.no_grad():  # move the zero-initialised outputs: the sampler's noise shows
        for p in dec.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return HificCodec(model=h), dec


def _codecs(tiny_parts) -> DemoCodecs:
    hific, dec = tiny_parts
    return DemoCodecs(hific=hific, ours=LearnedCodec(TINY, diffusion=dec, use_finetuned=False))


def _open_same_file(qtbot, monkeypatch, weight_dirs, tiny_parts, which, image):
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(weight_dirs[which]))
    codecs = _codecs(tiny_parts)
    win = make_window(qtbot)
    win.controller.auto_encode = False
    win.find_demo_codecs = lambda: (codecs, "")
    assert win.refresh_demo_action()
    win.session.set_image(image)
    win.act_hific_vs_ours.trigger()
    dlg = win.demo
    assert dlg is not None and dlg.isVisible()
    dlg.tabs.setCurrentIndex(1)
    qtbot.waitExposed(dlg)
    return win, dlg


def _close(win, dlg):
    dlg.cancel()
    dlg.pool.wait(30000)
    win.controller.cancel_all()
    win.controller.pool.wait(20000)


def _run(qtbot, dlg):
    dlg.same_btn.click()
    assert dlg.busy and dlg.cancel_btn.isEnabled() and not dlg.same_btn.isEnabled()
    qtbot.waitUntil(lambda: not dlg.busy, timeout=180000)
    assert not dlg.errors, dlg.errors
    assert dlg.same_result is not None
    return dlg.same_result


@pytest.mark.slow
def test_same_file_on_the_sample_photo_three_pictures_metrics_and_differences(
        qtbot, monkeypatch, weight_dirs, tiny_parts):
    image = services.load_image(services.sample_image_path())
    win, dlg = _open_same_file(qtbot, monkeypatch, weight_dirs, tiny_parts, "gan", image)
    ours = dlg.codecs.ours
    assert ours.decoders == ("mse", "gan", "diffusion")
    assert all(not v.message for v in dlg.same_views.values())  # nothing missing here
    dlg.same_at_rate.setChecked(True)
    dlg.same_rate.setValue(0.5)
    dlg.steps.setValue(2)
    dlg.seed.setValue(7)
    res = _run(qtbot, dlg)

    # one file, three pictures
    assert list(res.pictures) == list(DECODERS) and not res.missing
    h, w = image.shape[:2]
    assert res.bpp == pytest.approx(8.0 * len(res.data) / (h * w))
    assert res.steps == 2 and res.seed == 7 and res.rate == pytest.approx(0.5, abs=1e-3)
    for dec, side in res.pictures.items():
        assert side.decoder == dec and side.data == res.data
        assert side.reconstruction.shape == image.shape and side.reconstruction.dtype == np.uint8
        assert side.bpp == res.bpp  # one file: one bpp
        assert {"psnr", "ms_ssim", "lpips"} <= set(side.metrics), (dec, side.metrics)
        assert all(np.isfinite(v) for v in side.metrics.values())
        assert side.metrics["psnr"] == pytest.approx(
            services.compute_metrics(image, side.reconstruction, ("psnr",))["psnr"])
        text = dlg.same_labels[dec].text()
        assert all(k in text for k in ("bpp", "PSNR", "MS-SSIM", "LPIPS")), text
        assert f"{res.bpp:.3f} bpp" in text
        assert np.array_equal(dlg.same_views[dec].image, side.reconstruction)
    pics = {d: s.reconstruction for d, s in res.pictures.items()}
    assert not np.array_equal(pics["gan"], pics["mse"])  # another decoder, another picture
    assert not np.array_equal(pics["diffusion"], pics["mse"])
    assert "diffusion" in res.pictures["diffusion"].label and "seed 7" in \
        res.pictures["diffusion"].label
    # they are the file's pictures: the codec decodes the same bytes to them
    assert np.array_equal(ours.decode(res.data, decoder="gan").reconstruction, pics["gan"])
    assert np.array_equal(ours.decode(res.data).reconstruction, pics["mse"])  # the file's own
    assert f"{len(res.data):,} bytes" in dlg.file_label.text()

    # the difference of any two, and each vs the original, with a colorbar
    pairs = [dlg.diff_combo.itemData(i) for i in range(dlg.diff_combo.count())]
    assert len(pairs) == 6 and dlg.diff_combo.isEnabled()
    assert tuple(dlg.diff_combo.currentData()) == ("gan", "mse")  # the decoders' difference
    assert np.array_equal(dlg.diff, difference_map(pics["gan"], pics["mse"]))
    assert dlg.select_difference("diffusion", "original")
    assert np.array_equal(dlg.diff, difference_map(pics["diffusion"], image))
    assert np.array_equal(dlg.diff_view.image, dlg.diff)
    lo, hi = dlg.diff_bar.levels()
    assert lo == 0.0 and 1.0 <= hi <= float(dlg.diff.max()) + 1e-6
    assert "original" in dlg.diff_label.text() and "mean" in dlg.diff_label.text()
    assert dlg.select_difference("diffusion", "gan")

    # linked zoom: 1:1 shows image pixels as screen pixels in the three pictures, together
    qtbot.wait(50)
    dlg.one_btn.click()
    qtbot.wait(30)
    for dec in DECODERS:
        assert dlg.same_views[dec].scale() == pytest.approx(1.0, rel=0.02), dec
    r = dlg.same_views["mse"].view_rect()
    assert dlg.same_views["gan"].view_rect() == pytest.approx(r)
    dlg.fit_btn.click()
    assert dlg.same_views["gan"].view_rect() == pytest.approx(dlg.same_views["mse"].view_rect())

    # the window fits a 1366×768 screen (title and task bars included), both tabs
    hint = dlg.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 700, hint
    assert dlg.width() <= 1366 and dlg.height() <= 700
    _close(win, dlg)


@pytest.mark.slow
def test_a_missing_gan_decoder_is_named_with_why_and_the_others_still_decode(
        qtbot, monkeypatch, weight_dirs, tiny_parts):
    image = generated_image(128, 192)
    win, dlg = _open_same_file(qtbot, monkeypatch, weight_dirs, tiny_parts, "no_gan", image)
    gan_view = dlg.same_views["gan"]
    # said before any run, in the picture's place: which file, and the stage that makes it
    assert f"{TINY}-gan.safetensors" in gan_view.message and "--stage gan" in gan_view.message
    assert "not available" in dlg.same_labels["gan"].text()
    assert not dlg.same_views["mse"].message and not dlg.same_views["diffusion"].message
    dlg.same_at_target.setChecked(True)  # searched to the target bpp this time
    dlg.target.setValue(0.5)
    dlg.steps.setValue(1)
    res = _run(qtbot, dlg)
    assert list(res.pictures) == ["mse", "diffusion"] and set(res.missing) == {"gan"}
    assert res.bpp == pytest.approx(0.5, rel=0.05) and res.target_bpp == 0.5
    assert "--stage gan" in gan_view.message and gan_view.image is None
    assert "not available" in dlg.file_label.text()
    pairs = {tuple(dlg.diff_combo.itemData(i)) for i in range(dlg.diff_combo.count())}
    assert pairs == {("diffusion", "mse"), ("mse", "original"), ("diffusion", "original")}
    assert not dlg.select_difference("gan", "mse")
    for dec in ("mse", "diffusion"):
        assert "LPIPS" in dlg.same_labels[dec].text()
    _close(win, dlg)


@pytest.mark.slow
def test_same_file_can_be_cancelled_in_the_diffusion_decode(qtbot, monkeypatch, weight_dirs,
                                                            tiny_parts):
    win, dlg = _open_same_file(qtbot, monkeypatch, weight_dirs, tiny_parts, "gan",
                               generated_image(128, 192))
    dlg.same_at_rate.setChecked(True)
    dlg.steps.setValue(200)  # long enough to catch it in the diffusion decode
    dlg.same_btn.click()
    qtbot.waitUntil(lambda: "diffusion step" in dlg.status.text(), timeout=120000)
    dlg.cancel_btn.click()
    qtbot.waitUntil(lambda: not dlg.busy, timeout=120000)
    assert dlg.status.text() == "cancelled" and dlg.same_result is None and not dlg.errors
    assert dlg.same_btn.isEnabled() and dlg.run_btn.isEnabled()
    _close(win, dlg)


def test_decoder_status_names_a_stale_gan_decoder_and_a_missing_diffusion_decoder():
    class Stale:
        name = "lic-lgem-cpu"
        decoders = ("mse",)
        stale_gan = "lic-lgem-cpu-gan.safetensors"

    st = decoder_status(Stale())
    assert st["mse"] == ""
    assert "trained on other lic-lgem-cpu weights" in st["gan"] and "--stage gan" in st["gan"]
    assert "lic-lgem-cpu-diffusion.safetensors" in st["diffusion"]
    assert "--stage diffusion" in st["diffusion"]
    Stale.stale_gan = ""
    assert "lic-lgem-cpu-gan.safetensors is not installed" in decoder_status(Stale())["gan"]
