"""What the studio shows (issue 14 items 4–8, 10 and ``--screenshot``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from studio_helpers import FAKE, generated_image, make_window, wait_idle, write_png

pytestmark = pytest.mark.gui

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------- item 4: .lic files

def _fake_file(qtbot, win, tmp_path, image):
    """Encode ``image`` with the fake learned codec in pane A and save its compressed file."""
    s = win.session
    s.set_image(image)
    s.set_pane_codec(0, FAKE)
    wait_idle(qtbot, win)
    enc = s.panes[0].encoding
    assert enc is not None and enc.codec == FAKE
    return win.export_compressed(0, tmp_path / "photo.fakelic"), enc


@pytest.mark.slow
def test_opened_file_is_shown_as_decoded_and_never_scored_against_itself(qtbot, fake_codec,
                                                                         tmp_path):
    win = make_window(qtbot, codecs=[FAKE, "jpeg", "jpeg"])
    s = win.session
    original = generated_image()
    path, enc = _fake_file(qtbot, win, tmp_path, original)

    assert win.open_path(path)
    qtbot.waitUntil(lambda: s.decoded is not None, timeout=30000)
    wait_idle(qtbot, win)
    # shown as decoded: no original, no encodes, no scores, a way to name the original
    assert s.image is None and np.array_equal(s.decoded.reconstruction, enc.reconstruction)
    assert all(p.encoding is None for p in s.panes) and s.history == []
    assert not any(not n.startswith("[ref") for n in win.rd_plot.curves)
    assert win.compare.banner.isVisible() and win.compare.compare_btn.isVisible()
    assert win.act_compare_against.isEnabled()
    assert "no original" in win.compare.labels[0].text()
    assert "decoded" in win.windowTitle()

    # "compare against" its own decoded picture or a picture of another size: refused
    own = write_png(tmp_path / "decoded.png", s.decoded.reconstruction)
    assert not win.compare_against(own)
    assert "own decoded picture" in win.error_log[-1][1]
    other = write_png(tmp_path / "other.png", generated_image(64, 80))
    assert not win.compare_against(other)
    assert "cannot be its original" in win.error_log[-1][1]
    n_errors = len(win.error_log)

    # the real original: pane A is the file, scored against it; pane B encodes the original
    orig_path = write_png(tmp_path / "photo.png", original)
    assert win.compare_against(orig_path)
    qtbot.waitUntil(lambda: s.panes[0].encoding is not None, timeout=30000)
    wait_idle(qtbot, win)
    a, b = s.panes[0].encoding, s.panes[1].encoding
    from lic_core.metrics import compute_metrics

    want = compute_metrics(original, enc.reconstruction, ("psnr",))["psnr"]
    assert a.key.startswith("file:")
    assert a.result.data == path.read_bytes() and a.metrics["psnr"] == pytest.approx(want)
    assert b is not None and b.codec == "jpeg" and np.array_equal(s.image, original)
    assert s.panes[0].settings.codec == FAKE  # the file's codec and rate shown in pane A
    assert not win.compare.banner.isVisible()
    assert "photo.fakelic" in win.compare.labels[0].text()
    assert len(win.error_log) == n_errors
    win.close()


# ---------------------------------------------------------------------------- item 5: RD plot

@pytest.mark.slow
def test_sweep_shows_progress_and_series_keep_their_colour(qtbot, window):
    s = window.session
    s.set_image(generated_image(96, 128))
    s.set_pane_codec(1, "webp")
    wait_idle(qtbot, window)
    rd = window.rd_plot
    seen = []
    window.controller.background_progress.connect(lambda d, t: seen.append((d, t)))
    n = window.controller.sweep(0) + window.controller.sweep(1)
    assert rd.sweep_row.isVisible() and rd.sweep_bar.maximum() == n >= 10
    wait_idle(qtbot, window)
    assert not rd.sweep_row.isVisible()
    assert seen[-1] == (0, 0) and (n - 1, n) in seen  # counted up to the last one

    def colours():
        return {k: it.opts["pen"].color().name() for k, it in rd.items.items()
                if not k.startswith("[ref")}

    before = colours()
    assert set(before) == {"jpeg", "webp"} and len(set(before.values())) == 2
    for mode in (1, 2, 0):  # all references, none, a few: measured series keep their colours
        rd.ref_set_combo.setCurrentIndex(mode)
        assert colours() == before
    rd.ref_set_combo.setCurrentIndex(1)
    if any(k.startswith("[ref") for k in rd.items):
        z_ref = max(it.zValue() for k, it in rd.items.items() if k.startswith("[ref"))
        z_ours = min(it.zValue() for k, it in rd.items.items() if not k.startswith("[ref"))
        assert z_ours > z_ref  # measured points are drawn over every reference
        measured = [n for n in rd.legend_names() if not n.startswith("[ref")]
        assert rd.legend.isVisible() and measured == ["jpeg", "webp"]


# ---------------------------------------------------------------------------- item 6: readable

def test_rate_tab_labels_status_line_and_file_info_are_readable(qtbot, fake_codec, tmp_path):
    win = make_window(qtbot, codecs=[FAKE, "jpeg", "jpeg"])
    s = win.session
    s.set_image(generated_image())
    wait_idle(qtbot, win)
    win.inspector_tabs.setCurrentWidget(win.rate)
    win.rate.refresh()
    qtbot.wait(30)
    ticks = win.rate.plot.getAxis("left")._tickLevels[0]
    labels = [t for _, t in ticks]
    assert len(labels) == len(win.rate.rows) and len(set(labels)) == len(labels)
    assert max(len(t) for t in labels) <= 8  # short names on the axis, full ones in the table
    assert win.rate.table.horizontalScrollBar().maximum() == 0  # every column visible

    for pc in win.pane_controls[:2]:  # the status line: one line, inside its pane
        st = pc.status
        assert not st.wordWrap() and "bpp" in st.full_text
        assert st.height() < 2 * st.fontMetrics().height()
        assert st.geometry().bottom() <= pc.contentsRect().bottom()

    from app.model.decoded import display_rows

    info = {"file": "/x/a.lic", "bytes": 7957, "decoder": "mse", "rate_u16": 32768,
            "rate": 0.5000076295109483, "bpp": 0.3230997721354167, "diffusion_steps": 25,
            "diffusion_seed": 0, "quantizer_params": {}}
    rows = dict(display_rows(info))
    assert rows["bits per pixel"] == "0.3231" and rows["rate (slider u)"] == "0.5000"
    assert "diffusion steps" not in rows and "rate_u16" not in rows
    rows = dict(display_rows(dict(info, decoder="diffusion")))
    assert rows["diffusion steps"] == "25"
    win.close()


# ---------------------------------------------------------------------------- item 7: target

def test_unreachable_target_bpp_says_so(qtbot, window):
    from app.model.jobs import target_note
    from lic_core.codecs import get_codec

    s = window.session
    s.set_image(generated_image(64, 64))
    wait_idle(qtbot, window)
    pc = window.pane_controls[1]
    pc.target_spin.setValue(7.9)
    pc.target_check.setChecked(True)
    wait_idle(qtbot, window)
    enc = s.panes[1].encoding
    assert enc.target_bpp == pytest.approx(7.9) and enc.bpp < 7.9 * 0.95
    assert "out of reach" in enc.note and "maximum" in enc.note
    assert pc.note.isVisible() and "out of reach" in pc.note.full_text
    assert "out of reach" in window.statusBar().currentMessage()
    jpeg = get_codec("jpeg")
    assert target_note(jpeg, 0.5, 0.49, 40) == ""  # met within 5 %
    assert "minimum" in target_note(jpeg, 0.01, 0.9, 1.0)
    assert "closest" in target_note(jpeg, 0.5, 0.3, 50.0)


# ---------------------------------------------------------------------------- item 8: provenance

def test_preview_weights_are_labelled_where_the_codec_is_chosen(qtbot, fake_codec):
    from app.model.about import describe_html
    from lic_core.weights import provenance_line

    win = make_window(qtbot, codecs=[FAKE, "jpeg", "jpeg"])
    pa, pb = win.pane_controls[:2]
    line = provenance_line(fake_codec.describe())
    assert line.startswith("PREVIEW") and "1.2 M params" in line and "WebP +80 %" in line
    assert pa.badge.isVisible() and pa.badge.text() == "PREVIEW"
    assert pa.badge.toolTip() == line and pa.provenance.isVisible()
    assert line.split(" · ", 1)[1] in pa.provenance.full_text
    i = pa.codec_combo.currentIndex()
    assert "PREVIEW" in pa.codec_combo.itemText(i) and line in pa.codec_combo.itemData(
        i, 3)  # Qt.ToolTipRole
    assert not pb.badge.isVisible() and not pb.provenance_row.isVisible()  # JPEG: no weights
    html = describe_html(FAKE)
    assert line in html and "{'" not in html
    win.close()


# ---------------------------------------------------------------------------- item 10: xcb

def test_missing_xcb_libraries_get_a_one_line_apt_hint():
    from app.platform_check import platform_problem, uses_xcb

    lacks = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}
    msg = platform_problem({"DISPLAY": ":0"}, loads=lambda lib: lib not in lacks,
                           platform="linux")
    assert "\n" not in msg and "libxcb-icccm.so.4" in msg
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in msg
    assert platform_problem({"QT_QPA_PLATFORM": "offscreen"}, loads=lambda lib: False,
                            platform="linux") is None
    assert platform_problem({}, loads=lambda lib: False, platform="darwin") is None
    assert not uses_xcb({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"},
                        "linux")
    assert "DISPLAY" in platform_problem({}, loads=lambda lib: True, platform="linux")


def _studio(*args, env_extra=None, drop=("QT_QPA_PLATFORM",), timeout=600):
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_extra or {})
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "app", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 check is Linux-only")
def test_studio_without_a_usable_display_explains_in_one_line():
    r = _studio(env_extra={"DISPLAY": ":987"})
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("lic-studio: ")
    assert "QT_QPA_PLATFORM=offscreen" in lines[0]


# ---------------------------------------------------------------------------- --screenshot

@pytest.mark.slow
def test_screenshot_of_an_image_and_of_a_lic_file(tmp_path):
    from PIL import Image

    from lic_core.codecs import get_codec

    img = write_png(tmp_path / "photo.png", generated_image(96, 128))
    out = tmp_path / "shot.png"
    r = _studio("--screenshot", str(out), "--size", "1000x640", str(img))
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (1000, 640)
    r = _studio("--screenshot", str(out), str(img))  # never overwrites unasked
    assert r.returncode == 2 and "already exists" in r.stderr
    # nothing to open: the empty window is the picture, taken at once (it used to wait for an
    # encode that never came, until the timeout)
    r = _studio("--screenshot", str(tmp_path / "empty.png"), "--timeout", "60")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "empty.png").size == (1366, 768)
    learned = [n for n in ("lic-lgem", "lic-lgem-preview") if get_codec(n).available()[0]]
    if not learned:
        pytest.skip("no learned codec with weights: no .lic file to open")
    from lic_core.cli import main as lic_main

    lic = tmp_path / "photo.lic"
    assert lic_main(["compress", str(img), str(lic), "--codec", learned[0], "--quiet"]) == 0
    r = _studio("--screenshot", str(tmp_path / "lic.png"), "--size", "1366x768", str(lic))
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "lic.png").size == (1366, 768)


# ------------------------------------------------- issue 16: quantizer gains, fine-tuned label

def test_quantizer_picker_shows_measured_gains_and_the_fine_tuned_decoder(qtbot, fake_codec,
                                                                          tmp_path, monkeypatch):
    import json

    import torch
    from PySide6.QtCore import Qt
    from safetensors.torch import save_file

    from app.model.provenance import quantizer_notes

    wdir = tmp_path / "weights"
    wdir.mkdir()
    base, other = "ab" * 8, "ef" * 8
    save_file({"x": torch.zeros(1)}, str(wdir / f"{FAKE}.safetensors"),
              metadata={"weights_hash": base, "card": json.dumps({"model": FAKE})})
    ft = wdir / f"{FAKE}-ft-tcq.safetensors"
    save_file({"g_s.x": torch.zeros(1)}, str(ft),
              metadata={"weights_hash": "cd" * 8, "base_weights_hash": base})
    (wdir / f"{FAKE}.quantizers.json").write_text(json.dumps(
        {"base_weights_hash": base, "images": [f"k{i}.png" for i in range(24)],
         "bd_vs_round_percent": {"round/before": 0.0, "tcq/before": 11.0, "tcq/after": -2.5}}))
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(wdir))

    win = make_window(qtbot, codecs=[FAKE, "jpeg"])
    pa = win.pane_controls[0]
    tip = pa.quant_combo.itemData(pa.quant_combo.findText("tcq"), Qt.ItemDataRole.ToolTipRole)
    assert "Kodak (24 images): +11.0 %" in tip and "-2.5 % vs rounding" in tip
    assert "fine-tuned for TCQ" in tip
    assert pa.quant_combo.currentText() == "round" and not pa.ft_label.isVisible()
    pa.quant_combo.setCurrentText("tcq")  # the user picks TCQ: the pane says whose decoder
    assert pa.ft_label.isVisible() and pa.ft_label.full_text == "fine-tuned for TCQ"
    win.close()

    # a decoder tuned on other weights is never announced, and measurements of other weights
    # are not shown as if they were these weights'
    save_file({"g_s.x": torch.zeros(1)}, str(ft),
              metadata={"weights_hash": "cd" * 8, "base_weights_hash": other})
    tip, tuned = quantizer_notes(FAKE)["tcq"]
    assert not tuned and "tuned on other weights" in tip
    save_file({"x": torch.zeros(1)}, str(wdir / f"{FAKE}.safetensors"),
              metadata={"weights_hash": other})
    tip, tuned = quantizer_notes(FAKE)["tcq"]
    assert tuned and "+11.0" not in tip and "not measured" not in tip


# --------------------------------------- issue 13: the decoder picker says what the weights are

def test_decoder_picker_gives_the_diffusion_decoders_provenance_and_kodak_lpips(
        qtbot, fake_codec, tmp_path, monkeypatch):
    import json

    import torch
    from PySide6.QtCore import Qt
    from safetensors.torch import save_file

    from app.model.provenance import decoder_notes

    wdir = tmp_path / "weights"
    wdir.mkdir()
    monkeypatch.setenv("LIC_WEIGHTS_DIR", str(wdir))
    monkeypatch.setattr(fake_codec, "decoders", ("mse", "diffusion"), raising=False)
    pts = [{"u": u, "bpp": 0.1 + u, "psnr": 30.0 + u, "lpips": 0.3 - 0.1 * u} for u in (0, 1)]
    card = {"total_steps": 12345, "cpu_hours": 4.25, "preview": False,
            "eval": {"images": [f"k{i}.png" for i in range(24)], "rows": {
                "MSE decoder (g_s)": pts,
                "diffusion decoder": [{**p, "psnr": p["psnr"] - 2, "lpips": p["lpips"] - 0.05}
                                      for p in pts]}}}

    def write(c: dict) -> None:
        save_file({"x": torch.zeros(1)}, str(wdir / f"{FAKE}-diffusion.safetensors"),
                  metadata={"card": json.dumps(c)})

    write(card)
    tip, preview = decoder_notes(FAKE)["diffusion"]
    assert not preview and "trained · 12345 steps · 4.2 CPU-h" in tip
    assert "Kodak (24 images, 2 slider points, same bits): LPIPS 0.200 vs 0.250 (mse)" in tip
    assert "PSNR 28.50 vs 30.50 dB" in tip

    win = make_window(qtbot, codecs=[FAKE, "jpeg"])
    pa = win.pane_controls[0]
    i = pa.decoder_combo.findText("diffusion")
    assert i >= 0 and "12345 steps" in pa.decoder_combo.itemData(i, Qt.ItemDataRole.ToolTipRole)
    pa.decoder_combo.setCurrentText("diffusion")
    assert not pa.decoder_preview.isVisible()
    win.close()

    # weights installed before they earned it are labelled where the user looks
    write({**card, "preview": True})
    win = make_window(qtbot, codecs=[FAKE, "jpeg"])
    pa = win.pane_controls[0]
    pa.decoder_combo.setCurrentText("diffusion")
    assert pa.decoder_preview.isVisible() and pa.decoder_combo.toolTip().startswith("PREVIEW")
    win.close()
    # no weights card (an injected decoder): the line of what it does, no invented numbers
    (wdir / f"{FAKE}-diffusion.safetensors").unlink()
    tip, preview = decoder_notes(FAKE)["diffusion"]
    assert not preview and "LPIPS" not in tip and "diffusion decoder samples texture" in tip
