"""Per-pane controls: codec, rate (or target bpp), quantizer, decoder, steps, seed, progress.

Widgets write user intent into ``pane.settings`` (``Pane.set``) and mirror the model back with
signals blocked (napari ``qt_signals_blocked``), so model → view never feeds back.
"""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QWidget,
)

from lic_core.codecs import get_codec

from .model import services
from .model.session import Pane, SessionModel
from .qt_signals import ModelSubscriptions, signals_blocked

SLIDER_STEPS = 1000


class QtPaneControls(QGroupBox):
    """Controls of one compare pane.

    Signals
    -------
    cancel_requested(int) : pane index whose running encode should stop.
    about_requested(str) : codec name for the "About this model" card.
    """

    cancel_requested = Signal(int)
    about_requested = Signal(str)

    def __init__(self, session: SessionModel, pane: Pane,
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(f"Pane {pane.name}", parent)
        self.session = session
        self.pane = pane
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.codec_combo = QComboBox()
        self.codec_combo.setToolTip("Codec for this pane (unavailable codecs are greyed out; "
                                    "hover them for the reason)")
        self._fill_codecs()
        self.about_btn = QPushButton("About")
        self.about_btn.setToolTip("About this model: provenance and model card")
        row = QHBoxLayout()
        row.addWidget(self.codec_combo, 1)
        row.addWidget(self.about_btn)
        form.addRow("Codec", row)

        self.rate_slider = QSlider(Qt.Orientation.Horizontal)
        self.rate_slider.setRange(0, SLIDER_STEPS)
        self.rate_spin = QDoubleSpinBox()
        self.rate_spin.setDecimals(3)
        self.rate_spin.setKeyboardTracking(False)
        rrow = QHBoxLayout()
        rrow.addWidget(self.rate_slider, 1)
        rrow.addWidget(self.rate_spin)
        self.rate_label = QLabel("Rate")
        form.addRow(self.rate_label, rrow)

        self.target_check = QCheckBox("Target bpp")
        self.target_check.setToolTip("Search the rate that gives this many bits per pixel "
                                     "(bisection on the real file size)")
        self.target_spin = QDoubleSpinBox()
        self.target_spin.setRange(0.01, 8.0)
        self.target_spin.setSingleStep(0.05)
        self.target_spin.setValue(0.5)
        self.target_spin.setKeyboardTracking(False)
        self.target_spin.setToolTip("Target bits per pixel")
        trow = QHBoxLayout()
        trow.addWidget(self.target_check)
        trow.addWidget(self.target_spin, 1)
        form.addRow("", trow)

        self.quant_combo = QComboBox()
        self.quant_combo.setToolTip("Quantizer for the latents: round, dead-zone, RDOQ or "
                                    "trellis-coded (TCQ)")
        form.addRow("Quantizer", self.quant_combo)
        self.decoder_combo = QComboBox()
        self.decoder_combo.setToolTip("Decoder: mse (g_s, sharpest PSNR) or generative "
                                      "(diffusion / GAN)")
        form.addRow("Decoder", self.decoder_combo)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 1000)
        self.steps_spin.setToolTip("Diffusion sampling steps")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Sampling seed (same seed → same reconstruction)")
        drow = QHBoxLayout()
        drow.addWidget(QLabel("steps"))
        drow.addWidget(self.steps_spin)
        drow.addWidget(QLabel("seed"))
        drow.addWidget(self.seed_spin)
        self.diffusion_row = QWidget()
        self.diffusion_row.setLayout(drow)
        drow.setContentsMargins(0, 0, 0, 0)
        form.addRow("", self.diffusion_row)

        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.progress.setToolTip("Encode progress")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop this pane's running encode")
        self.cancel_btn.setEnabled(False)
        prow = QHBoxLayout()
        prow.addWidget(self.progress, 1)
        prow.addWidget(self.cancel_btn)
        form.addRow("", prow)
        self.status = QLabel("")
        self.status.setToolTip("Result of the last encoding of this pane")
        self.status.setWordWrap(True)
        form.addRow(self.status)

        # view → model
        self.codec_combo.currentIndexChanged.connect(self._on_codec_edit)
        self.rate_slider.valueChanged.connect(self._on_slider_edit)
        self.rate_spin.valueChanged.connect(self._on_spin_edit)
        self.target_check.toggled.connect(self._on_target_edit)
        self.target_spin.valueChanged.connect(self._on_target_edit)
        self.quant_combo.currentTextChanged.connect(
            lambda t: t and self.pane.set(quantizer=t))
        self.decoder_combo.currentTextChanged.connect(
            lambda t: t and self.pane.set(decoder=t))
        self.steps_spin.valueChanged.connect(lambda v: self.pane.set(diffusion_steps=v))
        self.seed_spin.valueChanged.connect(lambda v: self.pane.set(seed=v))
        self.cancel_btn.clicked.connect(lambda: self.cancel_requested.emit(self.pane.index))
        self.about_btn.clicked.connect(
            lambda: self.about_requested.emit(self.pane.settings.codec))
        # model → view
        self._subs = ModelSubscriptions(self)
        self._subs.connect(pane.events.settings, self._on_settings_change)
        self._subs.connect(pane.events.busy, self._on_busy_change)
        self._subs.connect(pane.events.progress, self._on_progress_change)
        for name in ("status", "encoding", "error"):
            self._subs.connect(getattr(pane.events, name), self._on_status_change)
        self._on_settings_change()

    # ------------------------------------------------------------------ helpers
    def _fill_codecs(self) -> None:
        model = QStandardItemModel(self.codec_combo)
        for name in services.codec_names():
            ok, why = services.codec_availability(name)
            try:
                c = get_codec(name)
                label = f"{name}  ({c.family})"
            except Exception:
                label = name
            it = QStandardItem(label)
            it.setData(name, Qt.ItemDataRole.UserRole)
            it.setToolTip(why if not ok else f"{label}: rate knob '{getattr(c, 'rate_label', '')}'")
            if not ok:
                it.setFlags(it.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            model.appendRow(it)
        self.codec_combo.setModel(model)

    def codec(self):
        return get_codec(self.pane.settings.codec)

    def _rate_to_slider(self, rate: float) -> int:
        lo, hi = self.codec().rate_range
        return int(round((rate - lo) / (hi - lo) * SLIDER_STEPS)) if hi > lo else 0

    def _slider_to_rate(self, v: int) -> float:
        c = self.codec()
        lo, hi = c.rate_range
        r = lo + (hi - lo) * v / SLIDER_STEPS
        if getattr(c, "integer_rate", False):
            r = float(round(r))
        return round(r, 4)

    # ------------------------------------------------------------------ view → model
    def _on_codec_edit(self, idx: int) -> None:
        name = self.codec_combo.itemData(idx, Qt.ItemDataRole.UserRole)
        if name:
            self.session.set_pane_codec(self.pane.index, name)

    def _on_slider_edit(self, v: int) -> None:
        self.pane.set(rate=self._slider_to_rate(v))

    def _on_spin_edit(self, v: float) -> None:
        self.pane.set(rate=float(v))

    def _on_target_edit(self, *_) -> None:
        self.pane.set(target_bpp=float(self.target_spin.value())
                      if self.target_check.isChecked() else None)

    def set_rate(self, rate: float) -> None:
        """Programmatic slider move (tests, keyboard): goes through the slider like a user."""
        self.rate_slider.setValue(self._rate_to_slider(rate))

    # ------------------------------------------------------------------ model → view
    def _on_settings_change(self, event=None) -> None:
        s = self.pane.settings
        try:
            c = get_codec(s.codec)
        except Exception:
            return
        widgets = (self.codec_combo, self.rate_slider, self.rate_spin, self.quant_combo,
                   self.decoder_combo, self.steps_spin, self.seed_spin, self.target_check,
                   self.target_spin)
        with signals_blocked(*widgets):
            for i in range(self.codec_combo.count()):
                if self.codec_combo.itemData(i, Qt.ItemDataRole.UserRole) == s.codec:
                    self.codec_combo.setCurrentIndex(i)
            lo, hi = c.rate_range
            self.rate_label.setText(c.rate_label.capitalize())
            self.rate_spin.setRange(lo, hi)
            self.rate_spin.setSingleStep(1.0 if getattr(c, "integer_rate", False)
                                         else (hi - lo) / 100)
            self.rate_spin.setValue(s.rate)
            self.rate_slider.setValue(self._rate_to_slider(s.rate))
            learned = c.family == "learned"
            tip = ("Rate slider u ∈ [0, 1]: one model, continuous rate (gain units)" if learned
                   else f"{c.rate_label} {lo:g}…{hi:g} (higher = more bits)")
            self.rate_slider.setToolTip(tip)
            self.rate_spin.setToolTip(tip)
            self.quant_combo.clear()
            self.quant_combo.addItems(list(c.quantizers))
            self.quant_combo.setCurrentText(s.quantizer)
            self.quant_combo.setEnabled(bool(c.quantizers))
            self.decoder_combo.clear()
            self.decoder_combo.addItems(list(c.decoders))
            self.decoder_combo.setCurrentText(s.decoder)
            self.decoder_combo.setEnabled(bool(c.decoders))
            self.steps_spin.setValue(s.diffusion_steps)
            self.seed_spin.setValue(s.seed)
            self.target_check.setChecked(s.target_bpp is not None)
            if s.target_bpp is not None:
                self.target_spin.setValue(s.target_bpp)
        self.diffusion_row.setVisible(s.decoder == "diffusion")
        self.rate_slider.setEnabled(s.target_bpp is None)
        self.rate_spin.setEnabled(s.target_bpp is None)
        self.target_spin.setEnabled(s.target_bpp is not None)

    def _on_busy_change(self, event=None) -> None:
        busy = self.pane.busy
        self.cancel_btn.setEnabled(busy)
        if not busy:
            self.progress.setValue(100 if self.pane.encoding is not None else 0)

    def _on_progress_change(self, event=None) -> None:
        self.progress.setValue(int(round(100 * self.pane.progress)))

    def _on_status_change(self, event=None) -> None:
        p = self.pane
        e = p.encoding
        parts = []
        if e is not None:
            parts.append(f"<b>{e.bpp:.3f} bpp</b> ({len(e.result.data):,} B)")
            for k, fmt in (("psnr", "{:.2f} dB"), ("ms_ssim", "MS-SSIM {:.4f}"),
                           ("lpips", "LPIPS {:.3f}")):
                if k in e.metrics:
                    parts.append(fmt.format(e.metrics[k]))
            if e.target_bpp is not None:
                parts.append(f"rate {e.params.rate:.3f}")
        if p.error:
            parts.append(f"<span style='color:#d33'>{p.error}</span>")
        elif p.busy or p.status in ("cancelled", "waiting…"):
            parts.append(f"<i>{p.status}</i>")
        self.status.setText(" · ".join(parts))
