"""Entry point: ``lic-studio [IMAGE|FILE.lic|SESSION.json]`` / ``python -m app ...``.

``--screenshot OUT.png [--size WxH]`` renders the studio headless after its first encodes and
exits (app/screenshot.py).  Before Qt starts, a missing X11 library or display is reported in one
line with the apt command that fixes it (app/platform_check.py) instead of Qt's abort.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lic-studio", description="LIC Studio desktop app")
    p.add_argument("image", nargs="?", help="image, .lic file or saved session to open")
    p.add_argument("--sample", action="store_true", help="open the bundled sample image")
    p.add_argument("--original", metavar="IMAGE",
                   help="with a .lic file: the image it was made from (the file is scored "
                        "against it)")
    p.add_argument("--codec", metavar="NAME",
                   help="pane A's codec: any name `lic models` lists, your added models included")
    g = p.add_argument_group("headless screenshot")
    g.add_argument("--screenshot", metavar="OUT.png",
                   help="render the window offscreen after the first encodes, save it, exit")
    g.add_argument("--size", default="1366x768", metavar="WxH",
                   help="window size for --screenshot (default 1366x768)")
    g.add_argument("--view", choices=("split", "side", "flicker"), help="compare mode")
    g.add_argument("--panes", type=int, choices=(2, 3), help="number of compare panes")
    g.add_argument("--diff", choices=("a-b", "a-orig", "b-orig"), help="difference view")
    g.add_argument("--tab", choices=("latents", "entropy", "rate", "file", "artifacts"),
                   help="inspector tab to show")
    g.add_argument("--overlay", choices=("bits_y", "bits_z"), help="bits heatmap over the image")
    g.add_argument("--sweep", action="store_true", help="RD-sweep panes A and B first")
    g.add_argument("--quantizer", choices=("round", "deadzone", "rdoq", "tcq"),
                   help="pane A's quantizer")
    g.add_argument("--artifacts", metavar="X,Y",
                   help="run the artifact finder on two of original,A,B,C (e.g. original,A) "
                        "and show its worst tile")
    g.add_argument("--measure", choices=("lpips", "ssim"), default="lpips",
                   help="the artifact finder's difference (default: local LPIPS)")
    g.add_argument("--view-only", action="store_true",
                   help="save only the comparison as seen (with codec, bpp and metrics "
                        "captions), not the whole window")
    g.add_argument("--force", action="store_true", help="overwrite OUT.png if it exists")
    g.add_argument("--timeout", type=float, default=900.0, metavar="S",
                   help="give up after S seconds (default 900)")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    """Start the studio, optionally opening IMAGE (an image, a .lic file or a session .json)."""
    args = build_parser().parse_args(argv)
    from .model.errors import LicError

    if args.screenshot and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot never needs a display
    from .platform_check import platform_problem

    problem = platform_problem()
    if problem:
        print(f"lic-studio: {problem}", file=sys.stderr)
        return 1
    try:
        shot = None
        if args.screenshot:
            from .screenshot import ShotOptions, parse_size

            shot = ShotOptions(out=Path(args.screenshot), size=parse_size(args.size),
                               view=args.view, panes=args.panes, diff=args.diff, tab=args.tab,
                               overlay=args.overlay, sweep=args.sweep, force=args.force,
                               timeout=args.timeout, quantizer=args.quantizer,
                               codec=args.codec, artifacts=args.artifacts,
                               measure=args.measure, view_only=args.view_only)
            if shot.out.exists() and not shot.force:
                raise LicError(f"'{shot.out}' already exists (use --force to overwrite it)")

        from PySide6.QtWidgets import QApplication

        from .qt_main_window import QtMainWindow

        app = QApplication.instance() or QApplication(sys.argv[:1])
        app.setApplicationName("LIC Studio")
        app.setOrganizationName("LIC Studio")
        target = args.image
        if target is None and args.sample:
            from .model import services

            sample = services.sample_image_path()
            target = str(sample) if sample else None
        if shot is not None:
            from .screenshot import quiet_offscreen_warnings, take

            quiet_offscreen_warnings()
            win = QtMainWindow(persist=False)  # a screenshot neither reads nor writes settings
            return take(app, win, target, shot, args.original)
        win = QtMainWindow()
        if args.codec:
            win.use_codec(0, args.codec)
        win.show()
        if target:
            if target.endswith(".json"):
                win.load_session(target)
            elif args.original:
                win.open_path(target, then=lambda: win.compare_against(args.original))
            else:
                win.open_path(target)
        return int(app.exec())
    except LicError as exc:
        print(f"lic-studio: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
