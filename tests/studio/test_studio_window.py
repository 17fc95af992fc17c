"""The studio window as a new user meets it (issue 14 items 1, 2, 3, 9, 11 and the settings).

Every test drives the real window offscreen at laptop size (1366×768).
"""
from __future__ import annotations

import pytest

from studio_helpers import generated_image, make_window, wait_idle, write_png

pytestmark = pytest.mark.gui

LAPTOP = (1366, 768)
MODES = [(mode, n, diff) for mode in ("split", "side", "flicker") for n in (2, 3)
         for diff in ("off", "a-b")]


# ---------------------------------------------------------------------------- item 1: fits

def test_window_opens_no_larger_than_the_screen(qtbot):
    from PySide6.QtCore import QSize

    from app.qt_settings import fit_size

    win = make_window(qtbot, size=None)
    avail = win.screen().availableGeometry().size()
    assert win.width() <= avail.width() and win.height() <= avail.height()
    assert fit_size(QSize(1366, 768)) == QSize(1342, 744)
    assert fit_size(QSize(3000, 2000)) == QSize(1440, 900)


@pytest.mark.slow
def test_every_mode_fits_a_laptop_screen_and_never_grows_the_window(qtbot):
    """Split / side by side / flicker × 2 or 3 panes × difference on/off, with an image: the
    window's minimum stays inside 1366×768 and switching modes never changes its size."""
    win = make_window(qtbot, size=LAPTOP)
    win.session.set_image(generated_image())
    wait_idle(qtbot, win)
    v = win.session.view
    start = win.size()
    for mode, n, diff in MODES + MODES[:1]:
        v.n_panes, v.compare_mode, v.diff_mode = n, mode, diff
        wait_idle(qtbot, win)
        qtbot.wait(20)
        hint = win.minimumSizeHint()
        assert hint.width() <= LAPTOP[0] and hint.height() <= LAPTOP[1], (mode, n, diff, hint)
        assert win.size() == start, (mode, n, diff, win.size())
        for dock in (win.rd_dock, win.inspector_dock):  # docks stay on screen
            assert dock.isVisible() and dock.geometry().right() <= win.width()
    # three panes' controls fit side by side without scrolling at laptop width
    v.n_panes = 3
    qtbot.wait(50)
    assert win.controls_scroll.horizontalScrollBar().maximum() == 0


def test_rd_plot_controls_and_legend_are_not_clipped(qtbot):
    win = make_window(qtbot, size=LAPTOP)
    win.session.set_image(generated_image(96, 128))
    wait_idle(qtbot, win)
    win.controller.sweep(0, points=3)
    wait_idle(qtbot, win)
    rd = win.rd_plot
    for w in (rd.metric_combo, rd.ref_set_combo, rd.ref_combo, rd.test_combo):
        assert w.visibleRegion().boundingRect().width() == w.width() > 40
    # the legend sits below the data (issue 30 item 2), every entry whole
    assert rd.legend_entries() and rd.legend.isVisible()
    for entry in rd.legend_entries():
        assert entry.visibleRegion().boundingRect().size() == entry.size(), entry.toolTip()


# ---------------------------------------------------------------------------- docks, layout

def test_docks_close_and_come_back_from_the_view_menu(window, qtbot):
    rd_toggle = window.panel_actions[0]
    window.rd_dock.close()
    assert not window.rd_dock.isVisible() and not rd_toggle.isChecked()
    rd_toggle.trigger()
    assert window.rd_dock.isVisible()
    window.inspector_dock.close()
    window.view_toolbar.hide()
    window.act_reset_layout.trigger()
    assert window.inspector_dock.isVisible() and window.view_toolbar.isVisible()
    texts = {a.text() for a in window.panel_actions}
    assert {"RD plot", "Inside the codec"} <= texts


def test_layout_and_settings_are_remembered(qtbot, settings_dir, tmp_path):
    win = make_window(qtbot, persist=True, size=(1200, 700))
    win.inspector_dock.close()
    assert win.set_compute_threads(1) == 1
    win.close()  # saves geometry and dock state
    again = make_window(qtbot, persist=True, size=None)
    assert again.inspector_dock.isHidden() and again.rd_dock.isVisible()
    assert again.compute_threads == 1
    import torch

    assert torch.get_num_threads() == 1
    again.set_compute_threads(0)  # automatic again
    again.close()


# ---------------------------------------------------------------------------- item 2: recent

@pytest.mark.parametrize("stored", ["/photos/one.png", ["/photos/one.png"]])
def test_open_recent_survives_a_restart_with_one_entry(qtbot, settings_dir, stored):
    from app.qt_settings import studio_settings

    st = studio_settings()
    st.setValue("recent_files", stored)
    st.sync()
    win = make_window(qtbot, persist=True)
    assert win.session.recent_files == ["/photos/one.png"]
    assert [a.text() for a in win.recent_menu.actions()] == ["/photos/one.png"]
    win.close()


# ---------------------------------------------------------------------------- item 3: captions

def _caption(win, i):
    lab = win.compare.labels[i]
    return lab, lab.text(), lab.font().pointSizeF(), lab.height()


def test_captions_keep_their_size_and_their_numbers_in_every_mode(qtbot, window):
    s = window.session
    s.set_image(generated_image())
    wait_idle(qtbot, window)
    psnr = s.panes[0].encoding.metrics["psnr"]
    _, text, size, height = _caption(window, 0)
    assert f"{psnr:.2f} dB" in text
    for n in (2, 3):
        s.view.n_panes = n
        s.view.compare_mode = "side"
        wait_idle(qtbot, window)
        qtbot.wait(30)
        for i in range(n):
            lab, text, sz, h = _caption(window, i)
            enc = s.panes[i].encoding
            assert lab.isVisible() and sz == size and h == height
            assert f"{enc.metrics['psnr']:.2f} dB" in text  # never elided away
            box = window.compare._box_rect(window.compare.viewboxes[i])
            assert lab.x() >= box.left() and lab.x() + lab.width() <= box.right() + 1
    window.compare.zoom_to(12.0)  # zoomed far in: the captions stay, same size
    qtbot.wait(30)
    for i in range(3):
        lab, _, sz, h = _caption(window, i)
        assert lab.isVisible() and sz == size and h == height


# ---------------------------------------------------------------------------- item 9: empty

@pytest.mark.slow
def test_empty_studio_offers_open_and_the_sample(qtbot, window):
    from app.model import services

    c = window.compare
    assert c.stack.currentWidget() is c.placeholder
    assert c.open_btn.isVisible() and c.sample_btn.isVisible()
    for view in (window.latents, window.entropy, window.rate):
        assert any(h.isVisibleTo(view) and "Open an image" in h.text() for h in view._hints)
    if services.sample_image_path() is None:
        pytest.skip("no sample image in this install")
    c.sample_btn.click()
    wait_idle(qtbot, window)
    assert window.session.image is not None and c.stack.currentWidget() is c.glw


# ---------------------------------------------------------------------------- item 11: saves

def test_save_dialog_starts_where_the_user_last_saved(qtbot, settings_dir, tmp_path):
    win = make_window(qtbot, persist=True)
    img = write_png(tmp_path / "photo.png", generated_image(64, 64))
    assert win.open_path(img)
    wait_idle(qtbot, win)
    assert win.save_start("x.png").parent == tmp_path  # first: next to the image
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    assert win.export_reconstruction(1, out_dir / "b.png") is not None
    assert win.save_start("y.png") == out_dir.resolve() / "y.png"
    win.close()
    again = make_window(qtbot, persist=True)
    assert again.save_start("z.png").parent == out_dir.resolve()
    again.close()


def test_exports_follow_the_umask(qtbot, window, tmp_path):
    import os
    import stat

    window.session.set_image(generated_image(64, 64))
    wait_idle(qtbot, window)
    old = os.umask(0o022)
    try:
        for p in (window.export_reconstruction(0, tmp_path / "a.png"),
                  window.export_compressed(0, tmp_path / "a.jpg"),
                  window.export_plot(tmp_path / "rd.png")):
            assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
    finally:
        os.umask(old)
    assert not window.error_log
