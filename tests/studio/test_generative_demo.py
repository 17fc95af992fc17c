"""The studio's "HiFiC vs ours" (issue 13), with tiny random weights injected: the action runs,
both codecs land on the target bpp, bpp / PSNR / MS-SSIM / LPIPS are shown, the step scrubber
shows our sampler's x̂0, the seed-variance map is computed, a long decode can be cancelled, and
without weights the action is disabled with a tooltip that says what is missing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from app.model.generative_demo import DemoCodecs
from lic_core.codecs.hific import HificCodec
from lic_core.codecs.learned import LearnedCodec
from lic_core.decoder.diffusion import DiffusionConfig, DiffusionDecoder
from lic_core.models import build_model
from lic_core.models.hific import build_hific
from studio_helpers import generated_image, make_window

TARGET = 0.5  # inside both tiny codecs' bpp range on the 128×192 test image


@pytest.fixture(scope="module")
def tiny_codecs() -> DemoCodecs:
    torch.manual_seed(0)
    h = build_hific("hific-tiny").eval()
    h.entropy_bottleneck.update_tables()
    m = build_model("lic-lgem-tiny").eval()
    m.prior.update_tables()
    with torch.no_grad():
        m.gains.gain.weight.mul_(6.0)  # spread a random g_a's latents: a usable bpp range
    dec = DiffusionDecoder(DiffusionConfig.tiny_lite()).eval()
    with torch.no_grad():  # move the zero-initialised outputs: the sampler's noise shows
        for p in dec.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    ours = LearnedCodec("lic-lgem-tiny", model=m, diffusion=dec, use_finetuned=False)
    return DemoCodecs(hific=HificCodec(model=h), ours=ours)


@pytest.fixture
def demo_window(qtbot, tiny_codecs):
    win = make_window(qtbot)
    win.find_demo_codecs = lambda: (tiny_codecs, "")
    assert win.refresh_demo_action()
    win.session.set_image(generated_image(128, 192))
    yield win
    if win.demo is not None:
        win.demo.cancel()
        win.demo.pool.wait(30000)
    win.controller.cancel_all()
    win.controller.pool.wait(20000)


def test_action_is_in_menu_toolbar_and_has_a_shortcut(demo_window):
    a = demo_window.act_hific_vs_ours
    assert a.shortcut().toString() == "Ctrl+G" and a.isEnabled()
    menus = [act for m in demo_window.menuBar().actions() for act in m.menu().actions()]
    assert a in menus and a in demo_window.view_toolbar.actions()


@pytest.mark.slow
def test_hific_vs_ours_at_matched_bpp_with_metrics_scrubber_and_variance(qtbot, demo_window):
    demo_window.act_hific_vs_ours.trigger()
    dlg = demo_window.demo
    assert dlg is not None and dlg.isVisible()
    dlg.target.setValue(TARGET)
    dlg.run_btn.click()
    qtbot.waitUntil(lambda: dlg.result is not None or bool(dlg.errors), timeout=120000)
    assert not dlg.errors, dlg.errors
    res = dlg.result
    for side in (res.hific, res.ours):
        assert abs(side.bpp - TARGET) <= 0.05 * TARGET, (side.label, side.bpp)
        assert {"psnr", "ms_ssim", "lpips"} <= set(side.metrics)
    assert res.mse.bpp == pytest.approx(res.ours.bpp, rel=0.02)  # the same bits, MSE-decoded
    for label in (dlg.hific_label, dlg.ours_label):
        text = label.text()
        assert all(k in text for k in ("bpp", "PSNR", "MS-SSIM", "LPIPS"))
    assert "MSE decoder" in dlg.mse_label.text()
    # the file is real: the codec decodes it to the same picture
    assert np.array_equal(dlg.codecs.ours.decode(res.ours.data).reconstruction,
                          res.ours.reconstruction)

    # step scrubber: x̂0 of every sampler step, then the decoded picture
    steps = res.steps
    assert steps == dlg.steps.value() and len(res.frames) == steps + 1
    assert dlg.scrubber.maximum() == steps and dlg.scrubber.isEnabled()
    assert np.array_equal(dlg.ours_view.image, res.ours.reconstruction)
    dlg.scrubber.setValue(0)
    assert np.array_equal(dlg.ours_view.image, res.frames[0])
    assert "step 1/" in dlg.step_label.text()

    # seed variance over a few seeds of the same file
    dlg.var_btn.click()
    qtbot.waitUntil(lambda: dlg.variance is not None or bool(dlg.errors), timeout=120000)
    assert not dlg.errors, dlg.errors
    std = dlg.variance
    assert std.shape == (128, 192) and np.isfinite(std).all()
    assert float(std.max()) > 0.0  # another seed, another picture
    assert dlg.var_view.isVisible() and "seed variance" in dlg.var_label.text()


@pytest.mark.slow
def test_a_long_decode_can_be_cancelled(qtbot, demo_window):
    dlg = demo_window.show_generative_demo()
    dlg.target.setValue(TARGET)
    dlg.steps.setValue(200)  # long enough to catch it in the diffusion decode
    dlg.run_btn.click()
    assert dlg.busy and dlg.cancel_btn.isEnabled() and not dlg.run_btn.isEnabled()
    qtbot.waitUntil(lambda: "diffusion" in dlg.status.text(), timeout=120000)
    dlg.cancel_btn.click()
    qtbot.waitUntil(lambda: not dlg.busy, timeout=120000)
    assert dlg.status.text() == "cancelled" and dlg.result is None and not dlg.errors
    assert dlg.run_btn.isEnabled() and not dlg.cancel_btn.isEnabled()


def test_disabled_with_a_tooltip_saying_what_is_missing(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(tmp_path))  # no weights at all here
    win = make_window(qtbot)
    a = win.act_hific_vs_ours
    assert not a.isEnabled()
    tip = a.toolTip()
    assert "hific-small.safetensors" in tip and "--stage hific" in tip
    assert "diffusion" in tip and "--stage diffusion" in tip
    assert win.show_generative_demo() is None
    assert win.error_log and "unavailable" in win.error_log[-1][0]


def test_the_window_says_whether_the_training_budgets_match(demo_window):
    # the tiny in-memory HiFiC has no model card: the window must not claim a fair comparison
    demo_window.act_hific_vs_ours.trigger()
    dlg = demo_window.demo
    same, line = dlg.codecs.budget()
    assert not same and "unknown" in line
    assert "unknown" in dlg.budget_label.text() and "#d33" in dlg.budget_label.text()


def test_the_default_target_is_one_both_cards_reach():
    from app.model.generative_demo import DEFAULT_TARGET_BPP, default_target, shared_bpp_range

    def hific(lo, hi):
        return {"eval": {"rows": {"hific-small (GAN decoder)": [{"bpp": lo}, {"bpp": hi}],
                                  "lic-lgem-cpu MSE decoder": [{"bpp": 0.01}, {"bpp": 9.0}]}}}

    ours = {"eval": {"rows": {"MSE decoder (g_s)": [{"bpp": 0.01}],
                              "diffusion decoder": [{"bpp": 0.19}, {"bpp": 0.70}]}}}
    assert shared_bpp_range(hific(0.12, 0.60), ours) == (0.19, 0.60)
    assert default_target(hific(0.12, 0.60), ours) == DEFAULT_TARGET_BPP  # inside: Mi point
    # a HiFiC that cannot go below 0.45 bpp on Kodak: the middle of what both reach
    assert shared_bpp_range(hific(0.45, 1.10), ours) == (0.45, 0.70)
    assert default_target(hific(0.45, 1.10), ours) == pytest.approx(0.57)
    # no overlap, or no table: the published point
    assert shared_bpp_range(hific(0.80, 1.20), ours) is None
    assert default_target(hific(0.80, 1.20), ours) == DEFAULT_TARGET_BPP
    assert default_target(None, ours) == DEFAULT_TARGET_BPP
