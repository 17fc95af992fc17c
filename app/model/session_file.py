"""Session files (``*.licsession.json``): save, read and check, restore (Qt-free).

A session file is :meth:`SessionModel.to_dict`'s JSON: the image's path, every pane's settings,
the view and the parameters of the encodings on the RD plot.  Reading one checks that it is a
session (one-line :class:`LicError` otherwise); restoring it sets panes and view with automatic
encoding paused — a restored pane must not start an encode per changed field — and returns the
saved encodings' settings, which the caller re-runs (cache hits when the results are still
there).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lic_core.errors import LicError

from . import export
from .encoding import PaneSettings
from .session import SESSION_FORMAT, SessionModel

#: the suffix the Save dialog proposes
SUFFIX = ".licsession.json"


def default_name(stem: str) -> str:
    """The file name the Save dialog proposes for an image named ``stem``."""
    return f"{stem}{SUFFIX}"


def save_session(path: str | Path, session: SessionModel, overwrite: bool = False) -> Path:
    """Write ``session`` to ``path`` atomically (:func:`app.model.export.save_json`)."""
    return export.save_json(path, session.to_dict(), overwrite)


def read_session(path: str | Path) -> dict[str, Any]:
    """The session saved in ``path``; one-line :class:`LicError` for an unreadable file or one
    that is not a LIC Studio session."""
    d = export.load_json(path)
    if not isinstance(d, dict) or d.get("format") != SESSION_FORMAT:
        raise LicError(f"{Path(path).name} is not a LIC Studio session")
    return d


def image_of(d: dict[str, Any]) -> str:
    """The image a read session was made on ("" when it had none)."""
    return str(d.get("image_path") or "")


def restore_session(session: SessionModel, d: dict[str, Any]) -> list[PaneSettings]:
    """Panes and view from ``d`` (the image is opened by the caller first), with automatic
    encoding paused; returns the settings of the saved encodings to re-run."""
    with session.auto_encode_paused():
        return session.apply_dict(d)
