""""Inside the codec" views for learned encodings (``EncodeResult.inspection``).

* :class:`QtLatentBrowser`: ŷ / μ / σ / bits / residual channels as a mosaic, sorted by bits,
  with a channel slider and the selected channel large (GUI_FEATURES §3 item 2).
* :class:`QtEntropyView`: bits per latent (−log2 p) summed over channels or per channel, for y or
  z, with a colorbar; drives the overlay on the compare view (§3 item 1).
* :class:`QtRateBreakdown`: header / z / y per group, estimated vs real bits (§3 item 3).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSlider,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .model import inspect_jobs, inspect_maps
from .model.inspect_maps import Inspection
from .model.session import PANE_NAMES, CancelToken, SessionModel
from .qt_signals import ModelSubscriptions, signals_blocked
from .qt_workers import QtWorkerPool


def _image_plot(title: str = "") -> tuple[pg.PlotWidget, pg.ImageItem]:
    pw = pg.PlotWidget(title=title)
    pw.setAspectLocked(True)
    pw.invertY(True)
    pw.hideAxis("bottom")
    pw.hideAxis("left")
    # a big image's latents (e.g. 250×375 per channel at 24 MP) are drawn smaller than they
    # are: averaged to the screen (pyqtgraph's autoDownsample), not sampled, so they stay readable
    item = pg.ImageItem(autoDownsample=True)
    pw.addItem(item)
    return pw, item


class _MapJob:
    """One map computation for the pool (cancelled through ``token`` when superseded)."""

    def __init__(self, fn: Callable[[], Any], insp: Inspection) -> None:
        self.fn = fn
        self.insp = insp
        self.token = CancelToken()


class _PaneInspectorBase(QWidget):
    """Common part: which pane's encoding is inspected, refresh on its changes.

    ``pool`` (the controller's light pool) computes the maps of a big encoding
    (:func:`inspect_jobs.is_heavy`) off the GUI thread; without one they are computed here.
    """

    def __init__(self, session: SessionModel, parent: Optional[QWidget] = None,
                 pool: Optional[QtWorkerPool] = None) -> None:
        super().__init__(parent)
        self.session = session
        self.pool = pool
        self._map_job: Optional[_MapJob] = None
        self.pane_combo = QComboBox()
        self.pane_combo.addItems([f"Pane {n}" for n in PANE_NAMES])
        self.pane_combo.setToolTip("Which pane's encoding to look inside")
        self.pane_combo.currentIndexChanged.connect(self._on_pane_edit)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self._hints: list[_Hint] = []
        self._subs = ModelSubscriptions(self)
        for p in session.panes:
            self._subs.connect(p.events.encoding,
                               lambda e, i=p.index: self._on_encoding_change(i))
        self._subs.connect(session.view.events.overlay_pane, self._on_overlay_pane_change)
        self._subs.connect(session.view.events.colormap, lambda e: self.refresh())
        self._subs.connect(session.events.image, lambda e: self.refresh())
        self._subs.connect(session.events.decoded, lambda e: self.refresh())

    def _on_overlay_pane_change(self, event) -> None:
        if self.pane_combo.currentIndex() != event.value:
            self.pane_combo.setCurrentIndex(event.value)

    def _on_pane_edit(self, idx: int) -> None:
        self.session.view.overlay_pane = idx
        self.refresh()

    def _on_encoding_change(self, index: int) -> None:
        if index == self.pane_combo.currentIndex():
            self.refresh()

    def inspection(self) -> Optional[Inspection]:
        enc = self.session.panes[self.pane_combo.currentIndex()].encoding
        return None if enc is None else enc.inspection

    def _no_data(self) -> str:
        """Why there is nothing to show, and what to do about it (shown over the empty plots)."""
        s = self.session
        pane = s.panes[self.pane_combo.currentIndex()]
        enc = pane.encoding
        if s.image is None:
            if s.decoded is not None:
                return (f"{s.decoded.name} is shown as decoded. Compare it against its original "
                        "(File menu) to encode and look inside.")
            return ("Open an image (Ctrl+O) or File → Open sample image: the latents of "
                    "a learned codec's encoding show here.")
        if enc is None:
            return f"Pane {pane.name} has no encoding yet."
        if enc.key.startswith("file:"):
            return (f"Pane {pane.name} shows the opened file as decoded; re-encode it (Ctrl+R) "
                    "to look inside the codec.")
        return (f"{enc.codec} is a classical codec: there are no latents to inspect. "
                "Choose a learned codec for this pane.")

    def _compute(self, insp: Inspection, fn: Callable[[], Any],
                 apply: Callable[[Any], None]) -> None:
        """``apply(fn())`` now, or — for a heavy inspection with a pool — once a worker has
        run ``fn``, unless a newer request came meanwhile (a hint says it is computing)."""
        if self._map_job is not None:
            self._map_job.token.cancel()
            self._map_job = None
        if self.pool is None or not inspect_jobs.is_heavy(insp):
            apply(fn())
            return
        job = self._map_job = _MapJob(fn, insp)
        self._show_hint("computing the maps of this big encoding…")

        def done(r, value):
            if r is self._map_job:
                self._map_job = None
                if self.inspection() is not r.insp:  # the pane changed meanwhile
                    return
                self._show_hint("")
                apply(value)

        def fail(r, exc):
            if r is self._map_job:
                self._map_job = None
                self._show_hint(f"could not compute the maps: {exc}")

        self.pool.submit(lambda r, sink: r.fn(), job, done, fail)

    def _hint_over(self, *plots: QWidget) -> None:
        """Empty plots carry a centred hint instead of a black rectangle."""
        self._hints = [_Hint(p) for p in plots]

    def _show_hint(self, text: str) -> None:
        for h in self._hints:
            h.setText(text)
            h.setVisible(bool(text))

    def refresh(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class _Hint(QLabel):
    """A centred, word-wrapped text over a plot widget that follows its size."""

    def __init__(self, target: QWidget) -> None:
        super().__init__(target)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setStyleSheet("QLabel { color: #cfcfcf; background: transparent; padding: 12px; }")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        target.installEventFilter(self)
        self.setGeometry(target.rect())

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Resize:
            self.setGeometry(obj.rect())
        return False


class QtLatentBrowser(_PaneInspectorBase):
    """Mosaic of latent channels sorted by bits + the selected channel large."""

    MOSAIC = 16

    def __init__(self, session: SessionModel, parent: Optional[QWidget] = None,
                 pool: Optional[QtWorkerPool] = None) -> None:
        super().__init__(session, parent, pool)
        self.quantity_combo = QComboBox()
        self.quantity_combo.addItems(list(inspect_maps.QUANTITIES))
        self.quantity_combo.setToolTip("ŷ: quantized latent · means μ · scales σ · bits −log2 p "
                                       "· residual (ŷ−μ)/σ")
        self.channel_slider = QSlider(Qt.Orientation.Horizontal)
        self.channel_slider.setToolTip("Channel rank by bits (0 = most expensive channel)")
        self.channel_label = QLabel("")
        #: each tile its own colour scale (structure) or one for all (magnitudes compare)
        self.scale_combo = QComboBox()
        self.scale_combo.addItems(["scale per tile", "one scale"])
        self.scale_combo.setToolTip("Per tile: each channel between its own 1st and 99th "
                                    "percentile (its structure shows). One scale: the same "
                                    "colours mean the same value in every tile (magnitudes "
                                    "compare); the colorbar gives the values")
        top = QHBoxLayout()
        top.addWidget(self.pane_combo)
        top.addWidget(self.quantity_combo)
        top.addWidget(self.scale_combo)
        top.addWidget(QLabel("channel"))
        top.addWidget(self.channel_slider, 1)
        top.addWidget(self.channel_label)
        self.mosaic_plot, self.mosaic_item = _image_plot("16 channels by bits")
        self.mosaic_bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"),
                                          interactive=False, width=12)
        self.mosaic_bar.setImageItem(self.mosaic_item, insert_in=self.mosaic_plot.getPlotItem())
        self.channel_plot, self.channel_item = _image_plot("selected channel")
        self.channel_bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"),
                                           interactive=False, width=12)
        self.channel_bar.setImageItem(self.channel_item, insert_in=self.channel_plot.getPlotItem())
        views = QHBoxLayout()
        views.addWidget(self.mosaic_plot, 3)
        views.addWidget(self.channel_plot, 2)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(views, 1)
        lay.addWidget(self.info)
        self.quantity_combo.currentTextChanged.connect(
            lambda t: setattr(session.view, "latent_quantity", t))
        self.channel_slider.valueChanged.connect(lambda v: setattr(session.view, "channel", v))
        self.scale_combo.currentIndexChanged.connect(lambda i: self.refresh())
        self._subs.connect(session.view.events.latent_quantity, self._on_view_change)
        self._subs.connect(session.view.events.channel, self._on_view_change)
        self.mosaic_array: Optional[np.ndarray] = None
        self.channel_array: Optional[np.ndarray] = None
        self._hint_over(self.mosaic_plot)
        self.refresh()

    def _on_view_change(self, event=None) -> None:
        v = self.session.view
        # each widget takes the model's own value: its echo is an equal write, which the model
        # ignores, so no signal blocker is needed here
        self.quantity_combo.setCurrentText(v.latent_quantity)
        self.channel_slider.setValue(v.channel)
        self.refresh()

    def refresh(self) -> None:
        insp = self.inspection()
        if insp is None:
            self.mosaic_item.clear()
            self.channel_item.clear()
            self.mosaic_array = self.channel_array = None
            self.info.setText("")
            self._show_hint(self._no_data())
            return
        v = self.session.view
        if v.latent_quantity in ("means", "scales", "residual") and \
                insp.extras.get("gaussian") is False:
            # a factorized prior (bmshj2018-factorized) codes y without means or scales
            self.mosaic_item.clear()
            self.channel_item.clear()
            self.mosaic_array = self.channel_array = None
            self.info.setText("")
            self._show_hint("this model codes ŷ with a factorized prior: no means or scales "
                            "(choose ŷ or bits)")
            return
        self._show_hint("")
        m = insp.y_hat.shape[0]
        with signals_blocked(self.channel_slider):  # a new range must not move the chosen rank
            self.channel_slider.setRange(0, m - 1)
        shared = self.scale_combo.currentIndex() == 1
        quantity, rank = v.latent_quantity, min(max(v.channel, 0), m - 1)
        self._compute(insp, lambda: inspect_jobs.latent_view(insp, quantity, rank, shared,
                                                             self.MOSAIC),
                      lambda view: self._apply(view, shared))

    def _apply(self, view: inspect_jobs.LatentView, shared: bool) -> None:
        cmap = pg.colormap.get(self.session.view.colormap)
        self.mosaic_array = view.mosaic
        levels = view.levels
        self.mosaic_bar.setColorMap(cmap)
        self.mosaic_item.setImage(np.nan_to_num(view.mosaic, nan=levels[0]), levels=levels)
        self.mosaic_bar.setLevels(levels)
        self.mosaic_plot.getPlotItem().vb.enableAutoRange()
        shrink = (f"; tiles block-averaged 1:{view.tile_factor} to stay readable"
                  if view.tile_factor > 1 else "")
        self.mosaic_plot.setToolTip("16 channels from the slider's rank, most bits first; " + (
            "one colour scale for every tile (the colorbar)" if shared else
            "each tile scaled between its own 1st and 99th percentile (0…1 on the colorbar)")
            + shrink)
        self.channel_array = view.channel_array
        lo, hi = float(self.channel_array.min()), float(self.channel_array.max())
        self.channel_bar.setColorMap(cmap)
        self.channel_item.setImage(self.channel_array, levels=(lo, hi if hi > lo else lo + 1))
        self.channel_bar.setLevels((lo, hi if hi > lo else lo + 1))
        self.channel_label.setText(f"#{view.rank} → ch {view.channel}")
        self.info.setText(view.info)


class QtEntropyView(_PaneInspectorBase):
    """Bits heatmap (y summed / per channel, z) with colorbar and overlay controls."""

    def __init__(self, session: SessionModel, parent: Optional[QWidget] = None,
                 pool: Optional[QtWorkerPool] = None) -> None:
        super().__init__(session, parent, pool)
        self.kind_combo = QComboBox()
        self.kind_combo.addItems([label for _, _, label in inspect_maps.BITS_KINDS])
        self.kind_combo.setToolTip("Which bits to map: −log2 p(ŷ) summed or per channel, "
                                   "or the hyper-latent z")
        self.channel_spin = QSpinBox()
        self.channel_spin.setToolTip("Latent channel (for the per-channel map)")
        self.overlay_check = QCheckBox("Overlay on image")
        self.overlay_check.setToolTip("Draw the bits-per-pixel map over the compare view")
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(int(session.view.overlay_opacity * 100))
        self.opacity_slider.setToolTip("Overlay opacity")
        self.kind_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.kind_combo.setMinimumContentsLength(10)
        top = QHBoxLayout()
        top.addWidget(self.pane_combo)
        top.addWidget(self.kind_combo, 1)
        top.addWidget(self.channel_spin)
        top2 = QHBoxLayout()
        top2.addWidget(self.overlay_check)
        top2.addWidget(QLabel("opacity"))
        top2.addWidget(self.opacity_slider, 1)
        self.plot, self.item = _image_plot("bits per latent position")
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"),
                                   interactive=False, width=12, label="bits")
        self.bar.setImageItem(self.item, insert_in=self.plot.getPlotItem())
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(top2)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.info)
        self.kind_combo.currentIndexChanged.connect(self._on_kind_edit)
        self.channel_spin.valueChanged.connect(lambda v: self.refresh())
        self.overlay_check.toggled.connect(self._on_kind_edit)
        self.opacity_slider.valueChanged.connect(
            lambda v: setattr(session.view, "overlay_opacity", v / 100.0))
        self._subs.connect(session.view.events.overlay, self._on_overlay_change)
        self.array: Optional[np.ndarray] = None
        self._hint_over(self.plot)
        self.refresh()

    def kind(self) -> tuple[str, Optional[int]]:
        return inspect_maps.bits_kind(self.kind_combo.currentIndex(), self.channel_spin.value())

    def _on_kind_edit(self, *_) -> None:
        kind, _ch = self.kind()
        self.session.view.overlay = kind if self.overlay_check.isChecked() else "none"
        self.refresh()

    def _on_overlay_change(self, event) -> None:
        # two widgets encode one value: half-updated, they would write a wrong overlay back
        with signals_blocked(self.overlay_check, self.kind_combo):
            self.overlay_check.setChecked(event.value != "none")
            if event.value == "bits_z":
                self.kind_combo.setCurrentIndex(2)
            elif event.value == "bits_y" and self.kind_combo.currentIndex() == 2:
                self.kind_combo.setCurrentIndex(0)

    def refresh(self) -> None:
        insp = self.inspection()
        if insp is None:
            self.item.clear()
            self.array = None
            self.info.setText("")
            self._show_hint(self._no_data())
            return
        self._show_hint("")
        kind, ch = self.kind()
        self.channel_spin.setRange(0, insp.bits_y.shape[0] - 1)
        # the channel sum of a big encoding: computed by its worker, or by ours
        self._compute(insp, lambda: inspect_jobs.bits_view(insp, kind, ch),
                      lambda arr: self._apply(arr, kind, ch))

    def _apply(self, array: np.ndarray, kind: str, ch: Optional[int]) -> None:
        self.array = array
        hi = float(self.array.max()) if self.array.size else 1.0
        cmap = pg.colormap.get(self.session.view.colormap)
        self.bar.setColorMap(cmap)
        self.item.setImage(self.array.astype(np.float32), levels=(0, hi if hi > 0 else 1))
        self.bar.setLevels((0, hi if hi > 0 else 1))
        self.info.setText(inspect_maps.bits_caption(self.array, kind, ch))


class QtRateBreakdown(_PaneInspectorBase):
    """Table and bar chart of estimated vs real bits per bitstream part."""

    def __init__(self, session: SessionModel, parent: Optional[QWidget] = None,
                 pool: Optional[QtWorkerPool] = None) -> None:
        super().__init__(session, parent, pool)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["part", "estimated", "real"])
        hh = self.table.horizontalHeader()
        for c in (0, 1, 2):  # every column as wide as its longest entry: no "y g0 non-an…"
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        hh.setStretchLastSection(False)
        # the table is made as wide as its columns: never a sideways scroll bar over the names
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setWordWrap(False)
        self.table.setMinimumWidth(230)  # part names and both counts readable without scrolling
        self.table.setToolTip("Bits per part. Estimated = the model's −log2 p; real = "
                              "range-coded bytes × 8 (one stream per section)")
        self.plot = pg.PlotWidget()
        self.plot.setToolTip("Estimated (blue) vs real (orange) bits per bitstream part")
        self.plot.setLabel("bottom", "bits")
        self.plot.getAxis("bottom").enableAutoSIPrefix(True)
        self.plot.setMouseEnabled(x=False, y=False)
        top = QHBoxLayout()
        top.addWidget(self.pane_combo)
        legend = QLabel("<span style='color:#4c72b0'>■</span> estimated &nbsp; "
                        "<span style='color:#dd8452'>■</span> real (bits)")
        top.addWidget(legend)
        top.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(self.table)
        body.addWidget(self.plot)
        body.setStretchFactor(0, 2)
        body.setStretchFactor(1, 3)
        body.setCollapsible(0, False)
        self.plot.setMinimumWidth(120)
        self.body = body
        lay.addWidget(body, 1)
        lay.addWidget(self.info)
        self.rows: list[dict] = []
        self._hint_over(self.plot)
        self.refresh()

    def _fit_table(self) -> None:
        """The table as wide as its columns (the chart takes what is left)."""
        self.table.resizeColumnsToContents()
        need = max(230, _table_width(self.table))
        self.table.setMinimumWidth(need)
        total = sum(self.body.sizes())
        if total > need and self.body.sizes()[0] < need:
            self.body.setSizes([need, total - need])

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if self.rows:
            self._fit_table()

    def refresh(self) -> None:
        insp = self.inspection()
        self.plot.clear()
        if insp is None:
            self.table.setRowCount(0)
            self.rows = []
            self.info.setText("")
            self._show_hint(self._no_data())
            return
        self._show_hint("")
        enc = self.session.panes[self.pane_combo.currentIndex()].encoding
        self.rows = inspect_maps.rate_breakdown(insp, len(enc.result.data))
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            for c, key in enumerate(("part", "estimated_bits", "real_bits")):
                v = row[key]
                txt = "—" if v is None else (v if isinstance(v, str) else f"{v:,.0f}")
                item = QTableWidgetItem(_short_part(txt) if c == 0 else txt)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self._fit_table()
        # horizontal bars: the part names sit on the left axis, one per row, never overlapping
        # (vertical bars put ~14 names under a narrow dock's x axis: issue 14 item 6)
        ys = np.arange(len(self.rows))
        est = np.array([r["estimated_bits"] or 0 for r in self.rows], float)
        real = np.array([r["real_bits"] or 0 for r in self.rows], float)
        self.plot.addItem(pg.BarGraphItem(x0=0, y=ys - 0.2, width=est, height=0.38,
                                          brush="#4c72b0", pen=None))
        self.plot.addItem(pg.BarGraphItem(x0=0, y=ys + 0.2, width=real, height=0.38,
                                          brush="#dd8452", pen=None))
        ax = self.plot.getAxis("left")
        ax.setTicks([[(i, _axis_part(r["part"])) for i, r in enumerate(self.rows)]])
        self.plot.getViewBox().invertY(True)
        self.plot.setYRange(-0.6, len(self.rows) - 0.4, padding=0)
        self.plot.setXRange(0, float(max(est.max(initial=0), real.max(initial=0)) or 1) * 1.05)
        tot = self.rows[-1]
        over = (tot["real_bits"] / tot["estimated_bits"] - 1) * 100 if tot["estimated_bits"] \
            else 0.0
        self.info.setText(f"real {tot['real_bits']:,} bits vs estimated "
                          f"{tot['estimated_bits']:,.0f} bits ({over:+.2f} %); "
                          f"clamped symbols: {insp.clamped_symbols}")


def _table_width(table: QTableWidget) -> int:
    """Width that shows every column whole, with the vertical scroll bar when it is needed."""
    hh = table.horizontalHeader()
    cols = sum(max(table.sizeHintForColumn(c), hh.sectionSizeHint(c))
               for c in range(table.columnCount()))
    bar = table.verticalScrollBar().sizeHint().width()
    return cols + bar + 2 * table.frameWidth() + 6


def _short_part(part: str) -> str:
    """Table label of a rate row: ``y g0/anchor`` → ``y g0 anchor``."""
    return part.replace("/", " ").strip()


def _axis_part(part: str) -> str:
    """Bar-chart label (narrow): ``y g0/non-anchor`` → ``g0 non``, ``z (side info)`` → ``z``."""
    p = part.replace("(side info)", "").replace("(all)", "").strip()
    if p.startswith("y g"):
        g, _, kind = p[2:].partition("/")
        return f"{g} {'anc' if kind == 'anchor' else 'non'}"
    return p
