"""LIC Studio: the PySide6 + pyqtgraph desktop application over :mod:`lic_core`.

``app.model`` is Qt-free and holds the logic (session, panes, cache, RD data, session files,
sweeps, the rate slider, provenance); ``app/qt_*.py`` are the views, which draw it and forward
events, and reach lic_core only through it (docs/ARCHITECTURE.md, "The studio").
Run with ``lic-studio [IMAGE]`` or ``python -m app [IMAGE]``.
"""
