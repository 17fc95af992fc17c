"""What the studio remembers between runs (QSettings) and how big its window starts.

Keys: ``recent_files`` (list of paths), ``last_save_dir``, ``compute_threads`` (0 = automatic,
``lic_core.threads``), ``window/geometry`` and ``window/state`` (dock layout).
"""
from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import QSettings, QSize

ORGANIZATION = "LIC Studio"
APPLICATION = "lic-studio"
#: bump when docks/toolbars change so an old saved layout is not applied to a new window
LAYOUT_VERSION = 2
#: the window's preferred size on a large screen
PREFERRED_SIZE = QSize(1440, 900)


def studio_settings() -> QSettings:
    return QSettings(ORGANIZATION, APPLICATION)


def read_list(settings: QSettings, key: str) -> list[str]:
    """A list of strings stored under ``key``.

    QSettings' INI backend hands back a plain ``str`` for a list of one element (and None for
    an empty list), and ``list("abc")`` would make one entry per character (issue 14 item 2).
    """
    value: Any = settings.value(key, [])
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    try:
        return [v for v in value if isinstance(v, str) and v]
    except TypeError:
        return []


def read_int(settings: QSettings, key: str, default: int = 0) -> int:
    try:
        return int(settings.value(key, default))
    except (TypeError, ValueError):
        return default


def fit_size(available: Optional[QSize], preferred: QSize = PREFERRED_SIZE,
             margin: int = 24) -> QSize:
    """The preferred window size, shrunk to the screen's available area (minus a margin for the
    window frame) so the studio never opens wider or taller than the screen."""
    if available is None or available.isEmpty():
        return QSize(preferred)
    return QSize(min(preferred.width(), available.width() - margin),
                 min(preferred.height(), available.height() - margin))
