"""Live rate–distortion plot (pyqtgraph): bpp vs PSNR / MS-SSIM / LPIPS.

Every finished encoding adds its point to its codec's curve; the panes' current operating points
are highlighted; published reference curves (``load_anchors``) are dashed; the BD-rate between two
chosen curves (``lic_core.evaluation.bdrate``) updates live (GUI_FEATURES §3 item 5).
"""
from __future__ import annotations

from typing import Optional

import pyqtgraph as pg
from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .model import services
from .model.rd_style import (
    FEW_REFERENCES,
    METRIC_BOUNDS,
    StyleBook,
    is_dataset,
    is_reference,
)
from .model.session import PANE_NAMES, SessionModel
from .model.view_state import RD_METRICS
from .qt_compat import top_up
from .qt_rd_legend import DASH_STYLES, RdLegend, RdLegendScroll, display_name
from .qt_signals import ModelSubscriptions, signals_blocked

METRIC_LABELS = {"psnr": "PSNR (dB)", "ms_ssim": "MS-SSIM", "lpips": "LPIPS (lower is better)"}
PANE_COLORS = ["#ffcc00", "#00d0ff", "#ff5ad2"]
Z_REFERENCE, Z_MEASURED, Z_OPERATING = -10, 10, 20
#: BD-rate on fewer points than this per curve is named "rough"
BD_FEW_POINTS = 4


def _small_combo(tip: str, chars: int = 12) -> QComboBox:
    """A combo that never asks for the width of its longest item (long anchor names would
    otherwise widen the dock and the window; the full name is in the popup and tooltip)."""
    c = QComboBox()
    c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    c.setMinimumContentsLength(chars)
    c.setToolTip(tip)
    return c


def _pen(look, width: float = 2.5):
    colour, dash, _ = look
    return pg.mkPen(colour, width=width, style=DASH_STYLES.get(dash, Qt.PenStyle.SolidLine))


class QtRDPlot(QWidget):
    """RD plot widget bound to a session.

    Signals
    -------
    cancel_requested() : the sweep progress bar's Cancel button.
    """

    cancel_requested = Signal()

    def __init__(self, session: SessionModel, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.session = session
        self.metric_combo = _small_combo("Quality axis (LPIPS: View → Compute LPIPS scores "
                                         "every result)", 6)
        self.metric_combo.addItems(list(RD_METRICS))
        self.ref_combo = _small_combo("BD-rate reference curve")
        self.test_combo = _small_combo("BD-rate test curve")
        self.ref_set_combo = _small_combo("Published Kodak-average curves drawn dashed "
                                          "(shipped with lic_core; few = JPEG, WebP, BPG, VTM, ELIC)",
                                          10)
        self.ref_set_combo.addItems(["few references", "all references", "no references"])
        self.bd_label = QLabel("BD-rate: —")
        self.bd_label.setWordWrap(True)
        self.bd_label.setToolTip("Bjøntegaard delta rate of test vs reference "
                                 "(negative = test saves bits at equal quality)")
        top = QHBoxLayout()
        top.addWidget(QLabel("Y"))
        top.addWidget(self.metric_combo)
        top.addWidget(self.ref_set_combo)
        top.addStretch(1)
        bd_row = QHBoxLayout()
        bd_row.addWidget(QLabel("BD-rate of"))
        bd_row.addWidget(self.test_combo, 1)
        bd_row.addWidget(QLabel("vs"))
        bd_row.addWidget(self.ref_combo, 1)
        self.sweep_bar = QProgressBar()
        self.sweep_bar.setFormat("sweep: %v / %m encodes")
        self.sweep_bar.setToolTip("Background encodes of an RD sweep (Encode → Sweep)")
        self.sweep_cancel = QPushButton("Cancel")
        self.sweep_cancel.setToolTip("Stop every running encode (Esc)")
        self.sweep_cancel.clicked.connect(self.cancel_requested)
        self.sweep_row = QWidget()
        srow = QHBoxLayout(self.sweep_row)
        srow.setContentsMargins(0, 0, 0, 0)
        srow.addWidget(self.sweep_bar, 1)
        srow.addWidget(self.sweep_cancel)
        self.sweep_row.hide()
        self._progress: dict[str, tuple[int, int]] = {}
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")  # readable in papers and on dark and light desktops
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setLabel("bottom", "bits per pixel")
        self.plot.setMinimumSize(200, 120)
        for ax in ("bottom", "left"):
            a = self.plot.getAxis(ax)
            a.enableAutoSIPrefix(False)
            a.setPen("k")
            a.setTextPen("k")
        #: why the plot is empty and what to do (e.g. LPIPS not computed yet), over the plot
        self.hint = QLabel(self.plot)
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setStyleSheet("QLabel { color: #444; background: rgba(255, 255, 255, 220); "
                                "padding: 6px; border: 1px solid #ccc; }")
        self.hint.hide()
        #: below the data, never over it; every curve, the dashed references included (it
        #: scrolls, rather than be cut, when all ~20 references do not fit the dock)
        self.legend = RdLegend()
        self.legend_scroll = RdLegendScroll(self.legend)
        #: what File → Export RD plot saves: the plot and its legend
        self.figure = QWidget()
        fig = QVBoxLayout(self.figure)
        fig.setContentsMargins(0, 0, 0, 0)
        fig.setSpacing(0)
        fig.addWidget(self.plot, 1)
        fig.addWidget(self.legend_scroll)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.figure, 1)
        lay.addWidget(self.sweep_row)
        lay.addLayout(bd_row)
        lay.addWidget(self.bd_label)
        self.anchors = services.load_anchor_curves()
        self.curves: dict[str, tuple[list[float], list[float]]] = {}
        self.highlight: list[tuple[int, float, float]] = []
        names = services.codec_names()
        # the available learned codecs first, the preferred one (the product) first of them:
        # the codec a user has gets the first colours (reds)
        learned = services.learned_by_preference(names)
        #: a series' look is fixed at first sight, by its name (issue 14 item 5)
        self.styles = StyleBook(codecs=names, learned=learned, references=self.anchors)
        self.items: dict[str, pg.PlotDataItem] = {}
        self._bd_chosen = False
        self._writing_pair = False
        self._subs = ModelSubscriptions(self)
        self._subs.connect(session.view.events.bd_pair, self._on_bd_pair_change)
        self.ref_set_combo.currentIndexChanged.connect(lambda i: self.refresh())
        self.metric_combo.currentTextChanged.connect(
            lambda t: setattr(session.view, "rd_metric", t))
        self.ref_combo.currentIndexChanged.connect(self._on_bd_edit)
        self.test_combo.currentIndexChanged.connect(self._on_bd_edit)
        self._subs.connect(session.view.events.rd_metric, self._on_metric_change)
        self._subs.connect(session.view.events.compute_lpips, lambda e: self.refresh())
        self._subs.connect(session.events.history, lambda e: self.refresh())
        self._subs.connect(session.events.image, lambda e: self.refresh())
        for p in session.panes:
            self._subs.connect(p.events.encoding, lambda e: self.refresh())
        self._subs.connect(session.view.events.n_panes, lambda e: self.refresh())
        self._subs.connect(session.events.dataset, lambda e: self.refresh())
        self.refresh()

    # ------------------------------------------------------------------ model → view
    def _on_metric_change(self, event) -> None:
        self.metric_combo.setCurrentText(event.value)  # its echo is an equal write: ignored
        self.refresh()

    def _on_bd_edit(self, *_) -> None:
        ref, test = self.ref_combo.currentData(), self.test_combo.currentData()
        if ref and test:
            self._bd_chosen = True  # the user's pair stays, whatever curves come and go
            self._writing_pair = True
            try:
                self.session.view.bd_pair = [ref, test]
            finally:
                self._writing_pair = False
        self._update_bd()

    def all_curves(self) -> dict[str, tuple[list[float], list[float], bool]]:
        """``{name: (bpp, values, is_anchor)}`` for the current metric: this image's curves,
        dataset averages measured here, and the published references chosen."""
        m = self.session.view.rd_metric
        out = {k: (b, q, False) for k, (b, q) in self.session.rd_curves(m).items()}
        for name, (b, q) in self.session.dataset_rd_curves(m).items():
            out[name] = (b, q, False)
        mode = self.ref_set_combo.currentIndex()
        for name, c in self.anchors.items():
            if mode == 2 or (mode == 0 and not any(k in name for k in FEW_REFERENCES)):
                continue
            if m in c and len(c[m]) == len(c["bpp"]):
                out[f"[ref Kodak avg] {name}"] = (c["bpp"], c[m], True)
        return out

    def series_look(self, name: str) -> tuple[str, str, Optional[str]]:
        """(colour, line style, marker) of a series: a function of its name only, and no two
        series alike (app/model/rd_style.py)."""
        return self.styles.look(name)

    def series_color(self, name: str) -> str:
        return self.series_look(name)[0]

    def legend_names(self) -> list[str]:
        return [e.name for e in self.legend.entries]

    def legend_entries(self) -> list[QWidget]:
        return list(self.legend.entries)

    def _show_progress(self) -> None:
        running = {k: v for k, v in self._progress.items() if v[1] > 0}
        self.sweep_row.setVisible(bool(running))
        if running:
            what, (done, total) = next(iter(running.items()))
            self.sweep_bar.setRange(0, total)
            self.sweep_bar.setValue(done)
            self.sweep_bar.setFormat({"sweep": "sweep: %v / %m encodes",
                                      "score": "scoring LPIPS: %v / %m results",
                                      "dataset": "dataset: %v / %m encodes"}[what])

    def set_background_progress(self, done: int, total: int) -> None:
        """Sweep progress from the controller: a bar while background encodes run."""
        self._progress["sweep"] = (done, total)
        self._show_progress()

    def set_scoring_progress(self, done: int, total: int) -> None:
        """Existing results being scored with LPIPS (View → Compute LPIPS)."""
        self._progress["score"] = (done, total)
        self._show_progress()
        if done == 0:  # started or finished: the hint says which
            self._update_hint()

    def set_dataset_progress(self, done: int, total: int) -> None:
        """A codec swept over an image folder (Encode → Dataset curve)."""
        self._progress["dataset"] = (done, total)
        self._show_progress()

    # ------------------------------------------------------------------ drawing
    def refresh(self) -> None:
        m = self.session.view.rd_metric
        curves = self.all_curves()
        # one model change sends several events (a new image: every pane, the history, the
        # image): redrawing ~60 series for each stalled the window; the same data draws nothing
        key = (m, tuple(sorted((k, tuple(b), tuple(q), a) for k, (b, q, a) in curves.items())),
               tuple(self.session.operating_points(m)), tuple(self.session.view.bd_pair))
        if key == getattr(self, "_drawn", None):
            self._update_hint()
            return
        self._drawn = key
        top_up()  # item churn below drains None/True refcounts on PySide6 6.12 (qt_compat)
        if getattr(self, "_label", None) != m:
            self.plot.setLabel("left", METRIC_LABELS.get(m, m))
            self._label = m
        self.curves = {k: (b, q) for k, (b, q, _a) in curves.items()}
        # measured curves first (legend order), dataset averages, then the references; a
        # series drawn already with the same points and look stays (the references mostly):
        # rebuilding every item per result was most of the window's work while encoding
        order = sorted(curves.items(), key=lambda kv: (kv[1][2], is_dataset(kv[0]), kv[0]))
        legend = []
        old, self.items = self.items, {}
        sigs = getattr(self, "_sigs", {})
        for name, (b, q, anchor) in order:
            look = self.series_look(name)
            sig = (tuple(b), tuple(q), anchor, look)
            item = old.pop(name, None)
            if item is not None and sigs.get(name) == sig:
                self.items[name] = item
                legend.append((name, look))
                continue
            if item is not None:
                self.plot.removeItem(item)
            if anchor:
                item = self.plot.plot(b, q, pen=_pen(look, 1.4))
                item.setZValue(Z_REFERENCE)
            else:
                colour, _, symbol = look
                item = self.plot.plot(b, q, pen=_pen(look, 1.8 if is_dataset(name) else 2.5),
                                      symbol=symbol, symbolSize=7, symbolBrush=colour,
                                      symbolPen=pg.mkPen(colour if symbol == "x" else "w"))
                item.setZValue(Z_MEASURED)
            item.curve.setToolTip(name)
            self.items[name] = item
            sigs[name] = sig
            legend.append((name, look))
        for name, item in old.items():
            self.plot.removeItem(item)
            sigs.pop(name, None)
        self._sigs = sigs
        if legend != getattr(self, "_legend_drawn", None):
            self.legend.set_entries(legend)
            self._legend_drawn = legend
        for it in getattr(self, "_marks", []):
            self.plot.removeItem(it)
        self._marks = []
        self.highlight = self.session.operating_points(m)
        for idx, bpp, val in self.highlight:
            star = self.plot.plot([bpp], [val], pen=None, symbol="star", symbolSize=18,
                                  symbolBrush=PANE_COLORS[idx], symbolPen=pg.mkPen("k"))
            star.setZValue(Z_OPERATING)
            t = pg.TextItem(PANE_NAMES[idx], color="k", anchor=(-0.6, 0.5))  # right of it
            t.setPos(bpp, val)
            t.setZValue(Z_OPERATING)
            self.plot.addItem(t)
            self._marks += [star, t]
        self._focus_range()
        self._update_hint()
        self._fill_bd_combos()
        self._update_bd()

    def _update_hint(self) -> None:
        """Say why the plot has no point of this image, and what to do about it."""
        s, m = self.session, self.session.view.rd_metric
        measured = any(not is_reference(n) for n in self.curves)
        shown = s.shown_encodings() if s.image is not None else []
        text = ""
        if shown and not measured:
            if m == "lpips":
                if self._progress.get("score", (0, 0))[1] > 0:
                    text = "Scoring the results with LPIPS…"
                elif not s.view.compute_lpips:
                    text = ("No LPIPS for these results yet: View → Compute LPIPS scores "
                            "every result shown (in the background).")
                else:
                    text = "LPIPS is not defined for these results (image too small?)"
            else:
                text = f"No {METRIC_LABELS.get(m, m)} for these results (image too small?)"
        self.hint.setText(text)
        self.hint.setVisible(bool(text))
        if text:
            w = max(160, self.plot.width() - 40)
            self.hint.setFixedWidth(w)
            self.hint.adjustSize()
            self.hint.move((self.plot.width() - self.hint.width()) // 2,
                           max(4, (self.plot.height() - self.hint.height()) // 2))
            self.hint.raise_()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if self.hint.isVisible():
            self._update_hint()

    def _focus_range(self) -> None:
        """Show the measured points' region and every pane's point (the references run to 4+
        bpp and would squeeze this session's points into a corner); the references only when
        nothing is measured.  The axis never goes past what the metric can be (LPIPS and
        MS-SSIM in [0, 1], PSNR ≥ 0)."""
        m = self.session.view.rd_metric
        lo_b, hi_b = METRIC_BOUNDS.get(m, (None, None))
        vb = self.plot.getPlotItem().vb
        vb.setLimits(xMin=0.0, yMin=lo_b, yMax=hi_b)
        pts = [(x, y) for n, (b, q) in self.curves.items() if not is_reference(n)
               for x, y in zip(b, q)]
        pts += [(bpp, val) for _, bpp, val in self.highlight]
        if not pts:
            self.plot.enableAutoRange()
            return
        xs = [x for x, _ in pts]
        x_hi = max(0.5, 1.2 * max(xs) + 0.05)
        ys = [y for _, y in pts]
        for n, (b, q) in self.curves.items():  # references inside the shown bpp range
            if is_reference(n):
                ys += [y for x, y in zip(b, q) if x <= x_hi]
        y_lo, y_hi = min(ys), max(ys)
        pad = 0.1 * (y_hi - y_lo) if y_hi > y_lo else max(0.01 if hi_b else 0.5,
                                                            abs(y_hi) * 0.02)
        y_lo, y_hi = y_lo - pad, y_hi + pad
        if lo_b is not None:
            y_lo = max(lo_b, y_lo)
        if hi_b is not None:
            y_hi = min(hi_b, y_hi)
        if y_hi <= y_lo:
            y_hi = y_lo + (0.01 if hi_b else 1.0)
        self.plot.setXRange(0.0, x_hi, padding=0)
        self.plot.setYRange(y_lo, y_hi, padding=0)

    # ------------------------------------------------------------------ BD-rate
    def _fill_bd_combos(self) -> None:
        # measured curves first (the usual BD question), published references after
        names = sorted(self.curves, key=lambda n: (is_reference(n), is_dataset(n), n))
        want = list(self.session.view.bd_pair) if len(self.session.view.bd_pair) == 2 else []
        if not self._bd_chosen:  # until the user (or a restored session) picks a pair
            want = self._default_bd_pair(names) or want
        for combo, k in ((self.ref_combo, 0), (self.test_combo, 1)):
            cur = want[k] if want else combo.currentData()
            with signals_blocked(combo):  # clear() would write an empty BD pair to the model
                combo.clear()
                for n in names:
                    combo.addItem(display_name(n), n)
                    combo.setItemData(combo.count() - 1, n, Qt.ItemDataRole.ToolTipRole)
                i = combo.findData(cur) if cur else -1
                if i >= 0:
                    combo.setCurrentIndex(i)
                elif names:  # default: two different curves
                    combo.setCurrentIndex(min(k, len(names) - 1))
        two = len(names) >= 2
        self.ref_combo.setEnabled(two)
        self.test_combo.setEnabled(two)
        if two and self.ref_combo.currentData() == self.test_combo.currentData() \
                and not self._bd_chosen:
            with signals_blocked(self.test_combo):
                self.test_combo.setCurrentIndex(1 if self.ref_combo.currentIndex() == 0 else 0)
        ref, test = self.ref_combo.currentData(), self.test_combo.currentData()
        if ref and test and two:  # the view state holds the pair on show (saved with session)
            self._writing_pair = True
            try:
                self.session.view.bd_pair = [ref, test]
            finally:
                self._writing_pair = False

    def _on_bd_pair_change(self, event) -> None:
        if not self._writing_pair:  # set from outside (session restore): it is a choice
            self._bd_chosen = True
            self.refresh()

    def _default_bd_pair(self, names: list[str]) -> Optional[list[str]]:
        """Until the user picks a pair: the best-sampled learned curve vs the best-sampled
        JPEG curve (a swept curve beats a 2-point one), else the two best-sampled measured
        curves, else None."""
        measured = [n for n in names if not is_reference(n) and not is_dataset(n)]
        full = sorted((n for n in measured if len(self.curves[n][0]) >= 2),
                      key=lambda n: (-len(self.curves[n][0]), n))
        for pool in (full, measured):
            learned = [n for n in pool if "(" in n]  # learned curves: "(quantizer, decoder)"
            ref = next((n for n in pool if n.startswith("jpeg")), None)
            if learned and ref:
                return [ref, learned[0]]
            if len(pool) >= 2:
                return pool[:2]
        return None

    def bd_value(self) -> Optional[float]:
        ref, test = self.ref_combo.currentData(), self.test_combo.currentData()
        if not ref or not test or ref == test or ref not in self.curves \
                or test not in self.curves:
            return None
        (rb, rq), (tb, tq) = self.curves[ref], self.curves[test]
        if len(rb) < 2 or len(tb) < 2:
            return None
        q_sign = -1.0 if self.session.view.rd_metric == "lpips" else 1.0  # lower is better
        return services.bd_rate(rb, [q_sign * v for v in rq], tb, [q_sign * v for v in tq])

    def _points(self, name: str) -> str:
        n = len(self.curves.get(name, ([], []))[0])
        return f"{n} point{'s' if n != 1 else ''}"

    def _update_bd(self) -> None:
        ref, test = self.ref_combo.currentData(), self.test_combo.currentData()
        if len(self.curves) < 2:
            self.bd_label.setText("BD-rate needs two curves with ≥ 2 points each "
                                  "(Encode → Sweep fills a curve)")
            self.bd_label.setToolTip("")
            return
        if ref == test:
            self.bd_label.setText("BD-rate: choose two different curves")
            return
        v = self.bd_value()
        pts = f"{display_name(test)} ({self._points(test)}) vs {display_name(ref)} " \
              f"({self._points(ref)})"
        if v is None:
            self.bd_label.setText(f"BD-rate of {pts}: — (needs two overlapping curves with "
                                  "≥ 2 points each; Encode → Sweep fills a curve)")
        else:
            few = min(len(self.curves[ref][0]), len(self.curves[test][0])) < BD_FEW_POINTS
            self.bd_label.setText(f"BD-rate of {pts}: <b>{v:+.2f} %</b> "
                                  f"({'fewer' if v < 0 else 'more'} bits at equal quality)"
                                  + (" — few points: rough" if few else ""))
        self.bd_label.setToolTip(f"Bjøntegaard delta rate of {test or '—'} vs {ref or '—'} "
                                 "(negative = test saves bits at equal quality)")

    # ------------------------------------------------------------------ export
    def _export_legend(self, width: int) -> "RdLegend":
        """A legend laid out for ``width`` now (the on-screen one may wait for its layout)."""
        legend = RdLegend()
        legend.set_entries([(e.name, e.look) for e in self.legend.entries])
        for e in legend.entries:  # never shown: lay the entries out by hand
            e.ensurePolished()
            e.layout().activate()
        h = legend.heightForWidth(width)
        legend.resize(width, h)
        legend._place(width)
        for e in legend.entries:
            e.layout().setGeometry(e.rect())
        return legend

    def _render_figure(self, device, legend: "RdLegend", scale: float = 1.0) -> None:
        painter = QPainter(device)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.scale(scale, scale)
            QWidget.render(self.plot, painter, QPoint(0, 0))  # the widget, not the scene API
            legend.render(painter, QPoint(0, self.plot.height()))
        finally:
            painter.end()

    def export(self, path: str) -> None:
        """Write the plot *with its legend* (every curve, the dashed references included) as
        PNG (twice the on-screen size) or SVG."""
        width = self.plot.width()
        legend = self._export_legend(width)
        size = QSize(width, self.plot.height() + legend.height())
        if path.lower().endswith(".svg"):
            from PySide6.QtCore import QRect
            from PySide6.QtSvg import QSvgGenerator

            gen = QSvgGenerator()
            gen.setFileName(path)
            gen.setSize(size)
            gen.setViewBox(QRect(0, 0, size.width(), size.height()))
            gen.setTitle("LIC Studio RD plot")
            self._render_figure(gen, legend)
            return
        scale = 2.0
        img = QImage(int(size.width() * scale), int(size.height() * scale),
                     QImage.Format.Format_RGB32)
        img.fill(QColor("white"))
        self._render_figure(img, legend, scale)
        if not img.save(path, "PNG"):
            raise OSError(f"cannot write {path}")
