"""Issue 31 in the studio: ``hevc`` (HEVC intra, BPG's encoder, in HEIF) is picked in pane B
through its chooser, encodes at the slider's quality, sweeps into an RD curve, saves a .heic that
decodes to the same picture; its measured Kodak curve is offered as an RD reference; without
pillow-heif it is listed disabled with the reason."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from PySide6.QtCore import Qt

from lic_core.codecs import codec_for_file, get_codec
from studio_helpers import generated_image, make_window, wait_idle


def _row(win, pane: int, name: str) -> int:
    combo = win.pane_controls[pane].codec_combo
    for i in range(combo.count()):
        if combo.itemData(i, Qt.ItemDataRole.UserRole) == name:
            return i
    raise AssertionError(f"{name} is not in pane {pane}'s codec chooser")


def _items(combo) -> list[str]:
    return [combo.itemData(i) or combo.itemText(i) for i in range(combo.count())]


def _psnr(a, b) -> float:
    return float(10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.mark.slow
def test_hevc_picked_in_pane_b_encodes_sweeps_and_saves(qtbot, tmp_path):
    ok, why = get_codec("hevc").available()
    if not ok:
        pytest.skip(why)
    win = make_window(qtbot, codecs=("jpeg", "jpeg", "jpeg"))
    s = win.session
    img = generated_image()
    s.set_image(img, "gen.png")
    wait_idle(qtbot, win)
    controls = win.pane_controls[1]
    combo = controls.codec_combo
    i = _row(win, 1, "hevc")
    assert combo.model().item(i).isEnabled()
    combo.setCurrentIndex(i)  # what choosing it in the list does
    wait_idle(qtbot, win, 120000)
    assert s.panes[1].settings.codec == "hevc"
    enc = s.panes[1].encoding
    assert enc is not None and enc.codec == "hevc" and enc.params.rate == 30.0
    assert enc.reconstruction.shape == img.shape
    assert 0.05 < enc.bpp < 4.0 and _psnr(img, enc.reconstruction) > 28.0
    assert controls.rate_label.text() == "Quality"
    assert s.panes[0].encoding.codec == "jpeg"  # the other panes keep their codecs
    controls.set_rate(50)  # the slider: a higher quality, more bits
    wait_idle(qtbot, win, 120000)
    hi = s.panes[1].encoding
    assert hi.codec == "hevc" and hi.params.rate == 50.0 and hi.bpp > enc.bpp
    # RD sweep of pane B: an hevc curve
    win.controller.sweep(1)
    wait_idle(qtbot, win, 240000)
    bpp, _ = win.rd_plot.curves["hevc"]
    assert len(bpp) >= 6 and bpp == sorted(bpp)
    # saved as a .heic, the file decodes (by its extension) to pane B's picture
    out = win.export_compressed(1, tmp_path / "b.heic")
    assert out is not None and out.suffix == ".heic"
    data = out.read_bytes()
    codec = codec_for_file(data, out)
    assert codec.name == "hevc"
    np.testing.assert_array_equal(codec.decode(data).reconstruction, hi.reconstruction)
    assert not win.error_log, win.error_log
    win.close()


def test_measured_hevc_kodak_curve_is_an_rd_reference(qtbot):
    win = make_window(qtbot)
    rd = win.rd_plot
    rd.ref_set_combo.setCurrentIndex(1)  # all references
    ours = [n for n in rd.curves if n.startswith("[ref") and "HEVC x265" in n]
    bpg = [n for n in rd.curves if n.startswith("[ref") and "BPG" in n]
    assert len(ours) == 1 and "measured" in ours[0] and bpg
    assert ours[0] in _items(rd.ref_combo)  # the BD-rate reference menu offers it
    # BD-rate of the published BPG curve against the measured one: the same encoder
    rd.ref_combo.setCurrentIndex(_items(rd.ref_combo).index(ours[0]))
    rd.test_combo.setCurrentIndex(_items(rd.test_combo).index(bpg[0]))
    v = rd.bd_value()
    assert v is not None and abs(v) < 10.0
    win.close()


def test_without_pillow_heif_hevc_is_listed_disabled_with_the_reason(qtbot, monkeypatch):
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # None in sys.modules → ImportError
    win = make_window(qtbot)
    i = _row(win, 1, "hevc")
    combo = win.pane_controls[1].codec_combo
    assert not combo.model().item(i).isEnabled()
    assert "pillow-heif" in combo.itemData(i, Qt.ItemDataRole.ToolTipRole)
    win.close()
