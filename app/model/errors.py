"""The errors the studio's views catch (Qt-free).

They are lic_core's own classes, named here so that the views (``app/qt_*.py``) reach lic_core
only through the model layer (the import contract in pyproject.toml): :class:`LicError` is every
user error with a one-line message (shown in a dialog), :class:`CancelledError` what a job
raises when its token was cancelled (never shown as a failure).
"""
from __future__ import annotations

from lic_core.errors import CancelledError, LicError

__all__ = ["CancelledError", "LicError"]
