"""Live rate–distortion plot (pyqtgraph): bpp vs PSNR / MS-SSIM / LPIPS.

Every finished encoding adds its point to its codec's curve; the panes' current operating points
are highlighted; published reference curves (``load_anchors``) are dashed; the BD-rate between two
chosen curves (``lic_core.evaluation.bdrate``) updates live (GUI_FEATURES §3 item 5).
"""
from __future__ import annotations

from typing import Optional

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .model import services
from .model.session import PANE_NAMES, SessionModel
from .model.view_state import RD_METRICS
from .qt_compat import top_up
from .qt_signals import ModelSubscriptions, signals_blocked

METRIC_LABELS = {"psnr": "PSNR (dB)", "ms_ssim": "MS-SSIM", "lpips": "LPIPS (lower is better)"}
_PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
            "#8c8c8c", "#ccb974", "#64b5cd"]
FEW_REFERENCES = ("JPEG (", "WebP", "BPG", "VVC", "ELIC")
PANE_COLORS = ["#ffcc00", "#00d0ff", "#ff5ad2"]


class QtRDPlot(QWidget):
    """RD plot widget bound to a session."""

    def __init__(self, session: SessionModel, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.session = session
        self.metric_combo = QComboBox()
        self.metric_combo.addItems(list(RD_METRICS))
        self.metric_combo.setToolTip("Quality axis (LPIPS needs View → Compute LPIPS)")
        self.ref_combo = QComboBox()
        self.ref_combo.setToolTip("BD-rate reference curve")
        self.test_combo = QComboBox()
        self.test_combo.setToolTip("BD-rate test curve")
        self.ref_set_combo = QComboBox()
        self.ref_set_combo.addItems(["few references", "all references", "no references"])
        self.ref_set_combo.setToolTip("Published Kodak-average curves drawn dashed "
                                      "(shipped with lic_core; few = JPEG, WebP, BPG, VTM, ELIC)")
        self.bd_label = QLabel("BD-rate: —")
        self.bd_label.setToolTip("Bjøntegaard delta rate of test vs reference "
                                 "(negative = test saves bits at equal quality)")
        top = QHBoxLayout()
        top.addWidget(QLabel("Y:"))
        top.addWidget(self.metric_combo)
        top.addWidget(self.ref_set_combo)
        top.addWidget(QLabel("BD ref"))
        top.addWidget(self.ref_combo, 1)
        top.addWidget(QLabel("test"))
        top.addWidget(self.test_combo, 1)
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")  # readable in papers and on dark and light desktops
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setLabel("bottom", "bits per pixel")
        self.plot.addLegend(offset=(-10, -10), labelTextColor="k")
        for ax in ("bottom", "left"):
            a = self.plot.getAxis(ax)
            a.enableAutoSIPrefix(False)
            a.setPen("k")
            a.setTextPen("k")
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.bd_label)
        self.anchors = services.load_anchor_curves()
        self.curves: dict[str, tuple[list[float], list[float]]] = {}
        self.highlight: list[tuple[int, float, float]] = []
        self.ref_set_combo.currentIndexChanged.connect(lambda i: self.refresh())
        self.metric_combo.currentTextChanged.connect(
            lambda t: setattr(session.view, "rd_metric", t))
        self.ref_combo.currentTextChanged.connect(self._on_bd_edit)
        self.test_combo.currentTextChanged.connect(self._on_bd_edit)
        self._subs = ModelSubscriptions(self)
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
            self.session.view.bd_pair = [ref, test]
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

    def refresh(self) -> None:
        top_up()  # item churn below drains None/True refcounts on PySide6 6.12 (qt_compat)
        m = self.session.view.rd_metric
        self.plot.clear()
        self.plot.setLabel("left", METRIC_LABELS.get(m, m))
        curves = self.all_curves()
        self.curves = {k: (b, q) for k, (b, q, _a) in curves.items()}
        for k, (name, (b, q, anchor)) in enumerate(sorted(curves.items())):
            color = _PALETTE[k % len(_PALETTE)]
            if anchor:
                pen = pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine)
                self.plot.plot(b, q, pen=pen, name=name)
            else:
                self.plot.plot(b, q, pen=pg.mkPen(color, width=2), symbol="o", symbolSize=6,
                               symbolBrush=color, symbolPen=None, name=name)
        self.highlight = self.session.operating_points(m)
        for idx, bpp, val in self.highlight:
            self.plot.plot([bpp], [val], pen=None, symbol="star", symbolSize=18,
                           symbolBrush=PANE_COLORS[idx], symbolPen=pg.mkPen("k"))
            t = pg.TextItem(PANE_NAMES[idx], color="k", anchor=(0, 1))
            t.setPos(bpp, val)
            self.plot.addItem(t)
        self._fill_bd_combos()
        self._update_bd()

    def _fill_bd_combos(self) -> None:
        # measured curves first (the usual BD question), published references after
        names = sorted(self.curves, key=lambda n: (n.startswith("[ref"), n))
        want = list(self.session.view.bd_pair) if len(self.session.view.bd_pair) == 2 else []
        for combo, k in ((self.ref_combo, 0), (self.test_combo, 1)):
            cur = combo.currentText() or (want[k] if want else "")
            with signals_blocked(combo):  # clear() would write an empty BD pair to the model
                combo.clear()
                combo.addItems(names)
                if cur in names:
                    combo.setCurrentText(cur)
                elif names:  # default: two different curves
                    combo.setCurrentIndex(min(k, len(names) - 1))

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
            self.bd_label.setText("BD-rate: — (pick two overlapping curves with ≥ 2 points each; "
                                  "Encode → Sweep fills a curve)")
        else:
            self.bd_label.setText(f"BD-rate of <b>{test}</b> vs <b>{ref}</b>: <b>{v:+.2f} %</b>")

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
