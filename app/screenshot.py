"""``lic-studio --screenshot OUT.png [--size WxH] [IMAGE|FILE.lic]``: the studio as a PNG.

The window is shown offscreen at the given size, the image (or compressed file) is opened, the
first encodes (or the decode) are waited for, optional view settings are applied, and the
window's pixels are written atomically to OUT.  The README's screenshots are made with it; it
also makes bug reports reproducible ("this is what I saw").
"""
from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .model.errors import LicError

DEFAULT_SIZE = (1366, 768)


@dataclass
class ShotOptions:
    """What to show before the picture is taken (``lic-studio --help``)."""

    out: Path
    size: tuple[int, int] = DEFAULT_SIZE
    view: Optional[str] = None          # split | side | flicker
    panes: Optional[int] = None         # 2 | 3
    diff: Optional[str] = None          # a-b | a-orig | b-orig
    tab: Optional[str] = None           # latents | entropy | rate | file
    overlay: Optional[str] = None       # bits_y | bits_z
    sweep: bool = False                 # RD sweep of panes A and B first
    quantizer: Optional[str] = None     # pane A's quantizer (round | deadzone | rdoq | tcq)
    codec: Optional[str] = None         # pane A's codec (any registered or added model)
    artifacts: Optional[str] = None     # "original,A": run the artifact finder on that pair
    measure: str = "lpips"              # its difference: lpips | ssim
    view_only: bool = False             # only the comparison as seen (issue 30 item 12)
    force: bool = False
    timeout: float = 900.0


def parse_size(text: str) -> tuple[int, int]:
    """``"1366x768"`` → (1366, 768); a one-line LicError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text or "")
    if not m or not (320 <= int(m.group(1)) <= 8000 and 240 <= int(m.group(2)) <= 8000):
        raise LicError(f"--size: expected WxH between 320x240 and 8000x8000, got '{text}'")
    return int(m.group(1)), int(m.group(2))


def _settle(app, win, timeout: float, done) -> bool:
    """Run the event loop until ``done()`` holds with no job running (True) or time is up."""
    t0 = time.monotonic()
    calm = 0
    while time.monotonic() - t0 < timeout:
        app.processEvents()
        if win.controller.is_idle() and done():
            calm += 1
            if calm > 10:  # a few quiet rounds: queued results and repaints have landed
                return True
        else:
            calm = 0
        time.sleep(0.02)
    return False


def _panes_done(win) -> bool:
    s = win.session
    if s.image is None:
        return s.decoded is not None or bool(win.error_log)
    return all(p.encoding is not None or p.error or p.status == "cancelled"
               for p in s.active_panes)


def quiet_offscreen_warnings() -> None:
    """Drop the offscreen plugin's "does not support propagateSizeHints()" notes (harmless:
    there is no window manager to tell), keep every other Qt message."""
    from PySide6.QtCore import qInstallMessageHandler

    previous = None

    def handler(mode, context, message):
        if "propagateSizeHints" in message:
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            sys.stderr.write(message + "\n")

    previous = qInstallMessageHandler(handler)


def take(app, win, target: Optional[str], opts: ShotOptions,
         original: Optional[str] = None) -> int:
    """Drive ``win`` to the requested state, save the picture; returns the exit status."""
    from PySide6.QtCore import QBuffer, QIODevice

    from .model.export import atomic_write_bytes

    out = Path(opts.out)
    if out.exists() and not opts.force:
        raise LicError(f"'{out}' already exists (use --force to overwrite it)")
    w, h = opts.size
    win.resize(w, h)
    win.show()
    for _ in range(5):
        app.processEvents()
    win._docks_share(w)
    app.processEvents()
    if opts.codec:
        win.use_codec(0, opts.codec)
    if target:
        opened = win.load_session(target) if str(target).endswith(".json") \
            else win.open_path(target)
        if not opened:
            raise LicError("; ".join(m for _, m in win.error_log) or f"cannot open {target}")
        if not _settle(app, win, opts.timeout, lambda: _panes_done(win)):
            raise LicError(f"timed out after {opts.timeout:g} s waiting for the first encodes")
    if original:
        if not win.compare_against(original):
            raise LicError("; ".join(m for _, m in win.error_log))
        if not _settle(app, win, opts.timeout,
                       lambda: _panes_done(win) and win.session.panes[0].encoding is not None):
            raise LicError(f"timed out after {opts.timeout:g} s scoring the file")
    v = win.session.view
    if opts.panes:
        v.n_panes = opts.panes
    if opts.view:
        v.compare_mode = opts.view
    if opts.diff:
        v.diff_mode = opts.diff
    if opts.quantizer:
        pane = win.session.panes[0]
        from .model.codec_knobs import codec_knobs

        knobs = codec_knobs(pane.settings.codec)
        if knobs is None or opts.quantizer not in knobs.quantizers:
            raise LicError(f"--quantizer: {pane.settings.codec} has no '{opts.quantizer}' "
                           "quantizer")
        pane.set(quantizer=opts.quantizer)
    if opts.sweep and win.session.image is not None:
        win.controller.sweep(0, points=5)
        win.controller.sweep(1, points=5)
    if opts.tab:
        tabs = {"latents": win.latents, "entropy": win.entropy, "rate": win.rate,
                "file": win.file_info, "artifacts": win.artifacts}
        win.inspector_tabs.setCurrentWidget(tabs[opts.tab])
    if opts.overlay:
        win.entropy.kind_combo.setCurrentIndex(2 if opts.overlay == "bits_z" else 0)
        win.entropy.overlay_check.setChecked(True)
    # nothing opened (no IMAGE and no --sample): the empty window is the picture, there is no
    # encode to wait for (waiting for one would only run into the timeout)
    opened_something = bool(target or original)
    if not _settle(app, win, opts.timeout,
                   lambda: _panes_done(win) if opened_something else True):
        raise LicError(f"timed out after {opts.timeout:g} s waiting for the encodes")
    if opts.artifacts:
        pair = [p.strip() for p in opts.artifacts.split(",")]
        if len(pair) != 2 or not set(pair) <= {"original", "A", "B", "C"}:
            raise LicError(f"--artifacts: expected two of original,A,B,C, got '{opts.artifacts}'")
        if not win.find_artifacts(pair[0], pair[1], opts.measure):
            raise LicError("; ".join(m for _, m in win.error_log))
        if not _settle(app, win, opts.timeout, lambda: not win.artifacts.busy):
            raise LicError(f"timed out after {opts.timeout:g} s finding artifacts")
        win.next_artifact()
        _settle(app, win, 10, lambda: True)
    image = win.compare.export_image() if opts.view_only else win.grab().toImage()
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    atomic_write_bytes(out, bytes(buf.data()), overwrite=opts.force)
    print(f"wrote {out} ({image.width()}×{image.height()})")
    for title, message in win.error_log:  # the picture shows them; the exit status says so
        print(f"lic-studio: {title}: {message}", file=sys.stderr)
    return 1 if win.error_log else 0
