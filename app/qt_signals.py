"""Signal plumbing shared by the views: model subscriptions that end with the view, and one
way to push a model value into widgets without it echoing back.

* :class:`ModelSubscriptions` — every ``model.events.<name>`` callback a view connects goes
  through one of these; when the view's Qt object is destroyed (or the window closes) they are
  all disconnected, so a model never calls into a dead widget (napari's views do the same).
* :func:`signals_blocked` — for the few model → view updates that set several widgets at once,
  where a half-updated widget set would write a wrong intermediate value back (napari's
  ``qt_signals_blocked``).  A single widget set to the model's own value needs no blocker: the
  evented model ignores writes of an equal value.
"""
from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterator, Optional

from PySide6.QtCore import QObject, QSignalBlocker


class ModelSubscriptions:
    """The ``(emitter, callback)`` pairs one view connected; :meth:`disconnect` ends them all."""

    def __init__(self, owner: Optional[QObject] = None) -> None:
        self._pairs: list[tuple[Any, Callable]] = []
        if owner is not None:
            owner.destroyed.connect(self.disconnect)

    def connect(self, emitter: Any, callback: Callable) -> Callable:
        """``emitter.connect(callback)``, remembered for :meth:`disconnect`."""
        emitter.connect(callback)
        self._pairs.append((emitter, callback))
        return callback

    def disconnect(self, *_: Any) -> None:
        for emitter, callback in self._pairs:
            emitter.disconnect(callback)
        self._pairs.clear()

    def __len__(self) -> int:
        return len(self._pairs)


@contextmanager
def signals_blocked(*objects: QObject) -> Iterator[None]:
    """Block the Qt signals of ``objects`` for the duration of the block."""
    with ExitStack() as stack:
        for obj in objects:
            blocker = QSignalBlocker(obj)
            stack.callback(blocker.unblock)
        yield
