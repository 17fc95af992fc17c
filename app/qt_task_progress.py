"""The status bar's task widget: what the studio is opening, how far it is, and Cancel.

Opening a 24 MP photo (decode, content hash, display preview) takes seconds in a worker; the
window stays usable meanwhile and this widget says so (issue 28 item 3).  It listens to
``QtEncodeController.file_progress`` — ``(fraction, text)``, ``(-1, "")`` when done.
"""
from __future__ import annotations

from typing import Callable, Optional

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget


class QtTaskProgress(QWidget):
    """A label, a thin progress bar and a Cancel button; hidden while nothing is opening."""

    def __init__(self, cancel: Callable[[], None], parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.label = QLabel("")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setMaximumWidth(120)
        self.bar.setMaximumHeight(10)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop opening this file (the picture shown stays)")
        self.cancel_btn.clicked.connect(cancel)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label)
        lay.addWidget(self.bar)
        lay.addWidget(self.cancel_btn)
        #: every fraction shown since the last start (tests read that progress was reported)
        self.history: list[float] = []
        self.hide()

    def set_progress(self, fraction: float, text: str) -> None:
        if fraction < 0:
            self.hide()
            return
        if not self.isVisible():
            self.history = []
        self.history.append(float(fraction))
        self.label.setText(text)
        self.bar.setValue(int(round(1000 * min(max(fraction, 0.0), 1.0))))
        self.show()
