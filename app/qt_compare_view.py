"""The compare view: split (Squoosh divider), side by side, A/B flicker, difference, overlays.

Up to three pyqtgraph ViewBoxes with linked X/Y ranges share one zoom/pan (GUI_FEATURES §2.3:
napari#5348 linked canvases via ``setXLink/setYLink``).  The view only reads the session model and
writes user intent (divider position, visible rectangle) back into ``session.view``.

Pictures are drawn at display resolution with full-resolution detail on zoom
(``app/qt_lod_image.py``), and heatmap overlays at latent resolution, stretched: the GUI thread
never converts, slices or differences a big picture whole (issue 28 item 3).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QGraphicsRectItem,
    QLabel,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from .model import display, inspect_jobs, inspect_maps
from .model.encoding import codec_family, metrics_line
from .model.session import PANE_NAMES, SessionModel
from .qt_compare_chrome import build_banner, build_placeholder
from .qt_lod_image import LodLayer, clipped_overlay, release_item, show_overlay
from .qt_signals import ModelSubscriptions, signals_blocked

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

#: screen pixels per image pixel above which values are drawn next to the cursor
PIXEL_TEXT_ZOOM = 12.0


class QtCompareView(QWidget):
    """Linked image panes over the session's original and pane reconstructions.

    Signals
    -------
    pixel_info(str) : readout of the pixel under the cursor (status bar).
    open_requested(), sample_requested() : the empty view's buttons.
    compare_requested() : "Compare against original…" for a decoded file.
    """

    pixel_info = Signal(str)
    open_requested = Signal()
    sample_requested = Signal()
    compare_requested = Signal()

    def __init__(self, session: SessionModel, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.session = session
        self.view = session.view
        self._subs = ModelSubscriptions(self)
        self._syncing = False
        self._full_captions = False
        self.export_captions: list[str] = []
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(pg.mkColor(40, 40, 40))  # neutral surround (codec-compare)
        self.glw.setToolTip("Wheel: zoom · drag: pan · 1: 1:1 · 0: fit · F/Space: flicker")
        self.placeholder = build_placeholder(self)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.glw)
        self.banner = build_banner(self)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.stack, 1)
        lay.addWidget(self.banner)

        self.viewboxes: list[pg.ViewBox] = []
        #: captions drawn over the image as widgets, so they never scale with zoom or layout
        self.labels: list[QLabel] = []
        self.overlays: list[pg.ImageItem] = []
        for i in range(3):
            vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
            vb.setDefaultPadding(0.0)
            self.viewboxes.append(vb)
            self.overlays.append(clipped_overlay(vb, 20))  # latent resolution, stretched
            lab = QLabel(self.glw.viewport())
            lab.setObjectName(f"caption{i}")
            lab.setStyleSheet("QLabel { background: rgba(0, 0, 0, 165); color: white; "
                              "padding: 2px 6px; border-radius: 3px; }")
            lab.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            lab.hide()
            self.labels.append(lab)
            vb.sigResized.connect(lambda *_: self._place_labels())
            if i:
                vb.setXLink(self.viewboxes[0])
                vb.setYLink(self.viewboxes[0])
        vb0 = self.viewboxes[0]
        # pane images inside viewbox 0 (split / flicker) and one per extra viewbox (side mode)
        self.split_items = [pg.ImageItem() for _ in range(3)]
        for k, it in enumerate(self.split_items):
            it.setZValue(k)
            vb0.addItem(it)
        self.side_items = [self.split_items[0]] + [pg.ImageItem() for _ in range(2)]
        self.viewboxes[1].addItem(self.side_items[1])
        self.viewboxes[2].addItem(self.side_items[2])
        self.diff_item = pg.ImageItem()
        self.diff_item.setZValue(10)
        vb0.addItem(self.diff_item)
        #: each picture item at display resolution, with its full-resolution detail on zoom
        self.layers = {id(it): LodLayer(it, vb0, 5 + k) for k, it in enumerate(self.split_items)}
        for vb, it in zip(self.viewboxes[1:], self.side_items[1:]):
            self.layers[id(it)] = LodLayer(it, vb, 5)
        self.diff_layer = LodLayer(self.diff_item, vb0, 15)
        # a new detail crop once the zoom or pan has settled, not at every wheel step
        self._detail_timer = QTimer(self)
        self._detail_timer.setSingleShot(True)
        self._detail_timer.setInterval(40)
        self._detail_timer.timeout.connect(self.refresh_details)
        self.dividers = []
        for k in range(2):
            line = pg.InfiniteLine(angle=90, movable=True,
                                   pen=pg.mkPen((255, 255, 255), width=2),
                                   hoverPen=pg.mkPen((255, 200, 0), width=3))
            line.setZValue(25)
            line.setToolTip("Drag to move the split between panes")
            line.sigPositionChanged.connect(lambda ln, k=k: self._on_divider_drag(k, ln))
            vb0.addItem(line, ignoreBounds=True)
            self.dividers.append(line)
        #: the artifact finder's current tile, outlined in every pane (view.artifact_rect)
        self.artifact_boxes = []
        for vb in self.viewboxes:
            box = QGraphicsRectItem(0, 0, 1, 1)
            pen = pg.mkPen((255, 60, 60), width=2)
            pen.setCosmetic(True)
            box.setPen(pen)
            box.setZValue(30)
            box.setVisible(False)
            vb.addItem(box, ignoreBounds=True)
            self.artifact_boxes.append(box)
        self.pixel_text = pg.TextItem("", anchor=(0, 1), color=(255, 255, 255),
                                      fill=(0, 0, 0, 180))
        self.pixel_text.setZValue(40)
        self.pixel_text.setVisible(False)
        vb0.addItem(self.pixel_text, ignoreBounds=True)

        vb0.sigRangeChanged.connect(self._on_range_changed)
        self.glw.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.glw.viewport().installEventFilter(self)  # leaving the picture clears the readout

        v = self.view
        for name in ("compare_mode", "n_panes", "diff_mode", "diff_gain", "colormap",
                     "flicker_index"):
            self._subs.connect(getattr(v.events, name), self._on_layout_change)
        for name in ("split_pos", "split_pos2"):
            self._subs.connect(getattr(v.events, name), self._on_split_change)
        for name in ("overlay", "overlay_opacity", "overlay_pane", "colormap"):
            self._subs.connect(getattr(v.events, name), self._on_overlay_change)
        self._subs.connect(v.events.view_rect, self._on_view_rect_change)
        self._subs.connect(v.events.artifact_rect, self._on_artifact_change)
        self._subs.connect(session.events.image, self._on_image_change)
        self._subs.connect(session.events.decoded, self._on_image_change)
        for p in session.panes:
            self._subs.connect(p.events.encoding, self._on_encoding_change)
            self._subs.connect(p.events.busy, self._on_encoding_change)
        self._relayout()
        self._update_empty_state()

    # ------------------------------------------------------------------ empty / decoded states
    def _update_empty_state(self) -> None:
        s = self.session
        has_picture = s.image is not None or s.decoded is not None
        self.stack.setCurrentWidget(self.glw if has_picture else self.placeholder)
        decoded_only = s.image is None and s.decoded is not None
        if decoded_only:
            self.banner_text.setText(
                f"<b>{s.decoded.name}</b> is shown as decoded. It has no original here, so "
                "nothing is scored or re-encoded.")
        self.banner.setVisible(decoded_only)

    def shown_shape(self) -> Optional[tuple[int, int]]:
        """(H, W) of the picture in view: the original, else the decoded file."""
        s = self.session
        img = s.image if s.image is not None else (s.decoded.reconstruction if s.decoded
                                                   else None)
        return None if img is None else img.shape[:2]

    # ------------------------------------------------------------------ data
    def pane_image(self, index: int) -> Optional[np.ndarray]:
        """What pane ``index`` shows: its reconstruction, else the original."""
        enc = self.session.panes[index].encoding
        return enc.reconstruction if enc is not None else self.session.image

    def _diff_pair(self) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """The two pictures the current diff mode compares (None when off or no data)."""
        mode = self.view.diff_mode
        s = self.session
        if mode == "off" or s.image is None:
            return None
        a = self.pane_image(0)
        b = {"a-b": self.pane_image(1), "a-orig": s.image}.get(mode)
        if mode == "b-orig":
            a, b = self.pane_image(1), s.image
        if a is None or b is None or a.shape != b.shape:
            return None
        return a, b

    def displayed_diff(self) -> Optional[np.ndarray]:
        """Float difference image for the current diff mode at full resolution (None when
        off or no data); the view itself draws it from samples (:meth:`_show_diff`)."""
        pair = self._diff_pair()
        return None if pair is None else inspect_maps.diff_values(*pair, self.view.diff_gain)

    def _show_diff(self, a: np.ndarray, b: np.ndarray) -> None:
        """|a − b| × gain, coloured: the whole picture sampled at about a megapixel and the
        exact pixels in view on zoom (the difference of samples is the sample of the
        difference)."""
        gain, cmap = self.view.diff_gain, self.view.colormap

        def render(crop: display.Crop) -> np.ndarray:
            d = inspect_maps.diff_values(crop.take(a), crop.take(b), gain)
            return inspect_maps.colorize(d, cmap, 0.0, 255.0)

        shape = a.shape[:2]
        self.diff_layer.show_rendered(shape, render,
                                      display.coarse_step(shape, display.preview_factor(*shape)))

    # ------------------------------------------------------------------ layout
    def _visible_boxes(self) -> int:
        return self.view.n_panes if (self.view.compare_mode == "side"
                                     and self.view.diff_mode == "off") else 1

    def _relayout(self) -> None:
        ci = self.glw.ci
        n = self._visible_boxes()
        current = [vb for vb in self.viewboxes if vb.scene() is not None and vb in ci.items]
        if len(current) != n:
            for vb in current:
                ci.removeItem(vb)
            for i in range(n):
                ci.addItem(self.viewboxes[i], row=0, col=i)
        self._refresh_images()
        self._on_overlay_change()

    def _on_layout_change(self, event=None) -> None:
        self._relayout()

    def _on_image_change(self, event=None) -> None:
        self.leave_image()  # the readout belonged to the previous picture
        self._update_empty_state()
        self._refresh_images()
        self._on_overlay_change()
        self.fit()

    def _on_encoding_change(self, event=None) -> None:
        self._refresh_images()
        self._on_overlay_change()

    def _set(self, item: pg.ImageItem, img: Optional[np.ndarray],
             cols: Optional[tuple[int, int]] = None) -> None:
        """Show ``img`` (or its columns ``cols``) in ``item`` at display resolution."""
        self.layers[id(item)].show_picture(img, cols)

    def _all_layers(self) -> list[LodLayer]:
        return list(self.layers.values()) + [self.diff_layer]

    def refresh_details(self) -> None:
        """Full-resolution crops of what is in view, where the zoom asks for them."""
        for k, vb in enumerate(self.viewboxes):
            r = vb.viewRect()
            scale = vb.width() / r.width() if r.width() > 0 else 0.0
            view = (r.left(), r.top(), r.right(), r.bottom())
            items = self.split_items if k == 0 else [self.side_items[k]]
            for it in items:
                self.layers[id(it)].refresh_detail(view, scale)
            if k == 0:
                self.diff_layer.refresh_detail(view, scale)

    def _refresh_images(self) -> None:
        s, v = self.session, self.view
        n = v.n_panes
        for layer in self._all_layers():
            layer.hide()
        for d in self.dividers:
            d.setVisible(False)
        self._captions: list[tuple[int, str, str]] = []  # (label, text, placement)
        if s.image is None and s.decoded is None:  # closed: hold none of its pictures
            for layer in self._all_layers():
                layer.clear()
        if s.image is None:
            if s.decoded is not None:  # a decoded file on its own: shown, never scored
                self._set(self.split_items[0], s.decoded.reconstruction)
                self._captions.append((0, s.decoded.caption() + "\nno original: nothing scored",
                                       "left"))
            self._place_labels()
            return
        h, w = s.image.shape[:2]
        pair = self._diff_pair()
        if pair is not None:
            self._show_diff(*pair)
            names = {"a-b": "|A − B|", "a-orig": "|A − original|", "b-orig": "|B − original|"}
            self._captions.append((0, f"{names[v.diff_mode]} × {v.diff_gain:g}", "left"))
        elif v.compare_mode == "split":
            cuts = [0, int(round(v.split_pos * w))]
            if n == 3:
                cuts.append(int(round(v.split_pos2 * w)))
            cuts.append(w)
            for i in range(n):
                x0, x1 = cuts[i], max(cuts[i], cuts[i + 1])
                self._set(self.split_items[i], self.pane_image(i), (x0, x1))
                where = "right" if i == n - 1 else "left"
                self._captions.append((i, self._pane_caption(i), f"{where}:{x0}:{x1}"))
            for k in range(n - 1):
                d = self.dividers[k]
                d.setVisible(True)
                with signals_blocked(d):  # a pixel-rounded cut must not rewrite split_pos
                    d.setValue(cuts[k + 1])
        elif v.compare_mode == "flicker":
            i = v.flicker_index % n
            self._set(self.split_items[0], self.pane_image(i))
            self._captions.append((0, self._pane_caption(i) + "  (F / Space: flip)", "left"))
        else:  # side by side
            for i in range(n):
                self._set(self.side_items[i], self.pane_image(i))
                self._captions.append((i, self._pane_caption(i), "box"))
        self._place_labels()
        self._detail_timer.start()

    def _pane_caption(self, i: int) -> str:
        """Two short lines, so the numbers stay visible in a narrow pane (three with every
        metric and the quantizer/decoder while the view is exported)."""
        p = self.session.panes[i]
        e = p.encoding
        if e is None:
            return f"{p.name} · {'encoding…' if p.busy else 'original'}"
        ps = e.metrics.get("psnr")
        what = e.codec
        if e.key.startswith("file:") and self.session.decoded is not None:
            what = f"{self.session.decoded.name} ({e.codec})"  # the opened file, not an encode
        elif self._full_captions and codec_family(e.codec) == "learned":
            what = f"{e.codec} ({e.params.quantizer}, {e.params.decoder})"
        text = f"{p.name} · {what}\n{e.bpp:.3f} bpp" + (f" · {ps:.2f} dB" if ps else "")
        if self._full_captions:
            line, _ = metrics_line(e, self.session.image)
            rest = " · ".join(part for part in line.split(" · ") if not part.endswith("dB"))
            if rest:
                text += "\n" + rest
        return text

    def _box_rect(self, vb: pg.ViewBox, x0: Optional[float] = None,
                  x1: Optional[float] = None) -> QRectF:
        """Viewport rectangle of a viewbox, or of image columns x0..x1 inside it (clipped)."""
        box = self.glw.mapFromScene(vb.sceneBoundingRect()).boundingRect()
        rect = QRectF(box)
        if x0 is not None and x1 is not None:
            a = self.glw.mapFromScene(vb.mapViewToScene(QPointF(x0, 0))).x()
            b = self.glw.mapFromScene(vb.mapViewToScene(QPointF(x1, 0))).x()
            rect = QRectF(max(a, box.left()), box.top(),
                          max(0.0, min(b, box.right()) - max(a, box.left())), box.height())
        return rect

    def _place_labels(self) -> None:
        """Put each caption in the top corner of what it describes, elided to fit its pane."""
        captions = getattr(self, "_captions", [])
        used = set()
        placed: list[QRectF] = []
        for idx, text, where in captions:
            lab = self.labels[idx]
            used.add(idx)
            kind, *cols = where.split(":")
            vb = self.viewboxes[idx if kind == "box" else 0]
            rect = self._box_rect(vb, *(float(c) for c in cols)) if cols else self._box_rect(vb)
            if rect.width() < 24:  # the pane is scrolled out of view
                lab.hide()
                continue
            full = self._box_rect(vb)
            room = int(max(40.0, full.width() - 12))
            fm = lab.fontMetrics()
            lines = [fm.elidedText(t, Qt.TextElideMode.ElideRight, room - 14)
                     for t in text.split("\n")]
            lab.setText("\n".join(lines))
            lab.setToolTip(text)
            lab.adjustSize()
            x = rect.left() + 6 if kind != "right" else rect.right() - lab.width() - 6
            x = min(max(x, full.left() + 6), full.right() - lab.width() - 6)
            y = full.top() + 6
            # a narrow split region: stack the caption under the one it would cover
            for other in placed:
                if QRectF(x, y, lab.width(), lab.height()).intersects(other):
                    y = other.bottom() + 3
            placed.append(QRectF(x, y, lab.width(), lab.height()))
            lab.move(int(round(x)), int(round(y)))
            lab.show()
            lab.raise_()
        for i, lab in enumerate(self.labels):
            if i not in used:
                lab.hide()

    # ------------------------------------------------------------------ overlay
    def overlay_array(self) -> Optional[np.ndarray]:
        """The heatmap drawn over the image (bits per pixel, H×W) or None."""
        v, s = self.view, self.session
        if v.overlay == "none" or s.image is None:
            return None
        enc = s.panes[v.overlay_pane % 3].encoding
        if enc is None or enc.inspection is None:
            return None
        h, w = s.image.shape[:2]
        return inspect_maps.heatmap_for_image(enc.inspection, h, w, v.overlay)

    def _on_overlay_change(self, event=None) -> None:
        for ov in self.overlays:
            ov.setVisible(False)
        v, s = self.view, self.session
        enc = s.panes[v.overlay_pane % 3].encoding if s.image is not None else None
        if v.overlay == "none" or enc is None or enc.inspection is None:
            for ov in self.overlays:
                release_item(ov)
            return
        h, w = s.image.shape[:2]
        # latent resolution (e.g. 375×250 for 24 MP), stretched: never an H×W map here
        hm, rect = inspect_jobs.heatmap_lowres(enc.inspection, h, w, v.overlay)
        target = (v.overlay_pane % v.n_panes) if self._visible_boxes() > 1 else 0
        show_overlay(self.overlays[target], inspect_maps.colorize(hm, v.colormap), rect, (w, h),
                     v.overlay_opacity)

    def _on_artifact_change(self, event=None) -> None:
        r = self.view.artifact_rect
        for box in self.artifact_boxes:
            if r is None:
                box.setVisible(False)
            else:
                box.setRect(QRectF(r[0], r[1], r[2] - r[0], r[3] - r[1]))
                box.setVisible(True)

    # ------------------------------------------------------------------ split divider
    def _on_divider_drag(self, k: int, line: pg.InfiniteLine) -> None:
        if self.session.image is None:
            return
        w = self.session.image.shape[1]
        pos = min(1.0, max(0.0, float(line.value()) / w))
        if k == 0:
            self.view.split_pos = min(pos, self.view.split_pos2) if self.view.n_panes == 3 \
                else pos
        else:
            self.view.split_pos2 = max(pos, self.view.split_pos)

    def _on_split_change(self, event=None) -> None:
        if self.view.compare_mode == "split":
            self._refresh_images()

    # ------------------------------------------------------------------ zoom / pan
    def _on_range_changed(self, vb, ranges, *args) -> None:
        self._place_labels()
        self._detail_timer.start()
        if self._syncing:
            return
        (x0, x1), (y0, y1) = ranges
        self._syncing = True
        try:
            self.view.view_rect = [float(x0), float(y0), float(x1), float(y1)]
        finally:
            self._syncing = False

    def _on_view_rect_change(self, event) -> None:
        if self._syncing:
            return
        r = event.value
        self._syncing = True
        try:
            if r is None:
                self._fit_now()
            else:
                self.viewboxes[0].setRange(xRange=(r[0], r[2]), yRange=(r[1], r[3]), padding=0)
        finally:
            self._syncing = False

    def _fit_now(self) -> None:
        shape = self.shown_shape()
        if shape is None:
            return
        h, w = shape
        self.viewboxes[0].setRange(xRange=(0, w), yRange=(0, h), padding=0.0)

    def fit(self) -> None:
        """Key 0: whole image in view."""
        self._fit_now()

    def zoom_to(self, scale: float, center: Optional[tuple[float, float]] = None) -> None:
        """Show ``scale`` screen pixels per image pixel (1.0 = key 1) around ``center``."""
        vb = self.viewboxes[0]
        if self.shown_shape() is None:
            return
        r = vb.viewRect()
        cx, cy = center or (r.center().x(), r.center().y())
        size = vb.size()
        w = max(1.0, size.width()) / scale
        h = max(1.0, size.height()) / scale
        vb.setRange(xRange=(cx - w / 2, cx + w / 2), yRange=(cy - h / 2, cy + h / 2), padding=0)

    def zoom_by(self, factor: float) -> None:
        self.zoom_to(self.current_scale() * factor)

    def current_scale(self) -> float:
        """Screen pixels per image pixel in viewbox 0."""
        vb = self.viewboxes[0]
        r = vb.viewRect()
        return vb.size().width() / r.width() if r.width() > 0 else 1.0

    # ------------------------------------------------------------------ pixel readout
    def pixel_values(self, x: int, y: int) -> dict[str, tuple[int, ...]]:
        """RGB of the original and each pane at image pixel (x, y)."""
        s = self.session
        out: dict[str, tuple[int, ...]] = {}
        if s.image is None:
            d = s.decoded
            if d is not None and 0 <= y < d.reconstruction.shape[0] \
                    and 0 <= x < d.reconstruction.shape[1]:
                out["decoded"] = tuple(int(c) for c in d.reconstruction[y, x])
            return out
        h, w = s.image.shape[:2]
        if not (0 <= x < w and 0 <= y < h):
            return out
        out["orig"] = tuple(int(c) for c in s.image[y, x])
        for i in range(self.view.n_panes):
            img = self.pane_image(i)
            if img is not None and img.shape[:2] == (h, w):
                out[PANE_NAMES[i]] = tuple(int(c) for c in img[y, x])
        return out

    def leave_image(self) -> None:
        """The cursor left the picture (or the picture changed): no readout of stale pixels."""
        self.pixel_text.setVisible(False)
        self.pixel_info.emit("")

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        for vb in self.viewboxes[: self._visible_boxes()]:
            if vb.sceneBoundingRect().contains(scene_pos):
                p = vb.mapSceneToView(scene_pos)
                x, y = int(np.floor(p.x())), int(np.floor(p.y()))
                vals = self.pixel_values(x, y)
                if not vals:
                    self.leave_image()
                    return
                txt = f"x={x} y={y}  " + "  ".join(f"{k} {v}" for k, v in vals.items())
                self.pixel_info.emit(txt)
                if self.current_scale() >= PIXEL_TEXT_ZOOM and vb is self.viewboxes[0]:
                    self.pixel_text.setText("\n".join(f"{k}: {v}" for k, v in vals.items()))
                    self.pixel_text.setPos(x + 1, y)
                    self.pixel_text.setVisible(True)
                else:
                    self.pixel_text.setVisible(False)
                return
        self.leave_image()

    # ------------------------------------------------------------------ flicker
    def flip(self) -> None:
        """F / Space: enter flicker mode, or show the next pane."""
        v = self.view
        if v.compare_mode != "flicker":
            v.compare_mode = "flicker"
        else:
            v.flicker_index = (v.flicker_index + 1) % v.n_panes

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._place_labels()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Leave:
            self.leave_image()
        return False

    def grab_view(self):
        return self.glw.grab()

    def export_image(self):
        """The comparison as it is seen — split / side by side / flicker, two or three panes,
        the difference view — with every caption carrying codec, bpp and all metrics
        (issue 30 item 12); a QImage of the view's size."""
        self._full_captions = True
        try:
            self._refresh_images()
            #: the captions the picture carries (tests and bug reports read them)
            self.export_captions = [lab.toolTip() for lab in self.labels if lab.isVisible()]
            return self.glw.grab().toImage()
        finally:
            self._full_captions = False
            self._refresh_images()


