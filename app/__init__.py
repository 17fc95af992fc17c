"""LIC Studio: the PySide6 + pyqtgraph desktop application over :mod:`lic_core`.

``app.model`` is Qt-free (session, panes, cache, RD data); ``app/qt_*.py`` are the views.
Run with ``lic-studio [IMAGE]`` or ``python -m app [IMAGE]``.
"""
