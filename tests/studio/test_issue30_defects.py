"""Issue 30 (studio round 3), defects 1–10: numbers that never go stale, an RD plot that shows
every curve, honest small images and truncated files, exports that carry their legends.

Every test drives the real window offscreen at 1366×768 with the fake learned codec or a
classical one (fast), or the RD plot with injected encodings (no encode at all).
"""
from __future__ import annotations

import numpy as np
import pytest

from studio_helpers import FAKE, fake_encoding, generated_image, make_window, wait_idle, write_png

pytestmark = pytest.mark.gui

LAPTOP = (1366, 768)


def _not_elided(label) -> bool:
    """An ElidedLabel shows its whole text (nothing cut to "…")."""
    return label.text() == label.full_text


# ------------------------------------------------------------------ 1: a .lic keeps old numbers

@pytest.mark.slow
def test_opening_a_compressed_file_shows_its_own_settings_and_no_old_numbers(qtbot, fake_codec,
                                                                              tmp_path):
    win = make_window(qtbot, codecs=[FAKE, "jpeg", "jpeg"])
    s = win.session
    s.set_image(generated_image())
    wait_idle(qtbot, win)
    s.panes[0].set(rate=0.823, quantizer="tcq")
    wait_idle(qtbot, win)
    path = win.export_compressed(0, tmp_path / "tcq.fakelic")
    # work on another picture with other settings: these numbers must not survive the open
    s.panes[0].set(rate=0.5, quantizer="round")
    s.set_image(generated_image(seed=11))
    wait_idle(qtbot, win)
    pa, pb = win.pane_controls[:2]
    old_a, old_b = pa.status.full_text, pb.status.full_text
    assert "bpp" in old_a and "bpp" in old_b

    assert win.open_path(path)
    qtbot.waitUntil(lambda: s.decoded is not None, timeout=30000)
    wait_idle(qtbot, win)
    # pane A shows the file's own settings, read from it
    assert s.panes[0].settings.rate == pytest.approx(0.823, abs=1e-4)
    assert s.panes[0].settings.quantizer == "tcq"
    assert pa.rate_spin.value() == pytest.approx(0.823, abs=1e-3)
    assert pa.quant_combo.currentText() == "tcq"
    # and nothing of the previous picture: A's line is the file's, B's is empty
    assert old_a not in pa.status.full_text and " in " not in pa.status.full_text
    assert f"{s.decoded.bpp:.3f} bpp" in pa.status.full_text
    assert pb.status.full_text == "" and pb.metrics.full_text == ""
    assert pb.progress.value() == 0
    assert all(p.encoding is None and p.status in ("", s.panes[0].status) for p in s.panes)
    win.close()


# ------------------------------------------------------------------ 2: legend, colours

def _six_curves(win):
    s = win.session
    s.set_image(generated_image(64, 64))
    curves = []
    for codec, base in (("jpeg", 28), ("webp", 29), ("avif", 30), ("jxl", 31)):
        for k in range(3):
            curves.append(fake_encoding(s, codec, 30 + 20 * k, 0.2 + 0.3 * k, base + 3 * k))
    for q, d, off in (("round", "mse", 0.0), ("tcq", "mse", 0.5), ("round", "diffusion", -2.0)):
        for k in range(3):
            curves.append(fake_encoding(s, FAKE, 0.2 + 0.3 * k, 0.15 + 0.25 * k,
                                        32 + 3 * k + off, quantizer=q, decoder=d))
    for e in curves:
        s.add_to_history(e)
    return curves


def test_rd_legend_is_outside_the_data_and_every_variant_has_its_own_look(qtbot, fake_codec):
    win = make_window(qtbot, codecs=["jpeg", "jpeg", "jpeg"], size=LAPTOP)
    win.controller.auto_encode = False
    _six_curves(win)
    rd = win.rd_plot
    s = win.session
    s.panes[1].encoding = s.history[2]  # pane B's star on the jpeg curve
    rd.refresh()
    qtbot.wait(50)
    measured = [n for n in rd.curves if not n.startswith("[ref")]
    assert len(measured) == 7
    # the legend lists every curve (the dashed references too) and sits outside the data
    names = rd.legend_names()
    assert set(measured) <= set(names)
    refs = [n for n in rd.curves if n.startswith("[ref")]
    assert refs and set(refs) <= set(names)
    from PySide6.QtCore import QPoint, QRect

    vb = rd.plot.getPlotItem().vb
    data = rd.plot.mapFromScene(vb.sceneBoundingRect()).boundingRect()
    data = QRect(rd.plot.mapTo(rd, data.topLeft()), data.size())
    assert data.width() > 100 and data.height() > 80
    entries = rd.legend_entries()
    assert len(entries) == len(names)
    for entry in entries:
        # every entry wholly visible (none clipped by the dock), none over the data
        assert entry.visibleRegion().boundingRect().size() == entry.size(), entry.toolTip()
        box = QRect(entry.mapTo(rd, QPoint(0, 0)), entry.size())
        assert not box.intersects(data), entry.toolTip()
    # every measured variant has its own (colour, line style, symbol); learned variants their
    # own colour or line style
    looks = {n: rd.series_look(n) for n in measured}
    assert len(set(looks.values())) == len(looks), looks
    fake = [looks[n] for n in measured if n.startswith(FAKE)]
    assert len({(c, dash) for c, dash, _ in fake}) == 3
    win.close()


def _deuteranope(rgb):
    """Machado et al. 2009 deuteranopia (severity 1) on linear-ish sRGB triples (0..255)."""
    m = np.array([[0.367322, 0.860646, -0.227968],
                  [0.280085, 0.672501, 0.047413],
                  [-0.011820, 0.042940, 0.968881]])
    return np.clip(m @ np.asarray(rgb, float), 0, 255)


def _protanope(rgb):
    m = np.array([[0.152286, 1.052583, -0.204868],
                  [0.114503, 0.786281, 0.099216],
                  [-0.003882, -0.048116, 1.051998]])
    return np.clip(m @ np.asarray(rgb, float), 0, 255)


def _rgb(hex_colour):
    h = hex_colour.lstrip("#")
    return [int(h[i:i + 2], 16) for i in (0, 2, 4)]


def test_reference_colours_are_distinct_for_colour_blind_readers_too(qtbot):
    win = make_window(qtbot, size=LAPTOP)
    rd = win.rd_plot
    rd.ref_set_combo.setCurrentIndex(0)  # the few references drawn by default
    refs = [n for n in rd.curves if n.startswith("[ref")]
    if len(refs) < 2:
        pytest.skip("no published curves in this install")
    elic = [n for n in refs if "ELIC" in n]
    vvc = [n for n in refs if "VVC" in n]
    assert elic and vvc
    colours = {n: _rgb(rd.series_look(n)[0]) for n in refs}
    for sim in (lambda c: np.asarray(c, float), _deuteranope, _protanope):
        for i, a in enumerate(refs):
            for b in refs[i + 1:]:
                d = float(np.linalg.norm(sim(colours[a]) - sim(colours[b])))
                assert d >= 40, (a, b, colours[a], colours[b], d)
    # all references: at least the (colour, dash) pair tells every one apart
    rd.ref_set_combo.setCurrentIndex(1)
    refs = [n for n in rd.curves if n.startswith("[ref")]
    looks = [rd.series_look(n)[:2] for n in refs]
    assert len(set(looks)) == len(looks)
    win.close()


# ------------------------------------------------------------------ 3: pane points in view

def _in_view(rd, bpp, val):
    (x0, x1), (y0, y1) = rd.plot.getPlotItem().vb.viewRange()
    return x0 <= bpp <= x1 and y0 <= val <= y1


def test_every_panes_point_stays_inside_the_rd_view(qtbot, fake_codec):
    win = make_window(qtbot, codecs=["jpeg", "jpeg", "jpeg"], size=LAPTOP)
    win.controller.auto_encode = False
    s = win.session
    s.set_image(generated_image(64, 64))
    for k in range(4):  # a low-rate curve: the view would end near 0.6 bpp
        s.add_to_history(fake_encoding(s, "webp", 10 + k, 0.1 + 0.1 * k, 28 + k))
    far = fake_encoding(s, "jpeg", 95, 1.88, 41.0)
    s.panes[1].encoding = far  # shown in B, not (yet) on any curve
    rd = win.rd_plot
    rd.refresh()
    assert any(i == 1 for i, _, _ in rd.highlight)
    for idx, bpp, val in rd.highlight:
        assert _in_view(rd, bpp, val), (idx, bpp, val, rd.plot.getPlotItem().vb.viewRange())
    win.close()


@pytest.mark.slow
def test_results_answered_from_the_cache_are_plotted_with_their_curve(qtbot):
    win = make_window(qtbot, codecs=["jpeg", "jpeg", "jpeg"], size=LAPTOP)
    s = win.session
    first = generated_image(64, 80)
    s.set_image(first)
    s.panes[1].set(rate=95.0)
    wait_idle(qtbot, win)
    s.set_image(generated_image(64, 80, seed=9))
    wait_idle(qtbot, win)
    s.set_image(first)  # both panes answered from the cache
    wait_idle(qtbot, win)
    rd = win.rd_plot
    b = s.panes[1].encoding
    assert b is not None and b in s.history
    assert "jpeg" in rd.curves and b.bpp in rd.curves["jpeg"][0]
    assert "jpeg" in rd.legend_names()
    for _, bpp, val in rd.highlight:
        assert _in_view(rd, bpp, val)
    assert win.pane_controls[1].progress.value() == 100  # a cached result is a result
    win.close()


# ------------------------------------------------------------------ 4: LPIPS on demand

def _lpips_available() -> bool:
    try:
        from lic_core.metrics.lpips_metric import weights_path

        return weights_path().is_file()
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.skipif(not _lpips_available(), reason="LPIPS weights are not installed")
def test_turning_lpips_on_scores_every_shown_result(qtbot):
    win = make_window(qtbot, codecs=["jpeg", "webp", "jpeg"], size=LAPTOP)
    s = win.session
    s.set_image(generated_image(64, 64))
    wait_idle(qtbot, win)
    win.controller.sweep(0, points=3)
    wait_idle(qtbot, win)
    rd = win.rd_plot
    s.view.rd_metric = "lpips"
    # nothing scored yet: the plot says why and how, instead of staying silently empty
    assert rd.hint.isVisible() and "LPIPS" in rd.hint.text()
    win.act_lpips.trigger()  # View → Compute LPIPS
    wait_idle(qtbot, win, 120000)
    assert all("lpips" in e.metrics for e in s.history)
    assert all("lpips" in p.encoding.metrics for p in s.active_panes)
    assert not rd.hint.isVisible()
    assert len(rd.curves["jpeg"][0]) >= 3
    (_, _), (y0, y1) = rd.plot.getPlotItem().vb.viewRange()
    assert 0.0 <= y0 < y1 <= 1.0  # LPIPS is never negative
    assert "LPIPS" in win.pane_controls[0].metrics.full_text
    # Re-encode all re-encodes (it used to answer from the cache and do nothing visible)
    before = s.panes[0].encoding
    win.act_reencode.trigger()
    assert s.panes[0].busy
    wait_idle(qtbot, win, 120000)
    assert s.panes[0].encoding is not before and "lpips" in s.panes[0].encoding.metrics
    assert not win.error_log, win.error_log
    win.close()


def test_rd_axes_never_show_impossible_values(qtbot):
    win = make_window(qtbot, size=LAPTOP)
    win.controller.auto_encode = False
    s = win.session
    s.set_image(generated_image(64, 64))
    for k, (b, lp, ms) in enumerate([(0.2, 0.02, 0.999), (0.4, 0.01, 0.9995), (0.8, 0.005, 1.0)]):
        s.add_to_history(fake_encoding(s, "jpeg", 20 + 30 * k, b, 30 + k, ms_ssim=ms, lpips=lp))
    rd = win.rd_plot
    for metric, lo, hi in (("lpips", 0.0, 1.0), ("ms_ssim", 0.0, 1.0)):
        s.view.rd_metric = metric
        (_, _), (y0, y1) = rd.plot.getPlotItem().vb.viewRange()
        assert lo <= y0 < y1 <= hi, (metric, y0, y1)
    win.close()


# ------------------------------------------------------------------ 5: closed demo window

class _StubCodec:
    def __init__(self, name):
        self.name = name


class _StubDemoCodecs:
    hific = _StubCodec("hific-stub")
    ours = _StubCodec("ours-stub")
    default_steps = 4

    def default_target(self):
        return 0.35

    def budget(self):
        return False, "training budgets unknown (stub)"


def test_error_dialogs_work_after_the_generative_demo_was_closed(qtbot):
    win = make_window(qtbot)
    win.find_demo_codecs = lambda: (_StubDemoCodecs(), "")
    win.session.set_image(generated_image(64, 64))
    wait_idle(qtbot, win)
    dlg = win.show_generative_demo()
    assert dlg is not None
    dlg.close()
    qtbot.waitUntil(lambda: win.demo is None, timeout=5000)  # deleted, and forgotten
    win.show_error("Something failed", "one line")  # used to raise RuntimeError
    win.show_error("Something else failed", "another line")
    assert [t for t, _ in win.error_log[-2:]] == ["Something failed", "Something else failed"]
    win.close()


# ------------------------------------------------------------------ 6: three panes at 1366 px

@pytest.mark.slow
def test_three_panes_fit_a_laptop_with_their_whole_numbers(qtbot, fake_codec, monkeypatch):
    monkeypatch.setattr(fake_codec, "decoders", ("mse", "diffusion"), raising=False)
    win = make_window(qtbot, codecs=[FAKE, "jpeg", "webp"], size=LAPTOP)
    s = win.session
    s.view.n_panes = 3
    s.set_image(generated_image(176, 208))  # ≥ 161 px: MS-SSIM is defined
    wait_idle(qtbot, win)
    qtbot.wait(50)
    assert win.controls_scroll.horizontalScrollBar().maximum() == 0  # no sideways scrolling
    for pc in win.pane_controls:
        assert pc.visibleRegion().boundingRect().width() == pc.width()
        assert "bpp" in pc.status.full_text and "MS-SSIM" in pc.metrics.full_text
        assert _not_elided(pc.status) and _not_elided(pc.metrics), (pc.status.full_text,
                                                                    pc.metrics.full_text)
        assert pc.progress.value() == 100
    # C answered from the cache shows a full bar too
    pc = win.pane_controls[2]
    rate = s.panes[2].settings.rate
    s.panes[2].set(rate=rate - 10)
    s.panes[2].set(rate=rate)
    wait_idle(qtbot, win)
    assert pc.progress.value() == 100
    # the diffusion decoder's steps/seed row never pushes A's numbers off screen
    s.panes[0].set(decoder="diffusion")
    wait_idle(qtbot, win)
    qtbot.wait(50)
    pa = win.pane_controls[0]
    assert pa.diffusion_row.isVisible()
    status_top = win.statusBar().mapTo(win, win.statusBar().rect().topLeft()).y()
    for lab in (pa.status, pa.metrics):
        assert lab.visibleRegion().boundingRect().height() == lab.height(), lab.full_text
        bottom = lab.mapTo(win, lab.rect().bottomLeft()).y()
        assert bottom < status_top
    win.close()


# ------------------------------------------------------------------ 7: tiny images

def test_a_one_pixel_image_is_refused_in_one_line_and_small_ones_say_n_a(qtbot, tmp_path):
    win = make_window(qtbot, size=LAPTOP)
    one = write_png(tmp_path / "one.png", np.full((1, 1, 3), 128, np.uint8))
    assert win.open_path(one)
    qtbot.waitUntil(lambda: bool(win.error_log), timeout=20000)
    title, msg = win.error_log[-1]
    assert "\n" not in msg and "1×1" in msg and "at least" in msg
    assert win.session.image is None
    small = write_png(tmp_path / "small.png", generated_image(64, 64))
    assert win.open_path(small)
    wait_idle(qtbot, win)
    pa = win.pane_controls[0]
    assert "MS-SSIM n/a" in pa.metrics.full_text and "nan" not in pa.metrics.full_text
    assert "161" in pa.metrics.toolTip()
    win.close()


# ------------------------------------------------------------------ 8: truncated .lic

def _truncated_lic(tmp_path):
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "core" / "fixtures" / "lic_v2" / \
        "preview_round.lic"
    data = src.read_bytes()
    cut = tmp_path / "cut.lic"
    cut.write_bytes(data[: len(data) // 2])
    return cut, len(data) // 2, len(data)


def test_a_truncated_lic_file_is_called_truncated_in_the_studio_and_the_cli(qtbot, tmp_path,
                                                                            capsys):
    cut, n, total = _truncated_lic(tmp_path)
    win = make_window(qtbot, size=LAPTOP)
    assert win.open_path(cut)
    qtbot.waitUntil(lambda: bool(win.error_log), timeout=60000)
    msg = win.error_log[-1][1]
    assert "truncated" in msg and f"{n} of {total} bytes" in msg and "CRC" not in msg
    win.close()
    from lic_core.cli import main as lic_main

    rc = lic_main(["decompress", str(cut), str(tmp_path / "out.png")])
    err = capsys.readouterr().err
    assert rc != 0 and "truncated" in err and f"{n} of {total} bytes" in err


# ------------------------------------------------------------------ 9: the small ones

def test_bd_rate_prefers_the_swept_curve_and_says_how_many_points(qtbot, fake_codec):
    win = make_window(qtbot, size=LAPTOP)
    win.controller.auto_encode = False
    s = win.session
    s.set_image(generated_image(64, 64))
    for k in range(6):
        s.add_to_history(fake_encoding(s, "jpeg", 10 + 15 * k, 0.2 + 0.25 * k, 27 + 2.5 * k))
        s.add_to_history(fake_encoding(s, FAKE, 0.1 + 0.15 * k, 0.15 + 0.2 * k, 29 + 2.6 * k,
                                       quantizer="tcq"))
    for k in range(2):  # a curve of 2 points that sorts first
        s.add_to_history(fake_encoding(s, FAKE, 0.3 + 0.3 * k, 0.3 + 0.3 * k, 31 + 3 * k))
    rd = win.rd_plot
    assert rd.test_combo.currentData() == f"{FAKE} (tcq, mse)"
    assert rd.ref_combo.currentData() == "jpeg"
    assert "6 points" in rd.bd_label.text()
    # a chosen 2-point curve is named as such
    rd.test_combo.setCurrentIndex(rd.test_combo.findData(f"{FAKE} (round, mse)"))
    assert "2 points" in rd.bd_label.text()
    win.close()


def test_bd_rate_never_offers_a_curve_against_itself(qtbot):
    win = make_window(qtbot, size=LAPTOP)
    win.controller.auto_encode = False
    s = win.session
    s.set_image(generated_image(64, 64))
    rd = win.rd_plot
    rd.ref_set_combo.setCurrentIndex(2)  # no references
    for k in range(4):
        s.add_to_history(fake_encoding(s, "jxl", 20 + 20 * k, 0.2 + 0.3 * k, 30 + 2 * k))
    assert rd.ref_combo.currentText() != rd.test_combo.currentText() or \
        not rd.test_combo.isEnabled()
    assert "jxl vs jxl" not in rd.bd_label.text() and "two" in rd.bd_label.text()
    win.close()


def test_metrics_csv_has_no_quantizer_or_decoder_for_classical_codecs(qtbot, fake_codec,
                                                                      tmp_path):
    import csv

    win = make_window(qtbot, codecs=[FAKE, "jxl", "jpeg"], size=LAPTOP)
    win.session.set_image(generated_image(64, 64))
    wait_idle(qtbot, win)
    rows = list(csv.DictReader(open(win.export_metrics(tmp_path / "m.csv"))))
    jxl = [r for r in rows if r["codec"] == "jxl"]
    ours = [r for r in rows if r["codec"] == FAKE]
    assert jxl and all(r["quantizer"] == "" and r["decoder"] == "" for r in jxl)
    assert ours and ours[0]["quantizer"] == "round" and ours[0]["decoder"] == "mse"
    win.close()


def test_cancel_puts_the_slider_back_on_the_shown_result(qtbot, fake_codec):
    win = make_window(qtbot, codecs=[FAKE, "jpeg", "jpeg"], size=LAPTOP)
    s = win.session
    s.set_image(generated_image(64, 64))
    s.panes[0].set(rate=0.823)
    wait_idle(qtbot, win)
    shown = s.panes[0].encoding
    assert shown.params.rate == pytest.approx(0.823)
    pa = win.pane_controls[0]
    fake_codec.delay = 0.05
    try:
        pa.set_rate(0.703)
        qtbot.waitUntil(lambda: s.panes[0].busy and s.panes[0].progress > 0, timeout=10000)
        pa.cancel_btn.click()
        wait_idle(qtbot, win)
    finally:
        fake_codec.delay = 0.0
    assert s.panes[0].encoding is shown
    assert s.panes[0].settings.rate == pytest.approx(0.823)
    assert pa.rate_spin.value() == pytest.approx(0.823, abs=1e-3)
    assert pa.rate_slider.value() == pa._rate_to_slider(0.823)
    # cancelled while still waiting for the debounce: back as well
    pa.set_rate(0.4)
    pa.cancel_btn.setEnabled(True)
    win.controller.cancel(0)
    wait_idle(qtbot, win)
    assert s.panes[0].settings.rate == pytest.approx(0.823)
    assert not win.error_log
    win.close()


def test_pixel_readout_is_cleared_with_its_image(qtbot, fake_codec, tmp_path):
    win = make_window(qtbot, codecs=["jpeg", "jpeg", "jpeg"], size=LAPTOP)
    s = win.session
    s.set_image(generated_image(64, 64))
    wait_idle(qtbot, win)
    win.compare.pixel_info.emit("x=5 y=7  orig (1, 2, 3)")
    assert win.status_pixel.text().startswith("x=5")
    s.set_image(generated_image(32, 48, seed=2))
    assert win.status_pixel.text() == ""
    win.compare.pixel_info.emit("x=1 y=1  orig (1, 2, 3)")
    win.compare.leave_image()  # the cursor left the picture
    assert win.status_pixel.text() == ""
    win.close()


def test_labels_are_not_cut(qtbot, fake_codec):
    win = make_window(qtbot, codecs=[FAKE, "jpeg", "jpeg"], size=LAPTOP)
    s = win.session
    s.set_image(generated_image(64, 64))
    wait_idle(qtbot, win)
    # the rate table's part names
    win.inspector_tabs.setCurrentWidget(win.rate)
    win.rate.refresh()
    qtbot.wait(30)
    t = win.rate.table
    for r in range(t.rowCount()):
        item = t.item(r, 0)
        need = t.fontMetrics().horizontalAdvance(item.text()) + 8
        assert t.columnWidth(0) >= need, item.text()
    assert t.horizontalScrollBar().maximum() == 0  # every column whole, none scrolled away
    # a running encode's progress message
    pa = win.pane_controls[0]
    p = s.panes[0]
    p.busy = True
    p.status = "analysis transform"
    assert "analysis transform" in pa.status.text()
    p.busy = False
    # the BD-rate choosers show short names (the full one in the tooltip and the popup)
    rd = win.rd_plot
    refs = [n for n in rd.curves if n.startswith("[ref") and "ELIC" in n]
    if refs:
        i = rd.ref_combo.findData(refs[0])
        rd.ref_combo.setCurrentIndex(i)
        shown = rd.ref_combo.currentText()
        assert "ELIC" in shown
        fm = rd.ref_combo.fontMetrics()
        assert fm.horizontalAdvance(shown) + 28 <= rd.ref_combo.width(), shown
        assert refs[0] in rd.ref_combo.itemData(i, 3)  # Qt.ToolTipRole: the full name
    win.close()


def test_latent_grid_tiles_each_get_a_readable_scale():
    from app.model.inspect_maps import channel_mosaic

    rng = np.random.default_rng(0)
    arr = rng.normal(1.0, 0.2, (2, 16, 16)).astype(np.float32)
    arr[0, 0, 0] = 500.0  # one outlier σ would flatten the whole tile to one colour
    arr[1] *= 40.0  # a channel of much larger scale
    tiles = channel_mosaic(arr, np.array([0, 1]), count=2, cols=2)
    t0 = tiles[:16, :16]
    assert float(np.nanstd(t0)) > 0.15  # the tile still shows its structure
    shared = channel_mosaic(arr, np.array([0, 1]), count=2, cols=2, shared=True)
    a, b = shared[:16, :16], shared[:16, 17:]
    assert float(np.nanmean(b)) > float(np.nanmean(a)) + 0.2  # one scale: magnitudes compare


def test_latent_browser_offers_per_tile_or_shared_scale(qtbot, fake_codec):
    win = make_window(qtbot, codecs=[FAKE, "jpeg", "jpeg"], size=LAPTOP)
    s = win.session
    s.set_image(generated_image(64, 64))
    wait_idle(qtbot, win)
    lb = win.latents
    lb.refresh()
    assert lb.scale_combo.count() == 2 and lb.mosaic_bar is not None
    lb.scale_combo.setCurrentIndex(1)
    lo, hi = lb.mosaic_bar.levels()
    assert hi > lo
    win.close()


# ------------------------------------------------------------------ 10: exports

def test_rd_export_carries_the_legend_of_every_curve(qtbot, fake_codec, tmp_path):
    from PIL import Image

    win = make_window(qtbot, size=LAPTOP)
    win.controller.auto_encode = False
    _six_curves(win)
    rd = win.rd_plot
    refs = [n for n in rd.curves if n.startswith("[ref")]
    if not refs:
        pytest.skip("no published curves in this install")
    out = win.export_plot(tmp_path / "rd.png")
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    # the legend is part of the picture: below the data, with a swatch of every reference
    band = img[2 * rd.plot.height():]  # PNG at twice the on-screen size
    for n in refs:
        c = np.array(_rgb(rd.series_look(n)[0]))
        assert (np.abs(band - c).sum(-1) < 30).any(), n
    svg = win.export_plot(tmp_path / "rd.svg").read_text()
    assert "ELIC" in svg or not any("ELIC" in n for n in refs)
    win.close()


def test_heatmap_export_has_a_colorbar(qtbot, fake_codec, tmp_path):
    from PIL import Image

    from app.model.inspect_maps import colormap_lut

    win = make_window(qtbot, codecs=[FAKE, "jpeg", "jpeg"], size=LAPTOP)
    s = win.session
    s.set_image(generated_image(64, 96))
    wait_idle(qtbot, win)
    out = win.export_heatmap(tmp_path / "heat.png")
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert img.shape[1] > 96 and img.shape[0] >= 64
    lut = colormap_lut(s.view.colormap).astype(int)
    right = img[:, 96:]
    # the bar runs through the colormap: its top and bottom colours are both there
    for c in (lut[0], lut[-1]):
        assert (np.abs(right - c).sum(-1) < 12).any()
    win.close()


def test_demo_pictures_zoom_1_to_1_in_step_and_the_variance_map_has_a_colorbar(qtbot):
    from app.model.generative_demo import DemoResult, DemoSide

    win = make_window(qtbot)
    win.find_demo_codecs = lambda: (_StubDemoCodecs(), "")
    img = generated_image(120, 400)
    win.session.set_image(img)
    wait_idle(qtbot, win)
    dlg = win.show_generative_demo()

    def side(label):
        return DemoSide(label=label, codec="x", decoder="mse", reconstruction=img, bpp=0.3,
                        rate=0.5, metrics={"psnr": 30.0})

    res = DemoResult(target_bpp=0.3, hific=side("h"), ours=side("o"), mse=side("m"),
                     frames=[img, img], steps=1, seed=0)
    dlg._job = job = object()
    dlg._on_demo(job, res)
    qtbot.waitExposed(dlg)
    qtbot.wait(50)  # laid out at its size
    dlg.one_btn.click()
    qtbot.wait(30)
    for view in (dlg.hific_view, dlg.ours_view):
        assert view.scale() == pytest.approx(1.0, rel=0.02)  # one image pixel per screen pixel
    r0, r1 = dlg.hific_view.view_rect(), dlg.ours_view.view_rect()
    assert r0 == pytest.approx(r1)  # zoom and pan are linked
    std = np.abs(np.random.default_rng(0).normal(0, 3, img.shape[:2])).astype(np.float32)
    dlg._job = job = object()
    dlg._on_variance(job, std)
    assert dlg.var_view.isVisible() and dlg.var_bar is not None
    lo, hi = dlg.var_bar.levels()
    assert lo == 0.0 and hi == pytest.approx(float(std.max()), rel=1e-3)
    dlg.close()
    win.close()
