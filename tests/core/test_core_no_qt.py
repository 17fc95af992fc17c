"""lic_core never imports Qt (napari's model/view boundary, STYLE_ANCHORS §1)."""
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import lic_core

QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "PySide2", "pyqtgraph", "shiboken6", "qtpy")


@pytest.mark.slow
def test_importing_every_lic_core_module_loads_no_qt(repo_root: Path):
    mods = [m.name for m in pkgutil.walk_packages(lic_core.__path__, "lic_core.")
            if not m.name.endswith("__main__")]
    assert len(mods) > 20
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "import lic_core.codecs as c; c.list_codecs()\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\n"
        "print('QT:' + ','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=repo_root, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "QT:\n" in out.stdout or out.stdout.strip().endswith("QT:"), out.stdout


def test_no_qt_import_statements_in_lic_core(repo_root: Path):
    for path in (repo_root / "lic_core").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for qt in QT_MODULES:
            assert f"import {qt}" not in text and f"from {qt}" not in text, path
