"""RD plot rendered with Pillow: size, each curve's colour present, axis helpers, CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from lic_core.cli import main as lic_main
from lic_core.evaluation.anchors import Curve, load_anchors
from lic_core.evaluation.plot import (
    BACKGROUND,
    PALETTE,
    curve_colors,
    nice_ticks,
    render_rd,
    save_rd_plot,
)


def _curve(name, shift, kind="ours"):
    bpp = [0.1, 0.3, 0.6, 1.0, 1.5]
    return Curve(name=name, bpp=bpp, kind=kind,
                 values={"psnr": [26 + shift + 6 * np.log2(1 + b) for b in bpp],
                         "ms-ssim": [0.9 + 0.02 * shift / 4 + 0.05 * b / 1.5 for b in bpp],
                         "lpips": [0.3 - 0.15 * b - 0.01 * shift for b in bpp]})


def _colour_pixels(img: Image.Image, colour, tol=18) -> int:
    a = np.asarray(img.convert("RGB")).astype(int)
    return int((np.abs(a - np.array(colour)).max(-1) <= tol).sum())


def test_png_size_and_each_curve_colour(tmp_path: Path):
    curves = [_curve("ours-a", 2), _curve("ours-b", 0), _curve("anchor", -2, kind="anchor")]
    out = save_rd_plot(curves, tmp_path / "rd.png", metric="psnr", size=(900, 600))
    img = Image.open(out)
    assert img.format == "PNG" and img.size == (900, 600)
    colours = curve_colors(curves)
    assert len(set(colours)) == 3
    for c in colours:
        assert _colour_pixels(img, c) > 150, c  # lines + markers + legend swatch
    unused = PALETTE[5]
    assert _colour_pixels(img, unused, tol=10) == 0
    a = np.asarray(img.convert("RGB"))
    assert (a == np.array(BACKGROUND)).all(-1).mean() > 0.5  # mostly clean background


def test_all_metrics_panels_and_lpips(tmp_path: Path):
    curves = [_curve("x", 0)]
    img = render_rd(curves, metric="all", size=(1500, 500))
    assert img.size == (1500, 500)
    col = curve_colors(curves)[0]
    thirds = [img.crop((k * 500, 0, (k + 1) * 500, 500)) for k in range(3)]
    assert all(_colour_pixels(t, col) > 80 for t in thirds)


def test_nice_ticks():
    assert nice_ticks(0, 2, 8) == [0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    t = nice_ticks(24.3, 41.7, 7)
    assert t[0] >= 24.3 and t[-1] <= 41.7 and len(t) >= 4
    assert np.allclose(np.diff(t), t[1] - t[0])


def test_cli_plot_with_results_and_anchors(tmp_path: Path):
    res = {"name": "mine", "description": "", "results": {
        "bpp": [0.2, 0.5, 1.0], "psnr-rgb": [28.0, 31.0, 34.0]}}
    f = tmp_path / "mine.json"
    f.write_text(json.dumps(res))
    out = tmp_path / "p.png"
    rc = lic_main(["plot", str(f), "--anchors", "kodak", "--anchor-names", "jpeg,webp",
                   "--metric", "psnr", "-o", str(out), "--size", "800x500"])
    assert rc == 0 and Image.open(out).size == (800, 500)
    assert len(load_anchors("kodak", "psnr", names=["jpeg", "webp"])) == 2
    assert lic_main(["plot", str(tmp_path / "missing.json"), "-o", str(out)]) == 2
    assert lic_main(["plot", "--anchors", "nodataset", "-o", str(out)]) == 2
