"""The "About this model" dialog: a codec's provenance in plain words.

Describing a learned codec loads its weights, so the card (``app.model.about.describe_html``,
Qt-free) is written in a worker: the dialog opens at once with a placeholder and fills in when
the worker reports back.
"""
from __future__ import annotations

from typing import Optional

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from .model.about import cannot_describe_html, describe_html, placeholder_html
from .qt_workers import QtWorkerPool


class QtAboutModelDialog(QDialog):
    """Non-blocking dialog showing :func:`describe_html`, computed in ``pool`` (a worker)."""

    def __init__(self, codec_name: str, parent: Optional[QWidget] = None,
                 pool: Optional[QtWorkerPool] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About this model — {codec_name}")
        self.resize(560, 480)
        self.browser = QTextBrowser()
        self.browser.setHtml(placeholder_html(codec_name))
        #: True once the card is in (tests wait on it)
        self.ready = False
        self._pool = pool or QtWorkerPool(max_threads=1, parent=self)
        self._pool.submit(lambda name, sink: describe_html(name), codec_name, self._show,
                          self._failed)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.browser)
        lay.addWidget(buttons)

    def _show(self, _name: str, text: str) -> None:
        self.browser.setHtml(text)
        self.ready = True

    def _failed(self, name: str, exc: BaseException) -> None:
        self._show(name, cannot_describe_html(name, str(exc)))
