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
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QWidget,
)

from .model.codec_knobs import (
    CODEC_TIP,
    SLIDER_STEPS,
    CodecKnobs,
    codec_choices,
    codec_knobs,
    provenance_text,
)
from .model.encoding import metrics_line
from .model.provenance import decoder_notes, quantizer_notes
from .model.session import Pane, SessionModel
from .qt_signals import ModelSubscriptions, signals_blocked


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
        grid = QGridLayout(self)
        grid.setContentsMargins(6, 4, 6, 4)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(3)
        grid.setColumnStretch(1, 1)

        self.codec_combo = QComboBox()
        self.codec_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.codec_combo.setMinimumContentsLength(9)
        self.codec_combo.setToolTip(CODEC_TIP)
        self._fill_codecs()
        #: visible whenever the chosen weights are a preview (issue 14 item 8)
        self.badge = QLabel("PREVIEW")
        self.badge.setObjectName("preview-badge")
        self.badge.setStyleSheet("#preview-badge { background: #c60; color: white; "
                                 "font-weight: bold; padding: 1px 5px; border-radius: 3px; }")
        self.badge.hide()
        self.about_btn = QToolButton()
        self.about_btn.setText("About")
        self.about_btn.setToolTip("About this model: provenance and model card")
        row = QHBoxLayout()
        row.setSpacing(4)
        row.addWidget(self.codec_combo, 1)
        row.addWidget(self.about_btn)
        grid.addWidget(QLabel("Codec"), 0, 0)
        grid.addLayout(row, 0, 1)
        #: what the weights are, in one line (app.model.codec_knobs.codec_choice)
        self.provenance = ElidedLabel("")
        self.provenance.setObjectName("provenance")
        self.provenance.setStyleSheet("#provenance { color: #b35900; }")
        self.provenance_row = QWidget()
        prov = QHBoxLayout(self.provenance_row)
        prov.setContentsMargins(0, 0, 0, 0)
        prov.setSpacing(4)
        prov.addWidget(self.badge)
        prov.addWidget(self.provenance, 1)
        grid.addWidget(self.provenance_row, 1, 1)

        self.rate_slider = QSlider(Qt.Orientation.Horizontal)
        self.rate_slider.setRange(0, SLIDER_STEPS)
        self.rate_spin = QDoubleSpinBox()
        self.rate_spin.setDecimals(3)
        self.rate_spin.setKeyboardTracking(False)
        rrow = QHBoxLayout()
        rrow.setSpacing(4)
        rrow.addWidget(self.rate_slider, 1)
        rrow.addWidget(self.rate_spin)
        self.rate_label = QLabel("Rate")
        self.rate_label.setToolTip("The codec's rate knob: slider u ∈ [0, 1] for learned codecs "
                                   "(one model, continuous rate), quality for classical ones")
        grid.addWidget(self.rate_label, 2, 0)
        grid.addLayout(rrow, 2, 1)

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
        trow.setSpacing(4)
        trow.addWidget(self.target_check)
        trow.addWidget(self.target_spin, 1)
        grid.addLayout(trow, 3, 1)

        self.quant_combo = QComboBox()
        self.quant_combo.setToolTip("Quantizer for the latents: round, dead-zone, RDOQ or "
                                    "trellis-coded (TCQ)")
        self.decoder_combo = QComboBox()
        self.decoder_combo.setToolTip("Decoder: mse (g_s, sharpest PSNR) or generative "
                                      "(diffusion / GAN)")
        for c in (self.quant_combo, self.decoder_combo):
            c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            c.setMinimumContentsLength(5)
        #: "fine-tuned for TCQ": the chosen quantizer decodes with a decoder tuned on its latents
        #: (whole, never "fine-…": the decoder has a row of its own)
        self.ft_label = WholeLabel("")
        self.ft_label.setObjectName("finetuned")
        self.ft_label.setStyleSheet("#finetuned { color: #2a7a2a; }")
        self.ft_label.hide()
        qrow = QHBoxLayout()
        qrow.setSpacing(4)
        qrow.addWidget(self.quant_combo, 1)
        qrow.addWidget(self.ft_label)
        grid.addWidget(QLabel("Quantizer"), 4, 0)
        grid.addLayout(qrow, 4, 1)
        #: a row of its own, shown only when the codec offers a choice of decoders (mse /
        #: diffusion / gan): beside the quantizer it made three panes wider than 1366 px
        self.decoder_label = QLabel("Decoder")
        self.decoder_row = QWidget()
        decrow = QHBoxLayout(self.decoder_row)
        decrow.setContentsMargins(0, 0, 0, 0)
        decrow.setSpacing(4)
        decrow.addWidget(self.decoder_combo, 1)
        grid.addWidget(self.decoder_label, 5, 0)
        grid.addWidget(self.decoder_row, 5, 1)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 1000)
        self.steps_spin.setToolTip("Diffusion sampling steps")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Sampling seed (same seed → same reconstruction)")
        # sized for the usual values, not for 2³¹: three panes share 1366 px
        self.steps_spin.setMaximumWidth(64)
        self.seed_spin.setMaximumWidth(80)
        drow = QHBoxLayout()
        drow.setSpacing(4)
        drow.addWidget(QLabel("steps"))
        drow.addWidget(self.steps_spin)
        drow.addWidget(QLabel("seed"))
        drow.addWidget(self.seed_spin)
        #: the diffusion decoder's weights are a PREVIEW (force-installed before they earned it)
        self.decoder_preview = QLabel("PREVIEW")
        self.decoder_preview.setStyleSheet("color: #b35c00; font-weight: bold;")
        self.decoder_preview.setVisible(False)
        decrow.addWidget(self.decoder_preview)
        drow.addStretch(1)
        self.diffusion_row = QWidget()
        self.diffusion_row.setLayout(drow)
        drow.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.diffusion_row, 6, 1)

        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.progress.setToolTip("Encode progress")
        self.cancel_btn = QToolButton()
        self.cancel_btn.setText("Cancel")
        self.cancel_btn.setToolTip("Stop this pane's running encode")
        self.cancel_btn.setEnabled(False)
        prow = QHBoxLayout()
        prow.setSpacing(4)
        prow.addWidget(self.progress, 1)
        prow.addWidget(self.cancel_btn)
        grid.addLayout(prow, 7, 0, 1, 2)
        #: size of the result (bpp, bytes, time), or what the running encode does, or the error;
        #: one line, elided only past the pane's width (the full text is its tooltip)
        self.status = ElidedLabel("")
        self.status.setObjectName("pane-status")
        grid.addWidget(self.status, 8, 0, 1, 2)
        #: the result's quality numbers (PSNR, MS-SSIM, LPIPS; "n/a" where undefined), own line
        #: so they are never cut off in three panes at 1366 px
        self.metrics = ElidedLabel("")
        self.metrics.setObjectName("pane-metrics")
        grid.addWidget(self.metrics, 9, 0, 1, 2)
        #: a line the user must see, e.g. a target bpp out of the codec's reach
        self.note = ElidedLabel("")
        self.note.setObjectName("pane-note")
        self.note.setStyleSheet("#pane-note { color: #c60; font-weight: bold; }")
        self.note.hide()
        grid.addWidget(self.note, 10, 0, 1, 2)
        grid.setRowStretch(11, 1)  # spare height below the controls, not inside a row

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
    @staticmethod
    def _fill_choices(combo: QComboBox, items, cache: dict, codec: str, notes_for) -> None:
        """Fill a quantizer/decoder combo with per-item tooltips from ``notes_for(codec)``
        (file metadata, read once per codec into ``cache``)."""
        combo.clear()
        combo.addItems(list(items))
        if codec not in cache:
            cache[codec] = notes_for(codec) if notes_for is not None else {}
        for i, item in enumerate(items):
            note = cache[codec].get(item)
            if note:
                combo.setItemData(i, note[0], Qt.ItemDataRole.ToolTipRole)

    def _fill_codecs(self) -> None:
        model = QStandardItemModel(self.codec_combo)
        self._provenance: dict[str, tuple[bool, str]] = {}
        #: codec → quantizer → (tooltip with measured gains, fine-tuned decoder in use)
        self._quant_notes: dict[str, dict[str, tuple[str, bool]]] = {}
        #: codec → decoder → (tooltip with provenance and Kodak LPIPS, PREVIEW weights)
        self._decoder_notes: dict[str, dict[str, tuple[str, bool]]] = {}
        for choice in codec_choices():
            self._provenance[choice.name] = (choice.preview, choice.line)
            it = QStandardItem(choice.label)
            it.setData(choice.name, Qt.ItemDataRole.UserRole)
            it.setToolTip(choice.tooltip)
            if not choice.enabled:
                it.setFlags(it.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            model.appendRow(it)
        self.codec_combo.setModel(model)

    def knobs(self) -> Optional[CodecKnobs]:
        """What the pane's codec offers (None when it cannot be built)."""
        return codec_knobs(self.pane.settings.codec)

    def refill_codecs(self) -> None:
        """Rebuild the codec chooser (a model was added or removed)."""
        with signals_blocked(self.codec_combo):
            self._fill_codecs()
        self._on_settings_change()

    def _rate_to_slider(self, rate: float) -> int:
        k = self.knobs()
        return k.to_slider(rate) if k is not None else 0

    def _slider_to_rate(self, v: int) -> float:
        k = self.knobs()
        return k.from_slider(v) if k is not None else self.pane.settings.rate

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
        k = codec_knobs(s.codec)
        if k is None:
            return
        widgets = (self.codec_combo, self.rate_slider, self.rate_spin, self.quant_combo,
                   self.decoder_combo, self.steps_spin, self.seed_spin, self.target_check,
                   self.target_spin)
        with signals_blocked(*widgets):
            for i in range(self.codec_combo.count()):
                if self.codec_combo.itemData(i, Qt.ItemDataRole.UserRole) == s.codec:
                    self.codec_combo.setCurrentIndex(i)
            self.rate_label.setText(k.label)
            self.rate_spin.setDecimals(k.decimals)
            self.rate_spin.setRange(k.lo, k.hi)
            self.rate_spin.setSingleStep(k.spin_step)
            self.rate_spin.setValue(s.rate)
            self.rate_slider.setValue(k.to_slider(s.rate))
            self.rate_slider.setToolTip(k.tooltip)
            self.rate_spin.setToolTip(k.tooltip)
            self._fill_choices(self.quant_combo, k.quantizers, self._quant_notes, s.codec,
                               quantizer_notes if k.slider_u else None)
            self.quant_combo.setCurrentText(s.quantizer)
            self.quant_combo.setEnabled(bool(k.quantizers))
            self._fill_choices(self.decoder_combo, k.decoders, self._decoder_notes, s.codec,
                               decoder_notes if k.slider_u else None)
            self.decoder_combo.setCurrentText(s.decoder)
            self.decoder_combo.setEnabled(bool(k.decoders))
            self.decoder_label.setVisible(k.decoder_choice)
            self.decoder_row.setVisible(k.decoder_choice)
            self.steps_spin.setValue(s.diffusion_steps)
            self.seed_spin.setValue(s.seed)
            self.target_check.setChecked(s.target_bpp is not None)
            if s.target_bpp is not None:
                self.target_spin.setValue(s.target_bpp)
        preview, line = self._provenance.get(s.codec, (False, ""))
        self.badge.setVisible(preview)
        self.badge.setToolTip(line)
        self.codec_combo.setToolTip(f"{s.codec}: {line}" if line else CODEC_TIP)
        # the badge already says PREVIEW: the line goes on with what follows it
        self.provenance.set_full_text(provenance_text(preview, line))
        self.provenance.setToolTip(line)
        self.diffusion_row.setVisible(s.decoder == "diffusion")
        tip, tuned = self._quant_notes.get(s.codec, {}).get(s.quantizer, ("", False))
        tuned = tuned and s.decoder == "mse"  # the fine-tuned decoder replaces g_s only
        self.ft_label.set_full_text(f"fine-tuned for {s.quantizer.upper()}" if tuned else "")
        self.ft_label.setToolTip(tip if tuned else "")
        self.ft_label.setVisible(tuned)
        self.provenance_row.setVisible(bool(line))
        self.quant_combo.setToolTip(tip or "Quantizer for the latents: round, dead-zone, RDOQ "
                                           "or trellis-coded (TCQ)")
        dtip, dpreview = self._decoder_notes.get(s.codec, {}).get(s.decoder, ("", False))
        self.decoder_preview.setVisible(dpreview)
        self.decoder_preview.setToolTip(dtip)
        self.decoder_combo.setToolTip(
            ("PREVIEW — " if dpreview else "") + dtip if dtip else
            "Decoder: mse (g_s, sharpest PSNR) or generative (diffusion / gan: realistic "
            "texture)")
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
            parts.append(f"{e.bpp:.3f} bpp · {len(e.result.data):,} B")
            if e.target_bpp is not None:
                parts.append(f"rate {e.params.rate:.3f}")
            elif e.elapsed:
                parts.append(f"{e.elapsed:.2f} s")
        error = bool(p.error)
        if error:
            parts = [p.error]
        elif p.busy or p.status in ("cancelled", "waiting…") or (e is None and p.status):
            # what the running encode does now, first: the old result's size is in the tooltip
            parts = [p.status] + ([] if p.busy or p.status == "waiting…" else parts)
        self.status.setStyleSheet("#pane-status { color: #d33; }" if error else "")
        self.status.set_full_text(" · ".join(parts))
        text, tip = metrics_line(e, self.session.image) if e is not None else ("", "")
        self.metrics.set_full_text(text)
        self.metrics.setToolTip(tip or text)
        if not p.busy:  # a result (computed or from the cache) is a full bar, none is empty
            self.progress.setValue(100 if e is not None else 0)
        note = e.note if (e is not None and not p.busy) else ""
        self.note.set_full_text(note)
        self.note.setVisible(bool(note))


class WholeLabel(QLabel):
    """A short label that is always shown whole (``full_text`` like :class:`ElidedLabel`)."""

    def __init__(self, text: str = "", parent: Optional[QWidget] = None) -> None:
        super().__init__(text, parent)
        self.full_text = text
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def set_full_text(self, text: str) -> None:
        self.full_text = text
        self.setText(text)


class ElidedLabel(QLabel):
    """A one-line label that elides its text to its width; the full text is the tooltip.

    A wrapping label inside the compact pane controls grew taller than its row and was clipped
    (issue 14 item 6); one elided line keeps the layout fixed."""

    def __init__(self, text: str = "", parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.full_text = ""
        self.setMinimumWidth(40)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.set_full_text(text)

    def set_full_text(self, text: str) -> None:
        self.full_text = text
        self.setToolTip(text)
        self._elide()

    def _elide(self) -> None:
        width = max(10, self.width())
        super().setText(self.fontMetrics().elidedText(self.full_text,
                                                      Qt.TextElideMode.ElideRight, width))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._elide()
