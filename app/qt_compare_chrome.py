"""The compare view's chrome: the empty state's buttons and the decoded-file banner.

Kept apart from ``qt_compare_view.py`` (the picture logic) so each module stays small; ``view``
is that module's ``QtCompareView`` (not imported here: no import circle).
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


def build_placeholder(view: QWidget) -> QWidget:
    """The empty view: what to do first, with Open and Sample buttons (``view.open_btn``,
    ``view.sample_btn``) that emit the view's ``open_requested`` / ``sample_requested``."""
    w = QWidget()
    w.setObjectName("empty-view")
    w.setStyleSheet("#empty-view { background: rgb(40, 40, 40); } "
                    "#empty-view QLabel { color: #ddd; }")
    title = QLabel("<h2>Open an image to start comparing</h2>")
    title.setAlignment(Qt.AlignmentFlag.AlignCenter)
    hint = QLabel("Ctrl+O opens an image or a .lic file · drop a file here · Ctrl+V pastes "
                  "an image<br>or try the bundled sample photo")
    hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
    hint.setWordWrap(True)
    view.open_btn = QPushButton("Open image…")
    view.open_btn.setToolTip("Open an image or a compressed .lic file (Ctrl+O)")
    view.open_btn.clicked.connect(view.open_requested)
    view.sample_btn = QPushButton("Open sample image")
    view.sample_btn.setToolTip("The bundled CC0 photo shipped with lic_core")
    view.sample_btn.clicked.connect(view.sample_requested)
    row = QHBoxLayout()
    row.addStretch(1)
    row.addWidget(view.open_btn)
    row.addWidget(view.sample_btn)
    row.addStretch(1)
    lay = QVBoxLayout(w)
    lay.addStretch(1)
    lay.addWidget(title)
    lay.addWidget(hint)
    lay.addLayout(row)
    lay.addStretch(2)
    return w


def build_banner(view: QWidget) -> QWidget:
    """The strip under a decoded file shown without its original (``view.banner_text``,
    ``view.compare_btn`` → ``compare_requested``); hidden until then."""
    w = QWidget()
    w.setObjectName("decoded-banner")
    w.setStyleSheet("#decoded-banner { background: #4a3b12; } "
                    "#decoded-banner QLabel { color: #ffe9a8; }")
    view.banner_text = QLabel("")
    view.banner_text.setWordWrap(True)
    view.compare_btn = QPushButton("Compare against original…")
    view.compare_btn.setToolTip("Name the image this file was made from: the file is then "
                                "scored against it and the other panes encode it")
    view.compare_btn.clicked.connect(view.compare_requested)
    lay = QHBoxLayout(w)
    lay.setContentsMargins(8, 4, 8, 4)
    lay.addWidget(view.banner_text, 1)
    lay.addWidget(view.compare_btn)
    w.hide()
    return w
