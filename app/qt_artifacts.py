"""The artifact finder tab (issue 30 item 11): a perceptual difference map between any two of
original / A / B / C with a colorbar, the tiles where they differ most, ranked, "next artifact"
jumping the synced compare view there, and the ranked list exported as CSV with crops.

The map is computed in a worker of the studio's pool (``app.model.artifacts.run_artifacts``)
with progress and Cancel; the ranking and the export are Qt-free (``app/model/artifacts.py``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .model import artifacts
from .model.artifacts import ArtifactRequest, ArtifactResult
from .model.errors import CancelledError, LicError
from .model.session import PANE_NAMES, SessionModel
from .qt_signals import ModelSubscriptions
from .qt_workers import QtWorkerPool

SOURCES = ("original",) + PANE_NAMES


class QtArtifactFinder(QWidget):
    """Where do two pictures differ most, perceptually?  (See the module docstring.)

    Signals
    -------
    error(str, str) : title, one-line message (the window shows a dialog).
    message(str) : status-bar text.
    """

    error = Signal(str, str)
    message = Signal(str)

    def __init__(self, session: SessionModel, pool: QtWorkerPool,
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.session = session
        self.pool = pool
        self.result: Optional[ArtifactResult] = None
        self.current = -1  # index into result.tiles of the artifact in view
        self.stale = False
        self._job: Optional[ArtifactRequest] = None

        self.a_combo = QComboBox()
        self.b_combo = QComboBox()
        for c in (self.a_combo, self.b_combo):
            c.addItems(list(SOURCES))
            c.setToolTip("Which pictures to compare: the original or a pane's reconstruction")
        self.a_combo.setCurrentIndex(0)
        self.b_combo.setCurrentIndex(1)
        self.kind_combo = QComboBox()
        for key, label in artifacts.KINDS.items():
            self.kind_combo.addItem(label, key)
        self.kind_combo.setToolTip("LPIPS (local): each pixel's share of the LPIPS distance "
                                   "(the spatial LPIPS map). 1 − SSIM: local structural "
                                   "dissimilarity (σ = 1.5 window)")
        self.tile_spin = QSpinBox()
        self.tile_spin.setRange(8, 256)
        self.tile_spin.setSingleStep(8)
        self.tile_spin.setValue(32)
        self.tile_spin.setSuffix(" px")
        self.tile_spin.setToolTip("Tile size: the map is ranked tile by tile (mean difference)")
        self.find_btn = QPushButton("Find")
        self.find_btn.setToolTip("Compute the difference map and rank the tiles (in the "
                                 "background)")
        self.find_btn.clicked.connect(self.find)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        self.next_btn = QPushButton("Next artifact")
        self.next_btn.setToolTip("Jump the compare view to the next most different tile (N)")
        self.next_btn.setEnabled(False)
        self.next_btn.clicked.connect(self.next_artifact)
        self.export_btn = QPushButton("Export…")
        self.export_btn.setToolTip("The ranked list as CSV, with a crop of both pictures per "
                                   "tile")
        self.export_btn.setEnabled(False)
        self.export_btn.clicked.connect(lambda: self.export())
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(self.a_combo)
        top.addWidget(QLabel("vs"))
        top.addWidget(self.b_combo)
        top.addWidget(self.kind_combo, 1)
        top.addWidget(self.tile_spin)
        row2 = QHBoxLayout()
        for w in (self.find_btn, self.cancel_btn, self.next_btn, self.export_btn):
            row2.addWidget(w)
        row2.addStretch(1)

        self.plot = pg.PlotWidget()
        self.plot.setAspectLocked(True)
        self.plot.invertY(True)
        self.plot.hideAxis("bottom")
        self.plot.hideAxis("left")
        self.plot.setMinimumHeight(120)
        self.map_item = pg.ImageItem()
        self.plot.addItem(self.map_item)
        #: the difference map's scale
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("inferno"),
                                   interactive=False, width=12, label="difference")
        self.bar.setImageItem(self.map_item, insert_in=self.plot.getPlotItem())
        self.boxes: list[pg.QtWidgets.QGraphicsRectItem] = []
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["#", "x, y", "diff."])
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        hh = self.table.horizontalHeader()
        for c in range(3):
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setToolTip("Tiles ranked by mean difference; click one to show it")
        self.table.cellClicked.connect(lambda r, c: self.show_artifact(r))
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(self.plot)
        body.addWidget(self.table)
        body.setStretchFactor(0, 3)
        body.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(row2)
        lay.addWidget(self.progress)
        lay.addWidget(body, 1)
        lay.addWidget(self.status)

        self._subs = ModelSubscriptions(self)
        self._subs.connect(session.events.image, self._on_image_change)
        self._subs.connect(session.events.decoded, self._on_image_change)
        for p in session.panes:
            self._subs.connect(p.events.encoding, self._on_sources_change)
        self._subs.connect(session.view.events.colormap, lambda e: self._draw())
        self._on_image_change()

    # ------------------------------------------------------------------ sources
    def picture(self, source: str) -> Optional[np.ndarray]:
        """The original, or what pane A/B/C shows (None: no such picture yet)."""
        s = self.session
        if s.image is None:
            return None
        if source == "original":
            return s.image
        enc = s.panes[PANE_NAMES.index(source)].encoding
        return None if enc is None else enc.reconstruction

    def set_pair(self, a: str, b: str) -> None:
        self.a_combo.setCurrentText(a)
        self.b_combo.setCurrentText(b)

    def set_kind(self, kind: str) -> None:
        self.kind_combo.setCurrentIndex(self.kind_combo.findData(kind))

    def _on_image_change(self, event=None) -> None:
        self.cancel()
        self.result = None
        self.current = -1
        self.stale = False
        self.session.view.artifact_rect = None
        self._draw()
        self.status.setText("" if self.session.image is not None else
                            "Open an image: the finder compares the original and the panes.")

    def _on_sources_change(self, event=None) -> None:
        if self.result is not None and not self.stale:
            self.stale = True
            self.status.setText(self.status.text() + " — a picture changed since: Find "
                                "again")

    # ------------------------------------------------------------------ work
    @property
    def busy(self) -> bool:
        return self._job is not None

    def find(self) -> bool:
        """Start the map of the chosen pair in a worker; False (with a one-line error) when a
        picture is missing or the pair is one picture twice."""
        an, bn = self.a_combo.currentText(), self.b_combo.currentText()
        a, b = self.picture(an), self.picture(bn)
        try:
            if self.session.image is None:
                raise LicError("open an image first")
            if an == bn:
                raise LicError(f"choose two different pictures (both are {an})")
            for name, pic in ((an, a), (bn, b)):
                if pic is None:
                    raise LicError(f"pane {name} has no result yet")
        except LicError as exc:
            self.error.emit("Artifact finder", str(exc))
            return False
        self.cancel()
        req = ArtifactRequest(a=a, b=b, names=(an, bn), kind=self.kind_combo.currentData(),
                              tile=int(self.tile_spin.value()), count=20,
                              image_id=self.session.image_id)
        self._job = req
        self.find_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.progress.setValue(0)
        self.status.setText(f"{artifacts.KINDS[req.kind]}: {an} vs {bn}…")
        self.pool.submit(artifacts.run_artifacts, req, self._on_done, self._on_fail,
                         self._on_progress)
        return True

    def cancel(self) -> None:
        if self._job is not None:
            self.pool.cancel(self._job)

    def _end(self) -> None:
        self._job = None
        self.find_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)

    def _on_progress(self, job, fraction: float, message: str) -> None:
        if job is self._job:
            self.progress.setValue(int(1000 * min(max(fraction, 0.0), 1.0)))

    def _on_fail(self, job, exc: BaseException) -> None:
        if job is not self._job:
            return
        self._end()
        self.progress.setValue(0)
        if isinstance(exc, CancelledError):
            self.status.setText("cancelled")
            return
        msg = str(exc) if isinstance(exc, LicError) else f"{type(exc).__name__}: {exc}"
        self.status.setText(f"failed: {msg}")
        self.error.emit("Artifact finder", msg)

    def _on_done(self, job, result: ArtifactResult) -> None:
        if job is not self._job:
            return
        self._end()
        self.progress.setValue(1000)
        if result.image_id != self.session.image_id:
            return  # the picture changed meanwhile
        self.result = result
        self.stale = False
        self.current = -1
        self._draw()
        best = result.tiles[0] if result.tiles else None
        self.status.setText(f"{result.title} · mean {result.mean:.4f}"
                            + (f" · worst tile {best.score:.4f} at ({best.x}, {best.y})"
                               if best else ""))
        self.message.emit(f"artifact finder: {len(result.tiles)} tiles ranked "
                          "(Next artifact / N jumps to them)")

    # ------------------------------------------------------------------ drawing
    def _draw(self) -> None:
        for box in self.boxes:
            self.plot.removeItem(box)
        self.boxes = []
        r = self.result
        has = r is not None
        self.next_btn.setEnabled(has and bool(r.tiles))
        self.export_btn.setEnabled(has and bool(r.tiles))
        if not has:
            self.map_item.clear()
            self.table.setRowCount(0)
            return
        cmap = pg.colormap.get(self.session.view.colormap)
        self.bar.setColorMap(cmap)
        h, w = r.map.shape
        self.map_item.setImage(r.display_map(), levels=(0.0, r.vmax))
        self.map_item.setRect(0, 0, w, h)  # a big picture's map is shown block-averaged
        self.bar.setLevels((0.0, r.vmax))
        self.plot.getPlotItem().setTitle(r.title)
        self.table.setRowCount(len(r.tiles))
        for i, t in enumerate(r.tiles):
            for c, text in enumerate((str(t.rank), f"{t.x}, {t.y}", f"{t.score:.4f}")):
                item = QTableWidgetItem(text)
                if c != 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, c, item)
            if i < 5:  # the five worst, numbered on the map
                box = pg.QtWidgets.QGraphicsRectItem(t.x, t.y, t.w, t.h)
                pen = pg.mkPen((0, 255, 255) if i else (255, 255, 255), width=2)
                pen.setCosmetic(True)
                box.setPen(pen)
                self.plot.addItem(box)
                self.boxes.append(box)
        self.plot.getPlotItem().vb.autoRange(padding=0.0)
        self.table.resizeColumnsToContents()
        self.table.setMinimumWidth(self.table.horizontalHeader().length()
                                   + self.table.verticalScrollBar().sizeHint().width()
                                   + 2 * self.table.frameWidth() + 4)

    # ------------------------------------------------------------------ navigation
    def show_artifact(self, index: int) -> Optional[artifacts.Tile]:
        """Point the synced compare view at ranked tile ``index`` (and outline it in every
        pane; a split view becomes side by side, so each pane shows the tile)."""
        r = self.result
        if r is None or not r.tiles or self.session.image is None:
            return None
        index = index % len(r.tiles)
        self.current = index
        t = r.tiles[index]
        v = self.session.view
        if v.compare_mode == "split":  # the split shows each pane on one side only: show
            v.compare_mode = "side"    # every pane at the artifact, side by side
        v.artifact_rect = t.rect
        v.view_rect = t.view_rect(self.session.image.shape[:2])
        self.table.selectRow(index)
        self.status.setText(f"artifact {t.rank}/{len(r.tiles)} at ({t.x}, {t.y}): "
                            f"{artifacts.KINDS[r.kind]} {t.score:.4f} ({r.names[0]} vs "
                            f"{r.names[1]})")
        return t

    def next_artifact(self) -> Optional[artifacts.Tile]:
        """The next most different tile (wraps around after the last)."""
        return self.show_artifact(self.current + 1)

    # ------------------------------------------------------------------ export
    def export(self, folder: Optional[str | Path] = None, overwrite: bool = True
               ) -> Optional[Path]:
        """The ranked list as ``artifacts.csv`` plus ``crops/rank_NN.png`` (both pictures of
        the pair, and the original when it is not one of them) in ``folder``."""
        r = self.result
        if r is None:
            self.error.emit("Nothing to export", "find artifacts first")
            return None
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Export artifacts to folder")
            if not folder:
                return None
        names = list(r.names)
        if "original" not in names:
            names = ["original"] + names
        images = {n: self.picture(n) for n in names}
        if any(v is None for v in images.values()):
            self.error.emit("Export failed", "a picture of this comparison is gone")
            return None
        try:
            out = artifacts.export_artifacts(folder, r, images, overwrite=overwrite)
        except LicError as exc:
            self.error.emit("Export failed", str(exc))
            return None
        except OSError as exc:
            self.error.emit("Export failed", exc.strerror or str(exc))
            return None
        self.message.emit(f"saved {out} and {len(r.tiles)} crops")
        return out
