"""Entry point: ``lic-studio [IMAGE]`` / ``python -m app [IMAGE]``."""
from __future__ import annotations

import argparse
import sys
from typing import Optional


def main(argv: Optional[list[str]] = None) -> int:
    """Start the studio, optionally opening IMAGE (an image, a .lic file or a session .json)."""
    parser = argparse.ArgumentParser(prog="lic-studio", description="LIC Studio desktop app")
    parser.add_argument("image", nargs="?", help="image, .lic file or saved session to open")
    parser.add_argument("--sample", action="store_true", help="open the bundled sample image")
    args = parser.parse_args(argv)

    from PySide6.QtWidgets import QApplication

    from .qt_main_window import QtMainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("LIC Studio")
    app.setOrganizationName("LIC Studio")
    win = QtMainWindow()
    win.show()
    if args.image:
        if args.image.endswith(".json"):
            win.load_session(args.image)
        else:
            win.open_path(args.image)
    elif args.sample:
        win.open_sample()
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
