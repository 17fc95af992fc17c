"""LIC Studio main window: menus, toolbar, compare view, pane controls, docks, status bar.

The window owns one :class:`SessionModel` (Qt-free) and one :class:`QtEncodeController`; every
widget subscribes to the model and writes user intent back (napari's model/view split,
STYLE_ANCHORS §1).  File operations go through ``app.model.export`` (atomic writes) and ask before
overwriting.  Every user error (``LicError``) becomes a one-line dialog.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import shiboken6
from PySide6.QtCore import QEvent, QSize, Qt, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QToolBar,
    QWidget,
)

from .model import services
from .model.decoded import display_rows, sibling_original
from .model.errors import LicError
from .model.generative_demo import find_demo_codecs
from .model.session import SessionModel
from .qt_about import QtAboutModelDialog
from .qt_artifacts import QtArtifactFinder
from .qt_compare_view import QtCompareView
from .qt_compat import install_bool_refcount_guard
from .qt_controller import QtEncodeController
from .qt_exports import ExportActions
from .qt_inspector import QtEntropyView, QtLatentBrowser, QtRateBreakdown
from .qt_pane_controls import QtPaneControls
from .qt_rd_plot import QtRDPlot
from .qt_settings import LAYOUT_VERSION, fit_size, read_int, read_list, studio_settings
from .qt_signals import ModelSubscriptions
from .qt_task_progress import QtTaskProgress
from .qt_window_actions import WindowActions


class QtMainWindow(WindowActions, ExportActions, QMainWindow):
    """The studio window.

    Parameters
    ----------
    session : SessionModel, optional
    persist : bool
        Read/write recent files, the save folder, the thread setting and the window layout with
        QSettings (``app/qt_settings.py``; off in tests unless they point QSettings elsewhere).
    """

    def __init__(self, session: Optional[SessionModel] = None, persist: bool = True) -> None:
        super().__init__()
        install_bool_refcount_guard()  # PySide6 6.12 + CPython 3.11 refcount bug (qt_compat)
        self.session = session or SessionModel()
        self.persist = persist
        self._subs = ModelSubscriptions(self)
        self.controller = QtEncodeController(self.session, parent=self)
        self.error_log: list[tuple[str, str]] = []
        self._dialogs: list[QWidget] = []
        #: called with a Path when a file would be overwritten; True = go ahead
        self.confirm_overwrite: Callable[[Path], bool] = self._ask_overwrite
        self.setWindowTitle("LIC Studio")
        self.setAcceptDrops(True)
        self._last_save_dir: Optional[str] = None
        self.compute_threads = 0  # 0 = automatic (services.default_threads)
        #: () -> (DemoCodecs | None, why): what "HiFiC vs ours" runs with (tests inject tiny ones)
        self.find_demo_codecs = find_demo_codecs
        self.demo = None

        self.compare = QtCompareView(self.session)
        self.compare.open_requested.connect(lambda: self.open_dialog())
        self.compare.sample_requested.connect(lambda: self.open_sample())
        self.compare.compare_requested.connect(lambda: self.compare_against_dialog())
        self.pane_controls = [QtPaneControls(self.session, p) for p in self.session.panes]
        controls_row = QWidget()
        crow = QHBoxLayout(controls_row)
        crow.setContentsMargins(4, 0, 4, 0)
        for pc in self.pane_controls:
            crow.addWidget(pc, 1)
            pc.cancel_requested.connect(self.controller.cancel)
            pc.about_requested.connect(self.show_about_model)
        # the pane controls scroll sideways rather than widen the window (three panes at 1366 px)
        self.controls_scroll = _SidewaysScroll()
        self.controls_scroll.setWidget(controls_row)
        self.controls_scroll.setWidgetResizable(True)
        self.controls_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.controls_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.controls_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.controls_row = controls_row
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.compare)
        split.addWidget(self.controls_scroll)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 0)
        split.setCollapsible(1, False)
        self.central_split = split
        self.setCentralWidget(split)
        # a row appearing in a pane (the diffusion decoder's steps/seed) must grow the controls,
        # not push the numbers under the status bar: the splitter follows the content
        self._fit_controls_timer = QTimer(self)
        self._fit_controls_timer.setSingleShot(True)
        self._fit_controls_timer.setInterval(0)
        self._fit_controls_timer.timeout.connect(self._fit_controls)
        controls_row.installEventFilter(self)
        for pc in self.pane_controls:
            pc.installEventFilter(self)

        self.rd_plot = QtRDPlot(self.session)
        self.latents = QtLatentBrowser(self.session, pool=self.controller.light_pool)
        self.entropy = QtEntropyView(self.session, pool=self.controller.light_pool)
        self.rate = QtRateBreakdown(self.session)
        self.file_info = QTextBrowser()
        self.file_info.setToolTip("Header of the opened compressed file")
        self.inspector_tabs = QTabWidget()
        self.inspector_tabs.addTab(self.latents, "Latents")
        self.inspector_tabs.addTab(self.entropy, "Entropy")
        self.inspector_tabs.addTab(self.rate, "Rate")
        self.inspector_tabs.addTab(self.file_info, "File info")
        #: where two pictures differ most, perceptually (issue 30 item 11)
        self.artifacts = QtArtifactFinder(self.session, self.controller.pool)
        self.artifacts.error.connect(self.show_error)
        self.artifacts.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.inspector_tabs.addTab(self.artifacts, "Artifacts")
        self.rd_dock = self._dock("RD plot", self.rd_plot, Qt.DockWidgetArea.RightDockWidgetArea)
        self.inspector_dock = self._dock("Inside the codec", self.inspector_tabs,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.controller.background_progress.connect(self.rd_plot.set_background_progress)
        self.controller.scoring_progress.connect(self.rd_plot.set_scoring_progress)
        self.controller.dataset_progress.connect(self.rd_plot.set_dataset_progress)
        self.rd_plot.cancel_requested.connect(self.controller.cancel_all)

        self.status_pixel = QLabel("")
        self.status_pixel.setToolTip("Pixel values under the cursor")
        self.statusBar().addPermanentWidget(self.status_pixel)
        #: opening a file: what, how far, Cancel (app/qt_task_progress.py)
        self.task_progress = QtTaskProgress(self.controller.files.cancel)
        self.statusBar().addPermanentWidget(self.task_progress)
        self.controller.file_progress.connect(self.task_progress.set_progress)
        self.compare.pixel_info.connect(self.status_pixel.setText)
        self.controller.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.controller.error.connect(self.show_error)
        sub = self._subs.connect
        sub(self.session.events.file_info, self._on_file_info_change)
        sub(self.session.events.image, self._on_image_change)
        sub(self.session.events.decoded, self._on_image_change)
        sub(self.session.events.recent_files, lambda e: self._rebuild_recent_menu())
        sub(self.session.view.events.n_panes, self._on_n_panes_change)
        sub(self.session.view.events.compute_lpips,
            lambda e: self.act_lpips.setChecked(bool(e.value)))
        sub(self.session.view.events.compute_ms_ssim,
            lambda e: self.act_ms_ssim.setChecked(bool(e.value)))

        self._build_actions()
        self.view_toolbar = QToolBar("Toolbar")
        self.view_toolbar.setObjectName("view-toolbar")
        self.addToolBar(self.view_toolbar)
        self._build_menus()
        self._build_toolbar()
        self.refresh_demo_action()
        self._on_n_panes_change()
        self._fit_to_screen()
        self._default_state = self.saveState(LAYOUT_VERSION)
        self._layout_restored = False
        if persist:
            st = studio_settings()
            self.session.recent_files = read_list(st, "recent_files")
            self._last_save_dir = st.value("last_save_dir", None) or None
            self.compute_threads = read_int(st, "compute_threads", 0)
            geometry, state = st.value("window/geometry"), st.value("window/state")
            if geometry is not None:
                self.restoreGeometry(geometry)
                self._fit_to_screen(keep_size=True)  # the screen may be smaller than last time
            if state is not None:
                self._layout_restored = self.restoreState(state, LAYOUT_VERSION)
        self.applied_threads = services.apply_threads(self.compute_threads or None)
        self._rebuild_recent_menu()
        self.statusBar().showMessage("Open an image (Ctrl+O), drop one here, or File → Sample")

    # ------------------------------------------------------------------ construction
    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt override)
        if event.type() in (QEvent.Type.LayoutRequest, QEvent.Type.Show, QEvent.Type.Hide) \
                and hasattr(self, "_fit_controls_timer"):
            self._fit_controls_timer.start()
        return False

    def _fit_controls(self) -> None:
        """Give the pane controls exactly the height of their content (the image the rest)."""
        self.controls_scroll.updateGeometry()
        need = self.controls_scroll.minimumSizeHint().height()
        sizes = self.central_split.sizes()
        if len(sizes) == 2 and sizes[1] != need and sum(sizes) > need:
            self.central_split.setSizes([sum(sizes) - need, need])

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if hasattr(self, "_fit_controls_timer"):
            self._fit_controls_timer.start()

    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(title)
        d.setWidget(widget)
        d.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable
                      | QDockWidget.DockWidgetFeature.DockWidgetMovable
                      | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, d)
        return d

    def _available_size(self) -> Optional[QSize]:
        screen = self.screen() or QApplication.primaryScreen()
        return screen.availableGeometry().size() if screen is not None else None

    def _fit_to_screen(self, keep_size: bool = False) -> None:
        """Open at the preferred size, never larger than the screen (issue 14 item 1)."""
        avail = self._available_size()
        target = fit_size(avail) if not keep_size else fit_size(avail, self.size())
        self.resize(target)
        self._docks_share(target.width())

    def _docks_share(self, width: int) -> None:
        # the image and the pane controls get the larger share; the docks a readable ~37 %
        self.resizeDocks([self.rd_dock, self.inspector_dock], [int(width * 0.37)] * 2,
                         Qt.Orientation.Horizontal)

    def reset_layout(self) -> None:
        """View → Reset layout: docks back where they started, all shown."""
        self.restoreState(self._default_state, LAYOUT_VERSION)
        for d in (self.rd_dock, self.inspector_dock):
            d.setFloating(False)
            d.show()
        self._fit_to_screen(keep_size=True)

    def save_layout(self) -> None:
        """Remember the window geometry and dock layout (on close, when ``persist``)."""
        if not self.persist:
            return
        st = studio_settings()
        st.setValue("window/geometry", self.saveGeometry())
        st.setValue("window/state", self.saveState(LAYOUT_VERSION))

    # ------------------------------------------------------------------ model → view
    def _on_n_panes_change(self, event=None) -> None:
        n = self.session.view.n_panes
        for pc in self.pane_controls:
            pc.setVisible(pc.pane.index < n)
        self.act_three.setChecked(n == 3)

    def _on_image_change(self, event=None) -> None:
        s = self.session
        d = s.decoded
        if s.image is not None:
            name = Path(s.image_path).name if s.image_path else "pasted image"
            h, w = s.image.shape[:2]
            extra = f" vs {d.name}" if d is not None else ""
            self.setWindowTitle(f"LIC Studio — {name} ({w}×{h}){extra}")
        elif d is not None:
            h, w = d.reconstruction.shape[:2]
            self.setWindowTitle(f"LIC Studio — {d.name} ({w}×{h}, decoded, no original)")
        else:
            self.setWindowTitle("LIC Studio")
        self.act_compare_against.setEnabled(d is not None)
        if self.persist:
            studio_settings().setValue("recent_files", list(s.recent_files))

    def _on_file_info_change(self, event) -> None:
        info = event.value
        if not info:
            self.file_info.setHtml("<i>No compressed file opened.</i>")
            return
        rows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>"
                       for k, v in display_rows(info))
        self.file_info.setHtml(f"<h4>{html.escape(Path(str(info.get('file', ''))).name)}</h4>"
                               f"<table cellspacing=4>{rows}</table>")
        self.inspector_tabs.setCurrentWidget(self.file_info)

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        for r in self.session.recent_files:
            a = self.recent_menu.addAction(r)
            a.triggered.connect(lambda _=False, r=r: self.open_path(r))
        self.recent_menu.setEnabled(bool(self.session.recent_files))

    # ------------------------------------------------------------------ commands
    def find_artifacts(self, a: Optional[str] = None, b: Optional[str] = None,
                       kind: Optional[str] = None) -> bool:
        """View → Find artifacts: the Artifacts tab, computing the chosen pair's map."""
        self.inspector_dock.show()
        self.inspector_tabs.setCurrentWidget(self.artifacts)
        if a and b:
            self.artifacts.set_pair(a, b)
        if kind:
            self.artifacts.set_kind(kind)
        return self.artifacts.find()

    def dataset_curve(self, folder: Optional[str | Path] = None, pane: int = 0,
                      points: int = 6) -> bool:
        """Encode → Dataset curve: pane ``pane``'s codec over every image of a folder (Kodak
        when there is one), averaged like the published curves, in the background."""
        if folder is None:
            start = services.kodak_dir() or (Path(self.session.image_path).parent
                                             if self.session.image_path else Path.home())
            folder = QFileDialog.getExistingDirectory(self, "Folder of images to sweep",
                                                      str(start))
            if not folder:
                return False
        return self.controller.sweep_dataset(folder, pane, points)

    def next_artifact(self):
        """N: the synced view jumps to the next most different tile (finding them first)."""
        if self.artifacts.result is None:
            if not self.artifacts.busy:
                self.find_artifacts()
            return None
        return self.artifacts.next_artifact()

    def copy_settings(self, src: int, dst: int) -> None:
        self.session.panes[dst].settings = self.session.panes[src].settings

    def open_path(self, path: str | Path, then: Optional[Callable[[], None]] = None) -> bool:
        return self.controller.open_path(path, then)

    def open_dialog(self) -> None:
        pats = " ".join(f"*{s}" for s in services.IMAGE_SUFFIXES + (".lic",))
        path, _ = QFileDialog.getOpenFileName(self, "Open image or compressed file", "",
                                              f"Images and .lic ({pats});;All files (*)")
        if path:
            self.open_path(path)

    def compare_against(self, path: str | Path,
                        then: Optional[Callable[[], None]] = None) -> bool:
        """Name the original of the opened compressed file (see QtEncodeController)."""
        return self.controller.compare_against(path, then)

    def compare_against_dialog(self) -> None:
        d = self.session.decoded
        if d is None:
            self.show_error("Nothing to compare", "open a compressed (.lic) file first")
            return
        start = sibling_original(d.path) or Path(d.path).parent
        pats = " ".join(f"*{x}" for x in services.IMAGE_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, f"Original of {d.name}", str(start),
                                              f"Images ({pats});;All files (*)")
        if path:
            self.compare_against(path)

    def set_compute_threads(self, n: int) -> int:
        """Settings → Compute threads: 0 = automatic; applied now and remembered."""
        self.compute_threads = max(0, int(n))
        self.applied_threads = services.apply_threads(self.compute_threads or None)
        if self.persist:
            studio_settings().setValue("compute_threads", self.compute_threads)
        how = "automatic" if not self.compute_threads else "fixed"
        self.statusBar().showMessage(f"compute threads: {self.applied_threads} ({how})", 6000)
        return self.applied_threads

    def threads_dialog(self) -> None:
        auto = services.default_threads()
        n, ok = QInputDialog.getInt(
            self, "Compute threads",
            f"CPU threads for encodes and decodes (0 = automatic, now {auto} on this "
            f"machine:\nthe CPUs not already busy, from the CPU count and the load).",
            self.compute_threads, 0, max(64, services.available_cpus()), 1)
        if ok:
            self.set_compute_threads(n)

    def open_sample(self) -> bool:
        p = services.sample_image_path()
        if p is None:
            self.show_error("No sample image",
                            "the bundled sample image is missing from this install")
            return False
        return self.open_path(p)

    def paste_image(self) -> bool:
        """Clipboard image (or copied image file) becomes the original."""
        md = QApplication.clipboard().mimeData()
        if md is not None and md.hasUrls():
            for u in md.urls():
                if u.isLocalFile():
                    return self.open_path(u.toLocalFile())
        qimg = QApplication.clipboard().image()
        if qimg.isNull():
            self.show_error("Nothing to paste", "the clipboard holds no image")
            return False
        try:
            self.session.set_image(qimage_to_array(qimg), path=None)
        except LicError as exc:
            self.show_error("Cannot paste", str(exc))
            return False
        self.statusBar().showMessage("pasted image from clipboard", 5000)
        return True

    # ------------------------------------------------------------------ dialogs
    def show_error(self, title: str, message: str) -> None:
        """Non-blocking error dialog with the one-line message (also kept in ``error_log``)."""
        self.error_log.append((title, message))
        self.statusBar().showMessage(f"{title}: {message}", 10000)
        box = QMessageBox(QMessageBox.Icon.Warning, title, message,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self._keep_dialog(box)

    def _keep_dialog(self, dlg: QWidget) -> None:
        """Hold a Python reference to an open dialog; closed (deleted) ones are let go: asking a
        deleted one anything raised RuntimeError in every later dialog (issue 30 item 5)."""
        self._dialogs = [d for d in self._dialogs if shiboken6.isValid(d) and d.isVisible()]
        self._dialogs.append(dlg)

    def show_add_model(self):
        """File → Add model…: a CompressAI checkpoint becomes a codec in every pane."""
        from .qt_add_model import QtAddModelDialog

        dlg = QtAddModelDialog(self, pool=self.controller.pool)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.model_added.connect(self.on_model_added)
        dlg.show()
        self._keep_dialog(dlg)
        return dlg

    def use_codec(self, pane: int, name: str) -> None:
        """Give a pane this codec (``lic-studio --codec NAME``); an unknown or unavailable name is
        a one-line LicError."""
        if name not in services.codec_names():
            raise LicError(f"--codec: no codec named '{name}' (see `lic models`; add your own "
                           "with `lic models add` or File → Add model…)")
        ok, why = services.codec_availability(name)
        if not ok:
            raise LicError(f"--codec: {name} cannot run here: {why}")
        self.session.set_pane_codec(pane, name)

    def on_model_added(self, name: str) -> None:
        """Every pane's chooser lists the new model; pane A switches to it."""
        for pc in self.pane_controls:
            pc.refill_codecs()
        self.session.set_pane_codec(0, name)
        self.statusBar().showMessage(f"added model {name}: pane A encodes with it", 8000)

    def show_about_model(self, codec_name: str) -> QtAboutModelDialog:
        dlg = QtAboutModelDialog(codec_name, self, pool=self.controller.pool)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.show()
        self._keep_dialog(dlg)
        return dlg

    def show_generative_demo(self):
        """Encode → HiFiC vs ours (Ctrl+G): the two generative decoders side by side at matched
        bpp on the open image (app/qt_generative_demo.py); None when it cannot run (one-line
        error)."""
        from .qt_generative_demo import QtGenerativeDemo

        codecs, why = self.find_demo_codecs()
        if codecs is None:
            self.refresh_demo_action()
            self.show_error("HiFiC vs ours is unavailable", why)
            return None
        if self.session.image is None:
            self.show_error("No image", "open an image first (Ctrl+O); the demo compresses it "
                                        "with HiFiC and with our diffusion decoder")
            return None
        dlg = QtGenerativeDemo(self.session.image, codecs, self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        key = id(dlg)
        dlg.destroyed.connect(lambda *_: self._forget_demo(key))
        dlg.show()
        self._keep_dialog(dlg)
        self.demo = dlg
        return dlg

    def _forget_demo(self, key: int) -> None:
        if self.demo is not None and id(self.demo) == key:
            self.demo = None  # deleted with its window: never called again

    def show_about(self) -> None:
        QMessageBox.about(self, "About LIC Studio",
                          f"<b>LIC Studio</b> {services.studio_version()}<br>A desktop studio for "
                          "learned image compression: compare codecs, look inside the latents, "
                          "plot rate–distortion live.")

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        md = event.mimeData()
        for u in md.urls():
            if u.isLocalFile():
                self.open_path(u.toLocalFile())
                event.acceptProposedAction()
                return
        if md.hasImage():
            try:
                self.session.set_image(qimage_to_array(QImage(md.imageData())))
            except LicError as exc:
                self.show_error("Cannot open the dropped image", str(exc))
                return
            event.acceptProposedAction()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        if not self._layout_restored and not getattr(self, "_shown_once", False):
            self._shown_once = True  # dock widths are only honoured once the window is laid out
            QTimer.singleShot(0, lambda: self._docks_share(self.width()))

    def closeEvent(self, event) -> None:
        self.save_layout()
        self.controller.cancel_all()
        self.controller.pool.wait(10000)
        self.disconnect_model()
        super().closeEvent(event)

    def disconnect_model(self) -> None:
        """End every model subscription of this window and its views (the session outlives
        them: a closed window must not be called back)."""
        for part in (self, self.controller, self.compare, *self.pane_controls, self.rd_plot,
                     self.latents, self.entropy, self.rate, self.artifacts):
            part._subs.disconnect()


class _SidewaysScroll(QScrollArea):
    """Scrolls its content sideways only, and is always exactly as tall as the content (plus a
    horizontal scroll bar): the splitter can neither clip the pane controls nor leave a gap."""

    def _height(self, hint: QSize) -> int:
        return hint.height() + self.horizontalScrollBar().sizeHint().height()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        w = self.widget()
        return QSize(120, self._height(w.minimumSizeHint()) if w else 0)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        w = self.widget()
        return QSize(w.sizeHint().width(), self._height(w.minimumSizeHint())) if w \
            else super().sizeHint()


def qimage_to_array(qimg: QImage) -> np.ndarray:
    """QImage → H×W×3 uint8 RGB copy."""
    img = qimg.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, : w * 3].reshape(h, w, 3).copy()
