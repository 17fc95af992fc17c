"""Render LIC Studio screenshots offscreen into docs/screenshots/*.png.

Usage: ``QT_QPA_PLATFORM=offscreen PYTHONPATH=. python tools/screenshots.py [IMAGE]``

Views: the split compare view (whole window), the latent channel browser, the entropy heatmap
(overlaid on the image) and the live RD plot.  The latent/heatmap shots need a learned codec that is
available here (weights present); without one they are skipped with a note.  Each PNG is at most
1280 px wide, palette-quantised and optimised to stay under 300 KB.
"""
from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "screenshots"
MAX_BYTES = 300_000
MAX_WIDTH = 1280


def _save(qimage, name: str) -> Path:
    """QImage → optimised PNG under the size limit (shrinks colours, then size, if needed)."""
    from PIL import Image
    from PySide6.QtCore import QBuffer, QIODevice

    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    qimage.save(buf, "PNG")
    im = Image.open(io.BytesIO(bytes(buf.data()))).convert("RGB")
    if im.width > MAX_WIDTH:
        im = im.resize((MAX_WIDTH, round(im.height * MAX_WIDTH / im.width)), Image.LANCZOS)
    for colors, scale in ((256, 1.0), (128, 1.0), (128, 0.85), (64, 0.75), (64, 0.6)):
        cur = im if scale == 1.0 else im.resize((round(im.width * scale),
                                                 round(im.height * scale)), Image.LANCZOS)
        q = cur.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        out = io.BytesIO()
        q.save(out, "PNG", optimize=True)
        if out.tell() <= MAX_BYTES:
            break
    path = OUT / f"{name}.png"
    from app.model.export import atomic_write_bytes

    atomic_write_bytes(path, out.getvalue(), overwrite=True)
    print(f"{path.relative_to(ROOT)}: {cur.width}×{cur.height}, {out.tell() / 1000:.0f} kB")
    return path


def main(argv: list[str] | None = None) -> int:
    import torch

    torch.set_num_threads(1)
    from PySide6.QtWidgets import QApplication

    from app.model import services
    from app.model.session import SessionModel
    from app.qt_main_window import QtMainWindow

    argv = sys.argv[1:] if argv is None else argv
    app = QApplication.instance() or QApplication([])
    image = Path(argv[0]) if argv else services.sample_image_path()
    learned = [n for n in services.codec_names()
               if services.get_codec(n).family == "learned" and services.codec_availability(n)[0]]
    codec_a = learned[0] if learned else "webp"
    win = QtMainWindow(SessionModel(codecs=[codec_a, "jpeg", "avif"]), persist=False)
    win.resize(MAX_WIDTH, 800)
    win.show()

    def settle(timeout: float = 600.0) -> None:
        t0 = time.time()
        while time.time() - t0 < timeout:
            app.processEvents()
            if win.controller.is_idle() and time.time() - t0 > 0.3:
                break
            time.sleep(0.02)
        for _ in range(20):
            app.processEvents()

    win.open_path(image)
    settle()
    win.pane_controls[1].set_rate(25)
    settle()
    win.controller.sweep(0, points=5)
    win.controller.sweep(1, points=5)
    settle()
    OUT.mkdir(parents=True, exist_ok=True)
    _save(win.grab().toImage(), "compare_split")
    win.rd_plot.ref_combo.setCurrentText("jpeg")
    win.rd_plot.test_combo.setCurrentText(win.rd_plot.test_combo.itemText(0))
    win.rd_plot.resize(900, 560)
    _save(win.rd_plot.grab().toImage(), "rd_plot")
    if not learned:
        print("no available learned codec: latent browser and heatmap screenshots skipped")
        return 0
    win.inspector_tabs.setCurrentWidget(win.latents)
    win.latents.resize(1000, 600)
    win.latents.refresh()
    _save(win.latents.grab().toImage(), "latent_browser")
    win.inspector_tabs.setCurrentWidget(win.entropy)
    win.entropy.overlay_check.setChecked(True)
    win.session.view.overlay_opacity = 0.55
    settle(5)
    _save(win.grab().toImage(), "entropy_heatmap")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
