"""Live rate–distortion plot (pyqtgraph): bpp vs PSNR / MS-SSIM / LPIPS.

Every finished encoding adds its point to its codec's curve; the panes' current operating points
are highlighted; published reference curves (``load_anchors``) are dashed; the BD-rate between two
chosen curves (``lic_core.evaluation.bdrate``) updates live (GUI_FEATURES §3 item 5).
"""
from __future__ import annotations

from typing import Optional

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
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
from .model.session import PANE_NAMES, SessionModel
from .model.view_state import RD_METRICS
from .qt_compat import top_up
from .qt_signals import ModelSubscriptions, signals_blocked

METRIC_LABELS = {"psnr": "PSNR (dB)", "ms_ssim": "MS-SSIM", "lpips": "LPIPS (lower is better)"}
# Colours are a function of the series name only, so nothing changes colour when other series
# come or go (issue 14 item 5).  A codec measured here is solid and saturated; its published
# curve, when there is one, is the same hue, light and dashed; other references are muted.
CODEC_COLORS = {"jpeg": "#1f77b4", "jpeg-444": "#17becf", "webp": "#2ca02c",
                "avif": "#9467bd", "jxl": "#8c564b", "j2k": "#e377c2"}
_LEARNED_PALETTE = ["#d62728", "#ff7f0e", "#bcbd22", "#7f7f7f"]
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#e377c2",
            "#8c564b", "#bcbd22", "#7f7f7f"]
REFERENCE_COLORS = (("JPEG 2000", "#f0a8d8"), ("JPEG (", "#8fb8de"), ("WebP", "#98d098"),
                    ("AV1", "#c5b0d5"))
_REF_PALETTE = ["#8c8c8c", "#b39270", "#a3a34d", "#6e6e6e", "#c49a9a", "#7a9a9a", "#9a7ab0",
                "#b0b070", "#a08060", "#707090", "#909070", "#b07070"]
FEW_REFERENCES = ("JPEG (", "WebP", "BPG", "VVC", "ELIC")
PANE_COLORS = ["#ffcc00", "#00d0ff", "#ff5ad2"]
Z_REFERENCE, Z_MEASURED, Z_OPERATING = -10, 10, 20
_QUANTIZER_SYMBOLS = {"round": "o", "deadzone": "s", "rdoq": "t", "tcq": "d"}


def _small_combo(tip: str, chars: int = 12) -> QComboBox:
    """A combo that never asks for the width of its longest item (long anchor names would
    otherwise widen the dock and the window; the full name is in the popup and tooltip)."""
    c = QComboBox()
    c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    c.setMinimumContentsLength(chars)
    c.setToolTip(tip)
    return c


def _family(name: str) -> str:
    try:
        from lic_core.codecs import get_codec

        return get_codec(name).family
    except Exception:  # a codec that cannot even be built is not plotted
        return ""


def _short_ref_name(name: str) -> str:
    """``[ref Kodak avg] VVC VTM intra 4:4:4 (CompressAI)`` → ``VVC VTM intra 4:4:4``."""
    base = name.split("] ", 1)[-1]
    return base.split(" (", 1)[0]


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
        self.metric_combo = _small_combo("Quality axis (LPIPS needs View → Compute LPIPS)", 6)
        self.metric_combo.addItems(list(RD_METRICS))
        self.ref_combo = _small_combo("BD-rate reference curve")
        self.test_combo = _small_combo("BD-rate test curve")
        self.ref_set_combo = _small_combo("Published Kodak-average curves drawn dashed "
                                          "(shipped with lic_core; few = JPEG, WebP, BPG, VTM, ELIC)",
                                          10)
        self.ref_set_combo.addItems(["few references", "all references", "no references"])
        self.refs_note = QLabel("")
        self.refs_note.setWordWrap(True)
        self.refs_note.setToolTip("Published rate–distortion curves averaged over Kodak "
                                  "(shipped with lic_core, with their sources)")
        self.refs_note.hide()
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
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")  # readable in papers and on dark and light desktops
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setLabel("bottom", "bits per pixel")
        self.plot.setMinimumSize(200, 150)
        self.legend = self.plot.addLegend(offset=(-6, -6), labelTextColor="k",
                                          brush=pg.mkBrush(255, 255, 255, 210),
                                          pen=pg.mkPen(200, 200, 200), verSpacing=-6,
                                          labelTextSize="8pt")
        for ax in ("bottom", "left"):
            a = self.plot.getAxis(ax)
            a.enableAutoSIPrefix(False)
            a.setPen("k")
            a.setTextPen("k")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.refs_note)
        lay.addWidget(self.sweep_row)
        lay.addLayout(bd_row)
        lay.addWidget(self.bd_label)
        self.anchors = services.load_anchor_curves()
        self.curves: dict[str, tuple[list[float], list[float]]] = {}
        self.highlight: list[tuple[int, float, float]] = []
        #: colour per series, fixed at first sight: a series keeps its colour whatever else is
        #: drawn (issue 14 item 5); references by their rank among all published curves
        self._colors: dict[str, str] = {}
        self._ref_rank = {name: k for k, name in enumerate(sorted(self.anchors))}
        names = services.codec_names()
        self._codec_rank = {name: k for k, name in enumerate(names)}
        # the available learned codecs first: the one a user has gets the first colour (red)
        learned = sorted((n for n in names if _family(n) == "learned"),
                         key=lambda n: (not services.codec_availability(n)[0], n))
        self._learned_rank = {name: k for k, name in enumerate(learned)}
        self.items: dict[str, pg.PlotDataItem] = {}
        self._bd_chosen = False
        self._writing_pair = False
        self._subs = ModelSubscriptions(self)
        self._subs.connect(session.view.events.bd_pair, self._on_bd_pair_change)
        self.ref_set_combo.currentIndexChanged.connect(lambda i: self.refresh())
        self.metric_combo.currentTextChanged.connect(
            lambda t: setattr(session.view, "rd_metric", t))
        self.ref_combo.currentTextChanged.connect(self._on_bd_edit)
        self.test_combo.currentTextChanged.connect(self._on_bd_edit)
        self._subs.connect(session.view.events.rd_metric, self._on_metric_change)
        self._subs.connect(session.events.history, lambda e: self.refresh())
        for p in session.panes:
            self._subs.connect(p.events.encoding, lambda e: self.refresh())
        self._subs.connect(session.view.events.n_panes, lambda e: self.refresh())
        self.refresh()

    def _on_metric_change(self, event) -> None:
        self.metric_combo.setCurrentText(event.value)  # its echo is an equal write: ignored
        self.refresh()

    def _on_bd_edit(self, *_) -> None:
        ref, test = self.ref_combo.currentText(), self.test_combo.currentText()
        if ref and test:
            self._bd_chosen = True  # the user's pair stays, whatever curves come and go
            self._writing_pair = True
            try:
                self.session.view.bd_pair = [ref, test]
            finally:
                self._writing_pair = False
        self._update_bd()

    def all_curves(self) -> dict[str, tuple[list[float], list[float], bool]]:
        """``{name: (bpp, values, is_anchor)}`` for the current metric."""
        m = self.session.view.rd_metric
        out = {k: (b, q, False) for k, (b, q) in self.session.rd_curves(m).items()}
        mode = self.ref_set_combo.currentIndex()
        for name, c in self.anchors.items():
            if mode == 2 or (mode == 0 and not any(k in name for k in FEW_REFERENCES)):
                continue
            if m in c and len(c[m]) == len(c["bpp"]):
                out[f"[ref Kodak avg] {name}"] = (c["bpp"], c[m], True)
        return out

    def series_color(self, name: str) -> str:
        """The colour of a series, a function of its name only (issue 14 item 5): a codec by
        its rank in the registry, a reference by its rank among all published curves, so no
        series changes colour when others come or go."""
        if name not in self._colors:
            if name.startswith("[ref"):
                base = name.split("] ", 1)[-1]
                match = [c for key, c in REFERENCE_COLORS if base.startswith(key)]
                k = self._ref_rank.get(base, len(self._ref_rank) + len(self._colors))
                self._colors[name] = match[0] if match else _REF_PALETTE[k % len(_REF_PALETTE)]
            else:
                base = name.split(" (", 1)[0]
                if base in CODEC_COLORS:
                    self._colors[name] = CODEC_COLORS[base]
                elif base in self._learned_rank:
                    k = self._learned_rank[base]
                    self._colors[name] = _LEARNED_PALETTE[k % len(_LEARNED_PALETTE)]
                else:
                    k = self._codec_rank.get(base, len(self._codec_rank))
                    self._colors[name] = _PALETTE[k % len(_PALETTE)]
        return self._colors[name]

    @staticmethod
    def series_symbol(name: str) -> str:
        """Learned curves of one codec share its colour; the quantizer picks the marker."""
        inside = name.split(" (", 1)[1] if " (" in name else ""
        quantizer = inside.split(",", 1)[0]
        return _QUANTIZER_SYMBOLS.get(quantizer, "o")

    def set_background_progress(self, done: int, total: int) -> None:
        """Sweep progress from the controller: a bar while background encodes run."""
        self.sweep_row.setVisible(total > 0)
        if total > 0:
            self.sweep_bar.setRange(0, total)
            self.sweep_bar.setValue(done)

    def refresh(self) -> None:
        top_up()  # item churn below drains None/True refcounts on PySide6 6.12 (qt_compat)
        m = self.session.view.rd_metric
        self.plot.clear()
        self.legend.clear()
        self.items = {}
        self.plot.setLabel("left", METRIC_LABELS.get(m, m))
        curves = self.all_curves()
        self.curves = {k: (b, q) for k, (b, q, _a) in curves.items()}
        many_refs = sum(1 for _, _, a in curves.values() if a) > len(FEW_REFERENCES)
        # measured curves first (legend order and colour assignment), references after
        for name, (b, q, anchor) in sorted(curves.items(), key=lambda kv: (kv[1][2], kv[0])):
            color = self.series_color(name)
            if anchor:
                pen = pg.mkPen(color, width=1.2, style=Qt.PenStyle.DashLine)
                # short names in the legend; with every reference drawn the legend would cover
                # the plot, so then they are named by hovering only
                # named below the plot, not in the legend: the legend stays small and off the
                # measured points
                item = self.plot.plot(b, q, pen=pen)
                item.setZValue(Z_REFERENCE)
            else:
                item = self.plot.plot(b, q, pen=pg.mkPen(color, width=2.5),
                                      symbol=self.series_symbol(name),
                                      symbolSize=7, symbolBrush=color, symbolPen=pg.mkPen("w"),
                                      name=name)
                item.setZValue(Z_MEASURED)
            item.curve.setToolTip(name)
            self.items[name] = item
        refs = sorted(n for n, (_, _, a) in curves.items() if a)
        if many_refs:
            self.refs_note.setText(f"dashed: {len(refs)} published Kodak averages — hover a "
                                   "curve for its name")
        elif refs:
            self.refs_note.setText("dashed (published Kodak averages): " + " · ".join(
                f"<span style='color:{self.series_color(n)}'>■</span> {_short_ref_name(n)}"
                for n in refs))
        self.refs_note.setVisible(bool(refs))
        self.legend.setVisible(any(not a for _, _, a in curves.values()))
        self.highlight = self.session.operating_points(m)
        for idx, bpp, val in self.highlight:
            star = self.plot.plot([bpp], [val], pen=None, symbol="star", symbolSize=18,
                                  symbolBrush=PANE_COLORS[idx], symbolPen=pg.mkPen("k"))
            star.setZValue(Z_OPERATING)
            t = pg.TextItem(PANE_NAMES[idx], color="k", anchor=(0, 1))
            t.setPos(bpp, val)
            t.setZValue(Z_OPERATING)
            self.plot.addItem(t)
        self._focus_range()
        self._fill_bd_combos()
        self._update_bd()

    def _focus_range(self) -> None:
        """Show the measured points' region (the references run to 4+ bpp and would squeeze
        this session's points into a corner); the references only when nothing is measured."""
        measured = [(b, q) for n, (b, q) in self.curves.items() if not n.startswith("[ref")]
        if not measured:
            self.plot.enableAutoRange()
            return
        xs = [x for b, _ in measured for x in b]
        x_hi = max(0.5, 1.6 * max(xs))
        ys = [y for _, q in measured for y in q]
        for n, (b, q) in self.curves.items():  # references inside the shown bpp range
            if n.startswith("[ref"):
                ys += [y for x, y in zip(b, q) if x <= x_hi]
        y_lo, y_hi = min(ys), max(ys)
        pad = 0.06 * (y_hi - y_lo) if y_hi > y_lo else max(0.5, abs(y_hi) * 0.02)
        self.plot.setXRange(0.0, x_hi, padding=0)
        self.plot.setYRange(y_lo - pad, y_hi + pad, padding=0)

    def _fill_bd_combos(self) -> None:
        # measured curves first (the usual BD question), published references after
        names = sorted(self.curves, key=lambda n: (n.startswith("[ref"), n))
        want = list(self.session.view.bd_pair) if len(self.session.view.bd_pair) == 2 else []
        if not self._bd_chosen:  # until the user (or a restored session) picks a pair
            want = self._default_bd_pair(names) or want
        for combo, k in ((self.ref_combo, 0), (self.test_combo, 1)):
            cur = want[k] if want else combo.currentText()
            with signals_blocked(combo):  # clear() would write an empty BD pair to the model
                combo.clear()
                combo.addItems(names)
                if cur in names:
                    combo.setCurrentText(cur)
                elif names:  # default: two different curves
                    combo.setCurrentIndex(min(k, len(names) - 1))
        ref, test = self.ref_combo.currentText(), self.test_combo.currentText()
        if ref and test:  # the view state holds the pair on show (saved with the session)
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
        """Until the user picks a pair: a learned curve vs JPEG (else the first two measured
        curves with ≥ 2 points, else the first two curves)."""
        measured = [n for n in names if not n.startswith("[ref")]
        full = [n for n in measured if len(self.curves[n][0]) >= 2]
        for pool in (full, measured):
            learned = [n for n in pool if "(" in n]  # learned curves: "(quantizer, decoder)"
            ref = next((n for n in pool if n.startswith("jpeg")), None)
            if learned and ref:
                return [ref, learned[0]]
            if len(pool) >= 2:
                return pool[:2]
        return None

    def bd_value(self) -> Optional[float]:
        ref, test = self.ref_combo.currentText(), self.test_combo.currentText()
        if not ref or not test or ref == test or ref not in self.curves \
                or test not in self.curves:
            return None
        (rb, rq), (tb, tq) = self.curves[ref], self.curves[test]
        if len(rb) < 2 or len(tb) < 2:
            return None
        q_sign = -1.0 if self.session.view.rd_metric == "lpips" else 1.0  # lower is better
        return services.bd_rate(rb, [q_sign * v for v in rq], tb, [q_sign * v for v in tq])

    def _update_bd(self) -> None:
        v = self.bd_value()
        ref, test = self.ref_combo.currentText(), self.test_combo.currentText()
        if v is None:
            self.bd_label.setText("BD-rate: — (pick two overlapping curves with ≥ 2 points "
                                  "each; Encode → Sweep fills a curve)")
        else:
            self.bd_label.setText(f"BD-rate of test vs reference: <b>{v:+.2f} %</b> "
                                  f"({'fewer' if v < 0 else 'more'} bits at equal quality)")
        self.bd_label.setToolTip(f"Bjøntegaard delta rate of {test or '—'} vs {ref or '—'} "
                                 "(negative = test saves bits at equal quality)")

    def _export_svg_qt(self, path: str) -> None:
        from PySide6.QtCore import QRect, QSize
        from PySide6.QtGui import QPainter
        from PySide6.QtSvg import QSvgGenerator

        size = self.plot.size()
        gen = QSvgGenerator()
        gen.setFileName(path)
        gen.setSize(QSize(size.width(), size.height()))
        gen.setViewBox(QRect(0, 0, size.width(), size.height()))
        gen.setTitle("LIC Studio RD plot")
        painter = QPainter(gen)
        try:
            self.plot.render(painter)
        finally:
            painter.end()

    def export(self, path: str) -> None:
        """Write the plot as PNG or SVG (pyqtgraph exporters)."""
        import pyqtgraph.exporters as ex

        item = self.plot.getPlotItem()
        if path.lower().endswith(".svg"):
            try:
                ex.SVGExporter(item).export(path)
            except ValueError:
                # pyqtgraph 0.14's SVG post-processing trips on Qt ≥ 6.9 path syntax: render the
                # widget through Qt's own SVG generator instead (same vector content)
                self._export_svg_qt(path)
        else:
            e = ex.ImageExporter(item)
            e.parameters()["width"] = 1000
            e.export(path)
