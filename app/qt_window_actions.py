"""The studio window's actions: every menu entry, shortcut and toolbar control (Qt).

A mixin of :class:`app.qt_main_window.QtMainWindow` (its actions call the window's commands,
controller and views), kept in its own module so the window's stays small.  What the actions
change lives in the session's view state (``app.model.view_state``): the compare and difference
modes, the colormap, the scores computed; the toolbar mirrors it back.
"""
from __future__ import annotations

from typing import Callable, Optional

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QMessageBox

from .model import services
from .model.view_state import COLORMAPS, DIFF_MODES

SHORTCUTS = [
    ("Ctrl+O", "Open image or .lic file"), ("Ctrl+V", "Paste image from clipboard"),
    ("Ctrl+S", "Save pane A's compressed file"), ("Ctrl+E", "Export pane A's reconstruction"),
    ("Ctrl+Shift+E", "Export the comparison view as seen (PNG)"),
    ("Ctrl+Shift+S", "Save session"), ("Ctrl+Shift+O", "Open session"),
    ("S", "Split view"), ("D", "Side by side"), ("F / Space", "A/B flicker (flip)"),
    ("X", "Cycle difference mode"), ("T", "Two / three panes"), ("1", "Zoom 1:1"),
    ("0", "Fit"), ("+ / −", "Zoom in / out"), ("Ctrl+R", "Re-encode all panes"),
    ("Ctrl+Shift+R", "Sweep pane A's codec (RD curve)"),
    ("Ctrl+G", "HiFiC vs ours (generative decoders at matched bpp; same file, three decoders)"),
    ("Esc", "Cancel all encodes"), ("N", "Next artifact (View → Find artifacts)"),
    ("F1", "About this model (pane A)"), ("Ctrl+Q", "Quit"),
]

DEMO_TIP = ("HiFiC and our diffusion decoder side by side at matched bpp: bpp, PSNR, MS-SSIM, "
            "LPIPS, the sampler's steps and a seed-variance map; and 'Same file': one file of "
            "ours decoded by its MSE, GAN and diffusion decoders, with the difference of any two")

#: the difference chooser's words for each of ``DIFF_MODES``
DIFF_LABELS = list(zip(DIFF_MODES, ("No difference", "|A − B|", "|A − original|",
                                    "|B − original|")))


class WindowActions:
    """Menus, shortcuts and the toolbar (mixed into the main window)."""

    def _action(self, text: str, slot: Callable, shortcut: Optional[str] = None,
                tip: str = "", checkable: bool = False) -> QAction:
        a = QAction(text, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        a.setToolTip(tip or text)
        a.setStatusTip(tip or text)
        a.setCheckable(checkable)
        a.triggered.connect(slot)
        self.addAction(a)  # shortcuts work even when menus are hidden
        return a

    def _build_actions(self) -> None:
        v = self.session.view
        A = self._action
        self.act_open = A("&Open…", lambda: self.open_dialog(), "Ctrl+O",
                          "Open an image or a compressed .lic / classical file")
        self.act_sample = A("Open &sample image", lambda: self.open_sample(), None,
                            "The bundled CC0 sample photo")
        self.act_paste = A("&Paste image", lambda: self.paste_image(), "Ctrl+V",
                           "Use the clipboard's image (or copied file) as the original")
        self.act_compare_against = A("&Compare against original…",
                                     lambda: self.compare_against_dialog(), None,
                                     "Name the image the opened compressed file was made from; "
                                     "the file is then scored against it")
        self.act_compare_against.setEnabled(False)
        self.act_close = A("&Close", lambda: self.controller.close_image(), "Ctrl+W",
                           "Close the image or compressed file (its memory is given back)")
        self.act_add_model = A("&Add model…", lambda: self.show_add_model(), "Ctrl+Shift+A",
                               "Add your own CompressAI checkpoint(s) as a codec in every pane")
        self.act_threads = A("Compute &threads…", lambda: self.threads_dialog(), None,
                             "How many CPU threads encodes may use (automatic: the CPUs "
                             "not already busy)")
        self.act_reset_layout = A("&Reset layout", self.reset_layout, None,
                                  "Show every panel again where it started")
        self.act_save_lic = A("&Save compressed file (A)…", lambda: self.export_compressed(0),
                              "Ctrl+S", "Save pane A's bitstream (.lic or classical file)")
        self.act_save_lic_b = A("Save compressed file (B)…", lambda: self.export_compressed(1),
                                None, "Save pane B's bitstream")
        self.act_export_png = A("&Export reconstruction (A)…",
                                lambda: self.export_reconstruction(0), "Ctrl+E",
                                "Save pane A's decoded image as PNG")
        self.act_export_png_b = A("Export reconstruction (B)…",
                                  lambda: self.export_reconstruction(1), None,
                                  "Save pane B's decoded image as PNG")
        self.act_export_heat = A("Export &heatmap…", lambda: self.export_heatmap(), None,
                                 "Save the bits heatmap of the inspected pane as PNG")
        self.act_export_plot = A("Export RD &plot (PNG/SVG)…", lambda: self.export_plot(), None,
                                 "Save the RD plot with its legend as PNG or SVG")
        self.act_export_view = A("Export &comparison view (PNG)…", lambda: self.export_view(),
                                 "Ctrl+Shift+E", "Save the comparison as it is seen (split, "
                                 "side by side or three panes) with codec, bpp and metrics")
        self.act_export_csv = A("Export &metrics table (CSV)…", lambda: self.export_metrics(),
                                None, "All encodings of this image with bpp and metrics")
        self.act_save_session = A("Save session…", lambda: self.save_session(), "Ctrl+Shift+S",
                                  "Image path, pane settings, encodings and view as JSON")
        self.act_open_session = A("Open session…", lambda: self.load_session(), "Ctrl+Shift+O",
                                  "Restore a saved session")
        self.act_quit = A("&Quit", self.close, "Ctrl+Q", "Quit LIC Studio")

        self.mode_group = QActionGroup(self)
        self.act_split = A("&Split view", lambda: setattr(v, "compare_mode", "split"), "S",
                           "Squoosh-style split with a draggable divider", True)
        self.act_side = A("Side &by side", lambda: setattr(v, "compare_mode", "side"), "D",
                          "Panes next to each other, zoom and pan linked", True)
        self.act_flicker = A("A/B &flicker", self.compare.flip, "F",
                             "Flip between panes in place (F or Space)", True)
        self.act_space = A("Flip", self.compare.flip, "Space", "Flip A/B")
        for a in (self.act_split, self.act_side, self.act_flicker):
            self.mode_group.addAction(a)
        self.act_diff = A("Cycle &difference", self.cycle_diff, "X",
                          "Off → |A−B| → |A−original| → |B−original|")
        self.act_three = A("&Three panes", lambda c: setattr(v, "n_panes", 3 if c else 2), "T",
                           "Compare three encodings", True)
        self.act_fit = A("&Fit", self.compare.fit, "0", "Whole image in view")
        self.act_1to1 = A("Zoom &1:1", lambda: self.compare.zoom_to(1.0), "1",
                          "One image pixel per screen pixel")
        self.act_zoom_in = A("Zoom in", lambda: self.compare.zoom_by(2.0), "+", "Zoom in ×2")
        self.act_zoom_in2 = A("Zoom in", lambda: self.compare.zoom_by(2.0), "=", "Zoom in ×2")
        self.act_zoom_out = A("Zoom out", lambda: self.compare.zoom_by(0.5), "-", "Zoom out ×2")
        self.act_lpips = A("Compute &LPIPS", lambda c: setattr(v, "compute_lpips", c), None,
                           "Score every result shown with LPIPS (in the background), and every "
                           "new one (slower)", True)
        self.act_ms_ssim = A("Compute &MS-SSIM", lambda c: setattr(v, "compute_ms_ssim", c),
                             None, "Score results with MS-SSIM (a picture above 4 MP is shown "
                             "first and scored after: at 24 MP one MS-SSIM takes 6–15 s)", True)
        self.act_ms_ssim.setChecked(bool(v.compute_ms_ssim))
        self.act_reencode = A("&Re-encode all", lambda: self.controller.encode_all(force=True),
                              "Ctrl+R", "Encode every visible pane again now (not from the "
                              "cache)")
        self.act_sweep = A("S&weep pane A's codec", lambda: self.controller.sweep(0),
                           "Ctrl+Shift+R", "Encode pane A's codec at 6 rates (RD curve)")
        self.act_sweep_b = A("Sweep pane B's codec", lambda: self.controller.sweep(1), None,
                             "Encode pane B's codec at 6 rates")
        self.act_dataset = A("&Dataset curve of pane A's codec…", lambda: self.dataset_curve(),
                             None, "Sweep pane A's codec over a folder of images (e.g. Kodak) "
                             "and plot its average curve beside the published Kodak averages "
                             "(cached)")
        self.act_hific_vs_ours = A("&HiFiC vs ours…", lambda: self.show_generative_demo(),
                                   "Ctrl+G", DEMO_TIP)
        self.act_cancel = A("&Cancel all", self.controller.cancel_all, "Esc",
                            "Stop every running encode")
        self.act_find_artifacts = A("Find &artifacts", lambda: self.find_artifacts(), None,
                                    "Map where two pictures differ perceptually (local LPIPS "
                                    "or SSIM) and rank the tiles")
        self.act_next_artifact = A("&Next artifact", lambda: self.next_artifact(), "N",
                                   "Jump the view to the next most different tile")
        self.act_copy_ab = A("Copy settings A → B", lambda: self.copy_settings(0, 1), None,
                             "Give pane B pane A's codec and parameters")
        self.act_copy_ba = A("Copy settings B → A", lambda: self.copy_settings(1, 0), None,
                             "Give pane A pane B's codec and parameters")
        self.act_about_model = A("About this &model (A)",
                                 lambda: self.show_about_model(
                                     self.session.panes[0].settings.codec), "F1",
                                 "Provenance and model card of pane A's codec")
        self.act_about = A("About LIC Studio", self.show_about, None, "Version and credits")
        self.act_keys = A("Keyboard shortcuts", self.show_shortcuts, None, "List of shortcuts")
        self._subs.connect(v.events.compare_mode, self._on_mode_change)
        self._on_mode_change()

    def _build_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        f.addAction(self.act_open)
        f.addAction(self.act_sample)
        self.kodak_menu = f.addMenu("Open &Kodak image")
        kodak = services.kodak_images()
        self.kodak_menu.setEnabled(bool(kodak))
        self.kodak_menu.setToolTip("Kodak test images from ../shared/data/kodak")
        for p in kodak:
            a = self.kodak_menu.addAction(p.stem)
            a.triggered.connect(lambda _=False, p=p: self.open_path(p))
        self.recent_menu = f.addMenu("Open &recent")
        f.addAction(self.act_paste)
        f.addAction(self.act_compare_against)
        f.addAction(self.act_close)
        f.addAction(self.act_add_model)
        f.addSeparator()
        for a in (self.act_save_lic, self.act_save_lic_b, self.act_export_png,
                  self.act_export_png_b, self.act_export_view, self.act_export_heat,
                  self.act_export_plot, self.act_export_csv):
            f.addAction(a)
        f.addSeparator()
        f.addAction(self.act_save_session)
        f.addAction(self.act_open_session)
        f.addSeparator()
        f.addAction(self.act_quit)
        vm = mb.addMenu("&View")
        for a in (self.act_split, self.act_side, self.act_flicker, self.act_diff,
                  self.act_three):
            vm.addAction(a)
        vm.addSeparator()
        for a in (self.act_fit, self.act_1to1, self.act_zoom_in, self.act_zoom_out):
            vm.addAction(a)
        vm.addSeparator()
        vm.addAction(self.act_lpips)
        vm.addAction(self.act_ms_ssim)
        vm.addSeparator()
        panels = vm.addMenu("&Panels")
        panels.setToolTip("Show or hide the docked panels (closed ones come back from here)")
        self.panel_actions = [self.rd_dock.toggleViewAction(),
                              self.inspector_dock.toggleViewAction(),
                              self.view_toolbar.toggleViewAction()]
        for a in self.panel_actions:
            panels.addAction(a)
        panels.addSeparator()
        panels.addAction(self.act_reset_layout)
        e = mb.addMenu("&Encode")
        for a in (self.act_reencode, self.act_sweep, self.act_sweep_b, self.act_dataset,
                  self.act_hific_vs_ours, self.act_cancel, self.act_copy_ab, self.act_copy_ba):
            e.addAction(a)
        vm.addSeparator()
        vm.addAction(self.act_find_artifacts)
        vm.addAction(self.act_next_artifact)
        st = mb.addMenu("&Settings")
        st.addAction(self.act_threads)
        h = mb.addMenu("&Help")
        for a in (self.act_about_model, self.act_keys, self.act_about):
            h.addAction(a)

    def _build_toolbar(self) -> None:
        v = self.session.view
        tb = self.view_toolbar
        tb.addAction(self.act_open)
        tb.addSeparator()
        for a in (self.act_split, self.act_side, self.act_flicker, self.act_three):
            tb.addAction(a)
        tb.addSeparator()
        self.diff_combo = QComboBox()
        for key, label in DIFF_LABELS:
            self.diff_combo.addItem(label, key)
        self.diff_combo.setToolTip("Difference view (X cycles)")
        self.diff_combo.currentIndexChanged.connect(
            lambda i: setattr(v, "diff_mode", self.diff_combo.itemData(i)))
        tb.addWidget(self.diff_combo)
        self.gain_spin = QDoubleSpinBox()
        self.gain_spin.setRange(1.0, 64.0)
        self.gain_spin.setValue(v.diff_gain)
        self.gain_spin.setPrefix("×")
        self.gain_spin.setToolTip("Difference amplification")
        self.gain_spin.valueChanged.connect(lambda g: setattr(v, "diff_gain", float(g)))
        tb.addWidget(self.gain_spin)
        self.cmap_combo = QComboBox()
        self.cmap_combo.addItems(list(COLORMAPS))
        self.cmap_combo.setToolTip("Colormap for differences and heatmaps "
                                   "(perceptually uniform; readable on dark and light themes)")
        self.cmap_combo.currentTextChanged.connect(lambda c: setattr(v, "colormap", c))
        tb.addWidget(self.cmap_combo)
        tb.addSeparator()
        tb.addAction(self.act_fit)
        tb.addAction(self.act_1to1)
        tb.addAction(self.act_sweep)
        tb.addAction(self.act_hific_vs_ours)
        self._subs.connect(v.events.diff_mode, self._on_diff_change)
        self._subs.connect(v.events.colormap, lambda e: self.cmap_combo.setCurrentText(e.value))
        self._subs.connect(v.events.diff_gain, lambda e: self.gain_spin.setValue(e.value))

    # ------------------------------------------------------------------ model → view
    def _on_mode_change(self, event=None) -> None:
        m = self.session.view.compare_mode
        {"split": self.act_split, "side": self.act_side,
         "flicker": self.act_flicker}[m].setChecked(True)

    def _on_diff_change(self, event) -> None:
        # the combo's echo writes the model's own value back, which the model ignores
        self.diff_combo.setCurrentIndex(DIFF_MODES.index(event.value))

    # ------------------------------------------------------------------ commands
    def refresh_demo_action(self) -> bool:
        """Enable "HiFiC vs ours" when both generative decoders have weights; else disable it
        with a tooltip naming what is missing and the campaign stage that trains it."""
        codecs, why = self.find_demo_codecs()
        ok = codecs is not None
        self.act_hific_vs_ours.setEnabled(ok)
        tip = DEMO_TIP if ok else why
        self.act_hific_vs_ours.setToolTip(tip)
        self.act_hific_vs_ours.setStatusTip(tip)
        return ok

    def cycle_diff(self) -> None:
        """X: the next difference mode (:meth:`ViewState.cycle_diff_mode`)."""
        self.session.view.cycle_diff_mode()

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{k}</b></td><td>{d}</td></tr>" for k, d in SHORTCUTS)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")
