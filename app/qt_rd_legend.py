"""The RD plot's legend: one swatch (pen, dash, symbol) and name per series, wrapped in rows
under the plot (a legend inside the plot covers the points a narrow dock shows).

Moved out of ``qt_rd_plot.py`` so each module stays small; the plot sets the entries.
"""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QWidget

from .model.rd_style import is_reference, short_reference_name

DASH_STYLES = {"solid": Qt.PenStyle.SolidLine, "dash": Qt.PenStyle.DashLine,
               "dot": Qt.PenStyle.DotLine, "dashdot": Qt.PenStyle.DashDotLine,
               "dashdotdot": Qt.PenStyle.DashDotDotLine}


def display_name(name: str) -> str:
    """Short name of a series for choosers and the legend (the full one is the tooltip)."""
    if is_reference(name):
        return f"{short_reference_name(name)} (ref)"
    return name


class RdLegendEntry(QWidget):
    """One legend line: a swatch drawn with the series' pen and marker, and its name."""

    SWATCH = QSize(26, 12)

    def __init__(self, name: str, look, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.name = name
        self.look = look
        self.swatch = QLabel()
        self.swatch.setPixmap(self._swatch_pixmap())
        self.swatch.setFixedSize(self.SWATCH)
        self.text = QLabel(display_name(name))
        self.text.setStyleSheet("color: black;")
        font = self.text.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1.0))
        self.text.setFont(font)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(self.swatch)
        lay.addWidget(self.text)
        self.setToolTip(name)

    def _swatch_pixmap(self) -> QPixmap:
        pix = QPixmap(self.SWATCH)
        pix.fill(QColor(0, 0, 0, 0))
        p = QPainter(pix)
        try:
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            colour, dash, symbol = self.look
            pen = QPen(QColor(colour), 2.0)
            pen.setStyle(DASH_STYLES.get(dash, Qt.PenStyle.SolidLine))
            p.setPen(pen)
            y = self.SWATCH.height() // 2 + 0.5  # on a pixel row: the exact colour shows
            p.drawLine(QPointF(1, y), QPointF(self.SWATCH.width() - 1, y))
            if symbol:
                p.setPen(QPen(QColor("white"), 1))
                p.setBrush(QColor(colour))
                c = QPointF(self.SWATCH.width() / 2, y)
                r = 4.0
                if symbol == "s":
                    p.drawRect(QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r))
                elif symbol == "x":
                    p.setPen(QPen(QColor(colour), 2))
                    p.drawLine(c + QPointF(-r, -r), c + QPointF(r, r))
                    p.drawLine(c + QPointF(-r, r), c + QPointF(r, -r))
                elif symbol in ("t", "d"):
                    pts = ([c + QPointF(0, -r), c + QPointF(r, r), c + QPointF(-r, r)]
                           if symbol == "t" else
                           [c + QPointF(0, -r), c + QPointF(r, 0), c + QPointF(0, r),
                            c + QPointF(-r, 0)])
                    p.drawPolygon(QPolygonF(pts))
                else:
                    p.drawEllipse(c, r, r)
        finally:
            p.end()
        return pix


class RdLegend(QWidget):
    """The RD legend, *outside* the data area: below the plot, as many columns as fit the
    width, growing in height (never over a point or a pane's star; issue 30 item 2)."""

    HSPACE, VSPACE = 12, 1

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.entries: list[RdLegendEntry] = []
        self.setAutoFillBackground(True)
        pal = self.palette()
        pal.setColor(self.backgroundRole(), QColor("white"))
        self.setPalette(pal)
        sp = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        sp.setHeightForWidth(True)
        self.setSizePolicy(sp)

    def set_entries(self, items: list[tuple[str, tuple]]) -> None:
        for e in self.entries:
            e.setParent(None)
            e.deleteLater()
        self.entries = [RdLegendEntry(n, look, self) for n, look in items]
        for e in self.entries:
            e.show()
        self._place(self.width())
        self.updateGeometry()

    def _rows(self, width: int) -> list[list[int]]:
        """Entries packed left to right, wrapping at ``width`` (each as wide as its name)."""
        rows: list[list[int]] = [[]]
        x = 4
        for k, e in enumerate(self.entries):
            w = e.sizeHint().width()
            if rows[-1] and x + w > width - 4:
                rows.append([])
                x = 4
            rows[-1].append(k)
            x += w + self.HSPACE
        return rows if rows[0] else []

    def _row_height(self) -> int:
        return max((e.sizeHint().height() for e in self.entries), default=0)

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt override)
        if not self.entries:
            return 0
        return len(self._rows(width)) * (self._row_height() + self.VSPACE) + 6

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt override)
        return True

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        w = max(self.width(), 200)
        return QSize(w, self.heightForWidth(w))

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(100, self.heightForWidth(max(self.width(), 100)))

    def _place(self, width: int) -> None:
        row_h = self._row_height()
        for r, row in enumerate(self._rows(width)):
            x = 4
            for k in row:
                e = self.entries[k]
                w = e.sizeHint().width()
                e.setGeometry(x, 3 + r * (row_h + self.VSPACE), w, row_h)
                x += w + self.HSPACE
        h = self.heightForWidth(width)
        if self.height() != h:
            self.setFixedHeight(h)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._place(event.size().width())


class RdLegendScroll(QScrollArea):
    """The legend's frame: as tall as the legend when there is room, shorter (scrolling)
    when there is not — never over the plot, never cut."""

    def __init__(self, legend: RdLegend) -> None:
        super().__init__()
        self.setWidget(legend)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        legend.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Resize:
            self.setMaximumHeight(max(0, obj.height()))
            self.updateGeometry()
        return False

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(self.widget().sizeHint().width(), self.widget().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(100, min(self.widget().height(), 44))
