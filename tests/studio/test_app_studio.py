"""Studio GUI tests: drive the real window offscreen with pytest-qt.

Encodes with the learned codec (the registry's real one when present, else a small fake learned
codec registered only for these tests) and JPEG at two rates, checks panes, RD plot, latent and
heatmap views, exports a compressed file and reopens it, cancels a running encode and drags a rate
slider 50 times without a stuck worker.
"""
from __future__ import annotations

import json
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from app.model import services
from lic_core.codecs import Codec, DecodeResult, EncodeResult, Inspection, get_codec, list_codecs
from lic_core.codecs import registry as _registry
from lic_core.errors import LicFormatError

pytestmark = pytest.mark.gui

FAKE = "test-fake-learned"


class FakeLearnedCodec(Codec):
    """A tiny deterministic 'learned' codec: uniform quantisation with a u-dependent step.

    It fills :class:`Inspection` with the shapes of the real LGEM codec (M×h×w latent grid with
    h = ceil(H/64)·4, z grid h/4) so the studio's views can be tested without torch models.
    """

    name = FAKE
    family = "learned"
    rate_label = "rate u"
    rate_range = (0.0, 1.0)
    default_rate = 0.5
    quantizers = ("round", "deadzone")
    decoders = ("mse",)
    file_extension = ".fakelic"
    M, N = 12, 4
    delay = 0.0  # seconds per progress step (cancel tests)

    def _step(self, u: float) -> int:
        return int(round(2 + (1 - min(max(u, 0.0), 1.0)) * 40))

    def encode(self, image, params, progress=None):
        h, w = image.shape[:2]
        steps = 20
        for k in range(steps):
            if progress:
                progress(k / steps, "encoding")
            if self.delay:
                time.sleep(self.delay)
        q = self._step(params.rate)
        idx = (image.astype(np.int32) // q).astype(np.uint8)
        head = json.dumps({"h": h, "w": w, "q": q}).encode()
        data = b"FAKE" + len(head).to_bytes(2, "big") + head + zlib.compress(idx.tobytes(), 6)
        rec = self.decode(data).reconstruction
        lh, lw = -(-h // 64) * 4, -(-w // 64) * 4
        rng = np.random.default_rng(int(params.rate * 1000))
        y_hat = np.round(rng.normal(0, 4, (self.M, lh, lw))).astype(np.float32)
        bits_y = np.abs(y_hat) * (1.5 - params.rate) + 0.05
        bits_z = rng.uniform(0, 1, (self.N, lh // 4, lw // 4)).astype(np.float32)
        insp = Inspection(y_hat=y_hat, means=y_hat * 0.5, scales=np.abs(y_hat) + 0.5,
                          bits_y=bits_y.astype(np.float32), bits_z=bits_z,
                          channel_groups=[2, 2, 8],
                          group_bits={f"g{g}/{p}": float(bits_y.sum()) / 6
                                      for g in range(3) for p in ("anchor", "non-anchor")},
                          header_bytes=6 + len(head), z_bytes=0,
                          y_bytes=len(data) - 6 - len(head),
                          estimated_bits=float(bits_y.sum() + bits_z.sum()))
        if progress:
            progress(1.0, "done")
        return EncodeResult(data=data, reconstruction=rec, bpp=8 * len(data) / (h * w),
                            params=params, codec=self.name, file_extension=self.file_extension,
                            timings={"encode": 0.0}, inspection=insp)

    def decode(self, data, progress=None):
        if data[:4] != b"FAKE":
            raise LicFormatError("not a fake bitstream")
        n = int.from_bytes(data[4:6], "big")
        hd = json.loads(data[6:6 + n])
        idx = np.frombuffer(zlib.decompress(data[6 + n:]), np.uint8).reshape(hd["h"], hd["w"], 3)
        rec = np.clip(idx.astype(np.int32) * hd["q"] + hd["q"] // 2, 0, 255).astype(np.uint8)
        return DecodeResult(reconstruction=rec, codec=self.name, info={"q": hd["q"]})

    def describe(self):
        return {"name": self.name, "family": self.family, "provenance": "preview",
                "model_card": "fake codec for GUI tests"}


@pytest.fixture
def fake_codec():
    """Register the fake learned codec for one test, then remove it from the registry."""
    _registry.register_codec(FAKE)(FakeLearnedCodec)
    yield get_codec(FAKE)
    _registry._FACTORIES.pop(FAKE, None)
    _registry._CACHE.pop(FAKE, None)


def _real_learned() -> str | None:
    for n in list_codecs():
        if n == FAKE:
            continue
        try:
            c = get_codec(n)
        except Exception:
            continue
        if c.family == "learned" and c.available()[0] and "lgem" in n:
            return n
    return None


@pytest.fixture
def learned(fake_codec) -> str:
    """The real learned codec when the registry has one, else the fake one."""
    return _real_learned() or FAKE


@pytest.fixture
def window(qtbot):
    from app.model.session import SessionModel
    from app.qt_main_window import QtMainWindow

    win = QtMainWindow(SessionModel(codecs=["jpeg", "jpeg", "jpeg"]), persist=False)
    win.confirm_overwrite = lambda p: True
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    yield win
    win.controller.cancel_all()
    win.controller.pool.wait(20000)


def wait_idle(qtbot, win, timeout=60000):
    qtbot.waitUntil(win.controller.is_idle, timeout=timeout)
    qtbot.wait(20)  # let queued result signals land
    qtbot.waitUntil(win.controller.is_idle, timeout=timeout)


def _generated_image(h=144, w=208) -> np.ndarray:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 100 * np.sin(x / 9.0), y * 255 / h,
                    128 + 80 * np.cos((x + y) / 15.0)], -1)
    img[h // 3: h // 2, w // 4: w // 2] = (240, 30, 30)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def _end_to_end(qtbot, win, path: Path, learned: str, tmp_path: Path) -> None:
    s = win.session
    assert win.open_path(path)
    wait_idle(qtbot, win)
    assert s.image is not None and s.image_path == str(path)
    h, w = s.image.shape[:2]

    # --- learned codec in pane A, JPEG at two rates in pane B
    s.set_pane_codec(0, learned)
    win.pane_controls[0].set_rate(0.5)
    s.set_pane_codec(1, "jpeg")
    win.pane_controls[1].set_rate(30)
    wait_idle(qtbot, win, 120000)
    win.pane_controls[1].set_rate(80)
    wait_idle(qtbot, win, 120000)
    assert not win.error_log, win.error_log
    a, b = s.panes[0].encoding, s.panes[1].encoding
    assert a is not None and a.codec == learned and b is not None and b.codec == "jpeg"
    assert b.params.rate == 80.0
    assert a.reconstruction.shape == s.image.shape == b.reconstruction.shape

    # --- panes show the reconstructions (split: A left of the divider, B right)
    cut = int(round(s.view.split_pos * w))
    assert np.array_equal(win.compare.split_items[0].image, a.reconstruction[:, :cut])
    assert np.array_equal(win.compare.split_items[1].image, b.reconstruction[:, cut:])
    s.view.compare_mode = "side"
    assert np.array_equal(win.compare.side_items[1].image, b.reconstruction)
    assert len(win.compare.glw.ci.items) == 2
    s.view.diff_mode = "a-b"
    assert win.compare.diff_item.isVisible()
    s.view.diff_mode = "off"
    s.view.compare_mode = "split"

    # --- RD plot: two JPEG points on the jpeg curve, operating points highlighted
    jpeg_pts = sorted((e for e in s.history if e.codec == "jpeg" and e.params.rate in (30, 80)),
                      key=lambda e: e.bpp)
    assert [e.params.rate for e in jpeg_pts] == [30.0, 80.0]
    if services.metrics_available():
        bpps, vals = win.rd_plot.curves["jpeg"]
        assert {e.bpp for e in jpeg_pts} <= set(bpps)
        assert vals[bpps.index(jpeg_pts[0].bpp)] < vals[bpps.index(jpeg_pts[1].bpp)]
        assert {p[0] for p in win.rd_plot.highlight} == {0, 1}
        assert any(learned in name for name in win.rd_plot.curves)

    # --- inside the codec: latent browser, entropy heatmap, rate breakdown, overlay
    insp = a.inspection
    assert insp is not None
    m, lh, lw = insp.y_hat.shape
    assert lh * 16 >= h and lw * 16 >= w
    win.latents.pane_combo.setCurrentIndex(0)
    win.latents.refresh()
    assert win.latents.channel_array.shape == (lh, lw)
    assert win.latents.mosaic_array is not None
    s.view.channel = m - 1
    assert win.latents.channel_slider.value() == m - 1
    win.entropy.refresh()
    assert win.entropy.array.shape == (lh, lw)
    assert win.entropy.array.sum() == pytest.approx(insp.bits_y.sum(), rel=1e-4)
    win.entropy.kind_combo.setCurrentIndex(2)
    assert win.entropy.array.shape == insp.bits_z.shape[1:]
    win.entropy.overlay_check.setChecked(True)
    assert s.view.overlay == "bits_z"
    hm = win.compare.overlay_array()
    assert hm is not None and hm.shape == (h, w)
    assert win.compare.overlays[0].isVisible()
    win.rate.refresh()
    assert win.rate.rows[-1]["real_bits"] == 8 * len(a.result.data)

    # --- exports
    ext = a.result.file_extension
    out = win.export_compressed(0, tmp_path / f"a{ext}")
    assert out is not None and out.read_bytes() == a.result.data
    assert win.export_reconstruction(1, tmp_path / "b.png") is not None
    assert np.array_equal(services.load_image(tmp_path / "b.png"), b.reconstruction)
    assert win.export_heatmap(tmp_path / "heat.png") is not None
    assert win.export_plot(tmp_path / "rd.png").stat().st_size > 1000
    assert win.export_plot(tmp_path / "rd.svg").read_text().lstrip().startswith("<?xml")
    csv = win.export_metrics(tmp_path / "m.csv").read_text().splitlines()
    assert csv[0].startswith("image,codec,rate") and len(csv) == 1 + len(s.history)
    n_saved = len(s.history)
    sess = win.save_session(tmp_path / "s.json")
    assert json.loads(sess.read_text())["image_path"] == str(path)
    assert not win.error_log, win.error_log

    # --- reopen the exported compressed file: shown as decoded (no original), header shown
    assert win.open_path(out)
    qtbot.waitUntil(lambda: s.decoded is not None and s.decoded.path == str(out),
                    timeout=120000)
    wait_idle(qtbot, win, 120000)
    assert s.image is None and np.array_equal(s.decoded.reconstruction, a.reconstruction)
    assert s.file_info.get("codec") == learned
    assert learned in win.file_info.toPlainText()

    # --- session restore brings back panes and re-runs the encodings (cache hits)
    win.session.view.compare_mode = "flicker"
    assert win.load_session(sess)
    qtbot.waitUntil(lambda: s.image_path == str(path), timeout=30000)
    wait_idle(qtbot, win, 120000)
    assert s.view.compare_mode == "split"
    assert s.panes[0].settings.codec == learned
    assert len(s.history) == n_saved
    assert not win.error_log, win.error_log


@pytest.mark.slow
def test_end_to_end_generated_image(qtbot, window, learned, tmp_path):
    """Open a generated image, encode learned + JPEG×2, inspect, export, reopen (always runs)."""
    p = tmp_path / "generated.png"
    from app.model.export import png_bytes

    p.write_bytes(png_bytes(_generated_image()))
    _end_to_end(qtbot, window, p, learned, tmp_path)


@pytest.mark.slow
@pytest.mark.shared
def test_end_to_end_kodak(qtbot, window, learned, kodak_dir, tmp_path):
    """Same loop on a Kodak image (skips cleanly without ../shared)."""
    path = sorted(kodak_dir.glob("*.png"))[22]  # kodim23
    _end_to_end(qtbot, window, path, learned, tmp_path)


def test_cancel_running_encode(qtbot, window, fake_codec, tmp_path):
    """Cancel stops a running encode through the progress callback; no result, no error."""
    s = window.session
    s.set_image(_generated_image(64, 64))
    wait_idle(qtbot, window)
    fake_codec.delay = 0.05  # 20 steps → 1 s
    try:
        s.set_pane_codec(0, FAKE)
        window.controller.encode_now(0)
        qtbot.waitUntil(lambda: s.panes[0].busy and s.panes[0].progress > 0, timeout=5000)
        window.pane_controls[0].cancel_btn.click()
        wait_idle(qtbot, window)
    finally:
        fake_codec.delay = 0.0
    # the pane keeps showing its previous (JPEG) result; the cancelled one never appears
    assert s.panes[0].encoding is None or s.panes[0].encoding.codec != FAKE
    assert s.panes[0].status == "cancelled" and not s.panes[0].busy
    assert not window.error_log
    assert not any(e.codec == FAKE for e in s.history)


def test_fast_slider_drags_never_stick(qtbot, window):
    """Fifty quick slider moves: debounced, no crash, no stuck worker, newest value shown."""
    s = window.session
    s.set_image(_generated_image())
    wait_idle(qtbot, window)
    rng = np.random.default_rng(0)
    pc = window.pane_controls[1]
    for _ in range(50):
        pc.rate_slider.setValue(int(rng.integers(0, 1000)))
        qtbot.wait(int(rng.integers(0, 30)))  # some moves outlast the debounce, most do not
    wait_idle(qtbot, window)
    enc = s.panes[1].encoding
    assert enc is not None and not s.panes[1].busy
    assert enc.params.rate == s.panes[1].settings.rate
    assert window.controller.pool.active_count() == 0
    assert not window.error_log


def test_controls_model_sync_both_ways(qtbot, window):
    """Pane controls ↔ pane settings, toolbar ↔ view state (napari-style bidirectional test)."""
    s = window.session
    pc = window.pane_controls[0]
    pc.rate_slider.setValue(500)
    assert s.panes[0].settings.rate == pytest.approx(48.0)  # jpeg 1..95, integer knob
    s.panes[0].set(rate=90.0)
    assert pc.rate_spin.value() == 90.0 and pc.rate_slider.value() == round(89 / 94 * 1000)
    window.diff_combo.setCurrentIndex(2)
    assert s.view.diff_mode == "a-orig"
    s.view.diff_mode = "a-b"
    assert window.diff_combo.currentIndex() == 1
    window.act_three.trigger()
    assert s.view.n_panes == 3 and window.pane_controls[2].isVisibleTo(window)
    window.act_flicker.trigger()
    assert s.view.compare_mode == "flicker"
    window.act_space.trigger()
    assert s.view.flicker_index == 1
    window.act_side.trigger()
    assert s.view.compare_mode == "side"
    window.act_diff.trigger()
    assert s.view.diff_mode == "a-orig"
    shortcuts = {a.shortcut().toString() for a in window.actions()}
    assert {"Ctrl+O", "Ctrl+V", "F", "Space", "1", "0", "S", "D", "X", "T"} <= shortcuts


def test_zoom_and_pixel_readout(qtbot, window):
    """Keys 1/0 zoom 1:1 and fit; zoom is shared by the linked side-by-side panes."""
    s = window.session
    img = _generated_image()
    s.set_image(img)
    wait_idle(qtbot, window)
    s.view.compare_mode = "side"
    qtbot.wait(50)
    window.act_1to1.trigger()
    assert window.compare.current_scale() == pytest.approx(1.0, rel=0.02)
    r0 = window.compare.viewboxes[0].viewRect()
    r1 = window.compare.viewboxes[1].viewRect()
    assert r0.x() == pytest.approx(r1.x()) and r0.width() == pytest.approx(r1.width())
    assert s.view.view_rect is not None
    window.act_fit.trigger()
    r = window.compare.viewboxes[0].viewRect()
    assert r.width() >= img.shape[1] - 1 and r.height() >= img.shape[0] - 1
    vals = window.compare.pixel_values(5, 7)
    assert vals["orig"] == tuple(int(c) for c in img[7, 5])
    assert vals["A"] == tuple(int(c) for c in s.panes[0].encoding.reconstruction[7, 5])


def test_error_dialogs_for_bad_files(qtbot, window, tmp_path):
    """Unreadable images and corrupt .lic files produce a one-line dialog, not a crash."""
    bad_png = tmp_path / "broken.png"
    bad_png.write_bytes(b"\x89PNG garbage")
    assert window.open_path(tmp_path / "missing.png") is False  # cannot even be looked at
    assert window.open_path(bad_png)  # read in a worker: the error comes back as a dialog
    bad_lic = tmp_path / "broken.lic"
    bad_lic.write_bytes(b"LIC1" + bytes(range(40)))
    window.open_path(bad_lic)
    qtbot.waitUntil(lambda: len(window.error_log) >= 3, timeout=10000)
    assert all("\n" not in msg and msg for _, msg in window.error_log)
    assert window.session.image is None
    assert window.export_compressed(0, tmp_path / "x.jpg") is None  # nothing encoded yet
    assert len(window.error_log) == 4


def test_about_model_card_states_provenance(qtbot, window, learned):
    """The about card says in plain words whether a learned model is TRAINED or a PREVIEW."""
    from app.model.about import describe_html

    html = describe_html(learned)
    assert "TRAINED" in html or "PREVIEW" in html or "not stated" in html
    assert "Classical codec" in describe_html("jpeg")
    dlg = window.show_about_model(learned)  # returns at once: the card is read in a worker
    assert learned in dlg.windowTitle()
    qtbot.waitUntil(lambda: dlg.ready, timeout=60000)
    text = dlg.browser.toPlainText()
    assert "TRAINED" in text or "PREVIEW" in text or "not stated" in text
    dlg.close()


@pytest.mark.slow
def test_live_bd_rate_between_session_curves(qtbot, window):
    """Sweeps fill two curves; the plot's BD-rate equals lic_core's bd_rate on those points."""
    s = window.session
    s.set_image(_generated_image(96, 128))
    s.set_pane_codec(1, "webp")
    wait_idle(qtbot, window)
    window.controller.sweep(0)
    window.controller.sweep(1)
    wait_idle(qtbot, window)
    if not services.metrics_available():
        pytest.skip("lic_core.metrics missing: no quality axis")
    rd = window.rd_plot
    assert len(rd.curves["jpeg"][0]) >= 6 and len(rd.curves["webp"][0]) >= 6
    rd.ref_combo.setCurrentText("jpeg")
    rd.test_combo.setCurrentText("webp")
    v = rd.bd_value()
    (rb, rq), (tb, tq) = rd.curves["jpeg"], rd.curves["webp"]
    assert v is not None and v == pytest.approx(services.bd_rate(rb, rq, tb, tq))
    assert "BD-rate of" in rd.bd_label.text()
    assert s.view.bd_pair == ["jpeg", "webp"]
    rd.ref_set_combo.setCurrentIndex(1)
    if services.load_anchor_curves():
        assert any(k.startswith("[ref") for k in rd.curves)


@pytest.mark.slow
def test_singleton_refcount_guard(qtbot, window):
    """Plot item churn must not drain True/None refcounts (PySide6 6.12 bug guard, qt_compat)."""
    import sys

    import pyqtgraph as pg

    pw = pg.PlotWidget()
    qtbot.addWidget(pw)
    for _ in range(300):
        pw.plot([1, 2], [3, 4], symbol="o")
        pw.clear()
    qtbot.wait(300)  # one guard tick
    assert sys.getrefcount(None) > 10_000 and sys.getrefcount(True) > 10_000


def _callback_count(session) -> int:
    groups = [session.events, session.view.events] + [p.events for p in session.panes]
    return sum(len(getattr(g, n).callbacks) for g in groups for n in g.names)


def test_closed_window_lets_go_of_the_session(qtbot):
    """Views subscribe to the session through ModelSubscriptions and end them on close: the
    session (which outlives the window) never calls into a dead view."""
    from app.model.session import SessionModel
    from app.qt_main_window import QtMainWindow

    session = SessionModel(codecs=["jpeg", "jpeg", "jpeg"])
    own = _callback_count(session)  # the model's own wiring, if any
    win = QtMainWindow(session, persist=False)
    qtbot.addWidget(win)
    win.show()
    assert _callback_count(session) > own + 20  # every view is listening
    win.close()
    assert _callback_count(session) == own
    session.set_image(_generated_image(32, 48))  # nobody is called back: no crash
