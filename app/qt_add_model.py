"""File → Add model…: register a CompressAI checkpoint the user trained (issue 32).

The dialog only draws and forwards: the form's state is :class:`app.model.add_model.AddModelForm`;
reading a checkpoint (to guess its architecture) and adding the model (loading every checkpoint
and measuring its bpp) run in workers, with progress; errors are one line under the form.
"""
from __future__ import annotations

from typing import Optional

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .model import services
from .model.add_model import AddModelForm, promise_note
from .model.errors import CancelledError
from .model.session import CancelToken
from .qt_workers import QtWorkerPool

CHECKPOINT_FILTER = "PyTorch checkpoints (*.pth *.tar *.pt *.ckpt *.bin);;All files (*)"


class QtAddModelDialog(QDialog):
    """Choose checkpoints → architecture guessed (editable) → name → Add."""

    #: the name of the model just added
    model_added = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None,
                 pool: Optional[QtWorkerPool] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add model")
        self.form = AddModelForm()
        self.pool = pool or QtWorkerPool(1, self)
        self._token: Optional[CancelToken] = None
        self.added: Optional[str] = None

        self.files_edit = QLineEdit()
        self.files_edit.setReadOnly(True)
        self.files_edit.setPlaceholderText("one checkpoint per rate point")
        self.files_edit.setToolTip("CompressAI checkpoints of one architecture: what "
                                   "examples/train.py or compressai.utils.update_model saved; "
                                   "several files = the rate points of one model")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self.browse)
        row = QHBoxLayout()
        row.addWidget(self.files_edit, 1)
        row.addWidget(browse)
        self.arch_combo = QComboBox()
        self.arch_combo.addItems(services.architecture_choices())
        self.arch_combo.setToolTip("CompressAI architecture; 'auto' guesses it from the weights")
        self.arch_combo.currentTextChanged.connect(self._on_arch)
        self.guess_label = QLabel("")
        self.guess_label.setWordWrap(True)
        self.guess_label.setStyleSheet("color: gray")
        self.name_edit = QLineEdit()
        self.name_edit.setToolTip("The name the model gets in every pane's codec list and in "
                                  "`lic --codec NAME`")
        self.name_edit.textChanged.connect(self._on_name)
        form = QFormLayout()
        form.addRow("Checkpoints", row)
        form.addRow("Architecture", self.arch_combo)
        form.addRow("", self.guess_label)
        form.addRow("Name", self.name_edit)
        #: what the chosen architecture's files promise (exact path or CompressAI's float one)
        self.note = note = QLabel(promise_note(self.form.arch))
        note.setWordWrap(True)
        note.setStyleSheet("color: gray")
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #d33")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.add_button = self.buttons.addButton("Add", QDialogButtonBox.ButtonRole.AcceptRole)
        self.add_button.clicked.connect(self.add)
        self.buttons.rejected.connect(self.cancel)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(note)
        lay.addWidget(self.error_label)
        lay.addWidget(self.progress)
        lay.addWidget(self.buttons)
        self.resize(560, self.sizeHint().height())
        self._refresh()

    # ------------------------------------------------------------------ view → model
    def browse(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "CompressAI checkpoints", "",
                                                CHECKPOINT_FILTER)
        if paths:
            self.choose_files(paths)

    def choose_files(self, paths: list[str]) -> None:
        """Take these checkpoints; their architecture is guessed in a worker."""
        self.files_edit.setText("; ".join(paths))
        self.form.checkpoints = list(paths)
        self.guess_label.setText("reading the checkpoint…")
        self._busy(True)
        name = self.form.name  # read here: the worker never touches the dialog or its form
        self.pool.submit(lambda req, sink: self._guess(req, name), list(paths),
                         self._on_guessed, self._on_failed)

    @staticmethod
    def _guess(paths: list[str], name: str) -> AddModelForm:
        f = AddModelForm(name=name)
        f.set_checkpoints(paths)
        return f

    def _on_arch(self, arch: str) -> None:
        self.form.arch = arch
        if hasattr(self, "note"):
            self.note.setText(promise_note(arch))

    def _on_name(self, text: str) -> None:
        self.form.name = text.strip()
        self._refresh()

    def add(self) -> None:
        """Add the model in a worker (loads every checkpoint, measures its bpp)."""
        if self.form.problem():
            self._refresh()
            return
        self._token = token = CancelToken()
        # the form as it is now (the name field stays editable while the worker runs)
        name, arch, checkpoints = self.form.name, self.form.arch, list(self.form.checkpoints)

        def work(req, sink):
            def progress(f: float, msg: str) -> None:
                if token.cancelled:
                    raise CancelledError("cancelled")
                sink(f, msg)
            return services.add_user_model(name, arch, checkpoints, progress)

        self._busy(True)
        self.pool.submit(work, self.form, self._on_added, self._on_failed, self._on_progress)

    def cancel(self) -> None:
        if self._token is not None:
            self._token.cancel()
        self.reject()

    # ------------------------------------------------------------------ model → view
    def _gone(self) -> bool:
        """The dialog was closed (and deleted) before a worker answered: drop the answer."""
        return not shiboken6.isValid(self) or not shiboken6.isValid(self.progress)

    def _on_guessed(self, _req, f: AddModelForm) -> None:
        if self._gone():
            return
        self._busy(False)
        self.form.error, self.form.guessed = f.error, f.guessed
        if f.guessed:
            self.form.arch = f.arch
            self.arch_combo.setCurrentText(f.arch)
            self.guess_label.setText(f"guessed {f.guessed}")
        else:
            self.guess_label.setText("")
        if not self.name_edit.text():
            self.name_edit.setText(f.name)
        self._refresh()

    def _on_progress(self, _req, fraction: float, message: str) -> None:
        if self._gone():
            return
        self.progress.setValue(int(round(100 * fraction)))
        self.progress.setFormat(f"%p %  {message}")

    def _on_added(self, _req, model) -> None:
        if self._gone():
            return
        self._busy(False)
        self.added = model.name
        self.model_added.emit(model.name)
        self.accept()

    def _on_failed(self, _req, exc: BaseException) -> None:
        if self._gone():
            return
        self._busy(False)
        if isinstance(exc, CancelledError):
            return
        self.form.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self._refresh()

    def _busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.progress.setValue(0)
        self.add_button.setEnabled(not busy and not self.form.problem())

    def _refresh(self) -> None:
        problem = self.form.problem()
        shown = self.form.error or (problem if self.form.checkpoints else "")
        self.error_label.setText(shown or "")
        self.add_button.setEnabled(problem is None and not self.progress.isVisible())
        self.add_button.setToolTip(problem or "Add the model to every pane's codec list")
        self.error_label.setAlignment(Qt.AlignmentFlag.AlignLeft)
