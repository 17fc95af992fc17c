"""The studio with big images (issue 28 item 3), in the real window (offscreen, 1366×768).

* a big picture loads in a worker with progress, each pane shows a display-resolution preview,
  zooming brings in the full-resolution pixels in view (bounded by the screen), differences and
  the bits overlay are drawn from samples and at latent resolution, MS-SSIM comes after the
  picture, the inspector's maps of a big encoding are computed in a worker, and closing the
  picture lets go of all of it — with the thresholds lowered so a small picture counts as big;
* a picture the machine cannot hold is refused in one line before it is decoded;
* (slow) a generated 24 MP photo opens and encodes in workers with progress while the window
  keeps answering, and its memory is given back when it is closed.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer

from app.model import display, inspect_jobs, inspect_maps, memory
from studio_helpers import FAKE, generated_image, make_window, wait_idle, write_png


@pytest.fixture
def big_thresholds(monkeypatch):
    """A 600×400 picture counts as big: preview 1/3, MS-SSIM after, maps in a worker."""
    monkeypatch.setattr(display, "PREVIEW_MAX_SIDE", 200)
    monkeypatch.setattr(display, "BIG_PIXELS", 100_000)
    monkeypatch.setattr(inspect_jobs, "HEAVY_ELEMENTS", 0)


def _layer(win, item):
    return win.compare.layers[id(item)]


@pytest.mark.slow  # ~3 s: a whole session (open, two encodes, zoom, diff, maps, close)
def test_big_picture_in_the_studio(qtbot, tmp_path, fake_codec, big_thresholds):
    win = make_window(qtbot, codecs=(FAKE, "jpeg", "jpeg"))
    s, cv = win.session, win.compare
    img = generated_image(400, 600)
    path = write_png(tmp_path / "big.png", img)
    progress = []
    s.panes[1].events.progress.connect(lambda e: progress.append(e.value))
    assert win.open_path(path)
    qtbot.waitUntil(lambda: s.image is not None, timeout=30000)
    wait_idle(qtbot, win, 60000)
    assert not win.error_log, win.error_log
    # opening reported its stages, and the task widget went away at the end
    hist = win.task_progress.history
    assert hist and hist[0] == 0.0 and max(hist) == 1.0 and not win.task_progress.isVisible()
    assert 0 < max(progress) <= 1.0  # the pane's encode reported progress too

    # --- each pane shows a preview at 1/3; the original's id came from the worker
    a, b = s.panes[0].encoding, s.panes[1].encoding
    assert a is not None and b is not None and a.reconstruction.shape == img.shape
    cut = int(round(s.view.split_pos * 600))
    base0 = cv.split_items[0].image
    assert base0.shape[0] == 134 and base0.shape[1] == -(-cut // 3)
    assert np.array_equal(base0, display.preview(a.reconstruction).array[:, :base0.shape[1]])
    cv.zoom_to(0.25)  # a quarter: the preview has every pixel the screen shows
    cv.refresh_details()
    assert _layer(win, cv.split_items[0]).detail_crop is None

    # --- 1:1 brings in the exact pixels in view, never more than the budget
    cv.zoom_to(1.0, (300, 200))
    cv.refresh_details()
    crop = _layer(win, cv.split_items[0]).detail_crop
    assert crop is not None and crop.step == 1 and crop.pixels <= display.DETAIL_BUDGET
    assert crop.x1 <= cut  # pane A's crop stays left of the divider
    det = _layer(win, cv.split_items[0]).detail.image
    assert np.array_equal(det, a.reconstruction[crop.y0:crop.y1, crop.x0:crop.x1])

    # --- the difference: sampled when zoomed out, exact in view
    s.view.diff_mode = "a-orig"
    cv.refresh_details()
    dl = cv.diff_layer
    assert cv.diff_item.isVisible() and dl.detail_crop is not None
    c = dl.detail_crop
    want = inspect_maps.colorize(inspect_maps.diff_values(
        c.take(a.reconstruction), c.take(s.image), s.view.diff_gain), s.view.colormap, 0, 255)
    assert np.array_equal(dl.detail.image, want)
    s.view.diff_mode = "off"
    cv.fit()

    # --- MS-SSIM of a big picture's results arrives after them (scored one by one)
    assert "ms_ssim" in a.metrics and "ms_ssim" in b.metrics
    assert s.encode_metrics() == ("psnr",)

    # --- the inspector's maps came from a worker; the overlay is drawn at latent resolution
    win.inspector_tabs.setCurrentWidget(win.latents)
    win.latents.pane_combo.setCurrentIndex(0)
    win.latents.refresh()
    qtbot.waitUntil(lambda: win.latents.mosaic_array is not None
                    and not win.latents._hints[0].isVisible(), timeout=20000)
    assert win.latents.channel_array.shape == a.inspection.y_hat.shape[1:]
    win.entropy.overlay_check.setChecked(True)
    wait_idle(qtbot, win)
    ov = cv.overlays[0]
    assert ov.isVisible() and ov.image.shape[:2] == a.inspection.bits_y.shape[1:]
    assert win.entropy.array.sum() == pytest.approx(a.inspection.bits_y.sum(), rel=1e-4)

    # --- File → Close: nothing shown, nothing held
    win.act_close.trigger()
    wait_idle(qtbot, win)
    assert s.image is None and s.panes[0].encoding is None and s.history == []
    assert cv.stack.currentWidget() is cv.placeholder
    for layer in cv._all_layers():
        assert layer.base.image is None and layer.detail.image is None
    assert len(s.cache) == 0 or s.cache.nbytes() <= 256 * 2 ** 20
    win.controller.cancel_all()
    win.controller.pool.wait(20000)


def test_a_picture_too_big_for_the_machine_is_refused_in_one_line(qtbot, tmp_path,
                                                                   monkeypatch):
    win = make_window(qtbot)
    path = write_png(tmp_path / "huge.png", generated_image(64, 96))
    monkeypatch.setattr(memory, "BASE_BYTES", 10 ** 15)  # no machine has that
    assert win.open_path(path)
    qtbot.waitUntil(lambda: bool(win.error_log), timeout=20000)
    title, msg = win.error_log[-1]
    assert title == "Cannot open huge.png" and "\n" not in msg
    assert "huge.png is 96×64" in msg and "this machine has" in msg
    assert win.session.image is None and not win.task_progress.isVisible()


def test_opening_can_be_cancelled(qtbot, tmp_path):
    win = make_window(qtbot)
    path = write_png(tmp_path / "p.png", generated_image(300, 400))
    assert win.open_path(path)
    assert win.task_progress.isVisible()  # what is opening, how far, Cancel
    win.task_progress.cancel_btn.click()
    qtbot.waitUntil(lambda: not win.task_progress.isVisible(), timeout=20000)
    wait_idle(qtbot, win)
    assert win.session.image is None and not win.error_log


@pytest.mark.slow
def test_24_megapixel_photo_loads_and_encodes_in_workers(qtbot, tmp_path):
    """A 6000×4000 photo (generated here) opens and encodes in workers with progress; the GUI
    thread keeps ticking meanwhile (benchmarks/gui_stall.py measures it properly); closing it
    gives its memory back.  JPEG in both panes: the fastest codec on the same path."""
    import importlib.util
    from pathlib import Path

    from PIL import Image

    spec = importlib.util.spec_from_file_location(
        "bench_gui_stall", Path(__file__).resolve().parents[2] / "benchmarks" / "gui_stall.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # its synthetic photo: gradients, edges and noise
    h, w = 4000, 6000
    path = tmp_path / "photo24.png"
    Image.fromarray(gen.synthetic_photo(h, w)).save(path, compress_level=1)
    win = make_window(qtbot)  # jpeg in every pane
    s, cv = win.session, win.compare
    s.view.compute_ms_ssim = False  # ~6 GB and ~40 s per result at 24 MP: not this test's
    qtbot.wait(50)
    memory.release(background=False)
    rss_before = memory.rss()

    gaps, last = [], [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)
    timer.start(10)
    progress = {0: [], 1: []}
    for i in (0, 1):
        s.panes[i].events.progress.connect(lambda e, i=i: progress[i].append(e.value))
    assert win.open_path(path)
    qtbot.waitUntil(lambda: s.image is not None, timeout=120000)
    qtbot.waitUntil(lambda: all(p.encoding is not None for p in s.active_panes),
                    timeout=300000)
    wait_idle(qtbot, win, 120000)
    timer.stop()
    assert not win.error_log, win.error_log
    assert s.image.shape == (h, w, 3)
    hist = win.task_progress.history
    assert hist and max(hist) == 1.0 and len(hist) >= 3  # reading, hashing, preview, done
    assert all(0 < max(v) <= 1.0 for v in progress.values())
    # the GUI thread kept running: ticks all along, and no second-long freeze
    assert len(gaps) > 50 and max(gaps) < 1.5, f"longest GUI gap {max(gaps):.2f} s"
    # panes hold previews, not the 24 MP pictures; 1:1 brings a screen-sized crop
    assert max(cv.split_items[0].image.shape[:2]) <= display.PREVIEW_MAX_SIDE
    cv.zoom_to(1.0, (w / 2, h / 2))
    cv.refresh_details()
    crop = _layer(win, cv.split_items[1]).detail_crop
    assert crop is not None and crop.pixels <= display.DETAIL_BUDGET
    rss_open = memory.rss()

    # replaced by an ordinary photo: the 24 MP pictures go
    assert win.open_path(write_png(tmp_path / "small.png", generated_image(512, 768)))
    qtbot.waitUntil(lambda: s.image is not None and s.image.shape[0] == 512, timeout=60000)
    wait_idle(qtbot, win, 60000)
    qtbot.wait(300)
    memory.release(background=False)
    rss_replaced = memory.rss()
    win.act_close.trigger()
    wait_idle(qtbot, win)
    qtbot.wait(300)
    memory.release(background=False)
    rss_after = memory.rss()
    print(f"RSS before {rss_before / 2**20:.0f} MB, open {rss_open / 2**20:.0f} MB, replaced "
          f"{rss_replaced / 2**20:.0f} MB, after close {rss_after / 2**20:.0f} MB")
    # the picture (72 MB), two reconstructions and their previews are given back
    assert rss_open - rss_before > 200 * 2 ** 20
    assert rss_replaced - rss_before < 150 * 2 ** 20
    assert rss_after - rss_before < 150 * 2 ** 20
