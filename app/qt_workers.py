"""Background workers: every encode/decode runs on a QThreadPool, never on the GUI thread.

A :class:`QtWorkerPool` runs ``fn(request, progress_sink)`` in a :class:`QRunnable` and relays
progress / result / error back through queued signals (the signal object lives in the GUI thread,
so Qt queues emissions from the worker thread).  Cancelling sets the request's token; the codec's
progress callback then raises :class:`lic_core.errors.CancelledError` (napari's ``qthreading``
pattern without superqt).
"""
from __future__ import annotations

import traceback
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from .model.errors import CancelledError


class _Signals(QObject):
    progress = Signal(object, float, str)  # job, fraction, message
    finished = Signal(object, object)  # job, result
    failed = Signal(object, object)  # job, exception


class _Job(QRunnable):
    def __init__(self, fn: Callable[..., Any], request: Any, signals: _Signals) -> None:
        super().__init__()
        self.fn = fn
        self.request = request
        self.signals = signals
        self.setAutoDelete(True)

    def run(self) -> None:  # worker thread
        try:
            result = self.fn(self.request,
                             lambda f, m: self.signals.progress.emit(self.request, f, m))
        except BaseException as exc:  # everything goes back to the GUI thread as a dialog
            if not isinstance(exc, CancelledError):
                exc.__dict__.setdefault("_lic_traceback", traceback.format_exc())
            self.signals.failed.emit(self.request, exc)
        else:
            self.signals.finished.emit(self.request, result)


class QtWorkerPool(QObject):
    """Runs jobs off the GUI thread and tracks which are still running.

    Signals
    -------
    busy_changed(int) : number of running jobs changed (0 = idle).
    """

    busy_changed = Signal(int)

    def __init__(self, max_threads: int = 2, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        # 2 threads: one per compared pane is enough; more would oversubscribe torch's threads
        self._pool.setMaxThreadCount(max_threads)
        self._active: dict[int, tuple[Any, _Signals]] = {}

    def submit(self, fn: Callable[[Any, Callable[[float, str], None]], Any], request: Any,
               on_done: Callable[[Any, Any], None], on_fail: Callable[[Any, BaseException], None],
               on_progress: Optional[Callable[[Any, float, str], None]] = None) -> None:
        """Run ``fn(request, progress)`` in the pool; callbacks run in the GUI thread."""
        sig = _Signals()  # created in the GUI thread → queued delivery
        key = id(request)
        self._active[key] = (request, sig)

        def done(req: Any, res: Any) -> None:
            self._release(req)
            on_done(req, res)

        def fail(req: Any, exc: BaseException) -> None:
            self._release(req)
            on_fail(req, exc)

        sig.finished.connect(done)
        sig.failed.connect(fail)
        if on_progress is not None:
            sig.progress.connect(on_progress)
        self._pool.start(_Job(fn, request, sig))
        self.busy_changed.emit(len(self._active))

    def _release(self, request: Any) -> None:
        self._active.pop(id(request), None)
        self.busy_changed.emit(len(self._active))

    def active_count(self) -> int:
        """Jobs submitted whose result has not been delivered to the GUI thread yet."""
        return len(self._active)

    def active_requests(self) -> list[Any]:
        return [r for r, _ in self._active.values()]

    def cancel(self, request: Any) -> None:
        token = getattr(request, "token", None)
        if token is not None:
            token.cancel()

    def cancel_all(self) -> None:
        for req in self.active_requests():
            self.cancel(req)

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the threads are done (shutdown and tests only)."""
        return bool(self._pool.waitForDone(msecs))
