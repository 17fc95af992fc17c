"""Fixtures for the studio tests (issue 14); helpers live in ``studio_helpers.py``.

The root ``tests/conftest.py`` still applies (offscreen Qt, one torch thread, ``shared_dir``).
"""
from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from lic_core.codecs import get_codec
from lic_core.codecs import registry as _registry
from studio_helpers import FAKE, FakeLearnedCodec, make_window


@pytest.fixture
def fake_codec():
    _registry.register_codec(FAKE)(FakeLearnedCodec)
    yield get_codec(FAKE)
    _registry._FACTORIES.pop(FAKE, None)
    _registry._CACHE.pop(FAKE, None)


@pytest.fixture
def settings_dir(tmp_path):
    """QSettings of this test live in tmp_path (never the user's real settings)."""
    from PySide6.QtCore import QSettings

    d = tmp_path / "settings"
    d.mkdir()
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(d))
    yield d


@pytest.fixture
def window(qtbot):
    win = make_window(qtbot)
    yield win
    win.controller.cancel_all()
    win.controller.pool.wait(20000)
