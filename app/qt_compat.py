"""Work-arounds for binding bugs that would otherwise crash the studio.

PySide6 6.12 on CPython < 3.12 over-releases the ``True`` and ``None`` singletons: one reference
of ``True`` per signal ``emit``/``disconnect`` and dozens of ``None`` per pyqtgraph item
add/remove (measured with ``sys.getrefcount`` in a loop).  pyqtgraph disconnects on every item add/remove, so a long
session drains the singletons' reference counts and CPython aborts with "bool_dealloc: deallocating
True or False".  On CPython ≥ 3.12 the singletons are immortal and nothing happens.

:func:`install_bool_refcount_guard` measures whether the bug is present and, if so, adds
permanent references to the two singletons from a timer whenever their count runs low (CPython's
``ob_refcnt`` is raised directly: the references are never given back, so interpreter shutdown,
which releases everything, cannot reach zero either).
"""
from __future__ import annotations

import sys
from typing import Optional

from PySide6.QtCore import QObject, QTimer, Signal

_TIMER: Optional[QTimer] = None
_FLOOR = 10_000_000  # references kept on each singleton at all times
_CHUNK = 50_000_000
_SINGLETONS = (True, False, None)


class _Probe(QObject):
    sig = Signal(object)


def _slot(*args) -> None:
    pass


def bool_refcount_leaks(trials: int = 50) -> bool:
    """True when signal connect/disconnect loses references to True/False here."""
    if sys.version_info >= (3, 12):
        return False  # immortal singletons
    p = _Probe()
    before = sum(sys.getrefcount(o) for o in _SINGLETONS)
    for _ in range(trials):
        p.sig.connect(_slot)
        p.sig.emit(None)
        p.sig.disconnect(_slot)
    after = sum(sys.getrefcount(o) for o in _SINGLETONS)
    return after < before - trials // 2


def top_up() -> None:
    """Add permanent references to True/False/None when they fall under the floor."""
    import ctypes

    if _TIMER is None:
        return
    for value in _SINGLETONS:
        if sys.getrefcount(value) < _FLOOR:
            # ob_refcnt is the first field of every CPython object (< 3.12 layout)
            ctypes.c_ssize_t.from_address(id(value)).value += _CHUNK


def install_bool_refcount_guard(interval_ms: int = 250) -> bool:
    """Install the guard once per process if the bug is detected; returns whether it is on."""
    global _TIMER
    if _TIMER is not None:
        return True
    if not bool_refcount_leaks():
        return False
    _TIMER = QTimer()
    top_up()
    _TIMER.setInterval(interval_ms)
    _TIMER.timeout.connect(top_up)
    _TIMER.start()
    return True
