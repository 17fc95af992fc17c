"""Issue 30 new items: the artifact finder (11), the comparison exported as seen (12) and
dataset curves (13).  Offscreen, with classical codecs or the fake learned one on small images."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from studio_helpers import generated_image, make_window, wait_idle

pytestmark = pytest.mark.gui

LAPTOP = (1366, 768)


def _lpips_available() -> bool:
    try:
        from lic_core.metrics.lpips_metric import weights_path

        return weights_path().is_file()
    except Exception:  # noqa: BLE001
        return False


# ------------------------------------------------------------------ 11: artifact finder

def test_ssim_map_and_tile_ranking_find_a_planted_artifact():
    from app.model.artifacts import rank_tiles, ssim_map

    img = generated_image(96, 128)
    bad = img.copy()
    bad[48:64, 80:96] = 128  # a flat patch where there was texture, on one 16-px tile
    m = ssim_map(img, bad)
    assert m.shape == (96, 128) and float(ssim_map(img, img).max()) == 0.0
    tiles = rank_tiles(m, tile=16, count=5)
    assert [t.rank for t in tiles] == [1, 2, 3, 4, 5]
    assert (tiles[0].x, tiles[0].y) == (80, 48)
    assert all(a.score >= b.score for a, b in zip(tiles, tiles[1:]))


def _finder_window(qtbot):
    win = make_window(qtbot, codecs=["jpeg", "webp", "jpeg"], size=LAPTOP)
    s = win.session
    s.panes[0].set(rate=8.0)  # a poor JPEG: blocks to find
    s.set_image(generated_image(128, 160))
    wait_idle(qtbot, win)
    return win


def test_artifact_finder_maps_ranks_jumps_and_exports(qtbot, tmp_path):
    win = _finder_window(qtbot)
    s = win.session
    finder = win.artifacts
    assert win.find_artifacts("original", "A", "ssim")
    assert finder.busy and finder.cancel_btn.isEnabled()
    wait_idle(qtbot, win)
    r = finder.result
    assert r is not None and r.map.shape == s.image.shape[:2] and r.names == ("original", "A")
    # the map has a colorbar with its range, the list is ranked, most different first
    assert finder.bar.levels() == pytest.approx((0.0, r.vmax))
    assert finder.table.rowCount() == len(r.tiles) >= 5
    assert all(a.score >= b.score for a, b in zip(r.tiles, r.tiles[1:]))
    # "next artifact" (N) moves the synced view onto the tiles, in rank order
    win.act_next_artifact.trigger()
    t0 = r.tiles[0]
    x0, y0, x1, y1 = s.view.view_rect
    assert x0 <= t0.x and t0.x + t0.w <= x1 and y0 <= t0.y and t0.y + t0.h <= y1
    assert s.view.artifact_rect == t0.rect and win.compare.artifact_boxes[0].isVisible()
    vr = win.compare.viewboxes[0].viewRect()
    assert vr.left() <= t0.x + 1 and vr.right() >= t0.x + t0.w - 1
    win.act_next_artifact.trigger()
    assert s.view.artifact_rect == r.tiles[1].rect and finder.current == 1
    # exported: CSV with the ranked list, a crop per tile
    out = finder.export(tmp_path / "found")
    rows = list(csv.DictReader(open(out)))
    assert [int(x["rank"]) for x in rows] == [t.rank for t in r.tiles]
    assert float(rows[0]["score"]) == pytest.approx(t0.score, rel=1e-4)
    from PIL import Image

    crop = Image.open(tmp_path / "found" / rows[0]["crop"])
    assert crop.width > crop.height  # the pictures side by side
    assert not win.error_log, win.error_log
    # a new picture clears the finder and the outline
    s.set_image(generated_image(64, 64, seed=5))
    assert finder.result is None and s.view.artifact_rect is None
    win.close()


def test_artifact_finder_compares_panes_and_refuses_a_picture_with_itself(qtbot):
    win = _finder_window(qtbot)
    assert not win.find_artifacts("A", "A", "ssim")
    assert "two different" in win.error_log[-1][1]
    assert win.find_artifacts("A", "B", "ssim")
    wait_idle(qtbot, win)
    assert win.artifacts.result.names == ("A", "B")
    win.close()


@pytest.mark.skipif(not _lpips_available(), reason="LPIPS weights are not installed")
def test_artifact_finder_local_lpips_map(qtbot):
    win = _finder_window(qtbot)
    assert win.find_artifacts("original", "A", "lpips")
    wait_idle(qtbot, win, 120000)
    r = win.artifacts.result
    assert r.kind == "lpips" and np.isfinite(r.map).all() and r.vmax > 0
    from lic_core.metrics import compute_metrics

    lp = compute_metrics(win.session.image, win.session.panes[0].encoding.reconstruction,
                         ("lpips",))["lpips"]
    assert float(r.map.mean()) == pytest.approx(lp, rel=0.05)  # the map's mean is LPIPS
    win.close()


# ------------------------------------------------------------------ 12: the view as seen

def test_export_the_comparison_as_seen_with_every_number(qtbot, tmp_path):
    from PIL import Image

    win = make_window(qtbot, codecs=["jpeg", "webp", "jpeg"], size=LAPTOP)
    s = win.session
    s.view.n_panes = 3
    s.view.compare_mode = "side"
    s.panes[2].set(rate=30.0)
    s.set_image(generated_image(176, 208))
    wait_idle(qtbot, win)
    out = win.export_view(tmp_path / "view.png")
    img = Image.open(out)
    glw = win.compare.glw
    assert img.size == (glw.width(), glw.height())
    caps = win.compare.export_captions
    assert len(caps) == 3
    for i, cap in enumerate(caps):
        e = s.panes[i].encoding
        assert e.codec in cap and f"{e.bpp:.3f} bpp" in cap and "dB" in cap and "MS-SSIM" in cap
    # the on-screen captions stay short
    assert "MS-SSIM" not in win.compare.labels[0].text()
    # split mode: one picture with the three regions
    s.view.compare_mode = "split"
    assert win.export_view(tmp_path / "split.png") is not None
    assert len(win.compare.export_captions) == 3
    assert not win.error_log
    win.close()


@pytest.mark.slow
def test_the_view_is_exported_headless(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    from studio_helpers import write_png

    repo = Path(__file__).resolve().parents[2]
    img = write_png(tmp_path / "photo.png", generated_image(96, 128))
    out = tmp_path / "view.png"
    env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "app", "--screenshot", str(out), "--view-only",
                        "--panes", "3", "--view", "side", "--codec", "jpeg", str(img)],
                       env=env, cwd=repo, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    w, h = Image.open(out).size
    assert 300 < w < 1366 and 150 < h < 768  # the comparison, not the whole window


# ------------------------------------------------------------------ 13: dataset curves

def _folder(tmp_path, n=3):
    from studio_helpers import write_png

    d = tmp_path / "photos"
    d.mkdir()
    for k in range(n):
        write_png(d / f"img{k}.png", generated_image(48, 64, seed=k))
    return d


def test_dataset_curve_is_the_mean_over_the_folder_and_is_cached(qtbot, tmp_path):
    from app.model import services

    folder = _folder(tmp_path)
    win = make_window(qtbot, codecs=["jpeg", "webp", "jpeg"], size=LAPTOP)
    seen = []
    win.controller.dataset_progress.connect(lambda d, t: seen.append((d, t)))
    cache = tmp_path / "cache"
    assert win.controller.sweep_dataset(folder, 0, points=3, cache_dir=cache)
    assert win.rd_plot.sweep_row.isVisible()
    wait_idle(qtbot, win)
    name = "[photos avg] jpeg"
    curve = win.session.dataset_curves[name]
    assert curve.n_images == 3 and len(curve.rates) == 3 and not curve.cached
    assert seen[0] == (0, 9) and seen[-1] == (0, 0)  # 3 images × 3 rates, counted
    # the mean of the per-image numbers at each knob value, like the published averages
    from lic_core.codecs import EncodeParams, get_codec

    jpeg = get_codec("jpeg")
    per = []
    for p in sorted(folder.glob("*.png")):
        im = services.load_image(p)
        res = jpeg.encode(im, EncodeParams(rate=curve.rates[0]))
        per.append((res.bpp, services.compute_metrics(im, res.reconstruction, ("psnr",))["psnr"]))
    assert curve.bpp[0] == pytest.approx(np.mean([b for b, _ in per]))
    assert curve.metrics["psnr"][0] == pytest.approx(np.mean([q for _, q in per]))
    # drawn beside the published Kodak averages, in the legend, usable for BD-rate
    rd = win.rd_plot
    assert name in rd.curves and name in rd.legend_names()
    assert rd.ref_combo.findData(name) >= 0
    assert rd.series_look(name)[0] == rd.series_look("jpeg")[0]  # jpeg's colour, own style
    assert rd.series_look(name)[1:] != rd.series_look("jpeg")[1:]
    # the second sweep of the same folder comes from the cache
    win.session.dataset_curves.clear()
    assert win.controller.sweep_dataset(folder, 0, points=3, cache_dir=cache)
    wait_idle(qtbot, win)
    assert win.session.dataset_curves[name].cached
    assert not win.error_log, win.error_log
    win.close()


def test_dataset_sweep_can_be_cancelled_and_refuses_an_empty_folder(qtbot, tmp_path):
    folder = _folder(tmp_path, n=4)
    empty = tmp_path / "empty"
    empty.mkdir()
    win = make_window(qtbot, codecs=["webp", "jpeg", "jpeg"], size=LAPTOP)
    assert not win.dataset_curve(empty)
    assert "no images" in win.error_log[-1][1]
    n = len(win.error_log)
    assert win.controller.sweep_dataset(folder, 0, points=6, cache_dir=tmp_path / "c")
    win.rd_plot.sweep_cancel.click()
    wait_idle(qtbot, win)
    assert not win.session.dataset_curves and len(win.error_log) == n
    assert not win.rd_plot.sweep_row.isVisible()
    win.close()


def test_a_cached_dataset_curve_is_not_reused_for_another_build_of_the_codec(tmp_path,
                                                                             monkeypatch):
    """The cache outlives the session: new weights of a learned codec (a campaign install), a
    re-added model under the same name or another library build must sweep again, not return
    the old numbers as "from the cache".  The key holds what the codec says it is."""
    from app.model import dataset
    from app.model.encoding import PaneSettings
    from lic_core.codecs import get_codec

    folder = _folder(tmp_path, n=1)
    images = dataset.list_images(folder)
    req = dataset.DatasetRequest(folder=str(folder), settings=PaneSettings(codec="jpeg"),
                                 rates=[50.0], cache_dir=str(tmp_path / "c"))
    before = dataset.cache_key(req, images)
    assert dataset.cache_key(req, images) == before  # stable for the same build
    jpeg = get_codec("jpeg")
    desc = dict(jpeg.describe(), pillow="another build")
    monkeypatch.setattr(jpeg, "describe", lambda: desc)
    assert dataset.cache_key(req, images) != before
