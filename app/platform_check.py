"""Say in one line why the Qt window cannot open, before Qt aborts the process.

On a plain Linux X session Qt's xcb platform plugin needs a handful of xcb libraries that many
desktop installs lack (libxcb-icccm4 and libxcb-keysyms1 on Debian/Ubuntu).  Without them Qt
prints a paragraph naming the wrong library ("xcb-cursor0 ... is needed") and aborts with a core
dump (issue 14 item 10).  :func:`platform_problem` finds the missing libraries (by loading them
the way Qt would) and returns the apt line that installs them; the studio prints it and exits.
Offscreen, Wayland and non-Linux platforms are never checked.
"""
from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Callable, Mapping, Optional

#: shared libraries the xcb platform plugin of Qt 6 loads, with their Debian/Ubuntu packages
XCB_LIBRARIES: tuple[tuple[str, str], ...] = (
    ("libxcb.so.1", "libxcb1"),
    ("libX11-xcb.so.1", "libx11-xcb1"),
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxcb-image.so.0", "libxcb-image0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxcb-xkb.so.1", "libxcb-xkb1"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libxcb-shape.so.0", "libxcb-shape0"),
    ("libxcb-randr.so.0", "libxcb-randr0"),
    ("libxcb-xfixes.so.0", "libxcb-xfixes0"),
    ("libxcb-sync.so.1", "libxcb-sync1"),
    ("libxcb-shm.so.0", "libxcb-shm0"),
    ("libxcb-util.so.1", "libxcb-util1"),
)


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
        return True
    except OSError:
        return False


def uses_xcb(env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """True when Qt will try its xcb plugin (Linux, no other platform chosen, not Wayland)."""
    if not platform.startswith("linux"):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "").strip().lower()
    if chosen:
        return chosen.startswith("xcb")
    wayland = env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE", "").lower() == "wayland"
    return not wayland


def missing_xcb_libraries(loads: Callable[[str], bool] = _loads) -> list[tuple[str, str]]:
    """(library, package) pairs the xcb plugin needs and this system cannot load."""
    return [(lib, pkg) for lib, pkg in XCB_LIBRARIES if not loads(lib)]


def platform_problem(env: Optional[Mapping[str, str]] = None,
                     loads: Callable[[str], bool] = _loads,
                     platform: str = sys.platform) -> Optional[str]:
    """One line explaining why the studio's window cannot open here, or None when it can."""
    env = os.environ if env is None else env
    if not uses_xcb(env, platform):
        return None
    headless = "or run headless: QT_QPA_PLATFORM=offscreen, or lic-studio --screenshot OUT.png"
    missing = missing_xcb_libraries(loads)
    if missing:
        libs = ", ".join(lib for lib, _ in missing)
        pkgs = " ".join(pkg for _, pkg in missing)
        return (f"Qt's X11 (xcb) platform plugin cannot load: missing {libs}. "
                f"Install them with: sudo apt-get install {pkgs} ({headless})")
    display = env.get("DISPLAY", "")
    if not display:
        return f"no X display: DISPLAY is not set ({headless})"
    if display.startswith(":"):  # a local display: its socket must exist
        number = display[1:].split(".")[0]
        if number.isdigit() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return f"no X server answers on DISPLAY={display} ({headless})"
    return None
