"""The "HiFiC vs ours" window, two tabs:

* **HiFiC vs ours** (issue 13): HiFiC and our diffusion decoder side by side at matched bpp,
  with bpp / PSNR / MS-SSIM / LPIPS under each, a step scrubber over our sampler's x̂0 estimates
  and a seed-variance map;
* **Same file** (issue 26, item 2): one file of our codec decoded with the MSE, GAN and
  diffusion decoders — three linked, zoomable pictures with bpp / PSNR / MS-SSIM / LPIPS each,
  and the difference of any two (or one vs the original) with a colorbar; a decoder this install
  lacks is named with why and the campaign stage that makes it (``app.model.same_file``).

All heavy work (target-bpp searches, encodes, the exact decodes, metrics, the seed decodes) runs
in a :class:`~app.qt_workers.QtWorkerPool` thread; the window shows progress and Cancel stops it
through the request's token.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .model.errors import CancelledError
from .model.generative_demo import (
    DEFAULT_TARGET_BPP,
    SAMPLER_TILE,
    DemoCodecs,
    DemoRequest,
    DemoResult,
    VarianceRequest,
    run_demo,
    run_seed_variance,
)
from .model.same_file import (
    DECODER_LABELS,
    DECODERS,
    DIFF_PERCENTILE,
    SameFileRequest,
    SameFileResult,
    decoder_status,
    difference_choices,
    difference_map,
    difference_stats,
    run_same_file,
)
from .qt_picture_view import QtPictureView
from .qt_workers import QtWorkerPool

VARIANCE_SEEDS = (0, 1, 2, 3)
def _pair(data) -> Optional[tuple[str, str]]:
    """A difference selector item's (a, b) (Qt may hand a Python tuple back as a list)."""
    return (str(data[0]), str(data[1])) if data else None


class QtGenerativeDemo(QDialog):
    """HiFiC vs our diffusion decoder on ``image``, and one file of ours decoded three ways (see
    the module docstring)."""

    def __init__(self, image: np.ndarray, codecs: DemoCodecs, parent: Optional[QWidget] = None,
                 pool: Optional[QtWorkerPool] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("HiFiC vs ours — generative decoders (matched bpp · same file)")
        self.image = image
        self.codecs = codecs
        self.pool = pool or QtWorkerPool(max_threads=1, parent=self)
        self.result: Optional[DemoResult] = None
        self.variance: Optional[np.ndarray] = None
        #: the "Same file" tab's result, and the difference map it shows
        self.same_result: Optional[SameFileResult] = None
        self.diff: Optional[np.ndarray] = None
        self.errors: list[str] = []
        self._job: Optional[object] = None

        # ---- controls both tabs use
        self.target = QDoubleSpinBox()
        self.target.setRange(0.02, 4.0)
        self.target.setDecimals(3)
        self.target.setSingleStep(0.05)
        self.target.setSuffix(" bpp")
        self.target.setValue(codecs.default_target())
        self.target.setToolTip("HiFiC vs ours: both codecs search their rate knob for this file "
                               "size (opens at HiFiC's published Mi point, "
                               f"{DEFAULT_TARGET_BPP} bpp, when both model cards' Kodak tables "
                               "reach it). Same file: our file's size when 'target bpp' is "
                               "chosen there")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.seed.setToolTip("Sampler seed of our diffusion decoder (stored in the file)")
        self.steps = QSpinBox()
        self.steps.setRange(1, 200)
        self.steps.setValue(codecs.default_steps)
        self.steps.setToolTip("Sampler steps of our diffusion decoder (stored in the file; "
                              "the decoder's default is sized for a CPU)")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        self.fit_btn = QPushButton("Fit")
        self.fit_btn.setToolTip("Whole pictures in view")
        self.fit_btn.clicked.connect(self.fit)
        self.one_btn = QPushButton("1:1")
        self.one_btn.setToolTip("One image pixel per screen pixel (wheel zooms, drag pans; "
                                "all pictures of the tab together)")
        self.one_btn.clicked.connect(lambda: self.zoom_to(1.0))
        top = QHBoxLayout()
        for w in (QLabel("target"), self.target, QLabel("seed"), self.seed, QLabel("steps"),
                  self.steps, self.cancel_btn, self.fit_btn, self.one_btn):
            top.addWidget(w)
        top.addStretch(1)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status = QLabel("Pick a target bpp and press Run.")
        self.status.setWordWrap(True)

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_matched_tab(codecs), "HiFiC vs ours (matched bpp)")
        self.tabs.addTab(self._build_same_file_tab(codecs), "Same file: MSE / GAN / diffusion")
        self.tabs.setTabToolTip(0, "HiFiC and our diffusion decoder at the same bpp")
        self.tabs.setTabToolTip(1, "One file of ours decoded by each of its decoders")

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.tabs, 1)
        self.resize(1280, 680)  # fits a 1366×768 screen with its title bar and task bar

    def _build_matched_tab(self, codecs: DemoCodecs) -> QWidget:
        """HiFiC vs ours at matched bpp (issue 13)."""
        self.run_btn = QPushButton("Run")
        self.run_btn.setToolTip("Search both codecs to the target bpp and decode")
        self.run_btn.clicked.connect(self.run)
        self.var_btn = QPushButton(f"Seed variance ({len(VARIANCE_SEEDS)} seeds)")
        self.var_btn.setToolTip("Decode our file with several seeds: per-pixel standard "
                                "deviation (where the decoder invents detail)")
        self.var_btn.setEnabled(False)
        self.var_btn.clicked.connect(self.compute_variance)
        same, line = codecs.budget()
        # whether the comparison is fair (same training budget) is said before any number
        self.budget_label = QLabel(line if same else f"<span style='color:#d33'>{line}</span>")
        self.budget_label.setWordWrap(True)
        self.budget_label.setToolTip("From the two model cards: the CPU-hours each decoder "
                                     "was trained for (issue 13 trains both on the same budget)")
        row = QHBoxLayout()
        row.addWidget(self.run_btn)
        row.addWidget(self.var_btn)
        row.addWidget(self.budget_label, 1)

        self.hific_view = QtPictureView("HiFiC")
        self.ours_view = QtPictureView("ours (diffusion decoder)")
        self.var_view = QtPictureView("seed variance")
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
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(row)
        lay.addLayout(grid, 1)
        return page

    def _build_same_file_tab(self, codecs: DemoCodecs) -> QWidget:
        """One file of ours, three decoders (issue 26, item 2)."""
        ours = codecs.ours.name
        self.same_at_target = QRadioButton("at the target bpp")
        self.same_at_target.setToolTip("Search our slider (with the MSE decoder: the bits do not "
                                       "depend on the decoder) until the file meets the target "
                                       "bpp above")
        self.same_at_rate = QRadioButton("at slider u")
        self.same_at_rate.setToolTip("Encode once at this value of our rate slider")
        self.same_at_target.setChecked(True)
        self._same_mode = QButtonGroup(self)
        self._same_mode.addButton(self.same_at_target)
        self._same_mode.addButton(self.same_at_rate)
        self.same_rate = QDoubleSpinBox()
        self.same_rate.setRange(0.0, 1.0)
        self.same_rate.setDecimals(3)
        self.same_rate.setSingleStep(0.05)
        self.same_rate.setValue(0.5)
        self.same_rate.setEnabled(False)
        self.same_rate.setToolTip("Our codec's rate slider u (0: fewest bits, 1: most)")
        self.same_at_rate.toggled.connect(self.same_rate.setEnabled)
        self.same_btn = QPushButton("Run same file")
        self.same_btn.setToolTip(f"Encode the image once with {ours}, then decode the same bytes "
                                 "with the MSE, GAN and diffusion decoders (seed and steps above)")
        self.same_btn.clicked.connect(self.run_same_file)
        self.diff_combo = QComboBox()
        self.diff_combo.setToolTip("Per-pixel |difference| of two pictures of the file (or one "
                                   "and the original), mean over RGB, 8-bit units")
        self.diff_combo.setMinimumContentsLength(24)
        self.diff_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.diff_combo.currentIndexChanged.connect(self.show_difference)
        row = QHBoxLayout()
        for w in (QLabel("encode once"), self.same_at_target, self.same_at_rate, self.same_rate,
                  self.same_btn, QLabel("difference"), self.diff_combo):
            row.addWidget(w)
        row.addStretch(1)
        self.file_label = QLabel(f"One {ours} file, decoded by each of its decoders: press Run "
                                 "same file.")
        self.file_label.setWordWrap(True)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        #: decoder → its picture of the file, and its caption
        self.same_views: dict[str, QtPictureView] = {}
        self.same_labels: dict[str, QLabel] = {}
        self.diff_view = QtPictureView("difference")
        self.diff_bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("inferno"),
                                        interactive=False, width=12, label="|Δ| (8-bit)")
        self.diff_bar.setImageItem(self.diff_view.item)
        self.diff_view.glw.addItem(self.diff_bar, row=0, col=1)
        self.diff_label = QLabel("")
        grid = QGridLayout()
        for col, dec in enumerate(DECODERS):
            view = QtPictureView(DECODER_LABELS[dec])
            lab = QLabel(f"<b>{DECODER_LABELS[dec]}</b>")
            self.same_views[dec], self.same_labels[dec] = view, lab
            grid.addWidget(view, 0, col)
            grid.addWidget(lab, 1, col)
            grid.setColumnStretch(col, 1)
        grid.addWidget(self.diff_view, 0, len(DECODERS))
        grid.addWidget(self.diff_label, 1, len(DECODERS))
        grid.setColumnStretch(len(DECODERS), 1)
        grid.setRowStretch(0, 1)
        master = self.same_views["mse"]
        for v in [*self.same_views.values(), self.diff_view]:
            if v is not master:
                v.link_to(master)  # zoom and pan together
        for lab in [*self.same_labels.values(), self.diff_label]:
            lab.setWordWrap(True)
            lab.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._fill_differences()
        self.show_decoder_status()
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(row)
        lay.addWidget(self.file_label)
        lay.addLayout(grid, 1)
        return page

    # ------------------------------------------------------------------ jobs
    @property
    def busy(self) -> bool:
        return self._job is not None

    def _set_busy(self, job: Optional[object]) -> None:
        self._job = job
        self.cancel_btn.setEnabled(job is not None)
        self.run_btn.setEnabled(job is None)
        self.same_btn.setEnabled(job is None)
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

    def run_same_file(self) -> None:
        """Encode the image once with our codec and decode the same bytes with each of its
        decoders, in a worker ("Same file" tab)."""
        if self.busy:
            return
        self.show_decoder_status()  # a decoder installed (or retired) since: picked up here
        at_target = self.same_at_target.isChecked()
        req = SameFileRequest(image=self.image, codec=self.codecs.ours,
                              rate=None if at_target else float(self.same_rate.value()),
                              target_bpp=float(self.target.value()) if at_target else None,
                              seed=int(self.seed.value()), steps=int(self.steps.value()))
        self.status.setText(f"encoding once with {self.codecs.ours.name}…")
        self._set_busy(req)
        self.pool.submit(run_same_file, req, self._on_same, self._on_fail, self._on_progress)

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
        tiled = len(res.frames) == 1 and res.steps > 1  # the tiled sampler has no whole x̂0
        self.scrubber.setEnabled(not tiled)
        self.scrubber.setToolTip(
            f"No step previews: a picture larger than one tile ({SAMPLER_TILE}×{SAMPLER_TILE}) is sampled in "
            "tiles, each with all its steps (docs/diffusion.md)" if tiled else
            "Our sampler's x̂0 estimate at each step (right: the picture)")
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

    # ------------------------------------------------------------------ same file
    def show_decoder_status(self) -> dict[str, str]:
        """Say in the "Same file" tab which of our decoders this install lacks, and why (the
        missing or unusable weights file, the campaign stage that makes it); returns
        :func:`~app.model.same_file.decoder_status`."""
        status = decoder_status(self.codecs.ours)
        shown = self.same_result.pictures if self.same_result is not None else {}
        for dec, why in status.items():
            view, lab = self.same_views[dec], self.same_labels[dec]
            if why and dec not in shown:
                view.set_message(f"{DECODER_LABELS[dec]} not available here:\n{why}")
                lab.setText(f"<b>{DECODER_LABELS[dec]}</b>: "
                            "<span style='color:#d33'>not available</span> (why: in its picture)")
                lab.setToolTip(why)
            elif dec not in shown:
                view.set_message("")
                lab.setText(f"<b>{DECODER_LABELS[dec]}</b>")
                lab.setToolTip("")
        return status

    def _on_same(self, job, res: SameFileResult) -> None:
        if job is not self._job:
            return
        self.same_result = res
        self._set_busy(None)
        self.progress.setValue(1000)
        for dec in DECODERS:
            side = res.pictures.get(dec)
            view, lab = self.same_views[dec], self.same_labels[dec]
            if side is None:
                why = res.missing.get(dec, "not decoded")
                view.set_message(f"{DECODER_LABELS[dec]} not available here:\n{why}")
                lab.setText(f"<b>{DECODER_LABELS[dec]}</b>: "
                            "<span style='color:#d33'>not available</span> (why: in its picture)")
                lab.setToolTip(why)
                continue
            view.set_message("")
            view.set_image(side.reconstruction)
            lab.setText(f"<b>{side.label}</b><br>{side.summary()}")
            lab.setToolTip(f"{side.label} of the same {len(res.data)}-byte file")
        how = (f"searched to {res.target_bpp:.3f} bpp" if res.target_bpp is not None
               else "at the chosen slider value")
        names = ", ".join(DECODER_LABELS[d] for d in res.pictures)
        self.file_label.setText(
            f"<b>One file</b>: {self.codecs.ours.name}, {len(res.data):,} bytes = "
            f"<b>{res.bpp:.3f} bpp</b> ({how}: slider u {res.rate:.3f}, quantizer "
            f"{res.quantizer}; diffusion: {res.steps} steps, seed {res.seed}) — decoded by the "
            f"{names}" + (f"; <span style='color:#d33'>not available: "
                          f"{', '.join(DECODER_LABELS[d] for d in res.missing)}</span>"
                          if res.missing else ""))
        self._fill_differences()
        self.status.setText(f"same file: {len(res.data):,} bytes, {res.bpp:.3f} bpp, decoded "
                            f"{len(res.pictures)} ways; {res.elapsed:.1f} s")

    def _fill_differences(self) -> None:
        """The difference selector's pairs for the current result (keeps the chosen pair)."""
        prev = _pair(self.diff_combo.currentData())
        choices = difference_choices(self.same_result)
        self.diff_combo.blockSignals(True)
        self.diff_combo.clear()
        for a, b, label in choices:
            self.diff_combo.addItem(label, (a, b))
        self.diff_combo.blockSignals(False)
        self.diff_combo.setEnabled(bool(choices))
        if not choices:
            self.diff_combo.addItem("(run first)", None)
            self.diff_view.set_message("The difference of any two pictures of the file (or one "
                                       "and the original) shows here.")
            self.diff_label.setText("")
            return
        keys = [(a, b) for a, b, _ in choices]
        want = prev if prev in keys else ("gan", "mse") if ("gan", "mse") in keys else keys[0]
        idx = keys.index(want)
        if self.diff_combo.currentIndex() == idx:
            self.show_difference(idx)
        else:
            self.diff_combo.setCurrentIndex(idx)  # → show_difference

    def select_difference(self, a: str, b: str) -> bool:
        """Show |a − b| (decoders, or ``b = "original"``); False when that pair is not there."""
        for i in range(self.diff_combo.count()):
            if _pair(self.diff_combo.itemData(i)) == (a, b):
                self.diff_combo.setCurrentIndex(i)
                self.show_difference(i)
                return True
        return False

    def show_difference(self, index: int) -> None:
        """Show the difference map of the selector's pair ``index`` with its colorbar."""
        res = self.same_result
        pair = _pair(self.diff_combo.itemData(index)) if index >= 0 else None
        if res is None or not pair:
            return
        a, b = pair
        pa, pb = res.picture(a, self.image), res.picture(b, self.image)
        if pa is None or pb is None:
            return
        d = difference_map(pa, pb)
        st = difference_stats(d)
        self.diff = d
        self.diff_view.set_message("")
        self.diff_view.set_image(d, levels=(0.0, st["hi"]))
        self.diff_bar.setLevels((0.0, st["hi"]))
        self.diff_label.setText(
            f"<b>|{DECODER_LABELS[a]} − {DECODER_LABELS[b]}|</b> (mean over RGB, 8-bit): mean "
            f"{st['mean']:.2f}, max {st['max']:.0f}; colours end at the "
            f"{DIFF_PERCENTILE:g}th percentile ({st['hi']:.1f})")

    # ------------------------------------------------------------------ zoom
    def _master_view(self) -> "QtPictureView":
        """The view the current tab's pictures are linked to."""
        return self.same_views["mse"] if self.tabs.currentIndex() == 1 else self.hific_view

    def fit(self) -> None:
        self._master_view().fit()

    def zoom_to(self, scale: float) -> None:
        """``scale`` screen pixels per image pixel in every view of the current tab (1.0: the
        1:1 button)."""
        v = self._master_view()
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
