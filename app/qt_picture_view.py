"""A picture in a zoomable, pannable pyqtgraph view, or a line saying why there is none (Qt).

The "HiFiC vs ours" window (``app/qt_generative_demo.py``) shows its pictures, difference maps
and seed-variance map in these, linked so they zoom and pan together.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget

# pictures are H×W(×3) arrays, as in the comparison view (also when this window is used alone)
pg.setConfigOptions(imageAxisOrder="row-major")


class QtPictureView(QWidget):
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
        self.placeholder.setWordWrap(True)
        self.placeholder.setMargin(8)
        self.placeholder.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.placeholder.setStyleSheet("background: rgb(40, 40, 40); color: #eee;")
        self.placeholder.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        #: the picture, or (set_message) a line saying why there is none
        self.stack = QStackedWidget()
        self.stack.addWidget(self.glw)
        self.stack.addWidget(self.placeholder)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.stack, 1)
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.image: Optional[np.ndarray] = None

    @property
    def message(self) -> str:
        """The text shown instead of a picture ("" while the picture shows)."""
        return self.placeholder.text() if self.stack.currentIndex() == 1 else ""

    def set_message(self, text: str) -> None:
        """Show ``text`` instead of a picture (why there is none); "" shows the picture again."""
        if text:
            self.set_image(None)
        self.placeholder.setText(text)
        self.placeholder.setToolTip(text)
        self.stack.setCurrentIndex(1 if text else 0)

    def set_image(self, img: Optional[np.ndarray], levels=None) -> None:
        first = self.image is None or img is None or self.image.shape[:2] != img.shape[:2]
        self.image = img
        if img is None:
            self.item.clear()
            return
        self.stack.setCurrentIndex(0)
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

    def link_to(self, other: "QtPictureView") -> None:
        self.vb.setXLink(other.vb)
        self.vb.setYLink(other.vb)
