"""The "HiFiC vs ours" window (issue 13): HiFiC and our diffusion decoder side by side at
matched bpp, with bpp / PSNR / MS-SSIM / LPIPS under each, a step scrubber over our sampler's x̂0
estimates and a seed-variance map.

All heavy work (two target-bpp searches, the exact diffusion decode, the seed decodes) runs in
a :class:`~app.qt_workers.QtWorkerPool` thread (``app.model.generative_demo``); the window shows
progress and Cancel stops it through the request's token.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lic_core.errors import CancelledError

from .model.generative_demo import (
    DEFAULT_TARGET_BPP,
    DemoCodecs,
    DemoRequest,
    DemoResult,
    VarianceRequest,
    run_demo,
    run_seed_variance,
)
from .qt_workers import QtWorkerPool

VARIANCE_SEEDS = (0, 1, 2, 3)


def array_to_pixmap(img: np.ndarray) -> QPixmap:
    """H×W×3 uint8 → QPixmap (copied: the array may go away)."""
    a = np.ascontiguousarray(img, dtype=np.uint8)
    h, w = a.shape[:2]
    qimg = QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(qimg.copy())


class _ImageView(QWidget):
    """A picture in a zoomable, pannable view (wheel / drag; the dialog links every view so
    they zoom and pan together, and its 1:1 button shows image pixels as screen pixels)."""

    def __init__(self, placeholder: str) -> None:
        super().__init__()
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(pg.mkColor(40, 40, 40))
        self.glw.setToolTip("Wheel: zoom · drag: pan (all pictures together)")
        self.vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.vb.setDefaultPadding(0.0)
        self.glw.addItem(self.vb, row=0, col=0)
        self.item = pg.ImageItem()
        self.vb.addItem(self.item)
        self.placeholder = QLabel(placeholder)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.glw, 1)
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.image: Optional[np.ndarray] = None

    def set_image(self, img: Optional[np.ndarray], levels=None) -> None:
        first = self.image is None or img is None or self.image.shape[:2] != img.shape[:2]
        self.image = img
        if img is None:
            self.item.clear()
            return
        if img.ndim == 3:
            self.item.setImage(img, autoLevels=False, levels=(0, 255))
        else:
            self.item.setImage(img.astype(np.float32), autoLevels=False,
                               levels=levels or (0.0, float(img.max()) or 1.0))
        if first:
            self.fit()

    def fit(self) -> None:
        if self.image is not None:
            h, w = self.image.shape[:2]
            self.vb.setRange(xRange=(0, w), yRange=(0, h), padding=0.0)

    def scale(self) -> float:
        """Screen pixels per image pixel."""
        r = self.vb.viewRect()
        return self.vb.size().width() / r.width() if r.width() > 0 else 1.0

    def view_rect(self) -> tuple[float, float, float, float]:
        r = self.vb.viewRect()
        return (r.left(), r.top(), r.right(), r.bottom())

    def link_to(self, other: "_ImageView") -> None:
        self.vb.setXLink(other.vb)
        self.vb.setYLink(other.vb)


class QtGenerativeDemo(QDialog):
    """HiFiC vs our diffusion decoder on ``image`` (see the module docstring)."""

    def __init__(self, image: np.ndarray, codecs: DemoCodecs, parent: Optional[QWidget] = None,
                 pool: Optional[QtWorkerPool] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("HiFiC vs ours — generative decoders at matched bpp")
        self.image = image
        self.codecs = codecs
        self.pool = pool or QtWorkerPool(max_threads=1, parent=self)
        self.result: Optional[DemoResult] = None
        self.variance: Optional[np.ndarray] = None
        self.errors: list[str] = []
        self._job: Optional[object] = None

        self.target = QDoubleSpinBox()
        self.target.setRange(0.02, 4.0)
        self.target.setDecimals(3)
        self.target.setSingleStep(0.05)
        self.target.setSuffix(" bpp")
        self.target.setValue(codecs.default_target())
        self.target.setToolTip("Both codecs search their rate knob for this file size (opens at "
                               f"HiFiC's published Mi point, {DEFAULT_TARGET_BPP} bpp, when both "
                               "model cards' Kodak tables reach it)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.seed.setToolTip("Sampler seed of our diffusion decoder (stored in the file)")
        self.steps = QSpinBox()
        self.steps.setRange(1, 200)
        self.steps.setValue(codecs.default_steps)
        self.steps.setToolTip("Sampler steps of our diffusion decoder (stored in the file; "
                              "the decoder's default is sized for a CPU)")
        self.run_btn = QPushButton("Run")
        self.run_btn.setToolTip("Search both codecs to the target bpp and decode")
        self.run_btn.clicked.connect(self.run)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        self.var_btn = QPushButton(f"Seed variance ({len(VARIANCE_SEEDS)} seeds)")
        self.var_btn.setToolTip("Decode our file with several seeds: per-pixel standard "
                                "deviation (where the decoder invents detail)")
        self.var_btn.setEnabled(False)
        self.var_btn.clicked.connect(self.compute_variance)
        self.fit_btn = QPushButton("Fit")
        self.fit_btn.setToolTip("Whole pictures in view")
        self.fit_btn.clicked.connect(self.fit)
        self.one_btn = QPushButton("1:1")
        self.one_btn.setToolTip("One image pixel per screen pixel (wheel zooms, drag pans; "
                                "all pictures together)")
        self.one_btn.clicked.connect(lambda: self.zoom_to(1.0))
        top = QHBoxLayout()
        for w in (QLabel("target"), self.target, QLabel("seed"), self.seed, QLabel("steps"),
                  self.steps, self.run_btn, self.cancel_btn, self.var_btn, self.fit_btn,
                  self.one_btn):
            top.addWidget(w)
        top.addStretch(1)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status = QLabel("Pick a target bpp and press Run.")
        self.status.setWordWrap(True)
        same, line = codecs.budget()
        # whether the comparison is fair (same training budget) is said before any number
        self.budget_label = QLabel(line if same else f"<span style='color:#d33'>{line}</span>")
        self.budget_label.setWordWrap(True)
        self.budget_label.setToolTip("From the two model cards: the CPU-hours each decoder "
                                     "was trained for (issue 13 trains both on the same budget)")

        self.hific_view = _ImageView("HiFiC")
        self.ours_view = _ImageView("ours (diffusion decoder)")
        self.var_view = _ImageView("seed variance")
        self.var_view.setVisible(False)
        for v in (self.ours_view, self.var_view):  # zoom and pan together
            v.link_to(self.hific_view)
        #: the seed-variance map's scale (std over seeds, 8-bit units)
        self.var_bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"),
                                       interactive=False, width=12, label="std (8-bit)")
        self.var_bar.setImageItem(self.var_view.item)
        self.var_view.glw.addItem(self.var_bar, row=0, col=1)
        self.hific_label = QLabel(f"HiFiC ({codecs.hific.name})")
        self.ours_label = QLabel(f"ours ({codecs.ours.name}, diffusion decoder)")
        self.mse_label = QLabel("")
        self.var_label = QLabel("")
        for lab in (self.hific_label, self.ours_label, self.mse_label, self.var_label):
            lab.setWordWrap(True)
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setEnabled(False)
        self.scrubber.setToolTip("Our sampler's x̂0 estimate at each step (right: the picture)")
        self.scrubber.valueChanged.connect(self.show_step)
        self.step_label = QLabel("")

        grid = QGridLayout()
        grid.addWidget(self.hific_view, 0, 0)
        grid.addWidget(self.ours_view, 0, 1)
        grid.addWidget(self.var_view, 0, 2)
        grid.addWidget(self.hific_label, 1, 0)
        ours_box = QVBoxLayout()
        ours_box.addWidget(self.ours_label)
        ours_box.addWidget(self.mse_label)
        srow = QHBoxLayout()
        srow.addWidget(QLabel("step"))
        srow.addWidget(self.scrubber, 1)
        srow.addWidget(self.step_label)
        ours_box.addLayout(srow)
        grid.addLayout(ours_box, 1, 1)
        grid.addWidget(self.var_label, 1, 2)
        grid.setRowStretch(0, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.progress)
        lay.addWidget(self.budget_label)
        lay.addWidget(self.status)
        lay.addLayout(grid, 1)
        self.resize(1200, 640)

    # ------------------------------------------------------------------ jobs
    @property
    def busy(self) -> bool:
        return self._job is not None

    def _set_busy(self, job: Optional[object]) -> None:
        self._job = job
        self.cancel_btn.setEnabled(job is not None)
        self.run_btn.setEnabled(job is None)
        self.var_btn.setEnabled(job is None and self.result is not None)
        if job is not None:
            self.progress.setValue(0)

    def run(self) -> None:
        """Start the matched-bpp comparison in a worker."""
        if self.busy:
            return
        req = DemoRequest(image=self.image, codecs=self.codecs,
                          target_bpp=float(self.target.value()), seed=int(self.seed.value()),
                          steps=int(self.steps.value()))
        self.status.setText(f"searching {self.target.value():.3f} bpp…")
        self._set_busy(req)
        self.pool.submit(run_demo, req, self._on_demo, self._on_fail, self._on_progress)

    def compute_variance(self) -> None:
        """Per-pixel std of our decoder over a few seeds, in a worker."""
        if self.busy or self.result is None:
            return
        req = VarianceRequest(codec=self.codecs.ours, data=self.result.ours.data,
                              seeds=VARIANCE_SEEDS)
        self.status.setText("decoding with several seeds…")
        self._set_busy(req)
        self.pool.submit(run_seed_variance, req, self._on_variance, self._on_fail,
                         self._on_progress)

    def cancel(self) -> None:
        if self._job is not None:
            self.pool.cancel(self._job)
            self.status.setText("cancelling…")

    def _on_progress(self, job, fraction: float, message: str) -> None:
        if job is self._job:
            self.progress.setValue(int(1000 * min(max(fraction, 0.0), 1.0)))
            self.status.setText(message)

    def _on_fail(self, job, exc: BaseException) -> None:
        if job is not self._job:
            return
        self._set_busy(None)
        if isinstance(exc, CancelledError):
            self.status.setText("cancelled")
            return
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.errors.append(msg)
        self.status.setText(f"<span style='color:#d33'>failed: {msg}</span>")

    def _on_demo(self, job, res: DemoResult) -> None:
        if job is not self._job:
            return
        self.result = res
        self.variance = None
        self.var_view.setVisible(False)
        self.var_label.setText("")
        self._set_busy(None)
        self.progress.setValue(1000)
        self.hific_view.set_image(res.hific.reconstruction)
        self.hific_label.setText(f"<b>{res.hific.label}</b><br>{res.hific.summary()}")
        self.ours_label.setText(f"<b>{res.ours.label}</b><br>{res.ours.summary()}")
        self.mse_label.setText(f"MSE decoder of the same bits: {res.mse.summary()}")
        self.scrubber.blockSignals(True)
        self.scrubber.setRange(0, len(res.frames) - 1)
        self.scrubber.setValue(len(res.frames) - 1)
        self.scrubber.blockSignals(False)
        self.scrubber.setEnabled(True)
        self.show_step(len(res.frames) - 1)
        self.status.setText(f"target {res.target_bpp:.3f} bpp: HiFiC {res.hific.bpp:.3f}, ours "
                            f"{res.ours.bpp:.3f} bpp ({100 * res.bpp_gap():.1f} % apart); "
                            f"{res.steps} steps, seed {res.seed}; {res.elapsed:.1f} s")

    def _on_variance(self, job, std: np.ndarray) -> None:
        if job is not self._job:
            return
        self._set_busy(None)
        self.progress.setValue(1000)
        self.variance = std
        hi = float(std.max()) if std.size and float(std.max()) > 0 else 1.0
        self.var_view.setVisible(True)
        self.var_view.set_image(std, levels=(0.0, hi))
        self.var_bar.setLevels((0.0, hi))
        self.var_label.setText(f"<b>seed variance</b> (std over seeds {list(VARIANCE_SEEDS)}, "
                               f"8-bit units): mean {float(std.mean()):.2f}, "
                               f"max {float(std.max()):.1f}")
        self.status.setText("seed variance done")

    # ------------------------------------------------------------------ zoom
    def fit(self) -> None:
        self.hific_view.fit()

    def zoom_to(self, scale: float) -> None:
        """``scale`` screen pixels per image pixel in every view (1.0: the 1:1 button)."""
        v = self.hific_view
        if v.image is None:
            return
        x0, y0, x1, y1 = v.view_rect()
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        size = v.vb.size()
        w, h = max(1.0, size.width()) / scale, max(1.0, size.height()) / scale
        v.vb.setRange(xRange=(cx - w / 2, cx + w / 2), yRange=(cy - h / 2, cy + h / 2),
                      padding=0)

    # ------------------------------------------------------------------ scrubber
    def show_step(self, index: int) -> None:
        """Show x̂0 of sampler step ``index`` (the last position: the decoded picture)."""
        if self.result is None:
            return
        frames = self.result.frames
        index = int(min(max(index, 0), len(frames) - 1))
        self.ours_view.set_image(frames[index])
        last = index == len(frames) - 1
        self.step_label.setText("picture" if last else f"x̂0 at step {index + 1}/{self.result.steps}")

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if self._job is not None:
            self.pool.cancel(self._job)
        self.pool.wait(30000)
        super().closeEvent(event)
