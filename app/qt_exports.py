"""The studio window's exports and sessions: compressed files, reconstructions, the bits
heatmap, the RD plot, the comparison view, the metrics table; saving and restoring a session.

A mixin of :class:`app.qt_main_window.QtMainWindow` (it uses the window's session, controller,
views and dialogs), kept in its own module so the window's stays small.  Exports of a big
picture (seconds of PNG coding at 24 MP) run in a worker (issue 28 item 3).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog, QMessageBox

from .model import display, export, inspect_maps, session_file
from .model.errors import LicError
from .model.session import PANE_NAMES
from .qt_file_jobs import FileJob
from .qt_settings import studio_settings


class ExportActions:
    """File → Save / Export … and sessions (mixed into the main window)."""

    # ------------------------------------------------------------------ export helpers
    def _target(self, path: Optional[str | Path], caption: str, default: str,
                filt: str) -> Optional[Path]:
        """Path chosen in a dialog (which confirms overwrites) or given; None = cancelled."""
        if path is None:
            p, _ = QFileDialog.getSaveFileName(self, caption, str(self.save_start(default)),
                                               filt)
            if p:
                self._remember_save_dir(Path(p))
            return Path(p) if p else None
        p = Path(path)
        if p.exists() and not self.confirm_overwrite(p):
            return None
        self._remember_save_dir(p)
        return p

    def save_start(self, default_name: str) -> Path:
        """Where a Save dialog opens: the folder of the last save, else the image's folder,
        else the home folder (never the data folder the studio happens to run in)."""
        for d in (self._last_save_dir,
                  str(Path(self.session.image_path).parent) if self.session.image_path else None):
            if d and Path(d).is_dir():
                return Path(d) / default_name
        return Path.home() / default_name

    def _remember_save_dir(self, path: Path) -> None:
        self._last_save_dir = str(path.parent.resolve()) if str(path.parent) else None
        if self.persist and self._last_save_dir:
            studio_settings().setValue("last_save_dir", self._last_save_dir)

    def _ask_overwrite(self, path: Path) -> bool:
        r = QMessageBox.question(self, "Overwrite?", f"{path.name} exists. Replace it?",
                                 QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                 QMessageBox.StandardButton.No)
        return r == QMessageBox.StandardButton.Yes

    def _stem(self) -> str:
        return Path(self.session.image_path).stem if self.session.image_path else "image"

    def _encoding(self, pane: int):
        enc = self.session.panes[pane].encoding
        if enc is None:
            self.show_error("Nothing to export", f"pane {PANE_NAMES[pane]} has no encoding yet")
        return enc

    def _guard(self, fn: Callable[[], Path], big: bool = False,
               target: Optional[Path] = None) -> Optional[Path]:
        """Run an export with one-line errors; a ``big`` picture's export (seconds of PNG
        coding at 24 MP) runs in a worker and ``target`` is returned at once."""
        if big and target is not None:
            self.statusBar().showMessage(f"saving {target.name}…", 6000)
            self.controller.pool.submit(
                lambda r, sink: fn(), FileJob(target),
                lambda r, out: self.statusBar().showMessage(f"saved {out}", 6000),
                lambda r, exc: self.show_error("Export failed", str(exc) if isinstance(
                    exc, LicError) else getattr(exc, "strerror", None) or str(exc)))
            return target
        try:
            out = fn()
        except LicError as exc:
            self.show_error("Export failed", str(exc))
            return None
        except OSError as exc:
            self.show_error("Export failed", exc.strerror or str(exc))
            return None
        self.statusBar().showMessage(f"saved {out}", 6000)
        return out

    def export_compressed(self, pane: int = 0, path: Optional[str | Path] = None
                          ) -> Optional[Path]:
        enc = self._encoding(pane)
        if enc is None:
            return None
        ext = enc.result.file_extension
        p = self._target(path, "Save compressed file", f"{self._stem()}_{enc.codec}{ext}",
                         f"Compressed (*{ext})")
        if p is None:
            return None
        return self._guard(lambda: export.atomic_write_bytes(p, enc.result.data, True))

    def export_reconstruction(self, pane: int = 0, path: Optional[str | Path] = None
                              ) -> Optional[Path]:
        enc = self._encoding(pane)
        if enc is None:
            return None
        p = self._target(path, "Export reconstruction", f"{self._stem()}_{enc.codec}.png",
                         "PNG (*.png)")
        if p is None:
            return None
        return self._guard(lambda: export.save_png(p, enc.reconstruction, True),
                           display.is_big(enc.reconstruction.shape), p)

    def export_heatmap(self, path: Optional[str | Path] = None) -> Optional[Path]:
        pane = self.session.view.overlay_pane
        enc = self._encoding(pane)
        if enc is None:
            return None
        if enc.inspection is None:
            self.show_error("No heatmap", f"{enc.codec} is not a learned codec: no latent bits")
            return None
        p = self._target(path, "Export heatmap", f"{self._stem()}_bits.png", "PNG (*.png)")
        if p is None:
            return None
        kind, ch = self.entropy.kind()
        h, w = self.session.image.shape[:2]
        cmap = self.session.view.colormap
        insp = enc.inspection

        def write() -> Path:  # H×W work: in a worker for a big picture
            return export.save_png(p, inspect_maps.heatmap_picture(insp, h, w, kind, ch, cmap),
                                   True)

        return self._guard(write, display.is_big((h, w)), p)

    def export_plot(self, path: Optional[str | Path] = None) -> Optional[Path]:
        p = self._target(path, "Export RD plot", f"{self._stem()}_rd.png",
                         "PNG (*.png);;SVG (*.svg)")
        if p is None:
            return None

        def write() -> Path:
            # the exporters write to a file name (format from its suffix): they get a
            # temporary one beside the target, moved into place (atomic, umask mode)
            return export.write_via_path(p, lambda tmp: self.rd_plot.export(str(tmp)), True)

        return self._guard(write)

    def export_view(self, path: Optional[str | Path] = None) -> Optional[Path]:
        """File → Export comparison view: the compare view as seen, captions with every
        number, as one PNG."""
        if self.session.image is None and self.session.decoded is None:
            self.show_error("Nothing to export", "open an image first")
            return None
        p = self._target(path, "Export comparison view", f"{self._stem()}_compare.png",
                         "PNG (*.png)")
        if p is None:
            return None
        img = self.compare.export_image()
        return self._guard(lambda: export.atomic_write_bytes(p, qimage_png(img), True))

    def export_metrics(self, path: Optional[str | Path] = None) -> Optional[Path]:
        p = self._target(path, "Export metrics table", f"{self._stem()}_metrics.csv",
                         "CSV (*.csv)")
        if p is None:
            return None
        rows = [dict(image=self.session.image_path or "", **e.row())
                for e in self.session.history]
        return self._guard(lambda: export.atomic_write_bytes(p, export.csv_bytes(rows), True))

    def save_session(self, path: Optional[str | Path] = None) -> Optional[Path]:
        p = self._target(path, "Save session", session_file.default_name(self._stem()),
                         "Session (*.json)")
        if p is None:
            return None
        return self._guard(lambda: session_file.save_session(p, self.session, True))

    def load_session(self, path: Optional[str | Path] = None) -> bool:
        """Reopen the image, restore panes and view, re-run the saved encodings."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open session", "", "Session (*.json)")
            if not path:
                return False
        try:
            d = session_file.read_session(path)
        except LicError as exc:
            self.show_error("Cannot open session", str(exc))
            return False

        def restore() -> None:
            try:
                self.controller.restore_session(d)
            except LicError as exc:
                self.show_error("Cannot open session", str(exc))

        img = session_file.image_of(d)
        if img:
            return self.open_path(img, then=restore)
        restore()
        return True


def qimage_png(img: QImage) -> bytes:
    """PNG bytes of a QImage (written atomically by the caller)."""
    from PySide6.QtCore import QBuffer, QIODevice

    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    img.save(buf, "PNG")
    return bytes(buf.data())
