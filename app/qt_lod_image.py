"""A picture of the compare view at display resolution, with full-resolution detail on zoom.

:class:`LodLayer` drives two pyqtgraph ImageItems in one ViewBox: the **base** holds the whole
picture at preview resolution (``app/model/display.py``; the picture itself when it is small),
stretched over its place in image coordinates, and the **detail** holds, once the view zooms in
past the preview, the full-resolution pixels in view plus a margin.  The GUI thread only ever
copies arrays the size of the preview or of the screen: a 24 MP picture is never converted,
sliced or drawn whole (issue 28 item 3).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem

from .model import display
from .model.display import Crop

Render = Callable[[Crop], np.ndarray]
# Every array drawn here is uint8 RGB shown as it is: ``levels=None`` lets pyqtgraph wrap it in
# a QImage directly (with levels (0, 255) it rescales every value on each new array)
_TINY = np.zeros((1, 1, 3), np.uint8)


def release_item(item: pg.ImageItem) -> None:
    """Let an ImageItem drop its picture *and* the render buffers pyqtgraph keeps beside it
    (``clear()`` alone leaves the last QImage and its buffers, i.e. a picture's worth of
    memory, alive)."""
    item.setImage(_TINY, autoLevels=False, levels=None)
    item.clear()
    for name in ("qimage", "_processingBuffer", "_displayBuffer"):
        if hasattr(item, name):
            setattr(item, name, None)


class LodLayer:
    """One picture (or a rendered map, e.g. a difference) in a ViewBox; see the module doc.

    ``base`` is the caller's ImageItem (already in ``viewbox``); the detail item is added here
    with ``detail_z`` (above every base of the view, so a pane's detail is never hidden under
    a neighbour's slightly wider preview column).
    """

    def __init__(self, base: pg.ImageItem, viewbox: pg.ViewBox, detail_z: float) -> None:
        self.base = base
        self.detail = pg.ImageItem()
        self.detail.setZValue(detail_z)
        self.detail.setVisible(False)
        viewbox.addItem(self.detail)
        self._render: Optional[Render] = None
        self._shape: tuple[int, int] = (0, 0)
        self._factor = 1
        self._cols: Optional[tuple[int, int]] = None
        self._crop: Optional[Crop] = None
        self._view: Optional[tuple[tuple[float, float, float, float], float]] = None

    # ------------------------------------------------------------------ sources
    def show_picture(self, image: Optional[np.ndarray],
                     cols: Optional[tuple[int, int]] = None) -> None:
        """Show ``image`` (``H×W×3`` uint8), or only its columns ``cols = (x0, x1)``."""
        if image is None or image.size == 0:
            self.hide()
            return
        h, w = image.shape[:2]
        x0, x1 = cols if cols is not None else (0, w)
        pv = display.preview(image)
        base = image[:, x0:x1] if pv.factor == 1 else pv.columns(x0, x1)
        if base.size == 0:
            self.hide()
            return
        self._set_base(base, (x0, 0, x1 - x0, h))
        full = image
        self._source(lambda crop: crop.take(full), (h, w), pv.factor, (x0, x1))

    def show_rendered(self, shape: tuple[int, int], render: Render, coarse_step: int) -> None:
        """Show a map computed from the pictures by ``render(crop)`` (uint8 RGB): the whole
        of it sampled every ``coarse_step`` pixels, and detail on zoom."""
        arr, crop = display.sampled(render, shape, coarse_step)
        self._set_base(arr, (0, 0, arr.shape[1] * crop.step, arr.shape[0] * crop.step))
        self._source(render, shape, crop.step, None)

    def _set_base(self, arr: np.ndarray, rect: tuple[float, float, float, float]) -> None:
        self.base.setImage(arr, autoLevels=False, levels=None)
        self.base.setPos(0, 0)
        self.base.setRect(*rect)
        self.base.setVisible(True)

    def _source(self, render: Render, shape: tuple[int, int], factor: int,
                cols: Optional[tuple[int, int]]) -> None:
        self._render, self._shape, self._factor, self._cols = render, shape, factor, cols
        self._crop = None
        if self._view is not None:
            self.refresh_detail(*self._view)
        else:
            self.detail.setVisible(False)

    # ------------------------------------------------------------------ visibility, memory
    def hide(self) -> None:
        """Nothing shown (the arrays stay until :meth:`clear`)."""
        self.base.setVisible(False)
        self.detail.setVisible(False)
        self._render = None
        self._crop = None

    def clear(self) -> None:
        """Nothing shown and nothing held: the picture's memory can go."""
        self.hide()
        release_item(self.base)
        release_item(self.detail)

    @property
    def detail_crop(self) -> Optional[Crop]:
        """The crop the detail shows (None: the base alone is on screen)."""
        return self._crop if self.detail.isVisible() else None

    # ------------------------------------------------------------------ zoom
    def refresh_detail(self, view: tuple[float, float, float, float], scale: float) -> None:
        """Follow the visible rectangle ``view = (x0, y0, x1, y1)`` at ``scale`` screen pixels
        per image pixel: a new detail crop only when the step changes or the view leaves the
        current crop."""
        self._view = (view, scale)
        if self._render is None:
            self.detail.setVisible(False)
            return
        want = display.detail_crop(view, scale, self._shape, self._factor, self._cols)
        if want is None:
            self._crop = None
            self.detail.setVisible(False)
            return
        cur = self._crop
        if cur is not None and cur.step == want.step and self.detail.isVisible():
            h, w = self._shape
            c0, c1 = self._cols or (0, w)
            seen = (max(view[0], c0), max(view[1], 0), min(view[2], c1), min(view[3], h))
            if cur.covers(*seen):
                return
        arr = self._render(want)
        self._crop = want
        self.detail.setImage(arr, autoLevels=False, levels=None)
        self.detail.setPos(0, 0)
        self.detail.setRect(want.x0, want.y0, arr.shape[1] * want.step,
                            arr.shape[0] * want.step)
        self.detail.setVisible(True)


def clipped_overlay(viewbox: pg.ViewBox, z: float) -> pg.ImageItem:
    """An ImageItem for a heatmap drawn over a picture at the map's own resolution (e.g. bits
    at latent resolution), inside a parent that clips it to the picture (the map covers the
    padded image; :func:`show_overlay` sets both)."""
    clip = QGraphicsRectItem(0, 0, 0, 0)
    clip.setPen(pg.mkPen(None))
    clip.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape)
    clip.setZValue(z)
    viewbox.addItem(clip, ignoreBounds=True)
    item = pg.ImageItem()
    item.setParentItem(clip)
    item.setVisible(False)
    return item


def show_overlay(item: pg.ImageItem, rgb: np.ndarray, rect: tuple[float, float, float, float],
                 picture_size: tuple[int, int], opacity: float) -> None:
    """``rgb`` stretched over ``rect = (x, y, w, h)`` of image coordinates, clipped to the
    picture (``picture_size = (W, H)``)."""
    item.parentItem().setRect(QRectF(0, 0, *picture_size))
    item.setImage(rgb, autoLevels=False, levels=None)
    item.setPos(0, 0)
    item.setRect(*rect)
    item.setOpacity(opacity)
    item.setVisible(True)
